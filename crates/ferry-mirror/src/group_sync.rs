//! Group-offset sync into the target (`sync.group.offsets.enabled`, KIP-545), without MM2's
//! races.
//!
//! For each group with checkpoints, every `sync.group.offsets.interval.seconds`
//! (`sync_group`):
//!
//! 1. DescribeGroups on the **target**, now (not a snapshot one interval old, the cause of
//!    KAFKA-19794): a group with members, or in any state but `Empty`/`Dead`, is active and is
//!    skipped ([`SyncOutcome::Active`]). KIP-848 groups are not described by DescribeGroups
//!    (GROUP_ID_NOT_FOUND, "not a classic group", Kafka 4.3); for them the state from a
//!    ListGroups of the same round decides;
//! 2. OffsetFetch of the group's target offsets for the checkpointed partitions, right after;
//! 3. per partition, [`decide`]: commit the translated offset where the target has none or
//!    a lower one; never move it backwards, except when the **source** group rewound since
//!    ferry last synced that partition *and* the target offset is still the one ferry wrote
//!    (nobody consumed on the target since); never touch a partition the group has not
//!    committed upstream (only checkpointed partitions are considered);
//! 4. an admin OffsetCommit (generation −1, empty member id) with the upstream metadata.
//!
//! The coordinator accepts such a commit only while the group has no members, so a consumer
//! that joins between steps 1 and 4 makes it fail; Kafka 4.3.1 answers UNKNOWN_MEMBER_ID for
//! both classic and KIP-848 groups with members (checked by `tests/it/groups_engine.rs`), and
//! ferry-client also classifies ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS and
//! STALE_MEMBER_EPOCH as [`AdminError::is_group_active`], which is "active now, skip", not an
//! error. The one window left is a consumer that joins, commits
//! **and leaves** between steps 2 and 4 (a full group session within one round trip): its
//! commit could be overwritten by a value computed before it. MM2's window for the same
//! mistake is the whole interval.
//!
//! # References
//! - `../shared/reference/mm2-compat.md` §6.4 (MM2's behaviour, KAFKA-19794, KAFKA-15607)
//! - KIP-545, KIP-848 (consumer group member epochs)

use std::collections::BTreeMap;

use ferry_client::admin::{Admin, AdminError, CommittedOffset, GroupState};
use ferry_client::fetcher::TopicPartition;

use crate::checkpoint::LastCheckpoint;

/// What [`decide`] says for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncDecision {
    /// Commit this offset.
    Commit(i64),
    /// The target already has the translated offset.
    UpToDate,
    /// The target is ahead and the source group did not rewind: leave it.
    KeepAhead,
}

/// Whether a target group may be written to: no members and state `Empty` or `Dead`.
pub fn group_idle(state: &GroupState, members: usize) -> bool {
    members == 0 && matches!(state, GroupState::Empty | GroupState::Dead)
}

/// The decision for one partition (see the module docs).
///
/// `upstream`/`translated` are the latest checkpoint, `target` the target group's committed
/// offset now (`None`: none), `last_synced` the `(upstream, downstream)` ferry last committed.
pub fn decide(
    upstream: i64,
    translated: i64,
    target: Option<i64>,
    last_synced: Option<(i64, i64)>,
) -> SyncDecision {
    match target.filter(|t| *t >= 0) {
        None => SyncDecision::Commit(translated),
        Some(t) if translated > t => SyncDecision::Commit(translated),
        Some(t) if translated == t => SyncDecision::UpToDate,
        Some(t) => match last_synced {
            Some((u, d)) if upstream < u && t == d => SyncDecision::Commit(translated),
            _ => SyncDecision::KeepAhead,
        },
    }
}

/// What `sync_group` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Offsets committed: `(upstream, downstream)` by **source** partition.
    Synced {
        /// What was committed.
        committed: BTreeMap<TopicPartition, (i64, i64)>,
        /// The target offsets after the commit, by **target** partition.
        target_offsets: BTreeMap<TopicPartition, i64>,
    },
    /// Nothing to commit.
    UpToDate {
        /// The target offsets, by target partition.
        target_offsets: BTreeMap<TopicPartition, i64>,
    },
    /// The target group has members (seen by DescribeGroups or by the coordinator's refusal).
    Active {
        /// The state seen, or the refusal.
        state: String,
    },
}

