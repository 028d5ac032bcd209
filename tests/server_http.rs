//! The blocking server's HTTP/1.1 against raw bytes on 127.0.0.1: request framing that a
//! proxy in front could read differently (request smuggling), response framing, and the
//! duplicate `Host` rule of RFC 7230 §5.4.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use http::{Request, Response, StatusCode};

/// How long any single read may wait for the server.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A server that answers WebSocket upgrades and echoes any other request's body, with a
/// status taken from the `x-status` header (200 without one).
fn server() -> SocketAddr {
    let server = wsbox::server::Server::bind("127.0.0.1:0", |request: &Request<Vec<u8>>| {
        if request.headers().contains_key(http::header::UPGRADE) {
            return match wsbox::start(request, None::<&str>) {
                Ok((response, _websocket)) => response.map(|()| Vec::new()),
                Err(error) => error.to_response(),
            };
        }
        let status = request
            .headers()
            .get("x-status")
            .and_then(|v| StatusCode::from_bytes(v.as_bytes()).ok())
            .unwrap_or(StatusCode::OK);
        let mut response = Response::new(format!("body=[{}]", request_body(request)).into_bytes());
        *response.status_mut() = status;
        if request.headers().contains_key("x-close") {
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        response
    })
    .expect("bind 127.0.0.1:0");
    let addr = server.local_addr().expect("local_addr");
    thread::spawn(move || server.run());
    addr
}

fn request_body(request: &Request<Vec<u8>>) -> String {
    String::from_utf8_lossy(request.body()).into_owned()
}

/// Writes `request`, half-closes, and returns everything the server sends until it closes.
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.write_all(request.as_bytes()).expect("write");
    stream.shutdown(Shutdown::Write).expect("shutdown");
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("read until the server closes");
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_of(answer: &str) -> &str {
    answer.get(9..12).unwrap_or(answer)
}

#[test]
fn a_repeated_content_length_is_refused() {
    let addr = server();
    for lengths in [("10", "3"), ("3", "10"), ("3", "3")] {
        let answer = exchange(
            addr,
            &format!(
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\nabcdefghij",
                lengths.0, lengths.1
            ),
        );
        assert_eq!(status_of(&answer), "400", "{lengths:?}: {answer}");
    }
}

#[test]
fn a_content_length_that_is_not_digits_is_refused() {
    let addr = server();
    for value in [
        "+3",
        "-3",
        "3 3",
        "0x3",
        "",
        "3,3",
        "99999999999999999999999",
    ] {
        let answer = exchange(
            addr,
            &format!(
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {value}\r\nConnection: close\r\n\r\nabc"
            ),
        );
        assert_eq!(status_of(&answer), "400", "{value:?}: {answer}");
    }
    // Leading zeros and surrounding whitespace are still the one number.
    let answer = exchange(
        addr,
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  003 \r\nConnection: close\r\n\r\nabc",
    );
    assert!(answer.ends_with("body=[abc]"), "{answer}");
}

#[test]
fn no_body_follows_head_204_304_or_101() {
    let addr = server();
    // HEAD: the length a GET would get, and no body; the next response follows directly.
    let answer = exchange(
        addr,
        "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let (head, rest) = answer.split_once("\r\n\r\n").expect("a head");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 7"),
        "{answer}"
    );
    assert!(rest.starts_with("HTTP/1.1 200"), "{answer}");
    for status in ["204", "304"] {
        let answer = exchange(
            addr,
            &format!(
                "POST / HTTP/1.1\r\nHost: a\r\nx-status: {status}\r\nContent-Length: 2\r\n\r\nhi\
                 GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            ),
        );
        let (head, rest) = answer.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{answer}");
        assert!(
            !head.to_ascii_lowercase().contains("content-length"),
            "{answer}"
        );
        assert!(rest.starts_with("HTTP/1.1 200"), "{status}: {answer}");
    }
    let answer = exchange(
        addr,
        "GET / HTTP/1.1\r\nHost: a\r\nx-status: 101\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "{answer}");
}

#[test]
fn a_repeated_host_is_refused() {
    let addr = server();
    let upgrade = "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let answer = exchange(addr, &format!("{upgrade}Host: a\r\nHost: b\r\n\r\n"));
    assert_eq!(status_of(&answer), "400", "{answer}");
    assert!(answer.contains("Host"), "{answer}");
    let answer = exchange(addr, &format!("{upgrade}Host: a\r\n\r\n"));
    assert_eq!(status_of(&answer), "101", "{answer}");
}

#[test]
fn a_handler_that_says_close_gets_the_connection_closed() {
    let addr = server();
    let mut stream = TcpStream::connect(addr).expect("connect");
    // Shorter than the server's request deadline (10 s), which also ends a kept-alive
    // connection: the close must come from the handler's header, not from the deadline.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nx-close: 1\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("the server closes after a response that says `connection: close`");
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), "200", "{answer}");
    let connection_headers = answer
        .lines()
        .filter(|line| line.to_ascii_lowercase().starts_with("connection:"))
        .count();
    assert_eq!(connection_headers, 1, "one connection header: {answer}");
}
