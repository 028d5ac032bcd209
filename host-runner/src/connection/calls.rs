//! The connection's guest calls: each wakes the guest if it is hibernated, and a fault
//! or an instance that cannot be had ends the connection.

use tokio::time::Instant;
use tracing::warn;

use super::timers::Timer;
use super::{Boxed, End, INTERNAL_ERROR, TRY_AGAIN_LATER, Task};
use crate::engine::{Fault, Sandbox};
use crate::metrics::METRICS;
use crate::wit::Message;

/// A guest callback.
pub(super) enum Callback<'a> {
    Open,
    Message(&'a Message),
    Alarm,
    Close(u16, &'a str, bool),
}

impl Task {
    /// Calls the guest. A fault ends the connection: 1011, unless our close frame is out.
    pub(super) fn call<'a>(&'a mut self, callback: Callback<'a>) -> Boxed<'a, Result<(), End>> {
        Box::pin(self.call_now(callback))
    }

    async fn call_now(&mut self, callback: Callback<'_>) -> Result<(), End> {
        if self.faulted {
            return Ok(());
        }
        let sandbox = match self.wake().await {
            Some(sandbox) => sandbox,
            None => return Err(self.unwakeable().await),
        };
        let result = match callback {
            Callback::Open => sandbox.on_open().await,
            Callback::Message(message) => sandbox.on_message(message).await,
            Callback::Alarm => sandbox.on_alarm().await,
            Callback::Close(code, reason, clean) => sandbox.on_close(code, reason, clean).await,
        };
        let used = sandbox.last_call();
        let now = Instant::now();
        self.cpu.charge_time(used, now);
        let hibernate_after = self.server.settings.hibernate_after;
        self.timers
            .set(Timer::Hibernate, Some(now + hibernate_after));
        match result {
            Ok(()) => {
                self.note_guest_close();
                Ok(())
            }
            Err(fault) => Err(self.fault(fault).await),
        }
    }

    /// The live instance of the current version: an instance of a version since replaced
    /// is dropped first, as in hibernation, and a hibernated guest gets a fresh one (see
    /// [`crate::guest::Guest::wake`]). `None` when no instance could be had within
    /// `--handshake-timeout`.
    async fn wake(&mut self) -> Option<&mut Sandbox> {
        let latest = self.server.runtime.latest();
        if self
            .guest
            .live()
            .is_some_and(|sandbox| sandbox.version != latest)
        {
            self.hibernate();
        }
        match self.guest.wake(&self.server, self.address).await {
            Ok(false) => {}
            Ok(true) => {
                self.wakes += 1;
                METRICS.wakes.inc();
                METRICS.websockets_hibernated.dec();
                METRICS.websockets_live.inc();
            }
            Err(error) => {
                let id = self.guest.state().id();
                warn!(peer = %self.address, %id, %error, "cannot wake the guest");
                return None;
            }
        }
        self.guest.live()
    }

    /// No instance for a call: the client is told to come back later (1013).
    async fn unwakeable(&mut self) -> End {
        self.give_up(TRY_AGAIN_LATER, "try again later").await;
        "no instance"
    }

    pub(super) async fn fault(&mut self, fault: Fault) -> End {
        fault.count();
        let conn = self.guest.state();
        if conn.is_closed() {
            warn!(peer = %self.address, id = %conn.id(), %fault, "guest failed after its close frame");
        } else {
            warn!(peer = %self.address, id = %conn.id(), %fault, "closing the connection with 1011");
            // What the failed callback sent is dropped with it.
            conn.drop_sent();
        }
        self.give_up(INTERNAL_ERROR, "handler failed").await;
        "guest fault"
    }

    /// The guest gets no more calls: closes with `code` (unless our close frame is out),
    /// writes what is queued and ends.
    async fn give_up(&mut self, code: u16, reason: &str) {
        self.faulted = true;
        self.guest.state().close(code, reason);
        self.flush_cork();
        self.finish().await;
    }

    /// Calls `on-close` once.
    pub(super) async fn notify(&mut self, code: u16, reason: &str, clean: bool) {
        if self.notified {
            return;
        }
        self.notified = true;
        // A fault here has nothing left to close.
        let _ = self.call(Callback::Close(code, reason, clean)).await;
    }
}
