//! Rates per connection, one token bucket each: `--guest-cpu-rate` (how long the guest's
//! calls may hold the connection per second, so that an alarm loop with `set-alarm(0)` or a
//! client that keeps it answering cannot hold a core: `--guest-cpu` bounds one call, this
//! bounds them all) and `--client-message-rate` / `--client-byte-rate` (what its client may
//! send per second, so that one client's flood, or its fan-out to a room, has a ceiling).
//!
//! A bucket holds one second's worth, is charged with what was used, and may go into debt by
//! at most one second's worth; in debt the connection reads nothing from its client (and, for
//! the CPU rate, its alarm waits) until the bucket has refilled — or, for the client's rates
//! under `--client-rate-action close`, is closed with 1008.

use std::time::Duration;

use tokio::time::Instant;

use crate::settings::ClientRate;

pub(super) struct Bucket {
    /// Units per second (nanoseconds of calls, messages, bytes); `u64::MAX`: no limit.
    rate: u64,
    /// Units left; negative: in debt.
    balance: i64,
    /// When `balance` was last brought up to date.
    at: Instant,
}

impl Bucket {
    /// A full bucket refilled at `rate` units per second.
    pub(super) fn new(rate: u64, now: Instant) -> Self {
        let rate = rate.max(1);
        Bucket {
            rate,
            balance: i64::try_from(rate).unwrap_or(i64::MAX),
            at: now,
        }
    }

    /// A bucket of nanoseconds: `rate` of calls per second.
    pub(super) fn of_time(rate: Duration, now: Instant) -> Self {
        Self::new(u64::try_from(rate.as_nanos()).unwrap_or(u64::MAX), now)
    }

    fn cap(&self) -> i64 {
        i64::try_from(self.rate).unwrap_or(i64::MAX)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at);
        self.at = now;
        let earned = elapsed.as_nanos().saturating_mul(u128::from(self.rate)) / 1_000_000_000;
        let earned = i64::try_from(earned).unwrap_or(i64::MAX);
        self.balance = self.balance.saturating_add(earned).min(self.cap());
    }

    /// `used` units were spent; whether the bucket is in debt now.
    pub(super) fn charge(&mut self, used: u64, now: Instant) -> bool {
        self.refill(now);
        let used = i64::try_from(used).unwrap_or(i64::MAX);
        self.balance = self.balance.saturating_sub(used).max(-self.cap());
        self.balance < 0
    }

    /// A call returned after holding the connection for `used`.
    pub(super) fn charge_time(&mut self, used: Duration, now: Instant) {
        let _ = self.charge(u64::try_from(used.as_nanos()).unwrap_or(u64::MAX), now);
    }

    /// When the bucket is out of debt again; `None`: it is not in debt.
    pub(super) fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.balance >= 0 {
            return None;
        }
        let debt = u128::from(self.balance.unsigned_abs());
        let wait = debt
            .saturating_mul(1_000_000_000)
            .div_ceil(u128::from(self.rate));
        Some(now + Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX)))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_second_is_paid_back_at_the_rate_and_debt_is_capped() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let mut cpu = Bucket::of_time(ms(100), now);
        cpu.charge_time(ms(80), now);
        assert_eq!(cpu.ready_at(now), None);
        cpu.charge_time(ms(70), now);
        // 50 ms of debt at 100 ms per second: half a second.
        assert_eq!(cpu.ready_at(now), Some(now + ms(500)));
        assert_eq!(cpu.ready_at(now + ms(500)), None);
        // A call of a minute owes one second's worth at most.
        cpu.charge_time(Duration::from_secs(60), now + ms(500));
        assert_eq!(cpu.ready_at(now + ms(500)), Some(now + ms(1500)));
    }

    #[test]
    fn a_burst_of_messages_over_a_second_s_worth_waits_for_the_rate() {
        let now = Instant::now();
        let mut messages = Bucket::new(1_000, now);
        for _ in 0..1_000 {
            assert!(!messages.charge(1, now));
        }
        assert_eq!(
            messages.ready_at(now),
            None,
            "a second's worth is allowed at once"
        );
        assert!(messages.charge(10, now));
        assert_eq!(
            messages.ready_at(now),
            Some(now + Duration::from_millis(10))
        );
    }
}
