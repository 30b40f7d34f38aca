//! Zig-zag varints and varlongs, bounded readers.
//!
//! Kafka's v2 records use protobuf-style zig-zag varints (`ByteUtils.writeVarint`,
//! `ByteUtils.readVarint`): at most 5 bytes for an `int32` and 10 bytes for an `int64`. The
//! decoder follows Kafka: a continuation bit on the last allowed byte is an error; surplus high
//! bits in the last byte are ignored, as `ByteUtils` does.
//!
//! [`Reader`] is the bounded cursor every data-path parser in this crate uses: every read is checked
//! against the bytes that remain, nested structures are read through [`Reader::sub`] (bounded to
//! their declared length) and [`Reader::finish`] turns trailing bytes into an error.
//!
//! # References
//! - `clients/src/main/java/org/apache/kafka/common/utils/ByteUtils.java` (apache/kafka)
//! - <https://protobuf.dev/programming-guides/encoding/#signed-ints>

use std::ops::Range;

use bytes::BufMut;

/// What went wrong while reading a primitive field, and where.
///
/// `position` counts bytes from the start of the buffer the outermost [`Reader`] was built over
/// (see [`Reader::with_base`]). The fault is always in the input bytes, never in ferry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} while reading {field} at byte {position}")]
#[non_exhaustive]
pub struct ReadError {
    /// Byte position of the field that failed.
    pub position: usize,
    /// Name of the field being read (for example `"record.keyLength"`).
    pub field: &'static str,
    /// What was wrong.
    pub kind: ReadErrorKind,
}

/// The kinds of [`ReadError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// The input ended before the field did.
    #[error("unexpected end of input (needed {needed} bytes, {remaining} left)")]
    UnexpectedEnd {
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A varint (5 bytes max) or varlong (10 bytes max) kept its continuation bit on its last byte.
    #[error("varint longer than {max_bytes} bytes")]
    VarintTooLong {
        /// The maximum encoded size for this type.
        max_bytes: usize,
    },
    /// A length field held a value that is not allowed (for example below −1).
    #[error("invalid length {length}")]
    InvalidLength {
        /// The decoded length.
        length: i64,
    },
    /// Bytes were left over after a structure that must fill its bounds exactly.
    #[error("{remaining} trailing bytes")]
    TrailingBytes {
        /// Number of unread bytes.
        remaining: usize,
    },
    /// A field held a value outside its allowed range (for example an unknown version).
    #[error("value {value} out of range")]
    OutOfRange {
        /// The decoded value.
        value: i64,
    },
    /// A string field was not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
}

/// Maximum encoded size of a varint (`int32`).
pub const MAX_VARINT_LEN: usize = 5;
/// Maximum encoded size of a varlong (`int64`).
pub const MAX_VARLONG_LEN: usize = 10;

/// Encoded size of `value` as a zig-zag varint.
pub fn varint_len(value: i32) -> usize {
    varlong_len(i64::from(value))
}

