//! Cluster client: bootstrap, metadata cache, leader routing, one connection per broker.
//!
//! [`Cluster::connect`] reaches a bootstrap server (retrying per the configured
//! [`crate::BackoffConfig`]; configuration, TLS-certificate and authentication failures end
//! the loop at once) and reads the broker list. Topic metadata — topic ids, partition leaders
//! and leader epochs — is cached in an immutable [`Metadata`] snapshot that is replaced on
//! refresh. Components that hit a routing error (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
//! UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, ...; see
//! [`ferry_protocol::error::ErrorCode::is_routing`]) call [`Cluster::mark_stale`] and refresh
//! before retrying.
//!
//! One [`BrokerConnection`] per broker id is kept and reused; a failed or expired one is
//! replaced on next use. Generic calls — [`Cluster::send_to`], [`Cluster::send_any`],
//! [`Cluster::send_controller`], [`Cluster::send_coordinator`] — are the base for admin and
//! transaction modules: they send any [`KafkaRequest`] at the version negotiated with that
//! broker.
//!
//! # References
//! - Metadata API (KIP-516 topic ids from v10), FindCoordinator (KIP-699 batched keys, v4+)

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use ferry_protocol::api::{ApiKey, KafkaRequest};
use ferry_protocol::error::ErrorCode;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    FindCoordinatorRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse, TopicName,
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::config::ConnectionConfig;
use crate::connection::BrokerConnection;
use crate::error::{BrokerRef, ClientError};

/// One broker from Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`.
    #[must_use]
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition from Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// Leader node id; `None` while there is no leader.
    pub leader: Option<i32>,
    /// Leader epoch (KIP-320), −1 if unknown.
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// The partition's error code in the Metadata response.
    pub error: ErrorCode,
}

/// One topic from Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Topic id (KIP-516; nil from brokers before Metadata v10).
    pub id: Uuid,
    /// Internal topic (`__consumer_offsets`, ...).
    pub is_internal: bool,
    /// Partitions by index.
    pub partitions: BTreeMap<i32, PartitionInfo>,
}

/// An immutable metadata snapshot.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Controller node id as reported by Metadata (KRaft: a broker that forwards).
    pub controller_id: Option<i32>,
    /// Brokers by id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Topics by name (only those requested so far, or all after a full refresh).
    pub topics: BTreeMap<String, TopicInfo>,
    /// When this snapshot was fetched.
    pub fetched_at: Option<Instant>,
}

impl Metadata {
    /// The leader broker id and leader epoch of a partition.
    pub fn leader(&self, topic: &str, partition: i32) -> Result<(i32, i32), ClientError> {
        let t = self
            .topics
            .get(topic)
            .ok_or_else(|| ClientError::UnknownTopic {
                topic: topic.to_owned(),
            })?;
        let p = t
            .partitions
            .get(&partition)
            .ok_or_else(|| ClientError::NoLeader {
                topic: topic.to_owned(),
                partition,
            })?;
        match p.leader {
            Some(leader) if self.brokers.contains_key(&leader) => Ok((leader, p.leader_epoch)),
            _ => Err(ClientError::NoLeader {
                topic: topic.to_owned(),
                partition,
            }),
        }
    }

    /// A topic's name from its id.
    #[must_use]
    pub fn topic_name(&self, id: Uuid) -> Option<&str> {
        self.topics
            .values()
            .find(|t| t.id == id && !id.is_nil())
            .map(|t| t.name.as_str())
    }

    /// A topic's id (nil if unknown or the broker is too old).
    #[must_use]
    pub fn topic_id(&self, topic: &str) -> Uuid {
        self.topics.get(topic).map_or(Uuid::nil(), |t| t.id)
    }

