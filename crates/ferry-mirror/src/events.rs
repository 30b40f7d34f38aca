//! Typed engine events and per-flow counters.
//!
//! Everything the engine decides that an operator should know about is a [`MirrorEvent`] sent
//! on a `tokio::sync::broadcast` channel (a slow receiver loses the oldest events and sees
//! `RecvError::Lagged`) and logged with `tracing`. Nothing is skipped silently (DESIGN.md, "Data
//! path rules"): lost positions, corrupt or oversized batches each have their own variant.
//!
//! [`FlowCounters`] are lock-free counters per flow: batches by route, records and bytes, so the
//! share of batches forwarded without decompression ([`CountersSnapshot::zero_copy_share`]) is
//! always computable.

use std::sync::atomic::{AtomicU64, Ordering};

use ferry_protocol::transform::Route;

/// Why a partition stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The resume position fell below the source log start; policy says stop.
    OffsetOutOfRange,
    /// The source log ends below the resume position; policy says stop.
    SourceTruncated,
    /// The source topic was recreated; policy says stop.
    TopicRecreated,
    /// A batch failed its CRC or could not be parsed.
    CorruptBatch,
    /// A batch exceeds a size limit.
    RecordTooLarge,
    /// The target refused a batch for good.
    ProduceFailed(String),
    /// The source topic no longer exists.
    SourceTopicGone,
}

