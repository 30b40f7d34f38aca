//! Plain settings of the replication engine: clusters, flows and their knobs.
//!
//! These types carry no parsing: the root crate maps `mm2.properties` onto them, and embedders
//! build them directly. [`EngineSettings::validate`] checks every cross-field rule before any
//! I/O. Defaults follow MM2 where MM2 has the key (mm2-compat.md §2.4) and say so; where ferry
//! differs (read_committed isolation, a 1 s progress interval) the field docs give the reason.
//!
//! # References
//! - `mm2-compat.md` §2.4 (keys and defaults), §4 (naming), §7.1 (topic creation)
//! - `kafka-wire.md` §4.3 (read_committed)

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_client::ConnectionConfig;
use ferry_protocol::compression::Codec;

use crate::engine::MirrorError;
use crate::filter::{DEFAULT_CONFIG_PROPERTIES_EXCLUDE, GroupFilter, PatternList, TopicFilter};
use crate::policy::{AnyReplicationPolicy, PolicyKind};

/// Default in-flight byte budget: 64 MiB.
pub const DEFAULT_IN_FLIGHT_BYTES: usize = 64 << 20;

/// Where a partition starts when the target holds no progress for it
/// (`consumer.auto.offset.reset`; MM2 default `earliest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPosition {
    /// The source's log start offset.
    #[default]
    Earliest,
    /// The source's end offset (the last stable offset under read_committed).
    Latest,
}

/// Fetch isolation (`consumer.isolation.level`). ferry defaults to read_committed, unlike MM2,
/// so aborted transactions never reach the target (issue #5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Stop at the last stable offset and drop aborted data and markers.
    #[default]
    ReadCommitted,
    /// Read to the high watermark; aborted data is copied as ordinary data.
    ReadUncommitted,
}

/// Which cluster holds the offset-syncs topic (`offset-syncs.topic.location`, default `source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetSyncsLocation {
    /// `mm2-offset-syncs.<target>.internal` on the source cluster.
    #[default]
    Source,
    /// `mm2-offset-syncs.<source>.internal` on the target cluster.
    Target,
}

/// What to do when a partition cannot continue where it was: its position fell below the log
/// start (retention), lies past the log end (truncation), or the topic was recreated.
///
/// Never a silent skip: each case raises a [`crate::events::MirrorEvent`] first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositionLossPolicy {
    /// Stop replicating that partition and report it (default).
    #[default]
    StopPartition,
    /// Continue from the source's log start offset.
    ResetEarliest,
    /// Continue from the source's end offset.
    ResetLatest,
}

