//! The WIT contract only grows (docs/handlers.md): a handler built against an earlier
//! `wsbox:websocket` package keeps running on this runner. `fixtures/echo-wit-0.2.0.wasm` is
//! `guests/echo` as built against `wsbox:websocket@0.2.0` (commit 6185125's `wit/`), checked
//! in so that later changes to `wit/` cannot rebuild it.

mod common;

use common::Runner;
use tungstenite::Message;

const ECHO_0_2_0: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/echo-wit-0.2.0.wasm"
);

#[test]
fn a_handler_built_against_wit_0_2_0_still_serves() {
    let runner = Runner::start(&["--handler", ECHO_0_2_0]);
    let mut client = runner.connect("/any/path");
    client.echo("built against 0.2.0");
    client.send(Message::binary(vec![0, 1, 2, 255]));
    assert_eq!(client.next(), Ok(Message::binary(vec![0, 1, 2, 255])));
    // And through hibernation: a fresh instance of the old component.
    let runner = Runner::start(&["--handler", ECHO_0_2_0, "--hibernate-after", "0"]);
    let mut client = runner.connect("/");
    client.echo("one");
    client.echo("two after a wake");
}
