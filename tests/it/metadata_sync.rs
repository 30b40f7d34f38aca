//! Topic-config and ACL sync (issue #6) on two real clusters with the authorizer on (the shared
//! pair runs `StandardAuthorizer`; ferry connects on PLAINTEXT as the super user `ANONYMOUS`).
//!
//! Scenarios: a source config change reaches the target within the interval, a target-only
//! override of an excluded key survives, and no IncrementalAlterConfigs is sent while nothing
//! changes (counted by the engine: `CountersSnapshot::config_alter_requests`); a value the
//! target refuses is named in a `TopicConfigRejected` event while the topic's other keys
//! apply; MM2-mode ACL sync (literal topic ACLs, ALL → READ, WRITE dropped, DENY copied,
//! never deleting); the opt-in modes (prefixed, group ACLs, deletion of ferry-made ACLs only)
//! with alice consuming the target topic with the Java consumer while her writes are refused;
//! `ferry check` printing the changes a sync would make without writing them.
//!
//! Gated by `FERRY_IT=1` / `CI=true` (`ferry_testkit::require_kafka!`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_client::admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
    Admin, AlterConfigOp, ConfigResource, NewTopic,
};
use ferry_client::{Cluster, ConnectionConfig};
use ferry_mirror::engine::{Engine, EngineHandle};
use ferry_mirror::events::MirrorEvent;
use ferry_mirror::filter::{PatternList, TopicFilter};
use ferry_mirror::settings::{EngineSettings, FlowSettings};
use ferry_testkit::{ConsumeOptions, Listener, require_kafka, shared_pair, unique_name};
use tokio::sync::broadcast;

use crate::common::{self, block_on};

const SRC: &str = "src";
const TGT: &str = "tgt";
/// The sync interval used here (MM2's default is 600 s).
const INTERVAL: Duration = Duration::from_secs(2);

fn conn(cluster: &ferry_testkit::Cluster) -> ConnectionConfig {
    common::connection(cluster, Listener::Plaintext)
        .build()
        .unwrap()
}

/// A flow replicating only `topic`, with config and ACL sync every [`INTERVAL`] (either can
/// be switched off by the caller).
fn flow_for(topic: &str) -> FlowSettings {
    let mut flow = FlowSettings::new(SRC, TGT).unwrap();
    flow.topic_filter = TopicFilter::from_config(Some(&regex_quote(topic)), None).unwrap();
    flow.heartbeats_replication = false;
    flow.emit_heartbeats = false;
    flow.refresh_topics_interval = INTERVAL;
    flow.progress_group = Some(unique_name("ferry-progress"));
    flow.sync_topic_configs = Some(INTERVAL);
    flow.sync_topic_acls = Some(INTERVAL);
    flow
}

fn regex_quote(s: &str) -> String {
    s.replace('.', "\\.")
}

fn remote(topic: &str) -> String {
    format!("{SRC}.{topic}")
}

