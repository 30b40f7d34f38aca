//! The replication engine: validated settings in, running flows out.
//!
//! ```text
//! Engine::new(settings)?        validate, no I/O
//! engine.handle()               status() snapshots and the event stream, usable while running
//! engine.run(shutdown).await    connect, create topics, replicate; on shutdown drain and store progress
//! ```
//!
//! `run` connects to every cluster a flow names, starts one idempotent producer per target
//! cluster (shared by that cluster's flows: data and heartbeats) and one per offset-syncs
//! location, then one task per flow (`crate::flow`). When `shutdown` resolves, fetching stops,
//! every batch in flight is awaited and progress is committed, so a clean restart re-sends
//! nothing. Dropping the future instead (a crash) loses at most the unacknowledged window:
//! those batches are sent again on restart.
//!
//! # References
//! - DESIGN.md ("Progress and delivery"), issue #5 items 2–4

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use ferry_client::admin::AdminError;
use ferry_client::fetcher::{FetchConfig, TopicPartition};
use ferry_client::producer::{IdempotentProducer, ProducerConfig, ProducerEvent};
use ferry_client::task::OwnedTask;
use ferry_client::{ClientError, Cluster};
use ferry_protocol::transform::ForwardConfig;
use tokio::sync::{broadcast, watch};

use crate::budget::ByteBudget;
use crate::events::{CountersSnapshot, MirrorEvent, StopReason};
use crate::flow::{FlowRuntime, FlowShared, run_flow};
use crate::settings::{EngineSettings, OffsetSyncsLocation};

/// Errors of the replication engine.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// The settings break a rule (caller's fault; nothing was started).
    #[error("invalid setting {field}: {message}")]
    InvalidSettings {
        /// The field or key.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A cluster could not be reached or refused us at start.
    #[error("cannot connect to cluster {cluster}: {source}")]
    Connect {
        /// Cluster alias.
        cluster: String,
        /// The client error.
        source: ClientError,
    },
    /// A client call failed.
    #[error("{operation} on cluster {cluster} failed: {source}")]
    Client {
        /// Cluster alias.
        cluster: String,
        /// What was being done.
        operation: &'static str,
        /// The client error.
        source: ClientError,
    },
    /// An admin call failed.
    #[error("{operation} on cluster {cluster} failed: {source}")]
    Admin {
        /// Cluster alias.
        cluster: String,
        /// What was being done.
        operation: &'static str,
        /// The admin error.
        source: AdminError,
    },
    /// A flow task ended abnormally (a bug: it panicked or was cancelled).
    #[error("flow {flow} failed: {message}")]
    FlowFailed {
        /// `source->target`.
        flow: String,
        /// What happened.
        message: String,
    },
}

impl MirrorError {
    /// Whether trying again later may succeed (network, broker unavailable, timeouts).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Connect { source, .. } | Self::Client { source, .. } => source.is_retriable(),
            Self::Admin { source, .. } => source.is_retriable(),
            Self::InvalidSettings { .. } | Self::FlowFailed { .. } => false,
        }
    }

    /// Whether the error needs a human (bad settings, authentication, authorisation).
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::InvalidSettings { .. } | Self::FlowFailed { .. } => true,
            Self::Connect { source, .. } | Self::Client { source, .. } => source.is_fatal(),
            Self::Admin { source, .. } => source.is_fatal(),
        }
    }
}

/// State of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionState {
    /// Selected; start position being resolved.
    Starting,
    /// Replicating.
    Running,
    /// Stopped (see the event raised at the time).
    Stopped(StopReason),
}

/// Status of one source partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionStatus {
    /// Target topic (same partition number).
    pub target_topic: String,
    /// State.
    pub state: PartitionState,
    /// Source end offset last seen (last stable offset under read_committed), if known.
    pub source_end: Option<i64>,
    /// Next source offset after everything the target acknowledged (−1 before start).
    pub replicated: i64,
    /// Next target offset after everything acknowledged (−1 before start).
    pub target_next: i64,
    /// Wall-clock time (ms since the epoch) since which the partition has had a non-zero lag
    /// (or an unknown source end); `None` while caught up.
    pub behind_since_ms: Option<i64>,
}

impl PartitionStatus {
    /// Source records not replicated yet, if the source end is known.
    pub fn lag(&self) -> Option<i64> {
        self.source_end.map(|end| (end - self.replicated).max(0))
    }

    /// Seconds the partition has been behind at `now_ms` (0 when caught up).
    #[allow(clippy::cast_precision_loss)]
    pub fn lag_seconds(&self, now_ms: i64) -> f64 {
        self.behind_since_ms.map_or(0.0, |since| {
            now_ms.saturating_sub(since).max(0) as f64 / 1000.0
        })
    }

    /// Updates [`PartitionStatus::behind_since_ms`] after a change, at `now_ms`.
    pub(crate) fn refresh_behind(&mut self, now_ms: i64) {
        if self.lag() == Some(0) {
            self.behind_since_ms = None;
        } else if self.behind_since_ms.is_none() {
            self.behind_since_ms = Some(now_ms);
        }
    }
}

