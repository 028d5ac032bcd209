//! The write side of one WebSocket, shared by everyone who may write to it: its own task
//! (its guest's sends, pongs, the close handshake) and other connections' guests
//! (`send-to`, `publish`), which run on whatever worker their own connection is on.
//!
//! A writer never waits. It writes straight into the socket when nothing is queued ahead
//! of it (one syscall, no wake-up of the owner — the common case of fan-out), and queues
//! the rest as shared [`Bytes`] (a publish's one frame, never copied per subscriber) for
//! the owner task to flush when the socket is writable. Writes happen under the outbox
//! lock, so frames from different writers interleave only at frame boundaries, and
//! nothing follows the close frame.
//!
//! Over TLS the outbox holds plaintext frames, shared like on plain TCP, and seals them
//! only when the socket can take them, [`SEAL_CHUNK`] at a time (under the lock, so that
//! records go out in the order they were sealed): a connection that does not read holds at
//! most one chunk of ciphertext, however much is published to it. A record once sealed is
//! always written whole, so that dropping a backlog never breaks the TLS stream.
//!
//! What waits is counted in bytes *and* entries ([`ENTRY_COST`] each), against
//! `--max-backpressure`: a flood of empty messages costs what it holds. A frame is refused
//! when what waits is not empty and the frame would take it past the bound, so at most one
//! message larger than the bound waits, alone.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{ErrorKind, IoSlice};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::cork::Frame;
use crate::deflate::Form;
use crate::id::Id;
use crate::metrics::METRICS;
use crate::transport::Transport;

thread_local! {
    /// Sealed frames on their way to a TLS socket: per worker thread, since what the socket
    /// does not take is copied into the queue.
    static SPARE_SEALED: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The close frame is out (or queued): nothing may follow it.
    Closed,
    /// More than `--max-backpressure` bytes are waiting: the frame was dropped.
    Backpressure,
}

/// The close code for a connection closed by `--close-on-backpressure`.
pub const POLICY_VIOLATION: u16 = 1008;

/// What one waiting entry costs beyond its bytes: its slot in the queue (an [`Entry`], 40
/// bytes, in a ring that may be twice as long as it is full). A small frame's own
/// allocation is rounded up by the allocator by less than that on average.
const ENTRY_COST: usize = 80;
/// Over TLS, plaintext is sealed this much at a time, when the socket can take it: what a
/// connection holds sealed and unwritten, and so most of what a `wss` connection holds
/// beyond its outbox. A little under a size class of jemalloc's, so that the records
/// ([`RECORD_OVERHEAD`] each) and `close_notify` fit it (at 64 KiB of plaintext the buffer
/// took the 80 KiB class). Measured with `scripts/bench-never-read.sh` (1,000 `wss`
/// subscribers that never read, 1 MiB each): RSS per subscriber 1,099 KiB at 64 KiB,
/// 1,085 KiB at 48 KiB − 512, 1,053 KiB at 16 KiB − 512; the bound is 1,088 KiB
/// (`--max-backpressure` + 64 KiB). Two records a write.
const SEAL_CHUNK: usize = 32 * 1024 - 512;
/// What TLS adds per record of up to 16 KiB (TLS 1.3: a 5-byte header, the content type and
/// a 16-byte tag; TLS 1.2's AES-GCM: header, 8-byte nonce, tag), rounded up.
const RECORD_OVERHEAD: usize = 32;
/// A queue ring longer than this is given back once it empties (a burst of small frames
/// leaves its slots behind otherwise).
const KEEP_SLOTS: usize = 64;

