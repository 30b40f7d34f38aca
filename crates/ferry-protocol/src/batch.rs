//! Record batch v2 views over Bytes: scanner, header fields, CRC-32C.
//!
//! A Fetch response's `records` field is a run of entries `int64 offset, int32 size, body[size]`.
//! [`BatchScanner`] splits such a blob into entries without copying: each v2 batch comes back as a
//! [`RecordBatch`] (a [`Bytes`] slice of the blob plus its position), each magic 0/1 entry as a
//! [`LegacyEntry`]. A partial trailing entry, normal at the end of a Fetch response, ends the scan
//! and is reported by [`BatchScanner::truncated_tail`]; nothing past it is read. Every size is
//! checked against the bytes that remain and a configured maximum before use.
//!
//! The data-path error type, [`DataError`], lives here too: every parser of the data path
//! (batches, records, compression, legacy messages, MM2 records) reports through it.
//!
//! # References
//! - <https://kafka.apache.org/documentation/#recordbatch>
//! - `clients/src/main/java/org/apache/kafka/common/record/{Records,DefaultRecordBatch,ByteBufferLogInputStream}.java` (apache/kafka)
//! - KIP-98 (producer id, epoch, sequence), KIP-101 (partition leader epoch), KIP-534 (delete horizon)
//! - `kafka-wire.md` §1.1–§1.4, §4.1

use bytes::Bytes;

use crate::compression::{Codec, CompressionError};
use crate::legacy::LegacyEntry;
use crate::varint::ReadError;

/// Bytes before the size field ends: `int64 offset, int32 size` (`Records.LOG_OVERHEAD`).
pub const LOG_OVERHEAD: usize = 12;
/// Offset of the magic byte in every entry, whatever its magic (`Records.MAGIC_OFFSET`).
pub const MAGIC_OFFSET: usize = 16;
/// Size of the v2 batch header (`DefaultRecordBatch.RECORD_BATCH_OVERHEAD`).
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// Offset of the attributes field, where the CRC-32C coverage starts.
pub const ATTRIBUTES_OFFSET: usize = 21;
/// Offset of the CRC field.
pub const CRC_OFFSET: usize = 17;
/// Smallest `size` Kafka accepts for any entry (`LegacyRecord.RECORD_OVERHEAD_V0`).
pub const MIN_ENTRY_SIZE: usize = 14;

const BASE_OFFSET_OFFSET: usize = 0;
const LENGTH_OFFSET: usize = 8;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORDS_COUNT_OFFSET: usize = 57;

/// What was wrong with a batch entry's framing or header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchErrorKind {
    /// The entry's `size` is below the minimum for its kind (14 for any entry, 49 for v2).
    #[error("size {size} below the minimum {min}")]
    SizeTooSmall {
        /// The declared size.
        size: i64,
        /// The minimum.
        min: usize,
    },
    /// The entry's `size` exceeds the configured maximum ([`ScanConfig::max_entry_size`]).
    #[error("size {size} above the configured maximum {max}")]
    SizeTooLarge {
        /// The declared size.
        size: i64,
        /// The configured maximum.
        max: usize,
    },
    /// The `length` field does not match the bytes given to [`RecordBatch::new`].
    #[error("length field {declared} does not match the {actual} bytes present")]
    LengthMismatch {
        /// The declared length (`size`).
        declared: i64,
        /// The bytes present after the 12-byte log overhead.
        actual: usize,
    },
    /// The magic byte is not 0, 1 or 2 (or not the magic this call expects).
    #[error("unknown magic {magic}")]
    UnknownMagic {
        /// The magic byte.
        magic: i8,
    },
    /// The stored CRC does not match the data (CRC-32C for v2, CRC-32 for v0/v1).
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// The attributes name a codec id above 4 (or zstd in a legacy message).
    #[error("unknown compression codec id {id}")]
    UnknownCodec {
        /// The codec id.
        id: u8,
    },
    /// `recordsCount` is negative, or disagrees with the records actually present.
    #[error("recordsCount {declared} does not match the {found} records present")]
    CountMismatch {
        /// The declared count.
        declared: i64,
        /// Records decoded before the data ended (or the count at which data remained).
        found: usize,
    },
    /// A legacy wrapper's inner message is itself compressed or has another magic.
    #[error("invalid inner message in a legacy wrapper: {reason}")]
    InvalidInnerMessage {
        /// What was wrong.
        reason: &'static str,
    },
    /// A field cannot be represented when encoding (for example more than `i32::MAX` records, or
    /// an offset delta outside `int32`).
    #[error("cannot encode: {reason}")]
    Unencodable {
        /// What overflowed.
        reason: &'static str,
    },
}