/// An engine running `flow` on its own runtime; stopped (cleanly) on drop.
struct Mirror {
    runtime: tokio::runtime::Runtime,
    handle: EngineHandle,
    events: broadcast::Receiver<MirrorEvent>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Mirror {
    fn start(flow: FlowSettings) -> Self {
        let pair = shared_pair();
        let settings = EngineSettings::new()
            .with_cluster(SRC, conn(&pair.source))
            .with_cluster(TGT, conn(&pair.target))
            .with_flow(flow);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let engine = Engine::new(settings).unwrap();
        let handle = engine.handle();
        let events = handle.subscribe();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(engine.run(async move {
            let _ = rx.await;
        }));
        Self {
            runtime,
            handle,
            events,
            stop: Some(stop),
        }
    }

    /// IncrementalAlterConfigs requests config sync has sent.
    fn alter_requests(&self) -> u64 {
        self.handle.status().flows[0].counters.config_alter_requests
    }

    /// Every event received so far.
    fn drain_events(&mut self) -> Vec<MirrorEvent> {
        let mut out = Vec::new();
        loop {
            match self.events.try_recv() {
                Ok(ev) => out.push(ev),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => return out,
            }
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.runtime.block_on(async {
            tokio::time::sleep(Duration::from_millis(200)).await;
        });
    }
}

/// Polls `f` every 250 ms until it returns `Ok`, failing with `what` and the last `Err` (what
/// was seen) after `limit`.
fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return v,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "timed out after {limit:?}: {what}; last seen: {seen}"
            ),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `Ok(())` when `ok`, else the debug form of `seen`.
fn check(ok: bool, seen: impl std::fmt::Debug) -> Result<(), String> {
    if ok { Ok(()) } else { Err(format!("{seen:?}")) }
}

/// Runs `f` with ferry's admin client on `cluster` (no JVM start, so the module stays fast;
/// the Java tools are used where interoperability is the point).
fn with_admin<T>(cluster: &ferry_testkit::Cluster, f: impl AsyncFnOnce(&Admin) -> T) -> T {
    let config = conn(cluster);
    block_on(async move {
        let admin = Admin::new(Cluster::connect(config).await.unwrap());
        f(&admin).await
    })
}

fn create_topic(cluster: &ferry_testkit::Cluster, name: &str, configs: &[(&str, &str)]) {
    let mut topic = NewTopic::new(name, 1, 1);
    for (k, v) in configs {
        topic = topic.with_config(*k, *v);
    }
    with_admin(cluster, async |a| {
        for (_, r) in a.create_topics(&[topic], false).await.unwrap() {
            r.unwrap();
        }
    });
}

fn alter_configs(cluster: &ferry_testkit::Cluster, topic: &str, ops: Vec<AlterConfigOp>) {
    let changes = BTreeMap::from([(ConfigResource::topic(topic.to_owned()), ops)]);
    with_admin(cluster, async |a| {
        for (_, r) in a.incremental_alter_configs(&changes, false).await.unwrap() {
            r.unwrap();
        }
    });
}

fn add_acls(cluster: &ferry_testkit::Cluster, bindings: &[AclBinding]) {
    with_admin(cluster, async |a| {
        for r in a.create_acls(bindings).await.unwrap() {
            r.unwrap();
        }
    });
}

fn remove_acls(cluster: &ferry_testkit::Cluster, bindings: &[AclBinding]) {
    let filters: Vec<AclBindingFilter> = bindings.iter().map(AclBindingFilter::from).collect();
    with_admin(cluster, async |a| {
        for r in a.delete_acls(&filters).await.unwrap() {
            assert_eq!(r.unwrap().len(), 1, "exactly the binding was removed");
        }
    });
}

/// A topic's configs (`None` while the topic does not exist): name → (value, set on the topic
/// itself).
fn configs(
    cluster: &ferry_testkit::Cluster,
    topic: &str,
) -> Option<BTreeMap<String, (String, bool)>> {
    with_admin(cluster, async |admin| {
        let r = ConfigResource::topic(topic.to_owned());
        let mut all = admin
            .describe_configs(std::slice::from_ref(&r), false)
            .await
            .unwrap();
        let entries = all.remove(&r)?.ok()?;
        Some(
            entries
                .into_iter()
                .map(|e| {
                    let own = e.is_set_on_resource();
                    (e.name, (e.value.unwrap_or_default(), own))
                })
                .collect(),
        )
    })
}

fn config_value(cluster: &ferry_testkit::Cluster, topic: &str, key: &str) -> Option<String> {
    configs(cluster, topic)?.get(key).map(|(v, _)| v.clone())
}

/// Every ACL binding on `cluster` whose resource name is `name`.
fn acls_on(cluster: &ferry_testkit::Cluster, name: &str) -> Vec<AclBinding> {
    let filter = AclBindingFilter::any().with_resource_name(name);
    with_admin(cluster, async |a| a.describe_acls(&filter).await.unwrap())
}

fn binding(
    resource_type: AclResourceType,
    pattern_type: AclPatternType,
    name: &str,
    principal: &str,
    operation: AclOperation,
    permission: AclPermission,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.to_owned(),
        pattern_type,
        principal: principal.to_owned(),
        host: "*".to_owned(),
        operation,
        permission,
    }
}

