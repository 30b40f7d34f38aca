//! Admin calls: topics, configs, ACLs, consumer groups, offsets, records and the cluster.
//!
//! [`Admin`] wraps a [`Cluster`] (cheap to clone) and offers one async method per operation.
//! Every method returns [`AdminError`] for a failure of the whole call (no broker reachable,
//! authentication, a top-level error code, invalid input) and, for calls about several items
//! (topics, partitions, groups, config resources, ACL bindings), a map or list with one
//! `Result` per item, so that one bad topic does not hide the outcome of the others. Item
//! errors name the item and carry the broker's `error_message`.
//!
//! # Routing
//!
//! | call | sent to |
//! |---|---|
//! | [`Admin::list_topics`], [`Admin::describe_topics`] | any broker (Metadata) |
//! | [`Admin::create_topics`], [`Admin::delete_topics`], [`Admin::create_partitions`], [`Admin::create_acls`], [`Admin::delete_acls`] | the controller named by Metadata (in KRaft a broker, which forwards to the active controller, KIP-590) |
//! | [`Admin::describe_acls`], [`Admin::describe_configs`] / [`Admin::incremental_alter_configs`] of non-broker resources | any broker |
//! | configs of broker `N` | broker `N` |
//! | [`Admin::list_groups`] | every broker (each lists the groups it coordinates) |
//! | [`Admin::describe_groups`], [`Admin::fetch_offsets`], [`Admin::commit_offsets`], [`Admin::delete_groups`] | the group coordinator (FindCoordinator) |
//! | [`Admin::list_offsets`], [`Admin::delete_records`] | each partition's leader |
//! | [`Admin::describe_cluster`] | any broker (DescribeCluster, else Metadata) |
//!
//! # Retries
//!
//! Retries follow the cluster's [`crate::BackoffConfig`] (the connection config's policy), so
//! they always end. A whole call is retried when it fails with a retriable error (connection
//! lost, timeout, NOT_CONTROLLER, coordinator moved or loading, ...); in calls about several
//! items, only the items that failed with a retriable error are sent again. Before a retry
//! after a routing error the metadata is marked stale, so leaders and the controller are
//! looked up again; group calls look the coordinator up on every attempt.
//! UNKNOWN_TOPIC_OR_PARTITION is retried only when a partition leader said it (stale
//! metadata); from the controller, a coordinator or a config lookup it means the topic does
//! not exist and is returned at once. When the policy ends, the item (or the call) fails with
//! [`AdminError::RetriesExhausted`] holding the last error.
//!
//! # Admin offset commits
//!
//! [`Admin::commit_offsets`] commits with generation −1 and an empty member id, which a
//! coordinator accepts only for a group with no members (a "simple" or empty group). A group
//! with members refuses (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION or REBALANCE_IN_PROGRESS); that
//! comes back as [`AdminError::GroupActive`] ([`AdminError::is_group_active`]), as does
//! NON_EMPTY_GROUP from [`Admin::delete_groups`].
//!
//! # References
//! - <https://kafka.apache.org/protocol> (request schemas);
//!   `clients/src/main/java/org/apache/kafka/clients/admin/KafkaAdminClient.java` and
//!   `clients/.../admin/internals/*Handler.java` (apache/kafka) for routing and retry rules
//! - KIP-4 (admin APIs), KIP-133 (DescribeConfigs), KIP-140 (ACL APIs), KIP-290 (prefixed ACLs),
//!   KIP-195 (CreatePartitions), KIP-107 (DeleteRecords), KIP-229 (DeleteGroups),
//!   KIP-339 (IncrementalAlterConfigs), KIP-464 (broker-default partitions and replication
//!   factor, CreateTopics v4), KIP-516 (topic ids), KIP-518 (ListGroups states filter),
//!   KIP-447 (`require_stable`), KIP-709 (multi-group OffsetFetch v8), KIP-734 (max-timestamp
//!   ListOffsets), KIP-700 (DescribeCluster), KIP-848 (group types, ListGroups v5)

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use ferry_protocol::api::{ApiKey, KafkaRequest};
use ferry_protocol::error::ErrorCode;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    BrokerId, CreateAclsRequest, CreateAclsResponse, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteAclsRequest,
    DeleteAclsResponse, DeleteGroupsRequest, DeleteGroupsResponse, DeleteRecordsRequest,
    DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse, DescribeAclsRequest,
    DescribeAclsResponse, DescribeClusterRequest, DescribeConfigsRequest, DescribeConfigsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, ListGroupsRequest, ListGroupsResponse, ListOffsetsRequest,
    ListOffsetsResponse, MetadataRequest, MetadataResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::backoff::BackoffConfig;
use crate::cluster::{BrokerInfo, Cluster, CoordinatorType, OffsetSpec, TopicSelection};
use crate::connection::BrokerConnection;
use crate::error::{BrokerRef, ClientError, suffix};
use crate::fetcher::{IsolationLevel, TopicPartition};

// ---------------------------------------------------------------------------------------------
// errors

/// Errors of the admin calls.
///
/// Item variants ([`AdminError::Topic`], [`AdminError::Partition`], [`AdminError::Group`],
/// [`AdminError::Resource`], [`AdminError::Acl`]) are a broker's answer about one item and
/// carry its error code and `error_message`. Branch on the classifiers
/// ([`AdminError::is_retriable`], [`AdminError::is_group_active`],
/// [`AdminError::is_topic_already_exists`], ...), not on the Display text.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// Transport, negotiation, authentication or a top-level broker error; see
    /// [`ClientError`] for whose fault each is.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A broker's error about one topic (CreateTopics, DeleteTopics, CreatePartitions,
    /// Metadata). TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, POLICY_VIOLATION and
    /// INVALID_REPLICATION_FACTOR are the caller's; UNKNOWN_TOPIC_OR_PARTITION means the
    /// topic does not exist.
    #[error("{api:?} for topic {topic}: {code}{}", suffix(message))]
    Topic {
        /// The API that failed.
        api: ApiKey,
        /// Topic name.
        topic: String,
        /// The error code.
        code: ErrorCode,
        /// The broker's `error_message`, if any.
        message: Option<String>,
    },
    /// A broker's error about one partition (ListOffsets, DeleteRecords, OffsetFetch,
    /// OffsetCommit). Routing codes from a leader mean our metadata was stale.
    #[error("{api:?} for {topic}-{partition}: {code}{}", suffix(message))]
    Partition {
        /// The API that failed.
        api: ApiKey,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The error code.
        code: ErrorCode,
        /// The broker's `error_message`, if any.
        message: Option<String>,
    },
    /// A coordinator's error about one group (DescribeGroups, OffsetFetch, OffsetCommit,
    /// DeleteGroups), e.g. GROUP_ID_NOT_FOUND or GROUP_AUTHORIZATION_FAILED.
    #[error("{api:?} for group {group}: {code}{}", suffix(message))]
    Group {
        /// The API that failed.
        api: ApiKey,
        /// Group id.
        group: String,
        /// The error code.
        code: ErrorCode,
        /// The broker's `error_message`, if any.
        message: Option<String>,
    },
    /// The group has active members, so an admin offset commit (generation −1, no member
    /// id) or a group deletion was refused (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
    /// REBALANCE_IN_PROGRESS or NON_EMPTY_GROUP). The caller must stop the group's consumers
    /// first; retrying does not help while they run.
    #[error(
        "group {group} has active members; {api:?} refused with {code}{}",
        suffix(message)
    )]
    GroupActive {
        /// The API that was refused.
        api: ApiKey,
        /// Group id.
        group: String,
        /// The code the coordinator answered with.
        code: ErrorCode,
        /// The broker's `error_message`, if any.
        message: Option<String>,
    },
    /// A broker's error about one config resource (DescribeConfigs, IncrementalAlterConfigs),
    /// e.g. INVALID_CONFIG or INVALID_REQUEST with the broker's explanation.
    #[error("{api:?} for {resource}: {code}{}", suffix(message))]
    Resource {
        /// The API that failed.
        api: ApiKey,
        /// The resource.
        resource: ConfigResource,
        /// The error code.
        code: ErrorCode,
        /// The broker's `error_message`, if any.
        message: Option<String>,
    },
    /// A broker's error about an ACL call, one binding of CreateAcls or one filter of
    /// DeleteAcls (SECURITY_DISABLED when the broker has no authorizer).
    #[error("{api:?}: {code}{}", suffix(message))]
    Acl {
        /// The API that failed.
        api: ApiKey,
        /// The error code.
        code: ErrorCode,
        /// The broker's `error_message`, if any.
        message: Option<String>,
    },
    /// The broker's negotiated version cannot express an option that was asked for (e.g.
    /// `require_stable` before OffsetFetch v7, max-timestamp before ListOffsets v7).
    #[error("{broker} does not support {what}")]
    Unsupported {
        /// The broker.
        broker: BrokerRef,
        /// What is missing.
        what: String,
    },
    /// The call's arguments are invalid (caller fault); nothing was sent.
    #[error("invalid admin request: {message}")]
    InvalidInput {
        /// What is wrong.
        message: String,
    },
    /// A response did not mention an item the request asked about (peer fault).
    #[error("{api:?} response has no result for {item}")]
    MissingResult {
        /// The API.
        api: ApiKey,
        /// The item (topic, partition, group, resource).
        item: String,
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

/// Whether a code from `api` is worth retrying. UNKNOWN_TOPIC_OR_PARTITION is retriable in
/// the protocol table because a leader may answer it from stale metadata; from the
/// controller, a coordinator or a config lookup it means the topic does not exist.
fn code_retriable(api: ApiKey, code: ErrorCode) -> bool {
    match code {
        ErrorCode::UnknownTopicOrPartition => {
            matches!(
                api,
                ApiKey::ListOffsets | ApiKey::DeleteRecords | ApiKey::Produce
            )
        }
        code => code.is_retriable(),
    }
}

impl AdminError {
    /// The error code of a broker answer, if there is one.
    #[must_use]
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Client(e) => e.error_code(),
            Self::Topic { code, .. }
            | Self::Partition { code, .. }
            | Self::Group { code, .. }
            | Self::GroupActive { code, .. }
            | Self::Resource { code, .. }
            | Self::Acl { code, .. } => Some(*code),
            Self::RetriesExhausted { last, .. } => last.error_code(),
            _ => None,
        }
    }

    /// The broker's `error_message`, if there is one.
    #[must_use]
    pub fn broker_message(&self) -> Option<&str> {
        match self {
            Self::Topic { message, .. }
            | Self::Partition { message, .. }
            | Self::Group { message, .. }
            | Self::GroupActive { message, .. }
            | Self::Resource { message, .. }
            | Self::Acl { message, .. } => message.as_deref(),
            Self::RetriesExhausted { last, .. } => last.broker_message(),
            _ => None,
        }
    }

    /// The same call (or item) may succeed if sent again, after a metadata refresh when
    /// [`AdminError::needs_metadata_refresh`] says so.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Client(e) => e.is_retriable(),
            Self::Topic { api, code, .. }
            | Self::Partition { api, code, .. }
            | Self::Group { api, code, .. }
            | Self::Resource { api, code, .. }
            | Self::Acl { api, code, .. } => code_retriable(*api, *code),
            _ => false,
        }
    }

    /// Leaders or the controller may have moved: refresh metadata before retrying.
    #[must_use]
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            Self::Client(e) => e.needs_metadata_refresh(),
            Self::Topic { code, .. }
            | Self::Partition { code, .. }
            | Self::Resource { code, .. }
            | Self::Acl { code, .. } => code.is_routing(),
            _ => false,
        }
    }

    /// Authentication or authorisation failed (including TOPIC/GROUP/CLUSTER_AUTHORIZATION_FAILED).
    #[must_use]
    pub fn is_auth(&self) -> bool {
        match self {
            Self::Client(e) => e.is_auth(),
            Self::RetriesExhausted { last, .. } => last.is_auth(),
            other => other.error_code().is_some_and(ErrorCode::is_auth),
        }
    }

    /// Retrying cannot help without a configuration, ACL or code change.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Client(e) => e.is_fatal(),
            Self::Unsupported { .. } | Self::InvalidInput { .. } => true,
            Self::RetriesExhausted { last, .. } => last.is_fatal(),
            other => other.error_code().is_some_and(ErrorCode::is_auth),
        }
    }

    /// An admin offset commit or a group deletion was refused because the group has active
    /// members ([`AdminError::GroupActive`]).
    #[must_use]
    pub fn is_group_active(&self) -> bool {
        match self {
            Self::GroupActive { .. } => true,
            Self::RetriesExhausted { last, .. } => last.is_group_active(),
            _ => false,
        }
    }

    /// CreateTopics answered TOPIC_ALREADY_EXISTS.
    #[must_use]
    pub fn is_topic_already_exists(&self) -> bool {
        matches!(
            self,
            Self::Topic {
                code: ErrorCode::TopicAlreadyExists,
                ..
            }
        )
    }

    /// The topic, partition or group does not exist (UNKNOWN_TOPIC_OR_PARTITION,
    /// UNKNOWN_TOPIC_ID, GROUP_ID_NOT_FOUND, or a topic missing from the metadata).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Client(ClientError::UnknownTopic { .. }) => true,
            Self::RetriesExhausted { last, .. } => last.is_not_found(),
            other => matches!(
                other.error_code(),
                Some(
                    ErrorCode::UnknownTopicOrPartition
                        | ErrorCode::UnknownTopicId
                        | ErrorCode::GroupIdNotFound
                )
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// small wire enums

macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident: $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this crate does not know (a newer broker); the raw value is kept.
            Unknown($repr),
        }

        impl $name {
            /// Decodes the wire value; unknown values become `Unknown`.
            #[must_use]
            pub const fn from_wire(value: $repr) -> Self {
                match value {
                    $( $code => Self::$variant, )*
                    other => Self::Unknown(other),
                }
            }

            /// The wire value.
            #[must_use]
            pub const fn to_wire(self) -> $repr {
                match self {
                    $( Self::$variant => $code, )*
                    Self::Unknown(value) => value,
                }
            }
        }
    };
}

