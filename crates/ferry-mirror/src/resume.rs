//! Exact resume after a crash: verify the target's unacknowledged tail, then skip it.
//!
//! Progress ([`crate::progress`]) is committed every `progress_interval`, so a process killed
//! with `kill -9` leaves records on the target that were written after its last commit: stored
//! progress says "resume the source at `s`, the target was at `t`", while the target partition
//! now ends at `e > t`. Resending from `s` would write `[t, e)` a second time.
//!
//! **ferry must be the only writer of a mirrored topic** (as MM2 assumes for its remote
//! topics). Under that rule the records in `[t, e)` can only be what the previous process
//! forwarded from `s` onwards. This module does not take that on trust: before skipping
//! anything it *reads both sides and compares them record by record*:
//!
//! - the source from `s` is read exactly as the pipeline reads it (same isolation level, the
//!   same [`Forwarder`] with its read_committed filter, so control records and aborted data are
//!   dropped the same way), and each forwarded batch is decoded;
//! - the target `[t, e)` is read and decoded;
//! - record *i* of one side must equal record *i* of the other in key (null is not empty),
//!   value, headers (order and repeated keys) and timestamp as a consumer reads it; the count
//!   must agree (the target may not hold more than the source has).
//!
//! If everything matches, the source resumes after the **last forwarded batch that the target
//! holds completely** (a batch boundary of what was forwarded, so the forwarder restarts on a
//! batch of its own and keeps the zero-copy routes). The target always holds whole batches
//! (a produce is atomic per batch), so with a single writer the boundary is the last matched
//! record and nothing is re-sent; should the target end inside a forwarded batch (it can only
//! if the batch was split, which ferry does not do today), the records of that batch are
//! re-sent: at most one batch of duplicates, reported as [`Verified::partial`].
//!
//! If anything differs, nothing is skipped: the caller raises
//! [`crate::events::MirrorEvent::ResumeMismatch`] (another writer, or unexpected data) and
//! resends from `s`, exactly as without this check. I/O failures during the check also fall
//! back to resending (with a `StepFailed` event): the check can only ever remove duplicates,
//! never records.
//!
//! The verified pairs are returned as runs `(source_start, target_start, len)`
//! ([`VerifiedRun`]) so the offset map can translate offsets inside the skipped range.
//!
//! Memory is bounded: both sides are fetched in chunks of at most [`CHUNK_BYTES`] (plus one
//! batch that is larger, KIP-74), compared, and dropped; the decoded target chunk is the only
//! buffer. The matcher ([`TailMatcher`]) is a pure state machine, tested without brokers.
//!
//! # References
//! - kafka-wire.md §4.1 (fetch edges), §4.3 (read_committed filtering), §2.3 (timestamps)
//! - reliability.md invariant D (duplicates), scenario 2 (hard kill and restart)

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use ferry_client::Cluster;
use ferry_client::fetcher::{FetchConfig, FetchEvent, Fetcher, IsolationLevel, TopicPartition};
use ferry_protocol::batch::{BatchScanner, DataError, Entry};
use ferry_protocol::record::{DecodeOptions, DecodedBatch, Header};
use ferry_protocol::transform::{
    AbortedTransaction, ForwardConfig, Forwarded, Forwarder, SourceOffsets, TargetProducer,
};

use ferry_client::admin::CommittedOffset;
use ferry_client::cluster::OffsetSpec;

use crate::events::MirrorEvent;
use crate::flow::FlowShared;
use crate::progress::{ProgressMetadata, StartDecision};
use crate::settings::{FlowSettings, Isolation, StartPosition};

/// Largest fetch response asked for while checking (per side).
pub const CHUNK_BYTES: i32 = 4 << 20;

