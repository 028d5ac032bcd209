//! What the store's handles, their futures and the writer thread share: the database (which
//! the writer may swap after a failure), the queue, the namespaces reads touched, the stats.

use std::collections::HashMap;
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::Database;

use crate::Stats;
use crate::error::Error;
use crate::format::{Location, Totals};
use crate::queue::Queue;

/// Reads note the namespaces they touch in memory; past this many distinct ones before the
/// writer takes them, further notes are dropped (a namespace read that often is touched again).
const TOUCHES_CAP: usize = 100_000;

/// The limits the writer enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_bytes: u64,
    pub(crate) namespace_quota: u64,
}

/// State shared by the store's handles, their futures, and the writer thread.
pub(crate) struct Shared {
    pub(crate) location: Location,
    /// `None` while the writer reopens the file after a failed write, and after shutdown.
    db: RwLock<Option<Arc<Database>>>,
    pub(crate) queue: Queue,
    /// Namespace → unix ms of the last read, not yet in its row.
    touches: Mutex<HashMap<String, u64>>,
    /// What the writer last published; `failed_writes` lives apart, callers add to it too.
    published: Mutex<Stats>,
    pub(crate) failed_writes: AtomicU64,
    limits: Limits,
    idle: Option<Duration>,
    window: Duration,
}

impl Shared {
    pub(crate) fn new(
        location: Location,
        db: Database,
        totals: Totals,
        limits: Limits,
        idle: Option<Duration>,
        window: Duration,
    ) -> Shared {
        Shared {
            location,
            db: RwLock::new(Some(Arc::new(db))),
            queue: Queue::new(),
            touches: Mutex::new(HashMap::new()),
            published: Mutex::new(totals_stats(&totals, Stats::default())),
            failed_writes: AtomicU64::new(0),
            limits,
            idle,
            window,
        }
    }

    /// The database, for a read.
    pub(crate) fn db(&self) -> Result<Arc<Database>, Error> {
        self.db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                Error::Unavailable(format!(
                    "{} is being reopened after a failed write; retry shortly",
                    self.location.describe()
                ))
            })
    }

    /// Notes a read of `ns` (written to its row with the next commit), if anyone collects
    /// idle namespaces.
    pub(crate) fn touch(&self, ns: &str) {
        if self.idle.is_none() {
            return;
        }
        let now = now_ms();
        let mut touches = self.touches.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = touches.get_mut(ns) {
            *at = now;
        } else if touches.len() < TOUCHES_CAP {
            touches.insert(ns.to_owned(), now);
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut stats = *self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        stats.failed_writes = self.failed_writes.load(Ordering::Relaxed);
        stats
    }

    /// The database for the writer to replace: readers get `Unavailable` until `put_db`.
    pub(crate) fn take_db(&self) -> Option<Arc<Database>> {
        self.db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    pub(crate) fn put_db(&self, db: Arc<Database>) {
        *self.db.write().unwrap_or_else(PoisonError::into_inner) = Some(db);
    }

    /// After a commit: the new totals, and what the commit did.
    pub(crate) fn publish(&self, totals: &Totals, commits: u64, ops: u64) {
        let mut stats = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *stats = totals_stats(totals, *stats);
        stats.commits += commits;
        stats.writes_batched += ops;
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    pub(crate) fn idle(&self) -> Option<Duration> {
        self.idle
    }

    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    pub(crate) fn take_touches(&self) -> HashMap<String, u64> {
        mem::take(&mut *self.touches.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts back touches a failed commit did not write.
    pub(crate) fn restore_touches(&self, old: HashMap<String, u64>) {
        let mut touches = self.touches.lock().unwrap_or_else(PoisonError::into_inner);
        for (ns, at) in old {
            let entry = touches.entry(ns).or_insert(at);
            *entry = (*entry).max(at);
        }
    }

    pub(crate) fn recently_touched(&self, ns: &str, cutoff_ms: u64) -> bool {
        let touches = self.touches.lock().unwrap_or_else(PoisonError::into_inner);
        touches.get(ns).is_some_and(|&at| at >= cutoff_ms)
    }
}

/// Unix time in milliseconds (0 if the clock is before 1970).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The totals' part of the stats, the counters kept from `prev`.
fn totals_stats(totals: &Totals, prev: Stats) -> Stats {
    Stats {
        bytes: totals.bytes,
        namespaces: totals.namespaces,
        keys: totals.keys,
        topics: totals.topics,
        history_records: totals.records,
        ..prev
    }
}
