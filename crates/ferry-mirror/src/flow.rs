//! One running flow `source -> target`: its shared state and the task that drives it.
//!
//! [`run_flow`] creates the offset-syncs topic, starts the heartbeat task and the two pipeline
//! tasks (`crate::pipeline`), then refreshes topics (`crate::topics`) every
//! `refresh_topics_interval`, resolving each new partition's start position
//! (`crate::progress`) before handing it to the pipeline. On shutdown it waits for the fetch
//! side to stop and the acknowledgement side to drain and store progress.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_client::Cluster;
use ferry_client::admin::{Admin, GroupOffsets};
use ferry_client::cluster::OffsetSpec;
use ferry_client::fetcher::{FetchConfig, Fetcher, IsolationLevel, TopicPartition};
use ferry_client::producer::IdempotentProducer;
use ferry_client::task::OwnedTask;
use ferry_protocol::transform::ForwardConfig;
use tokio::sync::{broadcast, mpsc, watch};

use crate::budget::ByteBudget;
use crate::engine::{MirrorError, PartitionState, PartitionStatus};
use crate::events::{FlowCounters, MirrorEvent};
use crate::heartbeat;
use crate::offset_sync::OffsetSyncWriter;
use crate::pipeline::{AckSide, FetchSide, PartitionStart, PipelineCommand, SyncSink};
use crate::policy::ReplicationPolicy;
use crate::progress::{decide_start, source_bounds};
use crate::resume;
use crate::settings::{FlowSettings, Isolation, OffsetSyncsLocation};
use crate::topics::{ReadyPartitions, TopicSync};

/// State of one flow shared between its tasks and status readers.
#[derive(Debug)]
pub(crate) struct FlowShared {
    pub name: String,
    pub counters: Arc<FlowCounters>,
    pub partitions: Mutex<BTreeMap<TopicPartition, PartitionStatus>>,
    pub events: broadcast::Sender<MirrorEvent>,
    /// Published offset maps and per-group status (`crate::checkpoint`).
    pub group_state: crate::checkpoint::GroupShared,
}

impl FlowShared {
    pub(crate) fn new(name: String, events: broadcast::Sender<MirrorEvent>) -> Self {
        Self {
            name,
            counters: Arc::new(FlowCounters::default()),
            partitions: Mutex::new(BTreeMap::new()),
            events,
            group_state: crate::checkpoint::GroupShared::default(),
        }
    }

    /// Logs and broadcasts an event (nobody listening is fine).
    pub(crate) fn emit(&self, event: MirrorEvent) {
        event.log();
        crate::metrics::record_event(&self.name, &event);
        let _ = self.events.send(event);
    }

    /// Updates (or creates) a partition's status.
    pub(crate) fn set_partition(&self, tp: &TopicPartition, f: impl FnOnce(&mut PartitionStatus)) {
        let mut map = self
            .partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entry(tp.clone()).or_insert_with(|| PartitionStatus {
            target_topic: String::new(),
            state: PartitionState::Starting,
            source_end: None,
            replicated: -1,
            target_next: -1,
            behind_since_ms: None,
        });
        f(entry);
        let now = heartbeat::now_ms();
        entry.refresh_behind(now);
        crate::metrics::record_lag(
            &self.name,
            &entry.target_topic,
            tp.partition,
            entry.lag().unwrap_or(0),
            entry.lag_seconds(now),
        );
    }
}

/// What a flow task needs from the engine.
#[derive(Debug)]
pub(crate) struct FlowRuntime {
    pub flow: FlowSettings,
    pub shared: Arc<FlowShared>,
    pub source: Cluster,
    pub target: Cluster,
    pub target_producer: Arc<IdempotentProducer>,
    /// Producer for offset syncs (on the cluster the location names), if syncs are on.
    pub sync_producer: Option<Arc<IdempotentProducer>>,
    pub budget: ByteBudget,
    pub fetch: FetchConfig,
    pub forward: ForwardConfig,
    pub shutdown: watch::Receiver<bool>,
}

fn admin_error(
    cluster: &str,
    operation: &'static str,
) -> impl Fn(ferry_client::admin::AdminError) -> MirrorError {
    let cluster = cluster.to_owned();
    move |source| MirrorError::Admin {
        cluster: cluster.clone(),
        operation,
        source,
    }
}

