//! Idempotent producer for prepared v2 record batches.
//!
//! The caller hands in one complete magic-2 batch per [`IdempotentProducer::send`] call
//! (`baseOffset` 0, no control bit, contiguous offsets — the engine's job). The producer owns
//! the producer identity: it writes its producer id, epoch and a per-partition base sequence
//! into bytes 43..57 and recomputes the CRC-32C, then sends it and resolves a
//! [`DeliveryHandle`] with the target base offset.
//!
//! Rules implemented (kafka-wire.md §3):
//! - InitProducerId (no transactional id) gives `(producer id, epoch)`; `acks = -1`.
//! - Per partition, sequences start at 0 and advance by `lastOffsetDelta + 1`, wrapping at
//!   `i32::MAX`; at most 5 (configurable, never more) batches in flight, all on the leader's
//!   one connection, written in sequence order; completions are delivered in sequence order.
//! - One batch per partition per Produce request; many partitions per request per broker, up
//!   to `max_request_size`.
//! - While a partition has batches in flight, its next batch goes on the same connection or
//!   waits until they come back. Sending it on a fresh connection while the earlier ones are
//!   still pending on a dead one let it overtake them: a restarted broker without state for
//!   our producer id accepted its sequence (KIP-360), and the earlier batches could then only
//!   be written after an epoch bump, out of order (found by the broker-crash test).
//! - After an ambiguous failure (connection drop, timeout, retriable or routing error) the
//!   producer waits for the partition's in-flight requests to finish, refreshes metadata if
//!   needed, and resends every unacknowledged batch **with identical bytes and sequences**;
//!   the broker deduplicates the last 5 (`NUM_BATCHES_TO_RETAIN`).
//! - On OUT_OF_ORDER_SEQUENCE_NUMBER (not explained by an earlier failure),
//!   UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_EPOCH, or a batch that failed for good (its
//!   sequence range became a gap), it stops sending, waits for everything in flight, bumps the
//!   epoch (InitProducerId v3+ with the current id and epoch, KIP-360; a new id on older
//!   brokers), resets every sequence to 0 and re-stamps the unacknowledged batches. Each bump
//!   is reported as [`ProducerEvent::EpochBumped`]: a batch whose outcome was unknown may
//!   then be written twice.
//! - Retries per batch are bounded by the [`BackoffConfig`] (deadline and/or attempts).
//! - A batch that fails for good (rejected, e.g. MESSAGE_TOO_LARGE, or out of retries) takes
//!   every later unacknowledged batch of its partition with it
//!   ([`ClientError::EarlierBatchFailed`]): a partition's log never gets a gap behind a failed
//!   batch, which for a replicator would be a silently skipped record. Unlike Java's producer,
//!   which re-sequences and writes the later batches.
//!
//! # Unknown outcomes
//!
//! The broker's deduplication rests on its producer state, and a broker can lose it: on
//! restart after an unclean shutdown it rebuilds the state from the log and drops producers
//! whose last batch's timestamp is older than `producer.id.expiration.ms` (one day), and a
//! running broker does the same every `producer.id.expiration.check.interval.ms`. Replicated
//! data often carries old CreateTime timestamps, so this is the common case for ferry, not
//! an edge. A broker without state for our producer id accepts any sequence from it (KIP-360),
//! so resending a batch that was written but whose ack was lost would write it twice.
//!
//! So when a batch's outcome is unknown (connection lost or timed out with the request
//! written, or REQUEST_TIMED_OUT / NOT_ENOUGH_REPLICAS_AFTER_APPEND from the leader) the
//! producer, once the partition's requests have all come back and before resending or bumping
//! the epoch, fetches the partition from where the unacknowledged batches would start: right
//! after the last acknowledged batch, known exactly because acks come back in sequence order
//! (before the first ack, at `latest - records pending`, which assumes ferry is the only
//! writer). Each batch it reads there is compared with the pending batches by producer id,
//! epoch, base sequence and record count; a producer id belongs to one producer, so a match
//! is exact even with other writers. Matched batches complete with the offsets the log gives
//! them; the rest are resent with their original sequences. Failures to read the log are
//! retried under the batch's retry policy; a non-retriable one (no READ permission on the
//! topic) falls back to resending with a warning. Off with
//! [`ProducerConfig::check_log_before_resend`].
//!
//! What the check cannot see: the fetch reads up to the high watermark, so a batch the old
//! leader appended but had not replicated when the connection dropped is invisible; if it is
//! committed later by a new leader that also dropped our producer state, it can still be
//! written twice. Single-replica topics (HW = log end) and `acks=all` with a healthy ISR
//! make this window narrow, not closed.
//!
//! Copies: a batch [`Bytes`] is copied once to patch its header unless the caller held the
//! only reference (then it is patched in place), and kafka-protocol copies it once more into
//! the request buffer. Hand-encoding the Produce envelope with a vectored write would remove
//! both; not done yet.
//!
//! The header patch writes the producer fields through ferry-protocol's `BatchHeader` and
//! recomputes the CRC with its `batch_crc`.
//!
//! # References
//! - KIP-98 (idempotence), KIP-360 (epoch bump), KAFKA-5494 (5 in flight), KIP-516 (Produce
//!   v13 topic ids), kafka-wire.md §2.1, §3

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferry_protocol::api::ApiKey;
use ferry_protocol::batch::{
    BatchHeader, BatchScanner, CRC_OFFSET, Entry, RECORD_BATCH_OVERHEAD, ScanConfig, batch_crc,
};
use ferry_protocol::error::ErrorCode;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    InitProducerIdRequest, ProduceRequest, ProduceResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::backoff::{Backoff, BackoffConfig};
use crate::cluster::{BrokerInfo, Cluster, OffsetSpec};
use crate::config::ConfigError;
use crate::connection::BrokerConnection;
use crate::error::ClientError;
use crate::fetcher::{FetchConfig, FetchEvent, Fetcher, IsolationLevel, TopicPartition};

const MAX_IN_FLIGHT: usize = 5;

/// Producer settings.
///
/// Defaults: 5 batches in flight per partition, 8 MiB per request (far below the broker's
/// 100 MiB `socket.request.max.bytes`), 30 s produce timeout, retries per
/// [`BackoffConfig::default`] (2 minutes per batch, like `delivery.timeout.ms`), and the log
/// check after a lost connection on (see [`ProducerConfig::check_log_before_resend`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerConfig {
    /// Unacknowledged batches per partition, 1..=5.
    pub max_in_flight: usize,
    /// Largest Produce request in bytes (sum of batches plus envelope).
    pub max_request_size: usize,
    /// `timeout_ms` of Produce requests (how long the leader waits for replication).
    pub ack_timeout: Duration,
    /// Retry policy per batch.
    pub retry: BackoffConfig,
    /// After a batch's outcome became unknown (connection lost, request timed out, or the
    /// broker's REQUEST_TIMED_OUT / NOT_ENOUGH_REPLICAS_AFTER_APPEND), read the partition's
    /// log before resending and complete the batches found there instead of writing them
    /// again. See "Unknown outcomes" in the module docs. Needs READ on the topic; without it
    /// the producer logs a warning and resends as if this were off.
    pub check_log_before_resend: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            max_in_flight: MAX_IN_FLIGHT,
            max_request_size: 8 * 1024 * 1024,
            ack_timeout: Duration::from_secs(30),
            retry: BackoffConfig::default(),
            check_log_before_resend: true,
        }
    }
}

