//! The invariant checker (reliability.md, "Checker"; Jepsen's Kafka checker for the anomaly
//! names).
//!
//! Producer acknowledgements are ambiguous under faults, so the checker never trusts them: after
//! a run it reads the **source log** with ferry-client's fetcher as ground truth —
//! `read_committed` gives the records that must arrive, `read_uncommitted` minus that gives the
//! aborted ones — then reads the target and compares partition by partition ([`check`]):
//!
//! * **L** no loss: every committed source record is on the target, same partition number;
//! * **O** order: the target holds them in source order; a replay after a fault is allowed only
//!   as a duplicate of records already seen ([`Report::duplicates`], bounded by the caller);
//! * **D** duplicates: counted, with the longest contiguous replay ([`Report::max_replay`]);
//! * **F** fidelity: key, value (null is not empty), headers (order, repeated keys, null values)
//!   and timestamp byte for byte; control records never appear as data;
//! * **A** no aborted reads: no record of an aborted source transaction is on the target;
//! * anything else on the target is an unknown record (Jepsen `:inconsistent-offsets`).
//!
//! The first violation names topic, partition and source/target offsets ([`Violation`]).
//! Checkpoint monotonicity (**M**) is checked by the group tests; this module does not read
//! checkpoints.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_client::Cluster;
use ferry_client::cluster::OffsetSpec;
use ferry_client::fetcher::{FetchConfig, FetchEvent, Fetcher, IsolationLevel, TopicPartition};
use ferry_protocol::batch::{BatchScanner, Entry, ScanConfig};
use ferry_protocol::record::{DecodeOptions, DecodedBatch, Header};

/// One data record as read from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Offset in its partition.
    pub offset: i64,
    /// Key (`None` = null).
    pub key: Option<Bytes>,
    /// Value (`None` = null).
    pub value: Option<Bytes>,
    /// Headers in wire order.
    pub headers: Vec<Header>,
    /// Timestamp as a consumer sees it.
    pub timestamp: i64,
    /// Whether the batch used LogAppendTime.
    pub log_append_time: bool,
}

