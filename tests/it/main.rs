//! ferry's integration tests: one binary, one module per area, run against real Kafka clusters.
mod admin;
mod harness;
mod mirror;
mod client;
mod protocol_interop;
