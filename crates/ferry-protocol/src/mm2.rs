//! MirrorMaker 2 internal record formats: offset syncs, checkpoints, heartbeats.
//!
//! MM2 writes these with Kafka's protocol `Schema`/`Struct` types: big-endian `INT16`, `INT32`,
//! `INT64`, and `STRING` = `INT16` length (0..=32767, not nullable) + UTF-8 bytes; fields in
//! declaration order, no tags. Readers read the declared fields and ignore trailing bytes, as
//! MM2's `Schema.read` does. ferry writes the records byte for byte as MM2 does, so Kafka's
//! tooling (`RemoteClusterUtils`, `MirrorClient`, the console formatters) reads them.
//!
//! | record | key | value |
//! |---|---|---|
//! | offset sync | `topic STRING, partition INT32` | `upstreamOffset INT64, offset INT64` |
//! | checkpoint | `group STRING, topic STRING, partition INT32` | `version INT16 = 0, upstreamOffset INT64, offset INT64, metadata STRING` |
//! | heartbeat | `sourceClusterAlias STRING, targetClusterAlias STRING` | `version INT16 = 0, timestamp INT64` |
//!
//! # References
//! - `connect/mirror/src/main/java/org/apache/kafka/connect/mirror/OffsetSync.java`
//! - `connect/mirror-client/src/main/java/org/apache/kafka/connect/mirror/{Checkpoint,Heartbeat}.java`
//! - `clients/src/main/java/org/apache/kafka/common/protocol/types/Type.java` (`STRING`)
//! - KIP-382 (MirrorMaker 2), KIP-597 (console formatters); `mm2-compat.md` §5

use crate::batch::{BatchErrorKind, DataError};
use crate::varint::{ReadError, ReadErrorKind, Reader};

/// Longest `STRING` the protocol type allows.
pub const MAX_STRING_LEN: usize = i16::MAX as usize;

/// The only value-format version MM2 defines for checkpoints and heartbeats.
pub const VERSION: i16 = 0;

fn put_string(out: &mut Vec<u8>, s: &str) -> Result<(), DataError> {
    let len = i16::try_from(s.len()).map_err(|_| DataError::Batch {
        position: 0,
        kind: BatchErrorKind::Unencodable {
            reason: "MM2 string longer than 32767 bytes",
        },
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn read_string(r: &mut Reader<'_>, field: &'static str) -> Result<String, ReadError> {
    let at = r.position();
    let len = r.i16(field)?;
    let n = usize::try_from(len).map_err(|_| ReadError {
        position: at,
        field,
        kind: ReadErrorKind::InvalidLength {
            length: i64::from(len),
        },
    })?;
    let bytes = r.take(n, field)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| ReadError {
        position: at + 2,
        field,
        kind: ReadErrorKind::InvalidUtf8,
    })
}

fn read_version(r: &mut Reader<'_>) -> Result<(), ReadError> {
    let at = r.position();
    let version = r.i16("version")?;
    if version != VERSION {
        return Err(ReadError {
            position: at,
            field: "version",
            kind: ReadErrorKind::OutOfRange {
                value: i64::from(version),
            },
        });
    }
    Ok(())
}

fn mm2_err(record: &'static str, part: &'static str) -> impl Fn(ReadError) -> DataError {
    move |source| DataError::Mm2 {
        record,
        part,
        source,
    }
}

/// An offset-sync record (`mm2-offset-syncs.<cluster>.internal`): the upstream record at
/// `upstream_offset` was written downstream at `downstream_offset`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OffsetSync {
    /// Upstream topic name (not renamed).
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Upstream offset.
    pub upstream_offset: i64,
    /// Downstream offset.
    pub downstream_offset: i64,
}

impl OffsetSync {
    /// The record key.
    pub fn encode_key(&self) -> Result<Vec<u8>, DataError> {
        let mut out = Vec::with_capacity(6 + self.topic.len());
        put_string(&mut out, &self.topic)?;
        out.extend_from_slice(&self.partition.to_be_bytes());
        Ok(out)
    }

    /// The record value.
    pub fn encode_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.upstream_offset.to_be_bytes());
        out.extend_from_slice(&self.downstream_offset.to_be_bytes());
        out
    }

    /// Decodes a record.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DataError> {
        let mut k = Reader::new(key);
        let err = mm2_err("offset-sync", "key");
        let topic = read_string(&mut k, "topic").map_err(&err)?;
        let partition = k.i32("partition").map_err(&err)?;
        let mut v = Reader::new(value);
        let err = mm2_err("offset-sync", "value");
        let upstream_offset = v.i64("upstreamOffset").map_err(&err)?;
        let downstream_offset = v.i64("offset").map_err(&err)?;
        Ok(Self {
            topic,
            partition,
            upstream_offset,
            downstream_offset,
        })
    }
}

