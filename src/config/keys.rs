//! The keys of `mm2.properties`: MirrorMaker 2's own keys, the Kafka client keys that can be
//! scoped to a cluster or a client, and the Connect keys ferry accepts but ignores.
//!
//! [`MirrorKey`] parses MM2's spellings, including removed aliases (`topics.blacklist`).
//! Unknown keys get the nearest known key as a suggestion (edit distance, with `_` read as
//! `.`).
//!
//! # References
//! - `connect/mirror/src/main/java/org/apache/kafka/connect/mirror/MirrorMakerConfig.java`,
//!   `MirrorConnectorConfig.java`, `MirrorSourceConfig.java`, `MirrorCheckpointConfig.java`,
//!   `MirrorHeartbeatConfig.java`
//! - `clients/src/main/java/org/apache/kafka/clients/producer/ProducerConfig.java`,
//!   `consumer/ConsumerConfig.java`, `admin/AdminClientConfig.java`,
//!   `common/config/SslConfigs.java`, `common/config/SaslConfigs.java`
//! - `connect/runtime/src/main/java/org/apache/kafka/connect/runtime/WorkerConfig.java`,
//!   `distributed/DistributedConfig.java`, `ConnectorConfig.java`
//! - KIP-629 (`*.exclude` names), KAFKA-17529 (`*.blacklist` removed in 4.0)

use std::fmt;
use std::str::FromStr;

/// How a key's value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    Bool,
    Int,
    Long,
    Short,
    List,
    Str,
    Class,
    Password,
    /// One of these, case-insensitively.
    Choice(&'static [&'static str]),
    /// A whole number of seconds.
    Seconds,
    /// A whole number of milliseconds.
    Millis,
}

/// Where a key has an effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyScope {
    /// Only at top level (`clusters`, `config.providers`).
    TopOnly,
    /// Per flow: top level (default for all flows) or `{S}->{T}.`.
    Flow,
    /// Per cluster connection: top level (default for all clusters) or `{alias}.`.
    Cluster,
    /// A Connect worker key of the target cluster: `{T}.`, `{S}->{T}.`, or top level (which MM2
    /// dedicated mode ignores and ferry honours with a notice).
    TargetWorker,
    /// Accepted anywhere and ignored.
    Ignored(&'static str),
}

macro_rules! mirror_keys {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $kind:expr, $scope:expr; )*) => {
        /// A key of `mm2.properties` as MirrorMaker 2 spells it (without scope prefix).
        ///
        /// `FromStr` accepts the canonical names and MM2's removed aliases; [`MirrorKey::as_str`]
        /// gives the canonical name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum MirrorKey {
            $( $(#[$doc])* $variant, )*
        }

        const SPECS: &[(MirrorKey, &str, ValueKind, KeyScope)] = &[
            $( (MirrorKey::$variant, $name, $kind, $scope), )*
        ];
    };
}

use KeyScope::{Cluster, Flow, TargetWorker, TopOnly};
use ValueKind::{Bool, Class, Int, List, Long, Millis, Password, Seconds, Short, Str};

const CONNECT_STATE: &str = "Kafka Connect state; ferry keeps its progress in the target cluster";
const CONNECTOR_META: &str = "set by MM2 dedicated mode itself; ferry derives it from the flow";
const WORKER: &str = "a Kafka Connect worker setting; ferry does not run Connect";
const TLS_TUNING: &str =
    "ferry's TLS (rustls) chooses cipher suites and algorithms itself from a safe default set";
const SASL_EXTRA: &str = "only used by SASL mechanisms or custom login classes ferry does not implement (GSSAPI, OAUTHBEARER)";
const METRICS: &str = "ferry exposes its own metrics";

/// Offset-sync topic locations.
pub(crate) const LOCATIONS: &[&str] = &["source", "target"];