/// One WebSocket's socket and outbox.
pub struct Peer {
    pub id: Id,
    /// Set once hyper hands the upgraded socket back. Until then (between the guest's 101
    /// and the end of the HTTP phase) frames only queue: the connection is registered and
    /// subscribed as soon as its upgrade is accepted, so that nothing published after the
    /// client saw the 101 misses it.
    transport: OnceLock<Transport>,
    outbox: Mutex<Outbox>,
    /// Wakes the owner task: frames were queued, a close was requested, a write failed.
    wake: Notify,
    max_backpressure: usize,
    close_on_backpressure: bool,
    /// How messages reach this connection: compressed or not, as its handshake agreed.
    form: Form,
}

/// Bytes waiting in the queue: a frame, the rest of one, a large frame's header or
/// payload ([`Frame`]), or own frames the socket did not take.
struct Entry {
    bytes: Bytes,
    /// The frame goes on in the next entry (a large frame's header).
    continued: bool,
}

#[derive(Default)]
struct Outbox {
    /// Frames (or the unwritten rest of the first one) waiting for the socket: wire bytes
    /// on plain TCP, plaintext to be sealed over TLS.
    queue: VecDeque<Entry>,
    /// Over TLS: records sealed and not yet written (the rest of the last chunk).
    sealed: Bytes,
    /// Over TLS: `close_notify` is to be sealed once `queue` is.
    close_notify: bool,
    /// What waits, as counted against `--max-backpressure`: every byte of `queue` and
    /// `sealed`, and [`ENTRY_COST`] per entry of `queue`.
    queued: usize,
    /// The close frame has been written or queued.
    closed: bool,
    /// A write failed: the peer is gone.
    failed: bool,
    /// A close another connection (or the backpressure bound) asked for.
    close_request: Option<(u16, String)>,
    /// The close request is `--close-on-backpressure`'s: the backlog is dropped.
    overflowed: bool,
    /// Deliveries dropped for backpressure.
    dropped: u64,
    bytes_out: u64,
}

/// A larger sealing buffer (left by a large message) is freed rather than kept per thread.
const MAX_SPARE_SEALED: usize = 256 * 1024;

/// At most this many queued frames go to the kernel in one `writev`.
const MAX_SLICES: usize = 64;

impl Peer {
    pub fn new(id: Id, max_backpressure: usize, close_on_backpressure: bool, form: Form) -> Self {
        Peer {
            form,
            id,
            transport: OnceLock::new(),
            outbox: Mutex::new(Outbox::default()),
            wake: Notify::new(),
            max_backpressure,
            close_on_backpressure,
        }
    }

    /// Gives the peer its socket and writes what was queued before (sealed as it goes,
    /// over TLS).
    pub fn attach(&self, transport: Transport) -> std::io::Result<()> {
        // Only the connection's own task attaches, once.
        let _ = self.transport.set(transport);
        self.flush()
    }

    pub fn form(&self) -> Form {
        self.form
    }

    /// The transport, once attached. Only the connection's task calls this, after attaching.
    pub fn transport(&self) -> &Transport {
        self.transport
            .get()
            .expect("the connection task attaches the socket before using it")
    }

