//! The producer primitive against a real broker, next to Java's `ProducerPerformance` on the
//! same cluster in the same run (issue #4 item 8).
//!
//! Each round sends the same volume twice, to a fresh 8-partition topic each time:
//! - **ferry**: batches of 16 records of 1 KiB (16.4 KiB each) are encoded up front with
//!   `ferry_protocol::record` (not timed), then sent round-robin over the 8 partitions through
//!   [`IdempotentProducer`] (5 in flight per partition, `acks=-1`). Timed: from the first `send`
//!   to the last acknowledgement. CPU: this process's `utime + stime` (`/proc/self/stat`) over
//!   the same span.
//! - **Java**: `org.apache.kafka.tools.ProducerPerformance --record-size 1024 --throughput -1`
//!   with `batch.size=16384 linger.ms=5 acks=all compression.type=<codec>` (idempotence is on by
//!   default since Kafka 3.0), JVM options as `kafka-producer-perf-test.sh` (`-Xmx512M`, G1).
//!   MiB/s is the tool's own figure (its send phase); CPU is the whole JVM's `user + sys` from
//!   `/usr/bin/time`, so it includes JVM start-up and JIT compilation. A Java batch holds 15
//!   records (16 × 1 KiB plus record overhead exceeds 16384 bytes); ferry's hold 16.
//!
//! The rounds alternate which client goes first. Per-round values, medians and ratios are
//! printed.
//!
//! ```text
//! FERRY_IT=1 cargo bench --bench producer            # 256 MiB, 3 rounds, no compression
//! FERRY_IT=1 FERRY_BENCH_MIB=128 FERRY_BENCH_ROUNDS=5 FERRY_BENCH_CODEC=lz4 cargo bench --bench producer
//! ```
//!
//! Without `FERRY_IT=1` (or `CI=true`), or when run by `cargo test --all-targets` (no `--bench`
//! argument), it prints a skip line and exits. Needs `/usr/bin/time`
//! (`apt-get install -y time`) and Java 17+.

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferry_client::producer::{IdempotentProducer, ProducerConfig};
use ferry_client::{Cluster, ConnectionConfig};
use ferry_protocol::batch::Attributes;
use ferry_protocol::record::{Record, encode_parts, producer_header};
use ferry_testkit::Listener;

const RECORD_SIZE: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
const PARTITIONS: u32 = 8;

/// One client's result in one round.
#[derive(Debug, Clone, Copy)]
struct Sample {
    mib_per_sec: f64,
    cpu_seconds: f64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

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

/// `utime + stime` of this process in seconds, from `/proc/self/stat` (fields 14 and 15,
/// counted after the parenthesised command name, which may contain spaces).
fn own_cpu_seconds(ticks: f64) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: f64 = fields[11].parse().expect("utime");
    let stime: f64 = fields[12].parse().expect("stime");
    (utime + stime) / ticks
}