mirror_keys! {
    /// `clusters`: the cluster aliases (required).
    Clusters = "clusters", List, TopOnly;
    /// `config.providers`: config-provider aliases (KIP-297).
    ConfigProviders = "config.providers", List, TopOnly;

    /// `enabled` (as `{S}->{T}.enabled`): whether a flow runs. Default `false`.
    Enabled = "enabled", Bool, Flow;
    /// `topics`: include list. Default `.*`.
    Topics = "topics", List, Flow;
    /// `topics.exclude` (alias `topics.blacklist`, removed in 4.0).
    TopicsExclude = "topics.exclude", List, Flow;
    /// `groups`: include list. Default `.*`.
    Groups = "groups", List, Flow;
    /// `groups.exclude` (alias `groups.blacklist`, removed in 4.0).
    GroupsExclude = "groups.exclude", List, Flow;
    /// `topic.filter.class`: only MM2's `DefaultTopicFilter`.
    TopicFilterClass = "topic.filter.class", Class, Flow;
    /// `group.filter.class`: only MM2's `DefaultGroupFilter`.
    GroupFilterClass = "group.filter.class", Class, Flow;
    /// `config.property.filter.class`: only MM2's `DefaultConfigPropertyFilter`.
    ConfigPropertyFilterClass = "config.property.filter.class", Class, Flow;
    /// `forwarding.admin.class` (KIP-787): only Kafka's `ForwardingAdmin`.
    ForwardingAdminClass = "forwarding.admin.class", Class, Flow;
    /// `replication.policy.class`.
    ReplicationPolicyClass = "replication.policy.class", Class, Flow;
    /// `replication.policy.separator`. Default `.`.
    ReplicationPolicySeparator = "replication.policy.separator", Str, Flow;
    /// `replication.policy.internal.topic.separator.enabled` (KIP-949). Default `true`.
    InternalTopicSeparatorEnabled = "replication.policy.internal.topic.separator.enabled", Bool, Flow;
    /// `replication.factor` of created remote topics. Default 2; `-1` = broker default.
    ReplicationFactor = "replication.factor", Int, Flow;
    /// `offset-syncs.topic.replication.factor`. Default 3.
    OffsetSyncsTopicReplicationFactor = "offset-syncs.topic.replication.factor", Short, Flow;
    /// `checkpoints.topic.replication.factor`. Default 3.
    CheckpointsTopicReplicationFactor = "checkpoints.topic.replication.factor", Short, Flow;
    /// `heartbeats.topic.replication.factor`. Default 3.
    HeartbeatsTopicReplicationFactor = "heartbeats.topic.replication.factor", Short, Flow;
    /// `refresh.topics.enabled`. Default `true`.
    RefreshTopicsEnabled = "refresh.topics.enabled", Bool, Flow;
    /// `refresh.topics.interval.seconds`. Default 600.
    RefreshTopicsIntervalSeconds = "refresh.topics.interval.seconds", Seconds, Flow;
    /// `refresh.groups.enabled`. Default `true`.
    RefreshGroupsEnabled = "refresh.groups.enabled", Bool, Flow;
    /// `refresh.groups.interval.seconds`. Default 600.
    RefreshGroupsIntervalSeconds = "refresh.groups.interval.seconds", Seconds, Flow;
    /// `sync.topic.configs.enabled`. Default `true`.
    SyncTopicConfigsEnabled = "sync.topic.configs.enabled", Bool, Flow;
    /// `sync.topic.configs.interval.seconds`. Default 600.
    SyncTopicConfigsIntervalSeconds = "sync.topic.configs.interval.seconds", Seconds, Flow;
    /// `sync.topic.acls.enabled`. Default `true`.
    SyncTopicAclsEnabled = "sync.topic.acls.enabled", Bool, Flow;
    /// `sync.topic.acls.interval.seconds`. Default 600.
    SyncTopicAclsIntervalSeconds = "sync.topic.acls.interval.seconds", Seconds, Flow;
    /// `emit.checkpoints.enabled`. Default `true`.
    EmitCheckpointsEnabled = "emit.checkpoints.enabled", Bool, Flow;
    /// `emit.checkpoints.interval.seconds`. Default 60.
    EmitCheckpointsIntervalSeconds = "emit.checkpoints.interval.seconds", Seconds, Flow;
    /// `sync.group.offsets.enabled` (KIP-545). Default `false`.
    SyncGroupOffsetsEnabled = "sync.group.offsets.enabled", Bool, Flow;
    /// `sync.group.offsets.interval.seconds`. Default 60.
    SyncGroupOffsetsIntervalSeconds = "sync.group.offsets.interval.seconds", Seconds, Flow;
    /// `emit.heartbeats.enabled`. Default `true`.
    EmitHeartbeatsEnabled = "emit.heartbeats.enabled", Bool, Flow;
    /// `emit.heartbeats.interval.seconds`. Default 1.
    EmitHeartbeatsIntervalSeconds = "emit.heartbeats.interval.seconds", Seconds, Flow;
    /// `heartbeats.replication.enabled` (KIP-1089, 4.0). Default `true`.
    HeartbeatsReplicationEnabled = "heartbeats.replication.enabled", Bool, Flow;
    /// `offset-syncs.topic.location` (KIP-716): `source` or `target`. Default `source`.
    OffsetSyncsTopicLocation = "offset-syncs.topic.location", ValueKind::Choice(LOCATIONS), Flow;
    /// `emit.offset-syncs.enabled` (KIP-1031). Default `true`.
    EmitOffsetSyncsEnabled = "emit.offset-syncs.enabled", Bool, Flow;
    /// `ferry.sync.acls.prefixed` (ferry only): ACL sync also copies PREFIXED topic ACLs, the
    /// prefix renamed by the replication policy. Default `false` (MM2 copies literal ones only).
    FerrySyncAclsPrefixed = "ferry.sync.acls.prefixed", Bool, Flow;
    /// `ferry.sync.acls.groups` (ferry only): ACL sync also copies GROUP ACLs of the groups
    /// `groups`/`groups.exclude` select. Default `false`.
    FerrySyncAclsGroups = "ferry.sync.acls.groups", Bool, Flow;
    /// `ferry.sync.acls.delete` (ferry only): ACL sync deletes from the target the ACLs it
    /// created whose source ACL is gone (never others). Default `false` (MM2 never deletes).
    FerrySyncAclsDelete = "ferry.sync.acls.delete", Bool, Flow;
    /// `offset.lag.max`. Default 100.
    OffsetLagMax = "offset.lag.max", Long, Flow;
    /// `config.properties.exclude` (alias `config.properties.blacklist`, removed in 4.0).
    ConfigPropertiesExclude = "config.properties.exclude", List, Flow;
    /// `use.defaults.from` (KIP-894): `source` or `target`. Default `target`.
    UseDefaultsFrom = "use.defaults.from", ValueKind::Choice(LOCATIONS), Flow;
    /// `admin.timeout.ms`. Default 60000.
    AdminTimeoutMs = "admin.timeout.ms", Millis, Flow;
    /// `consumer.poll.timeout.ms`. Default 1000.
    ConsumerPollTimeoutMs = "consumer.poll.timeout.ms", Millis, Flow;
    /// `tasks.max`: accepted and reported; ferry assigns partitions itself.
    TasksMax = "tasks.max", Int, Flow;
    /// `exactly.once.support` (KIP-618, connector key): `requested` or `required`.
    ExactlyOnceSupport = "exactly.once.support", ValueKind::Choice(&["requested", "required"]), Flow;
    /// `use.incremental.alter.configs` (3.5–3.9): `requested`, `required` or `never`.
    UseIncrementalAlterConfigs = "use.incremental.alter.configs", ValueKind::Choice(&["requested", "required", "never"]), KeyScope::Ignored("ferry always uses IncrementalAlterConfigs, as MM2 4.0 does");
    /// `add.source.alias.to.metrics` (KIP-911, 3.5–3.9).
    AddSourceAliasToMetrics = "add.source.alias.to.metrics", Bool, KeyScope::Ignored("ferry always tags metrics with the source alias, as MM2 4.0 does");

    /// `bootstrap.servers` (required per cluster).
    BootstrapServers = "bootstrap.servers", List, Cluster;
    /// `security.protocol`. Default `PLAINTEXT`.
    SecurityProtocol = "security.protocol", ValueKind::Choice(&["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]), Cluster;
    /// `sasl.mechanism`. Kafka's default is `GSSAPI`, which ferry does not implement.
    SaslMechanism = "sasl.mechanism", Str, Cluster;
    /// `sasl.jaas.config` (secret).
    SaslJaasConfig = "sasl.jaas.config", Password, Cluster;
    /// `ssl.truststore.location`.
    SslTruststoreLocation = "ssl.truststore.location", Str, Cluster;
    /// `ssl.truststore.password` (secret).
    SslTruststorePassword = "ssl.truststore.password", Password, Cluster;
    /// `ssl.truststore.type`: only `PEM` is supported.
    SslTruststoreType = "ssl.truststore.type", Str, Cluster;
    /// `ssl.truststore.certificates`: inline PEM (KIP-651).
    SslTruststoreCertificates = "ssl.truststore.certificates", Password, Cluster;
    /// `ssl.keystore.location`.
    SslKeystoreLocation = "ssl.keystore.location", Str, Cluster;
    /// `ssl.keystore.password` (secret).
    SslKeystorePassword = "ssl.keystore.password", Password, Cluster;
    /// `ssl.keystore.type`: only `PEM` is supported.
    SslKeystoreType = "ssl.keystore.type", Str, Cluster;
    /// `ssl.keystore.key`: inline PEM private key (KIP-651, secret).
    SslKeystoreKey = "ssl.keystore.key", Password, Cluster;
    /// `ssl.keystore.certificate.chain`: inline PEM chain (KIP-651).
    SslKeystoreCertificateChain = "ssl.keystore.certificate.chain", Password, Cluster;
    /// `ssl.key.password` (secret).
    SslKeyPassword = "ssl.key.password", Password, Cluster;
    /// `ssl.endpoint.identification.algorithm`: `https` (default) or empty to disable.
    SslEndpointIdentificationAlgorithm = "ssl.endpoint.identification.algorithm", Str, Cluster;
    /// `ssl.protocol`. Default `TLSv1.3`.
    SslProtocol = "ssl.protocol", Str, Cluster;
    /// `ssl.enabled.protocols`. Default `TLSv1.2,TLSv1.3`.
    SslEnabledProtocols = "ssl.enabled.protocols", List, Cluster;

    /// `exactly.once.source.support` (KIP-618, worker key): `disabled`, `preparing`, `enabled`.
    ExactlyOnceSourceSupport = "exactly.once.source.support", ValueKind::Choice(&["disabled", "preparing", "enabled"]), TargetWorker;
    /// `offset.flush.interval.ms` (worker key); ferry records progress after every
    /// acknowledged batch instead.
    OffsetFlushIntervalMs = "offset.flush.interval.ms", Millis, TargetWorker;
    /// `offset.flush.timeout.ms` (worker key); see `offset.flush.interval.ms`.
    OffsetFlushTimeoutMs = "offset.flush.timeout.ms", Millis, TargetWorker;
    /// `topic.creation.enable` (worker key); remote topics are created by the mirror itself.
    TopicCreationEnable = "topic.creation.enable", Bool, TargetWorker;

    /// `tasks.max.enforce` (Connect).
    TasksMaxEnforce = "tasks.max.enforce", Bool, KeyScope::Ignored("ferry assigns partitions itself");
    /// `name` (Connect connector name).
    Name = "name", Str, KeyScope::Ignored(CONNECTOR_META);
    /// `connector.class`.
    ConnectorClass = "connector.class", Class, KeyScope::Ignored(CONNECTOR_META);
    /// `source.cluster.alias`.
    SourceClusterAlias = "source.cluster.alias", Str, KeyScope::Ignored(CONNECTOR_META);
    /// `target.cluster.alias`.
    TargetClusterAlias = "target.cluster.alias", Str, KeyScope::Ignored(CONNECTOR_META);
    /// `metric.reporters`.
    MetricReporters = "metric.reporters", List, KeyScope::Ignored(METRICS);
    /// `config.action.reload` (Connect).
    ConfigActionReload = "config.action.reload", Str, KeyScope::Ignored(WORKER);
    /// `transaction.boundary` (KIP-618; MM2 defines none).
    TransactionBoundary = "transaction.boundary", Str, KeyScope::Ignored("ferry commits at batch boundaries");
    /// `transaction.boundary.interval.ms` (KIP-618).
    TransactionBoundaryIntervalMs = "transaction.boundary.interval.ms", Millis, KeyScope::Ignored("ferry commits at batch boundaries");
    /// `dedicated.mode.enable.internal.rest` (KIP-710).
    DedicatedModeEnableInternalRest = "dedicated.mode.enable.internal.rest", Bool, KeyScope::Ignored("ferry processes coordinate through the target cluster, not a REST server");
    /// `listeners` (Connect REST).
    Listeners = "listeners", List, KeyScope::Ignored("ferry has no Connect REST server");
    /// `group.id` (Connect worker group).
    GroupId = "group.id", Str, KeyScope::Ignored(WORKER);
    /// `plugin.path` (Connect).
    PluginPath = "plugin.path", List, KeyScope::Ignored(WORKER);
    /// `scheduled.rebalance.max.delay.ms` (Connect).
    ScheduledRebalanceMaxDelayMs = "scheduled.rebalance.max.delay.ms", Millis, KeyScope::Ignored(WORKER);
    /// `ssl.cipher.suites`.
    SslCipherSuites = "ssl.cipher.suites", List, KeyScope::Ignored(TLS_TUNING);
    /// `ssl.provider`.
    SslProvider = "ssl.provider", Str, KeyScope::Ignored(TLS_TUNING);
    /// `ssl.keymanager.algorithm`.
    SslKeymanagerAlgorithm = "ssl.keymanager.algorithm", Str, KeyScope::Ignored(TLS_TUNING);
    /// `ssl.trustmanager.algorithm`.
    SslTrustmanagerAlgorithm = "ssl.trustmanager.algorithm", Str, KeyScope::Ignored(TLS_TUNING);
    /// `ssl.secure.random.implementation`.
    SslSecureRandomImplementation = "ssl.secure.random.implementation", Str, KeyScope::Ignored(TLS_TUNING);
    /// `ssl.engine.factory.class`.
    SslEngineFactoryClass = "ssl.engine.factory.class", Class, KeyScope::Ignored(TLS_TUNING);
    /// `sasl.client.callback.handler.class`.
    SaslClientCallbackHandlerClass = "sasl.client.callback.handler.class", Class, KeyScope::Ignored(SASL_EXTRA);
    /// `sasl.login.callback.handler.class`.
    SaslLoginCallbackHandlerClass = "sasl.login.callback.handler.class", Class, KeyScope::Ignored(SASL_EXTRA);
    /// `sasl.login.class`.
    SaslLoginClass = "sasl.login.class", Class, KeyScope::Ignored(SASL_EXTRA);
    /// `sasl.kerberos.service.name`.
    SaslKerberosServiceName = "sasl.kerberos.service.name", Str, KeyScope::Ignored(SASL_EXTRA);
    /// `security.providers`.
    SecurityProviders = "security.providers", Str, KeyScope::Ignored(TLS_TUNING);
}

/// Removed spellings MM2 once accepted: `(alias, canonical key, Kafka release that removed it)`.
const ALIASES: &[(&str, MirrorKey, &str)] = &[
    ("topics.blacklist", MirrorKey::TopicsExclude, "4.0"),
    ("groups.blacklist", MirrorKey::GroupsExclude, "4.0"),
    (
        "config.properties.blacklist",
        MirrorKey::ConfigPropertiesExclude,
        "4.0",
    ),
];

/// Key prefixes ferry accepts and ignores, with the reason.
const IGNORED_PREFIXES: &[(&str, &str)] = &[
    ("offset.storage.", CONNECT_STATE),
    ("config.storage.", CONNECT_STATE),
    ("status.storage.", CONNECT_STATE),
    (
        "key.converter",
        "ferry copies record bytes unchanged (MM2 needs ByteArrayConverter for that)",
    ),
    (
        "value.converter",
        "ferry copies record bytes unchanged (MM2 needs ByteArrayConverter for that)",
    ),
    (
        "header.converter",
        "ferry copies headers unchanged (MM2 needs ByteArrayConverter for that)",
    ),
    (
        "transforms",
        "Connect single message transforms are not supported; records are copied unchanged",
    ),
    (
        "predicates",
        "Connect single message transforms are not supported; records are copied unchanged",
    ),
    (
        "errors.",
        "a Connect error-handling setting; ferry raises typed events instead",
    ),
    ("rest.", "ferry has no Connect REST server"),
    ("admin.listeners", "ferry has no Connect REST server"),
    ("dedicated.mode.", "ferry does not run MM2's dedicated mode"),
    ("worker.", WORKER),
    ("task.", WORKER),
    ("inter.worker.", WORKER),
    ("connect.", WORKER),
    ("sasl.login.", SASL_EXTRA),
    ("sasl.kerberos.", SASL_EXTRA),
    ("sasl.oauthbearer.", SASL_EXTRA),
    ("metrics.context.", METRICS),
];

impl MirrorKey {
    /// The canonical MM2 spelling.
    pub fn as_str(self) -> &'static str {
        spec(self).1
    }

    pub(crate) fn kind(self) -> ValueKind {
        spec(self).2
    }

    pub(crate) fn scope(self) -> KeyScope {
        spec(self).3
    }

    /// Whether the value is a secret (Kafka's `PASSWORD` type).
    pub fn is_secret(self) -> bool {
        self.kind() == Password
    }

    /// Parses a key, also accepting removed aliases; returns the key and, for an alias, the
    /// Kafka release that removed it.
    pub fn parse_with_alias(s: &str) -> Option<(Self, Option<&'static str>)> {
        if let Some((key, ..)) = SPECS.iter().find(|(_, name, ..)| *name == s) {
            return Some((*key, None));
        }
        ALIASES
            .iter()
            .find(|(alias, ..)| *alias == s)
            .map(|(_, key, removed)| (*key, Some(*removed)))
    }

    /// Every key, in declaration order.
    pub fn all() -> impl Iterator<Item = Self> {
        SPECS.iter().map(|(key, ..)| *key)
    }
}

fn spec(key: MirrorKey) -> &'static (MirrorKey, &'static str, ValueKind, KeyScope) {
    // SPECS holds every variant exactly once (checked by a unit test), so the search always
    // succeeds; the fallback keeps this total without a panic path.
    SPECS.iter().find(|(k, ..)| *k == key).unwrap_or(&(
        MirrorKey::Clusters,
        "clusters",
        List,
        TopOnly,
    ))
}

