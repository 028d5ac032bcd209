//! A guest's stdout and stderr go to the runner's log, a line per event tagged with the
//! peer; printing neither blocks nor ends the connection.

mod common;

use std::time::{Duration, Instant};

use common::Runner;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

/// The runner's `LINE_MAX`.
const LINE_MAX: usize = 1024;

/// The log lines that contain `needle`.
fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|line| line.contains(needle)).collect()
}

#[test]
fn printing_guest_keeps_its_connection_and_its_lines_are_logged() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/print");
    client.echo("one");
    client.echo("two");
    // The log is read from the runner's stderr by another thread: wait for the second call's
    // last line.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut log = runner.log();
    while lines_with(&log, "guest unfinished line").len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        log = runner.log();
    }

    for (needle, level, count) in [
        ("guest stdout in handle", "INFO", 1),
        ("guest stderr in handle", "WARN", 1),
        ("guest stdout in on-message: ", "INFO", 2),
        ("guest stderr in on-message", "WARN", 2),
        ("guest unfinished line", "WARN", 2),
    ] {
        let lines = lines_with(&log, needle);
        assert_eq!(lines.len(), count, "{needle}: {log}");
        for line in lines {
            assert!(line.contains(level), "{line}");
            assert!(line.contains(" guest:"), "target `guest`: {line}");
            assert!(line.contains("peer=127.0.0.1:"), "{line}");
        }
    }
    // The unfinished line is logged when the call returns, alone.
    assert!(
        lines_with(&log, "guest unfinished line")
            .iter()
            .all(|line| !line.contains("long:")),
        "{log}"
    );
    // A 3005-byte line arrives in pieces of at most LINE_MAX bytes.
    let pieces: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(" guest:") && line.contains("xxxxxxxx"))
        .collect();
    assert_eq!(pieces.len(), 2 * 3005usize.div_ceil(LINE_MAX), "{log}");
    for piece in &pieces {
        assert!(piece.matches('x').count() <= LINE_MAX + 8, "{piece}");
    }
    assert!(!log.contains("closing the connection with 1011"), "{log}");

    // Still open and echoing; a plain neighbour is unaffected.
    client.echo("three");
    runner.connect("/none").echo("neighbour");
    client.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    })));
    assert_eq!(client.expect_close(), Some(CloseCode::Normal));
}

#[test]
fn panicking_guest_is_a_fault_with_its_message_in_the_log() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/trap");
    client.send(Message::text("go"));
    assert_eq!(client.expect_close(), Some(CloseCode::Error));
    let log = runner.wait_for_log("closing the connection with 1011");
    let message = lines_with(&log, "trap requested by the test");
    assert_eq!(message.len(), 1, "{log}");
    assert!(message[0].contains("WARN"), "{log}");
    assert!(message[0].contains(" guest:"), "{log}");
    assert!(log.contains("panicked at"), "{log}");
    // The fault is the trap that follows the message, not a blocking call.
    let fault = lines_with(&log, "closing the connection with 1011");
    assert!(!fault[0].contains("blocking"), "{log}");
    runner.connect("/none").echo("still alive");
}
