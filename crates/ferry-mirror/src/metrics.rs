//! Metric names and recording, through the [`metrics`] facade: the embedding program installs
//! a recorder (the `ferry` binary installs the Prometheus exporter behind `--metrics-addr`);
//! without one every call here is a no-op.
//!
//! # Names
//!
//! MM2's metrics (mm2-compat.md §7.5, `MirrorSourceMetrics.java`, `MirrorCheckpointMetrics.java`)
//! are JMX MBeans such as
//! `kafka.connect.mirror:type=MirrorSourceConnector,source=A,target=B,topic=A.orders,partition=0`
//! with attributes `record-count`, `byte-count`, `record-age-ms[-min|-max|-avg]`,
//! `replication-latency-ms[-min|-max|-avg]`, and `checkpoint-latency-ms[...]` on
//! `type=MirrorCheckpointConnector`. Prometheus users see them through the JMX exporter, and
//! the rules most deployments use (Strimzi's `mirror-maker-2` metrics example) name them
//! `kafka_connect_mirror_source_connector_<attribute with - as _>` with labels `source`,
//! `target`, `topic`, `partition`. ferry emits **those Prometheus names and labels**, so
//! existing MM2 dashboards and alerts keep working after a switch; the `topic` label is the
//! **target** (remote) topic, as in MM2. Histograms are rendered by the exporter as summaries:
//! MM2's `-min` is `{quantile="0"}`, `-max` is `{quantile="1"}`, and `-avg` is
//! `_sum / _count`.
//!
//! Differences, stated in each metric's help text:
//! - `byte_count` counts record-batch bytes acknowledged by the target (ferry does not
//!   decompress batches to count value bytes; MM2 counts value bytes only).
//! - `record_age_ms` and `replication_latency_ms` are recorded once per batch from its
//!   `maxTimestamp` (the newest record), not once per record.
//!
//! What MM2 lacks gets `ferry_` names: replication lag in records and seconds per partition
//! (KIP-971 proposed the former and was not adopted), batches by forwarding route, fetch and
//! produce latency, retries and errors by kind, bytes in flight.
//!
//! # Cost
//! Recording happens per batch or per fetch, never per record; each call looks its series up
//! by labels in the recorder (a hash of a few short strings).
//!
//! # References
//! - mm2-compat.md §7.5; KIP-911 (`source` tag), KIP-971 (record lag), KIP-1280 (future names)

use std::time::Duration;

