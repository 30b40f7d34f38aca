//! `ferry verify`: proves a replica equals its source, or names every place it does not.
//!
//! For every partition a flow replicates:
//!
//! - **records**: the source's committed records from its log start up to the stored progress
//!   position (`ferry_mirror::progress`: the next source offset and, in the metadata, the next
//!   target offset) are read next to the target's records from its log start up to that
//!   target offset, and compared **in order**, one record at a time: key, value, headers and
//!   timestamp. Control batches and, under `read_committed`, aborted transactions are skipped
//!   on the source (the Java consumer's rule, kafka-wire.md §4.3), exactly as the engine does
//!   not forward them. Offsets are not compared (the target's differ by design); order and
//!   content are. Each side also gets an order-sensitive SHA-256 digest over every record's
//!   key, value, headers and timestamp, printed so two runs can be compared.
//!   Records on the target after the replicated range (written by someone else, or by ferry
//!   after its last progress commit while it runs) are a difference too.
//! - **partition counts** of every selected topic;
//! - **topic configs**, through the config-sync plan of `ferry_mirror::config_sync` (every
//!   key it would change is a difference; excluded keys are not compared), when
//!   `sync.topic.configs.enabled`;
//! - **topic ACLs**, through `ferry_mirror::acl_sync::plan_acls` (every binding it would
//!   create is missing on the target), when `sync.topic.acls.enabled`.
//!
//! Memory is bounded: each side holds at most one fetch response's records (as small
//! per-record hashes, not the records); topics of millions of records stream through.
//!
//! Run it when the replica is quiet (ferry stopped, or `ferry status` ready for cutover and
//! no writes): while ferry writes, the stored progress trails the target by up to the
//! progress interval, which shows up as records after the replicated range.
//!
//! Limits: ranges start at each side's log start, so a source whose retention has already
//! deleted records ferry copied shows a count difference at the start; a target topic with
//! `message.timestamp.type=LogAppendTime` differs in every timestamp; legacy (magic 0/1)
//! batches are not decoded and are reported.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::fmt;
use std::time::Duration;

use ferry_client::admin::{AclBindingFilter, Admin, AdminError, OffsetQuery};
use ferry_client::fetcher::{FetchConfig, FetchEvent, Fetcher, IsolationLevel, TopicPartition};
use ferry_client::{Cluster, ConnectionConfig};
use ferry_mirror::acl_sync::{describe_binding, plan_acls};
use ferry_mirror::config_sync::plan_config_sync;
use ferry_mirror::engine::MirrorError;
use ferry_mirror::progress::ProgressMetadata;
use ferry_mirror::settings::{EngineSettings, FlowSettings};
use ferry_protocol::batch::{BatchScanner, Entry, RecordBatch};
use ferry_protocol::record::{DecodeOptions, DecodedBatch, Record};
use sha2::{Digest, Sha256};

use super::Error;
use super::status::{connect, isolation, selected_partitions};

/// Options of [`verify`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Bytes fetched per partition and request (bounds memory). Default 1 MiB.
    pub fetch_partition_bytes: i32,
    /// Record differences reported per partition before the rest are only counted.
    pub max_record_differences: usize,
    /// Fetches in a row that may return nothing below the range end before giving up.
    pub max_empty_fetches: u32,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            fetch_partition_bytes: 1 << 20,
            max_record_differences: 10,
            max_empty_fetches: 40,
        }
    }
}

/// Which part of a record differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordField {
    /// The key.
    Key,
    /// The value.
    Value,
    /// The headers.
    Headers,
    /// The timestamp.
    Timestamp,
}

