//! Helpers shared by the integration-test modules.

use std::future::Future;

/// Runs `f` to completion on a fresh two-worker tokio runtime (one per test, so tests stay
/// independent of each other's tasks).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

// ---------------------------------------------------------------------------------------------
// How ferry-client reaches the test clusters: one listener/mechanism matrix and one set of
// per-listener connection settings, shared by client.rs and admin.rs.

/// One way into a test cluster: a listener and, on SASL listeners, the mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Access {
    pub(crate) listener: ferry_testkit::Listener,
    pub(crate) mechanism: Option<ferry_client::SaslMechanism>,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use ferry_testkit::Listener as L;
        let listener = match self.listener {
            L::Plaintext => "PLAINTEXT",
            L::SaslPlaintext => "SASL_PLAINTEXT",
            L::Ssl => "SSL (mutual TLS)",
            L::SaslSsl => "SASL_SSL",
            _ => "another listener",
        };
        match self.mechanism {
            None => f.write_str(listener),
            Some(m) => write!(f, "{listener}/{}", m.as_str()),
        }
    }
}

/// Every listener the test clusters offer, and every SASL mechanism on SASL_PLAINTEXT
/// (issue #4 item 7): PLAINTEXT, SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512,
/// SSL with a client certificate, SASL_SSL with SCRAM-SHA-512 and with PLAIN.
pub(crate) fn access_matrix() -> Vec<Access> {
    use ferry_client::SaslMechanism as M;
    use ferry_testkit::Listener as L;
    let access = |listener, mechanism| Access {
        listener,
        mechanism,
    };
    vec![
        access(L::Plaintext, None),
        access(L::SaslPlaintext, Some(M::Plain)),
        access(L::SaslPlaintext, Some(M::ScramSha256)),
        access(L::SaslPlaintext, Some(M::ScramSha512)),
        access(L::Ssl, None),
        access(L::SaslSsl, Some(M::ScramSha512)),
        access(L::SaslSsl, Some(M::Plain)),
    ]
}

/// Connection settings for `listener` of `cluster`, without SASL credentials: TLS with the
/// cluster's CA (and the client certificate on SSL, which requires mutual TLS), 10 s connect
/// timeout, 30 s request timeout, a 60 s retry deadline.
pub(crate) fn connection(
    cluster: &ferry_testkit::Cluster,
    listener: ferry_testkit::Listener,
) -> ferry_client::ConnectionConfigBuilder {
    use ferry_client::{SecurityProtocol, TlsSettings};
    use ferry_testkit::Listener as L;
    let tls = cluster.tls();
    let b = ferry_client::ConnectionConfig::builder()
        .with_bootstrap([cluster.bootstrap(listener)])
        .with_connect_timeout(std::time::Duration::from_secs(10))
        .with_request_timeout(std::time::Duration::from_secs(30))
        .with_backoff(
            ferry_client::BackoffConfig::default()
                .with_deadline(std::time::Duration::from_secs(60)),
        );
    match listener {
        L::Plaintext => b,
        L::SaslPlaintext => b.with_security_protocol(SecurityProtocol::SaslPlaintext),
        L::Ssl => b
            .with_security_protocol(SecurityProtocol::Ssl)
            .with_tls(TlsSettings {
                ca_file: Some(tls.ca.clone()),
                client_cert_file: Some(tls.client_cert.clone()),
                client_key_file: Some(tls.client_key.clone()),
                ..TlsSettings::default()
            }),
        L::SaslSsl => b
            .with_security_protocol(SecurityProtocol::SaslSsl)
            .with_tls(TlsSettings {
                ca_file: Some(tls.ca.clone()),
                ..TlsSettings::default()
            }),
        other => panic!("no client settings for {other:?}"),
    }
}

