//! Fetcher: multi-partition Fetch per broker with fetch sessions and zero-copy records.
//!
//! The caller assigns partitions with a start offset; each [`Fetcher::fetch`] sends one Fetch
//! per leader broker (concurrently) and returns per-partition [`FetchEvent`]s. Records come
//! back as the `records` field of the response — a [`Bytes`] slice of the response frame,
//! never copied and never parsed here (the engine scans batches with ferry-protocol). The
//! fetcher **does not move positions by itself**: the caller calls [`Fetcher::seek`] with the
//! next offset it wants (typically the last complete batch's `lastOffset + 1`). Until it does,
//! the same data is fetched again.
//!
//! - **Sessions (KIP-227, Fetch v7+).** The first request to a broker asks for a session
//!   (`session_id = 0, epoch = 0`); later ones are incremental: they list only partitions whose
//!   position or leader epoch changed, plus `forgotten_topics_data`. On
//!   FETCH_SESSION_ID_NOT_FOUND / INVALID_FETCH_SESSION_EPOCH the session is dropped and a
//!   full fetch is sent at once. Incremental responses omit partitions with nothing new.
//! - **Partition order (KIP-74).** Only the first partition of a response may return an
//!   oversized first batch, so full requests rotate their partition order on every call; in
//!   a session the broker itself moves partitions that returned data to the end.
//! - **Isolation.** `read_committed` stops at the last stable offset and exposes the aborted
//!   transactions of the returned range (§4.3 of kafka-wire.md); the engine filters them.
//! - **Errors.** OFFSET_OUT_OF_RANGE is a [`FetchEvent::OffsetOutOfRange`] and nothing else:
//!   no reset. Routing errors mark the metadata stale (refreshed before the next fetch) and
//!   are reported as [`FetchEvent::Error`].
//! - **Topic ids.** Fetch v13+ addresses topics by id (KIP-516); below, by name.
//!
//! # References
//! - KIP-74, KIP-227, KIP-320 (leader epoch fencing, `current_leader_epoch` v9+),
//!   KIP-516, kafka-wire.md §4

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use ferry_protocol::api::ApiKey;
use ferry_protocol::error::ErrorCode;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::cluster::{Cluster, Metadata};
use crate::config::ConfigError;
use crate::error::ClientError;

/// A topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Builds a topic partition.
    #[must_use]
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Fetch isolation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Up to the high watermark; aborted data is returned and cannot be told apart.
    #[default]
    ReadUncommitted,
    /// Up to the last stable offset, with the aborted transactions listed.
    ReadCommitted,
}

/// Fetcher settings.
///
/// Defaults: max wait 500 ms, min bytes 1, max bytes 50 MiB per response, 1 MiB per
/// partition (the Java consumer's defaults), read_uncommitted, sessions on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    /// `max_wait_ms`: how long the broker may wait for `min_bytes`.
    pub max_wait: Duration,
    /// `min_bytes`.
    pub min_bytes: i32,
    /// `max_bytes` per response.
    pub max_bytes: i32,
    /// `partition_max_bytes`.
    pub partition_max_bytes: i32,
    /// Isolation level.
    pub isolation: IsolationLevel,
    /// Use incremental fetch sessions (KIP-227) when the broker supports them.
    pub sessions: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            isolation: IsolationLevel::ReadUncommitted,
            sessions: true,
        }
    }
}

impl FetchConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, message: &str| ConfigError::InvalidValue {
            field,
            message: message.to_owned(),
        };
        if self.min_bytes < 0 {
            return Err(bad("fetch min bytes", "must not be negative"));
        }
        if self.max_bytes <= 0 || self.partition_max_bytes <= 0 {
            return Err(bad("fetch max bytes", "must be positive"));
        }
        if i32::try_from(self.max_wait.as_millis()).is_err() {
            return Err(bad("fetch max wait", "too large"));
        }
        Ok(())
    }
}

/// An aborted transaction in a read_committed response: data from `producer_id` at or after
/// `first_offset` up to its ABORT marker is aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// Producer id of the aborted transaction.
    pub producer_id: i64,
    /// First offset of the aborted transaction.
    pub first_offset: i64,
}

