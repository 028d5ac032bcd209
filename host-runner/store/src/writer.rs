//! The writer thread: owns every write transaction.
//!
//! It takes what is queued (one batch, see [`Queue::take`](crate::queue::Queue::take)),
//! applies it in queue order in one transaction, commits with fsync, and only then answers the
//! waiters, so an acknowledged write is on disk. Once a second (the tick) the same transaction
//! also deletes expired keys; now and then it collects idle namespaces; and it writes down the
//! namespaces that reads touched.
//!
//! A failed commit answers the whole batch with [`Error::Unavailable`]. redb refuses every
//! later operation on a database whose write failed, so the writer then closes and reopens the
//! file: readers see `Unavailable` for those few milliseconds, then the committed state again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use redb::{Database, Durability, Table, WriteTransaction};

use crate::error::{Error, Fail};
use crate::format::{self, EXPIRY, HISTORY, KV, Location, NAMESPACES, TOPICS, Totals};
use crate::queue::{Answer, Op, Taken};
use crate::shared::{Limits, Shared, now_ms};
use crate::{history, kv};

/// How often expired keys are swept.
const TICK: Duration = Duration::from_secs(1);
/// Idle namespaces are looked for every eighth of `Config::idle_namespace` (so one is deleted
/// at most 12.5% late), but not more often than every tick nor less than every minute: the look
/// reads every namespace's row.
const COLLECT_MAX_INTERVAL: Duration = Duration::from_secs(60);
/// How long a reopen waits for reads in flight to let go of the failed database.
const REOPEN_WAIT: Duration = Duration::from_secs(5);

/// The tables of one write transaction, and the running totals it changes.
pub(crate) struct Txn<'t> {
    pub(crate) kv: Table<'t, (&'static str, &'static str), &'static [u8]>,
    pub(crate) expiry: Table<'t, (u64, &'static str, &'static str), ()>,
    pub(crate) namespaces: Table<'t, &'static str, (u64, u64, u64)>,
    pub(crate) topics: Table<'t, &'static str, (u64, u64, u64)>,
    pub(crate) history: Table<'t, (&'static str, u64), &'static [u8]>,
    pub(crate) totals: Totals,
    pub(crate) limits: Limits,
    pub(crate) now_ms: u64,
}

impl<'t> Txn<'t> {
    fn open(
        tx: &'t WriteTransaction,
        totals: Totals,
        limits: Limits,
        now_ms: u64,
    ) -> Result<Txn<'t>, Fail> {
        Ok(Txn {
            kv: tx.open_table(KV)?,
            expiry: tx.open_table(EXPIRY)?,
            namespaces: tx.open_table(NAMESPACES)?,
            topics: tx.open_table(TOPICS)?,
            history: tx.open_table(HISTORY)?,
            totals,
            limits,
            now_ms,
        })
    }
}

/// Starts the writer thread.
pub(crate) fn spawn(shared: Arc<Shared>, totals: Totals) -> std::io::Result<JoinHandle<()>> {
    let writer = Writer {
        shared,
        totals,
        next_tick: Instant::now() + TICK,
        next_collect: Instant::now() + TICK,
        nondurable: false,
        reopen_error: None,
    };
    thread::Builder::new()
        .name("wsbox-store-writer".to_owned())
        .spawn(move || writer.run())
}

struct Writer {
    shared: Arc<Shared>,
    totals: Totals,
    next_tick: Instant,
    next_collect: Instant,
    /// A commit without fsync (maintenance only) happened since the last fsync'd one.
    nondurable: bool,
    /// Why the last reopen failed, while the database is closed.
    reopen_error: Option<String>,
}

/// The periodic work a transaction also does.
#[derive(Clone, Copy, Default)]
struct Chores {
    /// Delete expired keys.
    sweep: bool,
    /// Delete idle namespaces.
    collect: bool,
}

/// What applying one batch came to.
struct Outcome {
    answers: Vec<Answer>,
    history_ops: u64,
    history_refused: u64,
    ops: u64,
}

impl Writer {
    fn run(mut self) {
        // If this thread panics, the queue's waiters are answered (their senders dropped)
        // instead of waiting forever.
        let _guard = DrainOnExit(self.shared.clone());
        loop {
            let taken = self.shared.queue.take(self.next_tick, self.shared.window());
            let chores = self.chores_due();
            match taken {
                Taken::Closed => break,
                Taken::Idle => self.commit(Vec::new(), chores),
                // Taking the ops out of their `Queued` releases their permits.
                Taken::Batch(batch) => {
                    self.commit(batch.into_iter().map(|q| q.op).collect(), chores)
                }
            }
        }
        self.shutdown();
    }

