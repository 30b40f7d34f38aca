//! ferry next to MirrorMaker 2 on the same two clusters, in the same run (issue #9).
//!
//! Run it with `scripts/bench-vs-mm2` (which builds `ferry` in release mode first); the knobs
//! are environment variables, set by the script's options:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `FERRY_VS_MM2_MIB` | 1024 | backlog size: that many MiB of 1 KiB record values |
//! | `FERRY_VS_MM2_ROUNDS` | 3 | rounds; each runs the floor, MM2 and ferry |
//! | `FERRY_VS_MM2_RATE_MIB` | 5 | steady phase produce rate (MiB/s of record values) |
//! | `FERRY_VS_MM2_STEADY_SECS` | 30 | steady phase length |
//! | `FERRY_VS_MM2_FERRY_BIN` | `target/release/ferry` | the ferry binary |
//! | `FERRY_VS_MM2_KEEP` | unset | `1` keeps the work dir (configs, logs) |
//! | `FERRY_VS_MM2_PERF` | unset | a directory: `perf record` ferry's catch-up phases there |
//! | `FERRY_VS_MM2_ONLY` | unset | `ferry` or `mm2`: run one replicator only (no ratios) |
//!
//! # What it does
//! 1. Starts two dedicated single-broker Kafka 4.3.1 clusters (source and target) with
//!    `ferry-testkit`.
//! 2. Loads the backlog into a 12-partition source topic `bench` with the Java
//!    `ProducerPerformance` tool: the first half with `compression.type=lz4`, the second half
//!    with `zstd` (`acks=all`, default `batch.size`/`linger.ms`). Values are drawn at random
//!    from 4096 distinct 1024-byte JSON-like lines (field names repeat, ids and words vary), so
//!    the data compresses like application events do, not like a repeated constant.
//! 3. Per round, in alternating order (odd rounds MM2 first):
//!    - **floor**: this program re-executed as a child that only fetches the whole backlog
//!      with `ferry_client::fetcher::Fetcher` (defaults, read_committed like ferry's default,
//!      multi-threaded tokio runtime like `ferry run`), splits each response into batches with
//!      `BatchScanner` to find the next offset, and discards the bytes. CPU s of the child.
//!    - **MM2**: `org.apache.kafka.connect.mirror.MirrorMaker` (dedicated mode) from the
//!      cluster's jars, with the JVM options of `connect-mirror-maker.sh` / `kafka-run-class.sh`
//!      (`-Xms256M -Xmx2G`, G1 with their GC flags) and the tuning the public guides give (see
//!      [`mm2_tuning`]).
//!    - **ferry**: `ferry run` (release build) with no tuning keys at all.
//!
//!    Each replicator gets fresh cluster aliases (`m<round>src`, `f<round>src`, ...), so it
//!    writes a fresh remote topic set (`<alias>.bench`, DefaultReplicationPolicy) and has no
//!    stored progress. Measured per replicator:
//!    - **catch-up**: from spawning the process until the target's end offsets of
//!      `<alias>.bench` sum to the backlog's record count (polled every 100 ms with ListOffsets
//!      from this program). Includes process start-up (JVM start for MM2).
//!    - **CPU s**: `utime + stime + cutime + cstime` of the replicator process from
//!      `/proc/<pid>/stat` at the moment catch-up is observed; CPU s/GiB divides by the
//!      backlog's logical size (record values).
//!    - **peak RSS**: `VmHWM` from `/proc/<pid>/status`, read at the end of the steady phase
//!      (covers catch-up and steady phase).
//!    - **steady latency**: after catch-up, `ProducerPerformance --throughput` writes
//!      `rate × secs` records (lz4, same payloads) into a fresh 12-partition source topic that
//!      the replicator was configured with from the start (so it is already being mirrored);
//!      a consumer in this program (ferry-client's `Fetcher` on the target, `min_bytes=1`,
//!      `max_wait=500 ms`) decodes every record of the remote topic and records
//!      `now − record timestamp` (the source producer's CreateTime, kept by both replicators)
//!      when its fetch returns. p50 and p99 over all records of the phase. The same consumer
//!      on the *source* topic gives `src p50/p99`: the delay the source producer and broker
//!      add before a replicator can see a record at all (part of both e2e figures; on a loaded
//!      machine the Java producer falls behind and this dominates). `repl p50/p99` is the
//!      replicator's own delay: target visibility − source visibility of the record at the same
//!      partition and offset (both replicators keep partitions, and offsets in a fresh topic).
//! 4. Prints per-round values, medians, ferry/MM2 ratios against the targets, and
//!    ferry's CPU/GiB over the floor's.
//!
//! When not run by `cargo bench` (no `--bench` argument, as under `cargo test --all-targets`)
//! or without `FERRY_IT=1` / `CI=true`, it prints a skip line and exits at once.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ferry_client::cluster::OffsetSpec;
use ferry_client::fetcher::{FetchConfig, FetchEvent, Fetcher, IsolationLevel, TopicPartition};
use ferry_client::{Cluster, ConnectionConfig};
use ferry_protocol::batch::{BatchScanner, Entry, RecordBatch};
use ferry_protocol::record::{DecodeOptions, DecodedBatch};
use ferry_testkit::{DedicatedCluster, Listener};

