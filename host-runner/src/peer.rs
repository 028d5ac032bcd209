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
//! Over TLS the outbox holds ciphertext: a frame is sealed when it is queued or written
//! (under the lock, so that records go out in the order they were sealed), a publish once
//! per subscriber. Frames queued before the socket is attached are sealed when it is.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{ErrorKind, IoSlice};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::Notify;

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

#[derive(Default)]
struct Outbox {
    /// Frames (or the unwritten rest of the first one) waiting for the socket.
    queue: VecDeque<Bytes>,
    /// Bytes in `queue`.
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

    /// Gives the peer its socket and writes what was queued before (sealed first, for TLS).
    pub fn attach(&self, transport: Transport) -> std::io::Result<()> {
        {
            let mut outbox = self.outbox();
            // Only the connection's own task attaches, once.
            let transport = self.transport.get_or_init(|| transport);
            if matches!(transport, Transport::Tls(..)) {
                let plain: Vec<_> = outbox.queue.iter().map(|b| IoSlice::new(b)).collect();
                let mut sealed = Vec::new();
                transport.seal(&plain, &mut sealed);
                drop(plain);
                outbox.queue.clear();
                outbox.queued = sealed.len();
                if !sealed.is_empty() {
                    outbox.queue.push_back(Bytes::from(sealed));
                }
            }
        }
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
    pub fn deliver(&self, frame: &Bytes) -> Result<bool, Refused> {
        let mut outbox = self.outbox();
        if outbox.closed {
            return Err(Refused::Closed);
        }
        if outbox.queued > self.max_backpressure {
            outbox.dropped += 1;
            METRICS.dropped.inc();
            if self.close_on_backpressure && !outbox.overflowed {
                outbox.overflowed = true;
                outbox.close_request = Some((POLICY_VIOLATION, "backpressure".to_owned()));
                self.wake.notify_one();
            }
            return Err(Refused::Backpressure);
        }
        let first = outbox.queue.is_empty();
        let mut sealed = Vec::new();
        let frame = match self.transport.get() {
            Some(transport) if transport.seal(&[IoSlice::new(frame)], &mut sealed) => {
                Bytes::from(sealed)
            }
            _ => frame.clone(),
        };
        outbox.queued += frame.len();
        outbox.queue.push_back(frame);
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
        let mut sealed = Vec::new();
        transport.seal_close(&mut sealed);
        let total = sealed.len();
        self.write_wire(&mut outbox, &[IoSlice::new(&sealed)], total);
    }

    /// [`Self::write_wire`], sealed first over TLS.
    fn write_or_queue(&self, outbox: &mut Outbox, parts: &[IoSlice<'_>], total: usize) {
        let Some(transport @ Transport::Tls(..)) = self.transport.get() else {
            return self.write_wire(outbox, parts, total);
        };
        let mut sealed = SPARE_SEALED.take();
        sealed.clear();
        transport.seal(parts, &mut sealed);
        let total = sealed.len();
        self.write_wire(outbox, &[IoSlice::new(&sealed)], total);
        if sealed.capacity() <= MAX_SPARE_SEALED {
            SPARE_SEALED.set(sealed);
        }
    }

    /// Writes `parts` now if nothing is queued ahead of them; queues what the socket did
    /// not take (one copy) and wakes the owner to flush it. Behind a queue they wait their
    /// turn: whoever made the queue non-empty flushes it.
    fn write_wire(&self, outbox: &mut Outbox, parts: &[IoSlice<'_>], total: usize) {
        if outbox.failed || total == 0 {
            return;
        }
        let mut written = 0;
        if outbox.queue.is_empty()
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
            outbox.bytes_out += written as u64;
            METRICS.bytes_out.add(written as u64);
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
        outbox.queued += rest.len();
        outbox.queue.push_back(Bytes::from(rest));
    }

    /// Writes queued frames until the socket would block. `Err` when the peer is gone.
    pub fn flush(&self) -> std::io::Result<()> {
        let Some(stream) = self.transport.get().map(Transport::socket) else {
            return Ok(());
        };
        let mut outbox = self.outbox();
        while !outbox.queue.is_empty() && !outbox.failed {
            let slices: Vec<IoSlice<'_>> = outbox
                .queue
                .iter()
                .take(MAX_SLICES)
                .map(|b| IoSlice::new(b))
                .collect();
            let result = stream.try_write_vectored(&slices);
            drop(slices);
            match result {
                Ok(0) => outbox.failed = true,
                Ok(mut n) => {
                    outbox.bytes_out += n as u64;
                    METRICS.bytes_out.add(n as u64);
                    outbox.queued -= n;
                    while n > 0 {
                        let Some(front) = outbox.queue.front_mut() else {
                            break;
                        };
                        if n >= front.len() {
                            n -= front.len();
                            outbox.queue.pop_front();
                        } else {
                            let _ = front.split_to(n);
                            n = 0;
                        }
                    }
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
            let backlog: usize = outbox.queue.iter().skip(1).map(Bytes::len).sum();
            outbox.queued -= backlog;
            outbox.queue.truncate(1);
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
