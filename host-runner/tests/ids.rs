//! Connections by id: every WebSocket has an unguessable id (its runner's node id, then 96
//! random bits), the same in `handle` and after; a guest can send to another connection or
//! close it by id, and learns when that id is gone or closing. The guest may send first
//! (`on-open`, and in `handle`).

mod common;

use std::collections::HashSet;
use std::io::Write;

use common::Runner;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

fn is_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An id the runner never issued (the runner issues 96 random bits after its node id; zero
/// is as good as any).
const NEVER_ISSUED: &str = "00000000000000000000000000000000";

#[test]
fn ids_are_the_node_and_96_random_bits_and_the_same_in_handle() {
    let runner = Runner::with_test_handler(&[]);
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let mut client = runner.connect("/id");
        let id = client.text();
        assert!(is_id(&id), "{id:?}");
        assert!(seen.insert(id), "an id was issued twice");
    }
    // The first 8 digits name the runner (for routing in a cluster); the bits after them
    // vary everywhere, not only in a counter's low digits.
    let nodes: HashSet<&str> = seen.iter().map(|id| &id[..8]).collect();
    assert_eq!(nodes.len(), 1, "{seen:?}");
    for position in 8..32 {
        let digits: HashSet<u8> = seen.iter().map(|id| id.as_bytes()[position]).collect();
        assert!(digits.len() > 1, "digit {position} never changes: {seen:?}");
    }
    let other = Runner::with_test_handler(&[]);
    let id = other.connect("/id").text();
    assert!(
        !nodes.contains(&id[..8]),
        "two runners share a node id: {id}"
    );

    let mut client = runner.connect("/request");
    assert_eq!(client.text(), "from handle");
    let description = client.text();
    let field = |name: &str| {
        description
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {description}"))
            .to_owned()
    };
    assert!(is_id(&field("id")), "{description}");
    assert_eq!(field("handle-id"), field("id"), "{description}");
}

#[test]
fn the_guest_sends_first_from_handle_and_on_open() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect_on(
        std::net::TcpStream::connect(runner.addr).expect("connect"),
        "/request?nick=ann&room=1",
        &[("x-probe", "one"), ("sec-websocket-protocol", "v2, v1")],
    );
    // What `handle` sent goes out right after the 101, before `on-open`'s message.
    assert_eq!(client.text(), "from handle");
    let description = client.text();
    for line in [
        "path=/request",
        "query=nick=ann&room=1",
        "protocol=v2",
        "x-probe=one",
        "handle-path=/request",
    ] {
        assert!(
            description.lines().any(|l| l == line),
            "{line}: {description}"
        );
    }
    client.echo("and then echo");
}

#[test]
fn send_to_reaches_another_connection() {
    let runner = Runner::with_test_handler(&[]);
    let mut receiver = runner.connect("/id");
    let receiver_id = receiver.text();
    let mut sender = runner.connect("/send-to");
    let sender_id = sender.text();
    assert_ne!(sender_id, receiver_id);

    for i in 0..50 {
        assert_eq!(sender.ask(&format!("{receiver_id}:message {i}")), "ok");
    }
    for i in 0..50 {
        assert_eq!(receiver.text(), format!("message {i}"), "in order");
    }
    // The receiver's own traffic is unaffected.
    receiver.echo("mine");
    // Sending to one's own id reaches one's own client, before the answer.
    sender.send(Message::text(format!("{sender_id}:to myself")));
    assert_eq!(sender.text(), "to myself");
    assert_eq!(sender.text(), "ok");
}

#[test]
fn send_to_an_id_that_is_gone() {
    let runner = Runner::with_test_handler(&[]);
    let mut sender = runner.connect("/send-to");
    let _ = sender.text();
    assert_eq!(sender.ask(&format!("{NEVER_ISSUED}:hello")), "gone");
    assert_eq!(sender.ask("not-an-id:hello"), "gone");

    let mut receiver = runner.connect("/id");
    let receiver_id = receiver.text();
    assert_eq!(sender.ask(&format!("{receiver_id}:before")), "ok");
    assert_eq!(receiver.text(), "before");
    receiver.close(1000, "leaving");
    assert_eq!(receiver.expect_close(), Some(CloseCode::Normal));
    runner.wait_for_line(receiver.local_addr(), "websocket closed");
    assert_eq!(sender.ask(&format!("{receiver_id}:after")), "gone");

    // A connection that vanished without a close frame is gone too.
    let mut vanishing = runner.connect("/id");
    let vanishing_id = vanishing.text();
    let peer = vanishing.local_addr();
    drop(vanishing);
    runner.wait_for_line(peer, "websocket closed");
    assert_eq!(sender.ask(&format!("{vanishing_id}:after")), "gone");
}

#[test]
fn close_other_closes_that_connection_only() {
    let runner = Runner::with_test_handler(&[]);
    let mut target = runner.connect("/id");
    let target_id = target.text();
    let mut bystander = runner.connect("/id");
    let _ = bystander.text();
    let mut closer = runner.connect("/close-other");
    let _ = closer.text();

    assert_eq!(closer.ask(&format!("{target_id} 4003 you are out")), "ok");
    let peer = target.local_addr();
    match target.next() {
        Err(code) => assert_eq!(code, Some(CloseCode::from(4003))),
        Ok(message) => panic!("expected the close frame, got {message:?}"),
    }
    // tungstenite answers the close; the target's guest hears a clean close.
    assert_eq!(target.expect_close(), None);
    let on_close = runner.on_close_of(peer);
    assert!(on_close.starts_with("4003 true"), "{on_close}");

    runner.wait_for_line(peer, "websocket closed");
    assert_eq!(closer.ask(&target_id), "gone");
    assert_eq!(closer.ask(NEVER_ISSUED), "gone");
    bystander.echo("unaffected");
    let answer = closer.ask("nonsense 4000x reason");
    assert!(answer.starts_with("unknown command"), "{answer}");
}

