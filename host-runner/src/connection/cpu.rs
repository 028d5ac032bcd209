//! `--guest-cpu-rate`: how long a connection's guest calls may hold it per second, on
//! average, so that a guest that keeps itself busy (an alarm loop with `set-alarm(0)`, a
//! client that keeps it answering) cannot hold a core: `--guest-cpu` bounds one call, this
//! bounds them all.
//!
//! A bucket of one second's worth, charged when a call returns with the time it held the
//! connection (yields to others excluded). A call may take the bucket into debt, at most one
//! second's worth; in debt the connection makes no call — it reads nothing from its client
//! and its alarm waits — until the bucket refills.

use std::time::Duration;

use tokio::time::Instant;

pub(super) struct CpuRate {
    /// Nanoseconds of calls per second.
    rate: u64,
    /// Nanoseconds left; negative: in debt.
    balance: i64,
    /// When `balance` was last brought up to date.
    at: Instant,
}

impl CpuRate {
    pub(super) fn new(rate: Duration, now: Instant) -> Self {
        let rate = u64::try_from(rate.as_nanos()).unwrap_or(u64::MAX).max(1);
        CpuRate {
            rate,
            balance: i64::try_from(rate).unwrap_or(i64::MAX),
            at: now,
        }
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

    /// A call returned after holding the connection for `used`.
    pub(super) fn charge(&mut self, used: Duration, now: Instant) {
        self.refill(now);
        let used = i64::try_from(used.as_nanos()).unwrap_or(i64::MAX);
        self.balance = self.balance.saturating_sub(used).max(-self.cap());
    }

    /// When the connection may call its guest again; `None`: now.
    pub(super) fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.balance >= 0 {
            return None;
        }
        let debt = u128::from(self.balance.unsigned_abs());
        let wait = debt.saturating_mul(1_000_000_000) / u128::from(self.rate);
        Some(now + Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_second_is_paid_back_at_the_rate_and_debt_is_capped() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let mut cpu = CpuRate::new(ms(100), now);
        cpu.charge(ms(80), now);
        assert_eq!(cpu.ready_at(now), None);
        cpu.charge(ms(70), now);
        // 50 ms of debt at 100 ms per second: half a second.
        assert_eq!(cpu.ready_at(now), Some(now + ms(500)));
        assert_eq!(cpu.ready_at(now + ms(500)), None);
        // A call of a minute owes one second's worth at most.
        cpu.charge(Duration::from_secs(60), now + ms(500));
        assert_eq!(cpu.ready_at(now + ms(500)), Some(now + ms(1500)));
    }
}
