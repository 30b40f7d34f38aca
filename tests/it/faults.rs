//! The fault-injection suite (issue #10, `RELIABILITY.md`, reliability.md's 25 scenarios).
//!
//! Every scenario writes a seeded workload ([`ferry_testkit::workload`]) to the source, runs the
//! engine (`ferry_mirror::engine::Engine`) through the Kafka-aware fault proxy
//! ([`ferry_testkit::proxy`]) or against brokers that are killed, stopped or paused, and then
//! checks the invariants with [`ferry_testkit::checker`], which reads the source log as ground
//! truth. A failure prints the seed (`FERRY_FAULT_SEED=<n>` replays it) and the fault timeline.
//!
//! Bad input (#13–#15, #22–#24) must end in a typed error or event within a bounded time, with
//! no panic, no hot retry loop (requests counted at the proxy or the fake broker), bounded
//! memory and no silent skip.
//!
//! The soak (`scripts/soak`) runs [`soak_random_faults`] (ignored here) with
//! `FERRY_SOAK_MINUTES` and `FERRY_FAULT_SEED`.
//!
//! Gated by `FERRY_IT=1` / `CI=true` except the fake-broker and config tests, which need no
//! Kafka.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferry_client::admin::{Admin, NewTopic};
use ferry_client::cluster::OffsetSpec;
use ferry_client::{
    BackoffConfig, ConnectionConfig, SaslMechanism, Secret, SecurityProtocol, TlsSettings,
};
use ferry_mirror::engine::{Engine, EngineHandle, MirrorError, PartitionState};
use ferry_mirror::events::{MirrorEvent, StopReason};
use ferry_mirror::filter::TopicFilter;
use ferry_mirror::settings::{EngineSettings, FlowSettings, StartPosition};
use ferry_testkit::checker::{self, Report, Violation};
use ferry_testkit::fake_broker::{FakeBroker, Misbehaviour};
use ferry_testkit::proxy::{ApiKey, Corruption, Fault, FaultProxy, format_timeline};
use ferry_testkit::rand::rngs::StdRng;
use ferry_testkit::rand::{self, Rng, SeedableRng};
use ferry_testkit::workload::{Workload, WorkloadSpec};
use ferry_testkit::{Cluster, Listener, TxnOutcome, require_kafka, shared_pair, unique_name};
use tokio::sync::oneshot;

use crate::common::block_on;

const SRC: &str = "src";
const TGT: &str = "tgt";
/// The engine's in-flight budget in these tests.
const BUDGET: usize = 4 << 20;
/// P: lag back to zero within this after a fault heals (MM2's transfer bound).
const RECOVERY: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Harness

/// One scenario's seed, proxies and notes: printed on failure.
struct Ctx {
    name: &'static str,
    seed: u64,
    started: Instant,
    notes: Mutex<Vec<ferry_testkit::proxy::TimelineEntry>>,
    proxies: Vec<Arc<FaultProxy>>,
}

impl Ctx {
    fn new(name: &'static str) -> Self {
        let seed = std::env::var("FERRY_FAULT_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| rand::rng().random::<u32>().into());
        eprintln!("faults::{name}: seed {seed} (replay with FERRY_FAULT_SEED={seed})");
        Self {
            name,
            seed,
            started: Instant::now(),
            notes: Mutex::new(Vec::new()),
            proxies: Vec::new(),
        }
    }

    fn rng(&self) -> StdRng {
        StdRng::seed_from_u64(self.seed)
    }

    fn proxy(&mut self, name: &str, cluster: &Cluster) -> Arc<FaultProxy> {
        let p = Arc::new(FaultProxy::for_cluster(name, cluster).expect("proxy starts"));
        self.proxies.push(Arc::clone(&p));
        p
    }

    fn note(&self, what: impl Into<String>) {
        let what = what.into();
        eprintln!(
            "faults::{}: +{:.1}s {what}",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
        self.notes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ferry_testkit::proxy::TimelineEntry {
                at: self.started.elapsed(),
                what,
            });
    }

    /// Seed and merged fault timeline.
    fn context(&self) -> String {
        let mut all = self
            .notes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for p in &self.proxies {
            all.extend(p.timeline());
        }
        all.sort_by_key(|e| e.at);
        format!(
            "scenario {} seed {} (FERRY_FAULT_SEED={})\nfault timeline:\n{}",
            self.name,
            self.seed,
            self.seed,
            format_timeline(&all)
        )
    }
}

fn conn(bootstrap: impl Into<String>, request_timeout: Duration) -> ConnectionConfig {
    ConnectionConfig::builder()
        .with_bootstrap([bootstrap.into()])
        .with_connect_timeout(Duration::from_secs(3))
        .with_request_timeout(request_timeout)
        .with_backoff(
            BackoffConfig::default()
                .with_max(Duration::from_secs(1))
                .with_deadline(Duration::from_secs(120)),
        )
        .build()
        .expect("connection config")
}

async fn client(cluster: &Cluster) -> ferry_client::Cluster {
    ferry_client::Cluster::connect(conn(
        cluster.bootstrap(Listener::Plaintext),
        Duration::from_secs(30),
    ))
    .await
    .expect("direct client connects")
}

async fn create_topic(
    cluster: &ferry_client::Cluster,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let mut t = NewTopic::new(name, partitions, 1);
    for (k, v) in configs {
        t = t.with_config(*k, *v);
    }
    let res = Admin::new(cluster.clone())
        .create_topics(&[t], false)
        .await
        .expect("create topics");
    for (n, r) in res {
        r.unwrap_or_else(|e| panic!("creating {n}: {e}"));
    }
}

fn target_topic(topic: &str) -> String {
    format!("{SRC}.{topic}")
}

fn settings(
    src: ConnectionConfig,
    tgt: ConnectionConfig,
    topics: &str,
    group: &str,
) -> EngineSettings {
    let mut flow = FlowSettings::new(SRC, TGT).expect("flow");
    flow.topic_filter = TopicFilter::from_config(Some(topics), None).expect("filter");
    flow.heartbeats_replication = false;
    flow.emit_heartbeats = false;
    flow.refresh_topics_interval = Duration::from_secs(2);
    flow.progress_interval = Duration::from_millis(500);
    flow.progress_group = Some(group.to_owned());
    let mut s = EngineSettings::new()
        .with_cluster(SRC, src)
        .with_cluster(TGT, tgt)
        .with_flow(flow);
    s.in_flight_bytes = BUDGET;
    s
}

/// A running engine, its collected events, and progress marks for the duplicate bound.
struct Running {
    handle: EngineHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), MirrorError>>>,
    events: Arc<Mutex<Vec<(Instant, MirrorEvent)>>>,
    /// `(when, total replicated)` sampled every 20 ms, for the duplicate bound of a crash.
    samples: Arc<Mutex<Vec<(Instant, i64)>>>,
    started: Instant,
    sampler: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}

/// How far back stored progress can lag what the target acknowledged: three progress intervals
/// (the engine stores progress every 500 ms in these tests; it emits no event when it does).
const PROGRESS_LAG: Duration = Duration::from_millis(1500);

fn replicated_total(handle: &EngineHandle) -> i64 {
    handle
        .status()
        .flows
        .iter()
        .flat_map(|f| f.partitions.values())
        .map(|p| p.replicated.max(0))
        .sum()
}

