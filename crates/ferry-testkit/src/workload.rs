//! A seeded workload producer (reliability.md, "Seeded workload").
//!
//! A [`Workload`] fixes, from one seed, every record a test writes: keys (null, empty, a few
//! repeating ones), values (null, empty, ASCII of varied sizes), header shapes (none, repeated
//! keys, null values), timestamps (deltas going back and forth) and batch boundaries with a
//! codec per batch (none, gzip, snappy, lz4, zstd). Record `seq` of a partition is the same
//! bytes whenever it is generated, so a test can write a range now and another later.
//!
//! Every record identifies itself wherever it is found: its value starts with
//! `<run>|<producer>|<partition>|<seq>|` (unless the value is null) and it carries a header
//! [`ID_HEADER`] with `<run>/<producer>/<partition>/<seq>` and a header [`SUM_HEADER`] with a
//! CRC-32C of key and value.
//!
//! Batches are encoded with ferry-protocol and written by ferry-client's idempotent producer
//! (one producer id per [`Workload::produce`] call); transactional writes go through the Java
//! producer ([`crate::JavaTools::transactional_produce`]) with [`Workload::value`] texts.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use ferry_client::Cluster;
use ferry_client::producer::{IdempotentProducer, ProducerConfig};
use ferry_protocol::batch::Attributes;
use ferry_protocol::compression::Codec;
use ferry_protocol::record::{Header, Record, encode_parts, producer_header};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Header carrying `<run>/<producer>/<partition>/<seq>`.
pub const ID_HEADER: &str = "ferry-id";
/// Header carrying the CRC-32C of key and value, as 8 hex digits.
pub const SUM_HEADER: &str = "ferry-sum";

/// The shape of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// The seed: everything below is derived from it.
    pub seed: u64,
    /// Producer number embedded in ids (several producers may write one topic).
    pub producer: u32,
    /// Codecs batches are written with, chosen per batch.
    pub codecs: Vec<Codec>,
    /// Records per batch.
    pub batch_records: Range<usize>,
    /// Value sizes in bytes (beyond the id prefix).
    pub value_size: Range<usize>,
    /// Whether some values are null (tombstones when the key is set).
    pub null_values: bool,
    /// Whether some values are empty (about 1 in 25; the id stays in a header).
    pub empty_values: bool,
}

impl WorkloadSpec {
    /// Defaults: producer 0, every codec, 1–40 records per batch, 0–300-byte values, some
    /// empty values, no tombstones.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            producer: 0,
            codecs: vec![
                Codec::None,
                Codec::Gzip,
                Codec::Snappy,
                Codec::Lz4,
                Codec::Zstd,
            ],
            batch_records: 1..40,
            value_size: 0..300,
            null_values: false,
            empty_values: true,
        }
    }
}

/// A seeded workload for one topic. See the module docs.
#[derive(Debug, Clone)]
pub struct Workload {
    spec: WorkloadSpec,
    run: String,
    topic: String,
    base_timestamp: i64,
}

/// What [`Workload::produce`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceReport {
    /// Records acknowledged, per partition.
    pub acked: BTreeMap<i32, u64>,
    /// Batches acknowledged.
    pub batches: u64,
    /// Bytes of batches sent.
    pub bytes: u64,
}

