//! One v2 record from raw bytes; whatever decodes must re-encode to the same length and decode
//! back to the same value.
#![no_main]

use bytes::Bytes;
use ferry_protocol::record::Record;
use ferry_protocol::varint::Reader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = Bytes::copy_from_slice(data);
    let mut r = Reader::new(&src);
    while let Ok(record) = Record::decode(&mut r, &src) {
        let mut out = Vec::new();
        record.encode(&mut out);
        assert_eq!(out.len(), record.encoded_len());
        let out = Bytes::from(out);
        let back = Record::decode(&mut Reader::new(&out), &out).expect("own encoding decodes");
        assert_eq!(back, record);
    }
});
