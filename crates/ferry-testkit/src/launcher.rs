//! Starting clusters with `scripts/kafka` and parsing its `clusters.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use crate::cluster::{Cluster, ClusterPair, DedicatedCluster, TlsFiles, Users};
use crate::error::{Error, Result};
use crate::{KAFKA_3, KAFKA_4};

/// `clusters.json` as written by `scripts/kafka up` (format 1).
#[derive(Debug, Deserialize)]
pub(crate) struct StateFile {
    pub(crate) format: u32,
    pub(crate) state_dir: PathBuf,
    pub(crate) libs: PathBuf,
    pub(crate) repo: PathBuf,
    pub(crate) clusters: Vec<ClusterRecord>,
    pub(crate) users: Users,
    pub(crate) super_users: Vec<String>,
    pub(crate) tls: TlsFiles,
}

/// One entry of `clusters` in `clusters.json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ClusterRecord {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) dir: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) config: PathBuf,
    pub(crate) data_dir: PathBuf,
    pub(crate) cluster_id: String,
    /// Listener name (`PLAINTEXT`, …, `INTERNAL`, `CONTROLLER`) to `host:port`.
    pub(crate) listeners: BTreeMap<String, String>,
}

impl StateFile {
    fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: "reading clusters.json",
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self> {
        let state: Self = serde_json::from_str(text).map_err(|e| Error::Parse {
            what: path.display().to_string(),
            detail: e.to_string(),
        })?;
        if state.format != 1 {
            return Err(Error::Parse {
                what: path.display().to_string(),
                detail: format!("format {} (this kit reads format 1)", state.format),
            });
        }
        Ok(state)
    }

    fn into_clusters(self) -> Vec<Cluster> {
        let state = Arc::new(self);
        state
            .clusters
            .iter()
            .map(|record| Cluster {
                record: record.clone(),
                state: Arc::clone(&state),
            })
            .collect()
    }
}

/// The repository root (where `scripts/kafka` lives).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The jar cache: `$FERRY_KAFKA_CACHE`, or `~/.cache/ferry/kafka`. Each version has
/// `<cache>/<version>/libs/*.jar`.
pub fn kafka_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FERRY_KAFKA_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/ferry/kafka")
}

fn script() -> PathBuf {
    repo_root().join("scripts/kafka")
}

/// Runs `scripts/kafka ARGS…`; returns its stdout, or an error with stdout and stderr.
pub(crate) fn run_script(args: &[&str]) -> Result<String> {
    let path = script();
    let out = Command::new(&path)
        .args(args)
        .output()
        .map_err(|source| Error::Spawn {
            program: path.display().to_string(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    Err(Error::Launcher {
        command: args.join(" "),
        status: out.status.to_string(),
        output: format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    })
}

/// Runs `scripts/kafka ARGS… --state DIR`.
pub(crate) fn script_in_state(state_dir: &Path, args: &[&str]) -> Result<()> {
    let dir = state_dir.display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--state", dir.as_str()]);
    run_script(&all).map(drop)
}

/// A state dir for clusters started by this process: `<repo>/.kafka-state/it-<pid>-<label>`.
fn process_state_dir(label: &str) -> PathBuf {
    repo_root()
        .join(".kafka-state")
        .join(format!("it-{}-{label}", std::process::id()))
}

/// Stops and removes the `it-<pid>-*` state dirs of test processes that are gone (left behind
/// only when a watchdog itself was killed, e.g. by a reboot or `kill -9` of its session). Runs
/// once per process.
fn reap_stale_state_dirs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(repo_root().join(".kafka-state")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("it-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            if let Err(e) = script_in_state(&entry.path(), &["down"]) {
                eprintln!("ferry-testkit: cleaning up {}: {e}", entry.path().display());
            }
        }
    });
}

/// Starts `n` clusters of `version` in `state_dir`, watched by this process (the script's
/// watchdog stops them when this process exits).
fn start(n: usize, version: &str, state_dir: &Path) -> Result<Vec<Cluster>> {
    reap_stale_state_dirs();
    let dir = state_dir.display().to_string();
    let pid = std::process::id().to_string();
    let count = n.to_string();
    let started = std::time::Instant::now();
    let json = run_script(&[
        "up",
        &count,
        "--version",
        version,
        "--state",
        &dir,
        "--json",
        "--replace",
        "--watch-pid",
        &pid,
    ])?;
    let state = StateFile::parse(&json, &state_dir.join("clusters.json"))?;
    let clusters = state.into_clusters();
    if clusters.len() != n {
        return Err(Error::Parse {
            what: "scripts/kafka up output".to_owned(),
            detail: format!("asked for {n} clusters, got {}", clusters.len()),
        });
    }
    eprintln!(
        "ferry-testkit: started {n} Kafka {version} cluster(s) in {:.1?} ({dir})",
        started.elapsed()
    );
    Ok(clusters)
}