/// A data-path error: what was wrong and where.
///
/// Positions are byte offsets in the blob the [`BatchScanner`] was given (for a batch built with
/// [`RecordBatch::new`], in that batch). Every variant is the source cluster's fault (corrupt or
/// foreign bytes) except those for which [`DataError::is_limit`] is true, which mean the data is
/// bigger than a configured limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The framing or header of the entry at `position` is invalid.
    #[error("batch entry at byte {position}: {kind}")]
    Batch {
        /// Position of the entry in the blob.
        position: usize,
        /// What was wrong.
        kind: BatchErrorKind,
    },
    /// A record in the batch at `position` failed to decode. When `decompressed` is false the
    /// position inside `source` is a blob position too; otherwise it counts from the start of
    /// the decompressed record stream.
    #[error(
        "record in batch at byte {position} (base offset {base_offset}{}): {source}",
        if *decompressed { ", decompressed stream" } else { "" }
    )]
    Record {
        /// Position of the batch entry in the blob.
        position: usize,
        /// The batch's base offset.
        base_offset: i64,
        /// Whether `source.position` counts in the decompressed stream.
        decompressed: bool,
        /// The failing field.
        #[source]
        source: ReadError,
    },
    /// The compressed records of the batch at `position` could not be (de)compressed.
    #[error("compressed records of batch at byte {position} (base offset {base_offset}): {source}")]
    Compression {
        /// Position of the batch entry in the blob.
        position: usize,
        /// The batch's base offset.
        base_offset: i64,
        /// The codec failure.
        #[source]
        source: CompressionError,
    },
    /// An MM2 internal record (offset sync, checkpoint, heartbeat) failed to decode.
    #[error("MM2 {record} {part}: {source}")]
    Mm2 {
        /// `"offset-sync"`, `"checkpoint"` or `"heartbeat"`.
        record: &'static str,
        /// `"key"` or `"value"`.
        part: &'static str,
        /// The failing field.
        #[source]
        source: ReadError,
    },
}

impl DataError {
    /// True when the data only exceeds a configured limit (entry size, decompressed size): a
    /// policy decision (raise the limit, or skip by policy), not corruption.
    pub fn is_limit(&self) -> bool {
        match self {
            Self::Batch { kind, .. } => matches!(kind, BatchErrorKind::SizeTooLarge { .. }),
            Self::Compression { source, .. } => source.is_limit(),
            _ => false,
        }
    }

    /// True when the bytes are corrupt or invalid (the source's fault). Refetching the same
    /// offsets returns the same bytes, so this is not retriable.
    pub fn is_corrupt(&self) -> bool {
        !self.is_limit() && !self.is_unencodable()
    }

    /// True when ferry could not encode a value (an internal limit, not bad input).
    pub fn is_unencodable(&self) -> bool {
        matches!(
            self,
            Self::Batch {
                kind: BatchErrorKind::Unencodable { .. },
                ..
            }
        )
    }

    /// The position of the failing entry (or 0 for MM2 records).
    pub fn position(&self) -> usize {
        match self {
            Self::Batch { position, .. }
            | Self::Record { position, .. }
            | Self::Compression { position, .. } => *position,
            Self::Mm2 { .. } => 0,
        }
    }
}

/// Reads a big-endian array at `at`; zeros if out of range (callers validate sizes first).
fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = b.get(at..at + N) {
        out.copy_from_slice(s);
    }
    out
}

/// The v2 attributes field (`int16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Attributes(pub i16);

impl Attributes {
    /// Codec bits 0–2.
    pub const CODEC_MASK: i16 = 0x07;
    /// Bit 3: LogAppendTime.
    pub const LOG_APPEND_TIME: i16 = 0x08;
    /// Bit 4: transactional.
    pub const TRANSACTIONAL: i16 = 0x10;
    /// Bit 5: control batch.
    pub const CONTROL: i16 = 0x20;
    /// Bit 6: delete horizon set; `baseTimestamp` holds it (KIP-534).
    pub const DELETE_HORIZON: i16 = 0x40;

    /// The codec id (bits 0–2), which may be an unknown value 5–7.
    pub fn codec_id(self) -> u8 {
        (self.0 & Self::CODEC_MASK) as u8
    }

    /// The codec, if the id is known.
    pub fn codec(self) -> Option<Codec> {
        Codec::from_id(self.codec_id())
    }

    /// Bit 3.
    pub fn is_log_append_time(self) -> bool {
        self.0 & Self::LOG_APPEND_TIME != 0
    }

    /// Bit 4.
    pub fn is_transactional(self) -> bool {
        self.0 & Self::TRANSACTIONAL != 0
    }

    /// Bit 5.
    pub fn is_control(self) -> bool {
        self.0 & Self::CONTROL != 0
    }

    /// Bit 6.
    pub fn has_delete_horizon(self) -> bool {
        self.0 & Self::DELETE_HORIZON != 0
    }

