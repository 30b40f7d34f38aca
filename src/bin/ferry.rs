//! The `ferry` command-line program.
//!
//! ```text
//! ferry run <mm2.properties> [--clusters A B ...]   replicate until SIGTERM / SIGINT
//! ferry check <mm2.properties> [--strict] [--offline]
//! ```
//!
//! `run` is a drop-in for `connect-mirror-maker.sh mm2.properties [--clusters ...]`: the same
//! file, and `--clusters` keeps the flows whose target is listed. On SIGTERM or SIGINT it stops
//! fetching, waits for in-flight batches, stores progress and exits 0 (a second signal exits
//! at once with 1). `check` validates the file, prints its notices, the resolved flows and,
//! unless `--offline`, which live source topics each flow selects.
//!
//! Exit codes: 0 ok, 1 invalid configuration or runtime error, 2 usage. Secrets are never
//! printed.

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
        Command::Check { .. } => "warn",
        Command::Run { .. } => "info",
    };
    init_logging(cli.log_format, cli.log_level.as_deref(), default_level);
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
        } => runtime.block_on(run(config, clusters, strict, status_interval)),
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

fn init_logging(format: LogFormat, level: Option<&str>, default_level: &str) {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).unwrap_or_else(|_| EnvFilter::new(default_level)),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
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
) -> Result<(), ()> {
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
    let result = tokio::select! {
        r = mirror.run() => r,
        () = status => Ok(()),
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

fn describe_flow(mirror: &Mirror, flow: &FlowSettings) {
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
    if let Some(fc) = mirror.config().flow(&flow.source, &flow.target) {
        println!(
            "    groups:              {} (exclude: {}; group sync not implemented yet)",
            list(fc.groups.include().entries()),
            list(fc.groups.exclude().entries())
        );
    }
    println!(
        "    refresh topics:      {}",
        secs(flow.refresh_topics_interval)
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
