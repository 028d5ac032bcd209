//! The guest SDK: write a WebSocket handler component (the `handler-component` world of
//! `wit/`) in the style of the rouille API, and export it with one macro.
//!
//! The host (`wsbox-runner`, or any host of the world) owns the sockets and creates one
//! instance of the component per TCP connection. Inside the instance:
//!
//! - every HTTP request on the connection goes to [`Handler::handle`], like a rouille
//!   handler: call [`accept`] for upgrade requests and return its response, or serve
//!   anything else (a page, a 404);
//! - once a 101 from [`accept`] has gone out, the host pushes the socket's bytes into
//!   the instance; a [`Session`] — the same protocol core as the native [`crate::Websocket`]
//!   — checks framing, masking, UTF-8, limits and the close handshake, and each message,
//!   ping, pong and close reaches your handler with a [`Websocket`] to answer on;
//! - whatever you send with [`Websocket`] goes out when your callback returns. Nothing
//!   blocks and nothing waits: the guest only ever reacts to a call from the host.
//!
//! A protocol violation by the peer closes the connection with the RFC's code (1002, 1007,
//! or 1009 for a message over the host's limits) before your handler sees anything of it;
//! [`Handler::on_close`] is then called with `None`.
//!
//! # Examples
//!
//! An echo handler, built for `wasm32-wasip2` as a `cdylib` (see `guests/echo` for a
//! complete one with a demo page):
//!
//! ```
//! use wsbox::guest::{Handler, Websocket};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
//!         // The 101 tells the SDK to open the session; an error becomes a 400 or 426.
//!         wsbox::guest::accept(request, None).unwrap_or_else(|error| error.to_response())
//!     }
//!
//!     fn on_message(&mut self, websocket: &mut Websocket, message: wsbox::Message) {
//!         // Fails only once the connection is closing; nothing to do then.
//!         let _ = websocket.send_message(&message);
//!     }
//! }
//!
//! wsbox::export_handler!(Echo);
//! # let response = Echo.handle(&wsbox::doc_request(&[]).map(|()| Vec::new()));
//! # assert_eq!(response.status(), 101);
//! ```
//!
//! The argument of [`export_handler!`](crate::export_handler) is an expression, evaluated
//! once per connection when its first request arrives, so a handler can carry
//! per-connection state: `wsbox::export_handler!(Chat::new())`.

mod glue;
#[cfg(test)]
mod tests;

use crate::proto::config::Config;
use crate::proto::error::{ClosedError, WebsocketError};
use crate::proto::frame::CloseCode;
use crate::proto::handshake;
use crate::proto::session::{CloseFrame, Message, Session};

/// Accepts a WebSocket upgrade request: [`handshake::accept`] with the default
/// [`Config`] (the host's limits apply on top), as a response a [`Handler`] returns.
/// `subprotocol` is the protocol to announce (the client must have offered it), or `None`.
///
/// # Errors
///
/// As [`crate::start`]; [`WebsocketError::to_response`] is the 400 or 426 to return.
pub fn accept(
    request: &http::Request<Vec<u8>>,
    subprotocol: Option<&str>,
) -> Result<http::Response<Vec<u8>>, WebsocketError> {
    handshake::accept(request, subprotocol, Config::default())
        .map(|response| response.map(|()| Vec::new()))
}

/// What a handler component does with its connection. One value per connection (the host
/// runs each connection in its own instance); see the [module docs](self).
pub trait Handler: 'static {
    /// Answers an HTTP request. Return the response of [`accept`] (or of
    /// [`handshake::accept`](crate::handshake::accept), whose limits are combined with the
    /// host's: the stricter wins) to accept a WebSocket upgrade; any other response is sent
    /// as is, and the host may deliver further requests on the same connection.
    /// [`crate::start`] works too, but builds a channel for native servers that a guest
    /// throws away.
    ///
    /// A 101 response that did not come from `accept` is replaced by a 500: only `accept`
    /// validates the handshake. The body of a 101 is dropped.
    fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>>;

    /// A complete text or binary message from the peer. Not called once the connection is
    /// closing on our side ([`Websocket::close`], or the host's close request).
    fn on_message(&mut self, websocket: &mut Websocket, message: Message);

    /// A ping from the peer. The pong is already queued; nothing to do by default.
    fn on_ping(&mut self, websocket: &mut Websocket, data: &[u8]) {
        let _ = (websocket, data);
    }

    /// A pong from the peer (an answer to [`Websocket::send_ping`], or a heartbeat).
    fn on_pong(&mut self, websocket: &mut Websocket, data: &[u8]) {
        let _ = (websocket, data);
    }

    /// The connection is ending; called at most once. `frame` is the peer's close frame
    /// (our reply, if we had not closed first, is already queued), or `None` when the peer
    /// broke the protocol ([`Websocket::session`] has the error) or the transport ended
    /// without a close handshake. Nothing can be sent any more.
    fn on_close(&mut self, websocket: &mut Websocket, frame: Option<&CloseFrame>) {
        let _ = (websocket, frame);
    }
}

