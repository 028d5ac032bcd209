//! wsbox-store: the runner's embedded database for rooms that remember.
//!
//! Two things live in one [redb](https://www.redb.org) file, `store.redb` in `Config::dir`:
//! guests' **key-value namespaces** (get, set with TTL, delete, list by prefix, increment,
//! compare-and-swap), and the **persisted part of topics' history** (append, trim, drop, load
//! at start-up). Why redb and not SQLite: `benches/store-choice/README.md`.
//!
//! Reads run on the caller's thread against the last commit. Writes go to one writer thread,
//! which applies everything queued (up to 1,024 ops or 4 MiB) in one transaction and commits it
//! with fsync: one fsync for many writers (group commit). Writes arriving within
//! `Config::commit_window` of the oldest queued one share a transaction.
//!
//! # Durability
//!
//! - A key-value write is **acknowledged only once durable**: the future `set`, `delete`,
//!   `increment` and `compare_and_swap` return resolves after the transaction holding the write
//!   was committed with fsync (`Durability::Immediate`). A crash after the answer loses nothing;
//!   a crash before it may or may not have stored the write, never half of it.
//! - A **history** append, trim or drop is not waited for: it is committed with the writer's
//!   next transaction, so within `commit_window` plus one fsync (a few milliseconds on an idle
//!   disk; behind a full batch, that batch's commit too). A SIGKILL or power cut may lose the
//!   history queued in that last window, at most what the queue holds (65,536 ops or 64 MiB);
//!   nothing already committed is lost. `flush()` waits for all of it.
//! - Expired keys read as absent at once; the sweep that gives their bytes back, idle
//!   namespace collection, and the "last touched" times that reads note are committed without
//!   fsync when nothing else is written: a crash may bring back expired keys (still read as
//!   absent, swept again) or forget a touch (the namespace looks older by at most the time since).
//!
//! # Limits
//!
//! A key counts its key bytes, value bytes and [`ENTRY_OVERHEAD`]; a history record its topic,
//! payload and `ENTRY_OVERHEAD`. One namespace may hold `namespace_quota` bytes; everything
//! together `max_bytes`. A write that would pass either fails ([`Error::Quota`], [`Error::Full`])
//! and changes nothing; a history append that would pass `max_bytes` is dropped and counted in
//! [`Stats::failed_writes`].
//!
//! # Backpressure
//!
//! At most 8,192 key-value writes (fewer for large values: ~32 MiB) wait in the writer's
//! queue. When it is full, a write's future **waits** for room (it does not fail), so guests
//! slow down to the disk's pace. Writes are applied in the order they were queued; a write
//! that had to wait for room is queued when its future is first polled with room available.
//! History ops never wait: past their own cap they are dropped and counted in `failed_writes`,
//! so live delivery never blocks on the disk.

mod error;
mod format;
mod history;
mod kv;
mod queue;
mod shared;
mod writer;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

pub use crate::error::{Error, OpenError};
pub use crate::format::ENTRY_OVERHEAD;
use crate::format::{Location, Totals};
use crate::queue::{Op, Queue, Refused};
use crate::shared::{Limits, Shared};

/// The longest `Config::commit_window` taken.
const MAX_COMMIT_WINDOW: Duration = Duration::from_secs(1);

/// Where the store lives and what it may hold.
///
/// Build it with struct update syntax from [`Config::default`]:
/// `Config { dir: Some(dir), ..Config::default() }`.
#[derive(Clone, Debug)]
pub struct Config {
    /// `None`: in memory (redb's `InMemoryBackend`), for tests; `Some(dir)`: `dir/store.redb`
    /// (the directory is created, mode 0700, if absent).
    pub dir: Option<PathBuf>,
    /// Every byte the store holds (keys + values + history records, as counted by the store),
    /// all namespaces: `--data-max-bytes`. Default 1 GiB. Guards the disk against guests that
    /// only ever write.
    pub max_bytes: u64,
    /// Bytes one namespace may hold. Default 64 MiB. Keeps one room from taking the whole store.
    pub namespace_quota: u64,
    /// A namespace nobody read or wrote for this long is deleted (its keys gone). Default 7
    /// days; `None` keeps namespaces forever. Checked at most once a second.
    pub idle_namespace: Option<Duration>,
    /// Group commit: writes arriving within this window of the oldest queued one share one
    /// fsync'd transaction. Default 2 ms; longer batches more per fsync but delays every
    /// acknowledgement by up to the window. At most 1 s (a longer one is taken as 1 s), so that
    /// a typo cannot hold every write for minutes.
    pub commit_window: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            dir: None,
            max_bytes: 1 << 30,
            namespace_quota: 64 << 20,
            idle_namespace: Some(Duration::from_secs(7 * 24 * 3600)),
            commit_window: Duration::from_millis(2),
        }
    }
}

