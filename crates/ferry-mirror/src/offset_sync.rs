//! MM2-format offset syncs, written from ferry's exact offset map.
//!
//! MM2 writes a sync when the upstream sequence has a gap, periodically by `offset.lag.max`,
//! and for idle partitions (mm2-compat.md §6.1). ferry knows the exact map, so it writes one
//! whenever [`crate::offset_map::PartitionOffsetMap::record_batch`] reports
//! [`MapChange::NewSegment`] (the `target - source` delta changed: exactly the points a reader
//! needs), plus one for the **last record** of a partition that received nothing for
//! `offset_sync_idle_interval`, so translation of a caught-up group is exact.
//!
//! Records go to partition 0 of `mm2-offset-syncs.<target>.internal` on the source (default
//! `offset-syncs.topic.location=source`) or `mm2-offset-syncs.<source>.internal` on the target,
//! key `(upstream topic, partition)`, value `(upstream offset, downstream offset)`, encoded by
//! ferry-protocol's `mm2` module (mm2-compat.md §5.2), so `OffsetSyncFormatter` and MM2's
//! `OffsetSyncStore` read them.
//!
//! [`OffsetSyncWriter`] is a clock-free state machine (`now` is an argument); the pipeline's
//! acknowledgement task drives it and sends what [`OffsetSyncWriter::take_batch`] returns.
//!
//! # References
//! - `connect/mirror/src/main/java/org/apache/kafka/connect/mirror/{OffsetSync,OffsetSyncWriter}.java`
//!   (apache/kafka), KAFKA-15906 (idle partitions converge to their last record)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_client::fetcher::TopicPartition;
use ferry_protocol::batch::DataError;
use ferry_protocol::mm2::OffsetSync;

use crate::heartbeat::encode_batch;
use crate::offset_map::{MapChange, PartitionOffsetMap};

/// Most syncs in one batch.
const MAX_SYNCS_PER_BATCH: usize = 500;

#[derive(Debug, Clone, Copy)]
struct PartitionSyncState {
    /// `(upstream, downstream)` of the last sync queued.
    last_sync: Option<(i64, i64)>,
    /// When the partition last had a batch acknowledged.
    last_activity: Instant,
    /// Whether a batch arrived since the last idle sync.
    active: bool,
}

/// Decides which offset syncs to write. See the module docs.
#[derive(Debug)]
pub struct OffsetSyncWriter {
    idle_after: Duration,
    partitions: BTreeMap<TopicPartition, PartitionSyncState>,
    pending: Vec<OffsetSync>,
}

