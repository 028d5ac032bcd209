//! A token bucket: a rate per second with a second's worth of burst. It serves the rates of
//! one connection (`--guest-cpu-rate`, `--client-message-rate`, `--client-byte-rate`, see
//! `connection::rate`) and of a guest's log lines (`--guest-log-rate`).
//!
//! A bucket holds one second's worth and is either charged with what was used, going into
//! debt by at most one second's worth ([`Bucket::charge`], for what has happened already),
//! or asked for units it hands out only while it has them ([`Bucket::take`], for what may be
//! refused).

use std::time::Duration;

use tokio::time::Instant;

pub struct Bucket {
    /// Units per second (nanoseconds of calls, messages, bytes); `u64::MAX`: no limit.
    rate: u64,
    /// Units left; negative: in debt.
    balance: i64,
    /// When `balance` was last brought up to date.
    at: Instant,
}

impl Bucket {
    /// A full bucket refilled at `rate` units per second.
    pub fn new(rate: u64, now: Instant) -> Self {
        let rate = rate.max(1);
        Bucket {
            rate,
            balance: i64::try_from(rate).unwrap_or(i64::MAX),
            at: now,
        }
    }

    /// A bucket of nanoseconds: `rate` of calls per second.
    pub fn of_time(rate: Duration, now: Instant) -> Self {
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
    pub fn charge(&mut self, used: u64, now: Instant) -> bool {
        self.refill(now);
        let used = i64::try_from(used).unwrap_or(i64::MAX);
        self.balance = self.balance.saturating_sub(used).max(-self.cap());
        self.balance < 0
    }

    /// `units` if the bucket holds them (they are taken), else nothing (`false`).
    pub fn take(&mut self, units: u64, now: Instant) -> bool {
        self.refill(now);
        let units = i64::try_from(units).unwrap_or(i64::MAX);
        let enough = self.balance >= units;
        if enough {
            self.balance -= units;
        }
        enough
    }

    /// A call returned after holding the connection for `used`.
    pub fn charge_time(&mut self, used: Duration, now: Instant) {
        let _ = self.charge(u64::try_from(used.as_nanos()).unwrap_or(u64::MAX), now);
    }

    /// When the bucket is out of debt again; `None`: it is not in debt.
    pub fn ready_at(&mut self, now: Instant) -> Option<Instant> {
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

    #[test]
    fn take_hands_out_what_is_there_and_never_goes_into_debt() {
        let now = Instant::now();
        let mut lines = Bucket::new(3, now);
        assert!((0..3).all(|_| lines.take(1, now)));
        assert!(!lines.take(1, now));
        assert_eq!(lines.ready_at(now), None, "a refusal is no debt");
        assert!(lines.take(1, now + Duration::from_millis(334)));
    }
}
