//! The writer thread's inbox: operations in the order they were queued, bounded.
//!
//! Two bounds, because the two kinds of writer differ in what they may do when the disk is
//! behind. Key-value writes take permits from a semaphore (one per operation plus one per 4 KiB
//! of value) and, when none are left, wait for the writer to take ops out: a guest's write
//! slows down to the disk's pace instead of failing. History appends must never hold up live
//! delivery, so past their own cap they are dropped and counted.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::HistoryRecord;
use crate::error::Error;

/// Permits for queued key-value writes: 8,192 one-op permits, or about 32 MiB of values.
pub(crate) const KV_PERMITS: u32 = 8192;
/// Bytes of value one permit stands for.
const PERMIT_BYTES: usize = 4096;
/// History ops queued at most; more are dropped and counted in `Stats::failed_writes`.
pub(crate) const HISTORY_QUEUED_OPS: usize = 65_536;
/// History payload bytes queued at most (same fate past it).
pub(crate) const HISTORY_QUEUED_BYTES: usize = 64 << 20;
/// One transaction takes at most this many operations …
const BATCH_OPS: usize = 1024;
/// … or this many bytes of values and payloads (but always at least one operation).
const BATCH_BYTES: usize = 4 << 20;

/// Where the writer sends one operation's answer.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// One write, as queued.
pub(crate) enum Op {
    Set {
        ns: String,
        key: String,
        value: Vec<u8>,
        ttl: Option<Duration>,
        reply: Reply<()>,
    },
    Delete {
        ns: String,
        key: String,
        reply: Reply<bool>,
    },
    Increment {
        ns: String,
        key: String,
        delta: i64,
        reply: Reply<i64>,
    },
    CompareAndSwap {
        ns: String,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl: Option<Duration>,
        reply: Reply<bool>,
    },
    HistoryAppend {
        topic: String,
        record: HistoryRecord,
    },
    HistoryTrim {
        topic: String,
        epoch: u64,
        first_kept_offset: u64,
    },
    HistoryDrop {
        topic: String,
    },
    /// Answered once everything queued before it is committed.
    Flush {
        reply: Reply<()>,
    },
}

impl Op {
    /// Bytes this op brings into memory (what the batch and history caps count).
    fn bytes(&self) -> usize {
        match self {
            Op::Set { value, .. } => value.len(),
            Op::CompareAndSwap { expected, new, .. } => {
                expected.as_ref().map_or(0, Vec::len) + new.as_ref().map_or(0, Vec::len)
            }
            Op::HistoryAppend { record, .. } => record.payload.len(),
            _ => 0,
        }
    }

    fn is_history(&self) -> bool {
        matches!(
            self,
            Op::HistoryAppend { .. } | Op::HistoryTrim { .. } | Op::HistoryDrop { .. }
        )
    }

    /// Permits a key-value op of `bytes` takes (history and flush take none).
    pub(crate) fn permits(bytes: usize) -> u32 {
        1 + u32::try_from(bytes / PERMIT_BYTES)
            .unwrap_or(KV_PERMITS - 1)
            .min(KV_PERMITS - 1)
    }
}

/// An op in the queue, holding its permits until the writer takes it out.
pub(crate) struct Queued {
    pub(crate) op: Op,
    at: Instant,
    _permit: Option<OwnedSemaphorePermit>,
}

struct State {
    items: VecDeque<Queued>,
    /// Bytes of all queued ops (see `Op::bytes`).
    bytes: usize,
    history_ops: usize,
    history_bytes: usize,
    closed: bool,
}

/// The queue shared by the store's handles (which push) and the writer thread (which takes).
pub(crate) struct Queue {
    state: Mutex<State>,
    wake: Condvar,
    permits: Arc<Semaphore>,
}

/// A push that did not queue: the store is closing, or history is past its cap. The op is
/// dropped (a waiter sees its reply channel closed).
#[derive(Debug)]
pub(crate) struct Refused;

/// What [`Queue::take`] found.
pub(crate) enum Taken {
    Batch(Vec<Queued>),
    /// Nothing arrived before the deadline.
    Idle,
    /// Closed and empty: the writer may stop.
    Closed,
}

