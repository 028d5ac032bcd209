//! The sans-IO protocol state machine: bytes in → events out, messages in → bytes out.
//!
//! A [`Session`] owns everything RFC 6455 asks of an endpoint after the handshake —
//! masking rules, fragmentation, incremental UTF-8 validation, automatic pongs, the close
//! handshake and size limits — and touches no socket, clock or global RNG. The caller:
//!
//! 1. feeds every chunk read from the transport to [`Session::receive`];
//! 2. drains [`Session::poll_event`] for messages, pings, pongs and the peer's close
//!    (or does 1 and 2 one event at a time with [`Session::next_event`], so that its
//!    answers keep the order of the frames they answer);
//! 3. queues outgoing data with `send_*`/[`Session::close`];
//! 4. writes whatever [`Session::poll_transmit`] hands out (this includes automatic pongs
//!    and close replies, so do it after every `receive` too);
//! 5. drops the transport once [`Session::is_finished`] is true.
//!
//! # Examples
//!
//! An in-memory client/server pair:
//!
//! ```
//! use wsbox::session::{Event, Session};
//! use wsbox::{Config, Message};
//!
//! let mut client = Session::client(Config::default(), || [1, 2, 3, 4]);
//! let mut server = Session::server(Config::default());
//! client.send_text("hello").unwrap();
//! let mut wire = Vec::new();
//! client.poll_transmit(&mut wire);
//! server.receive(&wire).unwrap();
//! assert_eq!(server.poll_event(), Some(Event::Message(Message::Text("hello".into()))));
//! ```

use std::collections::VecDeque;
use std::fmt;

use super::config::Config;
use super::deflate::{Codec, Engines};
use super::error::{CapacityError, CapacityKind, ClosedError, Error, ProtocolError};
use super::frame::{self, CloseCode, Control, Data, FrameHeader, MAX_HEADER_LEN, OpCode};
use super::utf8;

mod compression;

/// A complete WebSocket message (as in `rouille::websocket`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message; always valid UTF-8.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Message {
    /// The payload bytes, whatever the kind.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// The payload bytes, whatever the kind.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Message::Text(s) => s.into_bytes(),
            Message::Binary(b) => b,
        }
    }
}

/// The code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code; [`CloseCode::NO_STATUS`] (1005) when the frame carried none.
    pub code: CloseCode,
    /// The reason, possibly empty.
    pub reason: String,
}

impl fmt::Display for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{}", self.code.0)
        } else {
            write!(f, "{} ({})", self.code.0, self.reason)
        }
    }
}

/// What the peer sent, as returned by [`Session::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete text or binary message.
    Message(Message),
    /// A ping; the matching pong is already queued.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// The peer's close frame; if we had not sent one, the reply is already queued.
    Close(CloseFrame),
}

/// Which end of the connection this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts connections: expects masked frames, sends unmasked ones.
    Server,
    /// Opens connections: sends masked frames, expects unmasked ones.
    Client,
}

/// A source of masking keys for the client role. RFC 6455 §10.3 asks for keys an attacker
/// cannot predict, so back it with a strong RNG ([`OsMasks`](crate::OsMasks) does).
pub trait MaskSource: Send {
    /// The key for the next frame.
    fn next_mask(&mut self) -> [u8; 4];
}

impl<F: FnMut() -> [u8; 4] + Send> MaskSource for F {
    fn next_mask(&mut self) -> [u8; 4] {
        self()
    }
}

/// The most of a frame's declared payload reserved before it arrives: about one socket
/// read's worth.
const RESERVE_AHEAD: usize = 64 << 10;

/// The frame whose payload is being received.
#[derive(Debug, Clone, Copy)]
struct InFrame {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    remaining: u64,
    offset: usize,
}

/// The kind of the data message being assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageKind {
    Text,
    Binary,
}

