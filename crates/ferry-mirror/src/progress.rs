//! Durable replication progress, stored in the **target** cluster as consumer-group offsets.
//!
//! For every replicated partition the engine commits, to the group
//! [`crate::settings::FlowSettings::progress_group_id`] on the target:
//!
//! - key: the **target** topic-partition (it exists on the target, which `TxnOffsetCommit`
//!   requires — kafka-wire.md §3.5 step 5);
//! - offset: the next **source** offset to fetch (a batch boundary, `lastOffset + 1`, written
//!   only after the target acknowledged every batch below it);
//! - metadata: [`ProgressMetadata`], `ferry:v1:t=<target next offset>;id=<source topic id>`.
//!
//! This is exactly what a later exactly-once mode can write with `TxnOffsetCommit` inside the
//! target transaction that carries the data (KIP-98, KIP-447), so the at-least-once and
//! exactly-once modes share one format.
//!
//! On start, the flow (`decide_start`, a pure function) turns what is stored into a resume position, checking it
//! against the source's log start and end and the source topic id: a position below the log
//! start (retention), past the log end (truncation) or of a recreated topic raises its event
//! and follows the flow's [`PositionLossPolicy`]; never a silent skip.
//!
//! **After a crash.** Progress is committed every `progress_interval`, so a process killed
//! with `kill -9` leaves records on the target past the stored `t`. Before a partition starts,
//! `crate::resume` reads the target's `[t, end)` and the source from the stored position and,
//! if they match record for record, resumes after them instead of sending them again (ferry
//! must be the only writer of a mirrored topic; a mismatch raises
//! [`MirrorEvent::ResumeMismatch`] and nothing is skipped).
//!
//! # References
//! - kafka-wire.md §3.5 (TxnOffsetCommit without membership), §4.2 (ListOffsets)
//! - mm2-compat.md §5.6 (where MM2 keeps the same information), §7.1 (MM2's silent restart
//!   after topic recreation, which ferry reports instead)

use std::fmt;

use ferry_client::Cluster;
use ferry_client::admin::CommittedOffset;
use ferry_client::cluster::OffsetSpec;
use uuid::Uuid;

use crate::engine::MirrorError;
use crate::events::{MirrorEvent, StopReason};
use crate::settings::{FlowSettings, Isolation, PositionLossPolicy, StartPosition};

/// Prefix and version of the metadata string.
const PREFIX: &str = "ferry:v1:";

/// What ferry stores in the commit metadata next to a partition's source position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressMetadata {
    /// The target partition's next offset after everything acknowledged.
    pub target_next: i64,
    /// The source topic's id (nil if the source broker does not report ids).
    pub source_topic_id: Uuid,
}

impl fmt::Display for ProgressMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}t={};id={}",
            self.target_next,
            self.source_topic_id.simple()
        )
    }
}

impl ProgressMetadata {
    /// Parses a metadata string written by [`fmt::Display`]; `None` for anything else
    /// (another tool's commit, a future version).
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix(PREFIX)?;
        let mut target_next = None;
        let mut source_topic_id = Uuid::nil();
        for field in rest.split(';') {
            match field.split_once('=')? {
                ("t", v) => target_next = Some(v.parse().ok()?),
                ("id", v) => source_topic_id = Uuid::try_parse(v).ok()?,
                _ => {}
            }
        }
        Some(Self {
            target_next: target_next?,
            source_topic_id,
        })
    }

    /// The committed offset for source position `next_source`.
    pub fn commit(self, next_source: i64) -> CommittedOffset {
        CommittedOffset {
            offset: next_source,
            leader_epoch: None,
            metadata: Some(self.to_string()),
        }
    }
}

/// Where a partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StartDecision {
    /// First source offset to fetch.
    pub resume: i64,
    /// Whether it came from stored progress.
    pub from_progress: bool,
}

/// What a loss policy asks for, given the source's bounds; `None` = stop.
fn apply_policy(policy: PositionLossPolicy, log_start: i64, log_end: i64) -> Option<i64> {
    match policy {
        PositionLossPolicy::StopPartition => None,
        PositionLossPolicy::ResetEarliest => Some(log_start),
        PositionLossPolicy::ResetLatest => Some(log_end),
    }
}

