//! `wsbox.wasm`: the `core` world of `wsbox:websocket@0.2.1` over the `wsbox` library.
//!
//! `handshake` maps WIT requests to `http::Request`s and calls
//! [`wsbox::handshake::accept`] (and [`wsbox::deflate`]'s negotiation); `frames` wraps a
//! [`wsbox::session::Session`] in a WIT resource. Nothing here knows RFC 6455 or RFC 7692
//! beyond what the library already does: this crate only converts types.
//!
//! Build it with `scripts/build-wasm.sh`, which writes `target/wsbox.wasm`.

mod deflate;

use std::cell::RefCell;

// The generated bindings add a module named `wsbox` (the WIT namespace), so the library
// is always spelled `::wsbox`.
use ::wsbox::handshake::Accepted;
use ::wsbox::session::{Event, Session};
use ::wsbox::{ClosedError, Config, Message, OsMasks, WebsocketError};

wit_bindgen::generate!({
    world: "core",
    path: "../wit",
});

use crate::wsbox::websocket::types;
use exports::wsbox::websocket::frames;
use exports::wsbox::websocket::handshake;

::wsbox::message_conversions!(types::Message);

struct Component;

export!(Component);

impl handshake::Guest for Component {
    fn requested_protocols(req: types::Request) -> Vec<String> {
        // Only the headers matter here; one that is not valid HTTP cannot name a protocol.
        let mut request = http::Request::new(());
        for (name, value) in &req.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_bytes(value),
            ) {
                request.headers_mut().append(name, value);
            }
        }
        ::wsbox::requested_protocols(&request).collect()
    }

    fn start(
        req: types::Request,
        subprotocol: Option<String>,
    ) -> Result<types::Response, types::HandshakeError> {
        accept(req, subprotocol, Config::default()).map(|accepted| accepted.response)
    }

    fn accept_key(key: String) -> String {
        ::wsbox::handshake::accept_key(&key)
    }

    fn start_with_deflate(
        req: types::Request,
        subprotocol: Option<String>,
        options: types::DeflateOptions,
    ) -> Result<handshake::Accepted, types::HandshakeError> {
        let config = Config::default().deflate(Some(deflate::to_deflate(&options)));
        accept(req, subprotocol, config)
    }

    fn deflate_offer(options: types::DeflateOptions) -> String {
        ::wsbox::deflate::offer(&deflate::to_deflate(&options))
    }

    fn check_deflate_response(
        headers: Vec<(String, Vec<u8>)>,
        options: types::DeflateOptions,
    ) -> Result<Option<types::DeflateParams>, handshake::ExtensionError> {
        let headers = deflate::extension_headers(&headers)?;
        ::wsbox::deflate::check_response(&headers, &deflate::to_deflate(&options))
            .map(|params| params.map(deflate::from_params))
            .map_err(deflate::from_extension_error)
    }
}

/// Validates the upgrade request and builds the 101, with compression if `config` has it.
fn accept(
    req: types::Request,
    subprotocol: Option<String>,
    config: Config,
) -> Result<handshake::Accepted, types::HandshakeError> {
    let request = to_http_request(req).map_err(|reason| types::HandshakeError {
        kind: types::WebsocketError::InvalidWebsocketRequest,
        response: bad_request(&reason),
        reason,
    })?;
    let response = ::wsbox::handshake::accept(&request, subprotocol.as_deref(), config)
        .map_err(|error| to_handshake_error(&error))?;
    let agreed = response
        .extensions()
        .get::<Accepted>()
        .and_then(Accepted::deflate);
    Ok(handshake::Accepted {
        response: to_wit_response(response.map(|()| Vec::new())),
        deflate: agreed.map(deflate::from_params),
    })
}

/// Builds the `http` request the library validates. Everything here came from the host, and
/// a name, value or target that `http` rejects is reported as the reason of a 400.
fn to_http_request(req: types::Request) -> Result<http::Request<Vec<u8>>, String> {
    ::wsbox::wit_http::to_request(&req.method, &req.uri, req.version, req.headers, req.body)
}

fn to_handshake_error(error: &WebsocketError) -> types::HandshakeError {
    let (kind, reason) = match error {
        WebsocketError::InvalidWebsocketRequest(why) => (
            types::WebsocketError::InvalidWebsocketRequest,
            why.to_string(),
        ),
        // `WebsocketError` is non-exhaustive; anything else is about the subprotocol.
        _ => (types::WebsocketError::WrongSubprotocol, error.to_string()),
    };
    types::HandshakeError {
        kind,
        reason,
        response: to_wit_response(error.to_response()),
    }
}

