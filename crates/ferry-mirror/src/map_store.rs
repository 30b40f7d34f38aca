//! Persistent history of the offset maps: a compacted topic on the target that survives
//! restarts, so a lagging group translates exactly after ferry restarts (MM2 loses this history:
//! KAFKA-15905, KAFKA-16622; mm2-compat.md §6.2, §6.5).
//!
//! # Topic and records
//!
//! One single-partition compacted topic per flow on the **target**,
//! `ferry-offset-map<isep><source><isep>internal` ([`store_topic`]): the `<isep>internal` suffix
//! makes every replication policy treat it as internal, so it is never replicated. Two kinds of
//! records, each key distinct so compaction keeps every live one (format version 0, big-endian,
//! strings as `i16` length + UTF-8, like MM2's own internal records):
//!
//! | kind | key | value |
//! |---|---|---|
//! | segment | `v:i16, 0:u8, topic, partition:i32, source_start:i64` | `v:i16, topic id:[u8;16], target_start:i64, len:i64` |
//! | partition | `v:i16, 1:u8, topic, partition:i32` | `v:i16, topic id:[u8;16], floor:i64, processed:i64` |
//!
//! A segment that grows is rewritten under the same key (compaction keeps the last length);
//! a segment that is pruned (wholly below the source log start) or invalidated (the map was
//! restarted after a target truncation or a position reset) gets a tombstone. Memory and topic
//! size grow with segments, never with records.
//!
//! # Ordering and durability
//!
//! The partition record says "this history is complete from `floor` up to `processed`". The
//! acknowledgement task writes the changed segments and partition records, **waits for the
//! target to acknowledge them**, and only then commits progress (`crate::progress`). So for
//! every partition, stored `processed` ≥ committed resume position, and on restart
//! ([`seed`]):
//!
//! - stored `processed` ≥ resume: the history covers everything up to the resume position;
//!   segments past it (written before a crash that lost the progress commit) are cut at the
//!   resume position, since those records are sent again and land elsewhere;
//! - stored `processed` < resume (the store write failed or the store was unreadable while
//!   progress moved on), a different topic id (recreated topic), or segments that do not fit
//!   the target's current end (target truncated or recreated): the history is discarded and the
//!   map restarts at the resume position (its floor), so offsets below it get **no** translation
//!   rather than a wrong one.
//!
//! Coverage records are written only after the segments they vouch for are acknowledged (two
//! writes per progress interval), so a coverage record never claims segments the topic lacks.
//! If the store cannot be read at start (retried for 30 s), the flow runs without it, and if a
//! write fails, progress is still committed (replication must not stop for the sake of
//! history); both are reported as a failed `offset map` step, and the next start finds
//! `processed` < resume and discards: never a wrong translation.
//!
//! # References
//! - `../shared/reference/mm2-compat.md` §6 (what MM2 keeps and loses)
//! - KIP-382 (internal topic naming), KAFKA-13397 (`.internal` suffix = internal)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use ferry_client::Cluster;
use ferry_client::admin::Admin;
use ferry_client::cluster::OffsetSpec;
use ferry_client::fetcher::{FetchConfig, FetchEvent, Fetcher, TopicPartition};
use ferry_client::producer::IdempotentProducer;
use ferry_protocol::batch::{Attributes, BatchScanner, DataError, Entry};
use ferry_protocol::record::{DecodeOptions, DecodedBatch, Record, encode_parts, producer_header};
use uuid::Uuid;

use crate::offset_map::{PartitionOffsetMap, Segment};
use crate::policy::ReplicationPolicy;

/// Format version of keys and values.
const VERSION: i16 = 0;
const KIND_SEGMENT: u8 = 0;
const KIND_PARTITION: u8 = 1;
/// Most records in one written batch.
const MAX_RECORDS_PER_BATCH: usize = 500;
/// How long one store write may wait for its acknowledgement.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest topic name accepted when decoding (Kafka's limit is 249).
const MAX_TOPIC_LEN: usize = 255;

/// The store topic of flow `source -> *` on its target.
pub fn store_topic(policy: &impl ReplicationPolicy, source: &str) -> String {
    let isep = policy.internal_separator();
    format!("ferry-offset-map{isep}{source}{isep}internal")
}

/// Why the store could not be read or a record not decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapStoreError {
    /// A record of the store topic is malformed.
    #[error("offset-map record at offset {offset}: {reason}")]
    Malformed {
        /// Offset of the record in the store topic (−1 when unknown).
        offset: i64,
        /// What was wrong.
        reason: &'static str,
    },
    /// Reading the store topic failed.
    #[error("reading offset-map topic {topic}: {message}")]
    Read {
        /// Store topic.
        topic: String,
        /// The underlying error.
        message: String,
    },
    /// Writing to the store topic failed.
    #[error("writing offset-map topic {topic}: {message}")]
    Write {
        /// Store topic.
        topic: String,
        /// The underlying error.
        message: String,
    },
}

impl MapStoreError {
    /// Whether trying again later may succeed (I/O failures; malformed data never heals).
    pub fn is_retriable(&self) -> bool {
        !matches!(self, Self::Malformed { .. })
    }
}

