//! Headless Chromium loads the demo page over `https` from a runner with `--tls-cert`, and
//! the page's WebSocket goes back over `wss`. Chromium trusts the test's certificate by its
//! public key (`--ignore-certificate-errors-spki-list`), nothing else.
//! `./test.sh` installs Chromium (`ensure_chromium` in scripts/setup.sh).

mod common;

use common::Runner;
use common::browser::{demo_page_echoes, trusting};
use common::tls::Certs;

#[test]
fn chromium_echoes_over_wss() {
    let certs = Certs::new("chromium");
    let flags = certs.flags();
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let runner = Runner::start(&args);
    let trust = [trusting(&certs)];
    demo_page_echoes(&runner, &format!("https://{}/", runner.addr), &trust);
}