impl ProducerConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_IN_FLIGHT).contains(&self.max_in_flight) {
            return Err(ConfigError::InvalidValue {
                field: "max in flight",
                message: "must be within 1..=5 for idempotent producing (KAFKA-5494)".to_owned(),
            });
        }
        if self.max_request_size < 1024 {
            return Err(ConfigError::InvalidValue {
                field: "max request size",
                message: "must be at least 1 KiB".to_owned(),
            });
        }
        if i32::try_from(self.ack_timeout.as_millis()).is_err() || self.ack_timeout.is_zero() {
            return Err(ConfigError::InvalidValue {
                field: "ack timeout",
                message: "must be positive and fit in i32 milliseconds".to_owned(),
            });
        }
        self.retry.validate()
    }
}

/// The producer id and epoch in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerIdentity {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub epoch: i16,
}

/// A delivered batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceAck {
    /// Offset the target assigned to the batch's first record; record *i* is at
    /// `base_offset + i`.
    pub base_offset: i64,
    /// LogAppendTime of the batch, −1 for CreateTime topics.
    pub log_append_time: i64,
    /// Identity the batch was written with.
    pub identity: ProducerIdentity,
    /// The batch's base sequence.
    pub base_sequence: i32,
}

/// Notable producer events.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProducerEvent {
    /// The epoch was bumped (KIP-360) and every sequence reset to 0.
    EpochBumped {
        /// Identity before.
        old: ProducerIdentity,
        /// Identity after.
        new: ProducerIdentity,
        /// What forced the bump.
        reason: String,
        /// Partitions whose unacknowledged batches were re-stamped.
        resent_partitions: Vec<TopicPartition>,
    },
}

/// Resolves to the outcome of one batch.
#[derive(Debug)]
pub struct DeliveryHandle {
    rx: oneshot::Receiver<Result<ProduceAck, ClientError>>,
}

impl DeliveryHandle {
    /// Waits for the acknowledgement (or the final error).
    pub async fn wait(self) -> Result<ProduceAck, ClientError> {
        self.rx.await.unwrap_or(Err(ClientError::Shutdown))
    }
}

/// Writes producer id (43..51), epoch (51..53) and base sequence (53..57) into a v2 batch and
/// recomputes the CRC-32C over bytes 21.. (kafka-wire.md §1.2, §1.4).
///
/// Private stand-in until ferry-protocol's batch module offers the patch function.
fn stamp_producer_fields(batch: &mut [u8], identity: ProducerIdentity, base_sequence: i32) {
    let Some((prefix, records)) = batch.split_first_chunk_mut::<RECORD_BATCH_OVERHEAD>() else {
        return;
    };
    let mut header = BatchHeader::from_prefix(prefix);
    header.producer_id = identity.producer_id;
    header.producer_epoch = identity.epoch;
    header.base_sequence = base_sequence;
    let length = read_i32(prefix, 8).unwrap_or(-1);
    let records_count = read_i32(prefix, 57).unwrap_or(-1);
    *prefix = header.to_prefix(length, records_count);
    let crc = batch_crc(prefix, records);
    if let Some(f) = prefix.get_mut(CRC_OFFSET..CRC_OFFSET + 4) {
        f.copy_from_slice(&crc.to_be_bytes());
    }
}

fn read_i32(b: &[u8], at: usize) -> Option<i32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(i32::from_be_bytes(s))
}

/// Validates a prepared batch; returns `(lastOffsetDelta + 1, is_zstd)`.
fn check_batch(b: &[u8]) -> Result<(i32, bool), ClientError> {
    let invalid = |message: String| ClientError::InvalidInput { message };
    if b.len() < RECORD_BATCH_OVERHEAD {
        return Err(invalid(format!(
            "batch of {} bytes is shorter than a v2 header",
            b.len()
        )));
    }
    let length = read_i32(b, 8).unwrap_or(-1);
    if usize::try_from(length).ok().and_then(|l| l.checked_add(12)) != Some(b.len()) {
        return Err(invalid(format!(
            "batch length field {length} does not match {} bytes",
            b.len()
        )));
    }
    if b.get(16) != Some(&2) {
        return Err(invalid("batch magic is not 2".to_owned()));
    }
    let attributes = b
        .get(21..23)
        .and_then(|a| <[u8; 2]>::try_from(a).ok())
        .map_or(0, i16::from_be_bytes);
    if attributes & 0x20 != 0 {
        return Err(invalid("control batches cannot be produced".to_owned()));
    }
    if attributes & 0x10 != 0 {
        return Err(invalid(
            "transactional batches need the transactional producer".to_owned(),
        ));
    }
    let last_offset_delta = read_i32(b, 23).unwrap_or(-1);
    let count = read_i32(b, 57).unwrap_or(-1);
    if count <= 0 || last_offset_delta.checked_add(1) != Some(count) {
        return Err(invalid(format!(
            "batch must have contiguous offsets (lastOffsetDelta {last_offset_delta}, recordsCount {count})"
        )));
    }
    Ok((count, attributes & 0x07 == 4))
}

#[derive(Debug)]
enum BatchState {
    Queued,
    InFlight,
    Acked(ProduceAck),
}

#[derive(Debug)]
struct Batch {
    id: u64,
    data: Bytes,
    records: i32,
    zstd: bool,
    base_sequence: i32,
    identity: ProducerIdentity,
    state: BatchState,
    backoff: Backoff,
    last_error: Option<ClientError>,
    /// An earlier batch of the partition failed for good while this one was in flight: it
    /// fails with this error when its request comes back, whatever the broker said.
    doomed: Option<ClientError>,
    reply: Option<oneshot::Sender<Result<ProduceAck, ClientError>>>,
}

impl Batch {
    fn bytes(&self) -> Bytes {
        self.data.clone()
    }

    /// Re-stamps the header. In place when no request still holds the bytes (the usual case:
    /// stamping happens before sending and after everything in flight came back).
    fn stamp(&mut self, identity: ProducerIdentity, base_sequence: i32) {
        let mut data = BytesMut::from(std::mem::take(&mut self.data));
        stamp_producer_fields(&mut data, identity, base_sequence);
        self.data = data.freeze();
        self.identity = identity;
        self.base_sequence = base_sequence;
    }

    fn fail(&mut self, error: ClientError) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Err(error));
        }
    }
}

#[derive(Debug, Default)]
struct PartitionState {
    next_sequence: i32,
    batches: VecDeque<Batch>,
    in_flight: usize,
    needs_resend: bool,
    retry_at: Option<Instant>,
    /// Broker and connection that carry this partition's in-flight batches. While any are
    /// in flight, later batches go on the same connection or wait (kafka-wire.md §3.3).
    conn: Option<(i32, BrokerConnection)>,
    /// Offset right after the last batch acknowledged on this partition (None before the
    /// first ack). Where the next unacknowledged batch lands if nobody else writes.
    acked_end: Option<i64>,
    /// Some unacknowledged batch may be in the log although no ack came back: the log is
    /// read before anything is resent ([`ProducerConfig::check_log_before_resend`]).
    unknown_outcome: bool,
}

