//! Consumer-group migration acceptance (issue #7, items 4–7): a consumer-first cutover with the
//! Java consumer, against two real clusters, checked record by record.
//!
//! The scenario (the migration guides' "switch consumers" step, `/work/shared/seeds/`):
//! a group consumes part of a topic on the source with Kafka's console consumer and stops
//! (its offsets are committed on close); ferry replicates with `sync.group.offsets.enabled=true`
//! (an `mm2.properties` written by the test, run through [`ferry::Mirror`] or the `ferry`
//! binary); once the group's target offsets are there, the same group reads the target topic to
//! its end. Every record carries a unique value, so
//!
//! * **re-delivered** = values the group had already consumed on the source (offset below its
//!   committed offset) that it reads again on the target, plus values read twice;
//! * **skipped** = values at or above the committed offset that it never reads on the target.
//!
//! ferry must show zero of both for: a plain topic, committed and aborted transactions, a
//! compacted topic with holes, a source whose log start offset is above 0, a group lagging more
//! than 50,000 records behind the replication head (also across a clean ferry restart), and a
//! group committed at 0 on an empty partition. The expected target offset of a committed source
//! offset U (mm2-compat.md §6.7; issue #7 item 2) is computed independently of ferry: the target
//! topic holds exactly the surviving source records in order from offset 0 (checked), so it is
//! the number of source records of that partition below U.
//!
//! Also here: the race of a consumer joining the target group while the sync runs (the sync must
//! never commit into a group with members, KAFKA-19794); MirrorMaker 2 on the same scenario
//! (re-deliveries counted the same way, printed, not asserted); interop with Kafka's own
//! `RemoteClusterUtils.translateOffsets` and MM2's console formatters (KIP-597); and the
//! producers-first cutover with the `ferry` binary.
//!
//! Gated by `FERRY_IT=1` / `CI=true` (`ferry_testkit::require_kafka!`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferry::Mirror;
use ferry::mirror::MirrorEvent;
use ferry_client::admin::Admin;
use ferry_client::fetcher::TopicPartition;
use ferry_client::{BackoffConfig, ConnectionConfig};
use ferry_testkit::{
    Cluster, ClusterPair, ConsumeOptions, ConsumedRecord, JavaTools, Listener, TxnOutcome,
    require_kafka, shared_pair, unique_name,
};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");
const CONSOLE_CONSUMER: &str = "org.apache.kafka.tools.consumer.ConsoleConsumer";
const FORMATTERS: &str = "org.apache.kafka.connect.mirror.formatters";
/// The interval of every periodic task in these tests (checkpoints, group sync, refreshes).
const INTERVAL_SECS: u32 = 1;

// ---------------------------------------------------------------------------------------------
// clusters and clients

fn connection(cluster: &Cluster) -> ConnectionConfig {
    ConnectionConfig::builder()
        .with_bootstrap([cluster.bootstrap(Listener::Plaintext)])
        .with_connect_timeout(Duration::from_secs(5))
        .with_request_timeout(Duration::from_secs(30))
        .with_backoff(BackoffConfig::default().with_deadline(Duration::from_secs(30)))
        .build()
        .unwrap()
}

/// Admin clients on both clusters, to observe (never to drive) what the replicator did.
struct Observer {
    rt: tokio::runtime::Runtime,
    source: Admin,
    target: Admin,
}

