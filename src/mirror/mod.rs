//! The embeddable API: a [`Mirror`] built from an `mm2.properties` file or a builder, run as a
//! future, observed through [`Mirror::status`] and [`Mirror::events`], stopped through a
//! [`ShutdownHandle`].
//!
//! ```no_run
//! # #[tokio::main]
//! # async fn main() -> Result<(), ferry::Error> {
//! let mirror = ferry::Mirror::builder()
//!     .with_cluster("A", "127.0.0.1:9092")
//!     .with_cluster("B", "127.0.0.1:9192")
//!     .with_flow("A", "B")
//!     .with_config("A->B.topics", "orders.*")
//!     .build()?;
//! let stop = mirror.shutdown_handle();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     stop.shutdown();
//! });
//! mirror.run().await?; // drains in-flight batches and stores progress before returning
//! # Ok(())
//! # }
//! ```
//!
//! Building validates everything before any network I/O: the file or the builder's keys are
//! loaded as `mm2.properties` ([`crate::config`]), then mapped onto the engine's settings.
//! What the engine does not implement yet is reported as a [`ConfigNotice`]
//! ([`Mirror::notices`], also logged with `tracing`), never dropped silently.
//!
//! The engine's own modules ([`settings`], [`engine`], [`events`], [`policy`], ...) are
//! re-exported here for embedders who build [`settings::EngineSettings`] directly.

pub mod check;
mod mapping;
pub mod status;
pub mod verify;

// The engine's modules, so `ferry::mirror::settings::FlowSettings` and friends are reachable
// from the facade.
pub use ferry_mirror::{
    budget, engine, events, filter, metrics, offset_map, offset_sync, policy, progress, settings,
    topics,
};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferry_client::ConnectionConfig;
use ferry_mirror::engine::{Engine, EngineHandle};
use ferry_mirror::settings::{EngineSettings, PositionLossPolicy};
use tokio::sync::{broadcast, watch};

use crate::config::{
    ConfigError, ConfigNotice, LoadOptions, MirrorConfig, NoticeKind, Properties, Severity,
};

pub use ferry_mirror::engine::{
    EngineStatus, FlowStatus, MirrorError, PartitionState, PartitionStatus,
};
pub use ferry_mirror::events::{CountersSnapshot, MirrorEvent, StopReason};

/// Any error of the `ferry` facade.
///
/// Branch on the variant or the classifiers ([`Error::is_config`], [`Error::is_retriable`],
/// [`Error::is_auth`]), not on the `Display` text. No variant shows a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid or asks for something ferry does not implement; nothing
    /// was started. The configuration's author is at fault (or the environment, for
    /// [`ConfigError::is_io`]).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The engine failed while running: a cluster unreachable or refusing the login at start,
    /// a failed client or admin call, a flow task that ended abnormally.
    #[error(transparent)]
    Mirror(Box<MirrorError>),
    /// An operation did not finish in time (e.g. `ferry check` listing live topics).
    #[error("{operation} on cluster {cluster} did not finish within {after:?}")]
    Timeout {
        /// Cluster alias.
        cluster: String,
        /// What was being done.
        operation: &'static str,
        /// The time limit.
        after: Duration,
    },
    /// [`Mirror::run`] was called a second time; a mirror runs once.
    #[error("this mirror has already been run; build a new one to run again")]
    AlreadyRun,
}

impl From<MirrorError> for Error {
    fn from(e: MirrorError) -> Self {
        Self::Mirror(Box::new(e))
    }
}

impl Error {
    /// Whether the configuration (or the builder's input) is at fault.
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Config(_))
    }

    /// Whether trying again later may succeed (network, broker unavailable, timeouts).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Mirror(e) => e.is_retriable(),
            Self::Timeout { .. } => true,
            Self::Config(e) => e.is_io(),
            Self::AlreadyRun => false,
        }
    }

    /// Whether a cluster refused the credentials (or the principal lacks a permission).
    pub fn is_auth(&self) -> bool {
        let Self::Mirror(e) = self else {
            return false;
        };
        match &**e {
            MirrorError::Connect { source, .. } | MirrorError::Client { source, .. } => {
                source.is_auth()
            }
            MirrorError::Admin { source, .. } => source.is_auth(),
            _ => false,
        }
    }
}

/// Options of [`Mirror::load`].
#[derive(Debug, Clone, Default)]
pub struct MirrorOptions {
    load: LoadOptions,
    strict: bool,
    target_clusters: Option<Vec<String>>,
}

