//! The forwarding pipeline of one flow: fetch → forward → produce, then acknowledgements →
//! offset map → progress and offset syncs.
//!
//! Two tasks per flow, joined by one FIFO queue:
//!
//! - **fetch side** ([`FetchSide`]): one [`Fetcher`] for all of the flow's source partitions
//!   (the fetcher already sends one Fetch per leader broker, concurrently), one
//!   [`Forwarder`] per partition. Each fetched records blob is split by ferry-protocol's
//!   scanner; each entry goes through the decision table (`kafka-wire.md` §2.8); each outgoing
//!   batch takes its bytes from the [`ByteBudget`] (so fetching stops while the budget is
//!   exhausted) and is handed to the target's [`IdempotentProducer`] for the **same partition
//!   number**, in order. The delivery handle goes into the queue; a dropped entry (control,
//!   aborted, empty) becomes a `Skip` item in the same queue, so it advances the position only
//!   after every earlier batch of that partition is acknowledged.
//! - **acknowledgement side** ([`AckSide`]): awaits the queue's delivery handles in order
//!   (per partition, the producer completes in sequence order), adds each acknowledged batch to
//!   the partition's [`PartitionOffsetMap`] (source runs from the forwarder, target base offset
//!   from the ack), feeds [`OffsetSyncWriter`], and every `progress_interval` (and when the queue
//!   closes at shutdown) commits progress to the target (`crate::progress`). Only then is
//!   the batch's budget released.
//!
//! # CRC work per batch
//!
//! The forwarder verifies each batch's CRC once (`verify_as_is_crc`; the patch route verifies
//! and combines with the same payload CRC), so damage at the source is never hidden. The
//! idempotent producer of ferry-client then stamps its producer id, epoch and sequence and
//! **recomputes the CRC over the whole batch** (its `stamp_producer_fields`), a second pass
//! over the payload, and takes the batch as one contiguous `Bytes` (one copy of the payload
//! here). Getting to one pass needs the producer to accept the forwarder's header + body and
//! payload CRC and combine (`crc32c_combine`) instead; see the report of issue #5.
//!
//! # References
//! - `kafka-wire.md` §2.8 (decision table), §3.3 (ordering, 5 in flight), §4.1 (fetch edges),
//!   §4.3 (read_committed)
//! - DESIGN.md "Data path rules"

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_client::ClientError;
use ferry_client::admin::Admin;
use ferry_client::fetcher::{FetchEvent, FetchedPartition, Fetcher, TopicPartition};
use ferry_client::producer::{DeliveryHandle, IdempotentProducer, ProduceAck};
use ferry_protocol::batch::{BatchScanner, Entry};
use ferry_protocol::error::ErrorCode;
use ferry_protocol::transform::{
    AbortedTransaction, ForwardConfig, Forwarded, Forwarder, SourceOffsets, TargetProducer,
};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::budget::{BudgetPermit, ByteBudget};
use crate::engine::PartitionState;
use crate::events::{MirrorEvent, StopReason};
use crate::flow::FlowShared;
use crate::heartbeat::now_ms;
use crate::map_store::MapStore;
use crate::offset_map::{OffsetMapError, PartitionOffsetMap};
use crate::offset_sync::OffsetSyncWriter;
use crate::progress::ProgressMetadata;
use crate::settings::{FlowSettings, Isolation, PositionLossPolicy};

/// A partition to start replicating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionStart {
    /// Source topic-partition.
    pub tp: TopicPartition,
    /// Target topic (same partition number).
    pub target_topic: String,
    /// Source topic id.
    pub topic_id: Uuid,
    /// First source offset to fetch.
    pub resume: i64,
    /// The target partition's next offset now.
    pub target_next: i64,
    /// Whether `resume` came from stored progress.
    pub from_progress: bool,
    /// Records a crashed process wrote after its last progress commit, read back and matched
    /// (`crate::resume`): `resume` is already past them. For the offset map.
    pub verified: Vec<crate::resume::VerifiedRun>,
    /// The source's log start offset when the partition was started, if known (prunes the
    /// offset map's history, `crate::map_store`).
    pub log_start: Option<i64>,
}

