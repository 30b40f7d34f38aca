//! Legacy magic 0/1 message sets and their conversion to v2.