impl PartitionState {
    /// Resolves the handles of the acknowledged batches at the front, in sequence order.
    fn deliver_acked(&mut self) {
        while self
            .batches
            .front()
            .is_some_and(|b| matches!(b.state, BatchState::Acked(_)))
        {
            if let Some(mut b) = self.batches.pop_front()
                && let BatchState::Acked(ack) = b.state
                && let Some(reply) = b.reply.take()
            {
                let _ = reply.send(Ok(ack));
            }
        }
    }

    /// Whether a further batch may go to `leader` now: nothing in flight, or the in-flight
    /// batches are on `leader`'s connection and it is still open. A batch sent on a new
    /// connection while earlier ones are pending on a dead one could reach the broker first;
    /// a broker without state for the producer id accepts it (KIP-360), leaving a gap that the
    /// earlier batches' resends can only fill after an epoch bump, out of order.
    fn may_send_to(&self, leader: i32) -> bool {
        self.in_flight == 0
            || self
                .conn
                .as_ref()
                .is_some_and(|(broker, c)| *broker == leader && !c.is_closed())
    }
}

enum Command {
    Send {
        tp: TopicPartition,
        data: BytesMut,
        records: i32,
        zstd: bool,
        reply: oneshot::Sender<Result<ProduceAck, ClientError>>,
    },
    Flush(oneshot::Sender<()>),
}

/// `(error code, base offset, log append time, error message)` of one partition.
/// `(error code, base offset, log append time, error message, leader hint)` of one
/// partition; the hint is `(leader id, leader epoch)` from Produce v10+ (KIP-951), `(-1, -1)`
/// when absent.
type PartitionOutcome = (ErrorCode, i64, i64, Option<String>, (i32, i32));

struct Completion {
    broker: i32,
    /// Whether the request may have reached the broker (false when no connection was had).
    maybe_written: bool,
    version: i16,
    batches: Vec<(TopicPartition, u64)>,
    result: Result<ProduceResponse, ClientError>,
}

struct Driver {
    cluster: Cluster,
    config: ProducerConfig,
    identity: ProducerIdentity,
    shared_identity: Arc<Mutex<ProducerIdentity>>,
    partitions: BTreeMap<TopicPartition, PartitionState>,
    next_batch_id: u64,
    in_flight: usize,
    bump_reason: Option<String>,
    events: broadcast::Sender<ProducerEvent>,
    completions_tx: mpsc::UnboundedSender<Completion>,
    flush_waiters: Vec<oneshot::Sender<()>>,
    fatal: Option<ClientError>,
}

/// An idempotent producer for prepared batches. See the module docs.
#[derive(Debug)]
pub struct IdempotentProducer {
    tx: mpsc::UnboundedSender<Command>,
    identity: Arc<Mutex<ProducerIdentity>>,
    events: broadcast::Sender<ProducerEvent>,
    max_request_size: usize,
    _task: crate::task::OwnedTask<()>,
}

async fn init_producer_id(
    cluster: &Cluster,
    current: Option<ProducerIdentity>,
) -> Result<ProducerIdentity, ClientError> {
    let conn = cluster.any_broker().await?;
    let version = conn.version(ApiKey::InitProducerId)?;
    let mut req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(-1);
    if let (Some(cur), true) = (current, version >= 3) {
        // KIP-360: bump the epoch of the id we hold.
        req.producer_id = ProducerId(cur.producer_id);
        req.producer_epoch = cur.epoch;
    }
    let resp = conn.send_at(&req, version).await?;
    ErrorCode::check(resp.error_code)
        .map_err(|code| conn.broker_error(ApiKey::InitProducerId, code, None))?;
    Ok(ProducerIdentity {
        producer_id: resp.producer_id.0,
        epoch: resp.producer_epoch,
    })
}