/// The protocol state of one WebSocket connection. See the [module docs](self) for the call
/// order.
pub struct Session {
    role: Role,
    config: Config,
    masks: Option<Box<dyn MaskSource>>,
    // Receive side.
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    frame: Option<InFrame>,
    message: Vec<u8>,
    message_kind: Option<MessageKind>,
    // The message being received is compressed: `message` holds it as it came.
    message_compressed: bool,
    utf8_valid_up_to: usize,
    control: Vec<u8>,
    events: VecDeque<Event>,
    // Close state.
    close_sent: bool,
    close_received: Option<CloseFrame>,
    error: Option<Error>,
    // Send side.
    out: Vec<u8>,
    // permessage-deflate, when agreed; the engines used where it keeps no context.
    deflate: Option<Codec>,
    engines: Engines,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("close_sent", &self.close_sent)
            .field("close_received", &self.close_received)
            .field("error", &self.error)
            .field("pending_output", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A server-side session.
    pub fn server(config: Config) -> Self {
        Self::new(Role::Server, config, None)
    }

    /// A client-side session whose frames are masked with keys from `masks`.
    pub fn client(config: Config, masks: impl MaskSource + 'static) -> Self {
        Self::new(Role::Client, config, Some(Box::new(masks)))
    }

    fn new(role: Role, config: Config, masks: Option<Box<dyn MaskSource>>) -> Self {
        Session {
            role,
            config,
            masks,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            frame: None,
            message: Vec::new(),
            message_kind: None,
            message_compressed: false,
            utf8_valid_up_to: 0,
            control: Vec::new(),
            events: VecDeque::new(),
            close_sent: false,
            close_received: None,
            error: None,
            out: Vec::new(),
            deflate: None,
            engines: Engines::default(),
        }
    }

    /// This session's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits this session enforces.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Feeds bytes read from the transport. Any split is fine: a header or a UTF-8 sequence
    /// may straddle calls.
    ///
    /// On a protocol violation or exceeded limit this returns the error, queues a close frame
    /// with the matching code (1002, 1007 or 1009) and ignores all further input. Input after
    /// the peer's close frame is ignored too (§5.5.1).
    pub fn receive(&mut self, data: &[u8]) -> Result<(), Error> {
        self.receive_until(data, usize::MAX).map(drop)
    }

    /// The next event, feeding `input` only as far as it takes to produce it: `input` is
    /// advanced past the bytes used. `None` once `input` is used up, or once the session is
    /// finished (the rest of `input` is then ignored; [`Session::error`] tells a violation,
    /// whose close frame is queued, from the close handshake).
    ///
    /// This is how every driver of a session in this crate reads (the blocking
    /// [`Websocket`](crate::Websocket), the guest SDK, `wsbox.wasm`): [`Session::receive`]
    /// answers every ping and close in its input at once, so those replies would go out
    /// before anything the application sends in answer to the messages that preceded them
    /// (and a close reply or a violation's close frame would end sending before the
    /// application has seen those messages). Handling each event before asking for the next
    /// keeps the application's replies and the automatic ones in the order the peer sent
    /// the frames.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsbox::session::{Event, Session};
    /// use wsbox::{Config, Message};
    ///
    /// let mut client = Session::client(Config::default(), || [1, 2, 3, 4]);
    /// client.send_text("last words").unwrap();
    /// client.close(1000u16, "").unwrap();
    /// let mut wire = Vec::new();
    /// client.poll_transmit(&mut wire);
    ///
    /// let mut server = Session::server(Config::default());
    /// let mut input = &wire[..];
    /// while let Some(event) = server.next_event(&mut input) {
    ///     if let Event::Message(Message::Text(text)) = event {
    ///         // Still possible: the close has not been answered yet.
    ///         server.send_text(&text).unwrap();
    ///     }
    /// }
    /// assert!(server.is_finished() && input.is_empty());
    /// ```
    #[must_use]
    pub fn next_event(&mut self, input: &mut &[u8]) -> Option<Event> {
        while self.events.is_empty() && !input.is_empty() && !self.is_finished() {
            match self.receive_until(input, 1) {
                Ok(used) => *input = &input[used..],
                Err(_) => break,
            }
        }
        self.events.pop_front()
    }

    /// Receives from `data` until `events` events are queued; returns the bytes used.
    fn receive_until(&mut self, mut data: &[u8], events: usize) -> Result<usize, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let len = data.len();
        while !data.is_empty() && self.close_received.is_none() && self.events.len() < events {
            let step = match self.frame {
                None => self.receive_header(data),
                Some(frame) => self.receive_payload(frame, data),
            };
            match step {
                Ok(used) => data = &data[used..],
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(len - data.len())
    }

    /// Consumes header bytes from `data`; returns how many.
    fn receive_header(&mut self, data: &[u8]) -> Result<usize, Error> {
        if self.header_len == 0 {
            // Fast path: the whole header is in `data`, nothing to copy.
            if let Some((header, len)) = FrameHeader::parse_with(data, self.allowed_rsv())? {
                self.begin_frame(header)?;
                return Ok(len);
            }
        }
        let had = self.header_len;
        let take = (MAX_HEADER_LEN - had).min(data.len());
        self.header[had..had + take].copy_from_slice(&data[..take]);
        self.header_len += take;
        match FrameHeader::parse_with(&self.header[..self.header_len], self.allowed_rsv())? {
            Some((header, len)) => {
                self.header_len = 0;
                self.begin_frame(header)?;
                Ok(len - had)
            }
            None => Ok(take),
        }
    }

    fn begin_frame(&mut self, header: FrameHeader) -> Result<(), Error> {
        match (self.role, header.mask) {
            (Role::Server, None) if !self.config.get_accept_unmasked_frames() => {
                return Err(ProtocolError::UnmaskedClientFrame.into());
            }
            (Role::Client, Some(_)) => return Err(ProtocolError::MaskedServerFrame.into()),
            _ => {}
        }
        let max_frame = self.config.get_max_frame_size();
        if header.payload_len > max_frame as u64 {
            return Err(CapacityError {
                kind: CapacityKind::Frame,
                size: header.payload_len,
                max: max_frame,
            }
            .into());
        }
        self.check_rsv1(&header)?;
        match header.opcode {
            OpCode::Data(data) => {
                match (data, self.message_kind) {
                    (Data::Continue, None) => {
                        return Err(ProtocolError::UnexpectedContinuation.into());
                    }
                    (Data::Text | Data::Binary, Some(_)) => {
                        return Err(ProtocolError::ExpectedContinuation.into());
                    }
                    (Data::Text, None) => self.message_kind = Some(MessageKind::Text),
                    (Data::Binary, None) => self.message_kind = Some(MessageKind::Binary),
                    _ => {}
                }
                let size = self.message.len() as u64 + header.payload_len;
                let max_message = self.config.get_max_message_size();
                if size > max_message as u64 {
                    return Err(CapacityError {
                        kind: CapacityKind::Message,
                        size,
                        max: max_message,
                    }
                    .into());
                }
                // Growing the buffer read by read would reallocate and copy what has arrived
                // so far; the cap keeps a peer that merely announces a big frame from making
                // us allocate it.
                self.message
                    .reserve(header.payload_len.min(RESERVE_AHEAD as u64) as usize);
            }
            OpCode::Control(_) => self.control.clear(),
        }
        let frame = InFrame {
            opcode: header.opcode,
            fin: header.fin,
            mask: header.mask,
            remaining: header.payload_len,
            offset: 0,
        };
        if frame.remaining == 0 {
            self.end_frame(frame)
        } else {
            self.frame = Some(frame);
            Ok(())
        }
    }

    /// Consumes payload bytes of `frame` from `data`; returns how many.
    fn receive_payload(&mut self, mut frame: InFrame, data: &[u8]) -> Result<usize, Error> {
        let take = usize::try_from(frame.remaining).map_or(data.len(), |r| r.min(data.len()));
        let target = if frame.opcode.is_control() {
            &mut self.control
        } else {
            &mut self.message
        };
        let start = target.len();
        target.extend_from_slice(&data[..take]);
        if let Some(mask) = frame.mask {
            frame::apply_mask(&mut target[start..], mask, frame.offset);
        }
        if !frame.opcode.is_control()
            && self.message_kind == Some(MessageKind::Text)
            && !self.message_compressed
        {
            // Fail fast: bad UTF-8 closes the connection before the message is complete.
            self.utf8_valid_up_to += utf8::validate_prefix(&self.message[self.utf8_valid_up_to..])?;
        }
        frame.remaining -= take as u64;
        frame.offset += take;
        if frame.remaining == 0 {
            self.frame = None;
            self.end_frame(frame)?;
        } else {
            self.frame = Some(frame);
        }
        Ok(take)
    }

    fn end_frame(&mut self, frame: InFrame) -> Result<(), Error> {
        match frame.opcode {
            OpCode::Data(_) => {
                if frame.fin {
                    self.end_message()?;
                }
            }
            OpCode::Control(Control::Ping) => {
                let payload = std::mem::take(&mut self.control);
                if !self.close_sent {
                    self.queue_frame(OpCode::Control(Control::Pong), &payload);
                }
                self.events.push_back(Event::Ping(payload));
            }
            OpCode::Control(Control::Pong) => {
                self.events
                    .push_back(Event::Pong(std::mem::take(&mut self.control)));
            }
            OpCode::Control(Control::Close) => {
                let close = parse_close_payload(&self.control)?;
                if !self.close_sent {
                    // Echo the code (§5.5.1); an empty close is answered with an empty one.
                    let echo_len = if self.control.is_empty() { 0 } else { 2 };
                    let payload = std::mem::take(&mut self.control);
                    self.queue_frame(OpCode::Control(Control::Close), &payload[..echo_len]);
                    self.close_sent = true;
                }
                self.close_received = Some(close.clone());
                self.events.push_back(Event::Close(close));
            }
            OpCode::Control(Control::Reserved(_)) => {
                unreachable!("FrameHeader::parse rejects reserved opcodes")
            }
        }
        Ok(())
    }

    fn end_message(&mut self) -> Result<(), Error> {
        if self.message_compressed {
            self.inflate_message()?;
        }
        let bytes = std::mem::take(&mut self.message);
        let valid = std::mem::take(&mut self.utf8_valid_up_to);
        let message = match self.message_kind.take() {
            Some(MessageKind::Text) => {
                // The prefix check above stops before an incomplete sequence; at the end of
                // the message there must be none.
                Message::Text(utf8::into_string(bytes, valid)?)
            }
            Some(MessageKind::Binary) => Message::Binary(bytes),
            None => unreachable!("begin_frame opens a message before its first frame"),
        };
        self.events.push_back(Event::Message(message));
        Ok(())
    }

    /// Records a fatal error and queues the close frame it calls for.
    fn fail(&mut self, error: Error) -> Error {
        self.error = Some(error);
        if !self.close_sent {
            let code = error.close_code().0.to_be_bytes();
            self.queue_frame(OpCode::Control(Control::Close), &code);
            self.close_sent = true;
        }
        error
    }

    /// The next thing the peer sent, in order.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Moves all bytes waiting to be written into `buf` (appending; no copy when `buf` is
    /// empty and no larger than the session's own buffer). Returns whether there were any.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool {
        if self.out.is_empty() {
            return false;
        }
        // Swapped only when the session is not left holding a larger buffer than it had: an
        // idle connection would otherwise keep whatever large, empty buffer it was given.
        if buf.is_empty() && buf.capacity() <= self.out.capacity() {
            std::mem::swap(buf, &mut self.out);
        } else {
            buf.append(&mut self.out);
        }
        true
    }

    /// Frees the buffer space kept between messages (events, control frames, output). For
    /// sessions about to sit idle: many idle sessions then hold only their fixed size.
    pub fn shrink_to_fit(&mut self) {
        self.events.shrink_to_fit();
        self.control.shrink_to_fit();
        self.message.shrink_to_fit();
        self.out.shrink_to_fit();
        // Engines of its own (no one lent it theirs) are rebuilt when next needed.
        self.engines = Engines::default();
    }

    /// The bytes this session holds on the receive side: the buffer of the message being
    /// received (its fragments so far, compressed or not; its capacity is kept between
    /// messages until [`Session::shrink_to_fit`]) and of a control frame. What a host counts
    /// against its memory bounds for a peer that sends a message slowly, or never ends one.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsbox::session::Session;
    /// use wsbox::Config;
    ///
    /// let mut server = Session::server(Config::default());
    /// // A masked, unfinished text fragment of 4 bytes (FIN clear, opcode 1).
    /// let frame = [0x01, 0x84, 0, 0, 0, 0, b'a', b'b', b'c', b'd'];
    /// server.receive(&frame).unwrap();
    /// assert!(server.buffered() >= 4);
    /// server.shrink_to_fit();
    /// assert!(server.buffered() >= 4, "an unfinished message is kept");
    /// ```
    pub fn buffered(&self) -> usize {
        self.message.capacity() + self.control.capacity()
    }

    /// Gives up the message being received: its fragments so far are dropped and the receive
    /// buffers freed. For a host that ends a connection whose unfinished message it cannot
    /// keep, once its close frame is queued: feed it no more input (the rest of that message
    /// would not be recognised as such).
    pub fn discard_message(&mut self) {
        self.message = Vec::new();
        self.control = Vec::new();
    }

    /// Whether bytes are waiting for [`Session::poll_transmit`].
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), ClosedError> {
        self.send(OpCode::Data(Data::Text), text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), ClosedError> {
        self.send(OpCode::Data(Data::Binary), data)
    }

    /// Queues a ping. The payload is cut to 125 bytes, the most a control frame may carry.
    pub fn send_ping(&mut self, data: &[u8]) -> Result<(), ClosedError> {
        self.send(OpCode::Control(Control::Ping), &data[..data.len().min(125)])
    }

    /// Queues an unsolicited pong (a one-way heartbeat). Pongs answering pings are
    /// automatic. The payload is cut to 125 bytes.
    pub fn send_pong(&mut self, data: &[u8]) -> Result<(), ClosedError> {
        self.send(OpCode::Control(Control::Pong), &data[..data.len().min(125)])
    }

    /// Queues a message of either kind.
    pub fn send_message(&mut self, message: &Message) -> Result<(), ClosedError> {
        match message {
            Message::Text(text) => self.send_text(text),
            Message::Binary(data) => self.send_binary(data),
        }
    }

    fn send(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), ClosedError> {
        if self.close_sent {
            return Err(ClosedError);
        }
        if opcode.is_control() || !self.deflate.as_ref().is_some_and(Codec::compresses) {
            self.queue_frame(opcode, payload);
        } else {
            self.queue_compressed(opcode, payload);
        }
        Ok(())
    }

    /// Starts the close handshake: queues a close frame with `code` and `reason`. After this
    /// nothing more can be sent; keep receiving until [`Session::is_finished`].
    ///
    /// A code that may not be sent on the wire (see [`CloseCode::is_sendable`]) is replaced
    /// by 1000; the reason is cut at a character boundary to fit the 125-byte control frame.
    pub fn close(&mut self, code: impl Into<CloseCode>, reason: &str) -> Result<(), ClosedError> {
        if self.close_sent {
            return Err(ClosedError);
        }
        let code = code.into();
        let code = if code.is_sendable() {
            code
        } else {
            CloseCode::NORMAL
        };
        let mut payload = Vec::with_capacity(125);
        payload.extend_from_slice(&code.0.to_be_bytes());
        payload.extend_from_slice(utf8::truncate(reason, 123).as_bytes());
        self.queue_frame(OpCode::Control(Control::Close), &payload);
        self.close_sent = true;
        Ok(())
    }

    fn queue_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        let mask = self.masks.as_mut().map(|m| m.next_mask());
        frame::encode_frame(&mut self.out, true, opcode, mask, payload);
    }

    /// Whether we have sent (or queued) a close frame: nothing more can be sent.
    pub fn is_closed(&self) -> bool {
        self.close_sent
    }

    /// Whether the connection is over: both close frames exchanged, or a protocol error.
    /// Once the output is written, the transport can be dropped.
    pub fn is_finished(&self) -> bool {
        self.error.is_some() || (self.close_sent && self.close_received.is_some())
    }

    /// The peer's close frame, once received.
    pub fn close_received(&self) -> Option<&CloseFrame> {
        self.close_received.as_ref()
    }

    /// The error that ended the session, if any.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }
}

/// Validates a close frame's payload (§5.5.1, §7.4).
fn parse_close_payload(payload: &[u8]) -> Result<CloseFrame, ProtocolError> {
    match payload {
        [] => Ok(CloseFrame {
            code: CloseCode::NO_STATUS,
            reason: String::new(),
        }),
        [_] => Err(ProtocolError::InvalidClosePayload),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_sendable() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(CloseFrame {
                code,
                reason: reason.to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests;
