//! A real browser: headless Chromium loads the default handler's page, whose script opens a
//! WebSocket back to the runner, sends a message and shows the echo in `#echo`.
//! `./test.sh` installs Chromium (`ensure_chromium` in scripts/setup.sh).

mod common;

use common::Runner;
use common::browser::demo_page_echoes;

#[test]
fn chromium_shows_the_echoed_message() {
    let runner = Runner::start(&[]);
    demo_page_echoes(&runner, &format!("http://{}/", runner.addr), &[]);
}