wire_enum! {
    /// Kind of a config resource (`ConfigResource.Type` in the Java client).
    ConfigResourceType: i8 {
        /// A topic.
        Topic = 2,
        /// A broker (name = broker id; empty name = the cluster-wide default).
        Broker = 4,
        /// A broker's loggers (KIP-412).
        BrokerLogger = 8,
        /// Client metrics subscriptions (KIP-714).
        ClientMetrics = 16,
        /// A consumer or share group (KIP-848).
        Group = 32,
    }
}

wire_enum! {
    /// Where a config value comes from (`DescribeConfigsResponse.ConfigSource`).
    ConfigSource: i8 {
        /// Set on the topic (`DYNAMIC_TOPIC_CONFIG`).
        DynamicTopic = 1,
        /// Set dynamically for this broker.
        DynamicBroker = 2,
        /// Set dynamically as the cluster-wide broker default.
        DynamicDefaultBroker = 3,
        /// From the broker's `server.properties`.
        StaticBroker = 4,
        /// Kafka's built-in default (`DEFAULT_CONFIG`): [`ConfigEntry::is_default`].
        Default = 5,
        /// Set dynamically for a broker logger.
        DynamicBrokerLogger = 6,
        /// A client-metrics subscription setting.
        ClientMetrics = 7,
        /// Set on a group.
        Group = 8,
    }
}

wire_enum! {
    /// Type of a config value (DescribeConfigs v3+; `Unknown(0)` before).
    ConfigType: i8 {
        /// Boolean.
        Boolean = 1,
        /// String.
        String = 2,
        /// 32-bit integer.
        Int = 3,
        /// 16-bit integer.
        Short = 4,
        /// 64-bit integer.
        Long = 5,
        /// Floating point.
        Double = 6,
        /// Comma-separated list.
        List = 7,
        /// Java class name.
        Class = 8,
        /// Password (sensitive).
        Password = 9,
    }
}

wire_enum! {
    /// IncrementalAlterConfigs operation (KIP-339).
    AlterConfigOpType: i8 {
        /// Set the value.
        Set = 0,
        /// Remove the setting (back to the inherited default).
        Delete = 1,
        /// Append to a list value.
        Append = 2,
        /// Remove from a list value.
        Subtract = 3,
    }
}

wire_enum! {
    /// ACL resource type (`org.apache.kafka.common.resource.ResourceType`).
    AclResourceType: i8 {
        /// Matches any type (filters only).
        Any = 1,
        /// A topic.
        Topic = 2,
        /// A consumer group.
        Group = 3,
        /// The cluster (name `kafka-cluster`).
        Cluster = 4,
        /// A transactional id.
        TransactionalId = 5,
        /// A delegation token.
        DelegationToken = 6,
        /// A user (KIP-373).
        User = 7,
    }
}

wire_enum! {
    /// ACL resource pattern type (KIP-290).
    AclPatternType: i8 {
        /// Matches any pattern type (filters only).
        Any = 1,
        /// Matches bindings whose pattern would match the filter's name (filters only).
        Match = 2,
        /// The name is taken literally (`*` is the wildcard).
        Literal = 3,
        /// The name is a prefix.
        Prefixed = 4,
    }
}

wire_enum! {
    /// ACL operation (`org.apache.kafka.common.acl.AclOperation`).
    AclOperation: i8 {
        /// Matches any operation (filters only).
        Any = 1,
        /// Every operation.
        All = 2,
        /// Read.
        Read = 3,
        /// Write.
        Write = 4,
        /// Create.
        Create = 5,
        /// Delete.
        Delete = 6,
        /// Alter.
        Alter = 7,
        /// Describe.
        Describe = 8,
        /// Cluster action (inter-broker).
        ClusterAction = 9,
        /// Describe configs.
        DescribeConfigs = 10,
        /// Alter configs.
        AlterConfigs = 11,
        /// Idempotent write.
        IdempotentWrite = 12,
        /// Create delegation tokens.
        CreateTokens = 13,
        /// Describe delegation tokens.
        DescribeTokens = 14,
    }
}

wire_enum! {
    /// ACL permission (`org.apache.kafka.common.acl.AclPermissionType`).
    AclPermission: i8 {
        /// Matches any permission (filters only).
        Any = 1,
        /// Deny.
        Deny = 2,
        /// Allow.
        Allow = 3,
    }
}

// ---------------------------------------------------------------------------------------------
// public data types

/// A topic from [`Admin::list_topics`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicListing {
    /// Topic name.
    pub name: String,
    /// Topic id (nil from brokers before Metadata v10).
    pub topic_id: Uuid,
    /// Internal topic (`__consumer_offsets`, `__transaction_state`, ...).
    pub is_internal: bool,
    /// Number of partitions.
    pub partitions: usize,
}

/// One partition of a [`TopicDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionDescription {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id; `None` while there is none.
    pub leader: Option<i32>,
    /// Leader epoch (KIP-320), −1 if unknown.
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// Offline replica broker ids.
    pub offline_replicas: Vec<i32>,
    /// The partition's error code in the Metadata response (LEADER_NOT_AVAILABLE, ...).
    pub error: ErrorCode,
}

/// A topic from [`Admin::describe_topics`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Topic id (nil from brokers before Metadata v10).
    pub topic_id: Uuid,
    /// Internal topic.
    pub is_internal: bool,
    /// Partitions, by index.
    pub partitions: Vec<PartitionDescription>,
    /// The topic's configs, when asked for.
    pub configs: Option<Vec<ConfigEntry>>,
}

impl TopicDescription {
    /// The replication factor (replicas of partition 0; 0 with no partitions).
    #[must_use]
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partitions; −1 = the broker's `num.partitions` (CreateTopics v4+, 2.4+).
    pub partitions: i32,
    /// Replication factor; −1 = the broker's `default.replication.factor` (v4+).
    pub replication_factor: i16,
    /// Topic configs (`cleanup.policy`, `retention.ms`, ...).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and `replication_factor` replicas (−1 for the
    /// broker defaults).
    #[must_use]
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }

    /// Adds a topic config.
    #[must_use]
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(key.into(), value.into());
        self
    }

    fn validate(&self) -> Result<(), AdminError> {
        let invalid = |m: String| Err(AdminError::InvalidInput { message: m });
        if let Err(m) = validate_topic_name(&self.name) {
            return invalid(m);
        }
        if self.partitions != -1 && self.partitions <= 0 {
            return invalid(format!(
                "topic {}: partitions must be positive or -1 (broker default), not {}",
                self.name, self.partitions
            ));
        }
        if self.replication_factor != -1 && self.replication_factor <= 0 {
            return invalid(format!(
                "topic {}: replication factor must be positive or -1 (broker default), not {}",
                self.name, self.replication_factor
            ));
        }
        Ok(())
    }
}

/// Kafka's topic-name rule: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`
/// (`org.apache.kafka.common.internals.Topic.validate`).
fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("illegal topic name {name:?}"));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name of {} characters exceeds 249",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains illegal character {c:?}"
        ));
    }
    Ok(())
}

/// What CreateTopics reports about a created (or validated) topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreatedTopic {
    /// Topic id (CreateTopics v7+; nil before, or with `validate_only`).
    pub topic_id: Uuid,
    /// Partitions (v5+).
    pub partitions: Option<i32>,
    /// Replication factor (v5+).
    pub replication_factor: Option<i16>,
    /// The topic's configs as created (v5+; empty when not allowed to describe them).
    pub configs: Vec<ConfigEntry>,
}

/// A config resource: a topic, a broker, ...
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigResource {
    /// The kind.
    pub kind: ConfigResourceType,
    /// Its name (topic name, broker id, group id; empty for the cluster-wide broker default).
    pub name: String,
}

impl ConfigResource {
    /// A topic.
    #[must_use]
    pub fn topic(name: impl Into<String>) -> Self {
        Self {
            kind: ConfigResourceType::Topic,
            name: name.into(),
        }
    }

    /// A broker's own configs.
    #[must_use]
    pub fn broker(id: i32) -> Self {
        Self {
            kind: ConfigResourceType::Broker,
            name: id.to_string(),
        }
    }

    /// The cluster-wide dynamic broker default.
    #[must_use]
    pub fn broker_default() -> Self {
        Self {
            kind: ConfigResourceType::Broker,
            name: String::new(),
        }
    }

    /// The broker that must answer for this resource: broker and broker-logger resources
    /// with a numeric name go to that broker; everything else to any broker.
    fn target_broker(&self) -> Option<i32> {
        match self.kind {
            ConfigResourceType::Broker | ConfigResourceType::BrokerLogger => self.name.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {:?}", self.kind, self.name)
    }
}

/// A synonym of a config entry: the same setting at another level, highest precedence first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigSynonym {
    /// Name at that level (e.g. `log.retention.ms` for `retention.ms`).
    pub name: String,
    /// Value (`None` for sensitive values).
    pub value: Option<String>,
    /// The level.
    pub source: ConfigSource,
}

/// One config of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigEntry {
    /// Config name.
    pub name: String,
    /// Value; `None` for sensitive values and unset ones.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Cannot be changed dynamically.
    pub read_only: bool,
    /// Sensitive (passwords): the value is withheld.
    pub sensitive: bool,
    /// Synonyms, when asked for (highest precedence first).
    pub synonyms: Vec<ConfigSynonym>,
    /// Value type (DescribeConfigs v3+).
    pub config_type: ConfigType,
    /// Documentation (not requested by ferry; always `None` today).
    pub documentation: Option<String>,
}

impl ConfigEntry {
    /// Kafka's built-in default (`ConfigEntry.isDefault()` in the Java client:
    /// `source == DEFAULT_CONFIG`). Values from `server.properties` or dynamic broker
    /// defaults are not "default" by this rule (MM2's config sync treats them the same way).
    #[must_use]
    pub fn is_default(&self) -> bool {
        self.source == ConfigSource::Default
    }

    /// Set on the resource itself (a topic override, a per-broker dynamic value, a group
    /// setting) rather than inherited.
    #[must_use]
    pub fn is_set_on_resource(&self) -> bool {
        matches!(
            self.source,
            ConfigSource::DynamicTopic
                | ConfigSource::DynamicBroker
                | ConfigSource::DynamicBrokerLogger
                | ConfigSource::ClientMetrics
                | ConfigSource::Group
        )
    }
}

/// One IncrementalAlterConfigs operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigOp {
    /// Config name.
    pub name: String,
    /// The operation.
    pub op: AlterConfigOpType,
    /// The value (`None` for [`AlterConfigOpType::Delete`]).
    pub value: Option<String>,
}

impl AlterConfigOp {
    /// `SET name=value`.
    #[must_use]
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: AlterConfigOpType::Set,
            value: Some(value.into()),
        }
    }

    /// `DELETE name` (back to the inherited value).
    #[must_use]
    pub fn delete(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: AlterConfigOpType::Delete,
            value: None,
        }
    }

    /// `APPEND name+=value` (list configs).
    #[must_use]
    pub fn append(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: AlterConfigOpType::Append,
            value: Some(value.into()),
        }
    }

    /// `SUBTRACT name-=value` (list configs).
    #[must_use]
    pub fn subtract(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: AlterConfigOpType::Subtract,
            value: Some(value.into()),
        }
    }
}

/// An ACL binding: a resource pattern plus an access control entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// Resource type.
    pub resource_type: AclResourceType,
    /// Resource name (`*` = every resource of the type, with [`AclPatternType::Literal`]).
    pub resource_name: String,
    /// Pattern type ([`AclPatternType::Literal`] or [`AclPatternType::Prefixed`]).
    pub pattern_type: AclPatternType,
    /// Principal, e.g. `User:alice`.
    pub principal: String,
    /// Host (`*` = any).
    pub host: String,
    /// Operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

impl AclBinding {
    /// A literal binding allowing `principal` to do `operation` on a resource from any host.
    #[must_use]
    pub fn allow(
        resource_type: AclResourceType,
        resource_name: impl Into<String>,
        principal: impl Into<String>,
        operation: AclOperation,
    ) -> Self {
        Self {
            resource_type,
            resource_name: resource_name.into(),
            pattern_type: AclPatternType::Literal,
            principal: principal.into(),
            host: "*".to_owned(),
            operation,
            permission: AclPermission::Allow,
        }
    }

    fn validate(&self) -> Result<(), AdminError> {
        let concrete = !matches!(
            self.resource_type,
            AclResourceType::Any | AclResourceType::Unknown(_)
        ) && matches!(
            self.pattern_type,
            AclPatternType::Literal | AclPatternType::Prefixed
        ) && !matches!(self.operation, AclOperation::Any | AclOperation::Unknown(_))
            && matches!(self.permission, AclPermission::Allow | AclPermission::Deny);
        if !concrete {
            return Err(AdminError::InvalidInput {
                message: format!("ACL binding must not use ANY, MATCH or unknown values: {self:?}"),
            });
        }
        if self.resource_name.is_empty() || self.principal.is_empty() || self.host.is_empty() {
            return Err(AdminError::InvalidInput {
                message: format!("ACL binding needs a resource name, principal and host: {self:?}"),
            });
        }
        Ok(())
    }
}