impl OffsetSyncWriter {
    /// A writer that syncs a partition's last record after `idle_after` without new data.
    pub fn new(idle_after: Duration) -> Self {
        Self {
            idle_after,
            partitions: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    /// Feeds the outcome of adding an acknowledged batch of **source** partition `tp` to its map.
    pub fn on_batch(&mut self, tp: &TopicPartition, change: MapChange, now: Instant) {
        let state = self
            .partitions
            .entry(tp.clone())
            .or_insert(PartitionSyncState {
                last_sync: None,
                last_activity: now,
                active: true,
            });
        state.last_activity = now;
        state.active = true;
        if let MapChange::NewSegment(seg) = change {
            let sync = (seg.source_start, seg.target_start);
            state.last_sync = Some(sync);
            self.pending.push(OffsetSync {
                topic: tp.topic.clone(),
                partition: tp.partition,
                upstream_offset: sync.0,
                downstream_offset: sync.1,
            });
        }
    }

    /// Queues a sync for the last record of every partition idle for the configured interval
    /// whose last record is not synced yet. `maps` gives each source partition's map.
    pub fn on_tick<'a>(
        &mut self,
        maps: impl IntoIterator<Item = (&'a TopicPartition, &'a PartitionOffsetMap)>,
        now: Instant,
    ) {
        for (tp, map) in maps {
            let Some(state) = self.partitions.get_mut(tp) else {
                continue;
            };
            if !state.active || now.saturating_duration_since(state.last_activity) < self.idle_after
            {
                continue;
            }
            state.active = false;
            let Some(seg) = map.last_segment() else {
                continue;
            };
            let last = (seg.source_end() - 1, seg.target_end() - 1);
            if state.last_sync == Some(last) {
                continue;
            }
            state.last_sync = Some(last);
            self.pending.push(OffsetSync {
                topic: tp.topic.clone(),
                partition: tp.partition,
                upstream_offset: last.0,
                downstream_offset: last.1,
            });
        }
    }

    /// Syncs waiting to be written.
    pub fn pending(&self) -> &[OffsetSync] {
        &self.pending
    }

    /// Forgets a partition (stopped or reset); its next batch starts a new segment anyway.
    pub fn forget(&mut self, tp: &TopicPartition) {
        self.partitions.remove(tp);
    }

    /// Encodes up to 500 pending syncs as one batch (timestamp `timestamp_ms`), or `None`.
    ///
    /// # Errors
    /// A topic name too long for MM2's `STRING` (over 32767 bytes); that sync is dropped.
    pub fn take_batch(&mut self, timestamp_ms: i64) -> Option<Result<Bytes, DataError>> {
        if self.pending.is_empty() {
            return None;
        }
        let n = self.pending.len().min(MAX_SYNCS_PER_BATCH);
        let syncs: Vec<OffsetSync> = self.pending.drain(..n).collect();
        let mut records = Vec::with_capacity(syncs.len());
        for s in &syncs {
            match s.encode_key() {
                Ok(key) => records.push((key, s.encode_value())),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(encode_batch(&records, timestamp_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::batch::RecordBatch;
    use ferry_protocol::record::{DecodeOptions, DecodedBatch};

    fn tp() -> TopicPartition {
        TopicPartition::new("orders", 3)
    }

    #[test]
    fn syncs_on_new_segments_and_idle_last_record() {
        let t0 = Instant::now();
        let mut w = OffsetSyncWriter::new(Duration::from_secs(1));
        let mut map = PartitionOffsetMap::new(0, 100);
        let c = map.record_batch(&[(0, 10)], 100, 10).unwrap();
        w.on_batch(&tp(), c, t0);
        let c = map.record_batch(&[(10, 5)], 110, 15).unwrap();
        w.on_batch(&tp(), c, t0);
        // A marker at 15: the next batch starts a new delta.
        let c = map.record_batch(&[(16, 4)], 115, 20).unwrap();
        w.on_batch(&tp(), c, t0);
        let got: Vec<(i64, i64)> = w
            .pending()
            .iter()
            .map(|s| (s.upstream_offset, s.downstream_offset))
            .collect();
        assert_eq!(got, vec![(0, 100), (16, 115)]);

        // Not idle yet: nothing.
        w.on_tick([(&tp(), &map)], t0 + Duration::from_millis(500));
        assert_eq!(w.pending().len(), 2);
        // Idle: the last record (19 -> 118).
        w.on_tick([(&tp(), &map)], t0 + Duration::from_secs(2));
        assert_eq!(w.pending().len(), 3);
        let last = w.pending()[2].clone();
        assert_eq!((last.upstream_offset, last.downstream_offset), (19, 118));
        // Only once while nothing changes.
        w.on_tick([(&tp(), &map)], t0 + Duration::from_secs(5));
        assert_eq!(w.pending().len(), 3);

        let bytes = w.take_batch(1_700_000_000_000).unwrap().unwrap();
        assert!(w.pending().is_empty());
        assert!(w.take_batch(0).is_none());
        let batch = RecordBatch::new(bytes).unwrap();
        batch.verify_crc().unwrap();
        let decoded = DecodedBatch::decode(&batch, &DecodeOptions::default()).unwrap();
        let syncs: Vec<OffsetSync> = decoded
            .records
            .iter()
            .map(|r| {
                OffsetSync::decode(r.key.as_ref().unwrap(), r.value.as_ref().unwrap()).unwrap()
            })
            .collect();
        assert_eq!(syncs.len(), 3);
        assert_eq!(syncs[0].topic, "orders");
        assert_eq!(syncs[0].partition, 3);
        assert_eq!(
            (syncs[1].upstream_offset, syncs[1].downstream_offset),
            (16, 115)
        );
    }

    #[test]
    fn idle_sync_skipped_when_last_record_already_synced() {
        let t0 = Instant::now();
        let mut w = OffsetSyncWriter::new(Duration::from_secs(1));
        let mut map = PartitionOffsetMap::new(0, 0);
        // One single-record batch: its new-segment sync is also its last record.
        let c = map.record_batch(&[(0, 1)], 0, 1).unwrap();
        w.on_batch(&tp(), c, t0);
        w.on_tick([(&tp(), &map)], t0 + Duration::from_secs(2));
        assert_eq!(w.pending().len(), 1);
    }
}
