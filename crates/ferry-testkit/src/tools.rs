//! Drivers for Kafka's Java command-line tools (kafka-tools, kafka_2.13) and a small
//! transactional producer, run from the jar cache against one listener of a test cluster.
//!
//! Main classes per release are in `kafka-wire.md` §8.3 (from the `bin/*.sh` scripts of 3.9 and
//! 4.0). Every run has a timeout, after which the JVM is killed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, Credentials, Listener, SaslMechanism};
use crate::error::{Error, Result};

/// Default time limit of one tool run.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// How much of a failed tool's output an error keeps.
const OUTPUT_TAIL: usize = 6000;

// Separators for ConsoleConsumer's DefaultMessageFormatter: ASCII control characters that test
// data does not contain, so keys, values and headers parse unambiguously.
const FIELD_SEP: char = '\u{1f}';
const LINE_SEP: char = '\u{1e}';
const HEADER_SEP: char = '\u{1d}';
const NULL_LITERAL: &str = "\u{18}";

/// What a tool printed and how it ended.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// The main class that ran.
    pub main_class: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error (log lines at WARN and above, tool error messages).
    pub stderr: String,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl ToolOutput {
    /// Whether the tool exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// stdout followed by stderr.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// `Ok(self)` on exit status 0, else [`Error::ToolFailed`] with the output's tail.
    pub fn check(self) -> Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            Err(Error::ToolFailed {
                main_class: self.main_class.clone(),
                status: self.status.to_string(),
                output: tail(&self.combined(), OUTPUT_TAIL),
            })
        }
    }
}

/// One record as printed by ConsoleConsumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// `CreateTime` or `LogAppendTime`, or `None` for `NO_TIMESTAMP`.
    pub timestamp_type: Option<String>,
    /// Timestamp in milliseconds (-1 when absent).
    pub timestamp: i64,
    /// Key as UTF-8 (lossy), `None` for a null key.
    pub key: Option<String>,
    /// Value as UTF-8 (lossy), `None` for a null value (tombstone).
    pub value: Option<String>,
    /// Headers in order; a `None` value is a null header value.
    pub headers: Vec<(String, Option<String>)>,
}

/// How ConsoleConsumer reads (see [`JavaTools::console_consume_with`]).
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// Stop after this many records (`--max-messages`).
    pub max_messages: usize,
    /// Stop when no record arrives for this long (`--timeout-ms`).
    pub idle_timeout: Duration,
    /// Consumer group (`--group`); `None` lets the tool pick a throw-away group.
    pub group: Option<String>,
    /// Read only this partition (`--partition`), starting at `offset`.
    pub partition: Option<i32>,
    /// With `partition`: `earliest`, `latest` or an offset (`--offset`).
    pub offset: Option<String>,
    /// Start from the earliest offset when the group has none (`--from-beginning`). Default true.
    pub from_beginning: bool,
    /// Extra consumer properties, e.g. `("isolation.level", "read_committed")`.
    pub consumer_properties: Vec<(String, String)>,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        Self {
            max_messages: usize::MAX,
            idle_timeout: Duration::from_secs(10),
            group: None,
            partition: None,
            offset: None,
            from_beginning: true,
            consumer_properties: Vec::new(),
        }
    }
}

/// One row of `kafka-consumer-groups --describe --group G`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffsetRow {
    /// Group id.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset (`None` when the tool prints `-`).
    pub current_offset: Option<i64>,
    /// Log end offset.
    pub log_end_offset: Option<i64>,
    /// Lag.
    pub lag: Option<i64>,
    /// Consumer id of the active member, if any.
    pub consumer_id: Option<String>,
    /// Host of the active member, if any.
    pub host: Option<String>,
    /// Client id of the active member, if any.
    pub client_id: Option<String>,
}

/// A topic as described by `kafka-topics --describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Topic id (base64).
    pub topic_id: String,
    /// Number of partitions.
    pub partition_count: u32,
    /// Replication factor.
    pub replication_factor: u32,
    /// Configs the tool lists (those set on the topic, not the broker defaults).
    pub configs: BTreeMap<String, String>,
    /// Per-partition leader and replicas.
    pub partitions: Vec<TopicPartitionInfo>,
}

/// One partition line of `kafka-topics --describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitionInfo {
    /// Partition.
    pub partition: i32,
    /// Leader broker id, `None` when the tool prints `none`.
    pub leader: Option<i32>,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
}

/// The summary line of ProducerPerformance.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfResult {
    /// Records acknowledged.
    pub records: u64,
    /// Records per second.
    pub records_per_sec: f64,
    /// MB per second (as the tool reports).
    pub mb_per_sec: f64,
    /// Average latency in ms.
    pub avg_latency_ms: f64,
    /// Maximum latency in ms.
    pub max_latency_ms: f64,
}

/// How a transaction of [`JavaTools::transactional_produce`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// `commitTransaction()`.
    Commit,
    /// `abortTransaction()`.
    Abort,
}

/// Where a record written by [`JavaTools::transactional_produce`] landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnRecordMeta {
    /// Index of the transaction in the plan.
    pub txn: usize,
    /// How that transaction ended.
    pub outcome: TxnOutcome,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// Kafka's Java tools against one listener of a [`Cluster`].