const PARTITIONS: i32 = 12;
const RECORD_SIZE: usize = 1024;
const DISTINCT_PAYLOADS: usize = 4096;
const BACKLOG_TOPIC: &str = "bench";
const PRODUCER_PERFORMANCE: &str = "org.apache.kafka.tools.ProducerPerformance";
/// Child-mode marker: `FERRY_VS_MM2_FLOOR=<bootstrap> <topic>` makes this program the floor.
const FLOOR_ENV: &str = "FERRY_VS_MM2_FLOOR";

#[derive(Debug, Clone)]
struct Options {
    mib: u64,
    rounds: usize,
    rate_mib: f64,
    steady_secs: u64,
    ferry_bin: PathBuf,
    keep: bool,
    /// `perf record` ferry's catch-up phase into this directory.
    perf_dir: Option<PathBuf>,
    /// Run only one replicator (`FERRY_VS_MM2_ONLY=ferry|mm2`; for profiling, no ratios).
    only: Option<Kind>,
}

impl Options {
    fn from_env() -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        Self {
            mib: env_or("FERRY_VS_MM2_MIB", 1024),
            rounds: env_or("FERRY_VS_MM2_ROUNDS", 3),
            rate_mib: env_or("FERRY_VS_MM2_RATE_MIB", 5.0),
            steady_secs: env_or("FERRY_VS_MM2_STEADY_SECS", 30),
            ferry_bin: std::env::var_os("FERRY_VS_MM2_FERRY_BIN")
                .map_or_else(|| repo.join("target/release/ferry"), PathBuf::from),
            keep: std::env::var("FERRY_VS_MM2_KEEP").is_ok_and(|v| v == "1"),
            perf_dir: std::env::var_os("FERRY_VS_MM2_PERF").map(PathBuf::from),
            only: match std::env::var("FERRY_VS_MM2_ONLY").as_deref() {
                Ok("ferry") => Some(Kind::Ferry),
                Ok("mm2") => Some(Kind::Mm2),
                _ => None,
            },
        }
    }

    fn records(&self) -> u64 {
        self.mib * 1024 * 1024 / RECORD_SIZE as u64
    }

    fn gib(&self) -> f64 {
        (self.records() * RECORD_SIZE as u64) as f64 / f64::from(1u32 << 30)
    }

    fn steady_rate_records(&self) -> u64 {
        ((self.rate_mib * 1024.0 * 1024.0) / RECORD_SIZE as f64).round() as u64
    }

    fn steady_records(&self) -> u64 {
        self.steady_rate_records() * self.steady_secs
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// /proc

/// Clock ticks per second for `/proc/*/stat` times (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// `utime + stime + cutime + cstime` of a process in seconds (`/proc/<pid>/stat` fields 14–17,
/// counted after the parenthesised command name, which may contain spaces).
fn cpu_seconds(pid: &str, ticks: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/stat: {e}"));
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // `after` starts at field 3 (state): fields 14..=17 are at 11..=14.
    let sum: f64 = after
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse::<f64>().expect("a /proc stat time field"))
        .sum();
    sum / ticks
}

/// `VmHWM` (peak resident set) of a process in MiB.
fn peak_rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kb / 1024.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------------------------------------
// data

