//! Tracer bullet for the test kit: real clusters start, every listener and mechanism works with
//! the printed credentials, the Java tools produce and consume, bad credentials are refused, the
//! authorizer is on, transactions can be written, and a dedicated cluster survives a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ferry_testkit::{
    Cluster, ConsumeOptions, ConsumedRecord, Credentials, KAFKA_3, KAFKA_4, Listener,
    SaslMechanism, TxnOutcome, dedicated_cluster, require_kafka, shared_cluster_39, shared_pair,
    unique_name,
};

const RECORDS: usize = 10_000;

/// `k<i>\tv<i>-<padding>` lines, so every record's content is checkable.
fn keyed_lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("k{i}\tv{i}-{}", "x".repeat(i % 97)))
        .collect()
}

/// Checks that `records` are exactly the lines of [`keyed_lines`], each once, and that every
/// partition's offsets run 0, 1, 2, … without gaps.
fn check_keyed(records: &[ConsumedRecord], n: usize) {
    assert_eq!(records.len(), n, "record count");
    let mut seen = BTreeSet::new();
    let mut next_offset: BTreeMap<i32, i64> = BTreeMap::new();
    for r in records {
        let key = r.key.as_deref().expect("key");
        let i: usize = key
            .strip_prefix('k')
            .expect("k prefix")
            .parse()
            .expect("index");
        assert_eq!(
            r.value.as_deref(),
            Some(format!("v{i}-{}", "x".repeat(i % 97)).as_str()),
            "value of {key}"
        );
        assert!(seen.insert(i), "{key} twice");
        let expected = next_offset.entry(r.partition).or_insert(0);
        assert_eq!(r.offset, *expected, "offsets of partition {}", r.partition);
        *expected += 1;
        assert_eq!(r.timestamp_type.as_deref(), Some("CreateTime"));
        assert!(r.timestamp > 0);
    }
    assert_eq!(seen.len(), n);
}

fn produce_and_consume(cluster: &Cluster, listener: Listener, mechanism: SaslMechanism) {
    let tools = cluster.tools(listener).with_mechanism(mechanism);
    let topic = unique_name("harness-roundtrip");
    tools.create_topic(&topic, 3, &[]).unwrap();
    let lines = keyed_lines(RECORDS);
    tools
        .console_produce(
            &topic,
            &lines,
            &[
                ("compression.type", "gzip"),
                ("linger.ms", "20"),
                ("parse.key", "true"),
                ("key.separator", "\t"),
            ],
        )
        .unwrap();
    let ends = tools.end_offsets(&topic).unwrap();
    assert_eq!(ends.len(), 3, "{ends:?}");
    assert_eq!(ends.values().sum::<i64>(), RECORDS as i64, "{ends:?}");
    let records = tools
        .console_consume(&topic, RECORDS, Duration::from_secs(20), &[])
        .unwrap();
    check_keyed(&records, RECORDS);
}

#[test]
fn gzip_round_trip_plaintext_on_source() {
    require_kafka!();
    let pair = shared_pair();
    assert_eq!(pair.source.version(), KAFKA_4);
    produce_and_consume(&pair.source, Listener::Plaintext, SaslMechanism::Plain);
}

#[test]
fn gzip_round_trip_sasl_ssl_scram_512_on_target() {
    require_kafka!();
    let pair = shared_pair();
    assert_ne!(
        pair.source.bootstrap(Listener::SaslSsl),
        pair.target.bootstrap(Listener::SaslSsl)
    );
    produce_and_consume(&pair.target, Listener::SaslSsl, SaslMechanism::ScramSha512);
}

#[test]
fn producer_performance_writes_the_requested_records() {
    require_kafka!();
    let source = &shared_pair().source;
    let tools = source.tools(Listener::SaslPlaintext);
    let topic = unique_name("harness-perf");
    tools.create_topic(&topic, 2, &[]).unwrap();
    let perf = tools
        .produce_perf(&topic, RECORDS as u64, 100, "lz4", &[("acks", "all")])
        .unwrap();
    assert_eq!(perf.records, RECORDS as u64);
    assert!(perf.records_per_sec > 0.0);
    let ends = tools.end_offsets(&topic).unwrap();
    assert_eq!(ends.values().sum::<i64>(), RECORDS as i64, "{ends:?}");
    let records = tools
        .console_consume(&topic, RECORDS, Duration::from_secs(20), &[])
        .unwrap();
    assert_eq!(records.len(), RECORDS);
    assert!(
        records
            .iter()
            .all(|r| r.value.as_ref().is_some_and(|v| v.len() == 100))
    );
}