    /// These attributes with the codec bits replaced.
    pub fn with_codec(self, codec: Codec) -> Self {
        Self((self.0 & !Self::CODEC_MASK) | i16::from(codec.id()))
    }

    /// These attributes with `bits` set (`on`) or cleared.
    pub fn with(self, bits: i16, on: bool) -> Self {
        if on {
            Self(self.0 | bits)
        } else {
            Self(self.0 & !bits)
        }
    }
}

/// The v2 header fields a producer chooses (all but `length`, `magic`, `crc` and
/// `recordsCount`, which follow from the records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    /// `baseOffset`.
    pub base_offset: i64,
    /// `partitionLeaderEpoch` (producers send −1).
    pub partition_leader_epoch: i32,
    /// `attributes`.
    pub attributes: Attributes,
    /// `lastOffsetDelta`.
    pub last_offset_delta: i32,
    /// `baseTimestamp` (the delete horizon when bit 6 is set).
    pub base_timestamp: i64,
    /// `maxTimestamp`.
    pub max_timestamp: i64,
    /// `producerId` (−1 = none).
    pub producer_id: i64,
    /// `producerEpoch` (−1 = none).
    pub producer_epoch: i16,
    /// `baseSequence` (−1 = none).
    pub base_sequence: i32,
}

impl Default for BatchHeader {
    fn default() -> Self {
        Self {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: Attributes(0),
            last_offset_delta: 0,
            base_timestamp: -1,
            max_timestamp: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

impl BatchHeader {
    /// The 61-byte header with these fields, `length` and `recordsCount` as given, magic 2 and
    /// the CRC slot zeroed (the caller computes it over bytes 21.. once the records follow).
    pub fn to_prefix(&self, length: i32, records_count: i32) -> [u8; RECORD_BATCH_OVERHEAD] {
        let mut h = [0u8; RECORD_BATCH_OVERHEAD];
        put(&mut h, BASE_OFFSET_OFFSET, &self.base_offset.to_be_bytes());
        put(&mut h, LENGTH_OFFSET, &length.to_be_bytes());
        put(
            &mut h,
            PARTITION_LEADER_EPOCH_OFFSET,
            &self.partition_leader_epoch.to_be_bytes(),
        );
        put(&mut h, MAGIC_OFFSET, &[2]);
        put(&mut h, ATTRIBUTES_OFFSET, &self.attributes.0.to_be_bytes());
        put(
            &mut h,
            LAST_OFFSET_DELTA_OFFSET,
            &self.last_offset_delta.to_be_bytes(),
        );
        put(
            &mut h,
            BASE_TIMESTAMP_OFFSET,
            &self.base_timestamp.to_be_bytes(),
        );
        put(
            &mut h,
            MAX_TIMESTAMP_OFFSET,
            &self.max_timestamp.to_be_bytes(),
        );
        put(&mut h, PRODUCER_ID_OFFSET, &self.producer_id.to_be_bytes());
        put(
            &mut h,
            PRODUCER_EPOCH_OFFSET,
            &self.producer_epoch.to_be_bytes(),
        );
        put(
            &mut h,
            BASE_SEQUENCE_OFFSET,
            &self.base_sequence.to_be_bytes(),
        );
        put(&mut h, RECORDS_COUNT_OFFSET, &records_count.to_be_bytes());
        h
    }

    /// Reads the fields from a 61-byte prefix (as returned by [`BatchHeader::to_prefix`] or the
    /// start of a batch).
    pub fn from_prefix(h: &[u8; RECORD_BATCH_OVERHEAD]) -> Self {
        Self {
            base_offset: i64::from_be_bytes(be(h, BASE_OFFSET_OFFSET)),
            partition_leader_epoch: i32::from_be_bytes(be(h, PARTITION_LEADER_EPOCH_OFFSET)),
            attributes: Attributes(i16::from_be_bytes(be(h, ATTRIBUTES_OFFSET))),
            last_offset_delta: i32::from_be_bytes(be(h, LAST_OFFSET_DELTA_OFFSET)),
            base_timestamp: i64::from_be_bytes(be(h, BASE_TIMESTAMP_OFFSET)),
            max_timestamp: i64::from_be_bytes(be(h, MAX_TIMESTAMP_OFFSET)),
            producer_id: i64::from_be_bytes(be(h, PRODUCER_ID_OFFSET)),
            producer_epoch: i16::from_be_bytes(be(h, PRODUCER_EPOCH_OFFSET)),
            base_sequence: i32::from_be_bytes(be(h, BASE_SEQUENCE_OFFSET)),
        }
    }
}

/// Writes `src` at `at` in a header array (in range by construction).
pub(crate) fn put(h: &mut [u8], at: usize, src: &[u8]) {
    if let Some(dst) = h.get_mut(at..at + src.len()) {
        dst.copy_from_slice(src);
    }
}

/// Computes the CRC-32C of a v2 batch from its 61-byte header and its records bytes:
/// `crc32c(header[21..61] ++ records)`.
pub fn batch_crc(prefix: &[u8; RECORD_BATCH_OVERHEAD], records: &[u8]) -> u32 {
    let head = prefix.get(ATTRIBUTES_OFFSET..).unwrap_or(&[]);
    crc32c::crc32c_append(crc32c::crc32c(head), records)
}

/// CRC-32C concatenation with a precomputed shift: `combine(crc(A), crc(B)) = crc(A ‖ B)` for
/// every `B` of the length given to [`CrcShift::new`].
///
/// Same result as `crc32c::crc32c_combine` (a test checks it), but `crc32c_combine` builds and
/// squares 32×32 GF(2) matrices on every call (zlib's original method), about 15 µs per call for
/// a 16 KiB payload: more than the CRC of the payload itself. Here the shift
/// `x^(8·len) mod P` is a product of entries of a compile-time table of `x^(8·2^k) mod P`, one
/// carry-less multiply per set bit of `len`; applying it is one more multiply. The patch route
/// needs the same shift twice (verify the source CRC, then compute the new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrcShift(u32);

/// CRC-32C (Castagnoli) polynomial, bit-reflected.
const CRC32C_POLY_REFLECTED: u32 = 0x82F6_3B78;

/// `a · b mod P` for polynomials in reflected representation (bit 31 is `x^0`).
const fn gf2_mul(a: u32, b: u32) -> u32 {
    let mut product = 0u32;
    let mut term = b; // b · x^i, starting at i = 0
    let mut i = 0;
    while i < 32 {
        if a & (1 << (31 - i)) != 0 {
            product ^= term;
        }
        // term · x: shift towards higher powers; reduce when x^32 appears.
        term = if term & 1 != 0 {
            (term >> 1) ^ CRC32C_POLY_REFLECTED
        } else {
            term >> 1
        };
        i += 1;
    }
    product
}

/// `X8[k] = x^(8·2^k) mod P`.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an out-of-range index is a build error, not a panic"
)]
const X8: [u32; 64] = {
    let mut table = [0u32; 64];
    let mut t = 1u32 << (31 - 8); // x^8
    let mut k = 0;
    while k < 64 {
        table[k] = t;
        t = gf2_mul(t, t);
        k += 1;
    }
    table
};

impl CrcShift {
    /// The shift over `len` bytes.
    pub fn new(len: usize) -> Self {
        let mut p = 1u32 << 31; // x^0
        let mut n = len as u64;
        for &t in &X8 {
            if n == 0 {
                break;
            }
            if n & 1 != 0 {
                p = gf2_mul(t, p);
            }
            n >>= 1;
        }
        Self(p)
    }

