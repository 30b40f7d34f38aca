//! Replication status and the cutover verdict, for `ferry status`, `/status` and embedders.
//!
//! A [`StatusReport`] lists, per flow and source partition, the source end offset, the
//! replicated position, the lag in records and seconds and the state; per consumer group the
//! source committed offset, its translation, the target committed offset and whether they
//! agree; and one verdict: **ready for cutover** only when every selected partition has zero
//! lag and every selected group is in sync (the guides' "make sure lag is 0 before moving
//! clients", mm2-compat.md §7.5 on MM2's missing record-lag metric).
//!
//! Two ways to build one:
//! - [`StatusReport::from_engine`]: from a running engine's snapshot ([`crate::Mirror::status`]);
//!   lag in seconds is how long the partition has been behind (0 when caught up);
//! - [`StatusReport::collect`]: from a separate process, without the running one: stored
//!   progress (the progress group on the target, `ferry_mirror::progress`), source end offsets
//!   (ListOffsets, the last stable offset under read_committed); lag in seconds is the age of
//!   the oldest record not yet replicated (one small Fetch per lagging partition). Group
//!   offsets are **not** read this way yet (translation needs the running engine's offset
//!   maps): the verdict then covers partitions only, and says so; ask the running process
//!   (`ferry status --metrics-addr`) for groups.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_client::admin::{Admin, OffsetQuery};
use ferry_client::fetcher::{FetchConfig, FetchEvent, Fetcher, IsolationLevel, TopicPartition};
use ferry_client::{Cluster, ConnectionConfig};
use ferry_mirror::checkpoint::GroupOffsetStatus;
use ferry_mirror::engine::{EngineStatus, MirrorError, PartitionState};
use ferry_mirror::events::StopReason;
use ferry_mirror::progress::ProgressMetadata;
use ferry_mirror::settings::{EngineSettings, FlowSettings, Isolation, StartPosition};
use ferry_protocol::batch::{BatchScanner, Entry};
use serde_json::{Value, json};

use super::Error;
use super::check::{TopicVerdict, explain_topic};

/// Wall-clock now in ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// State of a partition as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportedState {
    /// Selected, start position being resolved.
    Starting,
    /// Replicating.
    Running,
    /// Stopped with an error; the reason.
    Error(String),
    /// Read from stored progress by a separate process (the running process's state is not
    /// known).
    Stored,
    /// No progress stored: never replicated.
    NotStarted,
}

impl ReportedState {
    /// Lower-case name (`running`, `error`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Error(_) => "error",
            Self::Stored => "stored",
            Self::NotStarted => "not_started",
        }
    }
}

/// Status of one source partition.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PartitionReport {
    /// Source topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Target topic.
    pub target_topic: String,
    /// Source end offset (last stable offset under read_committed), if known.
    pub source_end: Option<i64>,
    /// Next source offset to replicate, if known.
    pub replicated: Option<i64>,
    /// Next target offset after the replicated records, if known.
    pub target_next: Option<i64>,
    /// Records not replicated yet, if known.
    pub lag_records: Option<i64>,
    /// Lag in seconds, if known (see the module docs for its two meanings).
    pub lag_seconds: Option<f64>,
    /// State.
    pub state: ReportedState,
}

impl PartitionReport {
    fn caught_up(&self) -> bool {
        self.lag_records == Some(0)
            && !matches!(
                self.state,
                ReportedState::Error(_) | ReportedState::Starting | ReportedState::NotStarted
            )
    }
}

/// Status of one consumer group's partition (group-offset sync).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupReport {
    /// `source->target`.
    pub flow: String,
    /// Group id.
    pub group: String,
    /// Source topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset committed by the group on the source.
    pub source_committed: Option<i64>,
    /// Its translation to the target.
    pub translated: Option<i64>,
    /// Offset committed for the group on the target.
    pub target_committed: Option<i64>,
    /// Whether the target commit equals the translation.
    pub in_sync: bool,
}

/// Status of one flow.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FlowReport {
    /// `source->target`.
    pub flow: String,
    /// Partitions, by source topic and partition.
    pub partitions: Vec<PartitionReport>,
    /// Records replicated by this process (running engine only).
    pub records: Option<u64>,
    /// Batch bytes replicated by this process (running engine only).
    pub bytes: Option<u64>,
    /// Source batches by forwarding route (`as_is`, `patch`, `renumber`, `convert`,
    /// `dropped`) in this process (running engine only; empty otherwise).
    pub batches: BTreeMap<String, u64>,
}