/// `ALLOW READ` for alice on a resource.
fn alice_reads(rt: AclResourceType, pt: AclPatternType, name: &str) -> AclBinding {
    binding(
        rt,
        pt,
        name,
        "User:alice",
        AclOperation::Read,
        AclPermission::Allow,
    )
}

/// [`flow_for`] with config sync off and a filter that also accepts `<topic>-p…` (so a
/// prefixed ACL on `<topic>-p` is in scope).
fn acl_flow(topic: &str) -> FlowSettings {
    let mut flow = flow_for(topic);
    flow.sync_topic_configs = None;
    flow.topic_filter =
        TopicFilter::from_config(Some(&format!("{}.*", regex_quote(topic))), None).unwrap();
    flow
}

fn topic_acl(name: &str, principal: &str, op: AclOperation, perm: AclPermission) -> AclBinding {
    binding(
        AclResourceType::Topic,
        AclPatternType::Literal,
        name,
        principal,
        op,
        perm,
    )
}

/// `kafka-acls` on `cluster` as the super user (the Java tool, for interoperability).
fn kafka_acls(cluster: &ferry_testkit::Cluster, args: &[&str]) {
    let mut all = args.to_vec();
    all.push("--force");
    cluster
        .tools(Listener::Plaintext)
        .acls(&all)
        .unwrap()
        .check()
        .unwrap();
}

#[test]
fn config_changes_reach_the_target_and_nothing_is_sent_while_unchanged() {
    require_kafka!();
    let pair = shared_pair();
    let topic = unique_name("msync-cfg");
    let target = remote(&topic);
    create_topic(&pair.source, &topic, &[("retention.ms", "3600000")]);
    let mut mirror = Mirror::start(flow_for(&topic));

    // Created with the source's override.
    wait_for(Duration::from_secs(30), "target topic created", || {
        let v = config_value(&pair.target, &target, "retention.ms");
        check(v.as_deref() == Some("3600000"), v)
    });
    // A target-only override of an excluded key (MM2's default list).
    alter_configs(
        &pair.target,
        &target,
        vec![AlterConfigOp::set("unclean.leader.election.enable", "true")],
    );

    // Nothing differs: several intervals pass without a single AlterConfigs.
    std::thread::sleep(INTERVAL * 3 + Duration::from_millis(500));
    assert_eq!(
        mirror.alter_requests(),
        0,
        "requests sent while nothing changed"
    );

    // The change is made with the Java tool (kafka-configs).
    pair.source
        .tools(Listener::Plaintext)
        .alter_topic_config(
            &topic,
            &[
                ("retention.ms", "7200000"),
                ("max.message.bytes", "2000000"),
            ],
        )
        .unwrap();
    let changed = Instant::now();
    wait_for(INTERVAL * 5, "source change on the target", || {
        let c = configs(&pair.target, &target).unwrap_or_default();
        let got = (
            c.get("retention.ms").cloned(),
            c.get("max.message.bytes").cloned(),
        );
        check(
            got.0.as_ref().is_some_and(|v| v.0 == "7200000")
                && got.1.as_ref().is_some_and(|v| v.0 == "2000000"),
            got,
        )
    });
    let took = changed.elapsed();
    println!("config change reached the target in {took:?} (interval {INTERVAL:?})");
    assert_eq!(
        mirror.alter_requests(),
        1,
        "one request for the one changed topic"
    );
    let altered: Vec<MirrorEvent> = mirror
        .drain_events()
        .into_iter()
        .filter(|e| matches!(e, MirrorEvent::TopicConfigsAltered { .. }))
        .collect();
    assert_eq!(
        altered,
        [MirrorEvent::TopicConfigsAltered {
            flow: format!("{SRC}->{TGT}"),
            topic: target.clone(),
            set: vec![
                ("max.message.bytes".to_owned(), "2000000".to_owned()),
                ("retention.ms".to_owned(), "7200000".to_owned()),
            ],
            deleted: vec![],
        }]
    );

    // Quiet again, and the excluded target-only override survived.
    std::thread::sleep(INTERVAL * 3 + Duration::from_millis(500));
    assert_eq!(
        mirror.alter_requests(),
        1,
        "requests sent while nothing changed"
    );
    let c = configs(&pair.target, &target).unwrap();
    assert_eq!(
        c.get("unclean.leader.election.enable"),
        Some(&("true".to_owned(), true)),
        "excluded target-only override"
    );

    // Removing the source override resets the target to its default (DELETE, KIP-894).
    alter_configs(
        &pair.source,
        &topic,
        vec![AlterConfigOp::delete("max.message.bytes")],
    );
    wait_for(INTERVAL * 5, "override deleted on the target", || {
        let v = configs(&pair.target, &target).and_then(|c| c.get("max.message.bytes").cloned());
        check(v.as_ref().is_some_and(|(_, own)| !own), v)
    });
    assert_eq!(mirror.alter_requests(), 2);
}

