//! The client role: the opening handshake over any `Read + Write` stream, `ws://` over TCP,
//! and with the `tls` feature `wss://` over rustls ([`connect_tls`]; this module re-exports
//! the `rustls` it is built with, for the roots).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{Response, StatusCode, Uri};

// Its home until the component needed it too; kept here for existing users.
pub use crate::os_masks::OsMasks;
use crate::proto::config::Config;
use crate::proto::deflate;
use crate::proto::error::ExtensionError;
use crate::proto::handshake::{accept_key, has_token};
use crate::proto::session::{MaskSource, Session};
use crate::websocket::Websocket;

#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
pub use rustls;
#[cfg(feature = "tls")]
pub use tls::{TlsError, TlsStream, connect_tls, tls_config};

/// The largest handshake response head we read.
const MAX_RESPONSE_HEAD: usize = 16 << 10;

/// Timeouts and limits of a connection made by [`connect_with_config`], each with a
/// default that keeps a silent or stalled server from blocking the caller forever.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let config = wsbox::client::ClientConfig::default()
///     .handshake_timeout(Duration::from_secs(3))
///     .read_timeout(None);
/// assert_eq!(config.get_connect_timeout(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    connect_timeout: Duration,
    handshake_timeout: Duration,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    session: Config,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            read_timeout: Some(Duration::from_secs(300)),
            write_timeout: Some(Duration::from_secs(10)),
            session: Config::default(),
        }
    }
}

impl ClientConfig {
    /// How long establishing the TCP connection may take, per address the host resolves
    /// to; default 10 s. (Name resolution itself is the system's and has its own.)
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the server has to answer the upgrade request completely, as a deadline
    /// (a server trickling its response is cut off too); default 10 s.
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The socket's read timeout once open: a [`Websocket`] that receives nothing for
    /// this long ends with a `TimedOut`/`WouldBlock` error from `recv`; default 300 s.
    /// `None` waits forever (e.g. for a server that pushes rarely and never pings).
    #[must_use]
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The socket's write timeout once open: a send (or the close frame sent on drop)
    /// fails once the server has read nothing for this long; default 10 s. `None` waits
    /// forever.
    #[must_use]
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// The session's limits (frame and message size); default [`Config::default`].
    #[must_use]
    pub fn session(mut self, config: Config) -> Self {
        self.session = config;
        self
    }

    /// See [`ClientConfig::connect_timeout`].
    pub fn get_connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// See [`ClientConfig::handshake_timeout`].
    pub fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// See [`ClientConfig::read_timeout`].
    pub fn get_read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// See [`ClientConfig::write_timeout`].
    pub fn get_write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    /// See [`ClientConfig::session`].
    pub fn get_session(&self) -> Config {
        self.session
    }
}

/// Connects to a `ws://` URL over TCP and performs the handshake, with the default
/// [`ClientConfig`] and no subprotocol.
///
/// # Examples
///
/// ```no_run
/// let mut websocket = wsbox::client::connect("ws://127.0.0.1:9001/").unwrap();
/// websocket.send_text("hello").unwrap();
/// assert_eq!(websocket.next(), Some(wsbox::Message::Text("hello".into())));
/// ```
pub fn connect(url: &str) -> Result<Websocket<TcpStream>, ClientError> {
    connect_with_config(url, &[], &ClientConfig::default()).map(|(websocket, _)| websocket)
}

/// Connects to a `ws://` URL over TCP and performs the handshake, offering `protocols`,
/// within the timeouts of `config`. Returns the open `Websocket` (with `config`'s read and
/// write timeouts on its socket) and the server's 101 response.
///
/// A `wss://` URL is refused with [`ClientError::InvalidUrl`]: with the `tls` feature,
/// `connect_tls` opens those.
///
/// # Errors
///
/// [`ClientError::Io`] with `TimedOut` or `WouldBlock` when a timeout expires, with
/// `InvalidInput` for a zero timeout or a handshake timeout too large to compute a
/// deadline from; see [`handshake`] for the rest.
pub fn connect_with_config(
    url: &str,
    protocols: &[&str],
    config: &ClientConfig,
) -> Result<(Websocket<TcpStream>, Response<()>), ClientError> {
    let (uri, secure) = parse_url(url)?;
    if secure {
        let why = if cfg!(feature = "tls") {
            "wss:// URLs are opened with client::connect_tls, which takes the roots to trust"
        } else {
            "wss:// (TLS) needs wsbox's `tls` feature and client::connect_tls"
        };
        return Err(ClientError::InvalidUrl(why.into()));
    }
    let (stream, deadline) = open(&uri, 80, config)?;
    let (websocket, response) =
        handshake_until(stream, &uri, protocols, config.session, |stream| {
            until(deadline, stream)
        })?;
    websocket.get_ref().set_read_timeout(config.read_timeout)?;
    websocket
        .get_ref()
        .set_write_timeout(config.write_timeout)?;
    Ok((websocket, response))
}

