//! Forwarding transforms and the decision function.
//!
//! [`Forwarder::forward`] takes one scanned entry and the producer identity the target must see
//! ([`TargetProducer`], passed per batch by the engine), chooses a [`Route`] by the decision
//! table of `kafka-wire.md` §2.8, applies it, and returns what it did ([`Forwarded`]):
//!
//! | route | when | work |
//! |---|---|---|
//! | [`Route::AsIs`] | nothing CRC-covered must change | `baseOffset` := 0 and `partitionLeaderEpoch` := −1 (both outside the CRC); no CRC work |
//! | [`Route::Patch`] | producer fields, bit 4 or 6 differ from what the target must see | producer id / epoch / base sequence set, bit 6 cleared, bit 4 per write mode; the payload CRC is computed once, the source CRC verified with it, and the new CRC is the combination `crc(header[21..61]) ⊕ crc(payload)` ([`CrcShift`], equal to `crc32c_combine`); no decompression |
//! | [`Route::Renumber`] | start inside a batch, offset holes, another target codec, or LogAppendTime | decode, keep records at or above the position, deltas 0..n−1, re-encode with the same (or the configured) codec |
//! | [`Route::Convert`] | magic 0/1 entry | expand (decompress wrappers) and build a v2 batch |
//! | [`Route::Drop`] | already forwarded, control, empty, aborted | nothing is sent |
//!
//! As-is and patch allocate nothing per batch: the outgoing batch is an [`OutgoingBatch`], a
//! 61-byte header array plus the untouched payload as a [`Bytes`] slice of the fetched blob, made
//! for a vectored write (`tests/alloc.rs` proves this with a counting allocator).
//!
//! **Timestamps when bits 3 and 6 are cleared.** With bit 6 (delete horizon, KIP-534) set,
//! `baseTimestamp` holds the horizon and the log cleaner rebased every record's
//! `timestampDelta` on it, so `baseTimestamp + timestampDelta` is still each record's timestamp.
//! Clearing bit 6 while leaving `baseTimestamp` at the same value therefore keeps every record's
//! timestamp; the value is merely no longer the first record's timestamp, which Kafka never
//! requires. What must not happen is "recomputing" `baseTimestamp` to the first record's time
//! without rewriting the deltas: that would shift every timestamp. Renumbering keeps the source
//! `baseTimestamp` and deltas for the same reason and recomputes `maxTimestamp`. With bit 3
//! (LogAppendTime) set, records read back as `maxTimestamp`; merely clearing it would make them
//! read back as their producer's CreateTime (`baseTimestamp + delta`, the pitfall of
//! `kafka-wire.md` §2.3), so such a batch is renumbered instead
//! ([`RenumberReason::LogAppendTime`]): `baseTimestamp` := `maxTimestamp` and every delta 0, so
//! the CreateTime target shows the timestamps source consumers saw (issue #5 item 2, as MM2
//! copies them). This costs the zero-copy route for LogAppendTime topics only.
//!
//! Not implemented: splitting a batch larger than the target's `max.message.bytes` (rule 10);
//! [`ForwardConfig::max_batch_bytes`] turns such a batch into a typed limit error instead.
//!
//! # References
//! - `kafka-wire.md` §1.4, §1.6, §1.7, §2.2, §2.4, §2.8, §3.7, §4.3
//! - `clients/src/main/java/org/apache/kafka/clients/consumer/internals/CompletedFetch.java`
//!   (read_committed filtering), `.../common/record/{DefaultRecordBatch,ControlRecordType}.java` (apache/kafka)
//! - KIP-98 (transactions), KIP-534 (delete horizon), KAFKA-6554 (offset-range check)

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{
    ATTRIBUTES_OFFSET, Attributes, BatchErrorKind, BatchHeader, CRC_OFFSET, CrcShift, DataError,
    Entry, RECORD_BATCH_OVERHEAD, RecordBatch, put,
};
use crate::compression::Codec;
use crate::legacy::{self, LegacyEntry};
use crate::record::{self, DecodeOptions, DecodedBatch};
use crate::varint::Reader;

/// The producer fields the target must see on the next outgoing batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TargetProducer {
    /// `producerId` (−1 for plain writes).
    pub producer_id: i64,
    /// `producerEpoch` (−1 for plain writes).
    pub producer_epoch: i16,
    /// `baseSequence` for this batch (−1 for plain writes). The engine advances it by the
    /// outgoing batch's [`OutgoingBatch::records_count`].
    pub base_sequence: i32,
    /// Whether ferry writes inside its own target transaction (attribute bit 4).
    pub transactional: bool,
}

impl TargetProducer {
    /// Plain, non-idempotent writes: all producer fields −1.
    pub const PLAIN: Self = Self {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
    };

    /// Idempotent writes with ferry's producer id and epoch, at `base_sequence`.
    pub fn idempotent(producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        Self {
            producer_id,
            producer_epoch,
            base_sequence,
            transactional: false,
        }
    }

    /// Transactional writes (bit 4 set) with ferry's producer id and epoch.
    pub fn transactional(producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        Self {
            transactional: true,
            ..Self::idempotent(producer_id, producer_epoch, base_sequence)
        }
    }
}

