//! Per-flow settings: one directed replication `source -> target` with every MM2 setting
//! resolved (`{S}->{T}.k` over top-level `k` over MM2's default).

use std::time::Duration;

use ferry_mirror::filter::{GroupFilter, PatternList, TopicFilter};
use ferry_mirror::policy::{AnyReplicationPolicy, ReplicationPolicy, should_replicate_topic};

use super::cluster::ClientOverrides;

/// MM2's defaults for the per-flow keys, as ferry applies them.
pub mod defaults {
    use std::time::Duration;

    /// `replication.factor`.
    pub const REPLICATION_FACTOR: i16 = 2;
    /// `offset-syncs.topic.replication.factor`, `checkpoints.topic.replication.factor`,
    /// `heartbeats.topic.replication.factor`.
    pub const INTERNAL_TOPIC_REPLICATION_FACTOR: i16 = 3;
    /// `refresh.topics.interval.seconds`, `refresh.groups.interval.seconds`,
    /// `sync.topic.configs.interval.seconds`, `sync.topic.acls.interval.seconds`.
    pub const REFRESH_INTERVAL: Duration = Duration::from_secs(600);
    /// `emit.checkpoints.interval.seconds`.
    pub const EMIT_CHECKPOINTS_INTERVAL: Duration = Duration::from_secs(60);
    /// `sync.group.offsets.interval.seconds`.
    pub const SYNC_GROUP_OFFSETS_INTERVAL: Duration = Duration::from_secs(60);
    /// `emit.heartbeats.interval.seconds`.
    pub const EMIT_HEARTBEATS_INTERVAL: Duration = Duration::from_secs(1);
    /// `offset.lag.max`.
    pub const OFFSET_LAG_MAX: i64 = 100;
    /// `admin.timeout.ms`.
    pub const ADMIN_TIMEOUT: Duration = Duration::from_millis(60_000);
    /// `consumer.poll.timeout.ms`.
    pub const CONSUMER_POLL_TIMEOUT: Duration = Duration::from_millis(1_000);
}

/// A topic replication factor: a count, or the broker's default (`-1`, KIP-464).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplicationFactor {
    /// Use the target broker's `default.replication.factor`.
    BrokerDefault,
    /// This many replicas (at least 1).
    Count(i16),
}

impl ReplicationFactor {
    /// The value for a CreateTopics request (`-1` for the broker default).
    pub fn as_i16(self) -> i16 {
        match self {
            Self::BrokerDefault => -1,
            Self::Count(n) => n,
        }
    }
}

/// Where offset syncs are written (`offset-syncs.topic.location`, KIP-716).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OffsetSyncsLocation {
    /// On the source cluster, as `mm2-offset-syncs.<target>.internal` (MM2's default; it
    /// writes to the source).
    #[default]
    Source,
    /// On the target cluster, as `mm2-offset-syncs.<source>.internal`.
    Target,
}

/// Which cluster's defaults fill topic configs the source did not override
/// (`use.defaults.from`, KIP-894).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum UseDefaultsFrom {
    /// The source cluster's defaults.
    Source,
    /// The target cluster's defaults (MM2's default).
    #[default]
    Target,
}

/// The source consumer's `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum IsolationLevel {
    /// Skip aborted transactional records. **ferry's default**; MM2's consumer defaults to
    /// `read_uncommitted` and copies aborted records as ordinary data.
    #[default]
    ReadCommitted,
    /// Read everything, including aborted records.
    ReadUncommitted,
}

/// Where replication starts for a partition with no recorded progress
/// (`auto.offset.reset` of the source consumer; MM2 sets `earliest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AutoOffsetReset {
    /// From the log start (MM2's default).
    #[default]
    Earliest,
    /// From the log end: existing records are not replicated.
    Latest,
    /// Fail the partition.
    None,
    /// From the first record newer than now minus this duration (`by_duration:<ISO-8601>`,
    /// KIP-1106, Kafka 4.0).
    ByDuration(Duration),
}

/// `exactly.once.support` of the source connector (KIP-618).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ExactlyOnceSupport {
    /// Use exactly-once when available (Connect's default).
    #[default]
    Requested,
    /// Refuse to run without exactly-once.
    Required,
}

/// `exactly.once.source.support` of the target's worker (KIP-618).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ExactlyOnceSourceSupport {
    /// No transactions (Connect's default).
    #[default]
    Disabled,
    /// The rolling-upgrade step before `Enabled`.
    Preparing,
    /// Transactions on.
    Enabled,
}

