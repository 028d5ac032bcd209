//! A Python handler (guests/echo-py, built with sdk/python and componentize-py by
//! scripts/build-guest.sh) in the runner: an ordinary response, text and binary echoes
//! against tungstenite, and a wake after hibernation (a fresh instance of an 18 MB component).

mod common;

use std::time::Duration;

use common::Runner;
use tungstenite::Message;

#[test]
fn a_python_handler_echoes_and_wakes() {
    let wasm = common::build_guest("echo-py");
    let handler = wasm.to_str().expect("a UTF-8 path");
    let runner = Runner::start(&["--handler", handler, "--hibernate-after", "300ms"]);
    assert!(runner.status_of_get("/").starts_with("HTTP/1.1 200"));
    let mut client = runner.connect("/any/path");
    client.echo("hello from tungstenite");
    client.send(Message::binary(vec![0u8, 1, 2, 255]));
    assert_eq!(client.next(), Ok(Message::binary(vec![0u8, 1, 2, 255])));
    std::thread::sleep(Duration::from_millis(800));
    client.echo("after hibernation");
    assert!(
        common::close_and_count_wakes(&runner, client) >= 1,
        "no wake"
    );
}