    /// The socket, once attached (see [`Self::transport`]).
    pub fn stream(&self) -> &TcpStream {
        self.transport().socket()
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        // A panic while holding the lock leaves the outbox consistent (every update is a
        // single step), so a poisoned lock is still usable.
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame from another connection (or a publish), subject to backpressure,
    /// without writing it: the sender writes every connection it delivered to once, when
    /// its callback returns ([`Self::flush_delivered`]), so that several messages to one
    /// connection go out in one write. `Ok(true)`: the queue was empty, the caller must
    /// flush it.
    pub fn deliver(&self, frame: &Frame) -> Result<bool, Refused> {
        self.queue(frame, true)
    }

    /// Queues a frame of a replay (`history`) as [`Self::deliver`] does, but a frame that
    /// does not fit is neither dropped nor counted: the replay waits for room instead.
    pub fn deliver_paced(&self, frame: &Frame) -> Result<bool, Refused> {
        self.queue(frame, false)
    }

    /// `drops`: a frame that does not fit is dropped (counted, and under
    /// `--close-on-backpressure` the connection closed); otherwise only refused.
    fn queue(&self, frame: &Frame, drops: bool) -> Result<bool, Refused> {
        let mut outbox = self.outbox();
        if outbox.closed {
            return Err(Refused::Closed);
        }
        // A large frame takes two entries: the second one's cost counts as its bytes.
        let len = frame.len() + (frame.parts().count() - 1) * ENTRY_COST;
        if let Err(over) = room(outbox.queued, len, self.max_backpressure) {
            if !drops {
                return Err(Refused::Backpressure);
            }
            outbox.dropped += 1;
            METRICS.dropped.inc();
            if over == Over::Connection && self.close_on_backpressure && !outbox.overflowed {
                outbox.overflowed = true;
                outbox.close_request = Some((POLICY_VIOLATION, "backpressure".to_owned()));
                self.wake.notify_one();
            }
            return Err(Refused::Backpressure);
        }
        let first = outbox.queued == 0;
        let mut parts = frame.parts().peekable();
        while let Some(part) = parts.next() {
            outbox.push_entry(part.clone(), parts.peek().is_some());
        }
        Ok(first)
    }

    /// Writes what a sender delivered (see [`Self::deliver`]); what the socket does not
    /// take is left to the owner, woken to wait until the socket is writable.
    pub fn flush_delivered(&self) {
        if self.flush().is_err() || self.queued() > 0 {
            self.wake.notify_one();
        }
    }

    /// Writes the connection's own frames (its guest's sends, pongs, close replies), given
    /// as slices in wire order. Never dropped: the owner paces its own reads instead.
    /// `close` marks the last of them.
    pub fn write_own(&self, parts: &[IoSlice<'_>], close: bool) {
        let mut outbox = self.outbox();
        if outbox.closed {
            return;
        }
        let total: usize = parts.iter().map(|part| part.len()).sum();
        if total > 0 || self.transport.get().is_some_and(Transport::wants_write) {
            self.write_or_queue(&mut outbox, parts, total);
        }
        outbox.closed |= close;
    }

    /// Writes what TLS sends by itself after reading (an alert, a key update's answer).
    pub fn write_transport(&self) {
        self.write_own(&[], false);
    }

    /// Queues TLS's `close_notify` behind everything else, the close frame included.
    pub fn seal_close(&self) {
        let Some(transport @ Transport::Tls(..)) = self.transport.get() else {
            return;
        };
        let mut outbox = self.outbox();
        if outbox.queued > 0 {
            outbox.close_notify = true;
            return;
        }
        let mut sealed = Vec::new();
        transport.seal_close(&mut sealed);
        let total = sealed.len();
        self.write_wire(&mut outbox, &[IoSlice::new(&sealed)], total);
    }

    /// [`Self::write_wire`], sealed first over TLS. Behind frames that wait, the parts
    /// wait too, as plaintext, to be sealed in their turn.
    fn write_or_queue(&self, outbox: &mut Outbox, parts: &[IoSlice<'_>], total: usize) {
        let Some(transport @ Transport::Tls(..)) = self.transport.get() else {
            return self.write_wire(outbox, parts, total);
        };
        if outbox.queued > 0 {
            if total > 0 {
                let mut plain = Vec::with_capacity(total);
                for part in parts {
                    plain.extend_from_slice(part);
                }
                outbox.push(Bytes::from(plain));
            }
            // What rustls has to send by itself goes with the next chunk.
            return;
        }
        let mut sealed = SPARE_SEALED.take();
        sealed.clear();
        transport.seal(parts, &mut sealed);
        let total = sealed.len();
        self.write_wire(outbox, &[IoSlice::new(&sealed)], total);
        if sealed.capacity() <= MAX_SPARE_SEALED {
            SPARE_SEALED.set(sealed);
        }
    }

    /// Writes `parts` (wire bytes) now if nothing waits ahead of them, and keeps what the
    /// socket did not take (one copy), waking the owner to flush it. Behind a queue they
    /// wait their turn: whoever made the queue non-empty flushes it.
    fn write_wire(&self, outbox: &mut Outbox, parts: &[IoSlice<'_>], total: usize) {
        if outbox.failed || total == 0 {
            return;
        }
        let mut written = 0;
        if outbox.queued == 0
            && let Some(stream) = self.transport.get().map(Transport::socket)
        {
            let result = match parts {
                [one] => stream.try_write(one),
                _ => stream.try_write_vectored(parts),
            };
            match result {
                Ok(n) => written = n,
                Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                Err(_) => {
                    outbox.failed = true;
                    self.wake.notify_one();
                    return;
                }
            }
            outbox.count_out(written);
            if written == total {
                return;
            }
            self.wake.notify_one();
        }
        let mut rest = Vec::with_capacity(total - written);
        let mut skip = written;
        for part in parts {
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            rest.extend_from_slice(&part[skip..]);
            skip = 0;
        }
        match self.transport.get() {
            // Wire bytes over TLS are sealed records: kept whole, apart from the queue.
            Some(Transport::Tls(..)) if outbox.queue.is_empty() && outbox.sealed.is_empty() => {
                outbox.hold(rest.len(), Held::Sealed);
                outbox.sealed = Bytes::from(rest);
            }
            _ => outbox.push(Bytes::from(rest)),
        }
    }

    /// Writes what waits until the socket would block (sealing it as it goes, over TLS).
    /// `Err` when the peer is gone.
    pub fn flush(&self) -> std::io::Result<()> {
        let Some(transport) = self.transport.get() else {
            return Ok(());
        };
        let stream = transport.socket();
        let tls = matches!(transport, Transport::Tls(..));
        let mut outbox = self.outbox();
        while outbox.queued > 0 && !outbox.failed {
            if tls && outbox.sealed.is_empty() {
                outbox.seal_chunk(transport);
                if outbox.sealed.is_empty() {
                    break;
                }
            }
            let result = if tls {
                stream.try_write(&outbox.sealed)
            } else {
                let slices: Vec<IoSlice<'_>> = outbox
                    .queue
                    .iter()
                    .take(MAX_SLICES)
                    .map(|entry| IoSlice::new(&entry.bytes))
                    .collect();
                stream.try_write_vectored(&slices)
            };
            match result {
                Ok(0) => outbox.failed = true,
                Ok(n) if tls => {
                    let _ = outbox.sealed.split_to(n);
                    outbox.release(n, Held::Sealed);
                    outbox.count_out(n);
                }
                Ok(n) => {
                    outbox.count_out(n);
                    outbox.consume(n);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(error) => {
                    outbox.failed = true;
                    return Err(error);
                }
            }
        }
        if outbox.failed {
            return Err(ErrorKind::BrokenPipe.into());
        }
        Ok(())
    }

    /// Counts a message of the connection's own guest dropped for backpressure.
    pub fn count_drop(&self) {
        self.outbox().dropped += 1;
        METRICS.dropped.inc();
    }

    /// Bytes waiting to be written.
    pub fn queued(&self) -> usize {
        self.outbox().queued
    }

    /// Whether the connection should stop reading from its client: more than half of
    /// `--max-backpressure` is waiting. Half, so that what the guest sends in answer to
    /// one more read still fits under the bound and its own replies are not dropped.
    pub fn should_pause_reading(&self) -> bool {
        self.queued() > self.max_backpressure / 2
    }

    pub fn failed(&self) -> bool {
        self.outbox().failed
    }

    /// Asks the owner to start the close handshake (`close-other`).
    pub fn request_close(&self, code: u16, reason: String) -> Result<(), Refused> {
        let mut outbox = self.outbox();
        if outbox.closed {
            return Err(Refused::Closed);
        }
        outbox.close_request.get_or_insert((code, reason));
        self.wake.notify_one();
        Ok(())
    }

    /// A close requested by another connection or the backpressure bound. For the latter,
    /// what is queued beyond the frame being written is dropped: a slow consumer gets its
    /// close frame without the backlog first.
    pub fn take_close_request(&self) -> Option<(u16, String)> {
        let mut outbox = self.outbox();
        let request = outbox.close_request.take()?;
        if outbox.overflowed {
            // Over TLS the queue is plaintext not sealed yet: all of it can go, and the
            // client still gets whole records. On plain TCP the first frame may be half
            // written: it stays (one entry, or a large frame's two).
            let keep = match self.transport.get() {
                Some(Transport::Tls(..)) => 0,
                _ => outbox
                    .queue
                    .iter()
                    .position(|entry| !entry.continued)
                    .map_or(0, |last| last + 1),
            };
            while outbox.queue.len() > keep {
                let Some(entry) = outbox.queue.pop_back() else {
                    break;
                };
                outbox.release(entry.bytes.len() + ENTRY_COST, Held::Outbox);
            }
        }
        Some(request)
    }

    /// Resolves when someone woke the owner (a permit is kept if it is not waiting).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// `(bytes written, deliveries dropped)`, for the close log line.
    pub fn totals(&self) -> (u64, u64) {
        let outbox = self.outbox();
        (outbox.bytes_out, outbox.dropped)
    }
}

/// What a byte the outbox holds is, for the process-wide count (`wsbox_host_bytes`).
#[derive(Clone, Copy)]
enum Held {
    /// Frames waiting (with their [`ENTRY_COST`]).
    Outbox,
    /// TLS records sealed and not yet written.
    Sealed,
}

/// `--host-memory`: what all connections together may hold (outboxes, sealed records,
/// unfinished inbound messages); past it frames for other connections are dropped (and
/// counted), as for a connection over its own bound, and a connection whose unfinished
/// message grows is closed with 1013.
static HOST_MEMORY: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Sets `--host-memory`, once at start.
pub fn limit_host_memory(bytes: usize) {
    HOST_MEMORY.store(bytes, Ordering::Relaxed);
}

/// What all connections hold now: outboxes, sealed records, unfinished inbound messages.
fn host_memory_held() -> usize {
    let held = METRICS
        .host_outbox
        .get()
        .saturating_add(METRICS.host_sealed.get())
        .saturating_add(METRICS.host_inbound.get());
    usize::try_from(held).unwrap_or(0)
}

/// A connection held `before` bytes of its client's input (an unfinished message, bytes
/// read past its rate) and holds `after` now; `Err` when that grew and what all connections
/// hold of their clients' input is past half of `--host-memory`, or all they hold together
/// past all of it (counted: `wsbox_host_refusals_total`). Half, so that unfinished messages
/// can never starve the outboxes: the frames for well-behaved connections keep the other
/// half.
pub fn hold_inbound(before: usize, after: usize) -> Result<(), Over> {
    if after == before {
        return Ok(());
    }
    if after < before {
        METRICS.host_inbound.sub((before - after) as u64);
        return Ok(());
    }
    METRICS.host_inbound.add((after - before) as u64);
    let bound = HOST_MEMORY.load(Ordering::Relaxed);
    let inbound = usize::try_from(METRICS.host_inbound.get()).unwrap_or(usize::MAX);
    if inbound > bound / 2 || host_memory_held() > bound {
        METRICS.host_refusals.inc();
        return Err(Over::Host);
    }
    Ok(())
}

/// Which bound a frame would take a connection past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// Its own `max` (`--max-backpressure`).
    Connection,
    /// `--host-memory`, all connections together (counted: `wsbox_host_refusals_total`).
    Host,
}

/// The one rule for what may wait for a connection that holds `held` bytes (as counted
/// here) under its `max`: a frame of `len` bytes fits if nothing waits, or if it and its
/// entry fit under `max`; and in either case if it fits under `--host-memory`.
pub fn room(held: usize, len: usize, max: usize) -> Result<(), Over> {
    let cost = len + ENTRY_COST;
    if host_memory_held().saturating_add(cost) > HOST_MEMORY.load(Ordering::Relaxed) {
        METRICS.host_refusals.inc();
        return Err(Over::Host);
    }
    if held > 0 && held + cost > max {
        return Err(Over::Connection);
    }
    Ok(())
}

impl Drop for Outbox {
    /// What a connection that ended still held is no longer held.
    fn drop(&mut self) {
        let sealed = self.sealed.len();
        let waiting = self.queued - sealed;
        self.release(sealed, Held::Sealed);
        self.release(waiting, Held::Outbox);
    }
}

impl Outbox {
    fn gauge(held: Held) -> &'static crate::metrics::Value {
        match held {
            Held::Outbox => &METRICS.host_outbox,
            Held::Sealed => &METRICS.host_sealed,
        }
    }

    /// Counts `n` more bytes held, here and process-wide.
    fn hold(&mut self, n: usize, held: Held) {
        self.queued += n;
        Self::gauge(held).add(n as u64);
    }

    /// Counts `n` bytes no longer held.
    fn release(&mut self, n: usize, held: Held) {
        self.queued -= n;
        Self::gauge(held).sub(n as u64);
    }

    /// Queues whole frames (own frames the socket did not take) behind the others.
    fn push(&mut self, frames: Bytes) {
        self.push_entry(frames, false);
    }

    fn push_entry(&mut self, bytes: Bytes, continued: bool) {
        self.hold(bytes.len() + ENTRY_COST, Held::Outbox);
        self.queue.push_back(Entry { bytes, continued });
    }

    fn count_out(&mut self, written: usize) {
        self.bytes_out += written as u64;
        METRICS.bytes_out.add(written as u64);
    }

    /// Takes `n` written bytes off the front of the queue.
    fn consume(&mut self, mut n: usize) {
        // One update of the process-wide count for the whole write, not one per frame.
        let mut released = 0;
        while n > 0 {
            let Some(Entry { bytes: front, .. }) = self.queue.front_mut() else {
                break;
            };
            let len = front.len();
            if n >= len {
                n -= len;
                released += len + ENTRY_COST;
                self.queue.pop_front();
            } else {
                let _ = front.split_to(n);
                released += n;
                n = 0;
            }
        }
        self.release(released, Held::Outbox);
        self.tidy();
    }

    /// Seals up to [`SEAL_CHUNK`] of the queue's plaintext (then `close_notify`, if it is
    /// due) into `sealed`, which must be empty.
    fn seal_chunk(&mut self, transport: &Transport) {
        let mut plain: Vec<IoSlice<'_>> = Vec::new();
        let mut take = 0;
        for Entry { bytes: frame, .. } in &self.queue {
            if take >= SEAL_CHUNK || plain.len() >= MAX_SLICES {
                break;
            }
            let part = &frame[..frame.len().min(SEAL_CHUNK - take)];
            take += part.len();
            plain.push(IoSlice::new(part));
        }
        let records = take.div_ceil(16 * 1024);
        let mut sealed = Vec::with_capacity(take + records * RECORD_OVERHEAD + 64);
        if !plain.is_empty() || transport.wants_write() {
            transport.seal(&plain, &mut sealed);
        }
        drop(plain);
        self.consume(take);
        if self.queue.is_empty() && std::mem::take(&mut self.close_notify) {
            transport.seal_close(&mut sealed);
        }
        self.hold(sealed.len(), Held::Sealed);
        self.sealed = Bytes::from(sealed);
    }

    /// Gives back the ring a burst left behind, once it is empty.
    fn tidy(&mut self) {
        if self.queue.is_empty() && self.queue.capacity() > KEEP_SLOTS {
            self.queue = VecDeque::new();
        }
    }
}
