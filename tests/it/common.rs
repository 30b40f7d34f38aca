//! Helpers shared by the integration-test modules.

use std::future::Future;

/// Runs `f` to completion on a fresh two-worker tokio runtime (one per test, so tests stay
/// independent of each other's tasks).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