    /// `crc(A ‖ B)` from `crc(A)` and `crc(B)`, where `B` has the length this shift was made for.
    pub fn combine(self, crc_a: u32, crc_b: u32) -> u32 {
        gf2_mul(self.0, crc_a) ^ crc_b
    }
}

/// A view of one complete magic-2 batch entry, a zero-copy slice of a fetched blob.
///
/// Construction checks that the bytes hold exactly one entry of at least 61 bytes with magic 2;
/// the CRC is checked only on request ([`RecordBatch::verify_crc`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
    position: usize,
}

impl RecordBatch {
    /// Wraps `bytes`, which must hold exactly one v2 batch entry.
    pub fn new(bytes: Bytes) -> Result<Self, DataError> {
        Self::at(bytes, 0)
    }

    /// Like [`RecordBatch::new`], recording that the batch sits at `position` in some blob (for
    /// error messages).
    pub fn at(bytes: Bytes, position: usize) -> Result<Self, DataError> {
        let err = |kind| DataError::Batch { position, kind };
        if bytes.len() < RECORD_BATCH_OVERHEAD {
            return Err(err(BatchErrorKind::SizeTooSmall {
                size: bytes.len() as i64 - LOG_OVERHEAD as i64,
                min: RECORD_BATCH_OVERHEAD - LOG_OVERHEAD,
            }));
        }
        let magic = i8::from_be_bytes(be(&bytes, MAGIC_OFFSET));
        if magic != 2 {
            return Err(err(BatchErrorKind::UnknownMagic { magic }));
        }
        let declared = i64::from(i32::from_be_bytes(be(&bytes, LENGTH_OFFSET)));
        let actual = bytes.len() - LOG_OVERHEAD;
        if declared != actual as i64 {
            return Err(err(BatchErrorKind::LengthMismatch { declared, actual }));
        }
        Ok(Self { bytes, position })
    }

    /// Position of this entry in the blob it was scanned from.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The whole entry (header and records).
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The whole entry, consuming the view.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Size of the entry including the 12-byte log overhead.
    pub fn entry_len(&self) -> usize {
        self.bytes.len()
    }

