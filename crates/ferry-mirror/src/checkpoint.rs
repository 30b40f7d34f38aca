//! MM2 checkpoints from ferry's exact offset maps, and the task that also drives group-offset
//! sync (`crate::group_sync`).
//!
//! Every `emit.checkpoints.interval.seconds` the flow's group task reads the committed offsets
//! of the selected consumer groups on the **source** (one OffsetFetch per coordinator, KIP-709),
//! translates each committed offset `U` of a replicated partition through that partition's
//! [`PartitionOffsetMap`] (exact: the target offset of the first replicated record at or after
//! `U`; `None`, hence no checkpoint, while replication has not reached `U`), and writes MM2
//! [`Checkpoint`] records to `<source>.checkpoints.internal` on the target (name per policy;
//! created compacted with one partition and `checkpoints.topic.replication.factor`), upstream
//! commit metadata carried. `MirrorClient`, `RemoteClusterUtils.translateOffsets` and MM2's
//! `CheckpointFormatter` read them.
//!
//! Groups are selected by `groups` / `groups.exclude` ([`crate::filter::GroupFilter`]) among
//! the source's consumer groups, listed again every `refresh.groups.interval.seconds`; only
//! partitions of replicated topics produce checkpoints (mm2-compat.md §6.3). ferry's own
//! progress group is never selected.
//!
//! # Monotonicity
//!
//! [`checkpoint_due`] is MM2's rule (§6.3 step 4): the first checkpoint of a (group, partition),
//! one whose upstream offset went down (the group rewound: propagated), or one whose downstream
//! offset went up. Nothing else: no downstream rewind without an upstream one, no repeats.
//! Because ferry's translation is exact and the maps survive restarts (`crate::map_store`), a
//! restarted process computes the same downstream offset for the same upstream offset, so the
//! in-memory "last checkpoint" state needs no reload from the topic.
//!
//! # Shared maps
//!
//! The pipeline's acknowledgement task owns each partition's map; after every progress
//! commit (and when a partition starts) it publishes a copy of the changed maps into
//! `GroupShared`, which this task reads. A published map never describes records the target
//! has not acknowledged.
//!
//! # References
//! - `../shared/reference/mm2-compat.md` §6.3 (checkpoints), §6.4 (group sync), §5 (formats)
//! - KIP-382 (checkpoints), KIP-545 (group-offset sync), KAFKA-12635 (no checkpoint before
//!   replication), KAFKA-10048 (offset 0 is checkpointed)

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use ferry_client::admin::{Admin, GroupListing, GroupOffsetsQuery, GroupState};
use ferry_client::fetcher::TopicPartition;
use ferry_client::producer::IdempotentProducer;
use ferry_protocol::mm2::Checkpoint;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::events::MirrorEvent;
use crate::flow::FlowShared;
use crate::group_sync::{self, SyncOutcome};
use crate::heartbeat::{encode_batch, ensure_compacted_topic, now_ms};
use crate::offset_map::PartitionOffsetMap;
use crate::policy::ReplicationPolicy;
use crate::settings::FlowSettings;

/// Most checkpoints in one written batch.
const MAX_CHECKPOINTS_PER_BATCH: usize = 500;

/// A copy of one partition's map, as the acknowledgement task last published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSnapshot {
    /// The target topic (same partition number).
    pub target_topic: String,
    /// The map.
    pub map: PartitionOffsetMap,
}

/// Translation state of one (group, partition), for status readers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupOffsetStatus {
    /// `source->target`.
    pub flow: String,
    /// Consumer group.
    pub group: String,
    /// Source topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Target topic.
    pub target_topic: String,
    /// The group's committed offset on the source.
    pub upstream: i64,
    /// Its exact translation, `None` while replication has not reached it.
    pub translated: Option<i64>,
    /// The group's committed offset on the target when group sync last looked, if any.
    pub target_committed: Option<i64>,
}

