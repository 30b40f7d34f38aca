//! Operator experience (issue #8) through the `ferry` program against the shared cluster pair:
//! `status` before a run reports the backlog and "not ready"; `run --metrics-addr` replicates
//! it while `/metrics` and `/status` are scraped (record counts, lag, routes, latencies);
//! `status` after the drain says "ready for cutover"; `verify` passes on the clean replica and
//! then fails, naming the place, after a record is produced directly to the target, after a
//! target topic config is changed, and after a source topic ACL the target lacks is added.
//!
//! Gated by `FERRY_IT=1` / `CI=true` (`ferry_testkit::require_kafka!`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ferry_testkit::{Listener, require_kafka, shared_pair, unique_name};

use crate::common::{FERRY, sigterm, spawn_run_logged, wait_exit, write_config};

fn ferry(args: &[&str]) -> Output {
    Command::new(FERRY)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run ferry")
}

fn out_text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `GET http://addr/path` → body, `None` if the server is not answering yet.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    Some(body.to_owned())
}

/// Sum of the samples of `name` whose labels include every `filters` pair.
fn metric_sum(text: &str, name: &str, filters: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue; // blank separator lines
        };
        let (n, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l),
            None => (series, ""),
        };
        if n != name
            || !filters
                .iter()
                .all(|(k, v)| labels.contains(&format!("{k}=\"{v}\"")))
        {
            continue;
        }
        *found.get_or_insert(0.0) += value.parse::<f64>().ok()?;
    }
    found
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", out_text(out)))
}