/// Something the engine did or found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MirrorEvent {
    /// A target topic was created.
    TopicCreated {
        /// `source->target`.
        flow: String,
        /// Source topic.
        source_topic: String,
        /// Target topic.
        target_topic: String,
        /// Partitions.
        partitions: i32,
    },
    /// A target topic was grown to the source's partition count.
    PartitionsAdded {
        /// `source->target`.
        flow: String,
        /// Target topic.
        target_topic: String,
        /// Partition count before.
        from: i32,
        /// Partition count after.
        to: i32,
    },
    /// A partition started replicating.
    PartitionStarted {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// First source offset fetched.
        resume_offset: i64,
        /// Whether the offset came from stored progress (else from the start policy).
        from_progress: bool,
    },
    /// The position lies below the source log start: records were lost to retention before
    /// ferry copied them.
    OffsetOutOfRange {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The offset ferry wanted.
        fetch_offset: i64,
        /// Source log start offset.
        log_start: i64,
        /// Source log end offset (high watermark).
        log_end: i64,
    },
    /// The source log ends below the position: the source was truncated (unclean election,
    /// DeleteRecords beyond, or a recreated topic).
    SourceTruncated {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The offset ferry wanted.
        fetch_offset: i64,
        /// Source log end offset.
        log_end: i64,
    },
    /// The source topic's id differs from the one stored with the progress.
    TopicRecreated {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Id stored with the progress.
        old_id: String,
        /// Id now.
        new_id: String,
    },
    /// A batch failed its CRC or could not be parsed; it was not forwarded. It is fetched
    /// again up to 3 times (a bit flipped in transit); after that the partition stops.
    CorruptBatch {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The fetch offset of the response that held it.
        fetch_offset: i64,
        /// Byte position of the entry in the response's records.
        position: usize,
        /// The error.
        error: String,
    },
    /// A batch exceeds a size limit.
    RecordTooLarge {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The fetch offset of the response that held it.
        fetch_offset: i64,
        /// The error.
        error: String,
    },
    /// A position-loss policy moved a partition's position.
    PositionReset {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Old position.
        from: i64,
        /// New position.
        to: i64,
    },
    /// A partition stopped replicating.
    PartitionStopped {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Why.
        reason: StopReason,
    },
    /// The target producer bumped its epoch (KIP-360): batches whose outcome was unknown may
    /// have been written twice.
    ProducerEpochBumped {
        /// Target cluster alias.
        cluster: String,
        /// Why.
        reason: String,
    },
    /// Progress was committed to the target.
    ProgressCommitted {
        /// `source->target`.
        flow: String,
        /// Partitions committed.
        partitions: usize,
    },
    /// Config sync changed a target topic's configs (one IncrementalAlterConfigs).
    TopicConfigsAltered {
        /// `source->target`.
        flow: String,
        /// Target topic.
        topic: String,
        /// Keys set, with their values.
        set: Vec<(String, String)>,
        /// Keys whose override was deleted (back to the target's default).
        deleted: Vec<String>,
    },
    /// The target refused a synced config value (INVALID_CONFIG, POLICY_VIOLATION, ...); the
    /// topic's other keys were still applied. Not retried until the source value changes.
    TopicConfigRejected {
        /// `source->target`.
        flow: String,
        /// Target topic.
        topic: String,
        /// Config key.
        key: String,
        /// The refused value (`None` for a delete).
        value: Option<String>,
        /// The broker's error.
        error: String,
    },
    /// ACL sync created or deleted ACL bindings on the target.
    AclsChanged {
        /// `source->target`.
        flow: String,
        /// Bindings created (as `Display`ed by `acl_sync::describe_binding`).
        created: Vec<String>,
        /// Bindings deleted (only ferry-created ones, with `ferry.sync.acls.delete=true`).
        deleted: Vec<String>,
    },
    /// After a restart, the target records written after the last progress commit were read
    /// back and matched the source record for record (`crate::resume`); the source resumes
    /// after them instead of sending them again.
    ResumeVerified {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Stored source position.
        stored: i64,
        /// Source position resumed at.
        resume: i64,
        /// Records verified and not sent again.
        records: u64,
        /// Matched records of a batch the target holds only in part (sent again).
        partial: u64,
    },
    /// After a restart, the target records written after the last progress commit do not
    /// match the source (another writer on a mirrored topic, or unexpected data): nothing is
    /// skipped, the partition resends from its stored position.
    ResumeMismatch {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Stored source position (where sending resumes).
        stored: i64,
        /// What differed and where.
        mismatch: crate::resume::Mismatch,
    },
    /// MM2 checkpoints were written to the target's checkpoints topic.
    CheckpointsWritten {
        /// `source->target`.
        flow: String,
        /// Distinct groups among them.
        groups: usize,
        /// Checkpoint records written.
        checkpoints: usize,
    },
    /// Translated offsets were committed to an idle target group.
    GroupSynced {
        /// `source->target`.
        flow: String,
        /// Consumer group.
        group: String,
        /// Partitions committed.
        partitions: usize,
    },
    /// Group sync left a target group alone because it has members (seen before the commit,
    /// or the coordinator refused the commit because members joined meanwhile).
    GroupSkippedActive {
        /// `source->target`.
        flow: String,
        /// Consumer group.
        group: String,
        /// The state seen, or the refusal.
        state: String,
    },
    /// A partition's stored offset-map history could not be used; translation of offsets
    /// below its resume position is unavailable (no checkpoint rather than a wrong one).
    OffsetMapDiscarded {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Why.
        reason: String,
    },
    /// A background step failed and will be retried at its next interval.
    StepFailed {
        /// `source->target` (or a cluster alias).
        flow: String,
        /// The step (`topics`, `heartbeats`, `offset syncs`, `progress`).
        step: &'static str,
        /// The error.
        error: String,
    },
}

impl MirrorEvent {
    /// Logs the event at a level matching its severity.
    pub(crate) fn log(&self) {
        match self {
            Self::TopicCreated { .. }
            | Self::PartitionsAdded { .. }
            | Self::PartitionStarted { .. }
            | Self::ResumeVerified { .. }
            | Self::TopicConfigsAltered { .. }
            | Self::AclsChanged { .. } => tracing::info!(event = ?self, "mirror event"),
            Self::ProgressCommitted { .. } | Self::CheckpointsWritten { .. } => {
                tracing::debug!(event = ?self, "mirror event");
            }
            Self::GroupSynced { .. } | Self::GroupSkippedActive { .. } => {
                tracing::info!(event = ?self, "mirror event");
            }
            Self::OffsetMapDiscarded { .. } => tracing::warn!(event = ?self, "mirror event"),
            Self::StepFailed { .. }
            | Self::TopicConfigRejected { .. }
            | Self::ProducerEpochBumped { .. }
            | Self::PositionReset { .. } => {
                tracing::warn!(event = ?self, "mirror event");
            }
            _ => tracing::error!(event = ?self, "mirror event"),
        }
    }
}

