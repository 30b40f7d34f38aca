//! Raw records blob: scan, read every header field, verify CRCs, decode, forward.
#![no_main]

use bytes::Bytes;
use ferry_protocol::batch::{BatchScanner, Entry, ScanConfig};
use ferry_protocol::record::{DecodeOptions, DecodedBatch};
use ferry_protocol::transform::{ForwardConfig, Forwarder, TargetProducer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let blob = Bytes::copy_from_slice(data);
    let config = ScanConfig::default().with_max_entry_size(1 << 20);
    let mut total = 0usize;
    let mut scanner = BatchScanner::with_config(blob, config);
    let options = DecodeOptions {
        max_uncompressed_bytes: 1 << 20,
        verify_crc: false,
    };
    let fconfig = ForwardConfig {
        max_uncompressed_bytes: 1 << 20,
        ..ForwardConfig::default()
    };
    let mut forwarder = Forwarder::new(fconfig, 0).read_committed();
    for entry in scanner.by_ref() {
        let Ok(entry) = entry else { break };
        total += match &entry {
            Entry::V2(b) => {
                let _ = (
                    b.header(),
                    b.crc(),
                    b.verify_crc(),
                    b.next_offset(),
                    b.codec(),
                );
                let _ = DecodedBatch::decode(b, &options);
                b.entry_len()
            }
            Entry::Legacy(l) => {
                let _ = l.expand(1 << 20);
                l.as_bytes().len()
            }
            _ => 0,
        };
        let _ = forwarder.forward(entry, TargetProducer::idempotent(1, 0, 0));
    }
    // The scanner never reads past a partial tail.
    assert_eq!(scanner.position(), total);
    assert!(scanner.position() + scanner.truncated_tail() <= data.len());
});
