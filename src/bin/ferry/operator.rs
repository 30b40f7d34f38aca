//! Operator commands of the `ferry` binary: the metrics and status endpoint of `run`, its live
//! view, `status` and `verify`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferry::mirror::status::StatusReport;
use ferry::mirror::verify::{self, VerifyOptions, VerifyProgress};
use ferry::{Mirror, MirrorOptions};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tracing_subscriber::fmt::MakeWriter;

/// Log output: stderr, or through the live view so log lines do not tear its bars.
#[derive(Debug, Clone)]
pub(crate) struct LogWriter {
    live: Option<MultiProgress>,
}

impl LogWriter {
    pub(crate) fn new(live: Option<MultiProgress>) -> Self {
        Self { live }
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.live {
            // tracing's fmt layer writes one whole event per call.
            Some(multi) => multi.suspend(|| io::stderr().write(buf)),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// The `/metrics` (Prometheus text) and `/status` (JSON) endpoint of `ferry run`.
#[derive(Debug)]
pub(crate) struct MetricsServer {
    listener: TcpListener,
    handle: PrometheusHandle,
}

impl MetricsServer {
    /// Installs the Prometheus recorder and binds `addr`.
    pub(crate) async fn bind(addr: &str) -> Result<Self, ()> {
        let handle = PrometheusBuilder::new().install_recorder().map_err(|e| {
            eprintln!("error: cannot install the metrics recorder: {e}");
        })?;
        ferry::mirror::metrics::describe();
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            eprintln!("error: --metrics-addr {addr}: {e}");
        })?;
        if let Ok(local) = listener.local_addr() {
            tracing::info!(addr = %local, "serving /metrics and /status");
        }
        Ok(Self { listener, handle })
    }

    /// Answers requests one at a time until the future is dropped.
    pub(crate) async fn serve(&self, mirror: &Mirror) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let answer = self.answer(stream, mirror);
            if tokio::time::timeout(Duration::from_secs(5), answer)
                .await
                .is_err()
            {
                tracing::debug!("metrics client too slow; dropped");
            }
        }
    }

    async fn answer(&self, mut stream: TcpStream, mirror: &Mirror) {
        let Some(path) = read_request_path(&mut stream).await else {
            return;
        };
        let (status, content_type, body) = match path.as_str() {
            "/metrics" => {
                ferry::mirror::metrics::record_in_flight(mirror.status().in_flight_bytes);
                self.handle.run_upkeep();
                (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.handle.render(),
                )
            }
            "/status" => (
                "200 OK",
                "application/json",
                mirror.status_report().to_json().to_string(),
            ),
            _ => (
                "404 Not Found",
                "text/plain; charset=utf-8",
                "ferry: try /metrics or /status\n".to_owned(),
            ),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(body.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

/// The path of a `GET` request (request line and headers read, up to 64 lines).
async fn read_request_path(stream: &mut TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream).take(16 * 1024);
    let mut first = String::new();
    reader.read_line(&mut first).await.ok()?;
    // Consume the headers so the client sees its request read.
    for _ in 0..64 {
        let mut line = String::new();
        let n = reader.read_line(&mut line).await.ok()?;
        if n == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = first.split_whitespace();
    (parts.next()? == "GET").then_some(())?;
    let path = parts.next()?;
    Some(path.split('?').next().unwrap_or(path).to_owned())
}

/// `GET http://addr/path`, the body.
async fn http_get(addr: &str, path: &str) -> Result<String, String> {
    let work = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        stream
            .read_to_end(&mut out)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| "malformed HTTP response".to_owned())?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(head.lines().next().unwrap_or_default().to_owned());
        }
        Ok(body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .map_err(|_| "timed out".to_owned())?
}

fn load(config: &PathBuf, clusters: Vec<String>) -> Result<Mirror, ()> {
    let mut options = MirrorOptions::new();
    if !clusters.is_empty() {
        options = options.with_target_clusters(clusters);
    }
    Mirror::load(config, &options).map_err(|e| {
        eprintln!("error: {}: {e}", config.display());
    })
}

/// `ferry status`; `Ok(ready)`.
pub(crate) async fn status(
    config: PathBuf,
    json: bool,
    metrics_addr: Option<String>,
    clusters: Vec<String>,
    timeout: Duration,
) -> Result<bool, ()> {
    let report = match metrics_addr {
        Some(addr) => {
            let body = http_get(&addr, "/status").await.map_err(|e| {
                eprintln!("error: GET http://{addr}/status: {e}");
            })?;
            let value: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
                eprintln!("error: http://{addr}/status is not status JSON: {e}");
            })?;
            StatusReport::from_json(&value).ok_or_else(|| {
                eprintln!("error: http://{addr}/status is not status JSON");
            })?
        }
        None => {
            let mirror = load(&config, clusters)?;
            StatusReport::collect(mirror.settings(), timeout)
                .await
                .map_err(|e| eprintln!("error: {e}"))?
        }
    };
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(report.ready_for_cutover())
}

