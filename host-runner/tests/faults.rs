//! A guest that traps, spins or allocates without bound loses its own connection (1011);
//! the process and a healthy neighbour go on.

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
    for (path, reason) in [
        ("/trap", "guest failed"),
        ("/spin", "CPU time"),
        ("/alloc", "memory limit"),
    ] {
        let mut faulty = runner.connect(path);
        faulty.send(Message::text("go"));
        assert_eq!(faulty.expect_close(), Some(CloseCode::Error), "{path}");
        healthy.echo(&format!("after {path}"));
        let log = runner.wait_for_log(reason);
        assert!(log.contains(reason), "{path}: {log}");
    }
    let log = runner.log();
    assert_eq!(
        log.matches("closing the connection with 1011").count(),
        3,
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
