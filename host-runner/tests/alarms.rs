//! Alarms: `set-alarm` calls `on-alarm` once, about that many milliseconds later, even on a
//! silent connection; a new alarm replaces the old, `cancel-alarm` cancels, and no alarm
//! runs once the connection is closing.

mod common;

use std::time::{Duration, Instant};

use common::{CLOSE, Client, Runner, TEXT, close_code};

/// How late an alarm may fire on a loaded machine.
const SLACK: Duration = Duration::from_secs(3);

/// Waits for the `/alarm` mode's "alarm" and checks it came `after` `started`, give or take
/// [`SLACK`].
fn expect_alarm(client: &mut Client, started: Instant, after: Duration) {
    assert_eq!(client.text(), "alarm");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= after && elapsed < after + SLACK,
        "alarm after {elapsed:?}, set for {after:?}"
    );
}

#[test]
fn an_alarm_fires_once_on_a_silent_connection() {
    let runner = Runner::with_test_handler(&[]);
    // Set in on-open: the client never sends anything.
    let started = Instant::now();
    let mut client = runner.connect("/alarm?ms=300");
    expect_alarm(&mut client, started, Duration::from_millis(300));
    // Once.
    assert_eq!(client.within(Duration::from_millis(800)), None);
    runner.wait_for_line(client.local_addr(), "on-alarm");
}

#[test]
fn an_alarm_set_in_handle_fires_after_the_upgrade() {
    let runner = Runner::with_test_handler(&[]);
    let started = Instant::now();
    let mut client = runner.connect("/alarm?alarm=300");
    expect_alarm(&mut client, started, Duration::from_millis(300));
    assert_eq!(client.within(Duration::from_millis(800)), None);
}

#[test]
fn a_new_alarm_replaces_the_old_one() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/alarm");
    // (The first alarm is long enough to still be pending when the second is set, however
    // slow the round trip on a loaded machine.)
    assert_eq!(client.ask("1000"), "set 1000");
    let started = Instant::now();
    assert_eq!(client.ask("2000"), "set 2000");
    // Not the first alarm's 1000 ms: it was replaced.
    expect_alarm(&mut client, started, Duration::from_millis(2000));
    assert_eq!(client.within(Duration::from_millis(500)), None);
    // And a shorter one replaces a longer one.
    assert_eq!(client.ask("60000"), "set 60000");
    let started = Instant::now();
    assert_eq!(client.ask("100"), "set 100");
    assert_eq!(client.text(), "alarm");
    assert!(started.elapsed() < Duration::from_millis(100) + SLACK);
    assert_eq!(client.within(Duration::from_millis(500)), None);
}

#[test]
fn a_cancelled_alarm_does_not_fire() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/alarm");
    assert_eq!(client.ask("1000"), "set 1000");
    assert_eq!(client.ask("cancel"), "cancelled");
    assert_eq!(client.within(Duration::from_millis(2000)), None);
    // Cancelling without an alarm is harmless, and a later alarm still works.
    assert_eq!(client.ask("cancel"), "cancelled");
    assert_eq!(client.ask("50"), "set 50");
    assert_eq!(client.text(), "alarm");
}

#[test]
fn alarms_of_many_connections_fire_independently() {
    let runner = Runner::with_test_handler(&[]);
    let mut clients: Vec<_> = (0..20)
        .map(|i| runner.connect(&format!("/alarm?ms={}", 100 + 20 * i)))
        .collect();
    for client in &mut clients {
        assert_eq!(client.text(), "alarm");
    }
}

#[test]
fn no_alarm_runs_after_the_close_began() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/alarm");
    assert_eq!(client.ask("1000"), "set 1000");
    let peer = client.local_addr();
    client.close(1000, "bye");
    let _ = client.expect_close();
    runner.wait_for_line(peer, "on-close 1000 true");
    std::thread::sleep(Duration::from_millis(1500));
    let lines = runner.lines_of(peer).join("\n");
    assert!(!lines.contains("on-alarm"), "{lines}");

    // Nor once the runner's own close began (an idle timeout, unanswered here).
    let runner = Runner::with_test_handler(&["--idle-timeout", "1s", "--handshake-timeout", "2s"]);
    let mut raw = runner.connect_raw("/alarm");
    let peer = raw.stream.local_addr().expect("local address");
    raw.send(TEXT, b"1600").expect("send");
    assert_eq!(
        raw.read_frame().expect("read"),
        Some((TEXT, b"set 1600".to_vec()))
    );
    let close = raw.read_frame().expect("read").expect("the idle close");
    assert_eq!(close.0, CLOSE);
    assert_eq!(close_code(&close.1), Some(1000));
    runner.wait_for_line(peer, "websocket closed");
    let lines = runner.lines_of(peer).join("\n");
    assert!(lines.contains("on-close "), "{lines}");
    assert!(!lines.contains("on-alarm"), "{lines}");
}