    /// This snapshot with a leader hint applied (KIP-951): a NOT_LEADER_OR_FOLLOWER or
    /// FENCED_LEADER_EPOCH answer from Produce v10+ / Fetch v16+ names the partition's
    /// current leader and epoch and carries the endpoints of the brokers it names.
    ///
    /// `None` when the hint teaches nothing: the partition is unknown, the hint's epoch is
    /// not newer than the cached one (a stale hint must not undo a refresh), the leader id is
    /// negative, or the leader is neither a known broker nor among `endpoints`. The caller
    /// then falls back to a metadata refresh.
    #[must_use]
    pub fn with_leader_hint(
        &self,
        topic: &str,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        endpoints: &[BrokerInfo],
    ) -> Option<Self> {
        let cached = self.topics.get(topic)?.partitions.get(&partition)?;
        if leader < 0 || leader_epoch <= cached.leader_epoch {
            return None;
        }
        let mut next = self.clone();
        if let std::collections::btree_map::Entry::Vacant(slot) = next.brokers.entry(leader) {
            slot.insert(endpoints.iter().find(|b| b.id == leader)?.clone());
        }
        let p = next.topics.get_mut(topic)?.partitions.get_mut(&partition)?;
        p.leader = Some(leader);
        p.leader_epoch = leader_epoch;
        p.error = ErrorCode::NoError;
        Some(next)
    }
}

/// Which topics a metadata refresh asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicSelection {
    /// Only brokers (an empty topic list).
    None,
    /// These topics; others in the cache are kept.
    Topics(Vec<String>),
    /// Every topic; replaces the cached topic map.
    All,
}

/// Which coordinator to look up (FindCoordinator `key_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorType {
    /// Consumer group coordinator (key = group id).
    Group,
    /// Transaction coordinator (key = transactional id).
    Transaction,
}

/// What ListOffsets should return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// Log start offset (timestamp −2).
    Earliest,
    /// Log end offset / high watermark (timestamp −1); the LSO under read_committed.
    Latest,
    /// First offset with a timestamp ≥ this (ms since the epoch).
    Timestamp(i64),
}

type Slot = Arc<tokio::sync::Mutex<Option<BrokerConnection>>>;

struct ClusterInner {
    config: ConnectionConfig,
    metadata: RwLock<Arc<Metadata>>,
    stale: AtomicBool,
    connections: tokio::sync::Mutex<HashMap<i32, Slot>>,
    bootstrap: tokio::sync::Mutex<Option<BrokerConnection>>,
    refresh_lock: tokio::sync::Mutex<()>,
}

