//! Topics that remember (`wit/rooms.wit`, interface `history`): each topic a guest turned
//! history on for keeps a [`Log`] of its last messages, every message published to it gets
//! the next [`Position`], and a subscription may start from a position ([`Replay`]).
//!
//! One lock per topic's log orders everything that touches the topic's positions: a
//! publish appends and delivers under it, and a replay that has caught up joins the
//! topic's live subscribers under it. So a subscriber gets every offset once, in order: a
//! message published before it joined is in the log when its replay reads it, one
//! published after was delivered to it live.
//!
//! What the logs hold are host bytes with bounds: a topic keeps at most its own
//! `max-messages` (at most `--history-max-messages`), `--history-topic-bytes`, and all
//! topics together `--history-max-bytes`; a message that does not fit trims its topic's
//! oldest first. The payloads kept are the guests' own (`last` returns them); the envelope
//! carrying the position is added as a message goes out ([`envelope`]).
//!
//! Every kept message is also written to the store (`--data-dir`), which commits within
//! its window (see `wsbox_store`): a topic enabled after a restart starts from what the
//! store kept. Its positions stay valid across a clean stop (the runner marks the store
//! so); after a crash the store may have lost the last few milliseconds of messages, whose
//! offsets would then be given again to others: the kept messages get a new epoch instead,
//! and a client resuming from the old one is told `gone` and reloads.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use wsbox::frame::Data;

use tracing::warn;

use crate::deflate::Outgoing;
use crate::metrics::METRICS;
use crate::peer::Peer;
use crate::registry::Registry;
use crate::settings::HistoryLimits as Limits;
use wsbox_store::{HistoryRecord, Store};

/// The store's namespace for the runner's own keys: guests' namespaces never start with
/// NUL (the store import refuses them).
pub const SYSTEM_NAMESPACE: &str = "\0wsbox";
/// Set at a clean stop, removed at start: whether the stored histories are whole.
const CLEAN_STOP: &str = "clean-stop";

/// What one kept message costs beside its payload (the entry, the deque's slot, the
/// allocation's header), counted against the bounds.
const ENTRY_OVERHEAD: usize = 64;

/// Where a message sits in its topic's history: the epoch changes whenever the history
/// starts anew; offsets count from 1 within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub epoch: u64,
    pub offset: u64,
}

impl Position {
    /// The epoch as the WIT `position` carries it: 16 lowercase hex digits.
    pub fn epoch_text(&self) -> String {
        format!("{:016x}", self.epoch)
    }

    /// The inverse of [`Self::epoch_text`]; `None` for anything else.
    pub fn parse_epoch(text: &str) -> Option<u64> {
        (text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| u64::from_str_radix(text, 16).ok())
            .flatten()
    }
}

/// How much one topic keeps, as its guest asked (already capped by the host's bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub max_messages: u32,
    /// `None`: no age bound.
    pub max_age: Option<Duration>,
}

/// Where a subscription starts (WIT `start`).
pub enum Start {
    After(Position),
    Last(u32),
}

/// Why a history call failed (WIT `history-error`, less what the caller checks itself).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Off,
    Gone,
}

/// A message as kept.
#[derive(Clone)]
pub struct Entry {
    pub offset: u64,
    at_ms: u64,
    pub kind: Data,
    pub payload: Bytes,
}

impl Entry {
    fn cost(&self) -> usize {
        self.payload.len() + ENTRY_OVERHEAD
    }
}

/// One topic's history.
pub struct Log {
    topic: Box<str>,
    epoch: u64,
    /// The offset the next message gets.
    next: u64,
    /// Kept messages, oldest first, offsets contiguous up to `next - 1`.
    entries: VecDeque<Entry>,
    bytes: usize,
    bounds: Bounds,
}

impl Log {
    fn new(topic: &str, bounds: Bounds) -> Self {
        Log {
            topic: topic.into(),
            epoch: new_epoch(),
            next: 1,
            entries: VecDeque::new(),
            bytes: 0,
            bounds,
        }
    }

