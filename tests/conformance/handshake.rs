//! The opening handshake over a socket, and frames that arrive with the request.

use std::io::Write;

use crate::socket::{ACCEPT, KEY, connect, default_server, read_response};
use crate::*;

/// Frames that a client sends right behind its request reach the server in the same read
/// as the request; they must be answered like any others.
#[test]
fn frames_pipelined_with_the_request() {
    run(vec![
        pipelined(echo(
            "ping",
            vec![frame(FIN | PING, b"early")],
            vec![(PONG, b"early".to_vec())],
        )),
        pipelined(echo("text", vec![text("early")], vec![text_reply("early")])),
        pipelined(fails("close", vec![close_frame(1000, b"")], vec![], 1000)),
        pipelined(fails(
            "protocol violation",
            vec![frame(FIN | 0x3, b"")],
            vec![],
            1002,
        )),
    ]);
}

// The opening handshake: the server's HTTP answers (socket only).

struct HandshakeCase {
    name: &'static str,
    request: String,
    status: u16,
    body: &'static str,
    header: Option<(&'static str, &'static str)>,
}

fn upgrade_request(method: &str, key: Option<&str>, version: &str) -> String {
    let key = key.map_or(String::new(), |k| format!("Sec-WebSocket-Key: {k}\r\n"));
    format!(
        "{method} / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         {key}Sec-WebSocket-Version: {version}\r\n\r\n"
    )
}

#[test]
fn handshake() {
    // Exactly the server's 16 KiB head limit, unfinished.
    let prefix = "GET / HTTP/1.1\r\nHost: localhost\r\nX-Fill: ";
    let huge = format!("{prefix}{}", "a".repeat((16 << 10) - prefix.len()));
    let cases = [
        HandshakeCase {
            name: "missing key",
            request: upgrade_request("GET", None, "13"),
            status: 400,
            body: "invalid websocket request: missing or repeated Sec-WebSocket-Key header\n",
            header: None,
        },
        HandshakeCase {
            name: "key of 5 bytes",
            request: upgrade_request("GET", Some("dG9vc2hvcnQ="), "13"),
            status: 400,
            body: "invalid websocket request: Sec-WebSocket-Key must be base64 of 16 bytes\n",
            header: None,
        },
        HandshakeCase {
            name: "version 8",
            request: upgrade_request("GET", Some(KEY), "8"),
            status: 426,
            body: "invalid websocket request: Sec-WebSocket-Version must be 13\n",
            header: Some(("sec-websocket-version", "13")),
        },
        HandshakeCase {
            name: "POST",
            request: upgrade_request("POST", Some(KEY), "13"),
            status: 400,
            body: "invalid websocket request: method must be GET\n",
            header: None,
        },
        HandshakeCase {
            name: "head too large",
            request: huge,
            status: 431,
            body: "request head too large\n",
            header: None,
        },
        HandshakeCase {
            name: "valid",
            request: upgrade_request("GET", Some(KEY), "13"),
            status: 101,
            body: "",
            header: Some(("sec-websocket-accept", ACCEPT)),
        },
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let outcome = connect(default_server()).and_then(|mut stream| {
            stream
                .write_all(case.request.as_bytes())
                .map_err(|e| format!("write: {e}"))?;
            read_response(&mut stream)
        });
        let problem = match outcome {
            Err(e) => Some(e),
            Ok(r) if r.status != case.status => {
                Some(format!("status {} instead of {}", r.status, case.status))
            }
            Ok(r) if r.body != case.body.as_bytes() => Some(format!(
                "body {:?} instead of {:?}",
                String::from_utf8_lossy(&r.body),
                case.body
            )),
            Ok(r) => case.header.and_then(|(name, value)| {
                (r.header(name) != Some(value))
                    .then(|| format!("{name}: {:?} instead of {value:?}", r.header(name)))
            }),
        };
        if let Some(problem) = problem {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