/// What the store holds and has done, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes held as the store counts them (see [`ENTRY_OVERHEAD`]), keys and history.
    pub bytes: u64,
    /// Namespaces with at least one key.
    pub namespaces: u64,
    /// Keys, including expired ones not swept yet.
    pub keys: u64,
    /// Topics with a stored log.
    pub topics: u64,
    /// History records stored.
    pub history_records: u64,
    /// History writes that were lost: queue full, store full, or their commit failed.
    pub failed_writes: u64,
    /// Transactions committed.
    pub commits: u64,
    /// Operations applied by those transactions (`writes_batched / commits`: the batching).
    pub writes_batched: u64,
}

/// One message of a topic's log.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRecord {
    /// The topic's epoch; an append of another epoch starts the topic's log over.
    pub epoch: u64,
    /// Position in the topic; records load in ascending offset order.
    pub offset: u64,
    /// When it was published, unix milliseconds.
    pub at_ms: u64,
    /// A binary (not text) message.
    pub binary: bool,
    pub payload: bytes::Bytes,
}

/// The store: cheap to clone (an `Arc` inside); the file closes when the last clone is dropped,
/// after everything queued is committed.
///
/// # Examples
///
/// ```
/// use wsbox_store::{Config, Store};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Store::open(Config::default())?; // dir: None, so in memory
/// let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     store.set("room-1", "topic", b"rust".to_vec(), None).await?;
///     assert_eq!(store.increment("room-1", "visits", 2).await?, 2);
///     assert_eq!(store.get("room-1", "topic")?, Some(b"rust".to_vec()));
///     assert_eq!(store.list("room-1", "", None, 10)?, ["topic", "visits"]);
///     Ok::<_, wsbox_store::Error>(())
/// })?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// The part whose drop (the last `Store`) stops the writer.
struct Inner {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.queue.close();
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            // The writer commits what is queued, then closes the file; a panic there has
            // already answered its waiters (see writer.rs), so there is nothing left to do.
            let _ = writer.join();
        }
    }
}

impl Store {
    /// Longest key, in bytes.
    pub const MAX_KEY: usize = 512;
    /// Longest value, in bytes (1 MiB).
    pub const MAX_VALUE: usize = 1 << 20;
    /// Longest namespace name, in bytes.
    pub const MAX_NAMESPACE: usize = 256;

