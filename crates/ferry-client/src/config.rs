//! Connection configuration: bootstrap servers, security protocol, SASL, TLS, timeouts.
//!
//! [`ConnectionConfig::builder`] collects settings with `with_*` methods and
//! [`ConnectionConfigBuilder::build`] validates them (and reads the PEM files) before any
//! network I/O. Names follow the Java client's settings (`security.protocol`,
//! `sasl.mechanism`, `ssl.endpoint.identification.algorithm`, ...), and the enums'
//! `FromStr` accept Kafka's spellings.
//!
//! Secrets (SASL password, private key) are held in [`Secret`], whose `Debug` prints `***`.
//!
//! # References
//! - Kafka client configs: `security.protocol`, `sasl.mechanism`, `ssl.*` (KIP-294, KIP-651)

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::frame::DEFAULT_MAX_FRAME_SIZE;

use crate::backoff::BackoffConfig;

/// A secret string (password). `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call only where the value is actually used.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Kafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// `PLAINTEXT`: TCP, no authentication.
    #[default]
    Plaintext,
    /// `SSL`: TLS, optionally with a client certificate.
    Ssl,
    /// `SASL_PLAINTEXT`: SASL over TCP.
    SaslPlaintext,
    /// `SASL_SSL`: SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether the transport is TLS.
    #[must_use]
    pub const fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether SASL authentication follows the connect.
    #[must_use]
    pub const fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    /// Kafka's spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }
}

impl FromStr for SecurityProtocol {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(Self::Plaintext),
            "SSL" => Ok(Self::Ssl),
            "SASL_PLAINTEXT" => Ok(Self::SaslPlaintext),
            "SASL_SSL" => Ok(Self::SaslSsl),
            _ => Err(ConfigError::InvalidValue {
                field: "security.protocol",
                message: format!("unknown security protocol {s:?}"),
            }),
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kafka's `sasl.mechanism` values ferry implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616). Use only over TLS outside tests.
    Plain,
    /// `SCRAM-SHA-256` (RFC 5802, RFC 7677; KIP-84).
    ScramSha256,
    /// `SCRAM-SHA-512` (RFC 5802; KIP-84).
    ScramSha512,
}

impl SaslMechanism {
    /// The mechanism name sent in SaslHandshake.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl FromStr for SaslMechanism {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(Self::Plain),
            "SCRAM-SHA-256" => Ok(Self::ScramSha256),
            "SCRAM-SHA-512" => Ok(Self::ScramSha512),
            _ => Err(ConfigError::InvalidValue {
                field: "sasl.mechanism",
                message: format!(
                    "unsupported SASL mechanism {s:?} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
                ),
            }),
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SASL mechanism and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: Secret,
}

/// TLS settings as Kafka spells them; turned into a rustls config by
/// [`ConnectionConfigBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file with the CA certificates to trust (`ssl.truststore.location` with type PEM).
    /// `None`: the bundled webpki roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for the client certificate.
    pub client_key_file: Option<PathBuf>,
    /// Check that the certificate names the broker (`ssl.endpoint.identification.algorithm`
    /// = `https`, the default since Kafka 2.0, KIP-294). When off, the chain is still verified.
    pub verify_hostname: bool,
    /// Name to verify instead of each broker's host (SNI and certificate check).
    pub server_name: Option<String>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            verify_hostname: true,
            server_name: None,
        }
    }
}

