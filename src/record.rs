//! Typed records: the [`Record`] trait, the [`record!`](crate::record) macro
//! that declares one in an item, and the field types with a schema meaning
//! ([`Bool`], [`FixedStr`], the timestamps [`TimestampS`] … [`TimestampNs`],
//! [`Date`], and the validity bitmap [`Validity`] of nullable fields).
//!
//! Invariants the macro checks at compile time: the struct has no implicit
//! padding (the error names the field it follows and its size); its
//! `#[nullable]` fields get validity bits 0, 1, 2, … in field order, as
//! [`Schema::parse`] assigns them, and the struct has exactly one
//! [`Validity`] field, holding all of those bits, iff it has a nullable
//! field. Nulls are read and written through safe byte views
//! (`bytemuck::bytes_of`), never `unsafe`.

use crate::schema::{Field, FieldType, Schema, TimeUnit};
use bytemuck::{Pod, Zeroable};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A fixed-size, plain-old-data record with a schema description.
///
/// Implement it with [`record!`](crate::record); a hand-written impl must list
/// every field with its true offset (checked against `size_of` at open), and
/// give nullable fields their validity bit.
pub trait Record: Pod {
    /// The fields, in offset order.
    const FIELDS: &'static [FieldDef];

    /// The schema this type is stored with.
    fn schema() -> Schema {
        Schema {
            record_size: std::mem::size_of::<Self>() as u32,
            record_align: std::mem::align_of::<Self>() as u32,
            fields: Self::FIELDS
                .iter()
                .map(|f| Field {
                    name: f.name.to_string(),
                    ty: f.ty,
                    count: f.count,
                    offset: f.offset as u32,
                    nullable: f.nullable,
                })
                .collect(),
        }
    }

    /// The validity bit of field `name` (for [`Validity::is_valid`]);
    /// `None` if there is no such field or it is not nullable.
    fn null_bit(name: &str) -> Option<u16> {
        Self::FIELDS.iter().find(|f| f.name == name)?.nullable
    }
}

/// A field of a [`Record`], as the macro describes it.
#[derive(Clone, Copy, Debug)]
pub struct FieldDef {
    /// The Rust field's name (without `r#`), which is the schema field's name.
    pub name: &'static str,
    /// The schema type of one element.
    pub ty: FieldType,
    /// Elements in the field: 1 for a scalar, `N` for `[T; N]`.
    pub count: u32,
    /// Byte offset of the field in the record (`offset_of!`).
    pub offset: usize,
    /// `Some(b)` for a nullable field: its value is present where bit `b`
    /// of the record's [`Validity`] field is set (see [`Field::nullable`]).
    pub nullable: Option<u16>,
}

/// A Rust type that can be a record field: its schema type and element count.
pub trait FieldKind: Pod {
    /// The schema type of one element (`[u8; N]` is [`FieldType::Bytes`]).
    const TYPE: FieldType;
    /// Elements of that type the Rust type holds: 1 for a scalar, the
    /// product of the array lengths for arrays.
    const COUNT: u32;
}

macro_rules! scalar {
    ($($t:ty => $k:ident),*) => {$(
        impl FieldKind for $t {
            const TYPE: FieldType = FieldType::$k;
            const COUNT: u32 = 1;
        }
    )*};
}
scalar!(u8 => U8, u16 => U16, u32 => U32, u64 => U64, i8 => I8, i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64);

/// Arrays of numbers are fields with a count; `[u8; N]` is `bytes[N]`.
/// Arrays of single-value types ([`Bool`], timestamps, [`Date`],
/// [`Validity`]) have no schema type and fail to compile in a `record!`.
impl<T: FieldKind, const N: usize> FieldKind for [T; N]
where
    [T; N]: Pod,
{
    const TYPE: FieldType = match T::TYPE {
        FieldType::U8 => FieldType::Bytes,
        FieldType::Bool | FieldType::Timestamp(_) | FieldType::Date | FieldType::Validity => {
            panic!(
                "record field: no arrays of Bool, timestamps, Date or Validity \
                 (those fields hold one value; use bytes[N] for flags)"
            )
        }
        t => t,
    };
    const COUNT: u32 = T::COUNT * N as u32;
}

/// A one-byte boolean field (`bool` in the schema). Rust's `bool` is not
/// `Pod` (only 0 and 1 are valid), so records store this byte instead.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct Bool(pub u8);

