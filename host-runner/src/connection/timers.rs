//! The task's deadlines: one per kind, set where what they time starts, and one place that
//! picks the next to sleep until and the one that is due (quinn's `TimerTable`, in small).

use tokio::time::Instant;

/// What a deadline times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// Our close frame is out: the client's answer is due.
    Close,
    /// The outbox has waited on a client that does not read (`--idle-timeout`, else 300 s).
    Stall,
    /// The guest has had no call for `--hibernate-after`: its instance goes.
    Hibernate,
    /// Nothing was read for `--idle-timeout`.
    Idle,
    /// The guest's alarm (`set-alarm`).
    Alarm,
    /// The guest's calls used up `--guest-cpu-rate`: reading and the alarm resume then.
    Throttle,
    /// The client sent over `--client-*-rate`: reading resumes then.
    Inbound,
}

/// One deadline per [`Timer`] but the alarm, which the guest sets in its state and is
/// passed in where it counts.
#[derive(Debug, Default)]
pub(super) struct Timers {
    close: Option<Instant>,
    stall: Option<Instant>,
    hibernate: Option<Instant>,
    idle: Option<Instant>,
    throttle: Option<Instant>,
    inbound: Option<Instant>,
}

impl Timers {
    pub(super) fn set(&mut self, timer: Timer, at: Option<Instant>) {
        match timer {
            Timer::Close => self.close = at,
            Timer::Stall => self.stall = at,
            Timer::Hibernate => self.hibernate = at,
            Timer::Idle => self.idle = at,
            Timer::Throttle => self.throttle = at,
            Timer::Inbound => self.inbound = at,
            Timer::Alarm => {}
        }
    }

    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        match timer {
            Timer::Close => self.close,
            Timer::Stall => self.stall,
            Timer::Hibernate => self.hibernate,
            Timer::Idle => self.idle,
            Timer::Throttle => self.throttle,
            Timer::Inbound => self.inbound,
            Timer::Alarm => None,
        }
    }

    /// Every deadline in force, in the order they are acted on when several are due. Once
    /// our close frame is out only the close, a stalled write and hibernation count: the
    /// guest's alarm and the idle timeout have nothing left to do.
    fn in_force(&self, alarm: Option<Instant>) -> [(Timer, Option<Instant>); 7] {
        let open = self.close.is_none();
        // A throttled guest's alarm waits for the throttle.
        let alarm = alarm.map(|at| self.throttle.map_or(at, |until| at.max(until)));
        [
            (Timer::Close, self.close),
            (Timer::Stall, self.stall),
            (Timer::Alarm, alarm.filter(|_| open)),
            (Timer::Idle, self.idle.filter(|_| open)),
            (Timer::Hibernate, self.hibernate),
            (Timer::Throttle, self.throttle),
            (Timer::Inbound, self.inbound),
        ]
    }

    /// The earliest deadline, to sleep until.
    pub(super) fn next(&self, alarm: Option<Instant>) -> Option<Instant> {
        self.in_force(alarm)
            .into_iter()
            .filter_map(|(_, at)| at)
            .min()
    }

    /// The first timer due at `now`, in the order of [`Self::in_force`].
    pub(super) fn due(&self, now: Instant, alarm: Option<Instant>) -> Option<Timer> {
        self.in_force(alarm)
            .into_iter()
            .find(|(_, at)| at.is_some_and(|at| now >= at))
            .map(|(timer, _)| timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_earliest_wins_and_a_close_silences_alarm_and_idle() {
        let now = Instant::now();
        let at = |ms| Some(now + Duration::from_millis(ms));
        let mut timers = Timers::default();
        assert_eq!(timers.next(None), None);
        timers.set(Timer::Idle, at(300));
        timers.set(Timer::Hibernate, at(200));
        assert_eq!(timers.next(at(100)), at(100));
        assert_eq!(
            timers.due(now + Duration::from_millis(250), at(100)),
            Some(Timer::Alarm)
        );
        timers.set(Timer::Close, at(500));
        assert_eq!(timers.next(at(100)), at(200));
        assert_eq!(
            timers.due(now + Duration::from_millis(400), at(100)),
            Some(Timer::Hibernate)
        );
        timers.set(Timer::Stall, at(450));
        assert_eq!(
            timers.due(now + Duration::from_millis(600), None),
            Some(Timer::Close)
        );
        assert_eq!(timers.get(Timer::Stall), at(450));
    }
}