#[test]
fn a_rejected_value_is_reported_and_the_other_keys_apply() {
    require_kafka!();
    let pair = shared_pair();
    let topic = unique_name("msync-reject");
    let target = remote(&topic);
    create_topic(&pair.source, &topic, &[("cleanup.policy", "compact")]);
    let mut flow = flow_for(&topic);
    // Keep a target-only max.compaction.lag.ms; the source's min.compaction.lag.ms above it
    // is then invalid on the target (the broker: "conflict topic config setting").
    flow.config_properties_exclude =
        PatternList::parse("config.properties.exclude", "max\\.compaction\\.lag\\.ms").unwrap();
    let mut mirror = Mirror::start(flow);
    wait_for(Duration::from_secs(30), "target topic created", || {
        let v = config_value(&pair.target, &target, "cleanup.policy");
        check(v.as_deref() == Some("compact"), v)
    });
    alter_configs(
        &pair.target,
        &target,
        vec![AlterConfigOp::set("max.compaction.lag.ms", "60000")],
    );
    alter_configs(
        &pair.source,
        &topic,
        vec![
            AlterConfigOp::set("min.compaction.lag.ms", "120000"),
            AlterConfigOp::set("retention.ms", "5000000"),
        ],
    );

    let mut seen = Vec::new();
    let rejected = wait_for(INTERVAL * 5, "TopicConfigRejected event", || {
        seen.extend(mirror.drain_events());
        seen.iter()
            .find_map(|e| match e {
                MirrorEvent::TopicConfigRejected {
                    topic,
                    key,
                    value,
                    error,
                    ..
                } => Some((topic.clone(), key.clone(), value.clone(), error.clone())),
                _ => None,
            })
            .ok_or_else(|| format!("{seen:?}"))
    });
    println!("rejection: {rejected:?}");
    assert_eq!(rejected.0, target);
    assert_eq!(rejected.1, "min.compaction.lag.ms");
    assert_eq!(rejected.2.as_deref(), Some("120000"));
    assert!(rejected.3.contains("INVALID_CONFIG"), "{}", rejected.3);
    // The other key applied.
    wait_for(INTERVAL * 3, "retention.ms on the target", || {
        let v = config_value(&pair.target, &target, "retention.ms");
        check(v.as_deref() == Some("5000000"), v)
    });
    let c = configs(&pair.target, &target).unwrap();
    assert!(
        !c["min.compaction.lag.ms"].1,
        "refused value not set: {c:?}"
    );
    assert_eq!(c["max.compaction.lag.ms"], ("60000".to_owned(), true));
    // The whole-topic request, then one per key (at least 3: a later round may re-send
    // retention.ms while the broker still describes the old value); then, settled, nothing
    // more, and the refused value is never re-sent.
    std::thread::sleep(INTERVAL * 2);
    let sent = mirror.alter_requests();
    assert!(sent >= 3, "{sent} requests");
    std::thread::sleep(INTERVAL * 3);
    assert_eq!(
        mirror.alter_requests(),
        sent,
        "requests after the topic settled"
    );
    seen.extend(mirror.drain_events());
    let config_events: Vec<&MirrorEvent> = seen
        .iter()
        .filter(|e| {
            matches!(
                e,
                MirrorEvent::TopicConfigRejected { .. } | MirrorEvent::TopicConfigsAltered { .. }
            )
        })
        .collect();
    println!("{sent} requests; events: {config_events:#?}");
    let rejections = config_events
        .iter()
        .filter(|e| matches!(e, MirrorEvent::TopicConfigRejected { .. }))
        .count();
    assert_eq!(rejections, 1, "the refused value was sent again");
}