    /// The 61-byte header.
    pub fn prefix(&self) -> [u8; RECORD_BATCH_OVERHEAD] {
        be(&self.bytes, 0)
    }

    /// The records part (after byte 61): plain records, or one compressed stream.
    pub fn records_bytes(&self) -> Bytes {
        self.bytes.slice(RECORD_BATCH_OVERHEAD..)
    }

    /// The records part as a slice.
    pub fn records_slice(&self) -> &[u8] {
        self.bytes.get(RECORD_BATCH_OVERHEAD..).unwrap_or(&[])
    }

    /// `baseOffset`.
    pub fn base_offset(&self) -> i64 {
        i64::from_be_bytes(be(&self.bytes, BASE_OFFSET_OFFSET))
    }

    /// `length` (entry size − 12).
    pub fn length(&self) -> i32 {
        i32::from_be_bytes(be(&self.bytes, LENGTH_OFFSET))
    }

    /// `partitionLeaderEpoch`.
    pub fn partition_leader_epoch(&self) -> i32 {
        i32::from_be_bytes(be(&self.bytes, PARTITION_LEADER_EPOCH_OFFSET))
    }

    /// `magic` (always 2 for a constructed view).
    pub fn magic(&self) -> i8 {
        i8::from_be_bytes(be(&self.bytes, MAGIC_OFFSET))
    }

    /// The stored `crc`.
    pub fn crc(&self) -> u32 {
        u32::from_be_bytes(be(&self.bytes, CRC_OFFSET))
    }

    /// `attributes`.
    pub fn attributes(&self) -> Attributes {
        Attributes(i16::from_be_bytes(be(&self.bytes, ATTRIBUTES_OFFSET)))
    }

    /// `lastOffsetDelta`.
    pub fn last_offset_delta(&self) -> i32 {
        i32::from_be_bytes(be(&self.bytes, LAST_OFFSET_DELTA_OFFSET))
    }

    /// `baseTimestamp` (the delete horizon when bit 6 is set).
    pub fn base_timestamp(&self) -> i64 {
        i64::from_be_bytes(be(&self.bytes, BASE_TIMESTAMP_OFFSET))
    }

    /// `maxTimestamp`.
    pub fn max_timestamp(&self) -> i64 {
        i64::from_be_bytes(be(&self.bytes, MAX_TIMESTAMP_OFFSET))
    }

    /// `producerId`.
    pub fn producer_id(&self) -> i64 {
        i64::from_be_bytes(be(&self.bytes, PRODUCER_ID_OFFSET))
    }

    /// `producerEpoch`.
    pub fn producer_epoch(&self) -> i16 {
        i16::from_be_bytes(be(&self.bytes, PRODUCER_EPOCH_OFFSET))
    }

    /// `baseSequence`.
    pub fn base_sequence(&self) -> i32 {
        i32::from_be_bytes(be(&self.bytes, BASE_SEQUENCE_OFFSET))
    }

    /// `recordsCount`.
    pub fn records_count(&self) -> i32 {
        i32::from_be_bytes(be(&self.bytes, RECORDS_COUNT_OFFSET))
    }

    /// `baseOffset + lastOffsetDelta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .saturating_add(i64::from(self.last_offset_delta()))
    }

    /// The offset to fetch after this batch: `lastOffset + 1`.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The header fields.
    pub fn header(&self) -> BatchHeader {
        BatchHeader::from_prefix(&self.prefix())
    }

    /// The codec, or an error for ids 5–7.
    pub fn codec(&self) -> Result<Codec, DataError> {
        let attributes = self.attributes();
        attributes.codec().ok_or(DataError::Batch {
            position: self.position,
            kind: BatchErrorKind::UnknownCodec {
                id: attributes.codec_id(),
            },
        })
    }

    /// CRC-32C of the 40 header bytes the CRC covers (21..61).
    pub fn header_crc(&self) -> u32 {
        crc32c::crc32c(
            self.bytes
                .get(ATTRIBUTES_OFFSET..RECORD_BATCH_OVERHEAD)
                .unwrap_or(&[]),
        )
    }

    /// CRC-32C of the records part.
    pub fn payload_crc(&self) -> u32 {
        crc32c::crc32c(self.records_slice())
    }

    /// The CRC-32C the header should hold: over bytes `[21, end)`.
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(self.bytes.get(ATTRIBUTES_OFFSET..).unwrap_or(&[]))
    }

    /// Checks the stored CRC against the data.
    pub fn verify_crc(&self) -> Result<(), DataError> {
        self.check_crc(self.compute_crc())
    }

    /// Checks the stored CRC against `computed`.
    pub(crate) fn check_crc(&self, computed: u32) -> Result<(), DataError> {
        let stored = self.crc();
        if stored == computed {
            Ok(())
        } else {
            Err(DataError::Batch {
                position: self.position,
                kind: BatchErrorKind::CrcMismatch { stored, computed },
            })
        }
    }
}

