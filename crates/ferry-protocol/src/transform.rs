//! Forwarding transforms and the decision function.