/// One record as a consumer sees it, with its offset on its own side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailRecord {
    /// Offset (source or target).
    pub offset: i64,
    /// Timestamp as a consumer reads it (`maxTimestamp` in a LogAppendTime batch).
    pub timestamp: i64,
    /// Key (`None` = null).
    pub key: Option<Bytes>,
    /// Value (`None` = null).
    pub value: Option<Bytes>,
    /// Headers in wire order.
    pub headers: Vec<Header>,
}

/// Which part of a record pair differed, or how the two sides disagreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MismatchKind {
    /// Keys differ.
    Key,
    /// Values differ.
    Value,
    /// Headers differ.
    Headers,
    /// Timestamps differ.
    Timestamp,
    /// Target offsets did not increase.
    TargetOrder,
    /// The target holds more records than the source has after the stored position.
    TargetLonger,
}

/// Where the two sides first disagreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "target tail differs from the source: {kind:?} (source offset {source_offset:?}, target offset {target_offset:?})"
)]
pub struct Mismatch {
    /// What differed.
    pub kind: MismatchKind,
    /// The source record's offset, if there was one.
    pub source_offset: Option<i64>,
    /// The target record's offset, if there was one.
    pub target_offset: Option<i64>,
}

/// A run of verified pairs: source offsets `source_start..source_start+len` are at target
/// offsets `target_start..target_start+len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedRun {
    /// First source offset.
    pub source_start: i64,
    /// First target offset.
    pub target_start: i64,
    /// Number of records.
    pub len: i64,
}

/// The outcome of a successful check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The source offset to resume at (a forwarded batch boundary).
    pub resume: i64,
    /// The target offset after the last record of the last complete batch.
    pub target_next: i64,
    /// Records verified and skipped.
    pub records: u64,
    /// Verified pairs, as runs, up to `resume` only.
    pub runs: Vec<VerifiedRun>,
    /// Target records matched after the last complete batch (they will be sent again).
    pub partial: u64,
}

/// The pure matcher: feed it pairs in order, mark the end of each forwarded batch, finish.
#[derive(Debug, Clone)]
pub struct TailMatcher {
    /// Committed state: up to the last complete batch.
    done: Verified,
    /// Pairs of the current batch: `(source offset, target offset)`.
    pending: Vec<(i64, i64)>,
    /// Last target offset seen (ordering check).
    last_target: Option<i64>,
}

fn push_pair(runs: &mut Vec<VerifiedRun>, source: i64, target: i64) {
    if let Some(r) = runs.last_mut()
        && r.source_start.checked_add(r.len) == Some(source)
        && r.target_start.checked_add(r.len) == Some(target)
    {
        r.len += 1;
        return;
    }
    runs.push(VerifiedRun {
        source_start: source,
        target_start: target,
        len: 1,
    });
}

impl TailMatcher {
    /// A matcher for a source read from `resume` against a target read from `target_start`.
    pub fn new(resume: i64, target_start: i64) -> Self {
        Self {
            done: Verified {
                resume,
                target_next: target_start,
                records: 0,
                runs: Vec::new(),
                partial: 0,
            },
            pending: Vec::new(),
            last_target: None,
        }
    }

    /// Compares one source record with the target record at the same position.
    pub fn pair(&mut self, source: &TailRecord, target: &TailRecord) -> Result<(), Mismatch> {
        let fail = |kind| Mismatch {
            kind,
            source_offset: Some(source.offset),
            target_offset: Some(target.offset),
        };
        if self.last_target.is_some_and(|l| target.offset <= l)
            || target.offset < self.done.target_next
        {
            return Err(fail(MismatchKind::TargetOrder));
        }
        if source.key != target.key {
            return Err(fail(MismatchKind::Key));
        }
        if source.value != target.value {
            return Err(fail(MismatchKind::Value));
        }
        if source.headers != target.headers {
            return Err(fail(MismatchKind::Headers));
        }
        if source.timestamp != target.timestamp {
            return Err(fail(MismatchKind::Timestamp));
        }
        self.last_target = Some(target.offset);
        self.pending.push((source.offset, target.offset));
        Ok(())
    }