use ferry_protocol::transform::Route;
use metrics::{
    Label, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use crate::events::MirrorEvent;

/// MM2 `record-count`: records acknowledged by the target, per partition.
pub const RECORD_COUNT: &str = "kafka_connect_mirror_source_connector_record_count";
/// MM2 `byte-count` (ferry: batch bytes, see the module docs), per partition.
pub const BYTE_COUNT: &str = "kafka_connect_mirror_source_connector_byte_count";
/// MM2 `record-age-ms`: now − record timestamp when fetched, per partition.
pub const RECORD_AGE_MS: &str = "kafka_connect_mirror_source_connector_record_age_ms";
/// MM2 `replication-latency-ms`: now − record timestamp when the target acknowledged.
pub const REPLICATION_LATENCY_MS: &str =
    "kafka_connect_mirror_source_connector_replication_latency_ms";
/// MM2 `checkpoint-latency-ms`, per group and partition.
pub const CHECKPOINT_LATENCY_MS: &str =
    "kafka_connect_mirror_checkpoint_connector_checkpoint_latency_ms";
/// Source records not yet replicated, per partition.
pub const LAG_RECORDS: &str = "ferry_replication_lag_records";
/// Seconds a partition has been behind (0 when caught up), per partition.
pub const LAG_SECONDS: &str = "ferry_replication_lag_seconds";
/// Batches by forwarding route (`as_is`, `patch`, `renumber`, `convert`, `dropped`), per flow.
pub const BATCHES: &str = "ferry_batches_total";
/// Fetch request latency, per flow.
pub const FETCH_LATENCY: &str = "ferry_fetch_latency_seconds";
/// Produce latency (batch handed to the producer → acknowledged), per flow.
pub const PRODUCE_LATENCY: &str = "ferry_produce_latency_seconds";
/// Retries by operation, per flow.
pub const RETRIES: &str = "ferry_retries_total";
/// Errors and position-loss events by kind, per flow.
pub const ERRORS: &str = "ferry_errors_total";
/// Bytes of batches awaiting acknowledgement, all flows.
pub const IN_FLIGHT_BYTES: &str = "ferry_in_flight_bytes";

/// Registers the help text and units of every metric with the installed recorder. Call once
/// after installing a recorder (the engine calls it when it starts); harmless to repeat.
pub fn describe() {
    describe_counter!(
        RECORD_COUNT,
        Unit::Count,
        "MM2 record-count: records replicated (acknowledged by the target)"
    );
    describe_counter!(
        BYTE_COUNT,
        Unit::Bytes,
        "MM2 byte-count; ferry counts record-batch bytes acknowledged by the target (MM2: value bytes)"
    );
    describe_histogram!(
        RECORD_AGE_MS,
        Unit::Milliseconds,
        "MM2 record-age-ms: now minus the batch's newest record timestamp when fetched (quantile 0 = -min, 1 = -max)"
    );
    describe_histogram!(
        REPLICATION_LATENCY_MS,
        Unit::Milliseconds,
        "MM2 replication-latency-ms: now minus the batch's newest record timestamp when the target acknowledged it"
    );
    describe_histogram!(
        CHECKPOINT_LATENCY_MS,
        Unit::Milliseconds,
        "MM2 checkpoint-latency-ms: checkpoint creation to acknowledgement"
    );
    describe_gauge!(
        LAG_RECORDS,
        Unit::Count,
        "Source records not yet replicated (source end offset minus replicated position)"
    );
    describe_gauge!(
        LAG_SECONDS,
        Unit::Seconds,
        "Seconds since the partition last had zero lag (0 when caught up)"
    );
    describe_counter!(
        BATCHES,
        Unit::Count,
        "Source batches by forwarding route: as_is, patch, renumber, convert, dropped"
    );
    describe_histogram!(
        FETCH_LATENCY,
        Unit::Seconds,
        "Latency of one fetch round (all leader brokers of the flow)"
    );
    describe_histogram!(
        PRODUCE_LATENCY,
        Unit::Seconds,
        "Batch handed to the producer until the target acknowledged it"
    );
    describe_counter!(RETRIES, Unit::Count, "Retries by operation");
    describe_counter!(
        ERRORS,
        Unit::Count,
        "Errors and position-loss events by kind"
    );
    describe_gauge!(
        IN_FLIGHT_BYTES,
        Unit::Bytes,
        "Bytes of batches awaiting acknowledgement, all flows"
    );
}

/// `(source, target)` aliases of a flow named `source->target`.
fn aliases(flow: &str) -> (String, String) {
    match flow.split_once("->") {
        Some((s, t)) => (s.to_owned(), t.to_owned()),
        None => (flow.to_owned(), String::new()),
    }
}

/// Labels of a per-partition series: MM2's `source`, `target`, `topic` (target topic),
/// `partition`.
fn partition_labels(flow: &str, target_topic: &str, partition: i32) -> Vec<Label> {
    let mut labels = flow_labels(flow);
    labels.push(Label::new("topic", target_topic.to_owned()));
    labels.push(Label::new("partition", partition.to_string()));
    labels
}

fn flow_labels(flow: &str) -> Vec<Label> {
    let (source, target) = aliases(flow);
    vec![Label::new("source", source), Label::new("target", target)]
}

fn with(mut labels: Vec<Label>, key: &'static str, value: String) -> Vec<Label> {
    labels.push(Label::new(key, value));
    labels
}

/// The label value of a forwarding route.
pub fn route_label(route: Route) -> &'static str {
    match route {
        Route::AsIs => "as_is",
        Route::Patch => "patch",
        Route::Renumber(_) => "renumber",
        Route::Convert => "convert",
        _ => "dropped",
    }
}

/// A batch left the forwarder.
pub(crate) fn record_route(flow: &str, route: Route) {
    counter!(
        BATCHES,
        with(flow_labels(flow), "route", route_label(route).to_owned())
    )
    .increment(1);
}

/// A batch was fetched; `max_timestamp` is its newest record's timestamp (ms).
pub(crate) fn record_fetched_batch(
    flow: &str,
    target_topic: &str,
    partition: i32,
    max_timestamp: i64,
    now_ms: i64,
) {
    if max_timestamp >= 0 {
        histogram!(
            RECORD_AGE_MS,
            partition_labels(flow, target_topic, partition)
        )
        .record(age_ms(now_ms, max_timestamp));
    }
}

/// `now − ts` in ms, never negative (clocks of producers may run ahead).
#[allow(clippy::cast_precision_loss)]
fn age_ms(now_ms: i64, ts: i64) -> f64 {
    now_ms.saturating_sub(ts).max(0) as f64
}

/// What the acknowledgement side needs to record about a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchMeta {
    /// When the batch was handed to the producer.
    pub sent: std::time::Instant,
    /// The batch's `maxTimestamp` (−1 if none).
    pub max_timestamp: i64,
}

