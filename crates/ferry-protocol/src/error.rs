//! The single Kafka error-code enum and protocol-layer errors.
