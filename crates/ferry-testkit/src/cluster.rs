//! Handles on running clusters: listeners, users, TLS files, and the dedicated-cluster lifecycle.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::launcher::{self, ClusterRecord, StateFile};
use crate::tools::JavaTools;

/// A client listener of a test cluster. All bind to `127.0.0.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Listener {
    /// No encryption, no authentication; the principal is `User:ANONYMOUS` (a super user).
    Plaintext,
    /// SASL over TCP: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512.
    SaslPlaintext,
    /// TLS with client authentication required (mutual TLS); the principal is the client
    /// certificate's subject ([`TlsFiles::client_principal`], a super user).
    Ssl,
    /// SASL over TLS (server authentication only; no client certificate needed).
    SaslSsl,
}

impl Listener {
    /// All four client listeners.
    pub const ALL: [Self; 4] = [
        Self::Plaintext,
        Self::SaslPlaintext,
        Self::Ssl,
        Self::SaslSsl,
    ];

    /// Kafka's name of the listener and of its `security.protocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether the listener authenticates with SASL.
    pub fn is_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    /// Whether the listener uses TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Listener {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::Usage(format!("unknown listener {s:?}")))
    }
}

/// A SASL mechanism the SASL listeners accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// PLAIN (users from the listener's JAAS `user_<name>="<password>"` entries).
    Plain,
    /// SCRAM-SHA-256 (users created at format time, KIP-900).
    ScramSha256,
    /// SCRAM-SHA-512 (users created at format time, KIP-900).
    ScramSha512,
}

impl SaslMechanism {
    /// All three mechanisms.
    pub const ALL: [Self; 3] = [Self::Plain, Self::ScramSha256, Self::ScramSha512];

    /// Kafka's `sasl.mechanism` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The JAAS login module a Java client uses for this mechanism.
    pub fn login_module(self) -> &'static str {
        match self {
            Self::Plain => "org.apache.kafka.common.security.plain.PlainLoginModule",
            Self::ScramSha256 | Self::ScramSha512 => {
                "org.apache.kafka.common.security.scram.ScramLoginModule"
            }
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user name and password, valid for every mechanism of the SASL listeners.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (`admin`, `alice`, `bob`).
    pub username: String,
    /// Password.
    pub password: String,
}

impl Credentials {
    /// Credentials from parts (for example a wrong password for a negative test).
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The Kafka principal of this user: `User:<name>`.
    pub fn principal(&self) -> String {
        format!("User:{}", self.username)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Throw-away test passwords, but keep them out of assertion messages anyway.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// PEM files of the cluster set's throw-away PKI (shared by every cluster of one `up`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct TlsFiles {
    /// CA certificate that signed the brokers' and the client's certificates.
    pub ca: PathBuf,
    /// Client certificate (signed by `ca`), accepted by the SSL listener.
    pub client_cert: PathBuf,
    /// The client certificate's private key, PKCS#8 PEM, unencrypted.
    pub client_key: PathBuf,
    /// `client_key` followed by `client_cert` in one file (a Java `ssl.keystore.type=PEM` store).
    pub client_keystore: PathBuf,
    /// An unrelated CA certificate, for "unknown issuer" tests.
    pub other_ca: PathBuf,
    /// The Kafka principal of the client certificate, e.g. `User:CN=ferry-client,O=ferry`.
    pub client_principal: String,
}

/// One running single-node cluster (combined broker + controller).
#[derive(Debug, Clone)]
pub struct Cluster {
    pub(crate) record: ClusterRecord,
    pub(crate) state: std::sync::Arc<StateFile>,
}

impl Cluster {
    /// The cluster's name in its state dir (`c0`, `c1`, …).
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// The Kafka release, e.g. `"4.3.1"`.
    pub fn version(&self) -> &str {
        &self.record.version
    }

    /// Whether the cluster runs Kafka 4 or later.
    pub fn is_kafka4(&self) -> bool {
        !self.record.version.starts_with("3.")
    }

    /// `host:port` of a listener, for `bootstrap.servers`.
    pub fn bootstrap(&self, listener: Listener) -> String {
        self.record
            .listeners
            .get(listener.as_str())
            .cloned()
            .unwrap_or_default()
    }

    /// The TLS files (CA, client certificate and key, an unrelated CA).
    pub fn tls(&self) -> &TlsFiles {
        &self.state.tls
    }

    /// The credentials of `admin` (super user), `alice` or `bob` (ordinary users).
    ///
    /// # Panics
    /// On any other name: that is a bug in the test.
    pub fn user(&self, name: &str) -> Credentials {
        match self.state.users.get(name) {
            Some(password) => Credentials::new(name, password.clone()),
            None => panic!(
                "ferry-testkit: no user {name:?}; the clusters have {:?}",
                self.state.users.keys().collect::<Vec<_>>()
            ),
        }
    }

    /// The names of all users (admin, alice, bob).
    pub fn users(&self) -> Vec<String> {
        self.state.users.keys().cloned().collect()
    }

