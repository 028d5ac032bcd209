//! Headless Chromium, which offers permessage-deflate on every WebSocket, loads the demo page
//! from the runner and shows what was agreed (`socket.extensions`) over `ws` and `wss`; the
//! runner answers without context takeover either way by default, and declines with
//! `--deflate off`. `./test.sh` installs Chromium (`ensure_chromium` in scripts/setup.sh).

mod common;

use common::Runner;
use common::browser::{demo_page_echoes, trusting};
use common::tls::Certs;

/// What the runner answers by default to Chromium's offer
/// (`permessage-deflate; client_max_window_bits`), as the browser reports it.
const SHARED: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

#[test]
fn chromium_negotiates_permessage_deflate_over_ws() {
    // Threshold 0: the page's short echo comes back compressed too, for Chromium to inflate.
    let runner = Runner::start(&["--deflate-threshold", "0"]);
    let extensions = demo_page_echoes(&runner, &format!("http://{}/", runner.addr), &[]);
    assert_eq!(extensions, SHARED);
}

#[test]
fn chromium_negotiates_permessage_deflate_over_wss() {
    let certs = Certs::new("deflate-chromium");
    let mut args = certs.flags();
    args.extend(["--deflate-threshold".to_owned(), "0".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let runner = Runner::start(&args);
    let extensions = demo_page_echoes(
        &runner,
        &format!("https://{}/", runner.addr),
        &[trusting(&certs)],
    );
    assert_eq!(extensions, SHARED);
}

#[test]
fn chromium_gets_no_extension_with_deflate_off() {
    let runner = Runner::start(&["--deflate", "off"]);
    let extensions = demo_page_echoes(&runner, &format!("http://{}/", runner.addr), &[]);
    assert_eq!(extensions, "none");
}
