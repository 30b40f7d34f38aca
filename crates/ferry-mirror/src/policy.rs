//! Replication policies: how remote topics are named, how a remote topic's origin is read back
//! from its name, the names of MM2's internal topics, cycle detection and the topic selection
//! rule.
//!
//! Two policies exist, as in MirrorMaker 2:
//!
//! - [`DefaultReplicationPolicy`] prefixes the source alias: `orders` from `A` becomes
//!   `A.orders`. Any topic containing the separator looks remote (`my.topic` has source `my`),
//!   which is what makes cycle detection work, and what makes a local topic named `B.x` count
//!   as a cycle on a flow into `B`.
//! - [`IdentityReplicationPolicy`] keeps names (except heartbeats, which still become
//!   `A.heartbeats`). It cannot see where a topic came from, so it has **no cycle detection**:
//!   the topology must be acyclic.
//!
//! Internal topic names honour the separator unless
//! `replication.policy.internal.topic.separator.enabled=false` restores `.`.
//!
//! # References
//! - KIP-382 (MirrorMaker 2), KIP-690 (separator-aware internal topic names, 3.1),
//!   KIP-949 (internal separator toggle, 3.5.2/3.6.0), KAFKA-9726 (identity policy, 3.0),
//!   KIP-1089 (`heartbeats.replication.enabled`, 4.0), KAFKA-13397 (`.internal`/`-internal`
//!   never mirrored, 3.2)
//! - `connect/mirror-client/src/main/java/org/apache/kafka/connect/mirror/ReplicationPolicy.java`,
//!   `DefaultReplicationPolicy.java`, `IdentityReplicationPolicy.java`
//! - `connect/mirror/src/main/java/org/apache/kafka/connect/mirror/MirrorSourceConnector.java`
//!   (`isCycle`, `shouldReplicateTopic`); tests `ReplicationPolicyTest`,
//!   `MirrorSourceConnectorTest.testNoCycles`, `testIdentityReplication`

use std::fmt;

use crate::filter::TopicFilter;

/// Kafka's fully qualified class name of the default policy.
pub const DEFAULT_POLICY_CLASS: &str = "org.apache.kafka.connect.mirror.DefaultReplicationPolicy";
/// Kafka's fully qualified class name of the identity policy.
pub const IDENTITY_POLICY_CLASS: &str = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy";
/// Strimzi's identity policy, written for Kafka < 3.0 and still found in configs; it names
/// topics exactly as Kafka's identity policy does.
pub const STRIMZI_IDENTITY_POLICY_CLASS: &str =
    "io.strimzi.kafka.connect.mirror.IdentityReplicationPolicy";
/// The default separator (`replication.policy.separator`).
pub const DEFAULT_SEPARATOR: &str = ".";
/// The heartbeats topic name.
pub const HEARTBEATS_TOPIC: &str = "heartbeats";

/// How topics are named across clusters. Object-safe, so flows can hold
/// `Box<dyn ReplicationPolicy>`; [`AnyReplicationPolicy`] is the closed set ferry ships.
///
/// Methods returning `Option` return `None` where MM2 returns `null`.
pub trait ReplicationPolicy: fmt::Debug + Send + Sync {
    /// `replication.policy.separator`.
    fn separator(&self) -> &str;

    /// The separator used in internal topic names: the separator, or `.` when
    /// `replication.policy.internal.topic.separator.enabled=false` (KIP-949).
    fn internal_separator(&self) -> &str;

    /// The name a topic from `source_alias` takes on the target.
    fn format_remote_topic(&self, source_alias: &str, topic: &str) -> String;

    /// The cluster a topic was replicated from, read from its name, or `None` for a local topic.
    fn topic_source<'a>(&'a self, topic: &'a str) -> Option<&'a str>;

    /// The topic's name one hop upstream, or `None` for a local topic.
    fn upstream_topic<'a>(&'a self, topic: &'a str) -> Option<&'a str>;

