//! ferry-protocol against real clients and brokers.
//!
//! - Batches written by the Java producer (console producer and ProducerPerformance) and by
//!   librdkafka (`kcat`) with every codec are read straight from the broker's log segment file
//!   (a segment is exactly a sequence of batch entries) and must decode exactly: every CRC valid,
//!   every record's key, value and headers as produced, offsets contiguous.
//! - Batches encoded by ferry with every codec are produced through `ferry_client`'s idempotent
//!   producer and read back by the Java console consumer; the broker keeps ferry's codec.
//!
//! Needs `kcat` on the PATH (Debian package `kcat`) when enabled: missing is a failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use ferry_protocol::batch::{Attributes, BatchScanner, Entry};
use ferry_protocol::compression::Codec;
use ferry_protocol::record::{
    DecodeOptions, DecodedBatch, Header, Record, encode_parts, producer_header,
};
use ferry_protocol::transform::{ForwardConfig, Forwarder, Route, TargetProducer};
use ferry_testkit::{Cluster, Listener, require_kafka, shared_pair, unique_name};

const CODECS: [Codec; 5] = [
    Codec::None,
    Codec::Gzip,
    Codec::Snappy,
    Codec::Lz4,
    Codec::Zstd,
];

/// One decoded record with its absolute offset.
#[derive(Debug)]
struct Decoded {
    offset: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<Header>,
}

/// Decodes every batch of a segment file; also checks CRCs and that the patch route yields a
/// valid batch with the same records. Returns the records and the codecs seen.
fn decode_segment(blob: Bytes) -> (Vec<Decoded>, Vec<Codec>) {
    let mut out = Vec::new();
    let mut codecs = Vec::new();
    let mut scanner = BatchScanner::new(blob);
    for entry in scanner.by_ref() {
        let Entry::V2(batch) = entry.expect("segment entry") else {
            panic!("legacy entry in a segment written by a modern client")
        };
        batch.verify_crc().expect("CRC of a broker-stored batch");
        let codec = batch.codec().unwrap();
        codecs.push(codec);
        let d = DecodedBatch::decode(&batch, &DecodeOptions::default()).expect("decode");
        assert_eq!(d.records.len() as i32, batch.records_count());
        // The patch route keeps every record and yields a valid CRC.
        let mut f = Forwarder::new(ForwardConfig::default(), batch.base_offset());
        let fwd = f
            .forward_batch(&batch, TargetProducer::idempotent(1, 0, 0))
            .unwrap();
        assert!(fwd.route.is_zero_copy(), "{:?}", fwd.route);
        let patched = fwd.batch.unwrap().to_batch().unwrap();
        patched.verify_crc().unwrap();
        let d2 = DecodedBatch::decode(&patched, &DecodeOptions::default()).unwrap();
        assert_eq!(d2.records, d.records);
        for r in d.records {
            out.push(Decoded {
                offset: batch.base_offset() + i64::from(r.offset_delta),
                key: r.key,
                value: r.value,
                headers: r.headers,
            });
        }
    }
    assert_eq!(
        scanner.truncated_tail(),
        0,
        "a segment holds complete batches only"
    );
    (out, codecs)
}

fn segment_path(cluster: &Cluster, topic: &str) -> PathBuf {
    cluster
        .data_dir()
        .join(format!("{topic}-0"))
        .join("00000000000000000000.log")
}

/// Reads partition 0's first segment until it holds `n` records (the broker appends before it
/// acknowledges, so this is normally immediate).
fn read_records(cluster: &Cluster, topic: &str, n: usize) -> (Vec<Decoded>, Vec<Codec>) {
    let path = segment_path(cluster, topic);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let bytes = std::fs::read(&path).unwrap_or_default();
        let (records, codecs) = decode_segment(Bytes::from(bytes));
        if records.len() >= n || Instant::now() > deadline {
            assert_eq!(records.len(), n, "records in {}", path.display());
            return (records, codecs);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn check_offsets(records: &[Decoded]) {
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64, "offsets are contiguous from 0");
    }
}