/// `ferry verify`: exit 1 on any difference.
pub(crate) async fn verify(
    config: PathBuf,
    json: bool,
    clusters: Vec<String>,
    live: Option<MultiProgress>,
) -> Result<(), ()> {
    let mirror = load(&config, clusters)?;
    let bar = live.map(|multi| {
        let bar = multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("verify {msg} [{bar:30}] {pos}/{len} records")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let mut progress = |p: &VerifyProgress| match &bar {
        Some(bar) => {
            bar.set_length(p.total);
            bar.set_position(p.done);
            bar.set_message(p.partition.clone());
        }
        None => eprintln!("verify: {}: {} records compared", p.partition, p.done),
    };
    let report = verify::verify(mirror.settings(), &VerifyOptions::default(), &mut progress)
        .await
        .map_err(|e| eprintln!("error: {e}"))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if json {
        let parts: Vec<serde_json::Value> = report
            .partitions
            .iter()
            .map(|p| {
                serde_json::json!({
                    "flow": p.flow,
                    "topic": p.topic,
                    "partition": p.partition,
                    "target_topic": p.target_topic,
                    "source_range": [p.source_range.0, p.source_range.1],
                    "target_range": [p.target_range.0, p.target_range.1],
                    "source_records": p.source_records,
                    "target_records": p.target_records,
                    "source_digest": p.source_digest,
                    "target_digest": p.target_digest,
                })
            })
            .collect();
        let diffs: Vec<String> = report.differences.iter().map(ToString::to_string).collect();
        println!(
            "{}",
            serde_json::json!({
                "clean": report.is_clean(),
                "partitions": parts,
                "differences": diffs,
                "notes": report.notes,
            })
        );
    } else {
        for p in &report.partitions {
            println!(
                "{}: {}-{} -> {}-{}: {} / {} records, digest {} / {}",
                p.flow,
                p.topic,
                p.partition,
                p.target_topic,
                p.partition,
                p.source_records,
                p.target_records,
                p.source_digest,
                p.target_digest
            );
        }
        for n in &report.notes {
            println!("note: {n}");
        }
        for d in &report.differences {
            println!("difference: {d}");
        }
        let records: u64 = report.partitions.iter().map(|p| p.source_records).sum();
        if report.is_clean() {
            println!(
                "verify: clean ({} partitions, {records} records)",
                report.partitions.len()
            );
        } else {
            println!("verify: {} difference(s)", report.differences.len());
        }
    }
    if report.is_clean() { Ok(()) } else { Err(()) }
}

struct FlowBar {
    bar: ProgressBar,
    records: u64,
    bytes: u64,
    at: Instant,
    rate: f64,
    byte_rate: f64,
}

/// The live view of `ferry run` on a terminal: one bar per flow, refreshed every second.
pub(crate) async fn live_view(mirror: &Mirror, multi: &MultiProgress) {
    let style = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut bars: BTreeMap<String, FlowBar> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for flow in mirror.status().flows {
            let lag: i64 = flow.partitions.values().filter_map(|p| p.lag()).sum();
            let lag = u64::try_from(lag).unwrap_or(0);
            let c = flow.counters;
            let entry = bars.entry(flow.flow.clone()).or_insert_with(|| {
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(style.clone());
                bar.set_prefix(flow.flow.clone());
                FlowBar {
                    bar,
                    records: c.records,
                    bytes: c.bytes,
                    at: Instant::now(),
                    rate: 0.0,
                    byte_rate: 0.0,
                }
            });
            let dt = entry.at.elapsed().as_secs_f64().max(0.001);
            #[allow(clippy::cast_precision_loss)]
            let (now_rate, now_bytes) = (
                c.records.saturating_sub(entry.records) as f64 / dt,
                c.bytes.saturating_sub(entry.bytes) as f64 / dt,
            );
            // Smoothed over a few seconds.
            entry.rate = 0.7 * entry.rate + 0.3 * now_rate;
            entry.byte_rate = 0.7 * entry.byte_rate + 0.3 * now_bytes;
            entry.records = c.records;
            entry.bytes = c.bytes;
            entry.at = Instant::now();
            #[allow(clippy::cast_precision_loss)]
            let eta = if lag == 0 {
                "caught up".to_owned()
            } else if entry.rate < 1.0 {
                "ETA -".to_owned()
            } else {
                format!("ETA {}s", (lag as f64 / entry.rate).ceil())
            };
            entry.bar.set_length(c.records + lag);
            entry.bar.set_position(c.records);
            entry.bar.set_message(format!(
                "{:.0} rec/s {:.1} MiB/s lag {lag} {eta}",
                entry.rate,
                entry.byte_rate / (1024.0 * 1024.0)
            ));
        }
    }
}
