//! ferry's integration tests: one binary, one module per area, run against real Kafka clusters.
mod admin;
mod cli;
mod client;
mod common;
mod harness;
mod mirror;
mod protocol_interop;
