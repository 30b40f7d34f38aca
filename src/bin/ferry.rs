//! The `ferry` command-line program.
//!
//! ```text
//! ferry run <mm2.properties> [--clusters A B ...]   replicate until SIGTERM / SIGINT
//! ferry check <mm2.properties> [--strict] [--offline]
//! ferry status <mm2.properties> [--json] [--metrics-addr HOST:PORT] [--exit-code]
//! ferry verify <mm2.properties> [--json]
//! ```
//!
//! `run` is a drop-in for `connect-mirror-maker.sh mm2.properties [--clusters ...]`: the same
//! file, and `--clusters` keeps the flows whose target is listed. On SIGTERM or SIGINT it stops
//! fetching, waits for in-flight batches, stores progress and exits 0 (a second signal exits
//! at once with 1). `check` validates the file, prints its notices, the resolved flows and,
//! unless `--offline`, which live source topics each flow selects.
//!
//! `run --metrics-addr HOST:PORT` serves Prometheus text at `/metrics` and the status JSON at
//! `/status` (`ferry::mirror::metrics` documents the names). On a terminal `run` shows a live
//! view per flow (records/s, MiB/s, remaining lag, ETA); otherwise it logs a status line per
//! flow every `--status-interval` seconds (`--log-format json` for machines). `status` reads
//! stored progress and the clusters (or, with `--metrics-addr`, a running process's `/status`)
//! and ends with the cutover verdict. `verify` compares source and target record by record,
//! plus partition counts, configs and ACLs (`ferry::mirror::verify`).
//!
//! Exit codes: 0 ok, 1 invalid configuration or runtime error (for `verify`: any difference),
//! 2 usage, 3 `status --exit-code` and not ready for cutover. Secrets are never printed.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use ferry::config::{ClusterConfig, Severity, TrustAnchors};
use ferry::mirror::check::{self, TopicVerdict};
use ferry::mirror::policy::{PolicyKind, ReplicationPolicy};
use ferry::mirror::settings::{FlowSettings, Isolation, OffsetSyncsLocation, StartPosition};
use ferry::{Mirror, MirrorOptions};
use tracing_subscriber::EnvFilter;

#[path = "ferry/operator.rs"]
mod operator;

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Replicates Apache Kafka clusters (mm2.properties compatible)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format (logs go to stderr).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log level or filter (`info`, `ferry=debug,warn`); default: `RUST_LOG`, else `info`
    /// (`warn` for `check`).
    #[arg(long, global = true)]
    log_level: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replicates as the file says until SIGTERM or SIGINT, then drains and exits 0.
    Run {
        /// The mm2.properties file.
        config: PathBuf,
        /// Run only the flows whose target cluster is listed (as connect-mirror-maker.sh).
        #[arg(long, num_args = 1..)]
        clusters: Vec<String>,
        /// Unknown keys are errors instead of warnings.
        #[arg(long)]
        strict: bool,
        /// Log a status line per flow this often (seconds, 0 = never).
        #[arg(long, default_value_t = 30)]
        status_interval: u64,
        /// Serve Prometheus metrics at /metrics and the status JSON at /status (off by default).
        #[arg(long, value_name = "HOST:PORT")]
        metrics_addr: Option<String>,
        /// No live view on a terminal (log status lines instead).
        #[arg(long)]
        no_progress: bool,
    },
    /// Shows replication status per partition and group, and whether it is ready for cutover.
    Status {
        /// The mm2.properties file.
        config: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Ask a running `ferry run --metrics-addr` for its /status instead of the clusters.
        #[arg(long, value_name = "HOST:PORT")]
        metrics_addr: Option<String>,
        /// Exit with 3 when not ready for cutover.
        #[arg(long)]
        exit_code: bool,
        /// Run only the flows whose target cluster is listed.
        #[arg(long, num_args = 1..)]
        clusters: Vec<String>,
        /// Time limit per flow (seconds).
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Compares source and target: records, partition counts, configs, ACLs.
    Verify {
        /// The mm2.properties file.
        config: PathBuf,
        /// Print the differences as JSON lines on stdout.
        #[arg(long)]
        json: bool,
        /// Run only the flows whose target cluster is listed.
        #[arg(long, num_args = 1..)]
        clusters: Vec<String>,
        /// No progress bar on a terminal.
        #[arg(long)]
        no_progress: bool,
    },
    /// Validates the file and shows what it would replicate.
    Check {
        /// The mm2.properties file.
        config: PathBuf,
        /// Unknown keys are errors instead of warnings.
        #[arg(long)]
        strict: bool,
        /// Do not connect to the source clusters.
        #[arg(long)]
        offline: bool,
        /// Time limit for connecting to a source cluster and listing its topics (seconds).
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Check { .. } | Command::Status { .. } | Command::Verify { .. } => "warn",
        Command::Run { .. } => "info",
    };
    // A live view on a terminal; logs then go through it so they do not tear the bars.
    let live = match &cli.command {
        Command::Run { no_progress, .. } | Command::Verify { no_progress, .. }
            if !*no_progress && std::io::stderr().is_terminal() =>
        {
            Some(indicatif::MultiProgress::new())
        }
        _ => None,
    };
    init_logging(
        cli.log_format,
        cli.log_level.as_deref(),
        default_level,
        live.clone(),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match cli.command {
        Command::Run {
            config,
            clusters,
            strict,
            status_interval,
            metrics_addr,
            no_progress: _,
        } => runtime.block_on(run(
            config,
            clusters,
            strict,
            status_interval,
            metrics_addr,
            live,
        )),
        Command::Status {
            config,
            json,
            metrics_addr,
            exit_code,
            clusters,
            timeout,
        } => {
            let r = runtime.block_on(operator::status(
                config,
                json,
                metrics_addr,
                clusters,
                Duration::from_secs(timeout),
            ));
            match r {
                Ok(false) if exit_code => {
                    runtime.shutdown_timeout(Duration::from_secs(5));
                    return ExitCode::from(3);
                }
                Ok(_) => Ok(()),
                Err(()) => Err(()),
            }
        }
        Command::Verify {
            config,
            json,
            clusters,
            no_progress: _,
        } => runtime.block_on(operator::verify(config, json, clusters, live)),
        Command::Check {
            config,
            strict,
            offline,
            timeout,
        } => runtime.block_on(check(config, strict, offline, Duration::from_secs(timeout))),
    };
    runtime.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(()) => ExitCode::from(1),
    }
}

