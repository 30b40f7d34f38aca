//! Native async Kafka client layer used by ferry (tokio, rustls; no librdkafka).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
