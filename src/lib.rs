#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings))))]

pub mod config;
pub mod mirror;

pub use ferry_client as client;
pub use ferry_protocol as protocol;
pub use mirror::{Error, Mirror, MirrorBuilder, MirrorEvents, MirrorOptions, ShutdownHandle};