fn init_logging(
    format: LogFormat,
    level: Option<&str>,
    default_level: &str,
    live: Option<indicatif::MultiProgress>,
) {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).unwrap_or_else(|_| EnvFilter::new(default_level)),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(operator::LogWriter::new(live));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn load(config: &PathBuf, options: &MirrorOptions) -> Result<Mirror, ()> {
    Mirror::load(config, options).map_err(|e| {
        eprintln!("error: {}: {e}", config.display());
    })
}

async fn run(
    config: PathBuf,
    clusters: Vec<String>,
    strict: bool,
    status_interval: u64,
    metrics_addr: Option<String>,
    live: Option<indicatif::MultiProgress>,
) -> Result<(), ()> {
    // The recorder first: the engine's series register against it.
    let metrics = match &metrics_addr {
        Some(addr) => Some(operator::MetricsServer::bind(addr).await?),
        None => None,
    };
    let mut options = MirrorOptions::new().strict(strict);
    if !clusters.is_empty() {
        options = options.with_target_clusters(clusters);
    }
    let mirror = load(&config, &options)?;
    for flow in &mirror.settings().flows {
        tracing::info!(flow = %flow.name(), "flow enabled");
    }

    let stop = mirror.shutdown_handle();
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            let Some(name) = next_signal().await else {
                return;
            };
            count += 1;
            if count == 1 {
                tracing::info!(
                    signal = name,
                    "stopping: draining in-flight batches (send again to exit at once)"
                );
                stop.shutdown();
            } else {
                tracing::warn!(signal = name, "second signal: exiting without draining");
                std::process::exit(1);
            }
        }
    });

    let status = async {
        if let Some(multi) = &live {
            return operator::live_view(&mirror, multi).await;
        }
        if status_interval == 0 {
            return std::future::pending().await;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(status_interval));
        tick.tick().await;
        loop {
            tick.tick().await;
            log_status(&mirror);
        }
    };
    let serve = async {
        match &metrics {
            Some(server) => server.serve(&mirror).await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        r = mirror.run() => r,
        () = status => Ok(()),
        () = serve => Ok(()),
    };
    match result {
        Ok(()) => {
            log_status(&mirror);
            tracing::info!("stopped cleanly; progress stored");
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "ferry stopped with an error");
            eprintln!("error: {e}");
            Err(())
        }
    }
}

fn log_status(mirror: &Mirror) {
    for flow in mirror.status().flows {
        let lag: i64 = flow.partitions.values().filter_map(|p| p.lag()).sum();
        let c = flow.counters;
        tracing::info!(
            flow = %flow.flow,
            partitions = flow.partitions.len(),
            records = c.records,
            bytes = c.bytes,
            batches_forwarded = c.forwarded(),
            zero_copy_share = c.zero_copy_share().map(|s| format!("{:.3}", s)),
            lag,
            caught_up = flow.caught_up(),
            "status"
        );
    }
}

