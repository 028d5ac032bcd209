//! # wsbox
//!
//! WebSockets ([RFC 6455]) with the API of `rouille::websocket`, over a sans-IO protocol
//! core that also compiles to a WASI component.
//!
//! - [`start`] validates an upgrade request and returns the 101 response plus a
//!   [`Receiver`] that yields the [`Websocket`] once the response has been sent;
//!   [`requested_protocols`] lists the subprotocols the client offered.
//! - [`Websocket`] sends and receives [`Message`]s over a blocking stream, and is also
//!   `Read`/`Write`/`Iterator`.
//! - [`session::Session`] is the protocol core itself: bytes in, events out, no I/O;
//!   [`handshake::accept`] is `start` without the blocking server's channel, for other
//!   servers and for guest components. The core (`src/proto/`) does no I/O, reads no clock
//!   or global RNG and names no type of the edges around it.
//! - [`server`] is a small blocking HTTP/1.1 server that completes upgrades; [`client`] is
//!   the client side.
//!
//! # Choosing a subprotocol
//!
//! As in rouille, there are three ways.
//!
//! **None**: ignore whatever the client offers; never fails because of protocols.
//!
//! ```
//! # let request = wsbox::doc_request(&[]);
//! let (response, websocket) = wsbox::start(&request, None::<&str>).unwrap();
//! assert_eq!(response.status(), 101);
//! assert!(response.headers().get("sec-websocket-protocol").is_none());
//! ```
//!
//! **Exactly one**: the client must offer it, or the request fails with
//! [`WebsocketError::WrongSubprotocol`].
//!
//! ```
//! # let request = wsbox::doc_request(&["chat", "echo"]);
//! let (response, websocket) = wsbox::start(&request, Some("echo")).unwrap();
//! assert_eq!(response.headers()["sec-websocket-protocol"], "echo");
//! assert_eq!(
//!     wsbox::start(&request, Some("other")).unwrap_err(),
//!     wsbox::WebsocketError::WrongSubprotocol,
//! );
//! ```
//!
//! **Pick from the client's list**: look at [`requested_protocols`] and choose.
//!
//! ```
//! # let request = wsbox::doc_request(&["v2.chat", "v1.chat"]);
//! let supported = ["v1.chat"];
//! let chosen = wsbox::requested_protocols(&request).find(|p| supported.contains(&p.as_str()));
//! let (response, websocket) = wsbox::start(&request, chosen).unwrap();
//! assert_eq!(response.headers()["sec-websocket-protocol"], "v1.chat");
//! ```
//!
//! [RFC 6455]: https://www.rfc-editor.org/rfc/rfc6455

#![deny(missing_docs)]

pub mod app;
pub mod client;
#[cfg(feature = "guest")]
pub mod guest;
mod os_masks;
mod proto;
pub mod server;
mod websocket;
#[cfg(feature = "wit")]
#[doc(hidden)]
pub mod wit_http;

use std::borrow::Cow;
use std::sync::mpsc::{self, Receiver};

pub use client::ClientError;
pub use os_masks::OsMasks;
pub use proto::config::Config;
pub use proto::error::{
    CapacityError, CapacityKind, ClosedError, Error, ExtensionError, ProtocolError, RequestError,
    WebsocketError,
};
pub use proto::frame::CloseCode;
pub use proto::handshake::RequestedProtocolsIter;
pub use proto::session::{CloseFrame, Message};
pub use proto::{deflate, frame, handshake, session};
pub use websocket::{SendError, Websocket};

#[cfg(feature = "guest")]
#[doc(hidden)]
pub use guest::__internal;

