//! ferry's replication engine.
pub mod offset_map;