/// One difference between source and target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Difference {
    /// The target topic does not exist.
    TopicMissing {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Expected target topic.
        target_topic: String,
    },
    /// Partition counts differ.
    PartitionCount {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Its partitions.
        source: usize,
        /// Target topic.
        target_topic: String,
        /// Its partitions.
        target: usize,
    },
    /// No progress is stored for a selected partition: nothing to compare.
    NotReplicated {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// The n-th record differs.
    Record {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Source offset.
        source_offset: i64,
        /// Target topic.
        target_topic: String,
        /// Target offset.
        target_offset: i64,
        /// What differs.
        fields: Vec<RecordField>,
    },
    /// One side has more records in the replicated range.
    Count {
        /// `source->target`.
        flow: String,
        /// Source topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Source records.
        source_records: u64,
        /// Target records.
        target_records: u64,
        /// Offset of the first unmatched record, and on which side (`source` or `target`).
        first_unmatched: (&'static str, i64),
    },
    /// The target holds records after the replicated range.
    TargetBeyondRange {
        /// `source->target`.
        flow: String,
        /// Target topic.
        target_topic: String,
        /// Partition.
        partition: i32,
        /// First offset after the replicated range.
        from: i64,
        /// Target end offset.
        to: i64,
    },
    /// A partition could not be read to the end of the range.
    Unreadable {
        /// `source->target`.
        flow: String,
        /// `source` or `target`.
        side: &'static str,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset reached.
        offset: i64,
        /// Why.
        reason: String,
    },
    /// A topic config differs (what config sync would change).
    Config {
        /// `source->target`.
        flow: String,
        /// Target topic.
        target_topic: String,
        /// The key.
        key: String,
        /// What the target should hold (`None` = its default).
        expected: Option<String>,
    },
    /// A topic ACL that ACL sync would create is missing on the target.
    AclMissing {
        /// `source->target`.
        flow: String,
        /// The binding, described.
        binding: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TopicMissing {
                flow,
                topic,
                target_topic,
            } => write!(
                f,
                "{flow}: topic {topic}: target topic {target_topic} is missing"
            ),
            Self::PartitionCount {
                flow,
                topic,
                source,
                target_topic,
                target,
            } => write!(
                f,
                "{flow}: topic {topic} has {source} partitions, target {target_topic} has {target}"
            ),
            Self::NotReplicated {
                flow,
                topic,
                partition,
            } => write!(
                f,
                "{flow}: {topic}-{partition}: no replication progress stored"
            ),
            Self::Record {
                flow,
                topic,
                partition,
                source_offset,
                target_topic,
                target_offset,
                fields,
            } => {
                let names: Vec<&str> = fields
                    .iter()
                    .map(|x| match x {
                        RecordField::Key => "key",
                        RecordField::Value => "value",
                        RecordField::Headers => "headers",
                        RecordField::Timestamp => "timestamp",
                    })
                    .collect();
                write!(
                    f,
                    "{flow}: {topic}-{partition} offset {source_offset} differs from \
                     {target_topic}-{partition} offset {target_offset}: {}",
                    names.join(", ")
                )
            }
            Self::Count {
                flow,
                topic,
                partition,
                source_records,
                target_records,
                first_unmatched: (side, offset),
            } => write!(
                f,
                "{flow}: {topic}-{partition}: {source_records} source records, \
                 {target_records} target records; first unmatched {side} offset {offset}"
            ),
            Self::TargetBeyondRange {
                flow,
                target_topic,
                partition,
                from,
                to,
            } => write!(
                f,
                "{flow}: {target_topic}-{partition}: {} record(s) on the target after the \
                 replicated range, offsets {from}..{to}",
                to - from
            ),
            Self::Unreadable {
                flow,
                side,
                topic,
                partition,
                offset,
                reason,
            } => write!(
                f,
                "{flow}: {side} {topic}-{partition} unreadable at offset {offset}: {reason}"
            ),
            Self::Config {
                flow,
                target_topic,
                key,
                expected,
            } => match expected {
                Some(v) => write!(f, "{flow}: config {target_topic} {key}: expected {v:?}"),
                None => write!(
                    f,
                    "{flow}: config {target_topic} {key}: expected the default (target overrides it)"
                ),
            },
            Self::AclMissing { flow, binding } => {
                write!(f, "{flow}: ACL missing on the target: {binding}")
            }
        }
    }
}