impl fmt::Display for MirrorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `mm2.properties` key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key `{key}`{}", suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
#[non_exhaustive]
pub struct UnknownKeyError {
    /// The key as given.
    pub key: String,
    /// The nearest known key, when one is close.
    pub suggestion: Option<&'static str>,
}

impl FromStr for MirrorKey {
    type Err = UnknownKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_with_alias(s)
            .map(|(key, _)| key)
            .ok_or_else(|| UnknownKeyError {
                key: s.to_owned(),
                suggestion: nearest(s, all_key_names()),
            })
    }
}

/// Which Kafka client a client key configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ClientRole {
    /// The producer writing to a target cluster.
    Producer,
    /// The consumer reading a source cluster.
    Consumer,
    /// The admin client of a cluster.
    Admin,
}

impl ClientRole {
    /// The key prefix: `producer`, `consumer` or `admin`.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Producer => "producer",
            Self::Consumer => "consumer",
            Self::Admin => "admin",
        }
    }

    pub(crate) const ALL: [Self; 3] = [Self::Producer, Self::Consumer, Self::Admin];

    fn bit(self) -> u8 {
        match self {
            Self::Producer => P,
            Self::Consumer => C,
            Self::Admin => A,
        }
    }
}

const P: u8 = 1;
const C: u8 = 2;
const A: u8 = 4;