impl Queue {
    pub(crate) fn new() -> Queue {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                history_ops: 0,
                history_bytes: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            permits: Arc::new(Semaphore::new(KV_PERMITS as usize)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Permits for a key-value op right now, if there are enough.
    pub(crate) fn try_permit(&self, n: u32) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_many_owned(n).ok()
    }

    /// Waits for permits (the queue is full of key-value writes).
    pub(crate) async fn permit(
        permits: Arc<Semaphore>,
        n: u32,
    ) -> Result<OwnedSemaphorePermit, Error> {
        permits.acquire_many_owned(n).await.map_err(|_| closed())
    }

    pub(crate) fn semaphore(&self) -> Arc<Semaphore> {
        self.permits.clone()
    }

    /// Queues an op. History ops past their cap are refused; key-value ops come with permits.
    pub(crate) fn push(&self, op: Op, permit: Option<OwnedSemaphorePermit>) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused);
        }
        if op.is_history() {
            let bytes = op.bytes();
            if state.history_ops >= HISTORY_QUEUED_OPS
                || state.history_bytes + bytes > HISTORY_QUEUED_BYTES
            {
                return Err(Refused);
            }
            state.history_ops += 1;
            state.history_bytes += bytes;
        }
        state.bytes += op.bytes();
        let was_empty = state.items.is_empty();
        state.items.push_back(Queued {
            op,
            at: Instant::now(),
            _permit: permit,
        });
        drop(state);
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Refuses every later push and lets the writer finish what is queued.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.permits.close();
        self.wake.notify_one();
    }

    /// Closes the queue and drops everything still in it (their waiters see the store closed);
    /// returns how many history ops were lost.
    pub(crate) fn close_and_drain(&self) -> u64 {
        self.close();
        let items = std::mem::take(&mut self.lock().items);
        items.iter().filter(|q| q.op.is_history()).count() as u64
    }

    /// Waits until something is queued (or `deadline`), then for the rest of the commit window
    /// counted from when the oldest op was queued, and takes one batch.
    pub(crate) fn take(&self, deadline: Instant, window: Duration) -> Taken {
        let mut state = self.lock();
        loop {
            if let Some(first) = state.items.front() {
                let ready_at = first.at + window;
                let now = Instant::now();
                // A whole batch is waiting: no point waiting out the window.
                let full = state.items.len() >= BATCH_OPS || state.bytes >= BATCH_BYTES;
                if state.closed || now >= ready_at || full {
                    break;
                }
                state = self.wait(state, ready_at - now);
            } else if state.closed {
                return Taken::Closed;
            } else {
                let now = Instant::now();
                if now >= deadline {
                    return Taken::Idle;
                }
                state = self.wait(state, deadline - now);
            }
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(next) = state.items.front() {
            let size = next.op.bytes();
            if !batch.is_empty() && (batch.len() >= BATCH_OPS || bytes + size > BATCH_BYTES) {
                break;
            }
            bytes += size;
            let Some(item) = state.items.pop_front() else {
                break;
            };
            if item.op.is_history() {
                state.history_ops -= 1;
                state.history_bytes -= size;
            }
            batch.push(item);
        }
        Taken::Batch(batch)
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>, timeout: Duration) -> MutexGuard<'a, State> {
        match self.wake.wait_timeout(state, timeout) {
            Ok((state, _)) => state,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }
}

/// The answer to an op the store could not queue because it is closing.
pub(crate) fn closed() -> Error {
    Error::Unavailable("the store is shutting down; nothing was written".to_owned())
}

/// Takes an op's reply out so the writer can answer it after the commit.
pub(crate) enum Answer {
    Unit(Reply<()>, Result<(), Error>),
    Bool(Reply<bool>, Result<bool, Error>),
    Int(Reply<i64>, Result<i64, Error>),
}

impl Answer {
    /// Sends the answer (a caller that stopped waiting is no error).
    pub(crate) fn send(self) {
        match self {
            Answer::Unit(reply, r) => drop(reply.send(r)),
            Answer::Bool(reply, r) => drop(reply.send(r)),
            Answer::Int(reply, r) => drop(reply.send(r)),
        }
    }

