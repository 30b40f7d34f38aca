//! Legacy magic 0/1 message sets and their conversion to v2.
//!
//! A log that still holds data written by pre-0.11 producers returns magic 0/1 entries from
//! Fetch v4+ on every broker release (KIP-724), and no Produce v3+ accepts them, so ferry
//! converts them into v2 batches. Each entry is `int64 offset, int32 size` followed by one
//! message:
//!
//! ```text
//! crc uint32 (CRC-32 IEEE over [magic, end)) | magic int8 | attributes int8
//! | timestamp int64 (v1 only) | keyLength int32, key | valueLength int32, value
//! ```
//!
//! A compressed entry is a wrapper whose value is a compressed message set of uncompressed inner
//! messages of the same magic. Inner offsets are absolute in v0 and relative (0..n−1) in v1, where
//! the wrapper's offset is that of the *last* inner message (KIP-31). A v1 LogAppendTime wrapper
//! gives its timestamp to every inner message. v0 messages have no timestamp (−1 after
//! conversion). LZ4 inside magic 0 carries Kafka's broken frame header checksum (KAFKA-1493),
//! which [`crate::compression::decompress_lz4_magic0`] tolerates.
//!
//! # References
//! - `clients/src/main/java/org/apache/kafka/common/record/{LegacyRecord,AbstractLegacyRecordBatch}.java` (apache/kafka)
//! - KIP-31 (relative offsets), KIP-32 (timestamps), KIP-57 (LZ4 checksum), KIP-724
//! - `kafka-wire.md` §1.8

use bytes::Bytes;

use crate::batch::{
    Attributes, BatchErrorKind, BatchHeader, DataError, LOG_OVERHEAD, MIN_ENTRY_SIZE,
};
use crate::compression::{self, Codec};
use crate::record::Record;
use crate::varint::{ReadError, Reader};

const CRC_AT: usize = LOG_OVERHEAD;
const MAGIC_AT: usize = LOG_OVERHEAD + 4;

/// A magic 0 or 1 entry (`offset`, `size`, one message), a zero-copy slice of a fetched blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyEntry {
    bytes: Bytes,
    position: usize,
}

fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = b.get(at..at + N) {
        out.copy_from_slice(s);
    }
    out
}

impl LegacyEntry {
    /// Wraps `bytes`, which must hold exactly one magic 0/1 entry.
    pub fn new(bytes: Bytes, position: usize) -> Result<Self, DataError> {
        let err = |kind| DataError::Batch { position, kind };
        if bytes.len() < LOG_OVERHEAD + MIN_ENTRY_SIZE {
            return Err(err(BatchErrorKind::SizeTooSmall {
                size: bytes.len() as i64 - LOG_OVERHEAD as i64,
                min: MIN_ENTRY_SIZE,
            }));
        }
        let declared = i64::from(i32::from_be_bytes(be(&bytes, 8)));
        let actual = bytes.len() - LOG_OVERHEAD;
        if declared != actual as i64 {
            return Err(err(BatchErrorKind::LengthMismatch { declared, actual }));
        }
        let magic = i8::from_be_bytes(be(&bytes, MAGIC_AT));
        if magic != 0 && magic != 1 {
            return Err(err(BatchErrorKind::UnknownMagic { magic }));
        }
        Ok(Self { bytes, position })
    }

    pub(crate) fn from_scanned(bytes: Bytes, position: usize) -> Self {
        Self { bytes, position }
    }

    /// Position in the blob.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The whole entry.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The entry offset (for a compressed wrapper: the last inner offset).
    pub fn offset(&self) -> i64 {
        i64::from_be_bytes(be(&self.bytes, 0))
    }

    /// The magic (0 or 1).
    pub fn magic(&self) -> i8 {
        i8::from_be_bytes(be(&self.bytes, MAGIC_AT))
    }

    /// The message attributes byte.
    pub fn attributes(&self) -> i8 {
        i8::from_be_bytes(be(&self.bytes, MAGIC_AT + 1))
    }

    /// The stored CRC-32.
    pub fn crc(&self) -> u32 {
        u32::from_be_bytes(be(&self.bytes, CRC_AT))
    }

