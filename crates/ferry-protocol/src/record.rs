//! Full-fidelity v2 record codec.
//!
//! Unlike `kafka-protocol`'s `records` module, this codec keeps everything a batch carries: null
//! versus empty keys and values, duplicate header keys in order (KIP-82), null header values,
//! negative timestamp deltas, the per-record attributes byte, and the batch header fields the
//! caller gives (`lastOffsetDelta`, `maxTimestamp`, producer fields). Header keys are kept as raw
//! bytes (Kafka reads them as UTF-8 strings; keeping bytes loses nothing).
//!
//! Decoding is bounded: vectors grow as elements are decoded (never pre-sized from a count),
//! each record is read through a sub-reader bounded to its declared length, bytes left inside a
//! record or after the declared `recordsCount` are errors, and compressed streams are
//! decompressed into a configured budget. Keys, values and headers are zero-copy [`Bytes`]
//! slices of the batch (or of the decompressed stream).
//!
//! # References
//! - `clients/src/main/java/org/apache/kafka/common/record/DefaultRecord.java`,
//!   `DefaultRecordBatch.java`, `MemoryRecordsBuilder.java` (apache/kafka)
//! - KIP-82 (headers), KIP-98 (v2 format), KIP-534 (delete horizon)
//! - `kafka-wire.md` §1.2, §1.5, §6.7

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{
    Attributes, BatchErrorKind, BatchHeader, DataError, RECORD_BATCH_OVERHEAD, RecordBatch,
    batch_crc, put,
};
use crate::compression::{self, Codec};
use crate::varint::{self, ReadError, ReadErrorKind, Reader};

/// Smallest encoded record (`DefaultRecord` with everything null/zero): 7 bytes.
pub const MIN_RECORD_SIZE: usize = 7;

/// A record header (KIP-82). Keys may repeat; order is significant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// Header key bytes (UTF-8 in practice; kept raw).
    pub key: Bytes,
    /// Header value; `None` is a null value.
    pub value: Option<Bytes>,
}

/// One v2 record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Record {
    /// Record attributes byte (unused by Kafka, kept as read).
    pub attributes: i8,
    /// Timestamp minus the batch's `baseTimestamp`; may be negative.
    pub timestamp_delta: i64,
    /// Offset minus the batch's `baseOffset`.
    pub offset_delta: i32,
    /// Key; `None` is a null key.
    pub key: Option<Bytes>,
    /// Value; `None` is a null value (a tombstone when the key is set).
    pub value: Option<Bytes>,
    /// Headers in wire order.
    pub headers: Vec<Header>,
}

fn nullable_len(b: Option<&Bytes>) -> usize {
    match b {
        None => varint::varint_len(-1),
        Some(b) => varint::varint_len(len_i32(b.len())) + b.len(),
    }
}

/// Lengths above `i32::MAX` cannot occur in a valid batch; they saturate (and the batch-level
/// size check rejects them).
fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn put_nullable<B: BufMut>(out: &mut B, b: Option<&Bytes>) {
    match b {
        None => varint::put_varint(out, -1),
        Some(b) => {
            varint::put_varint(out, len_i32(b.len()));
            out.put_slice(b);
        }
    }
}

impl Record {
    /// Size of the record body (everything after the `length` varint).
    pub fn body_len(&self) -> usize {
        let mut n = 1
            + varint::varlong_len(self.timestamp_delta)
            + varint::varint_len(self.offset_delta)
            + nullable_len(self.key.as_ref())
            + nullable_len(self.value.as_ref())
            + varint::varint_len(len_i32(self.headers.len()));
        for h in &self.headers {
            n += varint::varint_len(len_i32(h.key.len())) + h.key.len();
            n += nullable_len(h.value.as_ref());
        }
        n
    }

    /// Size of the encoded record, including its `length` varint.
    pub fn encoded_len(&self) -> usize {
        let body = self.body_len();
        varint::varint_len(len_i32(body)) + body
    }

