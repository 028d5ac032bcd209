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
//! once per instance, on its first call, so a handler can carry per-connection state:
//! `wsbox::export_handler!(Chat::new())`. But an instance may not last as long as its
//! connection:
//!
//! # Keeping state across hibernation
//!
//! The host may drop a connection's instance while no call is running and keep the
//! connection (`wsbox-runner --hibernate-after`: by default after 10 s without a call; `0`
//! after every call). The next message, alarm or close goes to a fresh instance, where the
//! SDK makes a new handler with the `export_handler!` expression; its first call is then
//! [`Handler::on_message`], [`Handler::on_alarm`] or [`Handler::on_close`], without
//! `handle` or `on_open` before it. A new version of the component deployed to the runner
//! takes over each connection the same way, at its next call.
//!
//! - The handler's fields, statics and everything else in the instance's memory belong to
//!   the instance: a cache at most, rebuilt after a wake from what the host keeps.
//! - The host keeps, for the connection's life: the [attachment](Websocket::set_attachment)
//!   (up to [`Limits::max_attachment`] bytes), the topics, the alarm, the
//!   [auto-responses](Websocket::set_auto_response), the [id](Websocket::id) and the
//!   [upgrade request](Websocket::request) (path, query, headers, subprotocol). A value
//!   `handle` or `on_open` worked out belongs in the attachment, or is worked out again
//!   from the request.
//! - The [`Websocket`] of every callback, and [`Websocket::current`], are the connection
//!   whether the instance is new or not.
//! - A message that matches an auto-response is answered by the host without a call, so it
//!   neither wakes the connection nor reaches the handler.
//!
//! A counter of the connection's messages that survives any number of wakes:
//!
//! ```
//! use wsbox::Message;
//! use wsbox::guest::{Handler, Websocket};
//!
//! struct Counter;
//!
//! /// The count in the attachment: 8 bytes, little endian (the attachment starts empty).
//! fn count(attachment: &[u8]) -> u64 {
//!     <[u8; 8]>::try_from(attachment).map_or(0, u64::from_le_bytes)
//! }
//!
//! impl Handler for Counter {
//!     fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
//!         wsbox::guest::accept(request, None).unwrap_or_else(|error| error.to_response())
//!     }
//!
//!     fn on_message(&mut self, websocket: &mut Websocket, _: Message) {
//!         let count = count(&websocket.attachment()) + 1;
//!         // 8 bytes always fit (the host keeps at least 16 KiB by default).
//!         let _ = websocket.set_attachment(&count.to_le_bytes());
//!         let _ = websocket.send_text(&format!("message {count}"));
//!     }
//! }
//!
//! wsbox::export_handler!(Counter);
//! # assert_eq!(count(&[]), 0);
//! # assert_eq!(count(&41u64.to_le_bytes()), 41);
//! # let response = Counter.handle(&wsbox::doc_request(&[]).map(|()| Vec::new()));
//! # assert_eq!(response.status(), 101);
//! ```

mod glue;
mod rooms;
mod store;
#[cfg(test)]
mod tests;
mod websocket;

pub use rooms::{HistoryError, Page, Position, PresenceError, Start};
pub use store::{Store, StoreError};
pub use websocket::{
    AttachmentTooLarge, AutoResponseError, Close, Id, Limits, RequestInfo, SendError, TopicError,
    Websocket,
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

/// What a handler component does with its connection. One value per instance: the host
/// runs each connection in its own instance, and may replace that instance while the
/// connection is idle (see [keeping state across
/// hibernation](self#keeping-state-across-hibernation)).
pub trait Handler: 'static {
    /// Answers an HTTP request. Return the response of [`accept`] to open a WebSocket (the
    /// host replaces a 101 that does not accept this request with a 500); any other
    /// response is sent as is, and the host may deliver further requests on the same
    /// connection. [`Websocket::current`] reaches the connection from here: what is sent,
    /// subscribed or attached in `handle` carries over to the WebSocket if the answer is a
    /// 101 (sends go out right after it).
    fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>>;

    /// The 101 has been written: the handler may send first, subscribe, set an alarm.
    /// Called once per connection, on the instance that ran `handle`.
    fn on_open(&mut self, websocket: &mut Websocket) {
        let _ = websocket;
    }

    /// A complete text or binary message from the client. Not called once this side has
    /// started the close handshake ([`Websocket::close`]), nor for a message the host
    /// answered with an [auto-response](Websocket::set_auto_response). May be the first call
    /// of a handler, after a wake.
    fn on_message(&mut self, websocket: &mut Websocket, message: Message);

    /// The alarm set with [`Websocket::set_alarm`] is due. Not called once the connection
    /// is closing. May be the first call of a handler, after a wake.
    fn on_alarm(&mut self, websocket: &mut Websocket) {
        let _ = websocket;
    }

    /// The WebSocket ended: the last call. See [`Close`] for what `close` holds. Nothing can
    /// be sent to this connection any more; other connections and topics still work. May be
    /// the first call of a handler, after a wake; the handler is dropped after it.
    fn on_close(&mut self, websocket: &mut Websocket, close: &Close) {
        let _ = (websocket, close);
    }
}

/// Exports a [`Handler`] as the `handler` interface of the component being built.
///
/// The argument is an expression that makes the handler (a unit struct's name, or a
/// constructor call); it is evaluated on the first call of each instance: a connection's
/// first request, or the first call after its instance was replaced (see [keeping state
/// across hibernation](crate::guest#keeping-state-across-hibernation)). Use the
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
                $crate::__internal::handle(Self::make, request)
            }

            fn on_open() {
                $crate::__internal::on_open(Self::make)
            }

            fn on_message(message: $crate::__internal::Message) {
                $crate::__internal::on_message(Self::make, message)
            }

            fn on_close(code: u16, reason: ::std::string::String, clean: bool) {
                $crate::__internal::on_close(Self::make, code, reason, clean)
            }

            fn on_alarm() {
                $crate::__internal::on_alarm(Self::make)
            }
        }

        impl __WsboxHandler {
            /// Makes the handler: on a connection's first request, and on the first call
            /// of an instance that replaces a dropped one (hibernation, a new version).
            fn make() -> ::std::boxed::Box<dyn $crate::guest::Handler> {
                $crate::__internal::boxed($handler)
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