/// `DISTINCT_PAYLOADS` lines of exactly `RECORD_SIZE` bytes: JSON-like events whose field
/// names repeat and whose ids, numbers and words vary (xorshift, fixed seed).
fn payload_file(dir: &Path) -> PathBuf {
    const WORDS: [&str; 48] = [
        "order",
        "created",
        "shipped",
        "cart",
        "item",
        "price",
        "user",
        "session",
        "checkout",
        "payment",
        "accepted",
        "declined",
        "refund",
        "stock",
        "warehouse",
        "berlin",
        "paris",
        "lisbon",
        "oslo",
        "tokyo",
        "delivery",
        "express",
        "standard",
        "coupon",
        "discount",
        "review",
        "rating",
        "search",
        "query",
        "result",
        "click",
        "view",
        "product",
        "category",
        "shoes",
        "books",
        "garden",
        "kitchen",
        "mobile",
        "desktop",
        "android",
        "ios",
        "chrome",
        "firefox",
        "safari",
        "error",
        "retry",
        "timeout",
    ];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut text = String::with_capacity(DISTINCT_PAYLOADS * (RECORD_SIZE + 1));
    for i in 0..DISTINCT_PAYLOADS {
        let mut line = String::with_capacity(RECORD_SIZE);
        let _ = write!(
            line,
            "{{\"event_id\":\"{:016x}\",\"seq\":{i},\"ts\":{},\"user\":\"user-{:05}\",\
             \"session\":\"{:016x}{:016x}\",\"type\":\"{}\",\"page\":\"/{}/{}/{}\",\
             \"amount\":{}.{:02},\"currency\":\"EUR\",\"ua\":\"Mozilla/5.0 (X11; Linux x86_64) \
             Gecko/20100101 Firefox/{}.0\",\"tags\":[\"{}\",\"{}\"],\"text\":\"",
            next(),
            1_700_000_000_000u64 + next() % 1_000_000_000,
            next() % 100_000,
            next(),
            next(),
            WORDS[(next() % 48) as usize],
            WORDS[(next() % 48) as usize],
            WORDS[(next() % 48) as usize],
            next() % 100_000,
            next() % 1000,
            next() % 100,
            next() % 100,
            WORDS[(next() % 48) as usize],
            WORDS[(next() % 48) as usize],
        );
        while line.len() < RECORD_SIZE - 2 {
            if next() % 5 == 0 {
                let _ = write!(line, "{} ", next() % 100_000);
            } else {
                line.push_str(WORDS[(next() % 48) as usize]);
                line.push(' ');
            }
        }
        line.truncate(RECORD_SIZE - 2);
        line.push_str("\"}");
        assert_eq!(line.len(), RECORD_SIZE);
        text.push_str(&line);
        text.push('\n');
    }
    let path = dir.join("payloads.txt");
    std::fs::write(&path, text).expect("write the payload file");
    path
}

/// Runs `ProducerPerformance` against `cluster`: `records` values from `payloads`, with
/// `compression`, `acks=all`, at `throughput` records/s (−1: as fast as possible).
fn produce(
    cluster: &DedicatedCluster,
    topic: &str,
    records: u64,
    compression: &str,
    throughput: i64,
    payloads: &Path,
) {
    let out = cluster
        .tools(Listener::Plaintext)
        .with_timeout(Duration::from_secs(3600))
        .run_class(
            PRODUCER_PERFORMANCE,
            &[
                "--topic".to_owned(),
                topic.to_owned(),
                "--num-records".to_owned(),
                records.to_string(),
                "--payload-file".to_owned(),
                payloads.display().to_string(),
                "--throughput".to_owned(),
                throughput.to_string(),
                "--producer-props".to_owned(),
                format!(
                    "bootstrap.servers={}",
                    cluster.bootstrap(Listener::Plaintext)
                ),
                "acks=all".to_owned(),
                format!("compression.type={compression}"),
            ],
        )
        .expect("run ProducerPerformance");
    assert!(
        out.success(),
        "ProducerPerformance failed: {}",
        out.combined()
    );
}

// ---------------------------------------------------------------------------------------------
// ferry-client helpers (this program's own view of the clusters; not measured)

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn connect(bootstrap: &str) -> Result<Cluster, ferry_client::ClientError> {
    let config = ConnectionConfig::builder()
        .with_bootstrap([bootstrap.to_owned()])
        .build()
        .expect("connection config");
    Cluster::connect(config).await
}

/// End offsets of partitions 0..PARTITIONS of `topic`, or `None` while the topic is missing.
async fn end_offsets(cluster: &Cluster, topic: &str) -> Option<BTreeMap<i32, i64>> {
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    cluster
        .list_offsets(topic, &partitions, OffsetSpec::Latest, false)
        .await
        .ok()
        .map(|v| v.into_iter().collect())
}

/// Every complete v2 batch of a fetched blob, and the offset after the last one.
fn complete_batches(records: Bytes, fetch_offset: i64) -> (Vec<RecordBatch>, Option<i64>) {
    let mut out = Vec::new();
    let mut next = None;
    for entry in BatchScanner::new(records) {
        match entry.expect("well-formed records") {
            Entry::V2(b) => {
                next = Some(b.next_offset());
                if b.last_offset() >= fetch_offset {
                    out.push(b);
                }
            }
            other => panic!("unexpected legacy entry at {}", other.position()),
        }
    }
    (out, next)
}

// ---------------------------------------------------------------------------------------------
// the floor (child process)