/// Data for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    /// The partition.
    pub tp: TopicPartition,
    /// The offset that was requested.
    pub fetch_offset: i64,
    /// The raw `records` bytes: a slice of the response frame. May start before
    /// `fetch_offset` and end with a truncated batch (kafka-wire.md §4.1). Empty when there
    /// is nothing new.
    pub records: Bytes,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset (v4+; −1 if unknown).
    pub last_stable_offset: i64,
    /// Log start offset (v5+; −1 if unknown).
    pub log_start_offset: i64,
    /// Aborted transactions overlapping the returned data (read_committed only).
    pub aborted_transactions: Vec<AbortedTransaction>,
}

/// What a fetch produced for one partition.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FetchEvent {
    /// Records (possibly none) and offsets.
    Data(FetchedPartition),
    /// The fetch offset is outside `[log_start_offset, high_watermark]`: data was lost to
    /// retention or the position is wrong. The position is left unchanged.
    OffsetOutOfRange {
        /// The partition.
        tp: TopicPartition,
        /// The offset that was requested.
        fetch_offset: i64,
        /// The broker's log start offset (−1 if the version does not carry it).
        log_start_offset: i64,
        /// The broker's high watermark.
        high_watermark: i64,
    },
    /// Another partition error. Routing errors have already marked metadata stale.
    Error {
        /// The partition.
        tp: TopicPartition,
        /// The offset that was requested.
        fetch_offset: i64,
        /// The error.
        error: ClientError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SentState {
    offset: i64,
    leader_epoch: i32,
}

#[derive(Debug, Default)]
struct Session {
    id: i32,
    epoch: i32,
    sent: HashMap<TopicPartition, SentState>,
}

#[derive(Debug, Clone)]
struct Wanted {
    tp: TopicPartition,
    offset: i64,
    leader_epoch: i32,
    topic_id: Uuid,
}

/// A multi-partition fetcher. See the module docs.
#[derive(Debug)]
pub struct Fetcher {
    cluster: Cluster,
    config: FetchConfig,
    positions: BTreeMap<TopicPartition, i64>,
    paused: HashSet<TopicPartition>,
    sessions: HashMap<i32, Session>,
    rotation: usize,
}

impl Fetcher {
    /// A fetcher over `cluster`.
    pub fn new(cluster: Cluster, config: FetchConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            cluster,
            config,
            positions: BTreeMap::new(),
            paused: HashSet::new(),
            sessions: HashMap::new(),
            rotation: 0,
        })
    }

    /// Adds a partition (or moves it) to fetch from `offset`.
    pub fn assign(&mut self, tp: TopicPartition, offset: i64) {
        self.positions.insert(tp, offset);
    }

    /// Sets the next fetch offset of an assigned partition. Returns `false` if not assigned.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> bool {
        match self.positions.get_mut(tp) {
            Some(p) => {
                *p = offset;
                true
            }
            None => false,
        }
    }

    /// Stops fetching a partition.
    pub fn unassign(&mut self, tp: &TopicPartition) {
        self.positions.remove(tp);
        self.paused.remove(tp);
    }

    /// Pauses a partition (kept assigned, not fetched; e.g. while the byte budget is full).
    pub fn pause(&mut self, tp: &TopicPartition) {
        self.paused.insert(tp.clone());
    }

    /// Resumes a paused partition.
    pub fn resume(&mut self, tp: &TopicPartition) {
        self.paused.remove(tp);
    }

    /// The next fetch offset of a partition.
    #[must_use]
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.positions.get(tp).copied()
    }

    /// Assigned partitions and their positions.
    pub fn positions(&self) -> impl Iterator<Item = (&TopicPartition, i64)> {
        self.positions.iter().map(|(tp, o)| (tp, *o))
    }

    /// Sends one Fetch per leader broker and returns what came back. Brokers that cannot be
    /// reached are logged and skipped (their partitions yield no event this time); the call
    /// fails only if every broker failed.
    pub async fn fetch(&mut self) -> Result<Vec<FetchEvent>, ClientError> {
        let topics: Vec<String> = {
            let mut t: Vec<String> = self.positions.keys().map(|tp| tp.topic.clone()).collect();
            t.dedup();
            t
        };
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let md = if self.cluster.is_stale() {
            self.cluster.refresh_if_stale(&topics).await?
        } else {
            self.cluster.ensure_topics(&topics).await?
        };
        let mut events = Vec::new();
        let mut by_broker: BTreeMap<i32, Vec<Wanted>> = BTreeMap::new();
        for (tp, &offset) in &self.positions {
            if self.paused.contains(tp) {
                continue;
            }
            match md.leader(&tp.topic, tp.partition) {
                Ok((leader, leader_epoch)) => by_broker.entry(leader).or_default().push(Wanted {
                    tp: tp.clone(),
                    offset,
                    leader_epoch,
                    topic_id: md.topic_id(&tp.topic),
                }),
                Err(error) => {
                    self.cluster.mark_stale();
                    events.push(FetchEvent::Error {
                        tp: tp.clone(),
                        fetch_offset: offset,
                        error,
                    });
                }
            }
        }
        // Brokers no longer leading anything: drop their sessions.
        self.sessions.retain(|b, _| by_broker.contains_key(b));
        self.rotation = self.rotation.wrapping_add(1);
        let mut tasks = JoinSet::new();
        for (broker, mut wanted) in by_broker {
            if !wanted.is_empty() {
                let k = self.rotation % wanted.len();
                wanted.rotate_left(k);
            }
            let session = if self.config.sessions {
                self.sessions.remove(&broker).unwrap_or_default()
            } else {
                Session::default()
            };
            let cluster = self.cluster.clone();
            let config = self.config.clone();
            let md = std::sync::Arc::clone(&md);
            tasks.spawn(async move {
                let mut session = session;
                let result =
                    fetch_from(&cluster, &config, &md, broker, &wanted, &mut session).await;
                (broker, session, result)
            });
        }
        let mut failures = Vec::new();
        let mut brokers = 0usize;
        while let Some(joined) = tasks.join_next().await {
            brokers += 1;
            let Ok((broker, session, result)) = joined else {
                continue;
            };
            match result {
                Ok(mut evs) => {
                    if self.config.sessions && session.id != 0 {
                        self.sessions.insert(broker, session);
                    }
                    events.append(&mut evs);
                }
                Err(e) => {
                    tracing::warn!(broker, error = %e, "fetch failed");
                    if e.needs_metadata_refresh() {
                        self.cluster.mark_stale();
                    }
                    failures.push(e);
                }
            }
        }
        if brokers > 0
            && failures.len() == brokers
            && events.is_empty()
            && let Some(e) = failures.into_iter().next()
        {
            return Err(e);
        }
        Ok(events)
    }
}

