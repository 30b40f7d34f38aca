//! API keys, ferry's supported version ranges and version negotiation.
