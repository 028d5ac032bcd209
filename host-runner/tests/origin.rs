//! `--allowed-origin`: a browser page from another origin cannot open a WebSocket on the
//! runner (cross-site WebSocket hijacking); clients without `Origin` are not browsers and pass.

mod common;

use common::Runner;

fn upgrade_with_origin(runner: &Runner, path: &str, origin: Option<&str>) -> String {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        runner.addr
    );
    if let Some(origin) = origin {
        request.push_str(&format!("Origin: {origin}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = std::net::TcpStream::connect(runner.addr).expect("connect");
    stream
        .set_read_timeout(Some(common::IO_TIMEOUT))
        .expect("timeout");
    std::io::Write::write_all(&mut stream, request.as_bytes()).expect("write");
    // A 101 leaves the connection open: read the head only. A refusal closes it.
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") || !response.starts_with(b"HTTP/1.1 101") {
        match std::io::Read::read(&mut stream, &mut byte) {
            Ok(1) => response.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn upgrades_from_other_origins_get_403_before_the_guest() {
    let runner = Runner::with_test_handler(&[
        "--allowed-origin",
        "https://app.example",
        "--allowed-origin",
        "HTTP://LOCALHOST:8080/",
    ]);
    for allowed in [
        Some("https://app.example"),
        Some("https://APP.example"),
        Some("http://localhost:8080"),
        None,
    ] {
        let response = upgrade_with_origin(&runner, "/none", allowed);
        assert!(
            response.starts_with("HTTP/1.1 101"),
            "{allowed:?}: {response}"
        );
    }
    for refused in [
        "https://evil.example",
        "http://app.example",
        "https://app.example:8443",
        "https://app.example.evil.example",
        "null",
    ] {
        // `/trap-handshake` panics in the guest: a 403 (not a 500) shows that the guest never
        // saw the request.
        let response = upgrade_with_origin(&runner, "/trap-handshake", Some(refused));
        assert!(
            response.starts_with("HTTP/1.1 403"),
            "{refused}: {response}"
        );
        assert!(response.contains("--allowed-origin"), "{response}");
    }
    let log = runner.wait_for_log("evil.example");
    assert!(log.contains("origin"), "{log}");
    assert!(!log.contains("trap requested"), "{log}");
}

#[test]
fn without_the_flag_every_origin_may_upgrade() {
    let runner = Runner::start(&[]);
    let response = upgrade_with_origin(&runner, "/", Some("https://evil.example"));
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
}

#[test]
fn plain_requests_are_not_checked() {
    let runner = Runner::start(&["--allowed-origin", "https://app.example"]);
    let response = runner.raw(
        format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\n\
             Connection: close\r\n\r\n",
            runner.addr
        )
        .as_bytes(),
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}