/// One directed flow `source -> target`.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// Source cluster alias (a key of [`EngineSettings::clusters`]).
    pub source: String,
    /// Target cluster alias.
    pub target: String,
    /// `topics` / `topics.exclude`. Default: MM2's (`.*`, minus internal-looking names).
    pub topic_filter: TopicFilter,
    /// Naming policy. Default: `DefaultReplicationPolicy` with separator `.`.
    pub policy: AnyReplicationPolicy,
    /// Replicate heartbeats topics even when the filter rejects them
    /// (`heartbeats.replication.enabled`, default true).
    pub heartbeats_replication: bool,
    /// Replication factor of created target topics; −1 = the target broker's default
    /// (`replication.factor`, MM2 default 2 — ferry defaults to −1 so one-broker targets work).
    pub replication_factor: i16,
    /// How often source topics and partitions are listed again
    /// (`refresh.topics.interval.seconds`, default 600 s).
    pub refresh_topics_interval: Duration,
    /// Where partitions without stored progress start. Default earliest.
    pub start: StartPosition,
    /// Fetch isolation. Default read_committed.
    pub isolation: Isolation,
    /// Write MM2 heartbeats into the target (`emit.heartbeats.enabled`, default true).
    pub emit_heartbeats: bool,
    /// `emit.heartbeats.interval.seconds` (default 1 s).
    pub heartbeats_interval: Duration,
    /// `heartbeats.topic.replication.factor`; −1 = broker default (MM2 default 3).
    pub heartbeats_replication_factor: i16,
    /// Write MM2 offset syncs (`emit.offset-syncs.enabled`, default true).
    pub emit_offset_syncs: bool,
    /// `offset-syncs.topic.location` (default source).
    pub offset_syncs_location: OffsetSyncsLocation,
    /// `offset-syncs.topic.replication.factor`; −1 = broker default (MM2 default 3).
    pub offset_syncs_replication_factor: i16,
    /// A partition with no new data for this long gets an offset sync for its last record.
    /// Default 1 s.
    pub offset_sync_idle_interval: Duration,
    /// Re-encode every batch with this codec; `None` keeps the source bytes and creates target
    /// topics with `compression.type=producer`. Default `None`.
    pub target_compression: Option<Codec>,
    /// Source topic configs never copied to created topics (`config.properties.exclude`).
    pub config_properties_exclude: PatternList,
    /// Policy when the resume position lies below the source log start.
    pub on_offset_out_of_range: PositionLossPolicy,
    /// Policy when the resume position lies past the source log end (truncation).
    pub on_truncation: PositionLossPolicy,
    /// Policy when the source topic was deleted and recreated (its topic id changed).
    pub on_topic_recreated: PositionLossPolicy,
    /// Consumer group on the target that stores progress. Default `ferry-<source>-<target>`.
    pub progress_group: Option<String>,
    /// How often progress is committed (also at shutdown). Default 1 s.
    pub progress_interval: Duration,
    /// `groups` / `groups.exclude`: the consumer groups whose offsets are translated.
    /// Default MM2's (`.*` minus `console-consumer-.*`, `connect-.*`, `__.*`).
    pub group_filter: GroupFilter,
    /// Write MM2 checkpoints (`emit.checkpoints.enabled`, default true). See
    /// `crate::checkpoint`.
    pub emit_checkpoints: bool,
    /// `emit.checkpoints.interval.seconds` (default 60 s): also how often group offsets are
    /// read and translated when only group sync is on.
    pub checkpoints_interval: Duration,
    /// `checkpoints.topic.replication.factor`; −1 = broker default (MM2 default 3). Also used
    /// for ferry's offset-map topic (`crate::map_store`).
    pub checkpoints_replication_factor: i16,
    /// Commit translated offsets to idle target groups (`sync.group.offsets.enabled`,
    /// default false). See `crate::group_sync`.
    pub sync_group_offsets: bool,
    /// `sync.group.offsets.interval.seconds` (default 60 s).
    pub sync_group_offsets_interval: Duration,
    /// How often source groups are listed again (`refresh.groups.interval.seconds`,
    /// default 600 s).
    pub refresh_groups_interval: Duration,
    /// Topic-config sync period (`sync.topic.configs.enabled` / `.interval.seconds`, MM2
    /// default on, 600 s); `None` = off. See `crate::config_sync`.
    pub sync_topic_configs: Option<Duration>,
    /// Which cluster's defaults a target topic follows for keys the source topic does not set
    /// (`use.defaults.from`, KIP-894, default target).
    pub use_defaults_from: DefaultsFrom,
    /// Topic-ACL sync period (`sync.topic.acls.enabled` / `.interval.seconds`, MM2 default on,
    /// 600 s); `None` = off. See `crate::acl_sync`.
    pub sync_topic_acls: Option<Duration>,
    /// What ACL sync copies beyond MM2's literal topic ACLs (all off by default).
    pub acl_sync: AclSyncOptions,
}

/// `use.defaults.from` (KIP-894): whose defaults fill the keys a source topic does not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultsFrom {
    /// The target's (MM2's default): a key the source leaves at Kafka's default is reset on the
    /// target (its override is deleted).
    #[default]
    Target,
    /// The source's: the source's inherited values are set explicitly on the target topic.
    Source,
}