/// Commands to the fetch side.
#[derive(Debug)]
pub(crate) enum PipelineCommand {
    /// Start a partition.
    Start(PartitionStart),
    /// Stop a partition (the target refused its data for good).
    Stop {
        tp: TopicPartition,
        reason: StopReason,
    },
}

/// One entry of the queue from the fetch side to the acknowledgement side.
#[derive(Debug)]
pub(crate) enum AckItem {
    Start(PartitionStart),
    Batch {
        tp: TopicPartition,
        handle: DeliveryHandle,
        runs: Vec<(i64, i64)>,
        next_source: i64,
        records: u64,
        permit: BudgetPermit,
        meta: crate::metrics::BatchMeta,
    },
    Skip {
        tp: TopicPartition,
        next: i64,
    },
    Reset {
        tp: TopicPartition,
        to: i64,
    },
    Stop {
        tp: TopicPartition,
    },
}

/// The source offsets an outgoing batch carries, as `(first, count)` runs.
pub(crate) fn runs_of(offsets: &SourceOffsets) -> Vec<(i64, i64)> {
    match offsets {
        SourceOffsets::Range { first, last } => vec![(*first, last - first + 1)],
        SourceOffsets::Listed(list) => {
            let mut runs: Vec<(i64, i64)> = Vec::new();
            for &o in list {
                match runs.last_mut() {
                    Some((start, len)) if *start + *len == o => *len += 1,
                    _ => runs.push((o, 1)),
                }
            }
            runs
        }
        _ => Vec::new(),
    }
}

struct FetchPartition {
    forwarder: Forwarder,
    target_topic: String,
    /// The position the queue will reach once everything enqueued is acknowledged.
    enqueued_next: i64,
    /// Refetches in a row of a batch that failed its checks (CRC, framing): a bit flipped on
    /// the way is fetched again; a batch corrupt in the source log stops the partition.
    corrupt_refetches: u32,
}

/// How many times a corrupt batch is fetched again before the partition stops
/// (reliability.md scenario 13).
const CORRUPT_REFETCHES: u32 = 3;

/// The fetch side of a flow's pipeline. See the module docs.
pub(crate) struct FetchSide {
    pub shared: Arc<FlowShared>,
    pub flow: FlowSettings,
    pub fetcher: Fetcher,
    pub producer: Arc<IdempotentProducer>,
    pub budget: ByteBudget,
    pub forward_config: ForwardConfig,
    pub acks: mpsc::UnboundedSender<AckItem>,
    pub commands: mpsc::UnboundedReceiver<PipelineCommand>,
    pub shutdown: watch::Receiver<bool>,
    parts: BTreeMap<TopicPartition, FetchPartition>,
}

impl std::fmt::Debug for FetchSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchSide")
            .field("flow", &self.shared.name)
            .field("partitions", &self.parts.len())
            .finish_non_exhaustive()
    }
}

