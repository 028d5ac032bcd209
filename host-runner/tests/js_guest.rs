//! A JavaScript handler (guests/test-js, built with sdk/js by scripts/build-guest.sh) in the
//! runner: every `connection` import through the SDK, against tungstenite, its faults
//! costing only its own connection, and `history`, `presence` and `store` as
//! common/sdk_imports.rs drives them (the Python and Rust SDKs too). One test, so that the component
//! (about 12 MB) is built and compiled once.

mod common;

use std::time::Duration;

use common::Runner;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

#[test]
fn a_javascript_handler_uses_every_import_and_faults_alone() {
    let wasm = common::build_guest("test-js");
    let handler = wasm.to_str().expect("a UTF-8 path");
    // The first start of a new build compiles it (seconds): the tests' own 10 s may not do.
    let runner = Runner::start(&["--handler", handler, "--hibernate-after", "300ms"]);
    assert!(runner.status_of_get("/").starts_with("HTTP/1.1 200"));
    assert!(runner.status_of_get("/throw").starts_with("HTTP/1.1 500"));

    let mut a = runner.connect_with("/", &["v1"]);
    assert_eq!(
        a.protocol.as_deref(),
        Some("v1"),
        "accept with the offered protocol"
    );
    let mut b = runner.connect("/");
    assert_eq!(a.ask("echo hello"), "hello");
    a.send(Message::binary(vec![9u8, 8, 7]));
    assert_eq!(a.next(), Ok(Message::binary(vec![9u8, 8, 7])));
    a.send(Message::text("bin 300"));
    assert_eq!(
        a.next(),
        Ok(Message::binary(
            (0..300).map(|i| (i % 256) as u8).collect::<Vec<u8>>()
        ))
    );
    let id_a = a.ask("id");
    let id_b = b.ask("id");
    assert_ne!(id_a, id_b);
    assert!(a.ask("request").contains("\"path\":\"/\""));
    assert!(a.ask("limits").contains("\"topics\":64"));

    // Topics.
    assert_eq!(a.ask("sub room"), "ok");
    assert_eq!(b.ask("sub room"), "ok");
    assert_eq!(a.ask("count room"), "2");
    assert_eq!(a.ask("topics"), "[\"room\"]");
    assert_eq!(b.ask("pub room hi all"), "1");
    assert_eq!(a.text(), "hi all");
    // An empty name (the command's topic missing) is refused, and so is one too long.
    assert_eq!(a.ask("sub"), "bad-name");
    assert_eq!(a.ask(&format!("sub {}", "t".repeat(300))), "bad-name");
    assert_eq!(b.ask("unsub room"), "true");

    // Sends to and closes of others.
    assert_eq!(a.ask(&format!("to {id_b} psst")), "ok");
    assert_eq!(b.text(), "psst");

    // The attachment outlives hibernation; the alarm wakes the handler.
    assert_eq!(a.ask("attach kept"), "ok");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(a.ask("attachment"), "kept");
    assert_eq!(a.ask("alarm 50"), "ok");
    assert_eq!(a.text(), "alarm");

    // Auto-responses are answered by the runner.
    assert_eq!(a.ask("auto ping? pong!"), "ok");
    assert_eq!(a.ask("ping?"), "pong!");
    assert_eq!(a.ask("unauto ping?"), "true");

    // A throw costs its connection only: 1011, and the others go on.
    a.send(Message::text("throw"));
    assert_eq!(a.expect_close(), Some(CloseCode::Error));
    assert_eq!(b.ask("echo still here"), "still here");
    runner.wait_for_log("thrown on request");

    // A close code of the handler's choosing, and another connection closed by id.
    let mut c = runner.connect("/");
    let id_c = c.ask("id");
    assert_eq!(b.ask(&format!("kick {id_c}")), "ok");
    assert_eq!(c.expect_close(), Some(CloseCode::from(4001)));
    b.send(Message::text("close 4000"));
    assert_eq!(b.expect_close(), Some(CloseCode::from(4000)));

    common::sdk_imports::rooms_and_store(&runner);
}