impl Running {
    fn start(settings: EngineSettings) -> Self {
        let engine = Engine::new(settings).expect("engine settings valid");
        let handle = engine.handle();
        let mut rx = engine.subscribe();
        let events: Arc<Mutex<Vec<(Instant, MirrorEvent)>>> = Arc::default();
        let samples: Arc<Mutex<Vec<(Instant, i64)>>> = Arc::default();
        let ev = Arc::clone(&events);
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => ev
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((Instant::now(), e)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        });
        let (sm, h) = (Arc::clone(&samples), handle.clone());
        let sampler = tokio::spawn(async move {
            loop {
                let total = replicated_total(&h);
                sm.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((Instant::now(), total));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(engine.run(async move {
            let _ = stop_rx.await;
        }));
        Self {
            handle,
            stop: Some(stop),
            task: Some(task),
            events,
            samples,
            started: Instant::now(),
            sampler,
        }
    }

    fn events(&self) -> Vec<MirrorEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    async fn wait_event(
        &self,
        what: &str,
        timeout: Duration,
        f: impl Fn(&MirrorEvent) -> bool,
    ) -> MirrorEvent {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| f(e)) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} event within {timeout:?}; events: {:#?}; status: {:#?}",
                self.events(),
                self.handle.status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every partition of `topic` has replicated up to the source's end offsets
    /// (read_committed); returns how long it took.
    async fn wait_caught_up(
        &self,
        src: &ferry_client::Cluster,
        topic: &str,
        timeout: Duration,
        ctx: &Ctx,
    ) -> Duration {
        let started = Instant::now();
        let ends = end_offsets(src, topic).await;
        loop {
            let status = self.handle.status();
            let done = ends.iter().all(|(&p, &end)| {
                end == 0
                    || status.flows[0].partitions.iter().any(|(tp, s)| {
                        tp.topic == topic && tp.partition == p && s.replicated >= end
                    })
            });
            if done {
                return started.elapsed();
            }
            if let Some(task) = &self.task
                && task.is_finished()
            {
                panic!(
                    "engine ended early; events {:#?}\n{}",
                    self.events(),
                    ctx.context()
                );
            }
            assert!(
                started.elapsed() < timeout,
                "{topic} not caught up to {ends:?} within {timeout:?}: {:#?}\nevents: {:#?}\n{}",
                status.flows[0].partitions,
                self.events(),
                ctx.context()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Clean shutdown; returns how long it took.
    async fn shutdown(mut self, within: Duration) -> Duration {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("task");
        tokio::time::timeout(within, task)
            .await
            .unwrap_or_else(|_| panic!("shutdown did not finish within {within:?}"))
            .expect("engine task")
            .expect("engine run");
        started.elapsed()
    }

    /// A crash: the engine task is aborted where it stands. Returns the duplicate bound for
    /// this crash: records acknowledged within [`PROGRESS_LAG`] before it (the progress lag at
    /// that moment), or everything since the start when the run was younger than that.
    async fn crash(mut self) -> i64 {
        let total = replicated_total(&self.handle);
        let now = Instant::now();
        let floor = self
            .samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .rev()
            .find(|(t, _)| now.duration_since(*t) >= PROGRESS_LAG)
            .map_or(0, |(_, n)| *n);
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        (total - floor).max(0)
    }
}

async fn end_offsets(cluster: &ferry_client::Cluster, topic: &str) -> BTreeMap<i32, i64> {
    let md = cluster
        .ensure_topics(&[topic.to_owned()])
        .await
        .expect("metadata");
    let parts: Vec<i32> = md
        .topics
        .get(topic)
        .map(|t| t.partitions.keys().copied().collect())
        .unwrap_or_default();
    cluster
        .list_offsets(topic, &parts, OffsetSpec::Latest, true)
        .await
        .expect("end offsets")
        .into_iter()
        .collect()
}

async fn check(src: &ferry_client::Cluster, tgt: &ferry_client::Cluster, topic: &str) -> Report {
    let report = checker::check_topics(
        src,
        topic,
        tgt,
        &target_topic(topic),
        Duration::from_secs(60),
    )
    .await
    .expect("checker reads both logs");
    eprintln!("{report}");
    report
}

/// The process's resident set size in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// Source and target through proxies: (ctx with proxies, src proxy, tgt proxy).
fn proxied_pair(ctx: &mut Ctx) -> (Arc<FaultProxy>, Arc<FaultProxy>) {
    let pair = shared_pair();
    let s = ctx.proxy("source", &pair.source);
    let t = ctx.proxy("target", &pair.target);
    (s, t)
}

// ---------------------------------------------------------------------------------------------
// #1 Baseline fidelity

#[test]
fn s01_baseline_fidelity_matrix() {
    require_kafka!();
    let ctx = Ctx::new("s01_baseline_fidelity_matrix");
    let pair = shared_pair();
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        let prefix = unique_name("f01");
        let one = format!("{prefix}-one");
        let eight = format!("{prefix}-eight");
        let big = format!("{prefix}-big");
        create_topic(&src, &one, 1, &[]).await;
        create_topic(&src, &eight, 8, &[]).await;
        create_topic(&src, &big, 2, &[("max.message.bytes", "3000000")]).await;
        let mut spec = WorkloadSpec::new(ctx.seed);
        spec.null_values = true;
        Workload::new(spec.clone(), &one)
            .produce(&src, 0..1, 0..600)
            .await
            .expect("produce");
        Workload::new(spec.clone(), &eight)
            .produce(&src, 0..8, 0..150)
            .await
            .expect("produce");
        let mut big_spec = WorkloadSpec::new(ctx.seed);
        big_spec.value_size = (1 << 20)..(1 << 20) + 1024;
        big_spec.batch_records = 1..2;
        Workload::new(big_spec, &big)
            .produce(&src, 0..2, 0..3)
            .await
            .expect("produce 1 MB");
        let mut s = settings(
            conn(
                pair.source.bootstrap(Listener::Plaintext),
                Duration::from_secs(30),
            ),
            conn(
                pair.target.bootstrap(Listener::Plaintext),
                Duration::from_secs(30),
            ),
            &format!("{prefix}-.*"),
            &unique_name("f01-progress"),
        );
        s.fetch_partition_max_bytes = 4 << 20;
        let run = Running::start(s);
        for t in [&one, &eight, &big] {
            run.wait_caught_up(&src, t, Duration::from_secs(60), &ctx)
                .await;
        }
        run.shutdown(Duration::from_secs(30)).await;
        for t in [&one, &eight, &big] {
            let r = check(&src, &tgt, t).await;
            assert!(r.source_records > 0);
            r.assert_ok(0, &ctx.context());
            assert_eq!(r.source_records, r.target_records);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// #2 Engine hard kill, three times, past 20% progress

#[test]
fn s02_engine_hard_kill_three_times() {
    require_kafka!();
    let mut ctx = Ctx::new("s02_engine_hard_kill_three_times");
    let pair = shared_pair();
    // A 512 KiB/s target path: the copy takes several progress intervals, so each crash lands
    // after progress commits and the duplicate bound is tight.
    let tp = ctx.proxy("target", &pair.target);
    tp.set(Fault::Bandwidth(512 << 10));
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        let topic = unique_name("f02");
        create_topic(&src, &topic, 4, &[]).await;
        let mut spec = WorkloadSpec::new(ctx.seed);
        spec.value_size = 100..800;
        let w = Workload::new(spec, &topic);
        let per = 3000u64;
        w.produce(&src, 0..4, 0..per).await.expect("produce");
        let total = 4 * per as i64;
        let group = unique_name("f02-progress");
        let mk = || {
            let mut s = settings(
                conn(
                    pair.source.bootstrap(Listener::Plaintext),
                    Duration::from_secs(30),
                ),
                conn(tp.bootstrap(), Duration::from_secs(30)),
                &topic,
                &group,
            );
            s.in_flight_bytes = 1 << 20;
            s
        };
        let mut bound = 0i64;
        for (i, pct) in [20i64, 45, 70].into_iter().enumerate() {
            let run = Running::start(mk());
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let done = replicated_total(&run.handle);
                if done * 100 >= total * pct && run.started.elapsed() >= 2 * PROGRESS_LAG {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no progress to {pct}%: {done}/{total}"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let ran = run.started.elapsed();
            let b = run.crash().await;
            bound += b;
            ctx.note(format!(
                "crash {} at >= {pct}% after {ran:?} (duplicate bound +{b})",
                i + 1
            ));
        }
        tp.heal();
        let run = Running::start(mk());
        run.wait_caught_up(&src, &topic, Duration::from_secs(90), &ctx)
            .await;
        run.shutdown(Duration::from_secs(30)).await;
        let r = check(&src, &tgt, &topic).await;
        assert_eq!(r.source_records as i64, total);
        ctx.note(format!(
            "duplicates {} (bound {bound}), replays {}",
            r.duplicates, r.replays
        ));
        r.assert_ok(u64::try_from(bound).unwrap_or(0), &ctx.context());
        assert!(
            r.replays <= 3 * 4,
            "at most one replay per crash and partition: {r}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// #3 Graceful shutdown and restart

#[test]
fn s03_graceful_shutdown_and_restart() {
    require_kafka!();
    let ctx = Ctx::new("s03_graceful_shutdown_and_restart");
    let pair = shared_pair();
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        let topic = unique_name("f03");
        create_topic(&src, &topic, 3, &[]).await;
        let w = Workload::new(WorkloadSpec::new(ctx.seed), &topic);
        let group = unique_name("f03-progress");
        let mk = || {
            settings(
                conn(
                    pair.source.bootstrap(Listener::Plaintext),
                    Duration::from_secs(30),
                ),
                conn(
                    pair.target.bootstrap(Listener::Plaintext),
                    Duration::from_secs(30),
                ),
                &topic,
                &group,
            )
        };
        for round in 0..3u64 {
            w.produce(&src, 0..3, round * 500..round * 500 + 300)
                .await
                .expect("produce");
            let run = Running::start(mk());
            // Shut down while data still flows in the middle round.
            w.produce(&src, 0..3, round * 500 + 300..round * 500 + 500)
                .await
                .expect("produce");
            if round != 1 {
                run.wait_caught_up(&src, &topic, Duration::from_secs(60), &ctx)
                    .await;
            }
            let took = run.shutdown(Duration::from_secs(30)).await;
            ctx.note(format!("round {round}: shutdown took {took:?}"));
        }
        let run = Running::start(mk());
        run.wait_caught_up(&src, &topic, Duration::from_secs(60), &ctx)
            .await;
        run.shutdown(Duration::from_secs(30)).await;
        let r = check(&src, &tgt, &topic).await;
        assert_eq!(r.source_records, 3 * 1500);
        r.assert_ok(0, &ctx.context());
    });
}

// ---------------------------------------------------------------------------------------------
// #4, #5, #12 Target broker: kill -9 bounce, clean restart, SIGSTOP pause (one dedicated
// single-broker target; the 3-broker RF 3 variant needs multi-broker clusters in the testkit)

#[test]
fn s04_s05_s12_target_broker_bounce_restart_pause() {
    require_kafka!();
    let mut ctx = Ctx::new("s04_s05_s12_target_broker_bounce_restart_pause");
    let pair = shared_pair();
    let target = ferry_testkit::dedicated_cluster(ferry_testkit::KAFKA_4);
    let tproxy = ctx.proxy("target", &target);
    block_on(async {
        let src = client(&pair.source).await;
        let topic = unique_name("f04");
        create_topic(&src, &topic, 3, &[]).await;
        let w = Workload::new(WorkloadSpec::new(ctx.seed), &topic);
        w.produce(&src, 0..3, 0..500).await.expect("produce");
        let run = Running::start(settings(
            conn(
                pair.source.bootstrap(Listener::Plaintext),
                Duration::from_secs(30),
            ),
            conn(tproxy.bootstrap(), Duration::from_secs(5)),
            &topic,
            &unique_name("f04-progress"),
        ));
        run.wait_caught_up(&src, &topic, Duration::from_secs(60), &ctx)
            .await;
        let mut seq = 500u64;
        let mut recoveries = Vec::new();
        for phase in [
            "kill -9 (#4)",
            "SIGTERM restart (#5)",
            "SIGSTOP pause (#12)",
        ] {
            let produce_more = w.produce(&src, 0..3, seq..seq + 300);
            seq += 300;
            match phase {
                "kill -9 (#4)" => {
                    target.kill().expect("kill");
                    ctx.note("target broker killed (SIGKILL)");
                    produce_more.await.expect("produce");
                    sample_budget(&run, Duration::from_secs(3)).await;
                    target.start().expect("start");
                    ctx.note("target broker started");
                }
                "SIGTERM restart (#5)" => {
                    produce_more.await.expect("produce");
                    target.stop().expect("stop");
                    ctx.note("target broker stopped (SIGTERM)");
                    sample_budget(&run, Duration::from_secs(2)).await;
                    target.start().expect("start");
                    ctx.note("target broker started");
                }
                _ => {
                    let pid = target.pid().expect("pid");
                    signal(pid, "-STOP");
                    ctx.note("target broker paused (SIGSTOP), longer than request.timeout 5 s");
                    produce_more.await.expect("produce");
                    sample_budget(&run, Duration::from_secs(8)).await;
                    signal(pid, "-CONT");
                    ctx.note("target broker resumed (SIGCONT)");
                }
            }
            let healed = Instant::now();
            run.wait_caught_up(&src, &topic, RECOVERY + Duration::from_secs(30), &ctx)
                .await;
            recoveries.push((phase, healed.elapsed()));
            ctx.note(format!(
                "{phase}: caught up {:?} after the broker was back",
                healed.elapsed()
            ));
        }
        let bumps = run
            .events()
            .iter()
            .filter(|e| matches!(e, MirrorEvent::ProducerEpochBumped { .. }))
            .count();
        run.shutdown(Duration::from_secs(30)).await;
        let tgt = client(&target).await;
        let r = check(&src, &tgt, &topic).await;
        eprintln!("recoveries {recoveries:?}; epoch bumps {bumps}");
        assert_eq!(r.source_records, 3 * seq);
        r.assert_ok(0, &ctx.context());
    });
}

/// R: samples the engine's in-flight bytes for `d`, asserting the budget.
async fn sample_budget(run: &Running, d: Duration) -> usize {
    let end = Instant::now() + d;
    let mut max = 0;
    while Instant::now() < end {
        let b = run.handle.status().in_flight_bytes;
        max = max.max(b);
        assert!(
            b <= BUDGET + (1 << 20),
            "in-flight bytes {b} above the budget {BUDGET}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    max
}

// ---------------------------------------------------------------------------------------------
// #6 Source leader change (single broker: the leader is bounced with kill -9; the 3-broker
// election variant needs multi-broker clusters)

#[test]
fn s06_source_broker_bounce_resumes_at_the_next_offset() {
    require_kafka!();
    let mut ctx = Ctx::new("s06_source_broker_bounce_resumes_at_the_next_offset");
    let pair = shared_pair();
    let source = ferry_testkit::dedicated_cluster(ferry_testkit::KAFKA_4);
    let sproxy = ctx.proxy("source", &source);
    block_on(async {
        let src = client(&source).await;
        let tgt = client(&pair.target).await;
        let topic = unique_name("f06");
        create_topic(&src, &topic, 2, &[]).await;
        let w = Workload::new(WorkloadSpec::new(ctx.seed), &topic);
        w.produce(&src, 0..2, 0..400).await.expect("produce");
        let run = Running::start(settings(
            conn(sproxy.bootstrap(), Duration::from_secs(5)),
            conn(
                pair.target.bootstrap(Listener::Plaintext),
                Duration::from_secs(30),
            ),
            &topic,
            &unique_name("f06-progress"),
        ));
        run.wait_caught_up(&src, &topic, Duration::from_secs(60), &ctx)
            .await;
        source.kill().expect("kill");
        ctx.note("source broker killed (SIGKILL)");
        tokio::time::sleep(Duration::from_secs(2)).await;
        source.start().expect("start");
        ctx.note("source broker started");
        let src = client(&source).await;
        w.produce(&src, 0..2, 400..800).await.expect("produce");
        let healed = Instant::now();
        run.wait_caught_up(&src, &topic, RECOVERY + Duration::from_secs(30), &ctx)
            .await;
        ctx.note(format!("caught up {:?} after restart", healed.elapsed()));
        run.shutdown(Duration::from_secs(30)).await;
        let r = check(&src, &tgt, &topic).await;
        assert_eq!(r.source_records, 1600);
        r.assert_ok(0, &ctx.context());
    });
}

// ---------------------------------------------------------------------------------------------
// #8 / #10 Blackholes, #9 cuts

fn blackhole(side: &'static str) {
    require_kafka!();
    let mut ctx = Ctx::new(if side == "target" {
        "s08_target_blackhole"
    } else {
        "s10_source_blackhole"
    });
    let (sp, tp) = proxied_pair(&mut ctx);
    let pair = shared_pair();
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        let topic = unique_name(if side == "target" { "f08" } else { "f10" });
        create_topic(&src, &topic, 3, &[]).await;
        let w = Workload::new(WorkloadSpec::new(ctx.seed), &topic);
        w.produce(&src, 0..3, 0..300).await.expect("produce");
        let run = Running::start(settings(
            conn(sp.bootstrap(), Duration::from_secs(3)),
            conn(tp.bootstrap(), Duration::from_secs(3)),
            &topic,
            &unique_name("f08-progress"),
        ));
        run.wait_caught_up(&src, &topic, Duration::from_secs(60), &ctx)
            .await;
        let proxy = if side == "target" { &tp } else { &sp };
        let before = replicated_total(&run.handle);
        proxy.set(Fault::Blackhole);
        w.produce(&src, 0..3, 300..900).await.expect("produce");
        // Longer than the 3 s request timeout.
        let max = sample_budget(&run, Duration::from_secs(7)).await;
        let during = replicated_total(&run.handle);
        let conns = proxy.connections();
        proxy.heal();
        let healed = Instant::now();
        run.wait_caught_up(&src, &topic, RECOVERY, &ctx).await;
        let recovery = healed.elapsed();
        ctx.note(format!(
            "{side} blackhole 7 s: replicated {before} -> {during} while blocked, max in-flight {max} B, {} connections during, recovered in {recovery:?}",
            proxy.connections() - conns
        ));
        if side == "source" {
            assert_eq!(
                before, during,
                "nothing can be replicated while the source is cut off"
            );
        }
        run.shutdown(Duration::from_secs(30)).await;
        let r = check(&src, &tgt, &topic).await;
        assert_eq!(r.source_records, 2700);
        r.assert_ok(0, &ctx.context());
    });
}

#[test]
fn s08_target_blackhole_longer_than_request_timeout() {
    blackhole("target");
}

#[test]
fn s10_source_blackhole() {
    blackhole("source");
}

#[test]
fn s09_connection_reset_mid_frame_both_sides() {
    require_kafka!();
    let mut ctx = Ctx::new("s09_connection_reset_mid_frame_both_sides");
    let (sp, tp) = proxied_pair(&mut ctx);
    let pair = shared_pair();
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        let topic = unique_name("f09");
        create_topic(&src, &topic, 3, &[]).await;
        let mut spec = WorkloadSpec::new(ctx.seed);
        spec.value_size = 100..3000;
        let w = Workload::new(spec, &topic);
        w.produce(&src, 0..3, 0..200).await.expect("produce");
        let run = Running::start(settings(
            conn(sp.bootstrap(), Duration::from_secs(3)),
            conn(tp.bootstrap(), Duration::from_secs(3)),
            &topic,
            &unique_name("f09-progress"),
        ));
        let mut rng = ctx.rng();
        let mut seq = 200u64;
        for i in 0..6 {
            let proxy = if i % 2 == 0 { &sp } else { &tp };
            w.produce(&src, 0..3, seq..seq + 200)
                .await
                .expect("produce");
            seq += 200;
            proxy.set(Fault::CutAfter(rng.random_range(64..60_000)));
            tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
            proxy.heal();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let healed = Instant::now();
        run.wait_caught_up(&src, &topic, RECOVERY, &ctx).await;
        ctx.note(format!(
            "caught up {:?} after the last cut",
            healed.elapsed()
        ));
        run.shutdown(Duration::from_secs(30)).await;
        let r = check(&src, &tgt, &topic).await;
        assert_eq!(r.source_records, 3 * seq);
        r.assert_ok(0, &ctx.context());
    });
}

// ---------------------------------------------------------------------------------------------
// #11 Slow target

#[test]
fn s11_slow_target_bounded_memory() {
    require_kafka!();
    let mut ctx = Ctx::new("s11_slow_target_bounded_memory");
    let (sp, tp) = proxied_pair(&mut ctx);
    let pair = shared_pair();
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        let topic = unique_name("f11");
        create_topic(&src, &topic, 4, &[]).await;
        let mut spec = WorkloadSpec::new(ctx.seed);
        spec.value_size = 1000..4000;
        spec.codecs = vec![ferry_protocol::compression::Codec::None];
        let w = Workload::new(spec, &topic);
        tp.set(Fault::Slow {
            delay: Duration::from_millis(200),
            bytes_per_sec: 64 * 1024,
        });
        let rss_before = rss_kib();
        let s = settings(
            conn(sp.bootstrap(), Duration::from_secs(30)),
            conn(tp.bootstrap(), Duration::from_secs(30)),
            &topic,
            &unique_name("f11-progress"),
        );
        let fetch_max = s.effective_fetch_max_bytes();
        let run = Running::start(s);
        // ~20 MB on the source, far more than the 64 KiB/s target can take in the window.
        w.produce(&src, 0..4, 0..2000).await.expect("produce");
        let max = sample_budget(&run, Duration::from_secs(8)).await;
        let rss_during = rss_kib();
        let lag_during: i64 = run.handle.status().flows[0]
            .partitions
            .values()
            .filter_map(|p| p.lag())
            .sum();
        // Fetching pauses rather than buffers: what ferry read from the source exceeds what it
        // sent to the target by at most the budget plus one fetch response.
        let fetched = sp.bytes().1;
        let sent = tp.bytes().0;
        ctx.note(format!(
            "slow target: max in-flight {max} B (budget {BUDGET}), lag {lag_during} records, \
             fetched {fetched} B from the source vs {sent} B sent to the target, \
             test process RSS {rss_before} -> {rss_during} KiB"
        ));
        assert!(lag_during > 0, "the slow target should build lag");
        let slack = (BUDGET + fetch_max + (1 << 20)) as u64;
        assert!(
            fetched <= sent + slack,
            "ferry buffered: fetched {fetched} B, sent {sent} B (allowed slack {slack} B)\n{}",
            ctx.context()
        );
        // The whole test process (other tests run in parallel): a sanity bound only.
        assert!(
            rss_during < 1536 * 1024,
            "test process RSS {rss_during} KiB under a slow target\n{}",
            ctx.context()
        );
        tp.heal();
        let healed = Instant::now();
        run.wait_caught_up(&src, &topic, Duration::from_secs(90), &ctx)
            .await;
        ctx.note(format!("lag recovered {:?} after heal", healed.elapsed()));
        run.shutdown(Duration::from_secs(30)).await;
        let r = check(&src, &tgt, &topic).await;
        r.assert_ok(0, &ctx.context());
    });
}

// ---------------------------------------------------------------------------------------------
// #13 Corrupt batch

fn corrupt_scenario(ctx: &mut Ctx, mode: Corruption) -> (Report, Vec<MirrorEvent>, u64) {
    let (sp, tp) = proxied_pair(ctx);
    let pair = shared_pair();
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        let topic = unique_name("f13");
        create_topic(&src, &topic, 1, &[]).await;
        let w = Workload::new(WorkloadSpec::new(ctx.seed), &topic);
        w.produce(&src, 0..1, 0..300).await.expect("produce");
        sp.set(Fault::CorruptFetch(mode));
        let run = Running::start(settings(
            conn(sp.bootstrap(), Duration::from_secs(5)),
            conn(tp.bootstrap(), Duration::from_secs(5)),
            &topic,
            &unique_name("f13-progress"),
        ));
        let started = Instant::now();
        let ev = run
            .wait_event("CorruptBatch", Duration::from_secs(30), |e| {
                matches!(e, MirrorEvent::CorruptBatch { .. })
            })
            .await;
        ctx.note(format!(
            "corrupt batch reported after {:?}: {ev:?}",
            started.elapsed()
        ));
        if mode == Corruption::Once {
            // Transient: the spec wants a refetch and full delivery.
            run.wait_caught_up(&src, &topic, Duration::from_secs(30), ctx)
                .await;
        } else {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let fetches = sp.requests(ApiKey::Fetch);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle_fetches = sp.requests(ApiKey::Fetch) - fetches;
        sp.heal();
        let events = run.events();
        let status = run.handle.status();
        run.shutdown(Duration::from_secs(30)).await;
        eprintln!("status after corruption: {:#?}", status.flows[0].partitions);
        (check(&src, &tgt, &topic).await, events, idle_fetches)
    })
}

#[test]
fn s13_corrupt_batch_halts_the_partition_never_skips() {
    require_kafka!();
    let mut ctx = Ctx::new("s13_corrupt_batch_halts_the_partition_never_skips");
    let (r, events, _) = corrupt_scenario(&mut ctx, Corruption::Persistent);
    let stopped = events.iter().any(|e| {
        matches!(
            e,
            MirrorEvent::PartitionStopped {
                reason: StopReason::CorruptBatch,
                ..
            }
        )
    });
    assert!(
        stopped,
        "partition not stopped with CorruptBatch: {events:#?}\n{}",
        ctx.context()
    );
    // Never a skip: what is on the target is a prefix of the source; the rest is missing.
    assert!(
        r.violations
            .iter()
            .all(|v| matches!(v, Violation::Lost { .. })),
        "{r}\n{}",
        ctx.context()
    );
    assert!(r.target_records < r.source_records, "{r}");
    assert_eq!(r.duplicates, 0);
}

#[test]
fn s13_transient_corruption_is_refetched() {
    require_kafka!();
    let mut ctx = Ctx::new("s13_transient_corruption_is_refetched");
    let (r, _, _) = corrupt_scenario(&mut ctx, Corruption::Once);
    r.assert_ok(0, &ctx.context());
}

// ---------------------------------------------------------------------------------------------
// #14 Malformed responses (fake broker; no Kafka needed)

#[test]
fn s14_malformed_responses_end_in_typed_errors() {
    // One thread per misbehaviour: each case is bounded by its 6 s backoff deadline.
    let cases: Vec<_> = Misbehaviour::ALL
        .into_iter()
        // Aborts the process: see s14_huge_array_count_does_not_allocate.
        .filter(|m| *m != Misbehaviour::HugeArrayCount)
        .map(|m| std::thread::spawn(move || malformed_case(m)))
        .collect();
    for case in cases {
        let (m, failed, took, conns, reqs, line) = case.join().expect("no panic in the client");
        eprintln!("{line}");
        assert!(failed, "{m:?} must end in an error within 30 s: {line}");
        assert!(took < Duration::from_secs(20), "{line}");
        // No hot loop: a few attempts within the 6 s backoff deadline, not hundreds.
        assert!(conns <= 30 && reqs <= 60, "retry storm: {line}");
    }
}

fn malformed_case(m: Misbehaviour) -> (Misbehaviour, bool, Duration, u64, u64, String) {
    let fake = FakeBroker::start(m).expect("fake broker");
    let started = Instant::now();
    let result = block_on(async {
        let config = ConnectionConfig::builder()
            .with_bootstrap([fake.bootstrap()])
            .with_connect_timeout(Duration::from_secs(2))
            .with_request_timeout(Duration::from_secs(2))
            .with_backoff(BackoffConfig::default().with_deadline(Duration::from_secs(6)))
            .build()
            .expect("config");
        tokio::time::timeout(Duration::from_secs(30), async {
            let c = ferry_client::Cluster::connect(config).await?;
            c.refresh_metadata(ferry_client::cluster::TopicSelection::All)
                .await
                .map(drop)
        })
        .await
    });
    let took = started.elapsed();
    let line = format!(
        "{m:?}: {took:.1?}, {} connection(s), {} request(s): {}",
        fake.connections(),
        fake.requests(),
        match &result {
            Ok(Ok(())) => "accepted".to_owned(),
            Ok(Err(e)) => format!("{e}"),
            Err(_) => "no answer within 30 s".to_owned(),
        }
    );
    let failed = matches!(result, Ok(Err(_)));
    (m, failed, took, fake.connections(), fake.requests(), line)
}

#[test]
fn s14_huge_array_count_does_not_allocate() {
    let fake = FakeBroker::start(Misbehaviour::HugeArrayCount).expect("fake broker");
    let result = block_on(async {
        let config = ConnectionConfig::builder()
            .with_bootstrap([fake.bootstrap()])
            .with_request_timeout(Duration::from_secs(2))
            .with_backoff(BackoffConfig::default().with_deadline(Duration::from_secs(4)))
            .build()
            .expect("config");
        let c = ferry_client::Cluster::connect(config).await?;
        c.refresh_metadata(ferry_client::cluster::TopicSelection::All)
            .await
            .map(drop)
    });
    assert!(result.is_err());
}

// ---------------------------------------------------------------------------------------------
// #15 Batch or record larger than the target allows

fn oversized(ctx: &mut Ctx) -> (Report, Vec<MirrorEvent>) {
    let (sp, tp) = proxied_pair(ctx);
    let pair = shared_pair();
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        let topic = unique_name("f15");
        create_topic(&src, &topic, 1, &[]).await;
        // The target topic exists already with a small limit.
        create_topic(
            &tgt,
            &target_topic(&topic),
            1,
            &[("max.message.bytes", "20000")],
        )
        .await;
        let mut small = WorkloadSpec::new(ctx.seed);
        small.value_size = 100..200;
        small.batch_records = 20..21;
        small.codecs = vec![ferry_protocol::compression::Codec::None];
        let w = Workload::new(small.clone(), &topic);
        w.produce(&src, 0..1, 0..100).await.expect("produce");
        let mut big = small.clone();
        big.value_size = 60_000..60_001;
        big.batch_records = 1..2;
        // Always 60 kB: an empty value (1 in 25 by default) would fit and prove nothing.
        big.empty_values = false;
        Workload::new(big, &topic)
            .produce(&src, 0..1, 100..101)
            .await
            .expect("produce big");
        w.produce(&src, 0..1, 101..200).await.expect("produce");
        let mut s = settings(
            conn(sp.bootstrap(), Duration::from_secs(5)),
            conn(tp.bootstrap(), Duration::from_secs(5)),
            &topic,
            &unique_name("f15-progress"),
        );
        // Config sync would reset the target's max.message.bytes to the source's.
        s.flows[0].sync_topic_configs = None;
        let run = Running::start(s);
        let started = Instant::now();
        let ev = run
            .wait_event(
                "RecordTooLarge or PartitionStopped",
                Duration::from_secs(60),
                |e| {
                    matches!(
                        e,
                        MirrorEvent::RecordTooLarge { .. } | MirrorEvent::PartitionStopped { .. }
                    )
                },
            )
            .await;
        let took = started.elapsed();
        let produces = tp.requests(ApiKey::Produce);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let later = tp.requests(ApiKey::Produce) - produces;
        ctx.note(format!("oversized record reported after {took:?}: {ev:?}; {later} Produce requests in the next 5 s"));
        assert!(
            later <= 5,
            "retry storm after MESSAGE_TOO_LARGE: {later} Produce requests in 5 s\n{}",
            ctx.context()
        );
        let events = run.events();
        run.shutdown(Duration::from_secs(30)).await;
        (check(&src, &tgt, &topic).await, events)
    })
}

#[test]
fn s15_oversized_record_is_a_typed_stop_without_retry_storm() {
    require_kafka!();
    let mut ctx = Ctx::new("s15_oversized_record_is_a_typed_stop_without_retry_storm");
    let (r, events) = oversized(&mut ctx);
    let stopped = events.iter().any(|e| {
        matches!(
            e,
            MirrorEvent::PartitionStopped {
                reason: StopReason::RecordTooLarge | StopReason::ProduceFailed(_),
                ..
            }
        )
    });
    assert!(
        stopped,
        "partition not stopped: {events:#?}\n{}",
        ctx.context()
    );
    // The records before the oversized one are all there, in order, once.
    assert!(r.target_records >= 100, "{r}");
    assert_eq!(r.duplicates, 0, "{r}");
    assert!(
        !r.violations
            .iter()
            .any(|v| matches!(v, Violation::Fidelity { .. } | Violation::Unknown { .. })),
        "{r}"
    );
}

#[test]
fn s15_oversized_record_is_never_skipped() {
    require_kafka!();
    let mut ctx = Ctx::new("s15_oversized_record_is_never_skipped");
    let (r, events) = oversized(&mut ctx);
    // Never a silent skip: nothing after the oversized record is on the target.
    assert!(
        r.violations
            .iter()
            .all(|v| matches!(v, Violation::Lost { .. })),
        "{r}\nevents {events:#?}\n{}",
        ctx.context()
    );
    assert_eq!(
        r.target_records, 100,
        "the 100 records before the oversized one: {r}"
    );
}

// ---------------------------------------------------------------------------------------------
// #16 Source topic deleted and recreated

#[test]
fn s16_source_topic_recreated_is_detected() {
    require_kafka!();
    let ctx = Ctx::new("s16_source_topic_recreated_is_detected");
    let pair = shared_pair();
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        let topic = unique_name("f16");
        create_topic(&src, &topic, 1, &[]).await;
        let w = Workload::new(WorkloadSpec::new(ctx.seed), &topic);
        w.produce(&src, 0..1, 0..200).await.expect("produce");
        let group = unique_name("f16-progress");
        let mk = || {
            settings(
                conn(
                    pair.source.bootstrap(Listener::Plaintext),
                    Duration::from_secs(10),
                ),
                conn(
                    pair.target.bootstrap(Listener::Plaintext),
                    Duration::from_secs(10),
                ),
                &topic,
                &group,
            )
        };
        let run = Running::start(mk());
        run.wait_caught_up(&src, &topic, Duration::from_secs(60), &ctx)
            .await;
        run.shutdown(Duration::from_secs(30)).await;
        let admin = Admin::new(src.clone());
        for (_, r) in admin
            .delete_topics(&[topic.as_str()])
            .await
            .expect("delete")
        {
            r.expect("deleted");
        }
        ctx.note("source topic deleted");
        // Recreate (the delete may take a moment to settle).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let res = admin
                .create_topics(&[NewTopic::new(&topic, 1, 1)], false)
                .await
                .expect("create");
            if res.values().all(Result::is_ok) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "could not recreate {topic}: {res:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        ctx.note("source topic recreated");
        let src = client(&pair.source).await;
        Workload::new(WorkloadSpec::new(ctx.seed + 1), &topic)
            .produce(&src, 0..1, 0..50)
            .await
            .expect("produce");
        let run = Running::start(mk());
        let ev = run
            .wait_event(
                "TopicRecreated or position loss",
                Duration::from_secs(30),
                |e| {
                    matches!(
                        e,
                        MirrorEvent::TopicRecreated { .. }
                            | MirrorEvent::SourceTruncated { .. }
                            | MirrorEvent::OffsetOutOfRange { .. }
                    )
                },
            )
            .await;
        ctx.note(format!("detected: {ev:?}"));
        run.wait_event("PartitionStopped", Duration::from_secs(30), |e| {
            matches!(e, MirrorEvent::PartitionStopped { .. })
        })
        .await;
        run.shutdown(Duration::from_secs(30)).await;
        // Policy StopPartition: old progress (offset 200) never applied to the new topic, and
        // nothing of the new topic copied: the target still holds exactly the first 200.
        let target = checker::read_log(
            &tgt,
            &target_topic(&topic),
            ferry_client::fetcher::IsolationLevel::ReadCommitted,
            Duration::from_secs(30),
        )
        .await
        .expect("read target");
        let n: usize = target.values().map(Vec::len).sum();
        assert_eq!(n, 200, "{}", ctx.context());
    });
}