/// Status of one flow.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FlowStatus {
    /// `source->target`.
    pub flow: String,
    /// Partitions by source topic-partition.
    pub partitions: BTreeMap<TopicPartition, PartitionStatus>,
    /// Counters.
    pub counters: CountersSnapshot,
}

impl FlowStatus {
    /// True when every running partition has replicated up to the source end last seen.
    pub fn caught_up(&self) -> bool {
        self.partitions.values().all(|p| {
            !matches!(p.state, PartitionState::Running | PartitionState::Starting)
                || p.lag() == Some(0)
        })
    }
}

/// A snapshot of the engine.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EngineStatus {
    /// Per flow.
    pub flows: Vec<FlowStatus>,
    /// Bytes of batches waiting for acknowledgement.
    pub in_flight_bytes: usize,
}

#[derive(Debug)]
struct EngineShared {
    flows: Vec<Arc<FlowShared>>,
    events: broadcast::Sender<MirrorEvent>,
    budget: ByteBudget,
}

/// Status and events of an engine, usable from other tasks while it runs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    shared: Arc<EngineShared>,
}

impl EngineHandle {
    /// Consumer-group translation state of every flow, as of its last checkpoint interval
    /// (`crate::checkpoint`): one entry per (group, replicated partition) the group has
    /// committed on the source.
    pub fn group_offsets(&self) -> Vec<crate::checkpoint::GroupOffsetStatus> {
        self.shared
            .flows
            .iter()
            .flat_map(|f| f.group_state.status())
            .collect()
    }

    /// A copy of the offset map of source partition `topic`/`partition` of flow `flow`
    /// (`source->target`), as last published after a progress commit.
    pub fn offset_map(
        &self,
        flow: &str,
        topic: &str,
        partition: i32,
    ) -> Option<crate::checkpoint::MapSnapshot> {
        let tp = TopicPartition::new(topic, partition);
        self.shared
            .flows
            .iter()
            .find(|f| f.name == flow)
            .and_then(|f| f.group_state.snapshot(&tp))
    }

    /// A status snapshot.
    pub fn status(&self) -> EngineStatus {
        EngineStatus {
            flows: self
                .shared
                .flows
                .iter()
                .map(|f| FlowStatus {
                    flow: f.name.clone(),
                    partitions: f
                        .partitions
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone(),
                    counters: f.counters.snapshot(),
                })
                .collect(),
            in_flight_bytes: self.shared.budget.in_use(),
        }
    }

    /// Subscribes to events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MirrorEvent> {
        self.shared.events.subscribe()
    }
}

/// The replication engine. See the module docs.
#[derive(Debug)]
pub struct Engine {
    settings: EngineSettings,
    handle: EngineHandle,
}

impl Engine {
    /// Validates `settings`; does no I/O.
    ///
    /// # Errors
    /// [`MirrorError::InvalidSettings`].
    pub fn new(settings: EngineSettings) -> Result<Self, MirrorError> {
        settings.validate()?;
        let (events, _) = broadcast::channel(settings.event_capacity);
        let flows = settings
            .flows
            .iter()
            .map(|f| Arc::new(FlowShared::new(f.name(), events.clone())))
            .collect();
        let budget = ByteBudget::new(settings.in_flight_bytes);
        Ok(Self {
            handle: EngineHandle {
                shared: Arc::new(EngineShared {
                    flows,
                    events,
                    budget,
                }),
            },
            settings,
        })
    }

    /// A handle for status and events.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// A status snapshot.
    pub fn status(&self) -> EngineStatus {
        self.handle.status()
    }

    /// Subscribes to events.
    pub fn subscribe(&self) -> broadcast::Receiver<MirrorEvent> {
        self.handle.subscribe()
    }

    /// Connects, creates topics and replicates until `shutdown` resolves; then stops fetching,
    /// waits for every batch in flight, stores progress and returns.
    ///
    /// Dropping the returned future instead (aborting its task, cancelling it in a `select!`)
    /// stops everything the run spawned at once, like a crash: nothing is drained and no
    /// progress is stored, so the next run resumes from the last commit and removes what was
    /// already written through the exact-resume check. No task of a dropped run keeps writing
    /// or committing next to its successor.
    ///
    /// # Errors
    /// A cluster that cannot be reached at start, a producer that cannot get its id, or a flow
    /// task that ended abnormally.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), MirrorError> {
        let settings = self.settings;
        let shared = Arc::clone(&self.handle.shared);
        crate::metrics::describe();

        // Connect to the clusters flows use.
        let mut clusters: BTreeMap<String, Cluster> = BTreeMap::new();
        for flow in &settings.flows {
            for alias in [&flow.source, &flow.target] {
                if clusters.contains_key(alias) {
                    continue;
                }
                let config = settings.clusters.get(alias).cloned().ok_or_else(|| {
                    MirrorError::InvalidSettings {
                        field: "clusters",
                        message: format!("unknown cluster {alias:?}"),
                    }
                })?;
                let cluster =
                    Cluster::connect(config)
                        .await
                        .map_err(|source| MirrorError::Connect {
                            cluster: alias.clone(),
                            source,
                        })?;
                clusters.insert(alias.clone(), cluster);
            }
        }

