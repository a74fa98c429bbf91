//! JSON lines input for `recmap load`: one object per line (blank lines
//! skipped).
//!
//! Invariant: a row is accepted only when its object names every field of
//! the schema (a nullable one may be absent: a null) and no other, and
//! every value converts; otherwise it is rejected with the line number and
//! the field at fault.

use super::{read_line_capped, Loader, Loc};
use crate::common::Failure;
use serde_json::Value;
use std::collections::HashSet;
use std::io::{BufReader, Read};

/// `line` without a UTF-8 byte order mark, which may open the first line
/// of an input (as in CSV), and without spaces around it.
pub(super) fn first_line_text(line: &[u8]) -> &[u8] {
    let text = line.trim_ascii();
    text.strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(text)
        .trim_ascii()
}

/// A JSON object's members in input order, duplicates kept (serde_json's
/// `Map` keeps only the last of a repeated key, silently).
struct Members(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Members, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Members, A::Error> {
                // Grown as members come (never sized by the input's hint).
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry::<String, Value>()? {
                    out.push(kv);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The object on one JSON line: its members, each key once; else the
/// reason, naming a repeated key (as CSV refuses a repeated header column).
pub(super) fn parse_object(text: &[u8]) -> Result<Vec<(String, Value)>, String> {
    let Members(members) =
        serde_json::from_slice::<Members>(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let mut keys = HashSet::with_capacity(members.len());
    for (k, _) in &members {
        if !keys.insert(k.as_str()) {
            return Err(format!("field {k}: appears twice in the object"));
        }
    }
    Ok(members)
}

impl Loader {
    pub(super) fn load_jsonl(
        &mut self,
        input: Box<dyn Read + Send>,
        idx: usize,
    ) -> Result<(), Failure> {
        let name = self.names[idx].clone();
        let mut r = BufReader::with_capacity(1 << 18, input);
        let mut line = Vec::new();
        let mut lineno = 0u64;
        let mut seen = vec![false; self.codec.fields.len()];
        let cap = self.codec.max_row_len();
        loop {
            line.clear();
            let Some(n) =
                read_line_capped(&mut r, &mut line, cap).map_err(|e| Failure::io(&name, e))?
            else {
                // Not set aside by --skip-bad: its end may never come.
                return Err(self.failure(format!(
                    "{name}:{}: row longer than {cap} bytes",
                    lineno + 1
                )));
            };
            if n == 0 {
                break;
            }
            lineno += 1;
            self.bytes += n as u64;
            let text = if lineno == 1 {
                first_line_text(&line)
            } else {
                line.trim_ascii()
            };
            if text.is_empty() || self.skipping() {
                continue;
            }
            let at = Loc {
                input: idx,
                line: lineno,
            };
            if lineno.is_multiple_of(4096) {
                self.progress_at(self.bytes);
            }
            let result = match parse_object(text) {
                Err(e) => Err(e),
                Ok(obj) => {
                    seen.fill(false);
                    let rs = self.rs;
                    let rec = &mut self.buf[self.filled * rs..(self.filled + 1) * rs];
                    let mut res = Ok(());
                    for (k, v) in &obj {
                        let Some(f) = self.codec.index_of(k) else {
                            res = Err(format!(
                                "field {k}: unknown field (the schema has: {})",
                                self.codec.names()
                            ));
                            break;
                        };
                        let fc = &self.codec.fields[f];
                        if let Err(e) = fc.parse_json(v, rec) {
                            res = Err(format!("field {}: {e}", fc.name));
                            break;
                        }
                        seen[f] = true;
                    }
                    if res.is_ok() {
                        // An absent key is a null in a nullable field.
                        for (m, fc) in self.codec.fields.iter().enumerate() {
                            if !seen[m] {
                                if !fc.is_nullable() {
                                    res = Err(format!("field {}: missing field", fc.name));
                                    break;
                                }
                                fc.set_null(rec);
                            }
                        }
                    }
                    res
                }
            };
            match result {
                Ok(()) => self.accept(at)?,
                Err(reason) => {
                    let raw = text.to_vec();
                    self.reject(at, reason, || raw)?
                }
            }
        }
        Ok(())
    }
}