/// The 400 for a request that is not even valid HTTP, worded like the library's own.
fn bad_request(reason: &str) -> types::Response {
    types::Response {
        status: 400,
        headers: vec![("content-type".into(), b"text/plain; charset=utf-8".to_vec())],
        body: format!("invalid websocket request: {reason}\n").into_bytes(),
    }
}

fn to_wit_response(response: http::Response<Vec<u8>>) -> types::Response {
    let (status, headers, body) = ::wsbox::wit_http::from_response(response);
    types::Response {
        status,
        headers,
        body,
    }
}

impl frames::Guest for Component {
    type Session = SessionResource;
}

/// A resource's methods get `&self`; the session mutates on every call.
struct SessionResource(RefCell<Session>);

impl frames::GuestSession for SessionResource {
    fn new(role: frames::Role, limits: types::Limits) -> Self {
        SessionResource(RefCell::new(new_session(role, limits, Config::default())))
    }

    fn with_deflate(
        role: frames::Role,
        limits: types::Limits,
        params: types::DeflateParams,
        options: types::DeflateOptions,
    ) -> frames::Session {
        let config = Config::default().deflate(Some(deflate::to_deflate(&options)));
        let session = new_session(role, limits, config).with_deflate(deflate::to_params(&params));
        frames::Session::new(SessionResource(RefCell::new(session)))
    }

    fn receive(&self, bytes: Vec<u8>) -> frames::Incoming {
        let mut session = self.0.borrow_mut();
        deflate::with_engines(&mut session, |session| receive(session, &bytes))
    }

    fn send(&self, msg: types::Message) -> Result<Vec<u8>, frames::SendError> {
        let message = Message::from(msg);
        self.queue(|session| session.send_message(&message))
    }

    fn ping(&self, data: Vec<u8>) -> Result<Vec<u8>, frames::SendError> {
        self.queue(|session| session.send_ping(&data))
    }

    fn close(&self, code: u16, reason: String) -> Result<Vec<u8>, frames::SendError> {
        self.queue(|session| session.close(code, &reason))
    }

    fn is_closed(&self) -> bool {
        self.0.borrow().is_closed()
    }

    fn is_finished(&self) -> bool {
        self.0.borrow().is_finished()
    }

    fn close_received(&self) -> Option<types::CloseFrame> {
        self.0
            .borrow()
            .close_received()
            .map(|close| types::CloseFrame {
                code: close.code.0,
                reason: close.reason.clone(),
            })
    }
}

impl SessionResource {
    /// Runs one `send_*`/`close` and returns the bytes it queued.
    fn queue(
        &self,
        op: impl FnOnce(&mut Session) -> Result<(), ClosedError>,
    ) -> Result<Vec<u8>, frames::SendError> {
        let mut session = self.0.borrow_mut();
        deflate::with_engines(&mut session, op).map_err(|ClosedError| frames::SendError::Closed)?;
        let mut out = Vec::new();
        session.poll_transmit(&mut out);
        Ok(out)
    }
}

/// A session for `role` with `limits` and the rest of `config`.
fn new_session(role: frames::Role, limits: types::Limits, config: Config) -> Session {
    // A limit beyond the address space is no limit at all on a 32-bit guest.
    let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let config = config
        .max_frame_size(to_usize(limits.max_frame_size))
        .max_message_size(to_usize(limits.max_message_size));
    match role {
        frames::Role::Server => Session::server(config),
        frames::Role::Client => Session::client(config, OsMasks::new()),
    }
}

/// Feeds `bytes` to `session`: the events, what to write, and the violation if any.
fn receive(session: &mut Session, bytes: &[u8]) -> frames::Incoming {
    let mut input = bytes;
    let mut events = Vec::new();
    while let Some(event) = session.next_event(&mut input) {
        events.push(match event {
            Event::Message(message) => frames::Event::Message(message.into()),
            Event::Ping(data) => frames::Event::Ping(data),
            Event::Pong(data) => frames::Event::Pong(data),
            Event::Close(close) => frames::Event::Close(types::CloseFrame {
                code: close.code.0,
                reason: close.reason,
            }),
        });
    }
    let failure = session.error().map(|e| types::CloseFrame {
        code: e.close_code().0,
        reason: e.to_string(),
    });
    let mut transmit = Vec::new();
    session.poll_transmit(&mut transmit);
    frames::Incoming {
        events,
        transmit,
        failure,
    }
}