        // One producer per cluster we write to.
        let mut producers: BTreeMap<String, Arc<IdempotentProducer>> = BTreeMap::new();
        let mut wanted: Vec<&String> = settings.flows.iter().map(|f| &f.target).collect();
        wanted.extend(
            settings
                .flows
                .iter()
                .filter(|f| f.emit_offset_syncs)
                .map(|f| match f.offset_syncs_location {
                    OffsetSyncsLocation::Source => &f.source,
                    OffsetSyncsLocation::Target => &f.target,
                }),
        );
        for alias in wanted {
            if producers.contains_key(alias) {
                continue;
            }
            let Some(cluster) = clusters.get(alias) else {
                continue;
            };
            let producer = IdempotentProducer::new(cluster.clone(), ProducerConfig::default())
                .await
                .map_err(|source| MirrorError::Client {
                    cluster: alias.clone(),
                    operation: "init producer id",
                    source,
                })?;
            let producer = Arc::new(producer);
            spawn_producer_events(alias.clone(), &producer, shared.events.clone());
            producers.insert(alias.clone(), producer);
        }

        let producer_max = ProducerConfig::default().max_request_size;
        let forward = ForwardConfig {
            verify_as_is_crc: true,
            max_batch_bytes: Some(producer_max - 1024),
            target_codec: None,
            ..ForwardConfig::default()
        };
        let fetch_max = settings.effective_fetch_max_bytes();
        let fetch = FetchConfig {
            max_wait: settings.fetch_max_wait,
            max_bytes: i32::try_from(fetch_max).unwrap_or(i32::MAX),
            partition_max_bytes: i32::try_from(settings.fetch_partition_max_bytes.min(fetch_max))
                .unwrap_or(i32::MAX),
            ..FetchConfig::default()
        };

        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for (flow, flow_shared) in settings.flows.iter().zip(shared.flows.iter()) {
            let (Some(source), Some(target), Some(target_producer)) = (
                clusters.get(&flow.source),
                clusters.get(&flow.target),
                producers.get(&flow.target),
            ) else {
                continue;
            };
            let sync_alias = match flow.offset_syncs_location {
                OffsetSyncsLocation::Source => &flow.source,
                OffsetSyncsLocation::Target => &flow.target,
            };
            let rt = FlowRuntime {
                flow: flow.clone(),
                shared: Arc::clone(flow_shared),
                source: source.clone(),
                target: target.clone(),
                target_producer: Arc::clone(target_producer),
                sync_producer: flow
                    .emit_offset_syncs
                    .then(|| producers.get(sync_alias).cloned())
                    .flatten(),
                budget: shared.budget.clone(),
                fetch: fetch.clone(),
                forward: ForwardConfig {
                    target_codec: flow.target_compression,
                    ..forward
                },
                shutdown: stop_rx.clone(),
            };
            tasks.push((flow.name(), OwnedTask::spawn(run_flow(rt))));
        }

        shutdown.await;
        tracing::info!("shutdown requested; draining in-flight batches");
        let _ = stop_tx.send(true);
        let mut result = Ok(());
        for (name, task) in tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
                Err(e) => {
                    if result.is_ok() {
                        result = Err(MirrorError::FlowFailed {
                            flow: name,
                            message: e.to_string(),
                        });
                    }
                }
            }
        }
        for producer in producers.values() {
            let _ = producer.flush().await;
        }
        result
    }
}

fn spawn_producer_events(
    alias: String,
    producer: &IdempotentProducer,
    events: broadcast::Sender<MirrorEvent>,
) {
    let mut rx = producer.subscribe();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(ProducerEvent::EpochBumped { reason, .. }) => {
                    let ev = MirrorEvent::ProducerEpochBumped {
                        cluster: alias.clone(),
                        reason,
                    };
                    ev.log();
                    let _ = events.send(ev);
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::FlowSettings;
    use ferry_client::ConnectionConfig;

    #[test]
    fn new_validates_without_io() {
        let cfg = ConnectionConfig::builder()
            .with_bootstrap(["127.0.0.1:1"])
            .build()
            .unwrap();
        let s = EngineSettings::new()
            .with_cluster("A", cfg.clone())
            .with_cluster("B", cfg)
            .with_flow(FlowSettings::new("A", "B").unwrap());
        let engine = Engine::new(s).unwrap();
        let st = engine.status();
        assert_eq!(st.flows.len(), 1);
        assert_eq!(st.flows[0].flow, "A->B");
        assert!(st.flows[0].caught_up(), "no partitions yet");
        assert_eq!(st.in_flight_bytes, 0);
        assert!(matches!(
            Engine::new(EngineSettings::new()),
            Err(MirrorError::InvalidSettings { .. })
        ));
    }

    #[test]
    fn error_classification() {
        let e = MirrorError::InvalidSettings {
            field: "x",
            message: "y".into(),
        };
        assert!(e.is_fatal() && !e.is_retriable());
        let e = MirrorError::Client {
            cluster: "A".into(),
            operation: "fetch",
            source: ClientError::Shutdown,
        };
        assert!(!e.to_string().is_empty());
    }
}