/// What was compared for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionCheck {
    /// `source->target`.
    pub flow: String,
    /// Source topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Target topic.
    pub target_topic: String,
    /// Source offsets read, `[start, end)`.
    pub source_range: (i64, i64),
    /// Target offsets read, `[start, end)`.
    pub target_range: (i64, i64),
    /// Source records compared.
    pub source_records: u64,
    /// Target records compared.
    pub target_records: u64,
    /// Order-sensitive digest of the source records (hex).
    pub source_digest: String,
    /// Order-sensitive digest of the target records (hex).
    pub target_digest: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Partitions compared.
    pub partitions: Vec<PartitionCheck>,
    /// Every difference found.
    pub differences: Vec<Difference>,
    /// What was not compared, and why.
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// True when nothing differs.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Progress of [`verify`], reported after every fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyProgress {
    /// `topic-partition` being compared.
    pub partition: String,
    /// Source records compared so far in this partition.
    pub done: u64,
    /// Source offsets in the range (an upper bound on its records).
    pub total: u64,
}

/// Per-record hashes: enough to say which field differs, small enough to buffer a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RecordHash {
    offset: i64,
    key: u64,
    value: u64,
    headers: u64,
    timestamp: i64,
}

fn h64(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

fn nullable(b: Option<&bytes::Bytes>) -> Vec<u8> {
    match b {
        None => vec![0],
        Some(b) => {
            let mut v = Vec::with_capacity(9 + b.len());
            v.push(1);
            v.extend_from_slice(&(b.len() as u64).to_be_bytes());
            v.extend_from_slice(b);
            v
        }
    }
}

fn hash_record(offset: i64, timestamp: i64, r: &Record) -> RecordHash {
    let mut headers = Vec::new();
    headers.extend_from_slice(&(r.headers.len() as u64).to_be_bytes());
    for h in &r.headers {
        headers.extend_from_slice(&nullable(Some(&h.key)));
        headers.extend_from_slice(&nullable(h.value.as_ref()));
    }
    RecordHash {
        offset,
        key: h64(&[&nullable(r.key.as_ref())]),
        value: h64(&[&nullable(r.value.as_ref())]),
        headers: h64(&[&headers]),
        timestamp,
    }
}

/// Reads one partition's records in `[pos, end)` in order, hashing each.
struct RecordStream {
    fetcher: Fetcher,
    tp: TopicPartition,
    pos: i64,
    end: i64,
    buf: VecDeque<RecordHash>,
    read_committed: bool,
    pending_aborts: BTreeSet<(i64, i64)>,
    aborted_producers: HashSet<i64>,
    digest: Sha256,
    records: u64,
    legacy: u64,
    empty_fetches: u32,
    max_empty: u32,
}

impl RecordStream {
    fn new(
        cluster: &Cluster,
        tp: TopicPartition,
        start: i64,
        end: i64,
        isolation: IsolationLevel,
        options: &VerifyOptions,
    ) -> Result<Self, String> {
        let config = FetchConfig {
            max_wait: Duration::from_millis(200),
            partition_max_bytes: options.fetch_partition_bytes.max(1024),
            max_bytes: options.fetch_partition_bytes.max(1024),
            isolation,
            sessions: false,
            ..FetchConfig::default()
        };
        let mut fetcher = Fetcher::new(cluster.clone(), config).map_err(|e| e.to_string())?;
        fetcher.assign(tp.clone(), start);
        Ok(Self {
            fetcher,
            tp,
            pos: start,
            end,
            buf: VecDeque::new(),
            read_committed: isolation == IsolationLevel::ReadCommitted,
            pending_aborts: BTreeSet::new(),
            aborted_producers: HashSet::new(),
            digest: Sha256::new(),
            records: 0,
            legacy: 0,
            empty_fetches: 0,
            max_empty: options.max_empty_fetches,
        })
    }

    /// The next record, `None` at the range end; `Err` with the offset and reason.
    async fn next(&mut self) -> Result<Option<RecordHash>, (i64, String)> {
        loop {
            if let Some(r) = self.buf.pop_front() {
                self.records += 1;
                self.digest.update(r.key.to_be_bytes());
                self.digest.update(r.value.to_be_bytes());
                self.digest.update(r.headers.to_be_bytes());
                self.digest.update(r.timestamp.to_be_bytes());
                return Ok(Some(r));
            }
            if self.pos >= self.end {
                return Ok(None);
            }
            self.fill().await.map_err(|e| (self.pos, e))?;
        }
    }

    async fn fill(&mut self) -> Result<(), String> {
        self.fetcher.seek(&self.tp, self.pos);
        let events = self.fetcher.fetch().await.map_err(|e| e.to_string())?;
        let before = self.pos;
        for ev in events {
            match ev {
                FetchEvent::Data(fp) if fp.fetch_offset == self.pos => {
                    for a in &fp.aborted_transactions {
                        self.pending_aborts.insert((a.first_offset, a.producer_id));
                    }
                    for entry in BatchScanner::new(fp.records.clone()) {
                        let entry = entry.map_err(|e| e.to_string())?;
                        match entry {
                            Entry::V2(b) => self.batch(&b)?,
                            _ => {
                                self.legacy += 1;
                                self.pos = self.pos.max(entry.last_offset() + 1);
                            }
                        }
                        if self.pos >= self.end {
                            break;
                        }
                    }
                }
                FetchEvent::Data(_) => {}
                FetchEvent::OffsetOutOfRange {
                    log_start_offset,
                    high_watermark,
                    ..
                } => {
                    return Err(format!(
                        "offset out of range (log start {log_start_offset}, end {high_watermark})"
                    ));
                }
                FetchEvent::Error { error, .. } if !error.is_retriable() => {
                    return Err(error.to_string());
                }
                _ => {}
            }
        }
        if self.pos == before && self.buf.is_empty() {
            self.empty_fetches += 1;
            if self.empty_fetches > self.max_empty {
                return Err(format!(
                    "no data below the range end {} after {} fetches",
                    self.end, self.empty_fetches
                ));
            }
        } else {
            self.empty_fetches = 0;
        }
        Ok(())
    }

    fn batch(&mut self, b: &RecordBatch) -> Result<(), String> {
        if b.last_offset() < self.pos {
            return Ok(());
        }
        let next = b.next_offset();
        let attrs = b.attributes();
        if self.read_committed && attrs.is_transactional() {
            // Aborted transactions starting at or before this batch become active
            // (the Java consumer's `CompletedFetch` rule, kafka-wire.md §4.3).
            while let Some(&(first, pid)) = self.pending_aborts.first() {
                if first > b.last_offset() {
                    break;
                }
                self.pending_aborts.remove(&(first, pid));
                self.aborted_producers.insert(pid);
            }
        }
        let decoded = DecodedBatch::decode(b, &DecodeOptions::default())
            .map_err(|e| format!("batch at offset {}: {e}", b.base_offset()))?;
        if attrs.is_control() {
            // ABORT marker (type 0) ends the producer's aborted transaction.
            let kind = decoded
                .records
                .first()
                .and_then(|r| r.key.as_ref())
                .and_then(|k| k.get(2..4))
                .map(|t| i16::from_be_bytes([t[0], t[1]]));
            if kind == Some(0) {
                self.aborted_producers.remove(&b.producer_id());
            }
            self.pos = next;
            return Ok(());
        }
        if self.read_committed
            && attrs.is_transactional()
            && self.aborted_producers.contains(&b.producer_id())
        {
            self.pos = next;
            return Ok(());
        }
        for (i, r) in decoded.records.iter().enumerate() {
            let offset = b.base_offset() + i64::from(r.offset_delta);
            if offset < self.pos || offset >= self.end {
                continue;
            }
            let ts = decoded.timestamp(i).unwrap_or(-1);
            self.buf.push_back(hash_record(offset, ts, r));
        }
        self.pos = next;
        Ok(())
    }

    fn digest_hex(&self) -> String {
        self.digest
            .clone()
            .finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn admin_err(cluster: &str, operation: &'static str) -> impl Fn(AdminError) -> Error {
    let cluster = cluster.to_owned();
    move |source| {
        Error::from(MirrorError::Admin {
            cluster: cluster.clone(),
            operation,
            source,
        })
    }
}

async fn offsets(
    admin: &Admin,
    alias: &str,
    tps: &[TopicPartition],
    query: OffsetQuery,
    isolation: IsolationLevel,
) -> Result<BTreeMap<TopicPartition, i64>, Error> {
    if tps.is_empty() {
        return Ok(BTreeMap::new());
    }
    let q: BTreeMap<TopicPartition, OffsetQuery> =
        tps.iter().map(|tp| (tp.clone(), query)).collect();
    let listed = admin
        .list_offsets(&q, isolation)
        .await
        .map_err(admin_err(alias, "list offsets"))?;
    Ok(listed
        .into_iter()
        .filter_map(|(tp, r)| r.ok().map(|l| (tp, l.offset)))
        .collect())
}

/// Compares every flow of `settings`; see the module docs. `progress` is called after every
/// fetch.
///
/// # Errors
/// A cluster that cannot be reached or an admin call that fails (differences are not errors;
/// they are in the report).
pub async fn verify(
    settings: &EngineSettings,
    options: &VerifyOptions,
    progress: &mut (dyn FnMut(&VerifyProgress) + Send),
) -> Result<VerifyReport, Error> {
    let mut report = VerifyReport::default();
    for flow in &settings.flows {
        verify_flow(flow, &settings.clusters, options, progress, &mut report).await?;
    }
    Ok(report)
}

async fn verify_flow(
    flow: &FlowSettings,
    clusters: &BTreeMap<String, ConnectionConfig>,
    options: &VerifyOptions,
    progress: &mut (dyn FnMut(&VerifyProgress) + Send),
    report: &mut VerifyReport,
) -> Result<(), Error> {
    let name = flow.name();
    let source = connect(&flow.source, clusters).await?;
    let target = connect(&flow.target, clusters).await?;
    let source_admin = Admin::new(source.clone());
    let target_admin = Admin::new(target.clone());

    // Topics and partition counts.
    let selected = selected_partitions(flow, &source_admin).await?;
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (tp, target_topic) in &selected {
        *counts
            .entry((tp.topic.clone(), target_topic.clone()))
            .or_default() += 1;
    }
    let target_topics: BTreeMap<String, usize> = target_admin
        .list_topics(false)
        .await
        .map_err(admin_err(&flow.target, "list topics"))?
        .into_iter()
        .map(|t| (t.name, t.partitions))
        .collect();
    let mut missing: BTreeSet<String> = BTreeSet::new();
    for ((topic, target_topic), n) in &counts {
        match target_topics.get(target_topic) {
            None => {
                missing.insert(topic.clone());
                report.differences.push(Difference::TopicMissing {
                    flow: name.clone(),
                    topic: topic.clone(),
                    target_topic: target_topic.clone(),
                });
            }
            Some(t) if t != n => report.differences.push(Difference::PartitionCount {
                flow: name.clone(),
                topic: topic.clone(),
                source: *n,
                target_topic: target_topic.clone(),
                target: *t,
            }),
            Some(_) => {}
        }
    }

    // Records.
    let stored = target_admin
        .fetch_offsets(&flow.progress_group_id(), None, false)
        .await
        .map_err(admin_err(&flow.target, "fetch progress"))?;
    let present: Vec<(TopicPartition, String)> = selected
        .into_iter()
        .filter(|(tp, target_topic)| {
            !missing.contains(&tp.topic)
                && target_topics
                    .get(target_topic)
                    .is_some_and(|n| usize::try_from(tp.partition).is_ok_and(|p| p < *n))
        })
        .collect();
    let src_tps: Vec<TopicPartition> = present.iter().map(|(tp, _)| tp.clone()).collect();
    let dst_tps: Vec<TopicPartition> = present
        .iter()
        .map(|(tp, t)| TopicPartition::new(t.clone(), tp.partition))
        .collect();
    let iso = isolation(flow);
    let src_start = offsets(
        &source_admin,
        &flow.source,
        &src_tps,
        OffsetQuery::Earliest,
        iso,
    )
    .await?;
    let dst_start = offsets(
        &target_admin,
        &flow.target,
        &dst_tps,
        OffsetQuery::Earliest,
        IsolationLevel::ReadUncommitted,
    )
    .await?;
    let dst_end = offsets(
        &target_admin,
        &flow.target,
        &dst_tps,
        OffsetQuery::Latest,
        IsolationLevel::ReadUncommitted,
    )
    .await?;
    for ((tp, target_topic), dst_tp) in present.iter().zip(&dst_tps) {
        let Some(commit) = stored.get(dst_tp) else {
            report.differences.push(Difference::NotReplicated {
                flow: name.clone(),
                topic: tp.topic.clone(),
                partition: tp.partition,
            });
            continue;
        };
        let end = dst_end.get(dst_tp).copied().unwrap_or(0);
        let target_next = commit
            .metadata
            .as_deref()
            .and_then(ProgressMetadata::parse)
            .map_or(end, |m| m.target_next);
        if end > target_next {
            report.differences.push(Difference::TargetBeyondRange {
                flow: name.clone(),
                target_topic: target_topic.clone(),
                partition: tp.partition,
                from: target_next,
                to: end,
            });
        }
        let src_range = (
            src_start.get(tp).copied().unwrap_or(0).min(commit.offset),
            commit.offset,
        );
        let dst_range = (
            dst_start.get(dst_tp).copied().unwrap_or(0).min(target_next),
            target_next,
        );
        let check = compare_partition(
            &name,
            &source,
            &target,
            tp,
            target_topic,
            src_range,
            dst_range,
            iso,
            options,
            progress,
            report,
        )
        .await;
        report.partitions.push(check);
    }

    // Configs.
    if flow.sync_topic_configs.is_some() {
        match plan_config_sync(flow, &source_admin, &target_admin).await {
            Ok(plan) => {
                for change in plan.changes {
                    for op in change.ops {
                        report.differences.push(Difference::Config {
                            flow: name.clone(),
                            target_topic: change.target_topic.clone(),
                            key: op.name.clone(),
                            expected: op.value.clone(),
                        });
                    }
                }
                for (topic, why) in plan.failures {
                    report
                        .notes
                        .push(format!("{name}: configs of {topic} not compared: {why}"));
                }
            }
            Err(e) => report
                .notes
                .push(format!("{name}: configs not compared: {e}")),
        }
    } else {
        report.notes.push(format!(
            "{name}: configs not compared (sync.topic.configs.enabled=false)"
        ));
    }

    // ACLs.
    if flow.sync_topic_acls.is_some() {
        let src = source_admin.describe_acls(&AclBindingFilter::any()).await;
        let dst = target_admin.describe_acls(&AclBindingFilter::any()).await;
        match (src, dst) {
            (Ok(src), Ok(dst)) => {
                let plan = plan_acls(flow, &src, &dst, &BTreeMap::new());
                for b in plan.create {
                    report.differences.push(Difference::AclMissing {
                        flow: name.clone(),
                        binding: describe_binding(&b),
                    });
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                report.notes.push(format!("{name}: ACLs not compared: {e}"))
            }
        }
    } else {
        report.notes.push(format!(
            "{name}: ACLs not compared (sync.topic.acls.enabled=false)"
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn compare_partition(
    flow: &str,
    source: &Cluster,
    target: &Cluster,
    tp: &TopicPartition,
    target_topic: &str,
    src_range: (i64, i64),
    dst_range: (i64, i64),
    iso: IsolationLevel,
    options: &VerifyOptions,
    progress: &mut (dyn FnMut(&VerifyProgress) + Send),
    report: &mut VerifyReport,
) -> PartitionCheck {
    let dst_tp = TopicPartition::new(target_topic, tp.partition);
    let mut check = PartitionCheck {
        flow: flow.to_owned(),
        topic: tp.topic.clone(),
        partition: tp.partition,
        target_topic: target_topic.to_owned(),
        source_range: src_range,
        target_range: dst_range,
        source_records: 0,
        target_records: 0,
        source_digest: String::new(),
        target_digest: String::new(),
    };
    let unreadable = |side, topic: &str, offset, reason: String| Difference::Unreadable {
        flow: flow.to_owned(),
        side,
        topic: topic.to_owned(),
        partition: tp.partition,
        offset,
        reason,
    };
    let src = RecordStream::new(source, tp.clone(), src_range.0, src_range.1, iso, options);
    let dst = RecordStream::new(
        target,
        dst_tp,
        dst_range.0,
        dst_range.1,
        IsolationLevel::ReadCommitted,
        options,
    );
    let (mut src, mut dst) = match (src, dst) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) => {
            report
                .differences
                .push(unreadable("source", &tp.topic, src_range.0, e));
            return check;
        }
        (_, Err(e)) => {
            report
                .differences
                .push(unreadable("target", target_topic, dst_range.0, e));
            return check;
        }
    };
    let label = format!("{}-{}", tp.topic, tp.partition);
    let total = u64::try_from(src_range.1 - src_range.0).unwrap_or(0);
    let mut reported = 0usize;
    let mut extra: Option<(&'static str, i64)> = None;
    let mut last_progress = 0u64;
    loop {
        let a = match src.next().await {
            Ok(a) => a,
            Err((offset, reason)) => {
                report
                    .differences
                    .push(unreadable("source", &tp.topic, offset, reason));
                break;
            }
        };
        let b = match dst.next().await {
            Ok(b) => b,
            Err((offset, reason)) => {
                report
                    .differences
                    .push(unreadable("target", target_topic, offset, reason));
                break;
            }
        };
        match (a, b) {
            (Some(a), Some(b)) => {
                let mut fields = Vec::new();
                if a.key != b.key {
                    fields.push(RecordField::Key);
                }
                if a.value != b.value {
                    fields.push(RecordField::Value);
                }
                if a.headers != b.headers {
                    fields.push(RecordField::Headers);
                }
                if a.timestamp != b.timestamp {
                    fields.push(RecordField::Timestamp);
                }
                if !fields.is_empty() && reported < options.max_record_differences {
                    reported += 1;
                    report.differences.push(Difference::Record {
                        flow: flow.to_owned(),
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        source_offset: a.offset,
                        target_topic: target_topic.to_owned(),
                        target_offset: b.offset,
                        fields,
                    });
                }
            }
            (Some(a), None) => {
                extra.get_or_insert(("source", a.offset));
            }
            (None, Some(b)) => {
                extra.get_or_insert(("target", b.offset));
            }
            (None, None) => break,
        }
        if src.records >= last_progress + 10_000 {
            last_progress = src.records;
            progress(&VerifyProgress {
                partition: label.clone(),
                done: src.records,
                total,
            });
        }
    }
    progress(&VerifyProgress {
        partition: label,
        done: src.records,
        total,
    });
    if let Some(first_unmatched) = extra {
        report.differences.push(Difference::Count {
            flow: flow.to_owned(),
            topic: tp.topic.clone(),
            partition: tp.partition,
            source_records: src.records,
            target_records: dst.records,
            first_unmatched,
        });
    }
    if src.legacy + dst.legacy > 0 {
        report.notes.push(format!(
            "{flow}: {}-{}: {} legacy (magic 0/1) entries not compared",
            tp.topic,
            tp.partition,
            src.legacy + dst.legacy
        ));
    }
    check.source_records = src.records;
    check.target_records = dst.records;
    check.source_digest = src.digest_hex();
    check.target_digest = dst.digest_hex();
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ferry_protocol::record::Header;

    fn rec(key: &str, value: &str) -> Record {
        Record {
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            ..Record::default()
        }
    }

    #[test]
    fn record_hashes_tell_fields_apart() {
        let a = hash_record(0, 5, &rec("k", "v"));
        let b = hash_record(7, 5, &rec("k", "v"));
        assert_eq!((a.key, a.value, a.headers), (b.key, b.value, b.headers));
        let c = hash_record(0, 5, &rec("k", "w"));
        assert_eq!(a.key, c.key);
        assert_ne!(a.value, c.value);
        // Null and empty differ; key/value boundaries cannot shift.
        let null = hash_record(0, 5, &Record::default());
        let empty = hash_record(0, 5, &rec("", ""));
        assert_ne!(null.key, empty.key);
        let mut h = rec("k", "v");
        h.headers.push(Header {
            key: Bytes::from_static(b"h"),
            value: None,
        });
        assert_ne!(hash_record(0, 5, &h).headers, a.headers);
    }

    #[test]
    fn differences_name_the_place() {
        let d = Difference::Record {
            flow: "A->B".into(),
            topic: "t".into(),
            partition: 2,
            source_offset: 41,
            target_topic: "A.t".into(),
            target_offset: 40,
            fields: vec![RecordField::Value],
        };
        assert_eq!(
            d.to_string(),
            "A->B: t-2 offset 41 differs from A.t-2 offset 40: value"
        );
        let d = Difference::TargetBeyondRange {
            flow: "A->B".into(),
            target_topic: "A.t".into(),
            partition: 0,
            from: 10,
            to: 11,
        };
        assert!(d.to_string().contains("offsets 10..11"));
    }
}
