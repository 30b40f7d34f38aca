//! Topic-config sync: keeps each replicated topic's target configs in step with the source,
//! sending only what differs.
//!
//! Every `sync.topic.configs.interval.seconds` (MM2 default 600 s; also at start) the flow
//! describes the configs of its replicated topics on both clusters and computes, per topic,
//! the **effective** difference ([`diff_configs`]):
//!
//! - what the target should hold comes from [`desired_config`], the rule topic creation uses
//!   too (`crate::topics::target_configs`), so a freshly created topic never needs a sync:
//!   a source topic override (`DYNAMIC_TOPIC_CONFIG`) is wanted as it is; a key the source
//!   leaves at Kafka's default is wanted at the *target's* default under
//!   `use.defaults.from=target` (MM2's default: the target override is deleted) and at the
//!   source's value under `use.defaults.from=source`; read-only, sensitive and
//!   `STATIC_BROKER_CONFIG` entries and keys matched by `config.properties.exclude` are never
//!   wanted, so a target-only override of an excluded key survives; `compression.type` is set
//!   at creation only (`producer`, or the configured codec) so forwarded bytes are kept;
//! - a key is sent only when the target's current value differs (SET) or the target holds an
//!   override the source does not want (DELETE). When nothing differs nothing is sent, unlike
//!   MM2, which re-sends every config every interval (KAFKA-14082).
//!
//! One IncrementalAlterConfigs (KIP-339) per changed topic carries only its differing keys.
//! The broker validates a topic's operations together and rejects them all when one value is
//! invalid (INVALID_CONFIG, POLICY_VIOLATION, INVALID_REQUEST); ferry then sends the keys one
//! by one, so the valid keys still apply, and raises [`MirrorEvent::TopicConfigRejected`] for
//! each rejected key. A rejected `(topic, key, value)` is not sent again until the source value
//! changes, so a permanent rejection causes no churn. An operation the target acknowledged is
//! not repeated in the next round even if the broker still describes the old value (its
//! metadata lags the controller's); it is sent again only if the difference outlives that.
//!
//! Deliberate differences from MM2: a source value inherited from a *dynamic broker* config is
//! a cluster setting and is copied only under `use.defaults.from=source` (MM2 copies it as a
//! topic override); nothing is re-sent when unchanged; rejected values are named in a typed
//! event.
//!
//! # References
//! - mm2-compat.md §7.2 (`syncTopicConfigs`, `DefaultConfigPropertyFilter`, `use.defaults.from`),
//!   §8 complaint 6; KIP-894 (incremental alter and `use.defaults.from`), KIP-339, KAFKA-14082,
//!   KAFKA-12254
//! - `connect/mirror/src/main/java/org/apache/kafka/connect/mirror/MirrorSourceConnector.java`
//!   (apache/kafka), for behaviour only

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ferry_client::admin::{
    Admin, AdminError, AlterConfigOp, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
};
use ferry_protocol::error::ErrorCode;
use tokio::sync::watch;

use crate::events::MirrorEvent;
use crate::flow::FlowShared;
use crate::settings::{DefaultsFrom, FlowSettings};
use crate::topics::select_topics;

/// The only key sync never touches whatever the exclude list says: topic creation sets it so
/// that forwarded batches keep their bytes (DESIGN.md, data path rules).
pub const COMPRESSION_TYPE: &str = "compression.type";

/// One topic config as the sync sees it (from a [`ConfigEntry`], or built by hand in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigView<'a> {
    /// Config name.
    pub name: &'a str,
    /// Value (`None` when withheld or unset).
    pub value: Option<&'a str>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Read-only or sensitive: never copied, never compared.
    pub protected: bool,
}

impl<'a> From<&'a ConfigEntry> for ConfigView<'a> {
    fn from(e: &'a ConfigEntry) -> Self {
        Self {
            name: &e.name,
            value: e.value.as_deref(),
            source: e.source,
            protected: e.read_only || e.sensitive,
        }
    }
}

/// What the target topic should hold for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired<'a> {
    /// This value, as a topic override.
    Set(&'a str),
    /// No override: the target cluster's own default.
    Inherit,
}

/// Whether `name` is never synced for this flow: `compression.type`, or matched by
/// `config.properties.exclude` (a pattern the regex engine cannot decide counts as a match).
pub fn is_excluded(flow: &FlowSettings, name: &str) -> bool {
    name == COMPRESSION_TYPE || flow.config_properties_exclude.matches_or(name, true)
}