#[test]
fn a_closing_connection_takes_no_more_messages() {
    // The target never answers close frames (a raw client), so it stays closing for the
    // handshake timeout.
    let runner = Runner::with_test_handler(&["--handshake-timeout", "5s"]);
    let mut target = runner.connect_raw("/id");
    let Some((_, id)) = target.read_frame().expect("read") else {
        panic!("no id");
    };
    let target_id = String::from_utf8(id).expect("utf-8 id");
    let mut closer = runner.connect("/close-other");
    let _ = closer.text();
    assert_eq!(closer.ask(&target_id), "ok");
    let Some((opcode, payload)) = target.read_frame().expect("read") else {
        panic!("no close frame");
    };
    assert_eq!(opcode, common::CLOSE);
    assert_eq!(common::close_code(&payload), Some(4000));
    assert_eq!(&payload[2..], b"closed by other");

    let mut sender = runner.connect("/send-to");
    let _ = sender.text();
    assert_eq!(sender.ask(&format!("{target_id}:too late")), "closed");
    // Closing it again sends nothing more: the connection ends after the timeout with the
    // one close frame it had.
    let again = closer.ask(&target_id);
    assert!(again == "ok" || again == "closed", "{again}");
    let frames = target.read_to_end().expect("read");
    assert!(frames.is_empty(), "after the close frame: {frames:?}");
}

#[test]
fn a_connection_without_a_websocket_is_gone() {
    let runner = Runner::with_test_handler(&[]);
    // A keep-alive HTTP connection: it has an id, but no WebSocket to send to or close.
    let mut http = std::net::TcpStream::connect(runner.addr).expect("connect");
    http.set_read_timeout(Some(common::IO_TIMEOUT))
        .expect("timeout");
    let request = format!("GET /whoami HTTP/1.1\r\nHost: {}\r\n\r\n", runner.addr);
    http.write_all(request.as_bytes()).expect("write");
    let response = common::read_response(&mut http);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (_, id) = response.split_once("\r\n\r\n").expect("a body");
    assert!(is_id(id), "{response}");

    let mut sender = runner.connect("/send-to");
    let _ = sender.text();
    assert_eq!(sender.ask(&format!("{id}:hello")), "gone");
    let mut closer = runner.connect("/close-other");
    let _ = closer.text();
    assert_eq!(closer.ask(id), "gone");
    // The HTTP connection is untouched, and keeps its id.
    http.write_all(request.as_bytes()).expect("write");
    let again = common::read_response(&mut http);
    assert!(again.ends_with(id), "{again}");
}

#[test]
fn sends_from_a_handle_that_does_not_upgrade_are_dropped() {
    let runner = Runner::with_test_handler(&[]);
    // `/request` sends "from handle" before it answers; without an upgrade header the
    // answer is a 400, and the queued message must not reach the HTTP stream.
    let response = runner.raw(
        format!(
            "GET /request HTTP/1.1\r\nHost: {0}\r\n\r\n\
             GET /whoami HTTP/1.1\r\nHost: {0}\r\nConnection: close\r\n\r\n",
            runner.addr
        )
        .as_bytes(),
    );
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(!response.contains("from handle"), "{response}");
    let (_, second) = response
        .split_once("\nHTTP/1.1 200")
        .unwrap_or_else(|| panic!("no second response right after the first: {response:?}"));
    let (_, id) = second.split_once("\r\n\r\n").expect("a body");
    assert!(is_id(id), "{response:?}");
}

#[test]
fn close_codes_that_may_not_be_sent_become_1000_and_long_reasons_are_cut() {
    let runner = Runner::with_test_handler(&[]);
    let mut closer = runner.connect("/close-other");
    let _ = closer.text();
    for code in [1005u16, 1006, 1015, 999, 5000] {
        let mut target = runner.connect("/id");
        let id = target.text();
        assert_eq!(closer.ask(&format!("{id} {code} odd")), "ok");
        assert_eq!(target.expect_close(), Some(CloseCode::Normal), "{code}");
    }
    // 200 bytes of two-byte characters: cut to at most 123 bytes, on a character boundary
    // (tungstenite refuses a close reason that is not UTF-8).
    let mut target = runner.connect("/id");
    let id = target.text();
    let reason = "é".repeat(100);
    assert_eq!(closer.ask(&format!("{id} 4000 {reason}")), "ok");
    let frame = loop {
        match target.socket.read() {
            Ok(Message::Close(frame)) => break frame.expect("a close frame with a code"),
            Ok(_) => continue,
            Err(error) => panic!("{error}"),
        }
    };
    assert_eq!(frame.code, CloseCode::from(4000));
    let cut = frame.reason.as_str();
    assert!(!cut.is_empty() && cut.len() <= 123, "{} bytes", cut.len());
    assert!(reason.starts_with(cut), "{cut}");
}
