//! What `ferry check` reports about live topics: which source topics a flow selects, their
//! target names, and why the others are excluded.
//!
//! The verdict follows MM2's selection rule (`MirrorSourceConnector.shouldReplicateTopic`,
//! see [`ferry_mirror::policy::should_replicate_topic`]) and names the first reason that
//! excludes a topic: internal, cycle, then the filter.

use std::time::Duration;

use ferry_client::admin::Admin;
use ferry_client::{Cluster, ConnectionConfig};
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