    /// The last position given (offset 0 before the first message).
    pub fn head(&self) -> Position {
        Position {
            epoch: self.epoch,
            offset: self.next - 1,
        }
    }

    /// The offset of the oldest message kept (`next` when none is).
    fn first(&self) -> u64 {
        self.entries.front().map_or(self.next, |e| e.offset)
    }

    fn get(&self, offset: u64) -> Option<&Entry> {
        let index = offset.checked_sub(self.first())?;
        self.entries.get(usize::try_from(index).ok()?)
    }

    /// Drops the oldest message; returns the bytes it held.
    fn pop(&mut self) -> Option<usize> {
        let entry = self.entries.pop_front()?;
        self.bytes -= entry.cost();
        Some(entry.cost())
    }

    /// Drops what the bounds no longer allow: beyond the count, older than the age.
    fn trim(&mut self, now_ms: u64, freed: &mut usize) {
        while self.entries.len() > self.bounds.max_messages as usize {
            *freed += self.pop().unwrap_or(0);
        }
        if let Some(age) = self.bounds.max_age {
            let oldest = now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
            while self.entries.front().is_some_and(|e| e.at_ms < oldest) {
                *freed += self.pop().unwrap_or(0);
            }
        }
    }
}

type Shared = Arc<Mutex<Log>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is one step, so a poisoned lock is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A random epoch: a restarted history must not reuse the positions of a lost one.
fn new_epoch() -> u64 {
    let mut bytes = [0u8; 8];
    // Without randomness, the clock still tells epochs of one topic apart.
    if getrandom::fill(&mut bytes).is_err() {
        return now_ms();
    }
    u64::from_be_bytes(bytes)
}

/// Every topic's history on this runner.
pub struct Histories {
    limits: Limits,
    logs: Mutex<HashMap<Box<str>, Shared>>,
    /// Whether any topic has history: a publish to a topic without looks no further.
    any: AtomicBool,
    /// What all logs hold, against `limits.max_bytes`.
    bytes: AtomicUsize,
    store: Store,
    /// Whether the runner before this one stopped cleanly: its stored positions hold.
    clean: bool,
}

impl Histories {
    /// The histories of a runner whose store is `store`; `clean` as [`was_clean`] says.
    pub fn new(limits: Limits, store: Store, clean: bool) -> Self {
        Histories {
            limits,
            logs: Mutex::default(),
            any: AtomicBool::new(false),
            bytes: AtomicUsize::new(0),
            store,
            clean,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// What every log holds now.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Logs dropped `freed` bytes and took `added`.
    fn account(&self, freed: usize, added: usize) {
        self.bytes.fetch_add(added, Ordering::Relaxed);
        let now = self.bytes.fetch_sub(freed, Ordering::Relaxed) - freed;
        METRICS
            .history_bytes
            .set(i64::try_from(now).unwrap_or(i64::MAX));
    }

    /// Turns history on for `topic`, or changes its bounds (trimming at once).
    pub fn enable(&self, topic: &str, bounds: Bounds) {
        let bounds = Bounds {
            max_messages: bounds.max_messages.min(self.limits.max_messages),
            ..bounds
        };
        let known = lock(&self.logs).get(topic).cloned();
        let log = match known {
            Some(log) => log,
            None => {
                // Read from the store outside the map's lock; a log another call made
                // meanwhile wins, and what ours counted is given back.
                let restored = Arc::new(Mutex::new(self.restore(topic, bounds)));
                let log = lock(&self.logs)
                    .entry(topic.into())
                    .or_insert_with(|| restored.clone())
                    .clone();
                if !Arc::ptr_eq(&log, &restored) {
                    self.account(lock(&restored).bytes, 0);
                }
                log
            }
        };
        self.any.store(true, Ordering::Release);
        let mut log = lock(&log);
        log.bounds = bounds;
        let mut freed = 0;
        log.trim(now_ms(), &mut freed);
        self.account(freed, 0);
    }

    pub fn log(&self, topic: &str) -> Option<Shared> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.logs).get(topic).cloned()
    }