/// ferry-specific ACL sync options (MM2 has none of these; all default off, which is MM2's
/// behaviour).
#[derive(Debug, Clone, Default)]
pub struct AclSyncOptions {
    /// Also copy PREFIXED topic ACLs, the prefix renamed by the policy
    /// (`ferry.sync.acls.prefixed`).
    pub prefixed: bool,
    /// Also copy GROUP ACLs of the groups [`FlowSettings::group_filter`] accepts, under the
    /// same names (`ferry.sync.acls.groups`).
    pub groups: bool,
    /// Delete from the target the ACLs ferry created whose source ACL is gone
    /// (`ferry.sync.acls.delete`). ferry records what it created in a compacted topic on the
    /// target and never deletes anything else.
    pub delete: bool,
}

impl FlowSettings {
    /// A flow with every default.
    ///
    /// # Errors
    /// Only if MM2's default filter patterns failed to compile, which a unit test rules out.
    pub fn new(source: impl Into<String>, target: impl Into<String>) -> Result<Self, MirrorError> {
        let source = source.into();
        let topic_filter =
            TopicFilter::from_config(None, None).map_err(|e| MirrorError::InvalidSettings {
                field: "topics",
                message: e.to_string(),
            })?;
        let exclude = PatternList::parse(
            "config.properties.exclude",
            DEFAULT_CONFIG_PROPERTIES_EXCLUDE,
        )
        .map_err(|e| MirrorError::InvalidSettings {
            field: "config.properties.exclude",
            message: e.to_string(),
        })?;
        Ok(Self {
            policy: AnyReplicationPolicy::new(PolicyKind::Default, ".", true, Some(source.clone())),
            source,
            target: target.into(),
            topic_filter,
            heartbeats_replication: true,
            replication_factor: -1,
            refresh_topics_interval: Duration::from_secs(600),
            start: StartPosition::Earliest,
            isolation: Isolation::ReadCommitted,
            emit_heartbeats: true,
            heartbeats_interval: Duration::from_secs(1),
            heartbeats_replication_factor: -1,
            emit_offset_syncs: true,
            offset_syncs_location: OffsetSyncsLocation::Source,
            offset_syncs_replication_factor: -1,
            offset_sync_idle_interval: Duration::from_secs(1),
            target_compression: None,
            config_properties_exclude: exclude,
            on_offset_out_of_range: PositionLossPolicy::StopPartition,
            on_truncation: PositionLossPolicy::StopPartition,
            on_topic_recreated: PositionLossPolicy::StopPartition,
            progress_group: None,
            progress_interval: Duration::from_secs(1),
            group_filter: GroupFilter::from_config(None, None).map_err(|e| {
                MirrorError::InvalidSettings {
                    field: "groups",
                    message: e.to_string(),
                }
            })?,
            emit_checkpoints: true,
            checkpoints_interval: Duration::from_secs(60),
            checkpoints_replication_factor: -1,
            sync_group_offsets: false,
            sync_group_offsets_interval: Duration::from_secs(60),
            refresh_groups_interval: Duration::from_secs(600),
            sync_topic_configs: Some(Duration::from_secs(600)),
            use_defaults_from: DefaultsFrom::Target,
            sync_topic_acls: Some(Duration::from_secs(600)),
            acl_sync: AclSyncOptions::default(),
        })
    }

    /// Whether consumer-group offsets are translated at all (checkpoints or group sync on);
    /// then the offset maps are also persisted (`crate::map_store`).
    pub fn groups_enabled(&self) -> bool {
        self.emit_checkpoints || self.sync_group_offsets
    }

    /// `source->target`, for logs and events.
    pub fn name(&self) -> String {
        format!("{}->{}", self.source, self.target)
    }

    /// The progress group: [`FlowSettings::progress_group`] or `ferry-<source>-<target>`.
    pub fn progress_group_id(&self) -> String {
        self.progress_group
            .clone()
            .unwrap_or_else(|| format!("ferry-{}-{}", self.source, self.target))
    }

