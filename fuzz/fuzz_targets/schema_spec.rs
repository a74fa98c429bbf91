//! Arbitrary text as a schema spec (`name:type,...`), as `recmap create
//! --schema` takes it. A spec that parses must validate, print back to a
//! spec that parses to the same schema, and survive the block codec.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recmap::Schema;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let s = match Schema::parse(text) {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(s.validate().is_ok());
    assert!(!s.fields.is_empty());
    assert!(s.record_size.is_multiple_of(s.record_align));
    let spec = s.spec();
    assert_eq!(Schema::parse(&spec).as_ref(), Ok(&s), "spec {spec:?}");
    let block = s.encode();
    assert_eq!(block.len(), s.encoded_len());
    assert_eq!(Schema::decode(&block).as_ref(), Ok(&s));
    let _ = s.to_string();
});
