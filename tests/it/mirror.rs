//! The replication engine end to end against two real clusters: data written by the Java
//! producer is replicated by `ferry_mirror::engine::Engine` and read back on both sides by the
//! Java console consumer, field for field, per partition, in order.
//!
//! Scenarios: a 4-partition lz4 topic (zero-copy share and throughput printed); clean shutdown
//! then restart (no duplicates, new records continue); every codec with null keys, null vs
//! empty values and duplicate header keys; committed and aborted transactions under
//! read_committed; a compacted topic with holes (renumber route); a topic created and
//! partitions added mid-run; a crash (runtime dropped) then restart (nothing lost, duplicates
//! counted).
//!
//! Gated by `FERRY_IT=1` / `CI=true` (`ferry_testkit::require_kafka!`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ferry_client::{BackoffConfig, ConnectionConfig};
use ferry_mirror::engine::{Engine, EngineHandle, EngineStatus, PartitionState};
use ferry_mirror::filter::TopicFilter;
use ferry_mirror::settings::{EngineSettings, FlowSettings};
use ferry_testkit::{
    ConsumedRecord, Listener, TxnOutcome, require_kafka, shared_pair, unique_name,
};
use tokio::sync::oneshot;

use crate::common::{assert_same_records, consume_all};

const SRC: &str = "src";
const TGT: &str = "tgt";

fn connection(cluster: &ferry_testkit::Cluster) -> ConnectionConfig {
    ConnectionConfig::builder()
        .with_bootstrap([cluster.bootstrap(Listener::Plaintext)])
        .with_connect_timeout(Duration::from_secs(5))
        .with_request_timeout(Duration::from_secs(30))
        .with_backoff(BackoffConfig::default().with_deadline(Duration::from_secs(30)))
        .build()
        .unwrap()
}

/// Settings for one flow `src->tgt` replicating topics matching `topics` (a regex list).
fn settings(pair: &ferry_testkit::ClusterPair, topics: &str) -> EngineSettings {
    let mut flow = FlowSettings::new(SRC, TGT).unwrap();
    flow.topic_filter = TopicFilter::from_config(Some(topics), None).unwrap();
    // Shared clusters hold other tests' topics (and maybe a `heartbeats` topic): replicate only ours.
    flow.heartbeats_replication = false;
    flow.refresh_topics_interval = Duration::from_secs(2);
    flow.progress_interval = Duration::from_millis(500);
    flow.progress_group = Some(unique_name("ferry-progress"));
    EngineSettings::new()
        .with_cluster(SRC, connection(&pair.source))
        .with_cluster(TGT, connection(&pair.target))
        .with_flow(flow)
}

/// A running engine on its own runtime.
struct Running {
    runtime: tokio::runtime::Runtime,
    handle: EngineHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ferry_mirror::engine::MirrorError>>>,
    started: Instant,
}

