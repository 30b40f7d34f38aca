//! Mapping and builder tests: the seed fixtures of `tests/config/`, then one rule at a time.

use std::time::Duration;

use ferry_mirror::policy::PolicyKind;
use ferry_mirror::settings::{Isolation, OffsetSyncsLocation, PositionLossPolicy, StartPosition};
use ferry_protocol::compression::Codec;

use super::*;
use crate::config::NoticeKind;
use mapping::REFRESH_DISABLED;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

fn seed_env() -> Vec<(&'static str, String)> {
    vec![
        ("OLD_SERVERS", "10.0.0.1:9092,10.0.0.2:9092".to_owned()),
        ("NEW_SERVERS", "10.1.0.1:9092".to_owned()),
        (
            "OLD_SASL_JAAS_CONFIG",
            format!(r#"{SCRAM} required username="old-admin" password="old-test-password";"#),
        ),
        (
            "NEW_SASL_JAAS_CONFIG",
            format!(r#"{SCRAM} required username="new-admin" password="new-test-password";"#),
        ),
        ("CLOUDKARAFKA_USERNAME", "ck-user".to_owned()),
        ("CLOUDKARAFKA_PASSWORD", "ck-test-password".to_owned()),
        ("AIVEN_PASSWORD", "aiven-test-password".to_owned()),
    ]
}

fn options() -> MirrorOptions {
    MirrorOptions::new()
        .with_load_options(LoadOptions::new().with_base_dir(ROOT).with_env(seed_env()))
}

fn fixture_path(name: &str) -> String {
    format!("{ROOT}/tests/config/{name}")
}

fn fixture(name: &str) -> Mirror {
    Mirror::load(fixture_path(name), &options()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn fixture_err(name: &str) -> ConfigError {
    match Mirror::load(fixture_path(name), &options()) {
        Ok(_) => panic!("{name}: expected an error"),
        Err(Error::Config(e)) => e,
        Err(e) => panic!("{name}: not a config error: {e}"),
    }
}

/// Loads text written to a temporary file (so line numbers are the text's).
fn load_text(text: &str, opts: &MirrorOptions) -> Result<Mirror, Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mm2.properties");
    std::fs::write(&path, text).unwrap();
    Mirror::load(&path, opts)
}

fn load_ok(text: &str) -> Mirror {
    load_text(text, &options()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn load_config_err(text: &str) -> ConfigError {
    match load_text(text, &options()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(Error::Config(e)) => e,
        Err(e) => panic!("not a config error: {e}"),
    }
}

fn ab(extra: &str) -> String {
    format!(
        "clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\n\
         A->B.enabled = true\n{extra}"
    )
}

/// The ignored-key notices with this key: their lines and reasons.
fn ignored<'a>(m: &'a Mirror, key: &str) -> Vec<(Option<usize>, &'a str)> {
    m.notices()
        .iter()
        .filter(|n| n.key.as_deref() == Some(key))
        .filter_map(|n| match &n.kind {
            NoticeKind::Ignored { reason } => Some((n.line, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn seed_otc_maps_onto_one_default_policy_flow() {
    let m = fixture("otc-connect-mirror-maker.properties");
    let s = m.settings();
    assert_eq!(s.flows.len(), 1);
    let f = &s.flows[0];
    assert_eq!((f.source.as_str(), f.target.as_str()), ("A", "B"));
    assert_eq!(f.policy.kind(), PolicyKind::Default);
    assert_eq!(f.replication_factor, 3);
    assert_eq!(f.heartbeats_replication_factor, 3);
    assert_eq!(f.offset_syncs_replication_factor, 3);
    assert_eq!(f.refresh_topics_interval, Duration::from_secs(600));
    assert_eq!(f.heartbeats_interval, Duration::from_secs(1));
    assert!(f.emit_heartbeats && f.emit_offset_syncs);
    assert_eq!(f.offset_syncs_location, OffsetSyncsLocation::Source);
    assert_eq!(f.start, StartPosition::Earliest);
    assert_eq!(f.isolation, Isolation::ReadCommitted);
    assert_eq!(f.target_compression, None);
    assert!(f.topic_filter.accepts("orders") && !f.topic_filter.accepts("x.internal"));
    assert_eq!(
        s.clusters["A"].bootstrap(),
        ["A_host1:9092", "A_host2:9092", "A_host3:9092"]
    );
    // Consumer-group keys are implemented (issue #7): mapped, no notice.
    assert!(f.sync_group_offsets, "A->B.sync.group.offsets.enabled=true");
    assert!(f.emit_checkpoints, "MM2's default");
    assert_eq!(f.checkpoints_replication_factor, 3);
    assert_eq!(f.checkpoints_interval, Duration::from_secs(60));
    assert_eq!(f.sync_group_offsets_interval, Duration::from_secs(60));
    assert_eq!(f.refresh_groups_interval, Duration::from_secs(600));
    assert!(f.group_filter.accepts("orders-app") && !f.group_filter.accepts("connect-x"));
    for key in [
        "A->B.sync.group.offsets.enabled",
        "A->B.emit.checkpoints.enabled",
    ] {
        assert!(ignored(&m, key).is_empty(), "{key}: {:?}", m.notices());
    }
    // Config and ACL sync are implemented (issue #6): on by default, as in MM2, no notice.
    for default_on in [
        "A->B.sync.topic.acls.enabled",
        "A->B.sync.topic.configs.enabled",
    ] {
        assert!(
            ignored(&m, default_on).is_empty(),
            "{default_on}: {:?}",
            m.notices()
        );
    }
    assert_eq!(f.sync_topic_acls, Some(Duration::from_secs(600)));
    assert_eq!(f.sync_topic_configs, Some(Duration::from_secs(600)));
}

#[test]
fn seed_charmed_maps_identity_scram_and_keeps_secrets_hidden() {
    let m = fixture("charmed-identity-scram.properties");
    let s = m.settings();
    assert_eq!(s.flows.len(), 1, "new->old is disabled");
    let f = &s.flows[0];
    assert_eq!((f.source.as_str(), f.target.as_str()), ("old", "new"));
    assert_eq!(f.policy.kind(), PolicyKind::Identity);
    assert_eq!(f.refresh_topics_interval, Duration::from_secs(5));
    assert_eq!(f.replication_factor, 2);
    assert_eq!(f.isolation, Isolation::ReadCommitted);
    let old = &s.clusters["old"];
    assert_eq!(old.bootstrap(), ["10.0.0.1:9092", "10.0.0.2:9092"]);
    assert_eq!(
        old.security_protocol(),
        ferry_client::SecurityProtocol::SaslPlaintext
    );
    // acks=all and enable.idempotence=true agree with ferry's producer: no notice.
    assert!(ignored(&m, "new.producer.acks").is_empty());
    assert!(ignored(&m, "new.producer.enable.idempotence").is_empty());
    assert!(ignored(&m, "sync.group.offsets.enabled").is_empty());
    assert!(f.sync_group_offsets && f.emit_checkpoints);
    assert_eq!(f.sync_group_offsets_interval, Duration::from_secs(5));
    assert_eq!(f.checkpoints_interval, Duration::from_secs(5));
    assert_eq!(f.refresh_groups_interval, Duration::from_secs(5));
    let shown = format!("{m:?}{:?}", m.notices());
    for secret in ["old-test-password", "new-test-password"] {
        assert!(!shown.contains(secret), "{secret} leaked");
    }
    assert!(shown.contains("old-admin"), "user names may show");
}

#[test]
fn seed_amq_producer_tuning_and_disabled_refresh() {
    // The guide's TLS material does not exist here; keep everything else.
    let text = std::fs::read_to_string(fixture_path("amq-streams-tuning.properties"))
        .unwrap()
        .lines()
        .filter(|l| !l.contains(".ssl."))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("security.protocol = SSL", "security.protocol = PLAINTEXT")
        .replace(
            "security.protocol = SASL_SSL",
            "security.protocol = SASL_PLAINTEXT",
        );
    let m = load_ok(&text);
    let f = &m.settings().flows[0];
    assert_eq!(f.policy.kind(), PolicyKind::Identity);
    assert_eq!(
        f.refresh_topics_interval, REFRESH_DISABLED,
        "refresh.topics.enabled=false"
    );
    assert_eq!(
        f.target_compression,
        Some(Codec::Gzip),
        "producer.compression.type: gzip"
    );
    assert_eq!(f.offset_syncs_location, OffsetSyncsLocation::Target);
    assert!(f.topic_filter.accepts("app1-t1") && !f.topic_filter.accepts("app1-t3"));
    let line = |needle: &str| text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    assert_eq!(
        ignored(&m, "producer.linger.ms"),
        [(
            Some(line("producer.linger.ms")),
            mapping::IGNORED_CLIENT_KEY
        )]
    );
    assert_eq!(ignored(&m, "producer.batch.size").len(), 1);
    assert!(
        ignored(&m, "sync.topic.acls.enabled").is_empty(),
        "disabled in the file"
    );
    assert!(ignored(&m, "sync.group.offsets.enabled").is_empty());
    assert_eq!(f.sync_group_offsets_interval, Duration::from_secs(10));
    assert_eq!(f.checkpoints_replication_factor, 3);
    assert!(f.group_filter.accepts("app1-x") && !f.group_filter.accepts("app3"));
}

#[test]
fn group_keys_map_with_mm2_defaults_and_overrides() {
    // MM2's defaults: checkpoints on every 60 s, group sync off, groups refreshed every 600 s.
    let m = load_ok(&ab(""));
    let f = &m.settings().flows[0];
    assert!(f.emit_checkpoints && !f.sync_group_offsets);
    assert_eq!(f.checkpoints_interval, Duration::from_secs(60));
    assert_eq!(f.refresh_groups_interval, Duration::from_secs(600));
    assert!(f.group_filter.accepts("app") && !f.group_filter.accepts("console-consumer-7"));
    assert!(!f.group_filter.accepts("__consumer") && !f.group_filter.accepts("connect-a"));
    // Every key, flow-scoped over top-level.
    let m = load_ok(&ab("groups = app.*, ops-.*\ngroups.exclude = app-test.*\n\
         emit.checkpoints.interval.seconds = 3\nA->B.sync.group.offsets.enabled = true\n\
         sync.group.offsets.interval.seconds = 4\nrefresh.groups.interval.seconds = 9\n\
         A->B.checkpoints.topic.replication.factor = 1\n"));
    assert!(m.notices().is_empty(), "{:?}", m.notices());
    let f = &m.settings().flows[0];
    assert!(f.group_filter.accepts("app1") && f.group_filter.accepts("ops-x"));
    assert!(!f.group_filter.accepts("app-test1") && !f.group_filter.accepts("other"));
    assert_eq!(f.checkpoints_interval, Duration::from_secs(3));
    assert!(f.sync_group_offsets);
    assert_eq!(f.sync_group_offsets_interval, Duration::from_secs(4));
    assert_eq!(f.refresh_groups_interval, Duration::from_secs(9));
    assert_eq!(f.checkpoints_replication_factor, 1);
    assert!(f.groups_enabled());
    // Both off: no group work at all; refresh disabled lists once.
    let m = load_ok(&ab(
        "emit.checkpoints.enabled = false\nrefresh.groups.enabled = false\n",
    ));
    let f = &m.settings().flows[0];
    assert!(!f.emit_checkpoints && !f.sync_group_offsets && !f.groups_enabled());
    assert_eq!(f.refresh_groups_interval, REFRESH_DISABLED);
}

#[test]
fn seed_tls_fixtures_fail_naming_the_key_without_secrets() {
    // The guides' CA files are not on this machine.
    let e = fixture_err("amq-streams-tuning.properties");
    assert_eq!(e.key(), Some("my-source-cluster.ssl.truststore.location"));
    assert_eq!(e.line(), Some(12));
    let e = fixture_err("aiven-cloudkarafka.properties");
    assert_eq!(e.key(), Some("kafka-target.ssl.truststore.location"));
    assert!(e.to_string().contains("/etc/mm2/aiven-ca.pem"), "{e}");
    // The test PEM files hold no real certificate: named by key, content and temp path hidden.
    let e = fixture_err("strimzi-openshift-identity.properties");
    assert_eq!(
        e.key(),
        Some("my-source-cluster.ssl.truststore.certificates")
    );
    assert_eq!(e.line(), Some(10));
    let shown = e.to_string();
    assert!(
        !shown.contains("ferry-pem-") && !shown.contains("BEGIN"),
        "{shown}"
    );
}

#[test]
fn target_clusters_keep_matching_flows() {
    let text = "clusters = A, B, C\nA.bootstrap.servers = a:1\nB.bootstrap.servers = b:1\n\
                C.bootstrap.servers = c:1\nA->B.enabled = true\nB->A.enabled = true\n\
                A->C.enabled = true\n";
    let all = load_ok(text);
    assert_eq!(all.settings().flows.len(), 3);
    let only_a = load_text(text, &options().with_target_clusters(["A"])).unwrap();
    let names: Vec<String> = only_a.settings().flows.iter().map(|f| f.name()).collect();
    assert_eq!(names, ["B->A"]);
    assert_eq!(only_a.settings().clusters.len(), 2, "C is not needed");
    let two = load_text(text, &options().with_target_clusters(["B", "C"])).unwrap();
    assert_eq!(two.settings().flows.len(), 2);
    match load_text(text, &options().with_target_clusters(["D"])) {
        Err(Error::Config(e)) => assert_eq!(e.key(), Some("--clusters")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsupported_settings_are_errors_naming_key_and_line() {
    let e = load_config_err(&ab("consumer.auto.offset.reset = none\n"));
    assert!(e.is_unsupported(), "{e}");
    assert_eq!(e.key(), Some("consumer.auto.offset.reset"));
    assert_eq!(e.line(), Some(5));

    let e = load_config_err(&ab("A->B.exactly.once.support = required\n"));
    assert_eq!(e.key(), Some("A->B.exactly.once.support"));
    assert!(e.is_unsupported());

    let e = load_config_err(&ab(
        "A.security.protocol = SSL\nA.ssl.enabled.protocols = TLSv1.3\n",
    ));
    assert_eq!(e.key(), Some("A.ssl.enabled.protocols"));
    assert_eq!(e.line(), Some(6));

    let e = load_config_err(&ab("B.producer.compression.type = brotli\n"));
    assert_eq!(e.line(), Some(5), "{e}");
}

#[test]
fn partial_features_are_notices() {
    let m = load_ok(&ab(
        "use.defaults.from = source\nexactly.once.source.support = enabled\n\
         sync.topic.acls.enabled = true\nB.producer.acks = 1\nA.consumer.session.timeout.ms = 1\n",
    ));
    // Config and ACL sync are implemented (issue #6): mapped, no notice.
    assert!(ignored(&m, "use.defaults.from").is_empty());
    assert!(ignored(&m, "sync.topic.acls.enabled").is_empty());
    let f = &m.settings().flows[0];
    assert_eq!(f.use_defaults_from, settings::DefaultsFrom::Source);
    assert_eq!(f.sync_topic_acls, Some(Duration::from_secs(600)));
    assert!(!f.acl_sync.delete && !f.acl_sync.prefixed && !f.acl_sync.groups);
    assert_eq!(ignored(&m, "exactly.once.source.support").len(), 1);
    assert_eq!(
        ignored(&m, "B.producer.acks"),
        [(Some(8), mapping::IDEMPOTENCE)]
    );
    assert_eq!(ignored(&m, "A.consumer.session.timeout.ms").len(), 1);
    // Disabled features raise nothing.
    let m = load_ok(&ab(
        "sync.topic.acls.enabled = false\nsync.topic.configs.enabled = false\n\
         emit.checkpoints.enabled = false\n",
    ));
    assert!(m.notices().is_empty(), "{:?}", m.notices());
    assert_eq!(m.settings().flows[0].sync_topic_acls, None);
    assert_eq!(m.settings().flows[0].sync_topic_configs, None);
    // ferry's own ACL sync keys.
    let m = load_ok(&ab(
        "ferry.sync.acls.prefixed = true\nA->B.ferry.sync.acls.groups = true\n\
         ferry.sync.acls.delete = true\nsync.topic.configs.interval.seconds = 5\n",
    ));
    assert!(m.notices().is_empty(), "{:?}", m.notices());
    let f = &m.settings().flows[0];
    assert!(f.acl_sync.prefixed && f.acl_sync.delete);
    assert!(f.acl_sync.groups);
    assert_eq!(f.sync_topic_configs, Some(Duration::from_secs(5)));
}

#[test]
fn engine_knobs_map() {
    let m = load_ok(&ab(
        "A.consumer.fetch.max.bytes = 8388608\nA.consumer.max.partition.fetch.bytes = 65536\n\
         A.consumer.fetch.max.wait.ms = 100\nA->B.consumer.auto.offset.reset = latest\n\
         consumer.isolation.level = read_uncommitted\nemit.heartbeats.enabled = false\n\
         emit.offset-syncs.enabled = false\nreplication.factor = -1\n\
         B.producer.compression.type = zstd\nA.admin.client.id = mirror-1\n\
         A.admin.request.timeout.ms = 5000\nrefresh.topics.interval.seconds = 7\n",
    ));
    let s = m.settings();
    assert_eq!(s.fetch_max_bytes, 8 << 20);
    assert_eq!(s.fetch_partition_max_bytes, 65536);
    assert_eq!(s.fetch_max_wait, Duration::from_millis(100));
    let f = &s.flows[0];
    assert_eq!(f.start, StartPosition::Latest);
    assert_eq!(f.isolation, Isolation::ReadUncommitted);
    assert!(!f.emit_heartbeats && !f.emit_offset_syncs);
    assert_eq!(f.replication_factor, -1);
    assert_eq!(f.target_compression, Some(Codec::Zstd));
    assert_eq!(f.refresh_topics_interval, Duration::from_secs(7));
    assert_eq!(s.clusters["A"].client_id(), "mirror-1");
    assert_eq!(s.clusters["A"].request_timeout(), Duration::from_secs(5));
    assert_eq!(s.clusters["B"].client_id(), "ferry");
}

#[test]
fn builder_validates_strictly_before_io() {
    let base = || {
        Mirror::builder()
            .with_cluster("A", "127.0.0.1:1")
            .with_cluster("B", "127.0.0.1:2")
            .with_flow("A", "B")
    };
    let m = base()
        .with_config("A->B.topics", "orders.*")
        .with_config(
            "replication.policy.class",
            "org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
        )
        .with_in_flight_bytes(8 << 20)
        .with_position_loss_policy(PositionLossPolicy::ResetEarliest)
        .build()
        .unwrap();
    let f = &m.settings().flows[0];
    assert!(f.topic_filter.accepts("orders-eu") && !f.topic_filter.accepts("clicks"));
    assert_eq!(f.policy.kind(), PolicyKind::Identity);
    assert_eq!(f.on_truncation, PositionLossPolicy::ResetEarliest);
    assert_eq!(m.settings().in_flight_bytes, 8 << 20);

    // Unknown keys are errors in the builder, with the nearest key.
    match base().with_config("A->B.topic", "x").build() {
        Err(ConfigError::UnknownKey {
            key, suggestion, ..
        }) => {
            assert_eq!(key, "A->B.topic");
            assert_eq!(suggestion.as_deref(), Some("A->B.topics"));
        }
        other => panic!("{other:?}"),
    }
    // No flow, a flow into an unknown cluster, a budget below the minimum.
    assert!(Mirror::builder().with_cluster("A", "h:1").build().is_err());
    assert!(base().with_flow("A", "C").build().is_err());
    match base().with_in_flight_bytes(1000).build() {
        Err(ConfigError::InvalidValue { key, .. }) => assert_eq!(key, "in-flight bytes"),
        other => panic!("{other:?}"),
    }
    assert!(
        base()
            .with_config("A.bootstrap.servers", "nohost")
            .build()
            .is_err()
    );
}

#[test]
fn builder_connection_is_used_as_given() {
    let conn = ConnectionConfig::builder()
        .with_bootstrap(["127.0.0.1:9"])
        .with_client_id("embedder")
        .build()
        .unwrap();
    let m = Mirror::builder()
        .with_connection("A", conn)
        .with_cluster("B", "127.0.0.1:2")
        .with_flow("A", "B")
        .build()
        .unwrap();
    assert_eq!(m.settings().clusters["A"].client_id(), "embedder");
    assert_eq!(m.settings().clusters["A"].bootstrap(), ["127.0.0.1:9"]);
    assert_eq!(m.settings().clusters["B"].client_id(), "ferry");
}

#[tokio::test]
async fn runs_once_and_shutdown_handles_are_shared() {
    let m = Mirror::builder()
        .with_cluster("A", "127.0.0.1:1")
        .with_cluster("B", "127.0.0.1:2")
        .with_flow("A", "B")
        .build()
        .unwrap();
    let handle = m.shutdown_handle();
    assert!(!handle.is_shutdown());
    m.shutdown();
    assert!(handle.is_shutdown() && handle.clone().is_shutdown());
    let mut events = m.events();
    assert_eq!(events.try_next(), None);
    assert_eq!(events.missed(), 0);
    assert_eq!(m.status().flows.len(), 1);
    {
        // The first poll takes the engine; nothing listens on port 1, so it only retries.
        let first = m.run();
        let _ = tokio::time::timeout(Duration::from_millis(50), first).await;
    }
    assert!(matches!(m.run().await, Err(Error::AlreadyRun)));
}

#[test]
fn mirror_and_its_run_future_cross_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let m = Mirror::builder()
        .with_cluster("A", "127.0.0.1:1")
        .with_cluster("B", "127.0.0.1:2")
        .with_flow("A", "B")
        .build()
        .unwrap();
    send_sync(&m);
    send_sync(&m.shutdown_handle());
    send(&m.events());
    let run = m.run();
    send(&run);
}