    /// Replaces the answer with a failure: the transaction holding it did not commit.
    pub(crate) fn fail(self, e: &Error) {
        match self {
            Answer::Unit(reply, _) => drop(reply.send(Err(e.clone()))),
            Answer::Bool(reply, _) => drop(reply.send(Err(e.clone()))),
            Answer::Int(reply, _) => drop(reply.send(Err(e.clone()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flush() -> Op {
        Op::Flush {
            reply: oneshot::channel().0,
        }
    }

    fn append(len: usize) -> Op {
        let record = HistoryRecord {
            epoch: 0,
            offset: 0,
            at_ms: 0,
            binary: false,
            payload: vec![0; len].into(),
        };
        Op::HistoryAppend {
            topic: "t".to_owned(),
            record,
        }
    }

    fn batch(queue: &Queue, window: Duration) -> Vec<Queued> {
        match queue.take(Instant::now() + Duration::from_secs(5), window) {
            Taken::Batch(batch) => batch,
            Taken::Idle => panic!("idle"),
            Taken::Closed => panic!("closed"),
        }
    }

    #[test]
    fn permits_grow_with_the_value() {
        assert_eq!(Op::permits(0), 1);
        assert_eq!(Op::permits(4095), 1);
        assert_eq!(Op::permits(4096), 2);
        assert_eq!(Op::permits(1 << 20), 257);
        assert_eq!(
            Op::permits(usize::MAX),
            KV_PERMITS,
            "never more than the semaphore has"
        );
    }

    #[test]
    fn a_batch_stops_at_its_op_and_byte_caps() {
        let queue = Queue::new();
        for _ in 0..BATCH_OPS + 5 {
            assert!(queue.push(flush(), None).is_ok());
        }
        assert_eq!(batch(&queue, Duration::ZERO).len(), BATCH_OPS);
        assert_eq!(batch(&queue, Duration::ZERO).len(), 5);
        for _ in 0..3 {
            assert!(queue.push(append(3 << 20), None).is_ok());
        }
        // Always at least one op, even one past the byte cap alone.
        assert_eq!(batch(&queue, Duration::ZERO).len(), 1);
    }

    #[test]
    fn the_window_waits_for_company_unless_a_batch_is_full() {
        let queue = Queue::new();
        assert!(queue.push(flush(), None).is_ok());
        let start = Instant::now();
        assert_eq!(batch(&queue, Duration::from_millis(50)).len(), 1);
        assert!(
            start.elapsed() >= Duration::from_millis(45),
            "{:?}",
            start.elapsed()
        );
        for _ in 0..2 {
            assert!(queue.push(append(3 << 20), None).is_ok());
        }
        let start = Instant::now();
        assert_eq!(batch(&queue, Duration::from_secs(10)).len(), 1);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "4 MiB queued is a batch"
        );
    }

    #[test]
    fn idle_until_the_deadline_then_closed() {
        let queue = Queue::new();
        let soon = Instant::now() + Duration::from_millis(10);
        assert!(matches!(queue.take(soon, Duration::ZERO), Taken::Idle));
        assert!(queue.push(flush(), None).is_ok());
        queue.close();
        assert!(queue.push(flush(), None).is_err(), "closed to new ops");
        // What was queued before the close is still taken, without waiting out the window.
        assert!(
            matches!(queue.take(soon, Duration::from_secs(10)), Taken::Batch(b) if b.len() == 1)
        );
        assert!(matches!(queue.take(soon, Duration::ZERO), Taken::Closed));
    }

    #[test]
    fn history_past_its_caps_is_refused() {
        let queue = Queue::new();
        for _ in 0..HISTORY_QUEUED_BYTES / (1 << 20) {
            assert!(queue.push(append(1 << 20), None).is_ok());
        }
        assert!(queue.push(append(1 << 20), None).is_err(), "byte cap");
        assert!(
            queue.push(flush(), None).is_ok(),
            "key-value ops have their own bound"
        );
        let queue = Queue::new();
        for _ in 0..HISTORY_QUEUED_OPS {
            assert!(queue.push(append(0), None).is_ok());
        }
        assert!(queue.push(append(0), None).is_err(), "op cap");
        assert_eq!(queue.close_and_drain(), HISTORY_QUEUED_OPS as u64);
    }
}
