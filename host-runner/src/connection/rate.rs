//! Rates per connection, one token bucket ([`Bucket`]) each: `--guest-cpu-rate` (how long the guest's
//! calls may hold the connection per second, so that an alarm loop with `set-alarm(0)` or a
//! client that keeps it answering cannot hold a core: `--guest-cpu` bounds one call, this
//! bounds them all) and `--client-message-rate` / `--client-byte-rate` (what its client may
//! send per second, so that one client's flood, or its fan-out to a room, has a ceiling).
//!
//! In debt the connection reads nothing from its client (and, for the CPU rate, its alarm
//! waits) until the bucket has refilled — or, for the client's rates under
//! `--client-rate-action close`, is closed with 1008.

use tokio::time::Instant;

pub(super) use crate::rate::Bucket;
use crate::settings::ClientRate;

/// What a client may send: `--client-message-rate` and `--client-byte-rate` (`None`: no
/// limit).
pub(super) struct Inbound {
    messages: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl Inbound {
    pub(super) fn new(rate: ClientRate, now: Instant) -> Self {
        let bucket = |rate| (rate > 0).then(|| Bucket::new(rate, now));
        Inbound {
            messages: bucket(rate.messages),
            bytes: bucket(rate.bytes),
        }
    }

    /// `n` bytes were read from the client.
    pub(super) fn read(&mut self, n: usize, now: Instant) {
        if let Some(bytes) = &mut self.bytes {
            let _ = bytes.charge(n as u64, now);
        }
    }

    /// The client sent a message (or a ping); whether it is over its message rate now.
    pub(super) fn message(&mut self) -> bool {
        self.messages
            .as_mut()
            .is_some_and(|messages| messages.charge(1, Instant::now()))
    }

    /// When the client is back under both rates; `None`: it is.
    pub(super) fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        let messages = self.messages.as_mut().and_then(|b| b.ready_at(now));
        let bytes = self.bytes.as_mut().and_then(|b| b.ready_at(now));
        messages.max(bytes)
    }
}
