//! Exact source → target offset map for one replicated partition.
//!
//! The forwarder knows, for every batch the target acknowledged, which source offsets it carried
//! and the target base offset it landed at. Records keep their order and land contiguously on
//! the target, so the mapping is a list of *segments*: runs of source offsets with a constant
//! `target - source` delta. A new segment starts whenever the delta changes, which happens only
//! where the source has offsets ferry did not copy: transaction markers, aborted transactions,
//! compaction holes, records below the start position, or (after a crash) records the target
//! received twice.
//!
//! Memory grows with the number of segments, never with the number of records.
//!
//! # Translation
//!
//! A committed source offset `U` means "the next record this group reads is the first record at
//! or after `U`". Its exact target equivalent is therefore the target offset of the first
//! replicated record whose source offset is `≥ U`:
//!
//! - `U` inside a segment: `U + delta`;
//! - `U` in a hole before a segment: that segment's first target offset;
//! - `U` past every replicated record but not past what ferry has *processed* (everything in
//!   between was dropped: markers, aborted data): the target's next offset, because the next
//!   record ferry replicates lands there;
//! - `U` beyond the processed position: unknown yet (`None`), so no checkpoint is written;
//! - `U` below the map's *floor* (the first source offset whose fate the map knows, for
//!   example the resume position of a process that had no persisted history): unknown too
//!   (`None`), never a guess.
//!
//! The floor starts at the first position ([`PartitionOffsetMap::new`]) and survives pruning:
//! offsets between the floor and the source's log start no longer exist, so "the first
//! replicated record at or after `U`" is still the first remaining segment.
//!
//! MM2's translation is at best "the last offset sync at or below `U`, plus one", which re-delivers
//! records (mm2-compat.md §6, KAFKA-12468, KAFKA-14666). This map is exact.
//!
//! # References
//! - `../shared/reference/mm2-compat.md` §6 (MM2's offset syncs and their translation rule)
//! - `../shared/reference/kafka-wire.md` §4.4 (why source and target offsets diverge)

use std::collections::VecDeque;

/// A run of consecutive source offsets that landed at consecutive target offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// First source offset of the run.
    pub source_start: i64,
    /// Target offset of the record at `source_start`.
    pub target_start: i64,
    /// Number of records in the run (at least 1).
    pub len: i64,
}

impl Segment {
    /// One past the last source offset of the run.
    pub fn source_end(&self) -> i64 {
        self.source_start + self.len
    }

    /// One past the last target offset of the run.
    pub fn target_end(&self) -> i64 {
        self.target_start + self.len
    }

    /// `target - source` for every record of the run.
    pub fn delta(&self) -> i64 {
        self.target_start - self.source_start
    }
}

/// Why an acknowledged batch could not be added to the map.
///
/// Each of these means the caller broke the ordering contract (acknowledgements must be added
/// in source order, as the target assigned them), so it is a bug in the caller, not bad data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OffsetMapError {
    /// A run starts below the source position already processed.
    #[error("source offset {source_offset} is below the processed position {processed}")]
    SourceRewind {
        /// The offending source offset.
        source_offset: i64,
        /// The position already processed.
        processed: i64,
    },
    /// A batch landed below the target offset already used.
    #[error("target offset {target_offset} is below the next expected target offset {target_next}")]
    TargetRewind {
        /// The offending target base offset.
        target_offset: i64,
        /// The next target offset the map expected at least.
        target_next: i64,
    },
    /// A run was empty or the runs were not increasing.
    #[error("invalid run list: {reason}")]
    InvalidRuns {
        /// What was wrong.
        reason: &'static str,
    },
}

/// What adding a batch did to the map, so the caller knows when to write an offset sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapChange {
    /// The batch continued the last segment: the delta is unchanged.
    Extended,
    /// The batch started at least one new segment; the last one is returned.
    NewSegment(Segment),
}

/// The offset map of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffsetMap {
    segments: VecDeque<Segment>,
    /// Next source offset after everything acknowledged (replicated or dropped).
    processed: i64,
    /// Next target offset after everything acknowledged.
    target_next: i64,
    /// Lowest source offset the map knows the fate of (see the module docs).
    floor: i64,
}