    /// The topic's name on the cluster where it was first written: `upstream_topic` applied
    /// until it stops changing.
    fn original_topic<'a>(&'a self, topic: &'a str) -> &'a str {
        let mut current = topic;
        // Every hop of a terminating policy is strictly shorter; the bound only guards a
        // misbehaving implementation.
        for _ in 0..=topic.len() {
            match self.upstream_topic(current) {
                Some(up) if up != current => current = up,
                _ => break,
            }
        }
        current
    }

    /// The heartbeats topic name.
    fn heartbeats_topic(&self) -> &str {
        HEARTBEATS_TOPIC
    }

    /// `mm2-offset-syncs<isep><alias><isep>internal`.
    fn offset_syncs_topic(&self, cluster_alias: &str) -> String {
        let isep = self.internal_separator();
        format!("mm2-offset-syncs{isep}{cluster_alias}{isep}internal")
    }

    /// `<alias><isep>checkpoints<isep>internal`.
    fn checkpoints_topic(&self, cluster_alias: &str) -> String {
        let isep = self.internal_separator();
        format!("{cluster_alias}{isep}checkpoints{isep}internal")
    }

    /// Whether the topic is a heartbeats topic, local or remote (`heartbeats`, `A.heartbeats`).
    fn is_heartbeats_topic(&self, topic: &str) -> bool {
        self.original_topic(topic) == self.heartbeats_topic()
    }

    /// Whether the topic is a checkpoints topic (ends with `<isep>checkpoints<isep>internal`).
    fn is_checkpoints_topic(&self, topic: &str) -> bool {
        let isep = self.internal_separator();
        topic.ends_with(&format!("{isep}checkpoints{isep}internal"))
    }

    /// Whether the topic is one of MM2's internal topics (ends with `<isep>internal`).
    fn is_mm2_internal_topic(&self, topic: &str) -> bool {
        topic.ends_with(&format!("{}internal", self.internal_separator()))
    }

    /// Whether the topic is internal and therefore never replicated: an MM2 internal topic, a
    /// Kafka internal topic (`__` or `.` prefix), or a Connect topic (`-internal` or
    /// `.internal` suffix, KAFKA-13397).
    fn is_internal_topic(&self, topic: &str) -> bool {
        self.is_mm2_internal_topic(topic)
            || topic.starts_with("__")
            || topic.starts_with('.')
            || topic.ends_with("-internal")
            || topic.ends_with(".internal")
    }

    /// Whether replicating `topic` into `target_alias` would close a cycle: some hop of the
    /// topic's name says it came from the target. Always `false` under the identity policy.
    fn is_cycle(&self, topic: &str, target_alias: &str) -> bool {
        let mut current = topic;
        for _ in 0..=topic.len() {
            match self.topic_source(current) {
                None => return false,
                Some(source) if source == target_alias => return true,
                Some(_) => match self.upstream_topic(current) {
                    Some(up) if up != current => current = up,
                    // Identity-like policies: no way to tell, so no cycle.
                    _ => return false,
                },
            }
        }
        false
    }
}

/// MM2's topic selection rule (`MirrorSourceConnector.shouldReplicateTopic`):
///
/// ```text
/// (filter accepts t || (heartbeats_replication && policy.is_heartbeats_topic(t)))
///     && !policy.is_internal_topic(t) && !policy.is_cycle(t, target)
/// ```
///
/// Heartbeats topics bypass the filter; only `heartbeats.replication.enabled=false` (KIP-1089,
/// 4.0) stops them. Internal topics are never replicated, whatever the filter says.
pub fn should_replicate_topic(
    policy: &dyn ReplicationPolicy,
    filter: &TopicFilter,
    heartbeats_replication: bool,
    topic: &str,
    target_alias: &str,
) -> bool {
    (filter.accepts(topic) || (heartbeats_replication && policy.is_heartbeats_topic(topic)))
        && !policy.is_internal_topic(topic)
        && !policy.is_cycle(topic, target_alias)
}

