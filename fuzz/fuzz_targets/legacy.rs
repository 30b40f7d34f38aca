//! Legacy magic 0/1 conversion. Input: magic selector, attributes byte, then a value that is
//! wrapped in a message with a valid CRC-32 so the fuzzer reaches the (compressed) inner set.
#![no_main]

use bytes::Bytes;
use ferry_protocol::batch::{BatchScanner, Entry};
use ferry_protocol::legacy::{self, LegacyEntry};
use ferry_protocol::transform::{ForwardConfig, Forwarder, TargetProducer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some((&attributes, value)) = rest.split_first() else {
        return;
    };
    let magic = (selector & 1) as i8;
    let raw = if selector & 2 == 0 {
        legacy::encode_message(
            i64::from(selector),
            magic,
            attributes as i8,
            7,
            None,
            Some(value),
        )
    } else {
        data.to_vec()
    };
    let entries: Vec<LegacyEntry> = BatchScanner::new(Bytes::from(raw))
        .map_while(|e| match e {
            Ok(Entry::Legacy(l)) => Some(l),
            _ => None,
        })
        .collect();
    for e in &entries {
        let _ = e.expand(1 << 20);
    }
    let config = ForwardConfig {
        max_uncompressed_bytes: 1 << 20,
        ..ForwardConfig::default()
    };
    let mut f = Forwarder::new(config, 0);
    if let Ok(fwd) = f.forward_legacy(&entries, TargetProducer::PLAIN) {
        if let Some(out) = fwd.batch {
            assert!(
                out.to_batch()
                    .expect("converted batch")
                    .verify_crc()
                    .is_ok()
            );
        }
    }
});