///
/// Built by [`Cluster::tools`]. On SASL listeners the tools log in as `admin` with SCRAM-SHA-512
/// unless told otherwise.
#[derive(Debug, Clone)]
pub struct JavaTools<'a> {
    cluster: &'a Cluster,
    listener: Listener,
    credentials: Credentials,
    mechanism: SaslMechanism,
    timeout: Duration,
    extra: Vec<(String, String)>,
    removed: Vec<String>,
}

impl<'a> JavaTools<'a> {
    pub(crate) fn new(cluster: &'a Cluster, listener: Listener) -> Self {
        Self {
            cluster,
            listener,
            credentials: cluster.user("admin"),
            mechanism: SaslMechanism::ScramSha512,
            timeout: DEFAULT_TIMEOUT,
            extra: Vec::new(),
            removed: Vec::new(),
        }
    }

    /// Log in as another user (SASL listeners), e.g. `cluster.user("alice")` or a wrong password.
    pub fn with_user(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Use another SASL mechanism.
    pub fn with_mechanism(mut self, mechanism: SaslMechanism) -> Self {
        self.mechanism = mechanism;
        self
    }

    /// Time limit of each tool run (default 120 s); the JVM is killed after it.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Add or override a client property (e.g. `ssl.truststore.location` → the unrelated CA).
    pub fn with_client_property(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }

    /// Remove a client property the kit would set (e.g. `ssl.keystore.location` to connect to
    /// the SSL listener without a client certificate).
    pub fn without_client_property(mut self, key: &str) -> Self {
        self.removed.push(key.to_owned());
        self
    }

    /// The cluster.
    pub fn cluster(&self) -> &'a Cluster {
        self.cluster
    }

    /// The listener.
    pub fn listener(&self) -> Listener {
        self.listener
    }