/// `url` parsed, and whether it is `wss://`.
fn parse_url(url: &str) -> Result<(Uri, bool), ClientError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| ClientError::InvalidUrl(format!("{e}")))?;
    let secure = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => {
            return Err(ClientError::InvalidUrl(
                "the scheme must be ws:// or wss://".into(),
            ));
        }
    };
    if uri.host().is_none() {
        return Err(ClientError::InvalidUrl("no host".into()));
    }
    Ok((uri, secure))
}

/// The host of `uri` as a name or an address (an IPv6 address without its brackets).
fn host(uri: &Uri) -> &str {
    uri.host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
}

/// The TCP connection to `uri` (`default_port` unless it names one), and the deadline of
/// the handshakes over it.
fn open(
    uri: &Uri,
    default_port: u16,
    config: &ClientConfig,
) -> Result<(TcpStream, Instant), ClientError> {
    let stream = connect_tcp(
        (host(uri), uri.port_u16().unwrap_or(default_port)),
        config.connect_timeout,
    )?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(config.handshake_timeout))?;
    let deadline = Instant::now()
        .checked_add(config.handshake_timeout)
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "handshake timeout too large")
        })?;
    Ok((stream, deadline))
}

/// Shortens `stream`'s read timeout to what is left before `deadline`, or gives up.
fn until(deadline: Instant, stream: &TcpStream) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    stream.set_read_timeout(Some(left))
}

/// The first address of `addr` that accepts a connection within `timeout`.
fn connect_tcp(addr: impl ToSocketAddrs, timeout: Duration) -> io::Result<TcpStream> {
    let mut last_error = None;
    for addr in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the host has no address")))
}

/// Performs the client handshake for `uri` over `stream`, offering `protocols`. Returns the
/// open `Websocket` and the server's 101 response (e.g. to read the chosen subprotocol).
///
/// It reads until the server's response is complete: give `stream` a read timeout (or use
/// [`connect_with_config`], which keeps a deadline) if the server may not answer.
///
/// # Errors
///
/// [`ClientError::InvalidProtocol`] before anything is sent if a protocol is not an RFC
/// 7230 token; otherwise what went wrong reading or checking the server's answer.
pub fn handshake<S: Read + Write>(
    stream: S,
    uri: &Uri,
    protocols: &[&str],
    config: Config,
) -> Result<(Websocket<S>, Response<()>), ClientError> {
    handshake_until(stream, uri, protocols, config, |_| Ok(()))
}

/// [`handshake`], calling `before_read` before each read of the response (to shorten the
/// read timeout to what is left of a deadline, or to give up).
fn handshake_until<S: Read + Write>(
    mut stream: S,
    uri: &Uri,
    protocols: &[&str],
    config: Config,
    mut before_read: impl FnMut(&mut S) -> io::Result<()>,
) -> Result<(Websocket<S>, Response<()>), ClientError> {
    if let Some(bad) = protocols.iter().find(|p| !is_token(p)) {
        return Err(ClientError::InvalidProtocol((*bad).to_owned()));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| ClientError::InvalidUrl("no host".into()))?;
    // `Host` is host and port only (RFC 7230 §5.4): credentials in the URL must not leak
    // into every request.
    let host = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, host)| host);
    let mut masks = OsMasks::new();
    let mut nonce = [0u8; 16];
    for chunk in nonce.chunks_exact_mut(4) {
        chunk.copy_from_slice(&masks.next_mask());
    }
    let key = BASE64.encode(nonce);
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        request.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            protocols.join(", ")
        ));
    }
    if let Some(ours) = config.get_deflate() {
        let offer = deflate::offer(ours);
        request.push_str(&format!("Sec-WebSocket-Extensions: {offer}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.flush()?;

    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let (response, head_len) = loop {
        before_read(&mut stream)?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(ClientError::MalformedResponse);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(parsed) = parse_response(&buf)? {
            break parsed;
        }
        if buf.len() > MAX_RESPONSE_HEAD {
            return Err(ClientError::MalformedResponse);
        }
    };
    check_response(&response, &key, protocols)?;
    let session = Session::client(config, masks);
    let session = match config.get_deflate() {
        Some(ours) => match deflate::check_response(response.headers(), ours)? {
            Some(params) => session.with_deflate(params),
            None => session,
        },
        // RFC 6455 §4.1: an extension we did not offer fails the connection.
        None if response
            .headers()
            .contains_key(http::header::SEC_WEBSOCKET_EXTENSIONS) =>
        {
            return Err(ExtensionError::UnsupportedExtension.into());
        }
        None => session,
    };
    Ok((
        Websocket::from_session(stream, session, &buf[head_len..]),
        response,
    ))
}

/// Whether `name` is an RFC 7230 `token`, which `Sec-WebSocket-Protocol` requires
/// (RFC 6455 §4.1): no separators, spaces or control characters that could end the header.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_response(buf: &[u8]) -> Result<Option<(Response<()>, usize)>, ClientError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ClientError::MalformedResponse),
    };
    let mut response = Response::builder().status(parsed.code.unwrap_or(0));
    for h in parsed.headers.iter() {
        response = response.header(h.name, h.value);
    }
    let response = response
        .body(())
        .map_err(|_| ClientError::MalformedResponse)?;
    Ok(Some((response, head_len)))
}

