//! Python handlers (built with sdk/python and componentize-py by scripts/build-guest.sh) in
//! the runner: guests/echo-py's ordinary response, text and binary echoes against
//! tungstenite, and a wake after hibernation (a fresh instance of an 18 MB component);
//! guests/test-py's `history`, `presence` and `store` through the SDK, as
//! common/sdk_imports.rs drives them (the JavaScript and Rust SDKs too).

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

#[test]
fn a_python_handler_uses_history_presence_and_the_store() {
    let wasm = common::build_guest("test-py");
    let runner = Runner::start(&["--handler", wasm.to_str().expect("a UTF-8 path")]);
    assert!(runner.status_of_get("/").starts_with("HTTP/1.1 200"));
    let mut client = runner.connect("/");
    assert_eq!(client.ask("echo hello"), "hello");
    client.send(Message::binary(vec![7u8, 0, 255]));
    assert_eq!(client.next(), Ok(Message::binary(vec![7u8, 0, 255])));
    common::sdk_imports::rooms_and_store(&runner);
}