    /// Which periodic work is due now (and when it is next).
    fn chores_due(&mut self) -> Chores {
        let now = Instant::now();
        let mut chores = Chores::default();
        if now >= self.next_tick {
            chores.sweep = true;
            self.next_tick = now + TICK;
        }
        if let Some(idle) = self.shared.idle()
            && now >= self.next_collect
        {
            chores.collect = true;
            self.next_collect = now + (idle / 8).clamp(TICK, COLLECT_MAX_INTERVAL);
        }
        chores
    }

    /// Applies `ops` (and the chores) in one transaction, commits, answers.
    fn commit(&mut self, ops: Vec<Op>, chores: Chores) {
        if ops.is_empty() && !chores.sweep && !chores.collect {
            return;
        }
        let db = match self.shared.db() {
            Ok(db) => db,
            Err(_) => {
                self.reopen();
                match self.shared.db() {
                    Ok(db) => db,
                    Err(_) => {
                        let why = self.reopen_error.clone().unwrap_or_default();
                        let e = Error::Unavailable(format!(
                            "{} could not be reopened after a failed write ({why}); \
                             nothing was written",
                            self.shared.location.describe()
                        ));
                        let skipped = skipped(ops);
                        self.shared
                            .failed_writes
                            .fetch_add(skipped.history_ops, Ordering::Relaxed);
                        fail(skipped.answers, &e);
                        return;
                    }
                }
            }
        };
        let durable = !ops.is_empty();
        let touches = self.shared.take_touches();
        let mut totals = self.totals;
        let mut outcome = Outcome {
            answers: Vec::with_capacity(ops.len()),
            history_ops: 0,
            history_refused: 0,
            ops: 0,
        };
        let result = self.apply(&db, ops, chores, &touches, &mut totals, &mut outcome);
        drop(db);
        match result {
            Ok(changed) => {
                if changed && !durable {
                    self.nondurable = true;
                } else if durable {
                    self.nondurable = false;
                }
                self.totals = totals;
                self.shared
                    .failed_writes
                    .fetch_add(outcome.history_refused, Ordering::Relaxed);
                self.shared
                    .publish(&totals, u64::from(changed || durable), outcome.ops);
                for answer in outcome.answers {
                    answer.send();
                }
            }
            Err(why) => {
                self.shared.restore_touches(touches);
                let e = Error::Unavailable(format!(
                    "the write to {} failed ({why}); nothing in its batch was stored. \
                     Check free disk space and permissions there",
                    self.shared.location.describe()
                ));
                self.shared
                    .failed_writes
                    .fetch_add(outcome.history_ops, Ordering::Relaxed);
                fail(outcome.answers, &e);
                self.reopen();
            }
        }
    }

