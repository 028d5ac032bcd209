//! Guest stdout and stderr, into the runner's log.
//!
//! Each line a guest prints becomes one `tracing` event with target `guest` and the
//! connection's `peer`: `info` for stdout, `warn` for stderr (blank lines are dropped,
//! control characters escaped). A line is held until its newline or the end of the guest
//! call; one longer than [`LINE_MAX`] is logged in pieces, so a guest cannot make the host
//! buffer more than that per stream. Lines over `--guest-log-rate` per second are dropped and
//! counted; the count is logged with the next line that is not.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use hyper::body::Bytes;
use tokio::time::Instant;
use tracing::{info, warn};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::metrics::METRICS;
use crate::rate::Bucket;

/// The longest line logged as one event.
const LINE_MAX: usize = 1024;
/// What `check-write` grants: any amount would do, the bytes go straight into the buffer.
const WRITE_PERMIT: usize = 4096;

#[derive(Clone, Copy)]
pub enum Which {
    Stdout,
    Stderr,
}

/// One connection's stdout or stderr. Every stream the guest opens on it (each
/// `get-stdout`) shares one line buffer.
#[derive(Clone)]
pub struct GuestLog(Arc<Mutex<Lines>>);

struct Lines {
    peer: SocketAddr,
    which: Which,
    partial: Vec<u8>,
    /// `--guest-log-rate`; `None`: no limit.
    rate: Option<Bucket>,
    /// Lines dropped over the rate since the last one logged.
    dropped: u64,
}

impl GuestLog {
    /// `rate`: lines per second (`--guest-log-rate`), 0 for no limit.
    pub fn new(peer: SocketAddr, which: Which, rate: u64) -> Self {
        GuestLog(Arc::new(Mutex::new(Lines {
            peer,
            which,
            partial: Vec::new(),
            rate: (rate > 0).then(|| Bucket::new(rate, Instant::now())),
            dropped: 0,
        })))
    }

    /// The connection a pre-made instance went to.
    pub fn set_peer(&self, peer: SocketAddr) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).peer = peer;
    }

    fn push(&self, bytes: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(bytes);
    }

    /// Logs an unfinished line: called when a guest call returns.
    pub fn end_call(&self) {
        let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !lines.partial.is_empty() {
            lines.emit();
        }
    }
}

impl Lines {
    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = LINE_MAX - self.partial.len();
            let take = bytes.len().min(room);
            match bytes[..take].iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.partial.extend_from_slice(&bytes[..end]);
                    bytes = &bytes[end + 1..];
                    self.emit();
                }
                None => {
                    self.partial.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.partial.len() == LINE_MAX {
                        self.emit();
                    }
                }
            }
        }
    }

    /// Logs the buffered line, unless it is blank or over the rate.
    fn emit(&mut self) {
        if self.logged() {
            self.report_dropped();
            let raw = self.partial.strip_suffix(b"\r").unwrap_or(&self.partial);
            let text = String::from_utf8_lossy(raw);
            let line = printable(&text);
            match self.which {
                Which::Stdout => info!(target: "guest", peer = %self.peer, "{line}"),
                Which::Stderr => warn!(target: "guest", peer = %self.peer, "{line}"),
            }
        }
        self.partial.clear();
    }

    /// Whether the buffered line is to be logged: it is not blank, and within the rate
    /// (else it is counted as dropped).
    fn logged(&mut self) -> bool {
        if matches!(self.partial.as_slice(), [] | [b'\r']) {
            return false;
        }
        if let Some(rate) = &mut self.rate
            && !rate.take(1, Instant::now())
        {
            self.dropped += 1;
            METRICS.guest_log_dropped.inc();
            return false;
        }
        true
    }

    /// Says how many lines were dropped over the rate since the last one logged.
    fn report_dropped(&mut self) {
        if self.dropped > 0 {
            let stream = match self.which {
                Which::Stdout => "stdout",
                Which::Stderr => "stderr",
            };
            warn!(target: "guest", peer = %self.peer, dropped = self.dropped, "{stream} lines over --guest-log-rate dropped");
            self.dropped = 0;
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            self.emit();
        }
        self.report_dropped();
    }
}

/// `line` with control characters escaped, so that a guest cannot forge log lines or
/// send terminal escapes.
fn printable(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.chars().any(|c| c.is_control() && c != '\t') {
        return line.into();
    }
    line.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LogStream(self.clone()))
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LogStream(self.clone()))
    }
}

/// A stream onto a [`GuestLog`]: always ready, so a guest's blocking write never waits.
struct LogStream(GuestLog);

#[wasmtime_wasi::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain\ttext é"), "plain\ttext é");
        assert_eq!(printable("a\u{1b}[31mred\u{7}"), "a\\u{1b}[31mred\\u{7}");
    }
}