impl LogRecord {
    /// The workload id header ([`crate::workload::ID_HEADER`]), if present.
    pub fn id(&self) -> Option<String> {
        self.headers
            .iter()
            .find(|h| h.key.as_ref() == crate::workload::ID_HEADER.as_bytes())
            .and_then(|h| h.value.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    fn content(&self) -> Content {
        Content {
            key: self.key.clone(),
            value: self.value.clone(),
            headers: self
                .headers
                .iter()
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect(),
        }
    }

    fn describe(&self) -> String {
        let show = |b: &Option<Bytes>| match b {
            None => "null".to_owned(),
            Some(b) if b.len() > 48 => {
                format!("{:?}…({} B)", String::from_utf8_lossy(&b[..48]), b.len())
            }
            Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
        };
        format!(
            "offset {} id {} key {} value {} ts {}",
            self.offset,
            self.id().unwrap_or_else(|| "-".to_owned()),
            show(&self.key),
            show(&self.value),
            self.timestamp
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Content {
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<(Bytes, Option<Bytes>)>,
}

/// A topic's data records by partition, in offset order.
pub type Log = BTreeMap<i32, Vec<LogRecord>>;

/// Errors of [`read_log`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadLogError {
    /// A client call failed.
    #[error("reading {topic}: {source}")]
    Client {
        /// Topic.
        topic: String,
        /// The error.
        #[source]
        source: ferry_client::ClientError,
    },
    /// A batch failed its CRC or did not decode.
    #[error("reading {topic}-{partition} at {offset}: {detail}")]
    Corrupt {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Fetch offset.
        offset: i64,
        /// The error.
        detail: String,
    },
    /// The end offsets were not reached in time.
    #[error("reading {topic}: end offsets {ends:?} not reached within {after:?} (at {at:?})")]
    Timeout {
        /// Topic.
        topic: String,
        /// Wanted end offsets.
        ends: BTreeMap<i32, i64>,
        /// Positions reached.
        at: BTreeMap<i32, i64>,
        /// Time limit.
        after: Duration,
    },
}

/// Reads every data record of `topic` from its log start to its current end (the last stable
/// offset under [`IsolationLevel::ReadCommitted`], which also drops aborted data). Control
/// records are never returned; every batch's CRC is verified.
pub async fn read_log(
    cluster: &Cluster,
    topic: &str,
    isolation: IsolationLevel,
    timeout: Duration,
) -> Result<Log, ReadLogError> {
    let client = |source| ReadLogError::Client {
        topic: topic.to_owned(),
        source,
    };
    let md = cluster
        .refresh_metadata(ferry_client::cluster::TopicSelection::Topics(vec![
            topic.to_owned(),
        ]))
        .await
        .map_err(client)?;
    let partitions: Vec<i32> = md
        .topics
        .get(topic)
        .map(|t| t.partitions.keys().copied().collect())
        .unwrap_or_default();
    let committed = isolation == IsolationLevel::ReadCommitted;
    let starts: BTreeMap<i32, i64> = cluster
        .list_offsets(topic, &partitions, OffsetSpec::Earliest, false)
        .await
        .map_err(client)?
        .into_iter()
        .collect();
    let ends: BTreeMap<i32, i64> = cluster
        .list_offsets(topic, &partitions, OffsetSpec::Latest, committed)
        .await
        .map_err(client)?
        .into_iter()
        .collect();
    let config = FetchConfig {
        isolation,
        max_wait: Duration::from_millis(100),
        ..FetchConfig::default()
    };
    let mut fetcher = Fetcher::new(cluster.clone(), config).map_err(|e| ReadLogError::Corrupt {
        topic: topic.to_owned(),
        partition: -1,
        offset: -1,
        detail: e.to_string(),
    })?;
    let mut log: Log = partitions.iter().map(|&p| (p, Vec::new())).collect();
    let mut pos = starts.clone();
    for (&p, &start) in &starts {
        if ends.get(&p).is_some_and(|&e| e > start) {
            fetcher.assign(TopicPartition::new(topic, p), start);
        }
    }
    // Producer ids of aborted transactions currently open, per partition (kafka-wire.md §4.3).
    let mut aborting: BTreeMap<i32, HashSet<i64>> = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    while fetcher.positions().next().is_some() {
        if Instant::now() > deadline {
            return Err(ReadLogError::Timeout {
                topic: topic.to_owned(),
                ends,
                at: pos,
                after: timeout,
            });
        }
        let events = match fetcher.fetch().await {
            Ok(ev) => ev,
            Err(e) if e.is_retriable() => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return Err(client(e)),
        };
        for ev in events {
            let FetchEvent::Data(data) = ev else { continue };
            let p = data.tp.partition;
            let end = ends.get(&p).copied().unwrap_or(0);
            let mut next = data.fetch_offset;
            let mut aborted: Vec<_> = data.aborted_transactions.clone();
            aborted.sort_by_key(|a| a.first_offset);
            let mut aborted = aborted.into_iter().peekable();
            let open = aborting.entry(p).or_default();
            let scan = BatchScanner::with_config(
                data.records.clone(),
                ScanConfig::default().with_skip_below(data.fetch_offset),
            );
            for entry in scan {
                let corrupt = |detail: String| ReadLogError::Corrupt {
                    topic: topic.to_owned(),
                    partition: p,
                    offset: data.fetch_offset,
                    detail,
                };
                let Entry::V2(batch) = entry.map_err(|e| corrupt(e.to_string()))? else {
                    return Err(corrupt("legacy message format".to_owned()));
                };
                if batch.base_offset() >= end {
                    break;
                }
                while let Some(a) = aborted.next_if(|a| a.first_offset <= batch.last_offset()) {
                    open.insert(a.producer_id);
                }
                let attrs = batch.attributes();
                let decoded = DecodedBatch::decode(&batch, &DecodeOptions::default())
                    .map_err(|e| corrupt(e.to_string()))?;
                next = batch.next_offset();
                if attrs.is_control() {
                    // Control record key: version i16, type i16 (0 abort, 1 commit).
                    let is_abort = decoded
                        .records
                        .first()
                        .and_then(|r| r.key.as_ref())
                        .is_some_and(|k| k.get(2..4) == Some(&[0, 0]));
                    if is_abort {
                        open.remove(&batch.producer_id());
                    }
                    continue;
                }
                if committed && attrs.is_transactional() && open.contains(&batch.producer_id()) {
                    continue;
                }
                for (i, r) in decoded.records.iter().enumerate() {
                    let offset = batch.base_offset() + i64::from(r.offset_delta);
                    if offset < data.fetch_offset || offset >= end {
                        continue;
                    }
                    log.entry(p).or_default().push(LogRecord {
                        offset,
                        key: r.key.clone(),
                        value: r.value.clone(),
                        headers: r.headers.clone(),
                        timestamp: decoded.timestamp(i).unwrap_or(-1),
                        log_append_time: attrs.is_log_append_time(),
                    });
                }
            }
            if next > data.fetch_offset {
                fetcher.seek(&data.tp, next);
            } else if data.records.is_empty() && data.high_watermark >= end && committed {
                // Nothing returned below the LSO (e.g. an aborted range filtered broker-side).
            }
            pos.insert(p, next.max(data.fetch_offset));
            if next >= end {
                fetcher.unassign(&data.tp);
            }
        }
    }
    Ok(log)
}

/// An invariant violation, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// **L**: a committed source record never reached the target.
    Lost {
        /// Partition.
        partition: i32,
        /// The record on the source.
        source: String,
    },
    /// **O**: the target holds a later source record before an earlier one is there.
    Skipped {
        /// Partition.
        partition: i32,
        /// The first source record jumped over.
        expected: String,
        /// The target record found instead.
        found: String,
        /// Its target offset.
        target_offset: i64,
    },
    /// **F**: a target record has the same id as a source record but different fields.
    Fidelity {
        /// Partition.
        partition: i32,
        /// Which field differs.
        field: &'static str,
        /// The source record.
        source: String,
        /// The target record.
        target: String,
    },
    /// **A**: a record of an aborted source transaction is on the target.
    Aborted {
        /// Partition.
        partition: i32,
        /// The target record.
        target: String,
    },
    /// A target record that matches nothing on the source.
    Unknown {
        /// Partition.
        partition: i32,
        /// The target record.
        target: String,
    },
    /// A partition exists on one side only.
    MissingPartition {
        /// Partition.
        partition: i32,
        /// Which side lacks it.
        side: &'static str,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lost { partition, source } => {
                write!(
                    f,
                    "L lost: partition {partition}: source {source} is not on the target"
                )
            }
            Self::Skipped {
                partition,
                expected,
                found,
                target_offset,
            } => write!(
                f,
                "O order: partition {partition}: expected source {expected}, target offset {target_offset} holds {found}"
            ),
            Self::Fidelity {
                partition,
                field,
                source,
                target,
            } => write!(
                f,
                "F fidelity: partition {partition}: {field} differs: source {source} / target {target}"
            ),
            Self::Aborted { partition, target } => {
                write!(f, "A aborted read: partition {partition}: target {target}")
            }
            Self::Unknown { partition, target } => {
                write!(f, "unknown record: partition {partition}: target {target}")
            }
            Self::MissingPartition { partition, side } => {
                write!(f, "partition {partition} missing on the {side}")
            }
        }
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Source topic.
    pub source_topic: String,
    /// Target topic.
    pub target_topic: String,
    /// Committed source records checked.
    pub source_records: u64,
    /// Target records read.
    pub target_records: u64,
    /// Aborted source records (must not be on the target).
    pub aborted_records: u64,
    /// Target records that repeat a source record already matched.
    pub duplicates: u64,
    /// Longest run of consecutive duplicates (one replay after a fault).
    pub max_replay: u64,
    /// Number of separate replays.
    pub replays: u64,
    /// Violations, first found first (at most 20 kept).
    pub violations: Vec<Violation>,
    /// Violations found in total.
    pub violation_count: u64,
}

impl Report {
    /// Whether L, O, F, A hold and nothing unknown is on the target.
    pub fn is_ok(&self) -> bool {
        self.violation_count == 0
    }

    fn push(&mut self, v: Violation) {
        self.violation_count += 1;
        if self.violations.len() < 20 {
            self.violations.push(v);
        }
    }

    /// Panics with the report, `context` (seed, fault timeline) unless the invariants hold and
    /// there are at most `max_duplicates` duplicates.
    pub fn assert_ok(&self, max_duplicates: u64, context: &str) {
        assert!(
            self.is_ok() && self.duplicates <= max_duplicates,
            "invariants violated (allowed duplicates {max_duplicates}):\n{self}\n{context}"
        );
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} -> {}: {} source records ({} aborted), {} target records, {} duplicates in {} replay(s) (longest {}), {} violation(s)",
            self.source_topic,
            self.target_topic,
            self.source_records,
            self.aborted_records,
            self.target_records,
            self.duplicates,
            self.replays,
            self.max_replay,
            self.violation_count
        )?;
        for v in &self.violations {
            writeln!(f, "  {v}")?;
        }
        Ok(())
    }
}