/// A status snapshot with the cutover verdict. See the module docs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StatusReport {
    /// `engine` (a running process) or `stored` (read by a separate process).
    pub origin: &'static str,
    /// Per flow.
    pub flows: Vec<FlowReport>,
    /// Per group and partition (empty when group-offset sync reports nothing).
    pub groups: Vec<GroupReport>,
    /// When the snapshot was taken (ms since the epoch).
    pub taken_at_ms: i64,
}

fn state_of(state: &PartitionState) -> ReportedState {
    match state {
        PartitionState::Starting => ReportedState::Starting,
        PartitionState::Running => ReportedState::Running,
        PartitionState::Stopped(reason) => ReportedState::Error(reason_text(reason)),
        _ => ReportedState::Error("unknown state".to_owned()),
    }
}

fn reason_text(reason: &StopReason) -> String {
    match reason {
        StopReason::OffsetOutOfRange => "position below the source log start".to_owned(),
        StopReason::SourceTruncated => "source log truncated below the position".to_owned(),
        StopReason::TopicRecreated => "source topic recreated".to_owned(),
        StopReason::CorruptBatch => "corrupt batch".to_owned(),
        StopReason::RecordTooLarge => "record too large".to_owned(),
        StopReason::ProduceFailed(e) => format!("target refused a batch: {e}"),
        StopReason::SourceTopicGone => "source topic deleted".to_owned(),
        other => format!("{other:?}"),
    }
}

