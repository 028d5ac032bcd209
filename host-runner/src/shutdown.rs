//! Graceful shutdown: SIGINT/SIGTERM stop the accept loop and tell every connection to
//! close (WebSockets with 1001); the connection permits tell when all are done.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

/// Sends the shutdown notice to every [`Shutdown`].
pub struct Trigger(watch::Sender<bool>);

/// A connection's view of the shutdown notice.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (Trigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (Trigger(sender), Shutdown(receiver))
}

impl Trigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// Resolves once shutdown has begun (at once if it already has).
    pub async fn wait(&mut self) {
        // An error means the trigger is gone, which only happens as the process exits.
        let _ = self.0.wait_for(|&fired| fired).await;
    }
}

/// Resolves on the first SIGINT or SIGTERM, with the signal's name.
pub async fn signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    })
}

/// Waits until every connection has returned its permit, or `timeout`; returns how many
/// were still open.
pub async fn drain(permits: &Arc<Semaphore>, total: usize, timeout: Duration) -> usize {
    let all = u32::try_from(total).unwrap_or(u32::MAX);
    match tokio::time::timeout(timeout, permits.acquire_many(all)).await {
        Ok(_) => 0,
        Err(_) => total - permits.available_permits(),
    }
}