/// Checks `target` against `source_committed` (ground truth) and `source_uncommitted` (to tell
/// aborted records apart). Partitions map by number. Timestamps are compared unless
/// `compare_timestamps` is false (a LogAppendTime target).
pub fn check(
    source_topic: &str,
    target_topic: &str,
    source_committed: &Log,
    source_uncommitted: &Log,
    target: &Log,
    compare_timestamps: bool,
) -> Report {
    let mut report = Report {
        source_topic: source_topic.to_owned(),
        target_topic: target_topic.to_owned(),
        ..Report::default()
    };
    for &p in target.keys() {
        if !source_committed.contains_key(&p) && target.get(&p).is_some_and(|t| !t.is_empty()) {
            report.push(Violation::MissingPartition {
                partition: p,
                side: "source",
            });
        }
    }
    for (&p, src) in source_committed {
        report.source_records += src.len() as u64;
        let empty = Vec::new();
        let tgt = match target.get(&p) {
            Some(t) => t,
            None if src.is_empty() => &empty,
            None => {
                report.push(Violation::MissingPartition {
                    partition: p,
                    side: "target",
                });
                continue;
            }
        };
        report.target_records += tgt.len() as u64;
        let committed_offsets: HashSet<i64> = src.iter().map(|r| r.offset).collect();
        let aborted: HashMap<Content, &LogRecord> = source_uncommitted
            .get(&p)
            .map(|u| {
                u.iter()
                    .filter(|r| !committed_offsets.contains(&r.offset))
                    .map(|r| (r.content(), r))
                    .collect()
            })
            .unwrap_or_default();
        report.aborted_records += aborted.len() as u64;
        let mut by_content: HashMap<Content, Vec<usize>> = HashMap::new();
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for (i, r) in src.iter().enumerate() {
            by_content.entry(r.content()).or_default().push(i);
            if let Some(id) = r.id() {
                by_id.insert(id, i);
            }
        }
        let ts_ok =
            |s: &LogRecord, t: &LogRecord| !compare_timestamps || s.timestamp == t.timestamp;
        let mut next = 0usize;
        let mut last_dup: Option<usize> = None;
        let mut run = 0u64;
        for t in tgt {
            let content = t.content();
            if let Some(s) = src.get(next)
                && s.content() == content
            {
                if !ts_ok(s, t) {
                    report.push(fidelity(p, "timestamp", s, t));
                }
                next += 1;
                last_dup = None;
                continue;
            }
            let candidates = by_content.get(&content).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(&j) = candidates.iter().rev().find(|&&j| j < next) {
                report.duplicates += 1;
                if last_dup.is_some_and(|d| d + 1 == j) {
                    run += 1;
                } else {
                    report.replays += 1;
                    run = 1;
                }
                report.max_replay = report.max_replay.max(run);
                last_dup = Some(j);
                continue;
            }
            last_dup = None;
            if let Some(&j) = candidates.iter().find(|&&j| j > next) {
                if let Some(expected) = src.get(next) {
                    report.push(Violation::Skipped {
                        partition: p,
                        expected: expected.describe(),
                        found: t.describe(),
                        target_offset: t.offset,
                    });
                }
                next = j + 1;
                continue;
            }
            if aborted.contains_key(&content) {
                report.push(Violation::Aborted {
                    partition: p,
                    target: t.describe(),
                });
                continue;
            }
            if let Some(&j) = t.id().and_then(|id| by_id.get(&id))
                && let Some(s) = src.get(j)
            {
                let field = if s.key != t.key {
                    "key"
                } else if s.value != t.value {
                    "value"
                } else {
                    "headers"
                };
                report.push(fidelity(p, field, s, t));
                if j == next {
                    next += 1;
                }
                continue;
            }
            report.push(Violation::Unknown {
                partition: p,
                target: t.describe(),
            });
        }
        if let Some(s) = src.get(next) {
            report.push(Violation::Lost {
                partition: p,
                source: s.describe(),
            });
        }
    }
    report
}

