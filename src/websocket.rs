//! The blocking `Websocket` of the rouille API: a [`Session`] over a `Read + Write` stream.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;

use crate::proto::error::ClosedError;
use crate::proto::frame::CloseCode;
use crate::proto::session::{CloseFrame, Event, Message, Role, Session};

/// How much one `read` on the stream asks for.
const READ_CHUNK: usize = 32 << 10;

/// An open WebSocket connection over a blocking stream (a `TcpStream` unless you say
/// otherwise), as in `rouille::websocket`.
///
/// - `send_text`/`send_binary`/`send_ping`/`close` write a frame and flush.
/// - As an `Iterator`, it yields each received [`Message`] and ends (`None`) once the
///   connection is closed by either side, the peer vanishes or breaks the protocol (after we
///   sent the matching close code). Pings are answered automatically while iterating.
///   On the client side a clean close ends once the server has closed the TCP connection
///   (RFC 6455 §7.1.1); a read timeout on the stream bounds that wait.
/// - As `Read`, it yields the payload bytes of the received messages (text and binary alike)
///   in order, with no message boundaries, and `Ok(0)` once the connection is closed.
/// - As `Write`, each `write` call sends its whole buffer as one binary message.
///
/// Dropping an open `Websocket` sends a 1000 (normal) close frame, best effort. That
/// write, like every send, waits no longer than the stream's write timeout: the server
/// ([`ServerConfig::write_timeout`](crate::server::ServerConfig::write_timeout)) and the
/// client ([`ClientConfig`](crate::client::ClientConfig)) set one, so a peer that stops
/// reading cannot block a send or a drop forever. Set one on streams you bring yourself.
///
/// # Examples
///
/// An echo over any stream (see `examples/echo_server.rs` for a full server):
///
/// ```no_run
/// fn echo(mut websocket: wsbox::Websocket) {
///     while let Some(message) = websocket.next() {
///         let sent = match message {
///             wsbox::Message::Text(text) => websocket.send_text(&text),
///             wsbox::Message::Binary(data) => websocket.send_binary(&data),
///         };
///         if sent.is_err() {
///             break;
///         }
///     }
/// }
/// ```
pub struct Websocket<S: Read + Write = TcpStream> {
    stream: S,
    session: Session,
    /// Bytes read from the stream; `read_buf[input_start..input_end]` is not yet fed to the
    /// session (see [`Session::next_event`] for why input waits).
    read_buf: Box<[u8]>,
    input_start: usize,
    input_end: usize,
    out: Vec<u8>,
    /// The message `Read` is handing out, and how far it got.
    reading: Vec<u8>,
    read_pos: usize,
    /// The peer closed the transport (read returned 0) or it failed.
    transport_closed: bool,
    /// Whatever must live exactly as long as the connection (the blocking server's
    /// connection slot); dropped after the close frame goes out.
    _held: Option<Box<dyn Send + Sync>>,
}

impl<S: Read + Write> fmt::Debug for Websocket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Websocket")
            .field("session", &self.session)
            .field("transport_closed", &self.transport_closed)
            .finish_non_exhaustive()
    }
}

impl<S: Read + Write> Websocket<S> {
    /// Wraps a stream on which the handshake is complete. `already_read` holds bytes read
    /// past the handshake (frames the peer sent right after it); they are processed first.
    pub fn from_session(stream: S, session: Session, already_read: &[u8]) -> Self {
        let mut read_buf = vec![0; READ_CHUNK.max(already_read.len())].into_boxed_slice();
        read_buf[..already_read.len()].copy_from_slice(already_read);
        Websocket {
            stream,
            session,
            read_buf,
            input_start: 0,
            input_end: already_read.len(),
            out: Vec::new(),
            reading: Vec::new(),
            read_pos: 0,
            transport_closed: false,
            _held: None,
        }
    }

    /// Keeps `guard` until this `Websocket` is dropped.
    pub(crate) fn hold_until_drop(&mut self, guard: Box<dyn Send + Sync>) {
        self._held = Some(guard);
    }

    /// Sends a text message.
    pub fn send_text(&mut self, data: &str) -> Result<(), SendError> {
        self.session.send_text(data)?;
        self.flush_output()
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.session.send_binary(data)?;
        self.flush_output()
    }

    /// Sends a ping (payload cut to 125 bytes); the pong shows up as nothing but liveness.
    pub fn send_ping(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.session.send_ping(data)?;
        self.flush_output()
    }

    /// Starts the close handshake with `code` and `reason` (see [`Session::close`]). Keep
    /// iterating to receive the peer's close; messages already in flight still arrive.
    pub fn close(&mut self, code: impl Into<CloseCode>, reason: &str) -> Result<(), SendError> {
        self.session.close(code, reason)?;
        self.flush_output()
    }

