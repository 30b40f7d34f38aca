//! Test kit for ferry: real Apache Kafka clusters started from Maven Central jars, and drivers for
//! Kafka's own Java tools.
//!
//! # Clusters
//!
//! `scripts/kafka` (bash) resolves the jars with Maven (`kafka/<version>/pom.xml`), generates a
//! throw-away CA and certificates with `openssl`, formats and starts single-node KRaft clusters
//! (combined broker + controller, static `controller.quorum.voters`) on free loopback ports, and
//! writes `<state>/clusters.json`. This crate runs that script and parses the JSON:
//!
//! * [`shared_pair`]: two clusters of [`KAFKA_4`], started lazily once per test binary;
//! * [`shared_cluster_39`]: one [`KAFKA_3`] cluster, started lazily once per test binary;
//! * [`dedicated_cluster`]: a fresh cluster for one test, with [`DedicatedCluster::stop`],
//!   [`DedicatedCluster::kill`] and [`DedicatedCluster::start`] for restart tests; dropping it
//!   stops it.
//!
//! Every cluster has four client listeners on `127.0.0.1` ([`Listener`]): PLAINTEXT, SASL_PLAINTEXT
//! (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; KIP-900 users made at format time), SSL with client
//! authentication required (mutual TLS, PEM stores as in KIP-651) and SASL_SSL. The
//! `StandardAuthorizer` is on with `allow.everyone.if.no.acl.found=false`; `User:admin`,
//! `User:ANONYMOUS` (PLAINTEXT) and the client certificate's principal are super users, so PLAINTEXT
//! and SSL tests need no ACLs while `alice` and `bob` are subject to them.
//!
//! Shared clusters are stopped when the test process exits, even after a panic or a kill: the
//! script leaves a watchdog that waits for the test process and then runs `scripts/kafka down`.
//! Set `FERRY_KAFKA_CLUSTERS=<clusters.json>[:<clusters.json>…]` to reuse clusters already started
//! by `scripts/kafka up` instead (their version must match).
//!
//! # Gate
//!
//! Tests that need brokers begin with [`require_kafka!`]: they run when `FERRY_IT=1` or
//! `CI=true` ([`it_enabled`]), otherwise they print a skip line and return. Under the gate, a
//! broker that cannot start fails the test.
//!
//! # Java tools
//!
//! [`Cluster::tools`] gives a [`JavaTools`] for one listener: it writes a client properties file
//! (`security.protocol`, `sasl.jaas.config`, PEM `ssl.*`) and runs the tool classes from the same
//! classpath (`java -cp '<cache>/<version>/libs/*' <main class>`), with a timeout.

pub mod checker;
mod cluster;
mod error;
pub mod fake_broker;
mod launcher;
pub mod proxy;
mod tools;
pub mod workload;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use cluster::{
    Cluster, ClusterPair, Credentials, DedicatedCluster, Listener, SaslMechanism, TlsFiles,
};
pub use error::{Error, Result};
pub use launcher::{dedicated_cluster, kafka_cache_dir, repo_root, shared_cluster_39, shared_pair};
/// The `rand` crate the workload and the fault schedules use (re-exported for tests).
pub use rand;
pub use tools::{
    ConsumeOptions, ConsumedRecord, GroupOffsetRow, JavaTools, PerfResult, ToolOutput,
    TopicDescription, TopicPartitionInfo, TxnOutcome, TxnRecordMeta,
};

/// The Kafka 4.x release the shared pair runs (the newest 4.x whose jars all resolve on Maven
/// Central; `kafka/<version>/pom.xml` explains why not 4.4.0).
pub const KAFKA_4: &str = "4.3.1";

/// The Kafka 3.x release of [`shared_cluster_39`] (the last 3.x line).
pub const KAFKA_3: &str = "3.9.2";

/// Whether integration tests that need real brokers run: `FERRY_IT=1` or `CI=true`.
pub fn it_enabled() -> bool {
    let on = |name: &str, want: &str| {
        std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(want))
    };
    on("FERRY_IT", "1") || on("FERRY_IT", "true") || on("CI", "true")
}

/// Returns from the calling test (printing a skip line) unless [`it_enabled`].
///
/// ```ignore
/// #[test]
/// fn replicates() {
///     ferry_testkit::require_kafka!();
///     let pair = ferry_testkit::shared_pair();
///     // ...
/// }
/// ```
#[macro_export]
macro_rules! require_kafka {
    () => {
        if !$crate::it_enabled() {
            eprintln!(
                "skipped: {} needs Kafka brokers; set FERRY_IT=1 (or CI=true) to run it",
                module_path!()
            );
            return;
        }
    };
}

/// A name unique to this process and call, for topics, groups and transactional ids:
/// `<prefix>-<pid>-<millis>-<counter>`. Only `[A-Za-z0-9._-]` are kept from `prefix`, so the
/// result is a legal topic name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() % 1_000_000_000)
        .unwrap_or(0);
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{clean}-{}-{millis}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_legal_topic_names() {
        let a = unique_name("t/1 x");
        let b = unique_name("t/1 x");
        assert_ne!(a, b);
        assert!(a.starts_with("t-1-x-"), "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        );
        assert!(a.len() < 249);
    }
}
