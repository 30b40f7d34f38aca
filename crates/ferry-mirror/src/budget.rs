//! The in-flight byte budget: a semaphore counted in bytes.
//!
//! Every outgoing batch holds a [`BudgetPermit`] for its size from the moment it is prepared
//! until the target acknowledges it (or it fails). The pipeline acquires before it sends, so
//! while the budget is exhausted it stops fetching: a large backlog never means a large heap
//! (DESIGN.md, "Data path rules"). A batch larger than the whole budget is admitted alone
//! (it waits for every other permit), so nothing can deadlock.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A byte budget shared by all pipelines of an engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    capacity: u32,
}

/// Bytes held from a [`ByteBudget`]; released on drop.
#[derive(Debug)]
pub struct BudgetPermit {
    _permit: OwnedSemaphorePermit,
    bytes: usize,
}

impl BudgetPermit {
    /// The bytes this permit stands for (may exceed what it holds for an oversized batch).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl ByteBudget {
    /// A budget of `capacity` bytes (capped at `u32::MAX >> 3`, the semaphore's limit).
    pub fn new(capacity: usize) -> Self {
        let capacity = u32::try_from(capacity.min(Semaphore::MAX_PERMITS))
            .unwrap_or(u32::MAX >> 3)
            .clamp(1, u32::MAX >> 3);
        Self {
            semaphore: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
        }
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Bytes currently free.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// Bytes currently held.
    pub fn in_use(&self) -> usize {
        self.capacity().saturating_sub(self.available())
    }

    fn clamp(&self, bytes: usize) -> u32 {
        u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.capacity)
    }

    /// Waits for `bytes` (or the whole budget, if larger).
    pub async fn acquire(&self, bytes: usize) -> BudgetPermit {
        let n = self.clamp(bytes);
        let permit = Arc::clone(&self.semaphore)
            .acquire_many_owned(n)
            .await
            .unwrap_or_else(|_| unreachable!("the budget semaphore is never closed"));
        BudgetPermit {
            _permit: permit,
            bytes,
        }
    }

    /// Takes `bytes` if free now.
    pub fn try_acquire(&self, bytes: usize) -> Option<BudgetPermit> {
        let n = self.clamp(bytes);
        Arc::clone(&self.semaphore)
            .try_acquire_many_owned(n)
            .ok()
            .map(|permit| BudgetPermit {
                _permit: permit,
                bytes,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn blocks_when_full_and_releases_on_drop() {
        let b = ByteBudget::new(1000);
        let p1 = b.acquire(600).await;
        assert_eq!(b.available(), 400);
        assert!(b.try_acquire(500).is_none());
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.acquire(500).await.bytes() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(p1);
        assert_eq!(waiter.await.unwrap(), 500);
        assert_eq!(b.available(), 1000);
    }

    #[tokio::test]
    async fn oversized_batch_is_admitted_alone() {
        let b = ByteBudget::new(1000);
        let small = b.acquire(10).await;
        assert!(b.try_acquire(5000).is_none(), "must wait for the others");
        drop(small);
        let big = b.try_acquire(5000).expect("admitted alone");
        assert_eq!(big.bytes(), 5000);
        assert_eq!(b.in_use(), 1000);
        assert!(b.try_acquire(1).is_none());
    }
}
