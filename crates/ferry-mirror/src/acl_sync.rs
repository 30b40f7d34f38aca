//! ACL sync: copies the source's ACLs on replicated topics (and, opt-in, groups) to the
//! target, renamed by the replication policy.
//!
//! Every `sync.topic.acls.interval.seconds` (MM2 default 600 s; also at start) the flow
//! describes every ACL binding of both clusters and plans ([`plan_acls`]) what to create and,
//! opt-in, what to delete. The mapping of one binding is [`map_binding`]:
//!
//! - **MM2-compatible by default**: only TOPIC bindings with a LITERAL pattern whose topic the
//!   flow replicates; ALLOW WRITE is not copied (the target topic is written by ferry only);
//!   ALLOW ALL becomes ALLOW READ; DENY bindings are copied unchanged, as MM2's
//!   `shouldReplicateAcl` does (it drops ALLOW WRITE only); the topic name is renamed with the
//!   policy (`orders` → `A.orders`). Nothing is ever deleted. The literal wildcard `*` is not
//!   copied: MM2 would create a literal ACL on a topic named `A.*`, which grants nothing.
//! - `ferry.sync.acls.prefixed=true`: PREFIXED topic bindings too, the prefix renamed by the
//!   policy (`ord` → `A.ord`), when the prefix itself passes the topic filter.
//! - `ferry.sync.acls.groups=true`: GROUP bindings (LITERAL, and PREFIXED with the option
//!   above) of groups the `groups`/`groups.exclude` filter accepts, under the same name (MM2
//!   keeps group ids across clusters); ALLOW ALL becomes ALLOW READ.
//! - `ferry.sync.acls.delete=true`: a binding ferry created is deleted from the target once
//!   every source binding it was made from is gone from the source (and no other source
//!   binding maps to it). ferry knows what it created from a record it keeps on the target, in
//!   the single-partition compacted topic `ferry-acl-syncs.<source>.internal` (key: the flow
//!   `source->target`; value: each created binding with the source bindings it came from). A
//!   binding is recorded only when ferry's CreateAcls made it (it was absent from the target
//!   before) and the broker acknowledged it, so an ACL an operator created, even an identical
//!   one that existed first, is never deleted. A crash between creating and recording leaves
//!   an ACL ferry will not delete (the safe side). A topic that merely leaves the filter keeps
//!   its ACLs. Only ACLs created while the option is on are recorded. The record is one
//!   Kafka record, so it holds at most the target's `max.message.bytes` (about five thousand
//!   bindings with the default 1 MB); one ferry process per flow writes it.
//!
//! A source without an authorizer (SECURITY_DISABLED) is reported once and skipped, as MM2
//! does. Every change is a [`MirrorEvent::AclsChanged`]; failures are
//! [`MirrorEvent::StepFailed`] with step `acl sync`.
//!
//! # References
//! - mm2-compat.md §7.3 (`syncTopicAcls`), §8 complaint 7; strimzi discussion #5419
//! - `connect/mirror/src/main/java/org/apache/kafka/connect/mirror/MirrorSourceConnector.java`
//!   (`shouldReplicateAcl`, `targetAclBinding`; apache/kafka), for behaviour only
//! - KIP-290 (prefixed ACLs), KIP-140 (ACL admin APIs)

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ferry_client::admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
    Admin, AdminError,
};
use ferry_client::cluster::OffsetSpec;
use ferry_client::fetcher::{FetchConfig, FetchEvent, Fetcher, TopicPartition};
use ferry_client::producer::IdempotentProducer;
use ferry_protocol::batch::RecordBatch;
use ferry_protocol::error::ErrorCode;
use ferry_protocol::record::{DecodeOptions, DecodedBatch};
use tokio::sync::watch;

use crate::events::MirrorEvent;
use crate::flow::FlowShared;
use crate::heartbeat::{encode_batch, ensure_compacted_topic, now_ms};
use crate::policy::{ReplicationPolicy, should_replicate_topic};
use crate::settings::FlowSettings;

/// Why a source binding is not copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AclSkip {
    /// A resource type ACL sync does not copy (CLUSTER, TRANSACTIONAL_ID, ..., or GROUP
    /// without `ferry.sync.acls.groups`).
    ResourceType,
    /// A PREFIXED pattern without `ferry.sync.acls.prefixed`.
    Prefixed,
    /// The literal wildcard `*`.
    Wildcard,
    /// The topic (or prefix) is not replicated by this flow.
    TopicNotReplicated,
    /// The group (or prefix) is not accepted by the group filter.
    GroupNotSelected,
    /// ALLOW WRITE: the target topic is written by ferry only (MM2's rule).
    AllowWrite,
}

