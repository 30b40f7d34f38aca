//! MM2 heartbeats, and the small record batches ferry writes for its internal topics.
//!
//! Every `emit.heartbeats.interval.seconds` a flow `S->T` writes one record to `heartbeats`
//! (partition 0, single-partition compacted topic) on the target: key `(S, T)`, value
//! `version 0, timestamp` (mm2-compat.md §5.4, §7.4), encoded by ferry-protocol's `mm2` module,
//! so `MirrorClient` and `HeartbeatFormatter` read them.
//!
//! # References
//! - `connect/mirror-client/src/main/java/org/apache/kafka/connect/mirror/Heartbeat.java`,
//!   `connect/mirror/src/main/java/org/apache/kafka/connect/mirror/MirrorHeartbeatTask.java`
//!   (apache/kafka), for the format and cadence only

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use ferry_client::admin::{Admin, NewTopic};
use ferry_client::producer::IdempotentProducer;
use ferry_protocol::batch::{Attributes, DataError};
use ferry_protocol::mm2::Heartbeat;
use ferry_protocol::record::{Record, encode_parts, producer_header};
use tokio::sync::{broadcast, watch};

use crate::events::MirrorEvent;
use crate::policy::ReplicationPolicy;
use crate::settings::FlowSettings;

/// Wall-clock milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Encodes `(key, value)` records as one uncompressed v2 batch with timestamp `timestamp`
/// (`baseOffset` 0, no producer fields: the idempotent producer stamps them).
pub(crate) fn encode_batch(
    records: &[(Vec<u8>, Vec<u8>)],
    timestamp: i64,
) -> Result<Bytes, DataError> {
    let records: Vec<Record> = records
        .iter()
        .zip(0i32..)
        .map(|((k, v), i)| Record {
            offset_delta: i,
            key: Some(Bytes::copy_from_slice(k)),
            value: Some(Bytes::copy_from_slice(v)),
            ..Record::default()
        })
        .collect();
    let header = producer_header(timestamp, Attributes(0), &records);
    let (prefix, body) = encode_parts(&header, &records)?;
    let mut out = BytesMut::with_capacity(prefix.len() + body.len());
    out.put_slice(&prefix);
    out.put_slice(&body);
    Ok(out.freeze())
}

/// Creates a single-partition compacted topic (MM2's `createSinglePartitionCompactedTopic`);
/// an existing topic is fine.
pub(crate) async fn ensure_compacted_topic(
    admin: &Admin,
    name: &str,
    replication_factor: i16,
) -> Result<(), ferry_client::admin::AdminError> {
    let topic = NewTopic::new(name, 1, replication_factor).with_config("cleanup.policy", "compact");
    let results = admin.create_topics(&[topic], false).await?;
    for (_, r) in results {
        match r {
            Ok(_) => tracing::info!(topic = name, "created internal topic"),
            Err(e) if e.is_topic_already_exists() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes heartbeats for one flow until `shutdown` turns true.
pub(crate) async fn run(
    flow: FlowSettings,
    target_admin: Admin,
    producer: Arc<IdempotentProducer>,
    events: broadcast::Sender<MirrorEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let topic = flow.policy.heartbeats_topic().to_owned();
    let report = |e: String| {
        let ev = MirrorEvent::StepFailed {
            flow: flow.name(),
            step: "heartbeats",
            error: e,
        };
        ev.log();
        let _ = events.send(ev);
    };
    let mut created = false;
    let mut tick = tokio::time::interval(flow.heartbeats_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        if !created {
            match ensure_compacted_topic(&target_admin, &topic, flow.heartbeats_replication_factor)
                .await
            {
                Ok(()) => created = true,
                Err(e) => {
                    report(e.to_string());
                    continue;
                }
            }
        }
        let hb = Heartbeat {
            source_cluster_alias: flow.source.clone(),
            target_cluster_alias: flow.target.clone(),
            timestamp: now_ms(),
        };
        let batch = hb
            .encode_key()
            .and_then(|key| encode_batch(&[(key, hb.encode_value())], hb.timestamp));
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                report(e.to_string());
                continue;
            }
        };
        match producer.send(&topic, 0, batch) {
            Ok(handle) => {
                // Heartbeats are fire-and-forget; a failure is reported, never retried by hand.
                let events = events.clone();
                let name = flow.name();
                tokio::spawn(async move {
                    if let Err(e) = tokio::time::timeout(Duration::from_secs(300), handle.wait())
                        .await
                        .map_err(|_| "timed out".to_owned())
                        .and_then(|r| r.map_err(|e| e.to_string()))
                    {
                        let ev = MirrorEvent::StepFailed {
                            flow: name,
                            step: "heartbeats",
                            error: e,
                        };
                        ev.log();
                        let _ = events.send(ev);
                    }
                });
            }
            Err(e) => report(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::batch::RecordBatch;
    use ferry_protocol::record::{DecodeOptions, DecodedBatch};

    #[test]
    fn heartbeat_batch_decodes_to_mm2_heartbeat() {
        let hb = Heartbeat {
            source_cluster_alias: "A".into(),
            target_cluster_alias: "B".into(),
            timestamp: 1_700_000_000_000,
        };
        let bytes = encode_batch(
            &[(hb.encode_key().unwrap(), hb.encode_value())],
            hb.timestamp,
        )
        .unwrap();
        let batch = RecordBatch::new(bytes).unwrap();
        batch.verify_crc().unwrap();
        assert_eq!(batch.records_count(), 1);
        assert_eq!(batch.base_timestamp(), 1_700_000_000_000);
        let decoded = DecodedBatch::decode(&batch, &DecodeOptions::default()).unwrap();
        let r = &decoded.records[0];
        assert_eq!(r.key.as_deref(), Some(&[0, 1, b'A', 0, 1, b'B'][..]));
        let back = Heartbeat::decode(r.key.as_ref().unwrap(), r.value.as_ref().unwrap()).unwrap();
        assert_eq!(back, hb);
    }
}