#[test]
fn wrong_scram_password_is_refused() {
    require_kafka!();
    let source = &shared_pair().source;
    for (listener, mechanism) in [
        (Listener::SaslPlaintext, SaslMechanism::ScramSha256),
        (Listener::SaslSsl, SaslMechanism::ScramSha512),
        (Listener::SaslPlaintext, SaslMechanism::Plain),
    ] {
        let err = source
            .tools(listener)
            .with_user(Credentials::new("alice", "not-alice-secret"))
            .with_mechanism(mechanism)
            .list_topics()
            .expect_err("a wrong password must be refused");
        assert!(
            err.is_authentication_failure(),
            "{listener} {mechanism}: expected an authentication failure, got: {err}"
        );
    }
}

#[test]
fn every_listener_and_mechanism_lists_topics() {
    require_kafka!();
    let target = &shared_pair().target;
    let topic = unique_name("harness-list");
    target
        .tools(Listener::Plaintext)
        .create_topic(&topic, 1, &[("cleanup.policy", "compact")])
        .unwrap();
    for listener in Listener::ALL {
        let mechanisms: &[SaslMechanism] = if listener.is_sasl() {
            &SaslMechanism::ALL
        } else {
            &[SaslMechanism::Plain]
        };
        for &mechanism in mechanisms {
            let topics = target
                .tools(listener)
                .with_mechanism(mechanism)
                .list_topics()
                .unwrap_or_else(|e| panic!("{listener} {mechanism}: {e}"));
            assert!(
                topics.contains(&topic),
                "{listener} {mechanism}: {topics:?}"
            );
        }
    }
    let description = target.tools(Listener::Ssl).describe_topic(&topic).unwrap();
    assert_eq!(description.partition_count, 1);
    assert_eq!(
        description
            .configs
            .get("cleanup.policy")
            .map(String::as_str),
        Some("compact")
    );
}