/// The pure decision: stored progress (if any) against the source's current bounds and topic id.
/// Returns the decision (or `Err(reason)` to stop) and the events to raise.
pub(crate) fn decide_start(
    flow: &FlowSettings,
    topic: &str,
    partition: i32,
    stored: Option<&CommittedOffset>,
    topic_id: Uuid,
    log_start: i64,
    log_end: i64,
) -> (Result<StartDecision, StopReason>, Vec<MirrorEvent>) {
    let name = flow.name();
    let mut events = Vec::new();
    let fresh = |from_progress| {
        let resume = match flow.start {
            StartPosition::Earliest => log_start,
            StartPosition::Latest => log_end,
        };
        StartDecision {
            resume,
            from_progress,
        }
    };
    let Some(stored) = stored else {
        return (Ok(fresh(false)), events);
    };
    let meta = stored.metadata.as_deref().and_then(ProgressMetadata::parse);
    let reset = |policy, reason: StopReason, events: &mut Vec<MirrorEvent>| match apply_policy(
        policy, log_start, log_end,
    ) {
        Some(to) => {
            events.push(MirrorEvent::PositionReset {
                flow: name.clone(),
                topic: topic.to_owned(),
                partition,
                from: stored.offset,
                to,
            });
            Ok(StartDecision {
                resume: to,
                from_progress: true,
            })
        }
        None => {
            events.push(MirrorEvent::PartitionStopped {
                flow: name.clone(),
                topic: topic.to_owned(),
                partition,
                reason: reason.clone(),
            });
            Err(reason)
        }
    };
    if let Some(m) = meta
        && !m.source_topic_id.is_nil()
        && !topic_id.is_nil()
        && m.source_topic_id != topic_id
    {
        events.push(MirrorEvent::TopicRecreated {
            flow: name.clone(),
            topic: topic.to_owned(),
            old_id: m.source_topic_id.to_string(),
            new_id: topic_id.to_string(),
        });
        let r = reset(
            flow.on_topic_recreated,
            StopReason::TopicRecreated,
            &mut events,
        );
        return (r, events);
    }
    if stored.offset < log_start {
        events.push(MirrorEvent::OffsetOutOfRange {
            flow: name.clone(),
            topic: topic.to_owned(),
            partition,
            fetch_offset: stored.offset,
            log_start,
            log_end,
        });
        let r = reset(
            flow.on_offset_out_of_range,
            StopReason::OffsetOutOfRange,
            &mut events,
        );
        return (r, events);
    }
    if stored.offset > log_end {
        events.push(MirrorEvent::SourceTruncated {
            flow: name.clone(),
            topic: topic.to_owned(),
            partition,
            fetch_offset: stored.offset,
            log_end,
        });
        let r = reset(flow.on_truncation, StopReason::SourceTruncated, &mut events);
        return (r, events);
    }
    (
        Ok(StartDecision {
            resume: stored.offset,
            from_progress: true,
        }),
        events,
    )
}