/// State shared between the pipeline (writer of maps) and the group task (reader).
#[derive(Debug, Default)]
pub(crate) struct GroupShared {
    maps: RwLock<BTreeMap<TopicPartition, MapSnapshot>>,
    status: Mutex<Vec<GroupOffsetStatus>>,
}

impl GroupShared {
    /// Publishes a copy of a partition's map (source `tp`).
    pub(crate) fn publish(
        &self,
        tp: &TopicPartition,
        target_topic: &str,
        map: &PartitionOffsetMap,
    ) {
        let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
        match maps.get_mut(tp) {
            Some(s) if s.map == *map && s.target_topic == target_topic => {}
            Some(s) => {
                s.map.clone_from(map);
                target_topic.clone_into(&mut s.target_topic);
            }
            None => {
                maps.insert(
                    tp.clone(),
                    MapSnapshot {
                        target_topic: target_topic.to_owned(),
                        map: map.clone(),
                    },
                );
            }
        }
    }

    /// The target topic and exact translation of source offset `u` of `tp`; `None` for a
    /// partition that is not replicated, `Some((topic, None))` while `u` is not reached.
    pub(crate) fn translate(&self, tp: &TopicPartition, u: i64) -> Option<(String, Option<i64>)> {
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        maps.get(tp)
            .map(|s| (s.target_topic.clone(), s.map.translate(u)))
    }

    /// A copy of a published map.
    pub(crate) fn snapshot(&self, tp: &TopicPartition) -> Option<MapSnapshot> {
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        maps.get(tp).cloned()
    }

    /// The latest per-group status.
    pub(crate) fn status(&self) -> Vec<GroupOffsetStatus> {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_status(&self, status: Vec<GroupOffsetStatus>) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = status;
    }
}

/// MM2's checkpoint monotonicity rule (see the module docs). `prev` is the last checkpoint's
/// `(upstream, downstream)`.
pub fn checkpoint_due(prev: Option<(i64, i64)>, upstream: i64, downstream: i64) -> bool {
    match prev {
        None => true,
        Some((u, d)) => upstream < u || downstream > d,
    }
}

/// Whether a listed group is a candidate: a consumer (or simple) group the filter accepts,
/// not a share group, not ferry's own progress group.
pub fn group_selected(flow: &FlowSettings, listing: &GroupListing) -> bool {
    selected(
        flow,
        &listing.group_id,
        &listing.protocol_type,
        listing.group_type.as_deref(),
    )
}

fn selected(
    flow: &FlowSettings,
    group: &str,
    protocol_type: &str,
    group_type: Option<&str>,
) -> bool {
    let consumer = protocol_type.is_empty() || protocol_type == "consumer";
    consumer
        && group_type != Some("share")
        && group != flow.progress_group_id()
        && flow.group_filter.accepts(group)
}

/// The last checkpoint of one (group, source partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LastCheckpoint {
    pub target_topic: String,
    pub upstream: i64,
    pub downstream: i64,
    pub metadata: String,
}

/// The group task of one flow: checkpoints and group-offset sync.
#[derive(Debug)]
pub(crate) struct GroupTask {
    pub flow: FlowSettings,
    pub shared: Arc<FlowShared>,
    pub source_admin: Admin,
    pub target_admin: Admin,
    pub producer: Arc<IdempotentProducer>,
    pub shutdown: watch::Receiver<bool>,
    groups: BTreeSet<String>,
    last: BTreeMap<(String, TopicPartition), LastCheckpoint>,
    /// `(upstream, downstream)` last committed to the target group, by (group, source tp).
    synced: BTreeMap<(String, TopicPartition), (i64, i64)>,
    target_committed: BTreeMap<(String, TopicPartition), i64>,
    topic_created: bool,
}