/// Clusters from `FERRY_KAFKA_CLUSTERS` (`:`-separated `clusters.json` paths), if set.
fn reusable_clusters() -> Result<Vec<Cluster>> {
    let Some(list) = std::env::var_os("FERRY_KAFKA_CLUSTERS") else {
        return Ok(Vec::new());
    };
    let mut all = Vec::new();
    for path in std::env::split_paths(&list) {
        if path.as_os_str().is_empty() {
            continue;
        }
        all.extend(StateFile::read(&path)?.into_clusters());
    }
    Ok(all)
}

fn reuse(version: &str, n: usize) -> Result<Option<Vec<Cluster>>> {
    let found: Vec<Cluster> = reusable_clusters()?
        .into_iter()
        .filter(|c| c.version() == version)
        .take(n)
        .collect();
    if found.len() == n {
        eprintln!(
            "ferry-testkit: reusing Kafka {version} cluster(s) {:?} from FERRY_KAFKA_CLUSTERS",
            found
                .iter()
                .map(|c| c.bootstrap(crate::Listener::Plaintext))
                .collect::<Vec<_>>()
        );
        Ok(Some(found))
    } else {
        Ok(None)
    }
}

fn start_or_reuse(version: &str, n: usize, label: &str) -> Result<Vec<Cluster>> {
    match reuse(version, n)? {
        Some(found) => Ok(found),
        None => start(n, version, &process_state_dir(label)),
    }
}

/// Two [`KAFKA_4`] clusters shared by every test of this binary, started on first use.
///
/// # Panics
/// When the clusters cannot be started: every test that asks fails with the launcher's reason
/// (including the tail of the broker log).
pub fn shared_pair() -> &'static ClusterPair {
    static PAIR: OnceLock<Result<ClusterPair, String>> = OnceLock::new();
    let pair = PAIR.get_or_init(|| {
        let mut clusters = start_or_reuse(KAFKA_4, 2, "pair").map_err(|e| e.to_string())?;
        let target = clusters.pop();
        let source = clusters.pop();
        match (source, target) {
            (Some(source), Some(target)) => Ok(ClusterPair { source, target }),
            _ => Err("scripts/kafka returned fewer than two clusters".to_owned()),
        }
    });
    match pair {
        Ok(pair) => pair,
        Err(reason) => {
            panic!("ferry-testkit: the shared Kafka {KAFKA_4} pair did not start: {reason}")
        }
    }
}

/// One [`KAFKA_3`] cluster shared by every test of this binary, started on first use.
///
/// # Panics
/// When the cluster cannot be started (see [`shared_pair`]).
pub fn shared_cluster_39() -> &'static Cluster {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    let cluster = CLUSTER.get_or_init(|| {
        start_or_reuse(KAFKA_3, 1, "c39")
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or_else(|| "scripts/kafka returned no cluster".to_owned())
    });
    match cluster {
        Ok(cluster) => cluster,
        Err(reason) => {
            panic!("ferry-testkit: the shared Kafka {KAFKA_3} cluster did not start: {reason}")
        }
    }
}

/// A fresh cluster of `version` ([`KAFKA_4`] or [`KAFKA_3`]) for one test: it can be stopped,
/// killed and started again; dropping it stops it and removes its state.
///
/// # Panics
/// When the cluster cannot be started (the test fails with the launcher's reason). Use
/// [`DedicatedCluster::try_new`] to handle the error instead.
pub fn dedicated_cluster(version: &str) -> DedicatedCluster {
    match DedicatedCluster::try_new(version) {
        Ok(cluster) => cluster,
        Err(e) => panic!("ferry-testkit: dedicated Kafka {version} cluster did not start: {e}"),
    }
}

impl DedicatedCluster {
    /// Starts a fresh cluster of `version` for one test.
    pub fn try_new(version: &str) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let state_dir = process_state_dir(&format!("dedicated-{n}"));
        let cluster = start(1, version, &state_dir)?
            .pop()
            .ok_or_else(|| Error::Usage("scripts/kafka returned no cluster".to_owned()))?;
        Ok(Self { cluster, state_dir })
    }
}