/// Kafka client keys other than bootstrap and security keys: `(name, roles, kind)`.
const CLIENT_KEYS: &[(&str, u8, ValueKind)] = &[
    ("client.id", P | C | A, Str),
    (
        "client.dns.lookup",
        P | C | A,
        ValueKind::Choice(&[
            "use_all_dns_ips",
            "resolve_canonical_bootstrap_servers_only",
        ]),
    ),
    ("connections.max.idle.ms", P | C | A, Long),
    ("metadata.max.age.ms", P | C | A, Long),
    ("receive.buffer.bytes", P | C | A, Int),
    ("send.buffer.bytes", P | C | A, Int),
    ("reconnect.backoff.ms", P | C | A, Long),
    ("reconnect.backoff.max.ms", P | C | A, Long),
    ("retry.backoff.ms", P | C | A, Long),
    ("retry.backoff.max.ms", P | C | A, Long),
    ("request.timeout.ms", P | C | A, Int),
    ("socket.connection.setup.timeout.ms", P | C | A, Long),
    ("socket.connection.setup.timeout.max.ms", P | C | A, Long),
    ("metrics.num.samples", P | C | A, Int),
    (
        "metrics.recording.level",
        P | C | A,
        ValueKind::Choice(&["INFO", "DEBUG", "TRACE"]),
    ),
    ("metrics.sample.window.ms", P | C | A, Long),
    ("auto.include.jmx.reporter", P | C | A, Bool),
    ("enable.metrics.push", P | C | A, Bool),
    (
        "metadata.recovery.strategy",
        P | C | A,
        ValueKind::Choice(&["none", "rebootstrap"]),
    ),
    ("metadata.recovery.rebootstrap.trigger.ms", P | C | A, Long),
    ("interceptor.classes", P | C, List),
    ("default.api.timeout.ms", C | A, Int),
    ("retries", P | A, Int),
    ("acks", P, ValueKind::Choice(&["all", "-1", "0", "1"])),
    ("batch.size", P, Int),
    ("buffer.memory", P, Long),
    (
        "compression.type",
        P,
        ValueKind::Choice(&["none", "gzip", "snappy", "lz4", "zstd"]),
    ),
    ("compression.gzip.level", P, Int),
    ("compression.lz4.level", P, Int),
    ("compression.zstd.level", P, Int),
    ("delivery.timeout.ms", P, Int),
    ("enable.idempotence", P, Bool),
    ("linger.ms", P, Long),
    ("max.block.ms", P, Long),
    ("max.in.flight.requests.per.connection", P, Int),
    ("max.request.size", P, Int),
    ("metadata.max.idle.ms", P, Long),
    ("partitioner.class", P, Class),
    ("partitioner.ignore.keys", P, Bool),
    ("partitioner.adaptive.partitioning.enable", P, Bool),
    ("partitioner.availability.timeout.ms", P, Long),
    ("transactional.id", P, Str),
    ("transaction.timeout.ms", P, Int),
    ("key.serializer", P, Class),
    ("value.serializer", P, Class),
    ("group.id", C, Str),
    ("group.instance.id", C, Str),
    (
        "group.protocol",
        C,
        ValueKind::Choice(&["classic", "consumer"]),
    ),
    ("group.remote.assignor", C, Str),
    ("session.timeout.ms", C, Int),
    ("heartbeat.interval.ms", C, Int),
    ("partition.assignment.strategy", C, List),
    ("auto.offset.reset", C, Str),
    ("enable.auto.commit", C, Bool),
    ("auto.commit.interval.ms", C, Int),
    ("fetch.min.bytes", C, Int),
    ("fetch.max.bytes", C, Int),
    ("fetch.max.wait.ms", C, Int),
    ("max.partition.fetch.bytes", C, Int),
    ("max.poll.records", C, Int),
    ("max.poll.interval.ms", C, Int),
    (
        "isolation.level",
        C,
        ValueKind::Choice(&["read_committed", "read_uncommitted"]),
    ),
    ("exclude.internal.topics", C, Bool),
    ("allow.auto.create.topics", C, Bool),
    ("check.crcs", C, Bool),
    ("key.deserializer", C, Class),
    ("value.deserializer", C, Class),
    ("client.rack", C, Str),
];

