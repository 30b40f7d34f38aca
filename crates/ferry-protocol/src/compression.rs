//! Compression with Kafka's framing, bounded decompression.