/// Looks up the source bounds of `partitions` of `topic`: `(partition, log start, log end)`.
/// The end is the last stable offset under read_committed.
pub(crate) async fn source_bounds(
    source: &Cluster,
    source_alias: &str,
    topic: &str,
    partitions: &[i32],
    isolation: Isolation,
) -> Result<Vec<(i32, i64, i64)>, MirrorError> {
    let committed = isolation == Isolation::ReadCommitted;
    let client = |e| MirrorError::Client {
        cluster: source_alias.to_owned(),
        operation: "list offsets",
        source: e,
    };
    let starts = source
        .list_offsets(topic, partitions, OffsetSpec::Earliest, committed)
        .await
        .map_err(client)?;
    let ends = source
        .list_offsets(topic, partitions, OffsetSpec::Latest, committed)
        .await
        .map_err(client)?;
    Ok(starts
        .iter()
        .filter_map(|&(p, start)| {
            let end = ends.iter().find(|(q, _)| *q == p)?.1;
            Some((p, start, end))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> FlowSettings {
        FlowSettings::new("A", "B").unwrap()
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn stored(offset: i64, t: i64, topic_id: Uuid) -> CommittedOffset {
        ProgressMetadata {
            target_next: t,
            source_topic_id: topic_id,
        }
        .commit(offset)
    }

    #[test]
    fn metadata_round_trips_and_rejects_foreign_strings() {
        let m = ProgressMetadata {
            target_next: 42,
            source_topic_id: id(0xabc),
        };
        let s = m.to_string();
        assert!(s.starts_with("ferry:v1:t=42;id="), "{s}");
        assert!(s.len() < 80);
        assert_eq!(ProgressMetadata::parse(&s), Some(m));
        assert_eq!(ProgressMetadata::parse(""), None);
        assert_eq!(ProgressMetadata::parse("ferry:v2:t=1"), None);
        assert_eq!(ProgressMetadata::parse("ferry:v1:t=x"), None);
        assert_eq!(
            ProgressMetadata::parse("ferry:v1:t=7").map(|m| m.target_next),
            Some(7)
        );
    }

    #[test]
    fn no_progress_follows_start_policy() {
        let mut f = flow();
        let (d, ev) = decide_start(&f, "t", 0, None, id(1), 5, 50);
        assert_eq!(d.unwrap().resume, 5);
        assert!(ev.is_empty());
        f.start = StartPosition::Latest;
        let (d, _) = decide_start(&f, "t", 0, None, id(1), 5, 50);
        assert_eq!(
            d.unwrap(),
            StartDecision {
                resume: 50,
                from_progress: false
            }
        );
    }

    #[test]
    fn stored_progress_inside_the_log_resumes_there() {
        let (d, ev) = decide_start(&flow(), "t", 0, Some(&stored(20, 17, id(1))), id(1), 5, 50);
        assert_eq!(d.unwrap().resume, 20);
        assert!(ev.is_empty());
        // Both bounds are inclusive: at the log start and at the end are fine.
        assert!(
            decide_start(&flow(), "t", 0, Some(&stored(5, 0, id(1))), id(1), 5, 50)
                .0
                .is_ok()
        );
        assert!(
            decide_start(&flow(), "t", 0, Some(&stored(50, 0, id(1))), id(1), 5, 50)
                .0
                .is_ok()
        );
    }

    #[test]
    fn below_log_start_is_an_event_and_stops_by_default() {
        let (d, ev) = decide_start(&flow(), "t", 3, Some(&stored(4, 0, id(1))), id(1), 5, 50);
        assert_eq!(d, Err(StopReason::OffsetOutOfRange));
        assert!(matches!(
            ev.as_slice(),
            [
                MirrorEvent::OffsetOutOfRange {
                    fetch_offset: 4,
                    log_start: 5,
                    log_end: 50,
                    partition: 3,
                    ..
                },
                MirrorEvent::PartitionStopped { .. }
            ]
        ));
        let mut f = flow();
        f.on_offset_out_of_range = PositionLossPolicy::ResetEarliest;
        let (d, ev) = decide_start(&f, "t", 3, Some(&stored(4, 0, id(1))), id(1), 5, 50);
        assert_eq!(d.unwrap().resume, 5);
        assert!(matches!(
            ev.last(),
            Some(MirrorEvent::PositionReset { from: 4, to: 5, .. })
        ));
    }

    #[test]
    fn past_log_end_is_truncation() {
        let mut f = flow();
        let (d, ev) = decide_start(&f, "t", 0, Some(&stored(51, 0, id(1))), id(1), 5, 50);
        assert_eq!(d, Err(StopReason::SourceTruncated));
        assert!(matches!(
            ev.first(),
            Some(MirrorEvent::SourceTruncated { log_end: 50, .. })
        ));
        f.on_truncation = PositionLossPolicy::ResetLatest;
        let (d, _) = decide_start(&f, "t", 0, Some(&stored(51, 0, id(1))), id(1), 5, 50);
        assert_eq!(d.unwrap().resume, 50);
    }

    #[test]
    fn changed_topic_id_is_recreation_even_when_in_range() {
        let (d, ev) = decide_start(&flow(), "t", 0, Some(&stored(10, 10, id(1))), id(2), 0, 50);
        assert_eq!(d, Err(StopReason::TopicRecreated));
        assert!(matches!(
            ev.first(),
            Some(MirrorEvent::TopicRecreated { .. })
        ));
        // A nil id on either side cannot prove anything.
        let (d, _) = decide_start(
            &flow(),
            "t",
            0,
            Some(&stored(10, 10, Uuid::nil())),
            id(2),
            0,
            50,
        );
        assert!(d.is_ok());
        let mut f = flow();
        f.on_topic_recreated = PositionLossPolicy::ResetEarliest;
        let (d, _) = decide_start(&f, "t", 0, Some(&stored(10, 10, id(1))), id(2), 0, 50);
        assert_eq!(d.unwrap().resume, 0);
    }

    #[test]
    fn foreign_metadata_is_ignored() {
        let c = CommittedOffset {
            offset: 10,
            leader_epoch: None,
            metadata: Some("something else".into()),
        };
        let (d, _) = decide_start(&flow(), "t", 0, Some(&c), id(2), 0, 50);
        assert_eq!(d.unwrap().resume, 10);
    }
}
