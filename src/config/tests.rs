//! Loader tests: the five seed configurations, precedence, security, notices and errors.

use std::time::Duration;

use ferry_mirror::filter::FilterLintKind;
use ferry_mirror::policy::{PolicyKind, ReplicationPolicy};

use super::*;

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

fn options() -> LoadOptions {
    LoadOptions::new().with_base_dir(ROOT).with_env(seed_env())
}

fn fixture(name: &str) -> (MirrorConfig, Vec<ConfigNotice>) {
    let path = format!("{ROOT}/tests/config/{name}");
    MirrorConfig::load_path(&path, &options()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle}"))
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/tests/config/{name}")).unwrap()
}

fn load(text: &str) -> (MirrorConfig, Vec<ConfigNotice>) {
    MirrorConfig::load_str(text, &options()).unwrap_or_else(|e| panic!("{e}"))
}

fn load_err(text: &str) -> ConfigError {
    match MirrorConfig::load_str(text, &options()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

const AB: &str = "clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\n";

fn ab(extra: &str) -> String {
    format!("{AB}A->B.enabled = true\n{extra}")
}

fn notice<'a>(notices: &'a [ConfigNotice], key: &str) -> Vec<&'a NoticeKind> {
    notices
        .iter()
        .filter(|n| n.key.as_deref() == Some(key))
        .map(|n| &n.kind)
        .collect()
}

fn has_ignored(notices: &[ConfigNotice], key: &str) -> bool {
    notice(notices, key)
        .iter()
        .any(|k| matches!(k, NoticeKind::Ignored { .. }))
}

// ---------------------------------------------------------------------------------------------
// The five seed configurations.
// ---------------------------------------------------------------------------------------------

#[test]
fn seed_charmed_identity_scram() {
    let (config, notices) = fixture("charmed-identity-scram.properties");
    assert_eq!(config.aliases().collect::<Vec<_>>(), ["old", "new"]);
    assert_eq!(config.flows().len(), 1);
    let flow = config.flow("old", "new").unwrap();
    assert!(config.flow("new", "old").is_none());
    assert_eq!(flow.policy.kind(), PolicyKind::Identity);
    assert_eq!(flow.remote_topic("orders"), "orders");
    assert_eq!(flow.remote_topic("heartbeats"), "old.heartbeats");
    assert!(
        flow.should_replicate_topic("new.orders"),
        "identity has no cycle detection"
    );

    for (alias, user, password) in [
        ("old", "old-admin", "old-test-password"),
        ("new", "new-admin", "new-test-password"),
    ] {
        let c = config.cluster(alias).unwrap();
        assert_eq!(
            c.security_protocol,
            SecurityProtocol::SaslPlaintext,
            "{alias}"
        );
        assert!(c.tls.is_none());
        let sasl = c.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
        assert_eq!(sasl.username, user);
        assert_eq!(sasl.password.expose(), password);
    }
    let old = config.cluster("old").unwrap();
    assert_eq!(
        old.bootstrap_servers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["10.0.0.1:9092", "10.0.0.2:9092"]
    );

    assert_eq!(flow.isolation_level, IsolationLevel::ReadCommitted);
    assert_eq!(
        flow.source_consumer.get("isolation.level"),
        Some("read_committed")
    );
    assert_eq!(flow.target_producer.get("acks"), Some("all"));
    assert_eq!(flow.target_producer.get("enable.idempotence"), Some("true"));
    assert_eq!(
        flow.target_producer.setting("acks").unwrap().source_key,
        "new.producer.acks",
        "the target's producer settings, not the source's"
    );
    assert_eq!(flow.refresh_topics, Some(Duration::from_secs(5)));
    assert_eq!(flow.refresh_groups, Some(Duration::from_secs(5)));
    assert_eq!(flow.sync_group_offsets, Some(Duration::from_secs(5)));
    assert_eq!(flow.emit_checkpoints, Some(Duration::from_secs(5)));
    assert_eq!(flow.sync_topic_configs, Some(defaults::REFRESH_INTERVAL));
    assert_eq!(flow.replication_factor, ReplicationFactor::Count(2));
    assert_eq!(flow.tasks_max, Some(3));
    assert!(flow.groups.accepts("billing") && !flow.groups.accepts("console-consumer-1"));

    assert!(has_ignored(&notices, "tasks.max"));
    assert!(notices.iter().any(
        |n| matches!(&n.kind, NoticeKind::UndeclaredProvider { provider } if provider == "env")
    ));
    assert!(
        notices.iter().all(|n| n.severity() == Severity::Info),
        "{notices:#?}"
    );
}

#[test]
fn seed_charmed_guide_shell_variables_get_a_hint() {
    // The guide's literal `$OLD_SERVERS`, if pasted without a shell expanding it.
    let text = fixture_text("charmed-identity-scram.properties")
        .replace("${env:OLD_SERVERS}", "$OLD_SERVERS");
    let err = load_err(&text);
    assert_eq!(err.key(), Some("old.bootstrap.servers"));
    assert_eq!(err.line(), Some(line_of(&text, "old.bootstrap.servers")));
    assert!(err.to_string().contains("${env:OLD_SERVERS}"), "{err}");
}

#[test]
fn seed_charmed_missing_env_names_the_key_not_the_value() {
    let opts = LoadOptions::new()
        .with_base_dir(ROOT)
        .with_env([("OLD_SERVERS", "h:1")]);
    let err = MirrorConfig::load_path(
        format!("{ROOT}/tests/config/charmed-identity-scram.properties"),
        &opts,
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("new.bootstrap.servers"));
    assert!(err.is_io());
    assert!(matches!(
        &err,
        ConfigError::Placeholder { source, .. }
            if matches!(source.as_ref(), PlaceholderError::MissingEnvVar { variable, .. } if variable == "NEW_SERVERS")
    ));
}

#[test]
fn seed_otc_connect_mirror_maker() {
    let (config, notices) = fixture("otc-connect-mirror-maker.properties");
    assert_eq!(config.flows().len(), 1);
    let flow = config.flow("A", "B").unwrap();
    assert_eq!(flow.policy.kind(), PolicyKind::Default);
    assert_eq!(flow.remote_topic("orders"), "A.orders");
    assert!(flow.should_replicate_topic("orders"));
    assert!(
        !flow.should_replicate_topic("B.orders"),
        "cycle back into B"
    );
    assert!(!flow.should_replicate_topic("__consumer_offsets"));
    assert_eq!(
        flow.sync_group_offsets,
        Some(defaults::SYNC_GROUP_OFFSETS_INTERVAL)
    );
    assert_eq!(flow.replication_factor, ReplicationFactor::Count(3));
    assert_eq!(
        flow.offset_syncs_topic_replication_factor,
        ReplicationFactor::Count(3)
    );
    assert_eq!(
        flow.checkpoints_topic_replication_factor,
        ReplicationFactor::Count(3)
    );
    assert_eq!(
        flow.heartbeats_topic_replication_factor,
        ReplicationFactor::Count(3)
    );
    assert_eq!(flow.checkpoints_topic(), "A.checkpoints.internal");
    assert_eq!(
        flow.offset_syncs_topic(),
        ("mm2-offset-syncs.B.internal".to_owned(), "A")
    );
    assert_eq!(config.cluster("B").unwrap().bootstrap_servers.len(), 3);
    assert_eq!(
        config.cluster("A").unwrap().security_protocol,
        SecurityProtocol::Plaintext
    );
    for key in [
        "offset.storage.replication.factor",
        "status.storage.replication.factor",
        "config.storage.replication.factor",
    ] {
        assert!(has_ignored(&notices, key), "{key}");
    }
    assert_eq!(notices.len(), 3, "{notices:#?}");
}

