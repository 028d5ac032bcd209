//! The glue run natively: which callback runs when, what reaches the wire, and the answers
//! the SDK gives itself. `tests/guest-host` runs the same code as a component under
//! wasmtime against tungstenite.

use std::cell::RefCell;

use super::__internal::{Limits, Request, handle, on_bytes, on_close_request, on_peer_gone};
use super::{Handler, Websocket};
use crate::session::{Event, Session};
use crate::{CloseCode, CloseFrame, Config, Message};

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(entry: String) {
    LOG.with_borrow_mut(|log| log.push(entry));
}

/// Echoes, and records every callback. The path picks how `handle` answers.
struct Recorder;

impl Handler for Recorder {
    fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        let started = match request.uri().path() {
            "/manual-101" => {
                let mut response = http::Response::new(Vec::new());
                *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
                return response;
            }
            "/page" => return http::Response::new(b"<p>hi</p>".to_vec()),
            "/small" => crate::start_with_config(
                request,
                None::<&str>,
                Config::default().max_message_size(10),
            ),
            _ => crate::start(request, crate::requested_protocols(request).next()),
        };
        match started {
            // The SDK drops a 101's body.
            Ok((response, _)) => response.map(|()| b"dropped".to_vec()),
            Err(error) => error.to_response(),
        }
    }

    fn on_message(&mut self, websocket: &mut Websocket, message: Message) {
        log(format!("message {message:?}"));
        if message == Message::Text("close me".into()) {
            websocket.close(4000u16, "bye").unwrap();
            log(format!(
                "send after close: {:?}",
                websocket.send_text("late").is_err()
            ));
        } else if websocket.send_message(&message).is_err() {
            log("echo refused: closing".into());
        }
    }

    fn on_ping(&mut self, _: &mut Websocket, data: &[u8]) {
        log(format!("ping {data:?}"));
    }

    fn on_pong(&mut self, _: &mut Websocket, data: &[u8]) {
        log(format!("pong {data:?}"));
    }

    fn on_close(&mut self, websocket: &mut Websocket, frame: Option<&CloseFrame>) {
        log(format!(
            "close {:?} error={}",
            frame.map(|f| f.code.0),
            websocket.session().error().is_some()
        ));
    }
}

const LIMITS: Limits = Limits {
    max_frame_size: 1000,
    max_message_size: 1000,
};

fn request(uri: &str, headers: &[(&str, &[u8])]) -> Request {
    Request {
        method: "GET".into(),
        uri: uri.into(),
        version: 11,
        headers: headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.to_vec()))
            .collect(),
        body: Vec::new(),
    }
}

fn upgrade(uri: &str, extra: &[(&str, &[u8])]) -> Request {
    let mut headers: Vec<(&str, &[u8])> = vec![
        ("host", b"localhost"),
        ("upgrade", b"websocket"),
        ("connection", b"Upgrade"),
        ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", b"13"),
    ];
    headers.extend_from_slice(extra);
    request(uri, &headers)
}

fn make() -> Box<dyn Handler> {
    Box::new(Recorder)
}

/// Forgets the previous test's connection on this thread, and its log.
fn fresh() {
    on_peer_gone();
    LOG.with_borrow_mut(Vec::clear);
}

fn take_log() -> Vec<String> {
    LOG.with_borrow_mut(std::mem::take)
}

/// A client session and the upgraded connection it talks to.
fn connected(uri: &str, limits: Limits) -> Session {
    fresh();
    assert_eq!(handle(make, upgrade(uri, &[]), limits).status, 101);
    Session::client(Config::default(), || [7, 7, 7, 7])
}

/// What the client queued, through `on-bytes`; returns the events the client got back and
/// the reply's `close`.
fn exchange(client: &mut Session) -> (Vec<Event>, bool) {
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    let reply = on_bytes(&wire);
    client.receive(&reply.data).unwrap();
    (
        std::iter::from_fn(|| client.poll_event()).collect(),
        reply.close,
    )
}

#[test]
fn callbacks_run_in_order_and_close_is_reported_once() {
    fresh();
    let response = handle(
        make,
        upgrade("/", &[("sec-websocket-protocol", b"chat, v2")]),
        LIMITS,
    );
    assert_eq!(response.status, 101);
    assert!(response.body.is_empty());
    assert!(
        response
            .headers
            .contains(&("sec-websocket-protocol".into(), b"chat".to_vec()))
    );

    let mut client = Session::client(Config::default(), || [1, 2, 3, 4]);
    client.send_text("hi").unwrap();
    client.send_ping(b"p").unwrap();
    client.send_pong(b"beat").unwrap();
    client.send_binary(&[1, 2]).unwrap();
    let (events, close) = exchange(&mut client);
    assert_eq!(
        events,
        [
            Event::Message(Message::Text("hi".into())),
            Event::Pong(b"p".to_vec()),
            Event::Message(Message::Binary(vec![1, 2])),
        ]
    );
    assert!(!close);

    client.close(CloseCode::NORMAL, "done").unwrap();
    let (events, close) = exchange(&mut client);
    assert!(matches!(&events[..], [Event::Close(f)] if f.code == CloseCode::NORMAL));
    assert!(close && client.is_finished());
    on_peer_gone();
    assert_eq!(
        take_log(),
        [
            r#"message Text("hi")"#,
            "ping [112]",
            "pong [98, 101, 97, 116]",
            "message Binary([1, 2])",
            "close Some(1000) error=false",
        ]
    );
}