impl GroupTask {
    pub(crate) fn new(
        flow: FlowSettings,
        shared: Arc<FlowShared>,
        source_admin: Admin,
        target_admin: Admin,
        producer: Arc<IdempotentProducer>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            flow,
            shared,
            source_admin,
            target_admin,
            producer,
            shutdown,
            groups: BTreeSet::new(),
            last: BTreeMap::new(),
            synced: BTreeMap::new(),
            target_committed: BTreeMap::new(),
            topic_created: false,
        }
    }

    fn failed(&self, step: &'static str, error: String) {
        self.shared.emit(MirrorEvent::StepFailed {
            flow: self.shared.name.clone(),
            step,
            error,
        });
    }

    /// Runs until shutdown: groups are listed at once and then every refresh interval;
    /// checkpoints and group sync run at their intervals, first after one interval.
    pub(crate) async fn run(mut self) {
        let now = Instant::now();
        let mut next_refresh = now;
        let mut next_checkpoint = now + self.flow.checkpoints_interval;
        let mut next_sync = now + self.flow.sync_group_offsets_interval;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let now = Instant::now();
            if now >= next_refresh {
                self.refresh_groups().await;
                next_refresh = now + self.flow.refresh_groups_interval;
            }
            if now >= next_checkpoint {
                self.checkpoint().await;
                next_checkpoint = now + self.flow.checkpoints_interval;
            }
            if self.flow.sync_group_offsets && now >= next_sync {
                self.sync_groups().await;
                next_sync = now + self.flow.sync_group_offsets_interval;
            }
            let mut wake = next_refresh.min(next_checkpoint);
            if self.flow.sync_group_offsets {
                wake = wake.min(next_sync);
            }
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                r = self.shutdown.changed() => if r.is_err() { return },
            }
        }
    }

    async fn refresh_groups(&mut self) {
        match self.source_admin.list_groups(&[]).await {
            Ok(list) => {
                self.groups = list
                    .iter()
                    .filter(|g| group_selected(&self.flow, g))
                    .map(|g| g.group_id.clone())
                    .collect();
                tracing::debug!(flow = %self.shared.name, groups = self.groups.len(), "groups listed");
            }
            Err(e) => self.failed("groups", format!("listing source groups: {e}")),
        }
    }

    /// Reads source offsets, translates, writes the due checkpoints.
    async fn checkpoint(&mut self) {
        if self.groups.is_empty() {
            self.shared.group_state.set_status(Vec::new());
            return;
        }
        let queries: Vec<GroupOffsetsQuery> = self
            .groups
            .iter()
            .map(|g| GroupOffsetsQuery {
                group: g.clone(),
                partitions: None,
            })
            .collect();
        let results = match self.source_admin.fetch_offsets_multi(&queries, false).await {
            Ok(r) => r,
            Err(e) => {
                self.failed("checkpoints", format!("fetching source group offsets: {e}"));
                return;
            }
        };
        let mut due = Vec::new();
        let mut status = Vec::new();
        for (group, result) in results {
            let offsets = match result {
                Ok(o) => o,
                Err(e) if e.is_not_found() => {
                    self.groups.remove(&group);
                    continue;
                }
                Err(e) => {
                    self.failed("checkpoints", format!("offsets of group {group}: {e}"));
                    continue;
                }
            };
            for (tp, committed) in offsets {
                if committed.offset < 0 {
                    continue;
                }
                let Some((target_topic, translated)) =
                    self.shared.group_state.translate(&tp, committed.offset)
                else {
                    continue;
                };
                let key = (group.clone(), tp.clone());
                status.push(GroupOffsetStatus {
                    flow: self.shared.name.clone(),
                    group: group.clone(),
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    target_topic: target_topic.clone(),
                    upstream: committed.offset,
                    translated,
                    target_committed: self.target_committed.get(&key).copied(),
                });
                let Some(downstream) = translated else {
                    continue;
                };
                let prev = self.last.get(&key).map(|c| (c.upstream, c.downstream));
                if checkpoint_due(prev, committed.offset, downstream) {
                    due.push((
                        key,
                        LastCheckpoint {
                            target_topic,
                            upstream: committed.offset,
                            downstream,
                            metadata: committed.metadata.unwrap_or_default(),
                        },
                    ));
                }
            }
        }
        self.shared.group_state.set_status(status);
        if due.is_empty() {
            return;
        }
        if self.flow.emit_checkpoints {
            match self.write(&due).await {
                Ok(()) => {
                    let groups: BTreeSet<&String> = due.iter().map(|((g, _), _)| g).collect();
                    self.shared.emit(MirrorEvent::CheckpointsWritten {
                        flow: self.shared.name.clone(),
                        groups: groups.len(),
                        checkpoints: due.len(),
                    });
                }
                Err(e) => {
                    // Not recorded as written: the next interval tries again.
                    self.failed("checkpoints", e);
                    return;
                }
            }
        }
        self.last.extend(due);
    }

    async fn write(
        &mut self,
        due: &[((String, TopicPartition), LastCheckpoint)],
    ) -> Result<(), String> {
        let topic = self.flow.policy.checkpoints_topic(&self.flow.source);
        if !self.topic_created {
            ensure_compacted_topic(
                &self.target_admin,
                &topic,
                self.flow.checkpoints_replication_factor,
            )
            .await
            .map_err(|e| format!("creating {topic}: {e}"))?;
            self.topic_created = true;
        }
        let timestamp = now_ms();
        let mut handles = Vec::new();
        for chunk in due.chunks(MAX_CHECKPOINTS_PER_BATCH) {
            let mut records = Vec::with_capacity(chunk.len());
            for ((group, tp), c) in chunk {
                let cp = Checkpoint {
                    group: group.clone(),
                    topic: c.target_topic.clone(),
                    partition: tp.partition,
                    upstream_offset: c.upstream,
                    downstream_offset: c.downstream,
                    metadata: c.metadata.clone(),
                };
                let key = cp.encode_key().map_err(|e| e.to_string())?;
                let value = cp.encode_value().map_err(|e| e.to_string())?;
                records.push((key, value));
            }
            let batch = encode_batch(&records, timestamp).map_err(|e| e.to_string())?;
            handles.push(
                self.producer
                    .send(&topic, 0, batch)
                    .map_err(|e| format!("writing {topic}: {e}"))?,
            );
        }
        for h in handles {
            tokio::time::timeout(Duration::from_secs(120), h.wait())
                .await
                .map_err(|_| format!("writing {topic}: timed out"))?
                .map_err(|e| format!("writing {topic}: {e}"))?;
        }
        Ok(())
    }

    /// Group-offset sync for every group with checkpoints (see `crate::group_sync`).
    async fn sync_groups(&mut self) {
        let mut by_group: BTreeMap<String, Vec<(TopicPartition, LastCheckpoint)>> = BTreeMap::new();
        for ((group, tp), c) in &self.last {
            by_group
                .entry(group.clone())
                .or_default()
                .push((tp.clone(), c.clone()));
        }
        if by_group.is_empty() {
            return;
        }
        // KIP-848 groups are only visible to ListGroups (see crate::group_sync).
        let listed: BTreeMap<String, GroupState> = match self.target_admin.list_groups(&[]).await {
            Ok(list) => list
                .into_iter()
                .filter_map(|l| l.state.map(|s| (l.group_id, s)))
                .collect(),
            Err(e) => {
                self.failed("group sync", format!("listing target groups: {e}"));
                return;
            }
        };
        for (group, checkpoints) in by_group {
            if *self.shutdown.borrow() {
                return;
            }
            let synced: BTreeMap<TopicPartition, (i64, i64)> = checkpoints
                .iter()
                .filter_map(|(tp, _)| {
                    self.synced
                        .get(&(group.clone(), tp.clone()))
                        .map(|s| (tp.clone(), *s))
                })
                .collect();
            let outcome = group_sync::sync_group(
                &self.target_admin,
                &group,
                &checkpoints,
                &synced,
                listed.get(&group),
            )
            .await;
            match outcome {
                Ok(SyncOutcome::Synced {
                    committed,
                    target_offsets,
                }) => {
                    for (tp, v) in &committed {
                        self.synced.insert((group.clone(), tp.clone()), *v);
                    }
                    self.remember_target(&group, &checkpoints, &target_offsets);
                    self.shared.emit(MirrorEvent::GroupSynced {
                        flow: self.shared.name.clone(),
                        group: group.clone(),
                        partitions: committed.len(),
                    });
                }
                Ok(SyncOutcome::UpToDate { target_offsets }) => {
                    self.remember_target(&group, &checkpoints, &target_offsets);
                }
                Ok(SyncOutcome::Active { state }) => {
                    self.shared.emit(MirrorEvent::GroupSkippedActive {
                        flow: self.shared.name.clone(),
                        group: group.clone(),
                        state,
                    });
                }
                Err(e) => self.failed("group sync", format!("group {group}: {e}")),
            }
        }
    }

    fn remember_target(
        &mut self,
        group: &str,
        checkpoints: &[(TopicPartition, LastCheckpoint)],
        target_offsets: &BTreeMap<TopicPartition, i64>,
    ) {
        for (tp, c) in checkpoints {
            let target_tp = TopicPartition::new(c.target_topic.clone(), tp.partition);
            if let Some(&o) = target_offsets.get(&target_tp) {
                self.target_committed
                    .insert((group.to_owned(), tp.clone()), o);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_monotonic_unless_the_group_rewound() {
        assert!(checkpoint_due(None, 0, 0), "first, even at 0");
        assert!(checkpoint_due(Some((10, 20)), 12, 22), "forward");
        assert!(!checkpoint_due(Some((10, 20)), 10, 20), "no repeat");
        assert!(
            !checkpoint_due(Some((10, 20)), 11, 20),
            "upstream moved through a hole: same downstream, nothing new"
        );
        assert!(
            !checkpoint_due(Some((10, 20)), 12, 19),
            "never a downstream rewind without an upstream one"
        );
        assert!(
            checkpoint_due(Some((10, 20)), 4, 14),
            "upstream rewind propagates"
        );
    }

    #[test]
    fn groups_are_selected_by_filter_type_and_never_the_progress_group() {
        let flow = FlowSettings::new("A", "B").unwrap();
        let sel = |id, protocol, group_type| selected(&flow, id, protocol, group_type);
        assert!(sel("orders-app", "consumer", Some("classic")));
        assert!(sel("simple", "", None));
        assert!(sel("kip848", "consumer", Some("consumer")));
        assert!(!sel("connect-x", "connect", None));
        assert!(!sel("console-consumer-1", "consumer", None));
        assert!(!sel("__internal", "consumer", None));
        assert!(!sel("ferry-A-B", "", None));
        assert!(!sel("shared", "share", Some("share")));
    }

    #[test]
    fn published_maps_translate_and_unknown_partitions_do_not() {
        let g = GroupShared::default();
        let tp = TopicPartition::new("t", 0);
        let mut map = PartitionOffsetMap::new(0, 0);
        map.record_batch(&[(0, 5)], 0, 5).unwrap();
        g.publish(&tp, "A.t", &map);
        assert_eq!(g.translate(&tp, 3), Some(("A.t".to_owned(), Some(3))));
        assert_eq!(g.translate(&tp, 6), Some(("A.t".to_owned(), None)));
        assert_eq!(g.translate(&TopicPartition::new("u", 0), 0), None);
        map.record_batch(&[(7, 1)], 5, 8).unwrap();
        g.publish(&tp, "A.t", &map);
        assert_eq!(g.translate(&tp, 6), Some(("A.t".to_owned(), Some(5))));
        assert_eq!(g.snapshot(&tp).map(|s| s.map), Some(map));
    }
}