impl StatusReport {
    /// From a running engine's snapshot.
    pub fn from_engine(status: &EngineStatus) -> Self {
        let now = now_ms();
        let flows = status
            .flows
            .iter()
            .map(|f| FlowReport {
                flow: f.flow.clone(),
                partitions: f
                    .partitions
                    .iter()
                    .map(|(tp, p)| PartitionReport {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        target_topic: p.target_topic.clone(),
                        source_end: p.source_end,
                        replicated: (p.replicated >= 0).then_some(p.replicated),
                        target_next: (p.target_next >= 0).then_some(p.target_next),
                        lag_records: p.lag(),
                        lag_seconds: Some(p.lag_seconds(now)),
                        state: state_of(&p.state),
                    })
                    .collect(),
                records: Some(f.counters.records),
                bytes: Some(f.counters.bytes),
                batches: [
                    ("as_is", f.counters.as_is),
                    ("patch", f.counters.patch),
                    ("renumber", f.counters.renumber),
                    ("convert", f.counters.convert),
                    ("dropped", f.counters.dropped),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            })
            .collect();
        Self {
            origin: "engine",
            flows,
            groups: Vec::new(),
            taken_at_ms: now,
        }
    }

    /// Adds group-offset sync state (`EngineHandle::group_offsets`): a group partition is in
    /// sync when its source commit has a translation and the target commit equals it.
    #[must_use]
    pub fn with_groups(mut self, groups: &[GroupOffsetStatus]) -> Self {
        self.groups = groups
            .iter()
            .map(|g| GroupReport {
                flow: g.flow.clone(),
                group: g.group.clone(),
                topic: g.topic.clone(),
                partition: g.partition,
                source_committed: Some(g.upstream),
                translated: g.translated,
                target_committed: g.target_committed,
                in_sync: g.translated.is_some() && g.target_committed == g.translated,
            })
            .collect();
        self
    }

    /// From stored progress and the clusters, without the running process. See the module
    /// docs. `timeout` bounds each flow's work.
    ///
    /// # Errors
    /// A cluster that cannot be reached, an admin call that fails, or the time limit.
    pub async fn collect(settings: &EngineSettings, timeout: Duration) -> Result<Self, Error> {
        let mut flows = Vec::new();
        for flow in &settings.flows {
            let work = collect_flow(flow, &settings.clusters);
            let report =
                tokio::time::timeout(timeout, work)
                    .await
                    .map_err(|_| Error::Timeout {
                        cluster: flow.name(),
                        operation: "collect status",
                        after: timeout,
                    })??;
            flows.push(report);
        }
        Ok(Self {
            origin: "stored",
            flows,
            groups: Vec::new(),
            taken_at_ms: now_ms(),
        })
    }

    /// Partitions, all flows.
    fn partitions(&self) -> impl Iterator<Item = (&str, &PartitionReport)> {
        self.flows
            .iter()
            .flat_map(|f| f.partitions.iter().map(move |p| (f.flow.as_str(), p)))
    }

    /// True when every selected partition has zero lag (and none failed), every group is in
    /// sync, and there is at least one partition.
    pub fn ready_for_cutover(&self) -> bool {
        self.partitions().next().is_some()
            && self.partitions().all(|(_, p)| p.caught_up())
            && self.groups.iter().all(|g| g.in_sync)
    }

    /// The one-line verdict: `ready for cutover` or `not ready for cutover: <why>`.
    pub fn verdict(&self) -> String {
        if self.ready_for_cutover() {
            return "ready for cutover".to_owned();
        }
        let mut why = Vec::new();
        if self.partitions().next().is_none() {
            why.push("no partition selected yet".to_owned());
        }
        let behind: Vec<&PartitionReport> = self
            .partitions()
            .filter(|(_, p)| !p.caught_up())
            .map(|(_, p)| p)
            .collect();
        if !behind.is_empty() {
            let lag: i64 = behind.iter().filter_map(|p| p.lag_records).sum();
            let first: Vec<String> = behind
                .iter()
                .take(3)
                .map(|p| format!("{}-{}", p.topic, p.partition))
                .collect();
            why.push(format!(
                "{} partition(s) not caught up ({} records behind; {}{})",
                behind.len(),
                lag,
                first.join(", "),
                if behind.len() > 3 { ", ..." } else { "" }
            ));
        }
        let out: Vec<&GroupReport> = self.groups.iter().filter(|g| !g.in_sync).collect();
        if !out.is_empty() {
            let mut names: Vec<&str> = out.iter().map(|g| g.group.as_str()).collect();
            names.dedup();
            why.push(format!(
                "{} group partition(s) not in sync ({})",
                out.len(),
                names.join(", ")
            ));
        }
        format!("not ready for cutover: {}", why.join("; "))
    }

    /// The report as JSON (the format of `ferry status --json` and `/status`).
    pub fn to_json(&self) -> Value {
        let flows: Vec<Value> = self
            .flows
            .iter()
            .map(|f| {
                let parts: Vec<Value> = f
                    .partitions
                    .iter()
                    .map(|p| {
                        json!({
                            "topic": p.topic,
                            "partition": p.partition,
                            "target_topic": p.target_topic,
                            "source_end": p.source_end,
                            "replicated": p.replicated,
                            "target_next": p.target_next,
                            "lag_records": p.lag_records,
                            "lag_seconds": p.lag_seconds,
                            "state": p.state.as_str(),
                            "reason": match &p.state {
                                ReportedState::Error(r) => Some(r.as_str()),
                                _ => None,
                            },
                        })
                    })
                    .collect();
                json!({
                    "flow": f.flow,
                    "lag_records": f.partitions.iter().filter_map(|p| p.lag_records).sum::<i64>(),
                    "records": f.records,
                    "bytes": f.bytes,
                    "batches": f.batches,
                    "partitions": parts,
                })
            })
            .collect();
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|g| {
                json!({
                    "flow": g.flow,
                    "group": g.group,
                    "topic": g.topic,
                    "partition": g.partition,
                    "source_committed": g.source_committed,
                    "translated": g.translated,
                    "target_committed": g.target_committed,
                    "in_sync": g.in_sync,
                })
            })
            .collect();
        json!({
            "origin": self.origin,
            "groups_checked": self.origin == "engine",
            "taken_at_ms": self.taken_at_ms,
            "ready_for_cutover": self.ready_for_cutover(),
            "verdict": self.verdict(),
            "flows": flows,
            "groups": groups,
        })
    }

