//! Resolution of a parsed `mm2.properties` into clusters and flows.
//!
//! Scopes (`MirrorMakerConfig`): a key is top-level, `{alias}.`-scoped or `{S}->{T}.`-scoped.
//! Aliases are matched against `clusters`, longest first, so aliases containing dots work.
//! Precedence is `{S}->{T}.k` over `{alias}.k` over bare `k`; bare keys MM2 dedicated mode would
//! ignore are applied as defaults with a notice (see the module docs of [`super`]).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use ferry_mirror::filter::{
    DEFAULT_CONFIG_PROPERTIES_EXCLUDE, DEFAULT_GROUPS, DEFAULT_GROUPS_EXCLUDE, DEFAULT_TOPICS,
    DEFAULT_TOPICS_EXCLUDE, GroupFilter, PatternList, TopicFilter, split_list,
};
use ferry_mirror::policy::{
    AnyReplicationPolicy, HEARTBEATS_TOPIC, PolicyKind, ReplicationPolicy,
    STRIMZI_IDENTITY_POLICY_CLASS,
};

use super::cluster::{
    BrokerAddress, ClientIdentity, ClientOverrides, ClientSetting, ClusterConfig, SaslMechanism,
    SaslSettings, SecurityProtocol, SettingValue, TlsSettings, TlsVersion, TrustAnchors,
};
use super::flow::{
    AutoOffsetReset, ExactlyOnceSourceSupport, ExactlyOnceSupport, FlowConfig, IsolationLevel,
    OffsetSyncsLocation, ReplicationFactor, UseDefaultsFrom, defaults,
};
use super::jaas::{JaasLogin, parse_client_jaas};
use super::keys::{
    ClientRole, KeyScope, LOCATIONS, MirrorKey, all_key_names, check_value, choice, client_key,
    client_key_applies, client_key_names, ignored_prefix, nearest, parse_bool,
};
use super::placeholder::{EnvSource, ProviderKind, Resolver};
use super::properties::{Properties, Property};
use super::secret::Secret;
use super::{ConfigError, ConfigNotice, LoadOptions, MirrorConfig, NoticeKind};