#[test]
fn authorizer_denies_ordinary_users_until_an_acl_allows() {
    require_kafka!();
    let source = &shared_pair().source;
    let topic = unique_name("harness-acl");
    let admin = source.tools(Listener::SaslSsl);
    admin.create_topic(&topic, 1, &[]).unwrap();
    let alice = source
        .tools(Listener::SaslPlaintext)
        .with_user(source.user("alice"))
        .with_mechanism(SaslMechanism::ScramSha256);
    assert!(!alice.list_topics().unwrap().contains(&topic));
    admin
        .acls(&[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Describe",
            "--topic",
            &topic,
        ])
        .unwrap();
    // ACLs propagate through the metadata log; the first listing after the add may race it.
    let mut visible = false;
    for _ in 0..20 {
        if alice.list_topics().unwrap().contains(&topic) {
            visible = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(visible, "alice cannot see {topic} after the ACL was added");
    let bob = source
        .tools(Listener::SaslPlaintext)
        .with_user(source.user("bob"))
        .with_mechanism(SaslMechanism::Plain);
    assert!(!bob.list_topics().unwrap().contains(&topic));
}

#[test]
fn tls_listeners_check_certificates() {
    require_kafka!();
    let source = &shared_pair().source;
    let tls = source.tls();
    assert!(tls.ca.is_file() && tls.client_cert.is_file() && tls.client_key.is_file());
    let key = std::fs::read_to_string(&tls.client_key).unwrap();
    assert!(
        key.starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8 expected"
    );
    // Mutual TLS: no client certificate, no connection.
    let err = source
        .tools(Listener::Ssl)
        .without_client_property("ssl.keystore.type")
        .without_client_property("ssl.keystore.location")
        .with_timeout(Duration::from_secs(90))
        .list_topics()
        .expect_err("SSL without a client certificate must fail");
    assert!(err.to_string().contains("SSL"), "{err}");
    // A trust store with an unrelated CA does not trust the broker.
    let err = source
        .tools(Listener::SaslSsl)
        .with_client_property(
            "ssl.truststore.location",
            tls.other_ca.display().to_string(),
        )
        .with_timeout(Duration::from_secs(90))
        .list_topics()
        .expect_err("an unknown issuer must fail");
    assert!(err.is_authentication_failure(), "{err}");
}

#[test]
fn transactions_and_group_offsets() {
    require_kafka!();
    let target = &shared_pair().target;
    let tools = target.tools(Listener::Plaintext);
    let topic = unique_name("harness-txn");
    tools.create_topic(&topic, 1, &[]).unwrap();
    let metas = tools
        .transactional_produce(
            &topic,
            &unique_name("harness-txn-id"),
            &[
                (TxnOutcome::Commit, vec!["c0", "c1", "c2"]),
                (TxnOutcome::Abort, vec!["a0", "a1"]),
                (TxnOutcome::Commit, vec!["key\tc3"]),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(metas.len(), 6);
    // Offsets: 3 committed records + marker, 2 aborted + marker, 1 committed + marker.
    let offsets: Vec<i64> = metas.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, [0, 1, 2, 4, 5, 7]);
    assert_eq!(
        tools.end_offsets(&topic).unwrap().get(&0),
        Some(&9),
        "after the last marker"
    );

    let group = unique_name("harness-group");
    let committed = tools
        .console_consume_with(
            &topic,
            &ConsumeOptions {
                max_messages: 4,
                idle_timeout: Duration::from_secs(15),
                group: Some(group.clone()),
                consumer_properties: vec![("isolation.level".into(), "read_committed".into())],
                ..ConsumeOptions::default()
            },
        )
        .unwrap();
    let values: Vec<_> = committed.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, ["c0", "c1", "c2", "c3"]);
    assert_eq!(committed[3].key.as_deref(), Some("key"));
    let all = tools
        .console_consume(&topic, 6, Duration::from_secs(15), &[])
        .unwrap();
    assert_eq!(all.len(), 6, "read_uncommitted sees aborted records too");

    let rows = tools.consumer_groups_describe(&group).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].topic, topic);
    assert_eq!(rows[0].log_end_offset, Some(9));
    // The consumer stopped after its 4th record (offset 7); it commits at least past that.
    let committed_offset = rows[0].current_offset.expect("committed offset");
    assert!(committed_offset >= 8, "{rows:?}");
    tools.reset_group_offsets(&group, &topic, 2).unwrap();
    let rows = tools.consumer_groups_describe(&group).unwrap();
    assert_eq!(rows[0].current_offset, Some(2));
    assert_eq!(rows[0].lag, Some(7));
}

#[test]
fn kafka_39_starts_and_serves_every_listener() {
    require_kafka!();
    let cluster = shared_cluster_39();
    assert_eq!(cluster.version(), KAFKA_3);
    assert!(!cluster.is_kafka4());
    let topic = unique_name("harness-39");
    let tools = cluster.tools(Listener::Plaintext);
    tools.create_topic(&topic, 2, &[]).unwrap();
    for listener in Listener::ALL {
        let topics = cluster
            .tools(listener)
            .with_mechanism(SaslMechanism::ScramSha256)
            .list_topics()
            .unwrap_or_else(|e| panic!("{listener}: {e}"));
        assert!(topics.contains(&topic), "{listener}: {topics:?}");
    }
    let sasl = cluster.tools(Listener::SaslSsl);
    let lines = keyed_lines(100);
    sasl.console_produce(
        &topic,
        &lines,
        &[
            ("compression.type", "snappy"),
            ("parse.key", "true"),
            ("key.separator", "\t"),
        ],
    )
    .unwrap();
    let records = sasl
        .console_consume(&topic, 100, Duration::from_secs(15), &[])
        .unwrap();
    check_keyed(&records, 100);
    sasl.acls(&["--list"]).unwrap();
    let perf_topic = unique_name("harness-39-perf");
    tools.create_topic(&perf_topic, 1, &[]).unwrap();
    let perf = tools
        .produce_perf(&perf_topic, 1000, 64, "gzip", &[])
        .unwrap();
    assert_eq!(perf.records, 1000);
    let group = unique_name("harness-39-group");
    let consumed = tools
        .console_consume_with(
            &perf_topic,
            &ConsumeOptions {
                max_messages: 1000,
                group: Some(group.clone()),
                ..ConsumeOptions::default()
            },
        )
        .unwrap();
    assert_eq!(consumed.len(), 1000);
    let rows = tools.consumer_groups_describe(&group).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].log_end_offset, Some(1000));
}

