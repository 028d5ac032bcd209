//! A small blocking HTTP/1.1 server (std threads and `httparse`) in the spirit of
//! `rouille::start_server`: it serves a handler and completes WebSocket upgrades.
//!
//! One thread per connection, up to [`ServerConfig::max_connections`]; keep-alive;
//! `Content-Length` request bodies; a deadline on every request and response. It is meant
//! for examples, tests and small tools; `wsbox-runner` is the production server.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::thread;
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode, Version, header};

use crate::proto::handshake::Accepted;
use crate::websocket::Websocket;

mod config;
mod wire;

pub use config::ServerConfig;
use wire::Progress;
pub use wire::{ParsedRequest, Refusal, parse_request};

/// The upgrade that [`start`](crate::start) stores in its 101 response's extensions, next
/// to the [`Accepted`] handshake. The server that sends the response calls
/// [`PendingUpgrade::complete`] with the connection, and the `Receiver` returned by `start`
/// yields the [`Websocket`].
#[derive(Debug, Clone)]
pub struct PendingUpgrade {
    pub(crate) sender: SyncSender<Websocket>,
}

impl PendingUpgrade {
    /// Hands the upgraded connection, with a session as `accepted` settled, to the
    /// `Receiver`. `already_read` holds any bytes read from `stream` past the request.
    /// Returns `false` if the receiver was dropped. The stream's timeouts are the caller's
    /// to set (the [`Server`] sets its `idle_timeout` and `write_timeout`).
    pub fn complete(self, accepted: Accepted, stream: TcpStream, already_read: &[u8]) -> bool {
        self.deliver(accepted, stream, already_read, None)
    }

    fn deliver(
        self,
        accepted: Accepted,
        stream: TcpStream,
        already_read: &[u8],
        slot: Option<Slot>,
    ) -> bool {
        let session = accepted.session();
        let mut websocket = Websocket::from_session(stream, session, already_read);
        if let Some(slot) = slot {
            // The connection's place under `max_connections` lasts as long as the socket.
            websocket.hold_until_drop(Box::new(slot));
        }
        self.sender.send(websocket).is_ok()
    }
}

/// A response body the server can write.
pub trait IntoBody {
    /// The bytes to send.
    fn into_body(self) -> Vec<u8>;
}

impl IntoBody for () {
    fn into_body(self) -> Vec<u8> {
        Vec::new()
    }
}

impl IntoBody for Vec<u8> {
    fn into_body(self) -> Vec<u8> {
        self
    }
}

impl IntoBody for String {
    fn into_body(self) -> Vec<u8> {
        self.into_bytes()
    }
}