impl Cluster {
    /// The state dir this cluster was started in (holds `clusters.json`, `tls/`).
    pub fn state_dir(&self) -> &Path {
        &self.state.state_dir
    }

    /// The repository whose `scripts/kafka` started this cluster.
    pub fn repo(&self) -> &Path {
        &self.state.repo
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Listener, SaslMechanism};

    const SAMPLE: &str = r#"{
      "format": 1, "version": "4.3.1", "state_dir": "/s", "libs": "/c/4.3.1/libs", "repo": "/r",
      "clusters": [
        {"name": "c0", "version": "4.3.1", "dir": "/s/c0", "pid": 12, "log": "/s/c0/kafka.log",
         "config": "/s/c0/server.properties", "data_dir": "/s/c0/data", "cluster_id": "abc",
         "listeners": {"PLAINTEXT": "127.0.0.1:1", "SASL_PLAINTEXT": "127.0.0.1:2",
                       "SSL": "127.0.0.1:3", "SASL_SSL": "127.0.0.1:4",
                       "INTERNAL": "127.0.0.1:5", "CONTROLLER": "127.0.0.1:6"}}
      ],
      "users": {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"},
      "super_users": ["User:admin", "User:ANONYMOUS", "User:CN=ferry-client"],
      "tls": {"ca": "/s/tls/ca.pem", "client_cert": "/s/tls/client.pem",
              "client_key": "/s/tls/client.key", "client_keystore": "/s/tls/client-keystore.pem",
              "other_ca": "/s/tls/other-ca.pem", "client_principal": "User:CN=ferry-client"}
    }"#;

    #[test]
    fn parses_clusters_json() {
        let state = StateFile::parse(SAMPLE, Path::new("x")).unwrap();
        let clusters = state.into_clusters();
        assert_eq!(clusters.len(), 1);
        let c = &clusters[0];
        assert_eq!(c.name(), "c0");
        assert_eq!(c.version(), "4.3.1");
        assert!(c.is_kafka4());
        assert_eq!(c.bootstrap(Listener::Plaintext), "127.0.0.1:1");
        assert_eq!(c.bootstrap(Listener::SaslSsl), "127.0.0.1:4");
        assert_eq!(c.user("alice").password, "alice-secret");
        assert_eq!(c.tls().other_ca, Path::new("/s/tls/other-ca.pem"));
        assert_eq!(c.libs_dir(), Path::new("/c/4.3.1/libs"));
        assert_eq!(c.users(), ["admin", "alice", "bob"]);
    }

    #[test]
    fn rejects_unknown_format() {
        let text = SAMPLE.replace("\"format\": 1", "\"format\": 2");
        let err = StateFile::parse(&text, Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("format 2"), "{err}");
    }

    #[test]
    fn client_properties_per_listener() {
        let c = StateFile::parse(SAMPLE, Path::new("x"))
            .unwrap()
            .into_clusters()
            .remove(0);
        let admin = c.user("admin");
        let get = |props: &[(String, String)], k: &str| {
            props
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let plain = c.client_properties(Listener::Plaintext, &admin, SaslMechanism::Plain);
        assert_eq!(
            get(&plain, "security.protocol").as_deref(),
            Some("PLAINTEXT")
        );
        assert_eq!(get(&plain, "sasl.jaas.config"), None);
        let sasl = c.client_properties(Listener::SaslSsl, &admin, SaslMechanism::ScramSha256);
        assert_eq!(
            get(&sasl, "sasl.mechanism").as_deref(),
            Some("SCRAM-SHA-256")
        );
        assert!(
            get(&sasl, "sasl.jaas.config")
                .unwrap()
                .contains("password=\"admin-secret\"")
        );
        assert_eq!(
            get(&sasl, "ssl.truststore.location").as_deref(),
            Some("/s/tls/ca.pem")
        );
        assert_eq!(get(&sasl, "ssl.keystore.location"), None);
        let ssl = c.client_properties(Listener::Ssl, &admin, SaslMechanism::Plain);
        assert_eq!(
            get(&ssl, "ssl.keystore.location").as_deref(),
            Some("/s/tls/client-keystore.pem")
        );
        assert_eq!(get(&ssl, "sasl.mechanism"), None);
    }
}
