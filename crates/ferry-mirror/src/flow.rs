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
use crate::settings::{FlowSettings, Isolation, OffsetSyncsLocation};
use crate::topics::{ReadyPartitions, TopicSync};

/// State of one flow shared between its tasks and status readers.
#[derive(Debug)]
pub(crate) struct FlowShared {
    pub name: String,
    pub counters: Arc<FlowCounters>,
    pub partitions: Mutex<BTreeMap<TopicPartition, PartitionStatus>>,
    pub events: broadcast::Sender<MirrorEvent>,
}

impl FlowShared {
    pub(crate) fn new(name: String, events: broadcast::Sender<MirrorEvent>) -> Self {
        Self {
            name,
            counters: Arc::new(FlowCounters::default()),
            partitions: Mutex::new(BTreeMap::new()),
            events,
        }
    }

    /// Logs and broadcasts an event (nobody listening is fine).
    pub(crate) fn emit(&self, event: MirrorEvent) {
        event.log();
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
        });
        f(entry);
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
        tokio::spawn(heartbeat::run(
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
    let fetch_task = tokio::spawn(fetch_side.run());
    let ack_task = tokio::spawn(ack_side.run());

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
    Ok(())
}

/// Resolves start positions for newly selected partitions and hands them to the pipeline.
/// Returns the topics whose partitions could not be started, with the reason.
async fn start_partitions(
    flow: &FlowSettings,
    shared: &FlowShared,
    source: &Cluster,
    target: &Cluster,
    target_admin: &Admin,
    ready: Vec<ReadyPartitions>,
    commands: &mpsc::UnboundedSender<PipelineCommand>,
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
        let target_ends = match target
            .list_offsets(&r.topic.target, &r.partitions, OffsetSpec::Latest, false)
            .await
        {
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
                    let _ = commands.send(PipelineCommand::Start(PartitionStart {
                        tp: source_tp,
                        target_topic: r.topic.target.clone(),
                        topic_id: r.topic.topic_id,
                        resume: d.resume,
                        target_next,
                        from_progress: d.from_progress,
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