    /// Reads the JSON of [`StatusReport::to_json`] back (e.g. from a running process's
    /// `/status`); `None` if it is not that format.
    pub fn from_json(v: &Value) -> Option<Self> {
        let i = |v: &Value| v.as_i64();
        let origin = match v.get("origin")?.as_str()? {
            "engine" => "engine",
            _ => "stored",
        };
        let mut flows = Vec::new();
        for f in v.get("flows")?.as_array()? {
            let mut partitions = Vec::new();
            for p in f.get("partitions")?.as_array()? {
                let state = match p.get("state")?.as_str()? {
                    "starting" => ReportedState::Starting,
                    "running" => ReportedState::Running,
                    "stored" => ReportedState::Stored,
                    "not_started" => ReportedState::NotStarted,
                    _ => ReportedState::Error(
                        p.get("reason")
                            .and_then(Value::as_str)
                            .unwrap_or("unknown")
                            .to_owned(),
                    ),
                };
                partitions.push(PartitionReport {
                    topic: p.get("topic")?.as_str()?.to_owned(),
                    partition: i32::try_from(p.get("partition")?.as_i64()?).ok()?,
                    target_topic: p.get("target_topic")?.as_str()?.to_owned(),
                    source_end: i(p.get("source_end")?),
                    replicated: i(p.get("replicated")?),
                    target_next: i(p.get("target_next")?),
                    lag_records: i(p.get("lag_records")?),
                    lag_seconds: p.get("lag_seconds")?.as_f64(),
                    state,
                });
            }
            flows.push(FlowReport {
                flow: f.get("flow")?.as_str()?.to_owned(),
                partitions,
                records: f.get("records").and_then(Value::as_u64),
                bytes: f.get("bytes").and_then(Value::as_u64),
                batches: f
                    .get("batches")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        let mut groups = Vec::new();
        for g in v.get("groups")?.as_array()? {
            groups.push(GroupReport {
                flow: g.get("flow")?.as_str()?.to_owned(),
                group: g.get("group")?.as_str()?.to_owned(),
                topic: g.get("topic")?.as_str()?.to_owned(),
                partition: i32::try_from(g.get("partition")?.as_i64()?).ok()?,
                source_committed: i(g.get("source_committed")?),
                translated: i(g.get("translated")?),
                target_committed: i(g.get("target_committed")?),
                in_sync: g.get("in_sync")?.as_bool()?,
            });
        }
        Some(Self {
            origin,
            flows,
            groups,
            taken_at_ms: v.get("taken_at_ms").and_then(Value::as_i64).unwrap_or(0),
        })
    }

    /// The report as text for a terminal; the last line is the verdict.
    pub fn to_text(&self) -> String {
        let opt = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let mut out = String::new();
        for f in &self.flows {
            out.push_str(&format!("flow {}\n", f.flow));
            out.push_str(&format!(
                "  {:<40} {:>12} {:>12} {:>10} {:>9}  state\n",
                "partition", "source end", "replicated", "lag", "lag s"
            ));
            for p in &f.partitions {
                let state = match &p.state {
                    ReportedState::Error(r) => format!("error: {r}"),
                    s => s.as_str().to_owned(),
                };
                out.push_str(&format!(
                    "  {:<40} {:>12} {:>12} {:>10} {:>9}  {}\n",
                    format!("{}-{} -> {}", p.topic, p.partition, p.target_topic),
                    opt(p.source_end),
                    opt(p.replicated),
                    opt(p.lag_records),
                    p.lag_seconds
                        .map_or_else(|| "-".to_owned(), |s| format!("{s:.1}")),
                    state
                ));
            }
        }
        if !self.groups.is_empty() {
            out.push_str("groups\n");
            for g in &self.groups {
                out.push_str(&format!(
                    "  {} {}-{}: source {} translated {} target {} {}\n",
                    g.group,
                    g.topic,
                    g.partition,
                    opt(g.source_committed),
                    opt(g.translated),
                    opt(g.target_committed),
                    if g.in_sync { "in sync" } else { "NOT in sync" }
                ));
            }
        }
        if self.origin == "stored" {
            out.push_str(
                "note: group offsets not checked from stored state; use --metrics-addr of the running ferry\n",
            );
        }
        out.push_str(&self.verdict());
        out.push('\n');
        out
    }
}

/// Connects to the cluster `alias` of the loaded settings, naming it in the error.
pub(super) async fn connect(
    alias: &str,
    clusters: &BTreeMap<String, ConnectionConfig>,
) -> Result<Cluster, Error> {
    let config = clusters.get(alias).cloned().ok_or_else(|| {
        Error::from(MirrorError::InvalidSettings {
            field: "clusters",
            message: format!("unknown cluster {alias:?}"),
        })
    })?;
    Cluster::connect(config).await.map_err(|source| {
        Error::from(MirrorError::Connect {
            cluster: alias.to_owned(),
            source,
        })
    })
}

fn admin_err(
    cluster: &str,
    operation: &'static str,
) -> impl Fn(ferry_client::admin::AdminError) -> Error {
    let cluster = cluster.to_owned();
    move |source| {
        Error::from(MirrorError::Admin {
            cluster: cluster.clone(),
            operation,
            source,
        })
    }
}

/// The selected source partitions of `flow` with their target topics, from the live source.
pub(crate) async fn selected_partitions(
    flow: &FlowSettings,
    source: &Admin,
) -> Result<Vec<(TopicPartition, String)>, Error> {
    let topics = source
        .list_topics(true)
        .await
        .map_err(admin_err(&flow.source, "list topics"))?;
    let mut out = Vec::new();
    for t in topics {
        if let TopicVerdict::Selected { target } = explain_topic(flow, &t.name, t.is_internal) {
            for p in 0..i32::try_from(t.partitions).unwrap_or(i32::MAX) {
                out.push((TopicPartition::new(t.name.clone(), p), target.clone()));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn isolation(flow: &FlowSettings) -> IsolationLevel {
    match flow.isolation {
        Isolation::ReadUncommitted => IsolationLevel::ReadUncommitted,
        _ => IsolationLevel::ReadCommitted,
    }
}

/// Source `(log start, end)` per partition.
pub(crate) async fn source_bounds(
    flow: &FlowSettings,
    source: &Admin,
    parts: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, (Option<i64>, Option<i64>)>, Error> {
    let mut out = BTreeMap::new();
    for (query, slot) in [(OffsetQuery::Earliest, 0), (OffsetQuery::Latest, 1)] {
        let queries: BTreeMap<TopicPartition, OffsetQuery> =
            parts.iter().map(|tp| (tp.clone(), query)).collect();
        let listed = source
            .list_offsets(&queries, isolation(flow))
            .await
            .map_err(admin_err(&flow.source, "list offsets"))?;
        for (tp, r) in listed {
            let e: &mut (Option<i64>, Option<i64>) = out.entry(tp).or_default();
            let v = r.ok().map(|l| l.offset);
            if slot == 0 {
                e.0 = v;
            } else {
                e.1 = v;
            }
        }
    }
    Ok(out)
}

async fn collect_flow(
    flow: &FlowSettings,
    clusters: &BTreeMap<String, ConnectionConfig>,
) -> Result<FlowReport, Error> {
    let source = connect(&flow.source, clusters).await?;
    let target = connect(&flow.target, clusters).await?;
    let source_admin = Admin::new(source.clone());
    let target_admin = Admin::new(target);
    let selected = selected_partitions(flow, &source_admin).await?;
    let tps: Vec<TopicPartition> = selected.iter().map(|(tp, _)| tp.clone()).collect();
    let bounds = source_bounds(flow, &source_admin, &tps).await?;
    let stored = target_admin
        .fetch_offsets(&flow.progress_group_id(), None, false)
        .await
        .map_err(admin_err(&flow.target, "fetch progress"))?;
    let now = now_ms();
    let mut partitions = Vec::new();
    let mut lagging = Vec::new();
    for (tp, target_topic) in selected {
        let (start, end) = bounds.get(&tp).copied().unwrap_or_default();
        let progress = stored.get(&TopicPartition::new(target_topic.clone(), tp.partition));
        let (replicated, target_next, state) = match progress {
            Some(c) => (
                Some(c.offset),
                c.metadata
                    .as_deref()
                    .and_then(ProgressMetadata::parse)
                    .map(|m| m.target_next),
                ReportedState::Stored,
            ),
            None => (
                match flow.start {
                    StartPosition::Earliest => start,
                    _ => None,
                },
                None,
                ReportedState::NotStarted,
            ),
        };
        let lag_records = match (end, replicated) {
            (Some(e), Some(r)) => Some((e - r).max(0)),
            _ => None,
        };
        if let (Some(l), Some(r)) = (lag_records, replicated)
            && l > 0
        {
            lagging.push((tp.clone(), r));
        }
        partitions.push(PartitionReport {
            topic: tp.topic.clone(),
            partition: tp.partition,
            target_topic,
            source_end: end,
            replicated,
            target_next,
            lag_records,
            lag_seconds: (lag_records == Some(0)).then_some(0.0),
            state,
        });
    }
    let ages = oldest_unreplicated(&source, flow, &lagging).await;
    for p in &mut partitions {
        if let Some(ts) = ages.get(&TopicPartition::new(p.topic.clone(), p.partition)) {
            #[allow(clippy::cast_precision_loss)]
            let secs = now.saturating_sub(*ts).max(0) as f64 / 1000.0;
            p.lag_seconds = Some(secs);
        }
    }
    Ok(FlowReport {
        flow: flow.name(),
        partitions,
        records: None,
        bytes: None,
        batches: BTreeMap::new(),
    })
}

/// Timestamp of the first record at each position (one Fetch round, 64 KiB per partition);
/// partitions that return nothing are left out.
async fn oldest_unreplicated(
    source: &Cluster,
    flow: &FlowSettings,
    parts: &[(TopicPartition, i64)],
) -> BTreeMap<TopicPartition, i64> {
    let mut out = BTreeMap::new();
    if parts.is_empty() {
        return out;
    }
    let config = FetchConfig {
        max_wait: Duration::from_millis(100),
        partition_max_bytes: 64 * 1024,
        max_bytes: 8 * 1024 * 1024,
        isolation: isolation(flow),
        sessions: false,
        ..FetchConfig::default()
    };
    let Ok(mut fetcher) = Fetcher::new(source.clone(), config) else {
        return out;
    };
    for (tp, pos) in parts {
        fetcher.assign(tp.clone(), *pos);
    }
    let Ok(events) = fetcher.fetch().await else {
        return out;
    };
    for ev in events {
        let FetchEvent::Data(fp) = ev else { continue };
        for entry in BatchScanner::new(fp.records.clone()).flatten() {
            let Entry::V2(b) = entry else { continue };
            if b.last_offset() < fp.fetch_offset || b.attributes().is_control() {
                continue;
            }
            let ts = if b.attributes().is_log_append_time() {
                b.max_timestamp()
            } else {
                b.base_timestamp()
            };
            out.insert(fp.tp.clone(), ts);
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(lag: Option<i64>, state: ReportedState) -> PartitionReport {
        PartitionReport {
            topic: "t".into(),
            partition: 0,
            target_topic: "A.t".into(),
            source_end: Some(10),
            replicated: lag.map(|l| 10 - l),
            target_next: None,
            lag_records: lag,
            lag_seconds: None,
            state,
        }
    }

    fn report(parts: Vec<PartitionReport>, groups: Vec<GroupReport>) -> StatusReport {
        StatusReport {
            origin: "engine",
            flows: vec![FlowReport {
                flow: "A->B".into(),
                partitions: parts,
                records: Some(3),
                bytes: None,
                batches: [("patch".to_owned(), 2)].into_iter().collect(),
            }],
            groups,
            taken_at_ms: 0,
        }
    }

    #[test]
    fn verdict_needs_zero_lag_everywhere() {
        let r = report(vec![part(Some(0), ReportedState::Running)], vec![]);
        assert!(r.ready_for_cutover());
        assert_eq!(r.verdict(), "ready for cutover");
        let r = report(
            vec![
                part(Some(0), ReportedState::Running),
                part(Some(4), ReportedState::Running),
            ],
            vec![],
        );
        assert!(!r.ready_for_cutover());
        assert!(r.verdict().contains("4 records behind"), "{}", r.verdict());
        let r = report(vec![part(None, ReportedState::Running)], vec![]);
        assert!(!r.ready_for_cutover(), "unknown lag is not zero lag");
        let r = report(
            vec![part(Some(0), ReportedState::Error("x".into()))],
            vec![],
        );
        assert!(!r.ready_for_cutover(), "a failed partition is not ready");
        assert!(!report(vec![], vec![]).ready_for_cutover());
    }

    #[test]
    fn verdict_needs_groups_in_sync() {
        let g = GroupReport {
            flow: "A->B".into(),
            group: "g1".into(),
            topic: "t".into(),
            partition: 0,
            source_committed: Some(5),
            translated: Some(5),
            target_committed: Some(3),
            in_sync: false,
        };
        let r = report(vec![part(Some(0), ReportedState::Running)], vec![g.clone()]);
        assert!(!r.ready_for_cutover());
        assert!(r.verdict().contains("g1"));
        let r = report(
            vec![part(Some(0), ReportedState::Running)],
            vec![GroupReport { in_sync: true, ..g }],
        );
        assert!(r.ready_for_cutover());
        let j = r.to_json();
        assert_eq!(j["ready_for_cutover"], Value::Bool(true));
        assert_eq!(j["flows"][0]["partitions"][0]["lag_records"], json!(0));
        assert!(r.to_text().ends_with("ready for cutover\n"));
        let back = StatusReport::from_json(&j).unwrap();
        assert_eq!(back, r);
        assert!(StatusReport::from_json(&json!({"x": 1})).is_none());
    }
}
