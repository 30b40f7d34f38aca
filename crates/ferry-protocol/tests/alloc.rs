//! The as-is and patch routes allocate nothing per batch.
//!
//! A counting global allocator (`stats_alloc`) measures a scan + forward pass over a 1 MiB blob
//! of 16 KiB batches. The blob is promoted to a shared `Bytes` once before measuring (the first
//! clone of a `Bytes` built from a `Vec` allocates its shared header; a fetched response frame
//! pays that once per response, not per batch), and one warm-up pass runs first.
//!
//! This file holds a single test so no other test thread allocates while it measures.

use std::alloc::System;

use bytes::{BufMut, Bytes, BytesMut};
use ferry_protocol::batch::{Attributes, BatchScanner, Entry};
use ferry_protocol::compression::Codec;
use ferry_protocol::record::{Record, encode_parts, producer_header};
use ferry_protocol::transform::{ForwardConfig, Forwarder, Route, TargetProducer};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A blob of `n` batches of about 16 KiB each (64 records of 250-byte values).
fn blob(n: usize, codec: Codec, producer_id: i64) -> Bytes {
    let mut out = BytesMut::new();
    let mut offset = 0i64;
    for _ in 0..n {
        let records: Vec<Record> = (0..64)
            .map(|i| Record {
                offset_delta: i,
                timestamp_delta: i64::from(i),
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(vec![b'a' + (i % 26) as u8; 250])),
                ..Record::default()
            })
            .collect();
        let mut h = producer_header(1_700_000_000_000, Attributes(0).with_codec(codec), &records);
        h.base_offset = offset;
        h.producer_id = producer_id;
        h.producer_epoch = if producer_id >= 0 { 0 } else { -1 };
        h.base_sequence = if producer_id >= 0 { offset as i32 } else { -1 };
        let (p, body) = encode_parts(&h, &records).unwrap();
        out.put_slice(&p);
        out.put_slice(&body);
        offset += 64;
    }
    out.freeze()
}

/// Scans and forwards every batch; returns (routes seen, bytes out).
fn pass(blob: &Bytes, target: TargetProducer) -> (Vec<Route>, usize) {
    let mut routes = Vec::with_capacity(128);
    let mut out = 0;
    let mut f = Forwarder::new(ForwardConfig::default(), 0);
    for entry in BatchScanner::new(blob.clone()) {
        let Entry::V2(batch) = entry.unwrap() else {
            panic!("legacy")
        };
        let fwd = f.forward_batch(&batch, target).unwrap();
        routes.push(fwd.route);
        out += fwd.batch.map_or(0, |b| b.len());
    }
    (routes, out)
}

/// Allocations made by `pass`, after a warm-up pass; `routes` is preallocated outside.
fn measure(blob: &Bytes, target: TargetProducer) -> (usize, Vec<Route>, usize) {
    let _ = pass(blob, target);
    let mut routes = Vec::with_capacity(128);
    let mut out = 0;
    let region = Region::new(GLOBAL);
    let mut f = Forwarder::new(ForwardConfig::default(), 0);
    for entry in BatchScanner::new(blob.clone()) {
        let Ok(Entry::V2(batch)) = entry else {
            panic!("bad entry")
        };
        let Ok(fwd) = f.forward_batch(&batch, target) else {
            panic!("forward failed")
        };
        routes.push(fwd.route);
        out += fwd.batch.map_or(0, |b| b.len());
    }
    let allocations = region.change().allocations;
    (allocations, routes, out)
}

#[test]
fn as_is_and_patch_allocate_nothing_per_batch() {
    for codec in [Codec::None, Codec::Lz4] {
        // As-is: plain source batches to a plain target.
        let plain = blob(64, codec, -1);
        let _promote = plain.clone();
        let (allocs, routes, out) = measure(&plain, TargetProducer::PLAIN);
        assert!(
            routes.len() == 64 && routes.iter().all(|r| *r == Route::AsIs),
            "{routes:?}"
        );
        assert_eq!(out, plain.len());
        assert_eq!(
            allocs, 0,
            "as-is ({codec}) allocated {allocs} times for 64 batches"
        );

        // Patch: source producer fields replaced by ferry's idempotent producer.
        let idem = blob(64, codec, 4242);
        let _promote = idem.clone();
        let (allocs, routes, out) = measure(&idem, TargetProducer::idempotent(7, 0, 0));
        assert!(routes.iter().all(|r| *r == Route::Patch), "{routes:?}");
        assert_eq!(out, idem.len());
        assert_eq!(
            allocs, 0,
            "patch ({codec}) allocated {allocs} times for 64 batches"
        );
    }

    // The counter does see allocations: renumbering (start inside the first batch) decodes.
    let plain = blob(4, Codec::None, -1);
    let _promote = plain.clone();
    let region = Region::new(GLOBAL);
    let mut f = Forwarder::new(ForwardConfig::default(), 1);
    let first = BatchScanner::new(plain.clone()).next().unwrap().unwrap();
    let fwd = f.forward(first, TargetProducer::PLAIN).unwrap();
    assert!(matches!(fwd.route, Route::Renumber(_)));
    assert!(region.change().allocations > 0);
}