fn mix(mut z: u64) -> u64 {
    // splitmix64 finaliser: independent streams per (seed, partition, seq).
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Workload {
    /// A workload for `topic`; the run id is derived from the seed and the topic.
    pub fn new(spec: WorkloadSpec, topic: impl Into<String>) -> Self {
        let topic = topic.into();
        let run = format!(
            "r{:08x}",
            mix(spec.seed ^ u64::from(crc32c::crc32c(topic.as_bytes()))) as u32
        );
        let base_timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1_700_000_000_000, |d| {
                i64::try_from(d.as_millis()).unwrap_or(0)
            });
        Self {
            spec,
            run,
            topic,
            base_timestamp,
        }
    }

    /// The spec.
    pub fn spec(&self) -> &WorkloadSpec {
        &self.spec
    }

    /// The run id embedded in every record.
    pub fn run_id(&self) -> &str {
        &self.run
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn rng(&self, partition: i32, seq: u64, salt: u64) -> StdRng {
        let p = u64::from(partition.unsigned_abs());
        StdRng::seed_from_u64(mix(self.spec.seed ^ mix(p << 40 ^ seq) ^ salt))
    }

    /// The id of record `seq` of `partition`: `<run>/<producer>/<partition>/<seq>`.
    pub fn id(&self, partition: i32, seq: u64) -> String {
        format!("{}/{}/{partition}/{seq}", self.run, self.spec.producer)
    }

    /// The value text of record `seq` (never null: for the Java producer).
    pub fn value(&self, partition: i32, seq: u64) -> String {
        let mut rng = self.rng(partition, seq, 1);
        let size = rng.random_range(self.spec.value_size.clone());
        let pad: String = (0..size)
            .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
            .collect();
        format!(
            "{}|{}|{partition}|{seq}|{pad}",
            self.run, self.spec.producer
        )
    }

    /// Record `seq` of `partition` (offset delta 0, timestamp delta relative to the workload's
    /// base timestamp).
    pub fn record(&self, partition: i32, seq: u64) -> Record {
        let mut rng = self.rng(partition, seq, 2);
        let key = match rng.random_range(0..10u8) {
            0 => None,
            1 => Some(Bytes::new()),
            2..=5 => Some(Bytes::from(format!("k{}", seq % 13))),
            _ => Some(Bytes::from(format!("key-{partition}-{seq}"))),
        };
        let value = if self.spec.null_values && rng.random_range(0..20u8) == 0 {
            None
        } else if rng.random_range(0..25u8) == 0 && self.spec.empty_values {
            // Empty is not null; keep the id in a header only.
            Some(Bytes::new())
        } else {
            Some(Bytes::from(self.value(partition, seq)))
        };
        let mut headers = vec![Header {
            key: Bytes::from_static(ID_HEADER.as_bytes()),
            value: Some(Bytes::from(self.id(partition, seq))),
        }];
        match rng.random_range(0..5u8) {
            0 => {}
            1 => headers.push(Header {
                key: Bytes::from_static(b"h"),
                value: None,
            }),
            2 => {
                headers.push(Header {
                    key: Bytes::from_static(b"dup"),
                    value: Some(Bytes::from_static(b"1")),
                });
                headers.push(Header {
                    key: Bytes::from_static(b"dup"),
                    value: Some(Bytes::from_static(b"2")),
                });
            }
            _ => headers.push(Header {
                key: Bytes::from_static(b"trace"),
                value: Some(Bytes::from(format!("{:x}", rng.random::<u64>()))),
            }),
        }
        let mut sum = crc32c::crc32c(key.as_deref().unwrap_or(b"\xff"));
        sum = crc32c::crc32c_append(sum, value.as_deref().unwrap_or(b"\xff"));
        headers.push(Header {
            key: Bytes::from_static(SUM_HEADER.as_bytes()),
            value: Some(Bytes::from(format!("{sum:08x}"))),
        });
        let seq_ms = i64::try_from(seq).unwrap_or(0);
        Record {
            timestamp_delta: seq_ms + rng.random_range(-500..500i64),
            key,
            value,
            headers,
            ..Record::default()
        }
    }

    /// The batches of records `seqs` of `partition`: `(codec, encoded batch, records)`.
    pub fn batches(&self, partition: i32, seqs: Range<u64>) -> Vec<(Codec, Bytes, usize)> {
        let mut out = Vec::new();
        let mut seq = seqs.start;
        while seq < seqs.end {
            let mut rng = self.rng(partition, seq, 3);
            let n = rng
                .random_range(self.spec.batch_records.clone())
                .max(1)
                .min(usize::try_from(seqs.end - seq).unwrap_or(usize::MAX));
            let codec = self
                .spec
                .codecs
                .get(rng.random_range(0..self.spec.codecs.len().max(1)))
                .copied()
                .unwrap_or(Codec::None);
            let records: Vec<Record> = (0..n)
                .map(|i| {
                    let mut r = self.record(partition, seq + i as u64);
                    r.offset_delta = i32::try_from(i).unwrap_or(i32::MAX);
                    r
                })
                .collect();
            let header = producer_header(
                self.base_timestamp,
                Attributes(0).with_codec(codec),
                &records,
            );
            if let Ok((prefix, payload)) = encode_parts(&header, &records) {
                let mut b = BytesMut::with_capacity(prefix.len() + payload.len());
                b.extend_from_slice(&prefix);
                b.extend_from_slice(&payload);
                out.push((codec, b.freeze(), n));
            }
            seq += n as u64;
        }
        out
    }

    /// Writes records `seqs` of every partition in `partitions` with one idempotent producer
    /// and waits for every acknowledgement.
    pub async fn produce(
        &self,
        cluster: &Cluster,
        partitions: Range<i32>,
        seqs: Range<u64>,
    ) -> Result<ProduceReport, ferry_client::ClientError> {
        let producer = IdempotentProducer::new(cluster.clone(), ProducerConfig::default()).await?;
        let mut report = ProduceReport::default();
        let mut waits = Vec::new();
        for p in partitions {
            for (_, batch, n) in self.batches(p, seqs.clone()) {
                report.bytes += batch.len() as u64;
                waits.push((p, n, producer.send(&self.topic, p, batch)?));
            }
        }
        for (p, n, handle) in waits {
            handle.wait().await?;
            *report.acked.entry(p).or_default() += n as u64;
            report.batches += 1;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::batch::RecordBatch;
    use ferry_protocol::record::{DecodeOptions, DecodedBatch};

    #[test]
    fn same_seed_same_bytes_any_range() {
        let w = Workload::new(WorkloadSpec::new(7), "t");
        let w2 = Workload::new(WorkloadSpec::new(7), "t");
        assert_eq!(w.run_id(), w2.run_id());
        assert_eq!(w.record(3, 10), w2.record(3, 10));
        assert_ne!(w.record(3, 10), w.record(3, 11));
        let other = Workload::new(WorkloadSpec::new(8), "t");
        assert_ne!(w.run_id(), other.run_id());
        // Records generated in batches equal records generated alone.
        let all: Vec<Record> = w
            .batches(1, 0..200)
            .into_iter()
            .flat_map(|(_, b, _)| {
                DecodedBatch::decode(&RecordBatch::new(b).unwrap(), &DecodeOptions::default())
                    .unwrap()
                    .records
            })
            .collect();
        assert_eq!(all.len(), 200);
        for (seq, r) in all.iter().enumerate() {
            let alone = w.record(1, seq as u64);
            assert_eq!(r.key, alone.key);
            assert_eq!(r.value, alone.value);
            assert_eq!(r.headers, alone.headers);
        }
    }

    #[test]
    fn records_identify_themselves_and_vary() {
        let mut spec = WorkloadSpec::new(1);
        spec.null_values = true;
        let w = Workload::new(spec, "t");
        let recs: Vec<Record> = (0..500).map(|s| w.record(2, s)).collect();
        for (seq, r) in recs.iter().enumerate() {
            let id = &r.headers[0];
            assert_eq!(id.key.as_ref(), ID_HEADER.as_bytes());
            assert_eq!(id.value.as_deref(), Some(w.id(2, seq as u64).as_bytes()));
            if let Some(v) = &r.value
                && !v.is_empty()
            {
                assert!(v.starts_with(format!("{}|0|2|{seq}|", w.run_id()).as_bytes()));
            }
        }
        assert!(recs.iter().any(|r| r.key.is_none()));
        assert!(recs.iter().any(|r| r.key.as_deref() == Some(b"")));
        assert!(recs.iter().any(|r| r.value.is_none()));
        assert!(recs.iter().any(|r| r.value.as_deref() == Some(b"")));
        assert!(recs.iter().any(|r| {
            r.headers
                .iter()
                .filter(|h| h.key.as_ref() == b"dup")
                .count()
                == 2
        }));
        assert!(
            recs.iter()
                .any(|r| r.headers.iter().any(|h| h.value.is_none()))
        );
        let codecs: std::collections::BTreeSet<String> = w
            .batches(0, 0..2000)
            .iter()
            .map(|(c, _, _)| format!("{c:?}"))
            .collect();
        assert_eq!(codecs.len(), 5, "{codecs:?}");
    }
}