    fn validate(&self, clusters: &BTreeMap<String, ConnectionConfig>) -> Result<(), MirrorError> {
        let bad = |field, message: String| Err(MirrorError::InvalidSettings { field, message });
        for alias in [&self.source, &self.target] {
            if !clusters.contains_key(alias) {
                return bad(
                    "flows",
                    format!("flow {} names unknown cluster {alias:?}", self.name()),
                );
            }
        }
        if self.source == self.target {
            return bad(
                "flows",
                format!("flow {} replicates a cluster into itself", self.name()),
            );
        }
        for (field, rf) in [
            ("replication.factor", self.replication_factor),
            (
                "heartbeats.topic.replication.factor",
                self.heartbeats_replication_factor,
            ),
            (
                "offset-syncs.topic.replication.factor",
                self.offset_syncs_replication_factor,
            ),
            (
                "checkpoints.topic.replication.factor",
                self.checkpoints_replication_factor,
            ),
        ] {
            if rf == 0 || rf < -1 {
                return bad(
                    field,
                    format!("must be positive or -1 (broker default), not {rf}"),
                );
            }
        }
        for (field, d) in [
            (
                "refresh.topics.interval.seconds",
                self.refresh_topics_interval,
            ),
            ("emit.heartbeats.interval.seconds", self.heartbeats_interval),
            ("progress interval", self.progress_interval),
            ("offset sync idle interval", self.offset_sync_idle_interval),
            (
                "emit.checkpoints.interval.seconds",
                self.checkpoints_interval,
            ),
            (
                "sync.group.offsets.interval.seconds",
                self.sync_group_offsets_interval,
            ),
            (
                "refresh.groups.interval.seconds",
                self.refresh_groups_interval,
            ),
            (
                "sync.topic.configs.interval.seconds",
                self.sync_topic_configs.unwrap_or(Duration::MAX),
            ),
            (
                "sync.topic.acls.interval.seconds",
                self.sync_topic_acls.unwrap_or(Duration::MAX),
            ),
        ] {
            if d.is_zero() {
                return bad(field, "must be positive".to_owned());
            }
        }
        if self.progress_group_id().is_empty() {
            return bad("progress group", "must not be empty".to_owned());
        }
        Ok(())
    }
}

/// Settings of one engine: the clusters it talks to and its flows.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Connection settings by cluster alias.
    pub clusters: BTreeMap<String, ConnectionConfig>,
    /// The flows to run.
    pub flows: Vec<FlowSettings>,
    /// Bytes of outgoing batches that may wait for their acknowledgement, all flows together.
    /// When exhausted, fetching pauses. A single batch larger than the budget is still admitted
    /// alone. Default 64 MiB.
    pub in_flight_bytes: usize,
    /// Fetch `max_bytes` per response. Default 16 MiB (capped at a quarter of the budget).
    pub fetch_max_bytes: usize,
    /// Fetch `partition_max_bytes`. Default 1 MiB.
    pub fetch_partition_max_bytes: usize,
    /// Fetch `max_wait`. Default 500 ms.
    pub fetch_max_wait: Duration,
    /// Capacity of the event channel (slow receivers lose the oldest events). Default 1024.
    pub event_capacity: usize,
}

impl EngineSettings {
    /// Settings with no cluster and no flow, and every default.
    pub fn new() -> Self {
        Self {
            clusters: BTreeMap::new(),
            flows: Vec::new(),
            in_flight_bytes: DEFAULT_IN_FLIGHT_BYTES,
            fetch_max_bytes: 16 << 20,
            fetch_partition_max_bytes: 1 << 20,
            fetch_max_wait: Duration::from_millis(500),
            event_capacity: 1024,
        }
    }

    /// Adds a cluster.
    #[must_use]
    pub fn with_cluster(mut self, alias: impl Into<String>, config: ConnectionConfig) -> Self {
        self.clusters.insert(alias.into(), config);
        self
    }