async fn fetch_from(
    cluster: &Cluster,
    config: &FetchConfig,
    md: &Metadata,
    broker: i32,
    wanted: &[Wanted],
    session: &mut Session,
) -> Result<Vec<FetchEvent>, ClientError> {
    let conn = cluster.broker(broker).await?;
    let mut version = conn.version(ApiKey::Fetch)?;
    if version >= 13 && wanted.iter().any(|w| w.topic_id.is_nil()) {
        version = 12; // no topic id known: address by name
    }
    let use_session = config.sessions && version >= 7;
    for attempt in 0..2 {
        let full = !use_session || session.id == 0;
        let req = build_request(config, version, wanted, session, use_session, full);
        let timeout = conn.request_timeout() + config.max_wait;
        let resp: FetchResponse = conn.start(&req, version, timeout).await?.response().await?;
        match ErrorCode::from_i16(resp.error_code) {
            ErrorCode::NoError => {}
            code if code.is_fetch_session() && attempt == 0 => {
                tracing::debug!(broker, %code, "fetch session lost; sending a full fetch");
                *session = Session::default();
                continue;
            }
            code => return Err(conn.broker_error(ApiKey::Fetch, code, None)),
        }
        if use_session {
            if full {
                session.id = resp.session_id;
                session.epoch = 1;
                session.sent.clear();
            } else {
                session.epoch = if session.epoch == i32::MAX {
                    1
                } else {
                    session.epoch + 1
                };
            }
            for w in wanted {
                session.sent.insert(
                    w.tp.clone(),
                    SentState {
                        offset: w.offset,
                        leader_epoch: w.leader_epoch,
                    },
                );
            }
            session
                .sent
                .retain(|tp, _| wanted.iter().any(|w| &w.tp == tp));
        }
        return Ok(read_response(cluster, md, version, wanted, resp));
    }
    Err(conn.broker_error(ApiKey::Fetch, ErrorCode::InvalidFetchSessionEpoch, None))
}