    /// `host:port` of the listener.
    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap(self.listener)
    }

    /// The client properties the tools use (bootstrap, security, SASL, TLS, overrides).
    pub fn client_properties(&self) -> Vec<(String, String)> {
        let mut props =
            self.cluster
                .client_properties(self.listener, &self.credentials, self.mechanism);
        for (k, v) in &self.extra {
            props.retain(|(key, _)| key != k);
            props.push((k.clone(), v.clone()));
        }
        props.retain(|(key, _)| !self.removed.contains(key));
        props
    }

    fn write_config(&self, more: &[(String, String)]) -> Result<TempFile> {
        let mut text = String::new();
        let mut props = self.client_properties();
        for (k, v) in more {
            props.retain(|(key, _)| key != k);
            props.push((k.clone(), v.clone()));
        }
        for (k, v) in &props {
            let _ = writeln!(text, "{}={}", escape_property(k), escape_property(v));
        }
        TempFile::create(self.cluster, "client", "properties", text.as_bytes())
    }

    /// A `java` command for `main_class` with the cluster's classpath and the tools' logging
    /// (WARN to stderr). For long-running processes (MirrorMaker 2) that the caller manages.
    pub fn java_command(&self, main_class: &str) -> Command {
        java_command(self.cluster, main_class, None)
    }

    /// Runs `main_class ARGS…` and waits (up to the timeout). A non-zero exit is returned as
    /// output, not as an error: see [`ToolOutput::check`].
    pub fn run_class<S: AsRef<str>>(&self, main_class: &str, args: &[S]) -> Result<ToolOutput> {
        self.run(main_class, args, None, None)
    }

    /// Like [`run_class`](Self::run_class), with `stdin` fed to the tool.
    pub fn run_class_with_stdin<S: AsRef<str>>(
        &self,
        main_class: &str,
        args: &[S],
        stdin: &[u8],
    ) -> Result<ToolOutput> {
        self.run(main_class, args, Some(stdin), None)
    }

    fn run<S: AsRef<str>>(
        &self,
        main_class: &str,
        args: &[S],
        stdin: Option<&[u8]>,
        extra_classpath: Option<&Path>,
    ) -> Result<ToolOutput> {
        let mut cmd = java_command(self.cluster, main_class, extra_classpath);
        cmd.args(args.iter().map(AsRef::as_ref));
        run_with_timeout(cmd, main_class, stdin, self.timeout)
    }

    /// Runs an admin-style tool with `--bootstrap-server` and `--command-config` added.
    fn admin(&self, main_class: &str, args: &[String]) -> Result<ToolOutput> {
        let config = self.write_config(&[])?;
        let mut all = vec![
            "--bootstrap-server".to_owned(),
            self.bootstrap(),
            "--command-config".to_owned(),
            config.path_string(),
        ];
        all.extend_from_slice(args);
        self.run_class(main_class, &all)?.check()
    }

    // -----------------------------------------------------------------------------------------
    // topics

    /// Creates a topic with replication factor 1 and `configs` (`--config k=v`).
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        let mut args = strings(&[
            "--create",
            "--topic",
            name,
            "--partitions",
            &partitions.to_string(),
            "--replication-factor",
            "1",
        ]);
        for (k, v) in configs {
            args.push("--config".to_owned());
            args.push(format!("{k}={v}"));
        }
        self.admin(TOPIC_COMMAND, &args).map(drop)
    }

    /// Deletes a topic.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        self.admin(TOPIC_COMMAND, &strings(&["--delete", "--topic", name]))
            .map(drop)
    }

    /// Topic names visible to the tool's principal (sorted; internal topics included).
    pub fn list_topics(&self) -> Result<Vec<String>> {
        let out = self.admin(TOPIC_COMMAND, &strings(&["--list"]))?;
        let mut names: Vec<String> = out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        names.sort();
        Ok(names)
    }

    /// `kafka-topics --describe --topic NAME`.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let out = self.admin(TOPIC_COMMAND, &strings(&["--describe", "--topic", name]))?;
        parse_topic_description(&out.stdout)
    }

    /// `kafka-configs --alter --entity-type topics --entity-name NAME --add-config k=v,…`.
    pub fn alter_topic_config(&self, name: &str, configs: &[(&str, &str)]) -> Result<()> {
        let joined = configs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        self.admin(
            CONFIG_COMMAND,
            &strings(&[
                "--alter",
                "--entity-type",
                "topics",
                "--entity-name",
                name,
                "--add-config",
                &joined,
            ]),
        )
        .map(drop)
    }

    /// Latest offsets per partition (`GetOffsetShell --time -1`).
    pub fn end_offsets(&self, topic: &str) -> Result<BTreeMap<i32, i64>> {
        self.offsets_at(topic, "-1")
    }

    /// Earliest offsets per partition (`GetOffsetShell --time -2`).
    pub fn start_offsets(&self, topic: &str) -> Result<BTreeMap<i32, i64>> {
        self.offsets_at(topic, "-2")
    }

    fn offsets_at(&self, topic: &str, time: &str) -> Result<BTreeMap<i32, i64>> {
        let out = self.admin(
            GET_OFFSET_SHELL,
            &strings(&["--topic", topic, "--time", time]),
        )?;
        parse_offsets(&out.stdout, topic)
    }

    // -----------------------------------------------------------------------------------------
    // producing

    /// ProducerPerformance: `num_records` records of `record_size` bytes, as fast as possible,
    /// with `compression.type=compression` and `extra_props` producer properties. Values are the
    /// tool's payload (uppercase ASCII letters).
    pub fn produce_perf(
        &self,
        topic: &str,
        num_records: u64,
        record_size: usize,
        compression: &str,
        extra_props: &[(&str, &str)],
    ) -> Result<PerfResult> {
        let mut more = vec![("compression.type".to_owned(), compression.to_owned())];
        more.extend(
            extra_props
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let config = self.write_config(&more)?;
        let args = strings(&[
            "--topic",
            topic,
            "--num-records",
            &num_records.to_string(),
            "--record-size",
            &record_size.to_string(),
            "--throughput",
            "-1",
            "--producer.config",
            &config.path_string(),
            "--producer-props",
            &format!("bootstrap.servers={}", self.bootstrap()),
        ]);
        let out = self.run_class(PRODUCER_PERFORMANCE, &args)?.check()?;
        parse_perf(&out.stdout)
    }

    /// ConsoleProducer: one record per line of `lines`. `props` are producer properties
    /// (`compression.type`, `acks`, `linger.ms`, …), except the line-reader properties
    /// `parse.key`, `key.separator`, `parse.headers`, `headers.delimiter`, `headers.separator`,
    /// `headers.key.separator`, `null.marker`, `ignore.error`, which configure how lines are
    /// read (e.g. `("parse.key", "true"), ("key.separator", "\t")` for `key<TAB>value` lines).
    pub fn console_produce<S: AsRef<str>>(
        &self,
        topic: &str,
        lines: &[S],
        props: &[(&str, &str)],
    ) -> Result<()> {
        const READER_PROPS: [&str; 8] = [
            "parse.key",
            "key.separator",
            "parse.headers",
            "headers.delimiter",
            "headers.separator",
            "headers.key.separator",
            "null.marker",
            "ignore.error",
        ];
        let producer: Vec<(String, String)> = props
            .iter()
            .filter(|(k, _)| !READER_PROPS.contains(k))
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config = self.write_config(&producer)?;
        let kafka4 = self.cluster.is_kafka4();
        let mut args = vec![
            "--bootstrap-server".to_owned(),
            self.bootstrap(),
            "--topic".to_owned(),
            topic.to_owned(),
            if kafka4 {
                "--command-config"
            } else {
                "--producer.config"
            }
            .to_owned(),
            config.path_string(),
        ];
        for (k, v) in props.iter().filter(|(k, _)| READER_PROPS.contains(k)) {
            args.push(
                if kafka4 {
                    "--reader-property"
                } else {
                    "--property"
                }
                .to_owned(),
            );
            args.push(format!("{k}={v}"));
        }
        // The console producer's own `--compression-codec` default ("none") overrides a
        // `compression.type` from the config file, so pass the codec as the flag too.
        if let Some((_, codec)) = props.iter().find(|(k, _)| *k == "compression.type") {
            args.push("--compression-codec".to_owned());
            args.push((*codec).to_owned());
        }
        let mut input = String::new();
        for line in lines {
            input.push_str(line.as_ref());
            input.push('\n');
        }
        let class = if kafka4 {
            CONSOLE_PRODUCER_4
        } else {
            CONSOLE_PRODUCER_3
        };
        let out = self
            .run_class_with_stdin(class, &args, input.as_bytes())?
            .check()?;
        // ConsoleProducer logs send failures and still exits 0.
        if out.stderr.contains("Error when sending message") {
            return Err(Error::ToolFailed {
                main_class: class.to_owned(),
                status: out.status.to_string(),
                output: tail(&out.combined(), OUTPUT_TAIL),
            });
        }
        Ok(())
    }

    /// Writes transactions with the Java producer (a small test program compiled with `javac`
    /// against the cluster's jars): for each `(outcome, records)`, `beginTransaction`, send the
    /// records, then commit or abort. A record is `value`, or `key<TAB>value`. `props` are extra
    /// producer properties. Returns where each record landed.
    pub fn transactional_produce<S: AsRef<str>>(
        &self,
        topic: &str,
        transactional_id: &str,
        transactions: &[(TxnOutcome, Vec<S>)],
        props: &[(&str, &str)],
    ) -> Result<Vec<TxnRecordMeta>> {
        let classes = compile_txn_producer(self.cluster)?;
        let more: Vec<(String, String)> = props
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config = self.write_config(&more)?;
        let mut plan = String::new();
        for (outcome, records) in transactions {
            plan.push_str("begin\n");
            for record in records {
                let record = record.as_ref();
                let (key, value) = match record.split_once('\t') {
                    Some((k, v)) => (k, v),
                    None => (NULL_LITERAL, record),
                };
                if value.contains('\n') || key.contains('\n') {
                    return Err(Error::Usage(
                        "transactional records cannot contain newlines".into(),
                    ));
                }
                let _ = writeln!(plan, "send\t{key}\t{value}");
            }
            plan.push_str(match outcome {
                TxnOutcome::Commit => "commit\n",
                TxnOutcome::Abort => "abort\n",
            });
        }
        let plan_file = TempFile::create(self.cluster, "txn-plan", "txt", plan.as_bytes())?;
        let args = [
            config.path_string(),
            topic.to_owned(),
            transactional_id.to_owned(),
            plan_file.path_string(),
        ];
        let out = self
            .run("TxnProducer", &args, None, Some(&classes))?
            .check()?;
        let mut metas = Vec::new();
        for line in out.stdout.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let [txn, partition, offset] = parts.as_slice()
                && *txn != "end"
            {
                let txn: usize = parse_num(txn, line)?;
                let outcome = transactions
                    .get(txn)
                    .map(|(o, _)| *o)
                    .ok_or_else(|| parse_err("TxnProducer output", line))?;
                metas.push(TxnRecordMeta {
                    txn,
                    outcome,
                    partition: parse_num(partition, line)?,
                    offset: parse_num(offset, line)?,
                });
            }
        }
        let expected: usize = transactions.iter().map(|(_, r)| r.len()).sum();
        if metas.len() != expected {
            return Err(Error::Parse {
                what: "TxnProducer output".into(),
                detail: format!(
                    "{} records acknowledged, {expected} sent:\n{}",
                    metas.len(),
                    out.stdout
                ),
            });
        }
        Ok(metas)
    }

    // -----------------------------------------------------------------------------------------
    // consuming

    /// ConsoleConsumer from the beginning of `topic`: stops after `max_messages` records or when
    /// none arrives for `idle_timeout`. `props` are consumer properties (e.g.
    /// `("isolation.level", "read_committed")`, `("group.id", …)`).
    pub fn console_consume(
        &self,
        topic: &str,
        max_messages: usize,
        idle_timeout: Duration,
        props: &[(&str, &str)],
    ) -> Result<Vec<ConsumedRecord>> {
        let options = ConsumeOptions {
            max_messages,
            idle_timeout,
            consumer_properties: props
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..ConsumeOptions::default()
        };
        self.console_consume_with(topic, &options)
    }

    /// ConsoleConsumer with full [`ConsumeOptions`]. Prints (and parses) timestamp, partition,
    /// offset, headers, key and value of every record.
    pub fn console_consume_with(
        &self,
        topic: &str,
        options: &ConsumeOptions,
    ) -> Result<Vec<ConsumedRecord>> {
        let config = self.write_config(&options.consumer_properties)?;
        let kafka4 = self.cluster.is_kafka4();
        let mut args = vec![
            "--bootstrap-server".to_owned(),
            self.bootstrap(),
            "--topic".to_owned(),
            topic.to_owned(),
            if kafka4 {
                "--command-config"
            } else {
                "--consumer.config"
            }
            .to_owned(),
            config.path_string(),
            "--timeout-ms".to_owned(),
            options.idle_timeout.as_millis().to_string(),
        ];
        if options.max_messages != usize::MAX {
            args.push("--max-messages".to_owned());
            args.push(options.max_messages.to_string());
        }
        if let Some(group) = &options.group {
            args.push("--group".to_owned());
            args.push(group.clone());
        }
        if let Some(partition) = options.partition {
            args.push("--partition".to_owned());
            args.push(partition.to_string());
            args.push("--offset".to_owned());
            args.push(
                options
                    .offset
                    .clone()
                    .unwrap_or_else(|| "earliest".to_owned()),
            );
        } else if options.from_beginning {
            args.push("--from-beginning".to_owned());
        }
        let formatter = [
            ("print.timestamp", "true".to_owned()),
            ("print.partition", "true".to_owned()),
            ("print.offset", "true".to_owned()),
            ("print.headers", "true".to_owned()),
            ("print.key", "true".to_owned()),
            ("print.value", "true".to_owned()),
            ("key.separator", FIELD_SEP.to_string()),
            ("line.separator", LINE_SEP.to_string()),
            ("headers.separator", HEADER_SEP.to_string()),
            ("null.literal", NULL_LITERAL.to_owned()),
        ];
        for (k, v) in formatter {
            args.push(
                if kafka4 {
                    "--formatter-property"
                } else {
                    "--property"
                }
                .to_owned(),
            );
            args.push(format!("{k}={v}"));
        }
        let mut tools = self.clone();
        tools.timeout = self
            .timeout
            .max(options.idle_timeout + Duration::from_secs(60));
        let out = tools.run_class(CONSOLE_CONSUMER, &args)?.check()?;
        parse_consumed(&out.stdout)
    }

    // -----------------------------------------------------------------------------------------
    // groups and ACLs

    /// `kafka-consumer-groups --describe --group GROUP` (committed offsets, end offsets, lag).
    pub fn consumer_groups_describe(&self, group: &str) -> Result<Vec<GroupOffsetRow>> {
        let out = self.admin(GROUP_COMMAND, &strings(&["--describe", "--group", group]))?;
        parse_group_rows(&out.stdout)
    }

    /// `kafka-consumer-groups --list`.
    pub fn consumer_groups_list(&self) -> Result<Vec<String>> {
        let out = self.admin(GROUP_COMMAND, &strings(&["--list"]))?;
        let mut groups: Vec<String> = out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        groups.sort();
        Ok(groups)
    }

    /// Commits `offset` for every partition of `topic` in `group` (the group must have no active
    /// members): `--reset-offsets --to-offset OFFSET --execute`.
    pub fn reset_group_offsets(&self, group: &str, topic: &str, offset: i64) -> Result<()> {
        self.admin(
            GROUP_COMMAND,
            &strings(&[
                "--reset-offsets",
                "--group",
                group,
                "--topic",
                topic,
                "--to-offset",
                &offset.to_string(),
                "--execute",
            ]),
        )
        .map(drop)
    }

    /// `kafka-acls` with `--bootstrap-server` and `--command-config` added, e.g.
    /// `["--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "t"]`.
    pub fn acls<S: AsRef<str>>(&self, args: &[S]) -> Result<ToolOutput> {
        let class = if self.cluster.is_kafka4() {
            ACL_COMMAND_4
        } else {
            ACL_COMMAND_3
        };
        let args: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
        self.admin(class, &args)
    }
}

