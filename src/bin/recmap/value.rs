//! Field values in and out of record bytes: parsing CSV cells (bytes) and
//! JSON values into a record's little-endian layout, and formatting a
//! record's fields back as CSV cells or JSON.
//!
//! Text forms (the same in CSV and, where JSON has no native form, in JSON):
//! integers in decimal; floats as Rust prints them (shortest text that
//! round-trips; exponent form below 1e-5 and from 1e16 up; `NaN`, `inf`,
//! `-inf`); bools `true`/`false` (input also `1`/`0`); `str[N]` as UTF-8 text
//! of at most N bytes without NUL; `bytes[N]` as hex of at most N bytes
//! (zero-padded); arrays like `f32[3]` as `1;2;3` in CSV and `[1,2,3]` in JSON.
//!
//! This module owns the per-field codecs ([`Codec`], [`FieldCodec`]) and
//! which schemas the CLI can handle ([`unsupported`]). The work is split by
//! concern: `parse` turns text and JSON into field bytes, with every error
//! message; `fast` is the CSV loader's hot path for plain numbers, which
//! must give exactly the bytes `parse` gives or decline; `format` writes
//! field bytes back as text and JSON, in forms `parse` reads back to the
//! same bytes.

mod fast;
mod format;
mod parse;
pub mod temporal;

pub use fast::{load8, FastCell};

use recmap::{FieldType, Schema};

/// How to read and write one field.
#[derive(Clone, Debug)]
pub struct FieldCodec {
    pub name: String,
    ty: FieldType,
    count: usize,
    offset: usize,
}

/// Codecs for every field of a schema, in offset order.
#[derive(Clone, Debug)]
pub struct Codec {
    pub fields: Vec<FieldCodec>,
    pub record_size: usize,
}

/// Why this command cannot read or write records of `schema` yet: the
/// format-version-2 additions (nullable fields, `timestamp[...]`, `date`,
/// `validity[N]`) have no CLI value forms so far.
pub fn unsupported(schema: &Schema) -> Option<String> {
    schema.fields.iter().find_map(|f| {
        if f.is_nullable() {
            Some(format!(
                "field {:?}: nullable fields ({}) are not supported by this command yet",
                f.name,
                f.type_spec()
            ))
        } else if f.ty.min_format_version() > 1 {
            Some(format!("field {:?}: {}", f.name, unsupported_type(f.ty)))
        } else {
            None
        }
    })
}

fn unsupported_type(ty: FieldType) -> String {
    format!("type {} is not supported by this command yet", ty.name())
}

impl Codec {
    pub fn new(schema: &Schema) -> Codec {
        let fields = schema
            .fields
            .iter()
            .map(|f| FieldCodec {
                name: f.name.clone(),
                ty: f.ty,
                count: f.count as usize,
                offset: f.offset as usize,
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
    fn size(&self) -> usize {
        self.ty.elem_size() as usize * self.count
    }

    fn is_array(&self) -> bool {
        self.count != 1 && !self.ty.needs_len()
    }
}

/// A codec for the schema `spec` (tests of the submodules).
#[cfg(test)]
fn codec(spec: &str) -> Codec {
    Codec::new(&Schema::parse(spec).unwrap())
}