    /// Appends the encoded record.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        varint::put_varint(out, len_i32(self.body_len()));
        out.put_i8(self.attributes);
        varint::put_varlong(out, self.timestamp_delta);
        varint::put_varint(out, self.offset_delta);
        put_nullable(out, self.key.as_ref());
        put_nullable(out, self.value.as_ref());
        varint::put_varint(out, len_i32(self.headers.len()));
        for h in &self.headers {
            varint::put_varint(out, len_i32(h.key.len()));
            out.put_slice(&h.key);
            put_nullable(out, h.value.as_ref());
        }
    }

    /// Decodes one record from `r`, whose positions index `src` (so keys and values become
    /// zero-copy slices of `src`).
    pub fn decode(r: &mut Reader<'_>, src: &Bytes) -> Result<Self, ReadError> {
        let at = r.position();
        let len = r.varint("record.length")?;
        let len = usize::try_from(len).map_err(|_| ReadError {
            position: at,
            field: "record.length",
            kind: ReadErrorKind::InvalidLength {
                length: i64::from(len),
            },
        })?;
        let mut body = r.sub(len, "record.body")?;
        let attributes = body.i8("record.attributes")?;
        let timestamp_delta = body.varlong("record.timestampDelta")?;
        let offset_delta = body.varint("record.offsetDelta")?;
        let key = nullable(&mut body, src, "record.key")?;
        let value = nullable(&mut body, src, "record.value")?;
        let at = body.position();
        let count = body.varint("record.headerCount")?;
        if count < 0 {
            return Err(ReadError {
                position: at,
                field: "record.headerCount",
                kind: ReadErrorKind::InvalidLength {
                    length: i64::from(count),
                },
            });
        }
        let mut headers = Vec::new();
        for _ in 0..count {
            let at = body.position();
            let Some(klen) = body.nullable_varint_len("header.key")? else {
                return Err(ReadError {
                    position: at,
                    field: "header.key",
                    kind: ReadErrorKind::InvalidLength { length: -1 },
                });
            };
            let key = src.slice(body.take_range(klen, "header.key")?);
            let value = nullable(&mut body, src, "header.value")?;
            headers.push(Header { key, value });
        }
        body.finish("record.body")?;
        Ok(Self {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers,
        })
    }
}

fn nullable(
    r: &mut Reader<'_>,
    src: &Bytes,
    field: &'static str,
) -> Result<Option<Bytes>, ReadError> {
    match r.nullable_varint_len(field)? {
        None => Ok(None),
        Some(n) => Ok(Some(src.slice(r.take_range(n, field)?))),
    }
}

/// Limits and checks applied when decoding a batch's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Largest decompressed record stream accepted. Default 64 MiB.
    pub max_uncompressed_bytes: usize,
    /// Verify the batch CRC-32C before decoding. Default true.
    pub verify_crc: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_uncompressed_bytes: 64 << 20,
            verify_crc: true,
        }
    }
}

/// A decoded v2 batch: header fields plus every record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBatch {
    /// The header fields (the codec is in `header.attributes`).
    pub header: BatchHeader,
    /// The records.
    pub records: Vec<Record>,
}

impl DecodedBatch {
    /// Decodes every record of `batch` (decompressing if needed).
    pub fn decode(batch: &RecordBatch, options: &DecodeOptions) -> Result<Self, DataError> {
        if options.verify_crc {
            batch.verify_crc()?;
        }
        let header = batch.header();
        let codec = batch.codec()?;
        let position = batch.position();
        let base_offset = batch.base_offset();
        let declared = batch.records_count();
        let count_err = |found| DataError::Batch {
            position,
            kind: BatchErrorKind::CountMismatch {
                declared: i64::from(declared),
                found,
            },
        };
        let count = usize::try_from(declared).map_err(|_| count_err(0))?;
        let (plain, decompressed) = match codec {
            Codec::None => (batch.records_bytes(), false),
            _ => {
                let out = compression::decompress(
                    codec,
                    batch.records_slice(),
                    options.max_uncompressed_bytes,
                )
                .map_err(|source| DataError::Compression {
                    position,
                    base_offset,
                    source,
                })?;
                (Bytes::from(out), true)
            }
        };
        // Every record needs at least 7 bytes: a cheap bound before any decoding.
        if count.saturating_mul(MIN_RECORD_SIZE) > plain.len() {
            return Err(count_err(plain.len() / MIN_RECORD_SIZE));
        }
        let records = decode_records(&plain, count).map_err(|e| match e {
            RecordsError::Read(mut source) => {
                if !decompressed {
                    source.position += position + RECORD_BATCH_OVERHEAD;
                }
                DataError::Record {
                    position,
                    base_offset,
                    decompressed,
                    source,
                }
            }
            RecordsError::Short(found) => count_err(found),
        })?;
        Ok(Self { header, records })
    }

