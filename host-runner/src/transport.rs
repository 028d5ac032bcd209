//! The socket of an open WebSocket: plain TCP, or TCP carrying TLS (`--tls-cert`).
//!
//! TLS is not a stream wrapped around the socket here: the WebSocket loop waits on the
//! socket's readiness and reads and writes it without blocking, from several threads
//! ([`crate::peer`]), and a wrapper would hide that readiness. Instead the rustls
//! connection is a codec beside the socket: what is read is ciphertext, opened into
//! plaintext in one pass ([`Transport::read`]); what is written is sealed first
//! ([`Transport::seal`]), so that the outbox queues wire bytes either way and writes
//! them as it does for plain TCP. Plain connections pay one branch for this.

use std::cell::Cell;
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio_rustls::rustls::ServerConnection;
use tokio_rustls::server::TlsStream;

pub enum Transport {
    Plain(TcpStream),
    /// Boxed: a plain connection should not carry the size of a TLS one.
    Tls(TcpStream, Box<Mutex<ServerConnection>>),
}

thread_local! {
    /// Ciphertext read from a TLS socket, before it is opened: kept per worker thread,
    /// like the plaintext read buffer, so that idle connections hold none.
    static SPARE_CIPHER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

impl Transport {
    /// The transport of a connection upgraded over TLS. What rustls decrypted and hyper
    /// did not read (the client's first frames, sent with its upgrade request) is
    /// appended to `early`.
    pub fn tls(stream: TlsStream<TcpStream>, early: Bytes) -> (Transport, Bytes) {
        let (socket, mut tls) = stream.into_inner();
        // Writes are sealed whole: a limit would make rustls take part of a frame.
        tls.set_buffer_limit(None);
        let mut rest = Vec::new();
        // `read_to_end` stops at `WouldBlock` once the buffered plaintext is out; the
        // error says only that more must come from the socket.
        let _ = tls.reader().read_to_end(&mut rest);
        let early = if rest.is_empty() {
            early
        } else {
            Bytes::from([&early[..], &rest].concat())
        };
        (Transport::Tls(socket, Box::new(Mutex::new(tls))), early)
    }

    pub fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(socket) | Transport::Tls(socket, _) => socket,
        }
    }

    fn session(tls: &Mutex<ServerConnection>) -> MutexGuard<'_, ServerConnection> {
        // Every rustls call leaves the connection consistent or failed (it records its
        // own errors), so a poisoned lock is still usable.
        tls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads what the client sent, at most `room` bytes from the socket, and appends the
    /// plaintext to `buffer`. Returns the bytes read from the socket (0: the client is
    /// gone). A TLS record that does not open, or an alert, is an `InvalidData` error.
    pub fn read(&self, buffer: &mut Vec<u8>, room: usize) -> std::io::Result<usize> {
        let (socket, tls) = match self {
            Transport::Plain(socket) => {
                buffer.reserve(room);
                return read_draining(socket, buffer);
            }
            Transport::Tls(socket, tls) => (socket, tls),
        };
        let mut cipher = SPARE_CIPHER.take();
        cipher.clear();
        cipher.reserve(room);
        let result = read_draining(socket, &mut cipher).and_then(|n| {
            open(&mut Self::session(tls), &cipher[..n], buffer)?;
            Ok(n)
        });
        SPARE_CIPHER.set(cipher);
        result
    }

    /// Encrypts `parts` (for TLS) into `out`, after anything rustls has to send by itself
    /// (an alert, a key update's answer). `false` for plain TCP, which sends them as given.
    pub fn seal(&self, parts: &[IoSlice<'_>], out: &mut Vec<u8>) -> bool {
        let Transport::Tls(_, tls) = self else {
            return false;
        };
        let mut tls = Self::session(tls);
        // All parts in one call, so that records span them (a frame's header and payload
        // in one record, not two). Without a buffer limit rustls takes all; after a fatal
        // error it takes nothing, and the connection is ending on its read side anyway.
        let _ = tls.writer().write_vectored(parts);
        drain(&mut tls, out);
        true
    }

    /// Whether rustls has something of its own to send (an alert, a key update's answer)
    /// since the last read.
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(_, tls) => Self::session(tls).wants_write(),
        }
    }

    /// Seals a TLS `close_notify`, so that the client knows the stream was not cut short
    /// (nothing for plain TCP).
    pub fn seal_close(&self, out: &mut Vec<u8>) {
        if let Transport::Tls(_, tls) = self {
            let mut tls = Self::session(tls);
            tls.send_close_notify();
            drain(&mut tls, out);
        }
    }
}

/// Moves what rustls has to send into `out`. Writing to a `Vec` cannot fail.
fn drain(tls: &mut ServerConnection, out: &mut Vec<u8>) {
    while tls.wants_write() {
        if !matches!(tls.write_tls(out), Ok(n) if n > 0) {
            break;
        }
    }
}

/// Opens the TLS records in `cipher` into `plain`. A partial record stays in rustls for
/// the next read.
fn open(tls: &mut ServerConnection, mut cipher: &[u8], plain: &mut Vec<u8>) -> std::io::Result<()> {
    while !cipher.is_empty() {
        // rustls takes up to its own buffer's room (4 KiB at a time) from the slice.
        if tls.read_tls(&mut cipher)? == 0 {
            // After the client's `close_notify` nothing more is read.
            break;
        }
        let state = tls
            .process_new_packets()
            .map_err(|error| std::io::Error::new(ErrorKind::InvalidData, error))?;
        let start = plain.len();
        plain.resize(start + state.plaintext_bytes_to_read(), 0);
        tls.reader().read_exact(&mut plain[start..])?;
    }
    Ok(())
}

/// Reads into `buffer`'s spare capacity. A read that does not fill it emptied the socket's
/// receive queue, so the socket's readiness is cleared as if the read had returned
/// `WouldBlock` (what tokio's `poll_read` does; `try_read` does not): the next wait goes to
/// epoll instead of costing a `recv` that fails, one syscall per message saved.
fn read_draining(stream: &TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    let room = buffer.capacity() - buffer.len();
    let mut read = None;
    let result = stream.try_io(Interest::READABLE, || {
        let n = stream.try_read_buf(buffer)?;
        read = Some(n);
        if n > 0 && n < room {
            Err(ErrorKind::WouldBlock.into())
        } else {
            Ok(n)
        }
    });
    match read {
        Some(n) => Ok(n),
        None => result,
    }
}