#[test]
fn metrics_status_verdict_and_verify() {
    require_kafka!();
    let started = Instant::now();
    let pair = shared_pair();
    let topic = unique_name("op");
    let src = pair.source.tools(Listener::Plaintext);
    let tgt = pair.target.tools(Listener::Plaintext);
    src.create_topic(&topic, 2, &[]).unwrap();
    let lines: Vec<String> = (0..500).map(|i| format!("k{i}\tvalue-{i}")).collect();
    src.console_produce(
        &topic,
        &lines,
        &[
            ("parse.key", "true"),
            ("key.separator", "\t"),
            ("compression.type", "lz4"),
        ],
    )
    .unwrap();

    let (a, b) = (unique_name("s"), unique_name("t"));
    let target_topic = format!("{a}.{topic}");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "clusters = {a}, {b}\n\
             {a}.bootstrap.servers = {}\n{b}.bootstrap.servers = {}\n\
             {a}->{b}.enabled = true\ntopics = {topic}\n\
             heartbeats.replication.enabled = false\nemit.heartbeats.enabled = false\n\
             replication.factor = 1\noffset-syncs.topic.replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\nrefresh.topics.interval.seconds = 1\n",
            pair.source.bootstrap(Listener::Plaintext),
            pair.target.bootstrap(Listener::Plaintext),
        ),
    );
    let cfg = config.to_str().unwrap();

    // Before any run: the whole backlog is lag, and the verdict says not ready (exit 3).
    let out = ferry(&["status", cfg, "--json", "--exit-code"]);
    assert_eq!(out.status.code(), Some(3), "{}", out_text(&out));
    let st = json(&out);
    assert_eq!(st["ready_for_cutover"], false, "{st}");
    assert_eq!(st["flows"][0]["lag_records"], 500, "{st}");
    assert_eq!(st["flows"][0]["partitions"][0]["state"], "not_started");
    assert!(
        st["verdict"]
            .as_str()
            .unwrap()
            .starts_with("not ready for cutover: 2 partition(s) not caught up (500 records behind"),
        "{st}"
    );

    // Run with the metrics endpoint; wait for /status to say ready.
    let addr = free_addr();
    let log = dir.path().join("run.log");
    let mut child = spawn_run_logged(
        Path::new(cfg),
        &["--metrics-addr", &addr, "--no-progress"],
        &log,
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(body) = http_get(&addr, "/status") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if v["ready_for_cutover"] == true {
                break v;
            }
        }
        if let Some(code) = child.try_wait().unwrap() {
            panic!(
                "ferry exited with {code:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "not ready within 90 s\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(status["verdict"], "ready for cutover");
    let flow = &status["flows"][0];
    assert_eq!(flow["records"], 500, "{status}");
    for p in flow["partitions"].as_array().unwrap() {
        assert_eq!(p["lag_records"], 0, "{status}");
        assert_eq!(p["lag_seconds"], 0.0, "{status}");
        assert_eq!(p["state"], "running", "{status}");
        assert_eq!(p["target_topic"], target_topic.as_str());
    }

    // /metrics: MM2's names with its labels, and ferry's additions, agreeing with /status.
    let metrics = http_get(&addr, "/metrics").expect("metrics endpoint");
    let part = |p: &'static str| -> [(&'static str, String); 4] {
        [
            ("source", a.clone()),
            ("target", b.clone()),
            ("topic", target_topic.clone()),
            ("partition", p.to_owned()),
        ]
    };
    let sum = |name: &str, f: &[(&str, String)]| {
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        metric_sum(&metrics, name, &f)
    };
    let records: f64 = ["0", "1"]
        .iter()
        .map(|p| {
            sum(
                "kafka_connect_mirror_source_connector_record_count",
                &part(p),
            )
            .unwrap_or_else(|| panic!("record_count for partition {p}\n{metrics}"))
        })
        .sum();
    assert!((records - 500.0).abs() < f64::EPSILON, "{metrics}");
    for p in ["0", "1"] {
        assert_eq!(
            sum("ferry_replication_lag_records", &part(p)),
            Some(0.0),
            "{metrics}"
        );
        assert_eq!(
            sum("ferry_replication_lag_seconds", &part(p)),
            Some(0.0),
            "{metrics}"
        );
    }
    let flow_labels = [("source", a.clone()), ("target", b.clone())];
    let mut forwarded = 0.0;
    for (route, n) in flow["batches"].as_object().unwrap() {
        let mut f = flow_labels.to_vec();
        f.push(("route", route.clone()));
        let metric = sum("ferry_batches_total", &f).unwrap_or(0.0);
        #[allow(clippy::cast_precision_loss)]
        let expected = n.as_u64().unwrap() as f64;
        assert!(
            (metric - expected).abs() < f64::EPSILON,
            "route {route}: metric {metric}, status {n}\n{metrics}"
        );
        if route != "dropped" {
            forwarded += metric;
        }
    }
    assert!(
        forwarded >= 2.0,
        "a batch per partition at least\n{metrics}"
    );
    // One replication-latency and one produce-latency sample per acknowledged batch.
    let acked: f64 = ["0", "1"]
        .iter()
        .filter_map(|p| {
            sum(
                "kafka_connect_mirror_source_connector_replication_latency_ms_count",
                &part(p),
            )
        })
        .sum();
    assert!(
        (acked - forwarded).abs() < f64::EPSILON,
        "{acked} vs {forwarded}\n{metrics}"
    );
    assert_eq!(
        sum("ferry_produce_latency_seconds_count", &flow_labels),
        Some(forwarded),
        "{metrics}"
    );
    assert!(
        sum("ferry_fetch_latency_seconds_count", &flow_labels).unwrap_or(0.0) >= 1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("# HELP kafka_connect_mirror_source_connector_record_count"),
        "{metrics}"
    );

    sigterm(&child);
    let (code, _) = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(
        code,
        0,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // After the drain, from stored progress: ready (exit 0 even with --exit-code).
    let out = ferry(&["status", cfg, "--exit-code"]);
    assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    assert!(
        stdout(&out).ends_with("ready for cutover\n"),
        "{}",
        out_text(&out)
    );

    // verify: clean.
    let out = ferry(&["verify", cfg]);
    assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    assert!(
        stdout(&out).contains("verify: clean (2 partitions, 500 records)"),
        "{}",
        out_text(&out)
    );

    // A record produced directly to the target: named by topic, partition and offsets.
    let ends_before = tgt.end_offsets(&target_topic).unwrap();
    tgt.console_produce(&target_topic, &["intruder"], &[])
        .unwrap();
    let ends_after = tgt.end_offsets(&target_topic).unwrap();
    let (p, end) = ends_after
        .iter()
        .find(|(p, e)| ends_before.get(p) != Some(e))
        .map(|(p, e)| (*p, *e))
        .expect("the intruder landed somewhere");
    let out = ferry(&["verify", cfg]);
    assert_eq!(out.status.code(), Some(1), "{}", out_text(&out));
    let want = format!(
        "difference: {a}->{b}: {target_topic}-{p}: 1 record(s) on the target after the replicated range, offsets {}..{end}",
        end - 1
    );
    assert!(
        stdout(&out).contains(&want),
        "want {want}\n{}",
        out_text(&out)
    );

    // A target config changed by hand.
    tgt.alter_topic_config(&target_topic, &[("retention.ms", "4321000")])
        .unwrap();
    let out = ferry(&["verify", cfg]);
    assert_eq!(out.status.code(), Some(1), "{}", out_text(&out));
    let want = format!("difference: {a}->{b}: config {target_topic} retention.ms");
    assert!(
        stdout(&out).contains(&want),
        "want {want}\n{}",
        out_text(&out)
    );

    // A source topic ACL the target lacks.
    src.acls(&[
        "--add",
        "--allow-principal",
        "User:ferry-op-reader",
        "--operation",
        "Read",
        "--topic",
        &topic,
    ])
    .unwrap();
    let out = ferry(&["verify", cfg, "--json"]);
    let _ = src.acls(&[
        "--remove",
        "--force",
        "--allow-principal",
        "User:ferry-op-reader",
        "--operation",
        "Read",
        "--topic",
        &topic,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", out_text(&out));
    let v = json(&out);
    assert_eq!(v["clean"], false);
    let diffs: Vec<&str> = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d.as_str())
        .collect();
    assert!(
        diffs.iter().any(|d| d.contains("ACL missing on the target")
            && d.contains(&target_topic)
            && d.contains("User:ferry-op-reader")),
        "{diffs:#?}"
    );
    assert_eq!(
        v["partitions"][0]["source_records"].as_u64().unwrap()
            + v["partitions"][1]["source_records"].as_u64().unwrap(),
        500
    );
    eprintln!("operator test took {:?}", started.elapsed());
}
