//! Native async Kafka client layer used by ferry (tokio, rustls; no librdkafka).
//!
//! Layers, bottom up:
//! - [`config`]: [`ConnectionConfig`] (bootstrap, security protocol, SASL, TLS, timeouts) with a
//!   validating builder;
//! - [`connection`]: [`BrokerConnection`], one negotiated, authenticated, pipelined connection;
//! - [`cluster`]: [`Cluster`], metadata cache, leader routing and one reused connection per
//!   broker, with generic "send request R to broker B / any broker / the controller / a
//!   coordinator" calls on which admin and transaction modules are built;
//! - [`fetcher`]: multi-partition Fetch with sessions, zero-copy records;
//! - [`producer`]: idempotent producer for prepared v2 batches;
//! - [`backoff`]: the retry policy every loop uses;
//! - [`task`]: [`task::OwnedTask`], spawned work that ends with its owner.
//!
//! Errors are [`ClientError`], classified by `is_retriable()`, `is_auth()`, `is_fatal()`.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod admin;
pub mod backoff;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod error;
pub mod fetcher;
pub mod producer;
pub mod scram;
pub mod task;
pub mod tls;
pub mod transaction;

pub use backoff::{Backoff, BackoffConfig};
pub use cluster::Cluster;
pub use config::{
    ConfigError, ConnectionConfig, ConnectionConfigBuilder, SaslMechanism, Secret,
    SecurityProtocol, TlsSettings,
};
pub use connection::BrokerConnection;
pub use error::{BrokerRef, ClientError};
