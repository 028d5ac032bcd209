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

/// Loads the page once in a fresh headless Chromium and returns the DOM it dumps.
///
/// `--dump-dom` snapshots the page when the virtual-time budget runs out, and a WebSocket
/// does not hold virtual time back the way a pending fetch does, so on a loaded machine the
/// snapshot can come before the echo arrives. The caller retries instead of trusting one race.
fn dump_dom(url: &str, budget_ms: u32) -> String {
    let profile =
        std::env::temp_dir().join(format!("wsbox-chromium-{}-{budget_ms}", std::process::id()));
    let mut child = Command::new("chromium")
        .args(common::HEADLESS_CHROMIUM)
        .arg("--dump-dom")
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
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
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn chromium_shows_the_echoed_message() {
    let runner = Runner::start(&[]);
    let url = format!("http://{}/", runner.addr);
    let mut last = String::new();
    for budget_ms in [5_000, 10_000, 20_000, 40_000] {
        let dom = dump_dom(&url, budget_ms);
        let sent = element_text(&dom, "sent").expect("the page has #sent");
        let echo = element_text(&dom, "echo").expect("the page has #echo");
        if sent.starts_with("hello from") && echo == sent {
            let log = runner.wait_for_log("websocket closed");
            assert!(log.contains("close_code=\"1000\""), "{log}");
            return;
        }
        last = dom;
    }
    panic!("no attempt showed the echo of what the page sent; last DOM:\n{last}");
}