impl Bool {
    /// True, stored as the byte `1`.
    pub const TRUE: Bool = Bool(1);
    /// False, stored as the byte `0`.
    pub const FALSE: Bool = Bool(0);
    /// Any non-zero byte reads as true.
    pub fn get(self) -> bool {
        self.0 != 0
    }
}
impl From<bool> for Bool {
    fn from(b: bool) -> Bool {
        Bool(b as u8)
    }
}
impl std::fmt::Debug for Bool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}
impl FieldKind for Bool {
    const TYPE: FieldType = FieldType::Bool;
    const COUNT: u32 = 1;
}

/// A UTF-8 string of at most `N` bytes, NUL-padded (`str[N]` in the schema).
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedStr<const N: usize>(pub [u8; N]);

// `Pod`/`Zeroable` for `FixedStr<N>` are implemented in `sys` (the crate's
// only unsafe module): bytemuck's derive does not take const generics.

impl<const N: usize> FixedStr<N> {
    /// `None` if `s` is longer than `N` bytes.
    pub fn new(s: &str) -> Option<Self> {
        let mut b = [0u8; N];
        b.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
        Some(FixedStr(b))
    }
    /// The text up to the first NUL; invalid UTF-8 is cut at the first bad byte.
    pub fn as_str(&self) -> &str {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(N);
        match std::str::from_utf8(&self.0[..end]) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&self.0[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}
impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        FixedStr([0; N])
    }
}
impl<const N: usize> std::fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}
impl<const N: usize> FieldKind for FixedStr<N> {
    const TYPE: FieldType = FieldType::Str;
    const COUNT: u32 = N as u32;
}

/// Nanoseconds per second, for the timestamp conversions.
const NANOS: i128 = 1_000_000_000;

/// `t` as signed nanoseconds since the Unix epoch.
fn nanos_since_epoch(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// The instant `nanos` nanoseconds from the epoch, if `SystemTime` holds it.
fn from_nanos_since_epoch(nanos: i128) -> Option<SystemTime> {
    let n = nanos.unsigned_abs();
    let secs = u64::try_from(n / NANOS as u128).ok()?;
    let d = Duration::new(secs, (n % NANOS as u128) as u32);
    if nanos >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

macro_rules! timestamp {
    ($($name:ident => $unit:ident, $spec:literal, $suffix:literal;)*) => {$(
        #[doc = concat!(
            "A `", $spec, "` field: an `i64` count of ", stringify!($unit),
            " since 1970-01-01T00:00:00Z (UTC; negative before it). \
             numpy reads it as `datetime64[", $suffix, "]`."
        )]
        #[repr(transparent)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Pod, Zeroable)]
        pub struct $name(pub i64);

        impl $name {
            /// The unit of the count.
            pub const UNIT: TimeUnit = TimeUnit::$unit;

            /// The instant `count` units after the epoch.
            pub const fn new(count: i64) -> Self {
                $name(count)
            }

            /// The count of units since the epoch.
            pub const fn get(self) -> i64 {
                self.0
            }

            /// `t` in this unit, rounded toward the past; `None` if the
            /// count does not fit in an `i64`.
            pub fn from_system_time(t: SystemTime) -> Option<Self> {
                let per_unit = NANOS / Self::per_second();
                i64::try_from(nanos_since_epoch(t).div_euclid(per_unit)).ok().map($name)
            }

            /// The instant as a `SystemTime`; `None` if the platform's
            /// `SystemTime` cannot hold it.
            pub fn to_system_time(self) -> Option<SystemTime> {
                from_nanos_since_epoch(self.0 as i128 * (NANOS / Self::per_second()))
            }

            const fn per_second() -> i128 {
                match Self::UNIT {
                    TimeUnit::Seconds => 1,
                    TimeUnit::Millis => 1_000,
                    TimeUnit::Micros => 1_000_000,
                    TimeUnit::Nanos => 1_000_000_000,
                }
            }
        }

        impl FieldKind for $name {
            const TYPE: FieldType = FieldType::Timestamp(TimeUnit::$unit);
            const COUNT: u32 = 1;
        }
    )*};
}
timestamp! {
    TimestampS => Seconds, "timestamp[s]", "s";
    TimestampMs => Millis, "timestamp[ms]", "ms";
    TimestampUs => Micros, "timestamp[us]", "us";
    TimestampNs => Nanos, "timestamp[ns]", "ns";
}

/// A `date` field: an `i32` count of days since 1970-01-01 (negative
/// before it). numpy has no 4-byte date; `recmap schema --numpy` converts
/// it to `datetime64[D]`.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Pod, Zeroable)]
pub struct Date(pub i32);

impl Date {
    /// The day `days` after 1970-01-01.
    pub const fn new(days: i32) -> Self {
        Date(days)
    }

    /// Days since 1970-01-01.
    pub const fn days(self) -> i32 {
        self.0
    }