    /// The codec named by the header.
    pub fn codec(&self) -> Option<Codec> {
        self.header.attributes.codec()
    }

    /// The timestamp Kafka reports for record `i`: `maxTimestamp` in a LogAppendTime batch,
    /// otherwise `baseTimestamp + timestampDelta` (also when bit 6 makes `baseTimestamp` the
    /// delete horizon: the cleaner rebased the deltas on it).
    pub fn timestamp(&self, i: usize) -> Option<i64> {
        let r = self.records.get(i)?;
        if self.header.attributes.is_log_append_time() {
            Some(self.header.max_timestamp)
        } else {
            Some(self.header.base_timestamp.wrapping_add(r.timestamp_delta))
        }
    }

    /// Encodes the batch into a 61-byte header and a payload (compressed with the header's
    /// codec). `recordsCount`, `length` and the CRC follow from the records; every other header
    /// field is written exactly as given.
    pub fn encode_parts(&self) -> Result<([u8; RECORD_BATCH_OVERHEAD], Bytes), DataError> {
        encode_parts(&self.header, &self.records)
    }

    /// Encodes the whole batch entry into `out`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), DataError> {
        let (prefix, payload) = self.encode_parts()?;
        out.reserve(prefix.len() + payload.len());
        out.put_slice(&prefix);
        out.put_slice(&payload);
        Ok(())
    }
}

enum RecordsError {
    Read(ReadError),
    Short(usize),
}

/// Decodes exactly `count` records filling `plain`.
fn decode_records(plain: &Bytes, count: usize) -> Result<Vec<Record>, RecordsError> {
    let mut r = Reader::new(plain);
    let mut records = Vec::new();
    while records.len() < count {
        if r.is_empty() {
            return Err(RecordsError::Short(records.len()));
        }
        records.push(Record::decode(&mut r, plain).map_err(RecordsError::Read)?);
    }
    r.finish("records (after recordsCount records)")
        .map_err(RecordsError::Read)?;
    Ok(records)
}

/// Encodes `records` under `header` into a 61-byte header (CRC filled in) and a payload
/// compressed with the header's codec.
pub fn encode_parts(
    header: &BatchHeader,
    records: &[Record],
) -> Result<([u8; RECORD_BATCH_OVERHEAD], Bytes), DataError> {
    let unencodable = |reason| DataError::Batch {
        position: 0,
        kind: BatchErrorKind::Unencodable { reason },
    };
    let codec = header.attributes.codec().ok_or(DataError::Batch {
        position: 0,
        kind: BatchErrorKind::UnknownCodec {
            id: header.attributes.codec_id(),
        },
    })?;
    let plain_len: usize = records.iter().map(Record::encoded_len).sum();
    let mut plain = Vec::with_capacity(plain_len);
    for r in records {
        r.encode(&mut plain);
    }
    let payload = if codec == Codec::None {
        plain
    } else {
        let mut z = Vec::new();
        compression::compress(codec, &plain, &mut z).map_err(|source| DataError::Compression {
            position: 0,
            base_offset: header.base_offset,
            source,
        })?;
        z
    };
    let count =
        i32::try_from(records.len()).map_err(|_| unencodable("more than i32::MAX records"))?;
    let length = i32::try_from(payload.len() + RECORD_BATCH_OVERHEAD - crate::batch::LOG_OVERHEAD)
        .map_err(|_| unencodable("batch larger than i32::MAX bytes"))?;
    let mut prefix = header.to_prefix(length, count);
    let crc = batch_crc(&prefix, &payload);
    put(&mut prefix, crate::batch::CRC_OFFSET, &crc.to_be_bytes());
    Ok((prefix, Bytes::from(payload)))
}

