//! `mm2.properties`: MirrorMaker 2's configuration file, read as MM2 reads it.
//!
//! ```
//! use ferry::config::MirrorConfig;
//!
//! let (config, notices) = MirrorConfig::from_str(
//!     "clusters = A, B\n\
//!      A.bootstrap.servers = a1:9092\n\
//!      B.bootstrap.servers = b1:9092\n\
//!      A->B.enabled = true\n\
//!      A->B.topics = orders.*\n",
//! )?;
//! let flow = &config.flows()[0];
//! assert_eq!((flow.source.as_str(), flow.target.as_str()), ("A", "B"));
//! assert_eq!(flow.remote_topic("orders"), "A.orders");
//! assert!(flow.should_replicate_topic("orders-eu"));
//! assert!(!flow.should_replicate_topic("B.orders"), "a cycle back into B");
//! assert!(notices.is_empty());
//! # Ok::<(), ferry::config::ConfigError>(())
//! ```
//!
//! # What is read
//!
//! - **Syntax**: Java properties ([`properties`]); `${env:VAR}`, `${file:path:key}` and
//!   `${directory:dir:file}` placeholders resolved at load ([`placeholder`]).
//! - **Scopes** (`MirrorMakerConfig`): `clusters` lists the aliases; `{S}->{T}.enabled=true`
//!   enables a flow (default `false`); `{alias}.k` configures one cluster; `{S}->{T}.k` one
//!   flow; `{alias}.producer.k`, `{alias}.consumer.k`, `{alias}.admin.k` one client of one
//!   cluster. Precedence: `{S}->{T}.k` over `{alias}.k` over bare `k` over MM2's default.
//! - **Security**: top-level `security.protocol`, `sasl.*` and `ssl.*` are defaults for every
//!   cluster, as in MM2; `sasl.jaas.config` is parsed (PLAIN and SCRAM logins); PEM key and
//!   trust stores (files or inline, KIP-651); JKS and PKCS12 stores are refused with the
//!   commands that convert them.
//! - **Flows**: every key of MM2's source, checkpoint and heartbeat connectors with its
//!   default ([`FlowConfig`]), filters with MM2's list semantics, replication policies by their
//!   Java class names.
//!
//! # Where ferry differs from MM2, on purpose
//!
//! Each difference raises a [`ConfigNotice`], so nothing changes silently:
//!
//! - Bare `producer.*`, `consumer.*`, `admin.*`, `exactly.once.support`,
//!   `exactly.once.source.support` and bare client keys, which MM2 dedicated mode silently
//!   ignores, are applied as defaults for every cluster or flow they would apply to in prefixed
//!   form; any prefixed form wins ([`NoticeKind::Mm2WouldIgnore`]).
//! - Known MM2, Connect and client keys ferry has no use for (`tasks.max`, converters,
//!   `offset.storage.*`, `dedicated.mode.*`, ...) are reported as ignored, never dropped
//!   silently; unknown keys are reported with the nearest known key, and are errors under
//!   [`LoadOptions::strict`].
//! - Placeholders of the built-in providers resolve even when `config.providers` does not
//!   declare them, and an unresolvable placeholder is an error instead of a literal `${...}`.
//! - The source consumer reads `read_committed` unless told otherwise (MM2 copies aborted
//!   transactional records as data).
//! - A flow into itself, an empty separator with the default policy, and a cycle of
//!   identity-policy flows are refused at load.
//!
//! # Placeholders
//!
//! Resolution rules are in [`placeholder`]. Values resolved from a placeholder are treated as
//! secrets from then on, and no error or notice ever shows a resolved or secret value.
//!
//! # References
//! - KIP-382 (MirrorMaker 2), KIP-297/KIP-421/KIP-632/KIP-887 (config providers), KIP-651 (PEM),
//!   KIP-716, KIP-894, KIP-949, KIP-1031, KIP-1089
//! - `connect/mirror/src/main/java/org/apache/kafka/connect/mirror/MirrorMakerConfig.java`
//!   (`clusterProps`, `connectorBaseConfig`, `clusterPairs`)