fn build_request(
    config: &FetchConfig,
    version: i16,
    wanted: &[Wanted],
    session: &Session,
    use_session: bool,
    full: bool,
) -> FetchRequest {
    let mut req = FetchRequest::default();
    req.max_wait_ms = i32::try_from(config.max_wait.as_millis()).unwrap_or(i32::MAX);
    req.min_bytes = config.min_bytes;
    req.max_bytes = config.max_bytes;
    req.isolation_level = match config.isolation {
        IsolationLevel::ReadUncommitted => 0,
        IsolationLevel::ReadCommitted => 1,
    };
    if use_session {
        req.session_id = if full { 0 } else { session.id };
        req.session_epoch = if full { 0 } else { session.epoch };
    } else if version >= 7 {
        req.session_id = 0;
        req.session_epoch = -1; // FINAL_EPOCH: sessionless full fetch
    }
    let by_id = version >= 13;
    // Topics in first-appearance order, keeping the rotated partition order.
    let mut topics: Vec<FetchTopic> = Vec::new();
    for w in wanted {
        let sent = session.sent.get(&w.tp);
        let changed = sent.is_none_or(|s| s.offset != w.offset || s.leader_epoch != w.leader_epoch);
        if !full && !changed {
            continue;
        }
        let mut p = FetchPartition::default()
            .with_partition(w.tp.partition)
            .with_fetch_offset(w.offset)
            .with_partition_max_bytes(config.partition_max_bytes);
        if version >= 9 {
            p.current_leader_epoch = w.leader_epoch;
        }
        let idx = topics.iter().position(|t| {
            if by_id {
                t.topic_id == w.topic_id
            } else {
                t.topic.0.as_str() == w.tp.topic
            }
        });
        match idx.and_then(|i| topics.get_mut(i)) {
            Some(t) => t.partitions.push(p),
            None => {
                let mut t = FetchTopic::default().with_partitions(vec![p]);
                if by_id {
                    t.topic_id = w.topic_id;
                } else {
                    t.topic = TopicName(StrBytes::from_string(w.tp.topic.clone()));
                }
                topics.push(t);
            }
        }
    }
    req.topics = topics;
    if use_session && !full {
        let mut forgotten: Vec<ForgottenTopic> = Vec::new();
        for tp in session.sent.keys() {
            if wanted.iter().any(|w| &w.tp == tp) {
                continue;
            }
            let topic_id = wanted
                .iter()
                .find(|w| w.tp.topic == tp.topic)
                .map_or(Uuid::nil(), |w| w.topic_id);
            let idx = forgotten
                .iter()
                .position(|f| f.topic.0.as_str() == tp.topic);
            match idx.and_then(|i| forgotten.get_mut(i)) {
                Some(f) => f.partitions.push(tp.partition),
                None => {
                    let mut f = ForgottenTopic::default().with_partitions(vec![tp.partition]);
                    f.topic = TopicName(StrBytes::from_string(tp.topic.clone()));
                    f.topic_id = topic_id;
                    forgotten.push(f);
                }
            }
        }
        if by_id {
            // By-id requests cannot name a topic we no longer know the id of.
            forgotten.retain(|f| !f.topic_id.is_nil());
        }
        req.forgotten_topics_data = forgotten;
    }
    req
}

