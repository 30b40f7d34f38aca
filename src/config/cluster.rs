//! Per-cluster connection settings: bootstrap servers, security protocol, SASL login, TLS.
//!
//! # References
//! - `clients/src/main/java/org/apache/kafka/clients/ClientUtils.java`
//!   (`parseAndValidateAddresses`)
//! - `clients/src/main/java/org/apache/kafka/common/config/SslConfigs.java`,
//!   `SaslConfigs.java`; KIP-651 (PEM key stores), KIP-294 (endpoint identification on by
//!   default), KIP-84 (SCRAM)

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::keys::ClientRole;
use super::secret::Secret;

/// One cluster's connection settings (`{alias}.bootstrap.servers`, `{alias}.security.protocol`,
/// ...). Top-level security keys are defaults for every cluster; a cluster's own value wins.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// The alias from `clusters`.
    pub alias: String,
    /// `bootstrap.servers`, in order.
    pub bootstrap_servers: Vec<BrokerAddress>,
    /// `security.protocol`.
    pub security_protocol: SecurityProtocol,
    /// The SASL login, present exactly when the protocol is `SASL_PLAINTEXT` or `SASL_SSL`.
    pub sasl: Option<SaslSettings>,
    /// TLS settings, present exactly when the protocol is `SSL` or `SASL_SSL`.
    pub tls: Option<TlsSettings>,
    /// Producer settings for this cluster as a target (`{alias}.producer.*`, then bare
    /// `producer.*` as ferry's default). Bootstrap and security keys are typed above instead.
    pub producer: ClientOverrides,
    /// Consumer settings for this cluster as a source.
    pub consumer: ClientOverrides,
    /// Admin client settings for this cluster.
    pub admin: ClientOverrides,
}

impl ClusterConfig {
    /// The overrides for one client role.
    pub fn client(&self, role: ClientRole) -> &ClientOverrides {
        match role {
            ClientRole::Producer => &self.producer,
            ClientRole::Consumer => &self.consumer,
            ClientRole::Admin => &self.admin,
        }
    }
}

/// A `host:port` from `bootstrap.servers`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BrokerAddress {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl BrokerAddress {
    /// Parses `host:port`, `[v6]:port` or `scheme://host:port` (Kafka accepts a leading
    /// listener name and ignores it). The error is a human-readable reason that does not
    /// repeat the input (it may come from a secret).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let s = s.split_once("://").map_or(s, |(_, rest)| rest);
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or("unclosed `[` in an IPv6 address")?;
            let port = after.strip_prefix(':').ok_or("expected `[address]:port`")?;
            (host, port)
        } else {
            s.rsplit_once(':').ok_or("no port; expected host:port")?
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '%'))
        {
            return Err("invalid host; expected host:port".to_owned());
        }
        let port: u16 = port
            .parse()
            .map_err(|_| "invalid port; expected a number from 1 to 65535".to_owned())?;
        if port == 0 {
            return Err("port 0 is not valid".to_owned());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

/// `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// No TLS, no SASL (Kafka's default).
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections use TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    pub(crate) fn from_canonical(name: &str) -> Self {
        match name {
            "SSL" => Self::Ssl,
            "SASL_PLAINTEXT" => Self::SaslPlaintext,
            "SASL_SSL" => Self::SaslSsl,
            _ => Self::Plaintext,
        }
    }
}

/// The SASL mechanisms ferry implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616).
    Plain,
    /// `SCRAM-SHA-256` (RFC 5802, 7677; KIP-84).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl SaslMechanism {
    /// Kafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "PLAIN" => Some(Self::Plain),
            "SCRAM-SHA-256" => Some(Self::ScramSha256),
            "SCRAM-SHA-512" => Some(Self::ScramSha512),
            _ => None,
        }
    }
}

/// A SASL login (`sasl.mechanism` plus the credentials of `sasl.jaas.config`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SaslSettings {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The user name (the token id for delegation tokens).
    pub username: String,
    /// The password (the token HMAC for delegation tokens).
    pub password: Secret,
    /// SCRAM with a delegation token (`tokenauth=true`, KIP-48).
    pub token_auth: bool,
}

