//! A real browser: headless Chromium loads the default handler's page, whose script opens a
//! WebSocket back to the runner, sends a message and shows the echo in `#echo`.
//! `./test.sh` installs Chromium (`ensure_chromium` in scripts/setup.sh).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Runner;

/// The text of the element `<code id="{id}">…</code>` in a dumped DOM.
fn element_text<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let start = dom.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    let end = dom[start..].find('<')? + start;
    Some(&dom[start..end])
}

#[test]
fn chromium_shows_the_echoed_message() {
    let runner = Runner::start(&[]);
    let profile = std::env::temp_dir().join(format!("wsbox-chromium-{}", std::process::id()));
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://{}/", runner.addr))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium is installed (./test.sh runs ensure_chromium from scripts/setup.sh)");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = std::fs::remove_dir_all(&profile);
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("chromium output");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&output.stdout);
    let sent = element_text(&dom, "sent").expect("the page has #sent");
    let echo = element_text(&dom, "echo").expect("the page has #echo");
    assert!(sent.starts_with("hello from"), "nothing sent: {dom}");
    assert_eq!(echo, sent, "{dom}");
    let log = runner.wait_for_log("websocket closed");
    assert!(log.contains("close_code=\"1000\""), "{log}");
}
