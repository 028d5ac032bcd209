//! One TCP connection: the HTTP phase (see [`crate::http`]), then, after a 101, the
//! WebSocket phase. The runner frames: its own [`Session`] reads the client's bytes, and
//! the guest is called with complete messages (`on-message`), when the connection opens
//! and ends, and at its alarm; what it sends is written when each callback returns.
//! Other connections write to this one through its [`Peer`].
//!
//! A guest idle for `--hibernate-after` loses its instance ([`Guest`]); the loop goes on
//! without it — answering pings and auto-responses, writing what others send — and makes
//! a fresh one for the next call.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Duration, Instant, sleep_until};
use tracing::{debug, info};

mod calls;
mod input;
mod rate;
mod timers;

use crate::guest::Guest;
use crate::http;
use crate::metrics::METRICS;
use crate::peer::Peer;
use crate::server::Server;
use crate::transport::Transport;
use calls::Callback;
use rate::{Bucket, Inbound};
use timers::{Timer, Timers};

/// Socket reads per call: large messages arrive in few reads.
const READ_BUFFER: usize = 64 * 1024;
/// Full reads (of [`READ_BUFFER`]) a connection makes in a row before it yields to the
/// others on its worker: 512 KiB. Measured at 100 × 64 KiB, window 16, against
/// tokio-tungstenite: p99 0.62 s without yielding (9× its), 67 ms after 8 reads (1.0×),
/// 102 ms after 16 (1.5×); after every read the CPU per message doubled.
const FULL_READS_PER_TURN: u32 = 8;