/// Forwarding settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardConfig {
    /// Re-encode every batch with this codec (`None`: keep the source codec). Default `None`.
    pub target_codec: Option<Codec>,
    /// Decompression budget for renumber and convert. Default 64 MiB.
    pub max_uncompressed_bytes: usize,
    /// Largest outgoing batch entry (the target's `max.message.bytes`); larger is an error with
    /// [`DataError::is_limit`]. Default `None` (unchecked).
    pub max_batch_bytes: Option<usize>,
    /// Verify the CRC on the as-is route too. Default false: the target broker verifies it and
    /// answers CORRUPT_MESSAGE, so forwarding cannot hide damage.
    pub verify_as_is_crc: bool,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            target_codec: None,
            max_uncompressed_bytes: 64 << 20,
            max_batch_bytes: None,
            verify_as_is_crc: false,
        }
    }
}

/// Why a batch was renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RenumberReason {
    /// The position lies inside the batch; leading records were dropped (rule 8).
    StartInsideBatch,
    /// `lastOffsetDelta + 1 != recordsCount`: compaction left holes (rule 9, KAFKA-6554).
    OffsetHoles,
    /// A different target codec is configured (rule 11).
    Recompress,
    /// A LogAppendTime batch: its records read as `maxTimestamp`, so each record's timestamp
    /// is rewritten to that value for the CreateTime target (the payload changes).
    LogAppendTime,
}

/// Why an entry was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Every record is below the position (rule 4), or none is left after it.
    AlreadyForwarded,
    /// A control batch (rule 5).
    Control,
    /// `recordsCount == 0`, kept by the cleaner for producer state (rule 6).
    Empty,
    /// Aborted transactional data under read_committed (rule 7).
    Aborted,
}

/// What the forwarder did with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// Zero-copy, no CRC work.
    AsIs,
    /// Zero-copy payload, header patched, CRC recomputed by combination.
    Patch,
    /// Decoded and re-encoded.
    Renumber(RenumberReason),
    /// Legacy data converted to v2.
    Convert,
    /// Nothing sent.
    Drop(DropReason),
}

impl Route {
    /// True for the zero-copy routes (as-is and patch).
    pub fn is_zero_copy(self) -> bool {
        matches!(self, Self::AsIs | Self::Patch)
    }
}

/// A batch ready to produce: a 61-byte header and the records part.
///
/// For as-is and patch, `body` is a slice of the fetched blob (no copy); write
/// `header` then `body` with a vectored write, or [`OutgoingBatch::write_to`] to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingBatch {
    header: [u8; RECORD_BATCH_OVERHEAD],
    body: Bytes,
}

impl OutgoingBatch {
    /// The 61-byte header (`baseOffset` 0, CRC valid).
    pub fn header(&self) -> &[u8; RECORD_BATCH_OVERHEAD] {
        &self.header
    }

    /// The records part.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Total entry size.
    pub fn len(&self) -> usize {
        RECORD_BATCH_OVERHEAD + self.body.len()
    }

    /// Never true: a batch has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The header fields.
    pub fn fields(&self) -> BatchHeader {
        BatchHeader::from_prefix(&self.header)
    }

    /// `recordsCount`.
    pub fn records_count(&self) -> i32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.header.get(57..61).unwrap_or(&[0; 4]));
        i32::from_be_bytes(b)
    }

    /// The stored CRC.
    pub fn crc(&self) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(
            self.header
                .get(CRC_OFFSET..CRC_OFFSET + 4)
                .unwrap_or(&[0; 4]),
        );
        u32::from_be_bytes(b)
    }

    /// Appends header and body to `out` (one copy).
    pub fn write_to(&self, out: &mut BytesMut) {
        out.reserve(self.len());
        out.put_slice(&self.header);
        out.put_slice(&self.body);
    }

    /// The whole entry as one buffer (copies).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len());
        self.write_to(&mut out);
        out.freeze()
    }

    /// The entry as a [`RecordBatch`] view (copies; for tests and checks).
    pub fn to_batch(&self) -> Result<RecordBatch, DataError> {
        RecordBatch::new(self.to_bytes())
    }
}

/// The source offsets of the records an outgoing batch carries, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceOffsets {
    /// No records (dropped entries).
    None,
    /// Contiguous `first..=last` (as-is and patch: `baseOffset..=lastOffset`).
    Range {
        /// First source offset.
        first: i64,
        /// Last source offset.
        last: i64,
    },
    /// Each record's source offset (renumbered or converted data may have holes).
    Listed(Vec<i64>),
}

/// The result of forwarding one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// What was done.
    pub route: Route,
    /// The batch to produce (`None` when dropped).
    pub batch: Option<OutgoingBatch>,
    /// The source offsets of the forwarded records (record *i* of `batch` came from the *i*-th).
    pub source_offsets: SourceOffsets,
    /// The forwarder's position after this entry: the next source offset to forward
    /// (`lastOffset + 1` of the entry, or unchanged if it was wholly below).
    pub next_offset: i64,
}

/// One entry of a read_committed Fetch response's `AbortedTransactions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AbortedTransaction {
    /// First offset of the aborted transaction.
    pub first_offset: i64,
    /// Its producer id.
    pub producer_id: i64,
}

/// The Java consumer's aborted-transaction filter (`CompletedFetch`, `kafka-wire.md` §4.3).
#[derive(Debug, Clone, Default)]
struct AbortedTracker {
    pending: BinaryHeap<Reverse<AbortedTransaction>>,
    aborted: HashSet<i64>,
}

impl AbortedTracker {
    fn consume_up_to(&mut self, last_offset: i64) {
        while let Some(Reverse(t)) = self.pending.peek() {
            if t.first_offset > last_offset {
                break;
            }
            self.aborted.insert(t.producer_id);
            self.pending.pop();
        }
    }
}

/// Control record type ABORT (`ControlRecordType`).
const CONTROL_ABORT: i16 = 0;