/// What the target should hold for one source config, or `None` when the key is not synced
/// (see the module docs). Shared with topic creation.
pub fn desired_config<'a>(flow: &FlowSettings, e: &ConfigView<'a>) -> Option<Desired<'a>> {
    if e.protected || is_excluded(flow, e.name) {
        return None;
    }
    let from_source = flow.use_defaults_from == DefaultsFrom::Source;
    match e.source {
        ConfigSource::DynamicTopic => e.value.map(Desired::Set),
        // KIP-894: a source default becomes DELETE (target default) or SET (source default).
        ConfigSource::Default if from_source => e.value.map(Desired::Set),
        ConfigSource::Default => Some(Desired::Inherit),
        ConfigSource::DynamicBroker | ConfigSource::DynamicDefaultBroker if from_source => {
            e.value.map(Desired::Set)
        }
        // STATIC_BROKER_CONFIG is dropped by MM2's filter; broker-level dynamic values are
        // cluster settings under `use.defaults.from=target`.
        _ => None,
    }
}

/// The operations that make `target` hold what `source` wants, sorted by key; empty when the
/// effective configs already agree. Keys the target does not list (an older broker) and
/// protected target entries are left alone.
pub fn diff_configs<'a>(
    flow: &FlowSettings,
    source: impl IntoIterator<Item = ConfigView<'a>>,
    target: impl IntoIterator<Item = ConfigView<'a>>,
) -> Vec<AlterConfigOp> {
    let target: BTreeMap<&str, ConfigView<'a>> = target.into_iter().map(|e| (e.name, e)).collect();
    let mut ops: BTreeMap<&str, AlterConfigOp> = BTreeMap::new();
    for e in source {
        let Some(want) = desired_config(flow, &e) else {
            continue;
        };
        let Some(have) = target.get(e.name) else {
            continue;
        };
        if have.protected {
            continue;
        }
        match want {
            Desired::Set(v) if have.value != Some(v) => {
                ops.insert(e.name, AlterConfigOp::set(e.name, v));
            }
            Desired::Inherit if have.source == ConfigSource::DynamicTopic => {
                ops.insert(e.name, AlterConfigOp::delete(e.name));
            }
            _ => {}
        }
    }
    ops.into_values().collect()
}

/// The config changes one topic needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigPlan {
    /// Source topic.
    pub source_topic: String,
    /// Target topic.
    pub target_topic: String,
    /// The operations, sorted by key (never empty in a plan).
    pub ops: Vec<AlterConfigOp>,
}

/// What a config sync would do for one flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSyncPlan {
    /// Replicated topics whose target exists, compared.
    pub topics_compared: usize,
    /// Topics that need changes.
    pub changes: Vec<TopicConfigPlan>,
    /// Topics that could not be described: `(topic, error)`.
    pub failures: Vec<(String, String)>,
}

/// Lists and describes the flow's replicated topics on both clusters and computes the
/// changes. No writes.
///
/// # Errors
/// The listing failed on either cluster (per-topic describe errors are in
/// [`ConfigSyncPlan::failures`]).
pub async fn plan_config_sync(
    flow: &FlowSettings,
    source: &Admin,
    target: &Admin,
) -> Result<ConfigSyncPlan, AdminError> {
    let listing = source.list_topics(false).await?;
    let selected = select_topics(
        flow,
        listing
            .iter()
            .map(|t| (t.name.as_str(), t.partitions, t.topic_id, t.is_internal)),
    );
    let target_listing = target.list_topics(false).await?;
    let existing: BTreeSet<&str> = target_listing.iter().map(|t| t.name.as_str()).collect();
    let pairs: Vec<(String, String)> = selected
        .into_iter()
        .filter(|t| existing.contains(t.target.as_str()))
        .map(|t| (t.source, t.target))
        .collect();
    let mut plan = ConfigSyncPlan {
        topics_compared: pairs.len(),
        ..ConfigSyncPlan::default()
    };
    if pairs.is_empty() {
        return Ok(plan);
    }
    let src_res: Vec<ConfigResource> = pairs
        .iter()
        .map(|(s, _)| ConfigResource::topic(s.clone()))
        .collect();
    let dst_res: Vec<ConfigResource> = pairs
        .iter()
        .map(|(_, t)| ConfigResource::topic(t.clone()))
        .collect();
    let src_cfg = source.describe_configs(&src_res, false).await?;
    let dst_cfg = target.describe_configs(&dst_res, false).await?;
    for (s, t) in pairs {
        let a = src_cfg.get(&ConfigResource::topic(s.clone()));
        let b = dst_cfg.get(&ConfigResource::topic(t.clone()));
        match (a, b) {
            (Some(Ok(a)), Some(Ok(b))) => {
                let ops = diff_configs(
                    flow,
                    a.iter().map(ConfigView::from),
                    b.iter().map(ConfigView::from),
                );
                if !ops.is_empty() {
                    plan.changes.push(TopicConfigPlan {
                        source_topic: s,
                        target_topic: t,
                        ops,
                    });
                }
            }
            (Some(Err(e)), _) => plan.failures.push((s, e.to_string())),
            (_, Some(Err(e))) => plan.failures.push((t, e.to_string())),
            _ => plan.failures.push((s, "no describe result".to_owned())),
        }
    }
    Ok(plan)
}