impl MirrorOptions {
    /// Lenient loading (unknown keys are warnings), every enabled flow.
    pub fn new() -> Self {
        Self::default()
    }

    /// In strict mode an unknown key is an error.
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Runs only the flows whose target is one of these aliases (MM2's `--clusters`).
    #[must_use]
    pub fn with_target_clusters<I, S>(mut self, aliases: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.target_clusters = Some(aliases.into_iter().map(Into::into).collect());
        self
    }

    /// How placeholders are resolved (environment, base directory).
    #[must_use]
    pub fn with_load_options(mut self, load: LoadOptions) -> Self {
        self.load = load;
        self
    }
}

/// Stops a running [`Mirror`] from any task or thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    tx: Arc<watch::Sender<bool>>,
}

impl ShutdownHandle {
    /// Asks the mirror to stop: fetching stops, in-flight batches are awaited, progress is
    /// stored, then [`Mirror::run`] returns. Idempotent; before `run`, `run` returns at once.
    pub fn shutdown(&self) {
        self.tx.send_replace(true);
    }

    /// Whether shutdown was requested.
    pub fn is_shutdown(&self) -> bool {
        *self.tx.borrow()
    }
}

/// The engine's events as they happen (see [`MirrorEvent`]).
#[derive(Debug)]
pub struct MirrorEvents {
    rx: broadcast::Receiver<MirrorEvent>,
    missed: u64,
}