    pub fn head(&self, topic: &str) -> Result<Position, Refusal> {
        let log = self.log(topic).ok_or(Refusal::Off)?;
        Ok(lock(&log).head())
    }

    /// The last `n` messages kept, oldest first.
    pub fn last(&self, topic: &str, n: u32) -> Result<(u64, Vec<Entry>), Refusal> {
        let log = self.log(topic).ok_or(Refusal::Off)?;
        let mut log = lock(&log);
        let mut freed = 0;
        log.trim(now_ms(), &mut freed);
        self.account(freed, 0);
        let skip = log.entries.len().saturating_sub(n as usize);
        Ok((log.epoch, log.entries.iter().skip(skip).cloned().collect()))
    }

    /// Publishes to a topic with history: under its log's lock, gives `message` the next
    /// position, keeps it, wraps it in its envelope and delivers it to the topic's
    /// subscribers here (`skip` aside), as [`Registry::publish`] does. Returns the
    /// position and how many took it; `None` if the topic has no history.
    pub fn publish(
        &self,
        topic: &str,
        registry: &Registry,
        message: &mut Outgoing,
        skip: Option<&Arc<Peer>>,
        delivered: &mut Vec<Arc<Peer>>,
    ) -> Option<(Position, u32)> {
        let log = self.log(topic)?;
        let mut log = lock(&log);
        let now = now_ms();
        let (kind, payload) = message.parts();
        let entry = Entry {
            offset: log.next,
            at_ms: now,
            kind,
            payload: payload.clone(),
        };
        log.next += 1;
        let position = log.head();
        *message = Outgoing::new(kind, envelope(position, kind, &entry.payload));
        let first = log.first();
        let record = HistoryRecord {
            epoch: log.epoch,
            offset: entry.offset,
            at_ms: now,
            binary: kind == Data::Binary,
            payload: entry.payload.clone(),
        };
        if self.keep(&mut log, entry, now) {
            self.store.history_append(&log.topic, record);
        }
        if log.first() != first {
            self.store.history_trim(&log.topic, log.epoch, log.first());
        }
        let queued = registry.publish(topic, message, skip, delivered);
        Some((position, queued))
    }

    /// Keeps `entry` within the bounds: the topic's oldest go first. A message that does
    /// not fit even so (larger than a topic may hold, or the other topics hold the rest of
    /// `--history-max-bytes`) is not kept, and leaves its topic empty: what is kept stays
    /// contiguous up to the last offset given, so a replay from before it is `Gone`.
    /// Returns whether it was kept.
    fn keep(&self, log: &mut Log, entry: Entry, now: u64) -> bool {
        let cost = entry.cost();
        let mut freed = 0;
        log.trim(now, &mut freed);
        let total = self.bytes.load(Ordering::Relaxed);
        let full = |log: &Log, freed: usize| {
            log.entries.len() >= log.bounds.max_messages as usize
                || log.bytes + cost > self.limits.topic_bytes
                || total - freed + cost > self.limits.max_bytes
        };
        while full(log, freed) {
            match log.pop() {
                Some(bytes) => freed += bytes,
                None => break,
            }
        }
        if full(log, freed) {
            self.account(freed, 0);
            METRICS.history_unkept.inc();
            return false;
        }
        log.bytes += cost;
        self.account(freed, cost);
        log.entries.push_back(entry);
        true
    }

