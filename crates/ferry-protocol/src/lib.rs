//! Sans-I/O Kafka wire codec used by ferry.
//!
//! This crate does no I/O, reads no clock and spawns nothing: bytes come in as `&[u8]` or
//! [`bytes::Bytes`] and go out into a [`bytes::BytesMut`].
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod api;
pub mod batch;
pub mod compression;
pub mod error;
pub mod frame;
pub mod legacy;
pub mod mm2;
pub mod record;
pub mod transform;
pub mod varint;
