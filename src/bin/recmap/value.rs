//! Field values in and out of record bytes: parsing CSV cells (bytes) and
//! JSON values into a record's little-endian layout, and formatting a
//! record's fields back as CSV cells or JSON.
//!
//! Text forms (the same in CSV and, where JSON has no native form, in JSON):
//! integers in decimal; floats as Rust prints them (shortest text that
//! round-trips; exponent form below 1e-5 and from 1e16 up; `NaN`, `inf`,
//! `-inf`); bools `true`/`false` (input also `1`/`0`); `str[N]` as UTF-8 text
//! of at most N bytes without NUL; `bytes[N]` as hex of at most N bytes
//! (zero-padded); arrays like `f32[3]` as `1;2;3` in CSV and `[1,2,3]` in
//! JSON; `timestamp[unit]` and `date` as RFC 3339 text (strings in JSON;
//! see `temporal`). Integer fields also take exact integral floats
//! (`517.0`, `1e3`). A null is a null token in CSV (default: the empty
//! cell, `NA`, `NULL`) and `null` in JSON; it is written back as the empty
//! cell and `null`.
//!
//! This module owns the per-field codecs ([`Codec`], [`FieldCodec`]) and
//! which schemas the CLI can handle ([`unsupported`]). Invariant: a
//! nullable field's parse either stores a value and sets its validity bit
//! or stores zeros and clears it; nothing else touches the bitmap, and
//! padding bytes are never written. The work is split by concern: `parse`
//! turns text and JSON into field bytes, with every error message; `fast`
//! is the CSV loader's hot path for plain numbers, which must give exactly
//! the bytes `parse` gives or decline; `format` writes field bytes back as
//! text and JSON, in forms `parse` reads back to the same bytes;
//! `temporal` owns the date and time forms (through jiff).

mod fast;
mod format;
mod parse;
pub mod temporal;

pub use fast::{load8, FastCell};

use recmap::{FieldType, Schema};
use std::sync::Arc;

/// The CSV cells that mean "missing" by default: the empty field, `NA` and
/// `NULL` (what pandas writes and reads by default, and SQL's name).
pub const DEFAULT_NULL_TOKENS: [&str; 3] = ["", "NA", "NULL"];

/// The least cap on one input row's length ([`Codec::max_row_len`]): 1 MiB,
/// the CSV reader's buffer, which a row of any schema may fill.
pub const MIN_ROW_CAP: usize = 1 << 20;

/// How to read and write one field.
#[derive(Clone, Debug)]
pub struct FieldCodec {
    pub name: String,
    ty: FieldType,
    count: usize,
    offset: usize,
    /// A nullable field's validity bit: (byte offset in the record, mask).
    null: Option<(usize, u8)>,
    /// The cells that mean null (for every field: a non-nullable field
    /// names them in its error).
    null_tokens: Arc<[Box<[u8]>]>,
}

/// Codecs for the data fields of a schema, in offset order: every field
/// but the validity bitmap and explicit padding (`_pad*` bytes), which
/// have no input column and no output value: the loader keeps their bytes
/// zero apart from the validity bits each nullable field sets or clears.
#[derive(Clone, Debug)]
pub struct Codec {
    pub fields: Vec<FieldCodec>,
    pub record_size: usize,
}

/// Why this command cannot read or write records of `schema`: `None`, as
/// every field type has a text and a JSON form (kept as the one place to
/// refuse a type the CLI cannot handle).
pub fn unsupported(schema: &Schema) -> Option<String> {
    let _ = schema;
    None
}

impl Codec {
    /// Codecs with the default null tokens ([`DEFAULT_NULL_TOKENS`]).
    pub fn new(schema: &Schema) -> Codec {
        Codec::with_null_tokens(schema, DEFAULT_NULL_TOKENS.iter().map(|t| t.as_bytes()))
    }

