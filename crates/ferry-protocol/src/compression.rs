//! Compression with Kafka's framing, bounded decompression.
//!
//! | codec | framing Kafka uses | decode here | encode here |
//! |---|---|---|---|
//! | gzip (1) | RFC 1952, possibly several members | `flate2::read::MultiGzDecoder` | `GzEncoder`, level 6 |
//! | snappy (2) | snappy-java "xerial" stream framing; raw snappy also accepted | own xerial parser over `snap::raw` | xerial, 32 KiB chunks |
//! | lz4 (3) | LZ4 frame, independent 64 KiB blocks | `lz4_flex::frame::FrameDecoder` after a header check | `FrameEncoder`, 64 KiB independent blocks |
//! | zstd (4) | zstd frame, usually without a content size | `zstd::stream::read::Decoder` | level 3 |
//!
//! Every decoder writes into an output budget (`limit`): the output grows only as data is
//! actually decoded, and producing more than `limit` bytes is
//! [`CompressionError::OutputLimitExceeded`], never an allocation of a size the input declared.
//! Declared sizes (snappy's preamble, xerial chunk lengths, LZ4 block sizes, zstd content size,
//! gzip `ISIZE`) are checked against the remaining budget and the format's maxima before use.
//!
//! LZ4 encoding uses `lz4_flex`, which has no high-compression mode: Kafka's default LZ4 level 9
//! cannot be reproduced, only its framing (the bytes differ, the format is identical).
//!
//! # References
//! - `clients/src/main/java/org/apache/kafka/common/record/CompressionType.java`,
//!   `.../common/compress/{Gzip,Snappy,Lz4,Zstd}Compression.java`, `Lz4BlockInputStream.java` (apache/kafka)
//! - KIP-57 and KAFKA-1493 (LZ4 frame header checksum), KIP-110 (zstd), KIP-390 (levels)
//! - snappy-java `SnappyOutputStream` / `SnappyCodec` (xerial framing)
//! - LZ4 frame format: <https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md>

use std::fmt;
use std::io::{Read, Write};

/// A record-batch compression codec (attribute bits 0–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// No compression (0).
    None,
    /// gzip (1).
    Gzip,
    /// snappy in xerial framing (2).
    Snappy,
    /// LZ4 frame (3).
    Lz4,
    /// zstd (4), Kafka 2.1+ (KIP-110).
    Zstd,
}

impl Codec {
    /// Every codec, in id order.
    pub const ALL: [Self; 5] = [Self::None, Self::Gzip, Self::Snappy, Self::Lz4, Self::Zstd];

    /// The codec with Kafka id `id` (0–4), if any.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(Self::None),
            1 => Some(Self::Gzip),
            2 => Some(Self::Snappy),
            3 => Some(Self::Lz4),
            4 => Some(Self::Zstd),
            _ => None,
        }
    }

    /// Kafka's id for this codec.
    pub fn id(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// Kafka's name for this codec (`compression.type` values).
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A compression or decompression failure.
///
/// `Corrupt` and `Unsupported` are the source's fault (bad or foreign bytes);
/// `OutputLimitExceeded` means the configured budget is smaller than the data (a policy
/// decision: raise the limit or skip the batch); `Encode` is a local encoder failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompressionError {
    /// Decompressing would produce more than the configured budget.
    #[error("{codec} output exceeds the limit of {limit} bytes")]
    OutputLimitExceeded {
        /// The codec.
        codec: Codec,
        /// The configured output budget.
        limit: usize,
    },
    /// The compressed bytes are invalid.
    #[error("corrupt {codec} data: {reason}")]
    Corrupt {
        /// The codec.
        codec: Codec,
        /// What the decoder reported.
        reason: String,
    },
    /// The stream uses a feature Kafka does not write and its reader rejects.
    #[error("unsupported {codec} framing: {reason}")]
    Unsupported {
        /// The codec.
        codec: Codec,
        /// Which feature.
        reason: &'static str,
    },
    /// The encoder failed.
    #[error("{codec} encoder failed: {reason}")]
    Encode {
        /// The codec.
        codec: Codec,
        /// What the encoder reported.
        reason: String,
    },
}

impl CompressionError {
    /// True when the failure is only the configured output budget, not bad data.
    pub fn is_limit(&self) -> bool {
        matches!(self, Self::OutputLimitExceeded { .. })
    }
}

fn corrupt(codec: Codec, e: impl fmt::Display) -> CompressionError {
    CompressionError::Corrupt {
        codec,
        reason: e.to_string(),
    }
}

fn encode_err(codec: Codec, e: impl fmt::Display) -> CompressionError {
    CompressionError::Encode {
        codec,
        reason: e.to_string(),
    }
}