impl Running {
    fn start(settings: EngineSettings) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let engine = Engine::new(settings).unwrap();
        let handle = engine.handle();
        let (stop, rx) = oneshot::channel::<()>();
        let task = runtime.spawn(engine.run(async move {
            let _ = rx.await;
        }));
        Self {
            runtime,
            handle,
            stop: Some(stop),
            task: Some(task),
            started: Instant::now(),
        }
    }

    /// Clean shutdown: drain and store progress.
    fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().unwrap();
        self.runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(60), task).await })
            .expect("engine drained within 60 s")
            .expect("engine task")
            .expect("engine run");
    }

    /// A crash: every task is dropped where it stands, nothing drains.
    fn crash(mut self) {
        self.stop.take();
        self.task.take();
        self.runtime.shutdown_background();
    }

    /// Waits until `n` partitions are running; returns when that was first seen.
    fn wait_started(&self, n: usize, timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.handle.status();
            let running = status.flows[0]
                .partitions
                .values()
                .filter(|s| s.state == PartitionState::Running)
                .count();
            if running >= n {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "{n} partitions not started: {status:#?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until the flow replicated every partition of `topic` (source name) up to `ends`.
    fn wait_caught_up(
        &self,
        topic: &str,
        ends: &BTreeMap<i32, i64>,
        timeout: Duration,
    ) -> EngineStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.handle.status();
            let flow = &status.flows[0];
            let done = ends.iter().all(|(&p, &end)| {
                flow.partitions
                    .iter()
                    .find(|(tp, _)| tp.topic == topic && tp.partition == p)
                    .is_some_and(|(_, s)| s.replicated >= end)
            });
            if done {
                return status;
            }
            for (tp, s) in &flow.partitions {
                assert!(
                    !matches!(s.state, PartitionState::Stopped(_)),
                    "{tp} stopped: {s:?}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "not caught up on {topic} within {timeout:?}: want {ends:?}, status {status:#?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn target_name(topic: &str) -> String {
    format!("{SRC}.{topic}")
}

/// `headers\tkey\tvalue` lines with duplicate header keys.
fn lines(from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| {
            format!(
                "id:{i},dup:a,dup:b{}\tk{i}\tv{i}-{}",
                i % 7,
                "x".repeat(i % 113)
            )
        })
        .collect()
}

fn produce(cluster: &ferry_testkit::Cluster, topic: &str, lines: &[String], codec: &str) {
    cluster
        .tools(Listener::Plaintext)
        .with_timeout(Duration::from_secs(300))
        .console_produce(
            topic,
            lines,
            &[
                ("compression.type", codec),
                ("linger.ms", "50"),
                ("batch.size", "65536"),
                ("parse.key", "true"),
                ("parse.headers", "true"),
                ("key.separator", "\t"),
                ("headers.delimiter", "\t"),
                ("headers.separator", ","),
                ("headers.key.separator", ":"),
                ("null.marker", "<NULL>"),
            ],
        )
        .unwrap();
}

fn total(ends: &BTreeMap<i32, i64>) -> i64 {
    ends.values().sum()
}

#[test]
fn four_partitions_lz4_replicated_field_for_field_then_clean_restart() {
    require_kafka!();
    let pair = shared_pair();
    let topic = unique_name("mirror-lz4");
    let src_tools = pair.source.tools(Listener::Plaintext);
    let tgt_tools = pair.target.tools(Listener::Plaintext);
    src_tools.create_topic(&topic, 4, &[]).unwrap();
    const N: usize = 40_000;
    produce(&pair.source, &topic, &lines(0, N), "lz4");
    let ends = src_tools.end_offsets(&topic).unwrap();
    assert_eq!(total(&ends), N as i64);
    let settings = settings(pair, &topic);

    // 1. Replicate and compare.
    let running = Running::start(settings.clone());
    let first_running = running.wait_started(4, Duration::from_secs(60));
    let status = running.wait_caught_up(&topic, &ends, Duration::from_secs(120));
    let elapsed = first_running.elapsed();
    eprintln!(
        "mirror lz4: partitions running {:?} after start",
        running.started.elapsed() - elapsed
    );
    let c = status.flows[0].counters;
    eprintln!(
        "mirror lz4: {N} records, {} batch bytes in {elapsed:?} ({:.0} records/s, {:.1} MB/s from partition start to caught up); \
         routes as-is {} patch {} renumber {} convert {} dropped {}; zero-copy share {:?}",
        c.bytes,
        N as f64 / elapsed.as_secs_f64(),
        c.bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        c.as_is,
        c.patch,
        c.renumber,
        c.convert,
        c.dropped,
        c.zero_copy_share()
    );
    assert_eq!(c.records, N as u64);
    assert_eq!(
        c.renumber + c.convert,
        0,
        "a plain lz4 topic needs no re-encoding"
    );
    assert_eq!(c.zero_copy_share(), Some(1.0));
    running.shutdown();

    let target = target_name(&topic);
    let tgt_ends = tgt_tools.end_offsets(&target).unwrap();
    assert_eq!(
        tgt_ends, ends,
        "target end offsets equal the source's (no duplicates)"
    );
    let desc = tgt_tools.describe_topic(&target).unwrap();
    assert_eq!(desc.partition_count, 4);
    assert_eq!(
        desc.configs.get("compression.type").map(String::as_str),
        Some("producer")
    );
    assert_same_records(
        &consume_all(&pair.source, &topic, N),
        &consume_all(&pair.target, &target, N),
    );

    // 2. Clean restart: nothing re-sent, new records continue.
    const M: usize = 5_000;
    produce(&pair.source, &topic, &lines(N, M), "lz4");
    let ends2 = src_tools.end_offsets(&topic).unwrap();
    let running = Running::start(settings);
    let status = running.wait_caught_up(&topic, &ends2, Duration::from_secs(120));
    assert_eq!(
        status.flows[0].counters.records, M as u64,
        "only the new records are sent"
    );
    for (tp, s) in &status.flows[0].partitions {
        assert_eq!(s.replicated, ends2[&tp.partition], "{tp}");
    }
    running.shutdown();
    let tgt_ends2 = tgt_tools.end_offsets(&target).unwrap();
    assert_eq!(tgt_ends2, ends2, "zero duplicates after a clean restart");
    assert_same_records(
        &consume_all(&pair.source, &topic, N + M),
        &consume_all(&pair.target, &target, N + M),
    );
}

#[test]
fn every_codec_with_null_keys_empty_values_and_duplicate_headers() {
    require_kafka!();
    let pair = shared_pair();
    let prefix = unique_name("mirror-codec");
    let src_tools = pair.source.tools(Listener::Plaintext);
    let mut all_ends = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("{prefix}-{codec}");
        src_tools.create_topic(&topic, 2, &[]).unwrap();
        let mut ls = lines(0, 2_000);
        // Null key, null value (tombstone), empty value, null key and empty value.
        ls.push("a:1,a:2\t<NULL>\tnull-key".to_owned());
        ls.push("b:1\tk-tomb\t<NULL>".to_owned());
        ls.push("c:1\tk-empty\t".to_owned());
        ls.push("d:1\t<NULL>\t".to_owned());
        produce(&pair.source, &topic, &ls, codec);
        let ends = src_tools.end_offsets(&topic).unwrap();
        assert_eq!(total(&ends), ls.len() as i64);
        all_ends.push((topic, ends, ls.len()));
    }
    let running = Running::start(settings(pair, &format!("{prefix}-.*")));
    for (topic, ends, _) in &all_ends {
        running.wait_caught_up(topic, ends, Duration::from_secs(120));
    }
    let c = running.handle.status().flows[0].counters;
    eprintln!(
        "mirror codecs: {c:?}, zero-copy share {:?}",
        c.zero_copy_share()
    );
    assert_eq!(c.renumber + c.convert, 0);
    running.shutdown();
    for (topic, ends, n) in &all_ends {
        let target = target_name(topic);
        assert_eq!(
            &pair
                .target
                .tools(Listener::Plaintext)
                .end_offsets(&target)
                .unwrap(),
            ends
        );
        let source = consume_all(&pair.source, topic, *n);
        assert!(source.iter().any(|r| r.key.is_none()), "null keys present");
        assert!(
            source.iter().any(|r| r.value.is_none()),
            "tombstone present"
        );
        assert!(
            source.iter().any(|r| r.value.as_deref() == Some("")),
            "empty value present"
        );
        assert_same_records(&source, &consume_all(&pair.target, &target, *n));
    }
}

#[test]
fn read_committed_drops_aborted_transactions_and_markers() {
    require_kafka!();
    let pair = shared_pair();
    let topic = unique_name("mirror-txn");
    let src_tools = pair.source.tools(Listener::Plaintext);
    src_tools.create_topic(&topic, 2, &[]).unwrap();
    let txn = |tag: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("k{tag}{i}\t{tag}-{i}")).collect()
    };
    let plan = vec![
        (TxnOutcome::Commit, txn("c1-", 50)),
        (TxnOutcome::Abort, txn("a1-", 40)),
        (TxnOutcome::Commit, txn("c2-", 30)),
        (TxnOutcome::Abort, txn("a2-", 20)),
        (TxnOutcome::Commit, txn("c3-", 10)),
    ];
    let metas = src_tools
        .transactional_produce(
            &topic,
            &unique_name("txn"),
            &plan,
            &[("compression.type", "zstd")],
        )
        .unwrap();
    let committed = metas
        .iter()
        .filter(|m| m.outcome == TxnOutcome::Commit)
        .count();
    assert_eq!(committed, 90);
    let ends = src_tools.end_offsets(&topic).unwrap();
    let running = Running::start(settings(pair, &topic));
    let status = running.wait_caught_up(&topic, &ends, Duration::from_secs(120));
    let c = status.flows[0].counters;
    eprintln!("mirror txn: {c:?}");
    assert_eq!(
        c.records, committed as u64,
        "only committed records reach the target"
    );
    assert!(c.dropped > 0, "markers and aborted batches dropped");
    running.shutdown();
    let target = target_name(&topic);
    let t = consume_all(&pair.target, &target, committed);
    assert!(
        t.iter()
            .all(|r| !r.value.as_deref().unwrap_or("").starts_with('a'))
    );
    assert_same_records(&consume_all(&pair.source, &topic, committed), &t);
    // Uncommitted read of the target shows the same: nothing aborted was written.
    let raw = pair
        .target
        .tools(Listener::Plaintext)
        .console_consume(&target, committed + 100, Duration::from_secs(10), &[])
        .unwrap();
    assert_eq!(raw.len(), committed);
}

