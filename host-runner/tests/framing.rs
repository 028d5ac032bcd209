//! The runner frames HTTP responses itself: framing and hop-by-hop headers a guest sets
//! (`wit/types.wit`, `response.headers`) never reach the wire.

mod common;

use std::io::{Read, Write};

use common::Runner;
use tungstenite::Message;

/// Headers the test handler's `/framing` paths set and the runner must drop.
const HOP_BY_HOP: [&str; 9] = [
    "\r\ncontent-length: 1000",
    "\r\ntransfer-encoding:",
    "\r\nkeep-alive:",
    "\r\nte:",
    "\r\ntrailer:",
    "\r\nproxy-connection:",
    "\r\nproxy-authenticate:",
    "\r\nx-hop:",
    "\r\nupgrade:",
];

#[test]
fn guest_framing_headers_do_not_reach_the_wire() {
    let runner = Runner::with_test_handler(&[]);
    // Two requests pipelined: a response split by a false length would show up as a
    // third message, or corrupt the second.
    let request = format!(
        "GET /framing HTTP/1.1\r\nHost: {0}\r\n\r\nGET /framing HTTP/1.1\r\nHost: {0}\r\n\
         Connection: close\r\n\r\n",
        runner.addr
    );
    let response = runner.raw(request.as_bytes());
    let lower = response.to_ascii_lowercase();
    let body = "framed by the host\n";
    let one = format!("content-length: {}\r\n", body.len());
    assert_eq!(
        lower.matches("http/1.1 200 ok\r\n").count(),
        2,
        "{response}"
    );
    assert_eq!(lower.matches(&one).count(), 2, "{response}");
    for header in HOP_BY_HOP {
        assert!(
            !lower.contains(header),
            "{header} reached the wire:\n{response}"
        );
    }
    // The guest's end-to-end header survives; only the runner's own `connection: close`
    // (on the last response, which asked for it) speaks of the connection.
    assert_eq!(lower.matches("x-kept: yes\r\n").count(), 2, "{response}");
    assert!(!lower.contains("connection: x-hop"), "{response}");
    let mut rest = lower.as_str();
    for _ in 0..2 {
        let (_, after_head) = rest.split_once("\r\n\r\n").expect("a response head");
        assert!(after_head.starts_with(body), "{response}");
        rest = &after_head[body.len()..];
    }
    assert!(rest.is_empty(), "bytes after the last response: {rest:?}");
}

#[test]
fn a_101_keeps_its_upgrade_headers_and_nothing_else() {
    let runner = Runner::with_test_handler(&[]);
    let (head, mut stream) = runner.upgrade_head("/framing-101", &[]);
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket\r\n"), "{head}");
    assert!(head.contains("connection: upgrade\r\n"), "{head}");
    assert_eq!(head.matches("connection:").count(), 1, "{head}");
    assert!(head.contains("sec-websocket-accept:"), "{head}");
    // Every one but `upgrade`, which a 101 keeps (its value is checked above).
    for header in HOP_BY_HOP.iter().filter(|h| !h.contains("upgrade")) {
        assert!(!head.contains(header), "{header} reached the wire:\n{head}");
    }
    // And the WebSocket works: a masked text frame "hi" is echoed unmasked.
    stream
        .write_all(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2])
        .expect("write a frame");
    let mut echo = [0u8; 4];
    stream.read_exact(&mut echo).expect("read the echo");
    assert_eq!(echo, [0x81, 2, b'h', b'i']);
}

#[test]
fn tungstenite_upgrades_on_the_cleaned_101() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/framing-101");
    client.echo("framed");
    client.send(Message::binary(vec![1, 2, 3]));
    assert_eq!(client.next(), Ok(Message::binary(vec![1, 2, 3])));
}