/// Counters of one flow.
#[derive(Debug, Default)]
pub struct FlowCounters {
    as_is: AtomicU64,
    patch: AtomicU64,
    renumber: AtomicU64,
    convert: AtomicU64,
    dropped: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    acked_batches: AtomicU64,
    config_alter_requests: AtomicU64,
}

impl FlowCounters {
    /// Counts one forwarding decision.
    pub fn count_route(&self, route: Route) {
        let c = match route {
            Route::AsIs => &self.as_is,
            Route::Patch => &self.patch,
            Route::Renumber(_) => &self.renumber,
            Route::Convert => &self.convert,
            _ => &self.dropped,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one acknowledged batch of `records` records and `bytes` bytes.
    pub fn count_acked(&self, records: u64, bytes: u64) {
        self.acked_batches.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts one IncrementalAlterConfigs request sent by config sync.
    pub fn count_config_alter(&self) {
        self.config_alter_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A consistent-enough copy (each counter read once).
    pub fn snapshot(&self) -> CountersSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersSnapshot {
            as_is: r(&self.as_is),
            patch: r(&self.patch),
            renumber: r(&self.renumber),
            convert: r(&self.convert),
            dropped: r(&self.dropped),
            records: r(&self.records),
            bytes: r(&self.bytes),
            acked_batches: r(&self.acked_batches),
            config_alter_requests: r(&self.config_alter_requests),
        }
    }
}

/// Counter values of one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CountersSnapshot {
    /// Batches forwarded as they were (only fields outside the CRC changed).
    pub as_is: u64,
    /// Batches whose header was patched (payload untouched).
    pub patch: u64,
    /// Batches decoded and re-encoded.
    pub renumber: u64,
    /// Legacy entries converted to v2.
    pub convert: u64,
    /// Entries dropped (control, empty, aborted, already forwarded).
    pub dropped: u64,
    /// Records acknowledged by the target.
    pub records: u64,
    /// Batch bytes acknowledged by the target.
    pub bytes: u64,
    /// Batches acknowledged by the target.
    pub acked_batches: u64,
    /// IncrementalAlterConfigs requests sent by topic-config sync (zero while nothing changes).
    pub config_alter_requests: u64,
}

impl CountersSnapshot {
    /// Batches sent to the target (every route but drop).
    pub fn forwarded(&self) -> u64 {
        self.as_is + self.patch + self.renumber + self.convert
    }

    /// Share of forwarded batches whose payload was not decompressed (as-is + patch), in
    /// `0.0..=1.0`; `None` before the first batch.
    pub fn zero_copy_share(&self) -> Option<f64> {
        let total = self.forwarded();
        #[allow(clippy::cast_precision_loss)]
        (total > 0).then(|| (self.as_is + self.patch) as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::transform::{DropReason, RenumberReason};

    #[test]
    fn share_counts_as_is_and_patch_only() {
        let c = FlowCounters::default();
        assert_eq!(c.snapshot().zero_copy_share(), None);
        c.count_route(Route::AsIs);
        c.count_route(Route::Patch);
        c.count_route(Route::Patch);
        c.count_route(Route::Renumber(RenumberReason::OffsetHoles));
        c.count_route(Route::Drop(DropReason::Control));
        let s = c.snapshot();
        assert_eq!(s.forwarded(), 4);
        assert_eq!(s.dropped, 1);
        assert_eq!(s.zero_copy_share(), Some(0.75));
        c.count_acked(10, 100);
        assert_eq!(c.snapshot().records, 10);
    }
}
