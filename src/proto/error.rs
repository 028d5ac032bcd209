//! The core's errors, layered: what the peer did wrong on the wire ([`ProtocolError`],
//! [`CapacityError`], both inside [`Error`]), what was wrong with an upgrade request
//! ([`WebsocketError`], [`RequestError`]), and the one way queuing a frame fails
//! ([`ClosedError`]). Errors of the edges (I/O, the client's handshake) live with them.

use std::fmt;

use super::close_code::CloseCode;

/// A violation of RFC 6455 by the peer. Each variant is one rule of the RFC; each maps to
/// the close code we send before closing ([`ProtocolError::close_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client sent a frame without a mask (§5.1).
    UnmaskedClientFrame,
    /// A server sent a masked frame (§5.1).
    MaskedServerFrame,
    /// RSV1, RSV2 or RSV3 was set although no extension was negotiated (§5.2).
    ReservedBitsSet,
    /// The opcode is one of the reserved values 0x3–0x7 or 0xB–0xF (§5.2).
    ReservedOpcode(u8),
    /// A control frame had FIN clear (§5.5).
    FragmentedControlFrame,
    /// A control frame carried more than 125 bytes (§5.5).
    ControlFrameTooLong,
    /// A 64-bit payload length had its most significant bit set (§5.2).
    InvalidPayloadLength,
    /// A continuation frame arrived while no fragmented message was open (§5.4).
    UnexpectedContinuation,
    /// A text or binary frame arrived while a fragmented message was still open (§5.4).
    ExpectedContinuation,
    /// A text message, or a close reason, was not valid UTF-8 (§8.1).
    InvalidUtf8,
    /// A close frame had a 1-byte payload (§5.5.1).
    InvalidClosePayload,
    /// A close frame carried a code that may not be sent on the wire (§7.4).
    InvalidCloseCode(u16),
    /// RSV1 (compressed) was set on a control frame (RFC 7692 §6.1).
    CompressedControlFrame,
    /// RSV1 (compressed) was set on a continuation frame: only a message's first frame
    /// carries it (RFC 7692 §6.1).
    CompressedContinuation,
    /// A compressed message is not valid DEFLATE data (RFC 7692 §7.2.2).
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code to send for this violation: 1007 for bad UTF-8 or DEFLATE data, 1002
    /// otherwise.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnmaskedClientFrame => f.write_str("client frame is not masked"),
            ProtocolError::MaskedServerFrame => f.write_str("server frame is masked"),
            ProtocolError::ReservedBitsSet => {
                f.write_str("reserved bits set without a negotiated extension")
            }
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::FragmentedControlFrame => f.write_str("control frame is fragmented"),
            ProtocolError::ControlFrameTooLong => {
                f.write_str("control frame payload longer than 125 bytes")
            }
            ProtocolError::InvalidPayloadLength => {
                f.write_str("64-bit payload length has its top bit set")
            }
            ProtocolError::UnexpectedContinuation => {
                f.write_str("continuation frame without a message to continue")
            }
            ProtocolError::ExpectedContinuation => {
                f.write_str("new data frame while a fragmented message is open")
            }
            ProtocolError::InvalidUtf8 => f.write_str("text is not valid UTF-8"),
            ProtocolError::InvalidClosePayload => f.write_str("close frame with a 1-byte payload"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            ProtocolError::CompressedControlFrame => f.write_str("control frame has RSV1 set"),
            ProtocolError::CompressedContinuation => f.write_str("continuation frame has RSV1 set"),
            ProtocolError::InvalidCompressedData => {
                f.write_str("compressed message is not valid DEFLATE data")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// What exceeded a [`Config`](crate::Config) limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapacityKind {
    /// One frame's declared payload length.
    Frame,
    /// A whole (possibly fragmented) message.
    Message,
}

/// A frame or message larger than the configured limit (close code 1009).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityError {
    /// Frame or message.
    pub kind: CapacityKind,
    /// The size the peer declared (for a message: received so far plus the next frame).
    pub size: u64,
    /// The configured limit.
    pub max: usize,
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            CapacityKind::Frame => "frame",
            CapacityKind::Message => "message",
        };
        write!(
            f,
            "{what} of {} bytes exceeds the limit of {} bytes",
            self.size, self.max
        )
    }
}

impl std::error::Error for CapacityError {}

