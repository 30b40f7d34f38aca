//! Every decompressor (first byte picks the codec) under a 1 MiB budget, plus the magic-0 LZ4
//! path; a successful decompression never exceeds the budget.
#![no_main]

use ferry_protocol::compression::{Codec, decompress, decompress_lz4_magic0};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let out = match selector % 6 {
        5 => decompress_lz4_magic0(input, LIMIT),
        id => decompress(Codec::from_id(id).unwrap_or(Codec::None), input, LIMIT),
    };
    if let Ok(out) = out {
        assert!(out.len() <= LIMIT);
    }
});
