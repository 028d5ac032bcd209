//! One TCP connection: the HTTP phase (see [`crate::http`]), then, after a 101, the
//! WebSocket phase: each socket read is one `on-bytes` call and its reply is written back;
//! the close handshake is bounded however it starts, and ends with the last close frame
//! delivered.

use std::cell::Cell;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Duration, sleep_until};
use tracing::{info, warn};
use wsbox::frame::{Control, FrameHeader, OpCode};

use crate::cli::Settings;
use crate::engine::{Fault, Guest, Reply, Runtime};
use crate::http;
use crate::shutdown::Shutdown;

/// What every connection task reads.
pub struct Shared {
    pub runtime: Arc<Runtime>,
    pub settings: Settings,
    pub shutdown: Shutdown,
}

/// Socket reads per call: large messages arrive in few calls.
const READ_BUFFER: usize = 64 * 1024;

thread_local! {
    /// A read buffer kept per worker thread rather than per connection, so that idle
    /// connections cost none: a connection takes it for one read and its guest call, and
    /// puts it back on whichever thread it then runs on. A connection that finds the slot
    /// empty (another one's call is suspended) allocates its own.
    static SPARE_BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

fn take_buffer() -> Vec<u8> {
    let mut buffer = SPARE_BUFFER.take();
    buffer.clear();
    buffer.reserve(READ_BUFFER);
    buffer
}

fn put_back(buffer: Vec<u8>) {
    SPARE_BUFFER.set(buffer);
}

/// Close code the runner sends itself when the guest fails (RFC 6455 §7.4.1).
const INTERNAL_ERROR: u16 = 1011;
const GOING_AWAY: u16 = 1001;
const NORMAL: u16 = 1000;
/// The bound on a stalled write when `--idle-timeout` is off.
const STALLED_WRITE: Duration = Duration::from_secs(300);
/// How long the runner reads (and discards) what a peer still sends after the last close
/// frame: closing a socket with unread input resets the connection, which destroys the
/// close frame if the peer has not read it yet.
const LINGER: Duration = Duration::from_secs(1);

/// Serves one accepted connection; `_permit` is its place under `--max-connections`.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
) {
    let Some(upgraded) = http::serve(stream, peer, &shared).await else {
        return;
    };
    let started = Instant::now();
    let path = upgraded.path.clone();
    let subprotocol = upgraded.subprotocol.clone();
    info!(%peer, path, subprotocol = subprotocol.as_deref().unwrap_or(""), "websocket open");
    let mut socket = Socket {
        stream: upgraded.stream,
        peer,
        bytes_in: 0,
        bytes_out: 0,
        close_code: None,
        write_timeout: shared.settings.idle_timeout.unwrap_or(STALLED_WRITE),
    };
    let end = socket.run(upgraded.guest, upgraded.early, &shared).await;
    info!(
        %peer,
        path,
        subprotocol = subprotocol.as_deref().unwrap_or(""),
        duration_ms = started.elapsed().as_millis() as u64,
        bytes_in = socket.bytes_in,
        bytes_out = socket.bytes_out,
        close_code = socket.close_code.map_or_else(|| "none".to_owned(), |c| c.to_string()),
        end,
        "websocket closed"
    );
}

/// An upgraded connection and what the close log line reports.
struct Socket {
    stream: TcpStream,
    peer: SocketAddr,
    bytes_in: u64,
    bytes_out: u64,
    /// The code of the close frame we sent, if any.
    close_code: Option<u16>,
    /// How long one reply may take to drain into the socket.
    write_timeout: Duration,
}

impl Socket {
    /// Runs the WebSocket until it ends; returns how it ended, for the log.
    async fn run(
        &mut self,
        mut guest: Guest,
        early: hyper::body::Bytes,
        shared: &Shared,
    ) -> &'static str {
        let settings = &shared.settings;
        let mut shutdown = shared.shutdown.clone();
        // When the idle timeout is off this fires only for the close deadline.
        let far = Duration::from_secs(86_400 * 365);
        let idle = settings.idle_timeout.unwrap_or(far);
        let mut last_read = tokio::time::Instant::now();
        let timer = sleep_until(last_read + idle);
        tokio::pin!(timer);
        // Set once a close frame went out (the guest's own, or one the runner asked for):
        // from then on the timer is the deadline for the peer's answer.
        let mut closing = false;
        let mut early = Some(early).filter(|early| !early.is_empty());