    /// Whether the connection is closed: a close frame was sent or received, or the
    /// transport ended. Nothing more can be sent.
    pub fn is_closed(&self) -> bool {
        self.session.is_closed() || self.transport_closed
    }

    /// The code and reason of the peer's close frame, once received.
    pub fn close_reason(&self) -> Option<&CloseFrame> {
        self.session.close_received()
    }

    /// The next message, or `Ok(None)` once the connection is over. Unlike the `Iterator`,
    /// this reports I/O errors and protocol violations (the close frame for a violation has
    /// been sent by then).
    pub fn recv(&mut self) -> io::Result<Option<Message>> {
        loop {
            let mut input = &self.read_buf[self.input_start..self.input_end];
            let event = self.session.next_event(&mut input);
            self.input_start = self.input_end - input.len();
            match event {
                Some(Event::Message(message)) => return Ok(Some(message)),
                Some(_) => continue,
                None => {}
            }
            // Pongs, a close reply or a violation's close frame go out before we block on a
            // read or report the end.
            if !self.transport_closed {
                self.flush_output().map_err(io::Error::from)?;
            }
            if let Some(error) = self.session.error() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, *error));
            }
            if self.transport_closed {
                return Ok(None);
            }
            if self.session.is_finished() {
                if self.session.role() == Role::Client {
                    self.await_server_close();
                }
                return Ok(None);
            }
            let n = match self.stream.read(&mut self.read_buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.transport_closed = true;
                    return Err(e);
                }
            };
            if n == 0 {
                self.transport_closed = true;
                return Ok(None);
            }
            (self.input_start, self.input_end) = (0, n);
        }
    }

    /// RFC 6455 §7.1.1: after the close handshake the server closes the TCP connection
    /// first, so that it, not the client, holds TIME_WAIT. The handshake is complete, so any
    /// error (such as the stream's read timeout) ends the wait too, and so does data, which
    /// may not follow a close frame: only a silent server keeps us waiting, up to the timeout.
    fn await_server_close(&mut self) {
        loop {
            match self.stream.read(&mut self.read_buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => break,
            }
        }
        self.input_start = self.input_end;
        self.transport_closed = true;
    }

    fn flush_output(&mut self) -> Result<(), SendError> {
        if !self.session.poll_transmit(&mut self.out) {
            return Ok(());
        }
        let written = self
            .stream
            .write_all(&self.out)
            .and_then(|()| self.stream.flush());
        self.out.clear();
        written.map_err(|e| {
            self.transport_closed = true;
            SendError::IoError(e)
        })
    }

    /// The protocol state.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, e.g. to set timeouts. Reading or writing it directly corrupts
    /// the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}

impl<S: Read + Write> Iterator for Websocket<S> {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        self.recv().ok().flatten()
    }
}

impl<S: Read + Write> Read for Websocket<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.read_pos < self.reading.len() {
                let n = buf.len().min(self.reading.len() - self.read_pos);
                buf[..n].copy_from_slice(&self.reading[self.read_pos..self.read_pos + n]);
                self.read_pos += n;
                return Ok(n);
            }
            match self.recv()? {
                Some(message) => {
                    self.reading = message.into_bytes();
                    self.read_pos = 0;
                }
                None => return Ok(0),
            }
        }
    }
}

impl<S: Read + Write> Write for Websocket<S> {
    /// Sends all of `buf` as one binary message.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send_binary(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl<S: Read + Write> Drop for Websocket<S> {
    fn drop(&mut self) {
        if !self.is_closed() {
            // Best effort: a peer that is gone cannot be told anything anyway.
            let _ = self.close(CloseCode::NORMAL, "");
        }
    }
}

/// Error sending a message (as in `rouille::websocket`).
#[derive(Debug)]
pub enum SendError {
    /// Writing to the underlying stream failed.
    IoError(io::Error),
    /// The connection is closed (by either side); nothing more can be sent.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::IoError(e) => write!(f, "write failed: {e}"),
            SendError::Closed => f.write_str("the websocket is closed"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::IoError(e) => Some(e),
            SendError::Closed => None,
        }
    }
}

impl From<ClosedError> for SendError {
    fn from(ClosedError: ClosedError) -> Self {
        SendError::Closed
    }
}

impl From<io::Error> for SendError {
    fn from(e: io::Error) -> Self {
        SendError::IoError(e)
    }
}

impl From<SendError> for io::Error {
    fn from(e: SendError) -> Self {
        match e {
            SendError::IoError(e) => e,
            SendError::Closed => io::Error::new(io::ErrorKind::NotConnected, SendError::Closed),
        }
    }
}
