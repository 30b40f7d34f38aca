//! `mm2.properties` → engine settings: [`FlowConfig`] and [`ClusterConfig`] onto
//! [`FlowSettings`], [`EngineSettings`] and [`ConnectionConfig`].
//!
//! Every key the engine implements is mapped. A key whose feature the engine does not implement
//! yet (checkpoints, group-offset sync, exactly-once) is
//! never dropped silently: it becomes a [`ConfigNotice`] naming the key (and its line, when the
//! file sets it), or a [`ConfigError`] when running without it would betray the setting
//! (`exactly.once.support=required`, `auto.offset.reset=none`, restricted TLS versions,
//! encrypted private keys). Kafka client settings that ferry's own client does not use are
//! reported the same way.
//!
//! # References
//! - mm2-compat.md §2 (keys and defaults)
//! - `connect/mirror/src/main/java/org/apache/kafka/connect/mirror/MirrorSourceConfig.java`,
//!   `MirrorCheckpointConfig.java` (which keys exist), for behaviour only

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use ferry_client::config::ConfigError as ClientConfigError;
use ferry_client::{ConnectionConfig, SaslMechanism as ClientSasl, Secret as ClientSecret};
use ferry_mirror::engine::MirrorError;
use ferry_mirror::settings::{
    AclSyncOptions, DefaultsFrom, EngineSettings, FlowSettings, Isolation,
    OffsetSyncsLocation as EngineSyncsLocation, StartPosition,
};
use ferry_protocol::compression::Codec;

use crate::config::{
    AutoOffsetReset, ClientIdentity, ClientOverrides, ClusterConfig, ConfigError, ConfigNotice,
    ExactlyOnceSourceSupport, ExactlyOnceSupport, FlowConfig, IsolationLevel, MirrorConfig,
    NoticeKind, OffsetSyncsLocation, Properties, SaslMechanism, SecurityProtocol, TlsVersion,
    TrustAnchors, UseDefaultsFrom,
};

/// The period used for `refresh.topics.enabled=false`: topics are listed once at start, as
/// MM2 does, and then practically never again.
pub(crate) const REFRESH_DISABLED: Duration = Duration::from_secs(365 * 24 * 3600);

/// Consumer settings ferry's fetcher honours (others are reported as ignored).
const USED_CONSUMER_KEYS: &[&str] = &[
    "isolation.level",
    "auto.offset.reset",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.wait.ms",
    "client.id",
    "request.timeout.ms",
];
/// Producer settings ferry's producer honours.
const USED_PRODUCER_KEYS: &[&str] = &["compression.type", "client.id", "request.timeout.ms"];
/// Admin settings ferry's admin client honours.
const USED_ADMIN_KEYS: &[&str] = &["client.id", "request.timeout.ms"];

pub(crate) const IGNORED_CLIENT_KEY: &str =
    "ferry's own Kafka client does not use this client setting; it has no effect";
const EXACTLY_ONCE: &str =
    "exactly-once delivery is not implemented yet; ferry delivers at least once";
pub(crate) const IDEMPOTENCE: &str = "ferry always uses the idempotent producer (acks=all, \
                           enable.idempotence=true); this setting is ignored";

/// Where a key was set: the key as written and its line, or the flow-scoped key with no line
/// when the value is MM2's default.
fn locate(props: Option<&Properties>, flow: &FlowConfig, key: &str) -> (String, Option<usize>) {
    let scoped = format!("{}->{}.{key}", flow.source, flow.target);
    if let Some(props) = props {
        for candidate in [scoped.as_str(), key] {
            if let Some(p) = props.get(candidate) {
                return (p.key.clone(), Some(p.line));
            }
        }
    }
    (scoped, None)
}

/// The line of the first of `keys` the file sets.
fn line_of(props: Option<&Properties>, keys: &[String]) -> Option<usize> {
    let props = props?;
    keys.iter().find_map(|k| props.get(k).map(|p| p.line))
}