    /// Checks the CRC-32 (IEEE) over `[magic, end)`.
    pub fn verify_crc(&self) -> Result<(), DataError> {
        let computed = crc32fast::hash(self.bytes.get(MAGIC_AT..).unwrap_or(&[]));
        let stored = self.crc();
        if computed == stored {
            Ok(())
        } else {
            Err(DataError::Batch {
                position: self.position,
                kind: BatchErrorKind::CrcMismatch { stored, computed },
            })
        }
    }

    /// Decodes the message (CRC verified). For a wrapper the value is the compressed set.
    pub fn message(&self) -> Result<LegacyMessage, DataError> {
        self.verify_crc()?;
        parse_message(&self.bytes).map_err(|source| self.read_err(source, false))
    }

    fn read_err(&self, mut source: ReadError, decompressed: bool) -> DataError {
        if !decompressed {
            source.position += self.position;
        }
        DataError::Record {
            position: self.position,
            base_offset: self.offset(),
            decompressed,
            source,
        }
    }

    /// Expands the entry into its logical messages with absolute offsets and effective
    /// timestamps (decompressing a wrapper into at most `max_uncompressed` bytes).
    pub fn expand(&self, max_uncompressed: usize) -> Result<Vec<LegacyRecord>, DataError> {
        let outer = self.message()?;
        let codec_id = (outer.attributes & 0x07) as u8;
        let err = |kind| DataError::Batch {
            position: self.position,
            kind,
        };
        let codec = match Codec::from_id(codec_id) {
            Some(Codec::Zstd) | None => {
                return Err(err(BatchErrorKind::UnknownCodec { id: codec_id }));
            }
            Some(c) => c,
        };
        if codec == Codec::None {
            return Ok(vec![LegacyRecord {
                offset: outer.offset,
                timestamp: outer.timestamp.unwrap_or(-1),
                key: outer.key,
                value: outer.value,
            }]);
        }
        let Some(compressed) = outer.value.as_ref() else {
            return Err(err(BatchErrorKind::InvalidInnerMessage {
                reason: "compressed wrapper with a null value",
            }));
        };
        let plain = if codec == Codec::Lz4 && outer.magic == 0 {
            compression::decompress_lz4_magic0(compressed, max_uncompressed)
        } else {
            compression::decompress(codec, compressed, max_uncompressed)
        }
        .map_err(|source| DataError::Compression {
            position: self.position,
            base_offset: outer.offset,
            source,
        })?;
        let plain = Bytes::from(plain);
        let mut inner = Vec::new();
        let mut r = Reader::new(&plain);
        while !r.is_empty() {
            let start = r.position();
            let mut head = r.clone();
            head.take(8, "inner.offset")
                .map_err(|e| self.read_err(e, true))?;
            let size = head
                .nullable_i32_len("inner.size")
                .map_err(|e| self.read_err(e, true))?
                .unwrap_or(0);
            let range = r
                .take_range(LOG_OVERHEAD + size, "inner.message")
                .map_err(|e| self.read_err(e, true))?;
            if size < MIN_ENTRY_SIZE {
                return Err(err(BatchErrorKind::InvalidInnerMessage {
                    reason: "inner message shorter than 14 bytes",
                }));
            }
            let entry = Self {
                bytes: plain.slice(range),
                position: self.position,
            };
            if entry.magic() != outer.magic {
                return Err(err(BatchErrorKind::InvalidInnerMessage {
                    reason: "inner magic differs from the wrapper's",
                }));
            }
            entry.verify_crc()?;
            let m = parse_message(&entry.bytes).map_err(|mut e| {
                e.position += start;
                self.read_err(e, true)
            })?;
            if m.attributes & 0x07 != 0 {
                return Err(err(BatchErrorKind::InvalidInnerMessage {
                    reason: "nested compression",
                }));
            }
            inner.push(m);
        }
        let Some(last) = inner.last() else {
            return Err(err(BatchErrorKind::InvalidInnerMessage {
                reason: "empty compressed wrapper",
            }));
        };
        // KIP-31: v1 inner offsets are relative; the wrapper holds the last absolute offset.
        let base = if outer.magic >= 1 {
            outer.offset.wrapping_sub(last.offset)
        } else {
            0
        };
        let log_append = outer.magic >= 1 && outer.attributes & 0x08 != 0;
        Ok(inner
            .into_iter()
            .map(|m| LegacyRecord {
                offset: base.wrapping_add(m.offset),
                timestamp: if log_append {
                    outer.timestamp.unwrap_or(-1)
                } else {
                    m.timestamp.unwrap_or(-1)
                },
                key: m.key,
                value: m.value,
            })
            .collect())
    }
}

