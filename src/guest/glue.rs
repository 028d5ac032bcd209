//! The state of one instance (= one connection, until the host drops the instance while the
//! connection is idle) and the entry points the exported `handler` interface calls.

use std::cell::RefCell;

use http::{StatusCode, header};

use super::__internal::{Message as WitMessage, Request, Response};
use super::{Close, Handler, Websocket};
use crate::proto::frame::CloseCode;
use crate::proto::session::Message;

crate::message_conversions!(WitMessage);

thread_local! {
    // The host runs one connection per instance and calls it from one thread, one call at a
    // time, so the instance's single handler lives here between calls. A fresh instance has
    // none, whichever call comes first: `handle` on a new connection, or `on-message`,
    // `on-alarm` or `on-close` on one woken from hibernation (or moved to a new version).
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

struct Connection {
    handler: Box<dyn Handler>,
    websocket: Websocket,
}

/// Boxes the user's handler; a type that is not a [`Handler`] fails here, at the user's
/// expression.
pub fn boxed<H: Handler>(handler: H) -> Box<dyn Handler> {
    Box::new(handler)
}

/// Makes the handler of a connection: the `export_handler!` expression, boxed.
pub type Make = fn() -> Box<dyn Handler>;

/// `handle`.
pub fn handle(make: Make, request: Request) -> Response {
    let request = match to_http(request) {
        Ok(request) => request,
        Err(reason) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("malformed HTTP request: {reason}"),
            );
        }
    };
    let mut response = with_connection(make, |handler, _| handler.handle(&request));
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        // A 101 has no body (the stream after it is the WebSocket's).
        response.body_mut().clear();
    }
    from_http(response)
}

/// `on-open`.
pub fn on_open(make: Make) {
    with_connection(make, |handler, websocket| handler.on_open(websocket));
}

/// `on-message`: the payload moves into the handler's [`Message`], uncopied.
pub fn on_message(make: Make, message: WitMessage) {
    let message = Message::from(message);
    with_connection(make, |handler, websocket| {
        handler.on_message(websocket, message);
    });
}

/// `on-alarm`.
pub fn on_alarm(make: Make) {
    with_connection(make, |handler, websocket| handler.on_alarm(websocket));
}

/// `on-close`: the last call; the connection's state is freed after it.
pub fn on_close(make: Make, code: u16, reason: String, clean: bool) {
    let close = Close {
        code: CloseCode(code),
        reason,
        clean,
    };
    with_connection(make, |handler, websocket| {
        handler.on_close(websocket, &close)
    });
    // Dropped here rather than left to the instance's end: the host may keep the instance
    // (a pool), and the next connection it serves must start from a new handler.
    CONNECTION.with_borrow_mut(Option::take);
}

/// Runs `callback` on the connection's handler, made with `make` first if this instance has
/// none yet.
fn with_connection<T>(
    make: Make,
    callback: impl FnOnce(&mut dyn Handler, &mut Websocket) -> T,
) -> T {
    CONNECTION.with_borrow_mut(|slot| {
        let connection = slot.get_or_insert_with(|| Connection {
            handler: make(),
            websocket: Websocket::current(),
        });
        callback(connection.handler.as_mut(), &mut connection.websocket)
    })
}

/// The WIT request as an `http::Request`; `Err` names the part that is not valid HTTP.
fn to_http(request: Request) -> Result<http::Request<Vec<u8>>, String> {
    crate::wit_http::to_request(
        &request.method,
        &request.uri,
        request.version,
        request.headers,
        request.body,
    )
}

fn from_http(response: http::Response<Vec<u8>>) -> Response {
    let (status, headers, body) = crate::wit_http::from_response(response);
    Response {
        status,
        headers,
        body,
    }
}

/// A plain-text response for the errors the glue answers itself.
fn plain(status: StatusCode, reason: &str) -> Response {
    Response {
        status: status.as_u16(),
        headers: vec![(
            header::CONTENT_TYPE.as_str().to_owned(),
            b"text/plain; charset=utf-8".to_vec(),
        )],
        body: format!("{reason}\n").into_bytes(),
    }
}