/// gzip level Kafka uses by default (deflate's default).
pub const GZIP_DEFAULT_LEVEL: u32 = 6;
/// zstd level Kafka uses by default.
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;
/// Input chunk size of snappy-java's `SnappyOutputStream` (xerial framing).
pub const XERIAL_CHUNK: usize = 32 * 1024;
/// zstd window limit (log2) for decoding: libzstd's default, 128 MiB.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// The 8-byte magic that opens a xerial snappy stream, followed by two `int32` versions.
pub const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;

/// The LZ4 frame magic `0x184D2204` as it appears on the wire (little-endian).
pub const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// Decompresses `input` (one Kafka compressed stream) into at most `limit` bytes.
///
/// `Codec::None` copies the input (subject to the same limit).
pub fn decompress(codec: Codec, input: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
    match codec {
        Codec::None => {
            if input.len() > limit {
                return Err(CompressionError::OutputLimitExceeded { codec, limit });
            }
            Ok(input.to_vec())
        }
        Codec::Gzip => read_bounded(codec, flate2::read::MultiGzDecoder::new(input), limit),
        Codec::Snappy => decompress_snappy(input, limit),
        Codec::Lz4 => {
            check_lz4_header(input)?;
            read_bounded(codec, lz4_flex::frame::FrameDecoder::new(input), limit)
        }
        Codec::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(input).map_err(|e| corrupt(codec, e))?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| corrupt(codec, e))?;
            read_bounded(codec, decoder, limit)
        }
    }
}

/// Decompresses the LZ4 value of a magic-0 wrapper message.
///
/// Kafka 0.8/0.9 computed the frame header checksum over the magic bytes too (KAFKA-1493), and
/// Kafka's reader skips the check for magic 0 (KIP-57). The header checksum byte is therefore
/// replaced by the correct one before the standard decoder sees it.
pub fn decompress_lz4_magic0(input: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
    let hc_at = check_lz4_header(input)?;
    let mut fixed = input.to_vec();
    let descriptor = fixed.get(4..hc_at).unwrap_or(&[]);
    let hc = lz4_header_checksum(descriptor);
    if let Some(b) = fixed.get_mut(hc_at) {
        *b = hc;
    }
    read_bounded(
        Codec::Lz4,
        lz4_flex::frame::FrameDecoder::new(fixed.as_slice()),
        limit,
    )
}

fn read_bounded<R: Read>(
    codec: Codec,
    reader: R,
    limit: usize,
) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(codec, e))?;
    if out.len() > limit {
        return Err(CompressionError::OutputLimitExceeded { codec, limit });
    }
    Ok(out)
}

/// Checks an LZ4 frame header against what Kafka's `Lz4BlockInputStream` accepts and returns the
/// index of the header-checksum byte. The checksum itself is left to the decoder (or skipped
/// for magic 0).
fn check_lz4_header(input: &[u8]) -> Result<usize, CompressionError> {
    let codec = Codec::Lz4;
    let unsupported = |reason| CompressionError::Unsupported { codec, reason };
    if input.get(0..4) != Some(&LZ4_MAGIC[..]) {
        return Err(corrupt(codec, "missing LZ4 frame magic"));
    }
    let (Some(&flg), Some(&bd)) = (input.get(4), input.get(5)) else {
        return Err(corrupt(codec, "truncated LZ4 frame header"));
    };
    if flg >> 6 != 1 {
        return Err(unsupported("LZ4 frame version is not 01"));
    }
    if flg & 0x20 == 0 {
        return Err(unsupported(
            "dependent LZ4 blocks (Kafka requires independent blocks)",
        ));
    }
    if flg & 0x03 != 0 || bd & 0x8f != 0 {
        return Err(unsupported(
            "reserved LZ4 header bits set, or a dictionary id",
        ));
    }
    let block = (bd >> 4) & 0x07;
    if !(4..=7).contains(&block) {
        return Err(unsupported("LZ4 block size outside 64 KiB..4 MiB"));
    }
    let mut hc_at = 6;
    if flg & 0x08 != 0 {
        hc_at += 8; // content size: informational only, never used to allocate
    }
    if input.len() <= hc_at {
        return Err(corrupt(codec, "truncated LZ4 frame header"));
    }
    Ok(hc_at)
}

/// The LZ4 frame header checksum: `(xxh32(descriptor, seed 0) >> 8) & 0xff`.
pub fn lz4_header_checksum(descriptor: &[u8]) -> u8 {
    ((xxh32(descriptor, 0) >> 8) & 0xff) as u8
}

