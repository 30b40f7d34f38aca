//! Transactional producer primitives for an exactly-once mode.
//!
//! [`TransactionalProducer`] drives one `transactional.id` through the transaction protocol:
//!
//! 1. [`TransactionalProducer::init`]: FindCoordinator(TRANSACTION), then InitProducerId with
//!    the transactional id and timeout. This fences older instances of the id and completes
//!    or aborts a transaction they left open. The protocol is chosen here (see below).
//! 2. [`TransactionalProducer::begin`] (local).
//! 3. [`TransactionalProducer::send`]: one prepared v2 batch to one partition, stamped with
//!    the producer id, epoch, the partition's next sequence and the transactional bit (bit 4),
//!    in a Produce request carrying the transactional id, `acks = -1`. Under
//!    [`TxnProtocol::V1`] the partition is first added with AddPartitionsToTxn (v0–3, the
//!    client path); under [`TxnProtocol::V2`] Produce v12+ adds it implicitly (KIP-890).
//! 4. [`TransactionalProducer::send_offsets`]: consumer-group offsets inside the transaction:
//!    AddOffsetsToTxn to the transaction coordinator (V1 only), then TxnOffsetCommit to the
//!    group coordinator with generation −1 and an empty member id (a simple group; ferry is
//!    not a member). Under V2, TxnOffsetCommit v5 adds the group implicitly.
//! 5. [`TransactionalProducer::commit`] / [`TransactionalProducer::abort`]: EndTxn. Under V2,
//!    EndTxn v5 bumps the epoch (or allocates a new producer id on overflow) and returns the
//!    new identity, which is adopted with every sequence reset to 0; under V1 the identity and
//!    the sequences carry over to the next transaction.
//!
//! # Choosing the protocol
//!
//! [`TxnProtocol::V2`] when the transaction coordinator's ApiVersions reply has the finalised
//! feature `transaction.version >= 2` and it speaks EndTxn v5, TxnOffsetCommit v5 and Produce
//! v12 (4.x); otherwise [`TxnProtocol::V1`], which caps Produce at v11, TxnOffsetCommit and
//! EndTxn at v4 (a transactional producer must not use Produce v12+ without TV2). V1 can be
//! forced with [`TransactionConfig::with_protocol`] (4.x coordinators still serve it).
//!
//! # Errors and retries
//!
//! Every request is retried per the [`BackoffConfig`] on retriable errors, on
//! CONCURRENT_TRANSACTIONS (51: the previous transaction's markers are still being written)
//! and after the coordinator moved (looked up again). A Produce retry resends the identical
//! bytes with the same sequence, which the broker deduplicates. PRODUCER_FENCED,
//! INVALID_PRODUCER_EPOCH and TRANSACTION_COORDINATOR_FENCED mean another instance took over
//! the id: the producer becomes [`TxnState::Fenced`] and only a new
//! [`TransactionalProducer::init`] helps ([`TxnError::is_fenced`]). Any other failure inside a
//! transaction (TRANSACTION_ABORTABLE, a batch that failed for good, retries exhausted)
//! leaves the producer in [`TxnState::AbortRequired`]: call
//! [`TransactionalProducer::abort`], then begin again.
//!
//! One batch is in flight at a time (each `send` waits for its acknowledgement); pipelining
//! up to five per partition as the idempotent producer does is not implemented here.
//!
//! # References
//! - KIP-98 (transactions), KIP-447 (TxnOffsetCommit generation/member fields), KIP-360
//!   (epoch bumps), KIP-890 (transaction version 2: implicit AddPartitions, epoch bump per
//!   transaction, EndTxn v5), KIP-584 (finalised features), KIP-516 (Produce v13 topic ids)
//! - `clients/src/main/java/org/apache/kafka/clients/producer/internals/TransactionManager.java`
//!   (apache/kafka) for the order of requests and the error handling
//! - kafka-wire.md §3.5 (TV0/1), §3.6 (TV2), §5.4 rule 4 (Produce cap)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferry_protocol::api::ApiKey;
use ferry_protocol::batch::{Attributes, CRC_OFFSET, RecordBatch, batch_crc};
use ferry_protocol::error::ErrorCode;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, EndTxnRequest,
    GroupId, InitProducerIdRequest, ProduceRequest, ProduceResponse, ProducerId, TopicName,
    TransactionalId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::CommittedOffset;
use crate::backoff::{Backoff, BackoffConfig};
use crate::cluster::{Cluster, CoordinatorType};
use crate::config::ConfigError;
use crate::connection::BrokerConnection;
use crate::error::{BrokerRef, ClientError, suffix};
use crate::fetcher::TopicPartition;
use crate::producer::{ProduceAck, ProducerIdentity};

/// The finalised feature that selects the transaction protocol (KIP-890).
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";

/// Highest Produce version a transactional producer may use without TV2
/// (`MSG/ProduceRequest.json`: v12 is for TV2 only).
const PRODUCE_MAX_WITHOUT_TV2: i16 = 11;
/// Highest EndTxn / TxnOffsetCommit version without TV2 (v5 are the TV2 versions).
const TXN_MAX_WITHOUT_TV2: i16 = 4;
/// AddPartitionsToTxn versions above 3 are broker-only (`VerifyOnly`, KIP-890).
const ADD_PARTITIONS_CLIENT_MAX: i16 = 3;

