//! ferry-protocol data-path throughput: scan + as-is / patch over 1 MiB blobs of 16 KiB
//! batches (CRC-bound), renumber per codec, decode and encode per codec.
//!
//! `cargo bench --bench protocol -- --quick` (or `--measurement-time 3`).

use std::hint::black_box;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferry_protocol::batch::{Attributes, BatchScanner, Entry, RecordBatch};
use ferry_protocol::compression::Codec;
use ferry_protocol::record::{DecodeOptions, DecodedBatch, Record, encode_parts, producer_header};
use ferry_protocol::transform::{ForwardConfig, Forwarder, TargetProducer};

/// Records of about 16 KiB in total: 64 records with 240-byte semi-random values.
fn records(holes: bool) -> Vec<Record> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    (0..64)
        .map(|i| {
            let value: Vec<u8> = (0..240)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b'a' + (seed % 16) as u8
                })
                .collect();
            Record {
                offset_delta: if holes { i * 2 } else { i },
                timestamp_delta: i64::from(i),
                key: Some(Bytes::from(format!("key-{i:06}"))),
                value: Some(Bytes::from(value)),
                ..Record::default()
            }
        })
        .collect()
}

fn batch_bytes(codec: Codec, base_offset: i64, producer_id: i64, holes: bool) -> Bytes {
    let recs = records(holes);
    let mut h = producer_header(1_700_000_000_000, Attributes(0).with_codec(codec), &recs);
    h.base_offset = base_offset;
    h.producer_id = producer_id;
    h.producer_epoch = if producer_id >= 0 { 0 } else { -1 };
    h.base_sequence = if producer_id >= 0 { 0 } else { -1 };
    let (p, body) = encode_parts(&h, &recs).unwrap();
    let mut out = BytesMut::new();
    out.put_slice(&p);
    out.put_slice(&body);
    out.freeze()
}

/// A blob of about 1 MiB of 16 KiB uncompressed batches.
fn blob(producer_id: i64) -> Bytes {
    let mut out = BytesMut::new();
    let mut offset = 0;
    while out.len() < (1 << 20) - 17_000 {
        out.put_slice(&batch_bytes(Codec::None, offset, producer_id, false));
        offset += 64;
    }
    out.freeze()
}

fn forward_all(blob: &Bytes, target: TargetProducer) -> usize {
    let mut f = Forwarder::new(ForwardConfig::default(), 0);
    let mut n = 0;
    for entry in BatchScanner::new(blob.clone()) {
        let Ok(Entry::V2(b)) = entry else {
            unreachable!()
        };
        let fwd = f.forward_batch(&b, target).unwrap();
        n += fwd.batch.map_or(0, |o| o.len());
    }
    n
}

fn scan_and_forward(c: &mut Criterion) {
    let plain = blob(-1);
    let idem = blob(4242);
    let mut g = c.benchmark_group("forward_1MiB_of_16KiB_batches");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("scan", |b| {
        b.iter(|| BatchScanner::new(black_box(plain.clone())).count())
    });
    g.bench_function("scan+as_is", |b| {
        b.iter(|| forward_all(black_box(&plain), TargetProducer::PLAIN))
    });
    g.bench_function("scan+patch(verify+combine CRC)", |b| {
        b.iter(|| forward_all(black_box(&idem), TargetProducer::idempotent(7, 0, 0)))
    });
    g.bench_function("scan+verify_crc", |b| {
        b.iter(|| {
            BatchScanner::new(black_box(plain.clone()))
                .map(|e| match e {
                    Ok(Entry::V2(b)) => b.verify_crc().is_ok(),
                    _ => false,
                })
                .count()
        })
    });
    g.finish();
}

fn per_codec(c: &mut Criterion) {
    let plain_len: usize = records(false).iter().map(Record::encoded_len).sum();
    for (group, holes) in [("renumber", true), ("decode", false), ("encode", false)] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Bytes(plain_len as u64));
        for codec in Codec::ALL {
            let bytes = batch_bytes(codec, 0, -1, holes);
            let batch = RecordBatch::new(bytes).unwrap();
            let opts = DecodeOptions::default();
            match group {
                "renumber" => {
                    g.bench_with_input(BenchmarkId::from_parameter(codec), &batch, |b, batch| {
                        b.iter(|| {
                            let mut f = Forwarder::new(ForwardConfig::default(), 0);
                            f.forward_batch(black_box(batch), TargetProducer::PLAIN)
                                .unwrap()
                        })
                    })
                }
                "decode" => {
                    g.bench_with_input(BenchmarkId::from_parameter(codec), &batch, |b, batch| {
                        b.iter(|| DecodedBatch::decode(black_box(batch), &opts).unwrap())
                    })
                }
                _ => {
                    let decoded = DecodedBatch::decode(&batch, &opts).unwrap();
                    g.bench_with_input(BenchmarkId::from_parameter(codec), &decoded, |b, d| {
                        b.iter(|| black_box(d).encode_parts().unwrap())
                    })
                }
            };
        }
        g.finish();
    }
}

criterion_group!(benches, scan_and_forward, per_codec);
criterion_main!(benches);