/// Applies the decision table to a partition's entries, in offset order.
#[derive(Debug, Clone)]
pub struct Forwarder {
    config: ForwardConfig,
    position: i64,
    tracker: Option<AbortedTracker>,
}

impl Forwarder {
    /// A read_uncommitted forwarder starting at source offset `position` (the fetch offset).
    pub fn new(config: ForwardConfig, position: i64) -> Self {
        Self {
            config,
            position,
            tracker: None,
        }
    }

    /// Switches to read_committed filtering (empty aborted list so far).
    pub fn read_committed(mut self) -> Self {
        self.tracker = Some(AbortedTracker::default());
        self
    }

    /// Adds the `AbortedTransactions` of a read_committed Fetch response. Turns read_committed
    /// filtering on if it was off.
    pub fn add_aborted<I: IntoIterator<Item = AbortedTransaction>>(&mut self, aborted: I) {
        let tracker = self.tracker.get_or_insert_with(AbortedTracker::default);
        tracker.pending.extend(aborted.into_iter().map(Reverse));
    }

    /// The next source offset to forward.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Moves the position (after a seek or refetch).
    pub fn set_position(&mut self, position: i64) {
        self.position = position;
    }

    /// The configuration.
    pub fn config(&self) -> &ForwardConfig {
        &self.config
    }

    /// The decision function: chooses the route for a v2 batch (rules 3–13 of
    /// `kafka-wire.md` §2.8). Updates the read_committed state (idempotently for the same batch),
    /// never the position. [`Forwarder::forward`] calls it.
    pub fn decide(
        &mut self,
        batch: &RecordBatch,
        target: &TargetProducer,
    ) -> Result<Route, DataError> {
        let attributes = batch.attributes();
        let producer_id = batch.producer_id();
        let mut aborted = false;
        if let Some(tracker) = self.tracker.as_mut()
            && producer_id >= 0
        {
            tracker.consume_up_to(batch.last_offset());
            if attributes.is_control() {
                if control_type(batch)? == CONTROL_ABORT {
                    tracker.aborted.remove(&producer_id);
                }
            } else if attributes.is_transactional() && tracker.aborted.contains(&producer_id) {
                aborted = true;
            }
        }
        if batch.last_offset() < self.position {
            return Ok(Route::Drop(DropReason::AlreadyForwarded));
        }
        if attributes.is_control() {
            return Ok(Route::Drop(DropReason::Control));
        }
        if batch.records_count() == 0 {
            return Ok(Route::Drop(DropReason::Empty));
        }
        if aborted {
            return Ok(Route::Drop(DropReason::Aborted));
        }
        let codec = batch.codec()?;
        if batch.base_offset() < self.position {
            return Ok(Route::Renumber(RenumberReason::StartInsideBatch));
        }
        if i64::from(batch.last_offset_delta()) + 1 != i64::from(batch.records_count()) {
            return Ok(Route::Renumber(RenumberReason::OffsetHoles));
        }
        if attributes.is_log_append_time() {
            return Ok(Route::Renumber(RenumberReason::LogAppendTime));
        }
        if let Some(max) = self.config.max_batch_bytes
            && batch.entry_len() > max
        {
            return Err(too_large(batch.position(), batch.entry_len(), max));
        }
        if self.config.target_codec.is_some_and(|c| c != codec) {
            return Ok(Route::Renumber(RenumberReason::Recompress));
        }
        let needs_patch = attributes.has_delete_horizon()
            || attributes.is_transactional() != target.transactional
            || producer_id != target.producer_id
            || batch.producer_epoch() != target.producer_epoch
            || batch.base_sequence() != target.base_sequence;
        Ok(if needs_patch {
            Route::Patch
        } else {
            Route::AsIs
        })
    }

    /// Forwards one entry: decides its route, applies it, advances the position.
    pub fn forward(
        &mut self,
        entry: Entry,
        target: TargetProducer,
    ) -> Result<Forwarded, DataError> {
        match entry {
            Entry::V2(batch) => self.forward_batch(&batch, target),
            Entry::Legacy(l) => self.forward_legacy(std::slice::from_ref(&l), target),
        }
    }

    /// Forwards one v2 batch (see [`Forwarder::forward`]).
    pub fn forward_batch(
        &mut self,
        batch: &RecordBatch,
        target: TargetProducer,
    ) -> Result<Forwarded, DataError> {
        let route = self.decide(batch, &target)?;
        let (out, source_offsets) = match route {
            Route::Drop(_) => (None, SourceOffsets::None),
            Route::AsIs => {
                if self.config.verify_as_is_crc {
                    batch.verify_crc()?;
                }
                (Some(as_is(batch)), contiguous(batch))
            }
            Route::Patch => (Some(patch(batch, &target)?), contiguous(batch)),
            Route::Renumber(_) => match renumber(batch, &target, self.position, &self.config)? {
                Some((out, offsets)) => (Some(out), SourceOffsets::Listed(offsets)),
                None => {
                    self.advance(batch.next_offset());
                    return Ok(Forwarded {
                        route: Route::Drop(DropReason::AlreadyForwarded),
                        batch: None,
                        source_offsets: SourceOffsets::None,
                        next_offset: self.position,
                    });
                }
            },
            Route::Convert => (None, SourceOffsets::None),
        };
        if let (Some(out), Some(max)) = (&out, self.config.max_batch_bytes)
            && out.len() > max
        {
            return Err(too_large(batch.position(), out.len(), max));
        }
        self.advance(batch.next_offset());
        Ok(Forwarded {
            route,
            batch: out,
            source_offsets,
            next_offset: self.position,
        })
    }

