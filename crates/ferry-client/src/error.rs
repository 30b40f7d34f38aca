//! The client layer's error type.
//!
//! [`ClientError`] variants carry the broker (id and address), the API key and version in
//! flight and the broker's own `error_message` where there is one. Callers branch on
//! [`ClientError::is_retriable`], [`ClientError::is_auth`] and [`ClientError::is_fatal`], never
//! on the Display text.

use std::fmt;
use std::io;
use std::time::Duration;

use ferry_protocol::api::ApiKey;
use ferry_protocol::error::{ErrorCode, ProtocolError};

use crate::config::{ConfigError, SaslMechanism};
use crate::tls::TlsFailure;

/// `": <broker message>"` when the broker sent an `error_message`, else nothing: the tail of
/// every Display text that carries one.
pub(crate) fn suffix(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

/// Which broker an error concerns: its id when known, and the address dialled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerRef {
    /// Node id from Metadata, `None` for a bootstrap address.
    pub id: Option<i32>,
    /// `host:port`.
    pub addr: String,
}

impl fmt::Display for BrokerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "broker {id} ({})", self.addr),
            None => write!(f, "bootstrap {}", self.addr),
        }
    }
}

/// A request in flight when a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// API of the request.
    pub api_key: ApiKey,
    /// Version it was sent at.
    pub version: i16,
}

/// Errors of the client layer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Invalid configuration (caller fault).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// TCP connect failed: refused, unreachable, DNS failure (environment; retriable).
    #[error("cannot connect to {broker}: {message}")]
    Connect {
        /// The broker.
        broker: BrokerRef,
        /// The I/O error kind.
        kind: io::ErrorKind,
        /// The I/O error text.
        message: String,
    },
    /// TCP connect plus TLS handshake did not finish in time (environment; retriable).
    #[error("connecting to {broker} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The broker.
        broker: BrokerRef,
        /// The configured connect timeout.
        timeout: Duration,
    },
    /// The TLS handshake failed; `failure` says why (usually configuration: CA, name, port).
    #[error("TLS handshake with {broker} failed ({failure:?}): {message}")]
    Tls {
        /// The broker.
        broker: BrokerRef,
        /// The classified cause.
        failure: TlsFailure,
        /// rustls' explanation.
        message: String,
    },
    /// The broker rejected our SASL credentials (caller fault: wrong user or password).
    #[error("SASL {mechanism} authentication with {broker} failed: {}", message.as_deref().unwrap_or("no message from broker"))]
    AuthenticationFailed {
        /// The broker.
        broker: BrokerRef,
        /// The mechanism used.
        mechanism: SaslMechanism,
        /// The broker's `error_message`, or our SCRAM verification failure.
        message: Option<String>,
    },
    /// The broker does not enable our SASL mechanism (configuration mismatch).
    #[error("{broker} does not enable SASL mechanism {mechanism}; enabled: {enabled:?}")]
    UnsupportedMechanism {
        /// The broker.
        broker: BrokerRef,
        /// The mechanism we asked for.
        mechanism: SaslMechanism,
        /// The mechanisms the broker listed.
        enabled: Vec<String>,
    },
    /// The broker does not support an API (or any version ferry speaks) that is needed.
    #[error("{broker}: {source}")]
    UnsupportedApi {
        /// The broker.
        broker: BrokerRef,
        /// The negotiation error naming the API and both ranges.
        source: ProtocolError,
    },
    /// Bytes from the broker could not be decoded (peer fault or version mismatch).
    #[error("protocol error with {broker}: {source}")]
    Protocol {
        /// The broker.
        broker: BrokerRef,
        /// The protocol-layer error.
        source: ProtocolError,
    },
    /// No response within the request timeout; the connection is closed (outcome unknown).
    #[error("{api_key:?} v{version} to {broker} timed out after {timeout:?}")]
    Timeout {
        /// The broker.
        broker: BrokerRef,
        /// API of the request.
        api_key: ApiKey,
        /// Version of the request.
        version: i16,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The connection closed or failed with requests in flight (outcome unknown). A broker
    /// closes the connection without answering a request at a version it removed (KIP-896):
    /// `in_flight` names those requests.
    #[error("connection to {broker} closed ({reason}); in flight: {in_flight:?}")]
    ConnectionClosed {
        /// The broker.
        broker: BrokerRef,
        /// Why: EOF, an I/O error text, or a local shutdown.
        reason: String,
        /// Requests that were waiting for a response.
        in_flight: Vec<InFlight>,
    },
    /// A broker answered with a top-level error code.
    #[error("{broker} answered {api_key:?} with {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The broker.
        broker: BrokerRef,
        /// API of the request.
        api_key: ApiKey,
        /// The error code.
        code: ErrorCode,
        /// The broker's `error_message`, if the response has one.
        message: Option<String>,
    },
    /// A partition-level error code (Produce, InitProducerId, ListOffsets ...).
    #[error("{topic}-{partition}: {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Partition {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The error code.
        code: ErrorCode,
        /// The broker's `error_message`, if any.
        message: Option<String>,
    },
    /// The topic is not in the cluster's metadata.
    #[error("unknown topic {topic}")]
    UnknownTopic {
        /// Topic name.
        topic: String,
    },
    /// The partition does not exist or has no leader right now (retriable).
    #[error("no leader for {topic}-{partition}")]
    NoLeader {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// A broker id that is not in the metadata.
    #[error("unknown broker id {broker_id}")]
    UnknownBroker {
        /// The id.
        broker_id: i32,
    },
    /// No bootstrap server could be reached; `last` is the last error seen.
    #[error("no bootstrap server reachable ({tried:?}): {last}")]
    NoBrokerAvailable {
        /// The addresses tried.
        tried: Vec<String>,
        /// The last failure.
        last: Box<Self>,
    },
    /// A retry policy gave up; `last` is the final error.
    #[error("gave up after {attempts} retries in {elapsed:?}: {last}")]
    RetriesExhausted {
        /// Retries made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last error.
        last: Box<Self>,
    },
    /// A batch was not written because an earlier batch of the same partition failed for
    /// good: the producer never leaves a gap behind a failed batch (see `producer`).
    #[error("not written: an earlier batch of {topic}-{partition} failed ({cause})")]
    EarlierBatchFailed {
        /// Topic of the partition.
        topic: String,
        /// Partition number.
        partition: i32,
        /// Why the earlier batch failed.
        cause: Box<Self>,
    },
    /// A request is invalid before it is sent (caller fault), e.g. a batch that is not v2.
    #[error("invalid request: {message}")]
    InvalidInput {
        /// What is wrong.
        message: String,
    },
    /// The component was shut down.
    #[error("shut down")]
    Shutdown,
}

