//! Guests see no environment unless `--env` grants it.

mod common;

use common::Runner;

fn guest_env(runner: &Runner) -> String {
    runner.raw(
        format!(
            "GET /env HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            runner.addr
        )
        .as_bytes(),
    )
}

#[test]
fn environment_is_granted_only_by_flag() {
    let response = guest_env(&Runner::with_test_handler(&[]));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(!response.contains("PATH="), "{response}");
    assert!(!response.contains("WSBOX_GRANTED"), "{response}");

    let response = guest_env(&Runner::with_test_handler(&["--env", "WSBOX_GRANTED=yes"]));
    assert!(
        response.contains("\r\n\r\nWSBOX_GRANTED=yes\n"),
        "{response}"
    );
    assert!(!response.contains("PATH="), "{response}");
}