/// The next SIGTERM or SIGINT, by name; `None` if signals cannot be received.
async fn next_signal() -> Option<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return None;
        };
        tokio::select! {
            _ = term.recv() => Some("SIGTERM"),
            _ = int.recv() => Some("SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
    }
}

async fn check(config: PathBuf, strict: bool, offline: bool, timeout: Duration) -> Result<(), ()> {
    let mirror = load(&config, &MirrorOptions::new().strict(strict))?;
    let settings = mirror.settings();
    println!("{}: valid", config.display());

    let notices = mirror.notices();
    if notices.is_empty() {
        println!("\nnotices: none");
    } else {
        println!("\nnotices ({}):", notices.len());
        for n in notices {
            let level = match n.severity() {
                Severity::Warning => "warning",
                _ => "info",
            };
            println!("  {level}: {n}");
        }
    }

    println!("\nclusters:");
    for alias in settings.clusters.keys() {
        if let Some(c) = mirror.config().cluster(alias) {
            println!("  {}", describe_cluster(c));
        }
    }

    println!("\nflows ({}):", settings.flows.len());
    for flow in &settings.flows {
        describe_flow(&mirror, flow);
    }

    let mut failed = false;
    if !offline {
        for flow in &settings.flows {
            let Some(conn) = settings.clusters.get(&flow.source) else {
                continue;
            };
            println!("\nlive topics of {} for {}:", flow.source, flow.name());
            match check::live_topics(flow, conn, timeout).await {
                Ok(topics) => {
                    let mut selected = 0;
                    for t in &topics {
                        if let TopicVerdict::Selected { target } = &t.verdict {
                            selected += 1;
                            println!(
                                "  replicate  {} -> {} ({} partitions)",
                                t.name, target, t.partitions
                            );
                        }
                    }
                    for t in &topics {
                        let why = match &t.verdict {
                            TopicVerdict::Selected { .. } => continue,
                            TopicVerdict::Internal => "internal".to_owned(),
                            TopicVerdict::Cycle => format!("cycle: came from {}", flow.target),
                            TopicVerdict::Filter => "filter".to_owned(),
                            _ => "excluded".to_owned(),
                        };
                        println!("  exclude    {} ({why})", t.name);
                    }
                    println!("  {} of {} topics selected", selected, topics.len());
                }
                Err(e) => {
                    failed = true;
                    println!("  error: {e}");
                    eprintln!(
                        "error: cannot list the topics of cluster {}: {e}",
                        flow.source
                    );
                }
            }
            // Dry run of config and ACL sync (issue #6).
            if let Some(target) = settings.clusters.get(&flow.target) {
                println!(
                    "\nsync changes for {} (dry run, nothing written):",
                    flow.name()
                );
                match check::metadata_changes(flow, conn, target, timeout).await {
                    Ok(changes) => {
                        for line in check::describe_metadata_changes(&changes) {
                            println!("{line}");
                        }
                    }
                    Err(e) => {
                        failed = true;
                        println!("  error: {e}");
                        eprintln!("error: cannot plan the sync of {}: {e}", flow.name());
                    }
                }
            }
        }
    }
    if failed {
        Err(())
    } else {
        println!("\nok");
        Ok(())
    }
}

fn describe_cluster(c: &ClusterConfig) -> String {
    let servers: Vec<String> = c
        .bootstrap_servers
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut out = format!(
        "{}: {} via {}",
        c.alias,
        servers.join(","),
        c.security_protocol.as_str()
    );
    if let Some(sasl) = &c.sasl {
        out.push_str(&format!(
            ", SASL {} as {}",
            sasl.mechanism.as_str(),
            sasl.username
        ));
    }
    if let Some(tls) = &c.tls {
        let trust = match &tls.trust {
            TrustAnchors::PemFile(p) => format!("CA file {}", p.display()),
            TrustAnchors::PemInline(_) => "inline CA".to_owned(),
            _ => "bundled web roots".to_owned(),
        };
        out.push_str(&format!(
            ", TLS trusting {trust}{}{}",
            if tls.identity.is_some() {
                ", client certificate"
            } else {
                ""
            },
            if tls.verify_hostname {
                ""
            } else {
                ", hostname not verified"
            }
        ));
    }
    out
}

