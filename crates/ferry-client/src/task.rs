//! Owned background tasks: a spawned task that ends when its owner is dropped.
//!
//! `tokio::spawn` detaches: dropping a [`JoinHandle`] leaves the task running. Everything
//! ferry spawns belongs to something (a connection, a producer, an engine run), and must not
//! outlive it: a replication run that is cancelled or crashes must not leave a fetch loop or
//! an acknowledgement task behind that keeps writing to the target and committing progress
//! next to its successor. [`OwnedTask`] aborts its task on drop and can still be awaited.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::{JoinError, JoinHandle};

/// A spawned task that is aborted when this handle is dropped; awaiting it yields the task's
/// output like a [`JoinHandle`].
#[derive(Debug)]
pub struct OwnedTask<T>(JoinHandle<T>);

impl<T: Send + 'static> OwnedTask<T> {
    /// Spawns `future` on the current tokio runtime, owned by the returned handle.
    pub fn spawn<F>(future: F) -> Self
    where
        F: Future<Output = T> + Send + 'static,
    {
        Self(tokio::spawn(future))
    }
}

impl<T> Drop for OwnedTask<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for OwnedTask<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn awaiting_yields_the_output() {
        assert_eq!(OwnedTask::spawn(async { 7 }).await.ok(), Some(7));
    }

    #[tokio::test]
    async fn dropping_the_handle_stops_the_task() {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let task = OwnedTask::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            flag.store(true, Ordering::SeqCst);
        });
        drop(task);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!ran.load(Ordering::SeqCst), "the task outlived its handle");
    }
}