/// One decoded magic 0/1 message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LegacyMessage {
    /// The entry offset.
    pub offset: i64,
    /// 0 or 1.
    pub magic: i8,
    /// Attributes (codec bits 0–2, timestamp type bit 3 in v1).
    pub attributes: i8,
    /// The v1 timestamp.
    pub timestamp: Option<i64>,
    /// Key (`None` = null).
    pub key: Option<Bytes>,
    /// Value (`None` = null).
    pub value: Option<Bytes>,
}

/// Parses one whole entry in `bytes` (offset, size, message); positions count from `bytes[0]`.
fn parse_message(bytes: &Bytes) -> Result<LegacyMessage, ReadError> {
    let mut r = Reader::new(bytes);
    let offset = r.i64("legacy.offset")?;
    let _size = r.i32("legacy.size")?;
    let _crc = r.u32("legacy.crc")?;
    let magic = r.i8("legacy.magic")?;
    let attributes = r.i8("legacy.attributes")?;
    let timestamp = if magic >= 1 {
        Some(r.i64("legacy.timestamp")?)
    } else {
        None
    };
    let key = nullable(&mut r, bytes, "legacy.key")?;
    let value = nullable(&mut r, bytes, "legacy.value")?;
    r.finish("legacy.message")?;
    Ok(LegacyMessage {
        offset,
        magic,
        attributes,
        timestamp,
        key,
        value,
    })
}

fn nullable(
    r: &mut Reader<'_>,
    src: &Bytes,
    field: &'static str,
) -> Result<Option<Bytes>, ReadError> {
    match r.nullable_i32_len(field)? {
        None => Ok(None),
        Some(n) => Ok(Some(src.slice(r.take_range(n, field)?))),
    }
}

/// A logical legacy message after expansion: absolute offset and effective timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRecord {
    /// Absolute offset in the source partition.
    pub offset: i64,
    /// Effective timestamp (−1 for v0).
    pub timestamp: i64,
    /// Key (`None` = null).
    pub key: Option<Bytes>,
    /// Value (`None` = null).
    pub value: Option<Bytes>,
}

/// A v2 batch built from legacy messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedBatch {
    /// Header: offsets 0..n−1, CreateTime, no producer fields, the codec chosen.
    pub header: BatchHeader,
    /// Records with contiguous offset deltas.
    pub records: Vec<Record>,
    /// The source offset of each record.
    pub source_offsets: Vec<i64>,
}

/// Converts a run of legacy entries into one v2 batch, keeping the messages at offsets
/// `>= from_offset`. The codec is `codec` when given, otherwise the first compressed wrapper's
/// codec (or none). Returns `None` when no message remains.
pub fn convert(
    entries: &[LegacyEntry],
    from_offset: i64,
    codec: Option<Codec>,
    max_uncompressed: usize,
) -> Result<Option<ConvertedBatch>, DataError> {
    let mut chosen = codec;
    let mut messages = Vec::new();
    for e in entries {
        if chosen.is_none() {
            let id = (e.attributes() & 0x07) as u8;
            if id != 0 {
                chosen = Codec::from_id(id);
            }
        }
        for m in e.expand(max_uncompressed)? {
            if m.offset >= from_offset {
                messages.push(m);
            }
        }
    }
    let Some(first) = messages.first() else {
        return Ok(None);
    };
    let base_timestamp = first.timestamp;
    let n = i32::try_from(messages.len()).map_err(|_| DataError::Batch {
        position: 0,
        kind: BatchErrorKind::Unencodable {
            reason: "more than i32::MAX records",
        },
    })?;
    let mut max_timestamp = -1;
    let mut records = Vec::new();
    let mut source_offsets = Vec::new();
    for (i, m) in (0i32..).zip(messages) {
        max_timestamp = max_timestamp.max(m.timestamp);
        source_offsets.push(m.offset);
        records.push(Record {
            attributes: 0,
            timestamp_delta: m.timestamp.wrapping_sub(base_timestamp),
            offset_delta: i,
            key: m.key,
            value: m.value,
            headers: Vec::new(),
        });
    }
    let header = BatchHeader {
        attributes: Attributes(0).with_codec(chosen.unwrap_or(Codec::None)),
        last_offset_delta: n - 1,
        base_timestamp,
        max_timestamp,
        ..BatchHeader::default()
    };
    Ok(Some(ConvertedBatch {
        header,
        records,
        source_offsets,
    }))
}