/// A store record key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StoreKey {
    /// One segment of a partition's map.
    Segment {
        /// Source topic-partition.
        tp: TopicPartition,
        /// The segment's first source offset.
        source_start: i64,
    },
    /// The coverage of a partition's history.
    Partition {
        /// Source topic-partition.
        tp: TopicPartition,
    },
}

/// A store record value (`None` in a record is a tombstone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreValue {
    /// A segment.
    Segment {
        /// Source topic id when the segment was written.
        topic_id: Uuid,
        /// Target offset of the segment's first record.
        target_start: i64,
        /// Records in the segment.
        len: i64,
    },
    /// The coverage of a partition's history.
    Partition {
        /// Source topic id.
        topic_id: Uuid,
        /// The history is complete from this source offset...
        floor: i64,
        /// ...up to this one (exclusive).
        processed: i64,
    },
}

fn malformed(reason: &'static str) -> MapStoreError {
    MapStoreError::Malformed { offset: -1, reason }
}

impl StoreKey {
    /// Encodes the key.
    ///
    /// # Errors
    /// A topic name longer than [`i16::MAX`] bytes.
    pub fn encode(&self) -> Result<Vec<u8>, MapStoreError> {
        let (kind, tp) = match self {
            Self::Segment { tp, .. } => (KIND_SEGMENT, tp),
            Self::Partition { tp } => (KIND_PARTITION, tp),
        };
        let len = i16::try_from(tp.topic.len()).map_err(|_| malformed("topic name too long"))?;
        let mut out = Vec::with_capacity(17 + tp.topic.len());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.push(kind);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(tp.topic.as_bytes());
        out.extend_from_slice(&tp.partition.to_be_bytes());
        if let Self::Segment { source_start, .. } = self {
            out.extend_from_slice(&source_start.to_be_bytes());
        }
        Ok(out)
    }

    /// Decodes a key.
    ///
    /// # Errors
    /// [`MapStoreError::Malformed`] for a short, long or unknown key.
    pub fn decode(bytes: &[u8]) -> Result<Self, MapStoreError> {
        let mut r = Cursor(bytes);
        if r.i16()? != VERSION {
            return Err(malformed("unknown key version"));
        }
        let kind = r.take::<1>()?[0];
        let len = usize::try_from(r.i16()?).map_err(|_| malformed("negative topic length"))?;
        if len > MAX_TOPIC_LEN {
            return Err(malformed("topic name too long"));
        }
        let topic = std::str::from_utf8(r.slice(len)?)
            .map_err(|_| malformed("topic name is not UTF-8"))?
            .to_owned();
        let partition = i32::from_be_bytes(r.take::<4>()?);
        let tp = TopicPartition::new(topic, partition);
        let key = match kind {
            KIND_SEGMENT => Self::Segment {
                tp,
                source_start: r.i64()?,
            },
            KIND_PARTITION => Self::Partition { tp },
            _ => return Err(malformed("unknown key kind")),
        };
        r.end()?;
        Ok(key)
    }

    /// The topic-partition the key belongs to.
    pub fn tp(&self) -> &TopicPartition {
        match self {
            Self::Segment { tp, .. } | Self::Partition { tp } => tp,
        }
    }
}

impl StoreValue {
    /// Encodes the value.
    pub fn encode(&self) -> Vec<u8> {
        let (id, a, b) = match *self {
            Self::Segment {
                topic_id,
                target_start,
                len,
            } => (topic_id, target_start, len),
            Self::Partition {
                topic_id,
                floor,
                processed,
            } => (topic_id, floor, processed),
        };
        let mut out = Vec::with_capacity(34);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&a.to_be_bytes());
        out.extend_from_slice(&b.to_be_bytes());
        out
    }

    /// Decodes the value of a record whose key is `key`.
    ///
    /// # Errors
    /// [`MapStoreError::Malformed`] for a short or long value, or values that cannot be
    /// (negative length, `processed` below `floor`).
    pub fn decode(key: &StoreKey, bytes: &[u8]) -> Result<Self, MapStoreError> {
        let mut r = Cursor(bytes);
        if r.i16()? != VERSION {
            return Err(malformed("unknown value version"));
        }
        let topic_id = Uuid::from_bytes(r.take::<16>()?);
        let (a, b) = (r.i64()?, r.i64()?);
        r.end()?;
        match key {
            StoreKey::Segment { .. } if b >= 1 => Ok(Self::Segment {
                topic_id,
                target_start: a,
                len: b,
            }),
            StoreKey::Segment { .. } => Err(malformed("segment without records")),
            StoreKey::Partition { .. } if b >= a => Ok(Self::Partition {
                topic_id,
                floor: a,
                processed: b,
            }),
            StoreKey::Partition { .. } => Err(malformed("processed position below the floor")),
        }
    }
}

/// A bounds-checked big-endian reader.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn slice(&mut self, n: usize) -> Result<&[u8], MapStoreError> {
        if self.0.len() < n {
            return Err(malformed("record too short"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], MapStoreError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.slice(N)?);
        Ok(out)
    }

    fn i16(&mut self) -> Result<i16, MapStoreError> {
        Ok(i16::from_be_bytes(self.take::<2>()?))
    }

    fn i64(&mut self) -> Result<i64, MapStoreError> {
        Ok(i64::from_be_bytes(self.take::<8>()?))
    }

    fn end(&self) -> Result<(), MapStoreError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(malformed("trailing bytes"))
        }
    }
}