/// Whether the broker refused a value (as opposed to failing the request for another reason).
fn is_value_rejection(e: &AdminError) -> bool {
    matches!(
        e.error_code(),
        Some(ErrorCode::InvalidConfig | ErrorCode::PolicyViolation | ErrorCode::InvalidRequest)
    )
}

/// A `(target topic, key, value)` the target refused.
type Rejected = (String, String, Option<String>);

/// State of the config-sync task across rounds.
#[derive(Debug, Default)]
pub(crate) struct ConfigSyncState {
    /// Refused values: not sent again until the source value changes.
    rejected: BTreeSet<Rejected>,
    /// Operations the target acknowledged in the previous round. The broker describes a
    /// change only once its metadata caught up with the controller, so an identical operation
    /// is skipped for one round instead of being re-sent during that lag.
    acked_last_round: BTreeSet<Rejected>,
    /// Operations acknowledged in this round.
    acked_now: BTreeSet<Rejected>,
}

impl ConfigSyncState {
    /// Drops the operations already refused with the same value, and those acknowledged in
    /// the previous round.
    fn filter(&self, topic: &str, ops: Vec<AlterConfigOp>) -> Vec<AlterConfigOp> {
        ops.into_iter()
            .filter(|op| {
                let id = (topic.to_owned(), op.name.clone(), op.value.clone());
                !self.rejected.contains(&id) && !self.acked_last_round.contains(&id)
            })
            .collect()
    }

    fn acked(&mut self, topic: &str, ops: &[AlterConfigOp]) {
        for op in ops {
            self.acked_now
                .insert((topic.to_owned(), op.name.clone(), op.value.clone()));
        }
    }

    /// Ends a round.
    fn next_round(&mut self) {
        self.acked_last_round = std::mem::take(&mut self.acked_now);
    }
}

/// Sends one IncrementalAlterConfigs for one topic and counts it.
async fn alter_one(
    shared: &FlowShared,
    target: &Admin,
    topic: &str,
    ops: Vec<AlterConfigOp>,
) -> Result<(), AdminError> {
    let resource = ConfigResource::topic(topic.to_owned());
    let changes = BTreeMap::from([(resource.clone(), ops)]);
    shared.counters.count_config_alter();
    let mut results = target.incremental_alter_configs(&changes, false).await?;
    results.remove(&resource).unwrap_or_else(|| {
        Err(AdminError::InvalidInput {
            message: format!("no result for {resource}"),
        })
    })
}

fn altered_event(flow: String, topic: &str, ops: &[AlterConfigOp]) -> MirrorEvent {
    MirrorEvent::TopicConfigsAltered {
        flow,
        topic: topic.to_owned(),
        set: ops
            .iter()
            .filter(|o| o.op == AlterConfigOpType::Set)
            .map(|o| (o.name.clone(), o.value.clone().unwrap_or_default()))
            .collect(),
        deleted: ops
            .iter()
            .filter(|o| o.op == AlterConfigOpType::Delete)
            .map(|o| o.name.clone())
            .collect(),
    }
}