/// Builds a batch header for `records` the way a producer would: offset deltas and timestamps
/// are taken from the records as given, `lastOffsetDelta` is the last record's offset delta
/// (0 when empty) and `maxTimestamp` the largest record timestamp.
pub fn producer_header(
    base_timestamp: i64,
    attributes: Attributes,
    records: &[Record],
) -> BatchHeader {
    let max_timestamp = records
        .iter()
        .map(|r| base_timestamp.wrapping_add(r.timestamp_delta))
        .max()
        .unwrap_or(-1);
    BatchHeader {
        attributes,
        last_offset_delta: records.last().map_or(0, |r| r.offset_delta),
        base_timestamp,
        max_timestamp,
        ..BatchHeader::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::batch::{BatchScanner, Entry};
    use proptest::prelude::*;

    fn b(s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    /// A record set exercising every fidelity case.
    pub(crate) fn tricky_records() -> Vec<Record> {
        vec![
            Record {
                attributes: 0,
                timestamp_delta: 0,
                offset_delta: 0,
                key: None,
                value: None,
                headers: vec![],
            },
            Record {
                attributes: 0x55,
                timestamp_delta: -12345,
                offset_delta: 1,
                key: Some(b(b"")),
                value: Some(b(b"")),
                headers: vec![
                    Header {
                        key: b(b"dup"),
                        value: Some(b(b"1")),
                    },
                    Header {
                        key: b(b"dup"),
                        value: None,
                    },
                    Header {
                        key: b(b""),
                        value: Some(b(b"")),
                    },
                    Header {
                        key: b(b"dup"),
                        value: Some(b(b"3")),
                    },
                ],
            },
            Record {
                attributes: 0,
                timestamp_delta: i64::MAX,
                offset_delta: 7,
                key: Some(b(b"k")),
                value: None,
                headers: vec![],
            },
        ]
    }

    fn encode_entry(header: &BatchHeader, records: &[Record]) -> Bytes {
        let (p, payload) = encode_parts(header, records).unwrap();
        let mut out = BytesMut::new();
        out.put_slice(&p);
        out.put_slice(&payload);
        out.freeze()
    }

    #[test]
    fn golden_record_bytes() {
        // key "k", value "v", no headers, deltas 0: 10 00 00 00 02 6b 02 76 00
        let r = Record {
            key: Some(b(b"k")),
            value: Some(b(b"v")),
            ..Record::default()
        };
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(out, [0x10, 0, 0, 0, 0x02, b'k', 0x02, b'v', 0]);
        assert_eq!(r.encoded_len(), out.len());
        // Null key and value: 0e 00 00 00 01 01 00 is 7 bytes: the minimum record.
        let r = Record::default();
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(out, [0x0c, 0, 0, 0, 0x01, 0x01, 0]);
        assert_eq!(out.len(), MIN_RECORD_SIZE);
    }

    #[test]
    fn golden_batch_decodes() {
        let raw = crate::batch::tests::golden_batch();
        let batch = RecordBatch::new(Bytes::from(raw.clone())).unwrap();
        let d = DecodedBatch::decode(&batch, &DecodeOptions::default()).unwrap();
        assert_eq!(d.records.len(), 1);
        assert_eq!(d.records[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(d.records[0].value.as_deref(), Some(&b"v"[..]));
        assert_eq!(d.timestamp(0), Some(1_700_000_000_000));
        // Re-encoding reproduces the bytes exactly.
        let mut out = BytesMut::new();
        d.encode(&mut out).unwrap();
        assert_eq!(&out[..], &raw[..]);
    }

    #[test]
    fn fidelity_roundtrip_every_codec() {
        for codec in Codec::ALL {
            let records = tricky_records();
            let header = BatchHeader {
                base_offset: 100,
                partition_leader_epoch: 3,
                attributes: Attributes(0).with_codec(codec),
                last_offset_delta: 9, // holes: deltas 0, 1, 7 with lastOffsetDelta 9
                base_timestamp: 1_000,
                max_timestamp: 5_000,
                producer_id: 77,
                producer_epoch: 2,
                base_sequence: 40,
            };
            let bytes = encode_entry(&header, &records);
            let batch = RecordBatch::new(bytes).unwrap();
            batch.verify_crc().unwrap();
            assert_eq!(batch.records_count(), 3);
            assert_eq!(batch.header(), header);
            let d = DecodedBatch::decode(&batch, &DecodeOptions::default()).unwrap();
            assert_eq!(d.header, header);
            assert_eq!(d.records, records, "{codec}");
        }
    }

    fn corrupt_decode(raw: Vec<u8>) -> DataError {
        let mut raw = raw;
        let crc = crc32c::crc32c(&raw[21..]);
        raw[17..21].copy_from_slice(&crc.to_be_bytes());
        let batch = RecordBatch::new(Bytes::from(raw)).unwrap();
        DecodedBatch::decode(&batch, &DecodeOptions::default()).unwrap_err()
    }

    #[test]
    fn bad_records_are_typed_errors_with_positions() {
        let good = crate::batch::tests::golden_batch();
        // Count says 2, one record present: premature end.
        let mut raw = good.clone();
        raw[57..61].copy_from_slice(&2i32.to_be_bytes());
        let err = corrupt_decode(raw);
        assert!(
            matches!(
                err,
                DataError::Batch {
                    kind: BatchErrorKind::CountMismatch { declared: 2, .. },
                    ..
                }
            ),
            "{err}"
        );
        // Count says 0 with a record present: trailing bytes.
        let mut raw = good.clone();
        raw[57..61].copy_from_slice(&0i32.to_be_bytes());
        let err = corrupt_decode(raw);
        let DataError::Record { source, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(source.kind, ReadErrorKind::TrailingBytes { remaining: 9 });
        assert_eq!(source.position, 61);
        // Negative count.
        let mut raw = good.clone();
        raw[57..61].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(
            corrupt_decode(raw),
            DataError::Batch {
                kind: BatchErrorKind::CountMismatch { declared: -1, .. },
                ..
            }
        ));
        // Record length one too long: the record overruns the data.
        let mut raw = good.clone();
        raw[61] = 0x12;
        let err = corrupt_decode(raw);
        let DataError::Record { source, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(source.field, "record.body");
        // Record length one too short: bytes left inside the record... the header count is cut.
        let mut raw = good.clone();
        raw[61] = 0x0e;
        let err = corrupt_decode(raw);
        assert!(matches!(err, DataError::Record { .. }), "{err}");
        // Key length −2.
        let mut raw = good.clone();
        raw[65] = 0x03;
        let err = corrupt_decode(raw);
        let DataError::Record { source, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(source.kind, ReadErrorKind::InvalidLength { length: -2 });
        assert_eq!(source.position, 65);
        // Bad varint: five continuation bytes in the timestamp delta would overrun the record.
        let mut raw = good.clone();
        raw[63] = 0x80;
        raw[64] = 0x80;
        assert!(matches!(corrupt_decode(raw), DataError::Record { .. }));
        // Unknown codec 6.
        let mut raw = good;
        raw[22] = 6;
        assert!(matches!(
            corrupt_decode(raw),
            DataError::Batch {
                kind: BatchErrorKind::UnknownCodec { id: 6 },
                ..
            }
        ));
    }

    #[test]
    fn bad_varint_names_field_and_position() {
        // A record whose length covers an 11-byte timestampDelta of continuation bytes.
        let mut rec = vec![0x00]; // attributes
        rec.extend_from_slice(&[0xff; 11]);
        let mut plain = Vec::new();
        varint::put_varint(&mut plain, rec.len() as i32);
        plain.extend_from_slice(&rec);
        let h = BatchHeader::default();
        let mut prefix = h.to_prefix((49 + plain.len()) as i32, 1);
        let crc = batch_crc(&prefix, &plain);
        put(&mut prefix, crate::batch::CRC_OFFSET, &crc.to_be_bytes());
        let mut raw = prefix.to_vec();
        raw.extend_from_slice(&plain);
        let batch = RecordBatch::new(Bytes::from(raw)).unwrap();
        let err = DecodedBatch::decode(&batch, &DecodeOptions::default()).unwrap_err();
        let DataError::Record {
            source,
            decompressed,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert!(!decompressed);
        assert_eq!(source.field, "record.timestampDelta");
        assert_eq!(source.kind, ReadErrorKind::VarintTooLong { max_bytes: 10 });
        assert_eq!(source.position, 61 + 1 + 1);
        assert!(err.to_string().contains("record.timestampDelta"), "{err}");
    }

    #[test]
    fn huge_count_is_rejected_before_decoding() {
        let mut raw = crate::batch::tests::golden_batch();
        raw[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            corrupt_decode(raw),
            DataError::Batch {
                kind: BatchErrorKind::CountMismatch { .. },
                ..
            }
        ));
    }

    #[test]
    fn compressed_bomb_is_a_limit_error() {
        let records = vec![
            Record {
                value: Some(Bytes::from(vec![0u8; 1 << 20])),
                ..Record::default()
            };
            4
        ];
        let header = producer_header(0, Attributes(0).with_codec(Codec::Zstd), &records);
        let bytes = encode_entry(&header, &records);
        assert!(bytes.len() < 4096);
        let batch = RecordBatch::new(bytes).unwrap();
        let opts = DecodeOptions {
            max_uncompressed_bytes: 1 << 20,
            verify_crc: true,
        };
        let err = DecodedBatch::decode(&batch, &opts).unwrap_err();
        assert!(err.is_limit(), "{err}");
    }

    pub(crate) fn arb_bytes() -> impl Strategy<Value = Option<Bytes>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from))
    }

    pub(crate) fn arb_record() -> impl Strategy<Value = Record> {
        (
            any::<i8>(),
            any::<i64>(),
            arb_bytes(),
            arb_bytes(),
            proptest::collection::vec(
                (
                    proptest::sample::select(vec!["a", "b", "dup", ""]),
                    arb_bytes(),
                ),
                0..4,
            ),
        )
            .prop_map(|(attributes, ts, key, value, headers)| Record {
                attributes,
                timestamp_delta: ts % (1 << 40),
                offset_delta: 0,
                key,
                value,
                headers: headers
                    .into_iter()
                    .map(|(k, v)| Header {
                        key: Bytes::from_static(k.as_bytes()),
                        value: v,
                    })
                    .collect(),
            })
    }

    /// Records with strictly increasing offset deltas (holes allowed).
    pub(crate) fn arb_records() -> impl Strategy<Value = Vec<Record>> {
        proptest::collection::vec((arb_record(), 1i32..4), 0..12).prop_map(|v| {
            let mut next = 0;
            v.into_iter()
                .map(|(mut r, step)| {
                    r.offset_delta = next;
                    next += step;
                    r
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn batch_roundtrip(
            records in arb_records(),
            codec_id in 0u8..5,
            base_offset in 0i64..1 << 40,
            base_ts in -1i64..1 << 42,
            extra_delta in 0i32..5,
            pid in -1i64..1000,
            epoch in -1i16..10,
            seq in -1i32..1000,
            bits in 0i16..0x80,
        ) {
            let codec = Codec::from_id(codec_id).unwrap();
            let mut header = producer_header(base_ts, Attributes(bits & !0x27).with_codec(codec), &records);
            header.base_offset = base_offset;
            header.last_offset_delta += extra_delta;
            header.producer_id = pid;
            header.producer_epoch = epoch;
            header.base_sequence = seq;
            let bytes = encode_entry(&header, &records);
            let plain_len: usize = records.iter().map(Record::encoded_len).sum();
            if codec == Codec::None {
                prop_assert_eq!(bytes.len(), RECORD_BATCH_OVERHEAD + plain_len);
            }
            // Through the scanner, as a fetch would deliver it.
            let mut s = BatchScanner::new(bytes);
            let Some(Ok(Entry::V2(batch))) = s.next() else { panic!("not one batch") };
            prop_assert!(s.next().is_none());
            prop_assert_eq!(s.truncated_tail(), 0);
            let d = DecodedBatch::decode(&batch, &DecodeOptions::default()).unwrap();
            prop_assert_eq!(d.header, header);
            prop_assert_eq!(d.records, records);
        }

        #[test]
        fn decode_never_panics_on_mutations(
            records in arb_records(),
            codec_id in 0u8..5,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        ) {
            let codec = Codec::from_id(codec_id).unwrap();
            let header = producer_header(0, Attributes(0).with_codec(codec), &records);
            let (p, payload) = encode_parts(&header, &records).unwrap();
            let mut raw = p.to_vec();
            raw.extend_from_slice(&payload);
            for (at, x) in flips {
                let i = 21 + at % (raw.len() - 21);
                raw[i] ^= x;
            }
            let batch = RecordBatch::new(Bytes::from(raw)).unwrap();
            let opts = DecodeOptions { max_uncompressed_bytes: 1 << 16, verify_crc: false };
            let _ = DecodedBatch::decode(&batch, &opts);
        }
    }
}