    /// The current forwarded batch ended; the source continues at `next_source`.
    pub fn end_batch(&mut self, next_source: i64) {
        for (s, t) in self.pending.drain(..) {
            push_pair(&mut self.done.runs, s, t);
            self.done.records += 1;
            self.done.target_next = t.saturating_add(1);
        }
        self.done.resume = self.done.resume.max(next_source);
    }

    /// The source ran out while the target still had `target` (a record the source lacks).
    pub fn target_longer(&self, target: &TailRecord) -> Mismatch {
        Mismatch {
            kind: MismatchKind::TargetLonger,
            source_offset: None,
            target_offset: Some(target.offset),
        }
    }

    /// Whether a batch is open (pairs matched since the last [`TailMatcher::end_batch`]).
    pub fn in_batch(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The target is exhausted: the outcome, resuming at the last complete batch.
    pub fn finish(self) -> Verified {
        let mut v = self.done;
        v.partial = u64::try_from(self.pending.len()).unwrap_or(u64::MAX);
        v
    }
}

/// One forwarded source batch, decoded: its records and the source position after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceBatch {
    /// The records (empty for a dropped entry).
    pub records: Vec<TailRecord>,
    /// The forwarder's position after the entry.
    pub next: i64,
}

/// The whole check over in-memory sequences (what the engine does while streaming):
/// `Ok` with what can be skipped, or where the sides first differ. The target sequence is the
/// complete tail `[t, e)`.
pub fn match_tail(
    resume: i64,
    target_start: i64,
    source: impl IntoIterator<Item = SourceBatch>,
    target: impl IntoIterator<Item = TailRecord>,
) -> Result<Verified, Mismatch> {
    let mut m = TailMatcher::new(resume, target_start);
    let mut target = target.into_iter().peekable();
    for batch in source {
        if target.peek().is_none() {
            break;
        }
        for r in &batch.records {
            let Some(t) = target.next() else {
                return Ok(m.finish());
            };
            m.pair(r, &t)?;
        }
        m.end_batch(batch.next);
    }
    match target.next() {
        Some(t) => Err(m.target_longer(&t)),
        None => Ok(m.finish()),
    }
}

/// Why the check could not be completed (the caller falls back to resending).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeCheckError {
    /// A fetch failed.
    #[error("fetching {tp} for the resume check: {message}")]
    Fetch {
        /// The partition.
        tp: TopicPartition,
        /// The error.
        message: String,
    },
    /// Data could not be decoded.
    #[error("decoding {tp} for the resume check: {source}")]
    Data {
        /// The partition.
        tp: TopicPartition,
        /// The error.
        source: DataError,
    },
    /// The check took longer than its limit.
    #[error("resume check of {tp} did not finish within {limit:?}")]
    Timeout {
        /// The partition.
        tp: TopicPartition,
        /// The limit.
        limit: Duration,
    },
}

impl ResumeCheckError {
    /// Whether trying again may succeed (everything but undecodable data).
    pub fn is_retriable(&self) -> bool {
        !matches!(self, Self::Data { .. })
    }
}

/// What [`check_tail`] needs.
#[derive(Debug, Clone)]
pub(crate) struct TailCheck<'a> {
    pub source: &'a Cluster,
    pub target: &'a Cluster,
    pub source_tp: TopicPartition,
    pub target_tp: TopicPartition,
    /// Stored source position.
    pub resume: i64,
    /// Source end (last stable offset under read_committed).
    pub source_end: i64,
    /// Stored target position `t`.
    pub target_start: i64,
    /// Target end now `e`.
    pub target_end: i64,
    pub isolation: Isolation,
    pub forward: ForwardConfig,
    pub limit: Duration,
}

fn records_of<'a>(
    decoded: &'a DecodedBatch,
    offset_of: impl Fn(usize) -> Option<i64> + 'a,
) -> impl Iterator<Item = TailRecord> + 'a {
    decoded
        .records
        .iter()
        .enumerate()
        .filter_map(move |(i, r)| {
            Some(TailRecord {
                offset: offset_of(i)?,
                timestamp: decoded.timestamp(i)?,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r.headers.clone(),
            })
        })
}