/// What the store holds for one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredPartition {
    /// `(topic id, floor, processed)` of the partition record, if any.
    pub coverage: Option<(Uuid, i64, i64)>,
    /// Segments by source start: `(topic id, target start, len)`.
    pub segments: BTreeMap<i64, (Uuid, i64, i64)>,
}

/// Everything read back from the store topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredMaps {
    parts: BTreeMap<TopicPartition, StoredPartition>,
}

impl StoredMaps {
    /// Applies one record in log order (`None` value = tombstone).
    pub fn apply(&mut self, key: StoreKey, value: Option<StoreValue>) {
        let entry = self.parts.entry(key.tp().clone()).or_default();
        match (key, value) {
            (StoreKey::Segment { source_start, .. }, None) => {
                entry.segments.remove(&source_start);
            }
            (
                StoreKey::Segment { source_start, .. },
                Some(StoreValue::Segment {
                    topic_id,
                    target_start,
                    len,
                }),
            ) => {
                entry
                    .segments
                    .insert(source_start, (topic_id, target_start, len));
            }
            (StoreKey::Partition { .. }, None) => entry.coverage = None,
            (
                StoreKey::Partition { .. },
                Some(StoreValue::Partition {
                    topic_id,
                    floor,
                    processed,
                }),
            ) => entry.coverage = Some((topic_id, floor, processed)),
            // `StoreValue::decode` ties the value kind to the key kind.
            _ => {}
        }
    }

    /// Decodes and applies one raw record.
    ///
    /// # Errors
    /// [`MapStoreError::Malformed`] with the record's offset.
    pub fn apply_raw(
        &mut self,
        offset: i64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), MapStoreError> {
        let at = |e: MapStoreError| match e {
            MapStoreError::Malformed { reason, .. } => MapStoreError::Malformed { offset, reason },
            other => other,
        };
        let key = StoreKey::decode(key).map_err(at)?;
        let value = value
            .map(|v| StoreValue::decode(&key, v))
            .transpose()
            .map_err(at)?;
        self.apply(key, value);
        Ok(())
    }

    /// Removes and returns what is stored for `tp`.
    pub fn take(&mut self, tp: &TopicPartition) -> Option<StoredPartition> {
        self.parts.remove(tp)
    }

    /// Partitions with stored data.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// The result of [`seed`]: the map to start with, what the store must drop, and how much
/// history was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    /// The partition's map.
    pub map: PartitionOffsetMap,
    /// Stored segment keys (source starts) that are no longer valid: tombstone them.
    pub tombstones: Vec<i64>,
    /// The last stored segment kept in the map, as stored (its key may need rewriting when it
    /// was cut at the resume position).
    pub stored_last: Option<Segment>,
    /// The stored coverage kept, as `(floor, processed)`.
    pub stored_coverage: Option<(i64, i64)>,
    /// Why stored history was discarded, if it was.
    pub discarded: Option<&'static str>,
}

/// Builds a partition's starting map from its stored history (see the module docs for the
/// rules).
///
/// `verified` are runs `(source_start, target_start, len)` that the resume check
/// (`crate::resume`) read back on both sides after the last progress commit; `resume` already
/// lies past them. Stored history is cut where they begin, and they are added to the map.
/// `log_start`, when known, prunes segments wholly below the source's log start.
pub fn seed(
    stored: Option<StoredPartition>,
    topic_id: Uuid,
    resume: i64,
    target_next: i64,
    log_start: Option<i64>,
    verified: &[(i64, i64, i64)],
) -> Seeded {
    let stored = stored.unwrap_or_default();
    let all_keys: Vec<i64> = stored.segments.keys().copied().collect();
    // Where the history must reach: the first verified record, else the resume position.
    let cut = verified.first().map_or(resume, |v| v.0.min(resume));
    let as_segments = |runs: &[(i64, i64, i64)]| -> Vec<Segment> {
        runs.iter()
            .map(|&(source_start, target_start, len)| Segment {
                source_start,
                target_start,
                len,
            })
            .collect()
    };
    let fresh = |reason: Option<&'static str>| Seeded {
        map: PartitionOffsetMap::from_parts(as_segments(verified), resume, target_next)
            .and_then(|m| m.with_floor(cut))
            .unwrap_or_else(|_| PartitionOffsetMap::new(resume, target_next)),
        tombstones: all_keys.clone(),
        stored_last: None,
        stored_coverage: None,
        discarded: reason,
    };
    let Some((id, floor, processed)) = stored.coverage else {
        return fresh((!all_keys.is_empty()).then_some("no coverage record"));
    };
    if id != topic_id {
        return fresh(Some("the source topic was recreated"));
    }
    if processed < cut {
        return fresh(Some("the history ends before the resume position"));
    }
    if floor > cut {
        return fresh(Some("the history starts after the resume position"));
    }
    let mut segments = Vec::new();
    let mut tombstones = Vec::new();
    let mut stored_last = None;
    for (&source_start, &(seg_id, target_start, len)) in &stored.segments {
        if seg_id != topic_id || source_start < floor || source_start >= cut {
            tombstones.push(source_start);
            continue;
        }
        let stored_seg = Segment {
            source_start,
            target_start,
            len,
        };
        stored_last = Some(stored_seg);
        let mut seg = stored_seg;
        seg.len = seg.len.min(cut - source_start);
        segments.push(seg);
    }
    segments.extend(as_segments(verified));
    let Ok(mut map) = PartitionOffsetMap::from_parts(segments, resume, target_next)
        .and_then(|m| m.with_floor(floor))
    else {
        return fresh(Some("the stored segments do not fit the target partition"));
    };
    if let Some(log_start) = log_start {
        let before: Vec<i64> = map.segments().map(|s| s.source_start).collect();
        if map.prune_below(log_start) > 0 {
            let first = map.segments().next().map(|s| s.source_start);
            tombstones.extend(before.into_iter().filter(|s| Some(*s) < first));
        }
    }
    Seeded {
        map,
        tombstones,
        stored_last,
        stored_coverage: Some((floor, processed)),
        discarded: None,
    }
}

