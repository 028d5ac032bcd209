//! The state of one instance (= one connection) and the entry points the exported
//! `handler` interface calls.

use std::cell::RefCell;

use http::{StatusCode, header};

use super::__internal::bindings::exports::wsbox::websocket::handler::Reply;
use super::__internal::bindings::wsbox::websocket::types::{Limits, Request, Response};
use super::{Handler, Websocket};
use crate::proto::handshake::Accepted;
use crate::proto::session::{CloseFrame, Event, Session};

thread_local! {
    // The host runs one connection per instance and calls it from one thread, so the
    // instance's single handler lives here between calls.
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

struct Connection {
    handler: Box<dyn Handler>,
    websocket: Option<Websocket>,
    /// Whether `on_close` has been called.
    close_notified: bool,
}

/// Boxes the user's handler; a type that is not a [`Handler`] fails here, at the user's
/// expression.
pub fn boxed<H: Handler>(handler: H) -> Box<dyn Handler> {
    Box::new(handler)
}

/// `handle`: the first call on a connection makes its handler with `make`.
pub fn handle(make: fn() -> Box<dyn Handler>, request: Request, limits: Limits) -> Response {
    CONNECTION.with_borrow_mut(|slot| {
        let connection = slot.get_or_insert_with(|| Connection {
            handler: make(),
            websocket: None,
            close_notified: false,
        });
        connection.handle(request, limits)
    })
}

/// `on-bytes`: feeds the session and runs the callbacks for what arrived.
pub fn on_bytes(data: &[u8]) -> Reply {
    CONNECTION.with_borrow_mut(|slot| match slot {
        Some(connection) => connection.on_bytes(data),
        None => finished(),
    })
}

/// `on-close-request`: starts the close handshake the host asked for.
pub fn on_close_request(code: u16, reason: &str) -> Reply {
    CONNECTION.with_borrow_mut(
        |slot| match slot.as_mut().and_then(|c| c.websocket.as_mut()) {
            Some(websocket) => {
                // Already closing: the close frame is out, the reply tells the host the state.
                let _ = websocket.session.close(code, reason);
                transmit(&mut websocket.session)
            }
            None => finished(),
        },
    )
}

/// `on-peer-gone`: tells the handler, then frees the connection's state.
pub fn on_peer_gone() {
    // Taken out first so that the handler runs without the slot borrowed.
    let connection = CONNECTION.with_borrow_mut(Option::take);
    if let Some(mut connection) = connection {
        connection.notify_close(None);
    }
}

impl Connection {
    fn handle(&mut self, request: Request, limits: Limits) -> Response {
        if self.websocket.is_some() {
            // The host sends no requests after an upgrade; answering one would corrupt the
            // stream, so refuse without bothering the handler.
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the connection is a WebSocket",
            );
        }
        let request = match to_http(request) {
            Ok(request) => request,
            Err(reason) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    &format!("malformed HTTP request: {reason}"),
                );
            }
        };
        let mut response = self.handler.handle(&request);
        let accepted = response.extensions_mut().remove::<Accepted>();
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return from_http(response);
        }
        let Some(accepted) = accepted else {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "101 response with no handshake behind it (see wsbox::guest::accept)",
            );
        };
        let config = accepted.config();
        let config = config
            .max_frame_size(
                config
                    .get_max_frame_size()
                    .min(saturate(limits.max_frame_size)),
            )
            .max_message_size(
                config
                    .get_max_message_size()
                    .min(saturate(limits.max_message_size)),
            );
        self.websocket = Some(Websocket {
            session: Session::server(config),
            protocol: accepted.protocol().map(str::to_owned),
        });
        response.body_mut().clear();
        from_http(response)
    }

    fn on_bytes(&mut self, mut data: &[u8]) -> Reply {
        let Some(websocket) = self.websocket.as_mut() else {
            return finished();
        };
        while let Some(event) = websocket.session.next_event(&mut data) {
            // After our close frame the handler can answer nothing; what the peer still
            // sends before its close reply is dropped.
            if websocket.session.is_closed() && !matches!(event, Event::Close(_)) {
                continue;
            }
            match event {
                Event::Message(message) => self.handler.on_message(websocket, message),
                Event::Ping(data) => self.handler.on_ping(websocket, &data),
                Event::Pong(data) => self.handler.on_pong(websocket, &data),
                Event::Close(frame) => {
                    self.close_notified = true;
                    self.handler.on_close(websocket, Some(&frame));
                }
            }
        }
        if websocket.session.error().is_some() && !self.close_notified {
            self.close_notified = true;
            self.handler.on_close(websocket, None);
        }
        transmit(&mut websocket.session)
    }

    fn notify_close(&mut self, frame: Option<&CloseFrame>) {
        if let Some(websocket) = self.websocket.as_mut()
            && !self.close_notified
        {
            self.close_notified = true;
            self.handler.on_close(websocket, frame);
        }
    }
}

/// Everything the session has to send, and whether the connection is over.
fn transmit(session: &mut Session) -> Reply {
    let mut data = Vec::new();
    session.poll_transmit(&mut data);
    Reply {
        data,
        close: session.is_finished(),
    }
}

/// The answer to a call on a connection that has no WebSocket: close it.
fn finished() -> Reply {
    Reply {
        data: Vec::new(),
        close: true,
    }
}

/// A host limit as a `usize` (a limit beyond the address space is no limit).
fn saturate(limit: u64) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
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