/// A non-security Kafka client key: its kind and whether it applies to `role` (`None`: to
/// any role).
pub(crate) fn client_key(name: &str, role: Option<ClientRole>) -> Option<ValueKind> {
    CLIENT_KEYS
        .iter()
        .find(|(n, roles, _)| *n == name && role.is_none_or(|r| roles & r.bit() != 0))
        .map(|(_, _, kind)| *kind)
}

/// Whether a client key applies to `role`.
pub(crate) fn client_key_applies(name: &str, role: ClientRole) -> bool {
    client_key(name, Some(role)).is_some()
}

/// The reason a key prefix is ignored, if it is one of the ignored prefixes.
pub(crate) fn ignored_prefix(key: &str) -> Option<&'static str> {
    IGNORED_PREFIXES
        .iter()
        .find(|(prefix, _)| key.starts_with(prefix))
        .map(|(_, reason)| *reason)
}

/// Connect worker keys that fall under an ignored prefix, listed so that a misspelling of one
/// gets a suggestion.
const KNOWN_WORKER_KEYS: &[&str] = &[
    "offset.storage.topic",
    "offset.storage.replication.factor",
    "offset.storage.partitions",
    "config.storage.topic",
    "config.storage.replication.factor",
    "status.storage.topic",
    "status.storage.replication.factor",
    "status.storage.partitions",
    "key.converter",
    "value.converter",
    "header.converter",
    "task.shutdown.graceful.timeout.ms",
    "worker.sync.timeout.ms",
    "worker.unsync.backoff.ms",
    "dedicated.mode.enable.internal.rest",
];

