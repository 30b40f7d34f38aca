//! ferry's replication engine.
