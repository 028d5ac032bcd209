//! [`Websocket`]: this connection, and through it everything the host offers (the
//! `connection` imports), with the types its calls take and return.

use std::cell::OnceCell;
use std::fmt;
use std::time::Duration;

use super::__internal::bindings::wsbox::websocket::connection as host;
use super::__internal::bindings::wsbox::websocket::types::MessageParam;
use crate::proto::frame::CloseCode;
use crate::proto::session::Message;

/// This connection: the [`Handler`](super::Handler) callbacks get it, and
/// [`Websocket::current`] makes one anywhere else in the instance (in
/// [`Handler::handle`](super::Handler::handle), say).
///
/// Every method is a call to the host that returns at once. Sends are queued and written
/// in order; what one connection sends and what one publisher publishes arrive in the
/// order sent.
///
/// # Examples
///
/// A room per path, where a client silent for a minute is asked if it is still there
/// (`no_run`: the calls reach a host only inside a component):
///
/// ```no_run
/// use std::time::Duration;
/// use wsbox::Message;
/// use wsbox::guest::{Handler, Websocket};
///
/// struct Room;
///
/// impl Handler for Room {
///     fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
///         wsbox::guest::accept(request, None).unwrap_or_else(|error| error.to_response())
///     }
///
///     fn on_open(&mut self, websocket: &mut Websocket) {
///         if websocket.subscribe(websocket.request().path()).is_err() {
///             websocket.close(wsbox::CloseCode::POLICY_VIOLATION, "path too long");
///             return;
///         }
///         websocket.set_alarm(Duration::from_secs(60));
///     }
///
///     fn on_message(&mut self, websocket: &mut Websocket, message: Message) {
///         // Everyone else in the room; the host encodes the message once for all of them.
///         websocket.publish(websocket.request().path(), &message, false);
///         websocket.set_alarm(Duration::from_secs(60));
///     }
///
///     fn on_alarm(&mut self, websocket: &mut Websocket) {
///         let _ = websocket.send_text("still there?");
///     }
/// }
///
/// wsbox::export_handler!(Room);
/// ```
#[derive(Debug)]
pub struct Websocket {
    // The id and the upgrade request never change; asked of the host once.
    id: OnceCell<Id>,
    request: OnceCell<RequestInfo>,
}

impl Websocket {
    /// The connection whose callback is running (in `handle`: the one the request arrived
    /// on). There is only ever one per instance, so any two values are the same connection.
    pub fn current() -> Websocket {
        Websocket {
            id: OnceCell::new(),
            request: OnceCell::new(),
        }
    }

    /// This connection's id, for other connections' [`send_to`](Websocket::send_to) and
    /// [`close_other`](Websocket::close_other).
    pub fn id(&self) -> &Id {
        self.id.get_or_init(|| Id(host::self_id()))
    }

    /// The request that opened this connection: path, query, headers, subprotocol.
    pub fn request(&self) -> &RequestInfo {
        self.request
            .get_or_init(|| RequestInfo::from(host::request()))
    }

    /// The host's limits on topics, attachments and auto-responses.
    pub fn limits(&self) -> Limits {
        Limits {
            max_topics: host::max_topics(),
            max_topic_len: host::max_topic_len(),
            max_attachment: host::max_attachment(),
            max_auto_responses: host::max_auto_responses(),
            max_auto_response_size: host::max_auto_response_size(),
        }
    }

    /// Queues a text message to this connection's client.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] once the close handshake has begun, [`SendError::Backpressure`]
    /// when the client is not reading fast enough (the message is dropped).
    pub fn send_text(&self, text: &str) -> Result<(), SendError> {
        send_result(host::send(MessageParam::Text(text)))
    }

    /// Queues a binary message to this connection's client.
    ///
    /// # Errors
    ///
    /// As [`send_text`](Websocket::send_text).
    pub fn send_binary(&self, data: &[u8]) -> Result<(), SendError> {
        send_result(host::send(MessageParam::Binary(data)))
    }

    /// Queues a message of either kind to this connection's client.
    ///
    /// # Errors
    ///
    /// As [`send_text`](Websocket::send_text).
    pub fn send_message(&self, message: &Message) -> Result<(), SendError> {
        send_result(host::send(param(message)))
    }