/// A client for one Kafka cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<ClusterInner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let md = self.metadata();
        f.debug_struct("Cluster")
            .field("bootstrap", &self.inner.config.bootstrap)
            .field("cluster_id", &md.cluster_id)
            .field("brokers", &md.brokers.len())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects to a bootstrap server and reads the broker list.
    pub async fn connect(config: ConnectionConfig) -> Result<Self, ClientError> {
        let cluster = Self {
            inner: Arc::new(ClusterInner {
                config,
                metadata: RwLock::new(Arc::new(Metadata::default())),
                stale: AtomicBool::new(true),
                connections: tokio::sync::Mutex::new(HashMap::new()),
                bootstrap: tokio::sync::Mutex::new(None),
                refresh_lock: tokio::sync::Mutex::new(()),
            }),
        };
        cluster.refresh_metadata(TopicSelection::None).await?;
        Ok(cluster)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ConnectionConfig {
        &self.inner.config
    }

    /// The current metadata snapshot.
    #[must_use]
    pub fn metadata(&self) -> Arc<Metadata> {
        Arc::clone(
            &self
                .inner
                .metadata
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Applies a KIP-951 leader hint to the cached metadata (see
    /// [`Metadata::with_leader_hint`]). Returns `false`, changing nothing, when the hint
    /// teaches nothing; the caller then marks the metadata stale as before.
    pub fn apply_leader_hint(
        &self,
        topic: &str,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        endpoints: &[BrokerInfo],
    ) -> bool {
        let mut guard = self
            .inner
            .metadata
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match guard.with_leader_hint(topic, partition, leader, leader_epoch, endpoints) {
            Some(next) => {
                tracing::debug!(
                    topic,
                    partition,
                    leader,
                    leader_epoch,
                    "leader hint applied"
                );
                *guard = Arc::new(next);
                true
            }
            None => false,
        }
    }

    /// Marks the metadata as stale (after a routing error); the next
    /// [`Cluster::refresh_if_stale`] refreshes it.
    pub fn mark_stale(&self) {
        self.inner.stale.store(true, Ordering::Relaxed);
    }

    /// Whether a refresh was requested or the snapshot is older than `metadata_max_age`.
    #[must_use]
    pub fn is_stale(&self) -> bool {
        self.inner.stale.load(Ordering::Relaxed)
            || self
                .metadata()
                .fetched_at
                .is_none_or(|t| t.elapsed() > self.inner.config.metadata_max_age)
    }

    /// Refreshes the given topics if the metadata is stale.
    pub async fn refresh_if_stale(&self, topics: &[String]) -> Result<Arc<Metadata>, ClientError> {
        if self.is_stale() {
            self.refresh_metadata(TopicSelection::Topics(topics.to_vec()))
                .await
        } else {
            Ok(self.metadata())
        }
    }

    /// Makes sure the cache knows these topics (refreshing if any is missing).
    pub async fn ensure_topics(&self, topics: &[String]) -> Result<Arc<Metadata>, ClientError> {
        let md = self.metadata();
        if topics.iter().all(|t| md.topics.contains_key(t)) && !self.is_stale() {
            return Ok(md);
        }
        self.refresh_metadata(TopicSelection::Topics(topics.to_vec()))
            .await
    }

    /// Fetches metadata and updates the cache, retrying per the backoff policy.
    pub async fn refresh_metadata(
        &self,
        topics: TopicSelection,
    ) -> Result<Arc<Metadata>, ClientError> {
        let _guard = self.inner.refresh_lock.lock().await;
        let mut backoff = self.inner.config.backoff.start();
        loop {
            match self.try_refresh(&topics).await {
                Ok(md) => return Ok(md),
                Err(e) if e.is_fatal() || !e.is_retriable() => return Err(e),
                Err(e) => match backoff.next_delay() {
                    Some(d) => {
                        tracing::debug!(error = %e, delay = ?d, "metadata refresh failed; retrying");
                        tokio::time::sleep(d).await;
                    }
                    None => {
                        return Err(ClientError::RetriesExhausted {
                            attempts: backoff.attempts(),
                            elapsed: backoff.elapsed(),
                            last: Box::new(e),
                        });
                    }
                },
            }
        }
    }

    async fn try_refresh(&self, topics: &TopicSelection) -> Result<Arc<Metadata>, ClientError> {
        let conn = self.any_broker().await?;
        let version = conn.version(ApiKey::Metadata)?;
        let mut req = MetadataRequest::default();
        req.topics = match topics {
            TopicSelection::None => Some(Vec::new()),
            TopicSelection::All => None,
            TopicSelection::Topics(names) => Some(
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                    })
                    .collect(),
            ),
        };
        if version >= 4 {
            req.allow_auto_topic_creation = false;
        }
        let resp = match conn.send_at(&req, version).await {
            Ok(r) => r,
            Err(e) => {
                // A dead bootstrap or broker connection: forget it so the next try redials.
                self.forget(&conn).await;
                return Err(e);
            }
        };
        let md = self.merge(resp, topics);
        self.inner.stale.store(false, Ordering::Relaxed);
        Ok(md)
    }

    fn merge(&self, resp: MetadataResponse, selection: &TopicSelection) -> Arc<Metadata> {
        let old = self.metadata();
        let mut md = Metadata {
            cluster_id: resp.cluster_id.map(|c| c.to_string()),
            controller_id: (resp.controller_id.0 >= 0).then_some(resp.controller_id.0),
            brokers: resp
                .brokers
                .iter()
                .map(|b| {
                    (
                        b.node_id.0,
                        BrokerInfo {
                            id: b.node_id.0,
                            host: b.host.to_string(),
                            port: b.port,
                            rack: b.rack.as_ref().map(ToString::to_string),
                        },
                    )
                })
                .collect(),
            topics: match selection {
                TopicSelection::All => BTreeMap::new(),
                _ => old.topics.clone(),
            },
            fetched_at: Some(Instant::now()),
        };
        for t in resp.topics {
            let Some(name) = t.name.map(|n| n.0.to_string()) else {
                continue;
            };
            match ErrorCode::from_i16(t.error_code) {
                ErrorCode::NoError => {}
                code => {
                    tracing::debug!(topic = %name, %code, "metadata error for topic");
                    if code == ErrorCode::UnknownTopicOrPartition
                        || code == ErrorCode::InvalidTopicException
                    {
                        md.topics.remove(&name);
                        continue;
                    }
                }
            }
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        PartitionInfo {
                            partition: p.partition_index,
                            leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
                            leader_epoch: p.leader_epoch,
                            replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                            isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                            error: ErrorCode::from_i16(p.error_code),
                        },
                    )
                })
                .collect();
            md.topics.insert(
                name.clone(),
                TopicInfo {
                    name,
                    id: t.topic_id,
                    is_internal: t.is_internal,
                    partitions,
                },
            );
        }
        let md = Arc::new(md);
        *self
            .inner
            .metadata
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&md);
        md
    }

    async fn forget(&self, conn: &BrokerConnection) {
        conn.close();
        let mut boot = self.inner.bootstrap.lock().await;
        if boot.as_ref().is_some_and(|b| b.broker() == conn.broker()) {
            *boot = None;
        }
    }

    /// The leader broker id and leader epoch of a partition, refreshing metadata once if the
    /// cache does not know it.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<(i32, i32), ClientError> {
        match self.metadata().leader(topic, partition) {
            Ok(l) => Ok(l),
            Err(_) => self
                .refresh_metadata(TopicSelection::Topics(vec![topic.to_owned()]))
                .await?
                .leader(topic, partition),
        }
    }

    /// The connection to broker `id`, connecting (or reconnecting) if needed.
    pub async fn broker(&self, id: i32) -> Result<BrokerConnection, ClientError> {
        let slot = {
            let mut conns = self.inner.connections.lock().await;
            Arc::clone(conns.entry(id).or_default())
        };
        let mut slot = slot.lock().await;
        if let Some(conn) = slot.as_ref()
            && !conn.is_closed()
        {
            return Ok(conn.clone());
        }
        let info = self
            .metadata()
            .brokers
            .get(&id)
            .cloned()
            .ok_or(ClientError::UnknownBroker { broker_id: id })?;
        let conn = BrokerConnection::connect(
            &self.inner.config,
            BrokerRef {
                id: Some(id),
                addr: info.addr(),
            },
        )
        .await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Any usable connection: an open broker connection, else a (re)connected bootstrap one.
    pub async fn any_broker(&self) -> Result<BrokerConnection, ClientError> {
        {
            let conns = self.inner.connections.lock().await;
            for slot in conns.values() {
                if let Ok(guard) = slot.try_lock()
                    && let Some(c) = guard.as_ref()
                    && !c.is_closed()
                {
                    return Ok(c.clone());
                }
            }
        }
        let mut boot = self.inner.bootstrap.lock().await;
        if let Some(c) = boot.as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        // Known brokers first (the bootstrap list may be a load balancer), then bootstrap.
        let mut addrs: Vec<(Option<i32>, String)> = self
            .metadata()
            .brokers
            .values()
            .map(|b| (Some(b.id), b.addr()))
            .collect();
        addrs.extend(
            self.inner
                .config
                .bootstrap
                .iter()
                .map(|a| (None, a.clone())),
        );
        let mut last = None;
        for (id, addr) in &addrs {
            match BrokerConnection::connect(
                &self.inner.config,
                BrokerRef {
                    id: *id,
                    addr: addr.clone(),
                },
            )
            .await
            {
                Ok(c) => {
                    *boot = Some(c.clone());
                    return Ok(c);
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "bootstrap connect failed");
                    last = Some(e);
                }
            }
        }
        Err(ClientError::NoBrokerAvailable {
            tried: addrs.into_iter().map(|(_, a)| a).collect(),
            last: Box::new(last.unwrap_or(ClientError::Shutdown)),
        })
    }

    /// Sends `request` to broker `id` at the version negotiated with it.
    pub async fn send_to<R: KafkaRequest>(
        &self,
        id: i32,
        request: &R,
    ) -> Result<R::Response, ClientError> {
        self.broker(id).await?.send(request).await
    }

    /// Sends `request` to any broker.
    pub async fn send_any<R: KafkaRequest>(&self, request: &R) -> Result<R::Response, ClientError> {
        self.any_broker().await?.send(request).await
    }

    /// Sends `request` to the controller reported by Metadata (in KRaft clusters a broker
    /// that forwards to the active controller).
    pub async fn send_controller<R: KafkaRequest>(
        &self,
        request: &R,
    ) -> Result<R::Response, ClientError> {
        let id = match self.metadata().controller_id {
            Some(id) => id,
            None => self
                .refresh_metadata(TopicSelection::None)
                .await?
                .controller_id
                .ok_or(ClientError::UnknownBroker { broker_id: -1 })?,
        };
        self.send_to(id, request).await
    }

    /// Finds the coordinator for `key` (group or transactional id) and returns its connection.
    pub async fn coordinator(
        &self,
        kind: CoordinatorType,
        key: &str,
    ) -> Result<BrokerConnection, ClientError> {
        let conn = self.any_broker().await?;
        let version = conn.version(ApiKey::FindCoordinator)?;
        let key_type = match kind {
            CoordinatorType::Group => 0,
            CoordinatorType::Transaction => 1,
        };
        let mut req = FindCoordinatorRequest::default().with_key_type(key_type);
        if version >= 4 {
            req.coordinator_keys = vec![StrBytes::from_string(key.to_owned())];
        } else {
            req.key = StrBytes::from_string(key.to_owned());
        }
        let resp = conn.send_at(&req, version).await?;
        let (node, host, port, code, message) = if version >= 4 {
            let c = resp.coordinators.into_iter().next().ok_or_else(|| {
                conn.broker_error(
                    ApiKey::FindCoordinator,
                    ErrorCode::CoordinatorNotAvailable,
                    None,
                )
            })?;
            (
                c.node_id.0,
                c.host.to_string(),
                c.port,
                c.error_code,
                c.error_message,
            )
        } else {
            (
                resp.node_id.0,
                resp.host.to_string(),
                resp.port,
                resp.error_code,
                resp.error_message,
            )
        };
        ErrorCode::check(code).map_err(|code| {
            conn.broker_error(
                ApiKey::FindCoordinator,
                code,
                message.map(|m| m.to_string()),
            )
        })?;
        if !self.metadata().brokers.contains_key(&node) {
            tracing::debug!(node, %host, port, "coordinator not in metadata; refreshing");
            self.refresh_metadata(TopicSelection::None).await?;
        }
        self.broker(node).await
    }

    /// Sends `request` to the coordinator of `key`.
    pub async fn send_coordinator<R: KafkaRequest>(
        &self,
        kind: CoordinatorType,
        key: &str,
        request: &R,
    ) -> Result<R::Response, ClientError> {
        self.coordinator(kind, key).await?.send(request).await
    }

    /// ListOffsets for some partitions of one topic, each sent to its leader. Returns
    /// `(partition, offset)` pairs; a partition error fails the call with
    /// [`ClientError::Partition`].
    pub async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
        read_committed: bool,
    ) -> Result<Vec<(i32, i64)>, ClientError> {
        self.ensure_topics(&[topic.to_owned()]).await?;
        let mut by_leader: BTreeMap<i32, Vec<(i32, i32)>> = BTreeMap::new();
        for &p in partitions {
            let (leader, epoch) = self.leader(topic, p).await?;
            by_leader.entry(leader).or_default().push((p, epoch));
        }
        let timestamp = match spec {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        };
        let mut out = Vec::new();
        for (leader, parts) in by_leader {
            let conn = self.broker(leader).await?;
            let version = conn.version(ApiKey::ListOffsets)?;
            let mut req = ListOffsetsRequest::default()
                .with_replica_id(kafka_protocol::messages::BrokerId(-1))
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                        .with_partitions(
                            parts
                                .iter()
                                .map(|&(p, epoch)| {
                                    let mut lp = ListOffsetsPartition::default()
                                        .with_partition_index(p)
                                        .with_timestamp(timestamp);
                                    if version >= 4 {
                                        lp.current_leader_epoch = epoch;
                                    }
                                    lp
                                })
                                .collect(),
                        ),
                ]);
            if version >= 2 {
                req.isolation_level = i8::from(read_committed);
            }
            let resp = conn.send_at(&req, version).await?;
            for t in resp.topics {
                for p in t.partitions {
                    if let Err(code) = ErrorCode::check(p.error_code) {
                        if code.is_routing() {
                            self.mark_stale();
                        }
                        return Err(ClientError::Partition {
                            topic: topic.to_owned(),
                            partition: p.partition_index,
                            code,
                            message: None,
                        });
                    }
                    out.push((p.partition_index, p.offset));
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(id: i32) -> BrokerInfo {
        BrokerInfo {
            id,
            host: format!("b{id}.example"),
            port: 9092,
            rack: None,
        }
    }

    /// Topic `t` with one partition led by broker 1 at epoch 5; brokers 1 and 2 known.
    fn snapshot() -> Metadata {
        let partition = PartitionInfo {
            partition: 0,
            leader: Some(1),
            leader_epoch: 5,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            error: ErrorCode::NoError,
        };
        Metadata {
            brokers: BTreeMap::from([(1, broker(1)), (2, broker(2))]),
            topics: BTreeMap::from([(
                "t".to_owned(),
                TopicInfo {
                    name: "t".to_owned(),
                    id: Uuid::nil(),
                    is_internal: false,
                    partitions: BTreeMap::from([(0, partition)]),
                },
            )]),
            ..Metadata::default()
        }
    }

    #[test]
    fn leader_hint_moves_the_leader_to_a_known_broker() {
        let md = snapshot().with_leader_hint("t", 0, 2, 6, &[]).unwrap();
        assert_eq!(md.leader("t", 0).unwrap(), (2, 6));
        assert_eq!(md.brokers.len(), 2);
    }

    #[test]
    fn leader_hint_adds_the_new_leaders_endpoint() {
        // Broker 3 is not in the cache: the hint's node endpoints supply its address.
        assert!(snapshot().with_leader_hint("t", 0, 3, 6, &[]).is_none());
        let md = snapshot()
            .with_leader_hint("t", 0, 3, 6, &[broker(2), broker(3)])
            .unwrap();
        assert_eq!(md.leader("t", 0).unwrap(), (3, 6));
        assert_eq!(md.brokers[&3].addr(), "b3.example:9092");
    }

    #[test]
    fn stale_or_empty_hints_change_nothing() {
        let md = snapshot();
        // Same or older epoch: a refresh may already have moved past it.
        assert!(md.with_leader_hint("t", 0, 2, 5, &[]).is_none());
        assert!(md.with_leader_hint("t", 0, 2, 4, &[]).is_none());
        // No leader in the hint (-1), unknown partition or topic.
        assert!(md.with_leader_hint("t", 0, -1, 9, &[]).is_none());
        assert!(md.with_leader_hint("t", 1, 2, 9, &[]).is_none());
        assert!(md.with_leader_hint("u", 0, 2, 9, &[]).is_none());
    }
}