        loop {
            let reply = if let Some(early) = early.take() {
                self.bytes_in += early.len() as u64;
                guest.on_bytes(&early).await
            } else {
                tokio::select! {
                    biased;
                    ready = self.stream.readable() => {
                        if ready.is_err() {
                            return self.peer_gone(&mut guest, "peer gone").await;
                        }
                        let mut buffer = take_buffer();
                        let reply = match self.stream.try_read_buf(&mut buffer) {
                            Ok(0) => None,
                            Ok(n) => {
                                self.bytes_in += n as u64;
                                if !closing {
                                    last_read = tokio::time::Instant::now();
                                }
                                Some(guest.on_bytes(&buffer).await)
                            }
                            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                                put_back(buffer);
                                continue;
                            }
                            Err(_) => None,
                        };
                        put_back(buffer);
                        match reply {
                            Some(reply) => reply,
                            None => return self.peer_gone(&mut guest, "peer gone").await,
                        }
                    }
                    () = shutdown.wait(), if !closing => {
                        closing = true;
                        timer.as_mut().reset(tokio::time::Instant::now() + settings.shutdown_timeout);
                        guest.on_close_request(GOING_AWAY, "server shutting down").await
                    }
                    () = timer.as_mut() => {
                        if closing {
                            return self.peer_gone(&mut guest, "close handshake timed out").await;
                        }
                        let deadline = last_read + idle;
                        if tokio::time::Instant::now() < deadline {
                            timer.as_mut().reset(deadline);
                            continue;
                        }
                        closing = true;
                        timer.as_mut().reset(tokio::time::Instant::now() + settings.handshake_timeout);
                        guest.on_close_request(NORMAL, "idle timeout").await
                    }
                }
            };
            if let Step::End(end) = self.step(reply, &mut guest).await {
                return end;
            }
            // The guest started the close handshake itself (a kick, say): the peer gets as
            // long to answer as after an idle timeout, however much it sends meanwhile.
            if !closing && self.close_code.is_some() {
                closing = true;
                timer
                    .as_mut()
                    .reset(tokio::time::Instant::now() + settings.handshake_timeout);
            }
        }
    }

    /// Acts on a guest call's outcome: writes the reply, closes when asked or on a fault.
    async fn step(&mut self, reply: Result<Reply, Fault>, guest: &mut Guest) -> Step {
        let reply = match reply {
            Ok(reply) => reply,
            Err(fault) if self.close_code.is_some() => {
                // Our close frame is out: a second one would break the protocol.
                warn!(peer = %self.peer, %fault, "guest failed after its close frame");
                self.linger().await;
                return Step::End("guest fault");
            }
            Err(fault) => {
                warn!(peer = %self.peer, %fault, "closing the connection with 1011");
                let mut frame = Vec::new();
                let mut payload = INTERNAL_ERROR.to_be_bytes().to_vec();
                payload.extend_from_slice(b"handler failed");
                wsbox::frame::encode_frame(
                    &mut frame,
                    true,
                    OpCode::Control(Control::Close),
                    None,
                    &payload,
                );
                self.close_code = Some(INTERNAL_ERROR);
                // The peer may be gone already; the connection ends either way.
                if self.write(&frame).await.is_ok() {
                    self.linger().await;
                }
                return Step::End("guest fault");
            }
        };
        if self.close_code.is_none() {
            self.close_code = close_code(&reply.data);
        }
        if !reply.data.is_empty() && self.write(&reply.data).await.is_err() {
            self.peer_gone(guest, "write failed").await;
            return Step::End("write failed");
        }
        if reply.close {
            self.linger().await;
            return Step::End("closed");
        }
        Step::Continue
    }

    /// Writes `data`, trying the fast path (the socket takes it all at once) before awaiting.
    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let written = match self.stream.try_write(data) {
            Ok(n) => n,
            Err(error) if error.kind() == ErrorKind::WouldBlock => 0,
            Err(error) => return Err(error),
        };
        self.bytes_out += written as u64;
        if written < data.len() {
            // A peer that stops reading must not hold its connection forever.
            tokio::time::timeout(self.write_timeout, self.stream.write_all(&data[written..]))
                .await
                .map_err(|_| std::io::Error::from(ErrorKind::TimedOut))??;
            self.bytes_out += (data.len() - written) as u64;
        }
        Ok(())
    }

    /// Ends the connection after its last close frame: sends our FIN after it, then reads
    /// and discards what the peer still sends until it closes too, for at most [`LINGER`].
    async fn linger(&mut self) {
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(LINGER, async {
            while self.stream.readable().await.is_ok() {
                let mut buffer = take_buffer();
                let read = self.stream.try_read_buf(&mut buffer);
                put_back(buffer);
                match read {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
        })
        .await;
    }

    /// Tells the guest that the connection ended without a close handshake.
    async fn peer_gone(&mut self, guest: &mut Guest, end: &'static str) -> &'static str {
        if let Err(fault) = guest.on_peer_gone().await {
            warn!(peer = %self.peer, %fault, "guest failed in on-peer-gone");
        }
        end
    }
}

enum Step {
    Continue,
    End(&'static str),
}

/// The code of the first close frame in `data`, a run of whole server frames.
fn close_code(mut data: &[u8]) -> Option<u16> {
    while let Ok(Some((header, len))) = FrameHeader::parse(data) {
        let payload_len = usize::try_from(header.payload_len).ok()?;
        let payload = data.get(len..len.checked_add(payload_len)?)?;
        if header.opcode == OpCode::Control(Control::Close) {
            return Some(match payload {
                [high, low, ..] => u16::from_be_bytes([*high, *low]),
                _ => 1005,
            });
        }
        data = &data[len + payload_len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_code_is_found_after_other_frames() {
        let mut data = Vec::new();
        wsbox::frame::encode_frame(&mut data, true, OpCode::from(0x1), None, b"bye");
        wsbox::frame::encode_frame(
            &mut data,
            true,
            OpCode::Control(Control::Close),
            None,
            &[0x03, 0xE9, b'x'],
        );
        assert_eq!(close_code(&data), Some(1001));
        data.truncate(data.len() - 1);
        assert_eq!(close_code(&data), None, "a truncated frame is not read");
        let mut empty = Vec::new();
        wsbox::frame::encode_frame(&mut empty, true, OpCode::Control(Control::Close), None, b"");
        assert_eq!(close_code(&empty), Some(1005));
    }
}
