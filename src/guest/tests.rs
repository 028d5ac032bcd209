//! The glue run natively: which handler each call reaches, in what order, with what, and
//! the answers the SDK gives itself. Nothing here calls a `connection` import (natively
//! they are stubs that panic); the runner's tests run the SDK's guests under the real host.

use std::cell::RefCell;
use std::time::Duration;

use super::__internal::bindings::wsbox::websocket::connection as host;
use super::__internal::{
    Message as WitMessage, Request, handle, on_alarm, on_close, on_message, on_open,
};
use super::websocket::alarm_ms;
use super::{Close, Handler, Id, RequestInfo, SendError, Websocket};
use crate::Message;

thread_local! {
    // Each test runs on a thread of its own, so each starts with an empty log and no
    // connection.
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(entry: String) {
    LOG.with_borrow_mut(|log| log.push(entry));
}

fn take_log() -> Vec<String> {
    LOG.with_borrow_mut(std::mem::take)
}

/// Records every call, numbered by the handler value it reached. The path picks how
/// `handle` answers.
struct Recorder(usize);

impl Handler for Recorder {
    fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        log(format!(
            "{} handle {} {} {:?}",
            self.0,
            request.method(),
            request.uri(),
            request.headers().get_all("x-a").iter().collect::<Vec<_>>()
        ));
        match request.uri().path() {
            "/page" => http::Response::builder()
                .header("x-b", "1")
                .header("x-b", "2")
                .body(b"<p>hi</p>".to_vec())
                .expect("static response"),
            // The SDK drops a 101's body.
            _ => super::accept(request, None)
                .map(|response| response.map(|_| b"dropped".to_vec()))
                .unwrap_or_else(|error| error.to_response()),
        }
    }

    fn on_open(&mut self, _: &mut Websocket) {
        log(format!("{} open", self.0));
    }

    fn on_message(&mut self, _: &mut Websocket, message: Message) {
        log(format!("{} message {message:?}", self.0));
    }

    fn on_alarm(&mut self, _: &mut Websocket) {
        log(format!("{} alarm", self.0));
    }

    fn on_close(&mut self, _: &mut Websocket, close: &Close) {
        log(format!("{} close {close:?}", self.0));
    }
}

thread_local! {
    static MADE: RefCell<usize> = const { RefCell::new(0) };
}

/// What `export_handler!(Recorder::new())` would pass: a fresh, numbered handler.
fn make() -> Box<dyn Handler> {
    let n = MADE.with_borrow_mut(|made| {
        *made += 1;
        *made
    });
    Box::new(Recorder(n))
}

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

fn upgrade(uri: &str) -> Request {
    request(
        uri,
        &[
            ("host", b"localhost"),
            ("upgrade", b"websocket"),
            ("connection", b"Upgrade"),
            ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", b"13"),
        ],
    )
}

#[test]
fn one_handler_per_connection_gets_every_call_in_order() {
    let page = handle(make, request("/page?q=1", &[("x-a", b"1"), ("x-a", b"2")]));
    assert_eq!((page.status, &page.body[..]), (200, &b"<p>hi</p>"[..]));
    let x_b: Vec<_> = page.headers.iter().filter(|(n, _)| n == "x-b").collect();
    assert_eq!(
        x_b,
        [
            &("x-b".into(), b"1".to_vec()),
            &("x-b".into(), b"2".to_vec())
        ]
    );

    let response = handle(make, upgrade("/chat"));
    assert_eq!(response.status, 101);
    assert!(response.body.is_empty(), "a 101's body is dropped");
    on_open();
    on_message(WitMessage::Text("hi".into()));
    on_alarm();
    on_message(WitMessage::Binary(vec![1, 2]));
    on_close(1000, "bye".into(), true);
    assert_eq!(
        take_log(),
        [
            r#"1 handle GET /page?q=1 ["1", "2"]"#,
            "1 handle GET /chat []",
            "1 open",
            r#"1 message Text("hi")"#,
            "1 alarm",
            "1 message Binary([1, 2])",
            r#"1 close Close { code: CloseCode(1000), reason: "bye", clean: true }"#,
        ]
    );
}

#[test]
fn nothing_reaches_a_handler_after_on_close() {
    assert_eq!(handle(make, upgrade("/")).status, 101);
    on_close(1006, String::new(), false);
    on_message(WitMessage::Text("late".into()));
    on_alarm();
    on_close(1000, String::new(), true);
    // An instance is never reused after on-close; if it were, it would start afresh.
    assert_eq!(handle(make, upgrade("/")).status, 101);
    assert_eq!(
        take_log(),
        [
            "1 handle GET / []",
            r#"1 close Close { code: CloseCode(1006), reason: "", clean: false }"#,
            "2 handle GET / []",
        ]
    );
}

#[test]
fn callbacks_before_any_request_are_ignored() {
    on_open();
    on_message(WitMessage::Text("early".into()));
    on_alarm();
    on_close(1000, String::new(), true);
    assert!(take_log().is_empty());
    assert_eq!(MADE.with_borrow(|made| *made), 0);
}

#[test]
fn the_sdk_answers_what_is_not_http() {
    assert_eq!(
        handle(make, request("/", &[("bad name", b"x")])).status,
        400
    );
    assert_eq!(handle(make, request("/", &[("host", b"\0")])).status, 400);
    let mut http2 = request("/", &[]);
    http2.version = 20;
    let refused = handle(make, http2);
    assert_eq!(refused.status, 400);
    assert!(String::from_utf8_lossy(&refused.body).contains("version"));
    assert!(take_log().is_empty(), "the handler never saw them");
    // An upgrade the handshake refuses is the handler's answer (here, `to_response`).
    let mut no_key = upgrade("/");
    no_key
        .headers
        .retain(|(name, _)| name != "sec-websocket-key");
    assert_eq!(handle(make, no_key).status, 400);
}

#[test]
fn alarms_round_up_to_whole_milliseconds() {
    assert_eq!(alarm_ms(Duration::ZERO), 0);
    assert_eq!(alarm_ms(Duration::from_nanos(1)), 1);
    assert_eq!(alarm_ms(Duration::from_millis(250)), 250);
    assert_eq!(alarm_ms(Duration::from_micros(1_500)), 2);
    assert_eq!(alarm_ms(Duration::MAX), u64::MAX);
}

#[test]
fn request_info_keeps_header_order_and_repeats() {
    let info = RequestInfo::from(host::RequestInfo {
        path: "/chat/lobby".into(),
        query: "nick=ann".into(),
        headers: vec![
            ("x-a".into(), b"1".to_vec()),
            ("bad name".into(), b"skipped".to_vec()),
            ("x-a".into(), b"2".to_vec()),
            ("origin".into(), b"http://localhost".to_vec()),
        ],
        protocol: Some("chat".into()),
    });
    assert_eq!(info.path(), "/chat/lobby");
    assert_eq!(info.query(), "nick=ann");
    assert_eq!(info.protocol(), Some("chat"));
    let x_a: Vec<_> = info.headers().get_all("x-a").iter().collect();
    assert_eq!(x_a, ["1", "2"]);
    assert_eq!(info.headers()["origin"], "http://localhost");
    assert_eq!(info.headers().len(), 3);
}

#[test]
fn ids_are_opaque_text() {
    let id = Id::from("0123456789abcdef0123456789abcdef");
    assert_eq!(id.as_str(), "0123456789abcdef0123456789abcdef");
    assert_eq!(id.to_string(), id.as_str());
    assert_eq!(Id::from(id.to_string()), id);
    assert_eq!(
        SendError::Gone.to_string(),
        "no open connection has that id"
    );
}