/// Errors of the transactional producer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TxnError {
    /// Transport, negotiation, authentication or a FindCoordinator failure; see
    /// [`ClientError`].
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The transaction coordinator's answer to InitProducerId, AddPartitionsToTxn,
    /// AddOffsetsToTxn or EndTxn (PRODUCER_FENCED, INVALID_TXN_STATE,
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, INVALID_TRANSACTION_TIMEOUT, ...).
    #[error(
        "{api:?} for transactional id {transactional_id}: {code}{}",
        suffix(message)
    )]
    Coordinator {
        /// The API.
        api: ApiKey,
        /// The transactional id.
        transactional_id: String,
        /// The error code.
        code: ErrorCode,
        /// The broker's `error_message`, if any.
        message: Option<String>,
    },
    /// A partition-level answer (Produce, AddPartitionsToTxn, TxnOffsetCommit).
    #[error("{api:?} for {topic}-{partition}: {code}{}", suffix(message))]
    Partition {
        /// The API.
        api: ApiKey,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The error code.
        code: ErrorCode,
        /// The broker's `error_message`, if any.
        message: Option<String>,
    },
    /// A group-level answer (AddOffsetsToTxn, TxnOffsetCommit).
    #[error("{api:?} for group {group}: {code}{}", suffix(message))]
    Group {
        /// The API.
        api: ApiKey,
        /// Group id.
        group: String,
        /// The error code.
        code: ErrorCode,
        /// The broker's `error_message`, if any.
        message: Option<String>,
    },
    /// The operation is not allowed in the producer's current state (caller fault), e.g.
    /// `send` outside a transaction or `begin` while one is open.
    #[error("{operation} is not allowed in state {state:?}")]
    InvalidState {
        /// The operation attempted.
        operation: &'static str,
        /// The state the producer was in.
        state: TxnState,
    },
    /// The batch or the configuration is invalid (caller fault); nothing was sent.
    #[error("invalid transactional request: {message}")]
    InvalidInput {
        /// What is wrong.
        message: String,
    },
    /// The broker cannot do what the chosen protocol needs (e.g. V2 forced on a cluster
    /// without `transaction.version >= 2`).
    #[error("{broker} does not support {what}")]
    Unsupported {
        /// The broker.
        broker: BrokerRef,
        /// What is missing.
        what: String,
    },
    /// The retry policy ended; `last` is the final error.
    #[error("gave up after {attempts} retries in {elapsed:?}: {last}")]
    RetriesExhausted {
        /// Retries made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last error.
        last: Box<Self>,
    },
}

impl From<ConfigError> for TxnError {
    fn from(e: ConfigError) -> Self {
        Self::Client(ClientError::Config(e))
    }
}

impl TxnError {
    /// The error code of a broker answer, if there is one.
    #[must_use]
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Client(e) => e.error_code(),
            Self::Coordinator { code, .. }
            | Self::Partition { code, .. }
            | Self::Group { code, .. } => Some(*code),
            Self::RetriesExhausted { last, .. } => last.error_code(),
            _ => None,
        }
    }

    /// Sending the same request again may succeed: retriable codes, CONCURRENT_TRANSACTIONS,
    /// a moved coordinator, connection failures.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Client(e) => e.is_retriable(),
            Self::Coordinator { code, .. }
            | Self::Partition { code, .. }
            | Self::Group { code, .. } => {
                code.is_retriable() || *code == ErrorCode::ConcurrentTransactions
            }
            _ => false,
        }
    }

    /// The transaction coordinator moved or is loading: look it up again.
    #[must_use]
    pub fn needs_coordinator_lookup(&self) -> bool {
        match self {
            Self::Client(e) => {
                e.error_code().is_some_and(ErrorCode::is_coordinator)
                    || matches!(
                        e,
                        ClientError::ConnectionClosed { .. }
                            | ClientError::Timeout { .. }
                            | ClientError::Connect { .. }
                    )
            }
            Self::Coordinator { code, .. } | Self::Group { code, .. } => code.is_coordinator(),
            _ => false,
        }
    }

    /// Another producer instance with the same transactional id took over (PRODUCER_FENCED,
    /// INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED): this instance must stop or
    /// re-initialise.
    #[must_use]
    pub fn is_fenced(&self) -> bool {
        match self {
            Self::RetriesExhausted { last, .. } => last.is_fenced(),
            other => matches!(
                other.error_code(),
                Some(
                    ErrorCode::ProducerFenced
                        | ErrorCode::InvalidProducerEpoch
                        | ErrorCode::TransactionCoordinatorFenced
                )
            ),
        }
    }

    /// Retrying cannot help: fenced, authorisation, configuration, unsupported, invalid input.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Client(e) => e.is_fatal(),
            Self::InvalidInput { .. } | Self::Unsupported { .. } => true,
            Self::RetriesExhausted { last, .. } => last.is_fatal(),
            other => other.is_fenced() || other.error_code().is_some_and(ErrorCode::is_auth),
        }
    }
}