    /// The super-user principals configured on the broker.
    pub fn super_users(&self) -> &[String] {
        &self.state.super_users
    }

    /// The cluster's own directory (config, log, data).
    pub fn dir(&self) -> &Path {
        &self.record.dir
    }

    /// The broker's `log.dirs` (one directory).
    pub fn data_dir(&self) -> &Path {
        &self.record.data_dir
    }

    /// The broker's `server.properties`.
    pub fn config_path(&self) -> &Path {
        &self.record.config
    }

    /// The broker's stdout/stderr log.
    pub fn log_path(&self) -> &Path {
        &self.record.log
    }

    /// The KRaft cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.record.cluster_id
    }

    /// The broker JVM's current pid (read from the state dir: it changes on restart), or `None`
    /// when the cluster is stopped.
    pub fn pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.record.dir.join("pid")).ok()?;
        text.trim().parse().ok()
    }

    /// Directory holding the Kafka jars (`java -cp '<libs>/*'`).
    pub fn libs_dir(&self) -> &Path {
        &self.state.libs
    }

    /// Java client properties for a listener: `security.protocol`, and for SASL listeners
    /// `sasl.mechanism` + `sasl.jaas.config` with `credentials`, and for TLS listeners PEM trust
    /// store (and, for [`Listener::Ssl`], the PEM key store with the client certificate).
    /// Usable for Java tools and for MM2's `<alias>.` client settings.
    pub fn client_properties(
        &self,
        listener: Listener,
        credentials: &Credentials,
        mechanism: SaslMechanism,
    ) -> Vec<(String, String)> {
        let mut props = vec![
            ("bootstrap.servers".to_owned(), self.bootstrap(listener)),
            ("security.protocol".to_owned(), listener.as_str().to_owned()),
        ];
        if listener.is_sasl() {
            props.push(("sasl.mechanism".to_owned(), mechanism.as_str().to_owned()));
            props.push((
                "sasl.jaas.config".to_owned(),
                format!(
                    "{} required username=\"{}\" password=\"{}\";",
                    mechanism.login_module(),
                    credentials.username,
                    credentials.password
                ),
            ));
        }
        if listener.is_tls() {
            let tls = self.tls();
            props.push(("ssl.truststore.type".to_owned(), "PEM".to_owned()));
            props.push((
                "ssl.truststore.location".to_owned(),
                tls.ca.display().to_string(),
            ));
            if listener == Listener::Ssl {
                props.push(("ssl.keystore.type".to_owned(), "PEM".to_owned()));
                props.push((
                    "ssl.keystore.location".to_owned(),
                    tls.client_keystore.display().to_string(),
                ));
            }
        }
        props
    }

    /// Java tools against this cluster on `listener`, as `admin` with SCRAM-SHA-512 on the SASL
    /// listeners (change with [`JavaTools::with_user`] / [`JavaTools::with_mechanism`]).
    pub fn tools(&self, listener: Listener) -> JavaTools<'_> {
        JavaTools::new(self, listener)
    }
}

/// Two clusters of the same release: the source and the target of a replication test.
#[derive(Debug)]
pub struct ClusterPair {
    /// The source cluster.
    pub source: Cluster,
    /// The target cluster.
    pub target: Cluster,
}

/// A cluster that belongs to one test. It can be stopped, killed and started again (same
/// config, ports and data). Dropping it stops the broker and removes its state dir.
#[derive(Debug)]
pub struct DedicatedCluster {
    pub(crate) cluster: Cluster,
    pub(crate) state_dir: PathBuf,
}

impl DedicatedCluster {
    /// Controlled shutdown (SIGTERM; SIGKILL after 60 s). Data and ports are kept.
    pub fn stop(&self) -> Result<()> {
        launcher::script_in_state(&self.state_dir, &["stop", self.cluster.name()])
    }

    /// Kills the broker with SIGKILL (a crash). Data and ports are kept.
    pub fn kill(&self) -> Result<()> {
        launcher::script_in_state(&self.state_dir, &["kill", self.cluster.name()])
    }

    /// Starts the stopped broker again with the same config and data, and waits until it serves
    /// requests.
    pub fn start(&self) -> Result<()> {
        launcher::script_in_state(&self.state_dir, &["start", self.cluster.name()])
    }

    /// [`stop`](Self::stop) then [`start`](Self::start).
    pub fn restart(&self) -> Result<()> {
        self.stop()?;
        self.start()
    }

    /// Whether the broker process is alive.
    pub fn is_running(&self) -> bool {
        self.cluster
            .pid()
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    }

    /// The state dir of this cluster (holds `clusters.json`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
}

impl Deref for DedicatedCluster {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl Drop for DedicatedCluster {
    fn drop(&mut self) {
        if let Err(e) = launcher::script_in_state(&self.state_dir, &["down"]) {
            eprintln!("ferry-testkit: stopping dedicated cluster failed: {e}");
        }
    }
}

/// Users and passwords as a map (used by the launcher when parsing `clusters.json`).
pub(crate) type Users = BTreeMap<String, String>;