#[test]
fn mm2_mode_copies_literal_topic_acls_downgraded_and_never_deletes() {
    require_kafka!();
    use AclOperation::{All, Read, Write};
    use AclPermission::{Allow, Deny};
    let pair = shared_pair();
    let topic = unique_name("msync-acl");
    let target = remote(&topic);
    let group = unique_name("msync-acl-g");
    let prefix = format!("{topic}-p");
    let src = &pair.source;
    create_topic(src, &topic, &[]);
    // One ACL through the Java tool, the rest through the admin API.
    kafka_acls(
        src,
        &[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "All",
            "--topic",
            &topic,
        ],
    );
    add_acls(
        src,
        &[
            topic_acl(&topic, "User:bob", Write, Allow),
            topic_acl(&topic, "User:bob", Read, Deny),
            alice_reads(AclResourceType::Topic, AclPatternType::Prefixed, &prefix),
            alice_reads(AclResourceType::Group, AclPatternType::Literal, &group),
        ],
    );

    // The filter also accepts the prefix, so only the mode keeps the prefixed ACL out.
    let mirror = Mirror::start(acl_flow(&topic));
    let mut want = vec![
        topic_acl(&target, "User:alice", Read, Allow),
        topic_acl(&target, "User:bob", Read, Deny),
    ];
    want.sort();
    wait_for(Duration::from_secs(30), "topic ACLs on the target", || {
        let got = acls_on(&pair.target, &target);
        check(got == want, got)
    });
    // Prefixed and group ACLs are not MM2's business.
    assert!(acls_on(&pair.target, &format!("{SRC}.{prefix}")).is_empty());
    assert!(acls_on(&pair.target, &group).is_empty());

    // A source revocation is not propagated (MM2 never deletes).
    remove_acls(src, &[topic_acl(&topic, "User:alice", All, Allow)]);
    std::thread::sleep(INTERVAL * 3);
    assert_eq!(acls_on(&pair.target, &target), want);
    drop(mirror);
}