fn list(entries: &[String]) -> String {
    if entries.is_empty() {
        "(none)".to_owned()
    } else {
        entries.join(", ")
    }
}

fn secs(d: Duration) -> String {
    if d >= Duration::from_secs(365 * 24 * 3600) {
        "disabled (listed once at start)".to_owned()
    } else {
        format!("every {}", humantime(d))
    }
}

fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn rf(n: i16) -> String {
    if n == -1 {
        "broker default".to_owned()
    } else {
        n.to_string()
    }
}

fn describe_flow(_mirror: &Mirror, flow: &FlowSettings) {
    println!("  {} -> {}", flow.source, flow.target);
    let policy = match flow.policy.kind() {
        PolicyKind::Identity => "IdentityReplicationPolicy".to_owned(),
        _ => format!(
            "DefaultReplicationPolicy (separator {:?})",
            flow.policy.separator()
        ),
    };
    println!(
        "    policy:              {policy}, e.g. orders -> {}",
        flow.policy.format_remote_topic(&flow.source, "orders")
    );
    println!(
        "    topics:              {}",
        list(flow.topic_filter.include().entries())
    );
    println!(
        "    topics.exclude:      {}",
        list(flow.topic_filter.exclude().entries())
    );
    println!(
        "    groups:              {} (exclude: {}; refresh {})",
        list(flow.group_filter.include().entries()),
        list(flow.group_filter.exclude().entries()),
        secs(flow.refresh_groups_interval)
    );
    println!(
        "    checkpoints:         {}; group offset sync: {}",
        if flow.emit_checkpoints {
            format!(
                "{} to {}",
                secs(flow.checkpoints_interval),
                flow.policy.checkpoints_topic(&flow.source)
            )
        } else {
            "off".to_owned()
        },
        if flow.sync_group_offsets {
            secs(flow.sync_group_offsets_interval)
        } else {
            "off".to_owned()
        }
    );
    println!(
        "    refresh topics:      {}",
        secs(flow.refresh_topics_interval)
    );
    println!(
        "    config sync:         {}",
        flow.sync_topic_configs.map_or_else(
            || "off".to_owned(),
            |d| format!(
                "{}, use.defaults.from={}",
                secs(d),
                match flow.use_defaults_from {
                    ferry::mirror::settings::DefaultsFrom::Source => "source",
                    _ => "target",
                }
            )
        )
    );
    println!(
        "    acl sync:            {}",
        flow.sync_topic_acls.map_or_else(
            || "off".to_owned(),
            |d| {
                let a = &flow.acl_sync;
                let extra: Vec<&str> = [
                    (a.prefixed, "prefixed"),
                    (a.groups, "groups"),
                    (a.delete, "delete"),
                ]
                .into_iter()
                .filter_map(|(on, name)| on.then_some(name))
                .collect();
                if extra.is_empty() {
                    format!("{} (MM2 rules)", secs(d))
                } else {
                    format!("{} (MM2 rules + {})", secs(d), extra.join(", "))
                }
            }
        )
    );
    println!(
        "    start / isolation:   {} / {}",
        match flow.start {
            StartPosition::Latest => "latest",
            _ => "earliest",
        },
        match flow.isolation {
            Isolation::ReadUncommitted => "read_uncommitted",
            _ => "read_committed",
        }
    );
    println!(
        "    replication factor:  {} (heartbeats {}, offset syncs {})",
        rf(flow.replication_factor),
        rf(flow.heartbeats_replication_factor),
        rf(flow.offset_syncs_replication_factor)
    );
    println!(
        "    heartbeats:          {}",
        if flow.emit_heartbeats {
            format!(
                "{} to {} on {}",
                secs(flow.heartbeats_interval),
                flow.policy.heartbeats_topic(),
                flow.target
            )
        } else {
            "off".to_owned()
        }
    );
    println!(
        "    offset syncs:        {}",
        if flow.emit_offset_syncs {
            let (topic, cluster) = match flow.offset_syncs_location {
                OffsetSyncsLocation::Target => {
                    (flow.policy.offset_syncs_topic(&flow.source), &flow.target)
                }
                _ => (flow.policy.offset_syncs_topic(&flow.target), &flow.source),
            };
            format!("{topic} on {cluster}")
        } else {
            "off".to_owned()
        }
    );
    println!(
        "    target compression:  {}",
        flow.target_compression.map_or_else(
            || "keep the source batches (compression.type=producer)".to_owned(),
            |c| format!("re-encode as {c}")
        )
    );
    println!(
        "    progress group:      {} on {}",
        flow.progress_group_id(),
        flow.target
    );
}