#[test]
fn seed_amq_streams_tuning() {
    let (config, notices) = fixture("amq-streams-tuning.properties");
    let flow = config
        .flow("my-source-cluster", "my-target-cluster")
        .unwrap();
    assert_eq!(flow.policy.kind(), PolicyKind::Identity);
    assert_eq!(flow.remote_topic("app1-t1"), "app1-t1");
    assert!(flow.should_replicate_topic("app1-t1"));
    assert!(!flow.should_replicate_topic("app1-t3"));
    assert!(flow.should_replicate_group("app1-consumers"));
    assert!(flow.should_replicate_group("app2"));
    assert!(!flow.should_replicate_group("app3-consumers"));
    assert_eq!(flow.sync_topic_acls, None);
    assert_eq!(flow.sync_topic_configs, None);
    assert_eq!(flow.refresh_topics, None);
    assert_eq!(flow.refresh_groups, Some(defaults::REFRESH_INTERVAL));
    assert_eq!(flow.sync_group_offsets, Some(Duration::from_secs(10)));
    assert_eq!(flow.offset_syncs_location, OffsetSyncsLocation::Target);
    assert_eq!(
        flow.offset_syncs_topic(),
        (
            "mm2-offset-syncs.my-source-cluster.internal".to_owned(),
            "my-target-cluster"
        )
    );
    assert_eq!(flow.tasks_max, Some(32));

    let source = config.cluster("my-source-cluster").unwrap();
    let tls = source.tls.as_ref().unwrap();
    assert_eq!(
        tls.trust,
        TrustAnchors::PemFile(
            "/opt/kafka/cluster-ca-certs/my-source-cluster-cluster-ca-cert/ca.crt".into()
        )
    );
    match tls.identity.as_ref().unwrap() {
        ClientIdentity::PemInline {
            certificate_chain,
            private_key,
            key_password,
        } => {
            assert!(certificate_chain.contains("-----BEGIN CERTIFICATE-----"));
            assert!(private_key.expose().contains("-----BEGIN PRIVATE KEY-----"));
            assert!(key_password.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert!(tls.verify_hostname);
    assert_eq!(tls.versions, [TlsVersion::Tls12, TlsVersion::Tls13]);
    let target = config.cluster("my-target-cluster").unwrap();
    assert_eq!(target.security_protocol, SecurityProtocol::SaslSsl);
    let sasl = target.sasl.as_ref().unwrap();
    assert_eq!(sasl.username, "kafka.mm2.migration-user");
    assert_eq!(sasl.password.expose(), "test-only-target-password");

    // The guide's top-level producer tuning becomes the target producer's defaults.
    let p = &flow.target_producer;
    assert_eq!(p.get("batch.size"), Some("50000"));
    assert_eq!(p.get("buffer.memory"), Some("225000000"));
    assert_eq!(p.get("compression.type"), Some("gzip"));
    assert_eq!(p.get("linger.ms"), Some("1500"));
    assert_eq!(p.get("max.request.size"), Some("157286400"));
    assert_eq!(p.get("request.timeout.ms"), Some("60000"));
    assert_eq!(
        p.get("acks"),
        None,
        "`producer.ack` is a typo and has no effect"
    );
    assert_eq!(
        p.setting("linger.ms").unwrap().source_key,
        "producer.linger.ms"
    );

    let linger = notices
        .iter()
        .find(|n| n.key.as_deref() == Some("producer.linger.ms"))
        .unwrap();
    assert!(
        linger.to_string().contains(
            "MM2 dedicated mode would ignore `producer.linger.ms`; ferry applies it as the \
             default for every target cluster"
        ),
        "{linger}"
    );
    let suggestion = |key: &str| {
        notice(&notices, key).into_iter().find_map(|k| match k {
            NoticeKind::UnknownKey { suggestion } => Some(suggestion.clone()),
            _ => None,
        })
    };
    assert_eq!(
        suggestion("producer.ack"),
        Some(Some("producer.acks".to_owned()))
    );
    assert_eq!(
        suggestion("offset_flush_timeout"),
        Some(Some("offset.flush.timeout.ms".to_owned()))
    );
    assert_eq!(
        suggestion("task_shutdown_graceful_timeout_ms"),
        Some(Some("task.shutdown.graceful.timeout.ms".to_owned()))
    );
    assert!(has_ignored(&notices, "topic.creation.enable"));
    assert!(has_ignored(&notices, "tasks.max"));
    assert!(has_ignored(
        &notices,
        "my-target-cluster.config.storage.replication.factor"
    ));
    assert!(
        notice(&notices, "replication.policy.class").contains(&&NoticeKind::StrimziPolicyClass)
    );
}

#[test]
fn seed_amq_streams_strict_mode_refuses_the_typo() {
    let err = MirrorConfig::load_path(
        format!("{ROOT}/tests/config/amq-streams-tuning.properties"),
        &options().strict(true),
    )
    .unwrap_err();
    match err {
        ConfigError::UnknownKey {
            key,
            line,
            suggestion,
        } => {
            assert_eq!(key, "producer.ack");
            assert_eq!(
                line,
                line_of(
                    &fixture_text("amq-streams-tuning.properties"),
                    "producer.ack:"
                )
            );
            assert_eq!(suggestion.as_deref(), Some("producer.acks"));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn seed_amq_streams_guide_deny_list_is_flagged() {
    // The guide's "deny-list" for groups, `^(?!.*(heartbeats|)).*$`, matches no group at all.
    let text = format!(
        "{}groups = ^(?!.*(heartbeats|)).*$\n",
        fixture_text("amq-streams-tuning.properties")
    );
    let (config, notices) = MirrorConfig::load_str(&text, &options()).unwrap();
    let flow = &config.flows()[0];
    assert!(!flow.should_replicate_group("app1-consumers"));
    let lints: Vec<_> = notice(&notices, "groups")
        .into_iter()
        .filter_map(|k| match k {
            NoticeKind::Filter(lint) => Some(lint.kind.clone()),
            _ => None,
        })
        .collect();
    assert!(
        lints
            .iter()
            .any(|k| matches!(k, FilterLintKind::MatchesNothing { .. })),
        "{lints:?}"
    );
    assert!(lints.contains(&FilterLintKind::GroupFilterMentionsHeartbeats));
    let n = notices
        .iter()
        .find(|n| matches!(&n.kind, NoticeKind::Filter(l) if matches!(l.kind, FilterLintKind::MatchesNothing { .. })))
        .unwrap();
    assert_eq!(n.line, Some(line_of(&text, "heartbeats|")));
    assert_eq!(n.severity(), Severity::Warning);
}

#[test]
fn seed_aiven_cloudkarafka() {
    let (config, notices) = fixture("aiven-cloudkarafka.properties");
    let flow = config.flow("kafka-source", "kafka-target").unwrap();
    assert_eq!(flow.policy.kind(), PolicyKind::Default);
    assert_eq!(
        flow.remote_topic("customer.clicks"),
        "kafka-source.customer.clicks"
    );
    assert!(flow.should_replicate_topic("customer.clicks"));
    assert!(flow.should_replicate_topic("eu.logistic.trucks"));
    assert!(
        !flow.should_replicate_topic("customer.test"),
        "excluded by topics.blacklist"
    );
    assert!(
        !flow.should_replicate_topic("customerXclicks"),
        "the `.` is escaped"
    );
    assert!(!flow.should_replicate_topic("orders"));
    assert!(
        flow.should_replicate_topic("heartbeats"),
        "heartbeats bypass the filter"
    );
    assert_eq!(flow.offset_syncs_location, OffsetSyncsLocation::Target);
    assert_eq!(flow.sync_group_offsets, Some(Duration::from_secs(60)));
    assert_eq!(
        flow.emit_heartbeats,
        Some(defaults::EMIT_HEARTBEATS_INTERVAL)
    );

    let source = config.cluster("kafka-source").unwrap();
    assert_eq!(source.security_protocol, SecurityProtocol::SaslSsl);
    let sasl = source.sasl.as_ref().unwrap();
    assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
    assert_eq!(sasl.username, "ck-user");
    assert_eq!(sasl.password.expose(), "ck-test-password");
    assert_eq!(
        source.tls.as_ref().unwrap().trust,
        TrustAnchors::SystemDefault
    );
    let target = config.cluster("kafka-target").unwrap();
    assert_eq!(
        target.sasl.as_ref().unwrap().mechanism,
        SaslMechanism::ScramSha256
    );
    assert_eq!(
        target.tls.as_ref().unwrap().trust,
        TrustAnchors::PemFile("/etc/mm2/aiven-ca.pem".into())
    );
    assert!(
        notice(&notices, "kafka-source->kafka-target.topics.blacklist").contains(
            &&NoticeKind::DeprecatedAlias {
                canonical: "topics.exclude",
                removed_in: "4.0"
            }
        )
    );
}

#[test]
fn seed_aiven_guide_deny_pattern_is_a_compile_error() {
    // The guide writes the deny-list `*\..test`, which no regex engine accepts.
    let text = fixture_text("aiven-cloudkarafka.properties").replace(r".*\\.test", r"*\\..test");
    let err = load_err(&text);
    match &err {
        ConfigError::Filter { key, line, source } => {
            assert_eq!(key, "kafka-source->kafka-target.topics.blacklist");
            assert_eq!(*line, Some(line_of(&text, "topics.blacklist")));
            assert_eq!(source.pattern(), r"*\..test");
        }
        other => panic!("{other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("line {}", line_of(&text, "topics.blacklist"))),
        "{msg}"
    );
    assert!(msg.contains(r"*\..test"), "{msg}");
}

#[test]
fn seed_strimzi_openshift_identity() {
    let (config, notices) = fixture("strimzi-openshift-identity.properties");
    let flow = config
        .flow("my-source-cluster", "my-target-cluster")
        .unwrap();
    assert_eq!(flow.policy.kind(), PolicyKind::Identity);
    assert_eq!(flow.policy.separator(), "");
    assert_eq!(flow.remote_topic("greetings"), "greetings");
    assert_eq!(
        flow.remote_topic("heartbeats"),
        "my-source-clusterheartbeats"
    );
    assert_eq!(flow.refresh_topics, Some(Duration::from_secs(60)));
    assert_eq!(flow.refresh_groups, Some(Duration::from_secs(60)));
    assert_eq!(
        flow.sync_group_offsets,
        Some(defaults::SYNC_GROUP_OFFSETS_INTERVAL)
    );
    assert_eq!(flow.sync_topic_acls, None);
    assert_eq!(flow.tasks_max, Some(12));
    assert_eq!(flow.replication_factor, ReplicationFactor::Count(3));

    let source = config.cluster("my-source-cluster").unwrap();
    assert_eq!(source.bootstrap_servers[0].port, 443);
    let tls = source.tls.as_ref().unwrap();
    assert!(
        matches!(&tls.trust, TrustAnchors::PemInline(pem) if pem.contains("BEGIN CERTIFICATE"))
    );
    assert!(matches!(
        tls.identity,
        Some(ClientIdentity::PemInline { .. })
    ));
    let target = config.cluster("my-target-cluster").unwrap();
    assert_eq!(target.security_protocol, SecurityProtocol::SaslPlaintext);
    assert_eq!(
        target.sasl.as_ref().unwrap().password.expose(),
        "test-only-admin-scram-password"
    );

    let empty_sep = notice(&notices, "replication.policy.separator");
    assert!(
        matches!(empty_sep.as_slice(), [NoticeKind::EmptySeparator { example }] if example == "mm2-offset-syncsmy-target-clusterinternal"),
        "{empty_sep:?}"
    );
    for key in [
        "my-source-cluster.config.storage.replication.factor",
        "my-target-cluster.offset.storage.topic",
        "my-target-cluster.status.storage.topic",
    ] {
        assert!(has_ignored(&notices, key), "{key}");
    }
}

#[test]
fn seed_configs_never_print_their_secrets() {
    for name in [
        "charmed-identity-scram.properties",
        "amq-streams-tuning.properties",
        "aiven-cloudkarafka.properties",
        "strimzi-openshift-identity.properties",
    ] {
        let (config, notices) = fixture(name);
        let printed = format!(
            "{config:?}\n{notices:?}\n{}",
            notices
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        for secret in [
            "old-test-password",
            "new-test-password",
            "test-only-target-password",
            "test-only-admin-scram-password",
            "ck-test-password",
            "aiven-test-password",
            "BEGIN PRIVATE KEY",
        ] {
            assert!(!printed.contains(secret), "{name} prints {secret}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Defaults and precedence.
// ---------------------------------------------------------------------------------------------

#[test]
fn defaults_follow_mm2() {
    let (config, notices) = load(&ab(""));
    assert!(notices.is_empty(), "{notices:#?}");
    let f = config.flow("A", "B").unwrap();
    assert!(
        config.flow("B", "A").is_none(),
        "flows are disabled by default"
    );
    assert_eq!(f.policy.kind(), PolicyKind::Default);
    assert_eq!(f.policy.separator(), ".");
    assert_eq!(f.replication_factor, ReplicationFactor::Count(2));
    assert_eq!(
        f.offset_syncs_topic_replication_factor,
        ReplicationFactor::Count(3)
    );
    assert_eq!(
        f.checkpoints_topic_replication_factor,
        ReplicationFactor::Count(3)
    );
    assert_eq!(
        f.heartbeats_topic_replication_factor,
        ReplicationFactor::Count(3)
    );
    assert_eq!(f.refresh_topics, Some(Duration::from_secs(600)));
    assert_eq!(f.refresh_groups, Some(Duration::from_secs(600)));
    assert_eq!(f.sync_topic_configs, Some(Duration::from_secs(600)));
    assert_eq!(f.sync_topic_acls, Some(Duration::from_secs(600)));
    assert_eq!(f.emit_checkpoints, Some(Duration::from_secs(60)));
    assert_eq!(
        f.sync_group_offsets, None,
        "group sync is off by default (KIP-545)"
    );
    assert_eq!(f.emit_heartbeats, Some(Duration::from_secs(1)));
    assert!(f.heartbeats_replication);
    assert!(f.emit_offset_syncs);
    assert_eq!(f.offset_syncs_location, OffsetSyncsLocation::Source);
    assert_eq!(f.offset_lag_max, 100);
    assert_eq!(f.use_defaults_from, UseDefaultsFrom::Target);
    assert_eq!(f.admin_timeout, Duration::from_millis(60_000));
    assert_eq!(f.consumer_poll_timeout, Duration::from_millis(1_000));
    assert_eq!(f.tasks_max, None);
    assert_eq!(f.exactly_once_support, ExactlyOnceSupport::Requested);
    assert_eq!(
        f.exactly_once_source_support,
        ExactlyOnceSourceSupport::Disabled
    );
    assert_eq!(
        f.isolation_level,
        IsolationLevel::ReadCommitted,
        "ferry's default"
    );
    assert_eq!(f.auto_offset_reset, AutoOffsetReset::Earliest);
    assert!(f.config_properties_exclude.matches("min.insync.replicas"));
    assert!(!f.config_properties_exclude.matches("retention.ms"));
    assert!(!f.should_replicate_topic("orders.replica"));
    assert!(!f.should_replicate_group("connect-sink"));
    assert_eq!(f.heartbeats_topic(), "heartbeats");
}

#[test]
fn flow_scope_wins_over_top_level() {
    let (config, _) = load(&format!(
        "{AB}A->B.enabled = true\nB->A.enabled = true\ntopics = a.*\nB->A.topics = b.*\n\
         refresh.topics.interval.seconds = 30\nA->B.refresh.topics.interval.seconds = 10\n"
    ));
    let ab = config.flow("A", "B").unwrap();
    let ba = config.flow("B", "A").unwrap();
    assert!(ab.should_replicate_topic("a1") && !ab.should_replicate_topic("b1"));
    assert!(ba.should_replicate_topic("b1") && !ba.should_replicate_topic("a1"));
    assert_eq!(ab.refresh_topics, Some(Duration::from_secs(10)));
    assert_eq!(ba.refresh_topics, Some(Duration::from_secs(30)));
}

#[test]
fn client_settings_precedence() {
    let (config, notices) = load(&ab("producer.linger.ms = 1\nB.producer.linger.ms = 2\n\
         producer.batch.size = 100\nB.producer.batch.size = 200\nA->B.producer.batch.size = 300\n\
         producer.acks = 1\nA->B.producer.override.acks = all\nA->B.producer.acks = 0\n\
         consumer.max.poll.records = 7\nA.request.timeout.ms = 999\n"));
    let f = config.flow("A", "B").unwrap();
    assert_eq!(
        f.target_producer.get("linger.ms"),
        Some("2"),
        "{{tgt}}.producer over producer."
    );
    assert_eq!(
        f.target_producer.get("batch.size"),
        Some("300"),
        "flow over cluster"
    );
    assert_eq!(
        f.target_producer.get("acks"),
        Some("all"),
        "producer.override wins"
    );
    assert_eq!(f.source_consumer.get("max.poll.records"), Some("7"));
    assert_eq!(f.source_consumer.get("request.timeout.ms"), Some("999"));
    assert_eq!(f.source_admin.get("request.timeout.ms"), Some("999"));
    assert_eq!(
        config.cluster("A").unwrap().producer.get("linger.ms"),
        Some("1")
    );
    assert_eq!(
        config
            .cluster("A")
            .unwrap()
            .client(ClientRole::Producer)
            .get("acks"),
        Some("1")
    );
    for key in [
        "producer.linger.ms",
        "producer.batch.size",
        "consumer.max.poll.records",
        "A.request.timeout.ms",
    ] {
        assert!(
            notice(&notices, key)
                .iter()
                .any(|k| matches!(k, NoticeKind::Mm2WouldIgnore { .. })),
            "{key}: {notices:#?}"
        );
    }
    assert!(notice(&notices, "B.producer.linger.ms").is_empty());
}

#[test]
fn worker_keys_resolve_flow_then_target_then_top_level() {
    let (config, notices) = load(&format!(
        "{AB}A->B.enabled = true\nB->A.enabled = true\nexactly.once.source.support = preparing\n\
         A.exactly.once.source.support = enabled\nA->B.exactly.once.support = required\n"
    ));
    assert_eq!(
        config.flow("B", "A").unwrap().exactly_once_source_support,
        ExactlyOnceSourceSupport::Enabled,
        "{{target}}.exactly.once.source.support"
    );
    assert_eq!(
        config.flow("A", "B").unwrap().exactly_once_source_support,
        ExactlyOnceSourceSupport::Preparing
    );
    assert_eq!(
        config.flow("A", "B").unwrap().exactly_once_support,
        ExactlyOnceSupport::Required
    );
    assert!(matches!(
        notice(&notices, "exactly.once.source.support").as_slice(),
        [NoticeKind::Mm2WouldIgnore { .. }]
    ));
}

#[test]
fn consumer_reset_and_isolation() {
    // MM2's testReplicateFromLatest: `primary.consumer.auto.offset.reset=latest`.
    let (config, _) = load(&ab(
        "A.consumer.auto.offset.reset = latest\nA->B.consumer.isolation.level = read_uncommitted\n",
    ));
    let f = config.flow("A", "B").unwrap();
    assert_eq!(f.auto_offset_reset, AutoOffsetReset::Latest);
    assert_eq!(f.isolation_level, IsolationLevel::ReadUncommitted);
    let (config, _) = load(&ab("A.consumer.auto.offset.reset = by_duration:PT6H\n"));
    assert_eq!(
        config.flows()[0].auto_offset_reset,
        AutoOffsetReset::ByDuration(Duration::from_secs(6 * 3600))
    );
    let err = load_err(&ab("A.consumer.auto.offset.reset = smallest\n"));
    assert_eq!(err.key(), Some("A.consumer.auto.offset.reset"));
}

#[test]
fn security_defaults_apply_to_every_cluster_and_clusters_override() {
    let jaas = format!(r#"{SCRAM} required username="u" password="p";"#);
    let (config, _) = load(&format!(
        "clusters = A, B, C\nbootstrap.servers = shared:9092\nA.bootstrap.servers = a:9092\n\
         security.protocol = SASL_SSL\nsasl.mechanism = SCRAM-SHA-256\nsasl.jaas.config = {jaas}\n\
         C.security.protocol = PLAINTEXT\nB.sasl.mechanism = SCRAM-SHA-512\n\
         B.ssl.endpoint.identification.algorithm =\n"
    ));
    let a = config.cluster("A").unwrap();
    assert_eq!(a.bootstrap_servers[0].host, "a");
    assert_eq!(a.security_protocol, SecurityProtocol::SaslSsl);
    assert_eq!(
        a.sasl.as_ref().unwrap().mechanism,
        SaslMechanism::ScramSha256
    );
    assert!(a.tls.as_ref().unwrap().verify_hostname);
    let b = config.cluster("B").unwrap();
    assert_eq!(
        b.bootstrap_servers[0].host, "shared",
        "top-level bootstrap.servers is a default"
    );
    assert_eq!(
        b.sasl.as_ref().unwrap().mechanism,
        SaslMechanism::ScramSha512
    );
    assert!(
        !b.tls.as_ref().unwrap().verify_hostname,
        "empty algorithm disables the check"
    );
    let c = config.cluster("C").unwrap();
    assert_eq!(c.security_protocol, SecurityProtocol::Plaintext);
    assert!(c.sasl.is_none() && c.tls.is_none());
}

#[test]
fn role_level_security_keys_must_agree() {
    // MM2's SSL integration test sets `backup.producer.ssl.*` besides `backup.ssl.*`.
    let (config, _) = load(&ab(
        "B.security.protocol = SSL\nB.ssl.truststore.type = PEM\n\
         B.producer.ssl.truststore.location = /etc/ca.pem\nB.admin.ssl.truststore.location = /etc/ca.pem\n",
    ));
    assert_eq!(
        config.cluster("B").unwrap().tls.as_ref().unwrap().trust,
        TrustAnchors::PemFile("/etc/ca.pem".into())
    );
    let err = load_err(&ab(
        "B.security.protocol = SSL\nB.producer.ssl.truststore.location = /a.pem\n\
         B.consumer.ssl.truststore.location = /b.pem\n",
    ));
    assert!(
        err.to_string().contains("one connection per cluster"),
        "{err}"
    );
}

#[test]
fn aliases_with_dots() {
    let (config, notices) = load(
        "clusters = us.east, us.west\nus.east.bootstrap.servers = e:9092\n\
         us.west.bootstrap.servers = w:9092\nus.east->us.west.enabled = true\n\
         us.east->us.west.topics = orders\n",
    );
    assert!(notices.is_empty(), "{notices:#?}");
    let f = config.flow("us.east", "us.west").unwrap();
    assert_eq!(f.remote_topic("orders"), "us.east.orders");
    assert!(f.should_replicate_topic("orders") && !f.should_replicate_topic("payments"));
}

#[test]
fn top_level_enabled_enables_every_pair() {
    let (config, notices) = load(&format!("{AB}enabled = true\n"));
    assert_eq!(config.flows().len(), 2);
    assert!(
        notices
            .iter()
            .any(|n| n.kind == NoticeKind::EnablesAllPairs { flows: 2 })
    );
}

// ---------------------------------------------------------------------------------------------
// Keys, notices and aliases.
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_keys_warn_with_the_nearest_key_and_fail_in_strict_mode() {
    let text = ab("sync.group.offset.enabled = true\nA->B.topic = x\n");
    let (_, notices) = load(&text);
    assert_eq!(
        notice(&notices, "sync.group.offset.enabled"),
        [&NoticeKind::UnknownKey {
            suggestion: Some("sync.group.offsets.enabled".to_owned())
        }]
    );
    assert_eq!(
        notice(&notices, "A->B.topic"),
        [&NoticeKind::UnknownKey {
            suggestion: Some("A->B.topics".to_owned())
        }]
    );
    assert!(notices.iter().all(|n| n.severity() == Severity::Warning));
    let err = MirrorConfig::load_str(&text, &options().strict(true)).unwrap_err();
    assert!(
        matches!(err, ConfigError::UnknownKey { line: 5, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("did you mean `sync.group.offsets.enabled`")
    );
}

#[test]
fn ignored_keys_are_reported_never_dropped_silently() {
    let keys = [
        "tasks.max = 4",
        "key.converter = org.apache.kafka.connect.converters.ByteArrayConverter",
        "value.converter.schemas.enable = false",
        "offset.storage.topic = x",
        "dedicated.mode.enable.internal.rest = true",
        "B.offset.flush.timeout.ms = 250000",
        "offset.flush.interval.ms = 10000",
        "transforms = x",
        "use.incremental.alter.configs = required",
        "ssl.cipher.suites = TLS_AES_128_GCM_SHA256",
        "sasl.login.refresh.buffer.seconds = 300",
        "A.producer.ssl.provider = SunJSSE",
        "group.id = mm2",
        "errors.tolerance = all",
        "listeners = http://0.0.0.0:8083",
    ];
    let (_, notices) = load(&ab(&keys.join("\n")));
    for line in keys {
        let key = line.split(" = ").next().unwrap();
        assert!(has_ignored(&notices, key), "{key}: {notices:#?}");
    }
}

#[test]
fn deprecated_aliases_and_canonical_precedence() {
    let (config, notices) = load(&ab("groups.blacklist = tmp-.*\n"));
    assert!(!config.flows()[0].should_replicate_group("tmp-1"));
    assert!(
        config.flows()[0].should_replicate_group("console-consumer-1"),
        "replaces the default"
    );
    assert!(
        notice(&notices, "groups.blacklist")
            .iter()
            .any(|k| matches!(
                k,
                NoticeKind::DeprecatedAlias {
                    canonical: "groups.exclude",
                    ..
                }
            ))
    );
    // The canonical key wins over the alias whatever the order.
    let (config, notices) = load(&ab("topics.exclude = a\ntopics.blacklist = b\n"));
    let f = &config.flows()[0];
    assert!(!f.should_replicate_topic("a") && f.should_replicate_topic("b"));
    assert!(
        notice(&notices, "topics.blacklist")
            .iter()
            .any(|k| matches!(k, NoticeKind::NoEffectAtScope { .. }))
    );
}

#[test]
fn keys_at_the_wrong_scope_have_no_effect_and_say_so() {
    let (config, notices) = load(&ab(
        "A.topics = nope\nA->B.bootstrap.servers = x:1\nA.clusters = x\nA.producer.override.acks = 1\n",
    ));
    let f = &config.flows()[0];
    assert!(
        f.should_replicate_topic("orders"),
        "`A.topics` must not apply"
    );
    for key in [
        "A.topics",
        "A->B.bootstrap.servers",
        "A.clusters",
        "A.producer.override.acks",
    ] {
        assert!(
            notice(&notices, key)
                .iter()
                .any(|k| matches!(k, NoticeKind::NoEffectAtScope { .. })),
            "{key}: {notices:#?}"
        );
    }
}

#[test]
fn keys_for_undeclared_aliases() {
    let (_, notices) = load(&ab("C.bootstrap.servers = c:9092\nA->C.enabled = true\n"));
    assert_eq!(
        notice(&notices, "C.bootstrap.servers"),
        [&NoticeKind::UnknownAlias { alias: "C".into() }]
    );
    assert_eq!(
        notice(&notices, "A->C.enabled"),
        [&NoticeKind::UnknownAlias { alias: "C".into() }]
    );
}

#[test]
fn duplicates_last_wins_with_a_notice() {
    let (config, notices) = load(&ab("topics = a\ntopics = b\n"));
    assert!(config.flows()[0].should_replicate_topic("b"));
    assert!(!config.flows()[0].should_replicate_topic("a"));
    assert_eq!(
        notice(&notices, "topics"),
        [&NoticeKind::DuplicateKey { previous_line: 5 }]
    );
}

#[test]
fn single_backslashes_in_regexes_are_flagged() {
    // `customer\..*` in a properties file is `customer..*`: the escape is lost.
    let (config, notices) = load(&ab("A->B.topics = customer\\..*\n"));
    assert!(config.flows()[0].should_replicate_topic("customerXclicks"));
    let n = notices
        .iter()
        .find(|n| n.kind == NoticeKind::DroppedBackslash { character: '.' })
        .unwrap();
    assert_eq!((n.key.as_deref(), n.line), (Some("A->B.topics"), Some(5)));
    assert!(n.to_string().contains(r"write `\\.`"), "{n}");
    // Doubled, as in the Aiven fixture: no notice.
    let (config, notices) = load(&ab("A->B.topics = customer\\\\..*\n"));
    assert!(!config.flows()[0].should_replicate_topic("customerXclicks"));
    assert!(notices.is_empty(), "{notices:#?}");
}

#[test]
fn filter_lints_become_notices() {
    let (_, notices) = load(&ab("A->B.topics.exclude = heartbeats, .*-tmp\n"));
    assert!(notices.iter().any(|n| n.key.as_deref() == Some("A->B.topics.exclude")
        && n.line == Some(5)
        && matches!(&n.kind, NoticeKind::Filter(l) if matches!(l.kind, FilterLintKind::ExcludesHeartbeats { .. }))));
}

// ---------------------------------------------------------------------------------------------
// Invalid values, secrets and unsupported settings.
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_values_name_key_value_and_line() {
    let err = load_err(&ab("A->B.refresh.topics.interval.seconds = soon\n"));
    match &err {
        ConfigError::InvalidValue {
            key, line, value, ..
        } => {
            assert_eq!(key, "A->B.refresh.topics.interval.seconds");
            assert_eq!(*line, Some(5));
            assert_eq!(value.as_deref(), Some("soon"));
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().starts_with("line 5: invalid value `soon`"),
        "{err}"
    );
    for bad in [
        "replication.factor = 0",
        "emit.checkpoints.interval.seconds = 0",
        "sync.group.offsets.enabled = yes",
        "offset-syncs.topic.location = both",
        "producer.acks = most",
        "A->B.consumer.max.poll.records = many",
        "admin.timeout.ms = -5",
        "A->B.enabled = sure",
        "tasks.max = 0",
    ] {
        let err = load_err(&ab(&format!("{bad}\n")));
        assert!(
            matches!(err, ConfigError::InvalidValue { line: Some(5), .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn negative_intervals_disable_and_minus_one_is_the_broker_default() {
    let (config, _) = load(&ab(
        "refresh.groups.interval.seconds = -1\nreplication.factor = -1\nemit.heartbeats.enabled = false\n",
    ));
    let f = &config.flows()[0];
    assert_eq!(f.refresh_groups, None);
    assert_eq!(f.emit_heartbeats, None);
    assert_eq!(f.replication_factor, ReplicationFactor::BrokerDefault);
    assert_eq!(f.replication_factor.as_i16(), -1);
}

#[test]
fn secret_values_are_never_shown() {
    // A secret key with a bad value.
    let err = load_err(&ab(&format!(
        "A.security.protocol = SASL_SSL\nA.sasl.mechanism = PLAIN\nA.sasl.jaas.config = {SCRAM} required username=u password=\"hunter2\"\n"
    )));
    assert!(
        matches!(
            err,
            ConfigError::Jaas {
                source: JaasError::MissingSemicolon,
                ..
            }
        ),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains("hunter2"));
    // A value from a placeholder is secret from then on.
    let opts = options().with_env([("A_SERVERS", "hunter2-host")]);
    let err = MirrorConfig::load_str(
        "clusters = A\nA.bootstrap.servers = ${env:A_SERVERS}\n",
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(err, ConfigError::InvalidValue { value: None, .. }),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

#[test]
fn sasl_login_errors() {
    let sasl = |mech: &str, jaas: &str| {
        ab(&format!(
            "B.security.protocol = SASL_PLAINTEXT\n{mech}B.sasl.jaas.config = {jaas}\n"
        ))
    };
    let two =
        format!("{SCRAM} required username=a password=b; {SCRAM} required username=c password=d;");
    let err = load_err(&sasl("B.sasl.mechanism = SCRAM-SHA-512\n", &two));
    assert!(matches!(
        err,
        ConfigError::Jaas {
            source: JaasError::TooManyLoginModules { count: 2 },
            ..
        }
    ));
    let err = load_err(&sasl("B.sasl.mechanism = SCRAM-SHA-512\n", ""));
    assert!(
        matches!(
            err,
            ConfigError::Jaas {
                source: JaasError::NoLoginModule,
                ..
            }
        ),
        "{err}"
    );
    let oauth = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;";
    let err = load_err(&sasl("B.sasl.mechanism = SCRAM-SHA-512\n", oauth));
    assert!(err.is_unsupported(), "{err}");
    assert!(err.to_string().contains("OAUTHBEARER"));
    let err = load_err(&sasl("B.sasl.mechanism = OAUTHBEARER\n", oauth));
    assert!(
        err.is_unsupported() && err.to_string().contains("OAUTHBEARER"),
        "{err}"
    );
    let err = load_err(&sasl("B.sasl.mechanism = GSSAPI\n", oauth));
    assert!(
        err.is_unsupported() && err.to_string().contains("GSSAPI"),
        "{err}"
    );
    // Kafka's default mechanism is GSSAPI.
    let plain = format!("{PLAIN_LOGIN_MODULE} required username=a password=b;");
    let err = load_err(&sasl("", &plain));
    assert_eq!(err.key(), Some("B.sasl.mechanism"));
    assert!(
        err.is_unsupported() && err.to_string().contains("GSSAPI"),
        "{err}"
    );
    // Mechanism and module must agree.
    let err = load_err(&sasl("B.sasl.mechanism = SCRAM-SHA-256\n", &plain));
    assert!(err.to_string().contains("needs ScramLoginModule"), "{err}");
    let err = load_err(&sasl("B.sasl.mechanism = scram-sha-256\n", &plain));
    assert!(err.to_string().contains("case-sensitive"), "{err}");
    // No login at all.
    let err = load_err(&ab(
        "B.security.protocol = SASL_SSL\nB.sasl.mechanism = PLAIN\n",
    ));
    assert!(
        matches!(err, ConfigError::MissingKey { ref key, .. } if key == "B.sasl.jaas.config"),
        "{err}"
    );
    // SASL settings on a PLAINTEXT cluster are reported.
    let (_, notices) = load(&ab(&format!(
        "A.sasl.mechanism = PLAIN\nA.sasl.jaas.config = {plain}\n"
    )));
    assert!(
        notice(&notices, "A.sasl.jaas.config")
            .iter()
            .any(|k| matches!(k, NoticeKind::UnusedSecurity { what: "SASL", .. }))
    );
}

#[test]
fn jks_and_pkcs12_stores_are_refused_with_conversion_commands() {
    let err = load_err(&ab(
        "B.security.protocol = SSL\nB.ssl.truststore.location = /etc/kafka/truststore.jks\nB.ssl.truststore.password = changeit\n",
    ));
    match &err {
        ConfigError::UnsupportedStoreType {
            key,
            store_type,
            conversion,
            ..
        } => {
            assert_eq!(key, "B.ssl.truststore.location");
            assert_eq!(store_type, "JKS");
            assert!(
                conversion
                    .contains("keytool -importkeystore -srckeystore /etc/kafka/truststore.jks")
            );
            assert!(conversion.contains("openssl pkcs12"));
            assert!(conversion.contains("ssl.truststore.type=PEM"));
        }
        other => panic!("{other}"),
    }
    assert!(err.is_unsupported());
    assert!(!err.to_string().contains("changeit"));
    let err = load_err(&ab(
        "B.security.protocol = SSL\nB.ssl.keystore.type = PKCS12\nB.ssl.keystore.location = /k.p12\n",
    ));
    match &err {
        ConfigError::UnsupportedStoreType {
            store_type,
            conversion,
            ..
        } => {
            assert_eq!(store_type, "PKCS12");
            assert!(!conversion.contains("keytool -importkeystore"));
            assert!(conversion.contains("openssl pkcs12 -in /k.p12 -nodes -out keystore.pem"));
        }
        other => panic!("{other}"),
    }
    let err = load_err(&ab(
        "B.security.protocol = SSL\nB.ssl.truststore.location = /ts.p12\n",
    ));
    assert!(
        matches!(err, ConfigError::UnsupportedStoreType { ref store_type, .. } if store_type == "PKCS12")
    );
    // PEM by extension is accepted with a notice.
    let (config, notices) = load(&ab(
        "B.security.protocol = SSL\nB.ssl.truststore.location = /ca.pem\nB.ssl.keystore.location = /client.pem\nB.ssl.key.password = kp\n",
    ));
    let tls = config.cluster("B").unwrap().tls.clone().unwrap();
    assert_eq!(tls.trust, TrustAnchors::PemFile("/ca.pem".into()));
    assert!(
        matches!(tls.identity, Some(ClientIdentity::PemFile { ref key_password, .. }) if key_password.as_ref().map(Secret::expose) == Some("kp"))
    );
    assert_eq!(
        notice(&notices, "B.ssl.truststore.location"),
        [&NoticeKind::PemByExtension]
    );
}

#[test]
fn inline_pem_keys_need_each_other_and_pem_text() {
    let err = load_err(&ab(
        "B.security.protocol = SSL\nB.ssl.keystore.key = -----BEGIN PRIVATE KEY-----x\n",
    ));
    assert!(
        matches!(err, ConfigError::MissingKey { ref key, .. } if key == "B.ssl.keystore.certificate.chain"),
        "{err}"
    );
    let err = load_err(&ab(
        "B.security.protocol = SSL\nB.ssl.truststore.certificates = not pem\n",
    ));
    assert!(
        matches!(err, ConfigError::InvalidValue { value: None, .. }),
        "{err}"
    );
}

#[test]
fn tls_versions() {
    let (config, _) = load(&ab("B.security.protocol = SSL\nB.ssl.protocol = TLSv1.2\n"));
    assert_eq!(
        config.cluster("B").unwrap().tls.as_ref().unwrap().versions,
        [TlsVersion::Tls12]
    );
    let (config, _) = load(&ab(
        "B.security.protocol = SSL\nB.ssl.enabled.protocols = TLSv1.3\n",
    ));
    assert_eq!(
        config.cluster("B").unwrap().tls.as_ref().unwrap().versions,
        [TlsVersion::Tls13]
    );
    let err = load_err(&ab(
        "B.security.protocol = SSL\nB.ssl.enabled.protocols = TLSv1.1, TLSv1.2\n",
    ));
    assert!(err.is_unsupported(), "{err}");
    let err = load_err(&ab(
        "B.security.protocol = SSL\nB.ssl.endpoint.identification.algorithm = ldaps\n",
    ));
    assert!(err.is_unsupported(), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Topology validation.
// ---------------------------------------------------------------------------------------------

#[test]
fn self_replication_is_refused() {
    let err = load_err(&format!("{AB}A->A.enabled = true\n"));
    assert!(
        matches!(err, ConfigError::SelfReplication { ref alias, line: 4, .. } if alias == "A"),
        "{err}"
    );
    let (_, notices) = load(&format!("{AB}A->A.enabled = false\n"));
    assert!(
        notice(&notices, "A->A.enabled")
            .iter()
            .any(|k| matches!(k, NoticeKind::NoEffectAtScope { .. }))
    );
}

#[test]
fn identity_cycles_are_refused_default_cycles_are_handled_per_topic() {
    let identity =
        "replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n";
    let err = load_err(&format!(
        "{AB}A->B.enabled = true\nB->A.enabled = true\n{identity}"
    ));
    match &err {
        ConfigError::IdentityCycle { cycle } => assert_eq!(cycle, &["A", "B", "A"]),
        other => panic!("{other}"),
    }
    // Three clusters in a ring.
    let err = load_err(&format!(
        "clusters = A, B, C\nbootstrap.servers = x:1\nA->B.enabled = true\nB->C.enabled = true\nC->A.enabled = true\n{identity}"
    ));
    assert!(
        matches!(err, ConfigError::IdentityCycle { ref cycle } if cycle.len() == 4),
        "{err}"
    );
    // Active/active with the default policy is fine: cycles are stopped per topic.
    let (config, notices) = load(&format!("{AB}A->B.enabled = true\nB->A.enabled = true\n"));
    assert_eq!(config.flows().len(), 2);
    assert!(notices.is_empty());
    assert!(
        !config
            .flow("A", "B")
            .unwrap()
            .should_replicate_topic("B.orders")
    );
    // Mixed: allowed, with a warning.
    let (_, notices) = load(&format!(
        "{AB}A->B.enabled = true\nB->A.enabled = true\nA->B.{}",
        identity
    ));
    assert!(
        notices
            .iter()
            .any(|n| matches!(n.kind, NoticeKind::MixedPolicyCycle { .. })),
        "{notices:#?}"
    );
    // One-way identity is fine.
    assert!(MirrorConfig::load_str(&ab(identity), &options()).is_ok());
}

#[test]
fn policy_class_and_separator_errors() {
    let err = load_err(&ab(
        "replication.policy.class = org.apache.kafka.connect.mirror.LegacyReplicationPolicy\n",
    ));
    assert!(
        matches!(err, ConfigError::ReplicationPolicy { line: Some(5), .. }),
        "{err}"
    );
    assert!(err.is_unsupported());
    let err = load_err(&ab("replication.policy.separator =\n"));
    assert!(
        matches!(err, ConfigError::InvalidValue { line: Some(5), .. }),
        "{err}"
    );
    let (config, _) = load(&ab(
        "replication.policy.separator = _\nreplication.policy.internal.topic.separator.enabled = false\n",
    ));
    let f = &config.flows()[0];
    assert_eq!(f.remote_topic("orders"), "A_orders");
    assert_eq!(f.checkpoints_topic(), "A.checkpoints.internal");
    let err = load_err(&ab("topic.filter.class = com.example.MyTopicFilter\n"));
    assert!(err.is_unsupported(), "{err}");
    assert!(
        MirrorConfig::load_str(
            &ab("topic.filter.class = org.apache.kafka.connect.mirror.DefaultTopicFilter\n"),
            &options()
        )
        .is_ok()
    );
}

#[test]
fn required_keys() {
    let err = load_err("A.bootstrap.servers = a:1\n");
    assert!(matches!(err, ConfigError::MissingKey { ref key, .. } if key == "clusters"));
    let err = load_err("clusters = A, B\nA.bootstrap.servers = a:1\n");
    assert!(
        matches!(err, ConfigError::MissingKey { ref key, .. } if key == "B.bootstrap.servers"),
        "{err}"
    );
    let err = load_err("clusters =\n");
    assert!(matches!(err, ConfigError::InvalidValue { .. }), "{err}");
    let (config, notices) = load("clusters = A, A\nA.bootstrap.servers = a:1\n");
    assert_eq!(config.aliases().count(), 1);
    assert!(
        notices
            .iter()
            .any(|n| matches!(n.kind, NoticeKind::DuplicateAlias { .. }))
    );
}

// ---------------------------------------------------------------------------------------------
// Placeholders and files.
// ---------------------------------------------------------------------------------------------

#[test]
fn declared_providers_and_missing_keys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("creds.properties"),
        "user=mirror\npass=pw-from-file\n",
    )
    .unwrap();
    let text = format!(
        "config.providers = secrets\n\
         config.providers.secrets.class = org.apache.kafka.common.config.provider.FileConfigProvider\n\
         {AB}B.security.protocol = SASL_PLAINTEXT\nB.sasl.mechanism = PLAIN\n\
         B.sasl.jaas.config = {PLAIN_LOGIN_MODULE} required username=\"${{secrets:creds.properties:user}}\" password=\"${{secrets:creds.properties:pass}}\";\n"
    );
    let opts = LoadOptions::new()
        .with_base_dir(dir.path())
        .with_env(Vec::<(String, String)>::new());
    let (config, notices) = MirrorConfig::load_str(&text, &opts).unwrap();
    let sasl = config.cluster("B").unwrap().sasl.clone().unwrap();
    assert_eq!(
        (sasl.username.as_str(), sasl.password.expose()),
        ("mirror", "pw-from-file")
    );
    assert!(
        !notices
            .iter()
            .any(|n| matches!(n.kind, NoticeKind::UndeclaredProvider { .. }))
    );

    let err = MirrorConfig::load_str(
        &text.replace("creds.properties:pass", "creds.properties:nope"),
        &opts,
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("B.sasl.jaas.config"));
    assert!(err.to_string().contains("no key `nope`"), "{err}");
    assert!(!err.to_string().contains("pw-from-file"));

    let err = MirrorConfig::load_str(
        &text.replace("FileConfigProvider", "VaultConfigProvider"),
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Placeholder { source, .. }
            if matches!(source.as_ref(), PlaceholderError::UnsupportedProvider { .. })),
        "{err}"
    );

    let err = MirrorConfig::load_str(
        &text.replace(
            "config.providers.secrets.class",
            "config.providers.other.class",
        ),
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(err, ConfigError::MissingKey { ref key, .. } if key == "config.providers.secrets.class"),
        "{err}"
    );
}

#[test]
fn from_path_reads_utf8_latin1_and_reports_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mm2.properties");
    std::fs::write(
        &path,
        format!("{AB}A->B.enabled = true\nA->B.groups = caf\u{e9}-.*\n"),
    )
    .unwrap();
    let (config, notices) = MirrorConfig::from_path(&path).unwrap();
    assert!(config.flows()[0].should_replicate_group("café-1"));
    assert!(notices.is_empty());
    // The same file in ISO-8859-1, as a Java tool would write it.
    let mut latin1 = format!("{AB}A->B.enabled = true\nA->B.groups = caf").into_bytes();
    latin1.extend_from_slice(&[0xE9]);
    latin1.extend_from_slice(b"-.*\n");
    std::fs::write(&path, latin1).unwrap();
    let (config, notices) = MirrorConfig::from_path(&path).unwrap();
    assert!(config.flows()[0].should_replicate_group("café-1"));
    assert!(notices.iter().any(|n| n.kind == NoticeKind::Latin1File));
    let err = MirrorConfig::from_path(dir.path().join("missing.properties")).unwrap_err();
    assert!(err.is_io() && matches!(err, ConfigError::Io { .. }));
}

#[test]
fn provider_parameters_are_reported_and_options_do_not_print_env_values() {
    let (_, notices) = load(&format!(
        "config.providers = file\nconfig.providers.file.class = org.apache.kafka.common.config.provider.FileConfigProvider\n\
         config.providers.file.param.allowed.paths = /etc/mm2\n{AB}"
    ));
    assert!(has_ignored(
        &notices,
        "config.providers.file.param.allowed.paths"
    ));
    assert!(!has_ignored(&notices, "config.providers.file.class"));
    let printed = format!("{:?}", options());
    assert!(
        printed.contains("AIVEN_PASSWORD") && !printed.contains("aiven-test-password"),
        "{printed}"
    );
}

#[test]
fn mirror_key_enum_is_public_and_parses_mm2_spellings() {
    assert_eq!(
        "sync.group.offsets.enabled".parse::<MirrorKey>(),
        Ok(MirrorKey::SyncGroupOffsetsEnabled)
    );
    assert_eq!(
        "topics.blacklist".parse::<MirrorKey>(),
        Ok(MirrorKey::TopicsExclude)
    );
    assert!("no.such.key".parse::<MirrorKey>().is_err());
}