#[test]
fn opt_in_modes_let_alice_read_not_write_and_delete_only_what_ferry_made() {
    require_kafka!();
    use AclOperation::{All, Read, Write};
    use AclPermission::Allow;
    let pair = shared_pair();
    let topic = unique_name("msync-acl2");
    let target = remote(&topic);
    let group = unique_name("msync-acl2-g");
    let prefix = format!("{topic}-p");
    let remote_prefix = format!("{SRC}.{prefix}");
    let (src, tgt) = (&pair.source, &pair.target);
    create_topic(src, &topic, &[]);
    src.tools(Listener::Plaintext)
        .console_produce(&topic, &["a", "b", "c", "d", "e"], &[])
        .unwrap();
    let all = topic_acl(&topic, "User:alice", All, Allow);
    add_acls(
        src,
        &[
            all.clone(),
            topic_acl(&topic, "User:alice", Write, Allow),
            alice_reads(AclResourceType::Group, AclPatternType::Literal, &group),
            alice_reads(AclResourceType::Topic, AclPatternType::Prefixed, &prefix),
        ],
    );

    let mut flow = acl_flow(&topic);
    flow.acl_sync.prefixed = true;
    flow.acl_sync.groups = true;
    flow.acl_sync.delete = true;
    let mirror = Mirror::start(flow);

    let read = topic_acl(&target, "User:alice", Read, Allow);
    let group_read = alice_reads(AclResourceType::Group, AclPatternType::Literal, &group);
    let prefix_read = alice_reads(
        AclResourceType::Topic,
        AclPatternType::Prefixed,
        &remote_prefix,
    );
    wait_for(
        Duration::from_secs(30),
        "topic, group and prefixed ACLs",
        || {
            let got = (
                acls_on(tgt, &target),
                acls_on(tgt, &group),
                acls_on(tgt, &remote_prefix),
            );
            check(
                got.0 == [read.clone()]
                    && got.1 == [group_read.clone()]
                    && got.2 == [prefix_read.clone()],
                got,
            )
        },
    );
    // An ACL an operator made on the target: ferry must never delete it.
    let bob = topic_acl(&target, "User:bob", Read, Allow);
    add_acls(tgt, std::slice::from_ref(&bob));

    // alice reads the mirrored topic with the Java consumer (mirrored READ + group ACLs only)...
    wait_for(Duration::from_secs(60), "records replicated", || {
        let status = mirror.handle.status();
        let done = status.flows[0]
            .partitions
            .values()
            .any(|p| p.replicated >= 5);
        check(done, &status.flows[0].partitions)
    });
    let alice = tgt
        .tools(Listener::SaslPlaintext)
        .with_user(tgt.user("alice"));
    let records = alice
        .console_consume_with(
            &target,
            &ConsumeOptions {
                max_messages: 5,
                group: Some(group.clone()),
                ..ConsumeOptions::default()
            },
        )
        .unwrap();
    let values: Vec<_> = records.iter().filter_map(|r| r.value.clone()).collect();
    assert_eq!(values, ["a", "b", "c", "d", "e"]);
    // ...and cannot write it.
    let refused = alice.console_produce(&target, &["nope"], &[("max.block.ms", "10000")]);
    let error = refused
        .expect_err("alice wrote to the target topic")
        .to_string();
    assert!(error.contains("Authorization"), "{error}");

    // Deleting the source ACL deletes the one ferry made, not the operator's.
    remove_acls(src, &[all]);
    wait_for(INTERVAL * 6, "ferry's ACL deleted", || {
        let got = acls_on(tgt, &target);
        check(got == [bob.clone()], got)
    });
    // The group ACL's source is still there.
    assert_eq!(acls_on(tgt, &group), [group_read]);
    drop(mirror);
}

#[test]
fn check_prints_what_a_sync_would_change_and_writes_nothing() {
    require_kafka!();
    let pair = shared_pair();
    let topic = unique_name("msync-check");
    let target = remote(&topic);
    create_topic(&pair.source, &topic, &[("retention.ms", "1000000")]);
    create_topic(&pair.target, &target, &[("retention.ms", "2000000")]);
    add_acls(
        &pair.source,
        &[topic_acl(
            &topic,
            "User:alice",
            AclOperation::Read,
            AclPermission::Allow,
        )],
    );

    let dir = tempfile::tempdir().unwrap();
    let admin = pair.source.user("admin");
    let text = format!(
        "clusters = {SRC}, {TGT}\n{}{}{SRC}->{TGT}.enabled = true\n{SRC}->{TGT}.topics = {}\n",
        common::cluster_lines(SRC, &pair.source, Listener::Plaintext, &admin),
        common::cluster_lines(TGT, &pair.target, Listener::Plaintext, &admin),
        regex_quote(&topic),
    );
    let path = common::write_config(dir.path(), &text);
    let out = std::process::Command::new(common::FERRY)
        .args(["check", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        format!("sync changes for {SRC}->{TGT} (dry run, nothing written):"),
        "  configs: 1 of 1 replicated topics would change".to_owned(),
        format!("    {topic} -> {target}: set retention.ms=1000000"),
        format!("    create ALLOW READ on TOPIC:LITERAL:{target} for User:alice from *"),
    ] {
        assert!(stdout.lines().any(|l| l == line), "want {line:?}\n{stdout}");
    }
    // A dry run: nothing changed on the target.
    assert_eq!(
        config_value(&pair.target, &target, "retention.ms").as_deref(),
        Some("2000000")
    );
    assert!(acls_on(&pair.target, &target).is_empty());
}