/// Validates a WebSocket upgrade request and builds the response that accepts it.
///
/// `subprotocol` is the protocol to announce (the client must have offered it), or `None`.
/// Send the returned `101 Switching Protocols` response to the client (the [`server`]
/// module does this); it carries a [`server::PendingUpgrade`] and the
/// [`handshake::Accepted`] in its extensions, and once the response is sent the `Receiver`
/// yields the connection's [`Websocket`]. Limits are the [`Config`] defaults; see
/// [`start_with_config`]. (A guest component, which has no server thread to hand a
/// `Websocket` to, calls [`handshake::accept`] instead.)
///
/// # Errors
///
/// [`WebsocketError::InvalidWebsocketRequest`] says what is wrong with the request;
/// [`WebsocketError::WrongSubprotocol`] if `subprotocol` was not offered.
/// [`WebsocketError::to_response`] turns either into the 400/426 response to send.
pub fn start<B, S>(
    request: &http::Request<B>,
    subprotocol: Option<S>,
) -> Result<(http::Response<()>, Receiver<Websocket>), WebsocketError>
where
    S: Into<Cow<'static, str>>,
{
    start_with_config(request, subprotocol, Config::default())
}

/// [`start`] with explicit limits for the session.
pub fn start_with_config<B, S>(
    request: &http::Request<B>,
    subprotocol: Option<S>,
    config: Config,
) -> Result<(http::Response<()>, Receiver<Websocket>), WebsocketError>
where
    S: Into<Cow<'static, str>>,
{
    let subprotocol = subprotocol.map(Into::into);
    let mut response = handshake::accept(request, subprotocol.as_deref(), config)?;
    let (sender, receiver) = mpsc::sync_channel(1);
    response
        .extensions_mut()
        .insert(server::PendingUpgrade { sender });
    Ok((response, receiver))
}

/// The subprotocols the client offered in `Sec-WebSocket-Protocol`, in its order of
/// preference (several header lines and comma-separated lists are both understood).
///
/// # Examples
///
/// ```
/// let request = wsbox::doc_request(&["chat, superchat", "v2"]);
/// let offered: Vec<String> = wsbox::requested_protocols(&request).collect();
/// assert_eq!(offered, ["chat", "superchat", "v2"]);
/// ```
pub fn requested_protocols<B>(request: &http::Request<B>) -> RequestedProtocolsIter {
    handshake::requested_protocols(request)
}

/// A valid upgrade request offering `protocols` (one header line each), for the examples.
#[doc(hidden)]
pub fn doc_request(protocols: &[&str]) -> http::Request<()> {
    let mut request = http::Request::get("/")
        .header("Host", "localhost")
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("Sec-WebSocket-Version", "13");
    for protocol in protocols {
        request = request.header("Sec-WebSocket-Protocol", *protocol);
    }
    request.body(()).expect("static request is valid")
}

/// Implements `From` both ways between [`Message`] and a WIT `message` variant generated
/// from `wit/` (`variant message { text(string), binary(list<u8>) }`), without copying the
/// payload.
///
/// Every binding generator makes its own type for the variant (wasmtime's `bindgen!` in
/// `wsbox-runner`, wit-bindgen in the guest SDK and in `wsbox.wasm`), so the conversion
/// cannot be one `impl` here; this macro is the one place it is written. Call it once, in
/// the crate that owns the generated type.
///
/// # Examples
///
/// ```
/// // Stands in for a generated `wsbox:websocket/types.message`.
/// pub enum WitMessage {
///     Text(String),
///     Binary(Vec<u8>),
/// }
/// wsbox::message_conversions!(WitMessage);
///
/// let message: wsbox::Message = WitMessage::Text("hi".into()).into();
/// assert_eq!(message, wsbox::Message::Text("hi".into()));
/// let back: WitMessage = wsbox::Message::Binary(vec![1, 2]).into();
/// assert!(matches!(back, WitMessage::Binary(data) if data == [1, 2]));
/// ```
#[macro_export]
macro_rules! message_conversions {
    ($wit:ty) => {
        impl ::core::convert::From<$wit> for $crate::Message {
            fn from(message: $wit) -> Self {
                type Wit = $wit;
                match message {
                    Wit::Text(text) => $crate::Message::Text(text),
                    Wit::Binary(data) => $crate::Message::Binary(data),
                }
            }
        }

        impl ::core::convert::From<$crate::Message> for $wit {
            fn from(message: $crate::Message) -> Self {
                match message {
                    $crate::Message::Text(text) => Self::Text(text),
                    $crate::Message::Binary(data) => Self::Binary(data),
                }
            }
        }
    };
}
