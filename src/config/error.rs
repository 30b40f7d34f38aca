//! Errors raised while loading a configuration.

use std::path::PathBuf;

use ferry_mirror::filter::FilterError;
use ferry_mirror::policy::UnknownPolicyClass;

use super::jaas::JaasError;
use super::placeholder::PlaceholderError;

/// A configuration that ferry cannot run with.
///
/// Every variant except [`ConfigError::Io`] is the configuration author's to fix; variants name
/// the key and, where known, the line. Values of secret keys (passwords, `sasl.jaas.config`,
/// private keys) and values that came from a `${...}` placeholder are never included: `value`
/// is `None` for them. Branch on the variant or on [`ConfigError::is_io`], never on the
/// `Display` text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read (missing, unreadable). The environment is at
    /// fault, not the file's content.
    #[error("cannot read configuration file `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The file is not valid Java properties syntax (a malformed `\uXXXX` escape, an unpaired
    /// UTF-16 surrogate).
    #[error("line {line}: {reason}")]
    Syntax {
        /// 1-based line where the logical line starts.
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// A key has a value of the wrong type or outside its allowed range.
    #[error("{}invalid value {} for `{key}`: {reason}", at(*line), shown(value.as_deref()))]
    InvalidValue {
        /// The key as written (with its scope prefix).
        key: String,
        /// The line, when the value came from the file.
        line: Option<usize>,
        /// The value as written, or `None` when it is secret.
        value: Option<String>,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A required key is absent (`clusters`, `{alias}.bootstrap.servers`, a SASL login).
    #[error("missing `{key}`: {reason}")]
    MissingKey {
        /// The key that must be set.
        key: String,
        /// Why it is needed.
        reason: String,
    },

    /// An unknown key in strict mode (outside strict mode it is a
    /// [`NoticeKind::UnknownKey`](super::NoticeKind::UnknownKey) warning).
    #[error("line {line}: unknown key `{key}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Its line.
        line: usize,
        /// The nearest known key, when one is close.
        suggestion: Option<String>,
    },

    /// A `${provider:path:key}` placeholder could not be resolved. The resolved value is never
    /// shown; the referencing key is.
    #[error("line {line}: `{key}`: {source}")]
    Placeholder {
        /// The key whose value holds the placeholder.
        key: String,
        /// Its line.
        line: usize,
        /// What failed.
        #[source]
        source: Box<PlaceholderError>,
    },

    /// A topic or group filter does not compile.
    #[error("{}{source}", at(*line))]
    Filter {
        /// The key as written (with its scope prefix).
        key: String,
        /// The line, when the list came from the file.
        line: Option<usize>,
        /// The compile error, naming the pattern.
        #[source]
        source: Box<FilterError>,
    },

    /// `sasl.jaas.config` is malformed or names a login module ferry does not support.
    #[error("{}`{key}`: {source}", at(*line))]
    Jaas {
        /// The key as written.
        key: String,
        /// Its line.
        line: Option<usize>,
        /// What is wrong (never the option values).
        #[source]
        source: JaasError,
    },

    /// A JKS or PKCS12 key store or trust store: ferry reads PEM only.
    #[error("{}`{key}`: {store_type} stores are not supported; convert to PEM:\n{conversion}", at(*line))]
    UnsupportedStoreType {
        /// The `*.location` or `*.type` key.
        key: String,
        /// Its line.
        line: Option<usize>,
        /// `JKS` or `PKCS12`.
        store_type: String,
        /// The commands that convert the store, and the keys to set afterwards.
        conversion: String,
    },

    /// A setting ferry does not implement (a SASL mechanism, a custom Java class, a TLS
    /// version).
    #[error("{}`{key}`{}: {reason}", at(*line), value.as_ref().map(|v| format!(" = `{v}`")).unwrap_or_default())]
    Unsupported {
        /// The key as written.
        key: String,
        /// Its line.
        line: Option<usize>,
        /// The value, unless secret.
        value: Option<String>,
        /// What is not supported and what to use instead.
        reason: String,
    },

    /// `replication.policy.class` names a class ferry does not implement.
    #[error("{}`{key}`: {source}", at(*line))]
    ReplicationPolicy {
        /// The key as written.
        key: String,
        /// Its line.
        line: Option<usize>,
        /// The unknown class.
        #[source]
        source: UnknownPolicyClass,
    },

    /// A flow from a cluster into itself (`A->A.enabled=true`).
    #[error("line {line}: `{key}`: cluster `{alias}` cannot replicate into itself")]
    SelfReplication {
        /// The key as written.
        key: String,
        /// Its line.
        line: usize,
        /// The cluster.
        alias: String,
    },

    /// Enabled flows form a cycle in which every flow uses the identity policy, which cannot
    /// detect cycles: records would circulate forever.
    #[error(
        "flows {} form a cycle under IdentityReplicationPolicy, which cannot detect cycles: \
         records would be replicated around it forever; disable one flow or use \
         DefaultReplicationPolicy on at least one of them",
        cycle.join(" -> ")
    )]
    IdentityCycle {
        /// The cluster aliases along the cycle, first one repeated at the end.
        cycle: Vec<String>,
    },
}

fn at(line: Option<usize>) -> String {
    line.map(|l| format!("line {l}: ")).unwrap_or_default()
}

fn shown(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("`{v}`"),
        None => "(secret value hidden)".to_owned(),
    }
}

impl ConfigError {
    /// The key at fault, when the error concerns one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Io { .. } | Self::Syntax { .. } | Self::IdentityCycle { .. } => None,
            Self::InvalidValue { key, .. }
            | Self::MissingKey { key, .. }
            | Self::UnknownKey { key, .. }
            | Self::Placeholder { key, .. }
            | Self::Filter { key, .. }
            | Self::Jaas { key, .. }
            | Self::UnsupportedStoreType { key, .. }
            | Self::Unsupported { key, .. }
            | Self::ReplicationPolicy { key, .. }
            | Self::SelfReplication { key, .. } => Some(key),
        }
    }

    /// The 1-based line of the file at fault, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Syntax { line, .. }
            | Self::UnknownKey { line, .. }
            | Self::Placeholder { line, .. }
            | Self::SelfReplication { line, .. } => Some(*line),
            Self::InvalidValue { line, .. }
            | Self::Filter { line, .. }
            | Self::Jaas { line, .. }
            | Self::UnsupportedStoreType { line, .. }
            | Self::Unsupported { line, .. }
            | Self::ReplicationPolicy { line, .. } => *line,
            Self::Io { .. } | Self::MissingKey { .. } | Self::IdentityCycle { .. } => None,
        }
    }

    /// Whether the environment rather than the file's content is at fault: the file or a
    /// file referenced by a placeholder cannot be read, or an environment variable is unset.
    /// Retrying after fixing the environment may succeed with the same file.
    pub fn is_io(&self) -> bool {
        match self {
            Self::Io { .. } => true,
            Self::Placeholder { source, .. } => source.is_environment(),
            _ => false,
        }
    }

    /// Whether the error is about something ferry does not implement (rather than a mistake):
    /// a SASL mechanism, a store type, a custom class.
    pub fn is_unsupported(&self) -> bool {
        match self {
            Self::Unsupported { .. }
            | Self::UnsupportedStoreType { .. }
            | Self::ReplicationPolicy { .. } => true,
            Self::Jaas { source, .. } => source.is_unsupported(),
            _ => false,
        }
    }
}