impl PartitionOffsetMap {
    /// A map that starts replicating at source offset `source_start` into a target partition
    /// whose next offset is `target_next`.
    pub fn new(source_start: i64, target_next: i64) -> Self {
        Self {
            segments: VecDeque::new(),
            processed: source_start,
            target_next,
            floor: source_start,
        }
    }

    /// Rebuilds a map from persisted segments and positions (for example after a restart).
    /// The floor is the first segment's start (or `processed` without segments); see
    /// [`PartitionOffsetMap::with_floor`].
    ///
    /// Segments must be sorted and non-overlapping in both source and target offsets, and lie
    /// below the positions; otherwise an error says which rule was broken.
    pub fn from_parts(
        segments: impl IntoIterator<Item = Segment>,
        processed: i64,
        target_next: i64,
    ) -> Result<Self, OffsetMapError> {
        let mut map = Self::new(i64::MIN, i64::MIN);
        for seg in segments {
            if seg.len < 1 {
                return Err(OffsetMapError::InvalidRuns {
                    reason: "a segment has no records",
                });
            }
            map.add_run(seg.source_start, seg.target_start, seg.len)?;
        }
        if processed < map.processed || target_next < map.target_next {
            return Err(OffsetMapError::InvalidRuns {
                reason: "positions lie below the last segment",
            });
        }
        map.processed = processed;
        map.target_next = target_next;
        map.floor = map.segments.front().map_or(processed, |s| s.source_start);
        Ok(map)
    }

    /// Lowers (or sets) the floor: source offsets from `floor` up to the first segment are
    /// known holes. Fails if `floor` lies above the first segment or the processed position.
    pub fn with_floor(mut self, floor: i64) -> Result<Self, OffsetMapError> {
        let first = self
            .segments
            .front()
            .map_or(self.processed, |s| s.source_start);
        if floor > first {
            return Err(OffsetMapError::InvalidRuns {
                reason: "the floor lies above the first segment",
            });
        }
        self.floor = floor;
        Ok(self)
    }

    /// Lowest source offset the map can translate (see the module docs).
    pub fn floor(&self) -> i64 {
        self.floor
    }

    /// Records an acknowledged batch.
    ///
    /// `runs` lists the source offsets the batch carried as `(first source offset, count)` runs,
    /// in order; the batch's records landed contiguously from `target_base`. `next_source` is
    /// the source position after the batch (`baseOffset + lastOffsetDelta + 1` of the last
    /// source batch it came from), which may lie past the last record when the source had
    /// trailing holes.
    pub fn record_batch(
        &mut self,
        runs: &[(i64, i64)],
        target_base: i64,
        next_source: i64,
    ) -> Result<MapChange, OffsetMapError> {
        if target_base < self.target_next {
            return Err(OffsetMapError::TargetRewind {
                target_offset: target_base,
                target_next: self.target_next,
            });
        }
        let mut change = MapChange::Extended;
        let mut target = target_base;
        for &(source_start, len) in runs {
            if len < 1 {
                return Err(OffsetMapError::InvalidRuns {
                    reason: "a run has no records",
                });
            }
            if let Some(seg) = self.add_run(source_start, target, len)? {
                change = MapChange::NewSegment(seg);
            }
            target += len;
        }
        self.skip_to(next_source)?;
        Ok(change)
    }

    /// Records that source offsets up to `next_source` (exclusive) were processed without
    /// anything reaching the target (control batches, aborted data, empty batches).
    pub fn skip_to(&mut self, next_source: i64) -> Result<(), OffsetMapError> {
        if next_source < self.processed {
            return Err(OffsetMapError::SourceRewind {
                source_offset: next_source,
                processed: self.processed,
            });
        }
        self.processed = next_source;
        Ok(())
    }