fn fidelity(partition: i32, field: &'static str, s: &LogRecord, t: &LogRecord) -> Violation {
    Violation::Fidelity {
        partition,
        field,
        source: s.describe(),
        target: t.describe(),
    }
}

/// Reads the source (committed and uncommitted) and the target topic and [`check`]s them.
pub async fn check_topics(
    source: &Cluster,
    source_topic: &str,
    target: &Cluster,
    target_topic: &str,
    timeout: Duration,
) -> Result<Report, ReadLogError> {
    let committed = read_log(source, source_topic, IsolationLevel::ReadCommitted, timeout).await?;
    let uncommitted = read_log(
        source,
        source_topic,
        IsolationLevel::ReadUncommitted,
        timeout,
    )
    .await?;
    let tgt = read_log(target, target_topic, IsolationLevel::ReadCommitted, timeout).await?;
    Ok(check(
        source_topic,
        target_topic,
        &committed,
        &uncommitted,
        &tgt,
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(offset: i64, id: u32) -> LogRecord {
        LogRecord {
            offset,
            key: Some(Bytes::from(format!("k{id}"))),
            value: Some(Bytes::from(format!("v{id}"))),
            headers: vec![Header {
                key: Bytes::from_static(crate::workload::ID_HEADER.as_bytes()),
                value: Some(Bytes::from(format!("run/0/0/{id}"))),
            }],
            timestamp: 1000 + i64::from(id),
            log_append_time: false,
        }
    }

    fn log(ids: &[u32]) -> Log {
        BTreeMap::from([(
            0,
            ids.iter()
                .enumerate()
                .map(|(o, &id)| rec(o as i64, id))
                .collect(),
        )])
    }

    fn run(src: &[u32], tgt: &[u32]) -> Report {
        let s = log(src);
        check("s", "t", &s, &s, &log(tgt), true)
    }

    #[test]
    fn exact_copy_passes() {
        let r = run(&[1, 2, 3, 4], &[1, 2, 3, 4]);
        assert!(r.is_ok(), "{r}");
        assert_eq!(
            (r.source_records, r.target_records, r.duplicates),
            (4, 4, 0)
        );
    }

    #[test]
    fn loss_at_the_end_is_reported_with_the_first_missing_record() {
        let r = run(&[1, 2, 3, 4], &[1, 2]);
        assert!(!r.is_ok());
        assert!(
            matches!(&r.violations[0], Violation::Lost { partition: 0, source } if source.contains("offset 2 ")),
            "{r}"
        );
    }

    #[test]
    fn skip_in_the_middle_is_an_order_violation() {
        let r = run(&[1, 2, 3, 4], &[1, 3, 4]);
        assert!(
            matches!(
                &r.violations[0],
                Violation::Skipped {
                    target_offset: 1,
                    ..
                }
            ),
            "{r}"
        );
        // Reordered: 2 after 3.
        let r = run(&[1, 2, 3], &[1, 3, 2]);
        assert!(!r.is_ok(), "{r}");
    }

    #[test]
    fn a_replay_is_counted_as_duplicates_not_as_a_violation() {
        let r = run(&[1, 2, 3, 4, 5], &[1, 2, 3, 2, 3, 4, 5]);
        assert!(r.is_ok(), "{r}");
        assert_eq!((r.duplicates, r.replays, r.max_replay), (2, 1, 2));
        let r = run(&[1, 2, 3, 4, 5], &[1, 2, 1, 3, 4, 3, 4, 5]);
        assert_eq!((r.duplicates, r.replays, r.max_replay), (3, 2, 2), "{r}");
        r.assert_ok(3, "ctx");
    }

    #[test]
    #[should_panic(expected = "allowed duplicates 0")]
    fn duplicates_above_the_bound_fail() {
        run(&[1, 2], &[1, 1, 2]).assert_ok(0, "seed 1");
    }

    #[test]
    fn changed_fields_are_fidelity_violations() {
        let s = log(&[1, 2]);
        let mut t = s.clone();
        t.get_mut(&0).unwrap()[1].value = None;
        let r = check("s", "t", &s, &s, &t, true);
        assert!(
            matches!(&r.violations[0], Violation::Fidelity { field: "value", .. }),
            "{r}"
        );
        let mut t = s.clone();
        t.get_mut(&0).unwrap()[0].headers.push(Header {
            key: Bytes::from_static(b"x"),
            value: None,
        });
        let r = check("s", "t", &s, &s, &t, true);
        assert!(
            matches!(
                &r.violations[0],
                Violation::Fidelity {
                    field: "headers",
                    ..
                }
            ),
            "{r}"
        );
        let mut t = s.clone();
        t.get_mut(&0).unwrap()[0].timestamp += 1;
        let r = check("s", "t", &s, &s, &t, true);
        assert!(
            matches!(
                &r.violations[0],
                Violation::Fidelity {
                    field: "timestamp",
                    ..
                }
            ),
            "{r}"
        );
        assert!(check("s", "t", &s, &s, &t, false).is_ok());
        // Empty is not null.
        let mut t = s.clone();
        t.get_mut(&0).unwrap()[0].key = Some(Bytes::new());
        assert!(!check("s", "t", &s, &s, &t, true).is_ok());
    }

    #[test]
    fn aborted_and_unknown_records_are_caught() {
        let committed = log(&[1, 3]);
        let mut uncommitted = log(&[1, 2, 3]);
        // Offsets: committed 1 at 0, 3 at 2 (2 was aborted at offset 1).
        committed.clone().get_mut(&0).unwrap()[1].offset = 2;
        let mut c = committed.clone();
        c.get_mut(&0).unwrap()[1].offset = 2;
        uncommitted.get_mut(&0).unwrap()[2].offset = 2;
        let t = log(&[1, 2, 3]);
        let r = check("s", "t", &c, &uncommitted, &t, true);
        assert_eq!(r.aborted_records, 1);
        assert!(matches!(&r.violations[0], Violation::Aborted { .. }), "{r}");
        let mut t = log(&[1, 3]);
        t.get_mut(&0).unwrap().push(rec(5, 99));
        let r = check("s", "t", &c, &uncommitted, &t, true);
        assert!(matches!(&r.violations[0], Violation::Unknown { .. }), "{r}");
    }

    #[test]
    fn missing_partition_on_the_target() {
        let s = log(&[1]);
        let r = check("s", "t", &s, &s, &Log::new(), true);
        assert!(matches!(
            r.violations[0],
            Violation::MissingPartition { side: "target", .. }
        ));
    }
}