    /// `topic`'s log as the store kept it, within `bounds`; a new one if it kept none (or
    /// cannot be read: counted, and the history starts anew). After a crash the messages
    /// get a new epoch (see the module's docs), written back under it.
    fn restore(&self, topic: &str, bounds: Bounds) -> Log {
        let mut log = Log::new(topic, bounds);
        let stored = match self.store.history_load(topic) {
            Ok(stored) => stored,
            Err(error) => {
                warn!(topic, %error, "cannot read the topic's stored history: it starts anew");
                None
            }
        };
        let Some((epoch, records)) = stored.filter(|(_, records)| !records.is_empty()) else {
            return log;
        };
        let renumber = !self.clean;
        if !renumber {
            log.epoch = epoch;
            log.next = records.first().map_or(1, |r| r.offset);
        }
        let now = now_ms();
        for record in records {
            let entry = Entry {
                offset: log.next,
                at_ms: record.at_ms,
                kind: if record.binary {
                    Data::Binary
                } else {
                    Data::Text
                },
                payload: record.payload,
            };
            log.next += 1;
            if self.keep(&mut log, entry.clone(), now) && renumber {
                self.store.history_append(
                    topic,
                    HistoryRecord {
                        epoch: log.epoch,
                        offset: entry.offset,
                        at_ms: entry.at_ms,
                        binary: entry.kind == Data::Binary,
                        payload: entry.payload,
                    },
                );
            }
        }
        if renumber {
            self.store.history_trim(topic, log.epoch, log.first());
        }
        log
    }

    /// Where a subscription from `start` begins replaying; `Gone` for a position no longer
    /// kept (or of another epoch, or not given yet).
    pub fn replay(&self, topic: &str, start: Start) -> Result<(Replay, Position), Refusal> {
        let shared = self.log(topic).ok_or(Refusal::Off)?;
        let log = lock(&shared);
        let head = log.head();
        let next = match start {
            Start::After(position) => {
                let next = position.offset.saturating_add(1);
                if position.epoch != log.epoch || next < log.first() || next > log.next {
                    return Err(Refusal::Gone);
                }
                next
            }
            Start::Last(n) => log.next.saturating_sub(u64::from(n)).max(log.first()),
        };
        drop(log);
        let replay = Replay {
            topic: topic.into(),
            log: shared,
            next,
        };
        Ok((replay, head))
    }
}

/// Whether the runner that used `store` before stopped cleanly ([`mark_clean`]); the mark
/// is taken away, so that a crash of this runner is not taken for a clean stop.
pub async fn was_clean(store: &Store) -> Result<bool, wsbox_store::Error> {
    let clean = store.get(SYSTEM_NAMESPACE, CLEAN_STOP)?.is_some();
    if clean {
        store.delete(SYSTEM_NAMESPACE, CLEAN_STOP).await?;
    }
    Ok(clean)
}

/// At a clean stop, once nothing publishes: commits what is queued and marks the store,
/// unless some history was lost on the way (then the next runner starts new epochs).
pub async fn mark_clean(store: &Store) -> Result<(), wsbox_store::Error> {
    store.flush().await?;
    if store.stats().failed_writes > 0 {
        return Ok(());
    }
    store
        .set(SYSTEM_NAMESPACE, CLEAN_STOP, b"1".to_vec(), None)
        .await
}

/// A subscription catching up with its topic's history: the connection's task writes the
/// kept messages from `next` on as its backpressure allows ([`Replay::pump`]), then joins
/// the topic's live subscribers.
pub struct Replay {
    topic: Box<str>,
    log: Shared,
    next: u64,
}

/// What a [`Replay::pump`] step left.
#[derive(Debug, PartialEq, Eq)]
pub enum Pumped {
    /// Caught up: the connection is a live subscriber now.
    Joined,
    /// More to write once the connection's queue is below the mark again.
    More,
    /// The connection is closing: the replay is over.
    Closed,
}