    /// Adds one run; returns the new segment when the delta changed.
    fn add_run(
        &mut self,
        source_start: i64,
        target_start: i64,
        len: i64,
    ) -> Result<Option<Segment>, OffsetMapError> {
        if source_start < self.processed {
            return Err(OffsetMapError::SourceRewind {
                source_offset: source_start,
                processed: self.processed,
            });
        }
        if target_start < self.target_next {
            return Err(OffsetMapError::TargetRewind {
                target_offset: target_start,
                target_next: self.target_next,
            });
        }
        self.processed = source_start + len;
        self.target_next = target_start + len;
        if let Some(last) = self.segments.back_mut()
            && last.source_end() == source_start
            && last.target_end() == target_start
        {
            last.len += len;
            return Ok(None);
        }
        let seg = Segment {
            source_start,
            target_start,
            len,
        };
        self.segments.push_back(seg);
        Ok(Some(seg))
    }

    /// The exact target offset for committed source offset `u` (see the module docs), or `None`
    /// when ferry has not processed the source up to `u` yet.
    pub fn translate(&self, u: i64) -> Option<i64> {
        if u > self.processed || u < self.floor {
            return None;
        }
        // First segment whose end lies past `u`: either it contains `u`, or it is the first
        // replicated run after the hole `u` falls into.
        let idx = self.segments.partition_point(|s| s.source_end() <= u);
        match self.segments.get(idx) {
            Some(seg) if seg.source_start <= u => Some(seg.target_start + (u - seg.source_start)),
            Some(seg) => Some(seg.target_start),
            None => Some(self.target_next),
        }
    }