/// The target acknowledged a batch.
pub(crate) fn record_acked(
    flow: &str,
    target_topic: &str,
    partition: i32,
    records: u64,
    bytes: u64,
    meta: BatchMeta,
    now_ms: i64,
) {
    let labels = partition_labels(flow, target_topic, partition);
    counter!(RECORD_COUNT, labels.clone()).increment(records);
    counter!(BYTE_COUNT, labels.clone()).increment(bytes);
    if meta.max_timestamp >= 0 {
        histogram!(REPLICATION_LATENCY_MS, labels).record(age_ms(now_ms, meta.max_timestamp));
    }
    histogram!(PRODUCE_LATENCY, flow_labels(flow)).record(meta.sent.elapsed().as_secs_f64());
}

/// One fetch round took `elapsed`.
pub(crate) fn record_fetch(flow: &str, elapsed: Duration) {
    histogram!(FETCH_LATENCY, flow_labels(flow)).record(elapsed.as_secs_f64());
}

/// An operation will be retried.
pub(crate) fn record_retry(flow: &str, operation: &'static str) {
    counter!(
        RETRIES,
        with(flow_labels(flow), "operation", operation.to_owned())
    )
    .increment(1);
}

/// An error of `kind` happened.
pub(crate) fn record_error(flow: &str, kind: &str) {
    counter!(ERRORS, with(flow_labels(flow), "kind", kind.to_owned())).increment(1);
}

/// The error kind of an event, if it reports one.
pub fn event_error_kind(event: &MirrorEvent) -> Option<String> {
    Some(match event {
        MirrorEvent::OffsetOutOfRange { .. } => "offset_out_of_range".to_owned(),
        MirrorEvent::SourceTruncated { .. } => "source_truncated".to_owned(),
        MirrorEvent::TopicRecreated { .. } => "topic_recreated".to_owned(),
        MirrorEvent::CorruptBatch { .. } => "corrupt_batch".to_owned(),
        MirrorEvent::RecordTooLarge { .. } => "record_too_large".to_owned(),
        MirrorEvent::PartitionStopped { .. } => "partition_stopped".to_owned(),
        MirrorEvent::ProducerEpochBumped { .. } => "producer_epoch_bumped".to_owned(),
        MirrorEvent::StepFailed { step, .. } => format!("{}_failed", step.replace(' ', "_")),
        _ => return None,
    })
}

/// Counts an event that reports an error (called for every event the engine emits).
pub(crate) fn record_event(flow: &str, event: &MirrorEvent) {
    if let Some(kind) = event_error_kind(event) {
        record_error(flow, &kind);
    }
}

/// Sets a partition's lag gauges.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn record_lag(
    flow: &str,
    target_topic: &str,
    partition: i32,
    lag_records: i64,
    lag_seconds: f64,
) {
    if target_topic.is_empty() {
        return;
    }
    let labels = partition_labels(flow, target_topic, partition);
    gauge!(LAG_RECORDS, labels.clone()).set(lag_records as f64);
    gauge!(LAG_SECONDS, labels).set(lag_seconds);
}

/// Sets the in-flight bytes gauge.
#[allow(clippy::cast_precision_loss)]
pub fn record_in_flight(bytes: usize) {
    gauge!(IN_FLIGHT_BYTES).set(bytes as f64);
}

/// A checkpoint for `group` on the target partition was acknowledged `latency` after it was
/// created (for the checkpoint task).
pub fn record_checkpoint_latency(
    flow: &str,
    group: &str,
    target_topic: &str,
    partition: i32,
    latency: Duration,
) {
    let labels = with(
        partition_labels(flow, target_topic, partition),
        "group",
        group.to_owned(),
    );
    histogram!(CHECKPOINT_LATENCY_MS, labels).record(latency.as_secs_f64() * 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::transform::{DropReason, RenumberReason};

    #[test]
    fn aliases_split_flow_names() {
        assert_eq!(aliases("A->B"), ("A".to_owned(), "B".to_owned()));
        assert_eq!(aliases("weird"), ("weird".to_owned(), String::new()));
    }

    #[test]
    fn routes_have_stable_labels() {
        assert_eq!(route_label(Route::AsIs), "as_is");
        assert_eq!(route_label(Route::Patch), "patch");
        assert_eq!(
            route_label(Route::Renumber(RenumberReason::OffsetHoles)),
            "renumber"
        );
        assert_eq!(route_label(Route::Drop(DropReason::Control)), "dropped");
    }

    #[test]
    fn ages_are_never_negative() {
        assert!((age_ms(1_000, 400) - 600.0).abs() < f64::EPSILON);
        assert!(age_ms(1_000, 5_000).abs() < f64::EPSILON);
    }

    #[test]
    fn error_kinds_name_steps() {
        let ev = MirrorEvent::StepFailed {
            flow: "A->B".into(),
            step: "offset syncs",
            error: "x".into(),
        };
        assert_eq!(
            event_error_kind(&ev).as_deref(),
            Some("offset_syncs_failed")
        );
        let ev = MirrorEvent::ProgressCommitted {
            flow: "A->B".into(),
            partitions: 1,
        };
        assert_eq!(event_error_kind(&ev), None);
    }
}