/// A filter over ACL bindings ([`Admin::describe_acls`], [`Admin::delete_acls`]). `None`
/// fields and `Any` values match everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    /// Resource type.
    pub resource_type: AclResourceType,
    /// Resource name.
    pub resource_name: Option<String>,
    /// Pattern type ([`AclPatternType::Match`] also matches wildcard and prefixed bindings
    /// that cover `resource_name`).
    pub pattern_type: AclPatternType,
    /// Principal.
    pub principal: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// Operation.
    pub operation: AclOperation,
    /// Permission.
    pub permission: AclPermission,
}

impl AclBindingFilter {
    /// Matches every binding.
    #[must_use]
    pub fn any() -> Self {
        Self {
            resource_type: AclResourceType::Any,
            resource_name: None,
            pattern_type: AclPatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }

    /// Only bindings on resources of this type.
    #[must_use]
    pub fn with_resource_type(mut self, resource_type: AclResourceType) -> Self {
        self.resource_type = resource_type;
        self
    }

    /// Only bindings with this resource name.
    #[must_use]
    pub fn with_resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Only bindings with this pattern type.
    #[must_use]
    pub fn with_pattern_type(mut self, pattern_type: AclPatternType) -> Self {
        self.pattern_type = pattern_type;
        self
    }

    /// Only bindings for this principal.
    #[must_use]
    pub fn with_principal(mut self, principal: impl Into<String>) -> Self {
        self.principal = Some(principal.into());
        self
    }
}

impl From<&AclBinding> for AclBindingFilter {
    /// A filter matching exactly this binding.
    fn from(b: &AclBinding) -> Self {
        Self {
            resource_type: b.resource_type,
            resource_name: Some(b.resource_name.clone()),
            pattern_type: b.pattern_type,
            principal: Some(b.principal.clone()),
            host: Some(b.host.clone()),
            operation: b.operation,
            permission: b.permission,
        }
    }
}

/// Group state as the coordinator names it (classic and KIP-848 consumer groups).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupState {
    /// No members (offsets may be stored).
    Empty,
    /// Members are joining.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Members are consuming.
    Stable,
    /// The group is gone (or never existed).
    Dead,
    /// KIP-848: computing a new assignment.
    Assigning,
    /// KIP-848: members are converging to the new assignment.
    Reconciling,
    /// KIP-848 / share groups: not ready.
    NotReady,
    /// A state this crate does not know.
    Other(String),
}

impl GroupState {
    /// The coordinator's spelling.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
            Self::Assigning => "Assigning",
            Self::Reconciling => "Reconciling",
            Self::NotReady => "NotReady",
            Self::Other(s) => s,
        }
    }

    /// Parses a state name (case-insensitive); never fails.
    #[must_use]
    pub fn parse(s: &str) -> Self {
        const KNOWN: [GroupState; 8] = [
            GroupState::Empty,
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Stable,
            GroupState::Dead,
            GroupState::Assigning,
            GroupState::Reconciling,
            GroupState::NotReady,
        ];
        KNOWN
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .unwrap_or_else(|| Self::Other(s.to_owned()))
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A group from [`Admin::list_groups`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer`, `connect`, empty for simple groups).
    pub protocol_type: String,
    /// State (ListGroups v4+).
    pub state: Option<GroupState>,
    /// Group type: `classic`, `consumer`, `share` (ListGroups v5+).
    pub group_type: Option<String>,
    /// The coordinator that listed it.
    pub coordinator: i32,
}

/// One member of a [`GroupDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupMember {
    /// Member id.
    pub member_id: String,
    /// Static membership id (KIP-345).
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Protocol metadata (for consumers, the subscription).
    pub metadata: Bytes,
    /// Assignment (for consumers, `ConsumerProtocolAssignment`).
    pub assignment: Bytes,
}

/// A group from [`Admin::describe_groups`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State.
    pub state: GroupState,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol (assignor name for consumers).
    pub protocol: String,
    /// Members.
    pub members: Vec<GroupMember>,
    /// The coordinator.
    pub coordinator: i32,
}

/// A committed offset: what [`Admin::fetch_offsets`] returns and [`Admin::commit_offsets`]
/// writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record (KIP-320), if known.
    pub leader_epoch: Option<i32>,
    /// Commit metadata string.
    pub metadata: Option<String>,
}

impl CommittedOffset {
    /// An offset with no leader epoch and empty metadata.
    #[must_use]
    pub fn new(offset: i64) -> Self {
        Self {
            offset,
            leader_epoch: None,
            metadata: None,
        }
    }
}

/// Which partitions [`Admin::fetch_offsets_multi`] asks about for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffsetsQuery {
    /// Group id.
    pub group: String,
    /// The partitions, or `None` for every partition with a committed offset.
    pub partitions: Option<Vec<TopicPartition>>,
}

/// What [`Admin::list_offsets`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    /// Log start offset (timestamp −2).
    Earliest,
    /// High watermark, or the last stable offset under read_committed (timestamp −1).
    Latest,
    /// Offset and timestamp of the record with the largest timestamp (−3, ListOffsets v7+,
    /// KIP-734).
    MaxTimestamp,
    /// First offset whose timestamp is ≥ this (ms since the epoch).
    Timestamp(i64),
}

impl OffsetQuery {
    fn wire_timestamp(self) -> i64 {
        match self {
            Self::Earliest => -2,
            Self::Latest => -1,
            Self::MaxTimestamp => -3,
            Self::Timestamp(t) => t,
        }
    }
}

impl From<OffsetSpec> for OffsetQuery {
    fn from(spec: OffsetSpec) -> Self {
        match spec {
            OffsetSpec::Earliest => Self::Earliest,
            OffsetSpec::Latest => Self::Latest,
            OffsetSpec::Timestamp(t) => Self::Timestamp(t),
        }
    }
}

/// An answer of [`Admin::list_offsets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListedOffset {
    /// The offset; −1 when no record matches (a timestamp past the last record, an empty
    /// partition with [`OffsetQuery::MaxTimestamp`]).
    pub offset: i64,
    /// The record's timestamp for timestamp queries, else `None`.
    pub timestamp: Option<i64>,
    /// Leader epoch of that offset (ListOffsets v4+), if known.
    pub leader_epoch: Option<i32>,
}

/// What [`Admin::describe_cluster`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterDescription {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Controller id as reported to clients (in KRaft a broker that forwards).
    pub controller_id: Option<i32>,
    /// Brokers, by id.
    pub brokers: Vec<BrokerInfo>,
}

/// A group's committed offsets by partition.
pub type GroupOffsets = BTreeMap<TopicPartition, CommittedOffset>;

/// Results per item of a multi-item call.
pub type ItemResults<K, T> = BTreeMap<K, Result<T, AdminError>>;

type Round<K, T> = Result<Vec<(K, Result<T, AdminError>)>, AdminError>;

// ---------------------------------------------------------------------------------------------
// helpers

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn tn(s: &str) -> TopicName {
    TopicName(sb(s))
}

fn msg(m: Option<StrBytes>) -> Option<String> {
    m.map(|m| m.to_string()).filter(|m| !m.is_empty())
}

fn non_negative(v: i32) -> Option<i32> {
    (v >= 0).then_some(v)
}

fn check_code(code: i16) -> Result<(), ErrorCode> {
    ErrorCode::check(code)
}

fn unsupported(conn: &BrokerConnection, what: impl Into<String>) -> AdminError {
    AdminError::Unsupported {
        broker: conn.broker().clone(),
        what: what.into(),
    }
}

fn group_by_topic<V: Clone>(items: &[(TopicPartition, V)]) -> BTreeMap<&str, Vec<(i32, V)>> {
    let mut out: BTreeMap<&str, Vec<(i32, V)>> = BTreeMap::new();
    for (tp, v) in items {
        out.entry(tp.topic.as_str())
            .or_default()
            .push((tp.partition, v.clone()));
    }
    out
}

/// Runs `round` over the pending keys until every key has a final result: keys whose
/// result is a retriable error are sent again after a backoff delay, others are done. A
/// retriable failure of a whole round retries every pending key; a non-retriable one
/// fails the call. Keys a response left out get [`AdminError::MissingResult`].
async fn retry_each<K, T, F, Fut>(
    backoff: &BackoffConfig,
    api: ApiKey,
    keys: Vec<K>,
    on_retry: impl Fn(&AdminError) + Send + Sync,
    mut round: F,
) -> Result<ItemResults<K, T>, AdminError>
where
    K: Ord + Clone + fmt::Debug + Send + Sync,
    T: Send,
    F: FnMut(Vec<K>) -> Fut + Send,
    Fut: Future<Output = Round<K, T>> + Send,
{
    let mut done: ItemResults<K, T> = BTreeMap::new();
    let mut pending: Vec<K> = keys
        .into_iter()
        .collect::<BTreeSet<K>>()
        .into_iter()
        .collect();
    let mut policy = backoff.start();
    while !pending.is_empty() {
        let mut again: Vec<(K, AdminError)> = Vec::new();
        let mut round_error = None;
        match round(pending.clone()).await {
            Ok(results) => {
                for (k, r) in results {
                    if !pending.contains(&k) || done.contains_key(&k) {
                        continue;
                    }
                    match r {
                        Err(e) if e.is_retriable() => {
                            on_retry(&e);
                            if !again.iter().any(|(a, _)| *a == k) {
                                again.push((k, e));
                            }
                        }
                        r => {
                            done.insert(k, r);
                        }
                    }
                }
                for k in &pending {
                    if !done.contains_key(k) && !again.iter().any(|(a, _)| a == k) {
                        done.insert(
                            k.clone(),
                            Err(AdminError::MissingResult {
                                api,
                                item: format!("{k:?}"),
                            }),
                        );
                    }
                }
            }
            Err(e) if e.is_retriable() => {
                on_retry(&e);
                again = pending.iter().map(|k| (k.clone(), e.clone())).collect();
                round_error = Some(e);
            }
            Err(e) => return Err(e),
        }
        if again.is_empty() {
            break;
        }
        match policy.next_delay() {
            Some(delay) => {
                tracing::debug!(
                    ?api,
                    items = again.len(),
                    ?delay,
                    "admin items failed; retrying"
                );
                tokio::time::sleep(delay).await;
                pending = again.into_iter().map(|(k, _)| k).collect();
            }
            None => {
                let exhausted = |e: AdminError| AdminError::RetriesExhausted {
                    attempts: policy.attempts(),
                    elapsed: policy.elapsed(),
                    last: Box::new(e),
                };
                if let Some(e) = round_error {
                    return Err(exhausted(e));
                }
                for (k, e) in again {
                    done.insert(k, Err(exhausted(e)));
                }
                break;
            }
        }
    }
    Ok(done)
}

/// The admin client. See the module docs.
#[derive(Debug, Clone)]
pub struct Admin {
    cluster: Cluster,
    backoff: BackoffConfig,
    operation_timeout: Duration,
}

impl Admin {
    /// An admin client on `cluster`, retrying per the cluster's backoff policy. The
    /// broker-side `timeout_ms` of topic and record operations defaults to three quarters of
    /// the request timeout, so the broker answers before the client gives up.
    #[must_use]
    pub fn new(cluster: Cluster) -> Self {
        let backoff = *cluster.config().backoff();
        let operation_timeout = cluster.config().request_timeout().mul_f64(0.75);
        Self {
            cluster,
            backoff,
            operation_timeout,
        }
    }