/// Every known spelling, for suggestions.
pub(crate) fn all_key_names() -> impl Iterator<Item = &'static str> {
    SPECS
        .iter()
        .map(|(_, name, ..)| *name)
        .chain(ALIASES.iter().map(|(alias, ..)| *alias))
        .chain(CLIENT_KEYS.iter().map(|(name, ..)| *name))
        .chain(KNOWN_WORKER_KEYS.iter().copied())
}

/// Known names after a `producer.`/`consumer.`/`admin.` prefix.
pub(crate) fn client_key_names(role: ClientRole) -> impl Iterator<Item = &'static str> {
    CLIENT_KEYS
        .iter()
        .filter(move |(_, roles, _)| roles & role.bit() != 0)
        .map(|(name, ..)| *name)
        .chain(
            SPECS
                .iter()
                .filter(|(_, _, _, scope)| *scope == Cluster)
                .map(|(_, name, ..)| *name),
        )
}

/// The nearest candidate to `key` by edit distance (with `_` read as `.`, case-insensitive),
/// if it is close enough to be a plausible typo.
pub(crate) fn nearest<'a>(key: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let normalized: Vec<char> = key
        .chars()
        .map(|c| {
            if c == '_' {
                '.'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let budget = (normalized.len() / 3).max(2);
    candidates
        .map(|c| (edit_distance(&normalized, c), c))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &[char], b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        if let Some(first) = cur.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let del = prev.get(j + 1).copied().unwrap_or(usize::MAX) + 1;
            let ins = cur.get(j).copied().unwrap_or(usize::MAX) + 1;
            let sub = prev.get(j).copied().unwrap_or(usize::MAX) + cost;
            if let Some(slot) = cur.get_mut(j + 1) {
                *slot = del.min(ins).min(sub);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(a.len())
}

/// Checks a value against its kind; the error is a reason for
/// [`ConfigError::InvalidValue`](super::ConfigError::InvalidValue).
pub(crate) fn check_value(kind: ValueKind, value: &str) -> Result<(), String> {
    let v = value.trim();
    match kind {
        Bool => parse_bool(v).map(|_| ()),
        Int | Seconds => v
            .parse::<i32>()
            .map(|_| ())
            .map_err(|_| "expected a 32-bit integer".to_owned()),
        Long | Millis => v
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| "expected an integer".to_owned()),
        Short => v
            .parse::<i16>()
            .map(|_| ())
            .map_err(|_| "expected a 16-bit integer".to_owned()),
        ValueKind::Choice(choices) => choice(v, choices).map(|_| ()),
        List | Str | Class | Password => Ok(()),
    }
}

/// Kafka's BOOLEAN: `true`/`false`, case-insensitive, trimmed.
pub(crate) fn parse_bool(v: &str) -> Result<bool, String> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("expected true or false".to_owned())
    }
}