/// One 1 KiB value of uppercase letters, reused for every record, as ProducerPerformance does.
fn payload() -> Bytes {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let v: Vec<u8> = (0..RECORD_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect();
    Bytes::from(v)
}

/// `count` complete v2 batches of [`RECORDS_PER_BATCH`] records, each in its own buffer (so the
/// producer stamps them in place).
fn encode_batches(count: usize, codec_id: i16) -> Vec<Bytes> {
    let value = payload();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let records: Vec<Record> = (0..RECORDS_PER_BATCH)
        .map(|i| Record {
            offset_delta: i as i32,
            value: Some(value.clone()),
            ..Record::default()
        })
        .collect();
    let header = producer_header(now_ms, Attributes(codec_id), &records);
    (0..count)
        .map(|_| {
            let (prefix, body) = encode_parts(&header, &records).expect("encode batch");
            let mut b = BytesMut::with_capacity(prefix.len() + body.len());
            b.extend_from_slice(&prefix);
            b.extend_from_slice(&body);
            b.freeze()
        })
        .collect()
}

fn run_ferry(cluster: &ferry_testkit::Cluster, mib: usize, codec: &str, ticks: f64) -> Sample {
    let topic = ferry_testkit::unique_name("bench-ferry");
    cluster
        .tools(Listener::Plaintext)
        .create_topic(&topic, PARTITIONS, &[])
        .expect("create topic");
    let codec_id = if codec == "lz4" { 3 } else { 0 };
    let batches = encode_batches(mib * 1024 / RECORDS_PER_BATCH, codec_id);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (elapsed, cpu) = runtime.block_on(async {
        let config = ConnectionConfig::builder()
            .with_bootstrap([cluster.bootstrap(Listener::Plaintext)])
            .build()
            .expect("config");
        let client = Cluster::connect(config).await.expect("connect");
        let producer = IdempotentProducer::new(client, ProducerConfig::default())
            .await
            .expect("producer");
        let cpu0 = own_cpu_seconds(ticks);
        let t0 = Instant::now();
        let mut handles = Vec::with_capacity(batches.len());
        for (i, b) in batches.into_iter().enumerate() {
            let partition = (i % PARTITIONS as usize) as i32;
            handles.push(producer.send(&topic, partition, b).expect("send"));
        }
        for h in handles {
            h.wait().await.expect("acknowledged");
        }
        (t0.elapsed(), own_cpu_seconds(ticks) - cpu0)
    });
    Sample {
        mib_per_sec: mib as f64 / elapsed.as_secs_f64(),
        cpu_seconds: cpu,
    }
}

fn run_java(cluster: &ferry_testkit::Cluster, mib: usize, codec: &str) -> Sample {
    let topic = ferry_testkit::unique_name("bench-java");
    cluster
        .tools(Listener::Plaintext)
        .create_topic(&topic, PARTITIONS, &[])
        .expect("create topic");
    let log_config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(if cluster.is_kafka4() {
            "kafka/log4j2-tools.properties"
        } else {
            "kafka/log4j-tools.properties"
        });
    let log_opt = if cluster.is_kafka4() {
        format!("-Dlog4j2.configurationFile={}", log_config.display())
    } else {
        format!("-Dlog4j.configuration=file:{}", log_config.display())
    };
    let out = Command::new("/usr/bin/time")
        .args([
            "-f",
            "FERRY_BENCH_TIME %U %S %e",
            "java",
            "-Xmx512M",
            "-XX:+UseG1GC",
        ])
        .arg(log_opt)
        .arg("-cp")
        .arg(format!("{}/*", cluster.libs_dir().display()))
        .arg("org.apache.kafka.tools.ProducerPerformance")
        .args(["--topic", &topic, "--num-records"])
        .arg((mib * 1024).to_string())
        .args([
            "--record-size",
            "1024",
            "--throughput",
            "-1",
            "--producer-props",
        ])
        .arg(format!(
            "bootstrap.servers={}",
            cluster.bootstrap(Listener::Plaintext)
        ))
        .args(["batch.size=16384", "linger.ms=5", "acks=all"])
        .arg(format!("compression.type={codec}"))
        .output()
        .expect("run /usr/bin/time java (apt-get install -y time)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ProducerPerformance failed: {stdout}\n{stderr}"
    );
    // Summary: "N records sent, R records/sec (M MB/sec), ..."; MB is 1024 * 1024 bytes.
    let summary = stdout
        .lines()
        .rfind(|l| l.contains("records sent"))
        .unwrap_or_else(|| panic!("no summary line in: {stdout}"));
    let sent: u64 = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("records sent");
    assert_eq!(sent, (mib * 1024) as u64, "{summary}");
    let mib_per_sec: f64 = summary
        .split_once('(')
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no MB/sec in {summary:?}"));
    let times = stderr
        .lines()
        .rfind(|l| l.starts_with("FERRY_BENCH_TIME"))
        .unwrap_or_else(|| panic!("no /usr/bin/time line in: {stderr}"));
    let t: Vec<f64> = times
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(t.len(), 3, "{times}");
    Sample {
        mib_per_sec,
        cpu_seconds: t[0] + t[1],
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    // `cargo test --all-targets` runs bench targets without `--bench`: only build-check there.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("skipped: run with `cargo bench --bench producer` to measure");
        return;
    }
    if !ferry_testkit::it_enabled() {
        eprintln!("skipped: the producer benchmark needs Kafka; set FERRY_IT=1 (or CI=true)");
        return;
    }
    let mib: usize = env_or("FERRY_BENCH_MIB", 256);
    let rounds: usize = env_or("FERRY_BENCH_ROUNDS", 3);
    let codec: String = env_or("FERRY_BENCH_CODEC", "none".to_owned());
    assert!(
        codec == "none" || codec == "lz4",
        "FERRY_BENCH_CODEC must be none or lz4"
    );
    assert!(
        mib > 0 && rounds > 0,
        "FERRY_BENCH_MIB and _ROUNDS must be positive"
    );
    let ticks = clock_ticks();
    let cluster = ferry_testkit::dedicated_cluster(ferry_testkit::KAFKA_4);
    println!(
        "producer benchmark: Kafka {}, 1 broker, {PARTITIONS} partitions, {mib} MiB per run, \
         1 KiB records, {RECORDS_PER_BATCH} per ferry batch / batch.size=16384 for Java, \
         compression {codec}, {rounds} rounds",
        cluster.version()
    );
    println!("round  first  ferry MiB/s  ferry CPU s  java MiB/s  java CPU s");
    let mut ferry = Vec::new();
    let mut java = Vec::new();
    for round in 1..=rounds {
        let ferry_first = round % 2 == 1;
        let (f, j) = if ferry_first {
            let f = run_ferry(&cluster, mib, &codec, ticks);
            (f, run_java(&cluster, mib, &codec))
        } else {
            let j = run_java(&cluster, mib, &codec);
            (run_ferry(&cluster, mib, &codec, ticks), j)
        };
        println!(
            "{round:>5}  {:>5}  {:>11.1}  {:>11.2}  {:>10.1}  {:>10.2}",
            if ferry_first { "ferry" } else { "java" },
            f.mib_per_sec,
            f.cpu_seconds,
            j.mib_per_sec,
            j.cpu_seconds
        );
        ferry.push(f);
        java.push(j);
        // Let the broker settle (log flushes, segment rolls) between rounds.
        std::thread::sleep(Duration::from_secs(2));
    }
    let fm = median(ferry.iter().map(|s| s.mib_per_sec).collect());
    let fc = median(ferry.iter().map(|s| s.cpu_seconds).collect());
    let jm = median(java.iter().map(|s| s.mib_per_sec).collect());
    let jc = median(java.iter().map(|s| s.cpu_seconds).collect());
    println!("median        {fm:>11.1}  {fc:>11.2}  {jm:>10.1}  {jc:>10.2}");
    println!(
        "ratios: throughput ferry/java {:.2}x, CPU seconds java/ferry {:.2}x, \
         MiB per CPU second ferry {:.1} vs java {:.1}",
        fm / jm,
        jc / fc,
        mib as f64 / fc,
        mib as f64 / jc
    );
}