fn bytes_of(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

fn value_of(i: usize) -> String {
    format!("value-{i}-{}", "abcdefgh".repeat(i % 13))
}

/// Runs the Kafka 4 ConsoleProducer with `--compression-codec` (the tool's own option, which
/// overrides a `compression.type` in its config file) and tab-separated keys (and headers).
fn console_produce(
    cluster: &Cluster,
    topic: &str,
    lines: &[String],
    codec: Codec,
    producer_props: &[&str],
    headers: bool,
) {
    assert!(cluster.is_kafka4(), "the shared pair runs Kafka 4");
    let mut args: Vec<String> = vec![
        "--bootstrap-server".into(),
        cluster.bootstrap(Listener::Plaintext),
        "--topic".into(),
        topic.into(),
        "--compression-codec".into(),
        codec.name().into(),
    ];
    for p in producer_props {
        args.push("--command-property".into());
        args.push((*p).into());
    }
    let mut reader = vec!["parse.key=true", "key.separator=\t"];
    if headers {
        reader.extend([
            "parse.headers=true",
            "headers.delimiter=\t",
            "headers.separator=,",
            "headers.key.separator=:",
        ]);
    }
    for p in reader {
        args.push("--reader-property".into());
        args.push(p.into());
    }
    let mut input = String::new();
    for l in lines {
        input.push_str(l);
        input.push('\n');
    }
    let out = cluster
        .tools(Listener::Plaintext)
        .run_class_with_stdin(
            "org.apache.kafka.tools.ConsoleProducer",
            &args,
            input.as_bytes(),
        )
        .unwrap()
        .check()
        .unwrap();
    assert!(
        !out.stderr.contains("Error when sending message"),
        "{}",
        out.combined()
    );
}

#[test]
fn java_console_producer_batches_decode_exactly() {
    require_kafka!();
    let cluster = &shared_pair().source;
    let tools = cluster.tools(Listener::Plaintext);
    const N: usize = 500;
    let lines: Vec<String> = (0..N)
        .map(|i| format!("h:1,h:2,dup:{i}\tk{i}\t{}", value_of(i)))
        .collect();
    for codec in CODECS {
        let topic = unique_name(&format!("interop-java-{codec}"));
        tools.create_topic(&topic, 1, &[]).unwrap();
        console_produce(
            cluster,
            &topic,
            &lines,
            codec,
            &["linger.ms=50", "batch.size=65536"],
            true,
        );
        let (records, codecs) = read_records(cluster, &topic, N);
        assert!(codecs.iter().all(|c| *c == codec), "{codec}: {codecs:?}");
        check_offsets(&records);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.key, bytes_of(&format!("k{i}")), "{codec} key {i}");
            assert_eq!(r.value, bytes_of(&value_of(i)), "{codec} value {i}");
            let headers: Vec<(Bytes, Option<Bytes>)> = r
                .headers
                .iter()
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect();
            let want = vec![
                (Bytes::from_static(b"h"), bytes_of("1")),
                (Bytes::from_static(b"h"), bytes_of("2")),
                (Bytes::from_static(b"dup"), bytes_of(&i.to_string())),
            ];
            assert_eq!(headers, want, "{codec} headers {i}");
        }
        tools.delete_topic(&topic).unwrap();
    }
}

#[test]
fn java_producer_performance_batches_decode_exactly() {
    require_kafka!();
    let cluster = &shared_pair().source;
    let tools = cluster.tools(Listener::Plaintext);
    const N: u64 = 20_000;
    for codec in CODECS {
        let topic = unique_name(&format!("interop-perf-{codec}"));
        tools.create_topic(&topic, 1, &[]).unwrap();
        tools
            .produce_perf(&topic, N, 200, codec.name(), &[("linger.ms", "20")])
            .unwrap();
        let (records, codecs) = read_records(cluster, &topic, N as usize);
        assert!(codecs.iter().all(|c| *c == codec), "{codec}: {codecs:?}");
        assert!(codecs.len() > 1, "{codec}: expected many batches");
        check_offsets(&records);
        for r in &records {
            assert_eq!(r.key, None);
            let v = r.value.as_ref().expect("value");
            assert_eq!(v.len(), 200);
            assert!(
                v.iter().all(u8::is_ascii_uppercase),
                "{codec}: perf payload"
            );
        }
        tools.delete_topic(&topic).unwrap();
    }
}