    /// Codecs in which a CSV cell equal to one of `tokens` (exactly, no
    /// trimming) is a null.
    pub fn with_null_tokens<'a>(
        schema: &Schema,
        tokens: impl IntoIterator<Item = &'a [u8]>,
    ) -> Codec {
        let null_tokens: Arc<[Box<[u8]>]> = tokens.into_iter().map(Box::from).collect();
        let fields = schema
            .fields
            .iter()
            .filter(|f| f.ty != FieldType::Validity && !f.is_padding())
            .map(|f| FieldCodec {
                name: f.name.clone(),
                ty: f.ty,
                count: f.count as usize,
                offset: f.offset as usize,
                null: schema.validity_bit(f).map(|(at, mask)| (at as usize, mask)),
                null_tokens: null_tokens.clone(),
            })
            .collect();
        Codec {
            fields,
            record_size: schema.record_size as usize,
        }
    }

    /// The index of the field called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The longest input row (a CSV record or a JSON line, without its
    /// terminator) `load` reads: `max(MIN_ROW_CAP, 4 × the longest text a
    /// valid record has)`. The cap bounds the memory one row takes (an
    /// input without line ends, such as `/dev/zero`, would otherwise be
    /// buffered whole) while no plausible valid row reaches it: the text
    /// width already counts every escape a value can need, and the factor
    /// 4 leaves room for spaces, leading zeros and long spellings of
    /// numbers. The floor keeps narrow schemas from refusing rows over a
    /// few hundred bytes. At most about 400 MiB, as a record is at most
    /// 16 MiB.
    pub fn max_row_len(&self) -> usize {
        let longest_null = self.fields.first().map_or(0, |f| {
            f.null_tokens.iter().map(|t| t.len()).max().unwrap_or(0)
        });
        let width = self.fields.iter().fold(0usize, |w, f| {
            // `"name":` and a separator, then the value or a null token.
            let value = f.text_width().max(longest_null);
            w.saturating_add(f.name.len() + 4).saturating_add(value)
        });
        width.saturating_mul(4).max(MIN_ROW_CAP)
    }

    /// The field names, comma-separated (for messages).
    pub fn names(&self) -> String {
        self.fields
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl FieldCodec {
    /// The longest text of a valid value in CSV or JSON, counting its
    /// escapes: a `str[N]` byte as a JSON `\u00XX` (6 bytes; a CSV quote
    /// doubles to 2), `bytes[N]` as hex, in quotes; a number, bool, date or
    /// date-time at most 40 bytes (`-1.7976931348623157e308`,
    /// `2013-01-01T06:00:00.123456789+05:00`), an array's elements with a
    /// separator each and brackets.
    fn text_width(&self) -> usize {
        match self.ty {
            FieldType::Str => self.count.saturating_mul(6).saturating_add(2),
            FieldType::Bytes | FieldType::Validity => {
                self.count.saturating_mul(2).saturating_add(2)
            }
            _ => self.count.saturating_mul(41).saturating_add(2),
        }
    }

    fn size(&self) -> usize {
        self.ty.elem_size() as usize * self.count
    }

    fn is_array(&self) -> bool {
        self.count != 1 && !self.ty.needs_len()
    }

    /// True if the field may be null.
    pub fn is_nullable(&self) -> bool {
        self.null.is_some()
    }

    /// True if `text` is one of the null tokens.
    #[inline]
    fn is_null_token(&self, text: &[u8]) -> bool {
        self.null_tokens.iter().any(|t| fast::bytes_eq(t, text))
    }

    /// Stores a null: the value's bytes zeroed and the validity bit cleared.
    /// Only for a nullable field.
    pub fn set_null(&self, rec: &mut [u8]) {
        let (at, mask) = self.null.expect("set_null on a nullable field");
        rec[self.offset..self.offset + self.size()].fill(0);
        rec[at] &= !mask;
    }

    /// Marks a nullable field's value present (nothing for other fields).
    #[inline(always)]
    fn set_valid(&self, rec: &mut [u8]) {
        if let Some((at, mask)) = self.null {
            rec[at] |= mask;
        }
    }

    /// False if the field is null in `rec`.
    #[inline]
    pub fn is_present(&self, rec: &[u8]) -> bool {
        self.null.is_none_or(|(at, mask)| rec[at] & mask != 0)
    }
}

/// A codec for the schema `spec` (tests of the submodules).
#[cfg(test)]
fn codec(spec: &str) -> Codec {
    Codec::new(&Schema::parse(spec).unwrap())
}