/// One entry of a records blob.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entry {
    /// A magic-2 record batch.
    V2(RecordBatch),
    /// A magic 0 or 1 message (possibly a compressed wrapper).
    Legacy(LegacyEntry),
}

impl Entry {
    /// Position of the entry in the blob.
    pub fn position(&self) -> usize {
        match self {
            Self::V2(b) => b.position(),
            Self::Legacy(l) => l.position(),
        }
    }

    /// The last offset the entry covers (`lastOffset` for v2, the entry offset for legacy, which
    /// is the last inner offset of a compressed wrapper).
    pub fn last_offset(&self) -> i64 {
        match self {
            Self::V2(b) => b.last_offset(),
            Self::Legacy(l) => l.offset(),
        }
    }
}

/// Scanner settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanConfig {
    /// Largest entry `size` accepted; larger is [`BatchErrorKind::SizeTooLarge`] (Kafka's reader
    /// applies the same check). Default 64 MiB.
    pub max_entry_size: usize,
    /// Entries whose last offset is below this are skipped without being returned (a fetch can
    /// start with the batch that contains the fetch offset). Default: none.
    pub skip_below: Option<i64>,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            max_entry_size: 64 << 20,
            skip_below: None,
        }
    }
}

impl ScanConfig {
    /// Sets [`ScanConfig::max_entry_size`].
    pub fn with_max_entry_size(mut self, max: usize) -> Self {
        self.max_entry_size = max;
        self
    }

    /// Sets [`ScanConfig::skip_below`].
    pub fn with_skip_below(mut self, offset: i64) -> Self {
        self.skip_below = Some(offset);
        self
    }
}

/// Splits a records blob into entries without copying.
///
/// An iterator of `Result<Entry, DataError>`; after the first error it returns `None`.
#[derive(Debug, Clone)]
pub struct BatchScanner {
    blob: Bytes,
    pos: usize,
    config: ScanConfig,
    done: bool,
    skipped: usize,
    truncated: usize,
}

/// Bytes an entry needs before its magic can be read (`HEADER_SIZE_UP_TO_MAGIC`).
const HEADER_UP_TO_MAGIC: usize = MAGIC_OFFSET + 1;

impl BatchScanner {
    /// A scanner over `blob` with default settings.
    pub fn new(blob: Bytes) -> Self {
        Self::with_config(blob, ScanConfig::default())
    }

    /// A scanner over `blob`.
    pub fn with_config(blob: Bytes, config: ScanConfig) -> Self {
        Self {
            blob,
            pos: 0,
            config,
            done: false,
            skipped: 0,
            truncated: 0,
        }
    }

