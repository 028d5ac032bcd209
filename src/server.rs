//! A small blocking HTTP/1.1 server (std threads and `httparse`) in the spirit of
//! `rouille::start_server`: it serves a handler and completes WebSocket upgrades.
//!
//! One thread per connection; keep-alive; `Content-Length` request bodies. It is meant for
//! examples, tests and small tools; `wsbox-runner` is the production server.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::thread;
use std::time::Duration;

use http::{Request, Response, StatusCode, Version, header};

use crate::proto::handshake::Accepted;
use crate::proto::session::Session;
use crate::websocket::Websocket;

/// Requests whose head is larger than this are answered with 431.
const MAX_HEAD: usize = 16 << 10;
/// Request bodies larger than this are answered with 413.
const MAX_BODY: usize = 1 << 20;
/// The most headers a request may have.
const MAX_HEADERS: usize = 64;
/// How long a connection may sit idle between requests.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Returns `false` if the receiver was dropped.
    pub fn complete(self, accepted: Accepted, stream: TcpStream, already_read: &[u8]) -> bool {
        let session = Session::server(accepted.config());
        let websocket = Websocket::from_session(stream, session, already_read);
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
}

impl<F, B> Server<F>
where
    F: Fn(&Request<Vec<u8>>) -> Response<B> + Send + Sync + 'static,
    B: IntoBody,
{
    /// Binds to `addr` (port 0 picks a free port).
    pub fn bind(addr: impl ToSocketAddrs, handler: F) -> io::Result<Self> {
        Ok(Server {
            listener: TcpListener::bind(addr)?,
            handler: Arc::new(handler),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves connections forever, each on its own thread.
    pub fn run(self) -> ! {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let handler = Arc::clone(&self.handler);
                    thread::spawn(move || serve_connection(stream, &*handler));
                }
                // Out of file descriptors and the like: back off rather than spin.
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

/// Serves `handler` on `addr` forever, like `rouille::start_server`.
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

/// A request and how many bytes of the read buffer it used.
type ParsedRequest = (Request<Vec<u8>>, usize);

/// Why a request could not be read.
enum ReadError {
    Io,
    Respond(StatusCode, &'static str),
}

fn serve_connection<F, B>(mut stream: TcpStream, handler: &F)
where
    F: Fn(&Request<Vec<u8>>) -> Response<B>,
    B: IntoBody,
{
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (request, used) = match read_request(&mut stream, &mut buf) {
            Ok(Some(parsed)) => parsed,
            Ok(None) | Err(ReadError::Io) => return,
            Err(ReadError::Respond(status, reason)) => {
                let mut response = Response::new(format!("{reason}\n").into_bytes());
                *response.status_mut() = status;
                let _ = write_response(&mut stream, &response, true);
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
        let upgrade = response.extensions_mut().remove::<PendingUpgrade>();
        let accepted = response.extensions_mut().remove::<Accepted>();
        let (parts, body) = response.into_parts();
        let response = Response::from_parts(parts, body.into_body());
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            if write_response(&mut stream, &response, false).is_ok()
                && let (Some(upgrade), Some(accepted)) = (upgrade, accepted)
            {
                let _ = stream.set_read_timeout(None);
                upgrade.complete(accepted, stream, &buf);
            }
            return;
        }
        if write_response(&mut stream, &response, !keep_alive).is_err() || !keep_alive {
            return;
        }
    }
}

/// Reads one request (head and `Content-Length` body) into `buf`. Returns the request and
/// how many bytes of `buf` it used, or `None` on a clean end of stream between requests.
fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<Option<ParsedRequest>, ReadError> {
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let (head, content_length) = request_head(&parsed)?;
                return read_body(head, head_len, content_length, stream, buf).map(Some);
            }
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                return Err(ReadError::Respond(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "request head too large",
                ));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ReadError::Respond(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "too many headers",
                ));
            }
            Err(_) => {
                return Err(ReadError::Respond(
                    StatusCode::BAD_REQUEST,
                    "malformed HTTP request",
                ));
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(ReadError::Io),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The request line and headers, and the declared body length.
fn request_head(
    parsed: &httparse::Request<'_, '_>,
) -> Result<(http::request::Builder, usize), ReadError> {
    let bad = |reason| ReadError::Respond(StatusCode::BAD_REQUEST, reason);
    let mut builder = Request::builder()
        .method(parsed.method.unwrap_or("GET"))
        .uri(parsed.path.unwrap_or("/"))
        .version(if parsed.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        });
    let mut content_length = 0usize;
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            content_length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| bad("invalid Content-Length"))?;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ReadError::Respond(
                StatusCode::NOT_IMPLEMENTED,
                "chunked request bodies are not supported",
            ));
        }
        builder = builder.header(h.name, h.value);
    }
    if content_length > MAX_BODY {
        return Err(ReadError::Respond(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        ));
    }
    Ok((builder, content_length))
}

/// Reads the body that follows a `head_len`-byte head into `buf` and builds the request.
fn read_body(
    head: http::request::Builder,
    head_len: usize,
    content_length: usize,
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<ParsedRequest, ReadError> {
    let total = head_len + content_length;
    let mut chunk = [0u8; 4096];
    while buf.len() < total {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return Err(ReadError::Io),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let request = head.body(buf[head_len..total].to_vec()).map_err(|_| {
        ReadError::Respond(StatusCode::BAD_REQUEST, "invalid request line or header")
    })?;
    Ok((request, total))
}

fn write_response(
    stream: &mut TcpStream,
    response: &Response<Vec<u8>>,
    close: bool,
) -> io::Result<()> {
    let status = response.status();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in response.headers() {
        if name == header::CONTENT_LENGTH {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if status != StatusCode::SWITCHING_PROTOCOLS {
        head.extend_from_slice(format!("content-length: {}\r\n", response.body().len()).as_bytes());
        if close {
            head.extend_from_slice(b"connection: close\r\n");
        }
    }
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(response.body());
    stream.write_all(&head)?;
    stream.flush()
}