/// TLS settings of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsSettings {
    /// Which certificate authorities to trust.
    pub trust: TrustAnchors,
    /// The client certificate for mutual TLS, if any.
    pub identity: Option<ClientIdentity>,
    /// Whether the broker's certificate must match its host name
    /// (`ssl.endpoint.identification.algorithm=https`, the default; empty disables it).
    pub verify_hostname: bool,
    /// The TLS versions allowed (`ssl.enabled.protocols`, default 1.2 and 1.3).
    pub versions: Vec<TlsVersion>,
}

/// The certificate authorities a client trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustAnchors {
    /// The platform's default roots (no trust store configured), like the JVM's default.
    SystemDefault,
    /// A PEM file of CA certificates (`ssl.truststore.location` with type PEM).
    PemFile(PathBuf),
    /// Inline PEM certificates (`ssl.truststore.certificates`).
    PemInline(String),
}

/// A PEM source for a client certificate and key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientIdentity {
    /// One PEM file holding the private key and the certificate chain
    /// (`ssl.keystore.location` with `ssl.keystore.type=PEM`).
    PemFile {
        /// The file.
        path: PathBuf,
        /// `ssl.key.password` for an encrypted private key.
        key_password: Option<Secret>,
    },
    /// Inline PEM (`ssl.keystore.certificate.chain` and `ssl.keystore.key`, KIP-651).
    PemInline {
        /// The certificate chain.
        certificate_chain: String,
        /// The private key.
        private_key: Secret,
        /// `ssl.key.password` for an encrypted private key.
        key_password: Option<Secret>,
    },
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "TLSv1.2" => Some(Self::Tls12),
            "TLSv1.3" => Some(Self::Tls13),
            _ => None,
        }
    }
}

/// A client setting's value; secret values never print.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingValue {
    /// An ordinary value.
    Plain(String),
    /// A secret (a password-type key, or a value resolved from a placeholder).
    Secret(Secret),
}

impl SettingValue {
    /// The value.
    pub fn expose(&self) -> &str {
        match self {
            Self::Plain(v) => v,
            Self::Secret(s) => s.expose(),
        }
    }
}

impl fmt::Debug for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(v) => fmt::Debug::fmt(v, f),
            Self::Secret(s) => fmt::Debug::fmt(s, f),
        }
    }
}

/// One resolved client setting and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientSetting {
    /// The value, trimmed.
    pub value: SettingValue,
    /// The key it came from, as written (`B.producer.linger.ms`, `producer.linger.ms`, ...).
    pub source_key: String,
    /// The line of that key.
    pub line: usize,
}

/// Kafka client settings for one client (name without prefix → value), after precedence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOverrides(pub(crate) BTreeMap<String, ClientSetting>);

impl ClientOverrides {
    /// The value of a client key (`"linger.ms"`), if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.value.expose())
    }

    /// The setting with its origin.
    pub fn setting(&self, name: &str) -> Option<&ClientSetting> {
        self.0.get(name)
    }

    /// Every setting, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ClientSetting)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many settings there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses() {
        let a = BrokerAddress::parse(" kafka-1.example.com:9092 ").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("kafka-1.example.com", 9092));
        let a = BrokerAddress::parse("[::1]:9093").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 9093));
        assert_eq!(a.to_string(), "[::1]:9093");
        let a = BrokerAddress::parse("SASL_SSL://b.example.com:9094").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("b.example.com", 9094));
        for bad in [
            "kafka",
            "kafka:",
            "kafka:x",
            "kafka:70000",
            ":9092",
            "$OLD_SERVERS",
            "k:0",
            "[::1:9092",
        ] {
            assert!(BrokerAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn protocol_flags() {
        assert!(SecurityProtocol::SaslSsl.uses_tls() && SecurityProtocol::SaslSsl.uses_sasl());
        assert!(!SecurityProtocol::Plaintext.uses_tls());
        assert_eq!(
            SecurityProtocol::from_canonical("SASL_PLAINTEXT"),
            SecurityProtocol::SaslPlaintext
        );
        assert_eq!(
            SaslMechanism::parse("SCRAM-SHA-512"),
            Some(SaslMechanism::ScramSha512)
        );
        assert_eq!(SaslMechanism::parse("scram-sha-512"), None);
    }

    #[test]
    fn secret_settings_do_not_print() {
        let v = SettingValue::Secret(Secret::new("pw"));
        assert_eq!(format!("{v:?}"), "Secret(***)");
        assert_eq!(v.expose(), "pw");
    }
}