impl AclSkip {
    /// A short reason for people.
    pub fn reason(self) -> &'static str {
        match self {
            Self::ResourceType => "resource type not synced",
            Self::Prefixed => "prefixed pattern (ferry.sync.acls.prefixed=false)",
            Self::Wildcard => "literal wildcard `*`",
            Self::TopicNotReplicated => "topic not replicated by this flow",
            Self::GroupNotSelected => "group not selected by the group filter",
            Self::AllowWrite => "ALLOW WRITE is never copied",
        }
    }
}

/// The target binding for one source binding, or why it is not copied (module docs).
pub fn map_binding(flow: &FlowSettings, b: &AclBinding) -> Result<AclBinding, AclSkip> {
    let prefixed = match b.pattern_type {
        AclPatternType::Literal => false,
        AclPatternType::Prefixed if flow.acl_sync.prefixed => true,
        AclPatternType::Prefixed => return Err(AclSkip::Prefixed),
        _ => return Err(AclSkip::ResourceType),
    };
    if !prefixed && b.resource_name == "*" {
        return Err(AclSkip::Wildcard);
    }
    let name = match b.resource_type {
        AclResourceType::Topic => {
            if !should_replicate_topic(
                &flow.policy,
                &flow.topic_filter,
                flow.heartbeats_replication,
                &b.resource_name,
                &flow.target,
            ) {
                return Err(AclSkip::TopicNotReplicated);
            }
            flow.policy
                .format_remote_topic(&flow.source, &b.resource_name)
        }
        AclResourceType::Group if !flow.acl_sync.groups => return Err(AclSkip::ResourceType),
        AclResourceType::Group if flow.group_filter.accepts(&b.resource_name) => {
            b.resource_name.clone()
        }
        AclResourceType::Group => return Err(AclSkip::GroupNotSelected),
        _ => return Err(AclSkip::ResourceType),
    };
    let operation = match (b.permission, b.operation) {
        (AclPermission::Allow, AclOperation::Write) => return Err(AclSkip::AllowWrite),
        (AclPermission::Allow, AclOperation::All) => AclOperation::Read,
        (_, op) => op,
    };
    Ok(AclBinding {
        resource_name: name,
        operation,
        ..b.clone()
    })
}

/// What an ACL sync would do for one flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclPlan {
    /// Bindings to create on the target (absent there now).
    pub create: Vec<AclBinding>,
    /// ferry-created bindings to delete (only with `ferry.sync.acls.delete`).
    pub delete: Vec<AclBinding>,
    /// Source bindings not copied, with the reason.
    pub skipped: Vec<(AclBinding, AclSkip)>,
}

/// What ferry created on the target: each created target binding with the source bindings
/// that map to it (ALLOW ALL and ALLOW READ both map to READ).
pub type AclRecord = BTreeMap<AclBinding, BTreeSet<AclBinding>>;

/// The target bindings the source's bindings map to, each with its source bindings.
fn desired(
    flow: &FlowSettings,
    source: &[AclBinding],
    skipped: &mut Vec<(AclBinding, AclSkip)>,
) -> AclRecord {
    let mut out = AclRecord::new();
    for b in source {
        match map_binding(flow, b) {
            Ok(t) => {
                out.entry(t).or_default().insert(b.clone());
            }
            Err(why) => skipped.push((b.clone(), why)),
        }
    }
    out
}

/// Plans one round: `source` and `target` are every binding of each cluster, `record` what
/// ferry recorded as its own. Pure.
///
/// A recorded binding is deleted (with `ferry.sync.acls.delete`) only when it is still on the
/// target, no source binding maps to it now, and every source binding it was made from is gone
/// from the source: a topic merely leaving the filter keeps its ACLs.
pub fn plan_acls(
    flow: &FlowSettings,
    source: &[AclBinding],
    target: &[AclBinding],
    record: &AclRecord,
) -> AclPlan {
    let mut plan = AclPlan::default();
    let want = desired(flow, source, &mut plan.skipped);
    let on_target: BTreeSet<&AclBinding> = target.iter().collect();
    let on_source: BTreeSet<&AclBinding> = source.iter().collect();
    plan.create = want
        .keys()
        .filter(|b| !on_target.contains(b))
        .cloned()
        .collect();
    if flow.acl_sync.delete {
        plan.delete = record
            .iter()
            .filter(|(t, origins)| {
                on_target.contains(t)
                    && !want.contains_key(*t)
                    && origins.iter().all(|o| !on_source.contains(o))
            })
            .map(|(t, _)| t.clone())
            .collect();
    }
    plan
}