/// Encodes one legacy entry (test and fixture helper; ferry never produces legacy data).
pub fn encode_message(
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut body = Vec::new();
    body.push(magic as u8);
    body.push(attributes as u8);
    if magic >= 1 {
        body.extend_from_slice(&timestamp.to_be_bytes());
    }
    for part in [key, value] {
        match part {
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                body.extend_from_slice(&(b.len() as i32).to_be_bytes());
                body.extend_from_slice(b);
            }
        }
    }
    let crc = crc32fast::hash(&body);
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);
    use crate::batch::{BatchScanner, Entry};
    use proptest::prelude::*;

    fn legacy_entries(blob: Vec<u8>) -> Vec<LegacyEntry> {
        BatchScanner::new(Bytes::from(blob))
            .map(|e| match e.unwrap() {
                Entry::Legacy(l) => l,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// A compressed wrapper of `inner` (key, value) messages.
    fn wrapper(
        magic: i8,
        codec: Codec,
        wrapper_offset: i64,
        log_append: bool,
        wrapper_ts: i64,
        inner: &[KeyValue<'_>],
        first_abs: i64,
    ) -> Vec<u8> {
        let mut set = Vec::new();
        for (i, (k, v)) in inner.iter().enumerate() {
            let off = if magic == 0 {
                first_abs + i as i64
            } else {
                i as i64
            };
            set.extend(encode_message(off, magic, 0, 1000 + i as i64, *k, *v));
        }
        let mut z = Vec::new();
        compression::compress(codec, &set, &mut z).unwrap();
        if codec == Codec::Lz4 && magic == 0 {
            z[6] = lz4_broken_hc(&z[..6]);
        }
        let attrs = codec.id() as i8 | if log_append { 0x08 } else { 0 };
        encode_message(wrapper_offset, magic, attrs, wrapper_ts, None, Some(&z))
    }

    fn lz4_broken_hc(magic_and_descriptor: &[u8]) -> u8 {
        compression::lz4_header_checksum(magic_and_descriptor)
    }

    #[test]
    fn uncompressed_v0_and_v1() {
        let mut blob = encode_message(10, 0, 0, 0, Some(b"k0"), None);
        blob.extend(encode_message(11, 1, 0, 555, None, Some(b"v1")));
        let entries = legacy_entries(blob);
        assert_eq!(entries.len(), 2);
        let c = convert(&entries, 0, None, 1 << 20).unwrap().unwrap();
        assert_eq!(c.source_offsets, [10, 11]);
        assert_eq!(c.records[0].key.as_deref(), Some(&b"k0"[..]));
        assert_eq!(c.records[0].value, None);
        assert_eq!(c.records[1].key, None);
        assert_eq!(c.header.base_timestamp, -1);
        assert_eq!(c.records[1].timestamp_delta, 556);
        assert_eq!(c.header.max_timestamp, 555);
        assert_eq!(c.header.last_offset_delta, 1);
        assert_eq!(c.header.producer_id, -1);
    }

    #[test]
    fn compressed_wrappers_every_codec_and_magic() {
        let inner: [KeyValue<'_>; 3] = [
            (Some(b"a"), Some(b"1")),
            (None, Some(b"")),
            (Some(b"c"), None),
        ];
        for magic in [0i8, 1] {
            for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4] {
                let blob = wrapper(magic, codec, 52, false, 9, &inner, 50);
                let entries = legacy_entries(blob);
                let recs = entries[0].expand(1 << 20).unwrap();
                let offsets: Vec<_> = recs.iter().map(|r| r.offset).collect();
                assert_eq!(offsets, [50, 51, 52], "magic {magic} {codec}");
                assert_eq!(recs[1].key, None);
                assert_eq!(recs[1].value.as_deref(), Some(&b""[..]));
                assert_eq!(recs[2].value, None);
                let ts: Vec<_> = recs.iter().map(|r| r.timestamp).collect();
                if magic == 0 {
                    assert_eq!(ts, [-1, -1, -1]);
                } else {
                    assert_eq!(ts, [1000, 1001, 1002]);
                }
                let c = convert(&entries, 51, None, 1 << 20).unwrap().unwrap();
                assert_eq!(c.source_offsets, [51, 52]);
                assert_eq!(c.header.attributes.codec(), Some(codec));
            }
        }
    }

    #[test]
    fn v1_log_append_time_wrapper_stamps_inner() {
        let inner: [KeyValue<'_>; 2] = [(None, Some(b"x")), (None, Some(b"y"))];
        let blob = wrapper(1, Codec::Gzip, 7, true, 424242, &inner, 0);
        let recs = legacy_entries(blob)[0].expand(1 << 20).unwrap();
        assert!(recs.iter().all(|r| r.timestamp == 424242));
        assert_eq!(recs[0].offset, 6);
    }

    #[test]
    fn bad_legacy_input_is_typed() {
        let mut raw = encode_message(1, 1, 0, 5, Some(b"k"), Some(b"v"));
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let e = &legacy_entries(raw)[0];
        assert!(matches!(
            e.expand(1024),
            Err(DataError::Batch {
                kind: BatchErrorKind::CrcMismatch { .. },
                ..
            })
        ));
        // zstd is not allowed in legacy messages.
        let raw = encode_message(1, 1, 4, 5, None, Some(b"zz"));
        assert!(matches!(
            legacy_entries(raw)[0].expand(1024),
            Err(DataError::Batch {
                kind: BatchErrorKind::UnknownCodec { id: 4 },
                ..
            })
        ));
        // Key length pointing past the message.
        let mut raw = encode_message(1, 0, 0, 0, Some(b"k"), Some(b"v"));
        raw[18..22].copy_from_slice(&100i32.to_be_bytes());
        let crc = crc32fast::hash(&raw[16..]);
        raw[12..16].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            legacy_entries(raw)[0].expand(1024),
            Err(DataError::Record { .. })
        ));
        // Nested compression.
        let inner_set = encode_message(0, 1, 1, 0, None, Some(b"q"));
        let mut z = Vec::new();
        compression::compress(Codec::Gzip, &inner_set, &mut z).unwrap();
        let raw = encode_message(0, 1, 1, 0, None, Some(&z));
        assert!(matches!(
            legacy_entries(raw)[0].expand(1024),
            Err(DataError::Batch {
                kind: BatchErrorKind::InvalidInnerMessage { .. },
                ..
            })
        ));
        // Bomb: 1 MiB of inner data against a 1 KiB budget.
        let big = vec![0u8; 1 << 20];
        let inner: [KeyValue<'_>; 1] = [(None, Some(&big))];
        let raw = wrapper(1, Codec::Gzip, 0, false, 0, &inner, 0);
        let err = legacy_entries(raw)[0].expand(1024).unwrap_err();
        assert!(err.is_limit(), "{err}");
    }

    proptest! {
        #[test]
        fn uncompressed_roundtrip(
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
            value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
            magic in 0i8..2,
            ts in any::<i64>(),
            offset in 0i64..1 << 50,
        ) {
            let raw = encode_message(offset, magic, 0, ts, key.as_deref(), value.as_deref());
            let recs = legacy_entries(raw)[0].expand(1024).unwrap();
            prop_assert_eq!(recs.len(), 1);
            prop_assert_eq!(recs[0].offset, offset);
            prop_assert_eq!(recs[0].timestamp, if magic == 0 { -1 } else { ts });
            prop_assert_eq!(recs[0].key.as_deref(), key.as_deref());
            prop_assert_eq!(recs[0].value.as_deref(), value.as_deref());
        }
    }

    proptest! {
        #[test]
        fn expand_never_panics(data in proptest::collection::vec(any::<u8>(), 14..200), magic in 0i8..2, codec in 0i8..4) {
            let raw = encode_message(0, magic, codec, 0, None, Some(&data));
            let _ = legacy_entries(raw)[0].expand(4096);
        }
    }
}