/// One of `choices`, case-insensitively; returns the canonical spelling.
pub(crate) fn choice(v: &str, choices: &[&'static str]) -> Result<&'static str, String> {
    let v = v.trim();
    choices
        .iter()
        .find(|c| c.eq_ignore_ascii_case(v))
        .copied()
        .ok_or_else(|| format!("expected one of: {}", choices.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_exactly_one_spec() {
        for key in MirrorKey::all() {
            assert_eq!(
                SPECS.iter().filter(|(k, ..)| *k == key).count(),
                1,
                "{key:?}"
            );
            assert_eq!(key.as_str().parse::<MirrorKey>(), Ok(key));
        }
        let mut names: Vec<_> = SPECS.iter().map(|(_, n, ..)| *n).collect();
        names.sort_unstable();
        let len = names.len();
        names.dedup();
        assert_eq!(names.len(), len, "duplicate key names");
    }

    #[test]
    fn aliases_parse_to_canonical_keys() {
        assert_eq!(
            "topics.blacklist".parse::<MirrorKey>(),
            Ok(MirrorKey::TopicsExclude)
        );
        assert_eq!(
            MirrorKey::parse_with_alias("groups.blacklist"),
            Some((MirrorKey::GroupsExclude, Some("4.0")))
        );
        assert_eq!(
            MirrorKey::parse_with_alias("topics.exclude"),
            Some((MirrorKey::TopicsExclude, None))
        );
        assert_eq!(MirrorKey::TopicsExclude.to_string(), "topics.exclude");
    }

    #[test]
    fn unknown_keys_suggest_the_nearest() {
        let err = "sync.group.offset.enabled"
            .parse::<MirrorKey>()
            .unwrap_err();
        assert_eq!(err.suggestion, Some("sync.group.offsets.enabled"));
        assert!(
            err.to_string()
                .contains("did you mean `sync.group.offsets.enabled`")
        );
        let err = "offset_flush_timeout".parse::<MirrorKey>().unwrap_err();
        assert_eq!(err.suggestion, Some("offset.flush.timeout.ms"));
        assert_eq!(
            nearest("ack", client_key_names(ClientRole::Producer)),
            Some("acks")
        );
        assert_eq!(
            nearest("task_shutdown_graceful_timeout_ms", all_key_names()),
            Some("task.shutdown.graceful.timeout.ms")
        );
        for name in KNOWN_WORKER_KEYS {
            assert!(
                ignored_prefix(name).is_some() || MirrorKey::parse_with_alias(name).is_some(),
                "{name}"
            );
        }
        assert_eq!(
            "completely.different.thing"
                .parse::<MirrorKey>()
                .unwrap_err()
                .suggestion,
            None
        );
    }

    #[test]
    fn secrets_and_scopes() {
        assert!(MirrorKey::SaslJaasConfig.is_secret());
        assert!(MirrorKey::SslKeystoreKey.is_secret());
        assert!(!MirrorKey::SslTruststoreLocation.is_secret());
        assert_eq!(MirrorKey::Topics.scope(), Flow);
        assert_eq!(MirrorKey::BootstrapServers.scope(), Cluster);
        assert!(matches!(
            MirrorKey::TasksMaxEnforce.scope(),
            KeyScope::Ignored(_)
        ));
    }

    #[test]
    fn client_keys_by_role() {
        assert_eq!(
            client_key("acks", Some(ClientRole::Producer)),
            Some(ValueKind::Choice(&["all", "-1", "0", "1"]))
        );
        assert_eq!(client_key("acks", Some(ClientRole::Consumer)), None);
        assert!(client_key_applies("request.timeout.ms", ClientRole::Admin));
        assert!(client_key_applies("isolation.level", ClientRole::Consumer));
        assert!(!client_key_applies("isolation.level", ClientRole::Producer));
        assert_eq!(ignored_prefix("offset.storage.topic"), Some(CONNECT_STATE));
        assert_eq!(ignored_prefix("topics"), None);
    }

    #[test]
    fn value_checks() {
        assert!(check_value(Bool, " TRUE ").is_ok());
        assert!(check_value(Bool, "yes").is_err());
        assert!(check_value(Int, "+5").is_ok());
        assert!(check_value(Int, "5000000000").is_err());
        assert!(check_value(Short, "40000").is_err());
        assert!(check_value(ValueKind::Choice(LOCATIONS), "Target").is_ok());
        assert_eq!(choice("Target", LOCATIONS), Ok("target"));
        assert!(check_value(ValueKind::Choice(LOCATIONS), "both").is_err());
    }

    #[test]
    fn edit_distance_basics() {
        let d = |a: &str, b: &str| edit_distance(&a.chars().collect::<Vec<_>>(), b);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(d("abc", "abc"), 0);
    }
}