/// A checkpoint record (`<source>.checkpoints.internal` on the target).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// Consumer group id.
    pub group: String,
    /// Downstream (renamed) topic name.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The group's upstream committed offset.
    pub upstream_offset: i64,
    /// The translated downstream offset.
    pub downstream_offset: i64,
    /// The upstream commit metadata (`""` when absent).
    pub metadata: String,
}

impl Checkpoint {
    /// The record key.
    pub fn encode_key(&self) -> Result<Vec<u8>, DataError> {
        let mut out = Vec::with_capacity(8 + self.group.len() + self.topic.len());
        put_string(&mut out, &self.group)?;
        put_string(&mut out, &self.topic)?;
        out.extend_from_slice(&self.partition.to_be_bytes());
        Ok(out)
    }

    /// The record value.
    pub fn encode_value(&self) -> Result<Vec<u8>, DataError> {
        let mut out = Vec::with_capacity(20 + self.metadata.len());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.upstream_offset.to_be_bytes());
        out.extend_from_slice(&self.downstream_offset.to_be_bytes());
        put_string(&mut out, &self.metadata)?;
        Ok(out)
    }

    /// Decodes a record; the value version must be 0.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DataError> {
        let mut k = Reader::new(key);
        let err = mm2_err("checkpoint", "key");
        let group = read_string(&mut k, "group").map_err(&err)?;
        let topic = read_string(&mut k, "topic").map_err(&err)?;
        let partition = k.i32("partition").map_err(&err)?;
        let mut v = Reader::new(value);
        let err = mm2_err("checkpoint", "value");
        read_version(&mut v).map_err(&err)?;
        let upstream_offset = v.i64("upstreamOffset").map_err(&err)?;
        let downstream_offset = v.i64("offset").map_err(&err)?;
        let metadata = read_string(&mut v, "metadata").map_err(&err)?;
        Ok(Self {
            group,
            topic,
            partition,
            upstream_offset,
            downstream_offset,
            metadata,
        })
    }
}

/// A heartbeat record (`heartbeats` on the target of each flow).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    /// Source cluster alias.
    pub source_cluster_alias: String,
    /// Target cluster alias.
    pub target_cluster_alias: String,
    /// Wall-clock time in epoch milliseconds (an argument: this crate reads no clock).
    pub timestamp: i64,
}

impl Heartbeat {
    /// The record key.
    pub fn encode_key(&self) -> Result<Vec<u8>, DataError> {
        let mut out = Vec::with_capacity(
            4 + self.source_cluster_alias.len() + self.target_cluster_alias.len(),
        );
        put_string(&mut out, &self.source_cluster_alias)?;
        put_string(&mut out, &self.target_cluster_alias)?;
        Ok(out)
    }