// ---------------------------------------------------------------------------------------------
// #18 Partitions added, new matching topic

#[test]
fn s18_partitions_added_and_new_topic() {
    require_kafka!();
    let ctx = Ctx::new("s18_partitions_added_and_new_topic");
    let pair = shared_pair();
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        let prefix = unique_name("f18");
        let a = format!("{prefix}-a");
        let b = format!("{prefix}-b");
        create_topic(&src, &a, 4, &[]).await;
        let w = Workload::new(WorkloadSpec::new(ctx.seed), &a);
        w.produce(&src, 0..4, 0..100).await.expect("produce");
        let run = Running::start(settings(
            conn(
                pair.source.bootstrap(Listener::Plaintext),
                Duration::from_secs(10),
            ),
            conn(
                pair.target.bootstrap(Listener::Plaintext),
                Duration::from_secs(10),
            ),
            &format!("{prefix}-.*"),
            &unique_name("f18-progress"),
        ));
        run.wait_caught_up(&src, &a, Duration::from_secs(60), &ctx)
            .await;
        let changed = Instant::now();
        let res = Admin::new(src.clone())
            .create_partitions(&BTreeMap::from([(a.clone(), 8)]), false)
            .await
            .expect("create partitions");
        res.into_values().for_each(|r| r.expect("partitions added"));
        create_topic(&src, &b, 2, &[]).await;
        let src = client(&pair.source).await;
        w.produce(&src, 0..8, 100..200).await.expect("produce");
        Workload::new(WorkloadSpec::new(ctx.seed), &b)
            .produce(&src, 0..2, 0..100)
            .await
            .expect("produce");
        run.wait_caught_up(&src, &a, Duration::from_secs(30), &ctx)
            .await;
        run.wait_caught_up(&src, &b, Duration::from_secs(30), &ctx)
            .await;
        ctx.note(format!(
            "new partitions and topic replicated {:?} after creation (refresh 2 s)",
            changed.elapsed()
        ));
        run.shutdown(Duration::from_secs(30)).await;
        let r = check(&src, &tgt, &a).await;
        assert_eq!(r.source_records, 4 * 200 + 4 * 100);
        r.assert_ok(0, &ctx.context());
        check(&src, &tgt, &b).await.assert_ok(0, &ctx.context());
    });
}

