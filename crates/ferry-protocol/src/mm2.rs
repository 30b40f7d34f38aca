//! MirrorMaker 2 internal record formats: offset syncs, checkpoints, heartbeats.
