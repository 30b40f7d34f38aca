//! Replicates one topic inside a host tokio program.
//!
//! ```text
//! cargo run --example embed -- <source bootstrap> <target bootstrap> <topic>
//! # or: FERRY_SOURCE=host:9092 FERRY_TARGET=host:9192 FERRY_TOPIC=orders cargo run --example embed
//! ```
//!
//! The topic is copied to `source.<topic>` on the target (MM2's default naming) and kept in
//! sync until Ctrl-C; then in-flight batches are drained and progress is stored on the target,
//! so running it again continues where it stopped without duplicates.

use std::time::Duration;

use ferry::client::ConnectionConfig;
use ferry::mirror::engine::Engine;
use ferry::mirror::events::MirrorEvent;
use ferry::mirror::filter::TopicFilter;
use ferry::mirror::settings::{EngineSettings, FlowSettings};

fn arg(position: usize, env: &str) -> Option<String> {
    std::env::args()
        .nth(position)
        .or_else(|| std::env::var(env).ok())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (Some(source), Some(target), Some(topic)) = (
        arg(1, "FERRY_SOURCE"),
        arg(2, "FERRY_TARGET"),
        arg(3, "FERRY_TOPIC"),
    ) else {
        eprintln!("usage: embed <source bootstrap> <target bootstrap> <topic>");
        std::process::exit(2);
    };

    let mut flow = FlowSettings::new("source", "target")?;
    // `topics` takes MM2's regex list; quote the name so dots match literally.
    flow.topic_filter = TopicFilter::from_config(Some(&fancy_quote(&topic)), None)?;
    flow.refresh_topics_interval = Duration::from_secs(30);
    let settings = EngineSettings::new()
        .with_cluster(
            "source",
            ConnectionConfig::builder()
                .with_bootstrap([source])
                .build()?,
        )
        .with_cluster(
            "target",
            ConnectionConfig::builder()
                .with_bootstrap([target])
                .build()?,
        )
        .with_flow(flow);

    // Validated here, before any network I/O.
    let engine = Engine::new(settings)?;
    let handle = engine.handle();

    // The host program keeps doing its own work: here, it prints events and status.
    let mut events = handle.subscribe();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if !matches!(event, MirrorEvent::ProgressCommitted { .. }) {
                println!("event: {event:?}");
            }
        }
    });
    let status_handle = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            for flow in status_handle.status().flows {
                let lag: i64 = flow.partitions.values().filter_map(|p| p.lag()).sum();
                println!(
                    "{}: {} partitions, lag {lag}, {} records copied, zero-copy share {:?}",
                    flow.flow,
                    flow.partitions.len(),
                    flow.counters.records,
                    flow.counters.zero_copy_share()
                );
            }
        }
    });

    engine
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    println!("stopped; progress stored");
    Ok(())
}

/// Topic names hold only `[a-zA-Z0-9._-]`; `.` is the one regex metacharacter among them.
fn fancy_quote(name: &str) -> String {
    name.replace('.', "\\.")
}