/// The record after a round: what ferry created before and is still on the target, minus what
/// it deleted, plus what it created now; origins are completed from the current source.
pub fn next_record(
    flow: &FlowSettings,
    record: &AclRecord,
    source: &[AclBinding],
    target: &[AclBinding],
    created_now: &[AclBinding],
    deleted_now: &[AclBinding],
) -> AclRecord {
    let want = desired(flow, source, &mut Vec::new());
    let on_target: BTreeSet<&AclBinding> = target.iter().collect();
    let mut out: AclRecord = record
        .iter()
        .filter(|(t, _)| on_target.contains(t) && !deleted_now.contains(t))
        .map(|(t, o)| (t.clone(), o.clone()))
        .collect();
    for t in created_now {
        out.entry(t.clone()).or_default();
    }
    for (t, origins) in &mut out {
        if let Some(now) = want.get(t) {
            origins.extend(now.iter().cloned());
        }
    }
    out
}

/// A binding for people: `ALLOW READ on TOPIC:LITERAL:A.orders for User:alice from *`.
pub fn describe_binding(b: &AclBinding) -> String {
    let up = |s: String| s.to_ascii_uppercase();
    format!(
        "{} {} on {}:{}:{} for {} from {}",
        up(format!("{:?}", b.permission)),
        up(format!("{:?}", b.operation)),
        up(format!("{:?}", b.resource_type)),
        up(format!("{:?}", b.pattern_type)),
        b.resource_name,
        b.principal,
        b.host
    )
}

// ---------------------------------------------------------------------------------------------
// the record of created bindings

