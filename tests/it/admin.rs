//! ferry-client's admin calls and transactional primitives against real brokers, checked with
//! Kafka's Java tools: topics, configs, ACLs, groups, offsets, records and the cluster on
//! PLAINTEXT; a representative subset on SASL_SSL (SCRAM-SHA-512) and SSL (mutual TLS) as the
//! `admin` super user; every admin call on every listener and SASL mechanism (checked with
//! ferry's own calls); admin commits into empty and active groups; transactions on 4.x
//! (transaction version 2, and the V1 path forced) and on 3.9.2 (V1).
//!
//! Gated by `FERRY_IT=1` / `CI=true` (`ferry_testkit::require_kafka!`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use ferry_client::admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
    Admin, AdminError, AlterConfigOp, CommittedOffset, ConfigEntry, ConfigResource, ConfigSource,
    GroupOffsetsQuery, GroupState, NewTopic, OffsetQuery,
};
use ferry_client::fetcher::{IsolationLevel, TopicPartition};
use ferry_client::producer::{IdempotentProducer, ProducerConfig};
use ferry_client::transaction::{TransactionConfig, TransactionalProducer, TxnProtocol, TxnState};
use ferry_client::{Cluster, ConnectionConfig, SaslMechanism};
use ferry_protocol::batch::Attributes;
use ferry_protocol::record::{Record, encode_parts, producer_header};
use ferry_testkit::{
    ConsumeOptions, Listener, require_kafka, shared_cluster_39, shared_pair, unique_name,
};

use crate::common::{Access, access_matrix, block_on, connection_as_admin};

/// Client settings for one listener of a test cluster, as the `admin` super user on SASL
/// listeners (SCRAM-SHA-512) and with the client certificate on SSL.
fn config(cluster: &ferry_testkit::Cluster, listener: Listener) -> ConnectionConfig {
    let mechanism = matches!(listener, Listener::SaslPlaintext | Listener::SaslSsl)
        .then_some(SaslMechanism::ScramSha512);
    connection_as_admin(
        cluster,
        Access {
            listener,
            mechanism,
        },
    )
}

async fn admin_for(cluster: &ferry_testkit::Cluster, listener: Listener) -> Admin {
    Admin::new(Cluster::connect(config(cluster, listener)).await.unwrap())
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A v2 batch of `values` (keys `k<i>`), built with ferry-protocol's record encoder.
fn batch(values: &[String]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            offset_delta: i as i32,
            timestamp_delta: i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(v.clone())),
            ..Record::default()
        })
        .collect();
    let header = producer_header(now_ms(), Attributes(0), &records);
    let (prefix, payload) = encode_parts(&header, &records).unwrap();
    let mut out = BytesMut::new();
    out.extend_from_slice(&prefix);
    out.extend_from_slice(&payload);
    out.freeze()
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Polls `describe_configs` of `resource` until `done` holds (the controller applies changes
/// to the brokers' metadata asynchronously), for at most 30 s; returns the last entries.
async fn configs_when(
    admin: &Admin,
    resource: &ConfigResource,
    done: impl Fn(&[ConfigEntry]) -> bool,
) -> Vec<ConfigEntry> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = admin
            .describe_configs(std::slice::from_ref(resource), false)
            .await
            .unwrap();
        let entries = all[resource].as_ref().unwrap().clone();
        if done(&entries) || Instant::now() > deadline {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `list_topics` until `done` holds (at most 30 s).
async fn topics_when(admin: &Admin, done: impl Fn(&BTreeMap<String, usize>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let topics: BTreeMap<String, usize> = admin
            .list_topics(false)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.name, t.partitions))
            .collect();
        if done(&topics) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "metadata never converged: {topics:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn value_of(entries: &[ConfigEntry], name: &str) -> Option<String> {
    entries
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.value.clone())
}

// ---------------------------------------------------------------------------------------------
// topics, configs and the cluster

