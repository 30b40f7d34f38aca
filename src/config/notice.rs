//! Notices: what ferry noticed while loading a configuration that does not stop it from
//! running, but that the operator should know.

use std::fmt;

use ferry_mirror::filter::FilterLint;

/// How much a notice matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// ferry behaves as the user most likely expects; the notice explains a difference from
    /// MM2 or a key with no use in ferry.
    Info,
    /// The configuration probably does not do what its author meant.
    Warning,
}

/// One notice, with the key and line it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigNotice {
    /// The key as written (with its scope prefix), when the notice is about one key.
    pub key: Option<String>,
    /// The 1-based line, when the notice is about a line of the file.
    pub line: Option<usize>,
    /// What was noticed.
    pub kind: NoticeKind,
}

/// What a [`ConfigNotice`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoticeKind {
    /// A key ferry does not know; it has no effect. Unknown keys are errors in strict mode.
    UnknownKey {
        /// The nearest known key, when one is close.
        suggestion: Option<String>,
    },
    /// A known MM2, Connect or client key that ferry accepts and ignores.
    Ignored {
        /// Why ferry has no use for it.
        reason: &'static str,
    },
    /// A removed MM2 spelling (`topics.blacklist`); ferry reads it as the canonical key.
    DeprecatedAlias {
        /// The canonical key.
        canonical: &'static str,
        /// The Kafka release that removed the alias.
        removed_in: &'static str,
    },
    /// A key MM2 dedicated mode would silently ignore, which ferry applies as a default.
    Mm2WouldIgnore {
        /// What ferry applies it to ("every target cluster", ...).
        applies_to: String,
        /// The form MM2 would honour.
        mm2_form: String,
    },
    /// A key at a scope where it has no effect (`A.topics`, `A->B.bootstrap.servers`).
    NoEffectAtScope {
        /// Where to put it instead.
        hint: String,
    },
    /// A key scoped to an alias that `clusters` does not list.
    UnknownAlias {
        /// The alias.
        alias: String,
    },
    /// A key set more than once; the last one wins, as in Java.
    DuplicateKey {
        /// The line of the overridden occurrence.
        previous_line: usize,
    },
    /// A filter that probably does not do what its author meant.
    Filter(FilterLint),
    /// A `${env:..}`, `${file:..}` or `${directory:..}` placeholder whose provider is not
    /// declared in `config.providers`: Kafka would leave it unresolved; ferry resolves it.
    UndeclaredProvider {
        /// The provider name.
        provider: String,
    },
    /// The file is not valid UTF-8 and was read as ISO-8859-1 (as Java reads properties).
    Latin1File,
    /// Strimzi's identity policy class, read as Kafka's `IdentityReplicationPolicy`.
    StrimziPolicyClass,
    /// An empty `replication.policy.separator` with the identity policy: heartbeats and
    /// internal topic names lose their separator.
    EmptySeparator {
        /// An internal topic name as it will be, e.g. `mm2-offset-syncsBinternal`.
        example: String,
    },
    /// SASL or TLS settings on a cluster whose `security.protocol` does not use them.
    UnusedSecurity {
        /// `SASL` or `TLS`.
        what: &'static str,
        /// The cluster's protocol.
        protocol: &'static str,
    },
    /// A top-level `enabled=true` enables every ordered pair of clusters.
    EnablesAllPairs {
        /// How many flows that enables.
        flows: usize,
    },
    /// A cycle of enabled flows mixing policies: the identity flows on it cannot stop records
    /// from coming back.
    MixedPolicyCycle {
        /// The aliases along the cycle, first repeated at the end.
        cycle: Vec<String>,
    },
    /// Options of `sasl.jaas.config` that ferry does not use.
    IgnoredJaasOptions {
        /// Their names.
        options: Vec<String>,
    },
    /// A store location read as PEM because of its file extension, without `*.type=PEM`.
    PemByExtension,
    /// A backslash the properties syntax drops: `\.` reads as `.`, so a regex escape needs
    /// `\\.` in the file.
    DroppedBackslash {
        /// The character the dropped backslash preceded.
        character: char,
    },
    /// An alias listed twice in `clusters`.
    DuplicateAlias {
        /// The alias.
        alias: String,
    },
}

impl ConfigNotice {
    pub(crate) fn new(key: Option<&str>, line: Option<usize>, kind: NoticeKind) -> Self {
        Self {
            key: key.map(str::to_owned),
            line,
            kind,
        }
    }

