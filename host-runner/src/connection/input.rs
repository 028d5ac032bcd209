//! The client's input: reads, the session's events and the guest calls for them, the
//! client's rates (`--client-message-rate`, `--client-byte-rate`) and what its unfinished
//! messages hold of `--host-memory`.

use std::io::ErrorKind;

use tokio::time::Instant;
use tracing::{debug, info};
use wsbox::session::Event;

use super::calls::Callback;
use super::timers::Timer;
use super::{End, POLICY_VIOLATION, READ_BUFFER, SPARE_READ, TRY_AGAIN_LATER, Task};
use crate::deflate;
use crate::metrics::METRICS;
use crate::wit::Message;

/// What a connection may hold of its client's input without counting in `--host-memory`:
/// one read's worth, so that ordinary messages never meet the bound (a connection's slack, as
/// for the outbox's TLS chunk). A message begun with a frame of N bytes holds N at once.
const UNCOUNTED_INBOUND: usize = READ_BUFFER;

impl Task {
    /// The client went over its rates: it is not read until back under them, and closed
    /// under `--client-rate-action close`.
    pub(super) fn over_rate(&mut self) {
        METRICS.client_over_rate.inc();
        let conn = self.guest.state();
        if self.server.settings.client_rate.close {
            info!(peer = %self.address, id = %conn.id(), "client over its rate: closing");
            let timeout = self.server.settings.handshake_timeout;
            self.host_close(POLICY_VIOLATION, "message rate exceeded", timeout);
        } else {
            debug!(peer = %self.address, id = %conn.id(), "client over its rate: reads paused");
        }
    }

    /// Reads what the client sent and runs the callbacks for it.
    pub(super) async fn read(&mut self) -> Result<(), End> {
        let mut buffer = SPARE_READ.take();
        buffer.clear();
        let transport = self.peer.transport();
        let read = transport.read(&mut buffer, READ_BUFFER);
        if transport.wants_write() {
            self.peer.write_transport();
        }
        let result = match read {
            Ok(0) => Err("peer gone"),
            Ok(n) => {
                self.bytes_in += n as u64;
                self.inbound.read(n, Instant::now());
                METRICS.bytes_in.add(n as u64);
                if let Some(idle) = self.server.settings.idle_timeout {
                    self.timers.set(Timer::Idle, Some(Instant::now() + idle));
                }
                self.full_reads = if n >= READ_BUFFER {
                    self.full_reads + 1
                } else {
                    0
                };
                self.receive(&buffer).await
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => Ok(()),
            Err(error) if error.kind() == ErrorKind::InvalidData => Err("tls error"),
            Err(_) => Err("peer gone"),
        };
        SPARE_READ.set(buffer);
        result?;
        self.check_inbound().await
    }

    /// Updates what the connection holds of its client's input (the session's unfinished
    /// message, `unread`) in `--host-memory`, past [`UNCOUNTED_INBOUND`]; whether that grew
    /// past the bound.
    pub(super) fn recount_inbound(&mut self) -> bool {
        let session = self.guest.state().session().map_or(0, |s| s.buffered());
        let held = (session + self.unread.capacity()).saturating_sub(UNCOUNTED_INBOUND);
        let before = std::mem::replace(&mut self.inbound_held, held);
        crate::peer::hold_inbound(before, held).is_err()
    }

    /// After a read: a connection whose unfinished message took the host past
    /// `--host-memory` is closed with 1013 and ends, its input no longer read (read on, it
    /// would grow until its close handshake timed out).
    pub(super) async fn check_inbound(&mut self) -> Result<(), End> {
        if !self.recount_inbound() {
            return Ok(());
        }
        const REASON: &str = "host memory exhausted";
        info!(peer = %self.address, held = self.inbound_held, "host memory exhausted: closing with 1013");
        self.guest.state().close(TRY_AGAIN_LATER, REASON);
        self.flush_cork();
        // Its input is read no more: what it held is given back now, not when it ends.
        if let Some(session) = self.guest.state().session() {
            session.discard_message();
        }
        self.unread = Vec::new();
        let _ = self.recount_inbound();
        self.notify(TRY_AGAIN_LATER, REASON, false).await;
        self.finish().await;
        Err(REASON)
    }

    /// Feeds the session what was read before the client went over its message rate.
    pub(super) async fn read_unread(&mut self) -> Result<(), End> {
        let unread = std::mem::take(&mut self.unread);
        self.receive(&unread).await?;
        self.check_inbound().await
    }

    /// Feeds the session and calls the guest for each message; then queues what the
    /// session must send (pongs, the close reply, the close frame for a violation).
    pub(super) async fn receive(&mut self, mut input: &[u8]) -> Result<(), End> {
        loop {
            let Some(session) = self.guest.state().session() else {
                return Err("closed");
            };
            // A compressed message borrows this thread's engines while it is inflated.
            let next = deflate::with_engines(session, |s| s.next_event(&mut input));
            let Some(event) = next else {
                break;
            };
            match event {
                // After our close frame the guest can answer nothing: dropped.
                Event::Message(_) if self.closing() || self.faulted => {}
                Event::Message(message) => {
                    let message = Message::from(message);
                    METRICS.messages_in.inc();
                    let over = self.inbound.message();
                    if self.guest.state().auto_respond(&message) {
                        METRICS.auto_responses.inc();
                    } else {
                        self.call(Callback::Message(&message)).await?;
                    }
                    if over {
                        self.unread.extend_from_slice(input);
                        break;
                    }
                }
                // The pong goes out in the order its ping came: before the answer to a
                // message the ping interrupted (Autobahn 5.6–5.8, 5.19, 5.20).
                Event::Ping(_) => {
                    self.transmit();
                    if self.inbound.message() {
                        self.unread.extend_from_slice(input);
                        break;
                    }
                }
                Event::Pong(_) => {}
                Event::Close(frame) => {
                    // Our reply, if we had not closed first, echoes the client's code.
                    self.session_close = Some(frame.code.0);
                    self.transmit();
                    self.notify(frame.code.0, &frame.reason, true).await;
                    return Ok(());
                }
            }
        }
        self.transmit();
        let failure = self
            .guest
            .state()
            .session()
            .and_then(|session| session.error())
            .map(|error| (error.close_code().0, error.to_string()));
        if let Some((code, reason)) = failure {
            self.session_close = Some(code);
            self.notify(code, &reason, false).await;
        }
        Ok(())
    }
}