/// Child mode: fetch the whole topic with ferry-client's fetcher and discard it; prints
/// `FLOOR_RESULT <elapsed s> <cpu s> <bytes> <peak rss MiB>`.
fn floor_child(spec: &str) {
    let (bootstrap, topic) = spec
        .split_once(' ')
        .expect("FERRY_VS_MM2_FLOOR=<bootstrap> <topic>");
    let ticks = clock_ticks();
    let cpu0 = cpu_seconds("self", ticks);
    let t0 = Instant::now();
    // Like `ferry run`: a multi-threaded runtime with the default worker count.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let bytes = rt.block_on(async {
        let cluster = connect(bootstrap).await.expect("connect to the source");
        let ends = end_offsets(&cluster, topic)
            .await
            .expect("backlog end offsets");
        let config = FetchConfig {
            isolation: IsolationLevel::ReadCommitted,
            ..FetchConfig::default()
        };
        let mut fetcher = Fetcher::new(cluster, config).expect("fetcher");
        for p in 0..PARTITIONS {
            fetcher.assign(TopicPartition::new(topic, p), 0);
        }
        let mut bytes = 0u64;
        loop {
            let done = fetcher
                .positions()
                .all(|(tp, o)| o >= ends.get(&tp.partition).copied().unwrap_or(0));
            if done {
                break bytes;
            }
            for event in fetcher.fetch().await.expect("fetch") {
                if let FetchEvent::Data(d) = event {
                    bytes += d.records.len() as u64;
                    let mut next = None;
                    for entry in BatchScanner::new(d.records) {
                        if let Ok(Entry::V2(b)) = entry {
                            next = Some(b.next_offset());
                        }
                    }
                    if let Some(n) = next {
                        fetcher.seek(&d.tp, n);
                    }
                }
            }
        }
    });
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self", ticks) - cpu0;
    println!(
        "FLOOR_RESULT {elapsed:.3} {cpu:.3} {bytes} {:.1}",
        peak_rss_mib("self")
    );
}

#[derive(Debug, Clone, Copy)]
struct Floor {
    cpu: f64,
    bytes: u64,
}