// ---------------------------------------------------------------------------------------------
// #19 Compacted source

#[test]
fn s19_compacted_source_latest_value_per_key() {
    require_kafka!();
    let ctx = Ctx::new("s19_compacted_source_latest_value_per_key");
    let pair = shared_pair();
    let topic = unique_name("f19");
    // Keyed records with tombstones through the Java producer (null.marker for tombstones).
    let tools = pair.source.tools(Listener::Plaintext);
    tools
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
        .expect("create");
    let mut rng = ctx.rng();
    let lines: Vec<String> = (0..2000)
        .map(|i| {
            let k = rng.random_range(0..40);
            if i % 37 == 0 {
                format!("key{k}\tNULL")
            } else {
                format!("key{k}\tv{i}-{}", "x".repeat(50))
            }
        })
        .collect();
    // Two halves a moment apart, so the first segment rolls (segment.ms 100) and can be cleaned.
    for half in lines.chunks(1000) {
        tools
            .console_produce(
                &topic,
                half,
                &[
                    ("parse.key", "true"),
                    ("key.separator", "\t"),
                    ("null.marker", "NULL"),
                ],
            )
            .expect("produce");
        std::thread::sleep(Duration::from_millis(300));
    }
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        // Give the cleaner a chance (gaps in offsets are what we want to replicate).
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut compacted = false;
        while Instant::now() < deadline {
            let log = checker::read_log(
                &src,
                &topic,
                ferry_client::fetcher::IsolationLevel::ReadCommitted,
                Duration::from_secs(30),
            )
            .await
            .expect("read");
            if log.values().map(Vec::len).sum::<usize>() < 2000 {
                compacted = true;
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        ctx.note(format!("source compacted before replication: {compacted}"));
        let run = Running::start(settings(
            conn(
                pair.source.bootstrap(Listener::Plaintext),
                Duration::from_secs(10),
            ),
            conn(
                pair.target.bootstrap(Listener::Plaintext),
                Duration::from_secs(10),
            ),
            &topic,
            &unique_name("f19-progress"),
        ));
        run.wait_caught_up(&src, &topic, Duration::from_secs(60), &ctx)
            .await;
        run.shutdown(Duration::from_secs(30)).await;
        let s = checker::read_log(
            &src,
            &topic,
            ferry_client::fetcher::IsolationLevel::ReadCommitted,
            Duration::from_secs(30),
        )
        .await
        .expect("read");
        let t = checker::read_log(
            &tgt,
            &target_topic(&topic),
            ferry_client::fetcher::IsolationLevel::ReadCommitted,
            Duration::from_secs(30),
        )
        .await
        .expect("read");
        let latest = |log: &checker::Log| {
            let mut m = BTreeMap::new();
            for r in log.values().flatten() {
                m.insert(r.key.clone(), r.value.clone());
            }
            m
        };
        let (ls, lt) = (latest(&s), latest(&t));
        let count = |log: &checker::Log| log.values().map(Vec::len).sum::<usize>();
        ctx.note(format!(
            "2000 written; source holds {} after compaction, target {}; {} keys, {} tombstones last",
            count(&s),
            count(&t),
            ls.len(),
            ls.values().filter(|v| v.is_none()).count()
        ));
        assert_eq!(ls, lt, "latest value per key differs\n{}", ctx.context());
        assert!(lt.values().any(Option::is_none), "tombstones stay null");
        let desc = pair
            .target
            .tools(Listener::Plaintext)
            .describe_topic(&target_topic(&topic))
            .expect("describe");
        assert_eq!(
            desc.configs.get("cleanup.policy").map(String::as_str),
            Some("compact"),
            "policy synced"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// #20 Transactional source with aborts

#[test]
fn s20_transactional_source_with_aborts() {
    require_kafka!();
    let ctx = Ctx::new("s20_transactional_source_with_aborts");
    let pair = shared_pair();
    let topic = unique_name("f20");
    let tools = pair.source.tools(Listener::Plaintext);
    tools.create_topic(&topic, 2, &[]).expect("create");
    let w = Workload::new(WorkloadSpec::new(ctx.seed), &topic);
    let mut rng = ctx.rng();
    let mut txns = Vec::new();
    let mut committed = 0;
    for t in 0..12u64 {
        let outcome = if rng.random_range(0..3) == 0 {
            TxnOutcome::Abort
        } else {
            TxnOutcome::Commit
        };
        let n = rng.random_range(1..30u64);
        if outcome == TxnOutcome::Commit {
            committed += n;
        }
        txns.push((
            outcome,
            (0..n)
                .map(|i| format!("k{i}\t{}", w.value(0, t * 100 + i)))
                .collect::<Vec<_>>(),
        ));
    }
    tools
        .transactional_produce(&topic, &unique_name("f20-txn"), &txns, &[])
        .expect("transactions");
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        let run = Running::start(settings(
            conn(
                pair.source.bootstrap(Listener::Plaintext),
                Duration::from_secs(10),
            ),
            conn(
                pair.target.bootstrap(Listener::Plaintext),
                Duration::from_secs(10),
            ),
            &topic,
            &unique_name("f20-progress"),
        ));
        run.wait_caught_up(&src, &topic, Duration::from_secs(60), &ctx)
            .await;
        run.shutdown(Duration::from_secs(30)).await;
        let r = check(&src, &tgt, &topic).await;
        assert_eq!(r.source_records, committed, "{r}");
        assert!(r.aborted_records > 0 || txns.iter().all(|(o, _)| *o == TxnOutcome::Commit));
        r.assert_ok(0, &ctx.context());
        assert_eq!(r.target_records, committed, "counts exact");
    });
}

// ---------------------------------------------------------------------------------------------
// #22 SASL failures, #23 TLS misconfiguration

async fn connect_error(
    config: ConnectionConfig,
    within: Duration,
) -> (ferry_client::ClientError, Duration) {
    let started = Instant::now();
    match tokio::time::timeout(within, ferry_client::Cluster::connect(config)).await {
        Ok(Ok(_)) => panic!("connected although it must fail"),
        Ok(Err(e)) => (e, started.elapsed()),
        Err(_) => panic!("no error within {within:?}"),
    }
}

#[test]
fn s22_sasl_wrong_password_is_a_typed_auth_error_without_secrets() {
    require_kafka!();
    let mut ctx = Ctx::new("s22_sasl_wrong_password_is_a_typed_auth_error_without_secrets");
    let pair = shared_pair();
    // The proxy relays SASL_PLAINTEXT too (no TLS), so it can count connection attempts.
    let proxy = Arc::new(
        FaultProxy::start("sasl", &pair.source.bootstrap(Listener::SaslPlaintext)).expect("proxy"),
    );
    ctx.proxies.push(Arc::clone(&proxy));
    let secret = "not-the-password-5e3f";
    block_on(async {
        for mech in [
            SaslMechanism::Plain,
            SaslMechanism::ScramSha256,
            SaslMechanism::ScramSha512,
        ] {
            let admin = pair.source.user("admin");
            let ok = ConnectionConfig::builder()
                .with_bootstrap([proxy.bootstrap()])
                .with_security_protocol(SecurityProtocol::SaslPlaintext)
                .with_sasl(
                    mech,
                    admin.username.clone(),
                    Secret::new(admin.password.clone()),
                )
                .build()
                .expect("config");
            ferry_client::Cluster::connect(ok)
                .await
                .unwrap_or_else(|e| panic!("{mech:?} happy path: {e}"));
            let before = proxy.connections();
            let bad = ConnectionConfig::builder()
                .with_bootstrap([proxy.bootstrap()])
                .with_security_protocol(SecurityProtocol::SaslPlaintext)
                .with_sasl(mech, "admin", Secret::new(secret))
                .with_connect_timeout(Duration::from_secs(5))
                .with_backoff(BackoffConfig::default().with_deadline(Duration::from_secs(10)))
                .build()
                .expect("config");
            let shown = format!("{bad:?}");
            assert!(!shown.contains(secret), "password in Debug of the config");
            let (e, took) = connect_error(bad, Duration::from_secs(20)).await;
            let attempts = proxy.connections() - before;
            ctx.note(format!(
                "{mech:?} wrong password: {e} after {took:?}, {attempts} connection(s)"
            ));
            assert!(e.is_auth(), "{mech:?}: not an auth error: {e:?}");
            assert!(
                !e.is_retriable(),
                "{mech:?}: auth failure must not be retried: {e:?}"
            );
            assert!(
                attempts <= 3,
                "{mech:?}: {attempts} connections for a wrong password"
            );
            assert!(
                !format!("{e} {e:?}").contains(secret),
                "password in the error"
            );
            assert!(took < Duration::from_secs(6), "{mech:?}: {took:?}");
        }
    });
}

#[test]
fn s23_tls_misconfiguration_gives_distinct_errors() {
    require_kafka!();
    let pair = shared_pair();
    let tls = pair.source.tls();
    let mtls = |ca: &std::path::Path| TlsSettings {
        ca_file: Some(ca.to_owned()),
        client_cert_file: Some(tls.client_cert.clone()),
        client_key_file: Some(tls.client_key.clone()),
        ..TlsSettings::default()
    };
    block_on(async {
        let base = |bootstrap: String| {
            ConnectionConfig::builder()
                .with_bootstrap([bootstrap])
                .with_connect_timeout(Duration::from_secs(3))
                .with_request_timeout(Duration::from_secs(3))
                .with_backoff(BackoffConfig::default().with_deadline(Duration::from_secs(5)))
        };
        // Happy path first, so failures below are the misconfiguration's.
        let ok = base(pair.source.bootstrap(Listener::Ssl))
            .with_security_protocol(SecurityProtocol::Ssl)
            .with_tls(mtls(&tls.ca))
            .build()
            .expect("config");
        ferry_client::Cluster::connect(ok)
            .await
            .expect("TLS happy path");
        let cases = [
            (
                "unknown CA",
                base(pair.source.bootstrap(Listener::Ssl))
                    .with_security_protocol(SecurityProtocol::Ssl)
                    .with_tls(mtls(&tls.other_ca))
                    .build()
                    .expect("config"),
            ),
            (
                "wrong name",
                base(pair.source.bootstrap(Listener::Ssl))
                    .with_security_protocol(SecurityProtocol::Ssl)
                    .with_tls(TlsSettings {
                        server_name: Some("not-the-broker.example".to_owned()),
                        ..mtls(&tls.ca)
                    })
                    .build()
                    .expect("config"),
            ),
            (
                "TLS to a plaintext port",
                base(pair.source.bootstrap(Listener::Plaintext))
                    .with_security_protocol(SecurityProtocol::Ssl)
                    .with_tls(mtls(&tls.ca))
                    .build()
                    .expect("config"),
            ),
            (
                "plaintext to a TLS port",
                base(pair.source.bootstrap(Listener::Ssl))
                    .build()
                    .expect("config"),
            ),
        ];
        let mut seen = Vec::new();
        for (name, config) in cases {
            let (e, took) = connect_error(config, Duration::from_secs(20)).await;
            eprintln!("{name}: {took:?}: {e}");
            assert!(took < Duration::from_secs(12), "{name}: {took:?}");
            assert!(
                !e.is_retriable() || name.starts_with("plaintext") || name.starts_with("TLS to"),
                "{name}: {e:?}"
            );
            seen.push((name, e.to_string()));
        }
        let text = |n: &str| {
            seen.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_lowercase())
                .unwrap_or_default()
        };
        assert!(
            text("unknown CA").contains("issuer") || text("unknown CA").contains("unknown"),
            "{seen:?}"
        );
        assert!(text("wrong name").contains("name"), "{seen:?}");
        let distinct: std::collections::BTreeSet<&String> = seen.iter().map(|(_, e)| e).collect();
        assert_eq!(
            distinct.len(),
            seen.len(),
            "errors must be distinct: {seen:#?}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// #24 Config validation (no Kafka needed)

#[test]
fn s24_invalid_configs_fail_in_build_naming_the_key() {
    use ferry::config::ConfigError;
    let base = || {
        ferry::Mirror::builder()
            .with_cluster("A", "127.0.0.1:1")
            .with_cluster("B", "127.0.0.1:2")
            .with_flow("A", "B")
    };
    let started = Instant::now();
    // Typo: unknown key with a suggestion.
    match base().with_config("A->B.topicz", "x").build() {
        Err(ConfigError::UnknownKey {
            key, suggestion, ..
        }) => {
            assert_eq!(key, "A->B.topicz");
            assert_eq!(suggestion.as_deref(), Some("A->B.topics"));
        }
        other => panic!("unknown key: {other:?}"),
    }
    let cases: Vec<(&str, Result<ferry::Mirror, ConfigError>, &str)> = vec![
        (
            "bad regex",
            base().with_config("A->B.topics", "orders(").build(),
            "topics",
        ),
        (
            "empty bootstrap",
            base().with_config("A.bootstrap.servers", "").build(),
            "bootstrap",
        ),
        (
            "bad bootstrap",
            base().with_config("A.bootstrap.servers", "nohost").build(),
            "bootstrap",
        ),
        (
            "flow into unknown cluster",
            base().with_flow("A", "C").build(),
            "C",
        ),
        (
            "budget too small",
            base().with_in_flight_bytes(1000).build(),
            "in-flight",
        ),
        (
            "identity policy with source equal to target",
            ferry::Mirror::builder()
                .with_cluster("A", "127.0.0.1:1")
                .with_flow("A", "A")
                .with_config(
                    "replication.policy.class",
                    "org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
                )
                .build(),
            "A",
        ),
        (
            "identity cycle A->B->A",
            base()
                .with_flow("B", "A")
                .with_config(
                    "replication.policy.class",
                    "org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
                )
                .build(),
            "",
        ),
    ];
    let mut failures = Vec::new();
    for (name, result, needle) in cases {
        match result {
            Err(e) => {
                let text = e.to_string();
                eprintln!("{name}: {text}");
                if !text.contains(needle) {
                    failures.push(format!("{name}: error does not name {needle:?}: {text}"));
                }
            }
            Ok(_) => failures.push(format!("{name}: accepted")),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "validation does no I/O"
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---------------------------------------------------------------------------------------------
// #25 Start position and empty partitions

#[test]
fn s25_start_latest_and_empty_partition() {
    require_kafka!();
    let ctx = Ctx::new("s25_start_latest_and_empty_partition");
    let pair = shared_pair();
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        let topic = unique_name("f25");
        create_topic(&src, &topic, 3, &[]).await;
        let w = Workload::new(WorkloadSpec::new(ctx.seed), &topic);
        // Partition 2 stays empty.
        w.produce(&src, 0..2, 0..100).await.expect("produce");
        let mut s = settings(
            conn(
                pair.source.bootstrap(Listener::Plaintext),
                Duration::from_secs(10),
            ),
            conn(
                pair.target.bootstrap(Listener::Plaintext),
                Duration::from_secs(10),
            ),
            &topic,
            &unique_name("f25-progress"),
        );
        s.flows[0].start = StartPosition::Latest;
        let run = Running::start(s);
        // Readiness: every partition started (the sentinel of MM2's test).
        let deadline = Instant::now() + Duration::from_secs(30);
        while run
            .events()
            .iter()
            .filter(|e| matches!(e, MirrorEvent::PartitionStarted { .. }))
            .count()
            < 3
        {
            assert!(
                Instant::now() < deadline,
                "partitions not started: {:#?}",
                run.events()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        w.produce(&src, 0..2, 100..150).await.expect("produce");
        run.wait_caught_up(&src, &topic, Duration::from_secs(30), &ctx)
            .await;
        let status = run.handle.status();
        run.shutdown(Duration::from_secs(30)).await;
        let empty = status.flows[0]
            .partitions
            .iter()
            .find(|(tp, _)| tp.topic == topic && tp.partition == 2)
            .map(|(_, s)| s.clone())
            .expect("partition 2 known");
        assert_eq!(
            empty.replicated, 0,
            "the empty partition's position is 0: {empty:?}"
        );
        assert_eq!(empty.state, PartitionState::Running);
        let t = checker::read_log(
            &tgt,
            &target_topic(&topic),
            ferry_client::fetcher::IsolationLevel::ReadCommitted,
            Duration::from_secs(30),
        )
        .await
        .expect("read target");
        let s = checker::read_log(
            &src,
            &topic,
            ferry_client::fetcher::IsolationLevel::ReadCommitted,
            Duration::from_secs(30),
        )
        .await
        .expect("read source");
        for p in 0..2 {
            let want: Vec<_> = s[&p][100..]
                .iter()
                .map(|r| (r.key.clone(), r.value.clone(), r.headers.clone()))
                .collect();
            let got: Vec<_> = t
                .get(&p)
                .map(|v| {
                    v.iter()
                        .map(|r| (r.key.clone(), r.value.clone(), r.headers.clone()))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(
                got.len(),
                50,
                "partition {p}: exactly the records after the start point\n{}",
                ctx.context()
            );
            assert!(
                got == want,
                "partition {p}: records differ\n{}",
                ctx.context()
            );
        }
        assert!(t.get(&2).is_none_or(Vec::is_empty));
    });
}

// ---------------------------------------------------------------------------------------------
// Soak: randomised fault schedule (scripts/soak)

#[test]
#[ignore = "soak: run with scripts/soak [--seed N] [--minutes M]"]
fn soak_random_faults() {
    require_kafka!();
    let mut ctx = Ctx::new("soak_random_faults");
    let minutes: u64 = std::env::var("FERRY_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(5);
    let (sp, tp) = proxied_pair(&mut ctx);
    let pair = shared_pair();
    block_on(async {
        let src = client(&pair.source).await;
        let tgt = client(&pair.target).await;
        let topic = unique_name("soak");
        create_topic(&src, &topic, 6, &[]).await;
        let w = Workload::new(WorkloadSpec::new(ctx.seed), &topic);
        let group = unique_name("soak-progress");
        let mk = || {
            settings(
                conn(sp.bootstrap(), Duration::from_secs(3)),
                conn(tp.bootstrap(), Duration::from_secs(3)),
                &topic,
                &group,
            )
        };
        let mut rng = ctx.rng();
        let mut run = Running::start(mk());
        let mut bound = 0i64;
        let mut seq = 0u64;
        let end = Instant::now() + Duration::from_secs(minutes * 60);
        let mut steps = 0u32;
        while Instant::now() < end {
            steps += 1;
            let n = rng.random_range(50..400);
            w.produce(&src, 0..6, seq..seq + n).await.expect("produce");
            seq += n;
            let proxy = if rng.random_bool(0.5) { &sp } else { &tp };
            let fault = match rng.random_range(0..7) {
                0 => Fault::Blackhole,
                1 => Fault::Reset,
                2 => Fault::Delay(Duration::from_millis(rng.random_range(10..500))),
                3 => Fault::Bandwidth(rng.random_range(16_000..1_000_000)),
                4 => Fault::CutAfter(rng.random_range(10..100_000)),
                5 => {
                    let b = run.crash().await;
                    bound += b;
                    ctx.note(format!("engine crashed (duplicate bound +{b})"));
                    run = Running::start(mk());
                    Fault::Pass
                }
                _ => Fault::Pass,
            };
            proxy.set(fault);
            let hold = Duration::from_millis(rng.random_range(200..6000));
            sample_budget(&run, hold).await;
            proxy.heal();
        }
        let healed = Instant::now();
        run.wait_caught_up(&src, &topic, Duration::from_secs(120), &ctx)
            .await;
        ctx.note(format!(
            "{steps} steps; caught up {:?} after the last fault",
            healed.elapsed()
        ));
        run.shutdown(Duration::from_secs(30)).await;
        let r = check(&src, &tgt, &topic).await;
        eprintln!(
            "soak: {steps} steps, {} records, duplicates {} (bound {bound})",
            r.source_records, r.duplicates
        );
        r.assert_ok(u64::try_from(bound).unwrap_or(0), &ctx.context());
    });
}