/// Errors in configuration, found by `build()` before any network I/O. Always the caller's
/// fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No bootstrap server was given.
    #[error("no bootstrap servers configured")]
    NoBootstrapServers,
    /// A bootstrap entry is not `host:port`.
    #[error("invalid bootstrap server {value:?}: expected host:port")]
    InvalidBootstrapServer {
        /// The offending entry.
        value: String,
    },
    /// A SASL security protocol without SASL settings, or SASL settings without one.
    #[error("security protocol {protocol} {problem}")]
    SaslMismatch {
        /// The configured protocol.
        protocol: SecurityProtocol,
        /// What is wrong.
        problem: &'static str,
    },
    /// TLS settings without a TLS protocol.
    #[error("TLS settings given but security protocol {protocol} does not use TLS")]
    TlsWithoutTlsProtocol {
        /// The configured protocol.
        protocol: SecurityProtocol,
    },
    /// A TLS file is missing, unreadable or holds no usable PEM item.
    #[error("TLS file {path}: {message}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The TLS settings are inconsistent (e.g. a client cert without a key).
    #[error("TLS configuration: {message}")]
    Tls {
        /// What went wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid {field}: {message}")]
    InvalidValue {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// A validated connection configuration, shared by every connection of a cluster client.
#[derive(Clone)]
pub struct ConnectionConfig {
    pub(crate) bootstrap: Vec<String>,
    pub(crate) security_protocol: SecurityProtocol,
    pub(crate) sasl: Option<SaslConfig>,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) tls_server_name: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_frame_size: usize,
    pub(crate) client_id: String,
    pub(crate) backoff: BackoffConfig,
    pub(crate) metadata_max_age: Duration,
}

impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("bootstrap", &self.bootstrap)
            .field("security_protocol", &self.security_protocol)
            .field("sasl", &self.sasl)
            .field("tls", &self.tls.as_ref().map(|_| "rustls::ClientConfig"))
            .field("tls_server_name", &self.tls_server_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_frame_size", &self.max_frame_size)
            .field("client_id", &self.client_id)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl ConnectionConfig {
    /// Starts a builder with the defaults documented on [`ConnectionConfigBuilder`].
    #[must_use]
    pub fn builder() -> ConnectionConfigBuilder {
        ConnectionConfigBuilder::default()
    }

    /// The bootstrap servers.
    #[must_use]
    pub fn bootstrap(&self) -> &[String] {
        &self.bootstrap
    }

    /// The security protocol.
    #[must_use]
    pub fn security_protocol(&self) -> SecurityProtocol {
        self.security_protocol
    }

    /// The request timeout.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The retry policy.
    #[must_use]
    pub fn backoff(&self) -> &BackoffConfig {
        &self.backoff
    }

    /// The client id sent in every request header.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}

/// Builder for [`ConnectionConfig`].
///
/// Defaults: `PLAINTEXT`, no SASL, connect timeout 10 s, request timeout 30 s (the Java
/// client's `request.timeout.ms`), max response frame 100 MiB, client id `ferry`,
/// [`BackoffConfig::default`], metadata max age 5 minutes (`metadata.max.age.ms`).
#[derive(Debug, Clone)]
pub struct ConnectionConfigBuilder {
    bootstrap: Vec<String>,
    security_protocol: SecurityProtocol,
    sasl: Option<SaslConfig>,
    tls: Option<TlsSettings>,
    rustls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_frame_size: usize,
    client_id: String,
    backoff: BackoffConfig,
    metadata_max_age: Duration,
}

impl Default for ConnectionConfigBuilder {
    fn default() -> Self {
        Self {
            bootstrap: Vec::new(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl: None,
            tls: None,
            rustls: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            client_id: "ferry".to_owned(),
            backoff: BackoffConfig::default(),
            metadata_max_age: Duration::from_secs(300),
        }
    }
}

impl ConnectionConfigBuilder {
    /// Bootstrap servers, `host:port` each; a comma-separated string is split.
    #[must_use]
    pub fn with_bootstrap<I, S>(mut self, servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.bootstrap = servers
            .into_iter()
            .flat_map(|s| {
                s.as_ref()
                    .split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
            })
            .collect();
        self
    }

    /// `security.protocol`.
    #[must_use]
    pub fn with_security_protocol(mut self, protocol: SecurityProtocol) -> Self {
        self.security_protocol = protocol;
        self
    }

    /// SASL mechanism and credentials.
    #[must_use]
    pub fn with_sasl(
        mut self,
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: Secret,
    ) -> Self {
        self.sasl = Some(SaslConfig {
            mechanism,
            username: username.into(),
            password,
        });
        self
    }

    /// TLS settings (PEM files, hostname verification).
    #[must_use]
    pub fn with_tls(mut self, tls: TlsSettings) -> Self {
        self.tls = Some(tls);
        self
    }

    /// A ready rustls config supplied by the embedder (takes precedence over
    /// [`Self::with_tls`] files; the `server_name` of `with_tls` still applies).
    #[must_use]
    pub fn with_rustls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.rustls = Some(config);
        self
    }

    /// TCP connect plus TLS handshake timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Per-request timeout (Fetch adds its `max_wait` on top).
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Largest response frame accepted.
    #[must_use]
    pub fn with_max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// The `client_id` of every request header.
    #[must_use]
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Retry policy for connects and metadata refreshes.
    #[must_use]
    pub fn with_backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// Age after which cached metadata is refreshed even without errors.
    #[must_use]
    pub fn with_metadata_max_age(mut self, age: Duration) -> Self {
        self.metadata_max_age = age;
        self
    }

    /// Validates and builds. Reads the TLS PEM files; does no network I/O.
    pub fn build(self) -> Result<ConnectionConfig, ConfigError> {
        if self.bootstrap.is_empty() {
            return Err(ConfigError::NoBootstrapServers);
        }
        for b in &self.bootstrap {
            let valid = b
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !valid {
                return Err(ConfigError::InvalidBootstrapServer { value: b.clone() });
            }
        }
        match (self.security_protocol.uses_sasl(), &self.sasl) {
            (true, None) => {
                return Err(ConfigError::SaslMismatch {
                    protocol: self.security_protocol,
                    problem: "needs SASL credentials (with_sasl)",
                });
            }
            (false, Some(_)) => {
                return Err(ConfigError::SaslMismatch {
                    protocol: self.security_protocol,
                    problem: "does not use SASL but SASL credentials were given",
                });
            }
            (true, Some(s)) if s.username.is_empty() => {
                return Err(ConfigError::InvalidValue {
                    field: "sasl username",
                    message: "must not be empty".to_owned(),
                });
            }
            _ => {}
        }
        if !self.security_protocol.uses_tls() && (self.tls.is_some() || self.rustls.is_some()) {
            return Err(ConfigError::TlsWithoutTlsProtocol {
                protocol: self.security_protocol,
            });
        }
        let positive = |field: &'static str, d: Duration| {
            if d.is_zero() {
                Err(ConfigError::InvalidValue {
                    field,
                    message: "must be positive".to_owned(),
                })
            } else {
                Ok(())
            }
        };
        positive("connect timeout", self.connect_timeout)?;
        positive("request timeout", self.request_timeout)?;
        if self.max_frame_size < 1024 {
            return Err(ConfigError::InvalidValue {
                field: "max frame size",
                message: format!("{} bytes is below the 1 KiB minimum", self.max_frame_size),
            });
        }
        if self.client_id.is_empty() {
            return Err(ConfigError::InvalidValue {
                field: "client id",
                message: "must not be empty".to_owned(),
            });
        }
        self.backoff.validate()?;
        let settings = self.tls.unwrap_or_default();
        let tls = if self.security_protocol.uses_tls() {
            Some(match self.rustls {
                Some(c) => c,
                None => crate::tls::build_client_config(&settings)?,
            })
        } else {
            None
        };
        Ok(ConnectionConfig {
            bootstrap: self.bootstrap,
            security_protocol: self.security_protocol,
            sasl: self.sasl,
            tls,
            tls_server_name: settings.server_name,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            max_frame_size: self.max_frame_size,
            client_id: self.client_id,
            backoff: self.backoff,
            metadata_max_age: self.metadata_max_age,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_printed() {
        let b = ConnectionConfig::builder()
            .with_bootstrap(["localhost:9092"])
            .with_security_protocol(SecurityProtocol::SaslPlaintext)
            .with_sasl(
                SaslMechanism::ScramSha512,
                "alice",
                Secret::new("hunter2-secret"),
            );
        let cfg = b.clone().build().unwrap();
        for text in [
            format!("{b:?}"),
            format!("{cfg:?}"),
            format!("{}", Secret::new("hunter2-secret")),
        ] {
            assert!(!text.contains("hunter2"), "{text}");
        }
        assert!(format!("{cfg:?}").contains("alice"));
    }

    #[test]
    fn validation_rules() {
        let base = || ConnectionConfig::builder().with_bootstrap(["a:1,b:2"]);
        assert_eq!(base().build().unwrap().bootstrap(), ["a:1", "b:2"]);
        assert_eq!(
            ConnectionConfig::builder().build().unwrap_err(),
            ConfigError::NoBootstrapServers
        );
        assert!(matches!(
            ConnectionConfig::builder()
                .with_bootstrap(["nohost"])
                .build(),
            Err(ConfigError::InvalidBootstrapServer { .. })
        ));
        assert!(matches!(
            ConnectionConfig::builder().with_bootstrap(["h:0"]).build(),
            Err(ConfigError::InvalidBootstrapServer { .. })
        ));
        assert!(matches!(
            base()
                .with_security_protocol(SecurityProtocol::SaslSsl)
                .build(),
            Err(ConfigError::SaslMismatch { .. })
        ));
        assert!(matches!(
            base()
                .with_sasl(SaslMechanism::Plain, "u", Secret::new("p"))
                .build(),
            Err(ConfigError::SaslMismatch { .. })
        ));
        assert!(matches!(
            base().with_tls(TlsSettings::default()).build(),
            Err(ConfigError::TlsWithoutTlsProtocol { .. })
        ));
        assert!(matches!(
            base().with_request_timeout(Duration::ZERO).build(),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            base()
                .with_security_protocol(SecurityProtocol::Ssl)
                .with_tls(TlsSettings {
                    ca_file: Some("/nonexistent/ca.pem".into()),
                    ..TlsSettings::default()
                })
                .build(),
            Err(ConfigError::TlsFile { .. })
        ));
        // SSL with the bundled roots builds without files.
        assert!(
            base()
                .with_security_protocol(SecurityProtocol::Ssl)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn kafka_spellings() {
        assert_eq!(
            "sasl_ssl".parse::<SecurityProtocol>().unwrap(),
            SecurityProtocol::SaslSsl
        );
        assert_eq!(
            "SCRAM-SHA-512".parse::<SaslMechanism>().unwrap(),
            SaslMechanism::ScramSha512
        );
        assert!("GSSAPI".parse::<SaslMechanism>().is_err());
    }
}