impl Replay {
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes what is kept from `next` on into `peer`'s queue while it holds less than
    /// `mark` bytes; once caught up, subscribes `peer` to the topic in `registry`, under
    /// the log's lock, so that the next message reaches it live. Messages trimmed before
    /// they were written are skipped: the client sees the gap in offsets.
    pub fn pump(&mut self, peer: &Arc<Peer>, registry: &Registry, mark: usize) -> Pumped {
        let log = lock(&self.log);
        if self.next < log.first() {
            METRICS.history_skipped.add(log.first() - self.next);
            self.next = log.first();
        }
        while self.next < log.next {
            if peer.queued() >= mark {
                return Pumped::More;
            }
            let Some(entry) = log.get(self.next) else {
                break;
            };
            let position = Position {
                epoch: log.epoch,
                offset: entry.offset,
            };
            let mut outgoing =
                Outgoing::new(entry.kind, envelope(position, entry.kind, &entry.payload));
            match peer.deliver_paced(outgoing.frame(peer.form())) {
                Ok(_) => METRICS.history_replayed.inc(),
                Err(crate::peer::Refused::Closed) => return Pumped::Closed,
                // Over the connection's bound (a mark above it, or --host-memory): later.
                Err(crate::peer::Refused::Backpressure) => return Pumped::More,
            }
            self.next += 1;
        }
        registry.subscribe(&log.topic, peer);
        Pumped::Joined
    }
}

/// The message as it goes out of a topic with history, carrying its position (the
/// contract is in `wit/rooms.wit`): a JSON object gets a first member `"pos"`, other text
/// becomes `{"pos":…,"data":"…"}`, binary gets the offset and the epoch in front.
pub fn envelope(position: Position, kind: Data, payload: &[u8]) -> Bytes {
    if kind == Data::Binary {
        let mut out = BytesMut::with_capacity(16 + payload.len());
        out.put_u64(position.offset);
        out.put_u64(position.epoch);
        out.put_slice(payload);
        return out.freeze();
    }
    let pos = format!(
        "{{\"pos\":{{\"epoch\":\"{:016x}\",\"offset\":{}}}",
        position.epoch, position.offset
    );
    let mut out = BytesMut::with_capacity(pos.len() + payload.len() + 12);
    out.put_slice(pos.as_bytes());
    if let Some(rest) = payload.strip_prefix(b"{") {
        let empty =
            rest.iter().all(u8::is_ascii_whitespace) || rest.trim_ascii_start().starts_with(b"}");
        if !empty {
            out.put_u8(b',');
        }
        out.put_slice(rest);
    } else {
        out.put_slice(b",\"data\":");
        json_string(&mut out, payload);
        out.put_u8(b'}');
    }
    out.freeze()
}