/// [`connection`] for `access`, as the clusters' `admin` super user on SASL listeners.
pub(crate) fn connection_as_admin(
    cluster: &ferry_testkit::Cluster,
    access: Access,
) -> ferry_client::ConnectionConfig {
    let b = connection(cluster, access.listener);
    match access.mechanism {
        Some(m) => {
            let admin = cluster.user("admin");
            b.with_sasl(m, admin.username, ferry_client::Secret::new(admin.password))
        }
        None => b,
    }
    .build()
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The `ferry` program as a process (cli.rs, acceptance.rs) and reading both sides of a flow
// (mirror.rs, acceptance.rs).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use ferry_testkit::ConsumedRecord;

/// The `ferry` binary built for these tests.
pub(crate) const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// `{alias}.k = v` lines for a testkit cluster on `listener`.
pub(crate) fn cluster_lines(
    alias: &str,
    cluster: &ferry_testkit::Cluster,
    listener: ferry_testkit::Listener,
    creds: &ferry_testkit::Credentials,
) -> String {
    cluster
        .client_properties(listener, creds, ferry_testkit::SaslMechanism::ScramSha512)
        .into_iter()
        .map(|(k, v)| format!("{alias}.{k} = {v}\n"))
        .collect()
}

/// Writes `text` as `mm2.properties` in `dir`.
pub(crate) fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("mm2.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits for `child` to exit, at most `limit`; kills it and fails otherwise.
pub(crate) fn wait_exit(child: &mut Child, limit: std::time::Duration) -> (i32, String) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            return (status.code().unwrap_or(-1), stderr);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            panic!("ferry did not exit within {limit:?}\n{stderr}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Sends SIGTERM to `child`.
pub(crate) fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

/// `ferry run <config> <extra>` with a status line every 2 s and info logs on a pipe (read by
/// [`wait_exit`]; for long runs use [`spawn_run_logged`], a pipe nobody reads can fill up).
pub(crate) fn spawn_run(config: &Path, extra: &[&str]) -> Child {
    Command::new(FERRY)
        .arg("run")
        .arg(config)
        .args(extra)
        .args(["--status-interval", "2", "--log-level", "info"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry run")
}

/// `ferry run <config> <extra>` with a status line every second, logs (info) to `log`.
pub(crate) fn spawn_run_logged(config: &Path, extra: &[&str], log: &Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    Command::new(FERRY)
        .arg("run")
        .arg(config)
        .args(extra)
        .args(["--status-interval", "1", "--log-level", "info"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("spawn ferry run")
}

/// Every record of `topic` (at least `n` expected), read_committed, sorted by partition and
/// offset.
pub(crate) fn consume_all(
    cluster: &ferry_testkit::Cluster,
    topic: &str,
    n: usize,
) -> Vec<ConsumedRecord> {
    let mut records = cluster
        .tools(ferry_testkit::Listener::Plaintext)
        .with_timeout(std::time::Duration::from_secs(300))
        .console_consume(
            topic,
            n,
            std::time::Duration::from_secs(15),
            &[("isolation.level", "read_committed")],
        )
        .unwrap();
    records.sort_by_key(|r| (r.partition, r.offset));
    records
}

/// Records per partition, in offset order.
pub(crate) fn by_partition(
    rs: &[ConsumedRecord],
) -> std::collections::BTreeMap<i32, Vec<ConsumedRecord>> {
    let mut m: std::collections::BTreeMap<i32, Vec<ConsumedRecord>> = Default::default();
    for r in rs {
        m.entry(r.partition).or_default().push(r.clone());
    }
    m
}

/// Field-for-field comparison per partition, in order (offsets may differ): key, value,
/// headers, timestamp and its type.
pub(crate) fn assert_same_records(source: &[ConsumedRecord], target: &[ConsumedRecord]) {
    assert_eq!(source.len(), target.len(), "record counts");
    let (s, t) = (by_partition(source), by_partition(target));
    assert_eq!(
        s.keys().collect::<Vec<_>>(),
        t.keys().collect::<Vec<_>>(),
        "partitions"
    );
    for (p, srecs) in &s {
        let trecs = &t[p];
        assert_eq!(srecs.len(), trecs.len(), "partition {p} count");
        for (i, (a, b)) in srecs.iter().zip(trecs).enumerate() {
            assert_eq!(a.key, b.key, "partition {p} record {i} key");
            assert_eq!(a.value, b.value, "partition {p} record {i} value");
            assert_eq!(a.headers, b.headers, "partition {p} record {i} headers");
            assert_eq!(
                a.timestamp, b.timestamp,
                "partition {p} record {i} timestamp"
            );
            assert_eq!(
                a.timestamp_type, b.timestamp_type,
                "partition {p} record {i} timestamp type"
            );
        }
    }
}