/// Kills a child process when dropped (a test that panics must not leave MM2 running).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mirror_maker_2_runs_from_the_same_classpath() {
    require_kafka!();
    let pair = shared_pair();
    let source = pair.source.tools(Listener::Plaintext);
    let target = pair.target.tools(Listener::SaslSsl);
    let topic = unique_name("harness-mm2");
    source.create_topic(&topic, 1, &[]).unwrap();
    source
        .console_produce(
            &topic,
            &keyed_lines(100),
            &[("parse.key", "true"), ("key.separator", "\t")],
        )
        .unwrap();
    // Unique aliases: MM2's Connect group ids and internal topic names derive from them, so
    // concurrent MM2 tests on the shared pair stay apart.
    let tag: String = unique_name("x")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let (a, b) = (format!("src{tag}"), format!("tgt{tag}"));
    let mut config = format!(
        "clusters = {a}, {b}\n{a}->{b}.enabled = true\n{a}->{b}.topics = {topic}\n\
         {b}->{a}.enabled = false\nreplication.factor = 1\n\
         checkpoints.topic.replication.factor = 1\nheartbeats.topic.replication.factor = 1\n\
         offset-syncs.topic.replication.factor = 1\noffset.storage.replication.factor = 1\n\
         status.storage.replication.factor = 1\nconfig.storage.replication.factor = 1\n\
         refresh.topics.interval.seconds = 2\nsync.topic.acls.enabled = false\n"
    );
    // The target is reached over SASL_SSL as admin, with the kit's client settings.
    config.push_str(&format!("{a}.bootstrap.servers = {}\n", source.bootstrap()));
    for (k, v) in target.client_properties() {
        config.push_str(&format!("{b}.{k} = {v}\n"));
    }
    let dir = pair.target.state_dir().join("tools");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{topic}.mm2.properties"));
    std::fs::write(&path, config).unwrap();
    let log = std::fs::File::create(dir.join(format!("{topic}.mm2.log"))).unwrap();
    let mut cmd = target.java_command("org.apache.kafka.connect.mirror.MirrorMaker");
    cmd.arg(&path)
        .arg("--clusters")
        .arg(&b)
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let _mm2 = KillOnDrop(cmd.spawn().unwrap());

    let remote = format!("{a}.{topic}");
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let topics = target.list_topics().unwrap();
        if topics.contains(&remote)
            && target.end_offsets(&remote).unwrap().get(&0).copied() == Some(100)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "MM2 did not replicate {topic} to {remote} within 180 s; log: {}",
            dir.join(format!("{topic}.mm2.log")).display()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let records = target
        .console_consume(&remote, 100, Duration::from_secs(20), &[])
        .unwrap();
    check_keyed(&records, 100);
}

#[test]
fn dedicated_cluster_keeps_data_across_restart_and_kill() {
    require_kafka!();
    let cluster = dedicated_cluster(KAFKA_4);
    let tools = cluster.tools(Listener::Plaintext);
    let topic = unique_name("harness-restart");
    tools.create_topic(&topic, 1, &[]).unwrap();
    tools
        .console_produce(&topic, &["one", "two"], &[("acks", "all")])
        .unwrap();
    let pid = cluster.pid().expect("pid");
    cluster.restart().unwrap();
    assert!(cluster.is_running());
    assert_ne!(cluster.pid(), Some(pid));
    cluster.kill().unwrap();
    assert!(!cluster.is_running());
    assert!(
        std::net::TcpStream::connect(cluster.bootstrap(Listener::Plaintext)).is_err(),
        "a killed broker must not accept connections"
    );
    cluster.start().unwrap();
    let records = tools
        .console_consume(&topic, 2, Duration::from_secs(15), &[])
        .unwrap();
    let values: Vec<_> = records.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, ["one", "two"]);
    let state = cluster.state_dir().to_owned();
    drop(cluster);
    assert!(
        !state.exists(),
        "dropping a dedicated cluster removes its state"
    );
}