    /// Queues a message to the connection `to` (this one included). In a cluster of
    /// runners, `to` may live on another runner; the call then waits for its answer.
    ///
    /// # Errors
    ///
    /// [`SendError::Gone`] if no open connection has that id, [`SendError::Unreachable`]
    /// if its runner cannot be reached now, otherwise as [`send_text`](Websocket::send_text).
    pub fn send_to(&self, to: &Id, message: &Message) -> Result<(), SendError> {
        send_result(host::send_to(&to.0, param(message)))
    }

    /// Starts the close handshake with `code` (one that may not be sent, like 1005,
    /// becomes 1000) and `reason` (cut to 123 bytes). Nothing can be sent after it;
    /// [`Handler::on_close`](super::Handler::on_close) follows when the client answers or
    /// the host stops waiting. Closing twice does nothing.
    pub fn close(&self, code: impl Into<CloseCode>, reason: &str) {
        host::close(code.into().0, reason);
    }

    /// Starts the close handshake of the connection `to`; its handler gets `on_close`.
    ///
    /// # Errors
    ///
    /// [`SendError::Gone`] if no open connection has that id.
    pub fn close_other(
        &self,
        to: &Id,
        code: impl Into<CloseCode>,
        reason: &str,
    ) -> Result<(), SendError> {
        send_result(host::close_other(&to.0, code.into().0, reason))
    }

    /// Subscribes this connection to `topic` (subscribing twice is not an error). The
    /// subscription ends with the connection, or with [`unsubscribe`](Websocket::unsubscribe).
    ///
    /// # Errors
    ///
    /// [`TopicError::BadName`] for an empty name or one over the host's
    /// [`max_topic_len`](Limits::max_topic_len); [`TopicError::TooMany`] past
    /// [`max_topics`](Limits::max_topics) subscriptions.
    pub fn subscribe(&self, topic: &str) -> Result<(), TopicError> {
        host::subscribe(topic).map_err(|error| match error {
            host::TopicError::BadName => TopicError::BadName,
            host::TopicError::TooMany => TopicError::TooMany,
        })
    }

    /// Ends a subscription; returns whether there was one.
    pub fn unsubscribe(&self, topic: &str) -> bool {
        host::unsubscribe(topic)
    }

    /// This connection's topics, in no particular order.
    pub fn topics(&self) -> Vec<String> {
        host::topics()
    }

    /// Sends `message` to every connection subscribed to `topic` — this one too only if
    /// `include_self` and it is subscribed — and returns how many it was queued to. The host encodes it once;
    /// subscribers over their backpressure bound are skipped. In a cluster of runners it also
    /// reaches the other runners' subscribers, at most once and in order per publisher and
    /// topic; the count is of this runner's.
    pub fn publish(&self, topic: &str, message: &Message, include_self: bool) -> u32 {
        host::publish(topic, param(message), include_self)
    }

    /// How many connections are subscribed to `topic` now; in a cluster of runners, on every
    /// runner, the others' counts lagging a change by milliseconds (see the WIT's
    /// `subscribers`).
    pub fn subscribers(&self, topic: &str) -> u32 {
        host::subscribers(topic)
    }

    /// The bytes last given to [`set_attachment`](Websocket::set_attachment) (empty at
    /// first).
    pub fn attachment(&self) -> Vec<u8> {
        host::attachment()
    }

    /// Replaces the attachment: a small value the host keeps for the connection's life,
    /// outside this instance.
    ///
    /// # Errors
    ///
    /// [`AttachmentTooLarge`] over the host's [`max_attachment`](Limits::max_attachment);
    /// the old value is kept.
    pub fn set_attachment(&self, data: &[u8]) -> Result<(), AttachmentTooLarge> {
        host::set_attachment(data).map_err(|error| AttachmentTooLarge { max: error.max })
    }

    /// Calls [`Handler::on_alarm`](super::Handler::on_alarm) once, `after` from now, even
    /// if the client is silent; replaces any alarm set before. Milliseconds are the
    /// resolution: a fraction of one rounds up.
    pub fn set_alarm(&self, after: Duration) {
        host::set_alarm(alarm_ms(after));
    }