#[test]
fn librdkafka_batches_decode_exactly() {
    require_kafka!();
    let cluster = &shared_pair().source;
    let tools = cluster.tools(Listener::Plaintext);
    const N: usize = 300;
    let input: String = (0..N).map(|i| format!("k{i}\t{}\n", value_of(i))).collect();
    for codec in CODECS {
        let topic = unique_name(&format!("interop-kcat-{codec}"));
        tools.create_topic(&topic, 1, &[]).unwrap();
        let mut child = Command::new("kcat")
            .args([
                "-P",
                "-b",
                &cluster.bootstrap(Listener::Plaintext),
                "-t",
                &topic,
                "-p",
                "0",
                "-K",
                "\t",
                "-z",
                codec.name(),
                "-H",
                "h=1",
                "-H",
                "h=2",
                "-X",
                "linger.ms=50",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kcat must be installed (Debian package kcat) when FERRY_IT=1 or CI=true");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kcat failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (records, codecs) = read_records(cluster, &topic, N);
        assert!(codecs.iter().all(|c| *c == codec), "{codec}: {codecs:?}");
        check_offsets(&records);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.key, bytes_of(&format!("k{i}")), "{codec} key {i}");
            assert_eq!(r.value, bytes_of(&value_of(i)), "{codec} value {i}");
            let headers: Vec<(Bytes, Option<Bytes>)> = r
                .headers
                .iter()
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect();
            assert_eq!(
                headers,
                vec![
                    (Bytes::from_static(b"h"), bytes_of("1")),
                    (Bytes::from_static(b"h"), bytes_of("2")),
                ],
                "{codec} headers {i}"
            );
        }
        tools.delete_topic(&topic).unwrap();
    }
}

/// Records with duplicate header keys, a null header value, a null key and an empty value.
fn ferry_records(batch: usize) -> Vec<Record> {
    (0..20)
        .map(|i| Record {
            timestamp_delta: i64::from(i),
            offset_delta: i,
            key: (i % 5 != 0).then(|| Bytes::from(format!("fk{batch}-{i}"))),
            value: Some(if i == 3 {
                Bytes::new()
            } else {
                Bytes::from(format!("fv{batch}-{i}-{}", "z".repeat(i as usize * 10)))
            }),
            headers: vec![
                Header {
                    key: Bytes::from_static(b"dup"),
                    value: Some(Bytes::from(format!("{i}"))),
                },
                Header {
                    key: Bytes::from_static(b"dup"),
                    value: None,
                },
            ],
            ..Record::default()
        })
        .collect()
}