/// The compacted topic on the target that records the bindings ferry created for flows from
/// `source`.
pub fn record_topic(source: &str) -> String {
    format!("ferry-acl-syncs.{source}.internal")
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next()? {
                '\\' => out.push('\\'),
                't' => out.push('\t'),
                'n' => out.push('\n'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn encode_binding(b: &AclBinding, out: &mut String) {
    out.push_str(&format!(
        "{}\t{}\t",
        b.resource_type.to_wire(),
        b.pattern_type.to_wire()
    ));
    for s in [&b.resource_name, &b.principal, &b.host] {
        escape(s, out);
        out.push('\t');
    }
    out.push_str(&format!(
        "{}\t{}",
        b.operation.to_wire(),
        b.permission.to_wire()
    ));
}

fn decode_binding(f: &[&str]) -> Option<AclBinding> {
    let [rt, pt, name, principal, host, op, perm] = f else {
        return None;
    };
    Some(AclBinding {
        resource_type: AclResourceType::from_wire(rt.parse().ok()?),
        pattern_type: AclPatternType::from_wire(pt.parse().ok()?),
        resource_name: unescape(name)?,
        principal: unescape(principal)?,
        host: unescape(host)?,
        operation: AclOperation::from_wire(op.parse().ok()?),
        permission: AclPermission::from_wire(perm.parse().ok()?),
    })
}

/// Encodes a record: `v1`, then one line per (created binding, source binding) pair, or per
/// created binding without a known source: seven tab-separated fields each (wire codes for
/// the enums, escaped strings).
pub fn encode_record(record: &AclRecord) -> String {
    let mut out = String::from("v1\n");
    for (t, origins) in record {
        if origins.is_empty() {
            encode_binding(t, &mut out);
            out.push('\n');
        }
        for o in origins {
            encode_binding(t, &mut out);
            out.push('\t');
            encode_binding(o, &mut out);
            out.push('\n');
        }
    }
    out
}

/// Decodes [`encode_record`]'s output; `None` when it is not that format.
pub fn decode_record(text: &str) -> Option<AclRecord> {
    let mut lines = text.split('\n');
    if lines.next()? != "v1" {
        return None;
    }
    let mut out = AclRecord::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let (t, o) = match f.len() {
            7 => (decode_binding(&f)?, None),
            14 => {
                let (a, b) = f.split_at(7);
                (decode_binding(a)?, Some(decode_binding(b)?))
            }
            _ => return None,
        };
        let origins = out.entry(t).or_default();
        origins.extend(o);
    }
    Some(out)
}

/// Reads the flow's record from the target: the last record of the record topic (one key
/// per topic, so the last record is the flow's). An absent topic is an empty record.
///
/// # Errors
/// A description of what failed.
pub async fn load_record(flow: &FlowSettings, target: &Admin) -> Result<AclRecord, String> {
    let topic = record_topic(&flow.source);
    let listing = target.list_topics(false).await.map_err(|e| e.to_string())?;
    if !listing.iter().any(|t| t.name == topic) {
        return Ok(AclRecord::new());
    }
    let cluster = target.cluster().clone();
    let ends = cluster
        .list_offsets(&topic, &[0], OffsetSpec::Latest, false)
        .await
        .map_err(|e| e.to_string())?;
    let end = ends.first().map_or(0, |&(_, o)| o);
    if end <= 0 {
        return Ok(AclRecord::new());
    }
    let last = end - 1;
    let mut fetcher = Fetcher::new(cluster, FetchConfig::default()).map_err(|e| e.to_string())?;
    let tp = TopicPartition::new(topic.clone(), 0);
    fetcher.assign(tp, last);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        for ev in fetcher.fetch().await.map_err(|e| e.to_string())? {
            let data = match ev {
                FetchEvent::Data(d) => d,
                FetchEvent::OffsetOutOfRange { .. } => return Ok(AclRecord::new()),
                FetchEvent::Error { error, .. } => return Err(error.to_string()),
                _ => continue,
            };
            let mut pos = 0;
            while pos < data.records.len() {
                let Ok(batch) = RecordBatch::at(data.records.clone(), pos) else {
                    break;
                };
                pos += batch.entry_len();
                let decoded = DecodedBatch::decode(&batch, &DecodeOptions::default())
                    .map_err(|e| e.to_string())?;
                for r in decoded.records {
                    if batch.base_offset() + i64::from(r.offset_delta) != last {
                        continue;
                    }
                    let Some(value) = r.value else {
                        return Ok(AclRecord::new());
                    };
                    let text = std::str::from_utf8(&value).map_err(|e| e.to_string())?;
                    return decode_record(text)
                        .ok_or_else(|| format!("{topic}: record in an unknown format"));
                }
            }
        }
    }
    Err(format!("{topic}: timed out reading offset {last}"))
}

async fn store_record(
    flow: &FlowSettings,
    target: &Admin,
    producer: &IdempotentProducer,
    record: &AclRecord,
) -> Result<(), String> {
    let topic = record_topic(&flow.source);
    ensure_compacted_topic(target, &topic, flow.heartbeats_replication_factor)
        .await
        .map_err(|e| e.to_string())?;
    let batch = encode_batch(
        &[(flow.name().into_bytes(), encode_record(record).into_bytes())],
        now_ms(),
    )
    .map_err(|e| e.to_string())?;
    let handle = producer.send(&topic, 0, batch).map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(60), handle.wait())
        .await
        .map_err(|_| format!("{topic}: write timed out"))?
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Every binding of a cluster; `Ok(None)` when it has no authorizer.
async fn all_acls(admin: &Admin) -> Result<Option<Vec<AclBinding>>, AdminError> {
    match admin.describe_acls(&AclBindingFilter::any()).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.error_code() == Some(ErrorCode::SecurityDisabled) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A dry run: describes both clusters and the record (when deletion is on) and plans.
///
/// # Errors
/// A description of what failed.
pub async fn dry_run(
    flow: &FlowSettings,
    source: &Admin,
    target: &Admin,
) -> Result<AclPlan, String> {
    let src = all_acls(source).await.map_err(|e| format!("source: {e}"))?;
    let Some(src) = src else {
        return Err("source cluster has no authorizer (SECURITY_DISABLED)".to_owned());
    };
    let dst = all_acls(target)
        .await
        .map_err(|e| format!("target: {e}"))?
        .ok_or_else(|| "target cluster has no authorizer (SECURITY_DISABLED)".to_owned())?;
    let record = if flow.acl_sync.delete {
        load_record(flow, target).await?
    } else {
        AclRecord::new()
    };
    Ok(plan_acls(flow, &src, &dst, &record))
}

/// State of the ACL-sync task across rounds.
#[derive(Debug, Default)]
struct AclSyncState {
    /// The record as last loaded or stored (`None` until loaded).
    record: Option<AclRecord>,
    /// SECURITY_DISABLED was reported already.
    reported_disabled: bool,
}

async fn round(
    flow: &FlowSettings,
    shared: &FlowShared,
    source: &Admin,
    target: &Admin,
    producer: &IdempotentProducer,
    state: &mut AclSyncState,
) -> Result<(), String> {
    let Some(src) = all_acls(source).await.map_err(|e| format!("source: {e}"))? else {
        if !state.reported_disabled {
            state.reported_disabled = true;
            return Err(
                "source cluster has no authorizer (SECURITY_DISABLED); ACL sync \
                        skipped"
                    .to_owned(),
            );
        }
        return Ok(());
    };
    let dst = all_acls(target)
        .await
        .map_err(|e| format!("target: {e}"))?
        .ok_or_else(|| "target cluster has no authorizer (SECURITY_DISABLED)".to_owned())?;
    if flow.acl_sync.delete && state.record.is_none() {
        state.record = Some(load_record(flow, target).await?);
    }
    let record = state.record.clone().unwrap_or_default();
    let plan = plan_acls(flow, &src, &dst, &record);
    if plan.create.is_empty() && plan.delete.is_empty() {
        return Ok(());
    }
    let mut errors = Vec::new();
    let mut created_now = Vec::new();
    if !plan.create.is_empty() {
        let results = target
            .create_acls(&plan.create)
            .await
            .map_err(|e| format!("creating ACLs: {e}"))?;
        for (b, r) in plan.create.iter().zip(results) {
            match r {
                Ok(()) => created_now.push(b.clone()),
                Err(e) => errors.push(format!("creating {}: {e}", describe_binding(b))),
            }
        }
    }
    let mut deleted_now = Vec::new();
    if !plan.delete.is_empty() {
        let filters: Vec<AclBindingFilter> =
            plan.delete.iter().map(AclBindingFilter::from).collect();
        match target.delete_acls(&filters).await {
            Ok(results) => {
                for (b, r) in plan.delete.iter().zip(results) {
                    match r {
                        Ok(_) => deleted_now.push(b.clone()),
                        Err(e) => errors.push(format!("deleting {}: {e}", describe_binding(b))),
                    }
                }
            }
            Err(e) => errors.push(format!("deleting ACLs: {e}")),
        }
    }
    if !created_now.is_empty() || !deleted_now.is_empty() {
        shared.emit(MirrorEvent::AclsChanged {
            flow: shared.name.clone(),
            created: created_now.iter().map(describe_binding).collect(),
            deleted: deleted_now.iter().map(describe_binding).collect(),
        });
    }
    if flow.acl_sync.delete {
        let next = next_record(flow, &record, &src, &dst, &created_now, &deleted_now);
        if next != record {
            store_record(flow, target, producer, &next).await?;
            state.record = Some(next);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Runs ACL sync for one flow every `flow.sync_topic_acls` until shutdown (returns at once
/// when ACL sync is off).
pub(crate) async fn run(
    flow: FlowSettings,
    shared: Arc<FlowShared>,
    source: Admin,
    target: Admin,
    producer: Arc<IdempotentProducer>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(period) = flow.sync_topic_acls else {
        return;
    };
    let mut state = AclSyncState::default();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while crate::config_sync::next_tick(&mut tick, &mut shutdown).await {
        if let Err(error) = round(&flow, &shared, &source, &target, &producer, &mut state).await {
            shared.emit(MirrorEvent::StepFailed {
                flow: shared.name.clone(),
                step: "acl sync",
                error,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn acl(
        rt: AclResourceType,
        pt: AclPatternType,
        name: &str,
        op: AclOperation,
        perm: AclPermission,
    ) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.to_owned(),
            pattern_type: pt,
            principal: "User:alice".to_owned(),
            host: "*".to_owned(),
            operation: op,
            permission: perm,
        }
    }

    fn topic(name: &str, op: AclOperation, perm: AclPermission) -> AclBinding {
        acl(
            AclResourceType::Topic,
            AclPatternType::Literal,
            name,
            op,
            perm,
        )
    }

    use AclOperation::{All, Describe, Read, Write};
    use AclPermission::{Allow, Deny};

    fn flow() -> FlowSettings {
        FlowSettings::new("A", "B").unwrap()
    }

    #[test]
    fn mm2_rules_by_default() {
        let f = flow();
        let m = |b: AclBinding| map_binding(&f, &b);
        assert_eq!(
            m(topic("orders", Read, Allow)),
            Ok(topic("A.orders", Read, Allow))
        );
        assert_eq!(
            m(topic("orders", All, Allow)),
            Ok(topic("A.orders", Read, Allow))
        );
        assert_eq!(m(topic("orders", Write, Allow)), Err(AclSkip::AllowWrite));
        assert_eq!(
            m(topic("orders", Write, Deny)),
            Ok(topic("A.orders", Write, Deny))
        );
        assert_eq!(
            m(topic("orders", All, Deny)),
            Ok(topic("A.orders", All, Deny))
        );
        assert_eq!(m(topic("*", Read, Allow)), Err(AclSkip::Wildcard));
        // Cycle (came from B) and internal topics are not replicated.
        assert_eq!(
            m(topic("B.orders", Read, Allow)),
            Err(AclSkip::TopicNotReplicated)
        );
        assert_eq!(
            m(topic("__consumer_offsets", Read, Allow)),
            Err(AclSkip::TopicNotReplicated)
        );
        let prefixed = acl(
            AclResourceType::Topic,
            AclPatternType::Prefixed,
            "ord",
            Read,
            Allow,
        );
        assert_eq!(m(prefixed), Err(AclSkip::Prefixed));
        let group = acl(
            AclResourceType::Group,
            AclPatternType::Literal,
            "g",
            Read,
            Allow,
        );
        assert_eq!(m(group), Err(AclSkip::ResourceType));
        let cluster = acl(
            AclResourceType::Cluster,
            AclPatternType::Literal,
            "kafka-cluster",
            Describe,
            Allow,
        );
        assert_eq!(m(cluster), Err(AclSkip::ResourceType));
    }

    #[test]
    fn opt_in_prefixed_and_groups() {
        let mut f = flow();
        f.acl_sync.prefixed = true;
        f.acl_sync.groups = true;
        let m = |b: AclBinding| map_binding(&f, &b);
        let prefixed = acl(
            AclResourceType::Topic,
            AclPatternType::Prefixed,
            "ord",
            All,
            Allow,
        );
        assert_eq!(
            m(prefixed),
            Ok(acl(
                AclResourceType::Topic,
                AclPatternType::Prefixed,
                "A.ord",
                Read,
                Allow
            ))
        );
        let group = acl(
            AclResourceType::Group,
            AclPatternType::Literal,
            "app",
            All,
            Allow,
        );
        assert_eq!(
            m(group),
            Ok(acl(
                AclResourceType::Group,
                AclPatternType::Literal,
                "app",
                Read,
                Allow
            ))
        );
        let excluded = acl(
            AclResourceType::Group,
            AclPatternType::Literal,
            "console-consumer-1",
            Read,
            Allow,
        );
        assert_eq!(m(excluded), Err(AclSkip::GroupNotSelected));
    }

    fn record_of(pairs: &[(&AclBinding, &AclBinding)]) -> AclRecord {
        let mut r = AclRecord::new();
        for (t, o) in pairs {
            r.entry((*t).clone()).or_default().insert((*o).clone());
        }
        r
    }

    #[test]
    fn plan_creates_missing_and_never_deletes_by_default() {
        let mut f = flow();
        let source = [topic("orders", Read, Allow), topic("pay", All, Allow)];
        let gone_src = topic("gone", Read, Allow);
        let gone = topic("A.gone", Read, Allow);
        let target = [topic("A.orders", Read, Allow), gone.clone()];
        let record = record_of(&[(&gone, &gone_src)]);
        let plan = plan_acls(&f, &source, &target, &record);
        assert_eq!(plan.create, [topic("A.pay", Read, Allow)]);
        assert!(plan.delete.is_empty());

        f.acl_sync.delete = true;
        let plan = plan_acls(&f, &source, &target, &record);
        assert_eq!(plan.delete, std::slice::from_ref(&gone));
        // Not recorded as ferry's: never deleted, even if no source binding maps to it.
        let plan = plan_acls(&f, &source, &target, &AclRecord::new());
        assert!(plan.delete.is_empty());
        // The source binding still exists but its topic left the filter: kept.
        let mut narrowed = f.clone();
        narrowed.topic_filter =
            crate::filter::TopicFilter::from_config(Some("orders"), None).unwrap();
        let with_gone = [source[0].clone(), gone_src.clone()];
        let plan = plan_acls(&narrowed, &with_gone, &target, &record);
        assert!(plan.delete.is_empty(), "{plan:?}");
        // ALL removed while READ remains: both map to READ, nothing is deleted.
        let read_src = topic("orders", Read, Allow);
        let all_src = topic("orders", All, Allow);
        let read_tgt = topic("A.orders", Read, Allow);
        let record = record_of(&[(&read_tgt, &all_src)]);
        let plan = plan_acls(&f, std::slice::from_ref(&read_src), &target, &record);
        assert!(plan.delete.is_empty());
        // Everything in step: nothing to do.
        let plan = plan_acls(&f, &source[..1], &target[..1], &AclRecord::new());
        assert!(plan.create.is_empty() && plan.delete.is_empty());
    }

    #[test]
    fn record_keeps_only_what_ferry_made_and_still_exists() {
        let f = flow();
        let (a, b, c) = (
            topic("a", Read, Allow),
            topic("b", Read, Allow),
            topic("c", Read, Allow),
        );
        let (ta, tb, tc) = (
            topic("A.a", Read, Allow),
            topic("A.b", Read, Allow),
            topic("A.c", Read, Allow),
        );
        let record = record_of(&[(&ta, &a), (&tb, &b)]);
        // tb was removed by an operator; tc created now; ta deleted now.
        let next = next_record(
            &f,
            &record,
            std::slice::from_ref(&c),
            std::slice::from_ref(&ta),
            std::slice::from_ref(&tc),
            std::slice::from_ref(&ta),
        );
        assert_eq!(next, record_of(&[(&tc, &c)]));
    }

    fn binding() -> impl Strategy<Value = AclBinding> {
        (
            prop_oneof![Just(AclResourceType::Topic), Just(AclResourceType::Group)],
            prop_oneof![
                Just(AclPatternType::Literal),
                Just(AclPatternType::Prefixed)
            ],
            "[a-z\\t\\n\\\\|.*]{1,8}",
            "User:[a-z\\t\\\\]{1,5}",
            prop_oneof![Just("*".to_owned()), Just("10.0.0.1".to_owned())],
            prop_oneof![Just(Read), Just(Write), Just(All), Just(Describe)],
            prop_oneof![Just(Allow), Just(Deny)],
        )
            .prop_map(|(rt, pt, name, principal, host, op, perm)| AclBinding {
                resource_type: rt,
                resource_name: name,
                pattern_type: pt,
                principal,
                host,
                operation: op,
                permission: perm,
            })
    }

    proptest! {
        #[test]
        fn record_round_trips(
            pairs in proptest::collection::vec(
                (binding(), proptest::option::of(binding())),
                0..8,
            ),
        ) {
            let mut record = AclRecord::new();
            for (t, o) in pairs {
                record.entry(t).or_default().extend(o);
            }
            let text = encode_record(&record);
            prop_assert_eq!(decode_record(&text), Some(record));
        }

        /// Applying a plan (without deletion) leaves nothing to create, and creates never
        /// contain ALLOW WRITE or unreplicated names.
        #[test]
        fn plan_converges(
            source in proptest::collection::vec(binding(), 0..8),
            target in proptest::collection::vec(binding(), 0..4),
        ) {
            let f = flow();
            let plan = plan_acls(&f, &source, &target, &AclRecord::new());
            for b in &plan.create {
                prop_assert!(!(b.permission == Allow && b.operation == Write));
                prop_assert!(b.resource_name.starts_with("A."));
            }
            let mut after = target.clone();
            after.extend(plan.create.iter().cloned());
            prop_assert!(plan_acls(&f, &source, &after, &AclRecord::new()).create.is_empty());
        }
    }

    #[test]
    fn record_rejects_other_formats() {
        assert_eq!(decode_record("v2\n"), None);
        assert_eq!(decode_record("v1\n2\t3\tx\n"), None);
        assert_eq!(decode_record("v1\n"), Some(AclRecord::new()));
    }
}
