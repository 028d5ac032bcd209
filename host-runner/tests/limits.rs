//! The runner's limits, each set small by its flag.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Runner;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

#[test]
fn message_at_the_limit_passes_and_one_over_closes_with_1009() {
    let runner = Runner::start(&["--max-message-size", "1KiB", "--max-frame-size", "1KiB"]);
    let mut client = runner.connect("/");
    let at_limit = vec![7u8; 1024];
    client.send(Message::binary(at_limit.clone()));
    assert_eq!(client.next(), Ok(Message::binary(at_limit)));
    client.send(Message::binary(vec![7u8; 1025]));
    assert_eq!(client.expect_close(), Some(CloseCode::Size));
}

#[test]
fn oversized_request_head_gets_431() {
    let runner = Runner::start(&["--max-request-head", "8KiB"]);
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nX-Padding: {}\r\n\r\n",
        runner.addr,
        "a".repeat(10_000)
    );
    let response = runner.raw(request.as_bytes());
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
}

#[test]
fn connections_beyond_the_maximum_get_503() {
    let runner = Runner::start(&["--max-connections", "2"]);
    let mut first = runner.connect("/");
    let mut second = runner.connect("/");
    let response =
        runner.raw(format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", runner.addr).as_bytes());
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    first.echo("still served");
    second.echo("me too");
    first
        .socket
        .close(Some(tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }))
        .expect("close");
    assert_eq!(first.expect_close(), Some(CloseCode::Normal));
    // The freed place is given to the next connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = runner.raw(
            format!(
                "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                runner.addr
            )
            .as_bytes(),
        );
        if response.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "place not freed: {response}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn slowloris_handshake_is_dropped_by_the_handshake_timeout() {
    let runner = Runner::start(&["--handshake-timeout", "1s"]);
    let mut stream = TcpStream::connect(runner.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let started = Instant::now();
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nX-Slow: ";
    let mut dropped = false;
    // One byte every 100 ms: the head would take far longer than the timeout to arrive.
    for byte in request
        .iter()
        .chain(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter())
    {
        if stream.write_all(&[*byte]).is_err() {
            dropped = true;
            break;
        }
        let mut buf = [0u8; 256];
        match stream.read(&mut buf) {
            Ok(0) => {
                dropped = true;
                break;
            }
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                dropped = true;
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    assert!(dropped, "the dribbling client was never dropped");
    assert!(
        elapsed >= Duration::from_millis(900),
        "dropped too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "dropped too late: {elapsed:?}"
    );
}

#[test]
fn idle_websocket_is_closed_with_1000() {
    let runner = Runner::start(&["--idle-timeout", "1s"]);
    let mut client = runner.connect("/");
    client.echo("then silence");
    let started = Instant::now();
    assert_eq!(client.expect_close(), Some(CloseCode::Normal));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}