// Main classes (kafka-wire.md §8.3).
const TOPIC_COMMAND: &str = "org.apache.kafka.tools.TopicCommand";
const CONFIG_COMMAND: &str = "kafka.admin.ConfigCommand";
const GET_OFFSET_SHELL: &str = "org.apache.kafka.tools.GetOffsetShell";
const PRODUCER_PERFORMANCE: &str = "org.apache.kafka.tools.ProducerPerformance";
const CONSOLE_PRODUCER_4: &str = "org.apache.kafka.tools.ConsoleProducer";
const CONSOLE_PRODUCER_3: &str = "kafka.tools.ConsoleProducer";
const CONSOLE_CONSUMER: &str = "org.apache.kafka.tools.consumer.ConsoleConsumer";
const GROUP_COMMAND: &str = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
const ACL_COMMAND_4: &str = "org.apache.kafka.tools.AclCommand";
const ACL_COMMAND_3: &str = "kafka.admin.AclCommand";

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// The `java` command for a main class with the cluster's classpath and tool logging.
fn java_command(cluster: &Cluster, main_class: &str, extra_classpath: Option<&Path>) -> Command {
    let java = std::env::var_os("JAVA").unwrap_or_else(|| "java".into());
    let mut cmd = Command::new(java);
    let repo = cluster.repo();
    let log_opt = if cluster.is_kafka4() {
        format!(
            "-Dlog4j2.configurationFile={}",
            repo.join("kafka/log4j2-tools.properties").display()
        )
    } else {
        format!(
            "-Dlog4j.configuration=file:{}",
            repo.join("kafka/log4j-tools.properties").display()
        )
    };
    let mut classpath = format!("{}/*", cluster.libs_dir().display());
    if let Some(extra) = extra_classpath {
        classpath.push(':');
        classpath.push_str(&extra.display().to_string());
    }
    cmd.args([
        "-Xmx512m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
    ])
    .arg(log_opt)
    .arg("-cp")
    .arg(classpath)
    .arg(main_class);
    cmd
}