/// Applies a plan: one request per changed topic, split per key when the broker refuses a
/// value. Emits events for what changed and what was refused.
pub(crate) async fn apply_plan(
    shared: &FlowShared,
    target: &Admin,
    plan: ConfigSyncPlan,
    state: &mut ConfigSyncState,
) {
    let flow = shared.name.clone();
    for (topic, error) in plan.failures {
        shared.emit(MirrorEvent::StepFailed {
            flow: flow.clone(),
            step: "config sync",
            error: format!("describing {topic}: {error}"),
        });
    }
    for change in plan.changes {
        let topic = change.target_topic;
        let ops = state.filter(&topic, change.ops);
        if ops.is_empty() {
            continue;
        }
        match alter_one(shared, target, &topic, ops.clone()).await {
            Ok(()) => {
                state.acked(&topic, &ops);
                shared.emit(altered_event(flow.clone(), &topic, &ops));
            }
            Err(e) if is_value_rejection(&e) => {
                // The broker refused the topic's request as a whole: find the bad keys.
                let single = ops.len() == 1;
                for op in ops {
                    let result = if single {
                        Err(e.clone())
                    } else {
                        alter_one(shared, target, &topic, vec![op.clone()]).await
                    };
                    match result {
                        Ok(()) => {
                            state.acked(&topic, std::slice::from_ref(&op));
                            shared.emit(altered_event(
                                flow.clone(),
                                &topic,
                                std::slice::from_ref(&op),
                            ));
                        }
                        Err(e) if is_value_rejection(&e) => {
                            state.rejected.insert((
                                topic.clone(),
                                op.name.clone(),
                                op.value.clone(),
                            ));
                            shared.emit(MirrorEvent::TopicConfigRejected {
                                flow: flow.clone(),
                                topic: topic.clone(),
                                key: op.name,
                                value: op.value,
                                error: e.to_string(),
                            });
                        }
                        Err(e) => shared.emit(MirrorEvent::StepFailed {
                            flow: flow.clone(),
                            step: "config sync",
                            error: format!("altering {topic}: {e}"),
                        }),
                    }
                }
            }
            Err(e) => shared.emit(MirrorEvent::StepFailed {
                flow: flow.clone(),
                step: "config sync",
                error: format!("altering {topic}: {e}"),
            }),
        }
    }
}

/// Waits for the next tick of a sync task (the first one is immediate); `false` on shutdown.
pub(crate) async fn next_tick(
    tick: &mut tokio::time::Interval,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        _ = tick.tick() => {}
        r = shutdown.changed() => if r.is_err() { return false },
    }
    !*shutdown.borrow()
}

