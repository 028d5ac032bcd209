//! The client role: the opening handshake over any `Read + Write` stream.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{Response, StatusCode, Uri};

// Its home until the component needed it too; kept here for existing users.
pub use crate::os_masks::OsMasks;
use crate::proto::config::Config;
use crate::proto::handshake::{accept_key, has_token};
use crate::proto::session::{MaskSource, Session};
use crate::websocket::Websocket;

/// The largest handshake response head we read.
const MAX_RESPONSE_HEAD: usize = 16 << 10;

/// Connects to a `ws://` URL over TCP and performs the handshake.
///
/// # Examples
///
/// ```no_run
/// let mut websocket = wsbox::client::connect("ws://127.0.0.1:9001/").unwrap();
/// websocket.send_text("hello").unwrap();
/// assert_eq!(websocket.next(), Some(wsbox::Message::Text("hello".into())));
/// ```
pub fn connect(url: &str) -> Result<Websocket<TcpStream>, ClientError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| ClientError::InvalidUrl(format!("{e}")))?;
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => {
            return Err(ClientError::InvalidUrl(
                "wss:// (TLS) is not supported".into(),
            ));
        }
        _ => return Err(ClientError::InvalidUrl("the scheme must be ws://".into())),
    }
    let host = uri
        .host()
        .ok_or_else(|| ClientError::InvalidUrl("no host".into()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = TcpStream::connect((host, uri.port_u16().unwrap_or(80)))?;
    stream.set_nodelay(true)?;
    let (websocket, _) = handshake(stream, &uri, &[], Config::default())?;
    Ok(websocket)
}

/// Performs the client handshake for `uri` over `stream`, offering `protocols`. Returns the
/// open `Websocket` and the server's 101 response (e.g. to read the chosen subprotocol).
pub fn handshake<S: Read + Write>(
    mut stream: S,
    uri: &Uri,
    protocols: &[&str],
    config: Config,
) -> Result<(Websocket<S>, Response<()>), ClientError> {
    let mut masks = OsMasks::new();
    let mut nonce = [0u8; 16];
    for chunk in nonce.chunks_exact_mut(4) {
        chunk.copy_from_slice(&masks.next_mask());
    }
    let key = BASE64.encode(nonce);
    let authority = uri
        .authority()
        .ok_or_else(|| ClientError::InvalidUrl("no host".into()))?;
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        request.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            protocols.join(", ")
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.flush()?;

    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let (response, head_len) = loop {
        let n = stream.read(&mut chunk)?;
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
    Ok((
        Websocket::from_session(stream, session, &buf[head_len..]),
        response,
    ))
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
    /// The URL is not a usable `ws://` URL; the string says why.
    InvalidUrl(String),
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
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "handshake I/O failed: {e}"),
            ClientError::InvalidUrl(why) => write!(f, "invalid websocket URL: {why}"),
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
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}