#[test]
fn a_violation_closes_and_reports_none() {
    let mut client = connected("/", LIMITS);
    client.send_text("ok").unwrap();
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    // An unmasked frame from a client.
    wire.extend_from_slice(b"\x81\x02no");
    let reply = on_bytes(&wire);
    assert!(reply.close);
    client.receive(&reply.data).unwrap();
    assert_eq!(
        client.poll_event(),
        Some(Event::Message(Message::Text("ok".into())))
    );
    assert!(
        matches!(client.poll_event(), Some(Event::Close(f)) if f.code == CloseCode::PROTOCOL_ERROR)
    );
    on_peer_gone();
    assert_eq!(
        take_log(),
        [r#"message Text("ok")"#, "close None error=true"]
    );
}

#[test]
fn peer_gone_reports_none() {
    let _client = connected("/", LIMITS);
    on_peer_gone();
    assert_eq!(take_log(), ["close None error=false"]);
    // The state is gone: more bytes just close.
    assert!(on_bytes(b"\x81").close);
}

#[test]
fn handler_close_then_peer_reply() {
    let mut client = connected("/", LIMITS);
    client.send_text("close me").unwrap();
    client.send_text("in flight").unwrap();
    let (events, close) = exchange(&mut client);
    assert!(matches!(&events[..], [Event::Close(f)] if f.code.0 == 4000 && f.reason == "bye"));
    assert!(!close, "waiting for the peer's close");
    let (events, close) = exchange(&mut client);
    assert!(events.is_empty());
    assert!(close);
    assert_eq!(
        take_log(),
        [
            r#"message Text("close me")"#,
            "send after close: true",
            "close Some(4000) error=false",
        ]
    );
}

#[test]
fn close_request_starts_the_handshake() {
    let mut client = connected("/", LIMITS);
    let reply = on_close_request(1001, "going away");
    assert!(!reply.close);
    client.receive(&reply.data).unwrap();
    assert!(
        matches!(client.poll_event(), Some(Event::Close(f)) if f.code == CloseCode::GOING_AWAY)
    );
    let (_, close) = exchange(&mut client);
    assert!(close);
    assert_eq!(take_log(), ["close Some(1001) error=false"]);
}

#[test]
fn the_stricter_limit_wins() {
    // The handler's `start_with_config` allows 10 bytes, the host 1000.
    let mut client = connected("/small", LIMITS);
    client.send_binary(&[0; 11]).unwrap();
    let (events, close) = exchange(&mut client);
    assert!(matches!(&events[..], [Event::Close(f)] if f.code == CloseCode::MESSAGE_TOO_BIG));
    assert!(close);
    // The handler's default allows 64 MiB, the host 1000.
    let mut client = connected("/", LIMITS);
    client.send_binary(&[0; 1001]).unwrap();
    let (events, _) = exchange(&mut client);
    assert!(matches!(&events[..], [Event::Close(f)] if f.code == CloseCode::MESSAGE_TOO_BIG));
}

#[test]
fn the_sdk_answers_what_the_handler_cannot() {
    fresh();
    assert_eq!(
        handle(make, request("/", &[("bad name", b"x")]), LIMITS).status,
        400
    );
    assert_eq!(
        handle(make, request("/", &[("host", b"\0")]), LIMITS).status,
        400
    );
    let mut http2 = request("/page", &[]);
    http2.version = 20;
    assert_eq!(handle(make, http2, LIMITS).status, 400);
    // Not upgraded: bytes and close requests just close.
    assert!(on_bytes(b"\x81\x80").close);
    assert!(on_close_request(1001, "").close);
    // A 101 that did not come from `start` has no handshake behind it.
    assert_eq!(
        handle(make, upgrade("/manual-101", &[]), LIMITS).status,
        500
    );
    let page = handle(make, request("/page", &[]), LIMITS);
    assert_eq!((page.status, &page.body[..]), (200, &b"<p>hi</p>"[..]));
    // After an upgrade, further requests are refused without asking the handler.
    assert_eq!(handle(make, upgrade("/", &[]), LIMITS).status, 101);
    assert_eq!(handle(make, request("/page", &[]), LIMITS).status, 500);
    assert!(take_log().is_empty());
}

/// What `peer` queued, through `on-bytes`; the reply is not fed back, so the peer keeps
/// sending as one that ignores our close frame would.
fn push(peer: &mut Session) -> bool {
    let mut wire = Vec::new();
    peer.poll_transmit(&mut wire);
    on_bytes(&wire).close
}

#[test]
fn only_on_close_follows_the_guests_close() {
    // The handler closes on "close me"; the rest arrives in the same call and in later ones.
    let mut peer = connected("/", LIMITS);
    peer.send_text("close me").unwrap();
    peer.send_text("in flight").unwrap();
    peer.send_ping(b"p").unwrap();
    assert!(!push(&mut peer));
    peer.send_text("later").unwrap();
    peer.send_pong(b"q").unwrap();
    assert!(!push(&mut peer));
    peer.close(CloseCode::NORMAL, "").unwrap();
    assert!(push(&mut peer));
    assert_eq!(
        take_log(),
        [
            r#"message Text("close me")"#,
            "send after close: true",
            "close Some(1000) error=false",
        ]
    );

    // The host asks for the close (shutdown, idle timeout).
    let mut peer = connected("/", LIMITS);
    assert!(!on_close_request(1001, "going away").close);
    peer.send_text("after the close request").unwrap();
    assert!(!push(&mut peer));
    peer.close(CloseCode::NORMAL, "").unwrap();
    assert!(push(&mut peer));
    assert_eq!(take_log(), ["close Some(1000) error=false"]);
}
