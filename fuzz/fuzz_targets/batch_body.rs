//! A v2 batch whose length and CRC are already right, so the fuzzer reaches the records (and the
//! decompressors) behind the checksum. Input: 40 header bytes (attributes..recordsCount) + body.
#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use ferry_protocol::batch::RecordBatch;
use ferry_protocol::record::{DecodeOptions, DecodedBatch};
use ferry_protocol::transform::{ForwardConfig, Forwarder, TargetProducer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 40 {
        return;
    }
    let mut raw = BytesMut::with_capacity(21 + data.len());
    raw.put_i64(0);
    raw.put_i32((9 + data.len()) as i32);
    raw.put_i32(-1);
    raw.put_u8(2);
    raw.put_u32(crc32c_of(data));
    raw.put_slice(data);
    let Ok(batch) = RecordBatch::new(raw.freeze()) else {
        return;
    };
    assert!(batch.verify_crc().is_ok());
    let options = DecodeOptions {
        max_uncompressed_bytes: 1 << 20,
        verify_crc: true,
    };
    if let Ok(decoded) = DecodedBatch::decode(&batch, &options) {
        // Whatever decodes re-encodes and decodes to the same thing.
        let mut out = BytesMut::new();
        if decoded.encode(&mut out).is_ok() {
            let again = RecordBatch::new(out.freeze()).expect("own encoding is a batch");
            let back = DecodedBatch::decode(&again, &options).expect("own encoding decodes");
            assert_eq!(back, decoded);
        }
    }
    let config = ForwardConfig {
        max_uncompressed_bytes: 1 << 20,
        ..ForwardConfig::default()
    };
    let mut f = Forwarder::new(config, 0);
    if let Ok(fwd) = f.forward_batch(&batch, TargetProducer::idempotent(5, 1, 0)) {
        if let Some(out) = fwd.batch {
            let b = out.to_batch().expect("outgoing batch is a batch");
            assert!(b.verify_crc().is_ok(), "outgoing CRC must be valid");
        }
    }
    let _ = Bytes::new();
});

fn crc32c_of(data: &[u8]) -> u32 {
    // CRC over attributes..end, the same bytes RecordBatch::compute_crc covers.
    let mut raw = vec![0u8; 21];
    raw[8..12].copy_from_slice(&((9 + data.len()) as i32).to_be_bytes());
    raw[16] = 2;
    raw.extend_from_slice(data);
    RecordBatch::new(Bytes::from(raw))
        .map(|b| b.compute_crc())
        .unwrap_or(0)
}
