//! What `ferry check` reports about live topics: which source topics a flow selects, their
//! target names, and why the others are excluded.
//!
//! The verdict follows MM2's selection rule (`MirrorSourceConnector.shouldReplicateTopic`,
//! see [`ferry_mirror::policy::should_replicate_topic`]) and names the first reason that
//! excludes a topic: internal, cycle, then the filter.
//!
//! [`metadata_changes`] is the dry run of topic-config and ACL sync (issue #6): it describes
//! both clusters and prints what a sync round would change, writing nothing
//! (`ferry_mirror::config_sync`, `ferry_mirror::acl_sync`).

use std::time::Duration;

use ferry_client::admin::{Admin, AlterConfigOpType};
use ferry_client::{Cluster, ConnectionConfig};
use ferry_mirror::acl_sync::{self, AclPlan};
use ferry_mirror::config_sync::{self, ConfigSyncPlan};
use ferry_mirror::engine::MirrorError;
use ferry_mirror::policy::ReplicationPolicy;
use ferry_mirror::settings::FlowSettings;

use super::Error;

/// Why a source topic is or is not replicated by a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicVerdict {
    /// Replicated, under this target name.
    Selected {
        /// The target topic name.
        target: String,
    },
    /// A Kafka, Connect or MM2 internal topic: never replicated.
    Internal,
    /// The topic came from the flow's target cluster: replicating it would close a cycle.
    Cycle,
    /// `topics` / `topics.exclude` reject it.
    Filter,
}

/// The verdict for one source topic of `flow`. `broker_internal` is the broker's own internal
/// flag (`__consumer_offsets`, `__transaction_state`).
pub fn explain_topic(flow: &FlowSettings, topic: &str, broker_internal: bool) -> TopicVerdict {
    let policy = &flow.policy;
    if broker_internal || policy.is_internal_topic(topic) {
        return TopicVerdict::Internal;
    }
    if policy.is_cycle(topic, &flow.target) {
        return TopicVerdict::Cycle;
    }
    let heartbeat = flow.heartbeats_replication && policy.is_heartbeats_topic(topic);
    if flow.topic_filter.accepts(topic) || heartbeat {
        TopicVerdict::Selected {
            target: policy.format_remote_topic(&flow.source, topic),
        }
    } else {
        TopicVerdict::Filter
    }
}

/// One live source topic and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveTopic {
    /// Source topic name.
    pub name: String,
    /// Partition count.
    pub partitions: usize,
    /// The verdict.
    pub verdict: TopicVerdict,
}