#[test]
fn ferry_encoded_batches_are_read_by_the_java_consumer() {
    require_kafka!();
    use ferry_client::producer::{IdempotentProducer, ProducerConfig};
    use ferry_client::{BackoffConfig, Cluster as ClientCluster, ConnectionConfig};

    let cluster = &shared_pair().target;
    let tools = cluster.tools(Listener::Plaintext);
    const BATCHES: usize = 4;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for codec in CODECS {
        let topic = unique_name(&format!("interop-ferry-{codec}"));
        tools
            .create_topic(&topic, 1, &[("compression.type", "producer")])
            .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let config = ConnectionConfig::builder()
                .with_bootstrap([cluster.bootstrap(Listener::Plaintext)])
                .with_connect_timeout(Duration::from_secs(5))
                .with_request_timeout(Duration::from_secs(15))
                .with_backoff(BackoffConfig::default().with_deadline(Duration::from_secs(10)))
                .build()
                .unwrap();
            let c = ClientCluster::connect(config).await.unwrap();
            // A fresh cluster answers InitProducerId with COORDINATOR_LOAD_IN_PROGRESS for a
            // while; ferry-client's IdempotentProducer::new does not retry it yet, so this test
            // does, for at most 60 s.
            let deadline = Instant::now() + Duration::from_secs(60);
            let producer = loop {
                match IdempotentProducer::new(c.clone(), ProducerConfig::default()).await {
                    Ok(p) => break p,
                    Err(e)
                        if Instant::now() < deadline
                            && format!("{e:?}").contains("LoadInProgress") =>
                    {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => panic!("IdempotentProducer::new: {e}"),
                }
            };
            let mut handles = Vec::new();
            for b in 0..BATCHES {
                let records = ferry_records(b);
                let header = producer_header(now, Attributes(0).with_codec(codec), &records);
                let (prefix, body) = encode_parts(&header, &records).unwrap();
                let mut buf = BytesMut::new();
                buf.put_slice(&prefix);
                buf.put_slice(&body);
                handles.push(producer.send(&topic, 0, buf.freeze()).unwrap());
            }
            for (b, h) in handles.into_iter().enumerate() {
                let ack = h.wait().await.unwrap();
                assert_eq!(ack.base_offset, (b * 20) as i64);
            }
            producer.flush().await.unwrap();
        });
        // The broker kept ferry's codec (compression.type=producer) and our batches verify.
        let (stored, codecs) = read_records(cluster, &topic, BATCHES * 20);
        assert!(codecs.iter().all(|c| *c == codec), "{codec}: {codecs:?}");
        check_offsets(&stored);
        // The Java consumer reads every record as encoded.
        let consumed = tools
            .console_consume(&topic, BATCHES * 20, Duration::from_secs(20), &[])
            .unwrap();
        assert_eq!(consumed.len(), BATCHES * 20, "{codec}");
        let by_offset: BTreeMap<i64, _> = consumed.iter().map(|r| (r.offset, r)).collect();
        for b in 0..BATCHES {
            for (i, want) in ferry_records(b).iter().enumerate() {
                let got = by_offset[&((b * 20 + i) as i64)];
                let s =
                    |x: &Option<Bytes>| x.as_ref().map(|v| String::from_utf8_lossy(v).into_owned());
                assert_eq!(got.key, s(&want.key), "{codec} key");
                assert_eq!(got.value, s(&want.value), "{codec} value");
                assert_eq!(got.timestamp, now + i as i64, "{codec} timestamp");
                let headers: Vec<(String, Option<String>)> = want
                    .headers
                    .iter()
                    .map(|h| (String::from_utf8_lossy(&h.key).into_owned(), s(&h.value)))
                    .collect();
                assert_eq!(got.headers, headers, "{codec} headers");
            }
        }
        tools.delete_topic(&topic).unwrap();
    }
}

#[test]
fn forwarder_routes_a_java_written_segment() {
    require_kafka!();
    // Resume inside the first batch: the first batch is renumbered, the rest patched.
    let cluster = &shared_pair().source;
    let tools = cluster.tools(Listener::Plaintext);
    let topic = unique_name("interop-route");
    tools.create_topic(&topic, 1, &[]).unwrap();
    let lines: Vec<String> = (0..200).map(|i| format!("k{i}\tv{i}")).collect();
    console_produce(
        cluster,
        &topic,
        &lines,
        Codec::Lz4,
        &["linger.ms=50", "batch.size=256"],
        false,
    );
    let _ = read_records(cluster, &topic, 200);
    let blob = Bytes::from(std::fs::read(segment_path(cluster, &topic)).unwrap());
    let mut f = Forwarder::new(ForwardConfig::default(), 3);
    let mut forwarded = Vec::new();
    let mut routes = Vec::new();
    for entry in BatchScanner::new(blob) {
        let fwd = f
            .forward(entry.unwrap(), TargetProducer::idempotent(9, 0, 0))
            .unwrap();
        routes.push(fwd.route);
        if let Some(out) = fwd.batch {
            let b = out.to_batch().unwrap();
            b.verify_crc().unwrap();
            let d = DecodedBatch::decode(&b, &DecodeOptions::default()).unwrap();
            forwarded.extend(d.records.into_iter().map(|r| r.value.unwrap()));
        }
    }
    assert!(routes.len() > 2, "several batches: {routes:?}");
    assert!(matches!(routes[0], Route::Renumber(_)), "{routes:?}");
    assert!(routes[1..].iter().all(|r| *r == Route::Patch), "{routes:?}");
    let want: Vec<Bytes> = (3..200).map(|i| Bytes::from(format!("v{i}"))).collect();
    assert_eq!(forwarded, want);
    assert_eq!(f.position(), 200);
    tools.delete_topic(&topic).unwrap();
}
