#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings))))]

pub mod config;

pub use ferry_client as client;
pub use ferry_mirror as mirror;
pub use ferry_protocol as protocol;
