//! The runner frames the WebSocket itself: the guest gets complete messages only. Pings
//! are answered by the host, fragments are joined before `on-message`, and a control frame
//! between fragments is handled without the guest.

mod common;

use std::io::Write;

use common::{PING, RawClient, Runner, TEXT};
use tungstenite::Message;

/// The test handler's `/print` logs one such line per `on-message` call.
const ON_MESSAGE: &str = "guest stdout in on-message: ";

#[test]
fn pings_are_answered_without_the_guest() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/print");
    for payload in [&b"one"[..], b"", &[7; 125]] {
        client.send(Message::Ping(payload.to_vec().into()));
        assert_eq!(client.next(), Ok(Message::Pong(payload.to_vec().into())));
    }
    client.echo("only this");
    let line = runner.wait_for_line(client.local_addr(), ON_MESSAGE);
    assert!(line.contains(&format!("{ON_MESSAGE}9 bytes")), "{line}");
    let calls = runner
        .lines_of(client.local_addr())
        .iter()
        .filter(|line| line.contains(ON_MESSAGE))
        .count();
    assert_eq!(calls, 1, "{:?}", runner.lines_of(client.local_addr()));
}

#[test]
fn fragments_reach_the_guest_as_one_message() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect_raw("/print");
    let peer = client.stream.local_addr().expect("local address");
    let mut input = Vec::new();
    // "frag" (text, not final), a ping, "men" and "ted" (continuations, the last final).
    let mut first = RawClient::frame(TEXT, b"frag");
    first[0] &= 0x7f;
    input.extend(first);
    input.extend(RawClient::frame(PING, b"between"));
    let mut middle = RawClient::frame(0x0, b"men");
    middle[0] &= 0x7f;
    input.extend(middle);
    input.extend(RawClient::frame(0x0, b"ted"));
    client.stream.write_all(&input).expect("write");

    // The pong first: its ping came before the message was complete (RFC 6455 asks a pong
    // "as soon as practical"; Autobahn 5.6 expects it before the echo).
    let frames = [
        client.read_frame().expect("read").expect("a frame"),
        client.read_frame().expect("read").expect("a frame"),
    ];
    assert_eq!(
        frames,
        [(0xA, b"between".to_vec()), (TEXT, b"fragmented".to_vec())]
    );
    let line = runner.wait_for_line(peer, ON_MESSAGE);
    assert!(line.contains(&format!("{ON_MESSAGE}10 bytes")), "{line}");
    let calls = runner
        .lines_of(peer)
        .iter()
        .filter(|line| line.contains(ON_MESSAGE))
        .count();
    assert_eq!(calls, 1);
}

#[test]
fn a_frame_sent_with_the_upgrade_request_is_not_lost() {
    let runner = Runner::with_test_handler(&[]);
    let mut stream = std::net::TcpStream::connect(runner.addr).expect("connect");
    stream
        .set_read_timeout(Some(common::IO_TIMEOUT))
        .expect("timeout");
    // The request and a first frame in one write: the frame arrives with the head.
    let mut input = format!(
        "GET /none HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        runner.addr
    )
    .into_bytes();
    input.extend(RawClient::frame(TEXT, b"early"));
    stream.write_all(&input).expect("write");
    let response = common::read_response(&mut stream);
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    let mut echo = [0u8; 7];
    std::io::Read::read_exact(&mut stream, &mut echo).expect("the echo");
    assert_eq!(&echo, b"\x81\x05early");
}
