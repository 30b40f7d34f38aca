//! Smoke test of the engine's consumer-group machinery (issue #7 items 1–4) through
//! `ferry_mirror::engine::Engine` directly: exact checkpoints, group-offset sync with an
//! upstream rewind, and the offset-map history read back after a restart. The acceptance suite
//! with the Java consumer and `mm2.properties` is `tests/it/groups.rs`.
//!
//! Gated by `FERRY_IT=1` / `CI=true` (`ferry_testkit::require_kafka!`). About 30 s.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_client::admin::{Admin, CommittedOffset, GroupState};
use ferry_client::fetcher::TopicPartition;
use ferry_client::{BackoffConfig, ConnectionConfig};
use ferry_mirror::engine::{Engine, EngineHandle, MirrorError};
use ferry_mirror::events::MirrorEvent;
use ferry_mirror::filter::{GroupFilter, TopicFilter};
use ferry_mirror::settings::{EngineSettings, FlowSettings};
use ferry_testkit::{Cluster, Listener, TxnOutcome, require_kafka, shared_pair, unique_name};
use tokio::runtime::Runtime;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

const SRC: &str = "src";
const TGT: &str = "tgt";
const FLOW: &str = "src->tgt";

fn connection(cluster: &Cluster) -> ConnectionConfig {
    ConnectionConfig::builder()
        .with_bootstrap([cluster.bootstrap(Listener::Plaintext)])
        .with_request_timeout(Duration::from_secs(30))
        .with_backoff(BackoffConfig::default().with_deadline(Duration::from_secs(30)))
        .build()
        .unwrap()
}

/// An engine task with its stop switch.
struct Started {
    handle: EngineHandle,
    events: broadcast::Receiver<MirrorEvent>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), MirrorError>>,
}

fn start(rt: &Runtime, settings: EngineSettings) -> Started {
    let engine = Engine::new(settings).unwrap();
    let handle = engine.handle();
    let events = engine.subscribe();
    let (stop, rx) = oneshot::channel::<()>();
    let task = rt.spawn(engine.run(async move {
        let _ = rx.await;
    }));
    Started {
        handle,
        events,
        stop,
        task,
    }
}

fn stop(rt: &Runtime, s: Started) {
    let _ = s.stop.send(());
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), s.task).await })
        .expect("engine stopped within 60 s")
        .expect("engine task")
        .expect("engine run");
}

/// Polls `f` every 200 ms until it returns `Some`, or fails after `timeout` with `what`.
fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn commit(rt: &Runtime, admin: &Admin, group: &str, tp: &TopicPartition, offset: i64, meta: &str) {
    let mut o = CommittedOffset::new(offset);
    o.metadata = Some(meta.to_owned());
    rt.block_on(admin.commit_offsets(group, &BTreeMap::from([(tp.clone(), o)])))
        .unwrap();
}

fn committed(rt: &Runtime, admin: &Admin, group: &str, tp: &TopicPartition) -> Option<i64> {
    rt.block_on(admin.fetch_offsets(group, Some(std::slice::from_ref(tp)), false))
        .ok()
        .and_then(|o| o.get(tp).map(|c| c.offset))
}

