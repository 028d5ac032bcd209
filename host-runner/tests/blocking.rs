//! WASI calls that wait (filesystem, sleeping) work without stalling the runner's threads,
//! and count against the guest's time per call.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::Runner;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

fn get(runner: &Runner, path: &str) -> String {
    runner.raw(
        format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            runner.addr
        )
        .as_bytes(),
    )
}

/// A fresh directory holding `greeting.txt`; removed on drop.
struct Granted(PathBuf);

impl Granted {
    fn new() -> Granted {
        let dir = std::env::temp_dir().join(format!(
            "wsbox-dir-grant-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("create the granted dir");
        std::fs::write(dir.join("greeting.txt"), "hello from the host\n").expect("write");
        Granted(dir)
    }
}

impl Drop for Granted {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_granted_directory_is_readable_and_nothing_else() {
    let granted = Granted::new();
    let grant = format!("{}::/data", granted.0.display());
    let runner = Runner::with_test_handler(&["--dir", &grant]);
    let response = get(&runner, "/file");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with("\r\n\r\nhello from the host\n"),
        "{response}"
    );
    // The connection's neighbours are unaffected, and a second read works too.
    runner.connect("/none").echo("still serving");
    assert!(get(&runner, "/file").starts_with("HTTP/1.1 200"));

    let response = get(&Runner::with_test_handler(&[]), "/file");
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}

#[test]
fn a_guest_may_sleep_within_its_time_and_not_beyond() {
    let runner = Runner::with_test_handler(&["--guest-cpu", "500ms"]);
    let mut client = runner.connect("/sleep");
    let started = Instant::now();
    client.echo("100");
    assert!(started.elapsed() >= Duration::from_millis(100));
    client.echo("0");

    let started = Instant::now();
    client.send(Message::text("60000"));
    assert_eq!(client.expect_close(), Some(CloseCode::Error));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    let log = runner.wait_for_log("CPU time");
    assert!(log.contains("CPU time"), "{log}");
    runner.connect("/none").echo("still serving");
}
