//! A guest that traps (in any callback), spins or allocates without bound loses its own
//! connection (1011); the process and a healthy neighbour go on.

mod common;

use common::Runner;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

fn fault_runner() -> Runner {
    Runner::with_test_handler(&[
        "--guest-cpu",
        "200ms",
        "--guest-memory",
        "8MiB",
        "--max-message-size",
        "1MiB",
        "--max-frame-size",
        "1MiB",
    ])
}

#[test]
fn faulty_guests_lose_only_their_own_connection() {
    let runner = fault_runner();
    let mut healthy = runner.connect("/none");
    healthy.echo("before");
    let faults = [
        ("/trap", Some("go"), "trap requested by the test"),
        ("/spin", Some("go"), "CPU time"),
        ("/alloc", Some("go"), "memory limit"),
        ("/trap-open", None, "trap requested in on-open"),
        // Sets an alarm 10 ms away; the guest panics in on-alarm.
        ("/trap-alarm", Some("10"), "trap requested in on-alarm"),
    ];
    for (path, message, reason) in faults {
        let mut faulty = runner.connect(path);
        if let Some(message) = message {
            faulty.send(Message::text(message));
        }
        assert_eq!(faulty.expect_close(), Some(CloseCode::Error), "{path}");
        healthy.echo(&format!("after {path}"));
        runner.wait_for_line(faulty.local_addr(), reason);
        runner.wait_for_line(faulty.local_addr(), "websocket closed");
        // No call follows a fault, not even on-close.
        let lines = runner.lines_of(faulty.local_addr()).join("\n");
        assert!(!lines.contains("on-close"), "{path}: {lines}");
    }
    let log = runner.log();
    assert_eq!(
        log.matches("closing the connection with 1011").count(),
        faults.len(),
        "{log}"
    );
    assert!(log.contains("peer=127.0.0.1:"), "{log}");
    // New connections are still served.
    runner.connect("/none").echo("fresh");
}

#[test]
fn trap_in_handle_answers_500() {
    let runner = fault_runner();
    let response = runner.raw(
        format!(
            "GET /trap-handshake HTTP/1.1\r\nHost: {}\r\n\r\n",
            runner.addr
        )
        .as_bytes(),
    );
    assert!(response.starts_with("HTTP/1.1 500"), "{response}");
    runner.connect("/none").echo("still alive");
}
