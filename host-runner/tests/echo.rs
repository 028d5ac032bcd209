//! The embedded default handler (guests/echo) under the runner, driven by tungstenite.

mod common;

use common::Runner;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

#[test]
fn echoes_text_and_binary() {
    let runner = Runner::start(&[]);
    let mut client = runner.connect("/");
    client.echo("hello, runner");
    client.echo("");
    client.echo("ünïcödé ✓");
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    client.send(Message::binary(blob.clone()));
    assert_eq!(client.next(), Ok(Message::binary(blob)));
}

#[test]
fn answers_pings_and_close_codes() {
    let runner = Runner::start(&[]);
    let mut client = runner.connect("/");
    client.send(Message::Ping(b"are you there".to_vec().into()));
    assert_eq!(
        client.next(),
        Ok(Message::Pong(b"are you there".to_vec().into()))
    );

    for code in [1000u16, 1001, 3000, 4999] {
        let mut client = runner.connect("/");
        client
            .socket
            .close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "bye".into(),
            }))
            .expect("send close");
        assert_eq!(client.expect_close(), Some(CloseCode::from(code)));
    }
    let log = runner.wait_for_log("close_code=4999");
    assert!(log.contains("websocket closed"), "{log}");
    assert!(log.contains("peer=127.0.0.1:"), "{log}");
}

#[test]
fn refuses_bad_handshakes_with_a_reason() {
    let runner = Runner::start(&[]);
    let host = format!("Host: {}\r\n", runner.addr);
    let no_key = format!(
        "GET / HTTP/1.1\r\n{host}Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nConnection: close\r\n\r\n"
    );
    let response = runner.raw(no_key.as_bytes());
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("Sec-WebSocket-Key"), "{response}");

    let old_version = format!(
        "GET / HTTP/1.1\r\n{host}Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\nConnection: close\r\n\r\n"
    );
    let response = runner.raw(old_version.as_bytes());
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{response}"
    );
    assert!(response.contains("version"), "{response}");
}

#[test]
fn serves_the_demo_page() {
    let runner = Runner::start(&[]);
    let response = runner.raw(
        format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            runner.addr
        )
        .as_bytes(),
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("id=\"echo\""), "{response}");
}
