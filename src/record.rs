//! Typed records: the [`Record`] trait, the [`record!`](crate::record) macro
//! that declares one in a line, and the field types with a schema meaning
//! ([`Bool`], [`FixedStr`]).

use crate::schema::{Field, FieldType, Schema};
use bytemuck::{Pod, Zeroable};

/// A fixed-size, plain-old-data record with a schema description.
///
/// Implement it with [`record!`](crate::record); a hand-written impl must list
/// every field with its true offset (checked against `size_of` at open).
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
                    nullable: None,
                })
                .collect(),
        }
    }
}

/// A field of a [`Record`], as the macro describes it.
#[derive(Clone, Copy, Debug)]
pub struct FieldDef {
    /// The Rust field's name, which is the schema field's name.
    pub name: &'static str,
    /// The schema type of one element.
    pub ty: FieldType,
    /// Elements in the field: 1 for a scalar, `N` for `[T; N]`.
    pub count: u32,
    /// Byte offset of the field in the record (`offset_of!`).
    pub offset: usize,
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
impl<T: FieldKind, const N: usize> FieldKind for [T; N]
where
    [T; N]: Pod,
{
    const TYPE: FieldType = match T::TYPE {
        FieldType::U8 => FieldType::Bytes,
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
/// Field types: integers, floats, [`Bool`], [`FixedStr<N>`], and arrays of
/// these (`[f32; 3]`, `[u8; 16]` = `bytes[16]`). The struct may not contain
/// implicit padding (bytemuck rejects it at compile time): add explicit
/// `_pad: [u8; N]` fields. The macro refers to the crate as `::recmap`.
#[macro_export]
macro_rules! record {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, ::recmap::bytemuck::Pod, ::recmap::bytemuck::Zeroable)]
        #[bytemuck(crate = "::recmap::bytemuck")]
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field : $ty ),*
        }

        impl ::recmap::Record for $name {
            const FIELDS: &'static [::recmap::FieldDef] = &[
                $( ::recmap::FieldDef {
                    name: stringify!($field),
                    ty: <$ty as ::recmap::FieldKind>::TYPE,
                    count: <$ty as ::recmap::FieldKind>::COUNT,
                    offset: ::core::mem::offset_of!($name, $field),
                } ),*
            ];
        }
    };
}