/// Syncs one group (see the module docs). `checkpoints` are by source partition;
/// `synced` is what ferry last committed, by source partition; `listed` is the group's state
/// in a ListGroups answer of this round, used for KIP-848 groups, which DescribeGroups does not
/// describe (GROUP_ID_NOT_FOUND, "not a classic group", on Kafka 4.x).
pub(crate) async fn sync_group(
    admin: &Admin,
    group: &str,
    checkpoints: &[(TopicPartition, LastCheckpoint)],
    synced: &BTreeMap<TopicPartition, (i64, i64)>,
    listed: Option<&GroupState>,
) -> Result<SyncOutcome, AdminError> {
    let described = admin.describe_groups(&[group]).await?;
    match described.get(group) {
        Some(Ok(d)) if !group_idle(&d.state, d.members.len()) => {
            return Ok(SyncOutcome::Active {
                state: format!("{} with {} members", d.state, d.members.len()),
            });
        }
        Some(Ok(_)) => {}
        Some(Err(e)) if e.is_not_found() => {
            if let Some(state) = listed.filter(|s| !group_idle(s, 0)) {
                return Ok(SyncOutcome::Active {
                    state: format!("{state} (listed)"),
                });
            }
        }
        Some(Err(e)) => return Err(e.clone()),
        None => {}
    }
    let target_tps: Vec<TopicPartition> = checkpoints
        .iter()
        .map(|(tp, c)| TopicPartition::new(c.target_topic.clone(), tp.partition))
        .collect();
    let current = match admin.fetch_offsets(group, Some(&target_tps), false).await {
        Ok(o) => o,
        Err(e) if e.is_not_found() => BTreeMap::new(),
        Err(e) => return Err(e),
    };
    let mut target_offsets: BTreeMap<TopicPartition, i64> = current
        .iter()
        .filter(|(_, o)| o.offset >= 0)
        .map(|(tp, o)| (tp.clone(), o.offset))
        .collect();
    let mut commit = BTreeMap::new();
    let mut committed = BTreeMap::new();
    for ((tp, c), target_tp) in checkpoints.iter().zip(target_tps) {
        let now = target_offsets.get(&target_tp).copied();
        if let SyncDecision::Commit(offset) =
            decide(c.upstream, c.downstream, now, synced.get(tp).copied())
        {
            let mut o = CommittedOffset::new(offset);
            o.metadata = Some(c.metadata.clone());
            commit.insert(target_tp, o);
            committed.insert(tp.clone(), (c.upstream, offset));
        }
    }
    if commit.is_empty() {
        return Ok(SyncOutcome::UpToDate { target_offsets });
    }
    match admin.commit_offsets(group, &commit).await {
        Ok(()) => {
            for (tp, o) in commit {
                target_offsets.insert(tp, o.offset);
            }
            Ok(SyncOutcome::Synced {
                committed,
                target_offsets,
            })
        }
        Err(e) if e.is_group_active() => Ok(SyncOutcome::Active {
            state: format!("commit refused: {e}"),
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_groups_without_members_are_written() {
        assert!(group_idle(&GroupState::Empty, 0));
        assert!(group_idle(&GroupState::Dead, 0));
        assert!(!group_idle(&GroupState::Empty, 1));
        for s in [
            GroupState::Stable,
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Assigning,
            GroupState::Reconciling,
            GroupState::NotReady,
            GroupState::Other("Unknown".into()),
        ] {
            assert!(!group_idle(&s, 0), "{s}");
        }
    }

    #[test]
    fn offsets_move_forward_only_unless_the_source_rewound() {
        assert_eq!(decide(10, 20, None, None), SyncDecision::Commit(20));
        assert_eq!(decide(10, 20, Some(-1), None), SyncDecision::Commit(20));
        assert_eq!(decide(10, 20, Some(15), None), SyncDecision::Commit(20));
        assert_eq!(decide(10, 20, Some(20), None), SyncDecision::UpToDate);
        // Target consumers moved ahead: never rewound.
        assert_eq!(decide(10, 20, Some(25), None), SyncDecision::KeepAhead);
        assert_eq!(
            decide(10, 20, Some(25), Some((10, 20))),
            SyncDecision::KeepAhead
        );
        // The source group rewound from 12 to 10 after ferry wrote 22: propagated.
        assert_eq!(
            decide(10, 20, Some(22), Some((12, 22))),
            SyncDecision::Commit(20)
        );
        // ...but not over a target group that consumed past what ferry wrote.
        assert_eq!(
            decide(10, 20, Some(23), Some((12, 22))),
            SyncDecision::KeepAhead
        );
        // Upstream moved forward, translated lower than target: impossible with an exact map,
        // and still never a rewind.
        assert_eq!(
            decide(13, 20, Some(22), Some((12, 22))),
            SyncDecision::KeepAhead
        );
    }
}