fn run_floor(source: &DedicatedCluster) -> Floor {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .arg("--bench")
        .env(
            FLOOR_ENV,
            format!("{} {BACKLOG_TOPIC}", source.bootstrap(Listener::Plaintext)),
        )
        .output()
        .expect("run the floor child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "floor child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FLOOR_RESULT "))
        .unwrap_or_else(|| panic!("no FLOOR_RESULT in {stdout}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    Floor {
        cpu: f[1].parse().expect("floor cpu"),
        bytes: f[2].parse().expect("floor bytes"),
    }
}

// ---------------------------------------------------------------------------------------------
// replicators

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mm2,
    Ferry,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Mm2 => "MM2",
            Self::Ferry => "ferry",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    catch_up: f64,
    cpu: f64,
    steady_cpu: f64,
    rss: f64,
    p50: f64,
    p99: f64,
    /// Target visibility − source visibility of the same record (the replicator's own delay).
    repl_p50: f64,
    repl_p99: f64,
    /// The same measure on the source topic (the producer's own delay): a reference.
    source_p50: f64,
    source_p99: f64,
}

/// MM2 tuning from the public guides in `/work/shared/seeds` (keys as dedicated-mode
/// `mm2.properties` spells them: `<target alias>.producer.*` reaches the Connect worker's source
/// task producers, as Strimzi's `spec.clusters[].config` does):
/// - `tasks.max` = partitions: the Red Hat AMQ Streams guide (seed 002) raises it for
///   parallelism ("32 for the source connector"); the Charmed Kafka guide (seed 000) sizes it
///   to the hardware. Here 12, one task per partition.
/// - `producer.batch.size=50000`, `producer.linger.ms=1500`, `producer.buffer.memory=225000000`,
///   `producer.max.request.size=157286400`, `offset.flush.timeout.ms=250000`: seed 002's tuned
///   KafkaMirrorMaker2 example.
/// - `producer.acks=all`, `producer.enable.idempotence=true`: seed 000 (`new.producer.acks=all`,
///   `new.producer.enable.idempotence=true`). Seed 002 suggests `acks=1`; the issue asks for
///   `acks=all` so both replicators give the same guarantee.
/// - `producer.compression.type=lz4`: "compression matching the source". The source holds lz4
///   and zstd batches and a producer has one codec; lz4 is the cheaper of the two, the choice
///   most favourable to MM2 (seed 002 suggests gzip, which costs more CPU).
/// - `sync.topic.acls.enabled=false`: seed 002 (10a). Set for both replicators (common file).
fn mm2_tuning(target_alias: &str) -> String {
    let mut s = format!("tasks.max = {PARTITIONS}\noffset.flush.timeout.ms = 250000\n");
    for (k, v) in [
        ("batch.size", "50000"),
        ("linger.ms", "1500"),
        ("buffer.memory", "225000000"),
        ("max.request.size", "157286400"),
        ("compression.type", "lz4"),
        ("acks", "all"),
        ("enable.idempotence", "true"),
    ] {
        let _ = writeln!(s, "{target_alias}.producer.{k} = {v}");
    }
    s
}

/// The `mm2.properties` both replicators get (cluster aliases, topics, single-broker
/// replication factors, the Charmed guide's (seed 000) 5 s refresh/emit intervals).
fn common_config(
    source_alias: &str,
    target_alias: &str,
    source: &DedicatedCluster,
    target: &DedicatedCluster,
    steady_topic: &str,
) -> String {
    format!(
        "clusters = {source_alias}, {target_alias}\n\
         {source_alias}.bootstrap.servers = {}\n\
         {target_alias}.bootstrap.servers = {}\n\
         {source_alias}->{target_alias}.enabled = true\n\
         {target_alias}->{source_alias}.enabled = false\n\
         topics = {BACKLOG_TOPIC}, {steady_topic}\n\
         groups = .*\n\
         sync.topic.acls.enabled = false\n\
         refresh.topics.interval.seconds = 5\n\
         refresh.groups.interval.seconds = 5\n\
         emit.checkpoints.interval.seconds = 5\n\
         sync.group.offsets.interval.seconds = 5\n\
         replication.factor = 1\n\
         checkpoints.topic.replication.factor = 1\n\
         heartbeats.topic.replication.factor = 1\n\
         offset-syncs.topic.replication.factor = 1\n\
         offset.storage.replication.factor = 1\n\
         status.storage.replication.factor = 1\n\
         config.storage.replication.factor = 1\n",
        source.bootstrap(Listener::Plaintext),
        target.bootstrap(Listener::Plaintext),
    )
}

/// Kills the child on drop (SIGTERM first, SIGKILL after 30 s).
#[derive(Debug)]
struct Replicator {
    child: Child,
    log: PathBuf,
}

impl Replicator {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "replicator exited early ({status}); last log lines ({}):\n{}",
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.pid()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replicator {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(
    kind: Kind,
    config: &Path,
    target_alias: &str,
    opts: &Options,
    cluster: &DedicatedCluster,
    log: PathBuf,
) -> Replicator {
    let file = std::fs::File::create(&log).expect("create the replicator log");
    let mut cmd = match kind {
        Kind::Ferry => {
            let mut c = Command::new(&opts.ferry_bin);
            c.arg("run").arg(config);
            c
        }
        Kind::Mm2 => {
            let java = std::env::var_os("JAVA").unwrap_or_else(|| "java".into());
            let mut c = Command::new(java);
            // connect-mirror-maker.sh's heap and kafka-run-class.sh's default JVM options.
            c.args([
                "-Xms256M",
                "-Xmx2G",
                "-server",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:InitiatingHeapOccupancyPercent=35",
                "-XX:+ExplicitGCInvokesConcurrent",
                "-XX:MaxInlineLevel=15",
                "-Djava.awt.headless=true",
            ])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("kafka/log4j2-tools.properties")
                    .display()
            ))
            .arg("-cp")
            .arg(format!("{}/*", cluster.libs_dir().display()))
            .arg("org.apache.kafka.connect.mirror.MirrorMaker")
            .arg(config)
            .args(["--clusters", target_alias]);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone().expect("log handle"))
        .stderr(file);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", kind.name()));
    Replicator { child, log }
}

/// `perf record` (sampling at 499 Hz with DWARF call graphs) attached to `pid`.
fn start_perf(pid: &str, out: &Path) -> Child {
    Command::new("perf")
        .args([
            "record",
            "-F",
            "499",
            "--call-graph",
            "dwarf,16384",
            "-p",
            pid,
            "-o",
        ])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn perf record (apt-get install linux-perf)")
}

/// Stops `perf record` with SIGINT so it writes its file.
fn stop_perf(perf: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &perf.id().to_string()])
        .status();
    let _ = perf.wait();
}

/// One record seen by a latency consumer.
#[derive(Debug, Clone, Copy)]
struct Seen {
    partition: i32,
    offset: i64,
    /// The record's timestamp (the source producer's CreateTime), ms.
    timestamp: i64,
    /// When the fetch that returned it completed, ms.
    seen: i64,
}