impl IdempotentProducer {
    /// Obtains a producer id (InitProducerId) and starts the producer task.
    pub async fn new(cluster: Cluster, config: ProducerConfig) -> Result<Self, ClientError> {
        config.validate()?;
        // A fresh cluster answers COORDINATOR_LOAD_IN_PROGRESS until its producer-id
        // machinery is ready: retry retriable errors per the retry policy.
        let mut backoff = config.retry.start();
        let identity = loop {
            match init_producer_id(&cluster, None).await {
                Ok(id) => break id,
                Err(e) if e.is_retriable() => match backoff.next_delay() {
                    Some(d) => tokio::time::sleep(d).await,
                    None => {
                        return Err(ClientError::RetriesExhausted {
                            attempts: backoff.attempts(),
                            elapsed: backoff.elapsed(),
                            last: Box::new(e),
                        });
                    }
                },
                Err(e) => return Err(e),
            }
        };
        tracing::info!(
            producer_id = identity.producer_id,
            epoch = identity.epoch,
            "idempotent producer ready"
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let (completions_tx, completions_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(64);
        let shared_identity = Arc::new(Mutex::new(identity));
        let max_request_size = config.max_request_size;
        let driver = Driver {
            cluster,
            config,
            identity,
            shared_identity: Arc::clone(&shared_identity),
            partitions: BTreeMap::new(),
            next_batch_id: 0,
            in_flight: 0,
            bump_reason: None,
            events: events.clone(),
            completions_tx,
            flush_waiters: Vec::new(),
            fatal: None,
        };
        let task = crate::task::OwnedTask::spawn(driver.run(rx, completions_rx));
        Ok(Self {
            tx,
            identity: shared_identity,
            events,
            max_request_size,
            _task: task,
        })
    }

    /// Queues one prepared v2 batch for `topic`/`partition`. The batch is validated here
    /// (magic 2, length, no control or transactional bit, contiguous offsets); its producer
    /// fields and CRC are overwritten.
    pub fn send(
        &self,
        topic: &str,
        partition: i32,
        batch: Bytes,
    ) -> Result<DeliveryHandle, ClientError> {
        let (records, zstd) = check_batch(&batch)?;
        if batch.len().saturating_add(256) > self.max_request_size {
            return Err(ClientError::InvalidInput {
                message: format!(
                    "batch of {} bytes exceeds the maximum request size {}",
                    batch.len(),
                    self.max_request_size
                ),
            });
        }
        let (reply, rx) = oneshot::channel();
        // Patched in place if we hold the only reference; copied once otherwise.
        let data = BytesMut::from(batch);
        self.tx
            .send(Command::Send {
                tp: TopicPartition::new(topic, partition),
                data,
                records,
                zstd,
                reply,
            })
            .map_err(|_| ClientError::Shutdown)?;
        Ok(DeliveryHandle { rx })
    }

    /// Waits until every batch sent so far is acknowledged or failed.
    pub async fn flush(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Flush(tx))
            .map_err(|_| ClientError::Shutdown)?;
        rx.await.map_err(|_| ClientError::Shutdown)
    }

    /// The producer id and epoch currently in use.
    #[must_use]
    pub fn identity(&self) -> ProducerIdentity {
        *self
            .identity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Subscribes to [`ProducerEvent`]s.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<ProducerEvent> {
        self.events.subscribe()
    }
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut completions: mpsc::UnboundedReceiver<Completion>,
    ) {
        let mut commands_open = true;
        loop {
            self.dispatch().await;
            self.notify_flush();
            if !commands_open && self.is_idle() {
                return;
            }
            let next_retry = self.partitions.values().filter_map(|p| p.retry_at).min();
            let sleep = async {
                match next_retry {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(cmd) => self.handle_command(cmd),
                    None => commands_open = false,
                },
                Some(done) = completions.recv() => self.handle_completion(done),
                () = sleep => {}
            }
        }
    }

    fn is_idle(&self) -> bool {
        self.partitions.values().all(|p| p.batches.is_empty())
    }

    fn notify_flush(&mut self) {
        if self.is_idle() {
            for w in self.flush_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Flush(w) => self.flush_waiters.push(w),
            Command::Send {
                tp,
                data,
                records,
                zstd,
                reply,
            } => {
                if let Some(fatal) = &self.fatal {
                    let _ = reply.send(Err(fatal.clone()));
                    return;
                }
                let identity = self.identity;
                let retry = self.config.retry;
                let id = self.next_batch_id;
                self.next_batch_id = self.next_batch_id.wrapping_add(1);
                let p = self.partitions.entry(tp).or_default();
                let base_sequence = p.next_sequence;
                p.next_sequence = next_sequence(base_sequence, records);
                let mut batch = Batch {
                    id,
                    data: data.freeze(),
                    records,
                    zstd,
                    base_sequence,
                    identity,
                    state: BatchState::Queued,
                    backoff: retry.start(),
                    last_error: None,
                    doomed: None,
                    reply: Some(reply),
                };
                batch.stamp(identity, base_sequence);
                p.batches.push_back(batch);
            }
        }
    }

    /// Sends whatever can be sent, one batch per partition per request.
    async fn dispatch(&mut self) {
        self.check_unknown_outcomes().await;
        if self.bump_reason.is_some() {
            // A bump re-stamps the unacknowledged batches: first learn which are in the log.
            if self.in_flight == 0 && !self.partitions.values().any(|p| p.unknown_outcome) {
                self.bump_epoch().await;
            } else {
                return;
            }
        }
        let now = Instant::now();
        // Partitions whose failed requests have all come back (and whose log was checked if
        // an outcome was unknown): requeue their batches.
        for (tp, p) in &mut self.partitions {
            if p.needs_resend && p.in_flight == 0 && !p.unknown_outcome {
                p.needs_resend = false;
                let mut delay = None;
                let mut expired = Vec::new();
                for b in p.batches.iter_mut() {
                    if matches!(b.state, BatchState::InFlight | BatchState::Queued) {
                        b.state = BatchState::Queued;
                        if delay.is_none() {
                            match b.backoff.next_delay() {
                                Some(d) => delay = Some(d),
                                None => expired.push(b.id),
                            }
                        }
                    }
                }
                if !expired.is_empty() {
                    tracing::warn!(%tp, "batch retries exhausted");
                    let mut first_failure = None;
                    for b in p.batches.iter_mut().filter(|b| expired.contains(&b.id)) {
                        let last = b.last_error.take().unwrap_or(ClientError::Shutdown);
                        let error = ClientError::RetriesExhausted {
                            attempts: b.backoff.attempts(),
                            elapsed: b.backoff.elapsed(),
                            last: Box::new(last),
                        };
                        if first_failure.is_none() {
                            first_failure = Some((b.id, error.clone()));
                        }
                        b.fail(error);
                    }
                    p.batches.retain(|b| !expired.contains(&b.id));
                    if let Some((id, error)) = first_failure {
                        fail_later_batches(p, tp, id, &error);
                    }
                    // Its sequence range is now a gap: later batches need a new epoch.
                    if !p.batches.is_empty() || p.next_sequence != 0 {
                        self.bump_reason = Some(format!("a batch of {tp} failed for good"));
                    }
                }
                p.retry_at = delay.map(|d| now + d);
            }
        }
        if self.bump_reason.is_some() {
            return;
        }
        let stale_topics: Vec<String> = if self.cluster.is_stale() {
            let mut t: Vec<String> = self
                .partitions
                .iter()
                .filter(|(_, p)| !p.batches.is_empty())
                .map(|(tp, _)| tp.topic.clone())
                .collect();
            t.dedup();
            t
        } else {
            Vec::new()
        };
        if !stale_topics.is_empty()
            && let Err(e) = self.cluster.refresh_if_stale(&stale_topics).await
        {
            tracing::warn!(error = %e, "metadata refresh failed");
        }
        loop {
            // One round: at most one batch per partition.
            let md = self.cluster.metadata();
            let mut round: BTreeMap<i32, Vec<(TopicPartition, u64, Bytes, bool)>> = BTreeMap::new();
            for (tp, p) in &mut self.partitions {
                if p.retry_at.is_some_and(|t| t > now) || p.needs_resend {
                    continue;
                }
                p.retry_at = None;
                if p.in_flight >= self.config.max_in_flight {
                    continue;
                }
                if let Ok((leader, _)) = md.leader(&tp.topic, tp.partition)
                    && !p.may_send_to(leader)
                {
                    // Wait for the in-flight batches to come back (acked or failed).
                    continue;
                }
                let Some(b) = p
                    .batches
                    .iter_mut()
                    .find(|b| matches!(b.state, BatchState::Queued))
                else {
                    continue;
                };
                match md.leader(&tp.topic, tp.partition) {
                    Ok((leader, _)) => {
                        tracing::debug!(
                            %tp,
                            leader,
                            batch = b.id,
                            epoch = b.identity.epoch,
                            base_sequence = b.base_sequence,
                            "sending batch"
                        );
                        b.state = BatchState::InFlight;
                        p.in_flight += 1;
                        self.in_flight += 1;
                        round.entry(leader).or_default().push((
                            tp.clone(),
                            b.id,
                            b.bytes(),
                            b.zstd,
                        ));
                    }
                    Err(e) => {
                        self.cluster.mark_stale();
                        match b.backoff.next_delay() {
                            Some(d) => p.retry_at = Some(now + d),
                            None => {
                                let id = b.id;
                                b.fail(e);
                                p.batches.retain(|x| x.id != id);
                            }
                        }
                    }
                }
            }
            if round.is_empty() {
                break;
            }
            for (broker, batches) in round {
                self.send_to_broker(broker, batches).await;
            }
        }
    }

    /// For each partition whose requests have all come back and some of whose unacknowledged
    /// batches may be in the log, reads the log from where they would be and completes the
    /// batches found there (see "Unknown outcomes" in the module docs).
    async fn check_unknown_outcomes(&mut self) {
        let now = Instant::now();
        let due: Vec<TopicPartition> = self
            .partitions
            .iter()
            .filter(|(_, p)| {
                p.unknown_outcome && p.in_flight == 0 && p.retry_at.is_none_or(|t| t <= now)
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in due {
            let Some(p) = self.partitions.get(&tp) else {
                continue;
            };
            let pending: Vec<Pending> = p
                .batches
                .iter()
                .filter(|b| !matches!(b.state, BatchState::Acked(_)))
                .map(|b| Pending {
                    id: b.id,
                    identity: b.identity,
                    base_sequence: b.base_sequence,
                    records: b.records,
                })
                .collect();
            let result = if pending.is_empty() {
                Ok(Vec::new())
            } else {
                find_in_log(
                    &self.cluster,
                    &tp,
                    p.acked_end,
                    pending,
                    self.config.max_request_size,
                )
                .await
            };
            let Some(p) = self.partitions.get_mut(&tp) else {
                continue;
            };
            match result {
                Ok(found) => {
                    p.unknown_outcome = false;
                    p.retry_at = None;
                    if !found.is_empty() {
                        tracing::info!(
                            %tp,
                            batches = found.len(),
                            "unacknowledged batches found in the log: completed, not resent"
                        );
                    }
                    for f in found {
                        if let Some(b) = p.batches.iter_mut().find(|b| b.id == f.id) {
                            let end = f.base_offset.saturating_add(i64::from(b.records));
                            p.acked_end = Some(p.acked_end.map_or(end, |e| e.max(end)));
                            b.state = BatchState::Acked(ProduceAck {
                                base_offset: f.base_offset,
                                log_append_time: f.log_append_time,
                                identity: b.identity,
                                base_sequence: b.base_sequence,
                            });
                        }
                    }
                    p.deliver_acked();
                }
                Err(e) if e.is_retriable() => {
                    tracing::debug!(%tp, error = %e, "log check failed; will retry");
                    if e.needs_metadata_refresh() {
                        self.cluster.mark_stale();
                    }
                    let delay = p
                        .batches
                        .iter_mut()
                        .find(|b| !matches!(b.state, BatchState::Acked(_)))
                        .and_then(|b| b.backoff.next_delay());
                    if let Some(d) = delay {
                        p.retry_at = Some(now + d);
                        continue;
                    }
                    tracing::warn!(%tp, "batch retries exhausted while checking the log");
                    let mut kept = VecDeque::new();
                    for mut b in p.batches.drain(..) {
                        if matches!(b.state, BatchState::Acked(_)) {
                            kept.push_back(b);
                        } else {
                            b.fail(ClientError::RetriesExhausted {
                                attempts: b.backoff.attempts(),
                                elapsed: b.backoff.elapsed(),
                                last: Box::new(e.clone()),
                            });
                        }
                    }
                    p.batches = kept;
                    p.unknown_outcome = false;
                    p.needs_resend = false;
                    p.retry_at = None;
                    // Their sequence ranges are a gap now: later batches need a new epoch.
                    self.bump_reason = Some(format!("batches of {tp} failed for good"));
                }
                Err(e) => {
                    // Typically no READ permission on the target topic: resend as before.
                    tracing::warn!(
                        %tp,
                        error = %e,
                        "cannot read the log to check unacknowledged batches; resending them"
                    );
                    p.unknown_outcome = false;
                }
            }
        }
    }

    async fn send_to_broker(
        &mut self,
        broker: i32,
        batches: Vec<(TopicPartition, u64, Bytes, bool)>,
    ) {
        let conn = match self.cluster.broker(broker).await {
            Ok(c) => c,
            Err(e) => {
                let ids = batches.into_iter().map(|(tp, id, _, _)| (tp, id)).collect();
                self.handle_completion(Completion {
                    broker,
                    maybe_written: false,
                    version: -1,
                    batches: ids,
                    result: Err(e),
                });
                return;
            }
        };
        // The connection may have been replaced since `dispatch` looked: a batch whose
        // partition still has batches in flight on the old one waits for them.
        let mut batches = batches;
        batches.retain(|(tp, id, _, _)| {
            let Some(p) = self.partitions.get_mut(tp) else {
                return false;
            };
            let earlier_elsewhere = p.in_flight > 1
                && !p
                    .conn
                    .as_ref()
                    .is_some_and(|(b, c)| *b == broker && !c.is_closed());
            if earlier_elsewhere {
                if let Some(b) = p.batches.iter_mut().find(|b| b.id == *id) {
                    b.state = BatchState::Queued;
                }
                p.in_flight = p.in_flight.saturating_sub(1);
                self.in_flight = self.in_flight.saturating_sub(1);
                return false;
            }
            p.conn = Some((broker, conn.clone()));
            true
        });
        if batches.is_empty() {
            return;
        }
        let version = match conn.version(ApiKey::Produce) {
            Ok(v) => v,
            Err(e) => {
                let ids = batches.into_iter().map(|(tp, id, _, _)| (tp, id)).collect();
                self.fail_batches_fatal(ids, e);
                return;
            }
        };
        let md = self.cluster.metadata();
        // Split into requests of at most max_request_size.
        let mut chunks: Vec<Vec<(TopicPartition, u64, Bytes)>> = vec![Vec::new()];
        let mut size = 0usize;
        for (tp, id, bytes, zstd) in batches {
            if zstd && version < 7 {
                self.fail_batches_fatal(
                    vec![(tp, id)],
                    ClientError::InvalidInput {
                        message: format!(
                            "zstd batches need Produce v7+, broker {broker} offers v{version}"
                        ),
                    },
                );
                continue;
            }
            let cost = bytes.len().saturating_add(64 + tp.topic.len());
            if size.saturating_add(cost) > self.config.max_request_size
                && chunks.last().is_some_and(|c| !c.is_empty())
            {
                chunks.push(Vec::new());
                size = 0;
            }
            size = size.saturating_add(cost);
            if let Some(c) = chunks.last_mut() {
                c.push((tp, id, bytes));
            }
        }
        for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
            let mut topics: Vec<TopicProduceData> = Vec::new();
            for (tp, _, bytes) in &chunk {
                let part = PartitionProduceData::default()
                    .with_index(tp.partition)
                    .with_records(Some(bytes.clone()));
                let idx = topics.iter().position(|t| {
                    if version >= 13 {
                        t.topic_id == md.topic_id(&tp.topic)
                    } else {
                        t.name.0.as_str() == tp.topic
                    }
                });
                match idx.and_then(|i| topics.get_mut(i)) {
                    Some(t) => t.partition_data.push(part),
                    None => {
                        let mut t = TopicProduceData::default().with_partition_data(vec![part]);
                        if version >= 13 {
                            t.topic_id = md.topic_id(&tp.topic);
                        } else {
                            t.name = TopicName(StrBytes::from_string(tp.topic.clone()));
                        }
                        topics.push(t);
                    }
                }
            }
            let req = ProduceRequest::default()
                .with_transactional_id(None)
                .with_acks(-1)
                .with_timeout_ms(
                    i32::try_from(self.config.ack_timeout.as_millis()).unwrap_or(i32::MAX),
                )
                .with_topic_data(topics);
            let ids: Vec<(TopicPartition, u64)> =
                chunk.into_iter().map(|(tp, id, _)| (tp, id)).collect();
            let timeout = conn.request_timeout() + self.config.ack_timeout;
            // Written in call order: the sequence order of each partition is kept.
            match conn.start(&req, version, timeout).await {
                Ok(pending) => {
                    let tx = self.completions_tx.clone();
                    tokio::spawn(async move {
                        let result = pending.response().await;
                        let _ = tx.send(Completion {
                            broker,
                            maybe_written: true,
                            version,
                            batches: ids,
                            result,
                        });
                    });
                }
                Err(e) => self.handle_completion(Completion {
                    broker,
                    maybe_written: true,
                    version,
                    batches: ids,
                    result: Err(e),
                }),
            }
        }
    }

    fn fail_batches_fatal(&mut self, ids: Vec<(TopicPartition, u64)>, error: ClientError) {
        for (tp, id) in ids {
            if let Some(p) = self.partitions.get_mut(&tp)
                && let Some(b) = p.batches.iter_mut().find(|b| b.id == id)
            {
                if matches!(b.state, BatchState::InFlight) {
                    p.in_flight = p.in_flight.saturating_sub(1);
                    self.in_flight = self.in_flight.saturating_sub(1);
                }
                b.fail(error.clone());
                p.batches.retain(|b| b.id != id);
                fail_later_batches(p, &tp, id, &error);
                self.bump_reason = Some(format!("a batch of {tp} failed for good: {error}"));
            }
        }
    }

    fn handle_completion(&mut self, done: Completion) {
        let mut outcomes: HashMap<(String, i32), PartitionOutcome> = HashMap::new();
        let mut endpoints: Vec<BrokerInfo> = Vec::new();
        let transport_error = match done.result {
            Ok(resp) => {
                let md = self.cluster.metadata();
                // KIP-951: brokers named by leader hints, so routing needs no Metadata call.
                endpoints = resp
                    .node_endpoints
                    .iter()
                    .map(|n| BrokerInfo {
                        id: n.node_id.0,
                        host: n.host.to_string(),
                        port: n.port,
                        rack: n.rack.as_ref().map(ToString::to_string),
                    })
                    .collect();
                for t in resp.responses {
                    let name = if done.version >= 13 {
                        md.topic_name(t.topic_id)
                            .map(str::to_owned)
                            .unwrap_or_default()
                    } else {
                        t.name.0.to_string()
                    };
                    for p in t.partition_responses {
                        outcomes.insert(
                            (name.clone(), p.index),
                            (
                                ErrorCode::from_i16(p.error_code),
                                p.base_offset,
                                p.log_append_time_ms,
                                p.error_message.map(|m| m.to_string()),
                                (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
                            ),
                        );
                    }
                }
                None
            }
            Err(e) => {
                tracing::debug!(broker = done.broker, error = %e, "produce request failed");
                if e.needs_metadata_refresh() {
                    self.cluster.mark_stale();
                }
                Some(e)
            }
        };
        for (tp, id) in done.batches {
            let Some(p) = self.partitions.get_mut(&tp) else {
                continue;
            };
            let Some(b) = p.batches.iter_mut().find(|b| b.id == id) else {
                continue;
            };
            if !matches!(b.state, BatchState::InFlight) {
                continue;
            }
            p.in_flight = p.in_flight.saturating_sub(1);
            self.in_flight = self.in_flight.saturating_sub(1);
            if let Some(error) = b.doomed.take() {
                b.fail(error);
                p.batches.retain(|x| x.id != id);
                continue;
            }
            tracing::debug!(
                %tp,
                batch = b.id,
                base_sequence = b.base_sequence,
                outcome = ?transport_error
                    .as_ref()
                    .map(ToString::to_string)
                    .ok_or_else(|| outcomes.get(&(tp.topic.clone(), tp.partition))),
                "batch completed"
            );
            if let Some(e) = &transport_error {
                b.state = BatchState::Queued;
                b.last_error = Some(e.clone());
                p.needs_resend = true;
                p.unknown_outcome |= done.maybe_written && self.config.check_log_before_resend;
                continue;
            }
            let Some((code, base_offset, log_append_time, message, (hint_leader, hint_epoch))) =
                outcomes.remove(&(tp.topic.clone(), tp.partition))
            else {
                b.state = BatchState::Queued;
                b.last_error = Some(ClientError::Partition {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    code: ErrorCode::UnknownServerError,
                    message: Some("partition missing from the Produce response".to_owned()),
                });
                p.needs_resend = true;
                continue;
            };
            let error = ClientError::Partition {
                topic: tp.topic.clone(),
                partition: tp.partition,
                code,
                message,
            };
            match code {
                ErrorCode::NoError | ErrorCode::DuplicateSequenceNumber => {
                    if base_offset >= 0 {
                        let end = base_offset.saturating_add(i64::from(b.records));
                        p.acked_end = Some(p.acked_end.map_or(end, |e| e.max(end)));
                    }
                    b.state = BatchState::Acked(ProduceAck {
                        base_offset,
                        log_append_time,
                        identity: b.identity,
                        base_sequence: b.base_sequence,
                    });
                }
                ErrorCode::OutOfOrderSequenceNumber if p.needs_resend => {
                    // Expected after an earlier batch of this partition failed: resend in order.
                    b.state = BatchState::Queued;
                }
                code if code.is_sequence() => {
                    b.state = BatchState::Queued;
                    b.last_error = Some(error);
                    p.needs_resend = true;
                    if self.bump_reason.is_none() {
                        self.bump_reason = Some(format!("{code} on {tp}"));
                    }
                }
                code if code.is_retriable() && code != ErrorCode::CorruptMessage => {
                    // KIP-951: a NOT_LEADER_OR_FOLLOWER answer may name the new leader.
                    if code.is_routing()
                        && !self.cluster.apply_leader_hint(
                            &tp.topic,
                            tp.partition,
                            hint_leader,
                            hint_epoch,
                            &endpoints,
                        )
                    {
                        self.cluster.mark_stale();
                    }
                    // Appended by the leader, not (yet) replicated: in the log or not.
                    if matches!(
                        code,
                        ErrorCode::RequestTimedOut | ErrorCode::NotEnoughReplicasAfterAppend
                    ) {
                        p.unknown_outcome |= self.config.check_log_before_resend;
                    }
                    b.state = BatchState::Queued;
                    b.last_error = Some(error);
                    p.needs_resend = true;
                }
                _ => {
                    tracing::warn!(%tp, error = %error, "batch rejected");
                    b.fail(error.clone());
                    p.batches.retain(|x| x.id != id);
                    fail_later_batches(p, &tp, id, &error);
                    // Its sequence range is a gap now: a new epoch restarts sequences.
                    if self.bump_reason.is_none() {
                        self.bump_reason = Some(format!("batch of {tp} rejected: {error}"));
                    }
                }
            }
        }
        for p in self.partitions.values_mut() {
            p.deliver_acked();
        }
    }

    async fn bump_epoch(&mut self) {
        let reason = self.bump_reason.clone().unwrap_or_default();
        let old = self.identity;
        let mut backoff = self.config.retry.start();
        let new = loop {
            match init_producer_id(&self.cluster, Some(old)).await {
                Ok(id) => break id,
                Err(e) if e.is_retriable() => match backoff.next_delay() {
                    Some(d) => tokio::time::sleep(d).await,
                    None => {
                        self.fail_everything(e);
                        return;
                    }
                },
                Err(e) => {
                    self.fail_everything(e);
                    return;
                }
            }
        };
        self.identity = new;
        *self
            .shared_identity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = new;
        let mut resent = Vec::new();
        for (tp, p) in &mut self.partitions {
            p.next_sequence = 0;
            p.needs_resend = false;
            p.retry_at = None;
            let mut touched = false;
            for b in p.batches.iter_mut() {
                if matches!(b.state, BatchState::Acked(_)) {
                    continue;
                }
                let seq = p.next_sequence;
                b.stamp(new, seq);
                b.state = BatchState::Queued;
                p.next_sequence = next_sequence(seq, b.records);
                touched = true;
            }
            if touched {
                resent.push(tp.clone());
            }
        }
        tracing::warn!(?old, ?new, %reason, "producer epoch bumped; sequences reset");
        let _ = self.events.send(ProducerEvent::EpochBumped {
            old,
            new,
            reason,
            resent_partitions: resent,
        });
        self.bump_reason = None;
    }

    fn fail_everything(&mut self, error: ClientError) {
        tracing::error!(error = %error, "producer failed");
        for p in self.partitions.values_mut() {
            for mut b in p.batches.drain(..) {
                b.fail(error.clone());
            }
            p.in_flight = 0;
        }
        self.in_flight = 0;
        self.bump_reason = None;
        self.fatal = Some(error);
    }
}

/// A batch of `tp` failed for good: every later unacknowledged batch of the partition fails
/// too, so the log never has a gap behind the failed one (a replicator must not skip a
/// record). Queued batches fail now; in-flight ones when their request comes back (the broker
/// rejects them anyway: their sequences follow one it never appended). Returns how many
/// batches were failed now.
fn fail_later_batches(
    p: &mut PartitionState,
    tp: &TopicPartition,
    failed_id: u64,
    cause: &ClientError,
) -> usize {
    let error = ClientError::EarlierBatchFailed {
        topic: tp.topic.clone(),
        partition: tp.partition,
        cause: Box::new(cause.clone()),
    };
    let mut failed_now = Vec::new();
    for b in p.batches.iter_mut().filter(|b| b.id > failed_id) {
        match b.state {
            BatchState::Queued => {
                b.fail(error.clone());
                failed_now.push(b.id);
            }
            BatchState::InFlight => b.doomed = Some(error.clone()),
            BatchState::Acked(_) => {}
        }
    }
    p.batches.retain(|b| !failed_now.contains(&b.id));
    failed_now.len()
}

/// `base + records`, wrapping from `i32::MAX` to 0 (kafka-wire.md §3.2).
fn next_sequence(base: i32, records: i32) -> i32 {
    let next = i64::from(base) + i64::from(records);
    i32::try_from(next % (i64::from(i32::MAX) + 1)).unwrap_or(0)
}

/// An unacknowledged batch the log check looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    id: u64,
    identity: ProducerIdentity,
    base_sequence: i32,
    records: i32,
}

/// A pending batch found in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    id: u64,
    base_offset: i64,
    log_append_time: i64,
}

/// Fetch rounds the log check makes before giving up (it then resends what it has not
/// found); one round suffices unless other producers wrote in between.
const MAX_CHECK_ROUNDS: usize = 16;

/// The sans-I/O part of the log check: fed the records blobs fetched from
/// [`LogCheck::next_offset`], it matches the partition's batches, in log order, against the
/// pending batches, in sequence order, by producer id, epoch, base sequence and record count.
/// A producer id is ours alone, so a match is exact whoever else writes to the partition.
#[derive(Debug)]
struct LogCheck {
    pending: Vec<Pending>,
    found: Vec<Found>,
    next_offset: i64,
    finished: bool,
}

impl LogCheck {
    fn new(start: i64, pending: Vec<Pending>) -> Self {
        let finished = pending.is_empty();
        Self {
            pending,
            found: Vec::new(),
            next_offset: start,
            finished,
        }
    }