/// Why a session stopped accepting input. After an `Error`, the session has queued the
/// matching close frame and accepts no more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke a rule of RFC 6455.
    Protocol(ProtocolError),
    /// The peer sent more than the configured limits allow.
    Capacity(CapacityError),
}

impl Error {
    /// The close code sent to the peer because of this error.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Error::Protocol(e) => e.close_code(),
            Error::Capacity(_) => CloseCode::MESSAGE_TOO_BIG,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::Capacity(e) => write!(f, "too big: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Protocol(e) => Some(e),
            Error::Capacity(e) => Some(e),
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

impl From<CapacityError> for Error {
    fn from(e: CapacityError) -> Self {
        Error::Capacity(e)
    }
}

/// What exactly is wrong with an upgrade request (RFC 6455 §4.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The method is not `GET`.
    MethodNotGet,
    /// The HTTP version is older than 1.1.
    HttpVersionTooOld,
    /// There is no `Host` header.
    MissingHost,
    /// There are several `Host` headers (RFC 7230 §5.4).
    DuplicateHost,
    /// The `Upgrade` header is missing or has no `websocket` token.
    MissingUpgradeWebsocket,
    /// The `Connection` header is missing or has no `upgrade` token.
    MissingConnectionUpgrade,
    /// There is no `Sec-WebSocket-Key` header, or there are several.
    MissingKey,
    /// `Sec-WebSocket-Key` is not base64 of exactly 16 bytes.
    InvalidKey,
    /// `Sec-WebSocket-Version` is missing or not 13. Answered with 426 and
    /// `Sec-WebSocket-Version: 13`.
    UnsupportedVersion,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestError::MethodNotGet => "method must be GET",
            RequestError::HttpVersionTooOld => "HTTP version must be 1.1 or later",
            RequestError::MissingHost => "missing Host header",
            RequestError::DuplicateHost => "repeated Host header",
            RequestError::MissingUpgradeWebsocket => "Upgrade header must contain \"websocket\"",
            RequestError::MissingConnectionUpgrade => "Connection header must contain \"Upgrade\"",
            RequestError::MissingKey => "missing or repeated Sec-WebSocket-Key header",
            RequestError::InvalidKey => "Sec-WebSocket-Key must be base64 of 16 bytes",
            RequestError::UnsupportedVersion => "Sec-WebSocket-Version must be 13",
        })
    }
}

impl std::error::Error for RequestError {}

/// Why [`start`](crate::start) refused an upgrade request (as in `rouille::websocket`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebsocketError {
    /// The request is not a valid WebSocket upgrade request; the inner error says why.
    InvalidWebsocketRequest(RequestError),
    /// A subprotocol was required but the client did not offer it.
    WrongSubprotocol,
}

impl fmt::Display for WebsocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebsocketError::InvalidWebsocketRequest(e) => {
                write!(f, "invalid websocket request: {e}")
            }
            WebsocketError::WrongSubprotocol => {
                f.write_str("the client did not offer the required subprotocol")
            }
        }
    }
}

impl std::error::Error for WebsocketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WebsocketError::InvalidWebsocketRequest(e) => Some(e),
            WebsocketError::WrongSubprotocol => None,
        }
    }
}

impl From<RequestError> for WebsocketError {
    fn from(e: RequestError) -> Self {
        WebsocketError::InvalidWebsocketRequest(e)
    }
}

/// A server's `Sec-WebSocket-Extensions` answer that the client must refuse by failing the
/// connection (RFC 6455 §4.1, RFC 7692 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtensionError {
    /// The answer names an extension that was not offered, or several.
    UnsupportedExtension,
    /// A permessage-deflate parameter is unknown, repeated, malformed, or not what the
    /// offer allowed.
    InvalidParameter,
}

impl fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExtensionError::UnsupportedExtension => "the server accepted an extension not offered",
            ExtensionError::InvalidParameter => {
                "the server answered permessage-deflate with parameters the offer does not allow"
            }
        })
    }
}

impl std::error::Error for ExtensionError {}

/// Sending after our close frame was queued (by [`close`](super::session::Session::close),
/// as the answer to the peer's close, or for a violation): a session sends nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedError;

impl fmt::Display for ClosedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the websocket is closed")
    }
}

impl std::error::Error for ClosedError {}