    /// Forgets segments that lie wholly below `log_start` (the source's log start offset):
    /// no consumer can commit there any more, since those records no longer exist.
    pub fn prune_below(&mut self, log_start: i64) -> usize {
        let mut removed = 0;
        while let Some(first) = self.segments.front() {
            // Keep the last segment: it carries the current delta for the next sync.
            if first.source_end() <= log_start && self.segments.len() > 1 {
                self.segments.pop_front();
                removed += 1;
            } else {
                break;
            }
        }
        removed
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = &Segment> + DoubleEndedIterator {
        self.segments.iter()
    }

    /// The last segment, which holds the current delta.
    pub fn last_segment(&self) -> Option<&Segment> {
        self.segments.back()
    }

    /// Next source offset after everything acknowledged.
    pub fn processed(&self) -> i64 {
        self.processed
    }

    /// Next target offset after everything acknowledged.
    pub fn target_next(&self) -> i64 {
        self.target_next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn contiguous_batches_form_one_segment() {
        let mut m = PartitionOffsetMap::new(0, 0);
        assert!(matches!(
            m.record_batch(&[(0, 10)], 0, 10).unwrap(),
            MapChange::NewSegment(_)
        ));
        assert_eq!(
            m.record_batch(&[(10, 5)], 10, 15).unwrap(),
            MapChange::Extended
        );
        assert_eq!(m.segments().len(), 1);
        assert_eq!(m.translate(0), Some(0));
        assert_eq!(m.translate(7), Some(7));
        assert_eq!(m.translate(15), Some(15));
        assert_eq!(m.translate(16), None);
    }

    #[test]
    fn marker_hole_shifts_delta_and_translates_forward() {
        // Source: records 0..5, commit marker at 5, records 6..9. Target: 0..5, 5..8.
        let mut m = PartitionOffsetMap::new(0, 0);
        m.record_batch(&[(0, 5)], 0, 5).unwrap();
        m.skip_to(6).unwrap();
        let change = m.record_batch(&[(6, 3)], 5, 9).unwrap();
        assert_eq!(
            change,
            MapChange::NewSegment(Segment {
                source_start: 6,
                target_start: 5,
                len: 3
            })
        );
        assert_eq!(
            m.translate(5),
            Some(5),
            "the marker's offset maps to the next record"
        );
        assert_eq!(m.translate(6), Some(5));
        assert_eq!(m.translate(8), Some(7));
        assert_eq!(m.translate(9), Some(8));
    }

    #[test]
    fn trailing_marker_translates_to_target_end() {
        let mut m = PartitionOffsetMap::new(0, 0);
        m.record_batch(&[(0, 3)], 0, 3).unwrap();
        m.skip_to(4).unwrap(); // commit marker at 3
        assert_eq!(m.translate(4), Some(3));
        assert_eq!(m.translate(5), None);
    }

    #[test]
    fn empty_partition_translates_zero_to_zero() {
        let m = PartitionOffsetMap::new(0, 0);
        assert_eq!(m.translate(0), Some(0));
        assert_eq!(m.translate(1), None);
    }

    #[test]
    fn rewinds_are_rejected() {
        let mut m = PartitionOffsetMap::new(0, 0);
        m.record_batch(&[(0, 3)], 0, 3).unwrap();
        assert!(matches!(
            m.record_batch(&[(2, 1)], 3, 3),
            Err(OffsetMapError::SourceRewind { .. })
        ));
        assert!(matches!(
            m.record_batch(&[(3, 1)], 2, 4),
            Err(OffsetMapError::TargetRewind { .. })
        ));
    }

    #[test]
    fn prune_keeps_the_current_segment() {
        let mut m = PartitionOffsetMap::new(0, 0);
        m.record_batch(&[(0, 2), (5, 2), (9, 2)], 0, 11).unwrap();
        assert_eq!(m.prune_below(8), 2);
        assert_eq!(m.segments().len(), 1);
        assert_eq!(m.prune_below(100), 0);
        assert_eq!(m.translate(9), Some(4));
    }

    #[test]
    fn from_parts_round_trips() {
        let mut m = PartitionOffsetMap::new(3, 10);
        m.record_batch(&[(3, 2), (7, 4)], 12, 12).unwrap();
        let rebuilt =
            PartitionOffsetMap::from_parts(m.segments().copied(), m.processed(), m.target_next())
                .unwrap();
        assert_eq!(rebuilt, m);
    }

    /// One step of a random source log as the forwarder sees it.
    #[derive(Debug, Clone)]
    enum Step {
        /// A batch of `n` records where each record is copied (true) or dropped (false).
        Batch(Vec<bool>),
        /// A run of offsets dropped whole (markers, aborted batches).
        Skip(i64),
        /// Someone else wrote `n` records into the target partition in between.
        TargetGap(i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => prop::collection::vec(prop::bool::weighted(0.8), 1..12).prop_map(Step::Batch),
            1 => (1i64..4).prop_map(Step::Skip),
            1 => (1i64..3).prop_map(Step::TargetGap),
        ]
    }

    proptest! {
        /// Compares the map with a record-by-record model of the same log.
        #[test]
        fn translation_matches_a_record_by_record_model(
            start in 0i64..50,
            target_start in 0i64..50,
            steps in prop::collection::vec(step(), 0..40),
            prune in 0i64..120,
        ) {
            let mut map = PartitionOffsetMap::new(start, target_start);
            // (source offset, target offset) of every replicated record.
            let mut model: Vec<(i64, i64)> = Vec::new();
            let mut src = start;
            let mut tgt = target_start;
            for s in &steps {
                match s {
                    Step::Batch(keep) => {
                        let mut runs: Vec<(i64, i64)> = Vec::new();
                        let base = tgt;
                        for (i, k) in keep.iter().enumerate() {
                            let off = src + i as i64;
                            if *k {
                                model.push((off, tgt));
                                tgt += 1;
                                match runs.last_mut() {
                                    Some((s0, n)) if *s0 + *n == off => *n += 1,
                                    _ => runs.push((off, 1)),
                                }
                            }
                        }
                        src += keep.len() as i64;
                        if runs.is_empty() {
                            map.skip_to(src).unwrap();
                        } else {
                            map.record_batch(&runs, base, src).unwrap();
                        }
                    }
                    Step::Skip(n) => {
                        src += n;
                        map.skip_to(src).unwrap();
                    }
                    Step::TargetGap(n) => tgt += n,
                }
            }
            map.prune_below(prune);
            for u in 0..=src + 3 {
                let expected = if u > src || u < start {
                    None
                } else {
                    // First replicated record at or after u, else the target's next offset.
                    Some(model.iter().find(|(s, _)| *s >= u).map_or(
                        map.target_next(),
                        |(_, t)| *t,
                    ))
                };
                // Below the pruning point only records that still exist matter.
                if u >= prune || model.iter().all(|(s, _)| *s >= prune) {
                    prop_assert_eq!(map.translate(u), expected, "u = {}", u);
                }
            }
            // Segments never outnumber the holes and gaps that caused them.
            prop_assert!(map.segments().len() <= model.len().max(1));
        }
    }
}
