//! Headless Chromium loads the demo page over `https` from a runner with `--tls-cert`, and
//! the page's WebSocket goes back over `wss`. Chromium trusts the test's certificate by its
//! public key (`--ignore-certificate-errors-spki-list`), nothing else.
//! `./test.sh` installs Chromium (`ensure_chromium` in scripts/setup.sh).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::Runner;
use common::tls::Certs;

/// The text of the element `<code id="{id}">…</code>` in a dumped DOM.
fn element_text<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let start = dom.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    let end = dom[start..].find('<')? + start;
    Some(&dom[start..end])
}

/// Loads `url` in a fresh headless Chromium that trusts `spki_hash` and returns the DOM
/// it dumps when the virtual-time budget runs out (a WebSocket does not hold virtual time
/// back, so the caller retries with larger budgets on a loaded machine).
fn dump_dom(url: &str, spki_hash: &str, budget_ms: u32) -> String {
    let profile = std::env::temp_dir().join(format!(
        "wsbox-chromium-tls-{}-{budget_ms}",
        std::process::id()
    ));
    let mut child = Command::new("chromium")
        .args(common::HEADLESS_CHROMIUM)
        .arg(format!("--ignore-certificate-errors-spki-list={spki_hash}"))
        .arg("--dump-dom")
        .arg(format!("--virtual-time-budget={budget_ms}"))
        // The SPKI list is honoured only with a profile directory of its own.
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
fn chromium_echoes_over_wss() {
    let certs = Certs::new("chromium");
    let flags = certs.flags();
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let runner = Runner::start(&args);
    let digest = ring::digest::digest(&ring::digest::SHA256, &certs.spki);
    let spki_hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    let url = format!("https://{}/", runner.addr);
    let mut last = String::new();
    for budget_ms in [5_000, 10_000, 20_000, 40_000] {
        let dom = dump_dom(&url, &spki_hash, budget_ms);
        let sent = element_text(&dom, "sent");
        let echo = element_text(&dom, "echo");
        if let (Some(sent), Some(echo)) = (sent, echo)
            && sent.starts_with("hello from")
            && echo == sent
        {
            let log = runner.wait_for_log("websocket closed");
            assert!(log.contains("close_code=\"1000\""), "{log}");
            return;
        }
        last = dom;
    }
    panic!("no attempt showed the echo of what the page sent over wss; last DOM:\n{last}");
}
