//! The guest SDK: write a WebSocket application (the `app` world of `wit/`) in the style of
//! the rouille API, and export it with one macro.
//!
//! The host (`wsbox-runner`, or any host of the world) owns the sockets and the framing,
//! and creates one instance of the component per TCP connection. Inside the instance:
//!
//! - every HTTP request on the connection goes to [`Handler::handle`], like a rouille
//!   handler: return the response of [`accept`] to upgrade, or serve anything else (a
//!   page, a 404);
//! - once the 101 is out, [`Handler::on_open`] runs, then [`Handler::on_message`] for each
//!   complete message, [`Handler::on_alarm`] when an alarm is due, and [`Handler::on_close`]
//!   once at the end. The host has already checked framing, masking, UTF-8 and its size
//!   limits, answered pings and run the close handshake;
//! - the [`Websocket`] handed to each callback is this connection: send to it, close it,
//!   reach other connections by [`Id`], subscribe to topics and publish to them, keep a
//!   small attachment with the host, set an alarm. Every call returns at once: sends are
//!   queued and written by the host, which reports a slow client as
//!   [`SendError::Backpressure`] instead of waiting.
//!
//! # Examples
//!
//! An echo handler, built for `wasm32-wasip2` as a `cdylib` (see `guests/echo` for a
//! complete one with a demo page, `guests/chat` for rooms):
//!
//! ```
//! use wsbox::guest::{Handler, Websocket};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
//!         // The 101 opens the WebSocket; an error becomes a 400 or 426.
//!         wsbox::guest::accept(request, None).unwrap_or_else(|error| error.to_response())
//!     }
//!
//!     fn on_message(&mut self, websocket: &mut Websocket, message: wsbox::Message) {
//!         // Fails only once the connection is closing or the client is too slow;
//!         // either way there is no one to tell.
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
//! per-connection state: `wsbox::export_handler!(Chat::new())`. State that must outlive
//! the instance belongs in the [attachment](Websocket::set_attachment).

mod glue;
#[cfg(test)]
mod tests;
mod websocket;

pub use websocket::{
    AttachmentTooLarge, Close, Id, Limits, RequestInfo, SendError, TopicError, Websocket,
};

use crate::proto::config::Config;
use crate::proto::error::WebsocketError;
use crate::proto::handshake;
use crate::proto::session::Message;

/// Accepts a WebSocket upgrade request: the 101 response a [`Handler`] returns from
/// [`Handler::handle`]. `subprotocol` is the protocol to announce (the client must have
/// offered it), or `None`. The host checks the 101 against the request again and applies
/// its own size limits.
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
    /// Answers an HTTP request. Return the response of [`accept`] to open a WebSocket (the
    /// host replaces a 101 that does not accept this request with a 500); any other
    /// response is sent as is, and the host may deliver further requests on the same
    /// connection. [`Websocket::current`] reaches the connection from here: what is sent,
    /// subscribed or attached in `handle` carries over to the WebSocket if the answer is a
    /// 101 (sends go out right after it).
    fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>>;

    /// The 101 has been written: the handler may send first, subscribe, set an alarm.
    fn on_open(&mut self, websocket: &mut Websocket) {
        let _ = websocket;
    }

    /// A complete text or binary message from the client. Not called once this side has
    /// started the close handshake ([`Websocket::close`]).
    fn on_message(&mut self, websocket: &mut Websocket, message: Message);

    /// The alarm set with [`Websocket::set_alarm`] is due. Not called once the connection
    /// is closing.
    fn on_alarm(&mut self, websocket: &mut Websocket) {
        let _ = websocket;
    }

    /// The WebSocket ended: the last call. See [`Close`] for what `close` holds. Nothing can
    /// be sent to this connection any more; other connections and topics still work.
    fn on_close(&mut self, websocket: &mut Websocket, close: &Close) {
        let _ = (websocket, close);
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
            fn handle(request: $crate::__internal::Request) -> $crate::__internal::Response {
                $crate::__internal::handle(|| $crate::__internal::boxed($handler), request)
            }

            fn on_open() {
                $crate::__internal::on_open()
            }

            fn on_message(message: $crate::__internal::Message) {
                $crate::__internal::on_message(message)
            }

            fn on_close(code: u16, reason: ::std::string::String, clean: bool) {
                $crate::__internal::on_close(code, reason, clean)
            }

            fn on_alarm() {
                $crate::__internal::on_alarm()
            }
        }

        // Natively the exports would be shared-library symbols with `:` and `/` in their
        // names, which linkers refuse. A native build (clippy, docs, tests) only needs the
        // glue type-checked, and the public `__WsboxHandler` keeps it from counting as unused.
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
    pub use super::glue::{boxed, handle, on_alarm, on_close, on_message, on_open};
    pub use bindings::exports::wsbox::websocket::handler::Guest;
    pub use bindings::wsbox::websocket::types::{MessageResult as Message, Request, Response};

    /// The `app` world, with an export macro usable from the user's crate. Import
    /// parameters borrow (`&str`, `&[u8]` inside `message`), so a send lowers the caller's
    /// payload straight into the call instead of copying it into an owned value first.
    #[allow(missing_docs, clippy::all)]
    pub mod bindings {
        wit_bindgen::generate!({
            world: "app",
            path: "wit",
            ownership: Borrowing { duplicate_if_necessary: true },
            pub_export_macro: true,
            export_macro_name: "export",
        });
    }
}
