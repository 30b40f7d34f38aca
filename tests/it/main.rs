//! ferry's integration tests: one binary, one module per area, run against real Kafka clusters.
mod acceptance;
mod admin;
mod cli;
mod client;
mod common;
mod faults;
mod groups;
mod groups_engine;
mod harness;
mod metadata_sync;
mod mirror;
mod operator;
mod protocol_interop;
