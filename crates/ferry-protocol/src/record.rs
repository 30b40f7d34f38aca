//! Full-fidelity v2 record codec.
