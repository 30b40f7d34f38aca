//! Size-prefixed frame codec with a maximum frame size; request and response headers.
//!
//! Every Kafka request and response travels as `int32 size` followed by `size` bytes.
//! [`FrameDecoder::decode`] is a pure function over a [`BytesMut`] read buffer, in the shape of
//! tokio-util's `Decoder`: `Ok(None)` means "need more bytes"; a complete frame comes back as a
//! [`Bytes`] split off the buffer without copying, so a Fetch response decoded from it keeps
//! its `records` as slices of the frame (kafka-wire.md §7.2).
//!
//! Requests are encoded with a request header v1 or v2 (per
//! [`ApiKey::request_header_version`]); responses start with a response header v0 or v1 (per
//! [`ApiKey::response_header_version`]; ApiVersions always answers with v0).
//!
//! # References
//! - <https://kafka.apache.org/protocol#protocol_common>
//! - KIP-482 (flexible versions and tagged fields in headers)

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::api::ApiKey;
use crate::error::ProtocolError;

/// Default maximum response frame: 100 MiB, the broker's default `socket.request.max.bytes`
/// and far above any sane `fetch.max.bytes`.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// Length of the size prefix.
pub const SIZE_PREFIX_LEN: usize = 4;

/// Decoder of size-prefixed frames with a maximum frame size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_frame_size: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl FrameDecoder {
    /// A decoder rejecting frames larger than `max_frame_size` bytes (excluding the prefix).
    #[must_use]
    pub const fn new(max_frame_size: usize) -> Self {
        Self { max_frame_size }
    }

    /// The configured maximum.
    #[must_use]
    pub const fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Takes one complete frame (without its size prefix) off the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold a whole frame; in that case it reserves
    /// room for the rest of the frame (never more than the maximum). The size is checked as
    /// soon as the 4-byte prefix is present, so an oversized or negative frame is rejected
    /// before any of its body is buffered.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        let Some(prefix) = buf.get(..SIZE_PREFIX_LEN) else {
            return Ok(None);
        };
        let mut prefix = prefix;
        let size = prefix.get_i32();
        let len = usize::try_from(size).map_err(|_| ProtocolError::NegativeFrameSize { size })?;
        if len > self.max_frame_size {
            return Err(ProtocolError::FrameTooLarge {
                size: u64::from(size.unsigned_abs()),
                max: self.max_frame_size,
            });
        }
        let total = SIZE_PREFIX_LEN.saturating_add(len);
        if buf.len() < total {
            buf.reserve(total.saturating_sub(buf.len()));
            return Ok(None);
        }
        buf.advance(SIZE_PREFIX_LEN);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