impl Observer {
    fn new(pair: &ClusterPair) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (source, target) = rt.block_on(async {
            let s = ferry_client::Cluster::connect(connection(&pair.source))
                .await
                .unwrap();
            let t = ferry_client::Cluster::connect(connection(&pair.target))
                .await
                .unwrap();
            (Admin::new(s), Admin::new(t))
        });
        Self { rt, source, target }
    }

    /// Committed offsets of `group` on `topic` (partition → offset); empty when none.
    fn committed(&self, admin: &Admin, group: &str, topic: &str) -> BTreeMap<i32, i64> {
        self.rt
            .block_on(admin.fetch_offsets(group, None, false))
            .map(|offsets| {
                offsets
                    .into_iter()
                    .filter(|(tp, _)| tp.topic == topic)
                    .map(|(tp, o)| (tp.partition, o.offset))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn target_committed(&self, group: &str, topic: &str) -> BTreeMap<i32, i64> {
        self.committed(&self.target, group, topic)
    }

    fn source_committed(&self, group: &str, topic: &str) -> BTreeMap<i32, i64> {
        self.committed(&self.source, group, topic)
    }

    /// Number of members of `group` on the target (0 when it does not exist).
    fn target_members(&self, group: &str) -> usize {
        self.rt
            .block_on(self.target.describe_groups(&[group]))
            .ok()
            .and_then(|mut r| r.remove(group))
            .and_then(Result::ok)
            .map_or(0, |d| d.members.len())
    }

    /// Deletes records of `topic` on the source below `before` (partition → offset).
    fn delete_source_records(&self, topic: &str, before: &BTreeMap<i32, i64>) {
        let req: BTreeMap<TopicPartition, i64> = before
            .iter()
            .map(|(&p, &o)| (TopicPartition::new(topic, p), o))
            .collect();
        let results = self.rt.block_on(self.source.delete_records(&req)).unwrap();
        for (tp, r) in results {
            let low = r.unwrap();
            assert_eq!(low, before[&tp.partition], "{tp}: new log start");
        }
    }
}

/// Digits of a unique name: cluster aliases must be unique per test (MM2's and ferry's internal
/// topic and group names derive from them) and short.
fn tag() -> String {
    unique_name("x")
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

fn work_dir(pair: &ClusterPair) -> PathBuf {
    let dir = pair.target.state_dir().join("tools");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------------------------
// records

/// A record as read back: partition, offset and its unique value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    partition: i32,
    offset: i64,
    value: String,
}

fn recs(records: &[ConsumedRecord]) -> Vec<Rec> {
    let mut out: Vec<Rec> = records
        .iter()
        .map(|r| Rec {
            partition: r.partition,
            offset: r.offset,
            value: r.value.clone().unwrap_or_default(),
        })
        .collect();
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

/// Every committed record of `topic` (read_committed), sorted by partition and offset.
fn read_all(tools: &JavaTools<'_>, topic: &str, at_least: usize) -> Vec<Rec> {
    let options = ConsumeOptions {
        max_messages: at_least,
        idle_timeout: Duration::from_secs(10),
        consumer_properties: vec![("isolation.level".into(), "read_committed".into())],
        ..ConsumeOptions::default()
    };
    recs(&tools.console_consume_with(topic, &options).unwrap())
}

/// The group `group` consumes `max` records of `topic` with the Java console consumer
/// (one record per poll, so its position is exactly after the last record it printed) and
/// commits on close. Returns what it printed.
fn consume_in_group(tools: &JavaTools<'_>, topic: &str, group: &str, max: usize) -> Vec<Rec> {
    let options = ConsumeOptions {
        max_messages: max,
        // Generous: it ends at `max`, and joining a group on a loaded machine takes seconds.
        idle_timeout: Duration::from_secs(30),
        group: Some(group.to_owned()),
        from_beginning: true,
        consumer_properties: vec![
            ("isolation.level".into(), "read_committed".into()),
            ("max.poll.records".into(), "1".into()),
        ],
        ..ConsumeOptions::default()
    };
    let got = recs(&tools.console_consume_with(topic, &options).unwrap());
    assert_eq!(
        got.len(),
        max,
        "the source group consumed {max} records of {topic}"
    );
    got
}

/// The group reads `topic` on the target from its committed offsets to the end (no
/// `--from-beginning`: without committed offsets it would start at the end and read nothing).
///
/// Reads `expected` records (one per poll, so the position committed on close is exactly after
/// the last one printed), then again until a read finds nothing: a read cut short by a slow
/// machine continues where it stopped, and records beyond `expected` (re-deliveries push the
/// remaining records there) are still seen.
fn resume_in_group(tools: &JavaTools<'_>, topic: &str, group: &str, expected: usize) -> Vec<Rec> {
    let mut all = Vec::new();
    let mut empty_reads = 0;
    loop {
        let want = expected.saturating_sub(all.len());
        let options = ConsumeOptions {
            max_messages: if want > 0 { want } else { usize::MAX },
            // The first poll includes joining the group, seconds on a loaded machine.
            idle_timeout: Duration::from_secs(if want > 0 { 30 } else { 8 }),
            group: Some(group.to_owned()),
            from_beginning: false,
            consumer_properties: vec![
                ("isolation.level".into(), "read_committed".into()),
                ("max.poll.records".into(), "1".into()),
            ],
            ..ConsumeOptions::default()
        };
        let got = recs(&tools.console_consume_with(topic, &options).unwrap());
        if got.is_empty() {
            empty_reads += 1;
            if want == 0 || empty_reads >= 2 {
                break;
            }
        } else {
            empty_reads = 0;
        }
        all.extend(got);
    }
    all
}

/// Per partition: how many source records lie below `committed`, which is where the group's
/// next record sits on a target that holds the source's records densely from offset 0.
fn expected_target_offsets(source: &[Rec], committed: &BTreeMap<i32, i64>) -> BTreeMap<i32, i64> {
    committed
        .iter()
        .map(|(&p, &u)| {
            let below = source
                .iter()
                .filter(|r| r.partition == p && r.offset < u)
                .count();
            (p, i64::try_from(below).unwrap())
        })
        .collect()
}

/// What a cutover did to the group.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    /// Records the group had consumed on the source and got again on the target (or got twice).
    redelivered: usize,
    /// Records after the group's source position that it never got on the target.
    skipped: usize,
    /// Records it got that the source never had as committed data (aborted, foreign).
    unexpected: usize,
    /// Records it should get.
    expected: usize,
}

impl Outcome {
    fn exact(&self) -> bool {
        self.redelivered == 0 && self.skipped == 0 && self.unexpected == 0
    }
}

fn outcome(source: &[Rec], committed: &BTreeMap<i32, i64>, read: &[Rec]) -> Outcome {
    let before = |r: &Rec| r.offset < committed.get(&r.partition).copied().unwrap_or(0);
    let pre: BTreeSet<&str> = source
        .iter()
        .filter(|r| before(r))
        .map(|r| r.value.as_str())
        .collect();
    let post: BTreeSet<&str> = source
        .iter()
        .filter(|r| !before(r))
        .map(|r| r.value.as_str())
        .collect();
    let mut seen = BTreeSet::new();
    let mut out = Outcome {
        expected: post.len(),
        ..Outcome::default()
    };
    for r in read {
        let v = r.value.as_str();
        if !seen.insert(v) || pre.contains(v) {
            out.redelivered += 1;
        } else if !post.contains(v) {
            out.unexpected += 1;
        }
    }
    out.skipped = post.iter().filter(|v| !seen.contains(*v)).count();
    out
}

// ---------------------------------------------------------------------------------------------
// scenario topics

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 2 partitions, 3,000 records, the group consumed 1,200.
    Plain,
    /// 2 partitions, committed and aborted transactions (markers and aborted records are holes).
    Transactions,
    /// 1 partition, compacted by the cleaner: holes inside batches.
    Compacted,
    /// 2 partitions whose first half was deleted (log start offset > 0).
    LogStart,
    /// 2 partitions, 60,000 records with transaction holes in the middle; the group stops more
    /// than 50,000 records behind the head.
    Lagging,
    /// 1 empty partition; the group committed 0 there (consumer-groups tool).
    Empty,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Transactions => "txn",
            Self::Compacted => "compacted",
            Self::LogStart => "logstart",
            Self::Lagging => "lagging",
            Self::Empty => "empty",
        }
    }
}

/// One topic and its group.
#[derive(Debug, Clone)]
struct Case {
    kind: Kind,
    topic: String,
    group: String,
}

impl Case {
    fn new(prefix: &str, kind: Kind) -> Self {
        Self {
            kind,
            topic: format!("{prefix}-{}", kind.name()),
            group: format!("{prefix}-g-{}", kind.name()),
        }
    }
}

fn keyed(tag: &str, from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("k{i}\t{tag}-{i}"))
        .collect()
}

fn produce(tools: &JavaTools<'_>, topic: &str, lines: &[String]) {
    tools
        .console_produce(
            topic,
            lines,
            &[
                ("parse.key", "true"),
                ("key.separator", "\t"),
                ("linger.ms", "20"),
                ("batch.size", "65536"),
                ("compression.type", "lz4"),
            ],
        )
        .unwrap();
}

fn txn_lines(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("k{tag}{i}\t{tag}-{i}")).collect()
}