/// Runs one flow until shutdown. See the module docs.
pub(crate) async fn run_flow(rt: FlowRuntime) -> Result<(), MirrorError> {
    let FlowRuntime {
        flow,
        shared,
        source,
        target,
        target_producer,
        sync_producer,
        budget,
        mut fetch,
        forward,
        mut shutdown,
    } = rt;
    let source_admin = Admin::new(source.clone());
    let target_admin = Admin::new(target.clone());

    // Offset-syncs topic (MM2 creates it at connector start; failures are reported, and the
    // writes are retried by the producer).
    let syncs = match sync_producer {
        Some(producer) if flow.emit_offset_syncs => {
            let (admin, alias) = match flow.offset_syncs_location {
                OffsetSyncsLocation::Source => (&source_admin, &flow.target),
                OffsetSyncsLocation::Target => (&target_admin, &flow.source),
            };
            let topic = flow.policy.offset_syncs_topic(alias);
            if let Err(e) = heartbeat::ensure_compacted_topic(
                admin,
                &topic,
                flow.offset_syncs_replication_factor,
            )
            .await
            {
                shared.emit(MirrorEvent::StepFailed {
                    flow: shared.name.clone(),
                    step: "offset syncs",
                    error: format!("creating {topic}: {e}"),
                });
            }
            Some(SyncSink {
                writer: OffsetSyncWriter::new(flow.offset_sync_idle_interval),
                producer,
                topic,
            })
        }
        _ => None,
    };

    let heartbeats = flow.emit_heartbeats.then(|| {
        OwnedTask::spawn(heartbeat::run(
            flow.clone(),
            target_admin.clone(),
            Arc::clone(&target_producer),
            shared.events.clone(),
            shutdown.clone(),
        ))
    });

    fetch.isolation = match flow.isolation {
        Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
        Isolation::ReadUncommitted => IsolationLevel::ReadUncommitted,
    };
    // Topic-config and ACL sync (issue #6): their own tasks, each on its own interval.
    let metadata_sync = [
        OwnedTask::spawn(crate::config_sync::run(
            flow.clone(),
            Arc::clone(&shared),
            source_admin.clone(),
            target_admin.clone(),
            shutdown.clone(),
        )),
        OwnedTask::spawn(crate::acl_sync::run(
            flow.clone(),
            Arc::clone(&shared),
            source_admin.clone(),
            target_admin.clone(),
            Arc::clone(&target_producer),
            shutdown.clone(),
        )),
    ];

    let fetcher =
        Fetcher::new(source.clone(), fetch).map_err(|e| MirrorError::InvalidSettings {
            field: "fetch",
            message: e.to_string(),
        })?;
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let fetch_side = FetchSide::new(
        Arc::clone(&shared),
        flow.clone(),
        fetcher,
        Arc::clone(&target_producer),
        budget,
        forward,
        ack_tx,
        cmd_rx,
        shutdown.clone(),
    );
    let ack_side = AckSide::new(
        Arc::clone(&shared),
        flow.clone(),
        target_admin.clone(),
        syncs,
        ack_rx,
        cmd_tx.clone(),
    );
    // Offset-map history (crate::map_store), read back before any partition starts.
    let ack_side = ack_side.with_map_store(
        crate::map_store::open(&flow, &shared, &target, &target_admin, &target_producer).await,
    );
    let fetch_task = OwnedTask::spawn(fetch_side.run());
    let ack_task = OwnedTask::spawn(ack_side.run());
    // Checkpoints and group-offset sync (issue #7).
    let group_task = flow.groups_enabled().then(|| {
        OwnedTask::spawn(
            crate::checkpoint::GroupTask::new(
                flow.clone(),
                Arc::clone(&shared),
                source_admin.clone(),
                target_admin.clone(),
                Arc::clone(&target_producer),
                shutdown.clone(),
            )
            .run(),
        )
    });

    let mut topics = TopicSync::default();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let mut events = Vec::new();
        let refreshed = topics
            .refresh(&flow, &source_admin, &target_admin, &mut events)
            .await;
        for ev in events {
            shared.emit(ev);
        }
        match refreshed {
            Ok(ready) if !ready.is_empty() => {
                let failed = start_partitions(
                    &flow,
                    &shared,
                    &source,
                    &target,
                    &target_admin,
                    ready,
                    &cmd_tx,
                    forward,
                )
                .await;
                for (r, e) in failed {
                    shared.emit(MirrorEvent::StepFailed {
                        flow: shared.name.clone(),
                        step: "topics",
                        error: format!("starting {}: {e}", r.topic.source),
                    });
                    // Not started: the next refresh hands them out again.
                    topics.forget(&r);
                }
            }
            Ok(_) => {}
            Err(e) => shared.emit(MirrorEvent::StepFailed {
                flow: shared.name.clone(),
                step: "topics",
                error: e.to_string(),
            }),
        }
        tokio::select! {
            () = tokio::time::sleep(flow.refresh_topics_interval) => {}
            r = shutdown.changed() => if r.is_err() { break },
        }
    }
    drop(cmd_tx);
    let _ = fetch_task.await;
    let _ = ack_task.await;
    if let Some(h) = heartbeats {
        let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
    }
    if let Some(h) = group_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
    }
    for h in metadata_sync {
        let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
    }
    Ok(())
}