    /// Cancels the alarm, if any.
    pub fn cancel_alarm(&self) {
        host::cancel_alarm();
    }

    /// From now on the host answers a message from the client equal to `request` (same
    /// kind, same bytes) with `response` itself: the handler is not called for it, and a
    /// hibernated connection is not woken. Setting the same request again replaces its
    /// response; the pairs last as long as the connection.
    ///
    /// # Errors
    ///
    /// [`AutoResponseError::TooLarge`] if the request or the response is longer than
    /// [`max_auto_response_size`](Limits::max_auto_response_size);
    /// [`AutoResponseError::TooMany`] if the connection already has
    /// [`max_auto_responses`](Limits::max_auto_responses) other pairs
    /// ([`clear_auto_response`](Websocket::clear_auto_response) makes room).
    ///
    /// # Examples
    ///
    /// A keep-alive the client sends every few seconds, answered without waking the
    /// handler, in text and in binary:
    ///
    /// ```
    /// use wsbox::Message;
    /// use wsbox::guest::{Handler, Websocket};
    ///
    /// struct Quiet;
    ///
    /// impl Handler for Quiet {
    ///     fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    ///         wsbox::guest::accept(request, None).unwrap_or_else(|error| error.to_response())
    ///     }
    ///
    ///     fn on_open(&mut self, websocket: &mut Websocket) {
    ///         let pairs = [
    ///             (Message::Text("ping".into()), Message::Text("pong".into())),
    ///             (Message::Binary(vec![0x9]), Message::Binary(vec![0xa])),
    ///         ];
    ///         for (request, response) in &pairs {
    ///             if let Err(error) = websocket.set_auto_response(request, response) {
    ///                 // Only a host configured below 2 pairs of 4 bytes refuses these.
    ///                 websocket.close(wsbox::CloseCode::INTERNAL_ERROR, &error.to_string());
    ///             }
    ///         }
    ///     }
    ///
    ///     fn on_message(&mut self, websocket: &mut Websocket, message: Message) {
    ///         // Never "ping": the host has answered those.
    ///         let _ = websocket.send_message(&message);
    ///     }
    /// }
    ///
    /// wsbox::export_handler!(Quiet);
    /// # let response = Quiet.handle(&wsbox::doc_request(&[]).map(|()| Vec::new()));
    /// # assert_eq!(response.status(), 101);
    /// # assert_eq!(
    /// #     wsbox::guest::AutoResponseError::TooMany.to_string(),
    /// #     "the connection has as many auto-responses as the host allows"
    /// # );
    /// ```
    pub fn set_auto_response(
        &self,
        request: &Message,
        response: &Message,
    ) -> Result<(), AutoResponseError> {
        host::set_auto_response(param(request), param(response)).map_err(|error| match error {
            host::AutoResponseError::TooLarge => AutoResponseError::TooLarge,
            host::AutoResponseError::TooMany => AutoResponseError::TooMany,
        })
    }

    /// Stops the host answering `request` by itself (such messages reach the handler
    /// again); returns whether it did.
    pub fn clear_auto_response(&self, request: &Message) -> bool {
        host::clear_auto_response(param(request))
    }
}

/// The WIT view of a message, borrowing its payload.
pub(super) fn param(message: &Message) -> MessageParam<'_> {
    match message {
        Message::Text(text) => MessageParam::Text(text),
        Message::Binary(data) => MessageParam::Binary(data),
    }
}

fn send_result(result: Result<(), host::SendError>) -> Result<(), SendError> {
    result.map_err(|error| match error {
        host::SendError::Closed => SendError::Closed,
        host::SendError::Gone => SendError::Gone,
        host::SendError::Backpressure => SendError::Backpressure,
        host::SendError::Unreachable => SendError::Unreachable,
    })
}