/// Appends one size-prefixed request frame to `buf`.
///
/// The header version follows `api_key.request_header_version(version)`. `client_id` is the
/// header's nullable `client_id`.
pub fn encode_request<R: Encodable>(
    buf: &mut BytesMut,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
    request: &R,
) -> Result<(), ProtocolError> {
    let encode_err = |message: String| ProtocolError::Encode {
        api_key,
        version,
        message,
    };
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(|c| StrBytes::from_string(c.to_owned())));
    let header_version = api_key.request_header_version(version);
    // Reserve the whole frame first: a Produce request carries megabytes of records, and
    // growing the buffer while encoding reallocates and copies them several times over (the
    // top allocation cost in ferry's profile under `benches/vs_mm2.rs`). A size that cannot be
    // computed is reported by `encode` below.
    let body_size = request.compute_size(version).unwrap_or(0);
    let header_size = header.compute_size(header_version).unwrap_or(0);
    buf.reserve(
        SIZE_PREFIX_LEN
            .saturating_add(header_size)
            .saturating_add(body_size),
    );
    let start = buf.len();
    buf.put_i32(0);
    header
        .encode(buf, header_version)
        .map_err(|e| encode_err(format!("{e:#}")))?;
    request
        .encode(buf, version)
        .map_err(|e| encode_err(format!("{e:#}")))?;
    let len = buf
        .len()
        .saturating_sub(start)
        .saturating_sub(SIZE_PREFIX_LEN);
    let len = i32::try_from(len).map_err(|_| ProtocolError::Encode {
        api_key,
        version,
        message: format!("request of {len} bytes does not fit a frame"),
    })?;
    if let Some(prefix) = buf.get_mut(start..start.saturating_add(SIZE_PREFIX_LEN)) {
        prefix.copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// Reads the correlation id at the start of a response frame (it opens both header versions).
pub fn peek_correlation_id(frame: &[u8]) -> Result<i32, ProtocolError> {
    let mut head = frame
        .get(..4)
        .ok_or(ProtocolError::FrameTooShort { len: frame.len() })?;
    Ok(head.get_i32())
}

/// Decodes a response frame: header (checking the correlation id), then body, rejecting
/// trailing bytes.
///
/// Decoding from a [`Bytes`] frame keeps `records` fields as zero-copy slices of it.
pub fn decode_response<R: Decodable>(
    mut frame: Bytes,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
) -> Result<R, ProtocolError> {
    let decode_err = |message: String| ProtocolError::Decode {
        api_key,
        version,
        message,
    };
    if frame.len() < 4 {
        return Err(ProtocolError::FrameTooShort { len: frame.len() });
    }
    let header_version = api_key.response_header_version(version);
    let header = ResponseHeader::decode(&mut frame, header_version)
        .map_err(|e| decode_err(format!("{e:#}")))?;
    if header.correlation_id != correlation_id {
        return Err(ProtocolError::CorrelationMismatch {
            expected: correlation_id,
            actual: header.correlation_id,
        });
    }
    let body = R::decode(&mut frame, version).map_err(|e| decode_err(format!("{e:#}")))?;
    if !frame.is_empty() {
        return Err(ProtocolError::TrailingBytes {
            api_key,
            version,
            remaining: frame.len(),
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{
        ApiVersionsRequest, FetchResponse, MetadataRequest, ResponseHeader, TopicName,
        fetch_response::{FetchableTopicResponse, PartitionData},
    };
    use proptest::prelude::*;

    fn frame_of(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    /// A Metadata v12 response whose broker array claims `u32::MAX` entries. kafka-protocol
    /// 0.18 as released presized the vector from that count and the process aborted on a
    /// 400 GB allocation; the patched copy in `vendor/` makes it a decode error.
    #[test]
    fn hostile_array_count_is_an_error_not_an_abort() {
        let frame = Bytes::from_static(&[
            0, 0, 0, 7, // correlation id
            0, // header tagged fields
            0, 0, 0, 0, // throttle_time_ms
            0xff, 0xff, 0xff, 0xff, 0x0f, // brokers: compact array of u32::MAX - 1
        ]);
        let r = decode_response::<kafka_protocol::messages::MetadataResponse>(
            frame,
            ApiKey::Metadata,
            12,
            7,
        );
        assert!(r.is_err());
    }

    #[test]
    fn partial_input_needs_more() {
        let d = FrameDecoder::new(1024);
        let full = frame_of(b"hello world");
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert_eq!(d.decode(&mut buf).unwrap(), None, "cut at {cut}");
            assert_eq!(buf.len(), cut, "nothing consumed on partial input");
        }
        let mut buf = BytesMut::from(&full[..]);
        assert_eq!(
            d.decode(&mut buf).unwrap().unwrap(),
            Bytes::from_static(b"hello world")
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn oversize_and_negative_rejected_on_prefix_alone() {
        let d = FrameDecoder::new(10);
        let mut buf = BytesMut::from(&11i32.to_be_bytes()[..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(ProtocolError::FrameTooLarge { size: 11, max: 10 })
        );
        let mut buf = BytesMut::from(&10i32.to_be_bytes()[..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        let mut buf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(ProtocolError::NegativeFrameSize { size: -1 })
        );
        // A TLS record header read as a size: 0x16030100 is ~369 MB.
        let mut buf = BytesMut::from(&[0x16u8, 0x03, 0x01, 0x00, 0x2a][..]);
        assert!(matches!(
            FrameDecoder::default().decode(&mut buf),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn request_header_versions() {
        // Metadata v9+ is flexible: header v2 (tagged fields), below: header v1.
        for (version, flexible) in [(8i16, false), (12, true)] {
            let mut buf = BytesMut::new();
            encode_request(
                &mut buf,
                ApiKey::Metadata,
                version,
                7,
                Some("ferry"),
                &MetadataRequest::default(),
            )
            .unwrap();
            let frame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
            let mut f = frame.clone();
            let header = RequestHeader::decode(&mut f, if flexible { 2 } else { 1 }).unwrap();
            assert_eq!(header.request_api_key, ApiKey::Metadata as i16);
            assert_eq!(header.request_api_version, version);
            assert_eq!(header.correlation_id, 7);
            assert_eq!(header.client_id.as_deref(), Some("ferry"));
            let body = MetadataRequest::decode(&mut f, version).unwrap();
            assert_eq!(body, MetadataRequest::default());
            assert!(f.is_empty());
        }
    }

    #[test]
    fn response_decode_checks_correlation_and_trailing() {
        let mut body = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(3)
            .encode(&mut body, 0)
            .unwrap();
        let mut resp = kafka_protocol::messages::ApiVersionsResponse::default();
        resp.throttle_time_ms = 5;
        resp.encode(&mut body, 3).unwrap();
        let frame = body.clone().freeze();
        let decoded: kafka_protocol::messages::ApiVersionsResponse =
            decode_response(frame.clone(), ApiKey::ApiVersions, 3, 3).unwrap();
        assert_eq!(decoded.throttle_time_ms, 5);
        assert_eq!(peek_correlation_id(&frame).unwrap(), 3);
        assert!(matches!(
            decode_response::<kafka_protocol::messages::ApiVersionsResponse>(
                frame.clone(),
                ApiKey::ApiVersions,
                3,
                4
            ),
            Err(ProtocolError::CorrelationMismatch {
                expected: 4,
                actual: 3
            })
        ));
        body.put_u8(0);
        assert!(matches!(
            decode_response::<kafka_protocol::messages::ApiVersionsResponse>(
                body.freeze(),
                ApiKey::ApiVersions,
                3,
                3
            ),
            Err(ProtocolError::TrailingBytes { remaining: 1, .. })
        ));
        assert!(matches!(
            decode_response::<kafka_protocol::messages::ApiVersionsResponse>(
                Bytes::from_static(&[0, 0]),
                ApiKey::ApiVersions,
                3,
                3
            ),
            Err(ProtocolError::FrameTooShort { len: 2 })
        ));
        // Truncated body: a typed decode error, not a panic.
        assert!(matches!(
            decode_response::<kafka_protocol::messages::ApiVersionsResponse>(
                frame.slice(..6),
                ApiKey::ApiVersions,
                3,
                3
            ),
            Err(ProtocolError::Decode {
                api_key: ApiKey::ApiVersions,
                version: 3,
                ..
            })
        ));
    }

    #[test]
    fn fetch_records_are_slices_of_the_frame() {
        let records = Bytes::from_static(b"0123456789abcdef-pretend-batch");
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(9)
            .encode(&mut buf, 1)
            .unwrap();
        let resp = FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![
                    PartitionData::default().with_records(Some(records.clone())),
                ]),
        ]);
        resp.encode(&mut buf, 12).unwrap();
        let frame = buf.freeze();
        let range = frame.as_ptr_range();
        let decoded: FetchResponse = decode_response(frame.clone(), ApiKey::Fetch, 12, 9).unwrap();
        let got = decoded.responses[0].partitions[0].records.clone().unwrap();
        assert_eq!(got, records);
        assert!(
            range.contains(&got.as_ptr()),
            "records must point into the frame"
        );
    }

    #[test]
    fn api_versions_request_round_trip() {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("ferry"))
            .with_client_software_version(StrBytes::from_static_str("0.1.0"));
        let mut buf = BytesMut::new();
        encode_request(&mut buf, ApiKey::ApiVersions, 3, 1, None, &req).unwrap();
        let mut frame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
        let header = RequestHeader::decode(&mut frame, 2).unwrap();
        assert_eq!(header.client_id, None);
        assert_eq!(ApiVersionsRequest::decode(&mut frame, 3).unwrap(), req);
    }

    proptest! {
        #[test]
        fn frames_round_trip_in_any_chunking(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            chunk in 1usize..64,
        ) {
            let mut wire = Vec::new();
            for b in &bodies {
                wire.extend(frame_of(b));
            }
            let d = FrameDecoder::new(300);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(f) = d.decode(&mut buf).unwrap() {
                    out.push(f.to_vec());
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(out, bodies);
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), max in 0usize..100) {
            let d = FrameDecoder::new(max);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(f)) = d.decode(&mut buf) {
                prop_assert!(f.len() <= max);
            }
        }

        #[test]
        fn request_encoding_round_trips(corr in any::<i32>(), version in 1i16..=13, client in proptest::option::of("[a-z]{0,12}")) {
            let req = MetadataRequest::default().with_allow_auto_topic_creation(version < 4 || corr % 2 == 0);
            let mut buf = BytesMut::new();
            encode_request(&mut buf, ApiKey::Metadata, version, corr, client.as_deref(), &req).unwrap();
            let expected_len = buf.len() - 4;
            let mut frame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
            prop_assert_eq!(frame.len(), expected_len);
            let header = RequestHeader::decode(&mut frame, ApiKey::Metadata.request_header_version(version)).unwrap();
            prop_assert_eq!(header.correlation_id, corr);
            prop_assert_eq!(header.client_id.as_deref(), client.as_deref());
            prop_assert_eq!(MetadataRequest::decode(&mut frame, version).unwrap(), req);
            prop_assert!(frame.is_empty());
        }
    }
}