    /// How much the notice matters.
    pub fn severity(&self) -> Severity {
        match &self.kind {
            NoticeKind::UnknownKey { .. }
            | NoticeKind::NoEffectAtScope { .. }
            | NoticeKind::UnknownAlias { .. }
            | NoticeKind::Filter(_)
            | NoticeKind::EmptySeparator { .. }
            | NoticeKind::UnusedSecurity { .. }
            | NoticeKind::MixedPolicyCycle { .. }
            | NoticeKind::DroppedBackslash { .. }
            | NoticeKind::DeprecatedAlias { .. } => Severity::Warning,
            NoticeKind::Ignored { .. }
            | NoticeKind::Mm2WouldIgnore { .. }
            | NoticeKind::DuplicateKey { .. }
            | NoticeKind::UndeclaredProvider { .. }
            | NoticeKind::Latin1File
            | NoticeKind::StrimziPolicyClass
            | NoticeKind::EnablesAllPairs { .. }
            | NoticeKind::IgnoredJaasOptions { .. }
            | NoticeKind::PemByExtension
            | NoticeKind::DuplicateAlias { .. } => Severity::Info,
        }
    }
}

impl fmt::Display for ConfigNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        let key = self.key.as_deref().unwrap_or("");
        match &self.kind {
            NoticeKind::UnknownKey { suggestion } => {
                write!(f, "unknown key `{key}` has no effect")?;
                if let Some(s) = suggestion {
                    write!(f, " (did you mean `{s}`?)")?;
                }
                Ok(())
            }
            NoticeKind::Ignored { reason } => write!(f, "`{key}` is ignored: {reason}"),
            NoticeKind::DeprecatedAlias {
                canonical,
                removed_in,
            } => write!(
                f,
                "`{key}` was removed in Kafka {removed_in}; ferry reads it as `{canonical}`, \
                 which you should use instead"
            ),
            NoticeKind::Mm2WouldIgnore {
                applies_to,
                mm2_form,
            } => write!(
                f,
                "MM2 dedicated mode would ignore `{key}`; ferry applies it as the default for \
                 {applies_to} (MM2 honours `{mm2_form}`)"
            ),
            NoticeKind::NoEffectAtScope { hint } => write!(f, "`{key}` has no effect: {hint}"),
            NoticeKind::UnknownAlias { alias } => write!(
                f,
                "`{key}` is scoped to `{alias}`, which `clusters` does not list; it has no effect"
            ),
            NoticeKind::DuplicateKey { previous_line } => write!(
                f,
                "`{key}` is also set on line {previous_line}; the last occurrence wins"
            ),
            NoticeKind::Filter(lint) => write!(f, "{lint}"),
            NoticeKind::UndeclaredProvider { provider } => write!(
                f,
                "`${{{provider}:...}}` placeholders are resolved although `config.providers` does \
                 not declare `{provider}` (Kafka would leave them unresolved)"
            ),
            NoticeKind::Latin1File => f.write_str(
                "the file is not valid UTF-8; it was read as ISO-8859-1, as Java reads properties",
            ),
            NoticeKind::StrimziPolicyClass => write!(
                f,
                "`{key}` names Strimzi's identity policy; ferry applies Kafka's \
                 org.apache.kafka.connect.mirror.IdentityReplicationPolicy, which names topics \
                 the same way"
            ),
            NoticeKind::EmptySeparator { example } => write!(
                f,
                "`{key}` is empty: heartbeats and internal topics lose their separator (e.g. \
                 `{example}`); set replication.policy.internal.topic.separator.enabled=false to \
                 keep `.` in internal topic names"
            ),
            NoticeKind::UnusedSecurity { what, protocol } => write!(
                f,
                "`{key}` configures {what}, but security.protocol is {protocol}, so it is not used"
            ),
            NoticeKind::EnablesAllPairs { flows } => write!(
                f,
                "a top-level `enabled=true` enables every ordered pair of clusters ({flows} flows)"
            ),
            NoticeKind::MixedPolicyCycle { cycle } => write!(
                f,
                "flows {} form a cycle and some use IdentityReplicationPolicy, which cannot \
                 detect cycles: records may travel around it more than once",
                cycle.join(" -> ")
            ),
            NoticeKind::IgnoredJaasOptions { options } => write!(
                f,
                "`{key}`: login module options {} are not used by ferry",
                options.join(", ")
            ),
            NoticeKind::PemByExtension => write!(
                f,
                "`{key}` is read as PEM because of its file extension; Kafka would read it as \
                 JKS unless the matching `*.type=PEM` is set"
            ),
            NoticeKind::DroppedBackslash { character } => write!(
                f,
                "`{key}`: the backslash before `{character}` is dropped when a properties file is \
                 read (as in Java), so the value holds `{character}`, not `\\{character}`; write \
                 `\\\\{character}` to keep the backslash (e.g. a regex escape)"
            ),
            NoticeKind::DuplicateAlias { alias } => {
                write!(f, "`clusters` lists `{alias}` more than once")
            }
        }
    }
}