fn check_response(
    response: &Response<()>,
    key: &str,
    protocols: &[&str],
) -> Result<(), ClientError> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(ClientError::Rejected {
            status: response.status().as_u16(),
        });
    }
    let headers = response.headers();
    if !has_token(headers, http::header::UPGRADE, "websocket")
        || !has_token(headers, http::header::CONNECTION, "upgrade")
    {
        return Err(ClientError::MissingUpgrade);
    }
    let accept = headers
        .get(http::header::SEC_WEBSOCKET_ACCEPT)
        .map(|v| v.as_bytes());
    if accept != Some(accept_key(key).as_bytes()) {
        return Err(ClientError::InvalidAccept);
    }
    if let Some(chosen) = headers.get(http::header::SEC_WEBSOCKET_PROTOCOL) {
        let chosen = String::from_utf8_lossy(chosen.as_bytes()).into_owned();
        if !protocols.contains(&chosen.as_str()) {
            return Err(ClientError::UnexpectedSubprotocol(chosen));
        }
    }
    Ok(())
}

/// Why a client handshake failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting, writing the request or reading the response failed.
    Io(io::Error),
    /// The URL is not one the function called opens (`ws://` for [`connect`], `wss://` for
    /// `connect_tls`), or has no usable host; the string says why.
    InvalidUrl(String),
    /// A subprotocol to offer is not an RFC 7230 token (e.g. it holds a space, a comma or a
    /// line break, which would corrupt or inject headers); nothing was sent.
    InvalidProtocol(String),
    /// The server's response head was malformed or larger than 16 KiB.
    MalformedResponse,
    /// The server answered with a status other than 101.
    Rejected {
        /// The status code.
        status: u16,
    },
    /// The 101 response lacked `Upgrade: websocket` or `Connection: upgrade`.
    MissingUpgrade,
    /// `Sec-WebSocket-Accept` did not match our key.
    InvalidAccept,
    /// The server chose a subprotocol we did not offer.
    UnexpectedSubprotocol(String),
    /// The server's `Sec-WebSocket-Extensions` names an extension we did not offer, or
    /// permessage-deflate parameters the offer does not allow.
    Extension(ExtensionError),
    /// The TLS handshake of a `wss://` connection failed.
    #[cfg(feature = "tls")]
    Tls(TlsError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "handshake I/O failed: {e}"),
            ClientError::InvalidUrl(why) => write!(f, "invalid websocket URL: {why}"),
            ClientError::InvalidProtocol(p) => {
                write!(f, "subprotocol {p:?} is not an RFC 7230 token")
            }
            ClientError::MalformedResponse => {
                f.write_str("malformed or oversized handshake response")
            }
            ClientError::Rejected { status } => {
                write!(f, "server refused the upgrade with status {status}")
            }
            ClientError::MissingUpgrade => {
                f.write_str("101 response without Upgrade: websocket and Connection: upgrade")
            }
            ClientError::InvalidAccept => {
                f.write_str("Sec-WebSocket-Accept does not match the key")
            }
            ClientError::UnexpectedSubprotocol(p) => {
                write!(f, "server chose subprotocol {p:?}, which was not offered")
            }
            ClientError::Extension(e) => write!(f, "{e}"),
            #[cfg(feature = "tls")]
            ClientError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            ClientError::Extension(e) => Some(e),
            #[cfg(feature = "tls")]
            ClientError::Tls(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ExtensionError> for ClientError {
    fn from(e: ExtensionError) -> Self {
        ClientError::Extension(e)
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}