/// Settings shared by both policies.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Separators {
    separator: String,
    internal_separator_enabled: bool,
}

impl Separators {
    fn internal(&self) -> &str {
        if self.internal_separator_enabled {
            &self.separator
        } else {
            DEFAULT_SEPARATOR
        }
    }

    /// MM2 splits on the separator with Java's `String.split`, which drops trailing empty
    /// parts: a topic is remote when some non-empty part follows the first separator.
    fn topic_source<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let sep = self.separator.as_str();
        if sep.is_empty() {
            // Java splits "" between every character; the first character is the "source".
            // Config validation refuses an empty separator with this policy; keep MM2's answer.
            let mut chars = topic.char_indices();
            chars.next()?;
            let (second, _) = chars.next()?;
            return topic.get(..second);
        }
        let (source, rest) = topic.split_once(sep)?;
        let mut tail = rest;
        while let Some(stripped) = tail.strip_prefix(sep) {
            tail = stripped;
        }
        if tail.is_empty() { None } else { Some(source) }
    }

    fn upstream_topic<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let source = self.topic_source(topic)?;
        topic.get(source.len() + self.separator.len()..)
    }
}

/// MM2's `DefaultReplicationPolicy`: remote topics are `<source><sep><topic>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultReplicationPolicy {
    seps: Separators,
}

impl DefaultReplicationPolicy {
    /// A policy with the given separator; `internal_separator_enabled` is
    /// `replication.policy.internal.topic.separator.enabled` (default `true`).
    pub fn new(separator: impl Into<String>, internal_separator_enabled: bool) -> Self {
        Self {
            seps: Separators {
                separator: separator.into(),
                internal_separator_enabled,
            },
        }
    }
}

impl Default for DefaultReplicationPolicy {
    fn default() -> Self {
        Self::new(DEFAULT_SEPARATOR, true)
    }
}

impl ReplicationPolicy for DefaultReplicationPolicy {
    fn separator(&self) -> &str {
        &self.seps.separator
    }

    fn internal_separator(&self) -> &str {
        self.seps.internal()
    }

    fn format_remote_topic(&self, source_alias: &str, topic: &str) -> String {
        format!("{source_alias}{}{topic}", self.seps.separator)
    }

    fn topic_source<'a>(&'a self, topic: &'a str) -> Option<&'a str> {
        self.seps.topic_source(topic)
    }

    fn upstream_topic<'a>(&'a self, topic: &'a str) -> Option<&'a str> {
        self.seps.upstream_topic(topic)
    }
}

/// MM2's `IdentityReplicationPolicy`: remote topics keep their names, except topics whose name
/// ends with `heartbeats`, which are named as by the default policy (MM2's `looksLikeHeartbeat`
/// tests `endsWith("heartbeats")`). `topic_source` is the configured source alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityReplicationPolicy {
    seps: Separators,
    source_alias: Option<String>,
}

impl IdentityReplicationPolicy {
    /// A policy for flows from `source_alias` (MM2's `source.cluster.alias`; `None` outside a
    /// flow, where `topic_source` of a non-heartbeats topic is `None`).
    pub fn new(
        separator: impl Into<String>,
        internal_separator_enabled: bool,
        source_alias: Option<String>,
    ) -> Self {
        Self {
            seps: Separators {
                separator: separator.into(),
                internal_separator_enabled,
            },
            source_alias,
        }
    }

    fn looks_like_heartbeat(&self, topic: &str) -> bool {
        topic.ends_with(HEARTBEATS_TOPIC)
    }
}

impl ReplicationPolicy for IdentityReplicationPolicy {
    fn separator(&self) -> &str {
        &self.seps.separator
    }

    fn internal_separator(&self) -> &str {
        self.seps.internal()
    }