/// Which transaction protocol the producer speaks (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnProtocol {
    /// Transaction version 0/1 (0.11–3.x, or 4.x with TV < 2): explicit AddPartitionsToTxn
    /// and AddOffsetsToTxn, Produce ≤ v11, EndTxn ≤ v4, epoch kept across transactions.
    V1,
    /// Transaction version 2 (KIP-890, 4.x): Produce v12+ and TxnOffsetCommit v5 add
    /// partitions and groups implicitly; EndTxn v5 bumps the epoch every transaction.
    V2,
}

/// The producer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    /// No transaction open; [`TransactionalProducer::begin`] starts one.
    Ready,
    /// A transaction is open.
    InTransaction,
    /// A failure inside the transaction: only [`TransactionalProducer::abort`] is allowed.
    AbortRequired,
    /// Another instance took over the transactional id: nothing is allowed.
    Fenced,
}

/// Transactional producer settings.
///
/// Defaults: transaction timeout 60 s (the Java producer's `transaction.timeout.ms`), Produce
/// `timeout_ms` 30 s, retries per [`BackoffConfig::default`], protocol chosen automatically.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionConfig {
    transactional_id: String,
    transaction_timeout: Duration,
    ack_timeout: Duration,
    retry: BackoffConfig,
    protocol: Option<TxnProtocol>,
}

impl TransactionConfig {
    /// Settings for `transactional_id`, with the defaults above.
    #[must_use]
    pub fn new(transactional_id: impl Into<String>) -> Self {
        Self {
            transactional_id: transactional_id.into(),
            transaction_timeout: Duration::from_secs(60),
            ack_timeout: Duration::from_secs(30),
            retry: BackoffConfig::default(),
            protocol: None,
        }
    }

    /// How long the coordinator lets a transaction stay open before aborting it (must not
    /// exceed the broker's `transaction.max.timeout.ms`, 15 minutes by default).
    #[must_use]
    pub fn with_transaction_timeout(mut self, timeout: Duration) -> Self {
        self.transaction_timeout = timeout;
        self
    }

    /// Produce `timeout_ms`.
    #[must_use]
    pub fn with_ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// Retry policy of every request.
    #[must_use]
    pub fn with_retry(mut self, retry: BackoffConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Forces a protocol (`None`: chosen from the coordinator's `transaction.version`).
    #[must_use]
    pub fn with_protocol(mut self, protocol: Option<TxnProtocol>) -> Self {
        self.protocol = protocol;
        self
    }

    /// The transactional id.
    #[must_use]
    pub fn transactional_id(&self) -> &str {
        &self.transactional_id
    }

    /// Checks the values: a non-empty transactional id, timeouts that are positive and fit
    /// in `i32` milliseconds, a valid retry policy.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.transactional_id.is_empty() {
            return Err(ConfigError::InvalidValue {
                field: "transactional id",
                message: "must not be empty".to_owned(),
            });
        }
        for (field, d) in [
            ("transaction timeout", self.transaction_timeout),
            ("ack timeout", self.ack_timeout),
        ] {
            if d.is_zero() || i32::try_from(d.as_millis()).is_err() {
                return Err(ConfigError::InvalidValue {
                    field,
                    message: "must be positive and fit in i32 milliseconds".to_owned(),
                });
            }
        }
        self.retry.validate()
    }
}