/// Encoded size of `value` as a zig-zag varlong.
pub fn varlong_len(value: i64) -> usize {
    let mut v = zigzag64(value);
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn zigzag64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `value` as a zig-zag varint.
pub fn put_varint<B: BufMut + ?Sized>(out: &mut B, value: i32) {
    let v = ((value << 1) ^ (value >> 31)) as u32;
    put_unsigned(out, u64::from(v));
}

/// Appends `value` as a zig-zag varlong.
pub fn put_varlong<B: BufMut + ?Sized>(out: &mut B, value: i64) {
    put_unsigned(out, zigzag64(value));
}

fn put_unsigned<B: BufMut + ?Sized>(out: &mut B, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// A bounded cursor over a byte slice.
///
/// Every read checks the remaining length first; nothing allocates.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`; positions count from `buf[0]`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self::with_base(buf, 0)
    }

    /// A reader over `buf`, whose first byte sits at `base` in some enclosing buffer. Positions in
    /// errors and ranges returned by [`Reader::take_range`] are relative to that enclosing buffer.
    pub fn with_base(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Position of the next byte, relative to the enclosing buffer.
    pub fn position(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    fn error(&self, field: &'static str, kind: ReadErrorKind) -> ReadError {
        ReadError {
            position: self.position(),
            field,
            kind,
        }
    }

    /// Reads `n` bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ReadError> {
        let range = self.take_local(n, field)?;
        self.buf.get(range).ok_or_else(|| {
            self.error(
                field,
                ReadErrorKind::UnexpectedEnd {
                    needed: n,
                    remaining: 0,
                },
            )
        })
    }

    fn take_local(&mut self, n: usize, field: &'static str) -> Result<Range<usize>, ReadError> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(self.error(
                field,
                ReadErrorKind::UnexpectedEnd {
                    needed: n,
                    remaining,
                },
            ));
        }
        let start = self.pos;
        self.pos += n;
        Ok(start..start + n)
    }

    /// Consumes `n` bytes and returns their range in the enclosing buffer, so the caller can take
    /// a zero-copy [`bytes::Bytes::slice`] of it.
    pub fn take_range(&mut self, n: usize, field: &'static str) -> Result<Range<usize>, ReadError> {
        let local = self.take_local(n, field)?;
        Ok(self.base + local.start..self.base + local.end)
    }

    /// Splits off a reader over the next `n` bytes and advances past them.
    pub fn sub(&mut self, n: usize, field: &'static str) -> Result<Self, ReadError> {
        let base = self.position();
        let bytes = self.take(n, field)?;
        Ok(Self::with_base(bytes, base))
    }

    /// Fails with [`ReadErrorKind::TrailingBytes`] unless every byte has been read.
    pub fn finish(&self, field: &'static str) -> Result<(), ReadError> {
        match self.remaining() {
            0 => Ok(()),
            remaining => Err(self.error(field, ReadErrorKind::TrailingBytes { remaining })),
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ReadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, ReadError> {
        Ok(u8::from_be_bytes(self.array(field)?))
    }

    /// Reads a signed byte.
    pub fn i8(&mut self, field: &'static str) -> Result<i8, ReadError> {
        Ok(i8::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `int16`.
    pub fn i16(&mut self, field: &'static str) -> Result<i16, ReadError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `int32`.
    pub fn i32(&mut self, field: &'static str) -> Result<i32, ReadError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `uint32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, ReadError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `int64`.
    pub fn i64(&mut self, field: &'static str) -> Result<i64, ReadError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    fn unsigned(&mut self, max_bytes: usize, field: &'static str) -> Result<u64, ReadError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let Some(&b) = self.buf.get(self.pos) else {
                let remaining = self.pos - start;
                self.pos = start;
                return Err(self.error(
                    field,
                    ReadErrorKind::UnexpectedEnd {
                        needed: remaining + 1,
                        remaining,
                    },
                ));
            };
            self.pos += 1;
            // Bits shifted past 64 are dropped, as Kafka's ByteUtils drops them.
            value |= u64::from(b & 0x7f).wrapping_shl(7 * i as u32);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.pos = start;
        Err(self.error(field, ReadErrorKind::VarintTooLong { max_bytes }))
    }

    /// Reads a zig-zag varint (`int32`).
    pub fn varint(&mut self, field: &'static str) -> Result<i32, ReadError> {
        let v = self.unsigned(MAX_VARINT_LEN, field)? as u32;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    /// Reads a zig-zag varlong (`int64`).
    pub fn varlong(&mut self, field: &'static str) -> Result<i64, ReadError> {
        Ok(unzigzag64(self.unsigned(MAX_VARLONG_LEN, field)?))
    }

    /// Reads a varint length that may be −1 (null); any other negative value is an error.
    /// Returns the length of the following bytes, checked against what remains.
    pub fn nullable_varint_len(&mut self, field: &'static str) -> Result<Option<usize>, ReadError> {
        let at = self.position();
        let len = self.varint(field)?;
        self.check_len(i64::from(len), at, field)
    }

    /// Reads an `int32` length that may be −1 (null); see [`Reader::nullable_varint_len`].
    pub fn nullable_i32_len(&mut self, field: &'static str) -> Result<Option<usize>, ReadError> {
        let at = self.position();
        let len = self.i32(field)?;
        self.check_len(i64::from(len), at, field)
    }

    fn check_len(
        &self,
        len: i64,
        at: usize,
        field: &'static str,
    ) -> Result<Option<usize>, ReadError> {
        if len == -1 {
            return Ok(None);
        }
        let invalid = ReadError {
            position: at,
            field,
            kind: ReadErrorKind::InvalidLength { length: len },
        };
        let n = usize::try_from(len).map_err(|_| invalid.clone())?;
        if n > self.remaining() {
            return Err(ReadError {
                position: at,
                field,
                kind: ReadErrorKind::UnexpectedEnd {
                    needed: n,
                    remaining: self.remaining(),
                },
            });
        }
        Ok(Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc32(v: i32) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn known_encodings() {
        // Zig-zag: 0→0, −1→1, 1→2, −2→3; 300 → 600 → AC 04? 600 = 0b1001011000 → D8 04.
        assert_eq!(enc32(0), [0x00]);
        assert_eq!(enc32(-1), [0x01]);
        assert_eq!(enc32(1), [0x02]);
        assert_eq!(enc32(-2), [0x03]);
        assert_eq!(enc32(300), [0xd8, 0x04]);
        assert_eq!(enc32(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(enc32(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
    }

    #[test]
    fn too_long_varint_is_an_error_not_a_panic() {
        let bytes = [0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        let err = Reader::new(&bytes).varint("x").unwrap_err();
        assert_eq!(err.kind, ReadErrorKind::VarintTooLong { max_bytes: 5 });
        let bytes = [0xff; 11];
        let err = Reader::new(&bytes).varlong("x").unwrap_err();
        assert_eq!(err.kind, ReadErrorKind::VarintTooLong { max_bytes: 10 });
    }

    #[test]
    fn truncated_varint_reports_position() {
        let bytes = [0x00, 0x80, 0x80];
        let mut r = Reader::with_base(&bytes, 100);
        assert_eq!(r.varint("a").unwrap(), 0);
        let err = r.varint("b").unwrap_err();
        assert_eq!(err.position, 101);
        assert_eq!(err.field, "b");
        assert!(matches!(err.kind, ReadErrorKind::UnexpectedEnd { .. }));
    }

    #[test]
    fn lengths_are_checked_against_remaining() {
        let mut out = Vec::new();
        put_varint(&mut out, 1_000_000);
        let err = Reader::new(&out).nullable_varint_len("key").unwrap_err();
        assert!(matches!(
            err.kind,
            ReadErrorKind::UnexpectedEnd {
                needed: 1_000_000,
                ..
            }
        ));
        let mut out = Vec::new();
        put_varint(&mut out, -2);
        let err = Reader::new(&out).nullable_varint_len("key").unwrap_err();
        assert_eq!(err.kind, ReadErrorKind::InvalidLength { length: -2 });
        let mut out = Vec::new();
        put_varint(&mut out, -1);
        assert_eq!(Reader::new(&out).nullable_varint_len("key").unwrap(), None);
    }

    #[test]
    fn sub_reader_is_bounded_and_finish_rejects_trailing() {
        let bytes = [1, 2, 3, 4, 5];
        let mut r = Reader::new(&bytes);
        let mut sub = r.sub(2, "sub").unwrap();
        assert_eq!(sub.position(), 0);
        assert_eq!(sub.u8("a").unwrap(), 1);
        assert!(sub.finish("sub").is_err());
        assert_eq!(sub.u8("b").unwrap(), 2);
        assert!(sub.u8("c").is_err());
        sub.finish("sub").unwrap();
        assert_eq!(r.position(), 2);
        assert_eq!(r.take_range(2, "r").unwrap(), 2..4);
    }

    proptest! {
        #[test]
        fn varint_roundtrip(v in any::<i32>()) {
            let out = enc32(v);
            prop_assert_eq!(out.len(), varint_len(v));
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.varint("v").unwrap(), v);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn varlong_roundtrip(v in any::<i64>()) {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            prop_assert_eq!(out.len(), varlong_len(v));
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.varlong("v").unwrap(), v);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut r = Reader::new(&bytes);
            while !r.is_empty() {
                if r.varlong("v").is_err() { break; }
            }
        }
    }
}