/// What the store holds (or will, once acknowledged) for one partition.
#[derive(Debug, Clone, Default)]
struct Persisted {
    topic_id: Uuid,
    /// The last segment written.
    last: Option<Segment>,
    /// `(floor, processed)` written.
    coverage: Option<(i64, i64)>,
    /// Keys to tombstone at the next write.
    tombstones: Vec<i64>,
}

/// The writer side of the store, owned by the pipeline's acknowledgement task.
pub(crate) struct MapStore {
    producer: Arc<IdempotentProducer>,
    topic: String,
    ledger: Ledger,
}

/// What the store holds, and what to write next: the I/O-free part of [`MapStore`].
#[derive(Debug, Default)]
struct Ledger {
    loaded: StoredMaps,
    parts: BTreeMap<TopicPartition, Persisted>,
}

impl std::fmt::Debug for MapStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapStore")
            .field("topic", &self.topic)
            .field("partitions", &self.ledger.parts.len())
            .finish_non_exhaustive()
    }
}

/// One record to write: key and value (`None` = tombstone).
type Pending = (Vec<u8>, Option<Vec<u8>>);

impl MapStore {
    pub(crate) fn new(
        producer: Arc<IdempotentProducer>,
        topic: String,
        loaded: StoredMaps,
    ) -> Self {
        Self {
            producer,
            topic,
            ledger: Ledger {
                loaded,
                parts: BTreeMap::new(),
            },
        }
    }

    /// The starting map of a partition (see [`seed`]); invalid stored keys are tombstoned at
    /// the next write.
    pub(crate) fn seed(
        &mut self,
        tp: &TopicPartition,
        topic_id: Uuid,
        resume: i64,
        target_next: i64,
        log_start: Option<i64>,
        verified: &[(i64, i64, i64)],
    ) -> Seeded {
        self.ledger
            .seed(tp, topic_id, resume, target_next, log_start, verified)
    }

    /// The partition's map was replaced (position reset, target truncated): everything stored
    /// for the old map becomes invalid.
    pub(crate) fn restarted(&mut self, tp: &TopicPartition, old: &PartitionOffsetMap) {
        self.ledger.restarted(tp, old);
    }

    /// Writes what changed in `maps` and waits for the target to acknowledge it: segments and
    /// tombstones first, then (only once those are acknowledged) the coverage records that
    /// vouch for them. Returns the number of records written. On error nothing is marked
    /// written, so the next call writes it again (rewriting a key is harmless).
    pub(crate) async fn persist<'a>(
        &mut self,
        maps: impl Iterator<Item = (&'a TopicPartition, &'a PartitionOffsetMap)>,
    ) -> Result<usize, MapStoreError> {
        let plan = self.ledger.plan(maps)?;
        let written = plan.segments.len() + plan.coverages.len();
        self.write(&plan.segments).await?;
        self.write(&plan.coverages).await?;
        self.ledger.written(plan.updates);
        Ok(written)
    }

    async fn write(&self, records: &[Pending]) -> Result<(), MapStoreError> {
        let write_err = |message: String| MapStoreError::Write {
            topic: self.topic.clone(),
            message,
        };
        let mut handles = Vec::new();
        for chunk in records.chunks(MAX_RECORDS_PER_BATCH) {
            let batch = encode_records(chunk, crate::heartbeat::now_ms())
                .map_err(|e| write_err(e.to_string()))?;
            handles.push(
                self.producer
                    .send(&self.topic, 0, batch)
                    .map_err(|e| write_err(e.to_string()))?,
            );
        }
        for h in handles {
            tokio::time::timeout(WRITE_TIMEOUT, h.wait())
                .await
                .map_err(|_| write_err("timed out".to_owned()))?
                .map_err(|e| write_err(e.to_string()))?;
        }
        Ok(())
    }
}

