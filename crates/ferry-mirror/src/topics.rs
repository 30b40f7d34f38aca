//! Topic selection, naming and creation for one flow.
//!
//! Every `refresh.topics.interval` the flow lists the source topics, keeps those MM2's rule
//! accepts ([`should_replicate_topic`]: filter, heartbeats bypass, internal topics never,
//! cycle detection), names them with the flow's policy, and makes the target match:
//!
//! - a missing target topic is created with the source's partition count, the flow's
//!   replication factor, and the source topic's own overrides (config source
//!   `DYNAMIC_TOPIC_CONFIG`) minus `config.properties.exclude` (the rule config sync uses,
//!   `crate::config_sync`), with `compression.type=producer`
//!   (or the configured target codec) so forwarded bytes are kept as they are;
//! - a target with fewer partitions than the source is grown (CreatePartitions);
//! - partitions not seen before are returned, so the pipeline starts them.
//!
//! Unlike MM2, errors are not only logged: each is a [`MirrorEvent::StepFailed`] and the step is
//! retried at the next refresh.
//!
//! # References
//! - mm2-compat.md §3 (filters), §4 (naming, cycles), §7.1 (creation, growth, refresh),
//!   §7.2 (config filter)
//! - `connect/mirror/src/main/java/org/apache/kafka/connect/mirror/MirrorSourceConnector.java`
//!   (apache/kafka), for behaviour only

use std::collections::{BTreeMap, BTreeSet};

use ferry_client::admin::{Admin, ConfigResource, NewTopic};
use uuid::Uuid;

use crate::config_sync::{COMPRESSION_TYPE, ConfigView, Desired, desired_config};
use crate::events::MirrorEvent;
use crate::policy::{ReplicationPolicy, should_replicate_topic};
use crate::settings::FlowSettings;

/// A source topic the flow replicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedTopic {
    /// Source name.
    pub source: String,
    /// Target name (per the policy).
    pub target: String,
    /// Source partition count.
    pub partitions: i32,
    /// Source topic id (nil from old brokers).
    pub topic_id: Uuid,
}

/// Source partitions ready to replicate (their target partition exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyPartitions {
    /// The topic.
    pub topic: SelectedTopic,
    /// Partitions not handed out before.
    pub partitions: Vec<i32>,
}

/// A source topic as listed: name, partition count, topic id, internal flag.
pub type ListedTopic<'a> = (&'a str, usize, Uuid, bool);

/// The topics the flow replicates, with their target names.
pub fn select_topics<'a>(
    flow: &FlowSettings,
    listing: impl IntoIterator<Item = ListedTopic<'a>>,
) -> Vec<SelectedTopic> {
    listing
        .into_iter()
        .filter(|&(name, _, _, internal)| {
            !internal
                && should_replicate_topic(
                    &flow.policy,
                    &flow.topic_filter,
                    flow.heartbeats_replication,
                    name,
                    &flow.target,
                )
        })
        .map(|(name, partitions, topic_id, _)| SelectedTopic {
            source: name.to_owned(),
            target: flow.policy.format_remote_topic(&flow.source, name),
            partitions: i32::try_from(partitions).unwrap_or(i32::MAX),
            topic_id,
        })
        .collect()
}

/// The configs a created target topic gets: what config sync wants for the source topic
/// ([`desired_config`]: its own overrides, plus its defaults under `use.defaults.from=source`,
/// never excluded, read-only or sensitive keys), then `compression.type` (`producer`, or the
/// configured target codec). Sharing the rule with config sync means a new topic is already in
/// sync.
pub fn target_configs<'a>(
    flow: &FlowSettings,
    source: impl IntoIterator<Item = ConfigView<'a>>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = source
        .into_iter()
        .filter_map(|e| match desired_config(flow, &e)? {
            Desired::Set(v) => Some((e.name.to_owned(), v.to_owned())),
            Desired::Inherit => None,
        })
        .collect();
    let codec = flow
        .target_compression
        .map_or_else(|| "producer".to_owned(), |c| c.to_string());
    out.insert(COMPRESSION_TYPE.to_owned(), codec);
    out
}

