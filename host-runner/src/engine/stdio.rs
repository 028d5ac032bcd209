//! Guest stdout and stderr, into the runner's log; and `wasi:io/streams` blocking methods
//! that do not block.
//!
//! Each line a guest prints becomes one `tracing` event with target `guest` and the
//! connection's `peer`: `info` for stdout, `warn` for stderr (blank lines are dropped,
//! control characters escaped). A line is held until its newline or the end of the guest
//! call; one longer than [`LINE_MAX`] is logged in pieces, so a guest cannot make the host
//! buffer more than that per stream.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use hyper::body::Bytes;
use tracing::{info, warn};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::bindings::sync::io::streams::{Host as _, StreamError as WitStreamError};
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};

use super::Host;

/// The longest line logged as one event.
const LINE_MAX: usize = 1024;
/// What `check-write` grants: any amount would do, the bytes go straight into the buffer.
const WRITE_PERMIT: usize = 4096;
/// The most `blocking-write-and-flush` takes, per the WIT.
const BLOCKING_WRITE_MAX: u64 = 4096;
/// The instance `add_to_linker_sync` defines `wasi:io/streams` under in wasmtime-wasi 48
/// (guests importing any 0.2.x resolve to it); tests/stdio.rs fails if this goes stale.
const STREAMS: &str = "wasi:io/streams@0.2.12";

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
}

impl GuestLog {
    pub fn new(peer: SocketAddr, which: Which) -> Self {
        GuestLog(Arc::new(Mutex::new(Lines {
            peer,
            which,
            partial: Vec::new(),
        })))
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

    /// Logs the buffered line, unless it is blank.
    fn emit(&mut self) {
        let raw = self.partial.strip_suffix(b"\r").unwrap_or(&self.partial);
        if !raw.is_empty() {
            let text = String::from_utf8_lossy(raw);
            let line = printable(&text);
            match self.which {
                Which::Stdout => info!(target: "guest", peer = %self.peer, "{line}"),
                Which::Stderr => warn!(target: "guest", peer = %self.peer, "{line}"),
            }
        }
        self.partial.clear();
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            self.emit();
        }
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

/// A stream onto a [`GuestLog`]: always ready, never blocks.
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

/// A guest call that would have to wait: it ends the connection as [`super::Fault::Blocking`].
#[derive(Debug)]
pub struct WouldBlock;

impl std::fmt::Display for WouldBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a blocking WASI call could not complete without waiting")
    }
}

impl std::error::Error for WouldBlock {}

/// Replaces the `output-stream` methods that `add_to_linker_sync` runs through
/// `wasmtime_wasi::runtime::in_tokio` (whose `Handle::block_on` panics on a tokio worker)
/// with ones that poll the same operation once: a stream that is ready, like the log
/// streams above, completes at once; one that is not ends the call with [`WouldBlock`].
pub fn add_nonblocking_streams(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut streams = linker.instance(STREAMS)?;
    streams.func_wrap(
        "[method]output-stream.blocking-write-and-flush",
        |mut store: StoreContextMut<'_, Host>,
         (stream, bytes): (Resource<DynOutputStream>, Vec<u8>)| {
            let table = &mut store.data_mut().table;
            if bytes.len() as u64 > BLOCKING_WRITE_MAX {
                return reply(
                    table,
                    Err(StreamError::trap(
                        "Buffer too large for blocking-write-and-flush (expected at most 4096)",
                    )),
                );
            }
            let result = once(
                table
                    .get_mut(&stream)?
                    .blocking_write_and_flush(bytes.into()),
            )?;
            reply(table, result)
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.blocking-write-zeroes-and-flush",
        |mut store: StoreContextMut<'_, Host>, (stream, len): (Resource<DynOutputStream>, u64)| {
            let table = &mut store.data_mut().table;
            if len > BLOCKING_WRITE_MAX {
                return reply(
                    table,
                    Err(StreamError::trap(
                        "Buffer too large for blocking-write-zeroes-and-flush (expected at most 4096)",
                    )),
                );
            }
            let zeroes = Bytes::from(vec![0; len as usize]);
            let result = once(table.get_mut(&stream)?.blocking_write_and_flush(zeroes))?;
            reply(table, result)
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.blocking-flush",
        |mut store: StoreContextMut<'_, Host>, (stream,): (Resource<DynOutputStream>,)| {
            let table = &mut store.data_mut().table;
            let output = table.get_mut(&stream)?;
            let result = match output.flush() {
                Ok(()) => once(output.write_ready())?.map(drop),
                Err(error) => Err(error),
            };
            reply(table, result)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Polls `future` once; pending means the guest asked to wait.
fn once<T>(mut future: Pin<Box<dyn Future<Output = T> + Send + '_>>) -> wasmtime::Result<T> {
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => Ok(value),
        Poll::Pending => Err(wasmtime::Error::new(WouldBlock)),
    }
}

/// Lowers a stream result the way wasmtime-wasi's bindings do: a trap stays a trap, other
/// errors become a `stream-error` for the guest.
fn reply(
    table: &mut ResourceTable,
    result: StreamResult<()>,
) -> wasmtime::Result<(Result<(), WitStreamError>,)> {
    match result {
        Ok(()) => Ok((Ok(()),)),
        Err(error) => Ok((Err(table.convert_stream_error(error)?),)),
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
