//! ferry-client against real brokers: connect on every listener, typed auth and TLS errors,
//! the idempotent producer read back by the Java consumer, the fetcher reading what the Java
//! producer wrote, read_committed, a 3.9 cluster, and a broker crash mid-stream.
//!
//! Gated by `FERRY_IT=1` / `CI=true` (`ferry_testkit::require_kafka!`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_client::admin::{Admin, NewTopic};
use ferry_client::cluster::{OffsetSpec, TopicSelection};
use ferry_client::fetcher::{FetchConfig, FetchEvent, Fetcher, IsolationLevel, TopicPartition};
use ferry_client::producer::{IdempotentProducer, ProducerConfig};
use ferry_client::tls::TlsFailure;
use ferry_client::{
    BackoffConfig, ClientError, Cluster, ConnectionConfig, SaslMechanism, Secret, SecurityProtocol,
    TlsSettings,
};
use ferry_testkit::{Listener, TxnOutcome};

use crate::common::{access_matrix, block_on, connection, connection_as_admin};

fn plaintext(cluster: &ferry_testkit::Cluster) -> ConnectionConfig {
    connection(cluster, Listener::Plaintext).build().unwrap()
}

// ---------------------------------------------------------------------------------------------
// A tiny v2 batch encoder and header scanner, independent of ferry-protocol's batch module so
// these tests check the client alone (kafka-wire.md §1.2, §1.5).

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// An uncompressed v2 batch of `(key, value)` records, producer fields −1.
fn encode_batch(records: &[(Option<String>, String)], timestamp: i64) -> Bytes {
    let mut body = Vec::new();
    for (i, (key, value)) in records.iter().enumerate() {
        let mut r = vec![0u8]; // attributes
        put_varint(&mut r, 0); // timestamp delta
        put_varint(&mut r, i as i64); // offset delta
        match key {
            Some(k) => {
                put_varint(&mut r, k.len() as i64);
                r.extend_from_slice(k.as_bytes());
            }
            None => put_varint(&mut r, -1),
        }
        put_varint(&mut r, value.len() as i64);
        r.extend_from_slice(value.as_bytes());
        put_varint(&mut r, 0); // headers
        put_varint(&mut body, r.len() as i64);
        body.extend_from_slice(&r);
    }
    let n = records.len() as i32;
    let mut b = Vec::with_capacity(61 + body.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((49 + body.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]); // crc
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(n - 1).to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&n.to_be_bytes());
    b.extend_from_slice(&body);
    let crc = crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

fn crc32c(data: &[u8]) -> u32 {
    // Bitwise CRC-32C (Castagnoli), reflected polynomial 0x82F63B78.
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[derive(Debug, Clone, Copy)]
struct BatchInfo {
    base_offset: i64,
    last_offset: i64,
    count: i32,
    attributes: i16,
    producer_id: i64,
}

/// Complete v2 batch headers of a Fetch `records` blob (a truncated tail is ignored).
fn scan(records: &Bytes) -> Vec<BatchInfo> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while records.len() >= pos + 12 {
        let base = i64::from_be_bytes(records[pos..pos + 8].try_into().unwrap());
        let size = i32::from_be_bytes(records[pos + 8..pos + 12].try_into().unwrap()) as usize;
        if records.len() < pos + 12 + size {
            break;
        }
        let b = &records[pos..pos + 12 + size];
        assert_eq!(b[16], 2, "only v2 batches expected");
        let delta = i32::from_be_bytes(b[23..27].try_into().unwrap());
        out.push(BatchInfo {
            base_offset: base,
            last_offset: base + i64::from(delta),
            count: i32::from_be_bytes(b[57..61].try_into().unwrap()),
            attributes: i16::from_be_bytes(b[21..23].try_into().unwrap()),
            producer_id: i64::from_be_bytes(b[43..51].try_into().unwrap()),
        });
        pos += 12 + size;
    }
    out
}

/// Fetches every partition of `topic` from 0 up to its high watermark (or LSO), advancing by
/// batch headers. Returns the batches per partition.
async fn fetch_all(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    config: FetchConfig,
) -> (BTreeMap<i32, Vec<BatchInfo>>, Vec<FetchEvent>) {
    let mut fetcher = Fetcher::new(cluster.clone(), config.clone()).unwrap();
    for p in 0..partitions {
        fetcher.assign(TopicPartition::new(topic, p), 0);
    }
    let mut batches: BTreeMap<i32, Vec<BatchInfo>> = BTreeMap::new();
    let mut done: BTreeSet<i32> = BTreeSet::new();
    let mut all_events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.len() < partitions as usize {
        assert!(
            Instant::now() < deadline,
            "fetch did not reach the end: {done:?}"
        );
        for ev in fetcher.fetch().await.unwrap() {
            if let FetchEvent::Data(d) = &ev {
                let end = if config.isolation == IsolationLevel::ReadCommitted {
                    d.last_stable_offset
                } else {
                    d.high_watermark
                };
                let mut next = d.fetch_offset;
                for b in scan(&d.records) {
                    if b.last_offset < next {
                        continue;
                    }
                    next = b.last_offset + 1;
                    batches.entry(d.tp.partition).or_default().push(b);
                }
                fetcher.seek(&d.tp, next);
                if next >= end {
                    done.insert(d.tp.partition);
                }
            }
            all_events.push(ev);
        }
    }
    (batches, all_events)
}

// ---------------------------------------------------------------------------------------------

#[test]
fn connects_negotiates_and_reads_metadata_on_every_listener() {
    ferry_testkit::require_kafka!();
    let cluster = &ferry_testkit::shared_pair().source;
    let topic = ferry_testkit::unique_name("client-md");
    cluster
        .tools(Listener::Plaintext)
        .create_topic(&topic, 3, &[])
        .unwrap();
    block_on(async {
        for access in access_matrix() {
            let c = Cluster::connect(connection_as_admin(cluster, access))
                .await
                .unwrap_or_else(|e| panic!("{access}: {e}"));
            let md = c
                .refresh_metadata(TopicSelection::Topics(vec![topic.clone()]))
                .await
                .unwrap();
            assert_eq!(md.brokers.len(), 1, "{access}");
            let t = &md.topics[&topic];
            assert_eq!(t.partitions.len(), 3);
            assert!(!t.id.is_nil(), "topic ids from Metadata v10+");
            for p in 0..3 {
                let (leader, epoch) = md.leader(&topic, p).unwrap();
                assert_eq!(Some(leader), md.brokers.keys().next().copied());
                assert!(epoch >= 0);
            }
            let conn = c.any_broker().await.unwrap();
            let produce = conn
                .versions()
                .version(ferry_protocol::api::ApiKey::Produce)
                .unwrap();
            let fetch = conn
                .versions()
                .version(ferry_protocol::api::ApiKey::Fetch)
                .unwrap();
            assert!(
                produce >= 12 && fetch >= 17,
                "{access}: 4.x broker: Produce v{produce}, Fetch v{fetch}"
            );
        }
    });
}

/// The idempotent producer and the fetcher over every listener and SASL mechanism, on the 4.x
/// pair and on 3.9: per access, two 3-record batches per partition of one topic land at the
/// expected offsets and are fetched back with this producer's id.
#[test]
fn produce_and_fetch_on_every_listener() {
    ferry_testkit::require_kafka!();
    let clusters = [
        &ferry_testkit::shared_pair().target,
        ferry_testkit::shared_cluster_39(),
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for cluster in clusters {
        let topic = ferry_testkit::unique_name("client-matrix");
        block_on(async {
            let plain = Cluster::connect(plaintext(cluster)).await.unwrap();
            let created = Admin::new(plain)
                .create_topics(&[NewTopic::new(&topic, 2, 1)], false)
                .await
                .unwrap();
            created[&topic].as_ref().unwrap();
            for (i, access) in access_matrix().into_iter().enumerate() {
                let what = format!("Kafka {} over {access}", cluster.version());
                let c = Cluster::connect(connection_as_admin(cluster, access))
                    .await
                    .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
                let producer = IdempotentProducer::new(c.clone(), ProducerConfig::default())
                    .await
                    .unwrap_or_else(|e| panic!("{what}: InitProducerId: {e}"));
                let mut handles = Vec::new();
                for b in 0..2 {
                    for p in 0..2 {
                        let recs: Vec<(Option<String>, String)> = (0..3)
                            .map(|r| (None, format!("{i}-{}", payload(p, b, r))))
                            .collect();
                        let h = producer.send(&topic, p, encode_batch(&recs, now)).unwrap();
                        handles.push((p, b, h));
                    }
                }
                for (p, b, h) in handles {
                    let ack = h
                        .wait()
                        .await
                        .unwrap_or_else(|e| panic!("{what}: produce p{p} b{b}: {e}"));
                    assert_eq!(
                        ack.base_offset,
                        (i * 6 + b * 3) as i64,
                        "{what}: partition {p} batch {b}"
                    );
                }
                let (batches, _) = fetch_all(&c, &topic, 2, FetchConfig::default()).await;
                let pid = producer.identity().producer_id;
                for p in 0..2 {
                    let bs = &batches[&p];
                    assert_eq!(bs.len(), 2 * (i + 1), "{what}: partition {p}: {bs:?}");
                    let mine: Vec<i64> = bs
                        .iter()
                        .filter(|b| b.producer_id == pid && b.count == 3)
                        .map(|b| b.base_offset)
                        .collect();
                    let want = vec![(i * 6) as i64, (i * 6 + 3) as i64];
                    assert_eq!(mine, want, "{what}: partition {p}");
                }
            }
        });
    }
}

#[test]
fn wrong_password_is_a_typed_auth_error_with_the_broker_message() {
    ferry_testkit::require_kafka!();
    let cluster = &ferry_testkit::shared_pair().source;
    block_on(async {
        for (listener, m) in [
            (Listener::SaslPlaintext, SaslMechanism::ScramSha256),
            (Listener::SaslPlaintext, SaslMechanism::Plain),
            (Listener::SaslSsl, SaslMechanism::ScramSha512),
        ] {
            let cfg = connection(cluster, listener)
                .with_sasl(m, "alice", Secret::new("not-the-password"))
                .build()
                .unwrap();
            let t = Instant::now();
            let err = Cluster::connect(cfg).await.unwrap_err();
            assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
            assert!(
                err.is_auth() && err.is_fatal() && !err.is_retriable(),
                "{err:?}"
            );
            match &err {
                ClientError::AuthenticationFailed {
                    mechanism, message, ..
                } => {
                    assert_eq!(*mechanism, m);
                    let msg = message.as_deref().unwrap_or_default();
                    assert!(
                        msg.to_lowercase().contains("authentication failed"),
                        "{msg}"
                    );
                }
                other => panic!("expected AuthenticationFailed, got {other:?}"),
            }
            assert!(!format!("{err:?}").contains("not-the-password"));
        }
    });
}

#[test]
fn tls_failures_are_typed_and_fast() {
    ferry_testkit::require_kafka!();
    let cluster = &ferry_testkit::shared_pair().source;
    let tls = cluster.tls().clone();
    let ssl = |settings: TlsSettings, listener: Listener| {
        ConnectionConfig::builder()
            .with_bootstrap([cluster.bootstrap(listener)])
            .with_security_protocol(SecurityProtocol::Ssl)
            .with_tls(settings)
            .with_connect_timeout(Duration::from_secs(5))
            .with_request_timeout(Duration::from_secs(5))
            .with_backoff(BackoffConfig::default().with_deadline(Duration::from_secs(5)))
            .build()
            .unwrap()
    };
    let mutual = TlsSettings {
        ca_file: Some(tls.ca.clone()),
        client_cert_file: Some(tls.client_cert.clone()),
        client_key_file: Some(tls.client_key.clone()),
        ..TlsSettings::default()
    };
    let expect = |cfg: ConnectionConfig, want: TlsFailure| async move {
        let t = Instant::now();
        match Cluster::connect(cfg).await {
            Err(ClientError::Tls { failure, .. }) if failure == want => {}
            other => panic!("expected {want:?}, got {other:?}"),
        }
        assert!(
            t.elapsed() < Duration::from_secs(6),
            "took {:?}",
            t.elapsed()
        );
    };
    block_on(async {
        expect(
            ssl(
                TlsSettings {
                    ca_file: Some(tls.other_ca.clone()),
                    ..mutual.clone()
                },
                Listener::Ssl,
            ),
            TlsFailure::UnknownIssuer,
        )
        .await;
        expect(
            ssl(
                TlsSettings {
                    server_name: Some("not-in-the-san.example".into()),
                    ..mutual.clone()
                },
                Listener::Ssl,
            ),
            TlsFailure::NameMismatch,
        )
        .await;
        expect(ssl(mutual.clone(), Listener::Plaintext), TlsFailure::NotTls).await;
        // A plaintext client on the TLS port.
        let plain_to_tls = ConnectionConfig::builder()
            .with_bootstrap([cluster.bootstrap(Listener::Ssl)])
            .with_connect_timeout(Duration::from_secs(5))
            .with_request_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        expect(plain_to_tls, TlsFailure::PeerExpectsTls).await;
        // Hostname verification off (empty ssl.endpoint.identification.algorithm): the wrong
        // name is accepted, the chain is still checked.
        let no_verify = TlsSettings {
            server_name: Some("not-in-the-san.example".into()),
            verify_hostname: false,
            ..mutual.clone()
        };
        Cluster::connect(ssl(no_verify.clone(), Listener::Ssl))
            .await
            .unwrap();
        expect(
            ssl(
                TlsSettings {
                    ca_file: Some(tls.other_ca.clone()),
                    ..no_verify
                },
                Listener::Ssl,
            ),
            TlsFailure::UnknownIssuer,
        )
        .await;
    });
}

fn payload(p: i32, batch: usize, i: usize) -> String {
    format!("p{p}-b{batch}-r{i}")
}

#[test]
fn producer_batches_are_read_back_by_the_java_consumer() {
    ferry_testkit::require_kafka!();
    let cluster = &ferry_testkit::shared_pair().target;
    let topic = ferry_testkit::unique_name("client-produce");
    let tools = cluster.tools(Listener::Plaintext);
    tools.create_topic(&topic, 3, &[]).unwrap();
    const BATCHES: usize = 12;
    const RECORDS: usize = 5;
    block_on(async {
        let c = Cluster::connect(plaintext(cluster)).await.unwrap();
        let producer = IdempotentProducer::new(c.clone(), ProducerConfig::default())
            .await
            .unwrap();
        let id = producer.identity();
        assert!(id.producer_id >= 0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let mut handles = Vec::new();
        for b in 0..BATCHES {
            for p in 0..3 {
                let recs: Vec<(Option<String>, String)> = (0..RECORDS)
                    .map(|i| (Some(format!("k{i}")), payload(p, b, i)))
                    .collect();
                handles.push((
                    p,
                    b,
                    producer.send(&topic, p, encode_batch(&recs, now)).unwrap(),
                ));
            }
        }
        for (p, b, h) in handles {
            let ack = h.wait().await.unwrap();
            // Per partition, batch b lands at b * RECORDS and carries sequence b * RECORDS.
            assert_eq!(
                ack.base_offset,
                (b * RECORDS) as i64,
                "partition {p} batch {b}"
            );
            assert_eq!(ack.base_sequence, (b * RECORDS) as i32);
            assert_eq!(ack.identity, id);
        }
        producer.flush().await.unwrap();
        let ends = c
            .list_offsets(&topic, &[0, 1, 2], OffsetSpec::Latest, false)
            .await
            .unwrap();
        assert_eq!(ends, vec![(0, 60), (1, 60), (2, 60)]);
    });
    let consumed = tools
        .console_consume(&topic, 3 * BATCHES * RECORDS, Duration::from_secs(20), &[])
        .unwrap();
    let got: BTreeSet<(i32, i64, String)> = consumed
        .iter()
        .map(|r| (r.partition, r.offset, r.value.clone().unwrap_or_default()))
        .collect();
    let want: BTreeSet<(i32, i64, String)> = (0..3)
        .flat_map(|p| {
            (0..BATCHES).flat_map(move |b| {
                (0..RECORDS).map(move |i| (p, (b * RECORDS + i) as i64, payload(p, b, i)))
            })
        })
        .collect();
    assert_eq!(got, want);
    assert!(
        consumed
            .iter()
            .all(|r| r.key.as_deref().is_some_and(|k| k.starts_with('k')))
    );
}

#[test]
fn fetcher_reads_what_the_java_producer_wrote() {
    ferry_testkit::require_kafka!();
    let cluster = &ferry_testkit::shared_pair().source;
    let topic = ferry_testkit::unique_name("client-fetch");
    let tools = cluster.tools(Listener::Plaintext);
    tools.create_topic(&topic, 4, &[]).unwrap();
    const N: u64 = 20_000;
    let perf = tools
        .produce_perf(
            &topic,
            N,
            100,
            "lz4",
            &[("linger.ms", "5"), ("batch.size", "16384")],
        )
        .unwrap();
    assert_eq!(perf.records, N);
    block_on(async {
        let c = Cluster::connect(plaintext(cluster)).await.unwrap();
        let ends = c
            .list_offsets(&topic, &[0, 1, 2, 3], OffsetSpec::Latest, false)
            .await
            .unwrap();
        let total_end: i64 = ends.iter().map(|(_, o)| o).sum();
        assert_eq!(total_end, N as i64);
        for sessions in [true, false] {
            let config = FetchConfig {
                sessions,
                partition_max_bytes: 64 * 1024,
                max_bytes: 256 * 1024,
                ..FetchConfig::default()
            };
            let (batches, events) = fetch_all(&c, &topic, 4, config).await;
            let count: i64 = batches.values().flatten().map(|b| i64::from(b.count)).sum();
            assert_eq!(count, N as i64, "sessions={sessions}");
            for (p, bs) in &batches {
                // Contiguous, gap-free batches from 0 to the end offset.
                let mut next = 0;
                for b in bs {
                    assert_eq!(b.base_offset, next, "partition {p}");
                    assert_eq!(b.attributes & 0x07, 3, "lz4 batches kept as written");
                    next = b.last_offset + 1;
                }
                assert_eq!(next, ends[*p as usize].1);
            }
            assert!(
                events.iter().all(|e| matches!(e, FetchEvent::Data(_))),
                "{:?}",
                events.iter().find(|e| !matches!(e, FetchEvent::Data(_)))
            );
            let fetches_with_data = events
                .iter()
                .filter(|e| matches!(e, FetchEvent::Data(d) if !d.records.is_empty()))
                .count();
            assert!(
                fetches_with_data >= 4 * 2,
                "small max_bytes forces several rounds"
            );
        }
    });
}

#[test]
fn offset_out_of_range_is_reported_not_reset() {
    ferry_testkit::require_kafka!();
    let cluster = &ferry_testkit::shared_pair().source;
    let topic = ferry_testkit::unique_name("client-oor");
    cluster
        .tools(Listener::Plaintext)
        .create_topic(&topic, 1, &[])
        .unwrap();
    block_on(async {
        let c = Cluster::connect(plaintext(cluster)).await.unwrap();
        let mut f = Fetcher::new(c, FetchConfig::default()).unwrap();
        let tp = TopicPartition::new(&topic, 0);
        f.assign(tp.clone(), 1_000_000);
        for _ in 0..2 {
            let events = f.fetch().await.unwrap();
            assert!(
                events.iter().any(|e| matches!(e,
                    FetchEvent::OffsetOutOfRange { tp: t, fetch_offset: 1_000_000, .. } if *t == tp)),
                "{events:?}"
            );
            assert_eq!(
                f.position(&tp),
                Some(1_000_000),
                "the fetcher never moves a position"
            );
        }
    });
}

#[test]
fn read_committed_exposes_aborted_transactions() {
    ferry_testkit::require_kafka!();
    let cluster = &ferry_testkit::shared_pair().source;
    let topic = ferry_testkit::unique_name("client-txn");
    let tools = cluster.tools(Listener::Plaintext);
    tools.create_topic(&topic, 1, &[]).unwrap();
    let txn_id = ferry_testkit::unique_name("client-txn-id");
    let metas = tools
        .transactional_produce(
            &topic,
            &txn_id,
            &[
                (TxnOutcome::Commit, vec!["c1", "c2"]),
                (TxnOutcome::Abort, vec!["a1", "a2", "a3"]),
                (TxnOutcome::Commit, vec!["c3"]),
            ],
            &[],
        )
        .unwrap();
    let first_aborted = metas
        .iter()
        .filter(|m| m.outcome == TxnOutcome::Abort)
        .map(|m| m.offset)
        .min()
        .unwrap();
    block_on(async {
        let c = Cluster::connect(plaintext(cluster)).await.unwrap();
        let committed = FetchConfig {
            isolation: IsolationLevel::ReadCommitted,
            ..FetchConfig::default()
        };
        let (batches, events) = fetch_all(&c, &topic, 1, committed).await;
        let aborted: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                FetchEvent::Data(d) => Some(d.aborted_transactions.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(
            !aborted.is_empty(),
            "read_committed must list the aborted transaction"
        );
        let txn_batches: Vec<_> = batches[&0]
            .iter()
            .filter(|b| b.attributes & 0x10 != 0)
            .collect();
        let pid = txn_batches[0].producer_id;
        assert!(aborted.iter().all(|a| a.producer_id == pid));
        assert!(
            aborted.iter().any(|a| a.first_offset == first_aborted),
            "{aborted:?} vs {first_aborted}"
        );
        // Markers are control batches (attribute bit 5): commit, abort, commit.
        let markers = batches[&0]
            .iter()
            .filter(|b| b.attributes & 0x20 != 0)
            .count();
        assert_eq!(markers, 3);
        // read_uncommitted returns the same bytes but no aborted list.
        let (_, events) = fetch_all(&c, &topic, 1, FetchConfig::default()).await;
        assert!(events.iter().all(|e| match e {
            FetchEvent::Data(d) => d.aborted_transactions.is_empty(),
            _ => true,
        }));
    });
}

#[test]
fn kafka_3_9_cluster_produce_and_fetch() {
    ferry_testkit::require_kafka!();
    let cluster = ferry_testkit::shared_cluster_39();
    let topic = ferry_testkit::unique_name("client-39");
    cluster
        .tools(Listener::Plaintext)
        .create_topic(&topic, 2, &[])
        .unwrap();
    block_on(async {
        let cfg = connection(cluster, Listener::SaslPlaintext)
            .with_sasl(
                SaslMechanism::ScramSha512,
                "admin",
                Secret::new(cluster.user("admin").password),
            )
            .build()
            .unwrap();
        let c = Cluster::connect(cfg).await.unwrap();
        let conn = c.any_broker().await.unwrap();
        assert_eq!(
            conn.versions()
                .version(ferry_protocol::api::ApiKey::Produce)
                .unwrap(),
            11
        );
        let producer = IdempotentProducer::new(c.clone(), ProducerConfig::default())
            .await
            .unwrap();
        let mut handles = Vec::new();
        for b in 0..10 {
            for p in 0..2 {
                let recs = vec![(None, payload(p, b, 0)), (None, payload(p, b, 1))];
                handles.push(producer.send(&topic, p, encode_batch(&recs, -1)).unwrap());
            }
        }
        for h in handles {
            h.wait().await.unwrap();
        }
        let (batches, _) = fetch_all(&c, &topic, 2, FetchConfig::default()).await;
        for p in 0..2 {
            let bs = &batches[&p];
            assert_eq!(bs.len(), 10);
            assert!(
                bs.iter()
                    .all(|b| b.count == 2 && b.producer_id == producer.identity().producer_id)
            );
        }
    });
}

/// `DumpLogSegments --deep-iteration` of every segment of `topic`-`partition`: each batch's
/// offsets, producer id, epoch and base sequence, as the broker stored them.
fn dump_partition(cluster: &ferry_testkit::Cluster, topic: &str, partition: i32) -> String {
    let dir = cluster.data_dir().join(format!("{topic}-{partition}"));
    let mut logs: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    if logs.is_empty() {
        return format!("no segments in {}", dir.display());
    }
    let mut args = vec!["--deep-iteration".to_owned(), "--files".to_owned()];
    args.push(logs.join(","));
    match cluster.tools(Listener::Plaintext).run_class(
        if cluster.is_kafka4() {
            "org.apache.kafka.tools.DumpLogSegments"
        } else {
            "kafka.tools.DumpLogSegments"
        },
        &args,
    ) {
        Ok(out) => format!("{}{}", out.stdout, out.stderr),
        Err(e) => format!("DumpLogSegments failed: {e}"),
    }
}

// The broker is SIGKILLed mid-stream with up to 5 batches per partition in flight, restarted,
// and every batch must land exactly once, in order. This test was quarantined after 2 flaky
// runs in 7; two causes were found (see the DumpLogSegments output it prints on failure):
// - Client: after the kill, a partition's next batch was sent on the new connection while its
//   earlier batches were still pending on the dead one, so it reached the restarted broker
//   first. Fixed in `producer.rs` (a partition's batches stay on one connection).
// - Old timestamps: on restart the broker dropped our producer id's state as expired and
//   accepted any sequence from it: a batch written just before the kill, whose ack was lost,
//   was appended again when resent. Replicated data often has old timestamps, so the batches
//   here carry CreateTime two days ago on purpose, and the producer now reads the log before
//   resending a batch whose outcome is unknown (`producer.rs`, "Unknown outcomes").
//
// `FERRY_CRASH_RUNS=n` repeats it; `FERRY_CRASH_CHECK_LOG=0` turns the producer's log check
// off to show the duplicates it prevents.
#[test]
fn broker_crash_mid_stream_loses_and_duplicates_nothing() {
    ferry_testkit::require_kafka!();
    // `RUST_LOG=ferry_client::producer=debug` shows every send and outcome.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let runs: usize = std::env::var("FERRY_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let check_log = std::env::var("FERRY_CRASH_CHECK_LOG").map_or(true, |v| v != "0");
    for run in 0..runs {
        eprintln!("broker crash run {}/{runs}", run + 1);
        crash_mid_stream(check_log);
    }
}

fn crash_mid_stream(check_log: bool) {
    let dedicated = ferry_testkit::dedicated_cluster(ferry_testkit::KAFKA_4);
    let topic = ferry_testkit::unique_name("client-crash");
    dedicated
        .tools(Listener::Plaintext)
        .create_topic(&topic, 2, &[])
        .unwrap();
    const BATCHES: usize = 60;
    block_on(async {
        let cfg = connection(&dedicated, Listener::Plaintext)
            .with_request_timeout(Duration::from_secs(10))
            .with_backoff(BackoffConfig::default().with_deadline(Duration::from_secs(120)))
            .build()
            .unwrap();
        let c = Cluster::connect(cfg).await.unwrap();
        let producer_config = ProducerConfig {
            retry: BackoffConfig::default().with_deadline(Duration::from_secs(180)),
            check_log_before_resend: check_log,
            ..ProducerConfig::default()
        };
        let producer = IdempotentProducer::new(c.clone(), producer_config)
            .await
            .unwrap();
        let mut events = producer.subscribe();
        // Old timestamps on purpose: on the restart after kill -9 the broker rebuilds producer
        // state from the log and drops producers whose last batch timestamp is older than
        // `producer.id.expiration.ms` (one day; `ProducerStateManager.isProducerExpired`), then
        // accepts any sequence from our producer id (KIP-360). Only the producer's log check
        // keeps a batch written just before the kill, whose ack was lost, from being
        // appended a second time when resent.
        let two_days_ago = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            - 2 * 24 * 3600 * 1000;
        let mut handles = Vec::new();
        let mut killer = None;
        for b in 0..BATCHES {
            if b == BATCHES / 4 {
                // SIGKILL the broker without pausing the stream, so that it dies with batches
                // in flight: some written but unacknowledged, some never read.
                let pid = dedicated.pid().expect("broker pid");
                killer = Some(
                    std::process::Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .spawn()
                        .unwrap(),
                );
            }
            if b == BATCHES / 2 {
                let d = &dedicated;
                let mut k = killer.take().expect("kill was started");
                assert!(k.wait().unwrap().success(), "kill -KILL failed");
                tokio::task::block_in_place(|| {
                    // Waits for the process to be gone and clears its pid file.
                    d.kill().unwrap();
                    d.start().unwrap();
                });
            }
            for p in 0..2 {
                let recs = vec![
                    (None, payload(p, b, 0)),
                    (None, payload(p, b, 1)),
                    (None, payload(p, b, 2)),
                ];
                handles.push((
                    p,
                    b,
                    producer
                        .send(&topic, p, encode_batch(&recs, two_days_ago))
                        .unwrap(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        let mut acks = Vec::new();
        for (p, b, h) in handles {
            let ack = h.wait().await.unwrap_or_else(|e| panic!("p{p} b{b}: {e}"));
            offsets.entry(p).or_default().push(ack.base_offset);
            acks.push((p, b, ack));
        }
        // Acks are in order and contiguous: no batch written twice, none lost.
        let mut seen = Vec::new();
        while let Ok(e) = events.try_recv() {
            seen.push(e);
        }
        let want: Vec<i64> = (0..BATCHES as i64).map(|b| b * 3).collect();
        if offsets.values().any(|offs| offs != &want) {
            // Evidence for the failure: the acks and the log's own view of every batch.
            for (p, b, ack) in &acks {
                eprintln!("ack p{p} b{b}: {ack:?}");
            }
            for p in 0..2 {
                eprintln!("{}", dump_partition(&dedicated, &topic, p));
            }
        }
        for (p, offs) in &offsets {
            assert_eq!(offs, &want, "partition {p}; producer events: {seen:?}");
        }
        let (batches, _) = fetch_all(&c, &topic, 2, FetchConfig::default()).await;
        for p in 0..2 {
            let count: i32 = batches[&p].iter().map(|b| b.count).sum();
            assert_eq!(count, (BATCHES * 3) as i32, "partition {p}");
        }
        // The fetcher also survives a crash: kill, restart, fetch again from 0.
        tokio::task::block_in_place(|| dedicated.kill().unwrap());
        tokio::task::block_in_place(|| dedicated.start().unwrap());
        let (batches, _) = fetch_all(&c, &topic, 2, FetchConfig::default()).await;
        let count: i32 = batches.values().flatten().map(|b| b.count).sum();
        assert_eq!(count, (BATCHES * 3 * 2) as i32);
    });
}

#[test]
fn crc_helper_matches_known_vector() {
    // CRC-32C("123456789") = 0xE3069283 (RFC 3720 check value).
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    let b = encode_batch(&[(None, "x".into())], 0);
    assert_eq!(scan(&b).len(), 1);
    assert_eq!(
        scan(&b.slice(..b.len() - 1)).len(),
        0,
        "a truncated batch is not returned"
    );
}