    /// Opens (or creates) the store and starts its writer thread.
    pub fn open(config: Config) -> Result<Store, OpenError> {
        let location = Location::new(config.dir.as_deref());
        let db = format::open(&location)?;
        let path = || match &location {
            Location::File(path) => path.clone(),
            Location::Memory => PathBuf::from(":memory:"),
        };
        let totals: Totals = Totals::load(&db).map_err(|detail| OpenError::Corrupt {
            path: path(),
            detail,
        })?;
        let limits = Limits {
            max_bytes: config.max_bytes,
            namespace_quota: config.namespace_quota,
        };
        let shared = Arc::new(Shared::new(
            location.clone(),
            db,
            totals,
            limits,
            config.idle_namespace,
            config.commit_window.min(MAX_COMMIT_WINDOW),
        ));
        let writer =
            writer::spawn(shared.clone(), totals).map_err(|source| OpenError::Unreadable {
                path: path(),
                source,
            })?;
        Ok(Store {
            inner: Arc::new(Inner {
                shared,
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The value of `key` in namespace `ns`, as of the last commit; an expired key is absent.
    pub fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
        kv::check_key(ns, key)?;
        let value = kv::get(&*self.shared().db()?, ns, key, shared::now_ms())?;
        self.shared().touch(ns);
        Ok(value)
    }

    /// Sets `key` to `value`, expiring after `ttl` if given. Resolves once durable.
    pub fn set(
        &self,
        ns: &str,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static + use<> {
        let checked = kv::check_key(ns, key).and_then(|()| check_value(&value));
        let bytes = value.len();
        let (reply, answer) = oneshot::channel();
        let op = checked.map(|()| Op::Set {
            ns: ns.to_owned(),
            key: key.to_owned(),
            value,
            ttl,
            reply,
        });
        self.submit(op, bytes, answer)
    }

    /// Deletes `key`; resolves (once durable) to whether it was there (an expired key was not).
    pub fn delete(
        &self,
        ns: &str,
        key: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send + 'static + use<> {
        let checked = kv::check_key(ns, key);
        let (reply, answer) = oneshot::channel();
        let op = checked.map(|()| Op::Delete {
            ns: ns.to_owned(),
            key: key.to_owned(),
            reply,
        });
        self.submit(op, 0, answer)
    }

    /// Keys of `ns` starting with `prefix` (not expired), in byte order, strictly after
    /// `after`, at most `limit` of them (and at most 1,000). Page with `after` = the last key.
    pub fn list(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, Error> {
        kv::check_namespace(ns)?;
        let keys = kv::list(
            &*self.shared().db()?,
            ns,
            prefix,
            after,
            limit,
            shared::now_ms(),
        )?;
        self.shared().touch(ns);
        Ok(keys)
    }

    /// Adds `delta` to the decimal ASCII `i64` at `key` (absent: 0) and resolves, once durable,
    /// to the new value. The key keeps its expiry. A value that is not such a number fails with
    /// [`Error::NotANumber`], a result out of range with [`Error::Overflow`].
    pub fn increment(
        &self,
        ns: &str,
        key: &str,
        delta: i64,
    ) -> impl Future<Output = Result<i64, Error>> + Send + 'static + use<> {
        let checked = kv::check_key(ns, key);
        let (reply, answer) = oneshot::channel();
        let op = checked.map(|()| Op::Increment {
            ns: ns.to_owned(),
            key: key.to_owned(),
            delta,
            reply,
        });
        self.submit(op, 0, answer)
    }

    /// Sets `key` to `new` (`None`: deletes it, and `ttl` is unused) if its value is
    /// `expected` (`None`: if absent or expired). Resolves, once durable, to whether it swapped.
    pub fn compare_and_swap(
        &self,
        ns: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<bool, Error>> + Send + 'static + use<> {
        let checked =
            kv::check_key(ns, key).and_then(|()| new.as_deref().map_or(Ok(()), check_value));
        let bytes = expected.as_ref().map_or(0, Vec::len) + new.as_ref().map_or(0, Vec::len);
        let (reply, answer) = oneshot::channel();
        let op = checked.map(|()| Op::CompareAndSwap {
            ns: ns.to_owned(),
            key: key.to_owned(),
            expected,
            new,
            ttl,
            reply,
        });
        self.submit(op, bytes, answer)
    }

    /// Queues a record for `topic`'s log (see the crate docs for when it is durable). Never
    /// waits: if the queue or the store is full, the record is dropped and counted in
    /// [`Stats::failed_writes`].
    pub fn history_append(&self, topic: &str, record: HistoryRecord) {
        self.submit_history(Op::HistoryAppend {
            topic: topic.to_owned(),
            record,
        });
    }

    /// Queues dropping `topic`'s records below `first_kept_offset`, if the topic is still at
    /// `epoch` (a trim computed for an older epoch is ignored).
    pub fn history_trim(&self, topic: &str, epoch: u64, first_kept_offset: u64) {
        self.submit_history(Op::HistoryTrim {
            topic: topic.to_owned(),
            epoch,
            first_kept_offset,
        });
    }

    /// Queues dropping `topic`'s whole log.
    pub fn history_drop(&self, topic: &str) {
        self.submit_history(Op::HistoryDrop {
            topic: topic.to_owned(),
        });
    }

    /// `topic`'s committed log: its epoch and records, offsets ascending; `None` if it has none.
    pub fn history_load(&self, topic: &str) -> Result<Option<(u64, Vec<HistoryRecord>)>, Error> {
        history::load(&*self.shared().db()?, topic)
    }

    /// Every topic with a committed log, in byte order.
    pub fn history_topics(&self) -> Result<Vec<String>, Error> {
        history::topics(&*self.shared().db()?)
    }

    /// Counts as of the last commit (`failed_writes`: as of now).
    pub fn stats(&self) -> Stats {
        self.shared().stats()
    }

    /// Resolves once everything queued before it is committed (or its commit failed: then
    /// `Unavailable`). For tests and a clean shutdown.
    pub fn flush(&self) -> impl Future<Output = Result<(), Error>> + Send + 'static + use<> {
        let (reply, answer) = oneshot::channel();
        self.submit(Ok(Op::Flush { reply }), 0, answer)
    }

    /// Queues a key-value op (or flush), waiting for room if the queue is full; the future
    /// resolves to the writer's answer on `answer`, or at once to the op's own error.
    fn submit<T: Send + 'static>(
        &self,
        op: Result<Op, Error>,
        bytes: usize,
        answer: oneshot::Receiver<Result<T, Error>>,
    ) -> impl Future<Output = Result<T, Error>> + Send + 'static + use<T> {
        let shared = self.inner.shared.clone();
        let n = Op::permits(bytes);
        // Queued now if there is room, so that ops are applied in the order they were called.
        let pending = op.map(|op| match shared.queue.try_permit(n) {
            Some(permit) => match shared.queue.push(op, Some(permit)) {
                Ok(()) => None,
                Err(_) => Some(Err(queue::closed())),
            },
            None => Some(Ok(op)),
        });
        async move {
            match pending? {
                None => {}
                Some(Err(e)) => return Err(e),
                Some(Ok(op)) => {
                    let permit = Queue::permit(shared.queue.semaphore(), n).await?;
                    shared
                        .queue
                        .push(op, Some(permit))
                        .map_err(|_| queue::closed())?;
                }
            }
            drop(shared);
            answer.await.unwrap_or_else(|_| {
                Err(Error::Unavailable(
                    "the store's writer stopped before answering; see the runner's log".to_owned(),
                ))
            })
        }
    }

    fn submit_history(&self, op: Op) {
        match self.shared().queue.push(op, None) {
            Ok(()) => {}
            Err(Refused) => {
                self.shared()
                    .failed_writes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > Store::MAX_VALUE {
        Err(Error::TooLarge)
    } else {
        Ok(())
    }
}