/// `text` (UTF-8, as every text message is) as a JSON string.
fn json_string(out: &mut BytesMut, text: &[u8]) {
    out.put_u8(b'"');
    for &byte in text {
        match byte {
            b'"' => out.put_slice(b"\\\""),
            b'\\' => out.put_slice(b"\\\\"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b'\t' => out.put_slice(b"\\t"),
            0..=0x1f => out.put_slice(format!("\\u{byte:04x}").as_bytes()),
            _ => out.put_u8(byte),
        }
    }
    out.put_u8(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Position = Position {
        epoch: 0xab,
        offset: 7,
    };

    fn text(data: &str) -> String {
        String::from_utf8(envelope(P, Data::Text, data.as_bytes()).to_vec()).unwrap()
    }

    #[test]
    fn a_json_object_gets_its_position_first() {
        assert_eq!(
            text(r#"{"text":"hi"}"#),
            r#"{"pos":{"epoch":"00000000000000ab","offset":7},"text":"hi"}"#
        );
        assert_eq!(
            text("{}"),
            r#"{"pos":{"epoch":"00000000000000ab","offset":7}}"#
        );
        assert_eq!(
            text("{ }"),
            r#"{"pos":{"epoch":"00000000000000ab","offset":7} }"#
        );
    }

    #[test]
    fn other_text_becomes_a_json_string() {
        assert_eq!(
            text("say \"hi\"\n\u{1}é"),
            r#"{"pos":{"epoch":"00000000000000ab","offset":7},"data":"say \"hi\"\n\u0001é"}"#
        );
    }

    #[test]
    fn binary_gets_offset_and_epoch_in_front() {
        let out = envelope(P, Data::Binary, &[1, 2]);
        assert_eq!(out[..8], 7u64.to_be_bytes());
        assert_eq!(out[8..16], 0xabu64.to_be_bytes());
        assert_eq!(out[16..], [1, 2]);
    }

    #[test]
    fn epochs_read_back_as_written() {
        assert_eq!(Position::parse_epoch(&P.epoch_text()), Some(0xab));
        assert_eq!(Position::parse_epoch("AB"), None);
        assert_eq!(Position::parse_epoch("00000000000000AB"), None);
    }

    fn histories(max_messages: u32, topic_bytes: usize, max_bytes: usize) -> Histories {
        let store = Store::open(wsbox_store::Config::default()).expect("a store in memory");
        let limits = Limits {
            max_messages,
            topic_bytes,
            max_bytes,
        };
        let h = Histories::new(limits, store, true);
        h.enable(
            "t",
            Bounds {
                max_messages,
                max_age: None,
            },
        );
        h
    }

    fn publish(h: &Histories, registry: &Registry, len: usize) -> Position {
        let mut message = Outgoing::new(Data::Binary, Bytes::from(vec![0; len]));
        h.publish("t", registry, &mut message, None, &mut Vec::new())
            .unwrap()
            .0
    }

    #[test]
    fn offsets_are_contiguous_and_bounds_hold() {
        let registry = Registry::new(1);
        let h = histories(3, 10_000, 100_000);
        for offset in 1..=5 {
            assert_eq!(publish(&h, &registry, 10).offset, offset);
        }
        let (_, kept) = h.last("t", 10).unwrap();
        assert_eq!(kept.iter().map(|e| e.offset).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(h.bytes(), 3 * (10 + ENTRY_OVERHEAD));
        // Bytes per topic: each message is 1000 + 64, the topic holds 2100.
        let h = histories(100, 2_200, 100_000);
        for _ in 0..5 {
            publish(&h, &registry, 1_000);
        }
        assert_eq!(h.last("t", 10).unwrap().1.len(), 2);
        // Too large to keep: the log empties, the offset is given.
        assert_eq!(publish(&h, &registry, 5_000).offset, 6);
        assert!(h.last("t", 10).unwrap().1.is_empty());
        assert_eq!(h.bytes(), 0);
        assert_eq!(publish(&h, &registry, 10).offset, 7);
        assert_eq!(h.last("t", 10).unwrap().1[0].offset, 7);
    }

    #[test]
    fn a_position_no_longer_kept_is_gone() {
        let registry = Registry::new(1);
        let h = histories(2, 10_000, 100_000);
        let first = publish(&h, &registry, 1);
        for _ in 0..3 {
            publish(&h, &registry, 1);
        }
        // Kept: 3 and 4. After 2 is fine (3 is next), after 1 is gone.
        let after = |offset| Start::After(Position { offset, ..first });
        assert_eq!(h.replay("t", after(2)).unwrap().0.next, 3);
        assert_eq!(h.replay("t", after(4)).unwrap().0.next, 5);
        assert!(matches!(h.replay("t", after(1)), Err(Refusal::Gone)));
        assert!(matches!(h.replay("t", after(5)), Err(Refusal::Gone)));
        let other = Start::After(Position {
            epoch: first.epoch ^ 1,
            offset: 3,
        });
        assert!(matches!(h.replay("t", other), Err(Refusal::Gone)));
        assert_eq!(h.replay("t", Start::Last(10)).unwrap().0.next, 3);
        assert_eq!(h.replay("t", Start::Last(1)).unwrap().0.next, 4);
        assert!(matches!(h.replay("u", Start::Last(1)), Err(Refusal::Off)));
    }
}
