//! The glue run natively: which handler each call reaches (and when it is made and
//! dropped), in what order, with what, and the answers the SDK gives itself. Nothing here calls a `connection` import (natively
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
    // A handler still in its slot when the test's thread ends is dropped among the
    // thread-locals, possibly after the log: there is no one to tell then.
    let _ = LOG.try_with(|log| log.borrow_mut().push(entry));
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

impl Drop for Recorder {
    fn drop(&mut self) {
        log(format!("{} dropped", self.0));
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
    on_open(make);
    on_message(make, WitMessage::Text("hi".into()));
    on_alarm(make);
    on_message(make, WitMessage::Binary(vec![1, 2]));
    on_close(make, 1000, "bye".into(), true);
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
            "1 dropped",
        ]
    );
}

#[test]
fn on_close_frees_the_handler_and_a_later_connection_gets_a_new_one() {
    assert_eq!(handle(make, upgrade("/")).status, 101);
    on_close(make, 1006, String::new(), false);
    // A host that pools instances may serve another connection with this one.
    assert_eq!(handle(make, upgrade("/next")).status, 101);
    on_message(make, WitMessage::Text("to 2".into()));
    assert_eq!(
        take_log(),
        [
            "1 handle GET / []",
            r#"1 close Close { code: CloseCode(1006), reason: "", clean: false }"#,
            "1 dropped",
            "2 handle GET /next []",
            r#"2 message Text("to 2")"#,
        ]
    );
}

#[test]
fn a_woken_instance_makes_its_handler_on_whichever_call_comes_first() {
    // After hibernation (or a new version) a connection's next call reaches an instance
    // that never saw `handle`.
    on_message(make, WitMessage::Text("woke".into()));
    on_alarm(make);
    on_close(make, 1000, String::new(), true);
    on_alarm(make);
    on_message(make, WitMessage::Binary(vec![7]));
    on_close(make, 1001, "bye".into(), true);
    assert_eq!(
        take_log(),
        [
            r#"1 message Text("woke")"#,
            "1 alarm",
            r#"1 close Close { code: CloseCode(1000), reason: "", clean: true }"#,
            "1 dropped",
            "2 alarm",
            "2 message Binary([7])",
            r#"2 close Close { code: CloseCode(1001), reason: "bye", clean: true }"#,
            "2 dropped",
        ]
    );
    // A connection that ends while hibernated: its close is the new handler's only call.
    on_close(make, 1006, String::new(), false);
    assert_eq!(
        take_log(),
        [
            r#"3 close Close { code: CloseCode(1006), reason: "", clean: false }"#,
            "3 dropped",
        ]
    );
    // `on-open` follows `handle` on the same instance, but a handler made for it would
    // work too.
    on_open(make);
    assert_eq!(take_log(), ["4 open"]);
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
