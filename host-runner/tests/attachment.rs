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