/// Kafka's sequence increment with wrap-around at `i32::MAX`
/// (`DefaultRecordBatch.incrementSequence`).
fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// Checks a prepared batch and returns it stamped for a transaction: base offset 0, the
/// producer id, epoch and base sequence, the transactional bit, a fresh CRC-32C. Returns the
/// stamped bytes and the record count.
fn stamp_transactional(
    batch: Bytes,
    identity: ProducerIdentity,
    base_sequence: i32,
) -> Result<(Bytes, i32), TxnError> {
    let invalid = |message: String| TxnError::InvalidInput { message };
    let view = RecordBatch::new(batch).map_err(|e| invalid(format!("not one v2 batch: {e}")))?;
    let mut header = view.header();
    if header.attributes.is_control() {
        return Err(invalid("control batches cannot be produced".to_owned()));
    }
    let count = view.records_count();
    if count <= 0 || header.last_offset_delta.checked_add(1) != Some(count) {
        return Err(invalid(format!(
            "batch must have contiguous offsets (lastOffsetDelta {}, recordsCount {count})",
            header.last_offset_delta
        )));
    }
    header.base_offset = 0;
    header.producer_id = identity.producer_id;
    header.producer_epoch = identity.epoch;
    header.base_sequence = base_sequence;
    header.attributes = header
        .attributes
        .with(Attributes::TRANSACTIONAL, true)
        .with(Attributes::LOG_APPEND_TIME, false);
    let records = view.records_slice();
    let mut prefix = header.to_prefix(view.length(), count);
    let crc = batch_crc(&prefix, records);
    if let Some(slot) = prefix.get_mut(CRC_OFFSET..CRC_OFFSET + 4) {
        slot.copy_from_slice(&crc.to_be_bytes());
    }
    let mut out = BytesMut::with_capacity(prefix.len() + records.len());
    out.extend_from_slice(&prefix);
    out.extend_from_slice(records);
    Ok((out.freeze(), count))
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn msg(m: Option<StrBytes>) -> Option<String> {
    m.map(|m| m.to_string()).filter(|m| !m.is_empty())
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Sleeps before the next attempt, or returns the error when it is final or the policy
/// ended.
async fn wait_or_fail(backoff: &mut Backoff, err: TxnError) -> Result<(), TxnError> {
    if !err.is_retriable() {
        return Err(err);
    }
    match backoff.next_delay() {
        Some(delay) => {
            tracing::debug!(error = %err, ?delay, "transactional request failed; retrying");
            tokio::time::sleep(delay).await;
            Ok(())
        }
        None => Err(TxnError::RetriesExhausted {
            attempts: backoff.attempts(),
            elapsed: backoff.elapsed(),
            last: Box::new(err),
        }),
    }
}

/// A producer for one transactional id. See the module docs.
#[derive(Debug)]
pub struct TransactionalProducer {
    cluster: Cluster,
    config: TransactionConfig,
    identity: ProducerIdentity,
    protocol: TxnProtocol,
    coordinator: Option<BrokerConnection>,
    sequences: BTreeMap<TopicPartition, i32>,
    state: TxnState,
    /// Partitions added to (or written in) the open transaction.
    partitions: BTreeSet<TopicPartition>,
    /// Groups added to the open transaction.
    groups: BTreeSet<String>,
}

impl TransactionalProducer {
    /// Finds the transaction coordinator, runs InitProducerId (fencing older instances of
    /// the id) and chooses the protocol.
    pub async fn init(cluster: Cluster, config: TransactionConfig) -> Result<Self, TxnError> {
        config.validate()?;
        let mut producer = Self {
            cluster,
            config,
            identity: ProducerIdentity {
                producer_id: -1,
                epoch: -1,
            },
            protocol: TxnProtocol::V1,
            coordinator: None,
            sequences: BTreeMap::new(),
            state: TxnState::Ready,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
        };
        let mut backoff = producer.config.retry.start();
        loop {
            match producer.try_init().await {
                Ok(()) => break,
                Err(e) => {
                    producer.on_error(&e);
                    wait_or_fail(&mut backoff, e).await?;
                }
            }
        }
        tracing::info!(
            transactional_id = %producer.config.transactional_id,
            producer_id = producer.identity.producer_id,
            epoch = producer.identity.epoch,
            protocol = ?producer.protocol,
            "transactional producer ready"
        );
        Ok(producer)
    }

    async fn try_init(&mut self) -> Result<(), TxnError> {
        let conn = self.coordinator().await?;
        let protocol = choose_protocol(&conn, self.config.protocol)?;
        let version = conn.version(ApiKey::InitProducerId)?;
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(sb(&self.config.transactional_id))))
            .with_transaction_timeout_ms(millis(self.config.transaction_timeout));
        let resp = conn.send_at(&req, version).await?;
        ErrorCode::check(resp.error_code)
            .map_err(|code| self.coordinator_error(ApiKey::InitProducerId, code, None))?;
        self.identity = ProducerIdentity {
            producer_id: resp.producer_id.0,
            epoch: resp.producer_epoch,
        };
        self.protocol = protocol;
        self.sequences.clear();
        Ok(())
    }

    /// The producer id and epoch in use.
    #[must_use]
    pub fn identity(&self) -> ProducerIdentity {
        self.identity
    }

    /// The protocol in use.
    #[must_use]
    pub fn protocol(&self) -> TxnProtocol {
        self.protocol
    }

    /// The state.
    #[must_use]
    pub fn state(&self) -> TxnState {
        self.state
    }

    /// The transactional id.
    #[must_use]
    pub fn transactional_id(&self) -> &str {
        &self.config.transactional_id
    }

    /// The next base sequence of a partition (0 if nothing was written with this identity).
    #[must_use]
    pub fn next_sequence(&self, tp: &TopicPartition) -> i32 {
        self.sequences.get(tp).copied().unwrap_or(0)
    }

    /// Starts a transaction (no request is sent; the coordinator learns of it from the first
    /// partition or group added).
    pub fn begin(&mut self) -> Result<(), TxnError> {
        self.require(TxnState::Ready, "begin")?;
        self.partitions.clear();
        self.groups.clear();
        self.state = TxnState::InTransaction;
        Ok(())
    }

    fn require(&self, state: TxnState, operation: &'static str) -> Result<(), TxnError> {
        if self.state == state {
            Ok(())
        } else {
            Err(TxnError::InvalidState {
                operation,
                state: self.state,
            })
        }
    }

    /// Records a failure: fenced errors end the producer, others inside a transaction
    /// require an abort.
    fn fail(&mut self, err: TxnError) -> TxnError {
        if err.is_fenced() {
            self.state = TxnState::Fenced;
        } else if self.state == TxnState::InTransaction {
            self.state = TxnState::AbortRequired;
        }
        err
    }

    fn on_error(&mut self, err: &TxnError) {
        if err.needs_coordinator_lookup() {
            self.coordinator = None;
        }
        if let TxnError::Client(e) = err
            && e.needs_metadata_refresh()
        {
            self.cluster.mark_stale();
        }
        if let TxnError::Partition { code, .. } = err
            && code.is_routing()
        {
            self.cluster.mark_stale();
        }
    }

    async fn coordinator(&mut self) -> Result<BrokerConnection, TxnError> {
        if let Some(c) = &self.coordinator
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        let conn = self
            .cluster
            .coordinator(CoordinatorType::Transaction, &self.config.transactional_id)
            .await?;
        self.coordinator = Some(conn.clone());
        Ok(conn)
    }

    fn coordinator_error(&self, api: ApiKey, code: ErrorCode, message: Option<String>) -> TxnError {
        TxnError::Coordinator {
            api,
            transactional_id: self.config.transactional_id.clone(),
            code,
            message,
        }
    }

    /// Adds partitions to the open transaction. Under V1 this is AddPartitionsToTxn (only
    /// for partitions not yet added); under V2 nothing is sent (Produce adds them).
    /// [`TransactionalProducer::send`] calls it as needed.
    pub async fn add_partitions(&mut self, partitions: &[TopicPartition]) -> Result<(), TxnError> {
        self.require(TxnState::InTransaction, "add_partitions")?;
        let new: Vec<TopicPartition> = partitions
            .iter()
            .filter(|tp| !self.partitions.contains(tp))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        if self.protocol == TxnProtocol::V1 {
            let mut backoff = self.config.retry.start();
            loop {
                match self.try_add_partitions(&new).await {
                    Ok(()) => break,
                    Err(e) => {
                        self.on_error(&e);
                        if let Err(e) = wait_or_fail(&mut backoff, e).await {
                            return Err(self.fail(e));
                        }
                    }
                }
            }
        }
        self.partitions.extend(new);
        Ok(())
    }

    async fn try_add_partitions(&mut self, new: &[TopicPartition]) -> Result<(), TxnError> {
        let conn = self.coordinator().await?;
        let version = conn
            .version(ApiKey::AddPartitionsToTxn)?
            .min(ADD_PARTITIONS_CLIENT_MAX);
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in new {
            by_topic
                .entry(tp.topic.as_str())
                .or_default()
                .push(tp.partition);
        }
        let mut req = AddPartitionsToTxnRequest::default();
        req.v3_and_below_transactional_id = TransactionalId(sb(&self.config.transactional_id));
        req.v3_and_below_producer_id = ProducerId(self.identity.producer_id);
        req.v3_and_below_producer_epoch = self.identity.epoch;
        req.v3_and_below_topics = by_topic
            .into_iter()
            .map(|(t, ps)| {
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(sb(t)))
                    .with_partitions(ps)
            })
            .collect();
        let resp: AddPartitionsToTxnResponse = conn.send_at(&req, version).await?;
        first_add_partitions_error(resp)
    }

    /// Writes one prepared v2 batch (`baseOffset` 0, contiguous offsets, no control bit) to
    /// a partition inside the open transaction and waits for the leader's acknowledgement.
    /// The batch's producer fields, transactional bit and CRC are overwritten.
    pub async fn send(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
    ) -> Result<ProduceAck, TxnError> {
        self.require(TxnState::InTransaction, "send")?;
        let tp = TopicPartition::new(topic, partition);
        let base_sequence = self.next_sequence(&tp);
        let (bytes, count) = stamp_transactional(batch, self.identity, base_sequence)?;
        self.add_partitions(std::slice::from_ref(&tp)).await?;
        let mut backoff = self.config.retry.start();
        let ack = loop {
            match self.try_produce(&tp, bytes.clone()).await {
                Ok(ack) => break ack,
                Err(e) => {
                    self.on_error(&e);
                    if let Err(e) = wait_or_fail(&mut backoff, e).await {
                        return Err(self.fail(e));
                    }
                }
            }
        };
        self.sequences
            .insert(tp.clone(), increment_sequence(base_sequence, count));
        self.partitions.insert(tp);
        Ok(ProduceAck {
            base_offset: ack.0,
            log_append_time: ack.1,
            identity: self.identity,
            base_sequence,
        })
    }

    /// One Produce attempt: `(base offset, log append time)`.
    async fn try_produce(&self, tp: &TopicPartition, bytes: Bytes) -> Result<(i64, i64), TxnError> {
        let md = self
            .cluster
            .refresh_if_stale(std::slice::from_ref(&tp.topic))
            .await?;
        let (leader, _) = match md.leader(&tp.topic, tp.partition) {
            Ok(l) => l,
            Err(_) => match self.cluster.leader(&tp.topic, tp.partition).await {
                Ok(l) => l,
                // A topic just created may not be in every broker's metadata yet: retried
                // (within the retry policy) like the broker's UNKNOWN_TOPIC_OR_PARTITION.
                Err(ClientError::UnknownTopic { .. }) => {
                    return Err(TxnError::Partition {
                        api: ApiKey::Produce,
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        code: ErrorCode::UnknownTopicOrPartition,
                        message: Some("not in the cluster metadata".to_owned()),
                    });
                }
                Err(e) => return Err(e.into()),
            },
        };
        let conn = self.cluster.broker(leader).await?;
        let negotiated = conn.version(ApiKey::Produce)?;
        let topic_id = self.cluster.metadata().topic_id(&tp.topic);
        let version = match self.protocol {
            TxnProtocol::V1 => negotiated.min(PRODUCE_MAX_WITHOUT_TV2),
            TxnProtocol::V2 if negotiated < 12 => {
                return Err(TxnError::Unsupported {
                    broker: conn.broker().clone(),
                    what: "Produce v12+ for a transaction version 2 producer".to_owned(),
                });
            }
            // v13 names topics by id (KIP-516); without an id, stay at v12.
            TxnProtocol::V2 if topic_id.is_nil() => 12,
            TxnProtocol::V2 => negotiated,
        };
        let mut topic_data = TopicProduceData::default().with_partition_data(vec![
            PartitionProduceData::default()
                .with_index(tp.partition)
                .with_records(Some(bytes)),
        ]);
        if version >= 13 {
            topic_data.topic_id = topic_id;
        } else {
            topic_data.name = TopicName(sb(&tp.topic));
        }
        let req = ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(sb(&self.config.transactional_id))))
            .with_acks(-1)
            .with_timeout_ms(millis(self.config.ack_timeout))
            .with_topic_data(vec![topic_data]);
        let resp: ProduceResponse = conn.send_at(&req, version).await?;
        let part = resp
            .responses
            .into_iter()
            .flat_map(|t| t.partition_responses)
            .find(|p| p.index == tp.partition)
            .ok_or_else(|| TxnError::Partition {
                api: ApiKey::Produce,
                topic: tp.topic.clone(),
                partition: tp.partition,
                code: ErrorCode::UnknownServerError,
                message: Some("the Produce response has no result for the partition".to_owned()),
            })?;
        ErrorCode::check(part.error_code).map_err(|code| TxnError::Partition {
            api: ApiKey::Produce,
            topic: tp.topic.clone(),
            partition: tp.partition,
            code,
            message: msg(part.error_message),
        })?;
        Ok((part.base_offset, part.log_append_time_ms))
    }

    /// Commits consumer-group offsets as part of the open transaction (they become visible
    /// when it commits and are discarded when it aborts). V1: AddOffsetsToTxn, then
    /// TxnOffsetCommit; V2: TxnOffsetCommit v5 only. Generation −1 and an empty member id:
    /// the group must have no active members.
    pub async fn send_offsets(
        &mut self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, CommittedOffset>,
    ) -> Result<(), TxnError> {
        self.require(TxnState::InTransaction, "send_offsets")?;
        if offsets.is_empty() {
            return Ok(());
        }
        if self.protocol == TxnProtocol::V1 && !self.groups.contains(group) {
            let mut backoff = self.config.retry.start();
            loop {
                match self.try_add_offsets(group).await {
                    Ok(()) => break,
                    Err(e) => {
                        self.on_error(&e);
                        if let Err(e) = wait_or_fail(&mut backoff, e).await {
                            return Err(self.fail(e));
                        }
                    }
                }
            }
        }
        self.groups.insert(group.to_owned());
        let mut backoff = self.config.retry.start();
        loop {
            match self.try_txn_offset_commit(group, offsets).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.on_error(&e);
                    if let Err(e) = wait_or_fail(&mut backoff, e).await {
                        return Err(self.fail(e));
                    }
                }
            }
        }
    }

    async fn try_add_offsets(&mut self, group: &str) -> Result<(), TxnError> {
        let conn = self.coordinator().await?;
        let version = conn.version(ApiKey::AddOffsetsToTxn)?;
        let req = AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(sb(&self.config.transactional_id)))
            .with_producer_id(ProducerId(self.identity.producer_id))
            .with_producer_epoch(self.identity.epoch)
            .with_group_id(GroupId(sb(group)));
        let resp = conn.send_at(&req, version).await?;
        ErrorCode::check(resp.error_code).map_err(|code| TxnError::Group {
            api: ApiKey::AddOffsetsToTxn,
            group: group.to_owned(),
            code,
            message: None,
        })
    }

    async fn try_txn_offset_commit(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, CommittedOffset>,
    ) -> Result<(), TxnError> {
        let conn = self
            .cluster
            .coordinator(CoordinatorType::Group, group)
            .await?;
        let negotiated = conn.version(ApiKey::TxnOffsetCommit)?;
        let version = match self.protocol {
            TxnProtocol::V1 => negotiated.min(TXN_MAX_WITHOUT_TV2),
            TxnProtocol::V2 if negotiated < 5 => {
                return Err(TxnError::Unsupported {
                    broker: conn.broker().clone(),
                    what: "TxnOffsetCommit v5 for a transaction version 2 producer".to_owned(),
                });
            }
            TxnProtocol::V2 => negotiated,
        };
        let mut by_topic: BTreeMap<&str, Vec<TxnOffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, o) in offsets {
            let mut p = TxnOffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(o.offset)
                .with_committed_metadata(Some(sb(o.metadata.as_deref().unwrap_or(""))));
            if version >= 2 {
                p.committed_leader_epoch = o.leader_epoch.unwrap_or(-1);
            }
            by_topic.entry(tp.topic.as_str()).or_default().push(p);
        }
        // generation_id -1 and member_id "" are the defaults (v3+): a simple-group commit.
        let req = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(sb(&self.config.transactional_id)))
            .with_group_id(GroupId(sb(group)))
            .with_producer_id(ProducerId(self.identity.producer_id))
            .with_producer_epoch(self.identity.epoch)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        TxnOffsetCommitRequestTopic::default()
                            .with_name(TopicName(sb(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let resp: TxnOffsetCommitResponse = conn.send_at(&req, version).await?;
        first_txn_offset_commit_error(group, resp)
    }

    /// Commits the open transaction (EndTxn commit).
    pub async fn commit(&mut self) -> Result<(), TxnError> {
        self.require(TxnState::InTransaction, "commit")?;
        self.end(true).await
    }

    /// Aborts the open transaction (EndTxn abort); allowed in [`TxnState::InTransaction`]
    /// and [`TxnState::AbortRequired`].
    pub async fn abort(&mut self) -> Result<(), TxnError> {
        if self.state != TxnState::AbortRequired {
            self.require(TxnState::InTransaction, "abort")?;
        }
        self.end(false).await
    }

    async fn end(&mut self, commit: bool) -> Result<(), TxnError> {
        if self.partitions.is_empty() && self.groups.is_empty() {
            // Nothing reached the coordinator: the transaction ends locally (as the Java
            // producer does).
            self.state = TxnState::Ready;
            return Ok(());
        }
        let mut backoff = self.config.retry.start();
        loop {
            match self.try_end(commit).await {
                Ok(()) => break,
                Err(e) => {
                    self.on_error(&e);
                    if let Err(e) = wait_or_fail(&mut backoff, e).await {
                        if e.is_fenced() {
                            self.state = TxnState::Fenced;
                        }
                        return Err(e);
                    }
                }
            }
        }
        self.partitions.clear();
        self.groups.clear();
        self.state = TxnState::Ready;
        Ok(())
    }

    async fn try_end(&mut self, commit: bool) -> Result<(), TxnError> {
        let conn = self.coordinator().await?;
        let negotiated = conn.version(ApiKey::EndTxn)?;
        let version = match self.protocol {
            TxnProtocol::V1 => negotiated.min(TXN_MAX_WITHOUT_TV2),
            TxnProtocol::V2 if negotiated < 5 => {
                return Err(TxnError::Unsupported {
                    broker: conn.broker().clone(),
                    what: "EndTxn v5 for a transaction version 2 producer".to_owned(),
                });
            }
            TxnProtocol::V2 => negotiated,
        };
        let req = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(sb(&self.config.transactional_id)))
            .with_producer_id(ProducerId(self.identity.producer_id))
            .with_producer_epoch(self.identity.epoch)
            .with_committed(commit);
        let resp = conn.send_at(&req, version).await?;
        ErrorCode::check(resp.error_code)
            .map_err(|code| self.coordinator_error(ApiKey::EndTxn, code, None))?;
        if version >= 5 && resp.producer_id.0 >= 0 {
            // KIP-890: the epoch is bumped at the end of every transaction (a new id on
            // epoch overflow); adopt it and restart every sequence at 0.
            let new = ProducerIdentity {
                producer_id: resp.producer_id.0,
                epoch: resp.producer_epoch,
            };
            if new != self.identity {
                tracing::debug!(old = ?self.identity, ?new, "EndTxn v5 bumped the producer epoch");
                self.identity = new;
                self.sequences.clear();
            }
        }
        Ok(())
    }
}