impl MirrorEvents {
    /// The next event; `None` once the mirror is dropped. A receiver slower than the engine
    /// loses the oldest events; [`MirrorEvents::missed`] counts them.
    pub async fn next(&mut self) -> Option<MirrorEvent> {
        loop {
            match self.rx.recv().await {
                Ok(ev) => return Some(ev),
                Err(broadcast::error::RecvError::Lagged(n)) => self.missed += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// An event already waiting, without waiting.
    pub fn try_next(&mut self) -> Option<MirrorEvent> {
        loop {
            match self.rx.try_recv() {
                Ok(ev) => return Some(ev),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.missed += n,
                Err(_) => return None,
            }
        }
    }

    /// How many events this receiver lost because it fell behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

/// A configured replication between Kafka clusters. See the module docs.
#[derive(Debug)]
pub struct Mirror {
    config: MirrorConfig,
    notices: Vec<ConfigNotice>,
    settings: EngineSettings,
    engine: Mutex<Option<Engine>>,
    handle: EngineHandle,
    shutdown: ShutdownHandle,
}

impl Mirror {
    /// Loads an `mm2.properties` file (lenient: unknown keys are warnings), logs its notices
    /// with `tracing`, and maps it onto the engine. No network I/O (TLS PEM files are read).
    ///
    /// # Errors
    /// [`Error::Config`] for an unreadable or invalid file, or a setting ferry cannot honour.
    pub fn from_properties(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::load(path, &MirrorOptions::new())
    }

    /// [`Mirror::from_properties`] with options (strict mode, `--clusters`, placeholders).
    ///
    /// # Errors
    /// As [`Mirror::from_properties`].
    pub fn load(path: impl AsRef<Path>, options: &MirrorOptions) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let (text, latin1) = crate::config::decode_text(&bytes);
        let props = Properties::parse(&text)?;
        let load = options.load.clone().strict(options.strict);
        let (config, mut notices) = MirrorConfig::from_properties(&props, &load)?;
        if latin1 {
            notices.insert(0, ConfigNotice::new(None, None, NoticeKind::Latin1File));
        }
        let mirror = Self::assemble(
            config,
            notices,
            Some(&props),
            options.target_clusters.as_deref(),
            &BTreeMap::new(),
            |_| {},
        )?;
        mirror.log_notices();
        Ok(mirror)
    }

    /// A builder for the embedding case.
    pub fn builder() -> MirrorBuilder {
        MirrorBuilder::default()
    }

    fn assemble(
        config: MirrorConfig,
        mut notices: Vec<ConfigNotice>,
        props: Option<&Properties>,
        only_targets: Option<&[String]>,
        connections: &BTreeMap<String, ConnectionConfig>,
        adjust: impl FnOnce(&mut EngineSettings),
    ) -> Result<Self, ConfigError> {
        let mut mapped = mapping::map_config(&config, props, only_targets, connections)?;
        notices.append(&mut mapped.notices);
        adjust(&mut mapped.settings);
        let engine =
            Engine::new(mapped.settings.clone()).map_err(|e| mapping::from_engine_error(&e))?;
        let (tx, _) = watch::channel(false);
        Ok(Self {
            config,
            notices,
            settings: mapped.settings,
            handle: engine.handle(),
            engine: Mutex::new(Some(engine)),
            shutdown: ShutdownHandle { tx: Arc::new(tx) },
        })
    }

    fn log_notices(&self) {
        for n in &self.notices {
            match n.severity() {
                Severity::Warning => tracing::warn!(key = n.key.as_deref(), line = n.line, "{n}"),
                _ => tracing::info!(key = n.key.as_deref(), line = n.line, "{n}"),
            }
        }
    }

    /// The loaded configuration (clusters and every enabled flow, `--clusters` not applied).
    pub fn config(&self) -> &MirrorConfig {
        &self.config
    }

    /// What loading and mapping noticed: ignored keys, features not implemented yet, MM2
    /// differences.
    pub fn notices(&self) -> &[ConfigNotice] {
        &self.notices
    }

    /// The engine settings the configuration maps to (the flows that will run).
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Connects, creates target topics and replicates until [`Mirror::shutdown`] (or a
    /// [`ShutdownHandle`]) is called; then stops fetching, awaits in-flight batches, stores
    /// progress and returns `Ok(())`. Dropping the future instead is a crash: at most the
    /// unacknowledged batches are sent again by the next run.
    ///
    /// # Errors
    /// [`Error::Mirror`] when a cluster cannot be reached or refuses the login at start, or a
    /// flow fails; [`Error::AlreadyRun`] on a second call.
    pub async fn run(&self) -> Result<(), Error> {
        let engine = self
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or(Error::AlreadyRun)?;
        let mut rx = self.shutdown.tx.subscribe();
        let stop = async move {
            // The sender lives in `self`, so this only ends on a shutdown request.
            let _ = rx.wait_for(|stop| *stop).await;
        };
        engine.run(stop).await.map_err(Error::from)
    }

    /// Asks a running mirror to stop (see [`ShutdownHandle::shutdown`]).
    pub fn shutdown(&self) {
        self.shutdown.shutdown();
    }

    /// A handle that stops the mirror from another task.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// A snapshot of every flow and partition: positions, source end offsets, lag, counters.
    pub fn status(&self) -> EngineStatus {
        self.handle.status()
    }

    /// [`Mirror::status`] as a [`status::StatusReport`]: lag in records and seconds, states,
    /// and the "ready for cutover" verdict (also served at `/status` by `ferry run
    /// --metrics-addr`).
    pub fn status_report(&self) -> status::StatusReport {
        status::StatusReport::from_engine(&self.handle.status())
            .with_groups(&self.handle.group_offsets())
    }

    /// The engine's events from now on.
    pub fn events(&self) -> MirrorEvents {
        MirrorEvents {
            rx: self.handle.subscribe(),
            missed: 0,
        }
    }
}

/// Builds a [`Mirror`] in code. Keys use `mm2.properties` spellings and scopes
/// (`A->B.topics`, `B.producer.linger.ms`), and are checked strictly: an unknown key is an
/// error, not a warning. Everything is validated in [`MirrorBuilder::build`], before any I/O.
///
/// Defaults are MM2's (see [`crate::config::FlowConfig`]), with ferry's differences: source
/// reads are `read_committed`, and a partition whose position is lost stops
/// ([`PositionLossPolicy::StopPartition`]).
#[derive(Debug, Default)]
pub struct MirrorBuilder {
    clusters: Vec<String>,
    entries: Vec<(String, String)>,
    connections: BTreeMap<String, ConnectionConfig>,
    in_flight_bytes: Option<usize>,
    position_loss: Option<PositionLossPolicy>,
    target_clusters: Option<Vec<String>>,
}

impl MirrorBuilder {
    fn add_alias(&mut self, alias: &str) {
        if !self.clusters.iter().any(|a| a == alias) {
            self.clusters.push(alias.to_owned());
        }
    }

    /// A cluster reachable over PLAINTEXT (or with security keys given by
    /// [`MirrorBuilder::with_config`], e.g. `A.security.protocol`).
    #[must_use]
    pub fn with_cluster(mut self, alias: &str, bootstrap_servers: impl Into<String>) -> Self {
        self.add_alias(alias);
        self.entries.push((
            format!("{alias}.bootstrap.servers"),
            bootstrap_servers.into(),
        ));
        self
    }

    /// A cluster with a ready connection configuration (SASL, TLS, an embedder's own
    /// `rustls::ClientConfig`). Security keys given for this alias are then not used.
    #[must_use]
    pub fn with_connection(mut self, alias: &str, connection: ConnectionConfig) -> Self {
        self.add_alias(alias);
        self.entries.push((
            format!("{alias}.bootstrap.servers"),
            connection.bootstrap().join(","),
        ));
        self.connections.insert(alias.to_owned(), connection);
        self
    }

    /// Enables the flow `source -> target`.
    #[must_use]
    pub fn with_flow(mut self, source: &str, target: &str) -> Self {
        self.entries
            .push((format!("{source}->{target}.enabled"), "true".to_owned()));
        self
    }

    /// Any `mm2.properties` key, with its scope (`topics`, `A->B.topics`,
    /// `A.consumer.isolation.level`); later values win. Keys are checked in
    /// [`MirrorBuilder::build`], strictly: an unknown key is a [`ConfigError::UnknownKey`]
    /// whose line counts the builder's keys in call order, after a generated `clusters` line.
    #[must_use]
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.entries.push((key.into(), value.into()));
        self
    }

    /// Bytes of batches that may await acknowledgement, all flows together (default 64 MiB).
    #[must_use]
    pub fn with_in_flight_bytes(mut self, bytes: usize) -> Self {
        self.in_flight_bytes = Some(bytes);
        self
    }

    /// What every flow does when a partition's position is lost (below the source log start,
    /// past its end, or the topic recreated). Default: stop the partition.
    #[must_use]
    pub fn with_position_loss_policy(mut self, policy: PositionLossPolicy) -> Self {
        self.position_loss = Some(policy);
        self
    }

    /// Runs only the flows whose target is one of these aliases.
    #[must_use]
    pub fn with_target_clusters<I, S>(mut self, aliases: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.target_clusters = Some(aliases.into_iter().map(Into::into).collect());
        self
    }

    /// The keys as `mm2.properties` text.
    fn to_properties(&self) -> String {
        use crate::config::properties::{escape_key, escape_value};
        let mut text = String::new();
        let explicit_clusters = self.entries.iter().any(|(k, _)| k == "clusters");
        if !explicit_clusters && !self.clusters.is_empty() {
            text.push_str(&format!(
                "clusters={}\n",
                escape_value(&self.clusters.join(","))
            ));
        }
        for (k, v) in &self.entries {
            text.push_str(&format!("{}={}\n", escape_key(k), escape_value(v)));
        }
        text
    }

    /// Validates everything and builds the mirror; no network I/O.
    ///
    /// # Errors
    /// [`ConfigError`]: an unknown key, an invalid value, a missing cluster, no enabled flow, a
    /// setting ferry cannot honour.
    pub fn build(self) -> Result<Mirror, ConfigError> {
        let text = self.to_properties();
        let props = Properties::parse(&text)?;
        let (config, notices) =
            MirrorConfig::from_properties(&props, &LoadOptions::new().strict(true))?;
        // A key scoped to a cluster the builder was not given is a mistake in code, not a
        // stray line of a shared file.
        if let Some((key, alias)) = notices.iter().find_map(|n| match &n.kind {
            NoticeKind::UnknownAlias { alias } => Some((n.key.clone().unwrap_or_default(), alias)),
            _ => None,
        }) {
            return Err(ConfigError::MissingKey {
                key: format!("{alias}.bootstrap.servers"),
                reason: format!(
                    "`{key}` names cluster `{alias}`; add it with with_cluster or with_connection"
                ),
            });
        }
        let in_flight = self.in_flight_bytes;
        let loss = self.position_loss;
        let mirror = Mirror::assemble(
            config,
            notices,
            Some(&props),
            self.target_clusters.as_deref(),
            &self.connections,
            |s| {
                if let Some(bytes) = in_flight {
                    s.in_flight_bytes = bytes;
                }
                if let Some(policy) = loss {
                    for f in &mut s.flows {
                        f.on_offset_out_of_range = policy;
                        f.on_truncation = policy;
                        f.on_topic_recreated = policy;
                    }
                }
            },
        )?;
        mirror.log_notices();
        Ok(mirror)
    }
}

#[cfg(test)]
mod tests;