impl IntoBody for &'static str {
    fn into_body(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

/// A bound server; [`Server::run`] serves it.
///
/// # Examples
///
/// ```no_run
/// let server = wsbox::server::Server::bind("127.0.0.1:0", |request: &http::Request<Vec<u8>>| {
///     match wsbox::start(request, None::<&str>) {
///         Ok((response, websocket)) => {
///             std::thread::spawn(move || {
///                 if let Ok(mut websocket) = websocket.recv() {
///                     let _ = websocket.send_text("hello");
///                 }
///             });
///             response.map(|()| Vec::new())
///         }
///         Err(error) => error.to_response(),
///     }
/// })
/// .unwrap();
/// println!("listening on {}", server.local_addr().unwrap());
/// server.run();
/// ```
pub struct Server<F> {
    listener: TcpListener,
    handler: Arc<F>,
    config: ServerConfig,
    open: Arc<AtomicUsize>,
}

impl<F, B> Server<F>
where
    F: Fn(&Request<Vec<u8>>) -> Response<B> + Send + Sync + 'static,
    B: IntoBody,
{
    /// Binds to `addr` (port 0 picks a free port) with the default [`ServerConfig`].
    pub fn bind(addr: impl ToSocketAddrs, handler: F) -> io::Result<Self> {
        Self::bind_with_config(addr, ServerConfig::default(), handler)
    }

    /// Binds to `addr` with the limits of `config`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `config` has a zero limit or timeout; otherwise what binding fails
    /// with.
    pub fn bind_with_config(
        addr: impl ToSocketAddrs,
        config: ServerConfig,
        handler: F,
    ) -> io::Result<Self> {
        config
            .check()
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
        Ok(Server {
            listener: TcpListener::bind(addr)?,
            handler: Arc::new(handler),
            config,
            open: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves connections forever, each on its own thread, within the limits of its
    /// [`ServerConfig`].
    pub fn run(self) -> ! {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.dispatch(stream),
                // Out of file descriptors and the like: back off rather than spin.
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// Gives `stream` a thread, or answers 503 when the limit is reached or the OS
    /// refuses the thread: the accept loop must never die, whatever clients do.
    fn dispatch(&self, stream: TcpStream) {
        let Some(slot) = Slot::take(&self.open, self.config.get_max_connections()) else {
            refuse_busy(&stream);
            return;
        };
        // Kept to answer on if the thread cannot be started (the closure owns `stream`).
        let Ok(spare) = stream.try_clone() else {
            return;
        };
        let handler = Arc::clone(&self.handler);
        let config = self.config;
        let spawned = thread::Builder::new()
            .name("wsbox-connection".into())
            .spawn(move || serve_connection(stream, &*handler, &config, slot));
        if spawned.is_err() {
            refuse_busy(&spare);
        }
    }
}

/// Serves `handler` on `addr` forever with the default [`ServerConfig`], like
/// `rouille::start_server`.
pub fn start_server<F, B>(addr: impl ToSocketAddrs, handler: F) -> !
where
    F: Fn(&Request<Vec<u8>>) -> Response<B> + Send + Sync + 'static,
    B: IntoBody,
{
    match Server::bind(addr, handler) {
        Ok(server) => server.run(),
        Err(e) => panic!("failed to bind the server: {e}"),
    }
}

/// One of the server's `max_connections`, given back when dropped (with the connection's
/// thread, or with its `Websocket` after an upgrade).
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot(Arc::clone(open)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers 503 on the accept thread, so it must not block: the response fits in an empty
/// socket buffer, and what the client already sent is read first so that closing does not
/// turn into a reset that could discard the answer.
fn refuse_busy(stream: &TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 12\r\n\
                          connection: close\r\nretry-after: 1\r\n\r\nserver busy\n";
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 64 << 10 {
        match (&*stream).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    let _ = (&*stream).write(BUSY);
    let _ = stream.shutdown(Shutdown::Write);
}

/// Why no request came.
enum ReadError {
    /// The connection ended or failed, or was idle until the deadline: nothing to answer.
    Gone,
    Refused(Refusal),
}

fn serve_connection<F, B>(mut stream: TcpStream, handler: &F, config: &ServerConfig, slot: Slot)
where
    F: Fn(&Request<Vec<u8>>) -> Response<B>,
    B: IntoBody,
{
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(4096);
    loop {
        let deadline = Instant::now() + config.get_request_timeout();
        let (request, used) = match read_request(&mut stream, &mut buf, config, deadline) {
            Ok(parsed) => parsed,
            Err(ReadError::Gone) => return,
            Err(ReadError::Refused(refusal)) => {
                let mut response = Response::new(format!("{}\n", refusal.reason).into_bytes());
                *response.status_mut() = refusal.status;
                let wire = wire::encode_response(&response, &Method::GET, true);
                if write_by(&mut stream, &wire, config).is_ok() {
                    linger(&stream);
                }
                return;
            }
        };
        buf.drain(..used);
        let keep_alive = request.version() >= Version::HTTP_11
            && !request
                .headers()
                .get(header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let mut response = handler(&request);
        // A handler may end the connection too (`Connection: close`).
        let keep_alive = keep_alive
            && !response
                .headers()
                .get(header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let upgrade = response.extensions_mut().remove::<PendingUpgrade>();
        let accepted = response.extensions_mut().remove::<Accepted>();
        let (parts, body) = response.into_parts();
        let response = Response::from_parts(parts, body.into_body());
        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        let wire = wire::encode_response(&response, request.method(), !keep_alive);
        if write_by(&mut stream, &wire, config).is_err() {
            return;
        }
        if switching {
            if let (Some(upgrade), Some(accepted)) = (upgrade, accepted)
                && stream.set_read_timeout(config.get_idle_timeout()).is_ok()
                && stream
                    .set_write_timeout(Some(config.get_write_timeout()))
                    .is_ok()
            {
                upgrade.deliver(accepted, stream, &buf, Some(slot));
            }
            return;
        }
        if !keep_alive {
            return;
        }
    }
}

/// Reads until `buf` starts with a whole request, and parses it. Returns the request
/// and how many bytes of `buf` it used.
fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    config: &ServerConfig,
    deadline: Instant,
) -> Result<ParsedRequest, ReadError> {
    let mut chunk = [0u8; 4096];
    loop {
        // `None`: the head is incomplete; `Some(total)`: the body is, until `total` bytes.
        let body_until = match wire::parse_progress(buf, config).map_err(ReadError::Refused)? {
            Progress::Complete(parsed) => return Ok(*parsed),
            Progress::Head => None,
            Progress::Body { total } => Some(total),
        };
        // Read until parsing again can tell more: a line of the head ended (or the head
        // limit is reached), or the whole body is in.
        loop {
            let n = read_by(stream, &mut chunk, deadline, buf.is_empty())?;
            buf.extend_from_slice(&chunk[..n]);
            let ready = match body_until {
                None => chunk[..n].contains(&b'\n') || buf.len() >= config.get_max_request_head(),
                Some(total) => buf.len() >= total,
            };
            if ready {
                break;
            }
        }
    }
}

/// One read that ends by `deadline`: `Gone` if the connection ends, or if it times out
/// with nothing of a request received (`idle`), 408 if it times out mid-request.
fn read_by(
    stream: &mut TcpStream,
    chunk: &mut [u8],
    deadline: Instant,
    idle: bool,
) -> Result<usize, ReadError> {
    let timed_out = || {
        if idle {
            ReadError::Gone
        } else {
            ReadError::Refused(Refusal {
                status: StatusCode::REQUEST_TIMEOUT,
                reason: "request not received in time",
            })
        }
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(timed_out());
        }
        match stream.read(chunk) {
            Ok(0) => return Err(ReadError::Gone),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out());
            }
            Err(_) => return Err(ReadError::Gone),
        }
    }
}

/// Writes all of `bytes` within the write timeout, as a deadline: a client reading a byte
/// now and then cannot stretch it.
fn write_by(stream: &mut TcpStream, mut bytes: &[u8], config: &ServerConfig) -> io::Result<()> {
    let deadline = Instant::now() + config.get_write_timeout();
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// After a refusal, reads (and drops) what the client still sends for up to a second, so
/// that closing with unread input does not reset the connection before the client has
/// read the answer.
fn linger(stream: &TcpStream) {
    const LINGER: Duration = Duration::from_secs(1);
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 256 << 10 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*stream).read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}