    /// The transaction itself. `Ok(false)`: nothing to commit (an idle tick that found no
    /// work); `Err`: nothing was stored. Every op's answer lands in `outcome` either way.
    fn apply(
        &self,
        db: &Database,
        ops: Vec<Op>,
        chores: Chores,
        touches: &HashMap<String, u64>,
        totals: &mut Totals,
        outcome: &mut Outcome,
    ) -> Result<bool, String> {
        let durable = !ops.is_empty();
        let mut tx = match db.begin_write() {
            Ok(tx) => tx,
            Err(e) => {
                *outcome = skipped(ops);
                return Err(e.to_string());
            }
        };
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        // Only refused for multi-process modes and persistent savepoints, neither used here.
        if let Err(e) = tx.set_durability(durability) {
            *outcome = skipped(ops);
            return Err(e.to_string());
        }
        let mut broken: Option<String> = None;
        let mut changed = durable;
        {
            let mut t = match Txn::open(&tx, *totals, self.shared.limits(), now_ms()) {
                Ok(t) => t,
                Err(e) => {
                    *outcome = skipped(ops);
                    return Err(fail_text(e));
                }
            };
            let trims = last_trims(&ops);
            for (mut op, trim) in ops.into_iter().zip(trims) {
                outcome.ops += 1;
                if let Op::HistoryTrim {
                    first_kept_offset, ..
                } = &mut op
                {
                    match trim {
                        Some(offset) => *first_kept_offset = offset,
                        // A later trim of the batch does its work.
                        None => {
                            record_skipped(op, outcome);
                            continue;
                        }
                    }
                }
                if let Err(e) = apply_op(&mut t, op, outcome, broken.is_some()) {
                    broken.get_or_insert(e);
                }
            }
            if broken.is_none() {
                match self.maintain(&mut t, chores, touches) {
                    Ok(did) => changed |= did,
                    Err(e) => broken = Some(e),
                }
            }
            *totals = t.totals;
        }
        if let Some(why) = broken {
            return Err(why);
        }
        if !changed {
            tx.abort().map_err(|e| e.to_string())?;
            return Ok(false);
        }
        tx.commit().map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// The touches reads noted, and the chores; whether that changed anything.
    fn maintain(
        &self,
        t: &mut Txn<'_>,
        chores: Chores,
        touches: &HashMap<String, u64>,
    ) -> Result<bool, String> {
        let mut changed = !touches.is_empty();
        kv::write_touches(t, touches).map_err(fail_text)?;
        if chores.sweep {
            changed |= kv::sweep_expired(t).map_err(fail_text)? > 0;
        }
        if let Some(idle) = self.shared.idle()
            && chores.collect
        {
            let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
            let cutoff = t.now_ms.saturating_sub(idle_ms);
            let shared = &self.shared;
            changed |= kv::collect_idle(t, cutoff, |ns| shared.recently_touched(ns, cutoff))
                .map_err(fail_text)?
                > 0;
        }
        Ok(changed)
    }

    /// Closes the failed database and opens the file again (a file store only: an in-memory
    /// one has nothing to reopen).
    fn reopen(&mut self) {
        let Location::File(_) = self.shared.location else {
            return;
        };
        if let Some(mut old) = self.shared.take_db() {
            // Readers hold the Arc for one read at most.
            let deadline = Instant::now() + REOPEN_WAIT;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(still) if Instant::now() < deadline => {
                        old = still;
                        thread::sleep(Duration::from_millis(1));
                    }
                    Err(still) => {
                        self.shared.put_db(still);
                        self.reopen_error = Some("reads kept the failed database open".to_owned());
                        return;
                    }
                }
            }
        }
        let opened = format::open(&self.shared.location)
            .map_err(|e| e.to_string())
            .and_then(|db| Totals::load(&db).map(|totals| (db, totals)));
        match opened {
            Ok((db, totals)) => {
                self.totals = totals;
                self.reopen_error = None;
                self.shared.put_db(Arc::new(db));
            }
            Err(e) => self.reopen_error = Some(e),
        }
    }

    /// After the last handle: writes the touches reads noted, makes the commits without fsync
    /// durable, then closes the file so that the next `Store::open` of the directory finds it
    /// unlocked.
    fn shutdown(&mut self) {
        self.commit(
            Vec::new(),
            Chores {
                sweep: true,
                collect: false,
            },
        );
        if self.nondurable
            && let Ok(db) = self.shared.db()
            && let Ok(mut tx) = db.begin_write()
            && tx.set_durability(Durability::Immediate).is_ok()
        {
            let _ = tx.commit();
        }
        drop(self.shared.take_db());
    }
}

/// For each trim in `ops`, the offset to trim from, or `None` when a later trim of the same
/// topic and epoch in the batch does its work (`None` for other ops too). A publish trims
/// its topic's stored log each time the log in memory drops its oldest message (every
/// publish, once the log is full); within a batch only the last trim of a topic and epoch
/// is applied, from the highest offset of them all (offsets only grow within an epoch, and
/// a trim of another epoch is ignored): one range delete instead of one per message.
fn last_trims(ops: &[Op]) -> Vec<Option<u64>> {
    let mut last: HashMap<(&str, u64), (usize, u64)> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Op::HistoryTrim {
            topic,
            epoch,
            first_kept_offset,
        } = op
        {
            let trim = last.entry((topic.as_str(), *epoch)).or_insert((i, 0));
            *trim = (i, trim.1.max(*first_kept_offset));
        }
    }
    let mut trims = vec![None; ops.len()];
    for (i, offset) in last.into_values() {
        trims[i] = Some(offset);
    }
    trims
}