fn decode_options(forward: &ForwardConfig) -> DecodeOptions {
    DecodeOptions {
        max_uncompressed_bytes: forward.max_uncompressed_bytes,
        verify_crc: true,
    }
}

/// Reads the target tail `[start, end)` in chunks.
struct TargetReader {
    fetcher: Fetcher,
    tp: TopicPartition,
    position: i64,
    end: i64,
    buffer: VecDeque<TailRecord>,
    options: DecodeOptions,
}

impl TargetReader {
    async fn next(&mut self) -> Result<Option<TailRecord>, ResumeCheckError> {
        while self.buffer.is_empty() && self.position < self.end {
            self.fill().await?;
        }
        Ok(self.buffer.pop_front())
    }

    async fn fill(&mut self) -> Result<(), ResumeCheckError> {
        let fetch_err = |tp: &TopicPartition, message: String| ResumeCheckError::Fetch {
            tp: tp.clone(),
            message,
        };
        let events = self
            .fetcher
            .fetch()
            .await
            .map_err(|e| fetch_err(&self.tp, e.to_string()))?;
        for ev in events {
            match ev {
                FetchEvent::Data(fp) if fp.tp == self.tp => {
                    for entry in BatchScanner::new(fp.records.clone()) {
                        let data = |source| ResumeCheckError::Data {
                            tp: self.tp.clone(),
                            source,
                        };
                        let Entry::V2(batch) = entry.map_err(data)? else {
                            // ferry writes v2 only: anything else is another writer's.
                            return Err(fetch_err(&self.tp, "legacy data on the target".into()));
                        };
                        if batch.attributes().is_control() || batch.records_count() == 0 {
                            self.position = self.position.max(batch.next_offset());
                            continue;
                        }
                        let decoded = DecodedBatch::decode(&batch, &self.options).map_err(data)?;
                        let base = batch.base_offset();
                        let (position, end) = (self.position, self.end);
                        self.buffer.extend(
                            records_of(&decoded, |i| {
                                let delta = decoded.records.get(i)?.offset_delta;
                                Some(base.saturating_add(i64::from(delta)))
                            })
                            .filter(|r| r.offset >= position && r.offset < end),
                        );
                        self.position = self.position.max(batch.next_offset());
                    }
                    self.fetcher.seek(&self.tp, self.position);
                }
                FetchEvent::OffsetOutOfRange { .. } | FetchEvent::Error { .. } => {
                    return Err(fetch_err(&self.tp, format!("{ev:?}")));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn fetch_config(isolation: IsolationLevel) -> FetchConfig {
    FetchConfig {
        max_wait: Duration::from_millis(200),
        max_bytes: CHUNK_BYTES,
        partition_max_bytes: CHUNK_BYTES,
        isolation,
        sessions: false,
        ..FetchConfig::default()
    }
}

/// Decodes a forwarded batch into source-offset records.
fn forwarded_records(
    forwarded: &Forwarded,
    options: &DecodeOptions,
) -> Result<Vec<TailRecord>, DataError> {
    let Some(out) = &forwarded.batch else {
        return Ok(Vec::new());
    };
    let decoded = DecodedBatch::decode(&out.to_batch()?, options)?;
    let offset_of = |i: usize| match &forwarded.source_offsets {
        SourceOffsets::Range { first, .. } => Some(first.saturating_add(i64::try_from(i).ok()?)),
        SourceOffsets::Listed(list) => list.get(i).copied(),
        _ => None,
    };
    Ok(records_of(&decoded, offset_of).collect())
}

/// Streams both sides and matches them (see the module docs). `Ok(Err(mismatch))` when the
/// data differs; `Err` when the check could not be made.
pub(crate) async fn check_tail(
    c: TailCheck<'_>,
) -> Result<Result<Verified, Mismatch>, ResumeCheckError> {
    let limit = c.limit;
    let tp = c.source_tp.clone();
    tokio::time::timeout(limit, check_tail_inner(c))
        .await
        .unwrap_or(Err(ResumeCheckError::Timeout { tp, limit }))
}

async fn check_tail_inner(
    c: TailCheck<'_>,
) -> Result<Result<Verified, Mismatch>, ResumeCheckError> {
    let options = decode_options(&c.forward);
    let fetcher_err = |tp: &TopicPartition, e: ferry_client::ConfigError| ResumeCheckError::Fetch {
        tp: tp.clone(),
        message: e.to_string(),
    };
    let mut target_fetcher = Fetcher::new(
        c.target.clone(),
        fetch_config(IsolationLevel::ReadUncommitted),
    )
    .map_err(|e| fetcher_err(&c.target_tp, e))?;
    target_fetcher.assign(c.target_tp.clone(), c.target_start);
    let mut target = TargetReader {
        fetcher: target_fetcher,
        tp: c.target_tp.clone(),
        position: c.target_start,
        end: c.target_end,
        buffer: VecDeque::new(),
        options,
    };

    let (isolation, committed) = match c.isolation {
        Isolation::ReadCommitted => (IsolationLevel::ReadCommitted, true),
        Isolation::ReadUncommitted => (IsolationLevel::ReadUncommitted, false),
    };
    let mut source = Fetcher::new(c.source.clone(), fetch_config(isolation))
        .map_err(|e| fetcher_err(&c.source_tp, e))?;
    source.assign(c.source_tp.clone(), c.resume);
    let mut forwarder = Forwarder::new(c.forward, c.resume);
    if committed {
        forwarder = forwarder.read_committed();
    }
    let mut matcher = TailMatcher::new(c.resume, c.target_start);
    let data = |tp: &TopicPartition, source| ResumeCheckError::Data {
        tp: tp.clone(),
        source,
    };
    loop {
        if forwarder.position() >= c.source_end {
            // The source has nothing more: the target must be exhausted too.
            return Ok(match target.next().await? {
                Some(t) => Err(matcher.target_longer(&t)),
                None => Ok(matcher.finish()),
            });
        }
        let events = source.fetch().await.map_err(|e| ResumeCheckError::Fetch {
            tp: c.source_tp.clone(),
            message: e.to_string(),
        })?;
        for ev in events {
            let fp = match ev {
                FetchEvent::Data(fp) if fp.tp == c.source_tp => fp,
                FetchEvent::Data(_) => continue,
                other => {
                    return Err(ResumeCheckError::Fetch {
                        tp: c.source_tp.clone(),
                        message: format!("{other:?}"),
                    });
                }
            };
            if fp.fetch_offset != forwarder.position() {
                continue;
            }
            forwarder.add_aborted(fp.aborted_transactions.iter().map(|a| AbortedTransaction {
                first_offset: a.first_offset,
                producer_id: a.producer_id,
            }));
            for entry in BatchScanner::new(fp.records.clone()) {
                let entry = entry.map_err(|e| data(&c.source_tp, e))?;
                let forwarded = forwarder
                    .forward(entry, TargetProducer::PLAIN)
                    .map_err(|e| data(&c.source_tp, e))?;
                let records =
                    forwarded_records(&forwarded, &options).map_err(|e| data(&c.source_tp, e))?;
                for r in &records {
                    let Some(t) = target.next().await? else {
                        // The target ends here (inside a batch if one is open).
                        return Ok(Ok(matcher.finish()));
                    };
                    if let Err(m) = matcher.pair(r, &t) {
                        return Ok(Err(m));
                    }
                }
                if !records.is_empty() {
                    matcher.end_batch(forwarded.next_offset);
                }
                if !matcher.in_batch() && target.buffer.is_empty() && target.position >= target.end
                {
                    return Ok(Ok(matcher.finish()));
                }
            }
            source.seek(&c.source_tp, forwarder.position());
        }
    }
}

/// How long a partition's check may take before the start falls back to resending.
pub(crate) const CHECK_LIMIT: Duration = Duration::from_secs(60);

/// A partition about to start, as `crate::flow` sees it.
#[derive(Debug)]
pub(crate) struct StartingPartition<'a> {
    pub flow: &'a FlowSettings,
    pub shared: &'a FlowShared,
    pub source: &'a Cluster,
    pub target: &'a Cluster,
    pub forward: ForwardConfig,
    pub source_tp: TopicPartition,
    pub target_tp: TopicPartition,
    /// What `crate::progress::decide_start` chose.
    pub decision: StartDecision,
    /// The stored progress, if any.
    pub stored: Option<&'a CommittedOffset>,
    /// Source bounds (end = last stable offset under read_committed).
    pub log_start: i64,
    pub log_end: i64,
    /// The target partition's end now.
    pub target_end: i64,
}

/// Decides where a partition really starts: the stored position, or after the target's
/// verified tail. Returns the source offset to resume at and the verified runs. Raises
/// [`MirrorEvent::ResumeVerified`], [`MirrorEvent::ResumeMismatch`] or a `StepFailed` event.
///
/// The tail is `[t, e)` with `t` from the stored progress metadata; without stored progress
/// (a crash before the first commit) and with the earliest start policy, the tail is the
/// whole target partition from its log start, matched against the source from its log start.
pub(crate) async fn exact_resume(p: StartingPartition<'_>) -> (i64, Vec<VerifiedRun>) {
    let d = p.decision;
    let target_start = match p.stored {
        Some(stored) => {
            let meta = stored.metadata.as_deref().and_then(ProgressMetadata::parse);
            match meta {
                // A reset by policy moved the position: the tail belongs to another range.
                Some(m) if d.from_progress && d.resume == stored.offset => m.target_next,
                _ => return (d.resume, Vec::new()),
            }
        }
        None if p.flow.start == StartPosition::Earliest && d.resume == p.log_start => {
            if p.target_end <= 0 {
                return (d.resume, Vec::new());
            }
            match p
                .target
                .list_offsets(
                    &p.target_tp.topic,
                    &[p.target_tp.partition],
                    OffsetSpec::Earliest,
                    false,
                )
                .await
            {
                Ok(v) => v.first().map_or(p.target_end, |(_, o)| *o),
                Err(e) => {
                    p.shared.emit(MirrorEvent::StepFailed {
                        flow: p.shared.name.clone(),
                        step: "resume check",
                        error: format!("{}: {e}", p.target_tp),
                    });
                    return (d.resume, Vec::new());
                }
            }
        }
        None => return (d.resume, Vec::new()),
    };
    if p.target_end <= target_start {
        return (d.resume, Vec::new());
    }
    let check = TailCheck {
        source: p.source,
        target: p.target,
        source_tp: p.source_tp.clone(),
        target_tp: p.target_tp.clone(),
        resume: d.resume,
        source_end: p.log_end,
        target_start,
        target_end: p.target_end,
        isolation: p.flow.isolation,
        forward: p.forward,
        limit: CHECK_LIMIT,
    };
    match check_tail(check).await {
        Ok(Ok(v)) => {
            p.shared.emit(MirrorEvent::ResumeVerified {
                flow: p.shared.name.clone(),
                topic: p.source_tp.topic.clone(),
                partition: p.source_tp.partition,
                stored: d.resume,
                resume: v.resume,
                records: v.records,
                partial: v.partial,
            });
            (v.resume, v.runs)
        }
        Ok(Err(mismatch)) => {
            p.shared.emit(MirrorEvent::ResumeMismatch {
                flow: p.shared.name.clone(),
                topic: p.source_tp.topic.clone(),
                partition: p.source_tp.partition,
                stored: d.resume,
                mismatch,
            });
            (d.resume, Vec::new())
        }
        Err(e) => {
            p.shared.emit(MirrorEvent::StepFailed {
                flow: p.shared.name.clone(),
                step: "resume check",
                error: e.to_string(),
            });
            (d.resume, Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(offset: i64, key: &str, ts: i64) -> TailRecord {
        TailRecord {
            offset,
            timestamp: ts,
            key: Some(Bytes::from(key.to_owned())),
            value: Some(Bytes::from(format!("v-{key}"))),
            headers: vec![Header {
                key: Bytes::from_static(b"h"),
                value: None,
            }],
        }
    }

    /// Source batches of the given sizes starting at `from`, keys `k<offset>`.
    fn batches(from: i64, sizes: &[usize]) -> Vec<SourceBatch> {
        let mut o = from;
        sizes
            .iter()
            .map(|&n| {
                let records: Vec<_> = (0..n)
                    .map(|i| {
                        let off = o + i as i64;
                        rec(off, &format!("k{off}"), 1000 + off)
                    })
                    .collect();
                o += n as i64;
                SourceBatch { records, next: o }
            })
            .collect()
    }

    /// The target copy of the first `n` source records, starting at target offset `t`.
    fn copy(source: &[SourceBatch], t: i64, n: usize) -> Vec<TailRecord> {
        source
            .iter()
            .flat_map(|b| b.records.iter())
            .take(n)
            .enumerate()
            .map(|(i, r)| TailRecord {
                offset: t + i as i64,
                ..r.clone()
            })
            .collect()
    }

    #[test]
    fn whole_batches_are_skipped_with_one_run() {
        let src = batches(100, &[3, 4, 5]);
        let v = match_tail(100, 40, src.clone(), copy(&src, 40, 7)).unwrap();
        assert_eq!(v.resume, 107);
        assert_eq!(v.target_next, 47);
        assert_eq!(v.records, 7);
        assert_eq!(v.partial, 0);
        assert_eq!(
            v.runs,
            vec![VerifiedRun {
                source_start: 100,
                target_start: 40,
                len: 7
            }]
        );
    }

    #[test]
    fn a_target_ending_inside_a_batch_resumes_at_its_start() {
        let src = batches(0, &[3, 4]);
        let v = match_tail(0, 0, src.clone(), copy(&src, 0, 5)).unwrap();
        assert_eq!(v.resume, 3);
        assert_eq!(v.target_next, 3);
        assert_eq!(v.records, 3);
        assert_eq!(v.partial, 2);
    }

    #[test]
    fn empty_tail_changes_nothing() {
        let v = match_tail(9, 4, batches(9, &[2]), Vec::new()).unwrap();
        assert_eq!((v.resume, v.target_next, v.records), (9, 4, 0));
        assert!(v.runs.is_empty());
    }

    #[test]
    fn dropped_entries_move_the_boundary_only_with_the_next_batch() {
        let mut src = batches(0, &[2]);
        // A control record at 2, then a batch at 3..5.
        src.push(SourceBatch {
            records: Vec::new(),
            next: 3,
        });
        let mut tail = batches(3, &[2]);
        src.append(&mut tail);
        let target = copy(&src, 10, 4);
        let v = match_tail(0, 10, src, target).unwrap();
        assert_eq!(v.resume, 5);
        assert_eq!(
            v.runs,
            vec![
                VerifiedRun {
                    source_start: 0,
                    target_start: 10,
                    len: 2
                },
                VerifiedRun {
                    source_start: 3,
                    target_start: 12,
                    len: 2
                },
            ]
        );
    }

    #[test]
    fn any_field_difference_is_a_mismatch() {
        let src = batches(0, &[3]);
        let good = copy(&src, 0, 3);
        type Change = Box<dyn Fn(&mut TailRecord)>;
        let cases: Vec<(MismatchKind, Change)> = vec![
            (MismatchKind::Key, Box::new(|r| r.key = None)),
            (
                MismatchKind::Value,
                Box::new(|r| r.value = Some(Bytes::new())),
            ),
            (MismatchKind::Headers, Box::new(|r| r.headers.clear())),
            (MismatchKind::Timestamp, Box::new(|r| r.timestamp += 1)),
        ];
        for (kind, f) in cases {
            let mut t = good.clone();
            f(&mut t[1]);
            let m = match_tail(0, 0, src.clone(), t).unwrap_err();
            assert_eq!(m.kind, kind);
            assert_eq!((m.source_offset, m.target_offset), (Some(1), Some(1)));
        }
    }

    #[test]
    fn a_longer_target_is_another_writer() {
        let src = batches(0, &[2]);
        let mut t = copy(&src, 0, 2);
        t.push(rec(2, "foreign", 1));
        let m = match_tail(0, 0, src, t).unwrap_err();
        assert_eq!(m.kind, MismatchKind::TargetLonger);
        assert_eq!(m.target_offset, Some(2));
    }

    #[test]
    fn target_offsets_must_increase() {
        let src = batches(0, &[2]);
        let mut t = copy(&src, 5, 2);
        t[1].offset = 5;
        let m = match_tail(0, 5, src, t).unwrap_err();
        assert_eq!(m.kind, MismatchKind::TargetOrder);
    }

    proptest! {
        /// A faithful copy of any prefix is skipped exactly up to its last complete batch, and
        /// the runs map every skipped source offset to its target offset (holes on either
        /// side split runs).
        #[test]
        fn prefixes_verify_to_their_last_boundary(
            sizes in proptest::collection::vec(1usize..6, 1..12),
            gaps in proptest::collection::vec(0i64..3, 0..60),
            take in 0usize..70,
            t0 in 0i64..1000,
        ) {
            let mut src = batches(0, &sizes);
            // Source holes (compaction): shift later offsets.
            let mut shift = 0;
            let mut k = 0;
            for b in &mut src {
                for r in &mut b.records {
                    shift += gaps.get(k).copied().unwrap_or(0);
                    k += 1;
                    r.offset += shift;
                }
                b.next = b.records.last().map_or(b.next, |r| r.offset + 1);
            }
            let total: usize = sizes.iter().sum();
            let n = take.min(total);
            let target = copy(&src, t0, n);
            let v = match_tail(0, t0, src.clone(), target).unwrap();
            // Expected boundary: the largest prefix of whole batches within n.
            let mut whole = 0;
            let mut resume = 0;
            for b in &src {
                if whole + b.records.len() > n { break; }
                whole += b.records.len();
                resume = b.next;
            }
            prop_assert_eq!(v.records as usize, whole);
            prop_assert_eq!(v.partial as usize, n - whole);
            prop_assert_eq!(v.resume, resume);
            prop_assert_eq!(v.target_next, t0 + whole as i64);
            let pairs: Vec<(i64, i64)> = v.runs.iter()
                .flat_map(|r| (0..r.len).map(move |i| (r.source_start + i, r.target_start + i)))
                .collect();
            let want: Vec<(i64, i64)> = src.iter().flat_map(|b| b.records.iter())
                .take(whole).enumerate().map(|(i, r)| (r.offset, t0 + i as i64)).collect();
            prop_assert_eq!(pairs, want);
        }

        /// Changing any one target record's value is always caught.
        #[test]
        fn one_changed_record_is_caught(
            sizes in proptest::collection::vec(1usize..6, 1..8),
            at in 0usize..40,
        ) {
            let src = batches(0, &sizes);
            let total: usize = sizes.iter().sum();
            let mut target = copy(&src, 0, total);
            let i = at % total;
            target[i].value = Some(Bytes::from_static(b"other"));
            let m = match_tail(0, 0, src, target).unwrap_err();
            prop_assert_eq!(m.kind, MismatchKind::Value);
            prop_assert_eq!(m.target_offset, Some(i as i64));
        }
    }
}