    /// Adds a flow.
    #[must_use]
    pub fn with_flow(mut self, flow: FlowSettings) -> Self {
        self.flows.push(flow);
        self
    }

    /// Fetch `max_bytes` actually used: at most a quarter of the budget, at least 64 KiB.
    pub fn effective_fetch_max_bytes(&self) -> usize {
        self.fetch_max_bytes
            .min(self.in_flight_bytes / 4)
            .max(64 << 10)
    }

    /// Checks every rule; no I/O.
    ///
    /// # Errors
    /// [`MirrorError::InvalidSettings`] naming the field.
    pub fn validate(&self) -> Result<(), MirrorError> {
        let bad = |field, message: &str| {
            Err(MirrorError::InvalidSettings {
                field,
                message: message.to_owned(),
            })
        };
        if self.flows.is_empty() {
            return bad("flows", "no flow is enabled");
        }
        if self.in_flight_bytes < (1 << 20) {
            return bad("in-flight bytes", "must be at least 1 MiB");
        }
        if i32::try_from(self.fetch_max_bytes).is_err() || self.fetch_partition_max_bytes == 0 {
            return bad("fetch max bytes", "must be positive and below 2 GiB");
        }
        if i32::try_from(self.fetch_partition_max_bytes).is_err() {
            return bad("fetch partition max bytes", "must be below 2 GiB");
        }
        if self.event_capacity == 0 {
            return bad("event capacity", "must be positive");
        }
        let mut seen = std::collections::BTreeSet::new();
        for flow in &self.flows {
            flow.validate(&self.clusters)?;
            if !seen.insert((flow.source.clone(), flow.target.clone())) {
                return Err(MirrorError::InvalidSettings {
                    field: "flows",
                    message: format!("flow {} is listed twice", flow.name()),
                });
            }
        }
        Ok(())
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> ConnectionConfig {
        ConnectionConfig::builder()
            .with_bootstrap(["127.0.0.1:9092"])
            .build()
            .unwrap()
    }

    fn settings() -> EngineSettings {
        EngineSettings::new()
            .with_cluster("A", cluster())
            .with_cluster("B", cluster())
            .with_flow(FlowSettings::new("A", "B").unwrap())
    }

    #[test]
    fn defaults_validate() {
        let s = settings();
        s.validate().unwrap();
        let f = &s.flows[0];
        assert_eq!(f.progress_group_id(), "ferry-A-B");
        assert_eq!(f.isolation, Isolation::ReadCommitted);
        assert_eq!(f.refresh_topics_interval, Duration::from_secs(600));
        assert!(f.config_properties_exclude.matches("min.insync.replicas"));
        assert!(!f.config_properties_exclude.matches("cleanup.policy"));
        assert_eq!(s.effective_fetch_max_bytes(), 16 << 20);
    }

    #[test]
    fn rejects_unknown_cluster_self_flow_bad_rf_and_duplicates() {
        let mut s = settings();
        s.flows[0].target = "C".into();
        assert!(matches!(
            s.validate(),
            Err(MirrorError::InvalidSettings { field: "flows", .. })
        ));

        let mut s = settings();
        s.flows[0].target = "A".into();
        assert!(s.validate().is_err());

        let mut s = settings();
        s.flows[0].replication_factor = 0;
        assert!(matches!(
            s.validate(),
            Err(MirrorError::InvalidSettings {
                field: "replication.factor",
                ..
            })
        ));

        let s = settings().with_flow(FlowSettings::new("A", "B").unwrap());
        assert!(s.validate().is_err());

        let mut s = settings();
        s.flows[0].heartbeats_interval = Duration::ZERO;
        assert!(s.validate().is_err());

        let mut s = settings();
        s.in_flight_bytes = 1000;
        assert!(s.validate().is_err());

        assert!(EngineSettings::new().validate().is_err());
    }
}