    /// The UTC day `t` falls on; `None` past the `i32` range.
    pub fn from_system_time(t: SystemTime) -> Option<Self> {
        i32::try_from(nanos_since_epoch(t).div_euclid(86_400 * NANOS))
            .ok()
            .map(Date)
    }

    /// Midnight UTC starting the day, if `SystemTime` holds it.
    pub fn to_system_time(self) -> Option<SystemTime> {
        from_nanos_since_epoch(self.0 as i128 * 86_400 * NANOS)
    }
}

impl FieldKind for Date {
    const TYPE: FieldType = FieldType::Date;
    const COUNT: u32 = 1;
}

/// The validity bitmap of a record's nullable fields (`validity[N]` in the
/// schema): bit `b` (byte `b / 8`, mask `1 << (b % 8)`) is set where the
/// field with validity bit `b` holds a value, clear where it is null, as in
/// Arrow. [`record!`](crate::record) gives `#[nullable]` fields bits 0, 1,
/// 2, … in field order; a record with `n` of them needs `N >= (n + 7) / 8`.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct Validity<const N: usize>(pub [u8; N]);

impl<const N: usize> Validity<N> {
    /// Every bit clear: every nullable field null.
    pub const ALL_NULL: Self = Validity([0; N]);

    /// True if bit `bit` is set (the field holds a value); false for a bit
    /// past the bitmap.
    pub fn is_valid(&self, bit: u16) -> bool {
        bit_of(&self.0, 0, bit)
    }

    /// Sets bit `bit` (`true`: the field holds a value) or clears it (null).
    ///
    /// # Panics
    /// If `bit` is past the bitmap (`bit >= 8 * N`), like a slice index.
    pub fn set_valid(&mut self, bit: u16, valid: bool) {
        assert!(
            (bit as usize) < 8 * N,
            "validity bit {bit} is past the {N}-byte bitmap"
        );
        set_bit_of(&mut self.0, 0, bit, valid);
    }
}

impl<const N: usize> Default for Validity<N> {
    fn default() -> Self {
        Self::ALL_NULL
    }
}

impl<const N: usize> std::fmt::Debug for Validity<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Validity(")?;
        for (i, b) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{b:08b}")?;
        }
        f.write_str(")")
    }
}

impl<const N: usize> FieldKind for Validity<N> {
    const TYPE: FieldType = FieldType::Validity;
    const COUNT: u32 = N as u32;
}

/// Bit `bit` of the bitmap at `at` in `bytes`; false outside `bytes`.
fn bit_of(bytes: &[u8], at: usize, bit: u16) -> bool {
    bytes
        .get(at + bit as usize / 8)
        .is_some_and(|b| b & (1 << (bit % 8)) != 0)
}

/// Sets or clears bit `bit` of the bitmap at `at` in `bytes`; nothing
/// outside `bytes`.
fn set_bit_of(bytes: &mut [u8], at: usize, bit: u16, valid: bool) {
    if let Some(b) = bytes.get_mut(at + bit as usize / 8) {
        let mask = 1u8 << (bit % 8);
        *b = if valid { *b | mask } else { *b & !mask };
    }
}

/// What the [`record!`](crate::record) expansion calls; not a public API.
#[doc(hidden)]
pub mod __private {
    use super::FieldDef;
    use crate::schema::FieldType;