use MirrorKey as K;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scope {
    Global,
    Cluster(String),
    Flow(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Slot {
    /// An MM2 key (flow, cluster, worker).
    Mirror(MirrorKey),
    /// A bootstrap/security key under a client prefix: `producer.ssl.truststore.location`.
    RoleMirror(ClientRole, MirrorKey),
    /// A client key, bare (`None`) or under a client prefix.
    Client(Option<ClientRole>, String),
    /// `producer.override.<k>` and siblings (Connect client overrides, flow scope).
    Override(ClientRole, String),
}

/// One effective property.
#[derive(Debug, Clone)]
struct Entry {
    key: String,
    value: String,
    line: usize,
    secret: bool,
    alias: bool,
}

impl Entry {
    fn trimmed(&self) -> &str {
        self.value.trim()
    }

    fn invalid(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            key: self.key.clone(),
            line: Some(self.line),
            value: (!self.secret).then(|| self.value.clone()),
            reason: reason.into(),
        }
    }

    fn unsupported(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::Unsupported {
            key: self.key.clone(),
            line: Some(self.line),
            value: (!self.secret).then(|| self.trimmed().to_owned()),
            reason: reason.into(),
        }
    }
}

/// What the part of a key after its scope prefix is.
enum Inner {
    Slot(Slot, Option<&'static str>),
    Ignored(&'static str),
    Unknown(Option<String>),
}

impl Inner {
    fn is_known(&self) -> bool {
        !matches!(self, Self::Unknown(_))
    }
}

fn classify_inner(rest: &str) -> Inner {
    if let Some((key, removed)) = MirrorKey::parse_with_alias(rest) {
        return match key.scope() {
            KeyScope::Ignored(reason) => Inner::Ignored(reason),
            _ => Inner::Slot(Slot::Mirror(key), removed),
        };
    }
    for role in ClientRole::ALL {
        let Some(sub) = rest
            .strip_prefix(role.prefix())
            .and_then(|s| s.strip_prefix('.'))
        else {
            continue;
        };
        if let Some(name) = sub.strip_prefix("override.") {
            if client_key(name, Some(role)).is_some() {
                return Inner::Slot(Slot::Override(role, name.to_owned()), None);
            }
            return Inner::Unknown(
                nearest(name, client_key_names(role))
                    .map(|n| format!("{}.override.{n}", role.prefix())),
            );
        }
        if let Some((key, _)) = MirrorKey::parse_with_alias(sub) {
            match key.scope() {
                KeyScope::Cluster => return Inner::Slot(Slot::RoleMirror(role, key), None),
                KeyScope::Ignored(reason) => return Inner::Ignored(reason),
                _ => {}
            }
        }
        if client_key(sub, Some(role)).is_some() {
            return Inner::Slot(Slot::Client(Some(role), sub.to_owned()), None);
        }
        if let Some(reason) = ignored_prefix(sub) {
            return Inner::Ignored(reason);
        }
        return Inner::Unknown(
            nearest(sub, client_key_names(role)).map(|n| format!("{}.{n}", role.prefix())),
        );
    }
    if client_key(rest, None).is_some() {
        return Inner::Slot(Slot::Client(None, rest.to_owned()), None);
    }
    if let Some(reason) = ignored_prefix(rest) {
        return Inner::Ignored(reason);
    }
    Inner::Unknown(nearest(rest, all_key_names()).map(str::to_owned))
}

enum Split<'k> {
    Global(&'k str),
    Cluster(String, &'k str),
    Flow(String, String, &'k str),
    UnknownAlias(String),
}

struct Loader {
    aliases: Vec<String>,
    table: HashMap<(Scope, Slot), Entry>,
    notices: Vec<ConfigNotice>,
    strict: bool,
    unknown: Option<ConfigError>,
}

const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

const IGNORED_TASKS_MAX: &str = "ferry assigns partitions to its workers itself";
const IGNORED_FLUSH: &str =
    "ferry records progress after every acknowledged batch, so there is no flush period";
const IGNORED_TOPIC_CREATION: &str =
    "remote topics are created by the mirror itself (as in MM2), not by Connect's topic creation";

pub(super) fn load(
    props: &Properties,
    options: &LoadOptions,
    notices: Vec<ConfigNotice>,
) -> Result<(MirrorConfig, Vec<ConfigNotice>), ConfigError> {
    let mut loader = Loader {
        aliases: Vec::new(),
        table: HashMap::new(),
        notices,
        strict: options.strict,
        unknown: None,
    };
    let mut resolver = loader.providers(props, options.env.clone(), options.base_dir.clone())?;
    loader.read_clusters(props, &mut resolver)?;
    for prop in props.entries() {
        loader.classify(prop)?;
    }
    if let Some(err) = loader.unknown.take() {
        return Err(err);
    }
    loader.resolve_placeholders(&mut resolver)?;
    for provider in &resolver.undeclared_used {
        loader.notices.push(ConfigNotice::new(
            None,
            None,
            NoticeKind::UndeclaredProvider {
                provider: provider.clone(),
            },
        ));
    }
    let clusters = loader
        .aliases
        .clone()
        .iter()
        .map(|alias| loader.build_cluster(alias))
        .collect::<Result<Vec<_>, _>>()?;
    let flows = loader.build_flows(&clusters)?;
    loader.check_cycles(&flows)?;
    let mut notices = Vec::new();
    for n in loader.notices {
        if !notices.contains(&n) {
            notices.push(n);
        }
    }
    Ok((
        MirrorConfig {
            aliases: loader.aliases,
            clusters,
            flows,
        },
        notices,
    ))
}

impl Loader {
    fn notice(&mut self, key: &str, line: usize, kind: NoticeKind) {
        self.notices
            .push(ConfigNotice::new(Some(key), Some(line), kind));
    }

    /// Builds the placeholder resolver from `config.providers` and
    /// `config.providers.<alias>.class`.
    fn providers(
        &mut self,
        props: &Properties,
        env: EnvSource,
        base_dir: Option<PathBuf>,
    ) -> Result<Resolver, ConfigError> {
        let mut declared = HashMap::new();
        if let Some(p) = props.get(K::ConfigProviders.as_str()) {
            for alias in split_list(&p.value) {
                let class_key = format!("config.providers.{alias}.class");
                let class = props
                    .get(&class_key)
                    .ok_or_else(|| ConfigError::MissingKey {
                        key: class_key.clone(),
                        reason: format!("`config.providers` declares `{alias}` but not its class"),
                    })?;
                let kind = ProviderKind::from_class(&class.value)
                    .ok_or_else(|| class.value.trim().to_owned());
                declared.insert(alias, kind);
            }
        }
        Ok(Resolver::new(declared, env, base_dir))
    }

    fn read_clusters(
        &mut self,
        props: &Properties,
        resolver: &mut Resolver,
    ) -> Result<(), ConfigError> {
        let key = K::Clusters.as_str();
        let prop = props.get(key).ok_or_else(|| ConfigError::MissingKey {
            key: key.to_owned(),
            reason: "list the cluster aliases, e.g. `clusters = source, target`".to_owned(),
        })?;
        let value = resolver
            .resolve(&prop.value)
            .map_err(|source| ConfigError::Placeholder {
                key: key.to_owned(),
                line: prop.line,
                source: Box::new(source),
            })?
            .unwrap_or_else(|| prop.value.clone());
        for alias in split_list(&value) {
            if alias.is_empty() || alias.contains("->") || alias.contains(char::is_whitespace) {
                return Err(ConfigError::InvalidValue {
                    key: key.to_owned(),
                    line: Some(prop.line),
                    value: Some(value.clone()),
                    reason: format!(
                        "alias `{alias}` is not valid: aliases are non-empty and contain no \
                         whitespace and no `->`"
                    ),
                });
            }
            if self.aliases.contains(&alias) {
                self.notice(key, prop.line, NoticeKind::DuplicateAlias { alias });
            } else {
                self.aliases.push(alias);
            }
        }
        if self.aliases.is_empty() {
            return Err(ConfigError::InvalidValue {
                key: key.to_owned(),
                line: Some(prop.line),
                value: Some(value),
                reason: "no cluster alias listed".to_owned(),
            });
        }
        Ok(())
    }

    fn split<'k>(&self, key: &'k str) -> Split<'k> {
        if let Some(arrow) = key.find("->") {
            let mut best: Option<(usize, &str, &str)> = None;
            for s in &self.aliases {
                for t in &self.aliases {
                    let prefix = format!("{s}->{t}.");
                    if key.starts_with(&prefix) && best.is_none_or(|(len, ..)| prefix.len() > len) {
                        best = Some((prefix.len(), s, t));
                    }
                }
            }
            if let Some((len, s, t)) = best {
                return Split::Flow(s.to_owned(), t.to_owned(), key.get(len..).unwrap_or(""));
            }
            let source = key.get(..arrow).unwrap_or("");
            let after = key.get(arrow + 2..).unwrap_or("");
            let target = after.split('.').next().unwrap_or("");
            let unknown = if self.aliases.iter().any(|a| a == source) {
                target
            } else {
                source
            };
            return Split::UnknownAlias(unknown.to_owned());
        }
        let mut candidates: Vec<(&str, &str)> = self
            .aliases
            .iter()
            .filter_map(|a| {
                key.strip_prefix(a.as_str())
                    .and_then(|r| r.strip_prefix('.'))
                    .filter(|r| !r.is_empty())
                    .map(|r| (a.as_str(), r))
            })
            .collect();
        candidates.sort_by_key(|(a, _)| std::cmp::Reverse(a.len()));
        if let Some((alias, rest)) = candidates
            .iter()
            .find(|(_, rest)| classify_inner(rest).is_known())
        {
            return Split::Cluster((*alias).to_owned(), rest);
        }
        if classify_inner(key).is_known() {
            return Split::Global(key);
        }
        if let Some((alias, rest)) = candidates.first() {
            return Split::Cluster((*alias).to_owned(), rest);
        }
        // `X.rest` with a known `rest` and an undeclared alias `X` (a single segment, so that
        // a misspelt dotted key is reported as unknown, not as scoped to an alias).
        if let Some((alias, rest)) = key.split_once('.')
            && !rest.is_empty()
            && classify_inner(rest).is_known()
        {
            return Split::UnknownAlias(alias.to_owned());
        }
        Split::Global(key)
    }

    fn classify(&mut self, prop: &Property) -> Result<(), ConfigError> {
        let key = prop.key.as_str();
        let line = prop.line;
        for k in [K::Clusters, K::ConfigProviders] {
            if key == k.as_str() {
                // Read before classification; inserted so duplicates are reported.
                self.insert(Scope::Global, Slot::Mirror(k), prop, false);
                return Ok(());
            }
        }
        if let Some(rest) = key.strip_prefix("config.providers.") {
            if !rest.ends_with(".class") || rest.matches('.').count() != 1 {
                self.notice(
                    key,
                    line,
                    NoticeKind::Ignored {
                        reason: "config-provider parameters are not applied by ferry's built-in \
                                 providers",
                    },
                );
            }
            return Ok(());
        }
        let (scope, rest) = match self.split(key) {
            Split::Global(rest) => (Scope::Global, rest),
            Split::Cluster(alias, rest) => (Scope::Cluster(alias), rest),
            Split::Flow(s, t, rest) => (Scope::Flow(s, t), rest),
            Split::UnknownAlias(alias) => {
                self.notice(key, line, NoticeKind::UnknownAlias { alias });
                return Ok(());
            }
        };
        let (slot, removed) = match classify_inner(rest) {
            Inner::Slot(slot, removed) => (slot, removed),
            Inner::Ignored(reason) => {
                self.notice(key, line, NoticeKind::Ignored { reason });
                return Ok(());
            }
            Inner::Unknown(suggestion) => {
                let prefix = key.get(..key.len() - rest.len()).unwrap_or("");
                let suggestion = suggestion.map(|s| format!("{prefix}{s}"));
                if self.strict && self.unknown.is_none() {
                    self.unknown = Some(ConfigError::UnknownKey {
                        key: key.to_owned(),
                        line,
                        suggestion: suggestion.clone(),
                    });
                }
                self.notice(key, line, NoticeKind::UnknownKey { suggestion });
                return Ok(());
            }
        };
        if let (Slot::Mirror(k), Some(removed_in)) = (&slot, removed) {
            self.notice(
                key,
                line,
                NoticeKind::DeprecatedAlias {
                    canonical: k.as_str(),
                    removed_in,
                },
            );
        }
        if !self.check_scope(&scope, &slot, prop)? {
            return Ok(());
        }
        self.insert(scope, slot, prop, removed.is_some());
        Ok(())
    }

    /// Reports keys at a scope where they have no effect (returns `false` for those) and the
    /// bare keys MM2 dedicated mode ignores.
    fn check_scope(
        &mut self,
        scope: &Scope,
        slot: &Slot,
        prop: &Property,
    ) -> Result<bool, ConfigError> {
        let key = prop.key.as_str();
        let line = prop.line;
        let example_flow = self.example_flow();
        if let Scope::Flow(s, t) = scope
            && s == t
        {
            let enables =
                slot == &Slot::Mirror(K::Enabled) && parse_bool(&prop.value).unwrap_or(false);
            if enables {
                return Err(ConfigError::SelfReplication {
                    key: key.to_owned(),
                    line,
                    alias: s.clone(),
                });
            }
            self.notice(
                key,
                line,
                NoticeKind::NoEffectAtScope {
                    hint: format!("a flow from `{s}` into itself never runs"),
                },
            );
            return Ok(false);
        }
        let no_effect = |hint: String| NoticeKind::NoEffectAtScope { hint };
        let kind = match (slot, scope) {
            (Slot::Mirror(k), _) => match (k.scope(), scope) {
                (KeyScope::TopOnly, Scope::Global) => None,
                (KeyScope::TopOnly, _) => Some(no_effect(format!("`{k}` is a top-level key"))),
                (KeyScope::Flow, Scope::Cluster(alias)) => Some(no_effect(format!(
                    "flow settings apply at top level or per flow, e.g. `{}.{k}`",
                    example_flow_from(alias, &example_flow)
                ))),
                (KeyScope::Cluster, Scope::Flow(s, t)) => Some(no_effect(format!(
                    "connection settings apply per cluster: `{s}.{k}` or `{t}.{k}`"
                ))),
                (KeyScope::TargetWorker, _) if is_ignored_worker_key(*k) => {
                    Some(NoticeKind::Ignored {
                        reason: if *k == K::TopicCreationEnable {
                            IGNORED_TOPIC_CREATION
                        } else {
                            IGNORED_FLUSH
                        },
                    })
                }
                (KeyScope::TargetWorker, Scope::Global) => Some(NoticeKind::Mm2WouldIgnore {
                    applies_to: "every target cluster".to_owned(),
                    mm2_form: format!("{{target}}.{k}"),
                }),
                (KeyScope::Flow, Scope::Global) if *k == K::ExactlyOnceSupport => {
                    Some(NoticeKind::Mm2WouldIgnore {
                        applies_to: "every flow".to_owned(),
                        mm2_form: format!("{{source}}->{{target}}.{k}"),
                    })
                }
                (KeyScope::Flow, _) if *k == K::TasksMax => Some(NoticeKind::Ignored {
                    reason: IGNORED_TASKS_MAX,
                }),
                (KeyScope::Flow, Scope::Global) if *k == K::Enabled => {
                    if parse_bool(&prop.value).unwrap_or(false) {
                        let n = self.aliases.len();
                        Some(NoticeKind::EnablesAllPairs {
                            flows: n * n.saturating_sub(1),
                        })
                    } else {
                        None
                    }
                }
                _ => None,
            },
            (Slot::RoleMirror(role, k), Scope::Global) => Some(NoticeKind::Mm2WouldIgnore {
                applies_to: role_targets(*role).to_owned(),
                mm2_form: format!("{{alias}}.{}.{k}", role.prefix()),
            }),
            (Slot::RoleMirror(role, k), Scope::Flow(s, t)) => Some(no_effect(format!(
                "ferry uses one connection per cluster: set `{s}.{k}` or `{t}.{k}` (or `{s}.{}.{k}`)",
                role.prefix()
            ))),
            (Slot::Client(Some(role), name), Scope::Global) => Some(NoticeKind::Mm2WouldIgnore {
                applies_to: role_targets(*role).to_owned(),
                mm2_form: format!("{{alias}}.{}.{name}", role.prefix()),
            }),
            (Slot::Client(None, name), Scope::Global) => Some(NoticeKind::Mm2WouldIgnore {
                applies_to: "the clients of every cluster".to_owned(),
                mm2_form: format!("{{alias}}.consumer.{name}"),
            }),
            (Slot::Client(None, name), Scope::Cluster(alias)) => Some(NoticeKind::Mm2WouldIgnore {
                applies_to: format!("the clients of `{alias}`"),
                mm2_form: format!("{alias}.consumer.{name}"),
            }),
            (Slot::Client(None, name), Scope::Flow(s, t)) => Some(no_effect(format!(
                "set it per client, e.g. `{s}->{t}.consumer.{name}`"
            ))),
            (Slot::Override(role, name), Scope::Global | Scope::Cluster(_)) => {
                Some(no_effect(format!(
                    "Connect client overrides apply per flow, e.g. `{}.{}.override.{name}`",
                    example_flow,
                    role.prefix()
                )))
            }
            _ => None,
        };
        let Some(kind) = kind else { return Ok(true) };
        let applies = !matches!(kind, NoticeKind::NoEffectAtScope { .. });
        self.notice(key, line, kind);
        Ok(applies)
    }

    fn example_flow(&self) -> String {
        match (self.aliases.first(), self.aliases.get(1)) {
            (Some(a), Some(b)) => format!("{a}->{b}"),
            (Some(a), None) => format!("{a}->{{target}}"),
            _ => "{source}->{target}".to_owned(),
        }
    }

    fn insert(&mut self, scope: Scope, slot: Slot, prop: &Property, alias: bool) {
        let secret = match &slot {
            Slot::Mirror(k) | Slot::RoleMirror(_, k) => k.is_secret(),
            Slot::Client(..) | Slot::Override(..) => false,
        };
        let entry = Entry {
            key: prop.key.clone(),
            value: prop.value.clone(),
            line: prop.line,
            secret,
            alias,
        };
        if let Some(character) = prop.dropped_backslash.filter(|_| !secret) {
            self.notice(
                &prop.key,
                prop.line,
                NoticeKind::DroppedBackslash { character },
            );
        }
        let slot_key = (scope, slot);
        if let Some(prev) = self.table.get(&slot_key) {
            let (prev_key, prev_line, prev_alias) = (prev.key.clone(), prev.line, prev.alias);
            if !prev_alias && alias {
                self.notice(
                    &entry.key,
                    entry.line,
                    NoticeKind::NoEffectAtScope {
                        hint: format!("`{prev_key}` (line {prev_line}) is also set and wins"),
                    },
                );
                return;
            }
            self.notice(
                &entry.key,
                entry.line,
                NoticeKind::DuplicateKey {
                    previous_line: prev_line,
                },
            );
        }
        self.table.insert(slot_key, entry);
    }

    fn resolve_placeholders(&mut self, resolver: &mut Resolver) -> Result<(), ConfigError> {
        let mut entries: Vec<&mut Entry> = self.table.values_mut().collect();
        // Deterministic order, so the first error reported is the first in the file.
        entries.sort_by_key(|e| e.line);
        for entry in entries {
            let resolved =
                resolver
                    .resolve(&entry.value)
                    .map_err(|source| ConfigError::Placeholder {
                        key: entry.key.clone(),
                        line: entry.line,
                        source: Box::new(source),
                    })?;
            if let Some(value) = resolved {
                entry.value = value;
                entry.secret = true;
            }
        }
        Ok(())
    }

    fn get(&self, scope: &Scope, slot: &Slot) -> Option<&Entry> {
        self.table.get(&(scope.clone(), slot.clone()))
    }

    fn flow_entry(&self, s: &str, t: &str, k: MirrorKey) -> Option<Entry> {
        self.get(&Scope::Flow(s.to_owned(), t.to_owned()), &Slot::Mirror(k))
            .or_else(|| self.get(&Scope::Global, &Slot::Mirror(k)))
            .cloned()
    }

    fn worker_entry(&self, s: &str, t: &str, k: MirrorKey) -> Option<Entry> {
        self.get(&Scope::Flow(s.to_owned(), t.to_owned()), &Slot::Mirror(k))
            .or_else(|| self.get(&Scope::Cluster(t.to_owned()), &Slot::Mirror(k)))
            .or_else(|| self.get(&Scope::Global, &Slot::Mirror(k)))
            .cloned()
    }

    /// A connection key of a cluster: `{alias}.k`, then `{alias}.{role}.k` (all roles must
    /// agree), then bare `k`, then bare `{role}.k`.
    fn conn(&self, alias: &str, k: MirrorKey) -> Result<Option<Entry>, ConfigError> {
        let cluster = Scope::Cluster(alias.to_owned());
        if let Some(e) = self.get(&cluster, &Slot::Mirror(k)) {
            return Ok(Some(e.clone()));
        }
        if let Some(e) = self.role_level(alias, &cluster, k)? {
            return Ok(Some(e));
        }
        if let Some(e) = self.get(&Scope::Global, &Slot::Mirror(k)) {
            return Ok(Some(e.clone()));
        }
        self.role_level(alias, &Scope::Global, k)
    }

    fn role_level(
        &self,
        alias: &str,
        scope: &Scope,
        k: MirrorKey,
    ) -> Result<Option<Entry>, ConfigError> {
        let found: Vec<&Entry> = ClientRole::ALL
            .iter()
            .filter_map(|r| self.get(scope, &Slot::RoleMirror(*r, k)))
            .collect();
        let Some((first, rest)) = found.split_first() else {
            return Ok(None);
        };
        if let Some(other) = rest.iter().find(|e| e.trimmed() != first.trimmed()) {
            return Err(ConfigError::Unsupported {
                key: other.key.clone(),
                line: Some(other.line),
                value: None,
                reason: format!(
                    "ferry uses one connection per cluster for all its clients, but `{}` and \
                     `{}` differ; set `{alias}.{k}` once",
                    first.key, other.key
                ),
            });
        }
        Ok(Some((*first).clone()))
    }

    /// Whether `k` is set at the cluster's own scope (for "unused" notices).
    fn own(&self, alias: &str, k: MirrorKey) -> Option<&Entry> {
        let cluster = Scope::Cluster(alias.to_owned());
        self.get(&cluster, &Slot::Mirror(k)).or_else(|| {
            ClientRole::ALL
                .iter()
                .find_map(|r| self.get(&cluster, &Slot::RoleMirror(*r, k)))
        })
    }

    fn build_cluster(&mut self, alias: &str) -> Result<ClusterConfig, ConfigError> {
        let bootstrap = self
            .conn(alias, K::BootstrapServers)?
            .ok_or_else(|| ConfigError::MissingKey {
                key: format!("{alias}.bootstrap.servers"),
                reason: format!("every cluster in `clusters` needs bootstrap servers, e.g. `{alias}.bootstrap.servers = host1:9092,host2:9092`"),
            })?;
        let bootstrap_servers = parse_bootstrap(&bootstrap)?;
        let security_protocol = match self.conn(alias, K::SecurityProtocol)? {
            None => SecurityProtocol::Plaintext,
            Some(e) => SecurityProtocol::from_canonical(
                choice(e.trimmed(), SECURITY_PROTOCOLS).map_err(|r| e.invalid(r))?,
            ),
        };
        let sasl = if security_protocol.uses_sasl() {
            Some(self.sasl(alias)?)
        } else {
            for k in [K::SaslJaasConfig, K::SaslMechanism] {
                if let Some(e) = self.own(alias, k).cloned() {
                    self.notice(
                        &e.key,
                        e.line,
                        NoticeKind::UnusedSecurity {
                            what: "SASL",
                            protocol: security_protocol.as_str(),
                        },
                    );
                }
            }
            None
        };
        let tls = if security_protocol.uses_tls() {
            Some(self.tls(alias)?)
        } else {
            for k in [
                K::SslTruststoreLocation,
                K::SslTruststoreCertificates,
                K::SslKeystoreLocation,
                K::SslKeystoreKey,
            ] {
                if let Some(e) = self.own(alias, k).cloned() {
                    self.notice(
                        &e.key,
                        e.line,
                        NoticeKind::UnusedSecurity {
                            what: "TLS",
                            protocol: security_protocol.as_str(),
                        },
                    );
                }
            }
            None
        };
        Ok(ClusterConfig {
            alias: alias.to_owned(),
            bootstrap_servers,
            security_protocol,
            sasl,
            tls,
            producer: self.cluster_overrides(alias, ClientRole::Producer)?,
            consumer: self.cluster_overrides(alias, ClientRole::Consumer)?,
            admin: self.cluster_overrides(alias, ClientRole::Admin)?,
        })
    }

    fn sasl(&mut self, alias: &str) -> Result<SaslSettings, ConfigError> {
        let mechanism = match self.conn(alias, K::SaslMechanism)? {
            None => {
                return Err(ConfigError::Unsupported {
                    key: format!("{alias}.sasl.mechanism"),
                    line: None,
                    value: None,
                    reason: "not set, and Kafka's default, GSSAPI (Kerberos), is not implemented \
                             by ferry; set sasl.mechanism to SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN"
                        .to_owned(),
                });
            }
            Some(e) => {
                let v = e.trimmed();
                match SaslMechanism::parse(v) {
                    Some(m) => (m, e),
                    None => {
                        let upper = v.to_ascii_uppercase();
                        return Err(if SaslMechanism::parse(&upper).is_some() {
                            e.invalid(format!(
                                "SASL mechanism names are case-sensitive: write `{upper}`"
                            ))
                        } else if upper == "GSSAPI" {
                            e.unsupported("GSSAPI (Kerberos) is not implemented by ferry; use SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN")
                        } else if upper == "OAUTHBEARER" {
                            e.unsupported("SASL/OAUTHBEARER is not implemented by ferry; use SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN")
                        } else {
                            e.invalid("expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
                        });
                    }
                }
            }
        };
        let (mechanism, mechanism_entry) = mechanism;
        let jaas = self
            .conn(alias, K::SaslJaasConfig)?
            .ok_or_else(|| ConfigError::MissingKey {
                key: format!("{alias}.sasl.jaas.config"),
                reason: format!(
                    "security.protocol uses SASL, so a login is needed, e.g. \
                     `{alias}.sasl.jaas.config = {} required username=\"...\" password=\"...\";`",
                    if mechanism == SaslMechanism::Plain {
                        super::jaas::PLAIN_LOGIN_MODULE
                    } else {
                        super::jaas::SCRAM_LOGIN_MODULE
                    }
                ),
            })?;
        let parsed = parse_client_jaas(jaas.trimmed()).map_err(|source| ConfigError::Jaas {
            key: jaas.key.clone(),
            line: Some(jaas.line),
            source,
        })?;
        let module_matches = matches!(
            (&parsed.login, mechanism),
            (JaasLogin::Plain { .. }, SaslMechanism::Plain)
                | (
                    JaasLogin::Scram { .. },
                    SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512
                )
        );
        if !module_matches {
            return Err(mechanism_entry.invalid(format!(
                "sasl.mechanism={} needs {}, but `{}` (line {}) uses {}",
                mechanism.as_str(),
                if mechanism == SaslMechanism::Plain {
                    "PlainLoginModule"
                } else {
                    "ScramLoginModule"
                },
                jaas.key,
                jaas.line,
                parsed.module
            )));
        }
        if !parsed.ignored_options.is_empty() {
            self.notice(
                &jaas.key,
                jaas.line,
                NoticeKind::IgnoredJaasOptions {
                    options: parsed.ignored_options.clone(),
                },
            );
        }
        let (username, password, token_auth) = match parsed.login {
            JaasLogin::Plain { username, password } => (username, password, false),
            JaasLogin::Scram {
                username,
                password,
                token_auth,
            } => (username, password, token_auth),
        };
        Ok(SaslSettings {
            mechanism,
            username,
            password,
            token_auth,
        })
    }

    fn tls(&mut self, alias: &str) -> Result<TlsSettings, ConfigError> {
        let trust = {
            let store_type = self.conn(alias, K::SslTruststoreType)?;
            let location = self.conn(alias, K::SslTruststoreLocation)?;
            let inline = self.conn(alias, K::SslTruststoreCertificates)?;
            let password = self.conn(alias, K::SslTruststorePassword)?;
            match self.pem_store(
                Store::Trust,
                store_type.as_ref(),
                location.as_ref(),
                inline.as_ref(),
            )? {
                PemStore::None => TrustAnchors::SystemDefault,
                PemStore::File(path) => {
                    self.pem_password_unused(password.as_ref());
                    TrustAnchors::PemFile(path)
                }
                PemStore::Inline(certs) => {
                    self.pem_password_unused(password.as_ref());
                    TrustAnchors::PemInline(certs.expose().to_owned())
                }
            }
        };
        let identity = {
            let store_type = self.conn(alias, K::SslKeystoreType)?;
            let location = self.conn(alias, K::SslKeystoreLocation)?;
            let key = self.conn(alias, K::SslKeystoreKey)?;
            let chain = self.conn(alias, K::SslKeystoreCertificateChain)?;
            let password = self.conn(alias, K::SslKeystorePassword)?;
            let key_password = self
                .conn(alias, K::SslKeyPassword)?
                .map(|e| Secret::new(e.trimmed()));
            let inline = key.as_ref().or(chain.as_ref());
            match self.pem_store(Store::Key, store_type.as_ref(), location.as_ref(), inline)? {
                PemStore::None => None,
                PemStore::File(path) => {
                    self.pem_password_unused(password.as_ref());
                    Some(ClientIdentity::PemFile { path, key_password })
                }
                PemStore::Inline(_) => {
                    let missing = |k: MirrorKey, present: &Entry| ConfigError::MissingKey {
                        key: format!("{alias}.{k}"),
                        reason: format!(
                            "`{}` is set, and an inline PEM key store needs both \
                             ssl.keystore.key and ssl.keystore.certificate.chain",
                            present.key
                        ),
                    };
                    match (key.as_ref(), chain.as_ref()) {
                        (Some(key), Some(chain)) => {
                            check_pem(key)?;
                            check_pem(chain)?;
                            self.pem_password_unused(password.as_ref());
                            Some(ClientIdentity::PemInline {
                                certificate_chain: chain.trimmed().to_owned(),
                                private_key: Secret::new(key.trimmed()),
                                key_password,
                            })
                        }
                        (Some(present), None) => {
                            return Err(missing(K::SslKeystoreCertificateChain, present));
                        }
                        (None, Some(present)) => return Err(missing(K::SslKeystoreKey, present)),
                        (None, None) => None,
                    }
                }
            }
        };
        let verify_hostname = match self.conn(alias, K::SslEndpointIdentificationAlgorithm)? {
            None => true,
            Some(e) if e.trimmed().is_empty() => false,
            Some(e) if e.trimmed().eq_ignore_ascii_case("https") => true,
            Some(e) => {
                return Err(e.unsupported(
                    "only `https` (verify the broker's host name) or an empty value (do not) are supported",
                ));
            }
        };
        let mut versions = vec![TlsVersion::Tls12, TlsVersion::Tls13];
        if let Some(e) = self.conn(alias, K::SslEnabledProtocols)? {
            versions.clear();
            for p in split_list(&e.value) {
                match TlsVersion::parse(&p) {
                    Some(v) => versions.push(v),
                    None if matches!(p.as_str(), "TLSv1" | "TLSv1.1" | "SSLv3") => {
                        return Err(e.unsupported(format!(
                            "{p} is not supported; ferry's TLS offers TLSv1.2 and TLSv1.3"
                        )));
                    }
                    None => {
                        return Err(e.invalid(format!(
                            "unknown protocol `{p}`; expected TLSv1.2 or TLSv1.3"
                        )));
                    }
                }
            }
        }
        if let Some(e) = self.conn(alias, K::SslProtocol)? {
            match e.trimmed() {
                "TLSv1.3" | "TLS" => {}
                "TLSv1.2" => versions.retain(|v| *v == TlsVersion::Tls12),
                "TLSv1" | "TLSv1.1" | "SSLv3" => {
                    return Err(e.unsupported("ferry's TLS offers TLSv1.2 and TLSv1.3 only"));
                }
                _ => return Err(e.invalid("expected TLSv1.3, TLSv1.2 or TLS")),
            }
            if versions.is_empty() {
                return Err(e.invalid(
                    "no TLS version left after combining ssl.protocol with ssl.enabled.protocols",
                ));
            }
        }
        versions.sort();
        versions.dedup();
        if versions.is_empty() {
            return Err(ConfigError::InvalidValue {
                key: format!("{alias}.ssl.enabled.protocols"),
                line: None,
                value: Some(String::new()),
                reason: "no TLS version enabled".to_owned(),
            });
        }
        Ok(TlsSettings {
            trust,
            identity,
            verify_hostname,
            versions,
        })
    }

    fn pem_password_unused(&mut self, password: Option<&Entry>) {
        if let Some(e) = password {
            self.notice(
                &e.key,
                e.line,
                NoticeKind::Ignored {
                    reason: "PEM stores have no store password (an encrypted private key uses ssl.key.password)",
                },
            );
        }
    }

    fn pem_store(
        &mut self,
        store: Store,
        store_type: Option<&Entry>,
        location: Option<&Entry>,
        inline: Option<&Entry>,
    ) -> Result<PemStore, ConfigError> {
        if location.is_none() && inline.is_none() {
            return Ok(PemStore::None);
        }
        if let (Some(l), Some(i)) = (location, inline) {
            return Err(ConfigError::InvalidValue {
                key: i.key.clone(),
                line: Some(i.line),
                value: None,
                reason: format!("set either `{}` or the inline PEM keys, not both", l.key),
            });
        }
        let declared = store_type.map(|e| (e, e.trimmed().to_ascii_uppercase()));
        let unsupported = |key: &Entry, store_type: &str| ConfigError::UnsupportedStoreType {
            key: key.key.clone(),
            line: Some(key.line),
            store_type: store_type.to_owned(),
            conversion: store.conversion(store_type, location.map(|l| l.trimmed())),
        };
        match &declared {
            Some((_, t)) if t == "PEM" => {}
            Some((e, t)) if t == "JKS" || t == "PKCS12" => {
                return Err(unsupported(location.unwrap_or(e), t));
            }
            Some((e, _)) => {
                return Err(e.unsupported("ferry reads PEM stores only (ssl.*.type=PEM)"));
            }
            None => {
                if let Some(l) = location {
                    let lower = l.trimmed().to_ascii_lowercase();
                    if [".pem", ".crt", ".cer", ".key"]
                        .iter()
                        .any(|ext| lower.ends_with(ext))
                    {
                        self.notice(&l.key, l.line, NoticeKind::PemByExtension);
                    } else {
                        let t = if lower.ends_with(".p12") || lower.ends_with(".pfx") {
                            "PKCS12"
                        } else {
                            "JKS"
                        };
                        return Err(unsupported(l, t));
                    }
                }
            }
        }
        match (location, inline) {
            (Some(l), _) => {
                if l.trimmed().is_empty() {
                    return Err(l.invalid("empty path"));
                }
                Ok(PemStore::File(PathBuf::from(l.trimmed())))
            }
            (None, Some(i)) => {
                check_pem(i)?;
                Ok(PemStore::Inline(Secret::new(i.trimmed())))
            }
            (None, None) => Ok(PemStore::None),
        }
    }

    fn cluster_overrides(
        &self,
        alias: &str,
        role: ClientRole,
    ) -> Result<ClientOverrides, ConfigError> {
        let cluster = Scope::Cluster(alias.to_owned());
        let mut names = BTreeSet::new();
        for (scope, slot) in self.table.keys() {
            if scope != &cluster && scope != &Scope::Global {
                continue;
            }
            match slot {
                Slot::Client(Some(r), n) if *r == role => {
                    names.insert(n.clone());
                }
                Slot::Client(None, n) if client_key_applies(n, role) => {
                    names.insert(n.clone());
                }
                _ => {}
            }
        }
        let mut out = ClientOverrides::default();
        for name in names {
            let chain = [
                (&cluster, Slot::Client(Some(role), name.clone())),
                (&cluster, Slot::Client(None, name.clone())),
                (&Scope::Global, Slot::Client(Some(role), name.clone())),
                (&Scope::Global, Slot::Client(None, name.clone())),
            ];
            if let Some(e) = chain.iter().find_map(|(s, slot)| self.get(s, slot)) {
                put_setting(&mut out, role, &name, e)?;
            }
        }
        Ok(out)
    }

    fn flow_overrides(
        &self,
        s: &str,
        t: &str,
        base: &ClientOverrides,
        role: ClientRole,
    ) -> Result<ClientOverrides, ConfigError> {
        let flow = Scope::Flow(s.to_owned(), t.to_owned());
        let mut out = base.clone();
        let mut found: Vec<(&Slot, &Entry)> = self
            .table
            .iter()
            .filter(|((scope, slot), _)| {
                scope == &flow
                    && matches!(slot, Slot::Client(Some(r), _) | Slot::Override(r, _) if *r == role)
            })
            .map(|((_, slot), e)| (slot, e))
            .collect();
        // Plain client keys first, then overrides, so an override wins.
        found.sort_by_key(|(slot, _)| matches!(slot, Slot::Override(..)));
        for (slot, e) in found {
            if let Slot::Client(_, name) | Slot::Override(_, name) = slot {
                put_setting(&mut out, role, name, e)?;
            }
        }
        Ok(out)
    }

    fn build_flows(&mut self, clusters: &[ClusterConfig]) -> Result<Vec<FlowConfig>, ConfigError> {
        let mut flows = Vec::new();
        for s in self.aliases.clone() {
            for t in self.aliases.clone() {
                if s == t {
                    continue;
                }
                let enabled = match self.flow_entry(&s, &t, K::Enabled) {
                    None => false,
                    Some(e) => parse_bool(&e.value).map_err(|r| e.invalid(r))?,
                };
                if enabled {
                    flows.push(self.build_flow(&s, &t, clusters)?);
                }
            }
        }
        Ok(flows)
    }

    fn build_flow(
        &mut self,
        s: &str,
        t: &str,
        clusters: &[ClusterConfig],
    ) -> Result<FlowConfig, ConfigError> {
        let f = |k: MirrorKey| self.flow_entry(s, t, k);
        let mut pending: Vec<ConfigNotice> = Vec::new();

        // Replication policy.
        let class = f(K::ReplicationPolicyClass);
        let kind = match &class {
            None => PolicyKind::Default,
            Some(e) => {
                let kind = PolicyKind::from_class_name(e.trimmed()).map_err(|source| {
                    ConfigError::ReplicationPolicy {
                        key: e.key.clone(),
                        line: Some(e.line),
                        source,
                    }
                })?;
                if e.trimmed() == STRIMZI_IDENTITY_POLICY_CLASS {
                    pending.push(ConfigNotice::new(
                        Some(&e.key),
                        Some(e.line),
                        NoticeKind::StrimziPolicyClass,
                    ));
                }
                kind
            }
        };
        let separator_entry = f(K::ReplicationPolicySeparator);
        // MM2 hands the raw (untrimmed) string to the policy.
        let separator = separator_entry
            .as_ref()
            .map_or(ferry_mirror::policy::DEFAULT_SEPARATOR.to_owned(), |e| {
                e.value.clone()
            });
        let internal_separator = bool_or(f(K::InternalTopicSeparatorEnabled), true)?;
        let policy = AnyReplicationPolicy::new(
            kind,
            separator.clone(),
            internal_separator,
            Some(s.to_owned()),
        );
        if let Some(e) = separator_entry.as_ref().filter(|_| separator.is_empty()) {
            if kind == PolicyKind::Default {
                return Err(e.invalid(
                    "an empty separator makes DefaultReplicationPolicy read the first \
                     character of every topic as its source cluster; use a separator such as \
                     `.` or `_`, or IdentityReplicationPolicy",
                ));
            }
            let example = policy.offset_syncs_topic(t);
            pending.push(ConfigNotice::new(
                Some(&e.key),
                Some(e.line),
                NoticeKind::EmptySeparator { example },
            ));
        }

        // Filters.
        let topics = TopicFilter::new(
            pattern_list(f(K::Topics), "topics", DEFAULT_TOPICS)?,
            pattern_list(
                f(K::TopicsExclude),
                "topics.exclude",
                DEFAULT_TOPICS_EXCLUDE,
            )?,
        );
        let groups = GroupFilter::new(
            pattern_list(f(K::Groups), "groups", DEFAULT_GROUPS)?,
            pattern_list(
                f(K::GroupsExclude),
                "groups.exclude",
                DEFAULT_GROUPS_EXCLUDE,
            )?,
        );
        let config_properties_exclude = pattern_list(
            f(K::ConfigPropertiesExclude),
            "config.properties.exclude",
            DEFAULT_CONFIG_PROPERTIES_EXCLUDE,
        )?;
        let heartbeat_topics: Vec<String> = std::iter::once(HEARTBEATS_TOPIC.to_owned())
            .chain(
                self.aliases
                    .iter()
                    .map(|a| policy.format_remote_topic(a, HEARTBEATS_TOPIC)),
            )
            .collect();
        let mut lints = topics.lint(&heartbeat_topics);
        lints.extend(groups.lint());
        for lint in lints {
            let k = match lint.key {
                "topics" => K::Topics,
                "topics.exclude" => K::TopicsExclude,
                "groups" => K::Groups,
                _ => K::GroupsExclude,
            };
            let entry = f(k);
            pending.push(ConfigNotice::new(
                Some(entry.as_ref().map_or(lint.key, |e| e.key.as_str())),
                entry.as_ref().map(|e| e.line),
                NoticeKind::Filter(lint),
            ));
        }
        for (k, defaults) in [
            (
                K::TopicFilterClass,
                &["org.apache.kafka.connect.mirror.DefaultTopicFilter"][..],
            ),
            (
                K::GroupFilterClass,
                &["org.apache.kafka.connect.mirror.DefaultGroupFilter"][..],
            ),
            (
                K::ConfigPropertyFilterClass,
                &["org.apache.kafka.connect.mirror.DefaultConfigPropertyFilter"][..],
            ),
            (
                K::ForwardingAdminClass,
                &["org.apache.kafka.clients.admin.ForwardingAdmin"][..],
            ),
        ] {
            if let Some(e) = f(k) {
                let v = e.trimmed();
                let simple = defaults.iter().any(|d| d.rsplit('.').next() == Some(v));
                if !defaults.contains(&v) && !simple {
                    return Err(e.unsupported(format!(
                        "custom Java classes cannot run in ferry; only {} is supported",
                        defaults.join(", ")
                    )));
                }
            }
        }

        let replication_factor = rf(f(K::ReplicationFactor), defaults::REPLICATION_FACTOR)?;
        let offset_syncs_topic_replication_factor = rf(
            f(K::OffsetSyncsTopicReplicationFactor),
            defaults::INTERNAL_TOPIC_REPLICATION_FACTOR,
        )?;
        let checkpoints_topic_replication_factor = rf(
            f(K::CheckpointsTopicReplicationFactor),
            defaults::INTERNAL_TOPIC_REPLICATION_FACTOR,
        )?;
        let heartbeats_topic_replication_factor = rf(
            f(K::HeartbeatsTopicReplicationFactor),
            defaults::INTERNAL_TOPIC_REPLICATION_FACTOR,
        )?;

        let period =
            |enabled: MirrorKey, default_on: bool, interval: MirrorKey, default: Duration| {
                periodic(f(enabled), default_on, f(interval), default)
            };
        let refresh_topics = period(
            K::RefreshTopicsEnabled,
            true,
            K::RefreshTopicsIntervalSeconds,
            defaults::REFRESH_INTERVAL,
        )?;
        let refresh_groups = period(
            K::RefreshGroupsEnabled,
            true,
            K::RefreshGroupsIntervalSeconds,
            defaults::REFRESH_INTERVAL,
        )?;
        let sync_topic_configs = period(
            K::SyncTopicConfigsEnabled,
            true,
            K::SyncTopicConfigsIntervalSeconds,
            defaults::REFRESH_INTERVAL,
        )?;
        let sync_topic_acls = period(
            K::SyncTopicAclsEnabled,
            true,
            K::SyncTopicAclsIntervalSeconds,
            defaults::REFRESH_INTERVAL,
        )?;
        let emit_checkpoints = period(
            K::EmitCheckpointsEnabled,
            true,
            K::EmitCheckpointsIntervalSeconds,
            defaults::EMIT_CHECKPOINTS_INTERVAL,
        )?;
        let sync_group_offsets = period(
            K::SyncGroupOffsetsEnabled,
            false,
            K::SyncGroupOffsetsIntervalSeconds,
            defaults::SYNC_GROUP_OFFSETS_INTERVAL,
        )?;
        let emit_heartbeats = period(
            K::EmitHeartbeatsEnabled,
            true,
            K::EmitHeartbeatsIntervalSeconds,
            defaults::EMIT_HEARTBEATS_INTERVAL,
        )?;

        let sync_acls_prefixed = bool_or(f(K::FerrySyncAclsPrefixed), false)?;
        let sync_acls_groups = bool_or(f(K::FerrySyncAclsGroups), false)?;
        let sync_acls_delete = bool_or(f(K::FerrySyncAclsDelete), false)?;
        let heartbeats_replication = bool_or(f(K::HeartbeatsReplicationEnabled), true)?;
        let emit_offset_syncs = bool_or(f(K::EmitOffsetSyncsEnabled), true)?;
        let offset_syncs_location = match f(K::OffsetSyncsTopicLocation) {
            None => OffsetSyncsLocation::Source,
            Some(e) => match choice(e.trimmed(), LOCATIONS).map_err(|r| e.invalid(r))? {
                "target" => OffsetSyncsLocation::Target,
                _ => OffsetSyncsLocation::Source,
            },
        };
        let use_defaults_from = match f(K::UseDefaultsFrom) {
            None => UseDefaultsFrom::Target,
            Some(e) => match choice(e.trimmed(), LOCATIONS).map_err(|r| e.invalid(r))? {
                "source" => UseDefaultsFrom::Source,
                _ => UseDefaultsFrom::Target,
            },
        };
        let offset_lag_max = match f(K::OffsetLagMax) {
            None => defaults::OFFSET_LAG_MAX,
            Some(e) => e
                .trimmed()
                .parse::<i64>()
                .map_err(|_| e.invalid("expected an integer"))?,
        };
        let admin_timeout = millis(f(K::AdminTimeoutMs), defaults::ADMIN_TIMEOUT)?;
        let consumer_poll_timeout =
            millis(f(K::ConsumerPollTimeoutMs), defaults::CONSUMER_POLL_TIMEOUT)?;
        let tasks_max = match f(K::TasksMax) {
            None => None,
            Some(e) => match e.trimmed().parse::<i32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => return Err(e.invalid("expected a positive integer")),
            },
        };
        let exactly_once_support = match f(K::ExactlyOnceSupport) {
            None => ExactlyOnceSupport::Requested,
            Some(e) => {
                match choice(e.trimmed(), &["requested", "required"]).map_err(|r| e.invalid(r))? {
                    "required" => ExactlyOnceSupport::Required,
                    _ => ExactlyOnceSupport::Requested,
                }
            }
        };
        let exactly_once_source_support = match self.worker_entry(s, t, K::ExactlyOnceSourceSupport)
        {
            None => ExactlyOnceSourceSupport::Disabled,
            Some(e) => match choice(e.trimmed(), &["disabled", "preparing", "enabled"])
                .map_err(|r| e.invalid(r))?
            {
                "enabled" => ExactlyOnceSourceSupport::Enabled,
                "preparing" => ExactlyOnceSourceSupport::Preparing,
                _ => ExactlyOnceSourceSupport::Disabled,
            },
        };
        // Validate the worker keys ferry ignores, so a typo'd value is still caught.
        for k in [
            K::OffsetFlushIntervalMs,
            K::OffsetFlushTimeoutMs,
            K::TopicCreationEnable,
        ] {
            if let Some(e) = self.worker_entry(s, t, k) {
                check_value(k.kind(), &e.value).map_err(|r| e.invalid(r))?;
            }
        }

        let source_cluster = clusters.iter().find(|c| c.alias == s);
        let target_cluster = clusters.iter().find(|c| c.alias == t);
        let empty = ClientOverrides::default();
        let source_consumer = self.flow_overrides(
            s,
            t,
            source_cluster.map_or(&empty, |c| &c.consumer),
            ClientRole::Consumer,
        )?;
        let target_producer = self.flow_overrides(
            s,
            t,
            target_cluster.map_or(&empty, |c| &c.producer),
            ClientRole::Producer,
        )?;
        let source_admin = self.flow_overrides(
            s,
            t,
            source_cluster.map_or(&empty, |c| &c.admin),
            ClientRole::Admin,
        )?;
        let target_admin = self.flow_overrides(
            s,
            t,
            target_cluster.map_or(&empty, |c| &c.admin),
            ClientRole::Admin,
        )?;

        let isolation_level = match source_consumer.setting("isolation.level") {
            None => IsolationLevel::ReadCommitted,
            Some(setting) => match setting.value.expose().trim().to_ascii_lowercase().as_str() {
                "read_uncommitted" => IsolationLevel::ReadUncommitted,
                _ => IsolationLevel::ReadCommitted,
            },
        };
        let auto_offset_reset = match source_consumer.setting("auto.offset.reset") {
            None => AutoOffsetReset::Earliest,
            Some(setting) => parse_auto_offset_reset(setting.value.expose()).map_err(|reason| {
                ConfigError::InvalidValue {
                    key: setting.source_key.clone(),
                    line: Some(setting.line),
                    value: match &setting.value {
                        SettingValue::Plain(v) => Some(v.clone()),
                        SettingValue::Secret(_) => None,
                    },
                    reason,
                }
            })?,
        };

        self.notices.extend(pending);
        Ok(FlowConfig {
            source: s.to_owned(),
            target: t.to_owned(),
            topics,
            groups,
            policy,
            replication_factor,
            offset_syncs_topic_replication_factor,
            checkpoints_topic_replication_factor,
            heartbeats_topic_replication_factor,
            refresh_topics,
            refresh_groups,
            sync_topic_configs,
            sync_topic_acls,
            sync_acls_prefixed,
            sync_acls_groups,
            sync_acls_delete,
            emit_checkpoints,
            sync_group_offsets,
            emit_heartbeats,
            heartbeats_replication,
            emit_offset_syncs,
            offset_syncs_location,
            offset_lag_max,
            config_properties_exclude,
            use_defaults_from,
            admin_timeout,
            consumer_poll_timeout,
            tasks_max,
            exactly_once_support,
            exactly_once_source_support,
            isolation_level,
            auto_offset_reset,
            source_consumer,
            target_producer,
            source_admin,
            target_admin,
        })
    }

    /// Refuses cycles made only of identity-policy flows; warns about cycles mixing policies.
    fn check_cycles(&mut self, flows: &[FlowConfig]) -> Result<(), ConfigError> {
        let identity = |f: &FlowConfig| f.policy.kind() == PolicyKind::Identity;
        for edge in flows.iter().filter(|f| identity(f)) {
            let identity_edges: Vec<(&str, &str)> = flows
                .iter()
                .filter(|f| identity(f))
                .map(|f| (f.source.as_str(), f.target.as_str()))
                .collect();
            if let Some(mut path) = find_path(&identity_edges, &edge.target, &edge.source) {
                path.insert(0, edge.source.clone());
                return Err(ConfigError::IdentityCycle { cycle: path });
            }
        }
        let all_edges: Vec<(&str, &str)> = flows
            .iter()
            .map(|f| (f.source.as_str(), f.target.as_str()))
            .collect();
        for edge in flows.iter().filter(|f| identity(f)) {
            if let Some(mut path) = find_path(&all_edges, &edge.target, &edge.source) {
                path.insert(0, edge.source.clone());
                self.notices.push(ConfigNotice::new(
                    None,
                    None,
                    NoticeKind::MixedPolicyCycle { cycle: path },
                ));
            }
        }
        Ok(())
    }
}

/// A breadth-first path `from ... to` over directed edges, as aliases.
fn find_path(edges: &[(&str, &str)], from: &str, to: &str) -> Option<Vec<String>> {
    let mut previous: HashMap<&str, &str> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = BTreeSet::from([from]);
    while let Some(node) = queue.pop_front() {
        if node == to {
            let mut path = vec![node.to_owned()];
            let mut cur = node;
            while let Some(prev) = previous.get(cur) {
                path.push((*prev).to_owned());
                cur = prev;
            }
            path.reverse();
            return Some(path);
        }
        for (a, b) in edges {
            if *a == node && seen.insert(b) {
                previous.insert(b, node);
                queue.push_back(b);
            }
        }
    }
    None
}

#[derive(Clone, Copy)]
enum Store {
    Trust,
    Key,
}

enum PemStore {
    None,
    File(PathBuf),
    Inline(Secret),
}

impl Store {
    fn conversion(self, store_type: &str, location: Option<&str>) -> String {
        let src = location.unwrap_or(match self {
            Self::Trust => "truststore.jks",
            Self::Key => "keystore.jks",
        });
        let to_p12 = if store_type == "JKS" {
            format!(
                "  keytool -importkeystore -srckeystore {src} -destkeystore store.p12 -deststoretype PKCS12\n"
            )
        } else {
            String::new()
        };
        let p12 = if store_type == "JKS" {
            "store.p12"
        } else {
            src
        };
        match self {
            Self::Trust => format!(
                "{to_p12}  openssl pkcs12 -in {p12} -nokeys -out truststore.pem\n\
                 (or per certificate: keytool -exportcert -rfc -keystore {src} -alias <alias> -file ca.pem)\n\
                 then set ssl.truststore.type=PEM and ssl.truststore.location=truststore.pem"
            ),
            Self::Key => format!(
                "{to_p12}  openssl pkcs12 -in {p12} -nodes -out keystore.pem\n\
                 (keystore.pem then holds the private key and the certificate chain; protect it like the key)\n\
                 then set ssl.keystore.type=PEM and ssl.keystore.location=keystore.pem"
            ),
        }
    }
}

fn check_pem(e: &Entry) -> Result<(), ConfigError> {
    if e.value.contains("-----BEGIN ") {
        Ok(())
    } else {
        Err(e.invalid("expected PEM text starting with `-----BEGIN ...-----`"))
    }
}

fn is_ignored_worker_key(k: MirrorKey) -> bool {
    matches!(
        k,
        K::OffsetFlushIntervalMs | K::OffsetFlushTimeoutMs | K::TopicCreationEnable
    )
}

fn role_targets(role: ClientRole) -> &'static str {
    match role {
        ClientRole::Producer => "every target cluster",
        ClientRole::Consumer => "every source cluster",
        ClientRole::Admin => "every cluster",
    }
}

fn example_flow_from(alias: &str, example: &str) -> String {
    if example.starts_with(&format!("{alias}->")) {
        example.to_owned()
    } else {
        format!("{alias}->{{target}}")
    }
}

fn put_setting(
    out: &mut ClientOverrides,
    role: ClientRole,
    name: &str,
    e: &Entry,
) -> Result<(), ConfigError> {
    if let Some(kind) = client_key(name, Some(role)) {
        check_value(kind, &e.value).map_err(|r| e.invalid(r))?;
    }
    let value = if e.secret {
        SettingValue::Secret(Secret::new(e.trimmed()))
    } else {
        SettingValue::Plain(e.trimmed().to_owned())
    };
    out.0.insert(
        name.to_owned(),
        ClientSetting {
            value,
            source_key: e.key.clone(),
            line: e.line,
        },
    );
    Ok(())
}

fn parse_bootstrap(e: &Entry) -> Result<Vec<BrokerAddress>, ConfigError> {
    let mut servers = Vec::new();
    for item in split_list(&e.value) {
        if item.is_empty() {
            continue;
        }
        let addr = BrokerAddress::parse(&item).map_err(|reason| {
            if e.secret {
                return e.invalid(reason);
            }
            let hint = if item.contains('$') && !item.contains("${") {
                let var = item
                    .trim_start_matches('$')
                    .trim_matches(|c| c == '{' || c == '}');
                format!(
                    "; it looks like an unexpanded shell variable: write `${{env:{var}}}` to \
                     read it from the environment"
                )
            } else {
                String::new()
            };
            e.invalid(format!("`{item}`: {reason}{hint}"))
        })?;
        servers.push(addr);
    }
    if servers.is_empty() {
        return Err(e.invalid("no broker address"));
    }
    Ok(servers)
}

fn pattern_list(
    e: Option<Entry>,
    canonical: &str,
    default: &str,
) -> Result<PatternList, ConfigError> {
    match e {
        None => PatternList::parse(canonical, default).map_err(|source| ConfigError::Filter {
            key: canonical.to_owned(),
            line: None,
            source: Box::new(source),
        }),
        Some(e) => PatternList::parse(&e.key, &e.value).map_err(|source| ConfigError::Filter {
            key: e.key.clone(),
            line: Some(e.line),
            source: Box::new(source),
        }),
    }
}

fn bool_or(e: Option<Entry>, default: bool) -> Result<bool, ConfigError> {
    match e {
        None => Ok(default),
        Some(e) => parse_bool(&e.value).map_err(|r| e.invalid(r)),
    }
}

/// A periodic task: `None` when disabled by its `*.enabled` key or by a negative interval
/// (MM2 treats a negative interval as "never").
fn periodic(
    enabled: Option<Entry>,
    default_on: bool,
    interval: Option<Entry>,
    default: Duration,
) -> Result<Option<Duration>, ConfigError> {
    let on = bool_or(enabled, default_on)?;
    let period = match interval {
        None => Some(default),
        Some(e) => {
            let secs: i64 = e
                .trimmed()
                .parse()
                .map_err(|_| e.invalid("expected a whole number of seconds"))?;
            match u64::try_from(secs) {
                Ok(0) => return Err(e.invalid("an interval of 0 is not allowed; use a positive number of seconds, or the matching `*.enabled=false` to disable")),
                Ok(n) => Some(Duration::from_secs(n)),
                Err(_) => None,
            }
        }
    };
    Ok(if on { period } else { None })
}

fn millis(e: Option<Entry>, default: Duration) -> Result<Duration, ConfigError> {
    match e {
        None => Ok(default),
        Some(e) => {
            let ms: u64 = e
                .trimmed()
                .parse()
                .map_err(|_| e.invalid("expected a non-negative number of milliseconds"))?;
            Ok(Duration::from_millis(ms))
        }
    }
}

fn rf(e: Option<Entry>, default: i16) -> Result<ReplicationFactor, ConfigError> {
    let Some(e) = e else {
        return Ok(ReplicationFactor::Count(default));
    };
    match e.trimmed().parse::<i32>() {
        Ok(-1) => Ok(ReplicationFactor::BrokerDefault),
        Ok(n) if n >= 1 => i16::try_from(n)
            .map(ReplicationFactor::Count)
            .map_err(|_| e.invalid("a replication factor must fit in 16 bits")),
        Ok(_) => {
            Err(e.invalid("a replication factor is at least 1, or -1 for the broker's default"))
        }
        Err(_) => Err(e.invalid("expected an integer")),
    }
}

/// `earliest`, `latest`, `none` or `by_duration:<ISO-8601 duration>` (KIP-1106).
fn parse_auto_offset_reset(v: &str) -> Result<AutoOffsetReset, String> {
    let v = v.trim();
    let lower = v.to_ascii_lowercase();
    match lower.as_str() {
        "earliest" => Ok(AutoOffsetReset::Earliest),
        "latest" => Ok(AutoOffsetReset::Latest),
        "none" => Ok(AutoOffsetReset::None),
        _ => match lower.strip_prefix("by_duration:") {
            Some(d) => parse_iso_duration(d)
                .map(AutoOffsetReset::ByDuration)
                .ok_or_else(|| format!("`{d}` is not an ISO-8601 duration such as P1D or PT12H")),
            None => {
                Err("expected earliest, latest, none or by_duration:<ISO-8601 duration>".to_owned())
            }
        },
    }
}

/// `PnDTnHnMn.nS` (Java's `Duration.parse`, positive values).
fn parse_iso_duration(s: &str) -> Option<Duration> {
    let s = s.trim().to_ascii_uppercase();
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = 0f64;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let (_, mult) = units.iter().find(|(u, _)| *u == c)?;
                let n: f64 = num.parse().ok()?;
                total += n * mult;
                num.clear();
                any = true;
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('D', 86_400.0)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        take(time, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    (any && total.is_finite()).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations() {
        assert_eq!(parse_iso_duration("P1D"), Some(Duration::from_secs(86_400)));
        assert_eq!(
            parse_iso_duration("PT12H30M"),
            Some(Duration::from_secs(45_000))
        );
        assert_eq!(
            parse_iso_duration("pt1.5s"),
            Some(Duration::from_millis(1_500))
        );
        assert_eq!(
            parse_iso_duration("P1DT1S"),
            Some(Duration::from_secs(86_401))
        );
        for bad in ["", "P", "PT", "1D", "P1X", "PT5"] {
            assert_eq!(parse_iso_duration(bad), None, "{bad}");
        }
        assert_eq!(
            parse_auto_offset_reset("by_duration:PT1H"),
            Ok(AutoOffsetReset::ByDuration(Duration::from_secs(3600)))
        );
        assert_eq!(
            parse_auto_offset_reset(" LATEST "),
            Ok(AutoOffsetReset::Latest)
        );
        assert!(parse_auto_offset_reset("smallest").is_err());
    }

    #[test]
    fn paths_through_edges() {
        let edges = [("a", "b"), ("b", "c"), ("c", "a")];
        assert_eq!(
            find_path(&edges, "b", "a"),
            Some(vec!["b".to_owned(), "c".to_owned(), "a".to_owned()])
        );
        assert_eq!(find_path(&[("a", "b")], "b", "a"), None);
    }
}