/// Connects to a flow's source cluster and explains every topic it lists (internal ones
/// included), sorted by name. Gives up after `timeout`.
///
/// # Errors
/// [`Error::Mirror`] with [`MirrorError::Connect`] when the cluster cannot be reached or
/// refuses the login, or [`MirrorError::Admin`] when listing fails; [`Error::Timeout`] after
/// `timeout`.
pub async fn live_topics(
    flow: &FlowSettings,
    source: &ConnectionConfig,
    timeout: Duration,
) -> Result<Vec<LiveTopic>, Error> {
    let work = async {
        let cluster =
            Cluster::connect(source.clone())
                .await
                .map_err(|source| MirrorError::Connect {
                    cluster: flow.source.clone(),
                    source,
                })?;
        Admin::new(cluster)
            .list_topics(true)
            .await
            .map_err(|source| MirrorError::Admin {
                cluster: flow.source.clone(),
                operation: "list topics",
                source,
            })
    };
    let listing = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| Error::Timeout {
            cluster: flow.source.clone(),
            operation: "connect and list topics",
            after: timeout,
        })??;
    let mut out: Vec<LiveTopic> = listing
        .into_iter()
        .map(|t| LiveTopic {
            verdict: explain_topic(flow, &t.name, t.is_internal),
            name: t.name,
            partitions: t.partitions,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// What a config and ACL sync round would change for one flow. A field is `None` when that
/// sync is off for the flow, `Some(Err(..))` when planning failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetadataChanges {
    /// Topic-config sync plan.
    pub configs: Option<Result<ConfigSyncPlan, String>>,
    /// ACL sync plan.
    pub acls: Option<Result<AclPlan, String>>,
}

async fn connect(alias: &str, config: &ConnectionConfig) -> Result<Admin, Error> {
    Cluster::connect(config.clone())
        .await
        .map(Admin::new)
        .map_err(|source| {
            Error::from(MirrorError::Connect {
                cluster: alias.to_owned(),
                source,
            })
        })
}

/// Dry run of the flow's topic-config and ACL sync: connects to both clusters and plans one
/// round of each, writing nothing. Gives up after `timeout`.
///
/// # Errors
/// [`Error::Mirror`] with [`MirrorError::Connect`] when a cluster cannot be reached;
/// [`Error::Timeout`] after `timeout`. Planning failures are inside [`MetadataChanges`].
pub async fn metadata_changes(
    flow: &FlowSettings,
    source: &ConnectionConfig,
    target: &ConnectionConfig,
    timeout: Duration,
) -> Result<MetadataChanges, Error> {
    let work = async {
        let src = connect(&flow.source, source).await?;
        let dst = connect(&flow.target, target).await?;
        let configs = match flow.sync_topic_configs {
            Some(_) => Some(
                config_sync::plan_config_sync(flow, &src, &dst)
                    .await
                    .map_err(|e| e.to_string()),
            ),
            None => None,
        };
        let acls = match flow.sync_topic_acls {
            Some(_) => Some(acl_sync::dry_run(flow, &src, &dst).await),
            None => None,
        };
        Ok::<_, Error>(MetadataChanges { configs, acls })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| Error::Timeout {
            cluster: format!("{} and {}", flow.source, flow.target),
            operation: "plan config and ACL sync",
            after: timeout,
        })?
}

/// The lines `ferry check` prints for [`MetadataChanges`] (two-space indent).
pub fn describe_metadata_changes(changes: &MetadataChanges) -> Vec<String> {
    let mut out = Vec::new();
    match &changes.configs {
        None => out.push("  configs: sync off (sync.topic.configs.enabled=false)".to_owned()),
        Some(Err(e)) => out.push(format!("  configs: error: {e}")),
        Some(Ok(plan)) => {
            out.push(format!(
                "  configs: {} of {} replicated topics would change",
                plan.changes.len(),
                plan.topics_compared
            ));
            for c in &plan.changes {
                for op in &c.ops {
                    let what = match (op.op, &op.value) {
                        (AlterConfigOpType::Delete, _) => {
                            format!("delete {} (back to the target default)", op.name)
                        }
                        (_, Some(v)) => format!("set {}={v}", op.name),
                        (_, None) => format!("{:?} {}", op.op, op.name),
                    };
                    out.push(format!(
                        "    {} -> {}: {what}",
                        c.source_topic, c.target_topic
                    ));
                }
            }
            for (topic, e) in &plan.failures {
                out.push(format!("    {topic}: error: {e}"));
            }
        }
    }
    match &changes.acls {
        None => out.push("  acls: sync off (sync.topic.acls.enabled=false)".to_owned()),
        Some(Err(e)) => out.push(format!("  acls: error: {e}")),
        Some(Ok(plan)) => {
            out.push(format!(
                "  acls: {} to create, {} to delete, {} source ACLs not copied",
                plan.create.len(),
                plan.delete.len(),
                plan.skipped.len()
            ));
            for b in &plan.create {
                out.push(format!("    create {}", acl_sync::describe_binding(b)));
            }
            for b in &plan.delete {
                out.push(format!("    delete {}", acl_sync::describe_binding(b)));
            }
            for (b, why) in &plan.skipped {
                out.push(format!(
                    "    skip   {} ({})",
                    acl_sync::describe_binding(b),
                    why.reason()
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_mirror::filter::TopicFilter;
    use ferry_mirror::policy::should_replicate_topic;

    fn flow(topics: &str, exclude: Option<&str>) -> FlowSettings {
        let mut f = FlowSettings::new("A", "B").unwrap();
        f.topic_filter = TopicFilter::from_config(Some(topics), exclude).unwrap();
        f
    }

    #[test]
    fn metadata_changes_are_described() {
        use ferry_client::admin::{AclBinding, AclOperation, AclResourceType, AlterConfigOp};
        let plan = ConfigSyncPlan {
            topics_compared: 3,
            changes: vec![config_sync::TopicConfigPlan {
                source_topic: "orders".into(),
                target_topic: "A.orders".into(),
                ops: vec![
                    AlterConfigOp::set("retention.ms", "5"),
                    AlterConfigOp::delete("segment.ms"),
                ],
            }],
            failures: vec![],
        };
        let acl = AclBinding::allow(
            AclResourceType::Topic,
            "A.orders",
            "User:alice",
            AclOperation::Read,
        );
        let lines = describe_metadata_changes(&MetadataChanges {
            configs: Some(Ok(plan)),
            acls: Some(Ok(AclPlan {
                create: vec![acl],
                ..AclPlan::default()
            })),
        });
        assert_eq!(
            lines,
            [
                "  configs: 1 of 3 replicated topics would change",
                "    orders -> A.orders: set retention.ms=5",
                "    orders -> A.orders: delete segment.ms (back to the target default)",
                "  acls: 1 to create, 0 to delete, 0 source ACLs not copied",
                "    create ALLOW READ on TOPIC:LITERAL:A.orders for User:alice from *",
            ]
        );
        let off = describe_metadata_changes(&MetadataChanges {
            configs: None,
            acls: Some(Err("boom".into())),
        });
        assert_eq!(off[1], "  acls: error: boom");
    }

    #[test]
    fn verdicts_name_the_first_reason() {
        let f = flow("orders.*, B.payments, __.*", Some("orders-test"));
        let v = |t: &str, internal| explain_topic(&f, t, internal);
        assert_eq!(
            v("orders", false),
            TopicVerdict::Selected {
                target: "A.orders".to_owned()
            }
        );
        assert_eq!(v("orders-test", false), TopicVerdict::Filter);
        assert_eq!(v("clicks", false), TopicVerdict::Filter);
        assert_eq!(v("B.payments", false), TopicVerdict::Cycle);
        assert_eq!(v("__consumer_offsets", true), TopicVerdict::Internal);
        assert_eq!(
            v("mm2-offset-syncs.B.internal", false),
            TopicVerdict::Internal
        );
        // Heartbeats bypass the filter.
        assert_eq!(
            v("heartbeats", false),
            TopicVerdict::Selected {
                target: "A.heartbeats".to_owned()
            }
        );
    }

    #[test]
    fn selected_exactly_when_the_engine_replicates() {
        let f = flow(".*", Some("tmp.*"));
        for t in [
            "orders",
            "tmp1",
            "B.orders",
            "C.B.orders",
            "__x",
            "heartbeats",
            "A.heartbeats",
            "x.internal",
            "B.heartbeats",
        ] {
            let engine = should_replicate_topic(
                &f.policy,
                &f.topic_filter,
                f.heartbeats_replication,
                t,
                "B",
            );
            let selected = matches!(explain_topic(&f, t, false), TopicVerdict::Selected { .. });
            assert_eq!(engine, selected, "{t}");
        }
    }
}