    fn next_offset(&self) -> i64 {
        self.next_offset
    }

    fn is_finished(&self) -> bool {
        self.finished
    }

    /// Feeds the records fetched from [`LogCheck::next_offset`] and the partition's high
    /// watermark. The check finishes when every pending batch was found, the high watermark
    /// is reached, the bytes are not v2 batches, or a later pending batch shows up without
    /// the one before it (impossible under the broker's sequence rules; the rest is resent).
    fn feed(&mut self, records: &Bytes, high_watermark: i64) {
        let config = ScanConfig::default().with_skip_below(self.next_offset);
        for entry in BatchScanner::with_config(records.clone(), config) {
            let Ok(Entry::V2(batch)) = entry else {
                self.finished = true;
                return;
            };
            let same = |p: &Pending| {
                batch.producer_id() == p.identity.producer_id
                    && batch.producer_epoch() == p.identity.epoch
                    && batch.base_sequence() == p.base_sequence
                    && batch.records_count() == p.records
            };
            let k = self.found.len();
            if self.pending.get(k).is_some_and(same) {
                if let Some(p) = self.pending.get(k) {
                    self.found.push(Found {
                        id: p.id,
                        base_offset: batch.base_offset(),
                        log_append_time: if batch.attributes().is_log_append_time() {
                            batch.max_timestamp()
                        } else {
                            -1
                        },
                    });
                }
            } else if self.pending.iter().skip(k + 1).any(same) {
                self.finished = true;
                return;
            }
            self.next_offset = self.next_offset.max(batch.next_offset());
            if self.found.len() == self.pending.len() {
                self.finished = true;
                return;
            }
        }
        if self.next_offset >= high_watermark {
            self.finished = true;
        }
    }

