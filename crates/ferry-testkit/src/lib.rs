//! Test kit: real Kafka clusters from Maven Central jars, and drivers for the Java tools.