impl FetchSide {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        shared: Arc<FlowShared>,
        flow: FlowSettings,
        fetcher: Fetcher,
        producer: Arc<IdempotentProducer>,
        budget: ByteBudget,
        forward_config: ForwardConfig,
        acks: mpsc::UnboundedSender<AckItem>,
        commands: mpsc::UnboundedReceiver<PipelineCommand>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            shared,
            flow,
            fetcher,
            producer,
            budget,
            forward_config,
            acks,
            commands,
            shutdown,
            parts: BTreeMap::new(),
        }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Runs until shutdown; returning drops the queue sender, which lets the acknowledgement
    /// side drain and commit.
    pub(crate) async fn run(mut self) {
        let mut error_backoff = Duration::from_millis(100);
        loop {
            if self.stopping() {
                break;
            }
            while let Ok(cmd) = self.commands.try_recv() {
                self.apply(cmd);
            }
            if self.parts.is_empty() {
                tokio::select! {
                    cmd = self.commands.recv() => match cmd {
                        Some(cmd) => self.apply(cmd),
                        None => break,
                    },
                    r = self.shutdown.changed() => if r.is_err() { break },
                }
                continue;
            }
            let fetch_started = Instant::now();
            let result = tokio::select! {
                r = self.fetcher.fetch() => r,
                r = self.shutdown.changed() => {
                    if r.is_err() { break }
                    continue;
                }
            };
            match result {
                Ok(events) => {
                    crate::metrics::record_fetch(&self.shared.name, fetch_started.elapsed());
                    error_backoff = Duration::from_millis(100);
                    for ev in events {
                        self.handle(ev).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(flow = %self.shared.name, error = %e, "fetch failed; retrying");
                    crate::metrics::record_retry(&self.shared.name, "fetch");
                    tokio::select! {
                        () = tokio::time::sleep(error_backoff) => {}
                        _ = self.shutdown.changed() => {}
                    }
                    error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::info!(flow = %self.shared.name, "fetching stopped");
    }

    fn apply(&mut self, cmd: PipelineCommand) {
        match cmd {
            PipelineCommand::Start(start) => {
                let mut forwarder = Forwarder::new(self.forward_config, start.resume);
                if self.flow.isolation == Isolation::ReadCommitted {
                    forwarder = forwarder.read_committed();
                }
                self.fetcher.assign(start.tp.clone(), start.resume);
                self.shared.set_partition(&start.tp, |s| {
                    s.target_topic.clone_from(&start.target_topic);
                    s.state = PartitionState::Running;
                    s.replicated = start.resume;
                    s.target_next = start.target_next;
                });
                self.shared.emit(MirrorEvent::PartitionStarted {
                    flow: self.shared.name.clone(),
                    topic: start.tp.topic.clone(),
                    partition: start.tp.partition,
                    resume_offset: start.resume,
                    from_progress: start.from_progress,
                });
                self.parts.insert(
                    start.tp.clone(),
                    FetchPartition {
                        forwarder,
                        target_topic: start.target_topic.clone(),
                        enqueued_next: start.resume,
                        corrupt_refetches: 0,
                    },
                );
                let _ = self.acks.send(AckItem::Start(start));
            }
            PipelineCommand::Stop { tp, reason } => self.stop(&tp, reason),
        }
    }

    fn stop(&mut self, tp: &TopicPartition, reason: StopReason) {
        if self.parts.remove(tp).is_none() {
            return;
        }
        self.fetcher.unassign(tp);
        self.shared
            .set_partition(tp, |s| s.state = PartitionState::Stopped(reason.clone()));
        self.shared.emit(MirrorEvent::PartitionStopped {
            flow: self.shared.name.clone(),
            topic: tp.topic.clone(),
            partition: tp.partition,
            reason,
        });
        let _ = self.acks.send(AckItem::Stop { tp: tp.clone() });
    }

    async fn handle(&mut self, ev: FetchEvent) {
        match ev {
            FetchEvent::Data(fp) => self.handle_data(fp).await,
            FetchEvent::OffsetOutOfRange {
                tp,
                fetch_offset,
                log_start_offset,
                high_watermark,
            } => {
                let name = self.shared.name.clone();
                let (policy, reason) = if fetch_offset < log_start_offset {
                    self.shared.emit(MirrorEvent::OffsetOutOfRange {
                        flow: name,
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        fetch_offset,
                        log_start: log_start_offset,
                        log_end: high_watermark,
                    });
                    (
                        self.flow.on_offset_out_of_range,
                        StopReason::OffsetOutOfRange,
                    )
                } else {
                    self.shared.emit(MirrorEvent::SourceTruncated {
                        flow: name,
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        fetch_offset,
                        log_end: high_watermark,
                    });
                    (self.flow.on_truncation, StopReason::SourceTruncated)
                };
                let to = match policy {
                    PositionLossPolicy::StopPartition => None,
                    PositionLossPolicy::ResetEarliest => Some(log_start_offset.max(0)),
                    PositionLossPolicy::ResetLatest => Some(high_watermark.max(0)),
                };
                match to {
                    None => self.stop(&tp, reason),
                    Some(to) => self.reset(&tp, fetch_offset, to),
                }
            }
            FetchEvent::Error {
                tp,
                fetch_offset,
                error,
            } => {
                tracing::warn!(flow = %self.shared.name, %tp, fetch_offset, error = %error, "fetch error");
                crate::metrics::record_error(&self.shared.name, "fetch_partition");
            }
            other => {
                tracing::warn!(flow = %self.shared.name, event = ?other, "unexpected fetch event")
            }
        }
    }

    fn reset(&mut self, tp: &TopicPartition, from: i64, to: i64) {
        let Some(part) = self.parts.get_mut(tp) else {
            return;
        };
        let mut forwarder = Forwarder::new(self.forward_config, to);
        if self.flow.isolation == Isolation::ReadCommitted {
            forwarder = forwarder.read_committed();
        }
        part.forwarder = forwarder;
        part.enqueued_next = to;
        self.fetcher.seek(tp, to);
        self.shared.emit(MirrorEvent::PositionReset {
            flow: self.shared.name.clone(),
            topic: tp.topic.clone(),
            partition: tp.partition,
            from,
            to,
        });
        let _ = self.acks.send(AckItem::Reset { tp: tp.clone(), to });
    }

    async fn handle_data(&mut self, fp: FetchedPartition) {
        let tp = fp.tp.clone();
        let end = if self.flow.isolation == Isolation::ReadCommitted && fp.last_stable_offset >= 0 {
            fp.last_stable_offset
        } else {
            fp.high_watermark
        };
        self.shared.set_partition(&tp, |s| s.source_end = Some(end));
        let Some(part) = self.parts.get_mut(&tp) else {
            return;
        };
        if fp.fetch_offset != part.forwarder.position() {
            // Data for a position we already moved away from (a reset).
            return;
        }
        if !fp.aborted_transactions.is_empty() {
            part.forwarder
                .add_aborted(fp.aborted_transactions.iter().map(|a| AbortedTransaction {
                    first_offset: a.first_offset,
                    producer_id: a.producer_id,
                }));
        }
        let mut failure: Option<(StopReason, MirrorEvent)> = None;
        for entry in BatchScanner::new(fp.records.clone()) {
            let forwarded = match entry {
                Ok(Entry::V2(batch)) => part.forwarder.forward_batch(&batch, TargetProducer::PLAIN),
                Ok(Entry::Legacy(l)) => part
                    .forwarder
                    .forward_legacy(std::slice::from_ref(&l), TargetProducer::PLAIN),
                Ok(_) => continue,
                Err(e) => Err(e),
            };
            let forwarded = match forwarded {
                Ok(f) => f,
                Err(e) => {
                    let (reason, event) = if e.is_limit() {
                        (
                            StopReason::RecordTooLarge,
                            MirrorEvent::RecordTooLarge {
                                flow: self.shared.name.clone(),
                                topic: tp.topic.clone(),
                                partition: tp.partition,
                                fetch_offset: fp.fetch_offset,
                                error: e.to_string(),
                            },
                        )
                    } else if part.corrupt_refetches < CORRUPT_REFETCHES {
                        // Corrupted in transit, perhaps: fetch it again from its offset (the
                        // batches before it in this response are already enqueued).
                        part.corrupt_refetches += 1;
                        let at = part.forwarder.position();
                        self.shared.emit(MirrorEvent::CorruptBatch {
                            flow: self.shared.name.clone(),
                            topic: tp.topic.clone(),
                            partition: tp.partition,
                            fetch_offset: fp.fetch_offset,
                            position: e.position(),
                            error: format!(
                                "{e} (fetching it again, attempt {} of {CORRUPT_REFETCHES})",
                                part.corrupt_refetches
                            ),
                        });
                        self.fetcher.seek(&tp, at);
                        return;
                    } else {
                        (
                            StopReason::CorruptBatch,
                            MirrorEvent::CorruptBatch {
                                flow: self.shared.name.clone(),
                                topic: tp.topic.clone(),
                                partition: tp.partition,
                                fetch_offset: fp.fetch_offset,
                                position: e.position(),
                                error: e.to_string(),
                            },
                        )
                    };
                    failure = Some((reason, event));
                    break;
                }
            };
            if forwarded.batch.is_some() {
                part.corrupt_refetches = 0;
            }
            self.shared.counters.count_route(forwarded.route);
            crate::metrics::record_route(&self.shared.name, forwarded.route);
            if let Some(b) = &forwarded.batch {
                crate::metrics::record_fetched_batch(
                    &self.shared.name,
                    &part.target_topic,
                    tp.partition,
                    b.fields().max_timestamp,
                    now_ms(),
                );
            }
            if let Err(reason) = Self::enqueue(
                &self.shared,
                &self.producer,
                &self.budget,
                &self.acks,
                &tp,
                part,
                forwarded,
            )
            .await
            {
                failure = Some((
                    reason.clone(),
                    MirrorEvent::StepFailed {
                        flow: self.shared.name.clone(),
                        step: "produce",
                        error: format!("{tp}: {reason:?}"),
                    },
                ));
                break;
            }
        }
        if let Some((reason, event)) = failure {
            self.shared.emit(event);
            self.stop(&tp, reason);
            return;
        }
        let next = part.forwarder.position();
        self.fetcher.seek(&tp, next);
    }

    async fn enqueue(
        shared: &FlowShared,
        producer: &IdempotentProducer,
        budget: &ByteBudget,
        acks: &mpsc::UnboundedSender<AckItem>,
        tp: &TopicPartition,
        part: &mut FetchPartition,
        forwarded: Forwarded,
    ) -> Result<(), StopReason> {
        let next = forwarded.next_offset;
        let Some(batch) = forwarded.batch else {
            if next > part.enqueued_next {
                part.enqueued_next = next;
                let _ = acks.send(AckItem::Skip {
                    tp: tp.clone(),
                    next,
                });
            }
            return Ok(());
        };
        let runs = runs_of(&forwarded.source_offsets);
        let records = u64::try_from(batch.records_count()).unwrap_or(0);
        let max_timestamp = batch.fields().max_timestamp;
        let permit = budget.acquire(batch.len()).await;
        // One copy: the producer takes one contiguous buffer (see the module docs).
        let bytes = batch.to_bytes();
        let sent = Instant::now();
        let handle = producer
            .send(&part.target_topic, tp.partition, bytes)
            .map_err(|e| {
                tracing::error!(flow = %shared.name, %tp, error = %e, "producer refused a batch");
                StopReason::ProduceFailed(e.to_string())
            })?;
        part.enqueued_next = next;
        let _ = acks.send(AckItem::Batch {
            tp: tp.clone(),
            handle,
            runs,
            next_source: next,
            records,
            permit,
            meta: crate::metrics::BatchMeta {
                sent,
                max_timestamp,
            },
        });
        Ok(())
    }
}

struct AckPartition {
    map: PartitionOffsetMap,
    target_topic: String,
    topic_id: Uuid,
    /// `(source position, target next)` last committed.
    committed: Option<(i64, i64)>,
    failed: bool,
}

type AckFuture = Pin<Box<dyn Future<Output = Result<ProduceAck, ClientError>> + Send>>;

struct Waiting {
    tp: TopicPartition,
    runs: Vec<(i64, i64)>,
    next_source: i64,
    records: u64,
    permit: BudgetPermit,
    meta: crate::metrics::BatchMeta,
    ack: AckFuture,
}

enum AckStep {
    Item(AckItem),
    Acked(Result<ProduceAck, ClientError>),
    Tick,
}

/// Where offset syncs go.
pub(crate) struct SyncSink {
    pub writer: OffsetSyncWriter,
    pub producer: Arc<IdempotentProducer>,
    pub topic: String,
}

/// The acknowledgement side of a flow's pipeline. See the module docs.
pub(crate) struct AckSide {
    pub shared: Arc<FlowShared>,
    pub flow: FlowSettings,
    pub target_admin: Admin,
    pub group: String,
    pub syncs: Option<SyncSink>,
    pub rx: mpsc::UnboundedReceiver<AckItem>,
    pub commands: mpsc::UnboundedSender<PipelineCommand>,
    parts: BTreeMap<TopicPartition, AckPartition>,
    /// Persistent offset-map history (`crate::map_store`), when group translation is on.
    store: Option<MapStore>,
}

impl std::fmt::Debug for AckSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckSide")
            .field("flow", &self.shared.name)
            .field("partitions", &self.parts.len())
            .finish_non_exhaustive()
    }
}

impl AckSide {
    pub(crate) fn new(
        shared: Arc<FlowShared>,
        flow: FlowSettings,
        target_admin: Admin,
        syncs: Option<SyncSink>,
        rx: mpsc::UnboundedReceiver<AckItem>,
        commands: mpsc::UnboundedSender<PipelineCommand>,
    ) -> Self {
        Self {
            group: flow.progress_group_id(),
            shared,
            flow,
            target_admin,
            syncs,
            rx,
            commands,
            parts: BTreeMap::new(),
            store: None,
        }
    }

    /// Seeds partitions from, and persists their maps to, `store`.
    pub(crate) fn with_map_store(mut self, store: Option<MapStore>) -> Self {
        self.store = store;
        self
    }

    /// Runs until the queue closes and everything in it is acknowledged (or failed), then
    /// commits progress one last time.
    pub(crate) async fn run(mut self) {
        let period = self
            .flow
            .progress_interval
            .min(self.flow.offset_sync_idle_interval);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_commit = Instant::now();
        let mut waiting: Option<Waiting> = None;
        loop {
            let step = match waiting.as_mut() {
                None => tokio::select! {
                    item = self.rx.recv() => match item {
                        None => break,
                        Some(item) => AckStep::Item(item),
                    },
                    _ = tick.tick() => AckStep::Tick,
                },
                Some(w) => tokio::select! {
                    result = &mut w.ack => AckStep::Acked(result),
                    _ = tick.tick() => AckStep::Tick,
                },
            };
            match step {
                AckStep::Item(item) => waiting = self.apply(item),
                AckStep::Acked(result) => {
                    if let Some(w) = waiting.take() {
                        self.acknowledged(w, result);
                    }
                }
                AckStep::Tick => {
                    self.flush_syncs(Instant::now());
                    if last_commit.elapsed() >= self.flow.progress_interval {
                        self.commit().await;
                        last_commit = Instant::now();
                    }
                }
            }
        }
        // Drained: final syncs and progress, so a clean restart re-sends nothing.
        self.flush_syncs(Instant::now() + self.flow.offset_sync_idle_interval);
        for attempt in 0..5u32 {
            if self.commit().await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
        }
        tracing::info!(flow = %self.shared.name, "acknowledgements drained; progress stored");
    }

    fn apply(&mut self, item: AckItem) -> Option<Waiting> {
        match item {
            AckItem::Start(s) => {
                let committed = s.from_progress.then_some((s.resume, s.target_next));
                let map = self.seed_map(&s);
                self.shared
                    .group_state
                    .publish(&s.tp, &s.target_topic, &map);
                self.parts.insert(
                    s.tp,
                    AckPartition {
                        map,
                        target_topic: s.target_topic,
                        topic_id: s.topic_id,
                        committed,
                        failed: false,
                    },
                );
                None
            }
            AckItem::Batch {
                tp,
                handle,
                runs,
                next_source,
                records,
                permit,
                meta,
            } => Some(Waiting {
                tp,
                runs,
                next_source,
                records,
                permit,
                meta,
                ack: Box::pin(handle.wait()),
            }),
            AckItem::Skip { tp, next } => {
                if let Some(p) = self.parts.get_mut(&tp)
                    && !p.failed
                {
                    if let Err(e) = p.map.skip_to(next) {
                        tracing::error!(flow = %self.shared.name, %tp, error = %e, "offset map refused a skip");
                    }
                    let (processed, target_next) = (p.map.processed(), p.map.target_next());
                    self.shared.set_partition(&tp, |s| {
                        s.replicated = processed;
                        s.target_next = target_next;
                    });
                }
                None
            }
            AckItem::Reset { tp, to } => {
                if let Some(p) = self.parts.get_mut(&tp) {
                    if let Some(store) = self.store.as_mut() {
                        store.restarted(&tp, &p.map);
                    }
                    p.map = PartitionOffsetMap::new(to, p.map.target_next());
                    p.failed = false;
                    self.shared.set_partition(&tp, |s| s.replicated = to);
                }
                if let Some(s) = self.syncs.as_mut() {
                    s.writer.forget(&tp);
                }
                None
            }
            AckItem::Stop { tp } => {
                if let Some(p) = self.parts.get_mut(&tp) {
                    p.failed = true;
                }
                None
            }
        }
    }

    fn acknowledged(&mut self, w: Waiting, result: Result<ProduceAck, ClientError>) {
        let bytes = w.permit.bytes();
        drop(w.permit);
        let Some(p) = self.parts.get_mut(&w.tp) else {
            return;
        };
        if p.failed {
            return;
        }
        let ack = match result {
            Ok(ack) => ack,
            Err(e) => {
                p.failed = true;
                tracing::error!(flow = %self.shared.name, tp = %w.tp, error = %e, "batch failed for good");
                // The target refused the batch's size (its `max.message.bytes` is below the
                // source's): a typed event naming where. The producer fails every later batch
                // of the partition too, so nothing after it lands (no gap on the target).
                let too_large = matches!(
                    &e,
                    ClientError::Partition {
                        code: ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge,
                        ..
                    }
                );
                let reason = if too_large {
                    self.shared.emit(MirrorEvent::RecordTooLarge {
                        flow: self.shared.name.clone(),
                        topic: w.tp.topic.clone(),
                        partition: w.tp.partition,
                        fetch_offset: w.runs.first().map_or(w.next_source, |r| r.0),
                        error: format!("target {} refused the batch: {e}", p.target_topic),
                    });
                    StopReason::RecordTooLarge
                } else {
                    StopReason::ProduceFailed(e.to_string())
                };
                let _ = self.commands.send(PipelineCommand::Stop {
                    tp: w.tp.clone(),
                    reason,
                });
                return;
            }
        };
        let change = match p.map.record_batch(&w.runs, ack.base_offset, w.next_source) {
            Ok(c) => c,
            Err(e) => {
                // The target partition went backwards (recreated or truncated target) or the
                // ordering contract broke: start a fresh map at this batch.
                tracing::warn!(flow = %self.shared.name, tp = %w.tp, error = %e, "offset map restarted");
                let first = w.runs.first().map_or(w.next_source, |r| r.0);
                let start = match e {
                    OffsetMapError::TargetRewind { .. } => first.min(p.map.processed()),
                    _ => first,
                };
                if let Some(store) = self.store.as_mut() {
                    store.restarted(&w.tp, &p.map);
                }
                p.map = PartitionOffsetMap::new(start, ack.base_offset);
                match p.map.record_batch(&w.runs, ack.base_offset, w.next_source) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(flow = %self.shared.name, tp = %w.tp, error = %e, "offset map refused a batch");
                        return;
                    }
                }
            }
        };
        if let Some(s) = self.syncs.as_mut() {
            s.writer.on_batch(&w.tp, change, Instant::now());
        }
        self.shared
            .counters
            .count_acked(w.records, u64::try_from(bytes).unwrap_or(u64::MAX));
        crate::metrics::record_acked(
            &self.shared.name,
            &p.target_topic,
            w.tp.partition,
            w.records,
            u64::try_from(bytes).unwrap_or(u64::MAX),
            w.meta,
            now_ms(),
        );
        let (processed, target_next) = (p.map.processed(), p.map.target_next());
        self.shared.set_partition(&w.tp, |s| {
            s.replicated = processed;
            s.target_next = target_next;
        });
    }

    fn flush_syncs(&mut self, now: Instant) {
        let Some(sink) = self.syncs.as_mut() else {
            return;
        };
        sink.writer
            .on_tick(self.parts.iter().map(|(tp, p)| (tp, &p.map)), now);
        while let Some(batch) = sink.writer.take_batch(now_ms()) {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(flow = %self.shared.name, error = %e, "offset sync not encodable");
                    continue;
                }
            };
            match sink.producer.send(&sink.topic, 0, batch) {
                Ok(handle) => {
                    let shared = Arc::clone(&self.shared);
                    tokio::spawn(async move {
                        if let Err(e) = handle.wait().await {
                            shared.emit(MirrorEvent::StepFailed {
                                flow: shared.name.clone(),
                                step: "offset syncs",
                                error: e.to_string(),
                            });
                        }
                    });
                }
                Err(e) => self.shared.emit(MirrorEvent::StepFailed {
                    flow: self.shared.name.clone(),
                    step: "offset syncs",
                    error: e.to_string(),
                }),
            }
        }
    }

    /// The starting map of a partition: its persisted history plus the runs the resume check
    /// verified (`crate::map_store::seed`), or a fresh map without a store.
    fn seed_map(&mut self, s: &PartitionStart) -> PartitionOffsetMap {
        let verified: Vec<(i64, i64, i64)> = s
            .verified
            .iter()
            .map(|r| (r.source_start, r.target_start, r.len))
            .collect();
        let seeded = match self.store.as_mut() {
            Some(store) => store.seed(
                &s.tp,
                s.topic_id,
                s.resume,
                s.target_next,
                s.log_start,
                &verified,
            ),
            None => crate::map_store::seed(
                None,
                s.topic_id,
                s.resume,
                s.target_next,
                s.log_start,
                &verified,
            ),
        };
        if let Some(reason) = seeded.discarded {
            self.shared.emit(MirrorEvent::OffsetMapDiscarded {
                flow: self.shared.name.clone(),
                topic: s.tp.topic.clone(),
                partition: s.tp.partition,
                reason: reason.to_owned(),
            });
        }
        seeded.map
    }

    /// Writes changed maps to the store (before the progress commit that depends on them,
    /// see `crate::map_store`), then publishes them to the group task. A failed write is
    /// reported and progress is still committed: the store's coverage record then lags, so
    /// the next start discards that history instead of trusting it.
    async fn persist_maps(&mut self) {
        if let Some(store) = self.store.as_mut()
            && let Err(e) = store
                .persist(self.parts.iter().map(|(tp, p)| (tp, &p.map)))
                .await
        {
            self.shared.emit(MirrorEvent::StepFailed {
                flow: self.shared.name.clone(),
                step: "offset map",
                error: e.to_string(),
            });
            return;
        }
        for (tp, p) in &self.parts {
            if p.committed != Some((p.map.processed(), p.map.target_next())) {
                self.shared.group_state.publish(tp, &p.target_topic, &p.map);
            }
        }
    }

    /// Commits changed positions; true on success (or nothing to do).
    async fn commit(&mut self) -> bool {
        self.persist_maps().await;
        let mut offsets = BTreeMap::new();
        let mut updates = Vec::new();
        for (tp, p) in &self.parts {
            let now = (p.map.processed(), p.map.target_next());
            if p.committed == Some(now) {
                continue;
            }
            let meta = ProgressMetadata {
                target_next: now.1,
                source_topic_id: p.topic_id,
            };
            offsets.insert(
                TopicPartition::new(p.target_topic.clone(), tp.partition),
                meta.commit(now.0),
            );
            updates.push((tp.clone(), now));
        }
        if offsets.is_empty() {
            return true;
        }
        match self
            .target_admin
            .commit_offsets(&self.group, &offsets)
            .await
        {
            Ok(()) => {
                for (tp, now) in updates {
                    if let Some(p) = self.parts.get_mut(&tp) {
                        p.committed = Some(now);
                    }
                }
                tracing::debug!(flow = %self.shared.name, partitions = offsets.len(), "progress committed");
                true
            }
            Err(e) => {
                self.shared.emit(MirrorEvent::StepFailed {
                    flow: self.shared.name.clone(),
                    step: "progress",
                    error: e.to_string(),
                });
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_contiguous_offsets() {
        assert_eq!(
            runs_of(&SourceOffsets::Range { first: 5, last: 9 }),
            vec![(5, 5)]
        );
        assert_eq!(
            runs_of(&SourceOffsets::Listed(vec![1, 2, 3, 7, 8, 10])),
            vec![(1, 3), (7, 2), (10, 1)]
        );
        assert!(runs_of(&SourceOffsets::None).is_empty());
    }
}
