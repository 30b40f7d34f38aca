//! ferry's replication engine.
pub mod filter;
pub mod offset_map;
pub mod policy;