/// xxHash32 of an input shorter than 16 bytes (an LZ4 frame descriptor is at most 15), which
/// needs only the tail rounds of the algorithm.
fn xxh32(input: &[u8], seed: u32) -> u32 {
    const P1: u32 = 0x9E37_79B1;
    const P2: u32 = 0x85EB_CA77;
    const P3: u32 = 0xC2B2_AE3D;
    const P4: u32 = 0x27D4_EB2F;
    const P5: u32 = 0x1656_67B1;
    debug_assert!(input.len() < 16);
    let mut h = seed.wrapping_add(P5).wrapping_add(input.len() as u32);
    let mut chunks = input.chunks_exact(4);
    for c in &mut chunks {
        let mut w = [0u8; 4];
        w.copy_from_slice(c);
        h = h.wrapping_add(u32::from_le_bytes(w).wrapping_mul(P3));
        h = h.rotate_left(17).wrapping_mul(P4);
    }
    for &b in chunks.remainder() {
        h = h.wrapping_add(u32::from(b).wrapping_mul(P5));
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^= h >> 16;
    h
}

fn decompress_snappy(input: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
    let codec = Codec::Snappy;
    let mut out = Vec::new();
    if input.len() >= XERIAL_HEADER_LEN && input.get(..8) == Some(&XERIAL_MAGIC[..]) {
        // Versions (bytes 8..16) are not checked: snappy-java is lenient about them too.
        let mut rest = input.get(XERIAL_HEADER_LEN..).unwrap_or(&[]);
        while !rest.is_empty() {
            let Some((len_bytes, tail)) = rest.split_first_chunk::<4>() else {
                return Err(corrupt(codec, "truncated xerial chunk length"));
            };
            let len = u32::from_be_bytes(*len_bytes) as usize;
            let Some((chunk, tail)) = tail.split_at_checked(len) else {
                return Err(corrupt(
                    codec,
                    "xerial chunk longer than the remaining input",
                ));
            };
            snappy_raw_into(chunk, &mut out, limit)?;
            rest = tail;
        }
    } else {
        snappy_raw_into(input, &mut out, limit)?;
    }
    Ok(out)
}

fn snappy_raw_into(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), CompressionError> {
    let codec = Codec::Snappy;
    let n = snap::raw::decompress_len(block).map_err(|e| corrupt(codec, e))?;
    let start = out.len();
    if n > limit.saturating_sub(start) {
        return Err(CompressionError::OutputLimitExceeded { codec, limit });
    }
    out.resize(start + n, 0);
    let dst = out.get_mut(start..).unwrap_or(&mut []);
    let written = snap::raw::Decoder::new()
        .decompress(block, dst)
        .map_err(|e| corrupt(codec, e))?;
    out.truncate(start + written);
    Ok(())
}

/// Compresses `input` with Kafka's framing and default level, appending to `out`.
///
/// `Codec::None` appends the input unchanged.
pub fn compress(codec: Codec, input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
    match codec {
        Codec::None => out.extend_from_slice(input),
        Codec::Gzip => {
            let mut enc =
                flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_DEFAULT_LEVEL));
            enc.write_all(input).map_err(|e| encode_err(codec, e))?;
            enc.finish().map_err(|e| encode_err(codec, e))?;
        }
        Codec::Snappy => {
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for chunk in input.chunks(XERIAL_CHUNK) {
                let len_at = out.len();
                out.extend_from_slice(&[0; 4]);
                let start = out.len();
                out.resize(start + snap::raw::max_compress_len(chunk.len()), 0);
                let dst = out.get_mut(start..).unwrap_or(&mut []);
                let n = enc.compress(chunk, dst).map_err(|e| encode_err(codec, e))?;
                out.truncate(start + n);
                let len = u32::try_from(n).map_err(|e| encode_err(codec, e))?;
                if let Some(slot) = out.get_mut(len_at..len_at + 4) {
                    slot.copy_from_slice(&len.to_be_bytes());
                }
            }
        }
        Codec::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent)
                .block_checksums(false)
                .content_checksum(false)
                .content_size(None);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
            enc.write_all(input).map_err(|e| encode_err(codec, e))?;
            enc.finish().map_err(|e| encode_err(codec, e))?;
        }
        Codec::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_DEFAULT_LEVEL)
                .map_err(|e| encode_err(codec, e))?;
            enc.write_all(input).map_err(|e| encode_err(codec, e))?;
            enc.finish().map_err(|e| encode_err(codec, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMIT: usize = 1 << 20;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ (i / 7) as u8).collect()
    }

    #[test]
    fn roundtrip_every_codec() {
        for codec in Codec::ALL {
            for n in [0usize, 1, 100, 70_000, 200_000] {
                let data = sample(n);
                let mut z = Vec::new();
                compress(codec, &data, &mut z).unwrap();
                let back = decompress(codec, &z, LIMIT).unwrap();
                assert_eq!(back, data, "{codec} n={n}");
            }
        }
    }

    #[test]
    fn lz4_header_matches_kafka() {
        let mut z = Vec::new();
        compress(Codec::Lz4, b"hello", &mut z).unwrap();
        // Kafka's v1/v2 LZ4 payloads start 04 22 4D 18 60 40 82 (kafka-wire.md §6.4).
        assert_eq!(&z[..7], &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82]);
        assert_eq!(lz4_header_checksum(&[0x60, 0x40]), 0x82);
        // The broken magic-0 checksum covers the magic too and gives 0x1A.
        assert_eq!(
            lz4_header_checksum(&[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40]),
            0x1a
        );
    }

    #[test]
    fn lz4_magic0_checksum_quirk() {
        let data = sample(1000);
        let mut z = Vec::new();
        compress(Codec::Lz4, &data, &mut z).unwrap();
        z[6] = 0x1a; // what a Java client writes inside a magic-0 wrapper
        let err = decompress(Codec::Lz4, &z, LIMIT).unwrap_err();
        assert!(matches!(err, CompressionError::Corrupt { .. }), "{err}");
        assert_eq!(decompress_lz4_magic0(&z, LIMIT).unwrap(), data);
    }

    #[test]
    fn lz4_rejects_dependent_blocks_and_big_blocks() {
        let mut z = Vec::new();
        compress(Codec::Lz4, b"abc", &mut z).unwrap();
        let mut dep = z.clone();
        dep[4] &= !0x20;
        assert!(matches!(
            decompress(Codec::Lz4, &dep, LIMIT),
            Err(CompressionError::Unsupported { .. })
        ));
        let mut big = z.clone();
        big[5] = 0x00; // block size id 0
        assert!(matches!(
            decompress(Codec::Lz4, &big, LIMIT),
            Err(CompressionError::Unsupported { .. })
        ));
    }

    #[test]
    fn xerial_header_and_raw_fallback() {
        let data = sample(100_000);
        let mut z = Vec::new();
        compress(Codec::Snappy, &data, &mut z).unwrap();
        assert_eq!(&z[..16], b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01");
        // 100 000 bytes in 32 KiB chunks: 4 chunks.
        let mut chunks = 0;
        let mut pos = 16;
        while pos < z.len() {
            let len = u32::from_be_bytes(z[pos..pos + 4].try_into().unwrap()) as usize;
            pos += 4 + len;
            chunks += 1;
        }
        assert_eq!(chunks, 4);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Codec::Snappy, &raw, LIMIT).unwrap(), data);
    }

    #[test]
    fn zstd_without_content_size() {
        let data = sample(50_000);
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_contentsize(false).unwrap();
        enc.write_all(&data).unwrap();
        let z = enc.finish().unwrap();
        assert_eq!(&z[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(decompress(Codec::Zstd, &z, LIMIT).unwrap(), data);
        assert!(decompress(Codec::Zstd, &z, 49_999).unwrap_err().is_limit());
    }

    #[test]
    fn bombs_hit_the_limit_not_the_allocator() {
        let zeros = vec![0u8; 4 << 20];
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let mut z = Vec::new();
            compress(codec, &zeros, &mut z).unwrap();
            let err = decompress(codec, &z, 64 * 1024).unwrap_err();
            assert_eq!(
                err,
                CompressionError::OutputLimitExceeded {
                    codec,
                    limit: 64 * 1024
                }
            );
            // Exactly at the limit is fine.
            assert_eq!(decompress(codec, &z, 4 << 20).unwrap().len(), 4 << 20);
        }
        // A raw snappy preamble declaring 4 GiB with no data behind it.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(
            decompress(Codec::Snappy, &bomb, LIMIT)
                .unwrap_err()
                .is_limit()
        );
        // A xerial chunk length pointing far past the input.
        let mut x = Vec::from(XERIAL_MAGIC);
        x.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 1, 2]);
        assert!(matches!(
            decompress(Codec::Snappy, &x, LIMIT),
            Err(CompressionError::Corrupt { .. })
        ));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let err = decompress(codec, b"definitely not compressed", LIMIT).unwrap_err();
            assert!(
                matches!(err, CompressionError::Corrupt { .. }),
                "{codec}: {err}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn roundtrip_any(data in proptest::collection::vec(any::<u8>(), 0..5000), id in 0u8..5) {
            let codec = Codec::from_id(id).unwrap();
            let mut z = Vec::new();
            compress(codec, &data, &mut z).unwrap();
            prop_assert_eq!(decompress(codec, &z, LIMIT).unwrap(), data);
        }

        #[test]
        fn decompress_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256), id in 0u8..5) {
            let codec = Codec::from_id(id).unwrap();
            let _ = decompress(codec, &data, 4096);
            let _ = decompress_lz4_magic0(&data, 4096);
        }
    }
}
