//! The state of one instance (= one connection) and the entry points the exported
//! `handler` interface calls.

use std::cell::RefCell;

use http::{StatusCode, header};

use super::__internal::{Message as WitMessage, Request, Response};
use super::{Close, Handler, Websocket};
use crate::proto::frame::CloseCode;
use crate::proto::session::Message;

thread_local! {
    // The host runs one connection per instance and calls it from one thread, one call at a
    // time, so the instance's single handler lives here between calls.
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

/// `handle`: the first call on a connection makes its handler with `make`.
pub fn handle(make: fn() -> Box<dyn Handler>, request: Request) -> Response {
    let request = match to_http(request) {
        Ok(request) => request,
        Err(reason) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("malformed HTTP request: {reason}"),
            );
        }
    };
    let mut response = CONNECTION.with_borrow_mut(|slot| {
        let connection = slot.get_or_insert_with(|| Connection {
            handler: make(),
            websocket: Websocket::current(),
        });
        connection.handler.handle(&request)
    });
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        // A 101 has no body (the stream after it is the WebSocket's).
        response.body_mut().clear();
    }
    from_http(response)
}

/// `on-open`.
pub fn on_open() {
    with_connection(|handler, websocket| handler.on_open(websocket));
}

/// `on-message`: the payload moves into the handler's [`Message`], uncopied.
pub fn on_message(message: WitMessage) {
    let message = match message {
        WitMessage::Text(text) => Message::Text(text),
        WitMessage::Binary(data) => Message::Binary(data),
    };
    with_connection(|handler, websocket| handler.on_message(websocket, message));
}

/// `on-alarm`.
pub fn on_alarm() {
    with_connection(|handler, websocket| handler.on_alarm(websocket));
}

/// `on-close`: the last call; the connection's state is freed after it.
pub fn on_close(code: u16, reason: String, clean: bool) {
    let close = Close {
        code: CloseCode(code),
        reason,
        clean,
    };
    // Taken out of the slot, so the handler is dropped when this returns.
    let connection = CONNECTION.with_borrow_mut(Option::take);
    if let Some(Connection {
        mut handler,
        mut websocket,
    }) = connection
    {
        handler.on_close(&mut websocket, &close);
    }
}

/// Runs `callback` on the connection's handler. The host calls the WebSocket callbacks only
/// after `handle` made it, and none after `on-close`; a call out of that order has no
/// handler to go to and is ignored.
fn with_connection(callback: impl FnOnce(&mut dyn Handler, &mut Websocket)) {
    CONNECTION.with_borrow_mut(|slot| {
        if let Some(connection) = slot {
            callback(connection.handler.as_mut(), &mut connection.websocket);
        }
    });
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
