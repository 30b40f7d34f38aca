//! Acceptance of the `ferry run` program against two real clusters, with configs shaped like the
//! public migration guides (`/work/shared/seeds/`), records read back on both sides by the Java
//! console consumer and compared field for field (issue #5 item 8):
//!
//! - an active/passive identity migration over SASL_PLAINTEXT with SCRAM-SHA-512 (the Charmed
//!   Kafka guide's file: `topics=.*`, `groups=.*`, tight refresh intervals), whose topics
//!   exercise an allow-list plus a deny-list with a lookahead, tombstones on a compacted
//!   topic, 1 MiB records, and a LogAppendTime topic (arriving as CreateTime with the same
//!   timestamps);
//! - `A->B` with the default policy (`A.` prefixes) and an `A->B.topics` list (the Open Telekom
//!   Cloud guide's shape);
//! - `kill -9` of `ferry run` mid-stream, twice, then a restart: nothing lost, order kept, the
//!   duplicates counted and printed (the resume check of `ferry_mirror::resume` makes them 0;
//!   asserted within the unacknowledged window);
//! - `SIGTERM` mid-stream then a restart: exactly zero duplicates, nothing lost, and the restart
//!   needed no resume check (progress was stored exactly).
//!
//! The shared clusters hold other tests' topics, so every `topics=.*` here comes with a
//! `topics.exclude` that keeps only this test's prefix. Gated by `FERRY_IT=1` / `CI=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use ferry_client::Cluster;
use ferry_client::cluster::OffsetSpec;
use ferry_testkit::{ConsumedRecord, Listener, require_kafka, shared_pair, unique_name};

use crate::common::{
    assert_same_records, by_partition, connection, consume_all, sigterm, spawn_run_logged,
    wait_exit, write_config,
};

const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const IDENTITY: &str = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy";

/// A `ferry run` process with its log file.
struct FerryRun {
    child: Option<Child>,
    log: PathBuf,
}

impl FerryRun {
    fn start(config: &Path, log: PathBuf) -> Self {
        let child = spawn_run_logged(config, &[], &log);
        Self {
            child: Some(child),
            log,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log if the process already exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
            panic!("ferry exited early with {status}\n{}", self.log_text());
        }
    }

    /// SIGTERM, then waits for a clean exit (0, "stopped cleanly").
    fn stop(mut self) -> String {
        let mut child = self.child.take().unwrap();
        sigterm(&child);
        let (code, _) = wait_exit(&mut child, Duration::from_secs(90));
        let log = self.log_text();
        assert_eq!(code, 0, "exit code after SIGTERM\n{log}");
        assert!(log.contains("stopped cleanly"), "{log}");
        log
    }

    /// `kill -9`: nothing drains, nothing is stored.
    fn kill9(mut self) -> String {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        let _ = child.wait();
        self.log_text()
    }
}

impl Drop for FerryRun {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Fast end-offset reads (in-process client, no JVM per call).
struct Ends {
    runtime: tokio::runtime::Runtime,
    cluster: Cluster,
}

impl Ends {
    fn new(cluster: &ferry_testkit::Cluster) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = connection(cluster, Listener::Plaintext).build().unwrap();
        let cluster = runtime.block_on(Cluster::connect(config)).unwrap();
        Self { runtime, cluster }
    }

    /// End offsets per partition; empty while the topic does not exist.
    fn of(&self, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
        let parts: Vec<i32> = (0..partitions).collect();
        self.runtime
            .block_on(
                self.cluster
                    .list_offsets(topic, &parts, OffsetSpec::Latest, false),
            )
            .map(|v| v.into_iter().collect())
            .unwrap_or_default()
    }
}

fn total(ends: &BTreeMap<i32, i64>) -> i64 {
    ends.values().sum()
}