    /// Converts a run of consecutive legacy entries into one v2 batch (rule 2), keeping the
    /// messages at or above the position.
    pub fn forward_legacy(
        &mut self,
        entries: &[LegacyEntry],
        target: TargetProducer,
    ) -> Result<Forwarded, DataError> {
        let converted = legacy::convert(
            entries,
            self.position,
            self.config.target_codec,
            self.config.max_uncompressed_bytes,
        )?;
        let next = entries
            .iter()
            .map(|e| e.offset().saturating_add(1))
            .max()
            .unwrap_or(self.position);
        let Some(mut c) = converted else {
            self.advance(next);
            return Ok(Forwarded {
                route: Route::Drop(DropReason::AlreadyForwarded),
                batch: None,
                source_offsets: SourceOffsets::None,
                next_offset: self.position,
            });
        };
        set_target(&mut c.header, &target);
        let (header, body) = record::encode_parts(&c.header, &c.records)?;
        let out = OutgoingBatch { header, body };
        if let Some(max) = self.config.max_batch_bytes
            && out.len() > max
        {
            let position = entries.first().map_or(0, LegacyEntry::position);
            return Err(too_large(position, out.len(), max));
        }
        self.advance(next);
        Ok(Forwarded {
            route: Route::Convert,
            batch: Some(out),
            source_offsets: SourceOffsets::Listed(c.source_offsets),
            next_offset: self.position,
        })
    }

    fn advance(&mut self, next: i64) {
        self.position = self.position.max(next);
    }
}

fn too_large(position: usize, size: usize, max: usize) -> DataError {
    DataError::Batch {
        position,
        kind: BatchErrorKind::SizeTooLarge {
            size: i64::try_from(size).unwrap_or(i64::MAX),
            max,
        },
    }
}

fn contiguous(batch: &RecordBatch) -> SourceOffsets {
    SourceOffsets::Range {
        first: batch.base_offset(),
        last: batch.last_offset(),
    }
}

/// Reads the control record type of a control batch (key: `int16 version, int16 type`).
fn control_type(batch: &RecordBatch) -> Result<i16, DataError> {
    let decoded = DecodedBatch::decode(batch, &DecodeOptions::default())?;
    let key = decoded
        .records
        .first()
        .and_then(|r| r.key.clone())
        .unwrap_or_default();
    let mut r = Reader::new(&key);
    let read = |r: &mut Reader<'_>, field| {
        r.i16(field).map_err(|source| DataError::Record {
            position: batch.position(),
            base_offset: batch.base_offset(),
            decompressed: true,
            source,
        })
    };
    let _version = read(&mut r, "control.version")?;
    read(&mut r, "control.type")
}

const BASE_OFFSET_AND_LENGTH: usize = 12;

/// The as-is header: `baseOffset` 0 and `partitionLeaderEpoch` −1, both outside the CRC.
fn as_is(batch: &RecordBatch) -> OutgoingBatch {
    let mut header = batch.prefix();
    put(&mut header, 0, &0i64.to_be_bytes());
    put(&mut header, BASE_OFFSET_AND_LENGTH, &(-1i32).to_be_bytes());
    OutgoingBatch {
        header,
        body: batch.records_bytes(),
    }
}

fn set_target(h: &mut BatchHeader, target: &TargetProducer) {
    h.base_offset = 0;
    h.partition_leader_epoch = -1;
    h.attributes = h
        .attributes
        .with(
            Attributes::LOG_APPEND_TIME | Attributes::DELETE_HORIZON,
            false,
        )
        .with(Attributes::TRANSACTIONAL, target.transactional);
    h.producer_id = target.producer_id;
    h.producer_epoch = target.producer_epoch;
    h.base_sequence = target.base_sequence;
}

/// Patches the producer fields and attribute bits and recomputes the CRC over the unchanged
/// payload; the source CRC is verified first with the same payload CRC (one pass).
fn patch(batch: &RecordBatch, target: &TargetProducer) -> Result<OutgoingBatch, DataError> {
    let payload_crc = batch.payload_crc();
    let shift = CrcShift::new(batch.records_slice().len());
    batch.check_crc(shift.combine(batch.header_crc(), payload_crc))?;
    let mut fields = batch.header();
    set_target(&mut fields, target);
    let mut header = fields.to_prefix(batch.length(), batch.records_count());
    let head_crc = crc32c::crc32c(header.get(ATTRIBUTES_OFFSET..).unwrap_or(&[]));
    let crc = shift.combine(head_crc, payload_crc);
    put(&mut header, CRC_OFFSET, &crc.to_be_bytes());
    Ok(OutgoingBatch {
        header,
        body: batch.records_bytes(),
    })
}