/// Creates and fills the case's source topic; returns the number of committed records.
fn prepare(pair: &ClusterPair, observer: &Observer, case: &Case) -> usize {
    let tools = pair
        .source
        .tools(Listener::Plaintext)
        .with_timeout(Duration::from_secs(300));
    let topic = &case.topic;
    match case.kind {
        Kind::Plain => {
            tools.create_topic(topic, 2, &[]).unwrap();
            produce(&tools, topic, &keyed("plain", 0, 3_000));
            3_000
        }
        Kind::Transactions => {
            tools.create_topic(topic, 2, &[]).unwrap();
            let plan = vec![
                (TxnOutcome::Commit, txn_lines("c1", 300)),
                (TxnOutcome::Abort, txn_lines("a1", 200)),
                (TxnOutcome::Commit, txn_lines("c2", 300)),
                (TxnOutcome::Abort, txn_lines("a2", 100)),
                (TxnOutcome::Commit, txn_lines("c3", 300)),
            ];
            tools
                .transactional_produce(topic, &unique_name("a2-txn"), &plan, &[])
                .unwrap();
            900
        }
        Kind::Compacted => {
            tools
                .create_topic(
                    topic,
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
            // 20 keys rewritten 50 times: the cleaner leaves holes inside batches (as in
            // mirror.rs `compacted_topic_with_holes_is_renumbered`).
            let lines: Vec<String> = (0..1_000)
                .map(|i| format!("key{}\tcv-{i}", i % 20))
                .collect();
            produce(&tools, topic, &lines[..500]);
            std::thread::sleep(Duration::from_millis(300));
            produce(&tools, topic, &lines[500..]);
            let deadline = Instant::now() + Duration::from_secs(90);
            let mut rolls = 0;
            let mut count = read_all(&tools, topic, 1_000).len();
            while count >= 1_000 {
                assert!(
                    Instant::now() < deadline,
                    "the cleaner never ran on {topic}"
                );
                // A new segment must roll for the old one to be cleaned.
                produce(&tools, topic, &[format!("key0\troll-{rolls}")]);
                rolls += 1;
                std::thread::sleep(Duration::from_secs(3));
                count = read_all(&tools, topic, 2_000).len();
            }
            // Let a running clean pass finish before the records are counted.
            std::thread::sleep(Duration::from_secs(2));
            read_all(&tools, topic, 2_000).len()
        }
        Kind::LogStart => {
            tools.create_topic(topic, 2, &[]).unwrap();
            produce(&tools, topic, &keyed("ls", 0, 2_000));
            let ends = tools.end_offsets(topic).unwrap();
            let before: BTreeMap<i32, i64> = ends.iter().map(|(&p, &e)| (p, e / 2)).collect();
            observer.delete_source_records(topic, &before);
            let starts = tools.start_offsets(topic).unwrap();
            assert_eq!(starts, before, "log start offsets moved");
            let kept: i64 = ends.iter().map(|(p, e)| e - before[p]).sum();
            usize::try_from(kept).unwrap()
        }
        Kind::Lagging => {
            tools.create_topic(topic, 2, &[]).unwrap();
            produce(&tools, topic, &keyed("lag", 0, 25_000));
            // Holes (commit markers, aborted records) between the group's positions and the
            // head: the offset delta at the head differs from the one at the group.
            let plan = vec![
                (TxnOutcome::Commit, txn_lines("lc", 10)),
                (TxnOutcome::Abort, txn_lines("la", 50)),
                (TxnOutcome::Commit, txn_lines("ld", 10)),
            ];
            tools
                .transactional_produce(topic, &unique_name("a2-lag"), &plan, &[])
                .unwrap();
            produce(&tools, topic, &keyed("lag", 25_000, 35_000));
            60_020
        }
        Kind::Empty => {
            tools.create_topic(topic, 1, &[]).unwrap();
            0
        }
    }
}

/// The case's group consumes `k` records on the source (for [`Kind::Empty`]: commits 0 with
/// the consumer-groups tool).
fn source_consume(pair: &ClusterPair, case: &Case, k: usize) {
    let tools = pair.source.tools(Listener::Plaintext);
    if case.kind == Kind::Empty {
        tools
            .reset_group_offsets(&case.group, &case.topic, 0)
            .unwrap();
    } else {
        consume_in_group(&tools, &case.topic, &case.group, k);
    }
}

/// How many records each case's group consumes on the source before the cutover.
fn first_cut(kind: Kind, total: usize) -> usize {
    match kind {
        Kind::Plain => 1_200,
        Kind::Transactions => 500,
        Kind::Compacted => total / 2,
        Kind::LogStart => 300,
        Kind::Lagging => 5_000,
        Kind::Empty => 0,
    }
}

/// The source state at the cutover: every committed record and the group's committed offsets.
#[derive(Debug, Clone)]
struct Cut {
    source: Vec<Rec>,
    committed: BTreeMap<i32, i64>,
    expected: BTreeMap<i32, i64>,
}

fn snapshot(pair: &ClusterPair, observer: &Observer, case: &Case, total: usize) -> Cut {
    let tools = pair.source.tools(Listener::Plaintext);
    let source = if total == 0 {
        Vec::new()
    } else {
        read_all(&tools, &case.topic, total)
    };
    assert_eq!(
        source.len(),
        total,
        "{}: committed source records",
        case.topic
    );
    let values: BTreeSet<&str> = source.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(values.len(), total, "{}: values are unique", case.topic);
    let committed = observer.source_committed(&case.group, &case.topic);
    assert!(
        !committed.is_empty(),
        "{}: the group committed nothing on the source",
        case.group
    );
    let expected = expected_target_offsets(&source, &committed);
    Cut {
        source,
        committed,
        expected,
    }
}

/// Waits until `group` has committed `expected` on the target `topic`; returns the last seen
/// offsets and whether they matched.
fn wait_target_offsets(
    observer: &Observer,
    group: &str,
    topic: &str,
    expected: &BTreeMap<i32, i64>,
    timeout: Duration,
) -> (BTreeMap<i32, i64>, bool) {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = observer.target_committed(group, topic);
        if &seen == expected {
            return (seen, true);
        }
        if Instant::now() > deadline {
            return (seen, false);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until `group` has committed offsets for at least `partitions` partitions of the
/// target `topic` and they stayed the same for `quiet` (for MM2, whose translation is not exact
/// and which may never sync some partitions).
fn wait_target_offsets_settled(
    observer: &Observer,
    (group, topic): (&str, &str),
    partitions: usize,
    (quiet, timeout): (Duration, Duration),
    note: &str,
) -> BTreeMap<i32, i64> {
    let deadline = Instant::now() + timeout;
    let mut last = BTreeMap::new();
    let mut since = Instant::now();
    loop {
        let seen = observer.target_committed(group, topic);
        if seen != last {
            last = seen;
            since = Instant::now();
        } else if last.len() >= partitions && since.elapsed() >= quiet {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "{group}: target offsets on {topic} not settled within {timeout:?}: {last:?} ({note})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

// ---------------------------------------------------------------------------------------------
// replicators

/// `mm2.properties` shared by ferry and MM2: flow `a->b` for topics matching `topics` and
/// groups matching `groups`, every interval 1 s, group-offset sync on.
fn mm2_properties(
    pair: &ClusterPair,
    (a, b): (&str, &str),
    topics: &str,
    groups: &str,
    extra: &str,
) -> String {
    let i = INTERVAL_SECS;
    format!(
        "clusters = {a}, {b}\n\
         {a}.bootstrap.servers = {}\n\
         {b}.bootstrap.servers = {}\n\
         {a}->{b}.enabled = true\n\
         {b}->{a}.enabled = false\n\
         {a}->{b}.topics = {topics}\n\
         {a}->{b}.groups = {groups}\n\
         emit.checkpoints.enabled = true\n\
         emit.checkpoints.interval.seconds = {i}\n\
         sync.group.offsets.enabled = true\n\
         sync.group.offsets.interval.seconds = {i}\n\
         refresh.groups.interval.seconds = {i}\n\
         refresh.topics.interval.seconds = {i}\n\
         emit.heartbeats.interval.seconds = {i}\n\
         sync.topic.acls.enabled = false\n\
         replication.factor = 1\n\
         checkpoints.topic.replication.factor = 1\n\
         heartbeats.topic.replication.factor = 1\n\
         offset-syncs.topic.replication.factor = 1\n\
         {extra}",
        pair.source.bootstrap(Listener::Plaintext),
        pair.target.bootstrap(Listener::Plaintext),
    )
}

fn write_properties(pair: &ClusterPair, name: &str, text: &str) -> PathBuf {
    let path = work_dir(pair).join(format!("{name}.mm2.properties"));
    std::fs::write(&path, text).unwrap();
    path
}

/// ferry in this process: `Mirror::from_properties`, run on its own runtime, events collected.
struct FerryRun {
    rt: tokio::runtime::Runtime,
    mirror: Arc<Mirror>,
    task: Option<tokio::task::JoinHandle<Result<(), ferry::Error>>>,
    events: Arc<Mutex<Vec<String>>>,
    collector: tokio::task::JoinHandle<()>,
}

impl FerryRun {
    fn start(path: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mirror = Arc::new(Mirror::from_properties(path).unwrap());
        for n in mirror.notices() {
            eprintln!("groups: ferry notice: {n}");
        }
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut rx = mirror.events();
        let sink = Arc::clone(&events);
        let collector = rt.spawn(async move {
            while let Some(ev) = rx.next().await {
                let ev: MirrorEvent = ev;
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(format!("{ev:?}"));
            }
        });
        let m = Arc::clone(&mirror);
        let task = rt.spawn(async move { m.run().await });
        Self {
            rt,
            mirror,
            task: Some(task),
            events,
            collector,
        }
    }

    /// Fails the test if the mirror stopped.
    fn assert_running(&self) {
        if let Some(task) = &self.task {
            assert!(
                !task.is_finished(),
                "ferry stopped early; events: {:#?}",
                self.events()
            );
        }
    }

    fn events(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Clean stop: drains and stores progress; fails the test if the run failed.
    fn stop(mut self) -> Vec<String> {
        self.mirror.shutdown();
        let task = self.task.take().unwrap();
        let result = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(60), task).await })
            .expect("ferry stopped within 60 s")
            .expect("ferry task");
        self.collector.abort();
        let events = self.events();
        if let Err(e) = result {
            panic!("ferry run failed: {e}\nevents: {events:#?}");
        }
        events
    }
}

/// A child process killed (and reaped) when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// MirrorMaker 2 in dedicated mode from the harness jars (as in
/// `harness.rs::mirror_maker_2_runs_from_the_same_classpath`), logging to a file.
fn start_mm2(pair: &ClusterPair, path: &Path, b: &str) -> (KillOnDrop, PathBuf) {
    let log_path = path.with_extension("log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut cmd = pair
        .target
        .tools(Listener::Plaintext)
        .java_command("org.apache.kafka.connect.mirror.MirrorMaker");
    cmd.arg(path)
        .arg("--clusters")
        .arg(b)
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    (KillOnDrop(cmd.spawn().unwrap()), log_path)
}

// ---------------------------------------------------------------------------------------------
// the consumer-first cutover with ferry

/// Reads the case's target topic in its group and counts.
fn cutover(pair: &ClusterPair, case: &Case, target_topic: &str, cut: &Cut) -> Outcome {
    let expected = outcome(&cut.source, &cut.committed, &[]).expected;
    let read = resume_in_group(
        &pair.target.tools(Listener::Plaintext),
        target_topic,
        &case.group,
        expected,
    );
    outcome(&cut.source, &cut.committed, &read)
}

#[test]
fn consumer_first_cutover_is_exact_for_every_topic_kind_and_mm2_is_not() {
    require_kafka!();
    let pair = shared_pair();
    let observer = Observer::new(pair);
    let (tf, tm) = (tag(), tag());
    let (a, b) = (format!("s{tf}"), format!("t{tf}"));
    let (ma, mb) = (format!("m{tm}"), format!("n{tm}"));
    let prefix = unique_name("grp");
    let kinds = [
        Kind::Plain,
        Kind::Transactions,
        Kind::Compacted,
        Kind::LogStart,
        Kind::Lagging,
        Kind::Empty,
    ];
    let cases: Vec<Case> = kinds.iter().map(|&k| Case::new(&prefix, k)).collect();
    // MirrorMaker 2 replicates the plain and lagging topics at the same time, for groups of
    // its own that stop where ferry's groups end up (the lagging one at 8,000 records).
    let mm2_cases: Vec<Case> = cases
        .iter()
        .filter(|c| matches!(c.kind, Kind::Plain | Kind::Lagging))
        .map(|c| Case {
            group: format!("{prefix}-mm2-{}", c.kind.name()),
            ..c.clone()
        })
        .collect();
    let mm2_cut = |kind: Kind| {
        if kind == Kind::Lagging {
            8_000
        } else {
            first_cut(kind, 0)
        }
    };
    let started = Instant::now();

    // 1. Source topics, and each group consumes part of its topic and stops.
    let totals: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|case| {
                let observer = &observer;
                let mm2_case = mm2_cases.iter().find(|c| c.kind == case.kind);
                s.spawn(move || {
                    let total = prepare(pair, observer, case);
                    source_consume(pair, case, first_cut(case.kind, total));
                    if let Some(m) = mm2_case {
                        source_consume(pair, m, mm2_cut(m.kind));
                    }
                    total
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total_of = |kind: Kind| totals[kinds.iter().position(|k| *k == kind).unwrap()];
    let mut cuts: Vec<Cut> = cases
        .iter()
        .zip(&totals)
        .map(|(case, &total)| snapshot(pair, &observer, case, total))
        .collect();
    let mm2_cuts: Vec<Cut> = mm2_cases
        .iter()
        .map(|c| snapshot(pair, &observer, c, total_of(c.kind)))
        .collect();
    eprintln!("groups: scenarios prepared in {:?}", started.elapsed());

    // MM2 in dedicated mode from the same properties apart from aliases, its group filter and
    // its Connect storage settings. Its offset flush interval is 5 s as in its own
    // integration tests (MirrorConnectorsIntegrationBaseTest), so its delayed offset syncs
    // are promoted quickly (KAFKA-15906).
    let mm2_extra = format!(
        "offset.storage.replication.factor = 1\nstatus.storage.replication.factor = 1\n\
         config.storage.replication.factor = 1\n{mb}->{ma}.emit.heartbeats.enabled = false\n\
         {mb}.offset.flush.interval.ms = 5000\n"
    );
    let mm2_path = write_properties(
        pair,
        &format!("{prefix}-mm2"),
        &mm2_properties(
            pair,
            (&ma, &mb),
            &format!("{prefix}-(plain|lagging)"),
            &format!("{prefix}-mm2-.*"),
            &mm2_extra,
        ),
    );
    let (mm2, mm2_log) = start_mm2(pair, &mm2_path, &mb);

    // 2. ferry replicates and syncs the groups.
    let path = write_properties(
        pair,
        &prefix,
        &mm2_properties(
            pair,
            (&a, &b),
            &format!("{prefix}-.*"),
            &format!("{prefix}-g-.*"),
            "",
        ),
    );
    let ferry = FerryRun::start(&path);
    let target_topic = |case: &Case| format!("{a}.{}", case.topic);
    let mut failures = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for (case, cut) in cases.iter().zip(&cuts) {
        let (seen, ok) = wait_target_offsets(
            &observer,
            &case.group,
            &target_topic(case),
            &cut.expected,
            deadline.saturating_duration_since(Instant::now()),
        );
        ferry.assert_running();
        if !ok {
            failures.push(format!(
                "{}: target offsets {seen:?}, want {:?} (source committed {:?})",
                case.kind.name(),
                cut.expected,
                cut.committed
            ));
        }
    }
    eprintln!(
        "groups: target offsets synced after {:?}",
        started.elapsed()
    );

    // The target holds each topic's surviving records densely from 0 (what the expected
    // offsets assume): no duplicates, nothing missing.
    let tgt_tools = pair.target.tools(Listener::Plaintext);
    for (case, cut) in cases.iter().zip(&cuts) {
        if case.kind == Kind::Empty {
            continue;
        }
        let ends = tgt_tools.end_offsets(&target_topic(case)).unwrap();
        for (p, end) in ends {
            let n = cut.source.iter().filter(|r| r.partition == p).count();
            assert_eq!(
                end,
                i64::try_from(n).unwrap(),
                "{}: target partition {p} holds the source's {n} records",
                case.topic
            );
        }
    }

    // 3. The groups move to the target (ferry still running), except the lagging one, which
    //    first goes through a ferry restart.
    let mut results = BTreeMap::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .zip(&cuts)
            .filter(|(case, _)| !matches!(case.kind, Kind::Lagging | Kind::Empty))
            .map(|(case, cut)| {
                let tt = target_topic(case);
                s.spawn(move || (case.kind, cutover(pair, case, &tt, cut)))
            })
            .collect();
        for h in handles {
            let (kind, o) = h.join().unwrap();
            results.insert(kind.name(), o);
        }
    });
    ferry.assert_running();

    // 4. Lagging group across a clean restart: stop ferry, the group consumes 3,000 more on
    //    the source (still > 50,000 behind the head), restart, the new position translates
    //    exactly through the offset map kept from the first run.
    let lagging = cases.iter().position(|c| c.kind == Kind::Lagging).unwrap();
    let lag_case = &cases[lagging];
    let head: i64 = cuts[lagging].source.len().try_into().unwrap();
    let events = ferry.stop();
    source_consume(pair, lag_case, 3_000);
    cuts[lagging] = snapshot(pair, &observer, lag_case, totals[lagging]);
    let consumed: i64 = cuts[lagging].expected.values().sum();
    eprintln!(
        "groups: lagging group at {consumed} of {head} records ({} behind the head)",
        head - consumed
    );
    assert!(head - consumed > 50_000);
    let ferry = FerryRun::start(&path);
    let (seen, ok) = wait_target_offsets(
        &observer,
        &lag_case.group,
        &target_topic(lag_case),
        &cuts[lagging].expected,
        Duration::from_secs(90),
    );
    if !ok {
        failures.push(format!(
            "lagging after restart: target offsets {seen:?}, want {:?}",
            cuts[lagging].expected
        ));
    }
    results.insert(
        "lagging",
        cutover(pair, lag_case, &target_topic(lag_case), &cuts[lagging]),
    );
    let events2 = ferry.stop();

    // 5. MM2's groups move to MM2's target topics, once MM2's offsets stopped changing.
    let mm2_topic = |c: &Case| format!("{ma}.{}", c.topic);
    let mm2_offsets: Vec<BTreeMap<i32, i64>> = mm2_cases
        .iter()
        .map(|c| {
            wait_target_offsets_settled(
                &observer,
                (&c.group, &mm2_topic(c)),
                1,
                (Duration::from_secs(8), Duration::from_secs(120)),
                &format!("MM2 log {}", mm2_log.display()),
            )
        })
        .collect();
    let mm2_results: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = mm2_cases
            .iter()
            .zip(&mm2_cuts)
            .map(|(c, cut)| s.spawn(move || cutover(pair, c, &mm2_topic(c), cut)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    drop(mm2);

    for (name, o) in &results {
        eprintln!(
            "groups: ferry {name}: {} re-delivered, {} skipped, {} unexpected of {} expected",
            o.redelivered, o.skipped, o.unexpected, o.expected
        );
    }
    // MM2's counts are reported, not asserted (under its default read_uncommitted it also
    // delivers aborted records as data, mm2-compat.md §1).
    for ((c, cut), (o, seen)) in mm2_cases
        .iter()
        .zip(&mm2_cuts)
        .zip(mm2_results.iter().zip(&mm2_offsets))
    {
        let f = results[c.kind.name()];
        let behind = i64::try_from(cut.source.len()).unwrap() - cut.expected.values().sum::<i64>();
        eprintln!(
            "groups: side by side, {} ({} records, group {behind} behind the head): \
             MM2 re-delivered {} skipped {} aborted-delivered {} (target offsets {seen:?}, \
             exact {:?}); ferry re-delivered {} skipped {}",
            c.kind.name(),
            cut.source.len(),
            o.redelivered,
            o.skipped,
            o.unexpected,
            cut.expected,
            f.redelivered,
            f.skipped
        );
    }
    eprintln!("groups: consumer-first test took {:?}", started.elapsed());
    for (name, o) in &results {
        if !o.exact() || o.expected == 0 {
            failures.push(format!("{name}: {o:?}"));
        }
    }
    if !failures.is_empty() {
        let about_groups: Vec<&String> = events
            .iter()
            .chain(&events2)
            .filter(|e| cases.iter().any(|c| e.contains(&c.group)))
            .collect();
        panic!(
            "consumer-first cutover not exact:\n{}\ngroup events: {about_groups:#?}",
            failures.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// the race: a consumer joins the target group while the sync runs

#[test]
fn group_sync_never_commits_into_a_group_with_members() {
    require_kafka!();
    let pair = shared_pair();
    let observer = Observer::new(pair);
    let t = tag();
    let (a, b) = (format!("s{t}"), format!("t{t}"));
    let prefix = unique_name("grprace");
    let topic = format!("{prefix}-t");
    let group = format!("{prefix}-g");
    let src = pair.source.tools(Listener::Plaintext);
    src.create_topic(&topic, 1, &[]).unwrap();
    produce(&src, &topic, &keyed("race", 0, 2_000));
    consume_in_group(&src, &topic, &group, 100);
    let target_topic = format!("{a}.{topic}");

    let path = write_properties(
        pair,
        &prefix,
        &mm2_properties(pair, (&a, &b), &topic, &group, ""),
    );
    let ferry = FerryRun::start(&path);
    let first = BTreeMap::from([(0, 100)]);
    let (seen, ok) = wait_target_offsets(
        &observer,
        &group,
        &target_topic,
        &first,
        Duration::from_secs(90),
    );
    assert!(ok, "first sync: target offsets {seen:?}, want {first:?}");

    // A consumer joins the target group and reads to the end; it commits only when it closes
    // (auto-commit interval 10 min), so while it is a member nobody but the sync could move
    // the group's committed offset.
    let tgt = pair.target.tools(Listener::Plaintext);
    let samples = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let options = ConsumeOptions {
                idle_timeout: Duration::from_secs(30),
                group: Some(group.clone()),
                from_beginning: false,
                consumer_properties: vec![
                    ("enable.auto.commit".into(), "true".into()),
                    ("auto.commit.interval.ms".into(), "600000".into()),
                ],
                ..ConsumeOptions::default()
            };
            recs(&tgt.console_consume_with(&target_topic, &options).unwrap())
        });
        let deadline = Instant::now() + Duration::from_secs(90);
        while observer.target_members(&group) == 0 {
            assert!(
                Instant::now() < deadline,
                "the target consumer never joined"
            );
            assert!(!reader.is_finished(), "the target consumer ended early");
            std::thread::sleep(Duration::from_millis(100));
        }
        // While it is a member, the source group moves on: the sync now has a newer offset
        // (1,500) it must not commit.
        let mover = s.spawn(|| consume_in_group(&src, &topic, &group, 1_400));
        let mut samples = Vec::new();
        while !reader.is_finished() {
            let moved = mover.is_finished();
            let members = observer.target_members(&group);
            let committed = observer.target_committed(&group, &target_topic);
            samples.push((members, committed, moved));
            std::thread::sleep(Duration::from_millis(200));
        }
        mover.join().unwrap();
        let read = reader.join().unwrap();
        assert_eq!(
            read.len(),
            1_900,
            "the target consumer read from 100 to the end"
        );
        samples
    });
    for (members, committed, _) in samples.iter().filter(|(m, _, _)| *m > 0) {
        assert_eq!(
            committed, &first,
            "the sync committed into the group while it had {members} member(s)"
        );
    }
    // The test means something only if the sync had a newer offset while the group was active.
    let active_after_move = samples
        .iter()
        .filter(|(m, _, moved)| *m > 0 && *moved)
        .count();
    assert!(
        active_after_move >= 3,
        "too few samples with a member after the source group moved: {samples:?}"
    );
    // The consumer's own commit (2,000) is never rewound to the source group's 1,500.
    let own = BTreeMap::from([(0, 2_000)]);
    assert_eq!(observer.target_committed(&group, &target_topic), own);
    std::thread::sleep(Duration::from_secs(4 * u64::from(INTERVAL_SECS)));
    assert_eq!(
        observer.target_committed(&group, &target_topic),
        own,
        "the sync rewound the group's own commit"
    );
    ferry.assert_running();
    let events = ferry.stop();
    let about: Vec<&String> = events.iter().filter(|e| e.contains(&group)).collect();
    eprintln!("groups: race events for {group}: {about:#?}");
    assert!(
        about.iter().any(|e| e.starts_with("GroupSkippedActive")),
        "ferry did not report the group as skipped while active: {about:#?}"
    );
    let errors: Vec<&&String> = about
        .iter()
        .filter(|e| !e.starts_with("GroupSkippedActive") && !e.starts_with("GroupSynced"))
        .filter(|e| {
            let l = e.to_lowercase();
            l.contains("error") || l.contains("fail")
        })
        .collect();
    assert!(
        errors.is_empty(),
        "the race was reported as an error: {errors:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// interop with Kafka's own tooling

/// `key=value` fields of a formatter line such as
/// `Checkpoint{consumerGroupId=g, topicPartition=t-0, upstreamOffset=5, ...}`.
fn formatter_fields(line: &str) -> BTreeMap<String, String> {
    let inner = line
        .split_once('{')
        .and_then(|(_, rest)| rest.rsplit_once('}'))
        .map_or("", |(inner, _)| inner);
    inner
        .split(", ")
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Kafka's console consumer with one of MM2's formatters, from the beginning of the
/// single-partition `topic` to its current end: the printed records that `keep` selects.
/// Tried again (up to a minute) while it selects none: on a loaded machine the consumer may
/// reach its idle limit before its first fetch.
fn formatted(
    cluster: &Cluster,
    topic: &str,
    formatter: &str,
    keep: impl Fn(&BTreeMap<String, String>) -> bool,
    done: impl Fn(&[BTreeMap<String, String>]) -> bool,
) -> Vec<BTreeMap<String, String>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let kept: Vec<_> = formatted_once(cluster, topic, formatter)
            .into_iter()
            .filter(&keep)
            .collect();
        if (!kept.is_empty() && done(&kept)) || Instant::now() > deadline {
            return kept;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// How many distinct `topicPartition` values formatter lines name.
fn distinct_partitions(fs: &[BTreeMap<String, String>]) -> usize {
    fs.iter()
        .filter_map(|f| f.get("topicPartition"))
        .collect::<BTreeSet<_>>()
        .len()
}

fn formatted_once(
    cluster: &Cluster,
    topic: &str,
    formatter: &str,
) -> Vec<BTreeMap<String, String>> {
    let tools = cluster.tools(Listener::Plaintext);
    let end = tools.end_offsets(topic).unwrap();
    let args = [
        "--max-messages".to_owned(),
        end.get(&0).copied().unwrap_or(0).max(1).to_string(),
        "--bootstrap-server".to_owned(),
        tools.bootstrap(),
        "--topic".to_owned(),
        topic.to_owned(),
        "--from-beginning".to_owned(),
        "--timeout-ms".to_owned(),
        "8000".to_owned(),
        "--formatter".to_owned(),
        format!("{FORMATTERS}.{formatter}"),
    ];
    let out = tools.run_class(CONSOLE_CONSUMER, &args).unwrap();
    assert!(out.success(), "{formatter} on {topic}: {}", out.combined());
    out.stdout
        .lines()
        .filter(|l| l.contains('{'))
        .map(formatter_fields)
        .collect()
}

/// Compiles `tests/it/java/TranslateOffsets.java` and runs it: Kafka's
/// `RemoteClusterUtils.translateOffsets` on the target for `group` (partition → offset of
/// `topic`).
fn remote_cluster_utils(
    cluster: &Cluster,
    alias: &str,
    group: &str,
    topic: &str,
) -> BTreeMap<i32, i64> {
    let classes = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/java/TranslateOffsets.java");
    let libs = format!("{}/*", cluster.libs_dir().display());
    let javac = Command::new(std::env::var_os("JAVAC").unwrap_or_else(|| "javac".into()))
        .arg("-cp")
        .arg(&libs)
        .arg("-d")
        .arg(classes.path())
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        javac.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&javac.stderr)
    );
    let log_config = ferry_testkit::repo_root().join("kafka/log4j2-tools.properties");
    let out = Command::new(std::env::var_os("JAVA").unwrap_or_else(|| "java".into()))
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            log_config.display()
        ))
        .arg("-cp")
        .arg(format!("{libs}:{}", classes.path().display()))
        .arg("TranslateOffsets")
        .arg(cluster.bootstrap(Listener::Plaintext))
        .arg(alias)
        .arg(group)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "TranslateOffsets: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            match parts.as_slice() {
                [t, p, o] if *t == topic => Some((p.parse().unwrap(), o.parse().unwrap())),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn kafka_tooling_reads_ferry_checkpoints_offset_syncs_and_heartbeats() {
    require_kafka!();
    let pair = shared_pair();
    let observer = Observer::new(pair);
    let t = tag();
    let (a, b) = (format!("s{t}"), format!("t{t}"));
    let prefix = unique_name("grpinterop");
    let topic = format!("{prefix}-t");
    let group = format!("{prefix}-g");
    let src = pair.source.tools(Listener::Plaintext);
    src.create_topic(&topic, 2, &[]).unwrap();
    // Holes (an aborted transaction and markers) make target offsets differ from the source's.
    produce(&src, &topic, &keyed("io", 0, 600));
    let plan = vec![
        (TxnOutcome::Abort, txn_lines("ia", 50)),
        (TxnOutcome::Commit, txn_lines("ic", 10)),
    ];
    src.transactional_produce(&topic, &unique_name("a2-io"), &plan, &[])
        .unwrap();
    produce(&src, &topic, &keyed("io", 600, 600));
    consume_in_group(&src, &topic, &group, 900);
    let case = Case {
        kind: Kind::Plain,
        topic: topic.clone(),
        group: group.clone(),
    };
    let cut = snapshot(pair, &observer, &case, 1_210);
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();

    let path = write_properties(
        pair,
        &prefix,
        &mm2_properties(pair, (&a, &b), &topic, &group, ""),
    );
    let ferry = FerryRun::start(&path);
    let remote = format!("{a}.{topic}");
    let (seen, ok) = wait_target_offsets(
        &observer,
        &group,
        &remote,
        &cut.expected,
        Duration::from_secs(90),
    );
    assert!(
        ok,
        "group sync: target offsets {seen:?}, want {:?}",
        cut.expected
    );
    ferry.assert_running();

    // Checkpoints, as MM2's CheckpointFormatter prints them: the last one per partition is the
    // exact translation, with the upstream offset and the downstream (renamed) topic.
    let checkpoints_topic = format!("{a}.checkpoints.internal");
    let mut last: BTreeMap<i32, BTreeMap<String, String>> = BTreeMap::new();
    let mut n = 0;
    for f in formatted(
        &pair.target,
        &checkpoints_topic,
        "CheckpointFormatter",
        |f| f.get("consumerGroupId") == Some(&group),
        |fs| distinct_partitions(fs) >= cut.committed.len(),
    ) {
        n += 1;
        let tp = &f["topicPartition"];
        let (name, p) = tp.rsplit_once('-').unwrap();
        assert_eq!(name, remote, "checkpoint topic is the downstream name");
        last.insert(p.parse().unwrap(), f);
    }
    assert!(n > 0, "no checkpoint for {group} in {checkpoints_topic}");
    for (p, f) in &last {
        assert_eq!(
            f["upstreamOffset"],
            cut.committed[p].to_string(),
            "partition {p}: {f:?}"
        );
        assert_eq!(
            f["downstreamOffset"],
            cut.expected[p].to_string(),
            "partition {p}: {f:?}"
        );
        assert_eq!(f.get("metadata").map(String::as_str), Some(""), "{f:?}");
    }
    assert_eq!(
        last.len(),
        cut.committed.len(),
        "a checkpoint per partition"
    );

    // RemoteClusterUtils.translateOffsets (Kafka's client-side failover helper) agrees.
    let translated = remote_cluster_utils(&pair.target, &a, &group, &remote);
    assert_eq!(
        translated, cut.expected,
        "RemoteClusterUtils.translateOffsets"
    );

    // Offset syncs on the source (offset-syncs.topic.location=source): each says "the source
    // record at upstreamOffset was written at downstreamOffset".
    let syncs_topic = format!("mm2-offset-syncs.{b}.internal");
    let syncs = formatted(
        &pair.source,
        &syncs_topic,
        "OffsetSyncFormatter",
        |f| {
            f.get("topicPartition")
                .is_some_and(|tp| tp.rsplit_once('-').is_some_and(|(n, _)| n == topic))
        },
        |fs| distinct_partitions(fs) >= 2,
    );
    let mut partitions = BTreeSet::new();
    for f in &syncs {
        let p: i32 = f["topicPartition"]
            .rsplit_once('-')
            .unwrap()
            .1
            .parse()
            .unwrap();
        let u: i64 = f["upstreamOffset"].parse().unwrap();
        let d: i64 = f["downstreamOffset"].parse().unwrap();
        assert!(
            cut.source.iter().any(|r| r.partition == p && r.offset == u),
            "offset sync names a source offset that holds no record: {f:?}"
        );
        let below = cut
            .source
            .iter()
            .filter(|r| r.partition == p && r.offset < u)
            .count();
        assert_eq!(d, i64::try_from(below).unwrap(), "offset sync {f:?}");
        partitions.insert(p);
    }
    assert_eq!(
        partitions.len(),
        2,
        "offset syncs for both partitions: {syncs:?}"
    );
    eprintln!(
        "groups: {} offset syncs, {n} checkpoints for {group}",
        syncs.len()
    );

    // Heartbeats on the target, as HeartbeatFormatter prints them.
    let beats = formatted(
        &pair.target,
        "heartbeats",
        "HeartbeatFormatter",
        |f| f.get("sourceClusterAlias") == Some(&a) && f.get("targetClusterAlias") == Some(&b),
        |_| true,
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(!beats.is_empty(), "no heartbeat {a}->{b}");
    for f in &beats {
        let ts: u128 = f["timestamp"].parse().unwrap();
        assert!(
            ts + 5_000 >= started_ms && ts <= now_ms + 5_000,
            "heartbeat timestamp {ts} outside the run [{started_ms}, {now_ms}]"
        );
    }
    ferry.stop();
}

// ---------------------------------------------------------------------------------------------
// producers-first cutover with the `ferry` binary

fn ferry_bin(args: &[&str]) -> std::process::Output {
    Command::new(FERRY)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn producers_first_cutover_with_ferry_run() {
    require_kafka!();
    let pair = shared_pair();
    let t = tag();
    let (a, b) = (format!("s{t}"), format!("t{t}"));
    let prefix = unique_name("grppf");
    let topic = format!("{prefix}-orders");
    let group = format!("{prefix}-billing");
    let src = pair.source.tools(Listener::Plaintext);
    let tgt = pair.target.tools(Listener::Plaintext);
    src.create_topic(&topic, 2, &[]).unwrap();
    produce(&src, &topic, &keyed("old", 0, 1_000));
    let source_ends = src.end_offsets(&topic).unwrap();

    // Step 1: `ferry check` (identity names, as in the migration guides).
    let path = write_properties(
        pair,
        &prefix,
        &mm2_properties(
            pair,
            (&a, &b),
            &topic,
            &group,
            "replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n",
        ),
    );
    let path_s = path.to_str().unwrap();
    let check = ferry_bin(&["check", path_s]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.contains(&format!("replicate  {topic} -> {topic}")),
        "{stdout}"
    );

    // Step 2: `ferry run`; wait until the target has every record (lag 0).
    let log_path = path.with_extension("log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut ferry = KillOnDrop(
        Command::new(FERRY)
            .args(["run", path_s, "--log-level", "info"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while tgt.end_offsets(&topic).ok().as_ref() != Some(&source_ends) {
        assert!(
            ferry.0.try_wait().unwrap().is_none(),
            "ferry exited; log {}",
            log_path.display()
        );
        assert!(
            Instant::now() < deadline,
            "not replicated; log {}",
            log_path.display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Step 3: producers move to the target (the source gets nothing new).
    produce(&tgt, &topic, &keyed("new", 0, 300));

    // Step 4: consumers drain the source, then stop.
    consume_in_group(&src, &topic, &group, 1_000);

    // Step 5: the consumer-groups tool on the target shows the group at the end of the
    // replicated records, not at the target's log end (which holds the new records).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = tgt.consumer_groups_describe(&group).unwrap_or_default();
        let at: BTreeMap<i32, i64> = rows
            .iter()
            .filter(|r| r.topic == topic)
            .filter_map(|r| r.current_offset.map(|o| (r.partition, o)))
            .collect();
        if at == source_ends {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "target group at {at:?}, want {source_ends:?}; log {}",
            log_path.display()
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // Step 6: stop ferry (SIGTERM: drains and exits 0).
    let ok = Command::new("kill")
        .args(["-TERM", &ferry.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = ferry.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "ferry did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status.code(), Some(0), "log {}", log_path.display());

    // Step 7: consumers start on the target and read exactly the new records.
    let read = resume_in_group(&tgt, &topic, &group, 300);
    let values: BTreeSet<&str> = read.iter().map(|r| r.value.as_str()).collect();
    let old = read.iter().filter(|r| r.value.starts_with("old-")).count();
    let new: BTreeSet<String> = (0..300).map(|i| format!("new-{i}")).collect();
    let missing = new.iter().filter(|v| !values.contains(v.as_str())).count();
    eprintln!("groups: producers-first: {old} re-delivered, {missing} skipped of 300 new records");
    assert_eq!((old, missing, read.len()), (0, 0, 300));
}
