//! Batches written by the Java client's own `MemoryRecordsBuilder` (kafka-clients 3.9.2) decode
//! exactly, for every magic and codec, including snappy in xerial framing and LZ4 with the
//! magic-0 header-checksum quirk. The fixtures and their content recipe come from
//! `tests/fixtures/GenFixtures.java`.

use bytes::{Bytes, BytesMut};
use ferry_protocol::batch::{BatchScanner, Entry, RecordBatch};
use ferry_protocol::compression::Codec;
use ferry_protocol::legacy::LegacyEntry;
use ferry_protocol::record::{DecodeOptions, DecodedBatch, Header};
use ferry_protocol::transform::{
    ForwardConfig, Forwarder, RenumberReason, Route, SourceOffsets, TargetProducer,
};

fn fixture(name: &str) -> Bytes {
    let path = format!(
        "{}/tests/fixtures/java/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

fn key(i: usize) -> Option<Bytes> {
    (i != 1).then(|| Bytes::from(format!("key-{i}")))
}

fn value(i: usize) -> Option<Bytes> {
    match i {
        2 => None,
        3 => Some(Bytes::new()),
        _ => Some(Bytes::from(format!("value-{i}-").repeat(20))),
    }
}

fn ts(i: usize) -> i64 {
    if i == 4 {
        1_699_999_999_000
    } else {
        1_700_000_000_000 + 1000 * i as i64
    }
}

fn headers(i: usize) -> Vec<Header> {
    if i != 0 {
        return vec![];
    }
    let h = |k: &'static str, v: Option<&'static str>| Header {
        key: Bytes::from_static(k.as_bytes()),
        value: v.map(|v| Bytes::from_static(v.as_bytes())),
    };
    vec![h("h", Some("1")), h("h", None), h("dup", Some("x"))]
}

fn codecs() -> [(Codec, &'static str); 5] {
    [
        (Codec::None, "none"),
        (Codec::Gzip, "gzip"),
        (Codec::Snappy, "snappy"),
        (Codec::Lz4, "lz4"),
        (Codec::Zstd, "zstd"),
    ]
}

fn one_batch(blob: Bytes) -> RecordBatch {
    let mut s = BatchScanner::new(blob);
    let Some(Ok(Entry::V2(b))) = s.next() else {
        panic!("expected one v2 batch")
    };
    assert!(s.next().is_none());
    assert_eq!(s.truncated_tail(), 0);
    b
}

fn check_records(d: &DecodedBatch, indices: &[usize]) {
    assert_eq!(d.records.len(), indices.len());
    for (n, &i) in indices.iter().enumerate() {
        let r = &d.records[n];
        assert_eq!(r.key, key(i), "record {i} key");
        assert_eq!(r.value, value(i), "record {i} value");
        assert_eq!(r.headers, headers(i), "record {i} headers");
        assert_eq!(r.attributes, 0);
        assert_eq!(d.timestamp(n), Some(ts(i)), "record {i} timestamp");
    }
}

#[test]
fn java_v2_batches_decode_exactly() {
    for (codec, name) in codecs() {
        let batch = one_batch(fixture(&format!("v2-{name}")));
        batch.verify_crc().unwrap();
        assert_eq!(batch.codec().unwrap(), codec);
        assert_eq!(batch.base_offset(), 100);
        assert_eq!(batch.partition_leader_epoch(), 9);
        assert_eq!(batch.producer_id(), 77);
        assert_eq!(batch.producer_epoch(), 3);
        assert_eq!(batch.base_sequence(), 11);
        assert_eq!(batch.records_count(), 5);
        assert_eq!(batch.last_offset_delta(), 4);
        assert_eq!(batch.base_timestamp(), ts(0));
        assert_eq!(batch.max_timestamp(), ts(3));
        let d = DecodedBatch::decode(&batch, &DecodeOptions::default()).unwrap();
        check_records(&d, &[0, 1, 2, 3, 4]);
        assert!(d.records[4].timestamp_delta < 0);

        // Re-encoding reproduces the Java bytes exactly when uncompressed, and the same content
        // otherwise.
        let mut out = BytesMut::new();
        d.encode(&mut out).unwrap();
        if codec == Codec::None {
            assert_eq!(
                &out[..],
                &batch.as_bytes()[..],
                "ferry encoder == Java encoder"
            );
        }
        let again = RecordBatch::new(out.freeze()).unwrap();
        assert_eq!(
            DecodedBatch::decode(&again, &DecodeOptions::default()).unwrap(),
            d
        );

        // Patch to ferry's producer: zero-copy body, valid CRC, same records.
        let mut f = Forwarder::new(ForwardConfig::default(), 100);
        let fwd = f
            .forward_batch(&batch, TargetProducer::idempotent(1, 0, 0))
            .unwrap();
        assert_eq!(fwd.route, Route::Patch);
        let out = fwd.batch.unwrap().to_batch().unwrap();
        out.verify_crc().unwrap();
        assert_eq!(out.producer_id(), 1);
        let d2 = DecodedBatch::decode(&out, &DecodeOptions::default()).unwrap();
        assert_eq!(d2.records, d.records);
    }
}

#[test]
fn java_compacted_batches_are_renumbered() {
    for (codec, name) in codecs() {
        let batch = one_batch(fixture(&format!("v2-holes-{name}")));
        batch.verify_crc().unwrap();
        assert_eq!(batch.records_count(), 3);
        assert_eq!(batch.last_offset_delta(), 5);
        let mut f = Forwarder::new(ForwardConfig::default(), 100);
        let fwd = f
            .forward_batch(&batch, TargetProducer::idempotent(1, 0, 40))
            .unwrap();
        assert_eq!(
            fwd.route,
            Route::Renumber(RenumberReason::OffsetHoles),
            "{name}"
        );
        assert_eq!(
            fwd.source_offsets,
            SourceOffsets::Listed(vec![100, 102, 105])
        );
        assert_eq!(fwd.next_offset, 106);
        let out = fwd.batch.unwrap().to_batch().unwrap();
        out.verify_crc().unwrap();
        assert_eq!(out.codec().unwrap(), codec);
        assert_eq!(out.last_offset_delta(), 2);
        assert_eq!(out.base_sequence(), 40);
        let d = DecodedBatch::decode(&out, &DecodeOptions::default()).unwrap();
        check_records(&d, &[0, 1, 2]);
        let deltas: Vec<i32> = d.records.iter().map(|r| r.offset_delta).collect();
        assert_eq!(deltas, [0, 1, 2]);
    }
}

#[test]
fn java_legacy_message_sets_convert_exactly() {
    for magic in [0, 1] {
        for (codec, name) in codecs() {
            if codec == Codec::Zstd {
                continue;
            }
            let entries: Vec<LegacyEntry> = BatchScanner::new(fixture(&format!("v{magic}-{name}")))
                .map(|e| match e.unwrap() {
                    Entry::Legacy(l) => l,
                    other => panic!("{other:?}"),
                })
                .collect();
            let expect_entries = if codec == Codec::None { 5 } else { 1 };
            assert_eq!(entries.len(), expect_entries, "v{magic} {name}");
            let offsets: Vec<i64> = entries
                .iter()
                .flat_map(|e| e.expand(1 << 20).unwrap())
                .map(|r| r.offset)
                .collect();
            assert_eq!(offsets, [100, 101, 102, 103, 104], "v{magic} {name}");

            let mut f = Forwarder::new(ForwardConfig::default(), 100);
            let fwd = f.forward_legacy(&entries, TargetProducer::PLAIN).unwrap();
            assert_eq!(fwd.route, Route::Convert);
            assert_eq!(fwd.next_offset, 105);
            let out = fwd.batch.unwrap().to_batch().unwrap();
            out.verify_crc().unwrap();
            assert_eq!(out.codec().unwrap(), codec);
            let d = DecodedBatch::decode(&out, &DecodeOptions::default()).unwrap();
            assert_eq!(d.records.len(), 5);
            for (i, r) in d.records.iter().enumerate() {
                assert_eq!(r.key, key(i));
                assert_eq!(r.value, value(i));
                let want = if magic == 0 { -1 } else { ts(i) };
                assert_eq!(d.timestamp(i), Some(want), "v{magic} {name} record {i}");
            }
        }
    }
}

#[test]
fn java_lz4_magic0_carries_the_broken_checksum() {
    let blob = fixture("v0-lz4");
    // Wrapper value starts right after key length (−1) and value length: the LZ4 frame header
    // 04 22 4D 18 60 40 then HC 0x1A, the KAFKA-1493 quirk.
    let at = blob
        .windows(4)
        .position(|w| w == [0x04, 0x22, 0x4d, 0x18])
        .unwrap();
    assert_eq!(&blob[at + 4..at + 7], &[0x60, 0x40, 0x1a]);
    let v1 = fixture("v1-lz4");
    let at = v1
        .windows(4)
        .position(|w| w == [0x04, 0x22, 0x4d, 0x18])
        .unwrap();
    assert_eq!(&v1[at + 4..at + 7], &[0x60, 0x40, 0x82]);
}

/// A batch the log cleaner marked with a delete horizon (KIP-534): `baseTimestamp` holds the
/// horizon and Java's reader reports each record's timestamp as `baseTimestamp + delta`
/// (recorded by the generator in the `.txt`). Patching and renumbering must keep exactly those.
#[test]
fn java_delete_horizon_batches_keep_record_timestamps() {
    for name in ["none", "gzip"] {
        let txt = std::fs::read_to_string(format!(
            "{}/tests/fixtures/java/v2-horizon-{name}.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut lines = txt.lines();
        assert_eq!(lines.next(), Some("deleteHorizon=1700000100000"));
        let java_ts: Vec<i64> = lines.map(|l| l.parse().unwrap()).collect();
        assert_eq!(java_ts, [ts(0), ts(1), ts(2), ts(3)]);

        let batch = one_batch(fixture(&format!("v2-horizon-{name}")));
        batch.verify_crc().unwrap();
        assert!(batch.attributes().has_delete_horizon());
        assert_eq!(batch.base_timestamp(), 1_700_000_100_000);
        let d = DecodedBatch::decode(&batch, &DecodeOptions::default()).unwrap();
        let ours: Vec<i64> = (0..4).map(|i| d.timestamp(i).unwrap()).collect();
        assert_eq!(ours, java_ts, "ferry reads what Java reads");

        // Patch (plain target: only bit 6 differs).
        let mut f = Forwarder::new(ForwardConfig::default(), 100);
        let fwd = f.forward_batch(&batch, TargetProducer::PLAIN).unwrap();
        assert_eq!(fwd.route, Route::Patch);
        let out = fwd.batch.unwrap().to_batch().unwrap();
        out.verify_crc().unwrap();
        assert!(!out.attributes().has_delete_horizon());
        let p = DecodedBatch::decode(&out, &DecodeOptions::default()).unwrap();
        let patched: Vec<i64> = (0..4).map(|i| p.timestamp(i).unwrap()).collect();
        assert_eq!(patched, java_ts, "{name}: patch keeps timestamps");

        // Renumber (resume at 102).
        let mut f = Forwarder::new(ForwardConfig::default(), 102);
        let fwd = f.forward_batch(&batch, TargetProducer::PLAIN).unwrap();
        assert_eq!(fwd.route, Route::Renumber(RenumberReason::StartInsideBatch));
        let out = fwd.batch.unwrap().to_batch().unwrap();
        assert!(!out.attributes().has_delete_horizon());
        let r = DecodedBatch::decode(&out, &DecodeOptions::default()).unwrap();
        let renumbered: Vec<i64> = (0..2).map(|i| r.timestamp(i).unwrap()).collect();
        assert_eq!(
            renumbered,
            java_ts[2..],
            "{name}: renumber keeps timestamps"
        );
        assert_eq!(out.max_timestamp(), ts(3));
    }
}