/// Decodes, keeps the records at or above `position`, renumbers 0..n−1 and re-encodes.
/// `None` when no record is left.
fn renumber(
    batch: &RecordBatch,
    target: &TargetProducer,
    position: i64,
    config: &ForwardConfig,
) -> Result<Option<(OutgoingBatch, Vec<i64>)>, DataError> {
    let options = DecodeOptions {
        max_uncompressed_bytes: config.max_uncompressed_bytes,
        verify_crc: true,
    };
    let mut decoded = DecodedBatch::decode(batch, &options)?;
    if decoded.header.attributes.is_log_append_time() {
        // Consumers of the source read every record as the append time (`maxTimestamp`); the
        // target (CreateTime) must show the same timestamps (kafka-wire.md §2.3).
        decoded.header.base_timestamp = decoded.header.max_timestamp;
        for r in &mut decoded.records {
            r.timestamp_delta = 0;
        }
    }
    let base = batch.base_offset();
    let mut header = decoded.header;
    let mut records = Vec::new();
    let mut offsets = Vec::new();
    let mut max_timestamp = i64::MIN;
    for r in decoded.records {
        let offset = base.wrapping_add(i64::from(r.offset_delta));
        if offset < position {
            continue;
        }
        let delta = i32::try_from(records.len()).map_err(|_| DataError::Batch {
            position: batch.position(),
            kind: BatchErrorKind::Unencodable {
                reason: "more than i32::MAX records",
            },
        })?;
        max_timestamp = max_timestamp.max(header.base_timestamp.wrapping_add(r.timestamp_delta));
        offsets.push(offset);
        records.push(record::Record {
            offset_delta: delta,
            ..r
        });
    }
    let Some(n) = records.len().checked_sub(1) else {
        return Ok(None);
    };
    // The base timestamp and every delta are kept: record timestamps stay base + delta, also
    // for a delete-horizon batch (see the module docs).
    header.last_offset_delta = i32::try_from(n).unwrap_or(i32::MAX);
    header.max_timestamp = max_timestamp;
    if let Some(codec) = config.target_codec {
        header.attributes = header.attributes.with_codec(codec);
    }
    set_target(&mut header, target);
    let (h, body) = record::encode_parts(&header, &records)?;
    Ok(Some((OutgoingBatch { header: h, body }, offsets)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchScanner;
    use crate::record::tests::{arb_records, tricky_records};
    use crate::record::{Header, Record, encode_parts, producer_header};
    use proptest::prelude::*;

    fn build(header: BatchHeader, records: &[Record]) -> RecordBatch {
        let (p, body) = encode_parts(&header, records).unwrap();
        let mut out = BytesMut::new();
        out.put_slice(&p);
        out.put_slice(&body);
        RecordBatch::new(out.freeze()).unwrap()
    }

    fn simple_records(n: i32) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                timestamp_delta: i64::from(i) * 10,
                offset_delta: i,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("v{i}"))),
                headers: vec![Header {
                    key: Bytes::from_static(b"h"),
                    value: Some(Bytes::from(format!("{i}"))),
                }],
                ..Record::default()
            })
            .collect()
    }

    fn source(base_offset: i64, codec: Codec, records: &[Record]) -> BatchHeader {
        let mut h = producer_header(1_000_000, Attributes(0).with_codec(codec), records);
        h.base_offset = base_offset;
        h.partition_leader_epoch = 5;
        h
    }

    fn decode(out: &OutgoingBatch) -> DecodedBatch {
        let b = out.to_batch().unwrap();
        b.verify_crc().unwrap();
        DecodedBatch::decode(&b, &DecodeOptions::default()).unwrap()
    }

    #[test]
    fn as_is_touches_only_offset_and_epoch() {
        let recs = simple_records(3);
        let batch = build(source(100, Codec::None, &recs), &recs);
        let mut f = Forwarder::new(ForwardConfig::default(), 100);
        let out = f
            .forward(Entry::V2(batch.clone()), TargetProducer::PLAIN)
            .unwrap();
        assert_eq!(out.route, Route::AsIs);
        assert_eq!(out.next_offset, 103);
        assert_eq!(
            out.source_offsets,
            SourceOffsets::Range {
                first: 100,
                last: 102
            }
        );
        let b = out.batch.unwrap();
        assert_eq!(
            b.body().as_ptr(),
            batch.records_slice().as_ptr(),
            "zero-copy body"
        );
        let bytes = b.to_bytes();
        assert_eq!(&bytes[..8], &[0; 8]);
        assert_eq!(&bytes[12..16], &[0xff; 4]);
        assert_eq!(&bytes[16..], &batch.as_bytes()[16..]);
        b.to_batch().unwrap().verify_crc().unwrap();
    }

    #[test]
    fn patch_sets_producer_fields_and_recomputes_crc() {
        for codec in Codec::ALL {
            let recs = simple_records(4);
            let mut h = source(10, codec, &recs);
            h.producer_id = 999;
            h.producer_epoch = 4;
            h.base_sequence = 17;
            h.attributes = h.attributes.with(Attributes::TRANSACTIONAL, true);
            let batch = build(h, &recs);
            let target = TargetProducer::idempotent(7, 1, 250);
            let mut f = Forwarder::new(ForwardConfig::default(), 10);
            let out = f.forward(Entry::V2(batch.clone()), target).unwrap();
            assert_eq!(out.route, Route::Patch, "{codec}");
            let b = out.batch.unwrap();
            assert_eq!(b.body().as_ptr(), batch.records_slice().as_ptr());
            let view = b.to_batch().unwrap();
            view.verify_crc().unwrap();
            assert_eq!(view.producer_id(), 7);
            assert_eq!(view.producer_epoch(), 1);
            assert_eq!(view.base_sequence(), 250);
            assert!(!view.attributes().is_transactional());
            assert_eq!(view.attributes().codec(), Some(codec));
            assert_eq!(view.base_offset(), 0);
            assert_eq!(b.records_count(), 4);
            let d = DecodedBatch::decode(&view, &DecodeOptions::default()).unwrap();
            assert_eq!(d.records, recs);
        }
    }

    #[test]
    fn patch_refuses_a_corrupt_source() {
        let recs = simple_records(2);
        let mut h = source(0, Codec::None, &recs);
        h.producer_id = 1;
        let batch = build(h, &recs);
        let mut raw = batch.as_bytes().to_vec();
        let last = raw.len() - 1;
        raw[last] ^= 0x40;
        let batch = RecordBatch::new(Bytes::from(raw)).unwrap();
        let mut f = Forwarder::new(ForwardConfig::default(), 0);
        let err = f
            .forward(Entry::V2(batch), TargetProducer::idempotent(5, 0, 0))
            .unwrap_err();
        assert!(matches!(
            err,
            DataError::Batch {
                kind: BatchErrorKind::CrcMismatch { .. },
                ..
            }
        ));
        assert_eq!(f.position(), 0, "no progress past a corrupt batch");
    }

    #[test]
    fn delete_horizon_patch_keeps_record_timestamps() {
        // The cleaner wrote baseTimestamp = horizon and rebased deltas on it.
        let horizon = 2_000_000;
        let create_times = [1_000_000i64, 1_000_050, 999_990];
        let recs: Vec<Record> = create_times
            .iter()
            .enumerate()
            .map(|(i, t)| Record {
                timestamp_delta: t - horizon,
                offset_delta: i as i32,
                value: Some(Bytes::from_static(b"x")),
                ..Record::default()
            })
            .collect();
        let h = BatchHeader {
            base_offset: 50,
            attributes: Attributes(Attributes::DELETE_HORIZON),
            last_offset_delta: 2,
            base_timestamp: horizon,
            max_timestamp: 1_000_050,
            ..BatchHeader::default()
        };
        let batch = build(h, &recs);
        let before = DecodedBatch::decode(&batch, &DecodeOptions::default()).unwrap();
        let times_before: Vec<_> = (0..3).map(|i| before.timestamp(i).unwrap()).collect();
        assert_eq!(times_before, create_times);
        let mut f = Forwarder::new(ForwardConfig::default(), 50);
        let out = f.forward(Entry::V2(batch), TargetProducer::PLAIN).unwrap();
        assert_eq!(
            out.route,
            Route::Patch,
            "bit 6 forces a patch even in plain mode"
        );
        let after = decode(out.batch.as_ref().unwrap());
        assert!(!after.header.attributes.has_delete_horizon());
        let times_after: Vec<_> = (0..3).map(|i| after.timestamp(i).unwrap()).collect();
        assert_eq!(times_after, create_times);
        assert_eq!(after.header.max_timestamp, 1_000_050);
    }

    #[test]
    fn delete_horizon_renumber_keeps_record_timestamps() {
        let horizon = 5_000;
        let recs: Vec<Record> = [(0, 100i64), (3, 300)]
            .iter()
            .map(|&(d, t)| Record {
                timestamp_delta: t - horizon,
                offset_delta: d,
                key: Some(Bytes::from_static(b"k")),
                ..Record::default()
            })
            .collect();
        let h = BatchHeader {
            base_offset: 0,
            attributes: Attributes(Attributes::DELETE_HORIZON).with_codec(Codec::Gzip),
            last_offset_delta: 3,
            base_timestamp: horizon,
            max_timestamp: 300,
            ..BatchHeader::default()
        };
        let batch = build(h, &recs);
        let mut f = Forwarder::new(ForwardConfig::default(), 0);
        let out = f.forward(Entry::V2(batch), TargetProducer::PLAIN).unwrap();
        assert_eq!(out.route, Route::Renumber(RenumberReason::OffsetHoles));
        let d = decode(out.batch.as_ref().unwrap());
        assert_eq!(d.timestamp(0), Some(100));
        assert_eq!(d.timestamp(1), Some(300));
        assert_eq!(d.header.max_timestamp, 300);
        assert_eq!(d.header.attributes.codec(), Some(Codec::Gzip));
    }

    #[test]
    fn log_append_time_becomes_create_time_with_the_append_time() {
        let recs = simple_records(3);
        let mut h = source(0, Codec::Lz4, &recs);
        h.attributes = h.attributes.with(Attributes::LOG_APPEND_TIME, true);
        // The broker's append time, later than every producer timestamp.
        h.max_timestamp = 2_000_000;
        let batch = build(h, &recs);
        let mut f = Forwarder::new(ForwardConfig::default(), 0);
        let out = f.forward(Entry::V2(batch), TargetProducer::PLAIN).unwrap();
        assert_eq!(out.route, Route::Renumber(RenumberReason::LogAppendTime));
        let d = decode(out.batch.as_ref().unwrap());
        assert!(!d.header.attributes.is_log_append_time());
        assert_eq!(d.header.attributes.codec(), Some(Codec::Lz4));
        for i in 0..3 {
            assert_eq!(d.timestamp(i), Some(2_000_000), "record {i}");
        }
        assert_eq!(d.header.max_timestamp, 2_000_000);
        assert_eq!(d.records[2].key, recs[2].key);
    }

    #[test]
    fn transactional_target_sets_bit_4() {
        let recs = simple_records(1);
        let batch = build(source(0, Codec::None, &recs), &recs);
        let mut f = Forwarder::new(ForwardConfig::default(), 0);
        let out = f
            .forward(Entry::V2(batch), TargetProducer::transactional(3, 0, 0))
            .unwrap();
        assert_eq!(out.route, Route::Patch);
        assert!(
            decode(out.batch.as_ref().unwrap())
                .header
                .attributes
                .is_transactional()
        );
    }

    #[test]
    fn renumber_start_inside_batch_keeps_records_identical() {
        for codec in Codec::ALL {
            let recs = tricky_records(); // deltas 0, 1, 7
            let mut h = source(100, codec, &recs);
            h.last_offset_delta = 7;
            let batch = build(h, &recs);
            let mut f = Forwarder::new(ForwardConfig::default(), 101);
            let target = TargetProducer::idempotent(8, 2, 30);
            let out = f.forward(Entry::V2(batch), target).unwrap();
            assert_eq!(out.route, Route::Renumber(RenumberReason::StartInsideBatch));
            assert_eq!(out.source_offsets, SourceOffsets::Listed(vec![101, 107]));
            assert_eq!(out.next_offset, 108);
            let d = decode(out.batch.as_ref().unwrap());
            assert_eq!(d.header.last_offset_delta, 1);
            assert_eq!(d.header.producer_id, 8);
            assert_eq!(d.header.base_sequence, 30);
            assert_eq!(d.header.attributes.codec(), Some(codec));
            for (got, want) in d.records.iter().zip(&recs[1..]) {
                assert_eq!(
                    Record {
                        offset_delta: 0,
                        ..got.clone()
                    },
                    Record {
                        offset_delta: 0,
                        ..want.clone()
                    }
                );
            }
            assert_eq!(
                d.records.iter().map(|r| r.offset_delta).collect::<Vec<_>>(),
                [0, 1]
            );
        }
    }

    #[test]
    fn renumber_with_nothing_left_is_a_drop() {
        let recs = tricky_records(); // 100, 101, 107
        let mut h = source(100, Codec::None, &recs);
        h.last_offset_delta = 9; // cleaner removed 108, 109
        let batch = build(h, &recs);
        let mut f = Forwarder::new(ForwardConfig::default(), 108);
        let out = f.forward(Entry::V2(batch), TargetProducer::PLAIN).unwrap();
        assert_eq!(out.route, Route::Drop(DropReason::AlreadyForwarded));
        assert_eq!(out.next_offset, 110);
    }

    #[test]
    fn recompress_to_target_codec() {
        let recs = simple_records(5);
        let batch = build(source(0, Codec::None, &recs), &recs);
        let config = ForwardConfig {
            target_codec: Some(Codec::Zstd),
            ..ForwardConfig::default()
        };
        let mut f = Forwarder::new(config, 0);
        let out = f.forward(Entry::V2(batch), TargetProducer::PLAIN).unwrap();
        assert_eq!(out.route, Route::Renumber(RenumberReason::Recompress));
        let d = decode(out.batch.as_ref().unwrap());
        assert_eq!(d.header.attributes.codec(), Some(Codec::Zstd));
        assert_eq!(d.records, recs);
    }

    fn control_batch(offset: i64, pid: i64, kind: i16) -> RecordBatch {
        let mut key = Vec::new();
        key.extend_from_slice(&0i16.to_be_bytes());
        key.extend_from_slice(&kind.to_be_bytes());
        let mut value = Vec::new();
        value.extend_from_slice(&0i16.to_be_bytes());
        value.extend_from_slice(&5i32.to_be_bytes());
        let recs = vec![Record {
            key: Some(Bytes::from(key)),
            value: Some(Bytes::from(value)),
            ..Record::default()
        }];
        let h = BatchHeader {
            base_offset: offset,
            attributes: Attributes(Attributes::CONTROL | Attributes::TRANSACTIONAL),
            producer_id: pid,
            producer_epoch: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            ..BatchHeader::default()
        };
        build(h, &recs)
    }

    fn txn_batch(offset: i64, pid: i64, n: i32) -> RecordBatch {
        let recs = simple_records(n);
        let mut h = source(offset, Codec::None, &recs);
        h.producer_id = pid;
        h.producer_epoch = 0;
        h.base_sequence = 0;
        h.attributes = h.attributes.with(Attributes::TRANSACTIONAL, true);
        build(h, &recs)
    }

    #[test]
    fn read_committed_follows_the_java_consumer() {
        // pid 1: data 0..=1, ABORT at 2; pid 2: data 3..=4, COMMIT at 5; pid 1 again: data 6, ABORT at 7
        let entries = [
            txn_batch(0, 1, 2),
            control_batch(2, 1, 0),
            txn_batch(3, 2, 2),
            control_batch(5, 2, 1),
            txn_batch(6, 1, 1),
            control_batch(7, 1, 0),
        ];
        let mut f = Forwarder::new(ForwardConfig::default(), 0);
        f.add_aborted([
            AbortedTransaction {
                first_offset: 0,
                producer_id: 1,
            },
            AbortedTransaction {
                first_offset: 6,
                producer_id: 1,
            },
        ]);
        let routes: Vec<Route> = entries
            .iter()
            .map(|b| f.forward_batch(b, TargetProducer::PLAIN).unwrap().route)
            .collect();
        assert_eq!(
            routes,
            [
                Route::Drop(DropReason::Aborted),
                Route::Drop(DropReason::Control),
                Route::Patch,
                Route::Drop(DropReason::Control),
                Route::Drop(DropReason::Aborted),
                Route::Drop(DropReason::Control),
            ]
        );
        assert_eq!(f.position(), 8);
        // read_uncommitted: aborted data is forwarded, markers still dropped.
        let mut f = Forwarder::new(ForwardConfig::default(), 0);
        let routes: Vec<Route> = entries
            .iter()
            .map(|b| f.forward_batch(b, TargetProducer::PLAIN).unwrap().route)
            .collect();
        assert_eq!(routes[0], Route::Patch);
        assert_eq!(routes[1], Route::Drop(DropReason::Control));
    }

    #[test]
    fn drops_empty_and_already_forwarded() {
        let recs = simple_records(3);
        let batch = build(source(10, Codec::None, &recs), &recs);
        let mut f = Forwarder::new(ForwardConfig::default(), 13);
        let out = f.forward_batch(&batch, TargetProducer::PLAIN).unwrap();
        assert_eq!(out.route, Route::Drop(DropReason::AlreadyForwarded));
        assert_eq!(out.next_offset, 13);
        // Empty batch kept by the cleaner: count 0, lastOffsetDelta 2, baseTimestamp −1.
        let h = BatchHeader {
            base_offset: 20,
            last_offset_delta: 2,
            producer_id: 4,
            ..BatchHeader::default()
        };
        let empty = build(h, &[]);
        let out = f.forward_batch(&empty, TargetProducer::PLAIN).unwrap();
        assert_eq!(out.route, Route::Drop(DropReason::Empty));
        assert_eq!(out.next_offset, 23);
    }

    #[test]
    fn legacy_entries_are_converted() {
        let mut blob = legacy::encode_message(0, 1, 0, 10, Some(b"a"), Some(b"1"));
        blob.extend(legacy::encode_message(1, 1, 0, 20, None, Some(b"2")));
        let entries: Vec<LegacyEntry> = BatchScanner::new(Bytes::from(blob))
            .map(|e| match e.unwrap() {
                Entry::Legacy(l) => l,
                _ => unreachable!(),
            })
            .collect();
        let mut f = Forwarder::new(ForwardConfig::default(), 0);
        let out = f
            .forward_legacy(&entries, TargetProducer::idempotent(3, 0, 9))
            .unwrap();
        assert_eq!(out.route, Route::Convert);
        assert_eq!(out.next_offset, 2);
        let d = decode(out.batch.as_ref().unwrap());
        assert_eq!(d.header.producer_id, 3);
        assert_eq!(d.header.base_sequence, 9);
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.timestamp(1), Some(20));
    }

    #[test]
    fn max_batch_bytes_is_a_limit_error() {
        let recs = simple_records(3);
        let batch = build(source(0, Codec::None, &recs), &recs);
        let config = ForwardConfig {
            max_batch_bytes: Some(batch.entry_len() - 1),
            ..ForwardConfig::default()
        };
        let err = Forwarder::new(config, 0)
            .forward_batch(&batch, TargetProducer::PLAIN)
            .unwrap_err();
        assert!(err.is_limit());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Any source batch, any position, any target: the output (if any) is a valid batch the
        /// target accepts (CRC, contiguous deltas, count = lastOffsetDelta + 1, baseOffset 0,
        /// no control/LogAppendTime/delete-horizon bits) whose records are the source records
        /// at or above the position, unchanged except for offsets (and LogAppendTime timestamps,
        /// which become the append time).
        #[test]
        fn forward_preserves_records(
            records in arb_records(),
            codec_id in 0u8..5,
            extra in 0i32..3,
            skip in 0i64..6,
            bits in proptest::sample::select(vec![0i16, 0x08, 0x10, 0x40, 0x58]),
            pid in -1i64..3,
            target_pid in -1i64..3,
        ) {
            let codec = Codec::from_id(codec_id).unwrap();
            let mut h = producer_header(1_000, Attributes(bits).with_codec(codec), &records);
            h.base_offset = 1000;
            h.last_offset_delta += extra;
            h.producer_id = pid;
            h.producer_epoch = if pid >= 0 { 0 } else { -1 };
            h.base_sequence = if pid >= 0 { 0 } else { -1 };
            let batch = build(h, &records);
            let target = if target_pid >= 0 { TargetProducer::idempotent(target_pid, 0, 5) } else { TargetProducer::PLAIN };
            let mut f = Forwarder::new(ForwardConfig::default(), 1000 + skip);
            let out = f.forward_batch(&batch, target).unwrap();
            let expect: Vec<&Record> = records.iter().filter(|r| 1000 + i64::from(r.offset_delta) >= 1000 + skip).collect();
            prop_assert_eq!(out.next_offset, (1000 + skip).max(batch.next_offset()));
            match &out.batch {
                None => prop_assert!(expect.is_empty()),
                Some(b) => {
                    let d = decode(b);
                    prop_assert_eq!(d.header.base_offset, 0);
                    prop_assert_eq!(i64::from(d.header.last_offset_delta) + 1, d.records.len() as i64);
                    prop_assert_eq!(d.header.attributes.0 & 0x68, 0);
                    prop_assert_eq!(d.header.attributes.codec(), Some(codec));
                    prop_assert_eq!(d.header.producer_id, target.producer_id);
                    prop_assert_eq!(d.header.base_sequence, target.base_sequence);
                    prop_assert_eq!(d.records.len(), expect.len());
                    for (i, (got, want)) in d.records.iter().zip(&expect).enumerate() {
                        prop_assert_eq!(got.offset_delta, i as i32);
                        prop_assert_eq!(&got.key, &want.key);
                        prop_assert_eq!(&got.value, &want.value);
                        prop_assert_eq!(&got.headers, &want.headers);
                        prop_assert_eq!(got.attributes, want.attributes);
                        // As a source consumer reads it: the append time in a LogAppendTime batch.
                        let want_ts = if bits & 0x08 != 0 {
                            batch.max_timestamp()
                        } else {
                            1_000 + want.timestamp_delta
                        };
                        prop_assert_eq!(d.header.base_timestamp + got.timestamp_delta, want_ts);
                    }
                    if out.route.is_zero_copy() {
                        prop_assert_eq!(b.body().as_ptr(), batch.records_slice().as_ptr());
                    }
                }
            }
        }
    }
}