/// The open WebSocket of this connection, handed to the [`Handler`] callbacks. Sending
/// queues frames that go out when the callback returns.
#[derive(Debug)]
pub struct Websocket {
    session: Session,
    protocol: Option<String>,
}

impl Websocket {
    /// Queues a text message.
    ///
    /// # Errors
    ///
    /// [`ClosedError`] once a close frame was sent or the connection failed.
    pub fn send_text(&mut self, text: &str) -> Result<(), ClosedError> {
        self.session.send_text(text)
    }

    /// Queues a binary message.
    ///
    /// # Errors
    ///
    /// [`ClosedError`] once a close frame was sent or the connection failed.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), ClosedError> {
        self.session.send_binary(data)
    }

    /// Queues a message of either kind.
    ///
    /// # Errors
    ///
    /// [`ClosedError`] once a close frame was sent or the connection failed.
    pub fn send_message(&mut self, message: &Message) -> Result<(), ClosedError> {
        self.session.send_message(message)
    }

    /// Queues a ping (payload cut to 125 bytes); the answer reaches [`Handler::on_pong`].
    ///
    /// # Errors
    ///
    /// [`ClosedError`] once a close frame was sent or the connection failed.
    pub fn send_ping(&mut self, data: &[u8]) -> Result<(), ClosedError> {
        self.session.send_ping(data)
    }

    /// Queues an unsolicited pong, a one-way heartbeat (payload cut to 125 bytes).
    ///
    /// # Errors
    ///
    /// [`ClosedError`] once a close frame was sent or the connection failed.
    pub fn send_pong(&mut self, data: &[u8]) -> Result<(), ClosedError> {
        self.session.send_pong(data)
    }

    /// Starts the close handshake with `code` and `reason` (see [`Session::close`]); the
    /// peer's answer reaches [`Handler::on_close`], the only callback after this one: what
    /// the peer sends before answering (messages, pings, pongs) is dropped.
    ///
    /// # Errors
    ///
    /// [`ClosedError`] if a close frame was already sent.
    pub fn close(&mut self, code: impl Into<CloseCode>, reason: &str) -> Result<(), ClosedError> {
        self.session.close(code, reason)
    }

    /// Whether a close frame has been sent: nothing more can be sent.
    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    /// The subprotocol announced in the 101 response, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The protocol state: limits, the peer's close frame, the error that ended the
    /// connection.
    pub fn session(&self) -> &Session {
        &self.session
    }
}

/// Exports a [`Handler`] as the `handler` interface of the component being built.
///
/// The argument is an expression that makes the handler (a unit struct's name, or a
/// constructor call); it is evaluated once per connection, on its first request. Use the
/// macro once, at the root of the `cdylib` crate of the component. See the
/// [`guest`](crate::guest) module for an example.
#[macro_export]
macro_rules! export_handler {
    ($handler:expr $(,)?) => {
        /// The `handler` export of this component (made by `wsbox::export_handler!`).
        #[doc(hidden)]
        pub struct __WsboxHandler;

        impl $crate::__internal::Guest for __WsboxHandler {
            fn handle(
                request: $crate::__internal::Request,
                limits: $crate::__internal::Limits,
            ) -> $crate::__internal::Response {
                $crate::__internal::handle(|| $crate::__internal::boxed($handler), request, limits)
            }

            fn on_bytes(data: ::std::vec::Vec<u8>) -> $crate::__internal::Reply {
                $crate::__internal::on_bytes(&data)
            }

            fn on_close_request(
                code: u16,
                reason: ::std::string::String,
            ) -> $crate::__internal::Reply {
                $crate::__internal::on_close_request(code, &reason)
            }

            fn on_peer_gone() {
                $crate::__internal::on_peer_gone()
            }
        }

        // Natively the exports would be shared-library symbols with `:` and `/` in their
        // names, which linkers refuse. A native build (clippy, docs) only needs the glue
        // type-checked, and the public `__WsboxHandler` keeps it from counting as unused.
        #[cfg(target_arch = "wasm32")]
        $crate::__internal::bindings::export!(
            __WsboxHandler with_types_in $crate::__internal::bindings
        );
    };
}

/// What [`export_handler!`](crate::export_handler) expands to: the generated bindings and
/// the glue between them and [`Handler`]. Not a public API.
#[doc(hidden)]
pub mod __internal {
    pub use super::glue::{boxed, handle, on_bytes, on_close_request, on_peer_gone};
    pub use bindings::exports::wsbox::websocket::handler::{Guest, Reply};
    pub use bindings::wsbox::websocket::types::{Limits, Request, Response};

    /// The `handler-component` world, with an export macro usable from the user's crate.
    #[allow(missing_docs, clippy::all)]
    pub mod bindings {
        wit_bindgen::generate!({
            world: "handler-component",
            path: "wit",
            pub_export_macro: true,
            export_macro_name: "export",
        });
    }
}