/// Runs config sync for one flow every `flow.sync_topic_configs` until shutdown (returns at
/// once when config sync is off).
pub(crate) async fn run(
    flow: FlowSettings,
    shared: Arc<FlowShared>,
    source: Admin,
    target: Admin,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(period) = flow.sync_topic_configs else {
        return;
    };
    let mut state = ConfigSyncState::default();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while next_tick(&mut tick, &mut shutdown).await {
        match plan_config_sync(&flow, &source, &target).await {
            Ok(plan) => apply_plan(&shared, &target, plan, &mut state).await,
            Err(e) => shared.emit(MirrorEvent::StepFailed {
                flow: shared.name.clone(),
                step: "config sync",
                error: e.to_string(),
            }),
        }
        state.next_round();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn view<'a>(name: &'a str, value: &'a str, source: ConfigSource) -> ConfigView<'a> {
        ConfigView {
            name,
            value: Some(value),
            source,
            protected: false,
        }
    }

    fn flow() -> FlowSettings {
        FlowSettings::new("A", "B").unwrap()
    }

    fn show(ops: &[AlterConfigOp]) -> Vec<String> {
        ops.iter()
            .map(|o| match &o.value {
                Some(v) => format!("{}={v}", o.name),
                None => format!("-{}", o.name),
            })
            .collect()
    }

    use ConfigSource::{Default as Def, DynamicBroker, DynamicTopic as Topic, StaticBroker};

    #[test]
    fn sends_only_differing_keys() {
        let f = flow();
        let source = [
            view("retention.ms", "1000", Topic),
            view("cleanup.policy", "compact", Topic),
            view("segment.ms", "604800000", Def),
            view("max.message.bytes", "2000000", Topic),
        ];
        let target = [
            view("retention.ms", "1000", Topic),
            view("cleanup.policy", "delete", Def),
            view("segment.ms", "1000", Topic),
            view("max.message.bytes", "2000000", Def),
        ];
        let ops = diff_configs(&f, source, target);
        assert_eq!(show(&ops), ["cleanup.policy=compact", "-segment.ms"]);
        // Identical effective configs: nothing at all.
        assert!(diff_configs(&f, source, source).is_empty());
    }

    #[test]
    fn excluded_keys_compression_and_protected_entries_are_never_touched() {
        let f = flow();
        let source = [
            view("min.insync.replicas", "2", Topic),
            view("unclean.leader.election.enable", "false", Def),
            view("compression.type", "lz4", Topic),
            ConfigView {
                protected: true,
                ..view("secret", "x", Topic)
            },
            view("log.dirs", "/x", StaticBroker),
        ];
        let target = [
            view("min.insync.replicas", "1", Topic),
            view("unclean.leader.election.enable", "true", Topic),
            view("compression.type", "producer", Topic),
            view("secret", "y", Topic),
            view("log.dirs", "/y", Topic),
        ];
        assert!(diff_configs(&f, source, target).is_empty());
    }

    #[test]
    fn use_defaults_from_source_sets_source_defaults() {
        let mut f = flow();
        let source = [
            view("segment.ms", "604800000", Def),
            view("retention.bytes", "5", DynamicBroker),
            view("flush.ms", "7", StaticBroker),
        ];
        let target = [
            view("segment.ms", "1000", Topic),
            view("retention.bytes", "-1", Def),
            view("flush.ms", "9", Def),
        ];
        assert_eq!(show(&diff_configs(&f, source, target)), ["-segment.ms"]);
        f.use_defaults_from = DefaultsFrom::Source;
        assert_eq!(
            show(&diff_configs(&f, source, target)),
            ["retention.bytes=5", "segment.ms=604800000"]
        );
    }

    #[test]
    fn refused_values_wait_for_a_new_value_and_acked_ops_get_one_round_of_grace() {
        let mut state = ConfigSyncState::default();
        let ops = || {
            vec![
                AlterConfigOp::set("a", "1"),
                AlterConfigOp::set("b", "2"),
                AlterConfigOp::delete("c"),
            ]
        };
        state
            .rejected
            .insert(("t".into(), "a".into(), Some("1".into())));
        state.acked("t", &[AlterConfigOp::delete("c")]);
        // Acknowledged in this round: still sent (the grace applies to the next round).
        assert_eq!(show(&state.filter("t", ops())), ["b=2", "-c"]);
        state.next_round();
        assert_eq!(show(&state.filter("t", ops())), ["b=2"]);
        // A new value for a refused key is sent; another topic is unaffected.
        assert_eq!(
            show(&state.filter("t", vec![AlterConfigOp::set("a", "9")])),
            ["a=9"]
        );
        assert_eq!(show(&state.filter("u", ops())), ["a=1", "b=2", "-c"]);
        // One round only.
        state.next_round();
        assert_eq!(show(&state.filter("t", ops())), ["b=2", "-c"]);
    }

    #[test]
    fn keys_unknown_to_the_target_are_skipped() {
        let f = flow();
        let source = [view("new.key", "1", Topic)];
        assert!(diff_configs(&f, source, []).is_empty());
    }

    /// Applies operations to a simulated target (a deleted override falls back to `dflt`).
    fn apply(target: &mut BTreeMap<String, (String, ConfigSource)>, ops: &[AlterConfigOp]) {
        for op in ops {
            match (&op.op, &op.value) {
                (AlterConfigOpType::Set, Some(v)) => {
                    target.insert(op.name.clone(), (v.clone(), Topic));
                }
                (AlterConfigOpType::Delete, _) => {
                    target.insert(op.name.clone(), ("dflt".to_owned(), Def));
                }
                other => panic!("unexpected op {other:?}"),
            }
        }
    }

    fn source_kind() -> impl Strategy<Value = ConfigSource> {
        prop_oneof![
            Just(Topic),
            Just(Def),
            Just(DynamicBroker),
            Just(StaticBroker)
        ]
    }

    fn configs() -> impl Strategy<Value = BTreeMap<String, (String, ConfigSource)>> {
        let key = prop_oneof![
            Just("retention.ms"),
            Just("cleanup.policy"),
            Just("min.insync.replicas"),
            Just("compression.type"),
            Just("segment.bytes"),
            Just("message.timestamp.type"),
        ];
        proptest::collection::btree_map(key.prop_map(str::to_owned), ("[a-c]", source_kind()), 0..6)
    }

    fn views(m: &BTreeMap<String, (String, ConfigSource)>) -> Vec<ConfigView<'_>> {
        m.iter().map(|(k, (v, s))| view(k, v, *s)).collect()
    }

    proptest! {
        /// After applying the diff, a second diff is empty, and excluded keys never move.
        #[test]
        fn diff_converges_and_spares_excluded(
            source in configs(),
            mut target in configs(),
            from_source in any::<bool>(),
        ) {
            let mut f = flow();
            if from_source {
                f.use_defaults_from = DefaultsFrom::Source;
            }
            let ops = diff_configs(&f, views(&source), views(&target));
            for op in &ops {
                prop_assert!(!is_excluded(&f, &op.name), "{op:?}");
                prop_assert!(target.contains_key(&op.name));
            }
            let names: BTreeSet<&str> = ops.iter().map(|o| o.name.as_str()).collect();
            prop_assert_eq!(names.len(), ops.len());
            let before = target.clone();
            apply(&mut target, &ops);
            for (k, v) in &before {
                if is_excluded(&f, k) {
                    prop_assert_eq!(target.get(k), Some(v));
                }
            }
            prop_assert!(diff_configs(&f, views(&source), views(&target)).is_empty());
        }
    }
}
