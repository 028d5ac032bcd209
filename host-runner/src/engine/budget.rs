//! `--memory-budget`: the linear memory of all live instances together. Each store's
//! [`Limiter`] takes what its memory grows by from the shared [`Budget`] and gives it all
//! back when the store is dropped (the connection hibernated or ended), so the sum of live
//! guest memory never passes the budget: a new instance that does not fit is refused (503),
//! a growth that does not fit waits for others to hibernate, up to its patience.
//!
//! When memory or instances run short, the budget is *squeezed*: every connection whose
//! instance is idle hibernates at once, so that live guests only ever wait for busy ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// The shared budget.
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
    /// Woken when memory is given back.
    freed: Notify,
    /// Woken when memory or instances run short: idle instances hibernate.
    squeezed: Notify,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
            freed: Notify::new(),
            squeezed: Notify::new(),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held by live instances.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    /// Takes `bytes`, waiting up to `patience` for others to give enough back.
    async fn take(&self, bytes: usize, patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            // Registered before the check, so that a release between the check and the
            // wait is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.try_take(bytes) {
                return true;
            }
            self.squeeze();
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return false;
            }
        }
    }

    /// Asks every idle instance to hibernate.
    pub fn squeeze(&self) {
        self.squeezed.notify_waiters();
    }

    /// Resolves at the next [`squeeze`](Self::squeeze) after it was first polled.
    pub fn squeezed(&self) -> tokio::sync::futures::Notified<'_> {
        self.squeezed.notified()
    }

    fn give_back(&self, bytes: usize) {
        if bytes > 0 {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
            self.freed.notify_waiters();
        }
    }
}

/// A growth the budget could not hold within the limiter's patience.
#[derive(Debug)]
pub struct OverBudget;

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the runner's --memory-budget is exhausted")
    }
}

impl std::error::Error for OverBudget {}

/// A growth past `--guest-memory`.
#[derive(Debug)]
pub struct OverLimit;

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "guest memory would exceed --guest-memory")
    }
}

impl std::error::Error for OverLimit {}

/// One store's share of the budget.
pub struct Limiter {
    budget: Arc<Budget>,
    /// `--guest-memory`.
    max: usize,
    /// Bytes this store's memories hold.
    held: usize,
    /// How long a growth may wait for the budget: none while instantiating (the
    /// connection gets a 503 at once), the call's time limit during calls.
    pub patience: Duration,
}

impl Limiter {
    pub fn new(budget: Arc<Budget>, max: usize) -> Self {
        Limiter {
            budget,
            max,
            held: 0,
            patience: Duration::ZERO,
        }
    }

    /// Bytes of linear memory this instance holds.
    pub fn held(&self) -> usize {
        self.held
    }
}

#[async_trait::async_trait]
impl wasmtime::ResourceLimiterAsync for Limiter {
    async fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Errors trap the guest, the same way a denied growth does with
        // `trap_on_grow_failure`: a Rust guest would otherwise abort with less to go on.
        if desired > self.max {
            return Err(OverLimit.into());
        }
        let more = desired.saturating_sub(current);
        if !self.budget.take(more, self.patience).await {
            return Err(OverBudget.into());
        }
        self.held += more;
        Ok(true)
    }

    async fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the pool's per-table limit.
        Ok(true)
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_growth_waits_for_memory_given_back() {
        let budget = Budget::new(100);
        let mut first = Limiter::new(budget.clone(), 1000);
        let mut second = Limiter::new(budget.clone(), 1000);
        second.patience = Duration::from_secs(5);
        use wasmtime::ResourceLimiterAsync;
        assert!(first.memory_growing(0, 80, None).await.is_ok());
        assert!(
            first.memory_growing(80, 1001, None).await.is_err(),
            "past --guest-memory"
        );
        let waiting = tokio::spawn(async move {
            let grown = second.memory_growing(0, 50, None).await.is_ok();
            (grown, second)
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(budget.used(), 80, "the second growth does not fit yet");
        drop(first);
        let (grown, second) = waiting.await.expect("no panic");
        assert!(grown);
        assert_eq!(budget.used(), 50);
        drop(second);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn an_impatient_growth_is_refused() {
        let budget = Budget::new(100);
        let mut limiter = Limiter::new(budget.clone(), 1000);
        use wasmtime::ResourceLimiterAsync;
        let error = limiter
            .memory_growing(0, 101, None)
            .await
            .expect_err("over");
        assert!(error.downcast_ref::<OverBudget>().is_some());
        assert_eq!(budget.used(), 0);
    }
}
