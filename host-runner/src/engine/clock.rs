//! The time limit of one guest call (`--guest-cpu`), counted without the time the call
//! spent yielded to other connections.

use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use wasmtime::UpdateDeadline;

use super::Fault;

/// How long the current guest call has held its connection: the time since it started,
/// less the time it spent yielded to other tasks. Shared by the store's epoch callback
/// (which bounds running) and the [`Guest`] (which bounds waiting in WASI).
#[derive(Clone)]
pub struct CallClock(Arc<ClockState>);

struct ClockState {
    limit: Duration,
    /// Nanoseconds since `base` at which the current call started.
    started: AtomicU64,
    /// Nanoseconds the current call spent yielded.
    yielded: AtomicU64,
    base: Instant,
}

impl CallClock {
    pub fn new(limit: Duration) -> Self {
        CallClock(Arc::new(ClockState {
            limit,
            started: AtomicU64::new(0),
            yielded: AtomicU64::new(0),
            base: Instant::now(),
        }))
    }

    fn now(&self) -> u64 {
        nanos(self.0.base.elapsed())
    }

    pub fn start(&self) {
        self.0.started.store(self.now(), Ordering::Relaxed);
        self.0.yielded.store(0, Ordering::Relaxed);
    }

    /// How long the current (or last) call has held its connection so far, yields
    /// excluded.
    pub fn held(&self) -> Duration {
        let held = self
            .now()
            .saturating_sub(self.0.started.load(Ordering::Relaxed))
            .saturating_sub(self.0.yielded.load(Ordering::Relaxed));
        Duration::from_nanos(held)
    }

    /// The time the current call has left.
    fn left(&self) -> Duration {
        self.0.limit.saturating_sub(self.held())
    }

    /// The epoch callback: the guest is running and a tick passed. Out of time, it traps;
    /// otherwise it yields to tokio until the next tick. `yield_now` (rather than waking
    /// itself) lets the worker run every other ready task and poll the I/O and timer
    /// drivers before the guest resumes.
    pub fn tick(&self) -> wasmtime::Result<UpdateDeadline> {
        if self.left().is_zero() {
            return Err(wasmtime::Error::new(OutOfTime));
        }
        let clock = self.clone();
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                let paused = clock.now();
                tokio::task::yield_now().await;
                let yielded = clock.now().saturating_sub(paused);
                clock.0.yielded.fetch_add(yielded, Ordering::Relaxed);
            }),
        ))
    }

    /// Runs a guest call, and drops it (unwinding the guest) if it waits in WASI past its
    /// time; running past it is the epoch callback's to catch.
    pub async fn bound<R>(
        &self,
        call: impl Future<Output = wasmtime::Result<R>>,
    ) -> Result<R, Fault> {
        let mut call = pin!(call);
        let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
        poll_fn(|cx| {
            loop {
                if let Poll::Ready(result) = call.as_mut().poll(cx) {
                    return Poll::Ready(result.map_err(Fault::from));
                }
                // Most calls finish in their first poll and never get here, nor a timer.
                let left = self.left();
                if left.is_zero() {
                    return Poll::Ready(Err(Fault::Cpu));
                }
                let deadline = tokio::time::Instant::now() + left;
                let timer =
                    timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                timer.as_mut().reset(deadline);
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
        })
        .await
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Raised into the guest by the epoch callback when its call is out of time.
#[derive(Debug)]
pub struct OutOfTime;

impl std::fmt::Display for OutOfTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the guest call ran out of time")
    }
}

impl std::error::Error for OutOfTime {}