/// Latency consumer: reads `topic` from offset 0 of every partition until `expected` records
/// arrived.
async fn consume_latencies(
    bootstrap: String,
    topic: String,
    expected: u64,
    deadline: Instant,
) -> Vec<Seen> {
    let cluster = connect(&bootstrap).await.expect("connect to the target");
    let mut fetcher = Fetcher::new(
        cluster,
        FetchConfig {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            ..FetchConfig::default()
        },
    )
    .expect("fetcher");
    for p in 0..PARTITIONS {
        fetcher.assign(TopicPartition::new(topic.clone(), p), 0);
    }
    let mut lat = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    let options = DecodeOptions {
        verify_crc: false,
        ..DecodeOptions::default()
    };
    while (lat.len() as u64) < expected {
        assert!(
            Instant::now() < deadline,
            "steady phase: only {} of {expected} records reached {topic}",
            lat.len()
        );
        // The remote topic may not exist yet: errors are retried.
        let Ok(events) = fetcher.fetch().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let now = now_ms();
        for event in events {
            if let FetchEvent::Data(d) = event {
                let (batches, next) = complete_batches(d.records, d.fetch_offset);
                for b in &batches {
                    let decoded = DecodedBatch::decode(b, &options).expect("decode a batch");
                    for (i, r) in decoded.records.iter().enumerate() {
                        let offset = b.base_offset() + i64::from(r.offset_delta);
                        if offset < d.fetch_offset {
                            continue;
                        }
                        lat.push(Seen {
                            partition: d.tp.partition,
                            offset,
                            timestamp: decoded.timestamp(i).expect("record timestamp"),
                            seen: now,
                        });
                    }
                }
                if let Some(n) = next {
                    fetcher.seek(&d.tp, n);
                }
            }
        }
    }
    lat
}

