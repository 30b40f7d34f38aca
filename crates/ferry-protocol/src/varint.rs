//! Zig-zag varints and varlongs, bounded readers.