#[test]
fn checkpoints_group_sync_and_history_across_restart() {
    require_kafka!();
    let pair = shared_pair();
    let began = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let topic = unique_name("ge-txn");
    let group = unique_name("ge-group");
    let tools = pair.source.tools(Listener::Plaintext);
    tools.create_topic(&topic, 1, &[]).unwrap();
    // Two committed transactions: their markers are source offsets the target never gets, so
    // source and target offsets diverge (two segments).
    let lines = |p: &str| (0..5).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    let metas = tools
        .transactional_produce(
            &topic,
            &unique_name("ge-tx"),
            &[
                (TxnOutcome::Commit, lines("a")),
                (TxnOutcome::Commit, lines("b")),
            ],
            &[],
        )
        .unwrap();
    let data: Vec<i64> = metas.iter().map(|m| m.offset).collect();
    assert_eq!(data.len(), 10);
    assert!(
        data.windows(2).any(|w| w[1] > w[0] + 1),
        "a marker between the transactions: {data:?}"
    );
    // Independent expectation: the target holds the data records in order from offset 0, so
    // source offset U translates to the number of data records below U.
    let expect = |u: i64| i64::try_from(data.iter().filter(|&&o| o < u).count()).unwrap();

    let (source_admin, target_admin) = rt.block_on(async {
        (
            Admin::new(
                ferry_client::Cluster::connect(connection(&pair.source))
                    .await
                    .unwrap(),
            ),
            Admin::new(
                ferry_client::Cluster::connect(connection(&pair.target))
                    .await
                    .unwrap(),
            ),
        )
    });
    let source_tp = TopicPartition::new(topic.clone(), 0);
    let target_tp = TopicPartition::new(format!("{SRC}.{topic}"), 0);
    let u = data[7];
    commit(&rt, &source_admin, &group, &source_tp, u, "meta-1");

    let mut flow = FlowSettings::new(SRC, TGT).unwrap();
    flow.topic_filter = TopicFilter::from_config(Some(&topic), None).unwrap();
    flow.group_filter = GroupFilter::from_config(Some(&group), None).unwrap();
    flow.heartbeats_replication = false;
    flow.refresh_topics_interval = Duration::from_secs(2);
    flow.progress_interval = Duration::from_millis(300);
    flow.progress_group = Some(unique_name("ge-progress"));
    flow.checkpoints_interval = Duration::from_secs(1);
    flow.refresh_groups_interval = Duration::from_secs(1);
    flow.sync_group_offsets = true;
    flow.sync_group_offsets_interval = Duration::from_secs(1);
    let settings = EngineSettings::new()
        .with_cluster(SRC, connection(&pair.source))
        .with_cluster(TGT, connection(&pair.target))
        .with_flow(flow);

    let mut engine = start(&rt, settings.clone());
    // Group sync commits the exact translation into the (memberless) target group.
    let synced = wait_for(Duration::from_secs(40), "the target group offset", || {
        committed(&rt, &target_admin, &group, &target_tp).filter(|&o| o == expect(u))
    });
    assert_eq!(synced, 7, "8th data record");
    let status = engine.handle.group_offsets();
    let ours = status
        .iter()
        .find(|s| s.group == group)
        .unwrap_or_else(|| panic!("{status:?}"));
    assert_eq!((ours.upstream, ours.translated), (u, Some(expect(u))));
    let mut saw_checkpoint = false;
    let mut saw_sync = false;
    while let Ok(ev) = engine.events.try_recv() {
        match ev {
            MirrorEvent::CheckpointsWritten { checkpoints, .. } => {
                saw_checkpoint |= checkpoints > 0
            }
            MirrorEvent::GroupSynced { group: g, .. } => saw_sync |= g == group,
            MirrorEvent::StepFailed {
                step: "offset map",
                error,
                ..
            } => {
                panic!("offset-map store failed: {error}")
            }
            _ => {}
        }
    }
    assert!(saw_checkpoint && saw_sync);

    // The source group rewinds: the checkpoint and the (untouched) target group follow it back.
    let rewound = data[2];
    commit(&rt, &source_admin, &group, &source_tp, rewound, "meta-2");
    wait_for(Duration::from_secs(20), "the rewind on the target", || {
        committed(&rt, &target_admin, &group, &target_tp).filter(|&o| o == expect(rewound))
    });

    // Restart: the history comes back from the store, so offsets below the resume position
    // still translate (a map without history starts at its resume position and says `None`).
    stop(&rt, engine);
    let mut engine = start(&rt, settings);
    let snapshot = wait_for(Duration::from_secs(30), "the restored map", || {
        engine.handle.offset_map(FLOW, &topic, 0)
    });
    let mut seen = Vec::new();
    while let Ok(ev) = engine.events.try_recv() {
        seen.push(ev);
    }
    let resume = snapshot.map.processed();
    assert!(resume > data[9], "resumed after everything: {snapshot:?}");
    for &o in &data {
        assert_eq!(
            snapshot.map.translate(o),
            Some(expect(o)),
            "source {o}: {snapshot:?}; events {seen:?}"
        );
    }
    assert_eq!(snapshot.map.translate(resume), Some(10));
    assert_eq!(snapshot.map.translate(resume + 1), None);
    stop(&rt, engine);
    println!("groups_engine: {:.1} s", began.elapsed().as_secs_f64());
}

/// What group sync relies on, checked against the real coordinator for both group protocols:
/// a group with members is seen as active by DescribeGroups, and an admin commit into it
/// (generation −1, empty member id) is refused with a code ferry-client classifies as "group
/// active" (so the sync skips it instead of failing).
#[test]
fn admin_commit_into_a_group_with_members_is_refused_as_active() {
    require_kafka!();
    let pair = shared_pair();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let topic = unique_name("ge-active");
    let tools = pair.target.tools(Listener::Plaintext);
    tools.create_topic(&topic, 1, &[]).unwrap();
    let admin = rt.block_on(async {
        Admin::new(
            ferry_client::Cluster::connect(connection(&pair.target))
                .await
                .unwrap(),
        )
    });
    let tp = TopicPartition::new(topic.clone(), 0);
    std::thread::scope(|scope| {
        for protocol in ["classic", "consumer"] {
            let group = unique_name(&format!("ge-active-{protocol}"));
            // A consumer that stays in the group (no records arrive) for a while.
            let consumer = {
                let (tools, topic, group) = (&tools, &topic, group.clone());
                scope.spawn(move || {
                    let options = ferry_testkit::ConsumeOptions {
                        idle_timeout: Duration::from_secs(10),
                        group: Some(group),
                        consumer_properties: vec![("group.protocol".into(), protocol.into())],
                        ..Default::default()
                    };
                    tools.console_consume_with(topic, &options)
                })
            };
            // Classic groups show their members in DescribeGroups; KIP-848 groups answer
            // GROUP_ID_NOT_FOUND ("not a classic group") there and show up in ListGroups.
            let state = wait_for(Duration::from_secs(30), "a member in the group", || {
                let described = rt.block_on(admin.describe_groups(&[group.as_str()])).ok()?;
                match described.get(&group)? {
                    Ok(d) => (!d.members.is_empty()).then(|| (d.state.clone(), d.members.len())),
                    Err(e) if e.is_not_found() => {
                        let listed = rt.block_on(admin.list_groups(&[])).ok()?;
                        let l = listed.into_iter().find(|l| l.group_id == group)?;
                        l.state.filter(|s| *s != GroupState::Empty).map(|s| (s, 0))
                    }
                    Err(_) => None,
                }
            });
            assert!(
                !ferry_mirror::group_sync::group_idle(&state.0, state.1),
                "{protocol}: {state:?}"
            );
            let refused = rt
                .block_on(admin.commit_offsets(
                    &group,
                    &BTreeMap::from([(tp.clone(), CommittedOffset::new(0))]),
                ))
                .expect_err("an admin commit into a group with members");
            assert!(refused.is_group_active(), "{protocol}: {refused:?}");
            println!(
                "groups_engine: {protocol} group in state {} refused the admin commit with {:?}",
                state.0,
                refused.error_code()
            );
            consumer.join().unwrap().unwrap();
        }
    });
}