/// `after` in whole milliseconds, rounded up (so that a short alarm is not an immediate
/// one), saturating.
pub(super) fn alarm_ms(after: Duration) -> u64 {
    u64::try_from(after.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// A connection's id: opaque, unguessable (128 random bits), meaningful only to the runner
/// that issued it. Keep it (in a message, an attachment) to reach that connection later.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Id {
    /// An id received as text (from a client, an attachment). Any string is accepted: the
    /// host answers [`SendError::Gone`] for one it did not issue.
    fn from(id: String) -> Id {
        Id(id)
    }
}

impl From<&str> for Id {
    fn from(id: &str) -> Id {
        Id(id.to_owned())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The upgrade request of this connection, as the host keeps it.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    path: String,
    query: String,
    headers: http::HeaderMap,
    protocol: Option<String>,
}

impl RequestInfo {
    /// The path of the request target, e.g. `/chat/lobby`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query without the `?`, e.g. `nick=ann`; empty when there is none.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The request's headers.
    pub fn headers(&self) -> &http::HeaderMap {
        &self.headers
    }

    /// The subprotocol announced in the 101, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }
}

impl From<host::RequestInfo> for RequestInfo {
    fn from(info: host::RequestInfo) -> RequestInfo {
        // The host parsed these headers off the wire, so each is valid HTTP; one that is
        // not could only be left out.
        let headers = info
            .headers
            .into_iter()
            .filter_map(|(name, value)| {
                Some((
                    http::HeaderName::from_bytes(name.as_bytes()).ok()?,
                    http::HeaderValue::from_bytes(&value).ok()?,
                ))
            })
            .collect();
        RequestInfo {
            path: info.path,
            query: info.query,
            headers,
            protocol: info.protocol,
        }
    }
}

/// How the WebSocket ended, for [`Handler::on_close`](super::Handler::on_close).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Close {
    /// When `clean`, the client's close code ([`CloseCode::NO_STATUS`], 1005, if its frame
    /// had none). Otherwise what happened: [`CloseCode::ABNORMAL`] (1006) when the client
    /// vanished without a close frame or did not answer ours in time, or the code the host
    /// sent: 1002, 1007 or 1009 when the client broke the protocol or a limit, 1001 at
    /// shutdown, 1000 after an idle timeout.
    pub code: CloseCode,
    /// The close frame's reason (empty when there was none).
    pub reason: String,
    /// Whether the close handshake completed: the client sent a close frame.
    pub clean: bool,
}

pub use crate::app::Limits;

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection's close frame has been sent (or queued): nothing more can follow.
    Closed,
    /// No open connection has that id (it never had, or it ended).
    Gone,
    /// The connection has more bytes waiting to be written than the host allows: the
    /// message was dropped (or the host is closing the connection with 1008, if so
    /// configured).
    Backpressure,
    /// The id belongs to another runner of the cluster that cannot be reached now: the
    /// message was dropped. (A runner that has stopped gives [`SendError::Gone`].)
    Unreachable,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed => "the connection is closing",
            SendError::Gone => "no open connection has that id",
            SendError::Backpressure => "the client is not reading fast enough",
            SendError::Unreachable => "the runner holding that connection cannot be reached",
        })
    }
}

impl std::error::Error for SendError {}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// The name is empty or longer than [`Limits::max_topic_len`] bytes.
    BadName,
    /// This connection already has [`Limits::max_topics`] subscriptions.
    TooMany,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicError::BadName => "the topic name is empty or too long",
            TopicError::TooMany => "the connection has as many topics as the host allows",
        })
    }
}

impl std::error::Error for TopicError {}

/// The attachment is larger than the host keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachmentTooLarge {
    /// The largest attachment, in bytes.
    pub max: u32,
}

impl fmt::Display for AttachmentTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the attachment is larger than {} bytes", self.max)
    }
}

impl std::error::Error for AttachmentTooLarge {}

/// Why [`Websocket::set_auto_response`] refused a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoResponseError {
    /// The request or the response is longer than [`Limits::max_auto_response_size`].
    TooLarge,
    /// This connection already has [`Limits::max_auto_responses`] pairs.
    TooMany,
}

impl fmt::Display for AutoResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AutoResponseError::TooLarge => {
                "the auto-response's request or response is longer than the host allows"
            }
            AutoResponseError::TooMany => {
                "the connection has as many auto-responses as the host allows"
            }
        })
    }
}

impl std::error::Error for AutoResponseError {}
