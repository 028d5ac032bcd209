//! Publishes to the other nodes waiting for the one task that writes them to NATS: bounded
//! by count (`--cluster-queue`) and by bytes (`--cluster-queue-bytes`), so that a slow link
//! holds no more than that; a publish that does not fit is dropped (the caller counts it).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

/// The publishers' side.
pub struct Queue {
    sender: mpsc::Sender<(String, Bytes)>,
    /// The bytes queued: subjects and payloads.
    held: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The writer's side.
pub struct Waiting {
    receiver: mpsc::Receiver<(String, Bytes)>,
    held: Arc<AtomicUsize>,
}

/// A queue of at most `count` publishes holding at most `bytes`.
pub fn new(count: usize, bytes: usize) -> (Queue, Waiting) {
    let (sender, receiver) = mpsc::channel(count.max(1));
    let held = Arc::new(AtomicUsize::new(0));
    let queue = Queue {
        sender,
        held: held.clone(),
        max_bytes: bytes,
    };
    (queue, Waiting { receiver, held })
}

fn size(subject: &str, payload: &Bytes) -> usize {
    subject.len() + payload.len()
}

impl Queue {
    /// Queues a publish; false (and dropped) if it does not fit, by count or by bytes.
    #[must_use]
    pub fn push(&self, subject: String, payload: Bytes) -> bool {
        let size = size(&subject, &payload);
        // Taken before the send, so that publishers at once never go past the bound together.
        let reserved = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                held.checked_add(size)
                    .filter(|&after| after <= self.max_bytes)
            })
            .is_ok();
        if !reserved {
            return false;
        }
        if self.sender.try_send((subject, payload)).is_err() {
            self.held.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        true
    }
}

impl Waiting {
    /// The next publish, in order; `None` once every [`Queue`] is gone.
    pub async fn pop(&mut self) -> Option<(String, Bytes)> {
        let (subject, payload) = self.receiver.recv().await?;
        self.held
            .fetch_sub(size(&subject, &payload), Ordering::Relaxed);
        Some((subject, payload))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[test]
    fn the_queue_is_bounded_by_bytes_as_well_as_by_count() {
        const KIB: usize = 1024;
        let subject = || "wsbox.t.dG9waWM".to_owned();
        let payload = Bytes::from(vec![7; KIB - subject().len()]);
        let (queue, mut waiting) = new(1000, 10 * KIB);
        let taken = (0..100)
            .filter(|_| queue.push(subject(), payload.clone()))
            .count();
        assert_eq!(
            taken, 10,
            "10 KiB hold 10 publishes of 1 KiB, of 1,000 by count"
        );
        assert!(!queue.push(subject(), Bytes::from(vec![0; 10 * KIB])));

        let (_, first) = waiting.pop().now_or_never().flatten().expect("queued");
        assert_eq!(first, payload);
        assert!(
            queue.push(subject(), payload.clone()),
            "one taken, one fits"
        );
        assert!(!queue.push(subject(), payload.clone()));
        while let Some(Some(_)) = waiting.pop().now_or_never() {}
        assert_eq!(queue.held.load(Ordering::Relaxed), 0);

        // The count still bounds small publishes.
        let (queue, _waiting) = new(3, 10 * KIB);
        let taken = (0..10)
            .filter(|_| queue.push(subject(), Bytes::new()))
            .count();
        assert_eq!(taken, 3);
    }
}