fn choose_protocol(
    conn: &BrokerConnection,
    forced: Option<TxnProtocol>,
) -> Result<TxnProtocol, TxnError> {
    let versions = conn.versions();
    let tv = versions
        .broker()
        .finalized_feature(TRANSACTION_VERSION_FEATURE)
        .unwrap_or(0);
    let at_least = |api: ApiKey, v: i16| versions.version(api).is_ok_and(|n| n >= v);
    let v2_possible = tv >= 2
        && at_least(ApiKey::EndTxn, 5)
        && at_least(ApiKey::TxnOffsetCommit, 5)
        && at_least(ApiKey::Produce, 12);
    match forced {
        Some(TxnProtocol::V2) if !v2_possible => Err(TxnError::Unsupported {
            broker: conn.broker().clone(),
            what: format!("transaction version 2 (finalised {TRANSACTION_VERSION_FEATURE} = {tv})"),
        }),
        Some(p) => Ok(p),
        None if v2_possible => Ok(TxnProtocol::V2),
        None => Ok(TxnProtocol::V1),
    }
}

fn first_add_partitions_error(resp: AddPartitionsToTxnResponse) -> Result<(), TxnError> {
    // The partition that caused a failure, not the OPERATION_NOT_ATTEMPTED of the others.
    let mut not_attempted = None;
    for t in resp.results_by_topic_v3_and_below {
        for p in t.results_by_partition {
            match ErrorCode::check(p.partition_error_code) {
                Ok(()) => {}
                Err(ErrorCode::OperationNotAttempted) => {
                    not_attempted.get_or_insert((t.name.0.to_string(), p.partition_index));
                }
                Err(code) => {
                    return Err(TxnError::Partition {
                        api: ApiKey::AddPartitionsToTxn,
                        topic: t.name.0.to_string(),
                        partition: p.partition_index,
                        code,
                        message: None,
                    });
                }
            }
        }
    }
    match not_attempted {
        Some((topic, partition)) => Err(TxnError::Partition {
            api: ApiKey::AddPartitionsToTxn,
            topic,
            partition,
            code: ErrorCode::OperationNotAttempted,
            message: None,
        }),
        None => Ok(()),
    }
}