impl Ledger {
    /// The starting map of a partition (see [`seed`]); invalid stored keys are tombstoned at
    /// the next write.
    fn seed(
        &mut self,
        tp: &TopicPartition,
        topic_id: Uuid,
        resume: i64,
        target_next: i64,
        log_start: Option<i64>,
        verified: &[(i64, i64, i64)],
    ) -> Seeded {
        let seeded = seed(
            self.loaded.take(tp),
            topic_id,
            resume,
            target_next,
            log_start,
            verified,
        );
        self.parts.insert(
            tp.clone(),
            Persisted {
                topic_id,
                last: seeded.stored_last,
                coverage: seeded.stored_coverage,
                tombstones: seeded.tombstones.clone(),
            },
        );
        seeded
    }

    /// The partition's map was replaced (position reset, target truncated): everything stored
    /// for the old map becomes invalid.
    fn restarted(&mut self, tp: &TopicPartition, old: &PartitionOffsetMap) {
        if let Some(p) = self.parts.get_mut(tp) {
            p.tombstones.extend(old.segments().map(|s| s.source_start));
            p.last = None;
            p.coverage = None;
        }
    }

    /// The records that bring the store up to date with `maps`, and the state after them.
    fn plan<'a>(
        &self,
        maps: impl Iterator<Item = (&'a TopicPartition, &'a PartitionOffsetMap)>,
    ) -> Result<Plan, MapStoreError> {
        let mut records = Vec::new();
        let mut coverages = Vec::new();
        let mut updates = Vec::new();
        for (tp, map) in maps {
            let Some(p) = self.parts.get(tp) else {
                continue;
            };
            let mut changed = false;
            for &source_start in &p.tombstones {
                let key = StoreKey::Segment {
                    tp: tp.clone(),
                    source_start,
                };
                // A tombstoned key that the current map still uses is rewritten below.
                records.push((key.encode()?, None));
                changed = true;
            }
            let since = p.last.map(|s| s.source_start);
            let tail: Vec<&Segment> = map
                .segments()
                .rev()
                .take_while(|s| since.is_none_or(|start| s.source_start >= start))
                .collect();
            let tombstoned = |s: &Segment| p.tombstones.contains(&s.source_start);
            for seg in tail.into_iter().rev() {
                if p.last == Some(*seg) && !tombstoned(seg) {
                    continue;
                }
                let key = StoreKey::Segment {
                    tp: tp.clone(),
                    source_start: seg.source_start,
                };
                let value = StoreValue::Segment {
                    topic_id: p.topic_id,
                    target_start: seg.target_start,
                    len: seg.len,
                };
                records.push((key.encode()?, Some(value.encode())));
                changed = true;
            }
            let coverage = (map.floor(), map.processed());
            if p.coverage != Some(coverage) {
                let key = StoreKey::Partition { tp: tp.clone() };
                let value = StoreValue::Partition {
                    topic_id: p.topic_id,
                    floor: coverage.0,
                    processed: coverage.1,
                };
                coverages.push((key.encode()?, Some(value.encode())));
                changed = true;
            }
            if changed {
                updates.push((
                    tp.clone(),
                    Persisted {
                        topic_id: p.topic_id,
                        last: map.last_segment().copied(),
                        coverage: Some(coverage),
                        tombstones: Vec::new(),
                    },
                ));
            }
        }
        Ok(Plan {
            segments: records,
            coverages,
            updates,
        })
    }

    /// Marks a plan's records as written.
    fn written(&mut self, updates: Vec<(TopicPartition, Persisted)>) {
        self.parts.extend(updates);
    }
}

/// What [`Ledger::plan`] computed.
struct Plan {
    /// Segment records and tombstones.
    segments: Vec<Pending>,
    /// Coverage records, written after the segments.
    coverages: Vec<Pending>,
    /// The state once both are written.
    updates: Vec<(TopicPartition, Persisted)>,
}

/// Encodes records (null values allowed) as one uncompressed v2 batch for the producer.
fn encode_records(records: &[Pending], timestamp: i64) -> Result<Bytes, DataError> {
    let records: Vec<Record> = records
        .iter()
        .zip(0i32..)
        .map(|((k, v), i)| Record {
            offset_delta: i,
            key: Some(Bytes::copy_from_slice(k)),
            value: v.as_deref().map(Bytes::copy_from_slice),
            ..Record::default()
        })
        .collect();
    let header = producer_header(timestamp, Attributes(0), &records);
    let (prefix, body) = encode_parts(&header, &records)?;
    let mut out = BytesMut::with_capacity(prefix.len() + body.len());
    out.put_slice(&prefix);
    out.put_slice(&body);
    Ok(out.freeze())
}

/// How long a flow waits for its store to be read back at start.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The store of a flow, read back, when group translation is on; `None` (reported) when it
/// is off or could not be read.
pub(crate) async fn open(
    flow: &crate::settings::FlowSettings,
    shared: &crate::flow::FlowShared,
    target: &Cluster,
    admin: &Admin,
    producer: &Arc<IdempotentProducer>,
) -> Option<MapStore> {
    if !flow.groups_enabled() {
        return None;
    }
    let topic = store_topic(&flow.policy, &flow.source);
    match load(
        target,
        admin,
        &topic,
        flow.checkpoints_replication_factor,
        LOAD_TIMEOUT,
    )
    .await
    {
        Ok(loaded) => {
            tracing::info!(flow = %shared.name, topic, partitions = loaded.len(), "offset-map history read");
            Some(MapStore::new(Arc::clone(producer), topic, loaded))
        }
        Err(e) => {
            shared.emit(crate::events::MirrorEvent::StepFailed {
                flow: shared.name.clone(),
                step: "offset map",
                error: format!("{e}; running without persisted history"),
            });
            None
        }
    }
}

