//! ferry's replication engine.
pub mod budget;
pub mod engine;
pub mod events;
pub mod filter;
pub(crate) mod flow;
mod heartbeat;
pub mod offset_map;
pub mod offset_sync;
mod pipeline;
pub mod policy;
pub mod progress;
pub mod settings;
pub mod topics;