fn first_txn_offset_commit_error(
    group: &str,
    resp: TxnOffsetCommitResponse,
) -> Result<(), TxnError> {
    for t in resp.topics {
        for p in t.partitions {
            if let Err(code) = ErrorCode::check(p.error_code) {
                return Err(
                    if code.is_coordinator() || code == ErrorCode::ConcurrentTransactions {
                        TxnError::Group {
                            api: ApiKey::TxnOffsetCommit,
                            group: group.to_owned(),
                            code,
                            message: None,
                        }
                    } else {
                        TxnError::Partition {
                            api: ApiKey::TxnOffsetCommit,
                            topic: t.name.0.to_string(),
                            partition: p.partition_index,
                            code,
                            message: None,
                        }
                    },
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::batch::BatchHeader;
    use ferry_protocol::record::{Record, encode_parts, producer_header};
    use kafka_protocol::messages::add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
    };

    fn batch(n: i32) -> Bytes {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                offset_delta: i,
                value: Some(Bytes::from(format!("v{i}"))),
                ..Record::default()
            })
            .collect();
        let header = producer_header(1_700_000_000_000, Attributes(0), &records);
        let (prefix, payload) = encode_parts(&header, &records).unwrap();
        let mut out = BytesMut::new();
        out.extend_from_slice(&prefix);
        out.extend_from_slice(&payload);
        out.freeze()
    }

    #[test]
    fn stamping_sets_producer_fields_and_transactional_bit_with_valid_crc() {
        let identity = ProducerIdentity {
            producer_id: 4242,
            epoch: 7,
        };
        let (stamped, count) = stamp_transactional(batch(3), identity, 11).unwrap();
        assert_eq!(count, 3);
        let view = RecordBatch::new(stamped).unwrap();
        view.verify_crc().unwrap();
        let h: BatchHeader = view.header();
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (4242, 7, 11)
        );
        assert!(h.attributes.is_transactional() && !h.attributes.is_control());
        assert_eq!(h.base_offset, 0);
        assert_eq!(view.records_count(), 3);
    }

    #[test]
    fn stamping_rejects_bad_batches() {
        let e = stamp_transactional(
            Bytes::from_static(b"short"),
            ProducerIdentity {
                producer_id: 1,
                epoch: 0,
            },
            0,
        )
        .unwrap_err();
        assert!(matches!(e, TxnError::InvalidInput { .. }) && e.is_fatal());
        // A control batch.
        let b = batch(1);
        let view = RecordBatch::new(b.clone()).unwrap();
        let mut h = view.header();
        h.attributes = h.attributes.with(Attributes::CONTROL, true);
        let mut prefix = h.to_prefix(view.length(), 1);
        let crc = batch_crc(&prefix, view.records_slice());
        prefix[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        let mut control = BytesMut::new();
        control.extend_from_slice(&prefix);
        control.extend_from_slice(view.records_slice());
        assert!(
            stamp_transactional(
                control.freeze(),
                ProducerIdentity {
                    producer_id: 1,
                    epoch: 0
                },
                0
            )
            .is_err()
        );
    }

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(increment_sequence(0, 5), 5);
        assert_eq!(increment_sequence(i32::MAX - 2, 2), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX - 2, 3), 0);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX, 5), 4);
    }

    #[test]
    fn config_validation() {
        assert!(TransactionConfig::new("t").validate().is_ok());
        assert!(TransactionConfig::new("").validate().is_err());
        assert!(
            TransactionConfig::new("t")
                .with_transaction_timeout(Duration::ZERO)
                .validate()
                .is_err()
        );
        assert!(
            TransactionConfig::new("t")
                .with_ack_timeout(Duration::from_secs(u64::MAX / 4))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn classifiers() {
        let concurrent = TxnError::Coordinator {
            api: ApiKey::AddPartitionsToTxn,
            transactional_id: "t".into(),
            code: ErrorCode::ConcurrentTransactions,
            message: None,
        };
        assert!(concurrent.is_retriable() && !concurrent.is_fenced());
        let fenced = TxnError::Coordinator {
            api: ApiKey::EndTxn,
            transactional_id: "t".into(),
            code: ErrorCode::ProducerFenced,
            message: None,
        };
        assert!(fenced.is_fenced() && fenced.is_fatal() && !fenced.is_retriable());
        let moved = TxnError::Coordinator {
            api: ApiKey::EndTxn,
            transactional_id: "t".into(),
            code: ErrorCode::NotCoordinator,
            message: None,
        };
        assert!(moved.is_retriable() && moved.needs_coordinator_lookup());
        let abortable = TxnError::Partition {
            api: ApiKey::Produce,
            topic: "t".into(),
            partition: 0,
            code: ErrorCode::TransactionAbortable,
            message: None,
        };
        assert!(!abortable.is_retriable() && !abortable.is_fenced() && !abortable.is_fatal());
    }

    #[test]
    fn add_partitions_reports_the_cause_not_the_bystanders() {
        let resp = AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(vec![
            AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(sb("t")))
                .with_results_by_partition(vec![
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(0)
                        .with_partition_error_code(ErrorCode::OperationNotAttempted.as_i16()),
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(1)
                        .with_partition_error_code(ErrorCode::TopicAuthorizationFailed.as_i16()),
                ]),
        ]);
        let e = first_add_partitions_error(resp).unwrap_err();
        assert_eq!(e.error_code(), Some(ErrorCode::TopicAuthorizationFailed));
        assert!(e.is_fatal());
        assert!(first_add_partitions_error(AddPartitionsToTxnResponse::default()).is_ok());
    }
}
