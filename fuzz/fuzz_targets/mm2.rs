//! MM2 offset-sync, checkpoint and heartbeat records; whatever decodes re-encodes to a prefix of
//! the input (MM2 readers ignore trailing bytes).
#![no_main]

use ferry_protocol::mm2::{Checkpoint, Heartbeat, OffsetSync};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (key, value) = rest.split_at(at);
    if let Ok(s) = OffsetSync::decode(key, value) {
        assert!(key.starts_with(&s.encode_key().unwrap()));
        assert!(value.starts_with(&s.encode_value()));
    }
    if let Ok(c) = Checkpoint::decode(key, value) {
        assert!(key.starts_with(&c.encode_key().unwrap()));
        assert!(value.starts_with(&c.encode_value().unwrap()));
    }
    if let Ok(h) = Heartbeat::decode(key, value) {
        assert!(key.starts_with(&h.encode_key().unwrap()));
        assert!(value.starts_with(&h.encode_value()));
    }
});