/// Runs `cmd`, feeding `stdin`, collecting stdout/stderr, killing it after `timeout`.
fn run_with_timeout(
    mut cmd: Command,
    main_class: &str,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<ToolOutput> {
    let started = Instant::now();
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        program: format!("java {main_class}"),
        source,
    })?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let feeder = match (stdin, child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => {
            let bytes = bytes.to_vec();
            // A tool that exits early closes the pipe; the write error is then expected.
            Some(thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            }))
        }
        _ => None,
    };
    let status = wait_until(&mut child, started + timeout);
    if std::env::var_os("FERRY_TESTKIT_TRACE").is_some() {
        eprintln!(
            "ferry-testkit: {main_class} took {:.1?} ({})",
            started.elapsed(),
            status.map_or_else(|| "timed out".to_owned(), |s| s.to_string())
        );
    }
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Some(status) => Ok(ToolOutput {
            main_class: main_class.to_owned(),
            status,
            stdout,
            stderr,
            elapsed: started.elapsed(),
        }),
        None => Err(Error::ToolTimedOut {
            main_class: main_class.to_owned(),
            after: timeout,
            output: tail(&format!("{stdout}{stderr}"), OUTPUT_TAIL),
        }),
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child` until `deadline`; kills it and returns `None` on timeout.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", text.get(start..).unwrap_or_default())
}

/// Escapes a `java.util.Properties` key or value (backslash, and leading/embedded specials).
fn escape_property(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A file removed when dropped, in the cluster's state dir (`tools/`).
#[derive(Debug)]
struct TempFile(PathBuf);

impl TempFile {
    fn create(cluster: &Cluster, stem: &str, ext: &str, contents: &[u8]) -> Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = cluster.state_dir().join("tools");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            context: "creating the tools dir",
            path: dir.clone(),
            source,
        })?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{stem}-{}-{n}.{ext}", std::process::id()));
        std::fs::write(&path, contents).map_err(|source| Error::Io {
            context: "writing a tool input file",
            path: path.clone(),
            source,
        })?;
        Ok(Self(path))
    }

    fn path_string(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Compiles `java/TxnProducer.java` against the cluster's jars once per source version and
/// Kafka version; returns the classes dir. The result is moved into place atomically, so
/// concurrent tests and binaries never see a half-written dir.
fn compile_txn_producer(cluster: &Cluster) -> Result<PathBuf> {
    const SOURCE: &str = include_str!("../java/TxnProducer.java");
    let hash = SOURCE.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let base = cluster
        .libs_dir()
        .parent()
        .map_or_else(|| cluster.state_dir().to_owned(), Path::to_owned);
    let dest = base.join(format!("testkit-classes-{hash:016x}"));
    if dest.join("TxnProducer.class").is_file() {
        return Ok(dest);
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let work = base.join(format!(
        "testkit-build-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let io = |context: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io {
            context,
            path,
            source,
        }
    };
    std::fs::create_dir_all(work.join("out")).map_err(io("creating a javac dir", &work))?;
    let src = work.join("TxnProducer.java");
    std::fs::write(&src, SOURCE).map_err(io("writing TxnProducer.java", &src))?;
    let javac = std::env::var_os("JAVAC").unwrap_or_else(|| "javac".into());
    let mut cmd = Command::new(javac);
    cmd.arg("-cp")
        .arg(format!("{}/*", cluster.libs_dir().display()))
        .arg("-d")
        .arg(work.join("out"))
        .arg(&src);
    let out = run_with_timeout(cmd, "javac TxnProducer.java", None, DEFAULT_TIMEOUT)?.check();
    let result = out.and_then(|_| match std::fs::rename(work.join("out"), &dest) {
        Ok(()) => Ok(()),
        // Another thread or process won the race: its classes are identical.
        Err(_) if dest.join("TxnProducer.class").is_file() => Ok(()),
        Err(source) => Err(Error::Io {
            context: "moving compiled classes into place",
            path: dest.clone(),
            source,
        }),
    });
    let _ = std::fs::remove_dir_all(&work);
    result.map(|()| dest)
}

// ---------------------------------------------------------------------------------------------
// parsers

fn parse_err(what: &str, line: &str) -> Error {
    Error::Parse {
        what: what.to_owned(),
        detail: format!("unexpected line {line:?}"),
    }
}

fn parse_num<T: std::str::FromStr>(s: &str, line: &str) -> Result<T> {
    s.trim().parse().map_err(|_| parse_err("tool output", line))
}

fn opt_num(s: &str, line: &str) -> Result<Option<i64>> {
    if s == "-" {
        Ok(None)
    } else {
        parse_num(s, line).map(Some)
    }
}

fn parse_offsets(stdout: &str, topic: &str) -> Result<BTreeMap<i32, i64>> {
    let mut map = BTreeMap::new();
    for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // "<topic>:<partition>:<offset>"; topic names may not contain ':'.
        let mut parts = line.rsplitn(3, ':');
        let (Some(offset), Some(partition), Some(name)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(parse_err("GetOffsetShell output", line));
        };
        if name != topic {
            continue;
        }
        map.insert(parse_num(partition, line)?, parse_num(offset, line)?);
    }
    Ok(map)
}

fn parse_perf(stdout: &str) -> Result<PerfResult> {
    // "<n> records sent, <r> records/sec (<m> MB/sec), <avg> ms avg latency, <max> ms max latency, …"
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.contains("records sent") && l.contains("max latency"))
        .ok_or_else(|| Error::Parse {
            what: "ProducerPerformance output".into(),
            detail: format!("no summary line in:\n{}", tail(stdout, 2000)),
        })?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let before = |marker: &str| -> Result<f64> {
        let i = words
            .iter()
            .position(|w| w.starts_with(marker))
            .ok_or_else(|| parse_err("ProducerPerformance summary", line))?;
        let w = i
            .checked_sub(1)
            .and_then(|j| words.get(j))
            .ok_or_else(|| parse_err("ProducerPerformance summary", line))?;
        parse_num(w.trim_start_matches('('), line)
    };
    let records = words
        .first()
        .ok_or_else(|| parse_err("ProducerPerformance summary", line))?;
    let avg = line
        .split("ms avg latency")
        .next()
        .and_then(|s| s.rsplit(',').next())
        .ok_or_else(|| parse_err("ProducerPerformance summary", line))?;
    let max = line
        .split("ms max latency")
        .next()
        .and_then(|s| s.rsplit(',').next())
        .ok_or_else(|| parse_err("ProducerPerformance summary", line))?;
    Ok(PerfResult {
        records: parse_num(records, line)?,
        records_per_sec: before("records/sec")?,
        mb_per_sec: before("MB/sec")?,
        avg_latency_ms: parse_num(avg, line)?,
        max_latency_ms: parse_num(max, line)?,
    })
}

fn none_if_null(s: &str) -> Option<String> {
    (s != NULL_LITERAL).then(|| s.to_owned())
}

fn parse_consumed(stdout: &str) -> Result<Vec<ConsumedRecord>> {
    let mut records = Vec::new();
    for entry in stdout.split(LINE_SEP) {
        // Anything the tool prints outside records (there should be nothing) sits before the
        // first separator on its own lines; records never start with a newline.
        let entry = entry.trim_start_matches('\n');
        if entry.is_empty() {
            continue;
        }
        // timestamp, partition, offset, headers, key, value: the value is last and may contain
        // anything but the separators.
        let fields: Vec<&str> = entry.splitn(6, FIELD_SEP).collect();
        let [ts, partition, offset, headers, key, value] = fields.as_slice() else {
            return Err(parse_err("ConsoleConsumer output", entry));
        };
        let (timestamp_type, timestamp) = match ts.split_once(':') {
            Some((kind, n)) => (Some(kind.to_owned()), parse_num(n, entry)?),
            None => (None, -1),
        };
        let partition = partition
            .strip_prefix("Partition:")
            .ok_or_else(|| parse_err("ConsoleConsumer partition", entry))?;
        let offset = offset
            .strip_prefix("Offset:")
            .ok_or_else(|| parse_err("ConsoleConsumer offset", entry))?;
        let headers = if *headers == "NO_HEADERS" {
            Vec::new()
        } else {
            headers
                .split(HEADER_SEP)
                .map(|h| match h.split_once(':') {
                    Some((k, v)) => (k.to_owned(), none_if_null(v)),
                    None => (h.to_owned(), None),
                })
                .collect()
        };
        records.push(ConsumedRecord {
            partition: parse_num(partition, entry)?,
            offset: parse_num(offset, entry)?,
            timestamp_type,
            timestamp,
            key: none_if_null(key),
            value: none_if_null(value),
            headers,
        });
    }
    Ok(records)
}

fn parse_group_rows(stdout: &str) -> Result<Vec<GroupOffsetRow>> {
    let mut rows = Vec::new();
    let mut header: Option<Vec<&str>> = None;
    for line in stdout.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        if cols.first() == Some(&"GROUP") {
            header = Some(cols);
            continue;
        }
        let Some(names) = &header else { continue };
        let get = |name: &str| {
            names
                .iter()
                .position(|n| *n == name)
                .and_then(|i| cols.get(i))
                .copied()
                .ok_or_else(|| parse_err("ConsumerGroupCommand output", line))
        };
        let text = |name: &str| -> Result<Option<String>> {
            let v = get(name)?;
            Ok((v != "-").then(|| v.to_owned()))
        };
        rows.push(GroupOffsetRow {
            group: get("GROUP")?.to_owned(),
            topic: get("TOPIC")?.to_owned(),
            partition: parse_num(get("PARTITION")?, line)?,
            current_offset: opt_num(get("CURRENT-OFFSET")?, line)?,
            log_end_offset: opt_num(get("LOG-END-OFFSET")?, line)?,
            lag: opt_num(get("LAG")?, line)?,
            consumer_id: text("CONSUMER-ID")?,
            host: text("HOST")?,
            client_id: text("CLIENT-ID")?,
        });
    }
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(rows)
}

fn parse_topic_description(stdout: &str) -> Result<TopicDescription> {
    let mut desc: Option<TopicDescription> = None;
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let fields: BTreeMap<&str, &str> = line
            .split('\t')
            .filter_map(|f| {
                f.trim()
                    .split_once(": ")
                    .or_else(|| f.trim().split_once(':'))
            })
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let field = |k: &str| {
            fields
                .get(k)
                .copied()
                .ok_or_else(|| parse_err("TopicCommand --describe output", line))
        };
        if fields.contains_key("PartitionCount") {
            let configs = field("Configs")
                .unwrap_or("")
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            desc = Some(TopicDescription {
                name: field("Topic")?.to_owned(),
                topic_id: field("TopicId").unwrap_or("").to_owned(),
                partition_count: parse_num(field("PartitionCount")?, line)?,
                replication_factor: parse_num(field("ReplicationFactor")?, line)?,
                configs,
                partitions: Vec::new(),
            });
        } else if fields.contains_key("Partition") {
            let ids = |s: &str| -> Result<Vec<i32>> {
                s.split(',')
                    .filter(|x| !x.is_empty())
                    .map(|x| parse_num(x, line))
                    .collect()
            };
            let leader = field("Leader")?;
            let info = TopicPartitionInfo {
                partition: parse_num(field("Partition")?, line)?,
                leader: if leader == "none" {
                    None
                } else {
                    Some(parse_num(leader, line)?)
                },
                replicas: ids(field("Replicas")?)?,
                isr: ids(field("Isr")?)?,
            };
            desc.as_mut()
                .ok_or_else(|| parse_err("TopicCommand --describe output", line))?
                .partitions
                .push(info);
        }
    }
    desc.ok_or_else(|| Error::Parse {
        what: "TopicCommand --describe output".into(),
        detail: format!("no topic line in:\n{}", tail(stdout, 2000)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_console_consumer_records() {
        let out = format!(
            "CreateTime:1700000000000{f}Partition:1{f}Offset:42{f}h1:v1{h}h2:{n}{f}key-1{f}value\twith\ttabs{l}\
             NO_TIMESTAMP{f}Partition:0{f}Offset:0{f}NO_HEADERS{f}{n}{f}{n}{l}",
            f = FIELD_SEP,
            h = HEADER_SEP,
            l = LINE_SEP,
            n = NULL_LITERAL
        );
        let records = parse_consumed(&out).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].partition, 1);
        assert_eq!(records[0].offset, 42);
        assert_eq!(records[0].timestamp_type.as_deref(), Some("CreateTime"));
        assert_eq!(records[0].timestamp, 1_700_000_000_000);
        assert_eq!(records[0].key.as_deref(), Some("key-1"));
        assert_eq!(records[0].value.as_deref(), Some("value\twith\ttabs"));
        assert_eq!(
            records[0].headers,
            vec![
                ("h1".to_owned(), Some("v1".to_owned())),
                ("h2".to_owned(), None)
            ]
        );
        assert_eq!(records[1].timestamp_type, None);
        assert_eq!(records[1].key, None);
        assert_eq!(records[1].value, None);
        assert!(records[1].headers.is_empty());
    }

    #[test]
    fn rejects_malformed_consumer_output() {
        let out = format!("Partition:1{FIELD_SEP}Offset:x{LINE_SEP}");
        assert!(parse_consumed(&out).is_err());
    }

    #[test]
    fn parses_group_describe() {
        let out = "\nConsumer group 'g' has no active members.\n\n\
            GROUP TOPIC PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID HOST CLIENT-ID\n\
            g     t     1          -               7               -    -           -    -\n\
            g     t     0          5               9               4    -           -    -\n";
        let rows = parse_group_rows(out).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].partition, 0);
        assert_eq!(rows[0].current_offset, Some(5));
        assert_eq!(rows[0].lag, Some(4));
        assert_eq!(rows[1].current_offset, None);
        assert_eq!(rows[1].log_end_offset, Some(7));
        assert_eq!(rows[1].consumer_id, None);
    }

    #[test]
    fn parses_topic_describe() {
        let out = "Topic: t\tTopicId: abc\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: cleanup.policy=compact,segment.bytes=1048576\n\
                   \tTopic: t\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\tElr: \tLastKnownElr: \n\
                   \tTopic: t\tPartition: 1\tLeader: none\tReplicas: 1\tIsr: \n";
        let d = parse_topic_description(out).unwrap();
        assert_eq!(d.name, "t");
        assert_eq!(d.topic_id, "abc");
        assert_eq!(d.partition_count, 2);
        assert_eq!(
            d.configs.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        assert_eq!(d.partitions.len(), 2);
        assert_eq!(d.partitions[0].leader, Some(1));
        assert_eq!(d.partitions[1].leader, None);
        assert!(d.partitions[1].isr.is_empty());
    }

    #[test]
    fn parses_offsets_and_perf() {
        let offsets = parse_offsets("t:0:5\nt:1:0\nother:0:9\n", "t").unwrap();
        assert_eq!(offsets, BTreeMap::from([(0, 5), (1, 0)]));
        let perf = parse_perf(
            "10000 records sent, 25125.6 records/sec (2.40 MB/sec), 180.63 ms avg latency, \
             312.00 ms max latency, 179 ms 50th, 300 ms 95th, 310 ms 99th, 312 ms 99.9th.\n",
        )
        .unwrap();
        assert_eq!(perf.records, 10_000);
        assert!((perf.records_per_sec - 25125.6).abs() < 1e-6);
        assert!((perf.mb_per_sec - 2.40).abs() < 1e-9);
        assert!((perf.avg_latency_ms - 180.63).abs() < 1e-9);
        assert!((perf.max_latency_ms - 312.0).abs() < 1e-9);
        assert!(parse_perf("nothing here").is_err());
    }

    #[test]
    fn escapes_properties() {
        assert_eq!(escape_property("a=b:c\\d"), "a\\=b\\:c\\\\d");
        assert_eq!(
            escape_property("x required username=\"u\";"),
            "x required username\\=\"u\";"
        );
    }
}