    fn format_remote_topic(&self, source_alias: &str, topic: &str) -> String {
        if self.looks_like_heartbeat(topic) {
            format!("{source_alias}{}{topic}", self.seps.separator)
        } else {
            topic.to_owned()
        }
    }

    fn topic_source<'a>(&'a self, topic: &'a str) -> Option<&'a str> {
        if self.looks_like_heartbeat(topic) {
            self.seps.topic_source(topic)
        } else {
            self.source_alias.as_deref()
        }
    }

    fn upstream_topic<'a>(&'a self, topic: &'a str) -> Option<&'a str> {
        if self.looks_like_heartbeat(topic) {
            self.seps.upstream_topic(topic)
        } else {
            Some(topic)
        }
    }
}

/// Which policy `replication.policy.class` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyKind {
    /// `org.apache.kafka.connect.mirror.DefaultReplicationPolicy`.
    Default,
    /// `org.apache.kafka.connect.mirror.IdentityReplicationPolicy` (or Strimzi's copy).
    Identity,
}

/// `replication.policy.class` names a class ferry does not implement.
///
/// The user's config is at fault; custom Java policies cannot run in ferry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "replication policy class `{class}` is not supported; use `{DEFAULT_POLICY_CLASS}` or `{IDENTITY_POLICY_CLASS}`"
)]
#[non_exhaustive]
pub struct UnknownPolicyClass {
    /// The class name as written.
    pub class: String,
}

impl PolicyKind {
    /// Reads a `replication.policy.class` value: Kafka's fully qualified names, the bare class
    /// names, and Strimzi's identity policy.
    pub fn from_class_name(class: &str) -> Result<Self, UnknownPolicyClass> {
        match class.trim() {
            DEFAULT_POLICY_CLASS | "DefaultReplicationPolicy" => Ok(Self::Default),
            IDENTITY_POLICY_CLASS | STRIMZI_IDENTITY_POLICY_CLASS | "IdentityReplicationPolicy" => {
                Ok(Self::Identity)
            }
            other => Err(UnknownPolicyClass {
                class: other.to_owned(),
            }),
        }
    }

    /// Kafka's fully qualified class name.
    pub fn class_name(self) -> &'static str {
        match self {
            Self::Default => DEFAULT_POLICY_CLASS,
            Self::Identity => IDENTITY_POLICY_CLASS,
        }
    }

    /// Whether the policy can detect cycles from topic names.
    pub fn detects_cycles(self) -> bool {
        matches!(self, Self::Default)
    }
}

/// One of the policies ferry ships, as a concrete type (no allocation, `Clone`, `PartialEq`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnyReplicationPolicy {
    /// The default, prefixing policy.
    Default(DefaultReplicationPolicy),
    /// The identity policy.
    Identity(IdentityReplicationPolicy),
}

impl AnyReplicationPolicy {
    /// Builds the policy `kind` for a flow from `source_alias`.
    pub fn new(
        kind: PolicyKind,
        separator: impl Into<String>,
        internal_separator_enabled: bool,
        source_alias: Option<String>,
    ) -> Self {
        match kind {
            PolicyKind::Default => Self::Default(DefaultReplicationPolicy::new(
                separator,
                internal_separator_enabled,
            )),
            PolicyKind::Identity => Self::Identity(IdentityReplicationPolicy::new(
                separator,
                internal_separator_enabled,
                source_alias,
            )),
        }
    }

    /// Which policy this is.
    pub fn kind(&self) -> PolicyKind {
        match self {
            Self::Default(_) => PolicyKind::Default,
            Self::Identity(_) => PolicyKind::Identity,
        }
    }

    fn inner(&self) -> &dyn ReplicationPolicy {
        match self {
            Self::Default(p) => p,
            Self::Identity(p) => p,
        }
    }
}

impl Default for AnyReplicationPolicy {
    fn default() -> Self {
        Self::Default(DefaultReplicationPolicy::default())
    }
}