/// The target's end offsets. A topic ferry has just created may not have a leader everywhere
/// yet (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION for a moment): retried briefly
/// with fresh metadata, instead of waiting for the next topic refresh (600 s by default).
async fn target_end_offsets(
    target: &Cluster,
    topic: &str,
    partitions: &[i32],
) -> Result<Vec<(i32, i64)>, ferry_client::ClientError> {
    let mut backoff = ferry_client::backoff::BackoffConfig::default()
        .with_initial(Duration::from_millis(50))
        .with_max(Duration::from_secs(1))
        .with_deadline(Duration::from_secs(10))
        .start();
    loop {
        match target
            .list_offsets(topic, partitions, OffsetSpec::Latest, false)
            .await
        {
            Ok(t) => return Ok(t),
            Err(e) if e.is_retriable() => {
                if e.needs_metadata_refresh() {
                    target.mark_stale();
                }
                match backoff.next_delay() {
                    Some(d) => tokio::time::sleep(d).await,
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Resolves start positions for newly selected partitions and hands them to the pipeline.
/// Returns the topics whose partitions could not be started, with the reason.
#[expect(
    clippy::too_many_arguments,
    reason = "the flow task's parts, borrowed; a struct would only rename them"
)]
async fn start_partitions(
    flow: &FlowSettings,
    shared: &FlowShared,
    source: &Cluster,
    target: &Cluster,
    target_admin: &Admin,
    ready: Vec<ReadyPartitions>,
    commands: &mpsc::UnboundedSender<PipelineCommand>,
    forward: ForwardConfig,
) -> Vec<(ReadyPartitions, MirrorError)> {
    let group = flow.progress_group_id();
    let stored: GroupOffsets = match target_admin.fetch_offsets(&group, None, true).await {
        Ok(o) => o,
        Err(e) if e.is_not_found() => GroupOffsets::new(),
        Err(e) => {
            let e = admin_error(&flow.target, "fetch progress")(e);
            return ready.into_iter().map(|r| (r, e.clone())).collect();
        }
    };
    let mut failed = Vec::new();
    for r in ready {
        let bounds = match source_bounds(
            source,
            &flow.source,
            &r.topic.source,
            &r.partitions,
            flow.isolation,
        )
        .await
        {
            Ok(b) => b,
            Err(e) => {
                failed.push((r, e));
                continue;
            }
        };
        let target_ends = match target_end_offsets(target, &r.topic.target, &r.partitions).await {
            Ok(t) => t,
            Err(e) => {
                failed.push((
                    r,
                    MirrorError::Client {
                        cluster: flow.target.clone(),
                        operation: "list offsets",
                        source: e,
                    },
                ));
                continue;
            }
        };
        for (partition, log_start, log_end) in bounds {
            let target_tp = TopicPartition::new(r.topic.target.clone(), partition);
            let source_tp = TopicPartition::new(r.topic.source.clone(), partition);
            let (decision, events) = decide_start(
                flow,
                &r.topic.source,
                partition,
                stored.get(&target_tp),
                r.topic.topic_id,
                log_start,
                log_end,
            );
            for ev in events {
                shared.emit(ev);
            }
            let target_next = target_ends
                .iter()
                .find(|(p, _)| *p == partition)
                .map_or(0, |(_, o)| *o);
            match decision {
                Ok(d) => {
                    // Skip, after reading it back, what a crashed process wrote after its
                    // last progress commit (crate::resume).
                    let (resume, verified) = resume::exact_resume(resume::StartingPartition {
                        flow,
                        shared,
                        source,
                        target,
                        forward,
                        source_tp: source_tp.clone(),
                        target_tp: target_tp.clone(),
                        decision: d,
                        stored: stored.get(&target_tp),
                        log_start,
                        log_end,
                        target_end: target_next,
                    })
                    .await;
                    let _ = commands.send(PipelineCommand::Start(PartitionStart {
                        tp: source_tp,
                        target_topic: r.topic.target.clone(),
                        topic_id: r.topic.topic_id,
                        resume,
                        target_next,
                        from_progress: d.from_progress,
                        verified,
                        log_start: Some(log_start),
                    }));
                }
                Err(reason) => shared.set_partition(&source_tp, |s| {
                    s.target_topic.clone_from(&r.topic.target);
                    s.state = PartitionState::Stopped(reason);
                    s.source_end = Some(log_end);
                }),
            }
        }
    }
    failed
}