async fn topics_and_configs(cluster: &ferry_testkit::Cluster, listener: Listener) {
    let admin = admin_for(cluster, listener).await;
    let tools = cluster.tools(listener);

    let described = admin.describe_cluster().await.unwrap();
    assert_eq!(described.cluster_id.as_deref(), Some(cluster.cluster_id()));
    assert_eq!(described.brokers.len(), 1, "{described:?}");
    let broker_id = described.brokers[0].id;
    assert!(described.controller_id.is_some());

    let a = unique_name("admin-a");
    let b = unique_name("admin-b");
    let probe = unique_name("admin-validate");
    let missing = unique_name("admin-missing");

    // validate_only creates nothing.
    let validated = admin
        .create_topics(&[NewTopic::new(&probe, 2, 1)], true)
        .await
        .unwrap();
    assert!(validated[&probe].is_ok(), "{validated:?}");

    let created = admin
        .create_topics(
            &[
                NewTopic::new(&a, 3, 1).with_config("retention.ms", "123456789"),
                NewTopic::new(&b, -1, -1),
            ],
            false,
        )
        .await
        .unwrap();
    let ca = created[&a].as_ref().unwrap();
    assert_eq!(ca.partitions, Some(3));
    assert_eq!(ca.replication_factor, Some(1));
    assert!(!ca.topic_id.is_nil());
    let retention = ca
        .configs
        .iter()
        .find(|c| c.name == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_deref(), Some("123456789"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    // num.partitions=1 in the test brokers' server.properties.
    assert_eq!(created[&b].as_ref().unwrap().partitions, Some(1));

    let again = admin
        .create_topics(&[NewTopic::new(&a, 3, 1)], false)
        .await
        .unwrap();
    let err = again[&a].as_ref().unwrap_err();
    assert!(err.is_topic_already_exists(), "{err}");
    assert!(
        err.broker_message().is_some_and(|m| m.contains(&a)),
        "{err}"
    );

    topics_when(&admin, |t| t.contains_key(&a) && t.contains_key(&b)).await;
    let listed = admin.list_topics(false).await.unwrap();
    let names: BTreeSet<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(a.as_str()) && names.contains(b.as_str()));
    assert!(
        !names.contains(probe.as_str()),
        "validate_only created {probe}"
    );
    assert!(listed.iter().all(|t| !t.is_internal));
    assert_eq!(listed.iter().find(|t| t.name == a).unwrap().partitions, 3);

    let java = tools.describe_topic(&a).unwrap();
    assert_eq!(java.partition_count, 3);
    assert_eq!(
        java.configs.get("retention.ms").map(String::as_str),
        Some("123456789")
    );

    let topics = admin.describe_topics(&[&a, &missing], true).await.unwrap();
    let da = topics[&a].as_ref().unwrap();
    assert_eq!(da.partitions.len(), 3);
    assert_eq!(da.topic_id, ca.topic_id);
    assert_eq!(da.replication_factor(), 1);
    for p in &da.partitions {
        assert_eq!(p.leader, Some(broker_id));
        assert_eq!(p.replicas, vec![broker_id]);
        assert_eq!(p.isr, vec![broker_id]);
    }
    let configs = da.configs.as_ref().unwrap();
    let retention = configs.iter().find(|c| c.name == "retention.ms").unwrap();
    assert!(!retention.is_default() && retention.is_set_on_resource());
    assert_eq!(
        retention.synonyms[0].source,
        ConfigSource::DynamicTopic,
        "{retention:?}"
    );
    // min.insync.replicas=1 in server.properties: inherited from the broker, not a topic
    // override and not Kafka's default; the synonym says where it comes from.
    let isr = configs
        .iter()
        .find(|c| c.name == "min.insync.replicas")
        .unwrap();
    // (4.x controllers also record it as a cluster-wide dynamic default, which wins.)
    assert!(
        matches!(
            isr.source,
            ConfigSource::StaticBroker | ConfigSource::DynamicDefaultBroker
        ),
        "{isr:?}"
    );
    assert!(!isr.is_default() && !isr.is_set_on_resource());
    assert!(
        isr.synonyms
            .iter()
            .any(|s| s.source == ConfigSource::StaticBroker),
        "{isr:?}"
    );
    let cleanup = configs.iter().find(|c| c.name == "cleanup.policy").unwrap();
    assert!(cleanup.is_default(), "{cleanup:?}");
    assert!(topics[&missing].as_ref().unwrap_err().is_not_found());

    // Grow to 5; shrinking is refused with the broker's message.
    let grown = admin
        .create_partitions(&BTreeMap::from([(a.clone(), 5)]), false)
        .await
        .unwrap();
    assert!(grown[&a].is_ok(), "{grown:?}");
    topics_when(&admin, |t| t.get(&a) == Some(&5)).await;
    assert_eq!(tools.describe_topic(&a).unwrap().partition_count, 5);
    let shrink = admin
        .create_partitions(&BTreeMap::from([(a.clone(), 2)]), false)
        .await
        .unwrap();
    let err = shrink[&a].as_ref().unwrap_err();
    assert!(
        !err.is_retriable() && err.broker_message().is_some(),
        "{err}"
    );

    // Broker configs: a static value from server.properties, with synonyms.
    let broker = ConfigResource::broker(broker_id);
    let bc = admin
        .describe_configs(std::slice::from_ref(&broker), true)
        .await
        .unwrap();
    let entries = bc[&broker].as_ref().unwrap();
    let auto_create = entries
        .iter()
        .find(|c| c.name == "auto.create.topics.enable")
        .unwrap();
    assert_eq!(auto_create.value.as_deref(), Some("false"));
    assert_eq!(auto_create.source, ConfigSource::StaticBroker);
    assert!(!auto_create.is_default());

    // Incremental alter: SET and APPEND, then SUBTRACT and DELETE.
    let topic_a = ConfigResource::topic(&a);
    let alter = |ops: Vec<AlterConfigOp>, validate_only: bool| {
        let changes = BTreeMap::from([(topic_a.clone(), ops)]);
        let admin = &admin;
        async move {
            admin
                .incremental_alter_configs(&changes, validate_only)
                .await
                .unwrap()
        }
    };
    let r = alter(
        vec![
            AlterConfigOp::set("retention.ms", "999000"),
            AlterConfigOp::append("cleanup.policy", "compact"),
        ],
        false,
    )
    .await;
    assert!(r[&topic_a].is_ok(), "{r:?}");
    let entry = |entries: &[ConfigEntry], name: &str| {
        entries.iter().find(|c| c.name == name).cloned().unwrap()
    };
    let now = configs_when(&admin, &topic_a, |e| {
        value_of(e, "retention.ms").as_deref() == Some("999000")
            && value_of(e, "cleanup.policy").is_some_and(|v| v.contains("compact"))
    })
    .await;
    let now = &now[..];
    assert_eq!(entry(now, "retention.ms").value.as_deref(), Some("999000"));
    let policy: BTreeSet<String> = entry(now, "cleanup.policy")
        .value
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(
        policy,
        BTreeSet::from(["compact".to_owned(), "delete".to_owned()])
    );
    assert_eq!(
        tools
            .describe_topic(&a)
            .unwrap()
            .configs
            .get("retention.ms")
            .map(String::as_str),
        Some("999000")
    );

    // validate_only with a bad value: the broker's message comes back, nothing changes.
    let r = alter(
        vec![AlterConfigOp::set("retention.ms", "not-a-number")],
        true,
    )
    .await;
    let err = r[&topic_a].as_ref().unwrap_err();
    assert!(
        matches!(err, AdminError::Resource { .. }) && err.broker_message().is_some(),
        "{err}"
    );
    let r = alter(vec![AlterConfigOp::set("min.insync.replicas", "1")], true).await;
    assert!(r[&topic_a].is_ok(), "{r:?}");
    let now = configs_when(&admin, &topic_a, |_| true).await;
    let now = &now[..];
    assert_eq!(entry(now, "retention.ms").value.as_deref(), Some("999000"));
    assert_ne!(
        entry(now, "min.insync.replicas").source,
        ConfigSource::DynamicTopic
    );

    let r = alter(
        vec![
            AlterConfigOp::subtract("cleanup.policy", "compact"),
            AlterConfigOp::delete("retention.ms"),
        ],
        false,
    )
    .await;
    assert!(r[&topic_a].is_ok(), "{r:?}");
    let now = configs_when(&admin, &topic_a, |e| {
        value_of(e, "cleanup.policy").as_deref() == Some("delete")
            && value_of(e, "retention.ms").as_deref() != Some("999000")
    })
    .await;
    let now = &now[..];
    assert_eq!(
        entry(now, "cleanup.policy").value.as_deref(),
        Some("delete")
    );
    let retention = entry(now, "retention.ms");
    assert!(
        retention.is_default(),
        "DELETE restores the default: {retention:?}"
    );

    // Delete: one real topic, one missing.
    let deleted = admin.delete_topics(&[&b, &missing]).await.unwrap();
    assert!(deleted[&b].is_ok(), "{deleted:?}");
    assert!(deleted[&missing].as_ref().unwrap_err().is_not_found());
    topics_when(&admin, |t| !t.contains_key(&b)).await;
    let java_topics = tools.list_topics().unwrap();
    assert!(!java_topics.contains(&b) && java_topics.contains(&a));
    admin.delete_topics(&[&a]).await.unwrap()[&a]
        .as_ref()
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// ACLs

async fn acls(cluster: &ferry_testkit::Cluster, listener: Listener) {
    let admin = admin_for(cluster, listener).await;
    let tools = cluster.tools(listener);
    let principal = format!("User:{}", unique_name("acl-user"));
    let topic = unique_name("acl-topic");
    let read = AclBinding::allow(
        AclResourceType::Topic,
        &topic,
        &principal,
        AclOperation::Read,
    );
    let group = AclBinding {
        pattern_type: AclPatternType::Prefixed,
        ..AclBinding::allow(
            AclResourceType::Group,
            "ferry-",
            &principal,
            AclOperation::Read,
        )
    };
    let deny = AclBinding {
        permission: AclPermission::Deny,
        host: "10.0.0.1".into(),
        ..AclBinding::allow(
            AclResourceType::Topic,
            &topic,
            &principal,
            AclOperation::Write,
        )
    };
    let created = admin
        .create_acls(&[read.clone(), group.clone(), deny.clone()])
        .await
        .unwrap();
    assert_eq!(created.len(), 3);
    assert!(created.iter().all(Result::is_ok), "{created:?}");

    // Invalid bindings are refused before anything is sent.
    let bad = AclBinding {
        operation: AclOperation::Any,
        ..read.clone()
    };
    assert!(matches!(
        admin.create_acls(&[bad]).await,
        Err(AdminError::InvalidInput { .. })
    ));

    let mine = AclBindingFilter::any().with_principal(&principal);
    let mut expected = vec![read.clone(), group.clone(), deny.clone()];
    expected.sort();
    // The controller applies ACLs asynchronously to the brokers' authorizer caches.
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        let found = admin.describe_acls(&mine).await.unwrap();
        if found == expected || Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(found, expected);
    let topic_only = admin
        .describe_acls(
            &AclBindingFilter::any()
                .with_resource_type(AclResourceType::Topic)
                .with_resource_name(&topic),
        )
        .await
        .unwrap();
    assert_eq!(topic_only.len(), 2, "{topic_only:?}");

    let java = tools
        .acls(&["--list", "--principal", &principal])
        .unwrap()
        .check()
        .unwrap();
    assert!(java.stdout.contains(&topic), "{}", java.stdout);
    assert!(
        java.stdout.contains("PREFIXED") && java.stdout.contains("ferry-"),
        "{}",
        java.stdout
    );
    assert!(
        java.stdout.contains("DENY") && java.stdout.contains("10.0.0.1"),
        "{}",
        java.stdout
    );

    let deleted = admin
        .delete_acls(&[AclBindingFilter::from(&deny)])
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].as_ref().unwrap(), &vec![deny.clone()]);
    let rest = admin
        .delete_acls(std::slice::from_ref(&mine))
        .await
        .unwrap();
    let mut rest = rest[0].clone().unwrap();
    rest.sort();
    let mut want = vec![read.clone(), group.clone()];
    want.sort();
    assert_eq!(rest, want);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = admin.describe_acls(&mine).await.unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ACLs left after delete: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// groups, offsets, records

/// A Java console consumer in a group, running until dropped (killed then).
struct BackgroundConsumer(Child);

impl BackgroundConsumer {
    fn start(cluster: &ferry_testkit::Cluster, topic: &str, group: &str) -> Self {
        let tools = cluster.tools(Listener::Plaintext);
        let mut cmd = tools.java_command("org.apache.kafka.tools.consumer.ConsoleConsumer");
        cmd.args([
            "--bootstrap-server",
            &cluster.bootstrap(Listener::Plaintext),
            "--topic",
            topic,
            "--group",
            group,
            "--from-beginning",
            "--timeout-ms",
            "600000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        Self(cmd.spawn().unwrap())
    }
}

impl Drop for BackgroundConsumer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn groups_and_offsets(cluster: &ferry_testkit::Cluster) {
    let admin = admin_for(cluster, Listener::Plaintext).await;
    let tools = cluster.tools(Listener::Plaintext);
    let topic = unique_name("admin-groups");
    let created = admin
        .create_topics(&[NewTopic::new(&topic, 2, 1)], false)
        .await
        .unwrap();
    created[&topic].as_ref().unwrap();
    topics_when(&admin, |t| t.get(&topic) == Some(&2)).await;

    // 10 records spread over both partitions by the Java producer's partitioner.
    let lines: Vec<String> = (0..10).map(|i| format!("k{i}\tv{i}")).collect();
    tools
        .console_produce(
            &topic,
            &lines,
            &[("parse.key", "true"), ("key.separator", "\t")],
        )
        .unwrap();
    let java_ends = tools.end_offsets(&topic).unwrap();
    assert_eq!(java_ends.values().sum::<i64>(), 10);

    // ListOffsets: earliest, latest (both isolation levels), max timestamp, by timestamp.
    let all = |q: OffsetQuery| BTreeMap::from([(tp(&topic, 0), q), (tp(&topic, 1), q)]);
    let latest = admin
        .list_offsets(&all(OffsetQuery::Latest), IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    let stable = admin
        .list_offsets(&all(OffsetQuery::Latest), IsolationLevel::ReadCommitted)
        .await
        .unwrap();
    for p in 0..2 {
        let l = latest[&tp(&topic, p)].as_ref().unwrap();
        assert_eq!(l.offset, java_ends[&p]);
        assert_eq!(
            stable[&tp(&topic, p)].as_ref().unwrap().offset,
            java_ends[&p]
        );
    }
    let earliest = admin
        .list_offsets(&all(OffsetQuery::Earliest), IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    assert!(earliest.values().all(|r| r.as_ref().unwrap().offset == 0));
    let max_ts = admin
        .list_offsets(
            &all(OffsetQuery::MaxTimestamp),
            IsolationLevel::ReadUncommitted,
        )
        .await
        .unwrap();
    let p0_end = java_ends[&0];
    let m = max_ts[&tp(&topic, 0)].as_ref().unwrap();
    if p0_end > 0 {
        assert!(m.offset >= 0 && m.offset < p0_end, "{m:?}");
        assert!(m.timestamp.is_some_and(|t| t > 0), "{m:?}");
    }
    let by_ts = admin
        .list_offsets(
            &all(OffsetQuery::Timestamp(0)),
            IsolationLevel::ReadUncommitted,
        )
        .await
        .unwrap();
    for p in 0..2 {
        let r = by_ts[&tp(&topic, p)].as_ref().unwrap();
        let want = if java_ends[&p] > 0 { 0 } else { -1 };
        assert_eq!(r.offset, want, "partition {p}: {r:?}");
    }
    let future = admin
        .list_offsets(
            &all(OffsetQuery::Timestamp(now_ms() + 3_600_000)),
            IsolationLevel::ReadUncommitted,
        )
        .await
        .unwrap();
    assert!(
        future.values().all(|r| r.as_ref().unwrap().offset == -1),
        "{future:?}"
    );
    let unknown = admin
        .list_offsets(
            &BTreeMap::from([(tp(&unique_name("no-such-topic"), 0), OffsetQuery::Latest)]),
            IsolationLevel::ReadUncommitted,
        )
        .await
        .unwrap();
    assert!(
        unknown
            .values()
            .all(|r| r.as_ref().unwrap_err().is_not_found()),
        "{unknown:?}"
    );

    // Admin commit into an empty group; the Java tool sees it.
    let group = unique_name("admin-group");
    let offsets = BTreeMap::from([
        (tp(&topic, 0), CommittedOffset::new(3.min(java_ends[&0]))),
        (
            tp(&topic, 1),
            CommittedOffset {
                offset: 4.min(java_ends[&1]),
                leader_epoch: None,
                metadata: Some("ferry".into()),
            },
        ),
    ]);
    admin.commit_offsets(&group, &offsets).await.unwrap();
    let fetched = admin.fetch_offsets(&group, None, false).await.unwrap();
    assert_eq!(fetched.len(), 2);
    assert_eq!(
        fetched[&tp(&topic, 0)].offset,
        offsets[&tp(&topic, 0)].offset
    );
    assert_eq!(
        fetched[&tp(&topic, 1)].offset,
        offsets[&tp(&topic, 1)].offset
    );
    assert_eq!(fetched[&tp(&topic, 1)].metadata.as_deref(), Some("ferry"));
    let stable = admin
        .fetch_offsets(&group, Some(&[tp(&topic, 1)]), true)
        .await
        .unwrap();
    assert_eq!(stable.keys().collect::<Vec<_>>(), vec![&tp(&topic, 1)]);
    let rows = tools.consumer_groups_describe(&group).unwrap();
    let java: BTreeMap<i32, Option<i64>> = rows
        .iter()
        .map(|r| (r.partition, r.current_offset))
        .collect();
    assert_eq!(java[&0], Some(offsets[&tp(&topic, 0)].offset), "{rows:?}");
    assert_eq!(java[&1], Some(offsets[&tp(&topic, 1)].offset), "{rows:?}");

    // Several groups at once; a group with no commits has no offsets.
    let nobody = unique_name("admin-nobody");
    let multi = admin
        .fetch_offsets_multi(
            &[
                GroupOffsetsQuery {
                    group: group.clone(),
                    partitions: None,
                },
                GroupOffsetsQuery {
                    group: nobody.clone(),
                    partitions: None,
                },
            ],
            false,
        )
        .await
        .unwrap();
    assert_eq!(multi[&group].as_ref().unwrap(), &fetched);
    assert!(multi[&nobody].as_ref().unwrap().is_empty());

    let described = admin.describe_groups(&[&group]).await.unwrap();
    let d = described[&group].as_ref().unwrap();
    assert_eq!(d.state, GroupState::Empty);
    assert!(d.members.is_empty());
    let empty_groups = admin.list_groups(&[GroupState::Empty]).await.unwrap();
    let listing = empty_groups
        .iter()
        .find(|g| g.group_id == group)
        .expect("listed as Empty");
    assert_eq!(listing.state, Some(GroupState::Empty));

    // A group with an active Java consumer refuses an admin commit and a delete.
    let active = unique_name("admin-active");
    let consumer = BackgroundConsumer::start(cluster, &topic, &active);
    let deadline = Instant::now() + Duration::from_secs(120);
    let members = loop {
        let described = admin.describe_groups(&[&active]).await.unwrap();
        if let Ok(d) = &described[&active]
            && d.state == GroupState::Stable
            && !d.members.is_empty()
        {
            break d.members.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the Java consumer never joined: {described:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        !members[0].member_id.is_empty() && !members[0].client_host.is_empty(),
        "{members:?}"
    );
    let stable_groups = admin.list_groups(&[GroupState::Stable]).await.unwrap();
    assert!(stable_groups.iter().any(|g| g.group_id == active));
    assert!(!stable_groups.iter().any(|g| g.group_id == group));
    let err = admin
        .commit_offsets(
            &active,
            &BTreeMap::from([(tp(&topic, 0), CommittedOffset::new(0))]),
        )
        .await
        .unwrap_err();
    assert!(err.is_group_active(), "{err:?}");
    let deleted = admin.delete_groups(&[&active]).await.unwrap();
    assert!(
        deleted[&active].as_ref().unwrap_err().is_group_active(),
        "{deleted:?}"
    );
    drop(consumer);

    // DeleteRecords moves the log start; ListOffsets and the Java tool agree.
    let cut = java_ends[&0].min(2);
    let lows = admin
        .delete_records(&BTreeMap::from([(tp(&topic, 0), cut)]))
        .await
        .unwrap();
    assert_eq!(*lows[&tp(&topic, 0)].as_ref().unwrap(), cut);
    let earliest = admin
        .list_offsets(
            &BTreeMap::from([(tp(&topic, 0), OffsetQuery::Earliest)]),
            IsolationLevel::ReadUncommitted,
        )
        .await
        .unwrap();
    assert_eq!(earliest[&tp(&topic, 0)].as_ref().unwrap().offset, cut);
    assert_eq!(tools.start_offsets(&topic).unwrap()[&0], cut);
    let past_end = admin
        .delete_records(&BTreeMap::from([(tp(&topic, 1), java_ends[&1] + 100)]))
        .await
        .unwrap();
    let err = past_end[&tp(&topic, 1)].as_ref().unwrap_err();
    assert!(!err.is_retriable(), "{err}");

    // Delete the empty group.
    let deleted = admin.delete_groups(&[&group]).await.unwrap();
    assert!(deleted[&group].is_ok(), "{deleted:?}");
    assert!(
        admin
            .fetch_offsets(&group, None, false)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!tools.consumer_groups_list().unwrap().contains(&group));
    admin.delete_topics(&[&topic]).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// transactions

async fn transactions(
    cluster: &ferry_testkit::Cluster,
    forced: Option<TxnProtocol>,
    expected: TxnProtocol,
) {
    let client = Cluster::connect(config(cluster, Listener::Plaintext))
        .await
        .unwrap();
    let admin = Admin::new(client.clone());
    let tools = cluster.tools(Listener::Plaintext);
    let topic = unique_name("txn");
    let group = unique_name("txn-group");
    admin
        .create_topics(&[NewTopic::new(&topic, 2, 1)], false)
        .await
        .unwrap()[&topic]
        .as_ref()
        .unwrap();
    topics_when(&admin, |t| t.get(&topic) == Some(&2)).await;
    let txn_id = unique_name("ferry-txn");
    let config = TransactionConfig::new(&txn_id)
        .with_transaction_timeout(Duration::from_secs(30))
        .with_protocol(forced);
    let mut p = TransactionalProducer::init(client.clone(), config.clone())
        .await
        .unwrap();
    assert_eq!(p.protocol(), expected);

    // 1: committed, with offsets.
    let first = p.identity();
    p.begin().unwrap();
    let a0 = p.send(&topic, 0, batch(&values("c1p0", 3))).await.unwrap();
    let a1 = p.send(&topic, 1, batch(&values("c1p1", 2))).await.unwrap();
    assert_eq!((a0.base_offset, a1.base_offset), (0, 0));
    assert_eq!(p.next_sequence(&tp(&topic, 0)), 3);
    let committed = BTreeMap::from([
        (tp(&topic, 0), CommittedOffset::new(3)),
        (tp(&topic, 1), CommittedOffset::new(2)),
    ]);
    p.send_offsets(&group, &committed).await.unwrap();
    p.commit().await.unwrap();
    assert_eq!(p.state(), TxnState::Ready);
    match expected {
        // KIP-890: EndTxn v5 bumps the epoch and sequences restart.
        TxnProtocol::V2 => {
            assert_ne!(p.identity(), first);
            assert_eq!(p.next_sequence(&tp(&topic, 0)), 0);
        }
        TxnProtocol::V1 => {
            assert_eq!(p.identity(), first);
            assert_eq!(p.next_sequence(&tp(&topic, 0)), 3);
        }
    }

    // 2: aborted, with offsets that must not appear.
    p.begin().unwrap();
    p.send(&topic, 0, batch(&values("a2p0", 2))).await.unwrap();
    p.send(&topic, 1, batch(&values("a2p1", 1))).await.unwrap();
    let aborted_offsets = BTreeMap::from([
        (tp(&topic, 0), CommittedOffset::new(100)),
        (tp(&topic, 1), CommittedOffset::new(100)),
    ]);
    p.send_offsets(&group, &aborted_offsets).await.unwrap();
    p.abort().await.unwrap();

    // 3: committed after the abort (sequences continue or restart correctly).
    p.begin().unwrap();
    p.send(&topic, 0, batch(&values("c3p0", 1))).await.unwrap();
    p.commit().await.unwrap();

    // Offsets: the committed ones, not the aborted ones (require_stable waits out any
    // pending transactional commit).
    let fetched = admin.fetch_offsets(&group, None, true).await.unwrap();
    assert_eq!(fetched.len(), 2, "{fetched:?}");
    assert_eq!(fetched[&tp(&topic, 0)].offset, 3);
    assert_eq!(fetched[&tp(&topic, 1)].offset, 2);
    let rows = tools.consumer_groups_describe(&group).unwrap();
    let java: BTreeMap<i32, Option<i64>> = rows
        .iter()
        .map(|r| (r.partition, r.current_offset))
        .collect();
    assert_eq!((java[&0], java[&1]), (Some(3), Some(2)), "{rows:?}");

    // read_committed sees exactly the committed records; read_uncommitted sees all data.
    let committed_values: BTreeSet<String> = values("c1p0", 3)
        .into_iter()
        .chain(values("c1p1", 2))
        .chain(values("c3p0", 1))
        .collect();
    let read = |isolation: &str| {
        tools
            .console_consume_with(
                &topic,
                &ConsumeOptions {
                    idle_timeout: Duration::from_secs(8),
                    consumer_properties: vec![("isolation.level".into(), isolation.into())],
                    ..ConsumeOptions::default()
                },
            )
            .unwrap()
    };
    let rc: Vec<String> = read("read_committed")
        .into_iter()
        .filter_map(|r| r.value)
        .collect();
    assert_eq!(rc.len(), committed_values.len(), "{rc:?}");
    assert_eq!(
        rc.iter().cloned().collect::<BTreeSet<_>>(),
        committed_values
    );
    let ru: Vec<String> = read("read_uncommitted")
        .into_iter()
        .filter_map(|r| r.value)
        .collect();
    assert_eq!(ru.len(), 9, "{ru:?}");
    assert!(ru.iter().any(|v| v.starts_with("a2p0")));

    // Each transaction ends with a marker: 3 + 1 + 2 + 1 + 1 + 1 = 9 on partition 0.
    let end = admin
        .list_offsets(
            &BTreeMap::from([(tp(&topic, 0), OffsetQuery::Latest)]),
            IsolationLevel::ReadCommitted,
        )
        .await
        .unwrap();
    assert_eq!(end[&tp(&topic, 0)].as_ref().unwrap().offset, 9);

    // A second instance with the same id fences the first.
    let mut newer = TransactionalProducer::init(client.clone(), config)
        .await
        .unwrap();
    p.begin().unwrap();
    let err = p
        .send(&topic, 0, batch(&values("zombie", 1)))
        .await
        .unwrap_err();
    assert!(err.is_fenced(), "{err:?}");
    assert_eq!(p.state(), TxnState::Fenced);
    assert!(p.begin().is_err());
    newer.begin().unwrap();
    newer
        .send(&topic, 1, batch(&values("c4p1", 1)))
        .await
        .unwrap();
    newer.commit().await.unwrap();
    admin.delete_topics(&[&topic]).await.unwrap();
    admin.delete_groups(&[&group]).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// tests

#[test]
fn admin_calls_on_plaintext_kafka4() {
    require_kafka!();
    let cluster = &shared_pair().source;
    block_on(async {
        topics_and_configs(cluster, Listener::Plaintext).await;
        acls(cluster, Listener::Plaintext).await;
        groups_and_offsets(cluster).await;
    });
}

#[test]
fn admin_calls_on_plaintext_kafka39() {
    require_kafka!();
    let cluster = shared_cluster_39();
    block_on(async {
        topics_and_configs(cluster, Listener::Plaintext).await;
        acls(cluster, Listener::Plaintext).await;
        groups_and_offsets(cluster).await;
    });
}

/// Create topic, describe configs, ACL create/describe on a secure listener, checked with the
/// Java tools on the same listener.
async fn secure_subset(cluster: &ferry_testkit::Cluster, listener: Listener) {
    let admin = admin_for(cluster, listener).await;
    let topic = unique_name("admin-secure");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 2, 1).with_config("retention.ms", "7200000")],
            false,
        )
        .await
        .unwrap();
    created[&topic].as_ref().unwrap();
    topics_when(&admin, |t| t.contains_key(&topic)).await;
    let tools = cluster.tools(listener);
    let java = tools.describe_topic(&topic).unwrap();
    assert_eq!(java.partition_count, 2);
    let configs = admin
        .describe_configs(&[ConfigResource::topic(&topic)], true)
        .await
        .unwrap();
    let entries = configs[&ConfigResource::topic(&topic)].as_ref().unwrap();
    let retention = entries.iter().find(|c| c.name == "retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("7200000"));
    assert!(retention.is_set_on_resource());
    acls(cluster, listener).await;
    admin.delete_topics(&[&topic]).await.unwrap()[&topic]
        .as_ref()
        .unwrap();
}

#[test]
fn admin_subset_on_sasl_ssl_and_ssl_kafka4() {
    require_kafka!();
    let cluster = &shared_pair().source;
    block_on(async {
        secure_subset(cluster, Listener::SaslSsl).await;
        secure_subset(cluster, Listener::Ssl).await;
    });
}

#[test]
fn admin_subset_on_sasl_ssl_and_ssl_kafka39() {
    require_kafka!();
    let cluster = shared_cluster_39();
    block_on(async {
        secure_subset(cluster, Listener::SaslSsl).await;
        secure_subset(cluster, Listener::Ssl).await;
    });
}

/// Every admin call once, over `access`, checked with ferry's own calls (the Java tools check
/// them on PLAINTEXT above): describe cluster, create/list/describe topics, create partitions,
/// describe and incrementally alter configs, list offsets, delete records, commit and fetch
/// group offsets, list and describe groups, create/describe/delete ACLs, delete topics and
/// groups. Each failure names the Kafka version and the listener/mechanism.
async fn every_admin_call(cluster: &ferry_testkit::Cluster, access: Access) {
    let what = format!("Kafka {} over {access}", cluster.version());
    let c = Cluster::connect(connection_as_admin(cluster, access))
        .await
        .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
    let admin = Admin::new(c.clone());
    let ok = |call: &str, r: Result<(), AdminError>| {
        if let Err(e) = r {
            panic!("{what}: {call}: {e}");
        }
    };
    let described = admin.describe_cluster().await;
    let described = described.unwrap_or_else(|e| panic!("{what}: describe_cluster: {e}"));
    assert_eq!(
        described.cluster_id.as_deref(),
        Some(cluster.cluster_id()),
        "{what}"
    );

    let topic = unique_name("admin-matrix");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, 1).with_config("retention.ms", "3600000")],
            false,
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: create_topics: {e}"));
    ok(
        "create_topics",
        created[&topic].as_ref().map(|_| ()).map_err(Clone::clone),
    );
    topics_when(&admin, |t| t.get(&topic) == Some(&1)).await;
    let more = admin
        .create_partitions(&BTreeMap::from([(topic.clone(), 2)]), false)
        .await
        .unwrap_or_else(|e| panic!("{what}: create_partitions: {e}"));
    ok("create_partitions", more[&topic].clone());
    topics_when(&admin, |t| t.get(&topic) == Some(&2)).await;
    let topics = admin
        .describe_topics(&[&topic], false)
        .await
        .unwrap_or_else(|e| panic!("{what}: describe_topics: {e}"));
    assert_eq!(
        topics[&topic].as_ref().unwrap().partitions.len(),
        2,
        "{what}"
    );

    let resource = ConfigResource::topic(&topic);
    let entries = configs_when(&admin, &resource, |_| true).await;
    assert_eq!(
        value_of(&entries, "retention.ms").as_deref(),
        Some("3600000"),
        "{what}: describe_configs"
    );
    let altered = admin
        .incremental_alter_configs(
            &BTreeMap::from([(
                resource.clone(),
                vec![AlterConfigOp::set("retention.ms", "7200000")],
            )]),
            false,
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: incremental_alter_configs: {e}"));
    ok("incremental_alter_configs", altered[&resource].clone());
    let entries = configs_when(&admin, &resource, |e| {
        value_of(e, "retention.ms").as_deref() == Some("7200000")
    })
    .await;
    assert_eq!(
        value_of(&entries, "retention.ms").as_deref(),
        Some("7200000"),
        "{what}: alter not applied"
    );

    // Four records in partition 0, then list offsets and delete records.
    let producer = IdempotentProducer::new(c.clone(), ProducerConfig::default())
        .await
        .unwrap_or_else(|e| panic!("{what}: InitProducerId: {e}"));
    producer
        .send(&topic, 0, batch(&values("m", 4)))
        .unwrap()
        .wait()
        .await
        .unwrap_or_else(|e| panic!("{what}: produce: {e}"));
    let p0 = |q| BTreeMap::from([(tp(&topic, 0), q)]);
    let offset_of = |r: ferry_client::admin::ItemResults<TopicPartition, _>, call: &str| match &r
        [&tp(&topic, 0)]
    {
        Ok(ferry_client::admin::ListedOffset { offset, .. }) => *offset,
        Err(e) => panic!("{what}: {call}: {e}"),
    };
    let latest = admin
        .list_offsets(&p0(OffsetQuery::Latest), IsolationLevel::ReadUncommitted)
        .await
        .unwrap_or_else(|e| panic!("{what}: list_offsets: {e}"));
    assert_eq!(offset_of(latest, "list_offsets latest"), 4, "{what}");
    let deleted = admin
        .delete_records(&BTreeMap::from([(tp(&topic, 0), 2)]))
        .await
        .unwrap_or_else(|e| panic!("{what}: delete_records: {e}"));
    assert_eq!(
        deleted[&tp(&topic, 0)].as_ref().ok(),
        Some(&2),
        "{what}: delete_records low watermark"
    );
    let earliest = admin
        .list_offsets(&p0(OffsetQuery::Earliest), IsolationLevel::ReadUncommitted)
        .await
        .unwrap_or_else(|e| panic!("{what}: list_offsets: {e}"));
    assert_eq!(offset_of(earliest, "list_offsets earliest"), 2, "{what}");

    // Group offsets: an admin commit into an empty group, read back; the group is listed.
    let group = unique_name("admin-matrix-group");
    let commit = BTreeMap::from([(tp(&topic, 0), CommittedOffset::new(3))]);
    let committed = admin.commit_offsets(&group, &commit).await;
    ok("commit_offsets", committed);
    let fetched = admin
        .fetch_offsets(&group, None, false)
        .await
        .unwrap_or_else(|e| panic!("{what}: fetch_offsets: {e}"));
    assert_eq!(
        fetched.get(&tp(&topic, 0)).map(|o| o.offset),
        Some(3),
        "{what}"
    );
    let groups = admin
        .list_groups(&[])
        .await
        .unwrap_or_else(|e| panic!("{what}: list_groups: {e}"));
    assert!(
        groups.iter().any(|g| g.group_id == group),
        "{what}: {group} not listed"
    );
    let described = admin
        .describe_groups(&[&group])
        .await
        .unwrap_or_else(|e| panic!("{what}: describe_groups: {e}"));
    let d = described[&group]
        .as_ref()
        .unwrap_or_else(|e| panic!("{what}: describe_groups: {e}"));
    assert_eq!(d.state, GroupState::Empty, "{what}");

    // ACLs.
    let principal = format!("User:{}", unique_name("matrix-user"));
    let read = AclBinding::allow(
        AclResourceType::Topic,
        &topic,
        &principal,
        AclOperation::Read,
    );
    let created = admin
        .create_acls(std::slice::from_ref(&read))
        .await
        .unwrap_or_else(|e| panic!("{what}: create_acls: {e}"));
    ok("create_acls", created[0].clone());
    let mine = AclBindingFilter::any().with_principal(&principal);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = admin
            .describe_acls(&mine)
            .await
            .unwrap_or_else(|e| panic!("{what}: describe_acls: {e}"));
        if found == vec![read.clone()] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: describe_acls: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let removed = admin
        .delete_acls(std::slice::from_ref(&mine))
        .await
        .unwrap_or_else(|e| panic!("{what}: delete_acls: {e}"));
    assert_eq!(removed[0].as_ref().ok(), Some(&vec![read]), "{what}");

    let gone = admin
        .delete_groups(&[&group])
        .await
        .unwrap_or_else(|e| panic!("{what}: delete_groups: {e}"));
    ok("delete_groups", gone[&group].clone());
    let gone = admin
        .delete_topics(&[&topic])
        .await
        .unwrap_or_else(|e| panic!("{what}: delete_topics: {e}"));
    ok("delete_topics", gone[&topic].clone());
}

#[test]
fn admin_calls_on_every_listener() {
    require_kafka!();
    let clusters = [&shared_pair().source, shared_cluster_39()];
    block_on(async {
        for cluster in clusters {
            for access in access_matrix() {
                every_admin_call(cluster, access).await;
            }
        }
    });
}

#[test]
fn transactions_kafka4_transaction_version_2() {
    require_kafka!();
    block_on(transactions(&shared_pair().source, None, TxnProtocol::V2));
}

#[test]
fn transactions_kafka4_v1_path_forced() {
    require_kafka!();
    block_on(transactions(
        &shared_pair().source,
        Some(TxnProtocol::V1),
        TxnProtocol::V1,
    ));
}

#[test]
fn transactions_kafka39() {
    require_kafka!();
    block_on(transactions(shared_cluster_39(), None, TxnProtocol::V1));
}