impl ReplicationPolicy for AnyReplicationPolicy {
    fn separator(&self) -> &str {
        self.inner().separator()
    }
    fn internal_separator(&self) -> &str {
        self.inner().internal_separator()
    }
    fn format_remote_topic(&self, source_alias: &str, topic: &str) -> String {
        self.inner().format_remote_topic(source_alias, topic)
    }
    fn topic_source<'a>(&'a self, topic: &'a str) -> Option<&'a str> {
        self.inner().topic_source(topic)
    }
    fn upstream_topic<'a>(&'a self, topic: &'a str) -> Option<&'a str> {
        self.inner().upstream_topic(topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn default() -> DefaultReplicationPolicy {
        DefaultReplicationPolicy::default()
    }

    fn identity(source: &str) -> IdentityReplicationPolicy {
        IdentityReplicationPolicy::new(".", true, Some(source.to_owned()))
    }

    #[test]
    fn default_naming() {
        let p = default();
        assert_eq!(p.format_remote_topic("A", "orders"), "A.orders");
        assert_eq!(p.topic_source("A.orders"), Some("A"));
        assert_eq!(p.upstream_topic("A.orders"), Some("orders"));
        assert_eq!(p.topic_source("orders"), None);
        assert_eq!(p.upstream_topic("orders"), None);
        assert_eq!(p.original_topic("B.A.orders"), "orders");
        assert_eq!(p.original_topic("orders"), "orders");
        // Any local topic containing the separator looks remote.
        assert_eq!(p.topic_source("my.topic"), Some("my"));
    }

    #[test]
    fn default_split_follows_java_string_split() {
        let p = default();
        // Trailing empty parts are dropped by Java's split: not remote.
        assert_eq!(p.topic_source("A."), None);
        assert_eq!(p.topic_source("A.."), None);
        // A leading empty part is kept.
        assert_eq!(p.topic_source(".x"), Some(""));
        assert_eq!(p.upstream_topic(".x"), Some("x"));
        assert_eq!(p.topic_source("A..b"), Some("A"));
        assert_eq!(p.upstream_topic("A..b"), Some(".b"));
        assert_eq!(p.upstream_topic("A.b."), Some("b."));
    }

    #[test]
    fn custom_separator_and_internal_toggle() {
        let p = DefaultReplicationPolicy::new("_", true);
        assert_eq!(p.format_remote_topic("A", "orders"), "A_orders");
        assert_eq!(p.topic_source("A_orders"), Some("A"));
        assert_eq!(p.topic_source("A.orders"), None);
        assert_eq!(p.offset_syncs_topic("B"), "mm2-offset-syncs_B_internal");
        assert_eq!(p.checkpoints_topic("A"), "A_checkpoints_internal");
        assert!(p.is_checkpoints_topic("A_checkpoints_internal"));
        assert!(p.is_mm2_internal_topic("mm2-offset-syncs_B_internal"));

        let p = DefaultReplicationPolicy::new("_", false);
        assert_eq!(p.offset_syncs_topic("B"), "mm2-offset-syncs.B.internal");
        assert_eq!(p.checkpoints_topic("A"), "A.checkpoints.internal");
        assert!(p.is_checkpoints_topic("A.checkpoints.internal"));
        assert!(!p.is_checkpoints_topic("A_checkpoints_internal"));
        // The data separator still applies to remote topics.
        assert_eq!(p.format_remote_topic("A", "orders"), "A_orders");

        let p = DefaultReplicationPolicy::new("--", true);
        assert_eq!(p.topic_source("A--b--c"), Some("A"));
        assert_eq!(p.original_topic("A--b--c"), "c");
    }

    #[test]
    fn internal_topic_names() {
        let p = default();
        assert_eq!(p.heartbeats_topic(), "heartbeats");
        assert_eq!(p.offset_syncs_topic("B"), "mm2-offset-syncs.B.internal");
        assert_eq!(p.checkpoints_topic("A"), "A.checkpoints.internal");
        assert!(p.is_checkpoints_topic("A.checkpoints.internal"));
        assert!(!p.is_checkpoints_topic("A.checkpoints"));
        assert!(p.is_mm2_internal_topic("mm2-offsets.A.internal"));
        for t in [
            "__consumer_offsets",
            ".hidden",
            "connect-offsets-internal",
            "x.internal",
            "mm2-configs.A.internal",
        ] {
            assert!(p.is_internal_topic(t), "{t}");
        }
        for t in [
            "orders",
            "A.orders",
            "heartbeats",
            "internal",
            "x-internals",
        ] {
            assert!(!p.is_internal_topic(t), "{t}");
        }
    }

    #[test]
    fn heartbeats_detection() {
        let p = default();
        for t in ["heartbeats", "A.heartbeats", "B.A.heartbeats"] {
            assert!(p.is_heartbeats_topic(t), "{t}");
        }
        for t in ["heartbeat", "my-heartbeats", "heartbeats.A"] {
            assert!(!p.is_heartbeats_topic(t), "{t}");
        }
    }

    /// `MirrorSourceConnectorTest.testNoCycles`, flow `source->target`.
    #[test]
    fn cycle_vectors() {
        let p = default();
        let cases = [
            ("topic1", true),
            ("source.topic1", true),
            ("target.topic1", false),
            ("target.source.topic1", false),
            ("source.target.topic1", false),
            ("target.source.target.topic1", false),
            ("source.target.source.topic1", false),
        ];
        let filter = TopicFilter::default();
        for (topic, replicated) in cases {
            assert_eq!(!p.is_cycle(topic, "target"), replicated, "{topic}");
            assert_eq!(
                should_replicate_topic(&p, &filter, true, topic, "target"),
                replicated,
                "{topic}"
            );
        }
    }

    #[test]
    fn identity_naming_and_no_cycle_detection() {
        let p = identity("A");
        assert_eq!(p.format_remote_topic("A", "orders"), "orders");
        assert_eq!(p.format_remote_topic("A", "heartbeats"), "A.heartbeats");
        assert_eq!(p.format_remote_topic("A", "B.heartbeats"), "A.B.heartbeats");
        // MM2's looksLikeHeartbeat is `endsWith("heartbeats")`.
        assert_eq!(
            p.format_remote_topic("A", "my-heartbeats"),
            "A.my-heartbeats"
        );
        assert_eq!(p.topic_source("orders"), Some("A"));
        assert_eq!(p.topic_source("B.orders"), Some("A"));
        assert_eq!(p.upstream_topic("orders"), Some("orders"));
        assert_eq!(p.original_topic("orders"), "orders");
        assert_eq!(p.topic_source("B.heartbeats"), Some("B"));
        assert_eq!(p.original_topic("B.A.heartbeats"), "heartbeats");
        assert!(p.is_heartbeats_topic("B.heartbeats"));
        // No cycle detection: a topic named after the target still replicates.
        for t in ["topic1", "target.topic1", "target.source.topic1"] {
            assert!(!p.is_cycle(t, "target"), "{t}");
        }
        // Heartbeats still carry their path, so their cycles are detected.
        assert!(p.is_cycle("target.heartbeats", "target"));
        let no_alias = IdentityReplicationPolicy::new(".", true, None);
        assert_eq!(no_alias.topic_source("orders"), None);
    }

    #[test]
    fn selection_rule_heartbeats_bypass_and_internal_topics() {
        let p = default();
        let nothing = TopicFilter::from_config(Some(""), None).unwrap();
        assert!(should_replicate_topic(
            &p,
            &nothing,
            true,
            "heartbeats",
            "B"
        ));
        assert!(should_replicate_topic(
            &p,
            &nothing,
            true,
            "C.heartbeats",
            "B"
        ));
        assert!(
            !should_replicate_topic(&p, &nothing, false, "heartbeats", "B"),
            "KIP-1089"
        );
        assert!(!should_replicate_topic(&p, &nothing, true, "orders", "B"));
        assert!(
            !should_replicate_topic(&p, &nothing, true, "B.heartbeats", "B"),
            "cycle"
        );
        let excl = TopicFilter::from_config(None, Some("heartbeats")).unwrap();
        assert!(
            should_replicate_topic(&p, &excl, true, "heartbeats", "B"),
            "exclude cannot stop heartbeats"
        );
        let all = TopicFilter::from_config(Some(".*"), Some("")).unwrap();
        for t in [
            "__consumer_offsets",
            "mm2-offset-syncs.B.internal",
            "A.checkpoints.internal",
            "connect-status-internal",
        ] {
            assert!(!should_replicate_topic(&p, &all, true, t, "B"), "{t}");
        }
    }

    #[test]
    fn class_names() {
        assert_eq!(
            PolicyKind::from_class_name(DEFAULT_POLICY_CLASS),
            Ok(PolicyKind::Default)
        );
        assert_eq!(
            PolicyKind::from_class_name(IDENTITY_POLICY_CLASS),
            Ok(PolicyKind::Identity)
        );
        assert_eq!(
            PolicyKind::from_class_name(STRIMZI_IDENTITY_POLICY_CLASS),
            Ok(PolicyKind::Identity)
        );
        assert_eq!(
            PolicyKind::from_class_name(" IdentityReplicationPolicy "),
            Ok(PolicyKind::Identity)
        );
        let err =
            PolicyKind::from_class_name("org.apache.kafka.connect.mirror.LegacyReplicationPolicy")
                .unwrap_err();
        assert!(err.to_string().contains("LegacyReplicationPolicy"));
        assert!(PolicyKind::Default.detects_cycles());
        assert!(!PolicyKind::Identity.detects_cycles());
    }

    #[test]
    fn any_policy_dispatches() {
        let p = AnyReplicationPolicy::new(PolicyKind::Identity, ".", true, Some("A".into()));
        assert_eq!(p.kind(), PolicyKind::Identity);
        assert_eq!(p.format_remote_topic("A", "t"), "t");
        let p = AnyReplicationPolicy::default();
        assert_eq!(p.format_remote_topic("A", "t"), "A.t");
        let boxed: Box<dyn ReplicationPolicy> = Box::new(p);
        assert_eq!(boxed.checkpoints_topic("A"), "A.checkpoints.internal");
    }

    proptest! {
        /// A remote name always leads back to its source and original topic, and is a cycle
        /// exactly on a flow back into the source (default policy, topics without the
        /// separator).
        #[test]
        fn default_round_trip(
            sep in prop_oneof![Just(".".to_owned()), Just("_".to_owned()), Just("--".to_owned())],
            source in "[a-zA-Z0-9]{1,8}",
            topic in "[a-zA-Z0-9]{1,20}",
            other in "[a-zA-Z0-9]{1,8}",
        ) {
            let p = DefaultReplicationPolicy::new(sep, true);
            let remote = p.format_remote_topic(&source, &topic);
            prop_assert_eq!(p.topic_source(&remote), Some(source.as_str()));
            prop_assert_eq!(p.upstream_topic(&remote), Some(topic.as_str()));
            prop_assert_eq!(p.original_topic(&remote), topic.as_str());
            prop_assert!(p.is_cycle(&remote, &source));
            prop_assert_eq!(p.is_cycle(&remote, &other), other == source);
            prop_assert!(!p.is_cycle(&topic, &source));
        }

        /// Identity keeps every non-heartbeats name and never reports a cycle for it.
        #[test]
        fn identity_keeps_names(topic in "[a-zA-Z0-9._-]{1,30}", target in "[a-zA-Z]{1,5}") {
            prop_assume!(!topic.ends_with("heartbeats"));
            let p = identity("src");
            prop_assert_eq!(p.format_remote_topic("src", &topic), topic.clone());
            prop_assert!(!p.is_cycle(&topic, &target));
        }
    }
}
