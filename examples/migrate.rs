//! Runs an `mm2.properties` file inside a host program, as `ferry run` does, and prints a
//! status line every ten seconds until Ctrl-C.
//!
//! ```sh
//! cargo run --example migrate -- mm2.properties
//! ```

use std::time::Duration;

use ferry::Mirror;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: migrate <mm2.properties>");
        std::process::exit(2);
    };
    let mirror = Mirror::from_properties(&path)?;
    for notice in mirror.notices() {
        println!("notice: {notice}");
    }

    let stop = mirror.shutdown_handle();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.shutdown();
        }
    });

    let mut events = mirror.events();
    let report = async {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                Some(event) = events.next() => println!("event: {event:?}"),
                _ = tick.tick() => {
                    for flow in mirror.status().flows {
                        let lag: i64 = flow.partitions.values().filter_map(|p| p.lag()).sum();
                        println!(
                            "{}: {} partitions, {} records copied, lag {lag}, caught up: {}",
                            flow.flow,
                            flow.partitions.len(),
                            flow.counters.records,
                            flow.caught_up()
                        );
                    }
                }
            }
        }
    };
    tokio::select! {
        result = mirror.run() => result?,
        () = report => {}
    }
    println!("stopped; progress stored");
    Ok(())
}