    /// A field's schema name: its identifier without `r#`.
    pub const fn unraw(ident: &'static str) -> &'static str {
        match ident.as_bytes() {
            [b'r', b'#', ..] => match core::str::from_utf8(ident.as_bytes().split_at(2).1) {
                Ok(s) => s,
                Err(_) => ident,
            },
            _ => ident,
        }
    }

    /// Byte offset of the validity field in `fields` (`usize::MAX` if none:
    /// the expansion refuses that case at compile time).
    pub const fn validity_offset(fields: &[FieldDef]) -> usize {
        let mut i = 0;
        while i < fields.len() {
            if matches!(fields[i].ty, FieldType::Validity) {
                return fields[i].offset;
            }
            i += 1;
        }
        usize::MAX
    }

    /// Bit `bit` of the validity field at `at` of the record `bytes`.
    #[inline]
    pub fn bit(bytes: &[u8], at: usize, bit: u16) -> bool {
        super::bit_of(bytes, at, bit)
    }

    /// Sets (`valid`) or clears bit `bit` of the validity field at `at`.
    #[inline]
    pub fn set_bit(bytes: &mut [u8], at: usize, bit: u16, valid: bool) {
        super::set_bit_of(bytes, at, bit, valid)
    }

    /// A compile-time message: up to 512 bytes of text built by [`join`].
    #[derive(Clone, Copy, Debug)]
    pub struct Msg {
        buf: [u8; 512],
        len: usize,
    }

    impl Msg {
        /// The text (cut before a broken UTF-8 sequence, if cut at 512 bytes).
        pub const fn as_str(&self) -> &str {
            let bytes = self.buf.split_at(self.len).0;
            match core::str::from_utf8(bytes) {
                Ok(s) => s,
                Err(e) => match core::str::from_utf8(bytes.split_at(e.valid_up_to()).0) {
                    Ok(s) => s,
                    Err(_) => "record!: layout error",
                },
            }
        }
    }

    /// A piece of a [`Msg`]: text, or a number written in decimal.
    #[derive(Clone, Copy, Debug)]
    pub enum Part<'a> {
        /// Text as is.
        S(&'a str),
        /// A number in decimal.
        N(usize),
    }

    /// The parts one after the other (const panics take one `&str`).
    pub const fn join(parts: &[Part<'_>]) -> Msg {
        let mut m = Msg {
            buf: [0; 512],
            len: 0,
        };
        let mut i = 0;
        while i < parts.len() {
            let mut digits = [0u8; 20];
            let text: &[u8] = match parts[i] {
                Part::S(s) => s.as_bytes(),
                Part::N(mut n) => {
                    let mut at = digits.len();
                    loop {
                        at -= 1;
                        digits[at] = b'0' + (n % 10) as u8;
                        n /= 10;
                        if n == 0 {
                            break;
                        }
                    }
                    digits.split_at(at).1
                }
            };
            let mut k = 0;
            while k < text.len() && m.len < m.buf.len() {
                m.buf[m.len] = text[k];
                m.len += 1;
                k += 1;
            }
            i += 1;
        }
        m
    }

    /// The error for `gap` bytes of implicit padding after field `field`
    /// of record `name` (`last`: at the end, before the record's size).
    pub const fn padding_message(name: &str, field: &str, gap: usize, last: bool) -> Msg {
        use Part::{N, S};
        let place = if last {
            "`, the last field (the size rounds up to the alignment)"
        } else {
            "` (the next field is aligned past its end)"
        };
        join(&[
            S("record `"),
            S(name),
            S("`: "),
            N(gap),
            S(" byte(s) of implicit padding after field `"),
            S(field),
            S(place),
            S("; add `_pad0: [u8; "),
            N(gap),
            S("]` after it (any name starting with _pad), or reorder the fields"),
        ])
    }

    /// The error for a nullable or validity field that breaks the rules
    /// (module docs), or `None`.
    pub const fn null_problem(name: &str, fields: &[FieldDef]) -> Option<Msg> {
        use Part::{N, S};
        let (mut nullable, mut validity, mut bytes, mut i) = (0usize, 0usize, 0usize, 0);
        while i < fields.len() {
            let f = &fields[i];
            if matches!(f.ty, FieldType::Validity) {
                if f.nullable.is_some() {
                    return Some(join(&[
                        S("record `"),
                        S(name),
                        S("`: the validity field `"),
                        S(f.name),
                        S("` cannot be #[nullable]"),
                    ]));
                }
                validity += 1;
                bytes = f.count as usize;
            }
            if f.nullable.is_some() {
                nullable += 1;
            }
            i += 1;
        }
        let need = nullable.div_ceil(8);
        let (why, n, tail) = if validity > 1 {
            (
                "has more than one validity field (recmap::Validity<N>)",
                None,
                "",
            )
        } else if nullable > 0 && validity == 0 {
            (
                "has #[nullable] fields but no validity field: add `pub _valid: recmap::Validity<",
                Some(need),
                ">` after the last field (where Schema::parse puts it)",
            )
        } else if nullable > 0 && bytes < need {
            (
                "has a validity field too small for its #[nullable] fields (one bit each): \
                 make it `recmap::Validity<",
                Some(need),
                ">`",
            )
        } else if nullable == 0 && validity > 0 {
            (
                "has a validity field (recmap::Validity<N>) but no #[nullable] field: \
                 remove it, or mark the fields that may be null #[nullable]",
                None,
                "",
            )
        } else {
            return None;
        };
        Some(join(&[
            S("record `"),
            S(name),
            S("` "),
            S(why),
            match n {
                Some(n) => N(n),
                None => S(""),
            },
            S(tail),
        ]))
    }
}

/// Declares a record type in one item: a `#[repr(C)]` struct that is
/// `bytemuck::Pod` and carries its schema.
///
/// ```
/// recmap::record! {
///     /// A point with an id.
///     pub struct Point { pub id: u64, pub x: f32, pub y: f32 }
/// }
/// let s = <Point as recmap::Record>::schema();
/// assert_eq!(s.spec(), "id:u64,x:f32,y:f32");
/// ```
///
/// Field types: integers, floats, [`Bool`](crate::Bool),
/// [`FixedStr<N>`](crate::FixedStr) (`str[N]`), arrays of numbers (`[f32; 3]`
/// is `f32[3]`, `[u8; 16]` is `bytes[16]`), the timestamps
/// [`TimestampS`](crate::TimestampS), [`TimestampMs`](crate::TimestampMs),
/// [`TimestampUs`](crate::TimestampUs), [`TimestampNs`](crate::TimestampNs)
/// (`timestamp[s]` … `timestamp[ns]`, an `i64` since the Unix epoch),
/// [`Date`](crate::Date) (`date`, an `i32` day count), and
/// [`Validity<N>`](crate::Validity) (`validity[N]`, the null bitmap).
///
/// # Nullable fields
///
/// `#[nullable]` before a field makes it nullable, and
/// `#[nullable(set = NAME)]` also names its setter. Nullable fields get
/// validity bits 0, 1, 2, … in field order (as `Schema::parse` gives the
/// fields of a spec with `?`), and the struct needs one
/// [`Validity<N>`](crate::Validity) field with at least that many bits: the
/// macro refuses, at compile time, nullable fields without one, one that
/// is too small, or one without nullable fields. `Schema::parse` puts it
/// last, named `_valid`; declare it the same way to match a spec. For each
/// nullable field `x` of type `T` the macro generates
/// `fn x(&self) -> Option<T>` (`None` where the bit is clear) and, with
/// `set = set_x`, `fn set_x(&mut self, v: Option<T>)` (`None` clears the
/// bit and zeros the value). The field itself stays a plain `T`, the
/// value's slot, whatever the bit says.
///
/// ```
/// use recmap::{record, Record, TimestampMs, Validity};
/// record! {
///     pub struct Flight {
///         pub dep: TimestampMs,
///         #[nullable(set = set_delay)]
///         pub delay: f32,
///         #[nullable]
///         pub gate: u16,
///         pub _pad0: [u8; 1],
///         pub _valid: Validity<1>,
///     }
/// }
/// assert_eq!(
///     Flight::schema(),
///     recmap::Schema::parse("dep:timestamp[ms],delay:f32?,gate:u16?,_pad0:bytes[1],_valid:validity[1]")?
/// );
/// let mut f: Flight = recmap::bytemuck::Zeroable::zeroed(); // every field null
/// assert_eq!(f.delay(), None);
/// f.set_delay(Some(-3.5));
/// assert_eq!(f.delay(), Some(-3.5));
/// f._valid.set_valid(Flight::null_bit("gate").unwrap(), true);
/// assert_eq!(f.gate(), Some(0));
/// f.set_delay(None);
/// assert_eq!((f.delay(), f.delay), (None, 0.0));
/// # Ok::<(), recmap::SchemaError>(())
/// ```
///
/// # Padding
///
/// The struct may not contain implicit padding: the macro refuses it at
/// compile time, naming the field after which the padding sits and its
/// size (bytemuck's own derive error may appear beside it). Fill each gap
/// with an explicit `_pad…: [u8; N]` field (a name starting with `_pad`):
/// such fields are padding to the schema, so a typed open matches them
/// with the gaps of a store made without them (say, by the command-line
/// tool from `year:u16,dep_time:f32`), and the tool expects no input
/// column for them. `recmap schema STORE --rust` prints the declaration
/// for a store, padding included.
///
/// ```compile_fail,E0080
/// recmap::record! {
///     // error: record `Gap`: 2 byte(s) of implicit padding after field
///     // `year` (the next field is aligned past its end); add
///     // `_pad0: [u8; 2]` after it ...
///     pub struct Gap { pub year: u16, pub dep_time: f32 }
/// }
/// ```
///
/// ```
/// recmap::record! {
///     pub struct NoGap { pub year: u16, pub _pad0: [u8; 2], pub dep_time: f32 }
/// }
/// ```
///
/// Field names are the schema's; a keyword is written raw (`r#type`), and
/// the schema name drops the `r#`. The macro refers to the crate as
/// `::recmap`.
#[macro_export]
macro_rules! record {
    // The fields one at a time, in the state
    // `@field HEAD [DONE] (BIT) [ATTRS] NULL REST`: DONE holds the fields
    // read, each `{ [ATTRS] [VIS] NAME [TYPE] NULL }`; BIT is the next
    // validity bit as an expression; NULL is `()` or `(null BIT SETTER?)`.
    (@field $h:tt $done:tt $bit:tt $attrs:tt $null:tt #[nullable] $($rest:tt)*) => {
        $crate::record! { @field $h $done $bit $attrs (null) $($rest)* }
    };
    (@field $h:tt $done:tt $bit:tt $attrs:tt $null:tt
        #[nullable(set = $set:ident)] $($rest:tt)*) => {
        $crate::record! { @field $h $done $bit $attrs (null $set) $($rest)* }
    };
    (@field $h:tt $done:tt $bit:tt $attrs:tt $null:tt #[nullable $($bad:tt)*] $($rest:tt)*) => {
        ::core::compile_error!("record!: write `#[nullable]` or `#[nullable(set = set_name)]`");
    };
    (@field $h:tt $done:tt $bit:tt [$($attr:tt)*] $null:tt #[$m:meta] $($rest:tt)*) => {
        $crate::record! { @field $h $done $bit [$($attr)* #[$m]] $null $($rest)* }
    };
    (@field $h:tt [$($done:tt)*] $bit:tt [$($attr:tt)*] ()
        $fvis:vis $field:ident : $ty:ty $(, $($rest:tt)*)?) => {
        $crate::record! {
            @field $h [$($done)* { [$($attr)*] [$fvis] $field [$ty] () }] $bit [] () $($($rest)*)?
        }
    };
    (@field $h:tt [$($done:tt)*] ($($bit:tt)*) [$($attr:tt)*] (null $($set:ident)?)
        $fvis:vis $field:ident : $ty:ty $(, $($rest:tt)*)?) => {
        $crate::record! {
            @field $h [$($done)* { [$($attr)*] [$fvis] $field [$ty] (null ($($bit)*) $($set)?) }]
            ($($bit)* + 1) [] () $($($rest)*)?
        }
    };
    (@field $h:tt $done:tt $bit:tt [] ()) => {
        $crate::record! { @emit $h $done }
    };

    (@emit [[$($meta:tt)*] [$vis:vis] $name:ident]
        [$({ [$($fattr:tt)*] [$fvis:vis] $field:ident [$fty:ty] $null:tt })*]) => {
        $($meta)*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, ::recmap::bytemuck::Pod, ::recmap::bytemuck::Zeroable)]
        #[bytemuck(crate = "::recmap::bytemuck")]
        $vis struct $name {
            $( $($fattr)* $fvis $field : $fty, )*
        }

        impl ::recmap::Record for $name {
            const FIELDS: &'static [::recmap::FieldDef] = &[
                $( ::recmap::FieldDef {
                    name: ::recmap::__private::unraw(::core::stringify!($field)),
                    ty: <$fty as ::recmap::FieldKind>::TYPE,
                    count: <$fty as ::recmap::FieldKind>::COUNT,
                    offset: ::core::mem::offset_of!($name, $field),
                    nullable: $crate::record!(@bit $null),
                } ),*
            ];
        }

        impl $name {
            $( $crate::record! { @access $name [$fvis] $field [$fty] $null } )*
        }

        $crate::record! { @pad $name $($field [$fty])* }

        const _: () = {
            if let ::core::option::Option::Some(m) = ::recmap::__private::null_problem(
                ::core::stringify!($name),
                <$name as ::recmap::Record>::FIELDS,
            ) {
                ::core::panic!("{}", m.as_str());
            }
        };
    };

    (@bit ()) => { ::core::option::Option::None };
    (@bit (null $bit:tt $($set:ident)?)) => { ::core::option::Option::Some($bit as u16) };

    (@access $name:ident $fvis:tt $field:ident $fty:tt ()) => {};
    (@access $name:ident [$fvis:vis] $field:ident [$fty:ty] (null $bit:tt $($set:ident)?)) => {
        #[doc = ::core::concat!(
            "`", ::core::stringify!($field), "`, or `None` where its validity bit is clear (null)."
        )]
        #[inline]
        #[allow(dead_code, non_snake_case)]
        $fvis fn $field(&self) -> ::core::option::Option<$fty> {
            const AT: usize =
                ::recmap::__private::validity_offset(<$name as ::recmap::Record>::FIELDS);
            if ::recmap::__private::bit(::recmap::bytemuck::bytes_of(self), AT, $bit as u16) {
                ::core::option::Option::Some(self.$field)
            } else {
                ::core::option::Option::None
            }
        }
        $(
            #[doc = ::core::concat!(
                "Sets `", ::core::stringify!($field), "` to `value` and its validity bit, ",
                "or for `None` clears the bit and zeros the value."
            )]
            #[inline]
            #[allow(dead_code, non_snake_case)]
            $fvis fn $set(&mut self, value: ::core::option::Option<$fty>) {
                const AT: usize =
                    ::recmap::__private::validity_offset(<$name as ::recmap::Record>::FIELDS);
                let valid = value.is_some();
                self.$field = match value {
                    ::core::option::Option::Some(v) => v,
                    ::core::option::Option::None => ::recmap::bytemuck::Zeroable::zeroed(),
                };
                ::recmap::__private::set_bit(
                    ::recmap::bytemuck::bytes_of_mut(self), AT, $bit as u16, valid,
                );
            }
        )?
    };

    // One check per consecutive pair of fields, and one after the last.
    (@pad $name:ident) => {};
    (@pad $name:ident $a:ident [$aty:ty]) => {
        const _: () = {
            const GAP: usize = ::core::mem::size_of::<$name>()
                - (::core::mem::offset_of!($name, $a) + ::core::mem::size_of::<$aty>());
            if GAP != 0 {
                const M: ::recmap::__private::Msg = ::recmap::__private::padding_message(
                    ::core::stringify!($name), ::core::stringify!($a), GAP, true,
                );
                ::core::panic!("{}", M.as_str());
            }
        };
    };
    (@pad $name:ident $a:ident [$aty:ty] $b:ident [$bty:ty] $($rest:tt)*) => {
        const _: () = {
            const GAP: usize = ::core::mem::offset_of!($name, $b)
                - (::core::mem::offset_of!($name, $a) + ::core::mem::size_of::<$aty>());
            if GAP != 0 {
                const M: ::recmap::__private::Msg = ::recmap::__private::padding_message(
                    ::core::stringify!($name), ::core::stringify!($a), GAP, false,
                );
                ::core::panic!("{}", M.as_str());
            }
        };
        $crate::record! { @pad $name $b [$bty] $($rest)* }
    };

    // The entry point.
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident { $($body:tt)* }
    ) => {
        $crate::record! { @field [[$(#[$meta])*] [$vis] $name] [] (0) [] () $($body)* }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::record! {
        /// Every v2 type, with nullable fields of several kinds.
        struct Flight {
            year: u16,
            _pad0: [u8; 2],
            #[nullable(set = set_dep_delay)]
            dep_delay: f32,
            at: TimestampS,
            day: Date,
            #[nullable]
            tail: FixedStr<6>,
            #[nullable(set = set_type)]
            r#type: u8,
            ok: Bool,
            _valid: Validity<1>,
            _pad1: [u8; 3],
        }
    }

    crate::record! {
        /// Nine nullable fields: bits 0..=8 need two bytes.
        struct Nine {
            #[nullable(set = set_a)] a: u8,
            #[nullable] b: u8,
            #[nullable] c: u8,
            #[nullable] d: u8,
            #[nullable] e: u8,
            #[nullable] f: u8,
            #[nullable] g: u8,
            #[nullable] h: u8,
            #[nullable(set = set_i)] i: u8,
            v: Validity<2>,
            _pad: [u8; 5],
        }
    }

    #[test]
    fn macro_schema_matches_parse() {
        let want = Schema::parse(
            "year:u16,_pad0:bytes[2],dep_delay:f32?,at:timestamp[s],day:date,tail:str[6]?,\
             type:u8?,ok:bool,_valid:validity[1],_pad1:bytes[3]",
        )
        .unwrap();
        assert_eq!(Flight::schema(), want);
        assert_eq!(Flight::null_bit("dep_delay"), Some(0));
        assert_eq!(Flight::null_bit("type"), Some(2));
        assert_eq!(Flight::null_bit("year"), None);
        assert_eq!(Flight::null_bit("nope"), None);
        let nine = Nine::schema();
        nine.validate().unwrap();
        let bits: Vec<_> = nine.fields.iter().map(|f| f.nullable).collect();
        assert_eq!(bits[..9], (0..9).map(Some).collect::<Vec<_>>()[..]);
        assert_eq!(nine.field("v").unwrap().count, 2);
    }

    #[test]
    fn nullable_accessors_go_through_the_bits() {
        let mut f: Flight = Zeroable::zeroed();
        assert_eq!((f.dep_delay(), f.tail(), f.r#type()), (None, None, None));
        f.set_dep_delay(Some(-2.5));
        f.set_type(Some(7));
        assert_eq!((f.dep_delay(), f.r#type()), (Some(-2.5), Some(7)));
        assert_eq!(f._valid.0, [0b101]);
        assert_eq!(f.tail(), None);
        f.tail = FixedStr::new("N1").unwrap();
        assert_eq!(f.tail(), None, "the value alone does not make it valid");
        f._valid.set_valid(Flight::null_bit("tail").unwrap(), true);
        assert_eq!(f.tail().unwrap().as_str(), "N1");
        f.set_dep_delay(None);
        assert_eq!((f.dep_delay(), f.dep_delay), (None, 0.0));
        assert_eq!(f._valid.0, [0b110]);
        // Byte 1 of a two-byte bitmap.
        let mut n: Nine = Zeroable::zeroed();
        n.set_i(Some(9));
        assert_eq!((n.i(), n.h(), n.v.0), (Some(9), None, [0, 1]));
        n.set_a(Some(1));
        assert_eq!((n.a(), n.v.0), (Some(1), [1, 1]));
        assert!(n.v.is_valid(8) && !n.v.is_valid(7) && !n.v.is_valid(16));
    }

    #[test]
    fn validity_bits_and_debug() {
        let mut v = Validity::<2>::ALL_NULL;
        v.set_valid(0, true);
        v.set_valid(9, true);
        assert_eq!(v.0, [1, 2]);
        v.set_valid(0, false);
        assert_eq!(format!("{v:?}"), "Validity(00000000 00000010)");
        assert!(std::panic::catch_unwind(move || v.set_valid(16, true)).is_err());
    }

    #[test]
    fn temporal_conversions() {
        let t = UNIX_EPOCH + Duration::new(86_400 + 1, 500_000_000);
        assert_eq!(TimestampS::from_system_time(t), Some(TimestampS(86_401)));
        assert_eq!(
            TimestampMs::from_system_time(t),
            Some(TimestampMs(86_401_500))
        );
        assert_eq!(
            TimestampNs::from_system_time(t).unwrap().get(),
            86_401_500_000_000
        );
        assert_eq!(Date::from_system_time(t), Some(Date(1)));
        // Before the epoch rounds toward the past.
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(TimestampS::from_system_time(before), Some(TimestampS(-2)));
        assert_eq!(
            TimestampMs::from_system_time(before),
            Some(TimestampMs(-1500))
        );
        assert_eq!(Date::from_system_time(before), Some(Date(-1)));
        assert_eq!(TimestampMs(-1500).to_system_time(), Some(before));
        assert_eq!(TimestampUs(86_401_500_000).to_system_time(), Some(t));
        assert_eq!(
            Date(1).to_system_time(),
            Some(UNIX_EPOCH + Duration::from_secs(86_400))
        );
        assert_eq!(TimestampUs::UNIT, TimeUnit::Micros);
    }

    #[test]
    fn compile_time_messages() {
        let m = __private::padding_message("Gap", "year", 2, false);
        assert_eq!(
            m.as_str(),
            "record `Gap`: 2 byte(s) of implicit padding after field `year` (the next field is \
             aligned past its end); add `_pad0: [u8; 2]` after it (any name starting with _pad), \
             or reorder the fields"
        );
        let def = |name, ty, nullable| FieldDef {
            name,
            ty,
            count: 1,
            offset: 0,
            nullable,
        };
        let p = |fields: &[FieldDef]| {
            __private::null_problem("R", fields).map(|m| m.as_str().to_string())
        };
        let x = def("x", FieldType::U8, Some(0));
        let v = def("v", FieldType::Validity, None);
        assert_eq!(p(&[x, v]), None);
        assert!(p(&[x])
            .unwrap()
            .contains("no validity field: add `pub _valid: recmap::Validity<1>`"));
        let many: Vec<FieldDef> = (0..9)
            .map(|b| def("x", FieldType::U8, Some(b)))
            .chain([v])
            .collect();
        assert!(
            p(&many).unwrap().contains("too small") && p(&many).unwrap().contains("Validity<2>`")
        );
        assert!(p(&[def("x", FieldType::U8, None), v])
            .unwrap()
            .contains("no #[nullable] field"));
        assert!(p(&[x, v, v])
            .unwrap()
            .contains("more than one validity field"));
        assert!(p(&[x, def("v", FieldType::Validity, Some(1))])
            .unwrap()
            .contains("cannot be #[nullable]"));
        assert_eq!(__private::unraw("r#type"), "type");
        assert_eq!(__private::unraw("rx"), "rx");
        // Numbers of every width, and text cut at 512 bytes.
        let j = __private::join(&[
            __private::Part::N(0),
            __private::Part::S("-"),
            __private::Part::N(usize::MAX),
        ]);
        assert_eq!(j.as_str(), format!("0-{}", usize::MAX));
        let long = "é".repeat(300);
        assert_eq!(
            __private::join(&[__private::Part::S("x"), __private::Part::S(&long)])
                .as_str()
                .len(),
            511
        );
    }
}
