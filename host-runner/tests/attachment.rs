//! The attachment: a small value the runner keeps for each connection's guest, from
//! `handle` on, up to `--max-attachment` bytes (16 KiB by default).

mod common;

use common::Runner;
use tungstenite::Message;

#[test]
fn the_attachment_round_trips_and_is_per_connection() {
    let runner = Runner::with_test_handler(&[]);
    let mut first = runner.connect("/attach?set=from-handle");
    let mut second = runner.connect("/attach");
    first.send(Message::text("get"));
    assert_eq!(first.next(), Ok(Message::binary(b"from-handle".to_vec())));
    second.send(Message::text("get"));
    assert_eq!(
        second.next(),
        Ok(Message::binary(Vec::new())),
        "empty at first"
    );

    assert_eq!(second.ask("set hello there"), "ok");
    first.send(Message::text("get"));
    assert_eq!(first.next(), Ok(Message::binary(b"from-handle".to_vec())));
    second.send(Message::text("get"));
    assert_eq!(second.next(), Ok(Message::binary(b"hello there".to_vec())));
    // Replaced, not appended.
    assert_eq!(second.ask("set x"), "ok");
    second.send(Message::text("get"));
    assert_eq!(second.next(), Ok(Message::binary(b"x".to_vec())));
}

#[test]
fn the_attachment_is_limited_to_16_kib() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/attach");
    assert_eq!(client.ask("fill 16384"), "ok");
    client.send(Message::text("get"));
    assert_eq!(client.next(), Ok(Message::binary(vec![b'a'; 16384])));
    assert_eq!(client.ask("fill 16385"), "too-large 16384");
    // A refused value leaves the old one.
    client.send(Message::text("get"));
    assert_eq!(client.next(), Ok(Message::binary(vec![b'a'; 16384])));
    assert_eq!(client.ask("fill 0"), "ok");
    client.send(Message::text("get"));
    assert_eq!(client.next(), Ok(Message::binary(Vec::new())));

    let runner = Runner::with_test_handler(&["--max-attachment", "100"]);
    let mut client = runner.connect("/attach");
    assert_eq!(client.ask("fill 100"), "ok");
    assert_eq!(client.ask("fill 101"), "too-large 100");
}

#[test]
fn state_made_for_a_refused_upgrade_does_not_reach_a_later_one() {
    let runner = Runner::with_test_handler(&[]);
    // One TCP connection (one guest instance): first a plain GET that sets the attachment
    // and subscribes in `handle`, answered 400 (no upgrade); then an upgrade.
    let mut stream = std::net::TcpStream::connect(runner.addr).expect("connect");
    stream
        .set_read_timeout(Some(common::IO_TIMEOUT))
        .expect("timeout");
    let plain = format!(
        "GET /attach?set=stale&sub=stale HTTP/1.1\r\nHost: {}\r\n\r\n",
        runner.addr
    );
    std::io::Write::write_all(&mut stream, plain.as_bytes()).expect("write");
    let response = common::read_response(&mut stream);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    let (head, stream) = runner.upgrade_head_on(stream, "/attach", &[]);
    assert!(head.starts_with("http/1.1 101"), "{head}");
    let mut client = common::RawClient::on(stream);
    client.send(common::TEXT, b"get").expect("send");
    assert_eq!(
        client.read_frame().expect("read"),
        Some((common::BINARY, Vec::new())),
        "the refused request's attachment carried over"
    );
    let mut other = runner.connect("/topics");
    assert_eq!(other.ask("count stale"), "subscribers 0");
}
