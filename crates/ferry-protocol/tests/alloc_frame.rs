//! Encoding a request frame allocates its buffer once.
//!
//! A Produce request carries megabytes of record batches; encoding it into a buffer that grows
//! as it goes reallocates (and copies) the records several times. `frame::encode_request`
//! reserves the computed frame size first. Measured with a counting global allocator
//! (`stats_alloc`); this file holds a single test so no other test thread allocates meanwhile.

use std::alloc::System;

use bytes::{Bytes, BytesMut};
use ferry_protocol::api::ApiKey;
use ferry_protocol::frame::encode_request;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn produce_request_frame_is_allocated_once() {
    // 12 partitions × 512 KiB of (opaque) record bytes: 6 MiB, like a full Produce request.
    let records = Bytes::from(vec![7u8; 512 * 1024]);
    let partitions: Vec<PartitionProduceData> = (0..12)
        .map(|p| {
            PartitionProduceData::default()
                .with_index(p)
                .with_records(Some(records.clone()))
        })
        .collect();
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("bench")))
                .with_partition_data(partitions),
        ]);
    for version in [3i16, 9, 11] {
        let mut buf = BytesMut::new();
        let region = Region::new(GLOBAL);
        encode_request(
            &mut buf,
            ApiKey::Produce,
            version,
            1,
            Some("ferry"),
            &request,
        )
        .unwrap();
        let stats = region.change();
        assert!(buf.len() > 12 * 512 * 1024, "v{version}: {}", buf.len());
        assert_eq!(stats.reallocations, 0, "v{version}: {stats:?}");
        // The frame buffer plus small header allocations (the client id), never a second copy.
        assert!(
            stats.bytes_allocated < buf.len() + 4096,
            "v{version}: {} bytes allocated for a {}-byte frame: {stats:?}",
            stats.bytes_allocated,
            buf.len()
        );
    }
}