#[test]
fn compacted_topic_with_holes_is_renumbered() {
    require_kafka!();
    let pair = shared_pair();
    let topic = unique_name("mirror-compact");
    let src_tools = pair.source.tools(Listener::Plaintext);
    src_tools
        .create_topic(
            &topic,
            1,
            &[
                ("cleanup.policy", "compact"),
                ("segment.ms", "100"),
                ("min.cleanable.dirty.ratio", "0.01"),
                ("delete.retention.ms", "100"),
                ("min.compaction.lag.ms", "0"),
            ],
        )
        .unwrap();
    // 20 keys rewritten 50 times: compaction leaves holes inside batches.
    let ls: Vec<String> = (0..1_000)
        .map(|i| format!("h:{i}\tkey{}\tv{i}", i % 20))
        .collect();
    produce(&pair.source, &topic, &ls[..500], "gzip");
    std::thread::sleep(Duration::from_millis(300));
    produce(&pair.source, &topic, &ls[500..], "gzip");
    // Wait for the cleaner to remove records (the log start stays 0; the count drops).
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut source = consume_all(&pair.source, &topic, 1_000);
    while source.len() >= 1_000 && Instant::now() < deadline {
        // A new segment must roll for the old one to be cleaned.
        produce(
            &pair.source,
            &topic,
            &["h:x\tkey0\troll".to_owned()],
            "gzip",
        );
        std::thread::sleep(Duration::from_secs(3));
        source = consume_all(&pair.source, &topic, 2_000);
    }
    assert!(source.len() < 1_000, "the cleaner never ran");
    let ends = src_tools.end_offsets(&topic).unwrap();
    let running = Running::start(settings(pair, &topic));
    let status = running.wait_caught_up(&topic, &ends, Duration::from_secs(120));
    let c = status.flows[0].counters;
    eprintln!(
        "mirror compacted: {} records of {} offsets; {c:?}",
        source.len(),
        total(&ends)
    );
    assert!(c.renumber > 0, "holes force the renumber route");
    running.shutdown();
    let source = consume_all(&pair.source, &topic, 2_000);
    let target = consume_all(&pair.target, &target_name(&topic), 2_000);
    assert_same_records(&source, &target);
}