/// Collects notices, each once.
#[derive(Debug, Default)]
struct Notices {
    seen: BTreeSet<(Option<String>, Option<usize>, String)>,
    list: Vec<ConfigNotice>,
}

impl Notices {
    fn ignored(&mut self, key: &str, line: Option<usize>, reason: &'static str) {
        let id = (Some(key.to_owned()), line, reason.to_owned());
        if self.seen.insert(id) {
            self.list.push(ConfigNotice::new(
                Some(key),
                line,
                NoticeKind::Ignored { reason },
            ));
        }
    }
}

/// The engine settings a configuration maps to, and what the mapping noticed.
#[derive(Debug, Clone)]
pub(crate) struct Mapped {
    pub(crate) settings: EngineSettings,
    pub(crate) notices: Vec<ConfigNotice>,
}

/// Maps a loaded configuration onto engine settings. `props` (the parsed file, when there is
/// one) only serves to name the line of a key in notices and errors. `only_targets` keeps the
/// flows whose target is listed (`ferry run --clusters`). `connections` replaces the mapped
/// connection of these aliases (the builder's `with_connection`). No network I/O; TLS PEM files
/// are read, as [`ConnectionConfig`]'s builder does.
pub(crate) fn map_config(
    config: &MirrorConfig,
    props: Option<&Properties>,
    only_targets: Option<&[String]>,
    connections: &BTreeMap<String, ConnectionConfig>,
) -> Result<Mapped, ConfigError> {
    let mut notices = Notices::default();
    let mut settings = EngineSettings::new();

    if let Some(targets) = only_targets {
        for alias in targets {
            if config.cluster(alias).is_none() {
                return Err(ConfigError::InvalidValue {
                    key: "--clusters".to_owned(),
                    line: None,
                    value: Some(alias.clone()),
                    reason: format!(
                        "`clusters` does not list this alias (it lists: {})",
                        config.aliases().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
    }

    let flows: Vec<&FlowConfig> = config
        .flows()
        .iter()
        .filter(|f| only_targets.is_none_or(|t| t.contains(&f.target)))
        .collect();

    let mut fetch_set = BTreeSet::new();
    for flow in &flows {
        settings.flows.push(map_flow(flow, props, &mut notices)?);
        apply_fetch_settings(&flow.source_consumer, &mut settings, &mut fetch_set)?;
        for alias in [&flow.source, &flow.target] {
            if settings.clusters.contains_key(alias.as_str()) {
                continue;
            }
            let conn = match connections.get(alias.as_str()) {
                Some(c) => c.clone(),
                None => {
                    let cluster = config
                        .cluster(alias)
                        .ok_or_else(|| ConfigError::MissingKey {
                            key: format!("{alias}.bootstrap.servers"),
                            reason: format!(
                                "flow {}->{} names cluster `{alias}`",
                                flow.source, flow.target
                            ),
                        })?;
                    map_cluster(cluster, props)?
                }
            };
            settings.clusters.insert(alias.clone(), conn);
        }
    }

    settings.validate().map_err(|e| from_engine_error(&e))?;
    Ok(Mapped {
        settings,
        notices: notices.list,
    })
}

/// An engine validation error as a configuration error naming the field.
pub(crate) fn from_engine_error(e: &MirrorError) -> ConfigError {
    match e {
        MirrorError::InvalidSettings { field, message } => ConfigError::InvalidValue {
            key: (*field).to_owned(),
            line: None,
            value: None,
            reason: message.clone(),
        },
        other => ConfigError::InvalidValue {
            key: "settings".to_owned(),
            line: None,
            value: None,
            reason: other.to_string(),
        },
    }
}

fn map_flow(
    flow: &FlowConfig,
    props: Option<&Properties>,
    notices: &mut Notices,
) -> Result<FlowSettings, ConfigError> {
    let mut s = FlowSettings::new(flow.source.clone(), flow.target.clone())
        .map_err(|e| from_engine_error(&e))?;
    s.topic_filter = flow.topics.clone();
    s.policy = flow.policy.clone();
    s.heartbeats_replication = flow.heartbeats_replication;
    s.replication_factor = flow.replication_factor.as_i16();
    s.refresh_topics_interval = flow.refresh_topics.unwrap_or(REFRESH_DISABLED);
    s.isolation = match flow.isolation_level {
        IsolationLevel::ReadUncommitted => Isolation::ReadUncommitted,
        _ => Isolation::ReadCommitted,
    };
    s.start = match flow.auto_offset_reset {
        AutoOffsetReset::Earliest => StartPosition::Earliest,
        AutoOffsetReset::Latest => StartPosition::Latest,
        other => {
            let (key, line) = locate(props, flow, "consumer.auto.offset.reset");
            let shown = match other {
                AutoOffsetReset::None => "none".to_owned(),
                _ => "by_duration:...".to_owned(),
            };
            return Err(ConfigError::Unsupported {
                key,
                line,
                value: Some(shown),
                reason: "ferry starts partitions without progress at `earliest` or `latest` \
                         only; `none` and `by_duration` are not implemented yet"
                    .to_owned(),
            });
        }
    };
    match flow.emit_heartbeats {
        Some(period) => {
            s.emit_heartbeats = true;
            s.heartbeats_interval = period;
        }
        None => s.emit_heartbeats = false,
    }
    s.heartbeats_replication_factor = flow.heartbeats_topic_replication_factor.as_i16();
    s.emit_offset_syncs = flow.emit_offset_syncs;
    s.offset_syncs_location = match flow.offset_syncs_location {
        OffsetSyncsLocation::Target => EngineSyncsLocation::Target,
        _ => EngineSyncsLocation::Source,
    };
    s.offset_syncs_replication_factor = flow.offset_syncs_topic_replication_factor.as_i16();
    s.config_properties_exclude = flow.config_properties_exclude.clone();
    // Topic-config and ACL sync (issue #6).
    s.sync_topic_configs = flow.sync_topic_configs;
    s.use_defaults_from = match flow.use_defaults_from {
        UseDefaultsFrom::Source => DefaultsFrom::Source,
        _ => DefaultsFrom::Target,
    };
    s.sync_topic_acls = flow.sync_topic_acls;
    s.acl_sync = AclSyncOptions {
        prefixed: flow.sync_acls_prefixed,
        groups: flow.sync_acls_groups,
        delete: flow.sync_acls_delete,
    };
    s.target_compression = target_codec(flow, props)?;
    map_groups(flow, &mut s);

    // Features the engine does not implement yet: reported, never dropped silently.
    let mut report = |key: &str, reason: &'static str| {
        let (key, line) = locate(props, flow, key);
        notices.ignored(&key, line, reason);
    };
    if flow.exactly_once_source_support != ExactlyOnceSourceSupport::Disabled {
        report("exactly.once.source.support", EXACTLY_ONCE);
    }
    if flow.exactly_once_support == ExactlyOnceSupport::Required {
        let (key, line) = locate(props, flow, "exactly.once.support");
        return Err(ConfigError::Unsupported {
            key,
            line,
            value: Some("required".to_owned()),
            reason: "exactly-once delivery is not implemented yet, and `required` refuses to \
                     run without it; use `requested` to run at least once"
                .to_owned(),
        });
    }

    for (role, overrides, used) in [
        ("consumer", &flow.source_consumer, USED_CONSUMER_KEYS),
        ("producer", &flow.target_producer, USED_PRODUCER_KEYS),
        ("admin", &flow.source_admin, USED_ADMIN_KEYS),
        ("admin", &flow.target_admin, USED_ADMIN_KEYS),
    ] {
        for (name, setting) in overrides.iter() {
            if used.contains(&name) {
                continue;
            }
            let value = setting.value.expose().trim();
            let consistent = role == "producer"
                && match name {
                    "acks" => matches!(value, "all" | "-1"),
                    "enable.idempotence" => value.eq_ignore_ascii_case("true"),
                    _ => false,
                };
            if consistent {
                continue;
            }
            let reason = if role == "producer" && matches!(name, "acks" | "enable.idempotence") {
                IDEMPOTENCE
            } else {
                IGNORED_CLIENT_KEY
            };
            notices.ignored(&setting.source_key, Some(setting.line), reason);
        }
    }
    Ok(s)
}

/// The consumer-group keys (issue #7): `groups`, `groups.exclude`, `emit.checkpoints.*`,
/// `sync.group.offsets.*`, `refresh.groups.*`, `checkpoints.topic.replication.factor`.
/// `refresh.groups.enabled=false` lists groups once at start, as MM2 does.
fn map_groups(flow: &FlowConfig, s: &mut FlowSettings) {
    s.group_filter = flow.groups.clone();
    s.emit_checkpoints = flow.emit_checkpoints.is_some();
    s.checkpoints_interval = flow
        .emit_checkpoints
        .unwrap_or(crate::config::defaults::EMIT_CHECKPOINTS_INTERVAL);
    s.sync_group_offsets = flow.sync_group_offsets.is_some();
    s.sync_group_offsets_interval = flow
        .sync_group_offsets
        .unwrap_or(crate::config::defaults::SYNC_GROUP_OFFSETS_INTERVAL);
    s.refresh_groups_interval = flow.refresh_groups.unwrap_or(REFRESH_DISABLED);
    s.checkpoints_replication_factor = flow.checkpoints_topic_replication_factor.as_i16();
}

/// `compression.type` of the target producer: `producer` (or unset) keeps the source bytes;
/// a codec makes ferry re-encode every batch with it, as MM2's producer would.
fn target_codec(
    flow: &FlowConfig,
    props: Option<&Properties>,
) -> Result<Option<Codec>, ConfigError> {
    let Some(setting) = flow.target_producer.setting("compression.type") else {
        return Ok(None);
    };
    let value = setting.value.expose().trim().to_ascii_lowercase();
    if value == "producer" {
        return Ok(None);
    }
    match Codec::ALL.into_iter().find(|c| c.name() == value) {
        Some(codec) => Ok(Some(codec)),
        None => Err(ConfigError::InvalidValue {
            key: setting.source_key.clone(),
            line: Some(setting.line)
                .or_else(|| line_of(props, std::slice::from_ref(&setting.source_key))),
            value: Some(value),
            reason: "expected one of none, gzip, snappy, lz4, zstd, producer".to_owned(),
        }),
    }
}

/// Fetch sizes from the source consumer settings. They are engine-wide: the first flow that
/// sets a key decides it.
fn apply_fetch_settings(
    consumer: &ClientOverrides,
    settings: &mut EngineSettings,
    already: &mut BTreeSet<&'static str>,
) -> Result<(), ConfigError> {
    for key in [
        "fetch.max.bytes",
        "max.partition.fetch.bytes",
        "fetch.max.wait.ms",
    ] {
        let Some(setting) = consumer.setting(key) else {
            continue;
        };
        if !already.insert(key) {
            continue;
        }
        let raw = setting.value.expose().trim();
        let n: u64 =
            raw.parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::InvalidValue {
                    key: setting.source_key.clone(),
                    line: Some(setting.line),
                    value: Some(raw.to_owned()),
                    reason: "expected a positive integer".to_owned(),
                })?;
        let bytes = usize::try_from(n).unwrap_or(usize::MAX);
        match key {
            "fetch.max.bytes" => settings.fetch_max_bytes = bytes,
            "max.partition.fetch.bytes" => settings.fetch_partition_max_bytes = bytes,
            _ => settings.fetch_max_wait = Duration::from_millis(n),
        }
    }
    Ok(())
}

/// A cluster's connection settings as a [`ConnectionConfig`]. Inline PEM material is written to
/// a private temporary directory for the builder to read, and removed right after.
pub(crate) fn map_cluster(
    cluster: &ClusterConfig,
    props: Option<&Properties>,
) -> Result<ConnectionConfig, ConfigError> {
    let alias = &cluster.alias;
    let key_line = |suffix: &str| {
        let scoped = format!("{alias}.{suffix}");
        let line = line_of(props, &[scoped.clone(), suffix.to_owned()]);
        (scoped, line)
    };
    let mut builder = ConnectionConfig::builder()
        .with_bootstrap(cluster.bootstrap_servers.iter().map(ToString::to_string))
        .with_security_protocol(match cluster.security_protocol {
            SecurityProtocol::Ssl => ferry_client::SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext => ferry_client::SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl => ferry_client::SecurityProtocol::SaslSsl,
            _ => ferry_client::SecurityProtocol::Plaintext,
        });

    // client.id and request.timeout.ms: admin, then consumer, then producer settings.
    let roles = [&cluster.admin, &cluster.consumer, &cluster.producer];
    if let Some(s) = roles.iter().find_map(|r| r.setting("client.id")) {
        builder = builder.with_client_id(s.value.expose().trim());
    }
    if let Some(s) = roles.iter().find_map(|r| r.setting("request.timeout.ms")) {
        let raw = s.value.expose().trim();
        let ms: u64 =
            raw.parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::InvalidValue {
                    key: s.source_key.clone(),
                    line: Some(s.line),
                    value: Some(raw.to_owned()),
                    reason: "expected a positive number of milliseconds".to_owned(),
                })?;
        builder = builder.with_request_timeout(Duration::from_millis(ms));
    }

    if let Some(sasl) = &cluster.sasl {
        if sasl.token_auth {
            let (key, line) = key_line("sasl.jaas.config");
            return Err(ConfigError::Unsupported {
                key,
                line,
                value: None,
                reason: "SCRAM with delegation tokens (tokenauth=true) is not implemented yet"
                    .to_owned(),
            });
        }
        let mechanism = match sasl.mechanism {
            SaslMechanism::Plain => ClientSasl::Plain,
            SaslMechanism::ScramSha256 => ClientSasl::ScramSha256,
            _ => ClientSasl::ScramSha512,
        };
        builder = builder.with_sasl(
            mechanism,
            sasl.username.clone(),
            ClientSecret::new(sasl.password.expose()),
        );
    }

    // Kept alive until `build` has read the files.
    let mut scratch: Option<tempfile::TempDir> = None;
    // Which key each TLS file comes from, and whether it holds inline PEM.
    let mut files: Vec<TlsFileOrigin> = Vec::new();
    if let Some(tls) = &cluster.tls {
        if tls.versions.len() < 2
            || !tls.versions.contains(&TlsVersion::Tls12)
            || !tls.versions.contains(&TlsVersion::Tls13)
        {
            let (key, line) = key_line("ssl.enabled.protocols");
            return Err(ConfigError::Unsupported {
                key,
                line,
                value: None,
                reason: "ferry negotiates TLS 1.2 or 1.3; restricting the versions is not \
                         implemented yet (remove the key to allow both)"
                    .to_owned(),
            });
        }
        let mut settings = ferry_client::TlsSettings {
            verify_hostname: tls.verify_hostname,
            ..ferry_client::TlsSettings::default()
        };
        let mut write = |name: &str, text: &str| -> Result<PathBuf, ConfigError> {
            // The private temporary directory (mode 0700) is removed when `scratch` drops.
            let dir = match &mut scratch {
                Some(d) => d,
                None => scratch.insert(
                    tempfile::Builder::new()
                        .prefix("ferry-pem-")
                        .tempdir()
                        .map_err(|source| ConfigError::Io {
                            path: std::env::temp_dir(),
                            source,
                        })?,
                ),
            };
            let path = dir.path().join(name);
            std::fs::write(&path, text).map_err(|source| ConfigError::Io {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        };
        settings.ca_file = match &tls.trust {
            TrustAnchors::PemFile(path) => {
                files.push(TlsFileOrigin::file(path, "ssl.truststore.location"));
                Some(path.clone())
            }
            TrustAnchors::PemInline(pem) => {
                let path = write("ca.pem", pem)?;
                files.push(TlsFileOrigin::inline(&path, "ssl.truststore.certificates"));
                Some(path)
            }
            _ => None,
        };
        let encrypted = |key_password: &Option<crate::config::Secret>| key_password.is_some();
        match &tls.identity {
            Some(ClientIdentity::PemFile { path, key_password }) => {
                if encrypted(key_password) {
                    return Err(encrypted_key_error(key_line("ssl.key.password")));
                }
                // One file holds the key and the chain; the loader picks each item type.
                files.push(TlsFileOrigin::file(path, "ssl.keystore.location"));
                settings.client_cert_file = Some(path.clone());
                settings.client_key_file = Some(path.clone());
            }
            Some(ClientIdentity::PemInline {
                certificate_chain,
                private_key,
                key_password,
            }) => {
                if encrypted(key_password) {
                    return Err(encrypted_key_error(key_line("ssl.key.password")));
                }
                let cert = write("client.pem", certificate_chain)?;
                let key = write("client.key", private_key.expose())?;
                files.push(TlsFileOrigin::inline(
                    &cert,
                    "ssl.keystore.certificate.chain",
                ));
                files.push(TlsFileOrigin::inline(&key, "ssl.keystore.key"));
                settings.client_cert_file = Some(cert);
                settings.client_key_file = Some(key);
            }
            _ => {}
        }
        builder = builder.with_tls(settings);
    }
    let built = builder.build();
    drop(scratch);
    built.map_err(|e| from_client_config_error(alias, &e, &files, props))
}

/// Where a TLS file handed to the client builder came from.
#[derive(Debug)]
struct TlsFileOrigin {
    path: PathBuf,
    key_suffix: &'static str,
    inline: bool,
}

impl TlsFileOrigin {
    fn file(path: &std::path::Path, key_suffix: &'static str) -> Self {
        Self {
            path: path.to_owned(),
            key_suffix,
            inline: false,
        }
    }

    fn inline(path: &std::path::Path, key_suffix: &'static str) -> Self {
        Self {
            path: path.to_owned(),
            key_suffix,
            inline: true,
        }
    }
}

fn encrypted_key_error((key, line): (String, Option<usize>)) -> ConfigError {
    ConfigError::Unsupported {
        key,
        line,
        value: None,
        reason: "encrypted private keys are not supported yet; decrypt the key with \
                 `openssl pkcs8 -topk8 -nocrypt -in key.pem -out key-plain.pem` and remove \
                 ssl.key.password"
            .to_owned(),
    }
}

/// A client builder error as a configuration error naming the cluster's key. Inline PEM
/// is named by its key, never by the temporary file it was written to, and never shown.
fn from_client_config_error(
    alias: &str,
    e: &ClientConfigError,
    files: &[TlsFileOrigin],
    props: Option<&Properties>,
) -> ConfigError {
    let (suffix, value, reason) = match e {
        ClientConfigError::TlsFile { path, message } => {
            match files.iter().find(|f| f.path == *path) {
                Some(f) if f.inline => (f.key_suffix, None, format!("inline PEM: {message}")),
                Some(f) => (
                    f.key_suffix,
                    Some(path.display().to_string()),
                    message.clone(),
                ),
                None => (
                    "ssl.truststore.location",
                    Some(path.display().to_string()),
                    message.clone(),
                ),
            }
        }
        ClientConfigError::Tls { .. } => {
            let key = files
                .iter()
                .rev()
                .find(|f| f.key_suffix.starts_with("ssl.keystore"))
                .map_or("ssl.truststore.location", |f| f.key_suffix);
            (key, None, e.to_string())
        }
        ClientConfigError::NoBootstrapServers
        | ClientConfigError::InvalidBootstrapServer { .. } => {
            ("bootstrap.servers", None, e.to_string())
        }
        ClientConfigError::SaslMismatch { .. } => ("sasl.jaas.config", None, e.to_string()),
        _ => ("security.protocol", None, e.to_string()),
    };
    let key = format!("{alias}.{suffix}");
    let line = line_of(props, &[key.clone(), suffix.to_owned()]);
    ConfigError::InvalidValue {
        key,
        line,
        value,
        reason,
    }
}