/// Creates the store topic if needed and reads it back to its end, within `timeout`.
pub(crate) async fn load(
    target: &Cluster,
    admin: &Admin,
    topic: &str,
    replication_factor: i16,
    timeout: Duration,
) -> Result<StoredMaps, MapStoreError> {
    let read_err = |message: String| MapStoreError::Read {
        topic: topic.to_owned(),
        message,
    };
    crate::heartbeat::ensure_compacted_topic(admin, topic, replication_factor)
        .await
        .map_err(|e| read_err(e.to_string()))?;
    // A topic created a moment ago may not be known to every broker yet: retry until the
    // deadline, keeping the last error for the report.
    let mut last = None;
    let attempts = async {
        loop {
            match read_all(target, topic).await {
                Ok(maps) => return Ok(maps),
                Err(e) if e.is_retriable() => {
                    tracing::debug!(topic, error = %e, "offset-map topic not readable yet");
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
    };
    match tokio::time::timeout(timeout, attempts).await {
        Ok(r) => r,
        Err(_) => Err(read_err(format!(
            "not read to its end within {timeout:?}{}",
            last.map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        ))),
    }
}

async fn read_all(target: &Cluster, topic: &str) -> Result<StoredMaps, MapStoreError> {
    let read_err = |message: String| MapStoreError::Read {
        topic: topic.to_owned(),
        message,
    };
    let offset_of = |r: Vec<(i32, i64)>| r.into_iter().find(|(p, _)| *p == 0).map(|(_, o)| o);
    let start = target
        .list_offsets(topic, &[0], OffsetSpec::Earliest, false)
        .await
        .map(offset_of)
        .map_err(|e| read_err(e.to_string()))?
        .unwrap_or(0);
    let end = target
        .list_offsets(topic, &[0], OffsetSpec::Latest, false)
        .await
        .map(offset_of)
        .map_err(|e| read_err(e.to_string()))?
        .unwrap_or(0);
    let mut maps = StoredMaps::default();
    if end <= start {
        return Ok(maps);
    }
    let tp = TopicPartition::new(topic, 0);
    let mut fetcher = Fetcher::new(target.clone(), FetchConfig::default())
        .map_err(|e| read_err(e.to_string()))?;
    fetcher.assign(tp.clone(), start);
    let mut position = start;
    while position < end {
        let events = fetcher.fetch().await.map_err(|e| read_err(e.to_string()))?;
        for ev in events {
            match ev {
                FetchEvent::Data(fp) => {
                    position = apply_fetched(&mut maps, &fp.records, position)?;
                }
                FetchEvent::OffsetOutOfRange {
                    log_start_offset, ..
                } if log_start_offset > position => position = log_start_offset,
                other => return Err(read_err(format!("{other:?}"))),
            }
        }
        fetcher.seek(&tp, position);
    }
    Ok(maps)
}

/// Applies every record at or after `position` in a fetched blob; returns the next position.
fn apply_fetched(
    maps: &mut StoredMaps,
    records: &Bytes,
    mut position: i64,
) -> Result<i64, MapStoreError> {
    for entry in BatchScanner::new(records.clone()) {
        let batch = match entry {
            Ok(Entry::V2(b)) => b,
            // The store is written by ferry as v2 only.
            Ok(_) => break,
            Err(e) => {
                return Err(MapStoreError::Read {
                    topic: String::new(),
                    message: e.to_string(),
                });
            }
        };
        if batch.last_offset() < position {
            continue;
        }
        if !batch.attributes().is_control() {
            let decoded = DecodedBatch::decode(&batch, &DecodeOptions::default()).map_err(|e| {
                MapStoreError::Read {
                    topic: String::new(),
                    message: e.to_string(),
                }
            })?;
            for r in &decoded.records {
                let offset = batch.base_offset() + i64::from(r.offset_delta);
                if offset < position {
                    continue;
                }
                let Some(key) = r.key.as_deref() else {
                    return Err(MapStoreError::Malformed {
                        offset,
                        reason: "record without key",
                    });
                };
                maps.apply_raw(offset, key, r.value.as_deref())?;
            }
        }
        position = batch.last_offset() + 1;
    }
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tp() -> TopicPartition {
        TopicPartition::new("orders", 2)
    }

    fn id() -> Uuid {
        Uuid::from_u128(7)
    }

    #[test]
    fn store_topic_is_internal_for_the_policy() {
        use crate::policy::{AnyReplicationPolicy, PolicyKind};
        let policy = AnyReplicationPolicy::new(PolicyKind::Default, ".", true, Some("A".into()));
        let t = store_topic(&policy, "A");
        assert_eq!(t, "ferry-offset-map.A.internal");
        assert!(policy.is_internal_topic(&t));
    }

    #[test]
    fn malformed_records_are_rejected_with_their_offset() {
        let mut m = StoredMaps::default();
        let key = StoreKey::Partition { tp: tp() }.encode().unwrap();
        let err = m.apply_raw(42, &key, Some(&[0, 0, 1])).unwrap_err();
        assert!(matches!(err, MapStoreError::Malformed { offset: 42, .. }));
        assert!(!err.is_retriable());
        assert!(StoreKey::decode(&[0, 0, 9, 0, 0, 0, 0, 0, 0]).is_err());
        let mut long = key.clone();
        long.push(0);
        assert!(StoreKey::decode(&long).is_err());
        // A segment without records is refused.
        let seg = StoreValue::Segment {
            topic_id: id(),
            target_start: 10,
            len: 0,
        };
        assert!(
            StoreValue::decode(
                &StoreKey::Segment {
                    tp: tp(),
                    source_start: 1
                },
                &seg.encode()
            )
            .is_err()
        );
    }

    fn stored(coverage: Option<(i64, i64)>, segs: &[(i64, i64, i64)]) -> Option<StoredPartition> {
        Some(StoredPartition {
            coverage: coverage.map(|(f, p)| (id(), f, p)),
            segments: segs.iter().map(|&(s, t, l)| (s, (id(), t, l))).collect(),
        })
    }

    #[test]
    fn seed_restores_history_and_cuts_what_progress_did_not_cover() {
        // Stored: 0..10 -> 100.., 12..30 -> 110..; coverage to 30; progress says resume 20.
        let s = seed(
            stored(Some((0, 30)), &[(0, 100, 10), (12, 110, 18)]),
            id(),
            20,
            200,
            None,
            &[],
        );
        assert_eq!(s.discarded, None);
        assert!(s.tombstones.is_empty());
        assert_eq!(s.map.translate(0), Some(100));
        assert_eq!(
            s.map.translate(11),
            Some(110),
            "hole maps to the next record"
        );
        assert_eq!(s.map.translate(19), Some(117));
        // 20 is the resume position: the next record lands at the target's end.
        assert_eq!(s.map.translate(20), Some(200));
        assert_eq!(s.map.translate(21), None);
        assert_eq!(s.map.segments().last().map(|s| s.len), Some(8));
        assert_eq!(
            s.stored_last,
            Some(Segment {
                source_start: 12,
                target_start: 110,
                len: 18
            })
        );
    }

    #[test]
    fn seed_discards_history_it_cannot_trust() {
        let segs = [(0, 0, 10)];
        for (coverage, topic_id, target_next, why) in [
            (None, id(), 100, "no coverage record"),
            (Some((0, 5)), id(), 100, "ends before"),
            (Some((7, 50)), id(), 100, "starts after"),
            (Some((0, 50)), Uuid::from_u128(8), 100, "recreated"),
            (Some((0, 50)), id(), 5, "do not fit"),
        ] {
            let s = seed(stored(coverage, &segs), topic_id, 6, target_next, None, &[]);
            assert!(s.discarded.is_some_and(|d| d.contains(why)), "{why}: {s:?}");
            assert_eq!(s.tombstones, vec![0]);
            assert_eq!(s.map.translate(5), None, "below the floor: no translation");
            assert_eq!(s.map.translate(6), Some(target_next));
        }
        let empty = seed(None, id(), 3, 9, None, &[]);
        assert_eq!(empty.discarded, None);
        assert_eq!(empty.map.translate(3), Some(9));
    }

    #[test]
    fn seed_prunes_below_the_log_start_and_tombstones_what_it_pruned() {
        let s = seed(
            stored(Some((0, 40)), &[(0, 0, 5), (10, 5, 5), (20, 10, 20)]),
            id(),
            40,
            30,
            Some(25),
            &[],
        );
        assert_eq!(s.tombstones, vec![0, 10]);
        assert_eq!(s.map.segments().len(), 1);
        assert_eq!(s.map.translate(25), Some(15));
        // Floor stays: offsets below the log start translate to the first record left.
        assert_eq!(s.map.translate(3), Some(10));
    }

    #[test]
    fn seed_adds_verified_runs_and_cuts_stored_history_where_they_begin() {
        // Stored up to 30 (a crash after the store write, before the progress commit at 20);
        // the resume check verified 20..25 at target 130 and a run 26..28 at 135 (marker at 25).
        let s = seed(
            stored(Some((0, 30)), &[(0, 100, 30)]),
            id(),
            28,
            137,
            None,
            &[(20, 130, 5), (26, 135, 2)],
        );
        assert_eq!(s.discarded, None);
        assert_eq!(s.map.translate(19), Some(119));
        assert_eq!(s.map.translate(20), Some(130));
        assert_eq!(s.map.translate(25), Some(135));
        assert_eq!(s.map.translate(28), Some(137));
        // Without usable history the verified runs alone are kept, floored at their start.
        let s = seed(None, id(), 28, 137, None, &[(20, 130, 5), (26, 135, 2)]);
        assert_eq!(s.map.translate(19), None);
        assert_eq!(s.map.translate(21), Some(131));
    }

    /// Applies a plan's records to a simulated store topic (raw bytes, as read back).
    fn apply(store: &mut StoredMaps, plan: &Plan) {
        for (i, (k, v)) in plan.segments.iter().chain(&plan.coverages).enumerate() {
            store
                .apply_raw(i64::try_from(i).unwrap(), k, v.as_deref())
                .unwrap();
        }
    }

    fn persist(ledger: &mut Ledger, store: &mut StoredMaps, map: &PartitionOffsetMap) -> Plan {
        let t = tp();
        let plan = ledger.plan(std::iter::once((&t, map))).unwrap();
        apply(store, &plan);
        let copy = Plan {
            segments: plan.segments.clone(),
            coverages: plan.coverages.clone(),
            updates: Vec::new(),
        };
        ledger.written(plan.updates);
        copy
    }

    #[test]
    fn translation_survives_a_restart_through_the_store_records() {
        let mut store = StoredMaps::default();
        let mut ledger = Ledger::default();
        let mut map = ledger.seed(&tp(), id(), 0, 0, None, &[]).map;
        // Records 0..5, a marker at 5, records 6..12 in two batches, a marker at 11.
        map.record_batch(&[(0, 5)], 0, 6).unwrap();
        let first = persist(&mut ledger, &mut store, &map);
        assert_eq!((first.segments.len(), first.coverages.len()), (1, 1));
        map.record_batch(&[(6, 3)], 5, 9).unwrap();
        map.record_batch(&[(9, 2)], 8, 12).unwrap();
        let second = persist(&mut ledger, &mut store, &map);
        assert_eq!(
            (second.segments.len(), second.coverages.len()),
            (1, 1),
            "only the new segment and the coverage are written"
        );
        assert_eq!(persist(&mut ledger, &mut store, &map).segments.len(), 0);

        // Clean restart at the committed position: every offset translates as before.
        let mut restarted = Ledger {
            loaded: store.clone(),
            parts: BTreeMap::new(),
        };
        let seeded = restarted.seed(&tp(), id(), 12, 10, None, &[]);
        assert_eq!(seeded.discarded, None);
        for u in 0..=13 {
            assert_eq!(seeded.map.translate(u), map.translate(u), "u = {u}");
        }
        assert_eq!(seeded.map.translate(0), Some(0));

        // Progress lagged the store (a crash): resume at 9, the tail is cut and rewritten.
        let mut crashed = Ledger {
            loaded: store.clone(),
            parts: BTreeMap::new(),
        };
        let mut lagged = store.clone();
        let seeded = crashed.seed(&tp(), id(), 9, 10, None, &[]);
        assert_eq!(seeded.map.translate(8), Some(7));
        assert_eq!(
            seeded.map.translate(9),
            Some(10),
            "re-sent records land at the end"
        );
        let rewrite = persist(&mut crashed, &mut lagged, &seeded.map);
        assert_eq!(
            rewrite.segments.len(),
            1,
            "the cut segment's key is rewritten"
        );
        let again = seed(lagged.take(&tp()), id(), 9, 10, None, &[]);
        assert_eq!(again.map, seeded.map);

        // A position reset invalidates every stored segment of the partition.
        ledger.restarted(&tp(), &map);
        let fresh = PartitionOffsetMap::new(100, 10);
        let reset = persist(&mut ledger, &mut store, &fresh);
        let tombstones = reset.segments.iter().filter(|(_, v)| v.is_none()).count();
        assert_eq!(tombstones, 2);
        let after = seed(store.take(&tp()), id(), 100, 10, None, &[]);
        assert_eq!(after.discarded, None);
        assert_eq!(after.map.translate(0), None, "no history below the reset");
        assert_eq!(after.map.segments().len(), 0);
    }

    proptest! {
        #[test]
        fn keys_and_values_round_trip(
            topic in "[a-zA-Z0-9._-]{1,249}",
            partition in any::<i32>(),
            source_start in any::<i64>(),
            id in any::<u128>(),
            a in any::<i64>(),
            len in 1i64..i64::MAX,
            segment in any::<bool>(),
        ) {
            let tp = TopicPartition::new(topic, partition);
            let (key, value) = if segment {
                (
                    StoreKey::Segment { tp, source_start },
                    StoreValue::Segment { topic_id: Uuid::from_u128(id), target_start: a, len },
                )
            } else {
                let floor = a.min(len);
                (
                    StoreKey::Partition { tp },
                    StoreValue::Partition { topic_id: Uuid::from_u128(id), floor, processed: len },
                )
            };
            let k = key.encode().unwrap();
            let back = StoreKey::decode(&k).unwrap();
            prop_assert_eq!(&back, &key);
            prop_assert_eq!(StoreValue::decode(&back, &value.encode()).unwrap(), value);
            // Every strict prefix is refused, never a panic.
            for n in 0..k.len() {
                prop_assert!(StoreKey::decode(&k[..n]).is_err());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(key in prop::collection::vec(any::<u8>(), 0..64),
                                       value in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut m = StoredMaps::default();
            let _ = m.apply_raw(0, &key, Some(&value));
        }
    }
}