#[test]
fn topic_created_and_partitions_added_mid_run_are_replicated() {
    require_kafka!();
    let pair = shared_pair();
    let prefix = unique_name("mirror-new");
    let src_tools = pair.source.tools(Listener::Plaintext);
    let first = format!("{prefix}-a");
    src_tools.create_topic(&first, 1, &[]).unwrap();
    produce(&pair.source, &first, &lines(0, 100), "snappy");
    let running = Running::start(settings(pair, &format!("{prefix}-.*")));
    running.wait_caught_up(
        &first,
        &src_tools.end_offsets(&first).unwrap(),
        Duration::from_secs(60),
    );

    // A new topic while running: picked up within the 2 s refresh interval.
    let second = format!("{prefix}-b");
    src_tools.create_topic(&second, 2, &[]).unwrap();
    produce(&pair.source, &second, &lines(0, 300), "lz4");
    let t0 = Instant::now();
    running.wait_caught_up(
        &second,
        &src_tools.end_offsets(&second).unwrap(),
        Duration::from_secs(60),
    );
    eprintln!(
        "mirror: new topic replicated {:?} after its records were written",
        t0.elapsed()
    );

    // Partitions added on the source.
    running.runtime.block_on(async {
        let cluster = ferry_client::Cluster::connect(connection(&pair.source))
            .await
            .unwrap();
        let admin = ferry_client::admin::Admin::new(cluster);
        let totals = BTreeMap::from([(first.clone(), 3)]);
        for (_, r) in admin.create_partitions(&totals, false).await.unwrap() {
            r.unwrap();
        }
    });
    produce(&pair.source, &first, &lines(100, 600), "snappy");
    let ends = src_tools.end_offsets(&first).unwrap();
    assert_eq!(ends.len(), 3);
    assert!(
        ends.values().all(|&e| e > 0),
        "every partition has data: {ends:?}"
    );
    running.wait_caught_up(&first, &ends, Duration::from_secs(60));
    let desc = pair
        .target
        .tools(Listener::Plaintext)
        .describe_topic(&target_name(&first))
        .unwrap();
    assert_eq!(desc.partition_count, 3, "target grown");
    running.shutdown();
    for t in [&first, &second] {
        let n = usize::try_from(total(&src_tools.end_offsets(t).unwrap())).unwrap();
        assert_same_records(
            &consume_all(&pair.source, t, n),
            &consume_all(&pair.target, &target_name(t), n),
        );
    }
}