    /// The record value.
    pub fn encode_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out
    }

    /// Decodes a record; the value version must be 0.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DataError> {
        let mut k = Reader::new(key);
        let err = mm2_err("heartbeat", "key");
        let source_cluster_alias = read_string(&mut k, "sourceClusterAlias").map_err(&err)?;
        let target_cluster_alias = read_string(&mut k, "targetClusterAlias").map_err(&err)?;
        let mut v = Reader::new(value);
        let err = mm2_err("heartbeat", "value");
        read_version(&mut v).map_err(&err)?;
        let timestamp = v.i64("timestamp").map_err(&err)?;
        Ok(Self {
            source_cluster_alias,
            target_cluster_alias,
            timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .filter(|t| *t != "|")
            .map(|t| u8::from_str_radix(t, 16).unwrap())
            .collect()
    }

    // Golden vectors from mm2-compat.md §5.2–§5.4.
    #[test]
    fn offset_sync_golden() {
        let s = OffsetSync {
            topic: "orders".into(),
            partition: 3,
            upstream_offset: 1000,
            downstream_offset: 990,
        };
        let key = hex("00 06 6f 72 64 65 72 73 00 00 00 03");
        let value = hex("00 00 00 00 00 00 03 e8 00 00 00 00 00 00 03 de");
        assert_eq!(s.encode_key().unwrap(), key);
        assert_eq!(s.encode_value(), value);
        assert_eq!(OffsetSync::decode(&key, &value).unwrap(), s);
    }

    #[test]
    fn checkpoint_golden() {
        let c = Checkpoint {
            group: "g1".into(),
            topic: "A.orders".into(),
            partition: 3,
            upstream_offset: 1000,
            downstream_offset: 991,
            metadata: String::new(),
        };
        let key = hex("00 02 67 31 00 08 41 2e 6f 72 64 65 72 73 00 00 00 03");
        let value = hex("00 00 | 00 00 00 00 00 00 03 e8 | 00 00 00 00 00 00 03 df | 00 00");
        assert_eq!(key.len(), 18);
        assert_eq!(value.len(), 20);
        assert_eq!(c.encode_key().unwrap(), key);
        assert_eq!(c.encode_value().unwrap(), value);
        assert_eq!(Checkpoint::decode(&key, &value).unwrap(), c);
    }

    #[test]
    fn heartbeat_golden() {
        let h = Heartbeat {
            source_cluster_alias: "A".into(),
            target_cluster_alias: "B".into(),
            timestamp: 1_700_000_000_000,
        };
        let key = hex("00 01 41 00 01 42");
        let value = hex("00 00 00 00 01 8b cf e5 68 00");
        assert_eq!(h.encode_key().unwrap(), key);
        assert_eq!(h.encode_value(), value);
        assert_eq!(Heartbeat::decode(&key, &value).unwrap(), h);
    }

    #[test]
    fn bad_inputs_are_typed() {
        let value = hex("00 01 00 00 00 00 01 8b cf e5 68 00");
        let err = Heartbeat::decode(&hex("00 01 41 00 01 42"), &value).unwrap_err();
        let DataError::Mm2 {
            record,
            part,
            source,
        } = err
        else {
            panic!()
        };
        assert_eq!((record, part), ("heartbeat", "value"));
        assert_eq!(source.kind, ReadErrorKind::OutOfRange { value: 1 });
        // Negative string length.
        let err = OffsetSync::decode(&hex("ff ff 00 00 00 03"), &[0; 16]).unwrap_err();
        let DataError::Mm2 { source, .. } = err else {
            panic!()
        };
        assert_eq!(source.kind, ReadErrorKind::InvalidLength { length: -1 });
        // Truncated key.
        let err = Checkpoint::decode(&hex("00 05 61 62"), &[]).unwrap_err();
        let DataError::Mm2 { source, .. } = err else {
            panic!()
        };
        assert!(matches!(
            source.kind,
            ReadErrorKind::UnexpectedEnd { needed: 5, .. }
        ));
        // Invalid UTF-8.
        let err = OffsetSync::decode(&hex("00 01 ff 00 00 00 00"), &[0; 16]).unwrap_err();
        let DataError::Mm2 { source, .. } = err else {
            panic!()
        };
        assert_eq!(source.kind, ReadErrorKind::InvalidUtf8);
        // Trailing bytes are ignored, as MM2's Schema.read does.
        let mut v = hex("00 00 00 00 00 00 03 e8 00 00 00 00 00 00 03 de");
        v.push(0xaa);
        assert!(OffsetSync::decode(&hex("00 00 00 00 00 00"), &v).is_ok());
        // Strings above 32767 bytes cannot be encoded.
        let long = OffsetSync {
            topic: "x".repeat(40_000),
            partition: 0,
            upstream_offset: 0,
            downstream_offset: 0,
        };
        assert!(long.encode_key().unwrap_err().is_unencodable());
    }

    proptest! {
        #[test]
        fn roundtrips(a in "\\PC{0,40}", b in "\\PC{0,40}", m in "\\PC{0,40}", p in any::<i32>(), u in any::<i64>(), d in any::<i64>()) {
            let s = OffsetSync { topic: a.clone(), partition: p, upstream_offset: u, downstream_offset: d };
            prop_assert_eq!(OffsetSync::decode(&s.encode_key().unwrap(), &s.encode_value()).unwrap(), s);
            let c = Checkpoint { group: a.clone(), topic: b.clone(), partition: p, upstream_offset: u, downstream_offset: d, metadata: m };
            prop_assert_eq!(Checkpoint::decode(&c.encode_key().unwrap(), &c.encode_value().unwrap()).unwrap(), c);
            let h = Heartbeat { source_cluster_alias: a, target_cluster_alias: b, timestamp: u };
            prop_assert_eq!(Heartbeat::decode(&h.encode_key().unwrap(), &h.encode_value()).unwrap(), h);
        }

        #[test]
        fn decode_never_panics(k in proptest::collection::vec(any::<u8>(), 0..40), v in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = OffsetSync::decode(&k, &v);
            let _ = Checkpoint::decode(&k, &v);
            let _ = Heartbeat::decode(&k, &v);
        }
    }
}