thread_local! {
    /// The read buffer is kept per worker thread rather than per connection, so that idle
    /// connections hold none: a connection takes it for a read and puts it back on
    /// whichever thread it then runs on. A connection that finds the
    /// slot empty (another one's call is suspended) allocates its own.
    static SPARE_READ: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Close code the runner sends itself when the guest fails (RFC 6455 §7.4.1).
const INTERNAL_ERROR: u16 = 1011;
/// Close code when no instance can be had for a wake (RFC 6455 §7.4.1, IANA registry).
const TRY_AGAIN_LATER: u16 = 1013;
const GOING_AWAY: u16 = 1001;
/// Close code for a client over its rates under `--client-rate-action close`.
const POLICY_VIOLATION: u16 = 1008;
const NORMAL: u16 = 1000;
/// What `on-close` reports when no close frame came back.
const ABNORMAL: u16 = 1006;
/// The bound on a stalled write when `--idle-timeout` is off.
const STALLED_WRITE: Duration = Duration::from_secs(300);
/// "Never", for timers that are off.
const FAR: Duration = Duration::from_secs(86_400 * 365);

/// Serves one accepted connection; `_permit` is its place under `--max-connections`.
pub async fn serve(
    stream: TcpStream,
    address: SocketAddr,
    server: Arc<Server>,
    _permit: OwnedSemaphorePermit,
) {
    // The HTTP phase, the Task, its loop and the guest calls are each boxed, so that
    // a connection holds only what the phase it is in needs: one future holding them all
    // inline was 8 KiB per connection, most of a hibernated one's cost (measured: 9.4 KB
    // per hibernated connection inline, 5.1 KB with the phases boxed, 4.0 KB like this).
    let Some((transport, early, sandbox)) = Box::pin(upgrade(stream, address, &server)).await
    else {
        return;
    };
    let Some(mut websocket) = Task::open(transport, sandbox, address, server) else {
        return;
    };
    let end = Box::pin(websocket.run(early)).await;
    websocket.closed(end);
}

/// The HTTP phase, over TLS with `--tls-cert`: the upgraded connection's transport, the
/// bytes that followed the upgrade request, and the guest's instance.
async fn upgrade(
    stream: TcpStream,
    address: SocketAddr,
    server: &Arc<Server>,
) -> Option<(Transport, Bytes, crate::engine::Sandbox)> {
    let limit = server.settings.handshake_timeout;
    let Some(config) = server.settings.tls.as_ref().map(|tls| tls.config.clone()) else {
        let upgraded = http::serve(stream, address, server, limit).await?;
        let transport = Transport::Plain(upgraded.stream);
        return Some((transport, upgraded.early, upgraded.sandbox));
    };
    let started = Instant::now();
    let stream = crate::tls::accept(stream, config, address, limit).await?;
    let limit = limit.saturating_sub(started.elapsed());
    let upgraded = http::serve(stream, address, server, limit).await?;
    let (transport, early) = Transport::tls(upgraded.stream, upgraded.early);
    Some((transport, early, upgraded.sandbox))
}

/// An open WebSocket and its guest.
struct Task {
    /// The client's address, for the log.
    address: SocketAddr,
    guest: Guest,
    peer: Arc<Peer>,
    server: Arc<Server>,
    /// The guest failed: it gets no more calls.
    faulted: bool,
    /// `on-close` has been called.
    notified: bool,
    /// The last bytes have been written (or given up on): see [`Self::finish`].
    finished: bool,
    /// The deadlines: the close handshake, a stalled write, hibernation, idleness.
    timers: Timers,
    /// What is left of `--guest-cpu-rate`.
    cpu: Bucket,
    /// What is left of `--client-message-rate` and `--client-byte-rate`.
    inbound: Inbound,
    /// Bytes read from the client that the session has not seen, as the client went over
    /// its message rate in the middle of them (at most one read's worth).
    unread: Vec<u8>,
    /// What this connection holds of its client's input, as counted in `--host-memory`:
    /// the session's unfinished message and `unread`.
    inbound_held: usize,
    /// The code of a close frame the session sent by itself (the reply to the client's, or
    /// the one for a violation), for the log; closes started here are `State::close_sent`.
    session_close: Option<u16>,
    bytes_in: u64,
    opened: Instant,
    /// "Never", for timers that are off.
    far: Instant,
    /// Reads in a row that filled the buffer (see [`FULL_READS_PER_TURN`]).
    full_reads: u32,
    /// Instances made for this connection after its first, for the log.
    wakes: u32,
}

impl Task {
    /// The WebSocket of an accepted upgrade, its socket attached to its peer.
    fn open(
        transport: Transport,
        sandbox: crate::engine::Sandbox,
        address: SocketAddr,
        server: Arc<Server>,
    ) -> Option<Box<Self>> {
        let mut guest = Guest::Live(sandbox);
        let conn = guest.state();
        let peer = conn.peer()?.clone();
        // A failed write marks the peer failed; the loop ends the connection then.
        let _ = peer.attach(transport);
        let request = conn.request();
        let protocol = request.protocol.as_deref().unwrap_or_default();
        let deflate = peer.form().name();
        info!(peer = %address, id = %conn.id(), path = request.path, protocol, deflate, "websocket open");
        METRICS.websockets_live.inc();
        let now = Instant::now();
        let mut timers = Timers::default();
        timers.set(
            Timer::Hibernate,
            Some(now + server.settings.hibernate_after),
        );
        timers.set(
            Timer::Idle,
            server.settings.idle_timeout.map(|idle| now + idle),
        );
        let cpu = Bucket::of_time(server.settings.guest_cpu_rate, now);
        let inbound = Inbound::new(server.settings.client_rate, now);
        Some(Box::new(Task {
            address,
            guest,
            peer,
            server,
            faulted: false,
            notified: false,
            finished: false,
            timers,
            cpu,
            inbound,
            unread: Vec::new(),
            inbound_held: 0,
            session_close: None,
            bytes_in: 0,
            opened: now,
            far: now + FAR,
            full_reads: 0,
            wakes: 0,
        }))
    }

    /// Unregisters the connection and logs its end.
    fn closed(&mut self, end: End) {
        if self.guest.live().is_some() {
            METRICS.websockets_live.dec();
        } else {
            METRICS.websockets_hibernated.dec();
        }
        let _ = crate::peer::hold_inbound(std::mem::take(&mut self.inbound_held), 0);
        let conn = self.guest.state();
        self.server.forget(conn);
        let (bytes_out, dropped) = self.peer.totals();
        let close_code = conn.close_sent().or(self.session_close);
        let request = conn.request();
        info!(
            peer = %self.address,
            id = %conn.id(),
            path = request.path,
            protocol = request.protocol.as_deref().unwrap_or_default(),
            duration_ms = self.opened.elapsed().as_millis() as u64,
            bytes_in = self.bytes_in,
            bytes_out,
            dropped,
            wakes = self.wakes,
            close_code = close_code.map_or_else(|| "none".to_owned(), |c| c.to_string()),
            end,
            "websocket closed"
        );
    }
}

/// Why the connection ends, for the log.
type End = &'static str;

/// The future of a guest call or of the connection's end. Boxed: the loop's future holds
/// every future it awaits inline, for the connection's life, and these two made it 5 KiB.
type Boxed<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Task {
    async fn run(&mut self, early: Bytes) -> End {
        let end = self.exchange(early).await;
        // However it ended, the guest hears of it once: a no-op after its `on-close` or a
        // fault; otherwise no close frame came back (peer gone, write failed or stalled,
        // close handshake timed out).
        self.notify(ABNORMAL, "", false).await;
        end
    }

    /// `early` is dropped once read: it may hold on to hyper's whole read buffer.
    async fn exchange(&mut self, early: Bytes) -> End {
        if let Err(end) = self.call(Callback::Open).await {
            return end;
        }
        if !early.is_empty() {
            self.bytes_in += early.len() as u64;
            METRICS.bytes_in.add(early.len() as u64);
            if let Err(end) = self.receive(&early).await {
                return end;
            }
            if let Err(end) = self.check_inbound().await {
                return end;
            }
        }
        drop(early);
        let mut shutdown = self.server.shutdown.clone();
        let timer = sleep_until(self.far);
        // The wake-up and shutdown futures live across iterations: made anew each time,
        // they would register with their notifiers (a lock each) for every message.
        let peer = self.peer.clone();
        let woken = peer.woken();
        let shutdown_begun = shutdown.wait();
        let runtime = self.server.runtime.clone();
        let squeezed = runtime.budget.squeezed();
        tokio::pin!(timer, woken, shutdown_begun, squeezed);
        let mut shutting_down = false;
        loop {
            self.flush_cork();
            if self.guest.state().replaying() {
                self.pump_replays();
                if self.peer.queued() == 0 && self.guest.state().replaying() {
                    // The socket took it all: more at once, after the other connections on
                    // this worker had a turn.
                    tokio::task::yield_now().await;
                    continue;
                }
            }
            if let Some(end) = self.check_finished().await {
                return end;
            }
            self.maybe_hibernate();
            if self.full_reads >= FULL_READS_PER_TURN {
                // More keeps coming: let the other connections on this worker have a turn.
                // Otherwise a client that keeps the socket full is served until tokio's
                // budget runs out (128 reads, 8 MiB), and the others' latency grows with
                // it (measured: p99 0.65 s at 100 × 64 KiB, window 16).
                self.full_reads = 0;
                tokio::task::yield_now().await;
            }
            let queued = self.peer.queued() > 0;
            let stall = match self.timers.get(Timer::Stall) {
                Some(at) if queued => Some(at),
                _ => queued.then(|| Instant::now() + self.write_timeout()),
            };
            self.timers.set(Timer::Stall, stall);
            // A guest over its CPU rate is called for nothing more until it is back under; a
            // client over its rates is not read until it is back under.
            let now = Instant::now();
            let throttle = self.cpu.ready_at(now);
            self.timers.set(Timer::Throttle, throttle);
            let inbound = self.inbound.ready_at(now);
            if inbound.is_some() && self.timers.get(Timer::Inbound).is_none() {
                self.over_rate();
            }
            self.timers.set(Timer::Inbound, inbound);
            let read = !self.peer.should_pause_reading() && throttle.is_none() && inbound.is_none();
            // What was read past the rate goes to the session before the socket is read again.
            let unread = !self.unread.is_empty();
            // The idle deadline moves with every read: re-arming the timer each time costs
            // more than letting it fire early now and then, so it is only moved earlier.
            let deadline = self.next_deadline();
            if deadline < timer.deadline() || timer.is_elapsed() {
                timer.as_mut().reset(deadline);
            }
            let live = self.guest.live().is_some();
            let step = tokio::select! {
                biased;
                () = &mut squeezed, if live => {
                    squeezed.set(runtime.budget.squeezed());
                    self.hibernate();
                    Ok(())
                }
                () = &mut woken => {
                    woken.set(peer.woken());
                    self.woken();
                    Ok(())
                }
                ready = peer.stream().writable(), if queued => match ready {
                    Ok(()) => self.writable(),
                    Err(_) => Err("write failed"),
                },
                () = std::future::ready(()), if read && unread => self.read_unread().await,
                ready = peer.stream().readable(), if read && !unread => match ready {
                    Ok(()) => self.read().await,
                    Err(_) => Err("peer gone"),
                },
                () = &mut shutdown_begun, if !shutting_down => {
                    shutting_down = true;
                    self.shutting_down();
                    Ok(())
                }
                () = timer.as_mut() => self.timer_fired().await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Another connection woke this one: it may have asked for a close.
    fn woken(&mut self) {
        if let Some((code, reason)) = self.peer.take_close_request() {
            self.host_close(code, &reason, self.server.settings.handshake_timeout);
        }
    }

    /// The socket takes more of what is queued; progress restarts the stall timer.
    fn writable(&mut self) -> Result<(), End> {
        let before = self.peer.queued();
        match self.peer.flush() {
            Ok(()) if self.peer.queued() < before => {
                self.timers.set(Timer::Stall, None);
                Ok(())
            }
            Ok(()) => Ok(()),
            Err(_) => Err("write failed"),
        }
    }

    /// The runner is stopping: the client gets `--shutdown-timeout` to close.
    fn shutting_down(&mut self) {
        let timeout = self.server.settings.shutdown_timeout;
        self.host_close(GOING_AWAY, "server shutting down", timeout);
    }

    /// How long the outbox may wait on a client that does not read.
    fn write_timeout(&self) -> Duration {
        self.server.settings.idle_timeout.unwrap_or(STALLED_WRITE)
    }

    /// Drops the instance of a guest idle for `--hibernate-after`, or of one whose memory
    /// grew (its budget is better spent on others).
    fn maybe_hibernate(&mut self) {
        let due = self
            .timers
            .get(Timer::Hibernate)
            .is_some_and(|at| Instant::now() >= at);
        if self
            .guest
            .live()
            .is_some_and(|sandbox| due || sandbox.is_bloated())
        {
            self.hibernate();
        }
    }

    fn hibernate(&mut self) {
        if self.guest.live().is_some() {
            self.guest.hibernate();
            // The session gave back its buffers, an unfinished message's excepted: less is
            // held, never more.
            let _ = self.recount_inbound();
            self.timers.set(Timer::Hibernate, None);
            METRICS.hibernations.inc();
            METRICS.websockets_live.dec();
            METRICS.websockets_hibernated.inc();
            debug!(peer = %self.address, id = %self.guest.state().id(), "hibernated");
        }
    }

    /// The guest's alarm, unless the guest failed (it gets no more calls).
    fn alarm(&mut self) -> Option<Instant> {
        let alarm = self.guest.state().alarm();
        alarm.filter(|_| !self.faulted)
    }

    /// The earliest deadline, "never" when none is set.
    fn next_deadline(&mut self) -> Instant {
        let alarm = self.alarm();
        self.timers.next(alarm).unwrap_or(self.far)
    }

    /// Acts on the deadline that is due, if any (the timer may fire early: see `exchange`).
    async fn timer_fired(&mut self) -> Result<(), End> {
        let alarm = self.alarm();
        match self.timers.due(Instant::now(), alarm) {
            Some(Timer::Close) => Err("close handshake timed out"),
            Some(Timer::Stall) => Err("write stalled"),
            Some(Timer::Alarm) => {
                self.guest.state().cancel_alarm();
                self.call(Callback::Alarm).await
            }
            Some(Timer::Idle) => {
                let timeout = self.server.settings.handshake_timeout;
                self.host_close(NORMAL, "idle timeout", timeout);
                Ok(())
            }
            // Hibernation and the throttles' ends are acted on at the top of the loop.
            Some(Timer::Hibernate | Timer::Throttle | Timer::Inbound) | None => Ok(()),
        }
    }

    /// Moves the session's own output (pongs, close frames) into the cork.
    fn transmit(&mut self) {
        self.guest.state().transmit();
    }

    /// The runner closes (idle, shutdown, backpressure, another connection's request).
    fn host_close(&mut self, code: u16, reason: &str, answer_within: Duration) {
        let conn = self.guest.state();
        if conn.is_closed() {
            return;
        }
        conn.close(code, reason);
        self.timers
            .set(Timer::Close, Some(Instant::now() + answer_within));
    }

    /// The guest closed in its callback: the client gets as long to answer as after an
    /// idle timeout, however much it sends meanwhile.
    fn note_guest_close(&mut self) {
        if !self.closing() && self.guest.state().close_sent().is_some() {
            let answer_within = self.server.settings.handshake_timeout;
            self.timers
                .set(Timer::Close, Some(Instant::now() + answer_within));
        }
    }

    /// Whether our close frame is out and the client's answer awaited.
    fn closing(&self) -> bool {
        self.timers.get(Timer::Close).is_some()
    }

    /// Writes what the last callbacks sent, in one write, and what they delivered to other
    /// connections (a publish's fan-out). The time it takes is charged to this connection's
    /// `--guest-cpu-rate`: its guest caused those writes, so a publisher to a large room
    /// pays for the room.
    fn flush_cork(&mut self) {
        let started = Instant::now();
        self.guest.state().write_cork(&self.peer);
        let now = Instant::now();
        self.cpu.charge_time(now - started, now);
    }

    /// Writes more of the subscriptions catching up with their topics' history: up to half
    /// of `--max-backpressure` queued at a time, so that the messages that follow once
    /// they are live find room; the rest when the socket has taken it.
    fn pump_replays(&mut self) {
        let mark = (self.server.settings.app.max_backpressure / 2).max(1);
        self.guest.state().pump_replays(&self.peer, mark);
        // A failed write marks the peer failed: the loop ends the connection then.
        let _ = self.peer.flush();
    }

    /// Whether the close handshake is complete (or the session failed): then the last
    /// bytes are written and the connection ends.
    async fn check_finished(&mut self) -> Option<End> {
        if self.peer.failed() {
            return Some("write failed");
        }
        let finished = self
            .guest
            .state()
            .session()
            .is_some_and(|session| session.is_finished());
        if !finished {
            return None;
        }
        self.finish().await;
        Some("closed")
    }

    /// Writes what is queued (within the close deadline), then lingers.
    fn finish(&mut self) -> Boxed<'_, ()> {
        Box::pin(self.finish_now())
    }

    async fn finish_now(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let deadline = self
            .timers
            .get(Timer::Close)
            .unwrap_or_else(|| Instant::now() + self.server.settings.handshake_timeout);
        let peer = self.peer.clone();
        peer.seal_close();
        let drained = tokio::time::timeout_at(deadline, async {
            while peer.queued() > 0 {
                if peer.stream().writable().await.is_err() || peer.flush().is_err() {
                    return false;
                }
            }
            true
        })
        .await;
        if drained != Ok(true) {
            return;
        }
        crate::linger::linger(peer.stream()).await;
    }
}