#[test]
fn crash_then_restart_loses_nothing() {
    require_kafka!();
    let pair = shared_pair();
    let topic = unique_name("mirror-crash");
    let src_tools = pair.source.tools(Listener::Plaintext);
    src_tools.create_topic(&topic, 4, &[]).unwrap();
    const N: usize = 150_000;
    produce(&pair.source, &topic, &lines(0, N), "zstd");
    let ends = src_tools.end_offsets(&topic).unwrap();
    let mut settings = settings(pair, &topic);
    // The smallest budget bounds the unacknowledged window (what a crash can re-send).
    settings.in_flight_bytes = 1 << 20;
    settings.flows[0].progress_interval = Duration::from_millis(500);
    let running = Running::start(settings.clone());
    // Crash mid-stream.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let c = running.handle.status().flows[0].counters;
        if c.records > (N as u64) / 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress before the crash");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = running.handle.status().flows[0].counters.records;
    running.crash();
    let running = Running::start(settings);
    running.wait_caught_up(&topic, &ends, Duration::from_secs(180));
    running.shutdown();

    let target = target_name(&topic);
    let tgt_ends = pair
        .target
        .tools(Listener::Plaintext)
        .end_offsets(&target)
        .unwrap();
    let duplicates = total(&tgt_ends) - total(&ends);
    eprintln!(
        "mirror crash: {before} records acknowledged before the crash; {duplicates} duplicates on restart"
    );
    assert!(duplicates >= 0);
    let source = consume_all(&pair.source, &topic, N);
    let target_records = consume_all(
        &pair.target,
        &target,
        N + usize::try_from(duplicates).unwrap(),
    );
    // Nothing lost: every source record is on the target, in order per partition once
    // duplicates (a re-sent suffix) are skipped.
    let ids = |rs: &[ConsumedRecord]| -> BTreeSet<(i32, String)> {
        rs.iter()
            .map(|r| (r.partition, r.key.clone().unwrap_or_default()))
            .collect()
    };
    assert_eq!(
        ids(&source),
        ids(&target_records),
        "same records on both sides"
    );
    assert_eq!(
        target_records.len(),
        source.len() + usize::try_from(duplicates).unwrap()
    );
}