    /// Bytes consumed so far (the start of the next entry).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Entries skipped because of [`ScanConfig::skip_below`].
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Size of the incomplete entry that ended the scan (0 if the blob ended cleanly or the
    /// scan is not finished). The caller refetches from the last complete entry's next offset.
    pub fn truncated_tail(&self) -> usize {
        self.truncated
    }

    fn fail(&mut self, kind: BatchErrorKind) -> Option<Result<Entry, DataError>> {
        self.done = true;
        Some(Err(DataError::Batch {
            position: self.pos,
            kind,
        }))
    }

    fn next_entry(&mut self) -> Option<Result<Entry, DataError>> {
        let rest = self.blob.get(self.pos..).unwrap_or(&[]);
        if rest.len() < HEADER_UP_TO_MAGIC {
            self.done = true;
            self.truncated = rest.len();
            return None;
        }
        let size = i64::from(i32::from_be_bytes(be(rest, LENGTH_OFFSET)));
        if size < MIN_ENTRY_SIZE as i64 {
            return self.fail(BatchErrorKind::SizeTooSmall {
                size,
                min: MIN_ENTRY_SIZE,
            });
        }
        if size > self.config.max_entry_size as i64 {
            return self.fail(BatchErrorKind::SizeTooLarge {
                size,
                max: self.config.max_entry_size,
            });
        }
        let total = LOG_OVERHEAD + size as usize;
        if rest.len() < total {
            self.done = true;
            self.truncated = rest.len();
            return None;
        }
        let magic = i8::from_be_bytes(be(rest, MAGIC_OFFSET));
        let position = self.pos;
        let entry = match magic {
            2 => {
                if total < RECORD_BATCH_OVERHEAD {
                    return self.fail(BatchErrorKind::SizeTooSmall {
                        size,
                        min: RECORD_BATCH_OVERHEAD - LOG_OVERHEAD,
                    });
                }
                let bytes = self.blob.slice(position..position + total);
                Entry::V2(RecordBatch { bytes, position })
            }
            0 | 1 => {
                let bytes = self.blob.slice(position..position + total);
                Entry::Legacy(LegacyEntry::from_scanned(bytes, position))
            }
            _ => return self.fail(BatchErrorKind::UnknownMagic { magic }),
        };
        self.pos += total;
        Some(Ok(entry))
    }
}

impl Iterator for BatchScanner {
    type Item = Result<Entry, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.next_entry()? {
                Ok(entry) => {
                    if let Some(floor) = self.config.skip_below
                        && entry.last_offset() < floor
                    {
                        self.skipped += 1;
                        continue;
                    }
                    return Some(Ok(entry));
                }
                Err(e) => return Some(Err(e)),
            }
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hand-built uncompressed batch with one record `key="k"`, `value="v"`, no headers.
    pub(crate) fn golden_batch() -> Vec<u8> {
        let record: [u8; 9] = [
            0x10, // length 8 (zig-zag)
            0x00, // attributes
            0x00, // timestampDelta 0
            0x00, // offsetDelta 0
            0x02, b'k', // key length 1
            0x02, b'v', // value length 1
            0x00, // header count 0
        ];
        let mut b = Vec::new();
        b.extend_from_slice(&5i64.to_be_bytes()); // baseOffset
        b.extend_from_slice(&((49 + record.len()) as i32).to_be_bytes()); // length
        b.extend_from_slice(&7i32.to_be_bytes()); // partitionLeaderEpoch
        b.push(2); // magic
        b.extend_from_slice(&[0; 4]); // crc, filled below
        b.extend_from_slice(&0i16.to_be_bytes()); // attributes
        b.extend_from_slice(&0i32.to_be_bytes()); // lastOffsetDelta
        b.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // baseTimestamp
        b.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // maxTimestamp
        b.extend_from_slice(&42i64.to_be_bytes()); // producerId
        b.extend_from_slice(&3i16.to_be_bytes()); // producerEpoch
        b.extend_from_slice(&9i32.to_be_bytes()); // baseSequence
        b.extend_from_slice(&1i32.to_be_bytes()); // recordsCount
        b.extend_from_slice(&record);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn accessors_read_every_field() {
        let b = RecordBatch::new(Bytes::from(golden_batch())).unwrap();
        assert_eq!(b.base_offset(), 5);
        assert_eq!(b.length(), 58);
        assert_eq!(b.partition_leader_epoch(), 7);
        assert_eq!(b.magic(), 2);
        assert_eq!(b.attributes(), Attributes(0));
        assert_eq!(b.last_offset_delta(), 0);
        assert_eq!(b.base_timestamp(), 1_700_000_000_000);
        assert_eq!(b.max_timestamp(), 1_700_000_000_000);
        assert_eq!(b.producer_id(), 42);
        assert_eq!(b.producer_epoch(), 3);
        assert_eq!(b.base_sequence(), 9);
        assert_eq!(b.records_count(), 1);
        assert_eq!(b.last_offset(), 5);
        assert_eq!(b.next_offset(), 6);
        assert_eq!(b.codec().unwrap(), Codec::None);
        b.verify_crc().unwrap();
        assert_eq!(
            crc32c::crc32c_combine(b.header_crc(), b.payload_crc(), b.records_slice().len()),
            b.crc()
        );
        let h = b.header();
        let prefix = h.to_prefix(b.length(), b.records_count());
        assert_eq!(&prefix[..17], &b.prefix()[..17]);
        assert_eq!(&prefix[21..], &b.prefix()[21..]);
        assert_eq!(batch_crc(&b.prefix(), b.records_slice()), b.crc());
    }

    #[test]
    fn crc_shift_matches_crc32c_combine_and_concatenation() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for split in [0usize, 1, 7, 40, 61, 4096, 16_384, 65_535, 69_999, 70_000] {
            let (a, b) = data.split_at(split);
            let (ca, cb) = (crc32c::crc32c(a), crc32c::crc32c(b));
            let ours = CrcShift::new(b.len()).combine(ca, cb);
            assert_eq!(ours, crc32c::crc32c(&data), "split {split}");
            assert_eq!(
                ours,
                crc32c::crc32c_combine(ca, cb, b.len()),
                "split {split}"
            );
        }
    }

    #[test]
    fn crc_mismatch_is_typed() {
        let mut raw = golden_batch();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let b = RecordBatch::new(Bytes::from(raw)).unwrap();
        let err = b.verify_crc().unwrap_err();
        assert!(matches!(
            err,
            DataError::Batch {
                position: 0,
                kind: BatchErrorKind::CrcMismatch { .. }
            }
        ));
        assert!(err.is_corrupt());
    }