mod cluster;
mod error;
mod flow;
mod jaas;
mod keys;
mod load;
mod notice;
pub mod placeholder;
pub mod properties;
mod secret;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use cluster::{
    BrokerAddress, ClientIdentity, ClientOverrides, ClientSetting, ClusterConfig, SaslMechanism,
    SaslSettings, SecurityProtocol, SettingValue, TlsSettings, TlsVersion, TrustAnchors,
};
pub use error::ConfigError;
pub use flow::{
    AutoOffsetReset, ExactlyOnceSourceSupport, ExactlyOnceSupport, FlowConfig, IsolationLevel,
    OffsetSyncsLocation, ReplicationFactor, UseDefaultsFrom, defaults,
};
pub use jaas::{JaasError, JaasLogin, PLAIN_LOGIN_MODULE, SCRAM_LOGIN_MODULE};
pub use keys::{ClientRole, MirrorKey, UnknownKeyError};
pub use notice::{ConfigNotice, NoticeKind, Severity};
pub use placeholder::PlaceholderError;
pub use properties::Properties;
pub use secret::Secret;

use placeholder::EnvSource;

/// How a configuration is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    strict: bool,
    env: EnvSource,
    base_dir: Option<PathBuf>,
}

impl LoadOptions {
    /// Defaults: lenient (unknown keys are warnings), the process environment, relative
    /// placeholder paths against the working directory (as in Java).
    pub fn new() -> Self {
        Self::default()
    }

    /// In strict mode an unknown key is a [`ConfigError::UnknownKey`] instead of a notice.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Reads `${env:..}` placeholders from these variables only, not from the process
    /// environment.
    pub fn with_env<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env = EnvSource::Map(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect::<BTreeMap<_, _>>(),
        );
        self
    }

    /// Resolves relative paths of `${file:..}` and `${directory:..}` placeholders against
    /// `dir`.
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }
}

/// A loaded `mm2.properties`: the clusters and the enabled flows, every setting resolved.
#[derive(Debug, Clone)]
pub struct MirrorConfig {
    aliases: Vec<String>,
    clusters: Vec<ClusterConfig>,
    flows: Vec<FlowConfig>,
}

impl MirrorConfig {
    /// Loads a file with default [`LoadOptions`]. The file is decoded as UTF-8, or as
    /// ISO-8859-1 (with a notice) when it is not valid UTF-8.
    pub fn from_path(path: impl AsRef<Path>) -> Result<(Self, Vec<ConfigNotice>), ConfigError> {
        Self::load_path(path, &LoadOptions::default())
    }

    /// Loads properties text with default [`LoadOptions`].
    #[allow(clippy::should_implement_trait)] // returns notices too, so it cannot be `FromStr`
    pub fn from_str(text: &str) -> Result<(Self, Vec<ConfigNotice>), ConfigError> {
        Self::load_str(text, &LoadOptions::default())
    }

    /// Loads a file.
    pub fn load_path(
        path: impl AsRef<Path>,
        options: &LoadOptions,
    ) -> Result<(Self, Vec<ConfigNotice>), ConfigError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let (text, latin1) = decode_text(&bytes);
        let mut notices = Vec::new();
        if latin1 {
            notices.push(ConfigNotice::new(None, None, NoticeKind::Latin1File));
        }
        load::load(&Properties::parse(&text)?, options, notices)
    }

    /// Loads properties text.
    pub fn load_str(
        text: &str,
        options: &LoadOptions,
    ) -> Result<(Self, Vec<ConfigNotice>), ConfigError> {
        load::load(&Properties::parse(text)?, options, Vec::new())
    }

    /// Loads already parsed properties.
    pub fn from_properties(
        props: &Properties,
        options: &LoadOptions,
    ) -> Result<(Self, Vec<ConfigNotice>), ConfigError> {
        load::load(props, options, Vec::new())
    }

    /// The enabled flows, in `clusters` order (source, then target).
    pub fn flows(&self) -> &[FlowConfig] {
        &self.flows
    }

    /// The enabled flow `source -> target`, if any.
    pub fn flow(&self, source: &str, target: &str) -> Option<&FlowConfig> {
        self.flows
            .iter()
            .find(|f| f.source == source && f.target == target)
    }

    /// A cluster's connection settings.
    pub fn cluster(&self, alias: &str) -> Option<&ClusterConfig> {
        self.clusters.iter().find(|c| c.alias == alias)
    }

    /// Every cluster, in `clusters` order.
    pub fn clusters(&self) -> &[ClusterConfig] {
        &self.clusters
    }

    /// The aliases of `clusters`, in order, without duplicates.
    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.aliases.iter().map(String::as_str)
    }
}

/// Decodes file bytes: UTF-8 when valid, else ISO-8859-1. Returns whether the fallback was
/// used.
pub(crate) fn decode_text(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Cow::Borrowed(s), false),
        Err(_) => (
            Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
            true,
        ),
    }
}

#[cfg(test)]
mod tests;