/// Applies one op, recording its answer. Once the batch is `broken` (a storage failure), ops
/// are only recorded, to be answered with the failure.
fn apply_op(t: &mut Txn<'_>, op: Op, outcome: &mut Outcome, broken: bool) -> Result<(), String> {
    if broken {
        record_skipped(op, outcome);
        return Ok(());
    }
    fn split<T>(r: Result<T, Fail>) -> (Result<T, Error>, Option<String>) {
        match r {
            Ok(v) => (Ok(v), None),
            Err(Fail::User(e)) => (Err(e), None),
            Err(Fail::Storage(why)) => (Err(Error::Unavailable(why.clone())), Some(why)),
        }
    }
    let storage = match op {
        Op::Set {
            ns,
            key,
            value,
            ttl,
            reply,
        } => {
            let (r, s) = split(kv::set(t, &ns, &key, &value, ttl));
            outcome.answers.push(Answer::Unit(reply, r));
            s
        }
        Op::Delete { ns, key, reply } => {
            let (r, s) = split(kv::delete(t, &ns, &key));
            outcome.answers.push(Answer::Bool(reply, r));
            s
        }
        Op::Increment {
            ns,
            key,
            delta,
            reply,
        } => {
            let (r, s) = split(kv::increment(t, &ns, &key, delta));
            outcome.answers.push(Answer::Int(reply, r));
            s
        }
        Op::CompareAndSwap {
            ns,
            key,
            expected,
            new,
            ttl,
            reply,
        } => {
            let r = kv::compare_and_swap(t, &ns, &key, expected.as_deref(), new.as_deref(), ttl);
            let (r, s) = split(r);
            outcome.answers.push(Answer::Bool(reply, r));
            s
        }
        Op::HistoryAppend { topic, record } => {
            outcome.history_ops += 1;
            match history::append(t, &topic, &record) {
                Ok(stored) => {
                    outcome.history_refused += u64::from(!stored);
                    None
                }
                Err(e) => Some(fail_text(e)),
            }
        }
        Op::HistoryTrim {
            topic,
            epoch,
            first_kept_offset,
        } => {
            outcome.history_ops += 1;
            history::trim(t, &topic, epoch, first_kept_offset)
                .err()
                .map(fail_text)
        }
        Op::HistoryDrop { topic } => {
            outcome.history_ops += 1;
            history::drop_topic(t, &topic).err().map(fail_text)
        }
        Op::Flush { reply } => {
            outcome.answers.push(Answer::Unit(reply, Ok(())));
            None
        }
    };
    storage.map_or(Ok(()), Err)
}

/// Records an op that will not be applied: its reply (to be failed later) or its history count.
fn record_skipped(op: Op, outcome: &mut Outcome) {
    // A placeholder: `fail` replaces it with the batch's error.
    fn e<T>() -> Result<T, Error> {
        Err(Error::Unavailable(String::new()))
    }
    match op {
        Op::Set { reply, .. } | Op::Flush { reply } => {
            outcome.answers.push(Answer::Unit(reply, e()))
        }
        Op::Delete { reply, .. } | Op::CompareAndSwap { reply, .. } => {
            outcome.answers.push(Answer::Bool(reply, e()))
        }
        Op::Increment { reply, .. } => outcome.answers.push(Answer::Int(reply, e())),
        Op::HistoryAppend { .. } | Op::HistoryTrim { .. } | Op::HistoryDrop { .. } => {
            outcome.history_ops += 1
        }
    }
}

/// The outcome of a batch none of which will be applied.
fn skipped(ops: Vec<Op>) -> Outcome {
    let mut outcome = Outcome {
        answers: Vec::with_capacity(ops.len()),
        history_ops: 0,
        history_refused: 0,
        ops: 0,
    };
    for op in ops {
        record_skipped(op, &mut outcome);
    }
    outcome
}

/// Answers every op of a batch that did not commit with `e`.
fn fail(answers: Vec<Answer>, e: &Error) {
    for answer in answers {
        answer.fail(e);
    }
}

fn fail_text(f: Fail) -> String {
    match f {
        Fail::User(e) => e.to_string(),
        Fail::Storage(why) => why,
    }
}

/// Closes the queue and drops what is left in it when the writer thread ends, however.
struct DrainOnExit(Arc<Shared>);

impl Drop for DrainOnExit {
    fn drop(&mut self) {
        let left = self.0.queue.close_and_drain();
        self.0.failed_writes.fetch_add(left, Ordering::Relaxed);
    }
}