    #[test]
    fn new_rejects_wrong_magic_short_and_length_mismatch() {
        let mut raw = golden_batch();
        raw[16] = 1;
        assert!(matches!(
            RecordBatch::new(Bytes::from(raw)),
            Err(DataError::Batch {
                kind: BatchErrorKind::UnknownMagic { magic: 1 },
                ..
            })
        ));
        let raw = golden_batch();
        assert!(matches!(
            RecordBatch::new(Bytes::copy_from_slice(&raw[..60])),
            Err(DataError::Batch {
                kind: BatchErrorKind::SizeTooSmall { .. },
                ..
            })
        ));
        assert!(matches!(
            RecordBatch::new(Bytes::copy_from_slice(&raw[..raw.len() - 1])),
            Err(DataError::Batch {
                kind: BatchErrorKind::LengthMismatch { .. },
                ..
            })
        ));
    }

    fn blob_of(n: usize) -> (Vec<u8>, usize) {
        let one = golden_batch();
        let mut blob = Vec::new();
        for i in 0..n {
            let mut b = one.clone();
            b[..8].copy_from_slice(&(i as i64).to_be_bytes());
            blob.extend_from_slice(&b);
        }
        (blob, one.len())
    }

    #[test]
    fn scanner_splits_and_stops_at_partial_tail() {
        let (blob, one) = blob_of(3);
        for cut in 0..=blob.len() {
            let mut s = BatchScanner::new(Bytes::copy_from_slice(&blob[..cut]));
            let got: Vec<_> = s.by_ref().collect::<Result<_, _>>().unwrap();
            assert_eq!(got.len(), cut / one, "cut {cut}");
            for (i, e) in got.iter().enumerate() {
                let Entry::V2(b) = e else { panic!() };
                assert_eq!(b.base_offset(), i as i64);
                assert_eq!(b.position(), i * one);
                b.verify_crc().unwrap();
            }
            assert_eq!(s.position(), (cut / one) * one);
            assert_eq!(s.truncated_tail(), cut % one);
        }
    }

    #[test]
    fn scanner_skips_below() {
        let (blob, _) = blob_of(4);
        let mut s =
            BatchScanner::with_config(Bytes::from(blob), ScanConfig::default().with_skip_below(2));
        let offsets: Vec<i64> = s.by_ref().map(|e| e.unwrap().last_offset()).collect();
        assert_eq!(offsets, [2, 3]);
        assert_eq!(s.skipped(), 2);
    }

    #[test]
    fn scanner_size_checks_come_before_truncation() {
        let (mut blob, one) = blob_of(2);
        // Second entry claims 1 GiB: a typed error naming the position, not "truncated".
        blob[one + 8..one + 12].copy_from_slice(&(1i32 << 30).to_be_bytes());
        let mut s = BatchScanner::new(Bytes::from(blob.clone()));
        assert!(s.next().unwrap().is_ok());
        let err = s.next().unwrap().unwrap_err();
        assert_eq!(
            err,
            DataError::Batch {
                position: one,
                kind: BatchErrorKind::SizeTooLarge {
                    size: 1 << 30,
                    max: 64 << 20
                }
            }
        );
        assert!(err.is_limit());
        assert!(s.next().is_none(), "fused after an error");
        // Negative size.
        blob[one + 8..one + 12].copy_from_slice(&(-5i32).to_be_bytes());
        let err = BatchScanner::new(Bytes::from(blob.clone()))
            .nth(1)
            .unwrap()
            .unwrap_err();
        assert!(matches!(
            err,
            DataError::Batch {
                kind: BatchErrorKind::SizeTooSmall { size: -5, .. },
                ..
            }
        ));
        // Unknown magic.
        blob[one + 8..one + 12].copy_from_slice(&((one - 12) as i32).to_be_bytes());
        blob[one + 16] = 3;
        let err = BatchScanner::new(Bytes::from(blob.clone()))
            .nth(1)
            .unwrap()
            .unwrap_err();
        assert!(matches!(
            err,
            DataError::Batch {
                kind: BatchErrorKind::UnknownMagic { magic: 3 },
                ..
            }
        ));
        // v2 with a size of 20: below the v2 minimum of 49.
        blob[one + 16] = 2;
        blob[one + 8..one + 12].copy_from_slice(&20i32.to_be_bytes());
        let err = BatchScanner::new(Bytes::from(blob))
            .nth(1)
            .unwrap()
            .unwrap_err();
        assert!(matches!(
            err,
            DataError::Batch {
                kind: BatchErrorKind::SizeTooSmall { size: 20, min: 49 },
                ..
            }
        ));
    }

    #[test]
    fn scanner_slices_share_the_blob() {
        let (blob, one) = blob_of(2);
        let blob = Bytes::from(blob);
        let entries: Vec<_> = BatchScanner::new(blob.clone()).collect();
        let Ok(Entry::V2(b)) = &entries[1] else {
            panic!()
        };
        assert_eq!(b.as_bytes().as_ptr(), blob[one..].as_ptr());
    }
}