/// Waits until every `(target topic, source ends)` is reached on the target.
fn wait_replicated(run: &mut FerryRun, ends: &Ends, want: &[(String, BTreeMap<i32, i64>)]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        run.assert_running();
        let missing: Vec<String> = want
            .iter()
            .filter_map(|(topic, source)| {
                let n = i32::try_from(source.len()).unwrap();
                let got = ends.of(topic, n);
                (got != *source).then(|| format!("{topic}: {got:?} want {source:?}"))
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not replicated within 120 s: {missing:?}\n{}",
            run.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Console-producer properties for `headers<TAB>key<TAB>value` lines, `<NULL>` = null.
fn line_props(codec: &str) -> Vec<(&'static str, String)> {
    vec![
        ("compression.type", codec.to_owned()),
        ("linger.ms", "20".to_owned()),
        ("parse.key", "true".to_owned()),
        ("parse.headers", "true".to_owned()),
        ("key.separator", "\t".to_owned()),
        ("headers.delimiter", "\t".to_owned()),
        ("headers.separator", ",".to_owned()),
        ("headers.key.separator", ":".to_owned()),
        ("null.marker", "<NULL>".to_owned()),
    ]
}

fn produce_lines(
    cluster: &ferry_testkit::Cluster,
    topic: &str,
    lines: &[String],
    props: &[(&'static str, String)],
) {
    let props: Vec<(&str, &str)> = props.iter().map(|(k, v)| (*k, v.as_str())).collect();
    cluster
        .tools(Listener::Plaintext)
        .with_timeout(Duration::from_secs(300))
        .console_produce(topic, lines, &props)
        .unwrap();
}

/// Identity migration over SCRAM-SHA-512 (Charmed Kafka guide), with the fidelity topics.
#[test]
fn identity_migration_over_scram_sha512_field_for_field() {
    require_kafka!();
    let pair = shared_pair();
    let p = unique_name("acc-id");
    let src = pair.source.tools(Listener::Plaintext);
    let mixed = format!("{p}-mixed");
    let tombstones = format!("{p}-tombstones");
    let big = format!("{p}-big");
    let lat = format!("{p}-lat");
    let kept_tmp = format!("{p}-audit-tmp");
    let denied = format!("{p}-sales-tmp");
    src.create_topic(&mixed, 3, &[]).unwrap();
    src.create_topic(&tombstones, 2, &[("cleanup.policy", "compact")])
        .unwrap();
    src.create_topic(&big, 1, &[("max.message.bytes", "3145728")])
        .unwrap();
    src.create_topic(&lat, 2, &[("message.timestamp.type", "LogAppendTime")])
        .unwrap();
    src.create_topic(&kept_tmp, 1, &[]).unwrap();
    src.create_topic(&denied, 1, &[]).unwrap();

    // Mixed: null keys, null and empty values, duplicate header keys, two codecs.
    let mixed_lines: Vec<String> = (0..3000)
        .map(|i| {
            let key = if i % 10 == 0 {
                "<NULL>".to_owned()
            } else {
                format!("k{i}")
            };
            let value = match i % 17 {
                0 => "<NULL>".to_owned(),
                1 => String::new(),
                _ => format!("v{i}-{}", "x".repeat(i % 97)),
            };
            format!("id:{i},dup:a,dup:b{}\t{key}\t{value}", i % 5)
        })
        .collect();
    let (first, second) = mixed_lines.split_at(1500);
    produce_lines(&pair.source, &mixed, first, &line_props("zstd"));
    produce_lines(&pair.source, &mixed, second, &line_props("gzip"));
    // Tombstones: every key written, every third deleted (null value).
    let tomb_lines: Vec<String> = (0..600)
        .map(|i| {
            let value = if i >= 300 && i % 3 == 0 {
                "<NULL>".to_owned()
            } else {
                format!("state-{i}")
            };
            format!("t:{i}\tkey{}\t{value}", i % 300)
        })
        .collect();
    produce_lines(&pair.source, &tombstones, &tomb_lines, &line_props("lz4"));
    // 1 MiB records (values of exactly 1 MiB), each its own batch of about 1 MiB.
    let big_lines: Vec<String> = (0..6)
        .map(|i| {
            let mut v = format!("big{i}-");
            v.push_str(&"abcdefghij".repeat(1 << 17));
            v.truncate(1 << 20);
            format!("n:{i}\tbig{i}\t{v}")
        })
        .collect();
    let mut big_props = line_props("none");
    big_props.push(("max.request.size", "4194304".to_owned()));
    produce_lines(&pair.source, &big, &big_lines, &big_props);
    // LogAppendTime: the broker stamps the batches; linger makes the stamp later than the
    // producer's own timestamps.
    let lat_lines: Vec<String> = (0..800).map(|i| format!("l:{i}\tk{i}\tv{i}")).collect();
    let mut lat_props = line_props("lz4");
    lat_props[1] = ("linger.ms", "100".to_owned());
    produce_lines(&pair.source, &lat, &lat_lines, &lat_props);
    let few: Vec<String> = (0..20).map(|i| format!("x:{i}\tk{i}\tv{i}")).collect();
    produce_lines(&pair.source, &kept_tmp, &few, &line_props("none"));
    produce_lines(&pair.source, &denied, &few, &line_props("none"));

    let (old, new) = (unique_name("old"), unique_name("new"));
    let admin = pair.source.user("admin");
    let jaas = |user: &ferry_testkit::Credentials| {
        format!(
            r#"{SCRAM} required username="{}" password="{}";"#,
            user.username, user.password
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "# Active/passive migration, shaped like the Charmed Kafka guide.\n\
             clusters = {old},{new}\n\
             {old}->{new}.enabled = true\n\
             {new}->{old}.enabled = false\n\
             {old}.bootstrap.servers={}\n\
             {new}.bootstrap.servers={}\n\
             {old}.sasl.jaas.config={}\n\
             {new}.sasl.jaas.config={}\n\
             sasl.mechanism=SCRAM-SHA-512\n\
             security.protocol=SASL_PLAINTEXT\n\
             replication.policy.class={IDENTITY}\n\
             topics=.*\n\
             # shared test clusters: only this test's topics; deny *-tmp except audit ones\n\
             topics.exclude=(?!{p}).*, {p}-(?!audit).*-tmp\n\
             groups=.*\n\
             groups.exclude=(?!{p}).*\n\
             tasks.max=3\n\
             replication.factor=1\n\
             offset-syncs.topic.replication.factor=1\n\
             heartbeats.topic.replication.factor=1\n\
             checkpoints.topic.replication.factor=1\n\
             refresh.topics.enabled=true\n\
             sync.group.offsets.enabled=true\n\
             sync.topic.configs.enabled=true\n\
             refresh.topics.interval.seconds=1\n\
             refresh.groups.interval.seconds=2\n\
             sync.group.offsets.interval.seconds=2\n\
             emit.checkpoints.interval.seconds=2\n\
             {old}.consumer.isolation.level=read_committed\n\
             {new}.consumer.isolation.level=read_committed\n\
             {old}.producer.enable.idempotence=true\n\
             {new}.producer.enable.idempotence=true\n\
             {old}.producer.acks=all\n\
             {new}.producer.acks=all\n",
            pair.source.bootstrap(Listener::SaslPlaintext),
            pair.target.bootstrap(Listener::SaslPlaintext),
            jaas(&admin),
            jaas(&pair.target.user("admin")),
        ),
    );
    let ends = Ends::new(&pair.target);
    let topics = [&mixed, &tombstones, &big, &lat, &kept_tmp];
    let want: Vec<(String, BTreeMap<i32, i64>)> = topics
        .iter()
        .map(|t| ((*t).clone(), src.end_offsets(t).unwrap()))
        .collect();
    let mut run = FerryRun::start(&config, dir.path().join("ferry.log"));
    wait_replicated(&mut run, &ends, &want);
    // The denied topic never appears (one more refresh interval to be sure).
    std::thread::sleep(Duration::from_secs(2));
    let log = run.stop();
    let target_topics = pair
        .target
        .tools(Listener::Plaintext)
        .list_topics()
        .unwrap();
    assert!(
        !target_topics.contains(&denied),
        "{denied} is denied by topics.exclude\n{log}"
    );
    assert!(target_topics.contains(&kept_tmp));
    assert!(!log.contains(&admin.password), "no secrets in the log");

    // Identity naming: same topic names, same partitions; field for field.
    for (topic, source_ends) in &want {
        let n = usize::try_from(total(source_ends)).unwrap();
        let source = consume_all(&pair.source, topic, n);
        let target = consume_all(&pair.target, topic, n);
        assert_eq!(source.len(), n, "{topic}: source count");
        if *topic == lat {
            // LogAppendTime arrives as CreateTime with the same timestamps.
            let mut expect = source.clone();
            for r in &mut expect {
                assert_eq!(r.timestamp_type.as_deref(), Some("LogAppendTime"));
                r.timestamp_type = Some("CreateTime".to_owned());
            }
            assert_same_records(&expect, &target);
        } else {
            assert_same_records(&source, &target);
        }
        if *topic == big {
            assert!(
                target
                    .iter()
                    .all(|r| r.value.as_ref().is_some_and(|v| v.len() == 1 << 20)),
                "1 MiB values"
            );
        }
        if *topic == tombstones {
            let nulls = target.iter().filter(|r| r.value.is_none()).count();
            assert_eq!(nulls, 100, "tombstones stay null");
        }
    }
    let target_configs = pair
        .target
        .tools(Listener::Plaintext)
        .describe_topic(&tombstones)
        .unwrap();
    eprintln!("acceptance identity: target {tombstones}: {target_configs:?}");
}

/// `A->B` with the default policy and an `A->B.topics` list (Open Telekom Cloud guide).
#[test]
fn default_policy_prefixes_and_topics_list() {
    require_kafka!();
    let pair = shared_pair();
    let p = unique_name("acc-ab");
    let src = pair.source.tools(Listener::Plaintext);
    let orders = format!("{p}-orders");
    let payments = format!("{p}-payments");
    let other = format!("{p}-other");
    src.create_topic(&orders, 2, &[]).unwrap();
    src.create_topic(&payments, 1, &[("retention.ms", "86400000")])
        .unwrap();
    src.create_topic(&other, 1, &[]).unwrap();
    let lines: Vec<String> = (0..400).map(|i| format!("h:{i}\tk{i}\tv{i}")).collect();
    for t in [&orders, &payments, &other] {
        produce_lines(&pair.source, t, &lines, &line_props("snappy"));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "# connect-mirror-maker.properties, shaped like the Open Telekom Cloud guide.\n\
             clusters = A, B\n\
             A.bootstrap.servers = {}\n\
             B.bootstrap.servers = {}\n\
             A->B.enabled = true\n\
             A->B.topics = {orders}, {payments}\n\
             B->A.enabled = false\n\
             replication.factor = 1\n\
             checkpoints.topic.replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\n\
             offset-syncs.topic.replication.factor = 1\n\
             offset.storage.replication.factor = 1\n\
             status.storage.replication.factor = 1\n\
             config.storage.replication.factor = 1\n\
             refresh.topics.interval.seconds = 1\n\
             sync.topic.acls.enabled = false\n",
            pair.source.bootstrap(Listener::Plaintext),
            pair.target.bootstrap(Listener::Plaintext),
        ),
    );
    let ends = Ends::new(&pair.target);
    let want: Vec<(String, BTreeMap<i32, i64>)> = [&orders, &payments]
        .iter()
        .map(|t| (format!("A.{t}"), src.end_offsets(t).unwrap()))
        .collect();
    let mut run = FerryRun::start(&config, dir.path().join("ferry.log"));
    wait_replicated(&mut run, &ends, &want);
    std::thread::sleep(Duration::from_secs(2));
    let log = run.stop();
    let tgt = pair.target.tools(Listener::Plaintext);
    let names = tgt.list_topics().unwrap();
    assert!(!names.contains(&format!("A.{other}")), "not listed\n{log}");
    assert!(!names.contains(&orders), "prefixed, never identity");
    let payments_desc = tgt.describe_topic(&format!("A.{payments}")).unwrap();
    eprintln!("acceptance A->B: {payments_desc:?}");
    for t in [&orders, &payments] {
        let n = usize::try_from(total(&src.end_offsets(t).unwrap())).unwrap();
        assert_same_records(
            &consume_all(&pair.source, t, n),
            &consume_all(&pair.target, &format!("A.{t}"), n),
        );
    }
}

/// Lines `seq:i<TAB>k<i><TAB>v<i>-yyy…` for `i` in `range`: unique keys.
fn seq_lines(range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| format!("seq:{i}\tk{i}\tv{i}-{}", "y".repeat(40 + i % 80)))
        .collect()
}

fn seq_props() -> Vec<(&'static str, String)> {
    let mut props = line_props("zstd");
    props.push(("batch.size", "65536".to_owned()));
    props
}

/// Source topic for the stop/restart tests: `n` records over 4 partitions, zstd, each with a
/// unique key. Returns the source end offsets.
fn backlog(pair: &ferry_testkit::ClusterPair, topic: &str, n: usize) -> BTreeMap<i32, i64> {
    let src = pair.source.tools(Listener::Plaintext);
    src.create_topic(topic, 4, &[]).unwrap();
    produce_lines(&pair.source, topic, &seq_lines(0..n), &seq_props());
    src.end_offsets(topic).unwrap()
}

/// A plain `s->t` flow (default policy) for `topic`, unique aliases (own progress group).
fn plain_config(pair: &ferry_testkit::ClusterPair, dir: &Path, topic: &str) -> (PathBuf, String) {
    let (a, b) = (unique_name("s"), unique_name("t"));
    let config = write_config(
        dir,
        &format!(
            "clusters = {a}, {b}\n\
             {a}.bootstrap.servers = {}\n\
             {b}.bootstrap.servers = {}\n\
             {a}->{b}.enabled = true\n\
             {a}->{b}.topics = {topic}\n\
             replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\n\
             offset-syncs.topic.replication.factor = 1\n\
             checkpoints.topic.replication.factor = 1\n\
             refresh.topics.interval.seconds = 1\n\
             sync.topic.acls.enabled = false\n",
            pair.source.bootstrap(Listener::Plaintext),
            pair.target.bootstrap(Listener::Plaintext),
        ),
    );
    (config, format!("{a}.{topic}"))
}

/// Waits until the target holds between 15% and 85% of `want` records, and returns how many;
/// panics if it went past 85% (the stop would not be mid-stream).
fn wait_partial(run: &mut FerryRun, ends: &Ends, target: &str, want: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        run.assert_running();
        let got = total(&ends.of(target, 4));
        if got * 100 >= want * 15 {
            assert!(
                got * 100 <= want * 85,
                "too fast to stop mid-stream: {got} of {want}"
            );
            return got;
        }
        assert!(Instant::now() < deadline, "no progress\n{}", run.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the target holds at least `want` records and stays there for 2 s.
fn wait_at_least(run: &mut FerryRun, ends: &Ends, target: &str, want: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut stable_since: Option<(i64, Instant)> = None;
    loop {
        run.assert_running();
        let got = total(&ends.of(target, 4));
        match stable_since {
            Some((n, since)) if n == got && got >= want => {
                if since.elapsed() >= Duration::from_secs(2) {
                    return got;
                }
            }
            _ => stable_since = Some((got, Instant::now())),
        }
        assert!(
            Instant::now() < deadline,
            "target at {got} of {want}\n{}",
            run.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Nothing lost, order kept: per partition, the target's keys with later repeats removed equal
/// the source's keys. Returns the number of repeats (duplicates).
fn check_no_loss(source: &[ConsumedRecord], target: &[ConsumedRecord]) -> usize {
    let (s, t) = (by_partition(source), by_partition(target));
    let mut duplicates = 0;
    for (p, srecs) in &s {
        let trecs = t.get(p).map(Vec::as_slice).unwrap_or_default();
        let mut seen = BTreeSet::new();
        let mut firsts = Vec::new();
        for r in trecs {
            if seen.insert(r.key.clone()) {
                firsts.push(r);
            } else {
                duplicates += 1;
            }
        }
        assert_eq!(firsts.len(), srecs.len(), "partition {p}: records lost");
        for (i, (a, b)) in srecs.iter().zip(&firsts).enumerate() {
            assert_eq!(
                (&a.key, &a.value, &a.headers, a.timestamp),
                (&b.key, &b.value, &b.headers, b.timestamp),
                "partition {p} record {i}"
            );
        }
    }
    duplicates
}

/// Resume-check events in a log: (verified skips, records skipped, mismatches).
fn resume_events(log: &str) -> (usize, u64, usize) {
    let mut verified = 0;
    let mut records = 0;
    for line in log.lines().filter(|l| l.contains("ResumeVerified")) {
        verified += 1;
        if let Some(rest) = line.split("records: ").nth(1) {
            records += rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    (verified, records, log.matches("ResumeMismatch").count())
}

/// The live source stream of the stop/restart tests: `FIRST` records written before ferry
/// starts, then `CHUNKS` chunks of `CHUNK` written by a background thread while ferry runs (a
/// static backlog would fit in ferry's in-flight budget, so a drain would finish it).
const FIRST: usize = 60_000;
const CHUNK: usize = 30_000;
const CHUNKS: usize = 8;
const STREAM: usize = FIRST + CHUNK * CHUNKS;

fn live_stream(
    pair: &'static ferry_testkit::ClusterPair,
    topic: &str,
) -> std::thread::JoinHandle<()> {
    let topic = topic.to_owned();
    std::thread::spawn(move || {
        for c in 0..CHUNKS {
            let from = FIRST + c * CHUNK;
            produce_lines(
                &pair.source,
                &topic,
                &seq_lines(from..from + CHUNK),
                &seq_props(),
            );
        }
    })
}

/// `kill -9` mid-stream twice, then a restart: nothing lost, duplicates counted.
#[test]
fn kill_9_mid_stream_then_restart_loses_nothing() {
    require_kafka!();
    let pair = shared_pair();
    let topic = unique_name("acc-kill");
    backlog(pair, &topic, FIRST);
    let want = i64::try_from(STREAM).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (config, target) = plain_config(pair, dir.path(), &topic);
    let ends = Ends::new(&pair.target);
    let live = live_stream(pair, &topic);
    let mut logs = Vec::new();
    let mut at_kill = Vec::new();
    let mut floor = 0;
    for round in 0..2 {
        let started = Instant::now();
        let mut run = FerryRun::start(&config, dir.path().join(format!("kill{round}.log")));
        // Mid-stream: new records arrived in this round, at least 3 s ran (progress commits
        // every second), and the source is still being written.
        let deadline = started + Duration::from_secs(120);
        let got = loop {
            run.assert_running();
            let got = total(&ends.of(&target, 4));
            if got > floor && got * 100 >= want * 15 && started.elapsed() >= Duration::from_secs(3)
            {
                break got;
            }
            assert!(Instant::now() < deadline, "no progress\n{}", run.log_text());
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            !live.is_finished(),
            "round {round}: the source stream ended"
        );
        logs.push(run.kill9());
        floor = total(&ends.of(&target, 4));
        assert!(floor < want, "round {round}: finished before the kill");
        at_kill.push(got);
    }
    let mut run = FerryRun::start(&config, dir.path().join("final.log"));
    live.join().unwrap();
    let end = wait_at_least(&mut run, &ends, &target, want);
    logs.push(run.stop());
    let duplicates = end - want;
    let source = consume_all(&pair.source, &topic, STREAM);
    assert_eq!(source.len(), STREAM);
    let copied = consume_all(
        &pair.target,
        &target,
        STREAM + usize::try_from(duplicates).unwrap(),
    );
    let repeats = check_no_loss(&source, &copied);
    assert_eq!(i64::try_from(repeats).unwrap(), duplicates);
    let all_logs = logs.join("\n");
    for line in all_logs.lines().filter(|l| l.contains("ResumeVerified")) {
        eprintln!("acceptance kill -9: {line}");
    }
    let (verified, skipped, mismatches) = resume_events(&all_logs);
    eprintln!(
        "acceptance kill -9: {want} records; target at kill {at_kill:?}; {duplicates} duplicates \
         after 2 kills; resume check verified {verified} partition tails, skipped {skipped} \
         records, {mismatches} mismatches"
    );
    assert_eq!(mismatches, 0, "ferry is the only writer here");
    // The unacknowledged window: the resume check leaves at most one partly written batch per
    // partition and kill (4 partitions, batches of at most 64 KiB of records of 50+ bytes).
    let window = 2 * 4 * (65_536 / 50);
    assert!(
        duplicates <= window,
        "{duplicates} duplicates exceed the window {window}"
    );
}

/// `SIGTERM` mid-stream then a restart: exactly zero duplicates, nothing lost. The source is
/// still being written while ferry stops (a live stream: the in-flight budget is larger than a
/// static test backlog, so the drain alone would finish one).
#[test]
fn sigterm_mid_stream_then_restart_has_no_duplicates() {
    require_kafka!();
    let pair = shared_pair();
    let topic = unique_name("acc-term");
    let want = i64::try_from(STREAM).unwrap();
    backlog(pair, &topic, FIRST);
    let dir = tempfile::tempdir().unwrap();
    let (config, target) = plain_config(pair, dir.path(), &topic);
    let ends = Ends::new(&pair.target);
    let mut run = FerryRun::start(&config, dir.path().join("first.log"));
    let live = live_stream(pair, &topic);
    let got = wait_partial(&mut run, &ends, &target, want);
    assert!(
        !live.is_finished(),
        "the source stream ended before SIGTERM"
    );
    run.stop();
    let stopped_at = total(&ends.of(&target, 4));
    assert!(stopped_at < want, "finished before SIGTERM");
    let mut run = FerryRun::start(&config, dir.path().join("second.log"));
    live.join().unwrap();
    assert_eq!(
        total(
            &pair
                .source
                .tools(Listener::Plaintext)
                .end_offsets(&topic)
                .unwrap()
        ),
        want
    );
    let end = wait_at_least(&mut run, &ends, &target, want);
    let log = run.stop();
    assert_eq!(end, want, "duplicates after SIGTERM and restart");
    // Progress was stored exactly: the restart found no unrecorded tail to verify.
    let (verified, skipped, _) = resume_events(&log);
    assert_eq!(
        (verified, skipped),
        (0, 0),
        "the restart needed the resume check\n{log}"
    );
    let n = usize::try_from(want).unwrap();
    let source = consume_all(&pair.source, &topic, n);
    let copied = consume_all(&pair.target, &target, n);
    assert_eq!(source.len(), n);
    assert_eq!(check_no_loss(&source, &copied), 0);
    eprintln!(
        "acceptance SIGTERM: {want} records; {got} on the target at SIGTERM, {stopped_at} \
         after the drain; 0 duplicates"
    );
}