/// Per-flow topic state across refreshes.
#[derive(Debug, Default)]
pub(crate) struct TopicSync {
    /// Partitions already handed to the pipeline, by source topic.
    started: BTreeMap<String, BTreeSet<i32>>,
}

impl TopicSync {
    /// Forgets partitions handed out but not started, so the next refresh returns them again.
    pub(crate) fn forget(&mut self, ready: &ReadyPartitions) {
        if let Some(started) = self.started.get_mut(&ready.topic.source) {
            for p in &ready.partitions {
                started.remove(p);
            }
        }
    }

    /// One refresh: list, select, create or grow, and return the partitions to start.
    pub(crate) async fn refresh(
        &mut self,
        flow: &FlowSettings,
        source: &Admin,
        target: &Admin,
        events: &mut Vec<MirrorEvent>,
    ) -> Result<Vec<ReadyPartitions>, ferry_client::admin::AdminError> {
        let name = flow.name();
        let listing = source.list_topics(false).await?;
        let selected = select_topics(
            flow,
            listing
                .iter()
                .map(|t| (t.name.as_str(), t.partitions, t.topic_id, t.is_internal)),
        );
        if selected.is_empty() {
            return Ok(Vec::new());
        }
        let target_listing = target.list_topics(false).await?;
        let existing: BTreeMap<&str, i32> = target_listing
            .iter()
            .map(|t| {
                (
                    t.name.as_str(),
                    i32::try_from(t.partitions).unwrap_or(i32::MAX),
                )
            })
            .collect();

        // Create missing topics, with the source's overrides.
        let missing: Vec<&SelectedTopic> = selected
            .iter()
            .filter(|t| !existing.contains_key(t.target.as_str()))
            .collect();
        let mut created_now = BTreeSet::new();
        if !missing.is_empty() {
            let resources: Vec<ConfigResource> = missing
                .iter()
                .map(|t| ConfigResource::topic(t.source.clone()))
                .collect();
            let configs = source.describe_configs(&resources, false).await?;
            let new_topics: Vec<NewTopic> = missing
                .iter()
                .map(|t| {
                    let entries = configs
                        .get(&ConfigResource::topic(t.source.clone()))
                        .and_then(|r| r.as_ref().ok())
                        .map_or(&[][..], Vec::as_slice);
                    NewTopic {
                        configs: target_configs(flow, entries.iter().map(ConfigView::from)),
                        ..NewTopic::new(t.target.clone(), t.partitions, flow.replication_factor)
                    }
                })
                .collect();
            for (topic, result) in target.create_topics(&new_topics, false).await? {
                match result {
                    Ok(_) => {
                        let source_topic = missing
                            .iter()
                            .find(|t| t.target == topic)
                            .map(|t| (t.source.clone(), t.partitions));
                        if let Some((source_topic, partitions)) = source_topic {
                            events.push(MirrorEvent::TopicCreated {
                                flow: name.clone(),
                                source_topic,
                                target_topic: topic.clone(),
                                partitions,
                            });
                        }
                        created_now.insert(topic);
                    }
                    Err(e) if e.is_topic_already_exists() => {
                        created_now.insert(topic);
                    }
                    Err(e) => events.push(MirrorEvent::StepFailed {
                        flow: name.clone(),
                        step: "topics",
                        error: format!("creating {topic}: {e}"),
                    }),
                }
            }
        }

        // Grow topics whose source has more partitions.
        let grow: BTreeMap<String, i32> = selected
            .iter()
            .filter_map(|t| {
                let have = *existing.get(t.target.as_str())?;
                (have < t.partitions).then(|| (t.target.clone(), t.partitions))
            })
            .collect();
        let mut grown = BTreeSet::new();
        if !grow.is_empty() {
            for (topic, result) in target.create_partitions(&grow, false).await? {
                match result {
                    Ok(()) => {
                        let from = existing.get(topic.as_str()).copied().unwrap_or(0);
                        let to = grow.get(&topic).copied().unwrap_or(0);
                        events.push(MirrorEvent::PartitionsAdded {
                            flow: name.clone(),
                            target_topic: topic.clone(),
                            from,
                            to,
                        });
                        grown.insert(topic);
                    }
                    Err(e) => events.push(MirrorEvent::StepFailed {
                        flow: name.clone(),
                        step: "topics",
                        error: format!("growing {topic}: {e}"),
                    }),
                }
            }
        }

        // Hand out partitions whose target partition exists.
        let mut ready = Vec::new();
        for t in selected {
            let target_partitions = if created_now.contains(&t.target) || grown.contains(&t.target)
            {
                t.partitions
            } else if let Some(&have) = existing.get(t.target.as_str()) {
                have.min(t.partitions)
            } else {
                continue;
            };
            let started = self.started.entry(t.source.clone()).or_default();
            let partitions: Vec<i32> = (0..target_partitions)
                .filter(|p| !started.contains(p))
                .collect();
            if partitions.is_empty() {
                continue;
            }
            started.extend(partitions.iter().copied());
            ready.push(ReadyPartitions {
                topic: t,
                partitions,
            });
        }
        Ok(ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::TopicFilter;
    use crate::policy::{AnyReplicationPolicy, PolicyKind};
    use ferry_client::admin::ConfigSource;
    use ferry_protocol::compression::Codec;

    fn names(flow: &FlowSettings, topics: &[(&str, bool)]) -> Vec<(String, String)> {
        select_topics(
            flow,
            topics
                .iter()
                .map(|&(n, internal)| (n, 3, Uuid::nil(), internal)),
        )
        .into_iter()
        .map(|t| {
            assert_eq!(t.partitions, 3);
            (t.source, t.target)
        })
        .collect()
    }

    #[test]
    fn default_policy_prefixes_and_skips_cycles_and_internal_topics() {
        let flow = FlowSettings::new("A", "B").unwrap();
        let got = names(
            &flow,
            &[
                ("orders", false),
                ("B.orders", false),
                ("A.orders", false),
                ("__consumer_offsets", true),
                ("marked-internal", true),
                ("heartbeats", false),
                ("x.internal", false),
            ],
        );
        assert_eq!(
            got,
            vec![
                ("orders".to_owned(), "A.orders".to_owned()),
                ("A.orders".to_owned(), "A.A.orders".to_owned()),
                ("heartbeats".to_owned(), "A.heartbeats".to_owned()),
            ]
        );
    }

    #[test]
    fn identity_policy_and_filter() {
        let mut flow = FlowSettings::new("A", "B").unwrap();
        flow.policy = AnyReplicationPolicy::new(PolicyKind::Identity, ".", true, Some("A".into()));
        flow.topic_filter = TopicFilter::from_config(Some("orders.*"), None).unwrap();
        let got = names(
            &flow,
            &[("orders", false), ("orders-eu", false), ("payments", false)],
        );
        assert_eq!(
            got,
            vec![
                ("orders".to_owned(), "orders".to_owned()),
                ("orders-eu".to_owned(), "orders-eu".to_owned()),
            ]
        );
    }

    fn cfg<'a>(name: &'a str, value: &'a str, topic_override: bool) -> ConfigView<'a> {
        ConfigView {
            name,
            value: Some(value),
            source: if topic_override {
                ConfigSource::DynamicTopic
            } else {
                ConfigSource::Default
            },
            protected: false,
        }
    }

    #[test]
    fn configs_keep_topic_overrides_minus_excluded_and_set_compression() {
        let mut flow = FlowSettings::new("A", "B").unwrap();
        let source = [
            cfg("cleanup.policy", "compact", true),
            cfg("retention.ms", "1000", true),
            cfg("min.insync.replicas", "2", true),
            cfg("segment.bytes", "1073741824", false),
            cfg("compression.type", "lz4", true),
            ConfigView {
                protected: true,
                ..cfg("secret", "x", true)
            },
        ];
        let got = target_configs(&flow, source);
        let want: BTreeMap<String, String> = [
            ("cleanup.policy", "compact"),
            ("compression.type", "producer"),
            ("retention.ms", "1000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(got, want);
        flow.target_compression = Some(Codec::Zstd);
        assert_eq!(target_configs(&flow, source)["compression.type"], "zstd");
        // use.defaults.from=source: the source's defaults are set explicitly too.
        flow.use_defaults_from = crate::settings::DefaultsFrom::Source;
        assert_eq!(target_configs(&flow, source)["segment.bytes"], "1073741824");
    }
}