fn read_response(
    cluster: &Cluster,
    md: &Metadata,
    version: i16,
    wanted: &[Wanted],
    resp: FetchResponse,
) -> Vec<FetchEvent> {
    let mut events = Vec::new();
    for topic in resp.responses {
        let name = if version >= 13 {
            match md.topic_name(topic.topic_id) {
                Some(n) => n.to_owned(),
                None => {
                    tracing::warn!(topic_id = %topic.topic_id, "fetch response for an unknown topic id");
                    cluster.mark_stale();
                    continue;
                }
            }
        } else {
            topic.topic.0.to_string()
        };
        for p in topic.partitions {
            let tp = TopicPartition::new(name.clone(), p.partition_index);
            let Some(fetch_offset) = wanted.iter().find(|w| w.tp == tp).map(|w| w.offset) else {
                continue; // not ours (a session partition we just forgot)
            };
            match ErrorCode::from_i16(p.error_code) {
                ErrorCode::NoError => events.push(FetchEvent::Data(FetchedPartition {
                    tp,
                    fetch_offset,
                    records: p.records.unwrap_or_default(),
                    high_watermark: p.high_watermark,
                    last_stable_offset: p.last_stable_offset,
                    log_start_offset: p.log_start_offset,
                    aborted_transactions: p
                        .aborted_transactions
                        .unwrap_or_default()
                        .iter()
                        .map(|a| AbortedTransaction {
                            producer_id: a.producer_id.0,
                            first_offset: a.first_offset,
                        })
                        .collect(),
                })),
                ErrorCode::OffsetOutOfRange => events.push(FetchEvent::OffsetOutOfRange {
                    tp,
                    fetch_offset,
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                }),
                code => {
                    if code.is_routing() {
                        cluster.mark_stale();
                    }
                    events.push(FetchEvent::Error {
                        error: ClientError::Partition {
                            topic: tp.topic.clone(),
                            partition: tp.partition,
                            code,
                            message: None,
                        },
                        tp,
                        fetch_offset,
                    });
                }
            }
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(topic: &str, p: i32, offset: i64) -> Wanted {
        Wanted {
            tp: TopicPartition::new(topic, p),
            offset,
            leader_epoch: 3,
            topic_id: Uuid::from_u128(0x1234),
        }
    }

    #[test]
    fn full_incremental_and_forgotten() {
        let cfg = FetchConfig::default();
        let w = vec![wanted("a", 0, 10), wanted("a", 1, 20), wanted("b", 0, 5)];
        let mut session = Session::default();
        let full = build_request(&cfg, 12, &w, &session, true, true);
        assert_eq!((full.session_id, full.session_epoch), (0, 0));
        assert_eq!(full.topics.len(), 2);
        assert_eq!(full.topics[0].partitions.len(), 2);
        assert_eq!(full.topics[0].partitions[0].current_leader_epoch, 3);
        session.id = 77;
        session.epoch = 1;
        for x in &w {
            session.sent.insert(
                x.tp.clone(),
                SentState {
                    offset: x.offset,
                    leader_epoch: 3,
                },
            );
        }
        // Nothing changed: an incremental request with no partitions.
        let inc = build_request(&cfg, 12, &w, &session, true, false);
        assert_eq!((inc.session_id, inc.session_epoch), (77, 1));
        assert!(inc.topics.is_empty());
        assert!(inc.forgotten_topics_data.is_empty());
        // a-1 advanced, b-0 unassigned.
        let w2 = vec![wanted("a", 0, 10), wanted("a", 1, 25)];
        let inc = build_request(&cfg, 12, &w2, &session, true, false);
        assert_eq!(inc.topics.len(), 1);
        assert_eq!(inc.topics[0].partitions.len(), 1);
        assert_eq!(inc.topics[0].partitions[0].fetch_offset, 25);
        assert_eq!(inc.forgotten_topics_data.len(), 1);
        assert_eq!(inc.forgotten_topics_data[0].topic.0.as_str(), "b");
        assert_eq!(inc.forgotten_topics_data[0].partitions, vec![0]);
    }

    #[test]
    fn sessionless_and_topic_ids() {
        let cfg = FetchConfig {
            isolation: IsolationLevel::ReadCommitted,
            ..FetchConfig::default()
        };
        let w = vec![wanted("a", 0, 10)];
        let r = build_request(&cfg, 13, &w, &Session::default(), false, true);
        assert_eq!((r.session_id, r.session_epoch), (0, -1));
        assert_eq!(r.isolation_level, 1);
        assert_eq!(r.topics[0].topic_id, Uuid::from_u128(0x1234));
        let r = build_request(&cfg, 4, &w, &Session::default(), false, true);
        assert_eq!(r.topics[0].topic.0.as_str(), "a");
        assert_eq!(r.topics[0].partitions[0].current_leader_epoch, -1);
    }

    #[test]
    fn config_validation() {
        assert!(FetchConfig::default().validate().is_ok());
        assert!(
            FetchConfig {
                max_bytes: 0,
                ..FetchConfig::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            FetchConfig {
                min_bytes: -1,
                ..FetchConfig::default()
            }
            .validate()
            .is_err()
        );
    }
}