/// One enabled flow `source -> target` with every setting resolved.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlowConfig {
    /// The source alias.
    pub source: String,
    /// The target alias.
    pub target: String,
    /// `topics` / `topics.exclude`.
    pub topics: TopicFilter,
    /// `groups` / `groups.exclude`.
    pub groups: GroupFilter,
    /// `replication.policy.class` with its separator settings, configured for this flow's
    /// source alias.
    pub policy: AnyReplicationPolicy,
    /// `replication.factor` of created remote topics.
    pub replication_factor: ReplicationFactor,
    /// `offset-syncs.topic.replication.factor`.
    pub offset_syncs_topic_replication_factor: ReplicationFactor,
    /// `checkpoints.topic.replication.factor`.
    pub checkpoints_topic_replication_factor: ReplicationFactor,
    /// `heartbeats.topic.replication.factor`.
    pub heartbeats_topic_replication_factor: ReplicationFactor,
    /// Period of the new-topic scan, `None` when disabled (`refresh.topics.*`).
    pub refresh_topics: Option<Duration>,
    /// Period of the new-group scan (`refresh.groups.*`).
    pub refresh_groups: Option<Duration>,
    /// Period of topic-config sync (`sync.topic.configs.*`).
    pub sync_topic_configs: Option<Duration>,
    /// Period of topic-ACL sync (`sync.topic.acls.*`).
    pub sync_topic_acls: Option<Duration>,
    /// `ferry.sync.acls.prefixed`: also sync PREFIXED topic ACLs (default `false`).
    pub sync_acls_prefixed: bool,
    /// `ferry.sync.acls.groups`: also sync GROUP ACLs of selected groups (default `false`).
    pub sync_acls_groups: bool,
    /// `ferry.sync.acls.delete`: delete ferry-created ACLs whose source ACL is gone (default
    /// `false`).
    pub sync_acls_delete: bool,
    /// Period of checkpoint emission (`emit.checkpoints.*`).
    pub emit_checkpoints: Option<Duration>,
    /// Period of group-offset sync into the target (`sync.group.offsets.*`, off by default).
    pub sync_group_offsets: Option<Duration>,
    /// Period of heartbeats into the target (`emit.heartbeats.*`).
    pub emit_heartbeats: Option<Duration>,
    /// Whether heartbeats topics are replicated (`heartbeats.replication.enabled`, KIP-1089).
    pub heartbeats_replication: bool,
    /// Whether MM2-format offset syncs are written (`emit.offset-syncs.enabled`, KIP-1031).
    pub emit_offset_syncs: bool,
    /// `offset-syncs.topic.location`.
    pub offset_syncs_location: OffsetSyncsLocation,
    /// `offset.lag.max`: MM2's offset-sync spacing. ferry writes a sync whenever the
    /// target-source delta changes, so this only bounds how stale MM2-compatible readers get.
    pub offset_lag_max: i64,
    /// `config.properties.exclude`: topic config keys never synced.
    pub config_properties_exclude: PatternList,
    /// `use.defaults.from`.
    pub use_defaults_from: UseDefaultsFrom,
    /// `admin.timeout.ms`.
    pub admin_timeout: Duration,
    /// `consumer.poll.timeout.ms`.
    pub consumer_poll_timeout: Duration,
    /// `tasks.max` as written (ferry assigns partitions itself and does not use it).
    pub tasks_max: Option<i32>,
    /// `exactly.once.support`.
    pub exactly_once_support: ExactlyOnceSupport,
    /// `exactly.once.source.support` of the target.
    pub exactly_once_source_support: ExactlyOnceSourceSupport,
    /// The source consumer's `isolation.level` (ferry's default: `read_committed`).
    pub isolation_level: IsolationLevel,
    /// The source consumer's `auto.offset.reset` (default `earliest`).
    pub auto_offset_reset: AutoOffsetReset,
    /// Settings of the consumer reading the source: `{S}->{T}.consumer.*` over
    /// `{S}.consumer.*` over top-level `consumer.*`.
    pub source_consumer: ClientOverrides,
    /// Settings of the producer writing the target: `{S}->{T}.producer.override.*` over
    /// `{S}->{T}.producer.*` over `{T}.producer.*` over top-level `producer.*`.
    pub target_producer: ClientOverrides,
    /// Settings of the source admin client.
    pub source_admin: ClientOverrides,
    /// Settings of the target admin client.
    pub target_admin: ClientOverrides,
}

impl FlowConfig {
    /// The name a source topic takes on the target.
    pub fn remote_topic(&self, topic: &str) -> String {
        self.policy.format_remote_topic(&self.source, topic)
    }

    /// MM2's topic selection rule for this flow: the filter (heartbeats bypass it unless
    /// `heartbeats.replication.enabled=false`), never internal topics, never cycles.
    pub fn should_replicate_topic(&self, topic: &str) -> bool {
        should_replicate_topic(
            &self.policy,
            &self.topics,
            self.heartbeats_replication,
            topic,
            &self.target,
        )
    }

    /// Whether the group filter accepts a consumer group. (MM2 also requires the group to
    /// have a committed offset on a replicated topic.)
    pub fn should_replicate_group(&self, group: &str) -> bool {
        self.groups.accepts(group)
    }

    /// The offset-syncs topic name and the alias of the cluster it lives on.
    pub fn offset_syncs_topic(&self) -> (String, &str) {
        match self.offset_syncs_location {
            OffsetSyncsLocation::Source => (
                self.policy.offset_syncs_topic(&self.target),
                self.source.as_str(),
            ),
            OffsetSyncsLocation::Target => (
                self.policy.offset_syncs_topic(&self.source),
                self.target.as_str(),
            ),
        }
    }

    /// The checkpoints topic on the target (`<source>.checkpoints.internal`).
    pub fn checkpoints_topic(&self) -> String {
        self.policy.checkpoints_topic(&self.source)
    }

    /// The heartbeats topic on the target.
    pub fn heartbeats_topic(&self) -> &str {
        self.policy.heartbeats_topic()
    }
}