    /// Uses another retry policy.
    #[must_use]
    pub fn with_backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// The broker-side `timeout_ms` of CreateTopics, DeleteTopics, CreatePartitions and
    /// DeleteRecords (how long the controller or leader may wait for the change to apply).
    /// Keep it below the connection's request timeout.
    #[must_use]
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// The underlying cluster client.
    #[must_use]
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.operation_timeout.as_millis()).unwrap_or(i32::MAX)
    }

    fn before_retry(&self, err: &AdminError) {
        if err.needs_metadata_refresh() {
            self.cluster.mark_stale();
        }
    }

    /// Runs `op` until it succeeds, fails for good, or the backoff policy ends.
    async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T, AdminError>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T, AdminError>> + Send,
        T: Send,
    {
        let mut backoff = self.backoff.start();
        loop {
            let err = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !err.is_retriable() {
                return Err(err);
            }
            self.before_retry(&err);
            match backoff.next_delay() {
                Some(delay) => {
                    tracing::debug!(error = %err, ?delay, "admin call failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                None => {
                    return Err(AdminError::RetriesExhausted {
                        attempts: backoff.attempts(),
                        elapsed: backoff.elapsed(),
                        last: Box::new(err),
                    });
                }
            }
        }
    }

    async fn retry_each<K, T, F, Fut>(
        &self,
        api: ApiKey,
        keys: Vec<K>,
        round: F,
    ) -> Result<ItemResults<K, T>, AdminError>
    where
        K: Ord + Clone + fmt::Debug + Send + Sync,
        T: Send,
        F: FnMut(Vec<K>) -> Fut + Send,
        Fut: Future<Output = Round<K, T>> + Send,
    {
        retry_each(&self.backoff, api, keys, |e| self.before_retry(e), round).await
    }

    /// The controller's connection (Metadata's `controller_id`, refreshed when unknown).
    async fn controller(&self) -> Result<BrokerConnection, AdminError> {
        let id = match self.cluster.metadata().controller_id {
            Some(id) if !self.cluster.is_stale() => id,
            _ => self
                .cluster
                .refresh_metadata(TopicSelection::None)
                .await?
                .controller_id
                .ok_or(ClientError::UnknownBroker { broker_id: -1 })?,
        };
        Ok(self.cluster.broker(id).await?)
    }

    async fn send<R: KafkaRequest>(
        conn: &BrokerConnection,
        req: &R,
        version: i16,
    ) -> Result<R::Response, AdminError> {
        Ok(conn.send_at(req, version).await?)
    }

    // -----------------------------------------------------------------------------------------
    // cluster

    /// Cluster id, controller and brokers: DescribeCluster (2.8+, KIP-700), else Metadata.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, AdminError> {
        self.retry(|| self.describe_cluster_once()).await
    }

    async fn describe_cluster_once(&self) -> Result<ClusterDescription, AdminError> {
        let conn = self.cluster.any_broker().await?;
        let Ok(version) = conn.version(ApiKey::DescribeCluster) else {
            let md = self.cluster.refresh_metadata(TopicSelection::None).await?;
            return Ok(ClusterDescription {
                cluster_id: md.cluster_id.clone(),
                controller_id: md.controller_id,
                brokers: md.brokers.values().cloned().collect(),
            });
        };
        let resp = Self::send(&conn, &DescribeClusterRequest::default(), version).await?;
        check_code(resp.error_code).map_err(|code| {
            conn.broker_error(
                ApiKey::DescribeCluster,
                code,
                msg(resp.error_message.clone()),
            )
        })?;
        let mut brokers: Vec<BrokerInfo> = resp
            .brokers
            .iter()
            .map(|b| BrokerInfo {
                id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.as_ref().map(ToString::to_string),
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        Ok(ClusterDescription {
            cluster_id: Some(resp.cluster_id.to_string()).filter(|c| !c.is_empty()),
            controller_id: non_negative(resp.controller_id.0),
            brokers,
        })
    }

    // -----------------------------------------------------------------------------------------
    // topics

    /// Every topic visible to the principal (Metadata for all topics), sorted by name;
    /// internal topics only when `include_internal`. Also refreshes the cluster's metadata
    /// cache with every topic.
    pub async fn list_topics(
        &self,
        include_internal: bool,
    ) -> Result<Vec<TopicListing>, AdminError> {
        let md = self.cluster.refresh_metadata(TopicSelection::All).await?;
        Ok(md
            .topics
            .values()
            .filter(|t| include_internal || !t.is_internal)
            .map(|t| TopicListing {
                name: t.name.clone(),
                topic_id: t.id,
                is_internal: t.is_internal,
                partitions: t.partitions.len(),
            })
            .collect())
    }

    /// Describes topics: partitions, leaders, replicas, ISR, topic id, and with
    /// `include_configs` every config entry (with synonyms). A topic that does not exist
    /// gets an [`AdminError::Topic`] with UNKNOWN_TOPIC_OR_PARTITION.
    pub async fn describe_topics(
        &self,
        topics: &[impl AsRef<str> + Sync],
        include_configs: bool,
    ) -> Result<ItemResults<String, TopicDescription>, AdminError> {
        let names: Vec<String> = topics.iter().map(|t| t.as_ref().to_owned()).collect();
        let mut out = self
            .retry_each(ApiKey::Metadata, names, |pending| {
                self.describe_topics_round(pending)
            })
            .await?;
        if include_configs {
            let resources: Vec<ConfigResource> = out
                .iter()
                .filter(|(_, r)| r.is_ok())
                .map(|(name, _)| ConfigResource::topic(name.clone()))
                .collect();
            if !resources.is_empty() {
                let mut configs = self.describe_configs(&resources, true).await?;
                for (name, result) in &mut out {
                    let Ok(description) = result else { continue };
                    match configs.remove(&ConfigResource::topic(name.clone())) {
                        Some(Ok(entries)) => description.configs = Some(entries),
                        Some(Err(e)) => *result = Err(e),
                        None => {
                            *result = Err(AdminError::MissingResult {
                                api: ApiKey::DescribeConfigs,
                                item: name.clone(),
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    async fn describe_topics_round(&self, pending: Vec<String>) -> Round<String, TopicDescription> {
        let conn = self.cluster.any_broker().await?;
        let version = conn.version(ApiKey::Metadata)?;
        let mut req = MetadataRequest::default().with_topics(Some(
            pending
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(tn(n))))
                .collect(),
        ));
        if version >= 4 {
            req.allow_auto_topic_creation = false;
        }
        let resp = Self::send(&conn, &req, version).await?;
        Ok(parse_metadata_topics(resp))
    }

    /// Creates topics (CreateTopics to the controller). `validate_only` asks the controller to
    /// check the request without creating anything. Per topic: [`CreatedTopic`], or an error;
    /// [`AdminError::is_topic_already_exists`] tells TOPIC_ALREADY_EXISTS apart. A topic whose
    /// request timed out is sent again, so a later TOPIC_ALREADY_EXISTS may mean "created by
    /// the earlier attempt".
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<ItemResults<String, CreatedTopic>, AdminError> {
        let mut specs = BTreeMap::new();
        for t in topics {
            t.validate()?;
            if specs.insert(t.name.clone(), t.clone()).is_some() {
                return Err(AdminError::InvalidInput {
                    message: format!("topic {} listed twice", t.name),
                });
            }
        }
        let names: Vec<String> = specs.keys().cloned().collect();
        self.retry_each(ApiKey::CreateTopics, names, |pending| {
            self.create_topics_round(pending, &specs, validate_only)
        })
        .await
    }

    async fn create_topics_round(
        &self,
        pending: Vec<String>,
        specs: &BTreeMap<String, NewTopic>,
        validate_only: bool,
    ) -> Round<String, CreatedTopic> {
        let conn = self.controller().await?;
        let version = conn.version(ApiKey::CreateTopics)?;
        let mut creatable = Vec::new();
        for name in &pending {
            let Some(t) = specs.get(name) else { continue };
            if version < 4 && (t.partitions == -1 || t.replication_factor == -1) {
                return Err(unsupported(
                    &conn,
                    "broker-default partitions or replication factor (CreateTopics v4+, KIP-464)",
                ));
            }
            creatable.push(
                CreatableTopic::default()
                    .with_name(tn(&t.name))
                    .with_num_partitions(t.partitions)
                    .with_replication_factor(t.replication_factor)
                    .with_configs(
                        t.configs
                            .iter()
                            .map(|(k, v)| {
                                CreatableTopicConfig::default()
                                    .with_name(sb(k))
                                    .with_value(Some(sb(v)))
                            })
                            .collect(),
                    ),
            );
        }
        let req = CreateTopicsRequest::default()
            .with_topics(creatable)
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(validate_only);
        let resp = Self::send(&conn, &req, version).await?;
        Ok(parse_create_topics(resp, version))
    }

    /// Deletes topics (DeleteTopics to the controller).
    pub async fn delete_topics(
        &self,
        topics: &[impl AsRef<str> + Sync],
    ) -> Result<ItemResults<String, ()>, AdminError> {
        let names: Vec<String> = topics.iter().map(|t| t.as_ref().to_owned()).collect();
        let out = self
            .retry_each(ApiKey::DeleteTopics, names, |pending| {
                self.delete_topics_round(pending)
            })
            .await?;
        self.cluster.mark_stale();
        Ok(out)
    }

    async fn delete_topics_round(&self, pending: Vec<String>) -> Round<String, ()> {
        let conn = self.controller().await?;
        let version = conn.version(ApiKey::DeleteTopics)?;
        let mut req = DeleteTopicsRequest::default().with_timeout_ms(self.timeout_ms());
        if version >= 6 {
            req.topics = pending
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(tn(n))))
                .collect();
        } else {
            req.topic_names = pending.iter().map(|n| tn(n)).collect();
        }
        let resp: DeleteTopicsResponse = Self::send(&conn, &req, version).await?;
        Ok(resp
            .responses
            .into_iter()
            .filter_map(|r| {
                let name = r.name?.0.to_string();
                let result = check_code(r.error_code).map_err(|code| AdminError::Topic {
                    api: ApiKey::DeleteTopics,
                    topic: name.clone(),
                    code,
                    message: msg(r.error_message),
                });
                Some((name, result))
            })
            .collect())
    }

    /// Grows topics to the given total partition counts (CreatePartitions to the
    /// controller); new partitions are placed by the broker.
    pub async fn create_partitions(
        &self,
        totals: &BTreeMap<String, i32>,
        validate_only: bool,
    ) -> Result<ItemResults<String, ()>, AdminError> {
        if let Some((t, n)) = totals.iter().find(|(_, n)| **n <= 0) {
            return Err(AdminError::InvalidInput {
                message: format!("topic {t}: partition count must be positive, not {n}"),
            });
        }
        let names: Vec<String> = totals.keys().cloned().collect();
        let out = self
            .retry_each(ApiKey::CreatePartitions, names, |pending| {
                self.create_partitions_round(pending, totals, validate_only)
            })
            .await?;
        self.cluster.mark_stale();
        Ok(out)
    }

    async fn create_partitions_round(
        &self,
        pending: Vec<String>,
        totals: &BTreeMap<String, i32>,
        validate_only: bool,
    ) -> Round<String, ()> {
        let conn = self.controller().await?;
        let version = conn.version(ApiKey::CreatePartitions)?;
        let req = CreatePartitionsRequest::default()
            .with_topics(
                pending
                    .iter()
                    .filter_map(|n| {
                        let count = *totals.get(n)?;
                        // No assignments: null, not an empty list (which the controller
                        // would read as "zero assignments for the new partitions").
                        Some(
                            CreatePartitionsTopic::default()
                                .with_name(tn(n))
                                .with_count(count)
                                .with_assignments(None),
                        )
                    })
                    .collect(),
            )
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(validate_only);
        let resp: CreatePartitionsResponse = Self::send(&conn, &req, version).await?;
        Ok(resp
            .results
            .into_iter()
            .map(|r| {
                let name = r.name.0.to_string();
                let result = check_code(r.error_code).map_err(|code| AdminError::Topic {
                    api: ApiKey::CreatePartitions,
                    topic: name.clone(),
                    code,
                    message: msg(r.error_message),
                });
                (name, result)
            })
            .collect())
    }

    // -----------------------------------------------------------------------------------------
    // configs

    /// Describes config resources (topics, brokers, ...). With `include_synonyms` every entry
    /// lists the same setting at the other levels, so a config sync can tell a topic
    /// override from an inherited broker value.
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
        include_synonyms: bool,
    ) -> Result<ItemResults<ConfigResource, Vec<ConfigEntry>>, AdminError> {
        self.retry_each(ApiKey::DescribeConfigs, resources.to_vec(), |pending| {
            self.describe_configs_round(pending, include_synonyms)
        })
        .await
    }

    async fn config_destinations(
        &self,
        pending: Vec<ConfigResource>,
    ) -> Result<Vec<(BrokerConnection, Vec<ConfigResource>)>, AdminError> {
        let mut by_target: BTreeMap<Option<i32>, Vec<ConfigResource>> = BTreeMap::new();
        for r in pending {
            by_target.entry(r.target_broker()).or_default().push(r);
        }
        let mut out = Vec::new();
        for (target, resources) in by_target {
            let conn = match target {
                Some(id) => {
                    if !self.cluster.metadata().brokers.contains_key(&id) {
                        self.cluster.refresh_metadata(TopicSelection::None).await?;
                    }
                    self.cluster.broker(id).await?
                }
                None => self.cluster.any_broker().await?,
            };
            out.push((conn, resources));
        }
        Ok(out)
    }

    async fn describe_configs_round(
        &self,
        pending: Vec<ConfigResource>,
        include_synonyms: bool,
    ) -> Round<ConfigResource, Vec<ConfigEntry>> {
        let mut out = Vec::new();
        for (conn, resources) in self.config_destinations(pending).await? {
            let version = conn.version(ApiKey::DescribeConfigs)?;
            let req = DescribeConfigsRequest::default()
                .with_resources(
                    resources
                        .iter()
                        .map(|r| {
                            DescribeConfigsResource::default()
                                .with_resource_type(r.kind.to_wire())
                                .with_resource_name(sb(&r.name))
                                .with_configuration_keys(None)
                        })
                        .collect(),
                )
                .with_include_synonyms(include_synonyms);
            match Self::send(&conn, &req, version).await {
                Ok(resp) => out.extend(parse_describe_configs(resp)),
                // One destination's failure is reported for its resources only.
                Err(e) => out.extend(resources.into_iter().map(|r| (r, Err(e.clone())))),
            }
        }
        Ok(out)
    }

    /// Changes configs with IncrementalAlterConfigs (SET / DELETE / APPEND / SUBTRACT, KIP-339);
    /// `validate_only` checks without applying. Per resource: `Ok(())` or the broker's error
    /// and message.
    pub async fn incremental_alter_configs(
        &self,
        changes: &BTreeMap<ConfigResource, Vec<AlterConfigOp>>,
        validate_only: bool,
    ) -> Result<ItemResults<ConfigResource, ()>, AdminError> {
        for (resource, ops) in changes {
            if let Some(op) = ops.iter().find(|op| {
                matches!(op.op, AlterConfigOpType::Unknown(_))
                    || (op.op != AlterConfigOpType::Delete && op.value.is_none())
            }) {
                return Err(AdminError::InvalidInput {
                    message: format!("{resource}: {op:?} needs a known operation and a value"),
                });
            }
        }
        let keys: Vec<ConfigResource> = changes.keys().cloned().collect();
        self.retry_each(ApiKey::IncrementalAlterConfigs, keys, |pending| {
            self.alter_configs_round(pending, changes, validate_only)
        })
        .await
    }

    async fn alter_configs_round(
        &self,
        pending: Vec<ConfigResource>,
        changes: &BTreeMap<ConfigResource, Vec<AlterConfigOp>>,
        validate_only: bool,
    ) -> Round<ConfigResource, ()> {
        let mut out = Vec::new();
        for (conn, resources) in self.config_destinations(pending).await? {
            let version = conn.version(ApiKey::IncrementalAlterConfigs)?;
            let req = IncrementalAlterConfigsRequest::default()
                .with_resources(
                    resources
                        .iter()
                        .map(|r| {
                            AlterConfigsResource::default()
                                .with_resource_type(r.kind.to_wire())
                                .with_resource_name(sb(&r.name))
                                .with_configs(
                                    changes
                                        .get(r)
                                        .map(|ops| {
                                            ops.iter()
                                                .map(|op| {
                                                    AlterableConfig::default()
                                                        .with_name(sb(&op.name))
                                                        .with_config_operation(op.op.to_wire())
                                                        .with_value(op.value.as_deref().map(sb))
                                                })
                                                .collect()
                                        })
                                        .unwrap_or_default(),
                                )
                        })
                        .collect(),
                )
                .with_validate_only(validate_only);
            match Self::send(&conn, &req, version).await {
                Ok(resp) => out.extend(parse_alter_configs(resp)),
                Err(e) => out.extend(resources.into_iter().map(|r| (r, Err(e.clone())))),
            }
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------------
    // ACLs

    /// ACL bindings matching `filter` (DescribeAcls to any broker). SECURITY_DISABLED (no
    /// authorizer) comes back as [`AdminError::Acl`].
    pub async fn describe_acls(
        &self,
        filter: &AclBindingFilter,
    ) -> Result<Vec<AclBinding>, AdminError> {
        self.retry(|| self.describe_acls_once(filter)).await
    }

    async fn describe_acls_once(
        &self,
        f: &AclBindingFilter,
    ) -> Result<Vec<AclBinding>, AdminError> {
        let conn = self.cluster.any_broker().await?;
        let version = conn.version(ApiKey::DescribeAcls)?;
        let req = DescribeAclsRequest::default()
            .with_resource_type_filter(f.resource_type.to_wire())
            .with_resource_name_filter(f.resource_name.as_deref().map(sb))
            .with_pattern_type_filter(f.pattern_type.to_wire())
            .with_principal_filter(f.principal.as_deref().map(sb))
            .with_host_filter(f.host.as_deref().map(sb))
            .with_operation(f.operation.to_wire())
            .with_permission_type(f.permission.to_wire());
        let resp: DescribeAclsResponse = Self::send(&conn, &req, version).await?;
        check_code(resp.error_code).map_err(|code| AdminError::Acl {
            api: ApiKey::DescribeAcls,
            code,
            message: msg(resp.error_message.clone()),
        })?;
        let mut out = Vec::new();
        for r in resp.resources {
            for a in r.acls {
                out.push(AclBinding {
                    resource_type: AclResourceType::from_wire(r.resource_type),
                    resource_name: r.resource_name.to_string(),
                    pattern_type: AclPatternType::from_wire(r.pattern_type),
                    principal: a.principal.to_string(),
                    host: a.host.to_string(),
                    operation: AclOperation::from_wire(a.operation),
                    permission: AclPermission::from_wire(a.permission_type),
                });
            }
        }
        out.sort();
        Ok(out)
    }

    /// Creates ACL bindings (CreateAcls to the controller); one result per binding, in
    /// order. Creating an existing binding succeeds.
    pub async fn create_acls(
        &self,
        bindings: &[AclBinding],
    ) -> Result<Vec<Result<(), AdminError>>, AdminError> {
        for b in bindings {
            b.validate()?;
        }
        let indices: Vec<usize> = (0..bindings.len()).collect();
        let results = self
            .retry_each(ApiKey::CreateAcls, indices, |pending| {
                self.create_acls_round(pending, bindings)
            })
            .await?;
        Ok(results.into_values().collect())
    }

    async fn create_acls_round(
        &self,
        pending: Vec<usize>,
        bindings: &[AclBinding],
    ) -> Round<usize, ()> {
        let conn = self.controller().await?;
        let version = conn.version(ApiKey::CreateAcls)?;
        let creations = pending
            .iter()
            .filter_map(|&i| bindings.get(i))
            .map(|b| {
                AclCreation::default()
                    .with_resource_type(b.resource_type.to_wire())
                    .with_resource_name(sb(&b.resource_name))
                    .with_resource_pattern_type(b.pattern_type.to_wire())
                    .with_principal(sb(&b.principal))
                    .with_host(sb(&b.host))
                    .with_operation(b.operation.to_wire())
                    .with_permission_type(b.permission.to_wire())
            })
            .collect();
        let req = CreateAclsRequest::default().with_creations(creations);
        let resp: CreateAclsResponse = Self::send(&conn, &req, version).await?;
        Ok(pending
            .into_iter()
            .zip(resp.results)
            .map(|(i, r)| {
                let result = check_code(r.error_code).map_err(|code| AdminError::Acl {
                    api: ApiKey::CreateAcls,
                    code,
                    message: msg(r.error_message),
                });
                (i, result)
            })
            .collect())
    }

    /// Deletes the ACL bindings matching each filter (DeleteAcls to the controller); per
    /// filter, in order, the bindings deleted.
    pub async fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<Result<Vec<AclBinding>, AdminError>>, AdminError> {
        let indices: Vec<usize> = (0..filters.len()).collect();
        let results = self
            .retry_each(ApiKey::DeleteAcls, indices, |pending| {
                self.delete_acls_round(pending, filters)
            })
            .await?;
        Ok(results.into_values().collect())
    }

    async fn delete_acls_round(
        &self,
        pending: Vec<usize>,
        filters: &[AclBindingFilter],
    ) -> Round<usize, Vec<AclBinding>> {
        let conn = self.controller().await?;
        let version = conn.version(ApiKey::DeleteAcls)?;
        let req = DeleteAclsRequest::default().with_filters(
            pending
                .iter()
                .filter_map(|&i| filters.get(i))
                .map(|f| {
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(f.resource_type.to_wire())
                        .with_resource_name_filter(f.resource_name.as_deref().map(sb))
                        .with_pattern_type_filter(f.pattern_type.to_wire())
                        .with_principal_filter(f.principal.as_deref().map(sb))
                        .with_host_filter(f.host.as_deref().map(sb))
                        .with_operation(f.operation.to_wire())
                        .with_permission_type(f.permission.to_wire())
                })
                .collect(),
        );
        let resp: DeleteAclsResponse = Self::send(&conn, &req, version).await?;
        Ok(pending
            .into_iter()
            .zip(resp.filter_results)
            .map(|(i, r)| (i, parse_delete_acls_filter(r)))
            .collect())
    }

    // -----------------------------------------------------------------------------------------
    // groups

    /// Lists groups on every broker (ListGroups). `states` filters by state on the broker
    /// (ListGroups v4+, KIP-518); an empty slice lists all. Sorted by group id.
    pub async fn list_groups(
        &self,
        states: &[GroupState],
    ) -> Result<Vec<GroupListing>, AdminError> {
        let md = self.cluster.refresh_metadata(TopicSelection::None).await?;
        let ids: Vec<i32> = md.brokers.keys().copied().collect();
        let per_broker = self
            .retry_each(ApiKey::ListGroups, ids, |pending| {
                self.list_groups_round(pending, states)
            })
            .await?;
        let mut out = Vec::new();
        for (_, result) in per_broker {
            out.extend(result?);
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    async fn list_groups_round(
        &self,
        pending: Vec<i32>,
        states: &[GroupState],
    ) -> Round<i32, Vec<GroupListing>> {
        let mut out = Vec::new();
        for id in pending {
            let result = async {
                let conn = self.cluster.broker(id).await?;
                let version = conn.version(ApiKey::ListGroups)?;
                let mut req = ListGroupsRequest::default();
                if !states.is_empty() {
                    if version < 4 {
                        return Err(unsupported(
                            &conn,
                            "ListGroups states filter (v4+, KIP-518)",
                        ));
                    }
                    req.states_filter = states.iter().map(|s| sb(s.as_str())).collect();
                }
                let resp: ListGroupsResponse = Self::send(&conn, &req, version).await?;
                check_code(resp.error_code)
                    .map_err(|code| conn.broker_error(ApiKey::ListGroups, code, None))?;
                Ok(resp
                    .groups
                    .into_iter()
                    .map(|g| GroupListing {
                        group_id: g.group_id.0.to_string(),
                        protocol_type: g.protocol_type.to_string(),
                        state: (version >= 4).then(|| GroupState::parse(&g.group_state)),
                        group_type: (version >= 5).then(|| g.group_type.to_string()),
                        coordinator: id,
                    })
                    .collect())
            }
            .await;
            out.push((id, result));
        }
        Ok(out)
    }

    /// Groups the keys by their coordinator; FindCoordinator failures are item results.
    async fn by_coordinator(
        &self,
        groups: Vec<String>,
    ) -> (
        BTreeMap<i32, (BrokerConnection, Vec<String>)>,
        Vec<(String, AdminError)>,
    ) {
        let mut by_broker: BTreeMap<i32, (BrokerConnection, Vec<String>)> = BTreeMap::new();
        let mut failed = Vec::new();
        for g in groups {
            match self.cluster.coordinator(CoordinatorType::Group, &g).await {
                Ok(conn) => {
                    let id = conn.broker().id.unwrap_or(-1);
                    by_broker
                        .entry(id)
                        .or_insert_with(|| (conn, Vec::new()))
                        .1
                        .push(g);
                }
                Err(e) => failed.push((g, AdminError::from(e))),
            }
        }
        (by_broker, failed)
    }

    /// Describes groups (DescribeGroups to each group's coordinator): state, protocol and
    /// members. A group that does not exist is reported in state [`GroupState::Dead`] (or
    /// GROUP_ID_NOT_FOUND by newer brokers).
    pub async fn describe_groups(
        &self,
        groups: &[impl AsRef<str> + Sync],
    ) -> Result<ItemResults<String, GroupDescription>, AdminError> {
        let names: Vec<String> = groups.iter().map(|g| g.as_ref().to_owned()).collect();
        self.retry_each(ApiKey::DescribeGroups, names, |pending| {
            self.describe_groups_round(pending)
        })
        .await
    }

    async fn describe_groups_round(&self, pending: Vec<String>) -> Round<String, GroupDescription> {
        let (by_broker, failed) = self.by_coordinator(pending).await;
        let mut out: Vec<(String, Result<GroupDescription, AdminError>)> =
            failed.into_iter().map(|(g, e)| (g, Err(e))).collect();
        for (id, (conn, groups)) in by_broker {
            let result = async {
                let version = conn.version(ApiKey::DescribeGroups)?;
                let req = DescribeGroupsRequest::default()
                    .with_groups(groups.iter().map(|g| GroupId(sb(g))).collect());
                Self::send(&conn, &req, version).await
            }
            .await;
            match result {
                Ok(resp) => out.extend(parse_describe_groups(resp, id)),
                Err(e) => out.extend(groups.into_iter().map(|g| (g, Err(e.clone())))),
            }
        }
        Ok(out)
    }

    /// Committed offsets of one group (OffsetFetch to its coordinator), for `partitions` or,
    /// with `None`, every partition the group has committed. Partitions without a committed
    /// offset are left out. `require_stable` (OffsetFetch v7+, KIP-447) makes the coordinator
    /// answer UNSTABLE_OFFSET_COMMIT while a transaction holds pending offsets for the group;
    /// that is retried until the transaction ends.
    pub async fn fetch_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
        require_stable: bool,
    ) -> Result<GroupOffsets, AdminError> {
        let query = GroupOffsetsQuery {
            group: group.to_owned(),
            partitions: partitions.map(<[TopicPartition]>::to_vec),
        };
        let mut all = self.fetch_offsets_multi(&[query], require_stable).await?;
        all.remove(group).unwrap_or_else(|| {
            Err(AdminError::MissingResult {
                api: ApiKey::OffsetFetch,
                item: group.to_owned(),
            })
        })
    }

    /// Committed offsets of several groups. Groups sharing a coordinator go in one request
    /// when it speaks OffsetFetch v8+ (KIP-709), else one request per group.
    pub async fn fetch_offsets_multi(
        &self,
        queries: &[GroupOffsetsQuery],
        require_stable: bool,
    ) -> Result<ItemResults<String, BTreeMap<TopicPartition, CommittedOffset>>, AdminError> {
        let mut by_group = BTreeMap::new();
        for q in queries {
            if by_group
                .insert(q.group.clone(), q.partitions.clone())
                .is_some()
            {
                return Err(AdminError::InvalidInput {
                    message: format!("group {} listed twice", q.group),
                });
            }
        }
        let names: Vec<String> = by_group.keys().cloned().collect();
        self.retry_each(ApiKey::OffsetFetch, names, |pending| {
            self.fetch_offsets_round(pending, &by_group, require_stable)
        })
        .await
    }

    async fn fetch_offsets_round(
        &self,
        pending: Vec<String>,
        queries: &BTreeMap<String, Option<Vec<TopicPartition>>>,
        require_stable: bool,
    ) -> Round<String, BTreeMap<TopicPartition, CommittedOffset>> {
        let (by_broker, failed) = self.by_coordinator(pending).await;
        let mut out: Vec<(String, Result<GroupOffsets, AdminError>)> =
            failed.into_iter().map(|(g, e)| (g, Err(e))).collect();
        for (_, (conn, groups)) in by_broker {
            let version = match conn.version(ApiKey::OffsetFetch) {
                Ok(v) => v,
                Err(e) => {
                    out.extend(
                        groups
                            .into_iter()
                            .map(|g| (g, Err(AdminError::from(e.clone())))),
                    );
                    continue;
                }
            };
            if require_stable && version < 7 {
                let e = unsupported(&conn, "OffsetFetch require_stable (v7+, KIP-447)");
                out.extend(groups.into_iter().map(|g| (g, Err(e.clone()))));
                continue;
            }
            let query = |g: &String| queries.get(g).cloned().flatten();
            if version >= 8 {
                let req = OffsetFetchRequest::default()
                    .with_groups(
                        groups
                            .iter()
                            .map(|g| {
                                OffsetFetchRequestGroup::default()
                                    .with_group_id(GroupId(sb(g)))
                                    .with_topics(query(g).map(|tps| {
                                        group_by_topic(
                                            &tps.into_iter().map(|tp| (tp, ())).collect::<Vec<_>>(),
                                        )
                                        .into_iter()
                                        .map(|(t, ps)| {
                                            OffsetFetchRequestTopics::default()
                                                .with_name(tn(t))
                                                .with_partition_indexes(
                                                    ps.into_iter().map(|(p, ())| p).collect(),
                                                )
                                        })
                                        .collect()
                                    }))
                            })
                            .collect(),
                    )
                    .with_require_stable(require_stable);
                match Self::send(&conn, &req, version).await {
                    Ok(resp) => out.extend(parse_offset_fetch_multi(resp)),
                    Err(e) => out.extend(groups.into_iter().map(|g| (g, Err(e.clone())))),
                }
            } else {
                for g in groups {
                    let tps = query(&g);
                    if tps.is_none() && version < 2 {
                        out.push((
                            g,
                            Err(unsupported(&conn, "OffsetFetch of all partitions (v2+)")),
                        ));
                        continue;
                    }
                    let mut req = OffsetFetchRequest::default()
                        .with_group_id(GroupId(sb(&g)))
                        .with_topics(tps.map(|tps| {
                            group_by_topic(&tps.into_iter().map(|tp| (tp, ())).collect::<Vec<_>>())
                                .into_iter()
                                .map(|(t, ps)| {
                                    OffsetFetchRequestTopic::default()
                                        .with_name(tn(t))
                                        .with_partition_indexes(
                                            ps.into_iter().map(|(p, ())| p).collect(),
                                        )
                                })
                                .collect()
                        }));
                    if version >= 7 {
                        req.require_stable = require_stable;
                    }
                    let result = match Self::send(&conn, &req, version).await {
                        Ok(resp) => parse_offset_fetch_single(&g, resp, version),
                        Err(e) => Err(e),
                    };
                    out.push((g, result));
                }
            }
        }
        Ok(out)
    }

    /// Commits offsets to a group as an admin (OffsetCommit with generation −1 and an empty
    /// member id). Works only while the group has no members; otherwise fails with
    /// [`AdminError::GroupActive`]. Any partition error fails the call (the first one is
    /// returned; a committed subset is possible).
    pub async fn commit_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, CommittedOffset>,
    ) -> Result<(), AdminError> {
        if offsets.is_empty() {
            return Ok(());
        }
        self.retry(|| self.commit_offsets_once(group, offsets))
            .await
    }

    async fn commit_offsets_once(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, CommittedOffset>,
    ) -> Result<(), AdminError> {
        let conn = self
            .cluster
            .coordinator(CoordinatorType::Group, group)
            .await?;
        let version = conn.version(ApiKey::OffsetCommit)?;
        let items: Vec<(TopicPartition, CommittedOffset)> = offsets
            .iter()
            .map(|(tp, o)| (tp.clone(), o.clone()))
            .collect();
        let topics = group_by_topic(&items)
            .into_iter()
            .map(|(t, ps)| {
                OffsetCommitRequestTopic::default()
                    .with_name(tn(t))
                    .with_partitions(
                        ps.into_iter()
                            .map(|(p, o)| {
                                let mut part = OffsetCommitRequestPartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(o.offset)
                                    .with_committed_metadata(Some(sb(o
                                        .metadata
                                        .as_deref()
                                        .unwrap_or(""))));
                                if version >= 6 {
                                    part.committed_leader_epoch = o.leader_epoch.unwrap_or(-1);
                                }
                                part
                            })
                            .collect(),
                    )
            })
            .collect();
        // Generation -1 and an empty member id: an admin ("simple") commit.
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(sb(""))
            .with_topics(topics);
        let resp: OffsetCommitResponse = Self::send(&conn, &req, version).await?;
        check_offset_commit(group, resp)
    }

    /// Deletes groups (DeleteGroups to each coordinator). A group with members fails with
    /// [`AdminError::GroupActive`] (NON_EMPTY_GROUP).
    pub async fn delete_groups(
        &self,
        groups: &[impl AsRef<str> + Sync],
    ) -> Result<ItemResults<String, ()>, AdminError> {
        let names: Vec<String> = groups.iter().map(|g| g.as_ref().to_owned()).collect();
        self.retry_each(ApiKey::DeleteGroups, names, |pending| {
            self.delete_groups_round(pending)
        })
        .await
    }

    async fn delete_groups_round(&self, pending: Vec<String>) -> Round<String, ()> {
        let (by_broker, failed) = self.by_coordinator(pending).await;
        let mut out: Vec<(String, Result<(), AdminError>)> =
            failed.into_iter().map(|(g, e)| (g, Err(e))).collect();
        for (_, (conn, groups)) in by_broker {
            let result = async {
                let version = conn.version(ApiKey::DeleteGroups)?;
                let req = DeleteGroupsRequest::default()
                    .with_groups_names(groups.iter().map(|g| GroupId(sb(g))).collect());
                Self::send(&conn, &req, version).await
            }
            .await;
            match result {
                Ok(resp) => out.extend(parse_delete_groups(resp)),
                Err(e) => out.extend(groups.into_iter().map(|g| (g, Err(e.clone())))),
            }
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------------
    // offsets and records

    /// Looks offsets up with ListOffsets, each partition at its leader. With
    /// [`IsolationLevel::ReadCommitted`], [`OffsetQuery::Latest`] is the last stable offset.
    ///
    /// [`crate::Cluster::list_offsets`] covers one topic with earliest/latest/timestamp and
    /// returns offsets only; this call adds [`OffsetQuery::MaxTimestamp`], several topics,
    /// the matched timestamp and leader epoch, and per-partition results.
    pub async fn list_offsets(
        &self,
        queries: &BTreeMap<TopicPartition, OffsetQuery>,
        isolation: IsolationLevel,
    ) -> Result<ItemResults<TopicPartition, ListedOffset>, AdminError> {
        let keys: Vec<TopicPartition> = queries.keys().cloned().collect();
        self.retry_each(ApiKey::ListOffsets, keys, |pending| {
            self.list_offsets_round(pending, queries, isolation)
        })
        .await
    }

    /// Leaders (and leader epochs) of the pending partitions, refreshing metadata when stale
    /// or incomplete; partitions without a usable leader are item errors.
    async fn by_leader<V: Clone>(
        &self,
        pending: Vec<(TopicPartition, V)>,
    ) -> Result<
        (
            BTreeMap<i32, Vec<(TopicPartition, i32, V)>>,
            Vec<(TopicPartition, AdminError)>,
        ),
        AdminError,
    > {
        let topics: Vec<String> = pending
            .iter()
            .map(|(tp, _)| tp.topic.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let md = self.cluster.ensure_topics(&topics).await?;
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i32, V)>> = BTreeMap::new();
        let mut failed = Vec::new();
        for (tp, v) in pending {
            match md.leader(&tp.topic, tp.partition) {
                Ok((leader, epoch)) => by_leader.entry(leader).or_default().push((tp, epoch, v)),
                Err(e) => failed.push((tp, AdminError::from(e))),
            }
        }
        Ok((by_leader, failed))
    }

    async fn list_offsets_round(
        &self,
        pending: Vec<TopicPartition>,
        queries: &BTreeMap<TopicPartition, OffsetQuery>,
        isolation: IsolationLevel,
    ) -> Round<TopicPartition, ListedOffset> {
        let items: Vec<(TopicPartition, OffsetQuery)> = pending
            .into_iter()
            .filter_map(|tp| queries.get(&tp).map(|q| (tp, *q)))
            .collect();
        let (by_leader, failed) = self.by_leader(items).await?;
        let mut out: Vec<(TopicPartition, Result<ListedOffset, AdminError>)> =
            failed.into_iter().map(|(tp, e)| (tp, Err(e))).collect();
        for (leader, parts) in by_leader {
            let conn = match self.cluster.broker(leader).await {
                Ok(c) => c,
                Err(e) => {
                    let e = AdminError::from(e);
                    out.extend(parts.into_iter().map(|(tp, _, _)| (tp, Err(e.clone()))));
                    continue;
                }
            };
            let version = match conn.version(ApiKey::ListOffsets) {
                Ok(v) => v,
                Err(e) => {
                    let e = AdminError::from(e);
                    out.extend(parts.into_iter().map(|(tp, _, _)| (tp, Err(e.clone()))));
                    continue;
                }
            };
            let mut send = Vec::new();
            for (tp, epoch, q) in parts {
                if q == OffsetQuery::MaxTimestamp && version < 7 {
                    out.push((
                        tp,
                        Err(unsupported(
                            &conn,
                            "max-timestamp ListOffsets (v7+, KIP-734)",
                        )),
                    ));
                } else {
                    send.push((tp, (epoch, q)));
                }
            }
            if send.is_empty() {
                continue;
            }
            let topics = group_by_topic(&send)
                .into_iter()
                .map(|(t, ps)| {
                    ListOffsetsTopic::default()
                        .with_name(tn(t))
                        .with_partitions(
                            ps.into_iter()
                                .map(|(p, (epoch, q))| {
                                    let mut lp = ListOffsetsPartition::default()
                                        .with_partition_index(p)
                                        .with_timestamp(q.wire_timestamp());
                                    if version >= 4 {
                                        lp.current_leader_epoch = epoch;
                                    }
                                    lp
                                })
                                .collect(),
                        )
                })
                .collect();
            let mut req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(topics);
            if version >= 2 {
                req.isolation_level = i8::from(isolation == IsolationLevel::ReadCommitted);
            }
            if version >= 10 {
                req.timeout_ms = self.timeout_ms();
            }
            match Self::send(&conn, &req, version).await {
                Ok(resp) => out.extend(parse_list_offsets(resp, &send)),
                Err(e) => out.extend(send.into_iter().map(|(tp, _)| (tp, Err(e.clone())))),
            }
        }
        Ok(out)
    }

    /// Deletes records before the given offsets (DeleteRecords to each leader; −1 = the high
    /// watermark). Per partition: the new log start offset (low watermark).
    pub async fn delete_records(
        &self,
        before: &BTreeMap<TopicPartition, i64>,
    ) -> Result<ItemResults<TopicPartition, i64>, AdminError> {
        if let Some((tp, o)) = before.iter().find(|(_, o)| **o < -1) {
            return Err(AdminError::InvalidInput {
                message: format!("{tp}: delete-before offset must be >= -1, not {o}"),
            });
        }
        let keys: Vec<TopicPartition> = before.keys().cloned().collect();
        self.retry_each(ApiKey::DeleteRecords, keys, |pending| {
            self.delete_records_round(pending, before)
        })
        .await
    }

    async fn delete_records_round(
        &self,
        pending: Vec<TopicPartition>,
        before: &BTreeMap<TopicPartition, i64>,
    ) -> Round<TopicPartition, i64> {
        let items: Vec<(TopicPartition, i64)> = pending
            .into_iter()
            .filter_map(|tp| before.get(&tp).map(|o| (tp, *o)))
            .collect();
        let (by_leader, failed) = self.by_leader(items).await?;
        let mut out: Vec<(TopicPartition, Result<i64, AdminError>)> =
            failed.into_iter().map(|(tp, e)| (tp, Err(e))).collect();
        for (leader, parts) in by_leader {
            let parts: Vec<(TopicPartition, i64)> =
                parts.into_iter().map(|(tp, _, o)| (tp, o)).collect();
            let result = async {
                let conn = self.cluster.broker(leader).await?;
                let version = conn.version(ApiKey::DeleteRecords)?;
                let req = DeleteRecordsRequest::default()
                    .with_topics(
                        group_by_topic(&parts)
                            .into_iter()
                            .map(|(t, ps)| {
                                DeleteRecordsTopic::default()
                                    .with_name(tn(t))
                                    .with_partitions(
                                        ps.into_iter()
                                            .map(|(p, o)| {
                                                DeleteRecordsPartition::default()
                                                    .with_partition_index(p)
                                                    .with_offset(o)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    )
                    .with_timeout_ms(self.timeout_ms());
                Self::send(&conn, &req, version).await
            }
            .await;
            match result {
                Ok(resp) => out.extend(parse_delete_records(resp)),
                Err(e) => out.extend(parts.into_iter().map(|(tp, _)| (tp, Err(e.clone())))),
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// response parsing (pure; unit-tested below)

fn parse_metadata_topics(
    resp: MetadataResponse,
) -> Vec<(String, Result<TopicDescription, AdminError>)> {
    resp.topics
        .into_iter()
        .filter_map(|t| {
            let name = t.name?.0.to_string();
            if let Err(code) = check_code(t.error_code) {
                return Some((
                    name.clone(),
                    Err(AdminError::Topic {
                        api: ApiKey::Metadata,
                        topic: name,
                        code,
                        message: None,
                    }),
                ));
            }
            let mut partitions: Vec<PartitionDescription> = t
                .partitions
                .into_iter()
                .map(|p| PartitionDescription {
                    partition: p.partition_index,
                    leader: non_negative(p.leader_id.0),
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                    error: ErrorCode::from_i16(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            Some((
                name.clone(),
                Ok(TopicDescription {
                    name,
                    topic_id: t.topic_id,
                    is_internal: t.is_internal,
                    partitions,
                    configs: None,
                }),
            ))
        })
        .collect()
}

fn parse_create_topics(
    resp: CreateTopicsResponse,
    version: i16,
) -> Vec<(String, Result<CreatedTopic, AdminError>)> {
    resp.topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let result = match check_code(t.error_code) {
                Err(code) => Err(AdminError::Topic {
                    api: ApiKey::CreateTopics,
                    topic: name.clone(),
                    code,
                    message: msg(t.error_message),
                }),
                Ok(()) => Ok(CreatedTopic {
                    topic_id: t.topic_id,
                    partitions: (version >= 5)
                        .then_some(t.num_partitions)
                        .filter(|n| *n >= 0),
                    replication_factor: (version >= 5)
                        .then_some(t.replication_factor)
                        .filter(|n| *n >= 0),
                    configs: t
                        .configs
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| ConfigEntry {
                            name: c.name.to_string(),
                            value: c.value.map(|v| v.to_string()),
                            source: ConfigSource::from_wire(c.config_source),
                            read_only: c.read_only,
                            sensitive: c.is_sensitive,
                            synonyms: Vec::new(),
                            config_type: ConfigType::Unknown(0),
                            documentation: None,
                        })
                        .collect(),
                }),
            };
            (name, result)
        })
        .collect()
}

fn parse_describe_configs(
    resp: DescribeConfigsResponse,
) -> Vec<(ConfigResource, Result<Vec<ConfigEntry>, AdminError>)> {
    resp.results
        .into_iter()
        .map(|r| {
            let resource = ConfigResource {
                kind: ConfigResourceType::from_wire(r.resource_type),
                name: r.resource_name.to_string(),
            };
            let result = match check_code(r.error_code) {
                Err(code) => Err(AdminError::Resource {
                    api: ApiKey::DescribeConfigs,
                    resource: resource.clone(),
                    code,
                    message: msg(r.error_message),
                }),
                Ok(()) => {
                    let mut entries: Vec<ConfigEntry> = r
                        .configs
                        .into_iter()
                        .map(|c| ConfigEntry {
                            name: c.name.to_string(),
                            value: c.value.map(|v| v.to_string()),
                            source: ConfigSource::from_wire(c.config_source),
                            read_only: c.read_only,
                            sensitive: c.is_sensitive,
                            synonyms: c
                                .synonyms
                                .into_iter()
                                .map(|s| ConfigSynonym {
                                    name: s.name.to_string(),
                                    value: s.value.map(|v| v.to_string()),
                                    source: ConfigSource::from_wire(s.source),
                                })
                                .collect(),
                            config_type: ConfigType::from_wire(c.config_type),
                            documentation: c.documentation.map(|d| d.to_string()),
                        })
                        .collect();
                    entries.sort_by(|a, b| a.name.cmp(&b.name));
                    Ok(entries)
                }
            };
            (resource, result)
        })
        .collect()
}

fn parse_alter_configs(
    resp: IncrementalAlterConfigsResponse,
) -> Vec<(ConfigResource, Result<(), AdminError>)> {
    resp.responses
        .into_iter()
        .map(|r| {
            let resource = ConfigResource {
                kind: ConfigResourceType::from_wire(r.resource_type),
                name: r.resource_name.to_string(),
            };
            let result = check_code(r.error_code).map_err(|code| AdminError::Resource {
                api: ApiKey::IncrementalAlterConfigs,
                resource: resource.clone(),
                code,
                message: msg(r.error_message),
            });
            (resource, result)
        })
        .collect()
}

fn parse_delete_acls_filter(
    r: kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult,
) -> Result<Vec<AclBinding>, AdminError> {
    check_code(r.error_code).map_err(|code| AdminError::Acl {
        api: ApiKey::DeleteAcls,
        code,
        message: msg(r.error_message),
    })?;
    let mut out = Vec::new();
    for m in r.matching_acls {
        check_code(m.error_code).map_err(|code| AdminError::Acl {
            api: ApiKey::DeleteAcls,
            code,
            message: msg(m.error_message),
        })?;
        out.push(AclBinding {
            resource_type: AclResourceType::from_wire(m.resource_type),
            resource_name: m.resource_name.to_string(),
            pattern_type: AclPatternType::from_wire(m.pattern_type),
            principal: m.principal.to_string(),
            host: m.host.to_string(),
            operation: AclOperation::from_wire(m.operation),
            permission: AclPermission::from_wire(m.permission_type),
        });
    }
    out.sort();
    Ok(out)
}

fn parse_describe_groups(
    resp: DescribeGroupsResponse,
    coordinator: i32,
) -> Vec<(String, Result<GroupDescription, AdminError>)> {
    resp.groups
        .into_iter()
        .map(|g| {
            let group = g.group_id.0.to_string();
            let result = match check_code(g.error_code) {
                Err(code) => Err(AdminError::Group {
                    api: ApiKey::DescribeGroups,
                    group: group.clone(),
                    code,
                    message: msg(g.error_message),
                }),
                Ok(()) => Ok(GroupDescription {
                    group_id: group.clone(),
                    state: GroupState::parse(&g.group_state),
                    protocol_type: g.protocol_type.to_string(),
                    protocol: g.protocol_data.to_string(),
                    members: g
                        .members
                        .into_iter()
                        .map(|m| GroupMember {
                            member_id: m.member_id.to_string(),
                            group_instance_id: m.group_instance_id.map(|s| s.to_string()),
                            client_id: m.client_id.to_string(),
                            client_host: m.client_host.to_string(),
                            metadata: m.member_metadata,
                            assignment: m.member_assignment,
                        })
                        .collect(),
                    coordinator,
                }),
            };
            (group, result)
        })
        .collect()
}

fn offset_fetch_partition_error(
    group: &str,
    topic: &str,
    partition: i32,
    code: ErrorCode,
) -> AdminError {
    if code == ErrorCode::UnstableOffsetCommit {
        // Group-wide condition; retried as a whole.
        AdminError::Group {
            api: ApiKey::OffsetFetch,
            group: group.to_owned(),
            code,
            message: Some(format!(
                "pending transactional offsets for {topic}-{partition}"
            )),
        }
    } else {
        AdminError::Partition {
            api: ApiKey::OffsetFetch,
            topic: topic.to_owned(),
            partition,
            code,
            message: None,
        }
    }
}

fn committed(offset: i64, epoch: i32, metadata: Option<StrBytes>) -> Option<CommittedOffset> {
    (offset >= 0).then(|| CommittedOffset {
        offset,
        leader_epoch: non_negative(epoch),
        metadata: msg(metadata),
    })
}

fn parse_offset_fetch_single(
    group: &str,
    resp: OffsetFetchResponse,
    version: i16,
) -> Result<GroupOffsets, AdminError> {
    if version >= 2 {
        check_code(resp.error_code).map_err(|code| AdminError::Group {
            api: ApiKey::OffsetFetch,
            group: group.to_owned(),
            code,
            message: None,
        })?;
    }
    let mut out = BTreeMap::new();
    for t in resp.topics {
        let topic = t.name.0.to_string();
        for p in t.partitions {
            check_code(p.error_code).map_err(|code| {
                offset_fetch_partition_error(group, &topic, p.partition_index, code)
            })?;
            if let Some(c) = committed(p.committed_offset, p.committed_leader_epoch, p.metadata) {
                out.insert(TopicPartition::new(topic.clone(), p.partition_index), c);
            }
        }
    }
    Ok(out)
}

fn parse_offset_fetch_multi(
    resp: OffsetFetchResponse,
) -> Vec<(String, Result<GroupOffsets, AdminError>)> {
    resp.groups
        .into_iter()
        .map(|g| {
            let group = g.group_id.0.to_string();
            let result = (|| {
                check_code(g.error_code).map_err(|code| AdminError::Group {
                    api: ApiKey::OffsetFetch,
                    group: group.clone(),
                    code,
                    message: None,
                })?;
                let mut out = BTreeMap::new();
                for t in g.topics {
                    let topic = t.name.0.to_string();
                    for p in t.partitions {
                        check_code(p.error_code).map_err(|code| {
                            offset_fetch_partition_error(&group, &topic, p.partition_index, code)
                        })?;
                        if let Some(c) =
                            committed(p.committed_offset, p.committed_leader_epoch, p.metadata)
                        {
                            out.insert(TopicPartition::new(topic.clone(), p.partition_index), c);
                        }
                    }
                }
                Ok(out)
            })();
            (group, result)
        })
        .collect()
}

/// Codes with which a coordinator refuses a generation −1 commit because the group has
/// members (classic and KIP-848 groups alike; `GroupMetadataManager` / `ClassicGroup` /
/// `ConsumerGroup.validateOffsetCommit` in apache/kafka).
fn is_group_active_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::UnknownMemberId
            | ErrorCode::IllegalGeneration
            | ErrorCode::RebalanceInProgress
            | ErrorCode::NonEmptyGroup
            | ErrorCode::StaleMemberEpoch
    )
}

fn check_offset_commit(group: &str, resp: OffsetCommitResponse) -> Result<(), AdminError> {
    for t in resp.topics {
        for p in t.partitions {
            let Err(code) = check_code(p.error_code) else {
                continue;
            };
            if is_group_active_code(code) {
                return Err(AdminError::GroupActive {
                    api: ApiKey::OffsetCommit,
                    group: group.to_owned(),
                    code,
                    message: None,
                });
            }
            if code.is_coordinator() {
                return Err(AdminError::Group {
                    api: ApiKey::OffsetCommit,
                    group: group.to_owned(),
                    code,
                    message: None,
                });
            }
            return Err(AdminError::Partition {
                api: ApiKey::OffsetCommit,
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                code,
                message: None,
            });
        }
    }
    Ok(())
}

fn parse_delete_groups(resp: DeleteGroupsResponse) -> Vec<(String, Result<(), AdminError>)> {
    resp.results
        .into_iter()
        .map(|r| {
            let group = r.group_id.0.to_string();
            let result = check_code(r.error_code).map_err(|code| {
                if code == ErrorCode::NonEmptyGroup {
                    AdminError::GroupActive {
                        api: ApiKey::DeleteGroups,
                        group: group.clone(),
                        code,
                        message: None,
                    }
                } else {
                    AdminError::Group {
                        api: ApiKey::DeleteGroups,
                        group: group.clone(),
                        code,
                        message: None,
                    }
                }
            });
            (group, result)
        })
        .collect()
}

fn parse_list_offsets(
    resp: ListOffsetsResponse,
    sent: &[(TopicPartition, (i32, OffsetQuery))],
) -> Vec<(TopicPartition, Result<ListedOffset, AdminError>)> {
    let mut out = Vec::new();
    for t in resp.topics {
        let topic = t.name.0.to_string();
        for p in t.partitions {
            let tp = TopicPartition::new(topic.clone(), p.partition_index);
            let query = sent.iter().find(|(s, _)| *s == tp).map(|(_, (_, q))| *q);
            let result = match check_code(p.error_code) {
                Err(code) => Err(AdminError::Partition {
                    api: ApiKey::ListOffsets,
                    topic: topic.clone(),
                    partition: p.partition_index,
                    code,
                    message: None,
                }),
                Ok(()) => Ok(ListedOffset {
                    offset: p.offset,
                    timestamp: match query {
                        Some(OffsetQuery::Timestamp(_) | OffsetQuery::MaxTimestamp)
                            if p.timestamp >= 0 =>
                        {
                            Some(p.timestamp)
                        }
                        _ => None,
                    },
                    leader_epoch: non_negative(p.leader_epoch),
                }),
            };
            out.push((tp, result));
        }
    }
    out
}

fn parse_delete_records(
    resp: DeleteRecordsResponse,
) -> Vec<(TopicPartition, Result<i64, AdminError>)> {
    let mut out = Vec::new();
    for t in resp.topics {
        let topic = t.name.0.to_string();
        for p in t.partitions {
            let tp = TopicPartition::new(topic.clone(), p.partition_index);
            let result = check_code(p.error_code)
                .map(|()| p.low_watermark)
                .map_err(|code| AdminError::Partition {
                    api: ApiKey::DeleteRecords,
                    topic: topic.clone(),
                    partition: p.partition_index,
                    code,
                    message: None,
                });
            out.push((tp, result));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
    use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
    use kafka_protocol::messages::describe_configs_response::{
        DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
    };
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
    };

    fn item(api: ApiKey, code: ErrorCode) -> AdminError {
        AdminError::Partition {
            api,
            topic: "t".into(),
            partition: 0,
            code,
            message: None,
        }
    }

    /// Items that fail with a retriable error are sent again, alone; final answers stay;
    /// items the broker never mentions get MissingResult; the policy bounds the retries.
    #[tokio::test(start_paused = true)]
    async fn retry_each_retries_only_retriable_items_and_ends() {
        let policy = BackoffConfig::default().with_max_attempts(Some(4));
        let mut rounds: Vec<Vec<&str>> = Vec::new();
        let refreshes = std::sync::atomic::AtomicUsize::new(0);
        let out = retry_each(
            &policy,
            ApiKey::ListOffsets,
            vec!["ok", "flaky", "final", "forever", "silent", "ok"],
            |e| {
                if e.needs_metadata_refresh() {
                    refreshes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            },
            |pending: Vec<&'static str>| {
                rounds.push(pending.clone());
                let attempt = rounds.len();
                async move {
                    let mut results = Vec::new();
                    for k in pending {
                        let r = match k {
                            "ok" => Ok(1),
                            "flaky" if attempt < 3 => {
                                Err(item(ApiKey::ListOffsets, ErrorCode::NotLeaderOrFollower))
                            }
                            "flaky" => Ok(2),
                            "final" => Err(item(ApiKey::ListOffsets, ErrorCode::OffsetOutOfRange)),
                            "forever" => {
                                Err(item(ApiKey::ListOffsets, ErrorCode::LeaderNotAvailable))
                            }
                            _ => continue,
                        };
                        results.push((k, r));
                    }
                    Ok(results)
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(
            rounds[0],
            vec!["final", "flaky", "forever", "ok", "silent"],
            "deduplicated"
        );
        assert_eq!(rounds[1], vec!["flaky", "forever"]);
        assert_eq!(rounds[3], vec!["forever"]);
        assert_eq!(rounds.len(), 5, "first attempt plus 4 retries");
        assert_eq!(out["ok"].as_ref().unwrap(), &1);
        assert_eq!(out["flaky"].as_ref().unwrap(), &2);
        assert_eq!(
            out["final"].as_ref().unwrap_err().error_code(),
            Some(ErrorCode::OffsetOutOfRange)
        );
        let forever = out["forever"].as_ref().unwrap_err();
        assert!(
            matches!(forever, AdminError::RetriesExhausted { attempts: 4, .. }),
            "{forever}"
        );
        assert!(matches!(
            out["silent"],
            Err(AdminError::MissingResult { .. })
        ));
        assert_eq!(refreshes.load(std::sync::atomic::Ordering::Relaxed), 2 + 5);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_each_fails_the_call_on_a_final_round_error() {
        let policy = BackoffConfig::default().with_max_attempts(Some(2));
        let mut calls = 0;
        let out: Result<ItemResults<i32, ()>, _> = retry_each(
            &policy,
            ApiKey::CreateAcls,
            vec![1, 2],
            |_| {},
            |_| {
                calls += 1;
                let code = if calls == 1 {
                    ErrorCode::NotController
                } else {
                    ErrorCode::ClusterAuthorizationFailed
                };
                async move {
                    Err(AdminError::Acl {
                        api: ApiKey::CreateAcls,
                        code,
                        message: None,
                    })
                }
            },
        )
        .await;
        assert!(out.unwrap_err().is_auth());
        assert_eq!(calls, 2);
        // A round error that stays retriable ends with RetriesExhausted for the whole call.
        let out: Result<ItemResults<i32, ()>, _> = retry_each(
            &policy,
            ApiKey::CreateAcls,
            vec![1],
            |_| {},
            |_| async {
                Err(AdminError::Acl {
                    api: ApiKey::CreateAcls,
                    code: ErrorCode::NotController,
                    message: None,
                })
            },
        )
        .await;
        assert!(matches!(
            out,
            Err(AdminError::RetriesExhausted { attempts: 2, .. })
        ));
    }

    #[test]
    fn wire_enums_round_trip_and_keep_unknown_values() {
        for v in i8::MIN..=i8::MAX {
            assert_eq!(AclOperation::from_wire(v).to_wire(), v);
            assert_eq!(AclResourceType::from_wire(v).to_wire(), v);
            assert_eq!(AclPatternType::from_wire(v).to_wire(), v);
            assert_eq!(AclPermission::from_wire(v).to_wire(), v);
            assert_eq!(ConfigSource::from_wire(v).to_wire(), v);
            assert_eq!(ConfigResourceType::from_wire(v).to_wire(), v);
            assert_eq!(AlterConfigOpType::from_wire(v).to_wire(), v);
        }
        assert_eq!(AclOperation::from_wire(3), AclOperation::Read);
        assert_eq!(AclOperation::from_wire(99), AclOperation::Unknown(99));
        assert_eq!(AclPatternType::Prefixed.to_wire(), 4);
        assert_eq!(ConfigResourceType::Topic.to_wire(), 2);
        assert_eq!(ConfigResourceType::Broker.to_wire(), 4);
        assert_eq!(ConfigSource::from_wire(5), ConfigSource::Default);
    }

    #[test]
    fn group_states_parse_and_keep_unknown_names() {
        assert_eq!(GroupState::parse("Stable"), GroupState::Stable);
        assert_eq!(
            GroupState::parse("completingrebalance"),
            GroupState::CompletingRebalance
        );
        assert_eq!(
            GroupState::parse("Weird"),
            GroupState::Other("Weird".into())
        );
        assert_eq!(GroupState::Other("Weird".into()).as_str(), "Weird");
    }

    #[test]
    fn new_topic_validation() {
        assert!(NewTopic::new("ok.topic_1-x", 3, 1).validate().is_ok());
        assert!(NewTopic::new("defaults", -1, -1).validate().is_ok());
        for bad in [
            NewTopic::new("", 1, 1),
            NewTopic::new("..", 1, 1),
            NewTopic::new("a/b", 1, 1),
            NewTopic::new("x".repeat(250), 1, 1),
            NewTopic::new("t", 0, 1),
            NewTopic::new("t", -2, 1),
            NewTopic::new("t", 1, 0),
        ] {
            let err = bad.validate().unwrap_err();
            assert!(
                matches!(err, AdminError::InvalidInput { .. }) && err.is_fatal(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn acl_binding_validation_rejects_filter_values() {
        let good = AclBinding::allow(
            AclResourceType::Topic,
            "t",
            "User:alice",
            AclOperation::Read,
        );
        assert!(good.validate().is_ok());
        let mut any_op = good.clone();
        any_op.operation = AclOperation::Any;
        assert!(any_op.validate().is_err());
        let mut matching = good.clone();
        matching.pattern_type = AclPatternType::Match;
        assert!(matching.validate().is_err());
        let mut no_principal = good.clone();
        no_principal.principal.clear();
        assert!(no_principal.validate().is_err());
        let f = AclBindingFilter::from(&good);
        assert_eq!(f.resource_name.as_deref(), Some("t"));
        assert_eq!(f.operation, AclOperation::Read);
    }

    #[test]
    fn classifiers() {
        let exists = AdminError::Topic {
            api: ApiKey::CreateTopics,
            topic: "t".into(),
            code: ErrorCode::TopicAlreadyExists,
            message: Some("Topic 't' already exists.".into()),
        };
        assert!(
            exists.is_topic_already_exists() && !exists.is_retriable() && !exists.is_group_active()
        );
        assert!(exists.to_string().contains("already exists"));
        assert_eq!(exists.broker_message(), Some("Topic 't' already exists."));

        let not_controller = AdminError::Topic {
            api: ApiKey::CreateTopics,
            topic: "t".into(),
            code: ErrorCode::NotController,
            message: None,
        };
        assert!(not_controller.is_retriable() && not_controller.needs_metadata_refresh());

        // A missing topic is final from the controller, retriable from a leader.
        let missing = AdminError::Topic {
            api: ApiKey::DeleteTopics,
            topic: "t".into(),
            code: ErrorCode::UnknownTopicOrPartition,
            message: None,
        };
        assert!(!missing.is_retriable() && missing.is_not_found());
        let stale = AdminError::Partition {
            api: ApiKey::ListOffsets,
            topic: "t".into(),
            partition: 0,
            code: ErrorCode::UnknownTopicOrPartition,
            message: None,
        };
        assert!(stale.is_retriable() && stale.needs_metadata_refresh());

        let active = AdminError::GroupActive {
            api: ApiKey::OffsetCommit,
            group: "g".into(),
            code: ErrorCode::UnknownMemberId,
            message: None,
        };
        assert!(active.is_group_active() && !active.is_retriable());
        let wrapped = AdminError::RetriesExhausted {
            attempts: 3,
            elapsed: Duration::from_secs(1),
            last: Box::new(active),
        };
        assert!(wrapped.is_group_active());
        assert_eq!(wrapped.error_code(), Some(ErrorCode::UnknownMemberId));

        let loading = AdminError::Group {
            api: ApiKey::DescribeGroups,
            group: "g".into(),
            code: ErrorCode::CoordinatorLoadInProgress,
            message: None,
        };
        assert!(loading.is_retriable());
        let denied = AdminError::Acl {
            api: ApiKey::CreateAcls,
            code: ErrorCode::ClusterAuthorizationFailed,
            message: None,
        };
        assert!(denied.is_auth() && denied.is_fatal() && !denied.is_retriable());
    }

    #[test]
    fn create_topics_response_keeps_per_topic_outcomes() {
        let resp = CreateTopicsResponse::default().with_topics(vec![
            CreatableTopicResult::default()
                .with_name(tn("new"))
                .with_num_partitions(3)
                .with_replication_factor(1),
            CreatableTopicResult::default()
                .with_name(tn("old"))
                .with_error_code(ErrorCode::TopicAlreadyExists.as_i16())
                .with_error_message(Some(sb("Topic 'old' already exists."))),
        ]);
        let out: BTreeMap<_, _> = parse_create_topics(resp, 7).into_iter().collect();
        let created = out["new"].as_ref().unwrap();
        assert_eq!(created.partitions, Some(3));
        assert_eq!(created.replication_factor, Some(1));
        assert!(out["old"].as_ref().unwrap_err().is_topic_already_exists());
        let resp = CreateTopicsResponse::default()
            .with_topics(vec![CreatableTopicResult::default().with_name(tn("new"))]);
        let out = parse_create_topics(resp, 4);
        assert_eq!(
            out[0].1.as_ref().unwrap().partitions,
            None,
            "v4 has no partition count"
        );
    }

    #[test]
    fn describe_configs_response_maps_sources_and_synonyms() {
        let resp = DescribeConfigsResponse::default().with_results(vec![
            DescribeConfigsResult::default()
                .with_resource_type(2)
                .with_resource_name(sb("t"))
                .with_configs(vec![
                    DescribeConfigsResourceResult::default()
                        .with_name(sb("retention.ms"))
                        .with_value(Some(sb("1000")))
                        .with_config_source(1)
                        .with_synonyms(vec![
                            DescribeConfigsSynonym::default()
                                .with_name(sb("retention.ms"))
                                .with_value(Some(sb("1000")))
                                .with_source(1),
                            DescribeConfigsSynonym::default()
                                .with_name(sb("log.retention.hours"))
                                .with_value(Some(sb("168")))
                                .with_source(5),
                        ]),
                    DescribeConfigsResourceResult::default()
                        .with_name(sb("cleanup.policy"))
                        .with_value(Some(sb("delete")))
                        .with_config_source(5),
                ]),
            DescribeConfigsResult::default()
                .with_resource_type(2)
                .with_resource_name(sb("missing"))
                .with_error_code(ErrorCode::UnknownTopicOrPartition.as_i16())
                .with_error_message(Some(sb("Topic missing does not exist"))),
        ]);
        let out: BTreeMap<_, _> = parse_describe_configs(resp).into_iter().collect();
        let entries = out[&ConfigResource::topic("t")].as_ref().unwrap();
        assert_eq!(entries[0].name, "cleanup.policy", "sorted by name");
        assert!(entries[0].is_default() && !entries[0].is_set_on_resource());
        assert!(!entries[1].is_default() && entries[1].is_set_on_resource());
        assert_eq!(entries[1].synonyms.len(), 2);
        assert_eq!(entries[1].synonyms[1].source, ConfigSource::Default);
        let err = out[&ConfigResource::topic("missing")].as_ref().unwrap_err();
        assert!(err.is_not_found() && !err.is_retriable());
        assert!(err.to_string().contains("does not exist"));
    }

    #[test]
    fn offset_commit_refusal_by_active_group_is_typed() {
        let resp = |code: ErrorCode| {
            OffsetCommitResponse::default().with_topics(vec![
                OffsetCommitResponseTopic::default()
                    .with_name(tn("t"))
                    .with_partitions(vec![
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(0)
                            .with_error_code(code.as_i16()),
                    ]),
            ])
        };
        assert!(check_offset_commit("g", resp(ErrorCode::NoError)).is_ok());
        for code in [
            ErrorCode::UnknownMemberId,
            ErrorCode::IllegalGeneration,
            ErrorCode::RebalanceInProgress,
        ] {
            assert!(
                check_offset_commit("g", resp(code))
                    .unwrap_err()
                    .is_group_active(),
                "{code}"
            );
        }
        let moved = check_offset_commit("g", resp(ErrorCode::NotCoordinator)).unwrap_err();
        assert!(moved.is_retriable() && !moved.is_group_active());
        let missing =
            check_offset_commit("g", resp(ErrorCode::UnknownTopicOrPartition)).unwrap_err();
        assert!(
            !missing.is_retriable(),
            "a coordinator's unknown topic is final"
        );
        let resp = DeleteGroupsResponse::default().with_results(vec![
            DeletableGroupResult::default()
                .with_group_id(GroupId(sb("g")))
                .with_error_code(ErrorCode::NonEmptyGroup.as_i16()),
        ]);
        assert!(
            parse_delete_groups(resp)[0]
                .1
                .as_ref()
                .unwrap_err()
                .is_group_active()
        );
    }

    #[test]
    fn offset_fetch_multi_skips_uncommitted_and_flags_unstable() {
        let resp = OffsetFetchResponse::default().with_groups(vec![
            OffsetFetchResponseGroup::default()
                .with_group_id(GroupId(sb("a")))
                .with_topics(vec![
                    OffsetFetchResponseTopics::default()
                        .with_name(tn("t"))
                        .with_partitions(vec![
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(0)
                                .with_committed_offset(42)
                                .with_committed_leader_epoch(3),
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(1)
                                .with_committed_offset(-1),
                        ]),
                ]),
            OffsetFetchResponseGroup::default()
                .with_group_id(GroupId(sb("b")))
                .with_topics(vec![
                    OffsetFetchResponseTopics::default()
                        .with_name(tn("t"))
                        .with_partitions(vec![
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(0)
                                .with_error_code(ErrorCode::UnstableOffsetCommit.as_i16()),
                        ]),
                ]),
        ]);
        let out: BTreeMap<_, _> = parse_offset_fetch_multi(resp).into_iter().collect();
        let a = out["a"].as_ref().unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(
            a[&TopicPartition::new("t", 0)],
            CommittedOffset {
                offset: 42,
                leader_epoch: Some(3),
                metadata: None
            }
        );
        let b = out["b"].as_ref().unwrap_err();
        assert!(
            b.is_retriable(),
            "UNSTABLE_OFFSET_COMMIT waits for the transaction: {b}"
        );
    }
}
