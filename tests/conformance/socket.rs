//! The server under test over a socket: `wsbox::server::Server` with an echo handler on
//! 127.0.0.1, and a raw client that writes each case's bytes and reads the answer.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use wsbox::server::Server;

use crate::{Case, config, expect_replies};

// The helpers the other integration tests share (this is a separate test crate).
#[path = "../support/mod.rs"]
mod support;

/// How long any single read may wait for the server.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The pause between the writes of a row that is split into several writes, so that they
/// reach the server as separate reads.
const WRITE_GAP: Duration = Duration::from_millis(10);

fn echo_server(config: wsbox::Config) -> SocketAddr {
    let server = Server::bind("127.0.0.1:0", move |request: &http::Request<Vec<u8>>| {
        match wsbox::start_with_config(request, None::<&str>, config) {
            Ok((response, websocket)) => {
                thread::spawn(move || {
                    if let Ok(websocket) = websocket.recv() {
                        support::echo(websocket);
                    }
                });
                response.map(|()| Vec::new())
            }
            Err(error) => error.to_response(),
        }
    })
    .expect("bind 127.0.0.1:0");
    let addr = server.local_addr().expect("local_addr");
    thread::spawn(move || server.run());
    addr
}

pub fn default_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| echo_server(config(false)))
}

fn limited_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| echo_server(config(true)))
}

/// Writes the case to a fresh connection and reads the server's answer.
pub fn run_case(case: &Case) -> Result<(), String> {
    let addr = if case.limited {
        limited_server()
    } else {
        default_server()
    };
    let mut stream = open(addr, &case.with_request)?;
    for (i, bytes) in case.writes.iter().enumerate() {
        if i > 0 {
            thread::sleep(WRITE_GAP);
        }
        stream
            .write_all(bytes)
            .map_err(|e| format!("write {i} failed: {e}"))?;
    }
    expect_replies(case, &mut stream)?;
    expect_eof(&mut stream)
}

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// RFC 6455 §1.3's accept value for `KEY`.
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| format!("socket options: {e}"))?;
    Ok(stream)
}

/// Connects and performs the opening handshake by hand, sending `with_request` in the same
/// write as the request.
fn open(addr: SocketAddr, with_request: &[u8]) -> Result<TcpStream, String> {
    let mut stream = connect(addr)?;
    let mut request = format!(
        "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    request.extend_from_slice(with_request);
    stream
        .write_all(&request)
        .map_err(|e| format!("write handshake: {e}"))?;
    let response = read_response(&mut stream)?;
    if response.status != 101 {
        return Err(format!("handshake answered {}", response.status));
    }
    if response.header("sec-websocket-accept") != Some(ACCEPT) {
        return Err(format!(
            "wrong Sec-WebSocket-Accept {:?}",
            response.header("sec-websocket-accept")
        ));
    }
    Ok(stream)
}

pub struct HttpResponse {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a response head byte by byte (so no frame bytes are consumed), then its
/// `Content-Length` body.
pub fn read_response(stream: &mut TcpStream) -> Result<HttpResponse, String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => return Err(format!("connection closed in the response head {head:?}")),
            Err(e) => return Err(format!("reading the response head: {e}")),
        }
        if head.len() > 16 << 10 {
            return Err("response head over 16 KiB".into());
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        other => return Err(format!("unparsable response head: {other:?}")),
    }
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let mut response = HttpResponse {
        status: parsed.code.unwrap_or(0),
        headers,
        body: Vec::new(),
    };
    let length: usize = match response.header("content-length") {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("bad Content-Length {v:?}"))?,
        None => 0,
    };
    response.body = vec![0; length];
    stream
        .read_exact(&mut response.body)
        .map_err(|e| format!("reading the body: {e}"))?;
    Ok(response)
}

/// After its close frame the server must close the TCP connection: a read returns 0.
fn expect_eof(stream: &mut TcpStream) -> Result<(), String> {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!(
            "{n} more bytes after the close: {:02x?}",
            &buf[..n]
        )),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(format!(
                "the server did not close the connection within {TIMEOUT:?}"
            ))
        }
        Err(e) => Err(format!("expected a clean end of stream, got {e}")),
    }
}
