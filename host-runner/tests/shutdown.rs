//! SIGTERM/SIGINT: every open WebSocket gets 1001, then the process exits 0.

mod common;

use std::time::Duration;

use common::Runner;
use tungstenite::protocol::frame::coding::CloseCode;

fn shuts_down_on(signal: libc::c_int) {
    let mut runner = Runner::start(&["--shutdown-timeout", "3s"]);
    let mut clients: Vec<_> = (0..3).map(|_| runner.connect("/")).collect();
    for client in &mut clients {
        client.echo("before shutdown");
    }
    let pid = libc::pid_t::try_from(runner.pid()).expect("pid fits");
    // SAFETY: sends a signal to the child process this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    for client in &mut clients {
        assert_eq!(client.expect_close(), Some(CloseCode::Away));
    }
    let status = runner
        .wait_exit(Duration::from_secs(5))
        .expect("the runner exits");
    assert!(status.success(), "{status:?}");
    assert!(runner.log().contains("shutting down"));
}

#[test]
fn the_guest_hears_the_shutdown_close() {
    let mut runner = Runner::with_test_handler(&["--shutdown-timeout", "3s"]);
    let mut client = runner.connect("/none");
    client.echo("before shutdown");
    let pid = libc::pid_t::try_from(runner.pid()).expect("pid fits");
    // SAFETY: sends a signal to the child process this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    // tungstenite answers the 1001: a clean close, reported with the code of the answer.
    assert_eq!(client.expect_close(), Some(CloseCode::Away));
    let status = runner
        .wait_exit(Duration::from_secs(5))
        .expect("the runner exits");
    assert!(status.success(), "{status:?}");
    let on_close = runner.on_close_of(client.local_addr());
    assert!(on_close.starts_with("1001 true"), "{on_close}");
}

#[test]
fn sigterm_closes_with_1001_and_exits_0() {
    shuts_down_on(libc::SIGTERM);
}

#[test]
fn sigint_closes_with_1001_and_exits_0() {
    shuts_down_on(libc::SIGINT);
}