fn percentile(sorted: &[i64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

#[allow(clippy::too_many_arguments)]
fn run_replicator(
    kind: Kind,
    round: usize,
    opts: &Options,
    source: &DedicatedCluster,
    target: &DedicatedCluster,
    work: &Path,
    payloads: &Path,
    ticks: f64,
) -> Sample {
    let tag = match kind {
        Kind::Mm2 => 'm',
        Kind::Ferry => 'f',
    };
    let (sa, ta) = (format!("{tag}{round}src"), format!("{tag}{round}tgt"));
    let steady_topic = format!("steady-{tag}{round}");
    source
        .tools(Listener::Plaintext)
        .create_topic(&steady_topic, PARTITIONS as u32, &[])
        .expect("create the steady-phase topic");
    let mut config = common_config(&sa, &ta, source, target, &steady_topic);
    if kind == Kind::Mm2 {
        config.push_str(&mm2_tuning(&ta));
    }
    let config_path = work.join(format!("{sa}.mm2.properties"));
    std::fs::write(&config_path, config).expect("write mm2.properties");
    let remote_backlog = format!("{sa}.{BACKLOG_TOPIC}");
    let remote_steady = format!("{sa}.{steady_topic}");
    let target_bootstrap = target.bootstrap(Listener::Plaintext);
    let rt = runtime();

    let t0 = Instant::now();
    let mut rep = spawn(
        kind,
        &config_path,
        &ta,
        opts,
        target,
        work.join(format!("{sa}.log")),
    );
    let pid = rep.pid();
    let mut perf = opts
        .perf_dir
        .as_ref()
        .filter(|_| kind == Kind::Ferry)
        .map(|dir| start_perf(&pid, &dir.join(format!("ferry-round{round}.perf.data"))));
    let want = opts.records() as i64;
    let (catch_up, cpu) = rt.block_on(async {
        let mut cluster: Option<Cluster> = None;
        loop {
            rep.check_alive();
            assert!(
                t0.elapsed() < Duration::from_secs(3600),
                "{} did not catch up within an hour",
                kind.name()
            );
            if cluster.is_none() {
                cluster = connect(&target_bootstrap).await.ok();
            }
            if let Some(c) = &cluster {
                match end_offsets(c, &remote_backlog).await {
                    Some(ends) if ends.values().sum::<i64>() >= want => {
                        return (t0.elapsed().as_secs_f64(), cpu_seconds(&pid, ticks));
                    }
                    Some(_) => {}
                    None => cluster = None, // topic not there yet: reconnect for fresh metadata
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    if let Some(p) = perf.as_mut() {
        stop_perf(p);
    }
    // Steady phase: a fresh source topic, already mirrored, written at a fixed rate.
    let expected = opts.steady_records();
    let deadline = Instant::now() + Duration::from_secs(opts.steady_secs + 180);
    let consumer = {
        let (b, t) = (target_bootstrap.clone(), remote_steady.clone());
        let (sb, st) = (source.bootstrap(Listener::Plaintext), steady_topic.clone());
        std::thread::spawn(move || {
            runtime().block_on(async move {
                tokio::join!(
                    consume_latencies(b, t, expected, deadline),
                    consume_latencies(sb, st, expected, deadline)
                )
            })
        })
    };
    produce(
        source,
        &steady_topic,
        expected,
        "lz4",
        i64::try_from(opts.steady_rate_records()).unwrap_or(i64::MAX),
        payloads,
    );
    let (target_seen, source_seen) = match consumer.join() {
        Ok(l) => l,
        Err(e) => {
            rep.check_alive();
            std::panic::resume_unwind(e)
        }
    };
    rep.check_alive();
    let total_cpu = cpu_seconds(&pid, ticks);
    let rss = peak_rss_mib(&pid);
    rep.stop();
    let mut e2e: Vec<i64> = target_seen.iter().map(|r| r.seen - r.timestamp).collect();
    let mut src: Vec<i64> = source_seen.iter().map(|r| r.seen - r.timestamp).collect();
    // Both replicators keep partition numbers and, into a fresh topic, offsets: the record at
    // (partition, offset) on the target is the one at the same place on the source.
    let on_source: HashMap<(i32, i64), i64> = source_seen
        .iter()
        .map(|r| ((r.partition, r.offset), r.seen))
        .collect();
    let mut repl: Vec<i64> = target_seen
        .iter()
        .filter_map(|r| on_source.get(&(r.partition, r.offset)).map(|s| r.seen - s))
        .collect();
    e2e.sort_unstable();
    src.sort_unstable();
    repl.sort_unstable();
    Sample {
        catch_up,
        cpu,
        steady_cpu: total_cpu - cpu,
        rss,
        p50: percentile(&e2e, 0.50),
        p99: percentile(&e2e, 0.99),
        repl_p50: percentile(&repl, 0.50),
        repl_p99: percentile(&repl, 0.99),
        source_p50: percentile(&src, 0.50),
        source_p99: percentile(&src, 0.99),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn medians(samples: &[Sample]) -> Sample {
    let m = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    Sample {
        catch_up: m(|s| s.catch_up),
        cpu: m(|s| s.cpu),
        steady_cpu: m(|s| s.steady_cpu),
        rss: m(|s| s.rss),
        p50: m(|s| s.p50),
        p99: m(|s| s.p99),
        repl_p50: m(|s| s.repl_p50),
        repl_p99: m(|s| s.repl_p99),
        source_p50: m(|s| s.source_p50),
        source_p99: m(|s| s.source_p99),
    }
}

fn row(label: &str, s: &Sample, gib: f64) -> String {
    format!(
        "{label:<8} {:>10.1} {:>7.1} {:>9.2} {:>10.1} {:>8.1} {:>6.0}/{:<6.0} {:>6.0}/{:<6.0} \
         {:>6.0}/{:<6.0}",
        s.catch_up,
        s.cpu,
        s.cpu / gib,
        s.steady_cpu,
        s.rss,
        s.p50,
        s.p99,
        s.repl_p50,
        s.repl_p99,
        s.source_p50,
        s.source_p99,
    )
}

fn main() {
    if let Ok(spec) = std::env::var(FLOOR_ENV) {
        floor_child(&spec);
        return;
    }
    let bench_mode = std::env::args().any(|a| a == "--bench");
    if !bench_mode || !ferry_testkit::it_enabled() {
        eprintln!(
            "skipped: vs_mm2 runs under `cargo bench` with FERRY_IT=1 (use scripts/bench-vs-mm2)"
        );
        return;
    }
    let opts = Options::from_env();
    assert!(
        opts.mib > 0 && opts.rounds > 0 && opts.steady_secs > 0 && opts.rate_mib > 0.0,
        "sizes, rounds and the steady phase must be positive"
    );
    assert!(
        opts.ferry_bin.is_file(),
        "no ferry binary at {} (cargo build --release --bin ferry)",
        opts.ferry_bin.display()
    );
    let ticks = clock_ticks();
    let work_dir = tempfile::Builder::new()
        .prefix("ferry-vs-mm2.")
        .tempdir()
        .expect("work dir");
    let work = work_dir.path().to_owned();
    println!(
        "vs_mm2: backlog {} MiB ({} records of {RECORD_SIZE} B, half lz4, half zstd) over \
         {PARTITIONS} partitions; {} rounds; steady phase {} MiB/s for {} s; load average at \
         start {}",
        opts.mib,
        opts.records(),
        opts.rounds,
        opts.rate_mib,
        opts.steady_secs,
        load_average()
    );
    let source = ferry_testkit::dedicated_cluster(ferry_testkit::KAFKA_4);
    let target = ferry_testkit::dedicated_cluster(ferry_testkit::KAFKA_4);
    println!(
        "clusters: Kafka {} source {} target {}; work dir {}",
        source.version(),
        source.bootstrap(Listener::Plaintext),
        target.bootstrap(Listener::Plaintext),
        work.display()
    );
    let payloads = payload_file(&work);
    source
        .tools(Listener::Plaintext)
        .create_topic(BACKLOG_TOPIC, PARTITIONS as u32, &[])
        .expect("create the backlog topic");
    let t = Instant::now();
    let half = opts.records() / 2;
    produce(&source, BACKLOG_TOPIC, half, "lz4", -1, &payloads);
    produce(
        &source,
        BACKLOG_TOPIC,
        opts.records() - half,
        "zstd",
        -1,
        &payloads,
    );
    let loaded = runtime().block_on(async {
        let c = connect(&source.bootstrap(Listener::Plaintext))
            .await
            .expect("connect");
        end_offsets(&c, BACKLOG_TOPIC).await.expect("end offsets")
    });
    assert_eq!(
        loaded.values().sum::<i64>(),
        opts.records() as i64,
        "backlog record count"
    );
    println!("backlog loaded in {:.1} s", t.elapsed().as_secs_f64());

    let gib = opts.gib();
    let header = format!(
        "{:<8} {:>10} {:>7} {:>9} {:>10} {:>8} {:>13} {:>13} {:>13}",
        "",
        "catch-up s",
        "CPU s",
        "CPU s/GiB",
        "steady CPU",
        "RSS MiB",
        "e2e p50/p99",
        "repl p50/p99",
        "src p50/p99"
    );
    let mut mm2 = Vec::new();
    let mut ferry = Vec::new();
    let mut floors = Vec::new();
    let mut table = String::new();
    for round in 1..=opts.rounds {
        let floor = run_floor(&source);
        let order = if round % 2 == 1 {
            [Kind::Mm2, Kind::Ferry]
        } else {
            [Kind::Ferry, Kind::Mm2]
        };
        for kind in order {
            if opts.only.is_some_and(|only| only != kind) {
                continue;
            }
            let s = run_replicator(
                kind, round, &opts, &source, &target, &work, &payloads, ticks,
            );
            match kind {
                Kind::Mm2 => mm2.push(s),
                Kind::Ferry => ferry.push(s),
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        let rows = [("MM2", mm2.get(round - 1)), ("ferry", ferry.get(round - 1))]
            .iter()
            .filter_map(|(label, s)| s.map(|s| row(label, s, gib) + "\n"))
            .collect::<String>();
        let lines = format!(
            "round {round} ({} first; load average {}; floor {:.2} CPU s = {:.2} CPU s/GiB, \
             {:.1} MiB fetched)\n{rows}",
            order[0].name(),
            load_average(),
            floor.cpu,
            floor.cpu / gib,
            floor.bytes as f64 / 1048576.0,
        );
        print!(
            "{}",
            if round == 1 {
                format!("{header}\n{lines}")
            } else {
                lines.clone()
            }
        );
        let _ = std::io::stdout().flush();
        table.push_str(&lines);
        floors.push(floor);
    }
    let (m, f) = (medians(&mm2), medians(&ferry));
    let floor_cpu = median(floors.iter().map(|x| x.cpu).collect());
    println!("\nmedians over {} rounds\n{header}", opts.rounds);
    println!("{}", row("MM2", &m, gib));
    println!("{}", row("ferry", &f, gib));
    println!(
        "floor    CPU s {floor_cpu:.2} = {:.2} CPU s/GiB (fetch and discard)",
        floor_cpu / gib
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let r_catch = f.catch_up / m.catch_up;
    let r_cpu = f.cpu / m.cpu;
    let r_rss = f.rss / m.rss;
    let r_p99 = f.p99 / m.p99;
    let r_floor = f.cpu / floor_cpu;
    println!("\nratios (medians), target in brackets");
    println!(
        "  catch-up time ferry/MM2   {r_catch:>7.3}  [<= 0.333] {}",
        verdict(r_catch <= 1.0 / 3.0)
    );
    println!(
        "  CPU s per GiB ferry/MM2   {r_cpu:>7.3}  [<= 0.100] {}",
        verdict(r_cpu <= 0.1)
    );
    println!(
        "  peak RSS ferry/MM2        {r_rss:>7.3}  [<= 0.100] {}",
        verdict(r_rss <= 0.1)
    );
    println!(
        "  p99 e2e latency ferry/MM2 {r_p99:>7.3}  [<= 0.200] {}",
        verdict(r_p99 <= 0.2)
    );
    println!(
        "  p99 replication delay ferry/MM2 {:.3} (no target; without the source producer's delay)",
        f.repl_p99 / m.repl_p99
    );
    println!(
        "  ferry CPU / floor CPU     {r_floor:>7.3}  [<= 2.000] {}",
        verdict(r_floor <= 2.0)
    );
    println!("load average at end {}", load_average());
    if opts.keep {
        let kept = work_dir.keep();
        println!("kept {}", kept.display());
    }
}