impl ClientError {
    /// The same operation may succeed if retried (after a metadata refresh for routing errors).
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Connect { .. }
            | Self::ConnectTimeout { .. }
            | Self::Timeout { .. }
            | Self::ConnectionClosed { .. }
            | Self::NoLeader { .. }
            | Self::NoBrokerAvailable { .. }
            | Self::UnknownBroker { .. } => true,
            Self::Broker { code, .. } | Self::Partition { code, .. } => code.is_retriable(),
            _ => false,
        }
    }

    /// Authentication or authorisation failed: credentials, mechanism or ACLs must change.
    #[must_use]
    pub fn is_auth(&self) -> bool {
        match self {
            Self::AuthenticationFailed { .. } | Self::UnsupportedMechanism { .. } => true,
            Self::Broker { code, .. } | Self::Partition { code, .. } => code.is_auth(),
            Self::NoBrokerAvailable { last, .. } | Self::RetriesExhausted { last, .. } => {
                last.is_auth()
            }
            _ => false,
        }
    }

    /// Retrying cannot help without a configuration or code change: configuration, TLS
    /// certificate problems, authentication, unsupported APIs, protocol violations, invalid
    /// input.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Config(_)
            | Self::Tls { .. }
            | Self::AuthenticationFailed { .. }
            | Self::UnsupportedMechanism { .. }
            | Self::UnsupportedApi { .. }
            | Self::Protocol { .. }
            | Self::InvalidInput { .. }
            | Self::Shutdown => true,
            Self::Broker { code, .. } | Self::Partition { code, .. } => code.is_auth(),
            Self::NoBrokerAvailable { last, .. } | Self::RetriesExhausted { last, .. } => {
                last.is_fatal()
            }
            _ => false,
        }
    }

    /// The error code, if the error carries one.
    #[must_use]
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Broker { code, .. } | Self::Partition { code, .. } => Some(*code),
            Self::RetriesExhausted { last, .. } => last.error_code(),
            _ => None,
        }
    }

    /// Whether metadata should be refreshed before a retry.
    #[must_use]
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            Self::NoLeader { .. } | Self::UnknownBroker { .. } | Self::UnknownTopic { .. } => true,
            Self::Connect { .. } | Self::ConnectTimeout { .. } | Self::ConnectionClosed { .. } => {
                true
            }
            Self::Broker { code, .. } | Self::Partition { code, .. } => code.is_routing(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker() -> BrokerRef {
        BrokerRef {
            id: Some(1),
            addr: "localhost:9092".into(),
        }
    }

    #[test]
    fn classifiers() {
        let auth = ClientError::AuthenticationFailed {
            broker: broker(),
            mechanism: SaslMechanism::Plain,
            message: Some("Invalid username or password".into()),
        };
        assert!(auth.is_auth() && auth.is_fatal() && !auth.is_retriable());
        assert!(auth.to_string().contains("Invalid username or password"));
        let closed = ClientError::ConnectionClosed {
            broker: broker(),
            reason: "EOF".into(),
            in_flight: vec![InFlight {
                api_key: ApiKey::Produce,
                version: 2,
            }],
        };
        assert!(closed.is_retriable() && !closed.is_fatal());
        assert!(closed.to_string().contains("Produce"));
        let nl = ClientError::Partition {
            topic: "t".into(),
            partition: 0,
            code: ErrorCode::NotLeaderOrFollower,
            message: None,
        };
        assert!(nl.is_retriable() && nl.needs_metadata_refresh());
        let topic_auth = ClientError::Broker {
            broker: broker(),
            api_key: ApiKey::Metadata,
            code: ErrorCode::TopicAuthorizationFailed,
            message: None,
        };
        assert!(topic_auth.is_auth() && topic_auth.is_fatal());
        let tls = ClientError::Tls {
            broker: broker(),
            failure: TlsFailure::UnknownIssuer,
            message: String::new(),
        };
        assert!(tls.is_fatal() && !tls.is_retriable());
    }
}