    fn into_found(self) -> Vec<Found> {
        self.found
    }
}

/// Reads `tp` from where its pending batches would be and returns those found in the log.
///
/// Where to start: right after the last acknowledged batch when there is one. Before the
/// partition's first ack, at `latest - (records pending)` (ListOffsets): exact when ferry is
/// the partition's only writer, which is the mirroring setup; with other writers a batch of
/// ours further back is not found and is resent, as without the check.
async fn find_in_log(
    cluster: &Cluster,
    tp: &TopicPartition,
    acked_end: Option<i64>,
    pending: Vec<Pending>,
    max_request_size: usize,
) -> Result<Vec<Found>, ClientError> {
    let start = match acked_end {
        Some(offset) => offset,
        None => {
            let total: i64 = pending.iter().map(|p| i64::from(p.records)).sum();
            let latest = cluster
                .list_offsets(&tp.topic, &[tp.partition], OffsetSpec::Latest, false)
                .await?;
            latest
                .first()
                .map_or(0, |&(_, offset)| offset.saturating_sub(total).max(0))
        }
    };
    let bytes = i32::try_from(max_request_size.saturating_mul(2)).unwrap_or(i32::MAX);
    let mut fetcher = Fetcher::new(
        cluster.clone(),
        FetchConfig {
            max_wait: Duration::ZERO,
            min_bytes: 0,
            max_bytes: bytes,
            partition_max_bytes: bytes,
            isolation: IsolationLevel::ReadUncommitted,
            sessions: false,
        },
    )?;
    let mut check = LogCheck::new(start, pending);
    for _ in 0..MAX_CHECK_ROUNDS {
        if check.is_finished() {
            break;
        }
        fetcher.assign(tp.clone(), check.next_offset());
        let mut answered = false;
        for event in fetcher.fetch().await? {
            match event {
                FetchEvent::Data(d) if d.tp == *tp => {
                    answered = true;
                    check.feed(&d.records, d.high_watermark);
                }
                // Below the log start or past the end: nothing more of ours is there.
                FetchEvent::OffsetOutOfRange { .. } => return Ok(check.into_found()),
                FetchEvent::Error { error, .. } => return Err(error),
                _ => {}
            }
        }
        if !answered {
            // The leader's broker was skipped: the log was not read, so nothing is known.
            return Err(ClientError::NoLeader {
                topic: tp.topic.clone(),
                partition: tp.partition,
            });
        }
    }
    // Rounds used up (other writers' data in between): what was found is exact; the rest
    // is resent.
    Ok(check.into_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid uncompressed v2 batch with `n` empty-ish records (bytes after the
    /// header are opaque to the producer).
    pub(crate) fn test_batch(n: i32) -> Bytes {
        let payload = vec![0u8; 7 * n as usize];
        let mut b = vec![0u8; RECORD_BATCH_OVERHEAD];
        b.extend_from_slice(&payload);
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&(n - 1).to_be_bytes());
        b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
        b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        b[57..61].copy_from_slice(&n.to_be_bytes());
        Bytes::from(b)
    }

    #[test]
    fn stamp_writes_fields_and_crc() {
        let mut b = BytesMut::from(test_batch(3));
        let id = ProducerIdentity {
            producer_id: 0x0102_0304_0506_0708,
            epoch: 7,
        };
        stamp_producer_fields(&mut b, id, 42);
        assert_eq!(&b[43..51], &0x0102_0304_0506_0708i64.to_be_bytes());
        assert_eq!(&b[51..53], &7i16.to_be_bytes());
        assert_eq!(&b[53..57], &42i32.to_be_bytes());
        let crc = u32::from_be_bytes(b[17..21].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&b[21..]));
        // Changing anything covered by the CRC changes it.
        let mut c = b.clone();
        stamp_producer_fields(&mut c, id, 43);
        assert_ne!(&c[17..21], &b[17..21]);
    }

    #[test]
    fn batch_validation() {
        assert_eq!(check_batch(&test_batch(5)).unwrap(), (5, false));
        let mut bad = test_batch(2).to_vec();
        bad[16] = 1;
        assert!(check_batch(&bad).is_err());
        let mut ctl = test_batch(1).to_vec();
        ctl[22] = 0x20;
        assert!(check_batch(&ctl).is_err());
        let mut holes = test_batch(3).to_vec();
        holes[23..27].copy_from_slice(&5i32.to_be_bytes());
        assert!(check_batch(&holes).is_err());
        assert!(check_batch(&test_batch(2)[..60]).is_err());
        let mut short = test_batch(2).to_vec();
        short.push(0);
        assert!(check_batch(&short).is_err(), "length field must match");
    }

    const US: ProducerIdentity = ProducerIdentity {
        producer_id: 4000,
        epoch: 2,
    };

    /// A stored batch as a fetch returns it: `n` records at `base_offset`, written by
    /// `identity` with `base_sequence`.
    fn logged(base_offset: i64, n: i32, identity: ProducerIdentity, base_sequence: i32) -> Vec<u8> {
        let mut b = BytesMut::from(test_batch(n));
        stamp_producer_fields(&mut b, identity, base_sequence);
        b[..8].copy_from_slice(&base_offset.to_be_bytes());
        b.to_vec()
    }

    fn pending(id: u64, base_sequence: i32, records: i32) -> Pending {
        Pending {
            id,
            identity: US,
            base_sequence,
            records,
        }
    }

    fn blob(parts: &[Vec<u8>]) -> Bytes {
        Bytes::from(parts.concat())
    }

    #[test]
    fn log_check_completes_the_written_prefix_and_skips_other_writers() {
        let other = ProducerIdentity {
            producer_id: 17,
            epoch: 0,
        };
        // Ours: seq 5 (2 records) written at 13 after another writer's batch; seq 7 not.
        let mut check = LogCheck::new(10, vec![pending(1, 5, 2), pending(2, 7, 3)]);
        check.feed(&blob(&[logged(10, 3, other, 0), logged(13, 2, US, 5)]), 15);
        assert!(check.is_finished(), "high watermark reached");
        assert_eq!(
            check.into_found(),
            vec![Found {
                id: 1,
                base_offset: 13,
                log_append_time: -1
            }]
        );
    }

    #[test]
    fn log_check_finds_everything_and_stops() {
        let mut check = LogCheck::new(0, vec![pending(1, 0, 2), pending(2, 2, 1)]);
        check.feed(&blob(&[logged(0, 2, US, 0), logged(2, 1, US, 2)]), 100);
        assert!(check.is_finished());
        let found = check.into_found();
        assert_eq!(
            found
                .iter()
                .map(|f| (f.id, f.base_offset))
                .collect::<Vec<_>>(),
            vec![(1, 0), (2, 2)]
        );
    }

    #[test]
    fn log_check_needs_the_exact_identity_sequence_and_count() {
        let old_epoch = ProducerIdentity { epoch: 1, ..US };
        for stored in [
            logged(0, 2, old_epoch, 0), // same id, earlier epoch
            logged(0, 2, US, 1),        // other sequence
            logged(0, 3, US, 0),        // other record count
        ] {
            let mut check = LogCheck::new(0, vec![pending(1, 0, 2)]);
            check.feed(&blob(&[stored]), 2);
            assert!(check.is_finished());
            assert!(check.into_found().is_empty());
        }
    }

    #[test]
    fn log_check_continues_below_the_high_watermark() {
        let mut check = LogCheck::new(0, vec![pending(1, 0, 2), pending(2, 2, 2)]);
        // First round: only the first batch came back (response size limit).
        check.feed(&blob(&[logged(0, 2, US, 0)]), 4);
        assert!(!check.is_finished());
        assert_eq!(check.next_offset(), 2);
        // Second round from offset 2; a fetch may repeat the batch holding the fetch offset.
        check.feed(&blob(&[logged(0, 2, US, 0), logged(2, 2, US, 2)]), 4);
        assert!(check.is_finished());
        assert_eq!(check.into_found().len(), 2);
    }

    #[test]
    fn log_check_ignores_batches_before_the_start_and_gives_up_on_a_gap() {
        // A matching batch below the start offset is not a candidate.
        let mut check = LogCheck::new(5, vec![pending(1, 0, 2)]);
        check.feed(&blob(&[logged(0, 2, US, 0)]), 5);
        assert!(check.is_finished());
        assert!(check.into_found().is_empty());
        // The second pending batch without the first: stop, resend everything.
        let mut check = LogCheck::new(0, vec![pending(1, 0, 2), pending(2, 2, 2)]);
        check.feed(&blob(&[logged(0, 2, US, 2)]), 10);
        assert!(check.is_finished());
        assert!(check.into_found().is_empty());
        // Bytes that are not v2 batches end the check.
        let mut check = LogCheck::new(0, vec![pending(1, 0, 2)]);
        let mut legacy = logged(0, 2, US, 0);
        legacy[16] = 7;
        check.feed(&Bytes::from(legacy), 10);
        assert!(check.is_finished());
        assert!(check.into_found().is_empty());
    }

    #[test]
    fn log_check_reports_log_append_time() {
        let mut stored = logged(7, 1, US, 0);
        stored[22] |= 0x08; // timestamp type: LogAppendTime
        stored[35..43].copy_from_slice(&1_700_000_000_000i64.to_be_bytes());
        let mut check = LogCheck::new(7, vec![pending(9, 0, 1)]);
        check.feed(&Bytes::from(stored), 8);
        assert_eq!(
            check.into_found(),
            vec![Found {
                id: 9,
                base_offset: 7,
                log_append_time: 1_700_000_000_000
            }]
        );
    }

    #[test]
    fn sequence_wraps() {
        assert_eq!(next_sequence(0, 5), 5);
        assert_eq!(next_sequence(i32::MAX, 1), 0);
        assert_eq!(next_sequence(i32::MAX - 1, 3), 1);
    }

    #[test]
    fn config_limits() {
        assert!(ProducerConfig::default().validate().is_ok());
        assert!(
            ProducerConfig {
                max_in_flight: 6,
                ..ProducerConfig::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            ProducerConfig {
                max_in_flight: 0,
                ..ProducerConfig::default()
            }
            .validate()
            .is_err()
        );
    }
}
