//! The semantics of the blocking `Websocket` (the rouille API) against a real peer,
//! tungstenite, on 127.0.0.1: `Read`, `Write`, `close_reason`, `is_closed`, and `Drop`.
//! Both roles are covered: the server side from `wsbox::start` and the client side from
//! `wsbox::client`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use tungstenite::Message as TMessage;
use tungstenite::protocol::CloseFrame as TCloseFrame;
use tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use wsbox::server::ServerConfig;
use wsbox::{CloseCode, CloseFrame, Message, SendError, Websocket};

mod support;

const TIMEOUT: Duration = Duration::from_secs(10);

type TWebSocket = tungstenite::WebSocket<TcpStream>;

/// A tungstenite client connected to our server, and the server side of that connection.
fn pair() -> (TWebSocket, Websocket) {
    let (addr, accepted) = support::server(ServerConfig::default(), |_| None);
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let (client, _) =
        tungstenite::client(format!("ws://{addr}/"), stream).expect("tungstenite handshake");
    let server = accepted.recv_timeout(TIMEOUT).expect("accepted");
    server
        .get_ref()
        .set_read_timeout(Some(TIMEOUT))
        .expect("timeout");
    (client, server)
}

/// Reads messages until the peer's close frame; returns the data messages and the close.
fn drain(ws: &mut TWebSocket) -> (Vec<TMessage>, Option<TCloseFrame>) {
    let mut messages = Vec::new();
    loop {
        match ws.read() {
            Ok(TMessage::Close(frame)) => {
                let _ = ws.flush();
                return (messages, frame);
            }
            Ok(TMessage::Ping(_) | TMessage::Pong(_)) => {}
            Ok(message) => messages.push(message),
            Err(e) => panic!("tungstenite: {e} after {messages:?}"),
        }
    }
}

#[test]
fn read_yields_payloads_in_order_then_zero_after_close() {
    let (mut client, server) = support::tungstenite_peer(|mut ws: TWebSocket| {
        ws.send(TMessage::text("Hello, ")).unwrap();
        ws.send(TMessage::binary(b"binary ".to_vec())).unwrap();
        ws.send(TMessage::binary(Vec::new())).unwrap();
        ws.send(TMessage::text("κόσμε")).unwrap();
        ws.close(Some(TCloseFrame {
            code: TCloseCode::Normal,
            reason: "that is all".into(),
        }))
        .unwrap();
        drain(&mut ws)
    });
    // A 3-byte buffer: reads stop inside messages and inside a code point.
    let mut received = Vec::new();
    let mut buf = [0u8; 3];
    loop {
        let n = client.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        assert!(n <= 3);
        received.extend_from_slice(&buf[..n]);
    }
    assert_eq!(received, "Hello, binary κόσμε".as_bytes());
    assert_eq!(client.read(&mut buf).unwrap(), 0, "still 0 after the end");
    assert!(client.is_closed());
    assert_eq!(
        client.close_reason(),
        Some(&CloseFrame {
            code: CloseCode::NORMAL,
            reason: "that is all".into()
        })
    );
    let (messages, our_reply) = server.join().unwrap();
    assert!(messages.is_empty());
    assert_eq!(our_reply.map(|f| u16::from(f.code)), Some(1000));
}

#[test]
fn read_to_end_on_the_server_side() {
    let (mut client, mut server) = pair();
    let sizes = [1usize, 1000, 70_000, 0, 5];
    let mut expected = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let chunk = vec![b'a' + i as u8; *size];
        expected.extend_from_slice(&chunk);
        client.send(TMessage::binary(chunk)).unwrap();
    }
    client.close(None).unwrap();
    let mut received = Vec::new();
    server.read_to_end(&mut received).expect("read_to_end");
    assert_eq!(received.len(), expected.len());
    assert!(received == expected, "payload bytes differ");
    assert_eq!(
        server.close_reason(),
        Some(&CloseFrame {
            code: CloseCode::NO_STATUS,
            reason: String::new()
        })
    );
}

#[test]
fn write_sends_each_call_as_one_binary_message() {
    let (mut client, mut server) = pair();
    assert_eq!(server.write(b"abc").unwrap(), 3);
    server.write_all(b"defgh").unwrap();
    let large = vec![0x42; 100_000];
    assert_eq!(server.write(&large).unwrap(), large.len());
    write!(server, "{}-{}", 1, 2).unwrap();
    server.flush().unwrap();
    drop(server);
    let (messages, close) = drain(&mut client);
    // `write!` may split its output over several `write` calls, each a message.
    let (fixed, formatted) = messages.split_at(3);
    assert_eq!(
        fixed,
        [
            TMessage::binary(b"abc".to_vec()),
            TMessage::binary(b"defgh".to_vec()),
            TMessage::binary(large),
        ]
    );
    let mut joined = Vec::new();
    for message in formatted {
        match message {
            TMessage::Binary(data) => joined.extend_from_slice(data),
            other => panic!("expected binary, got {other:?}"),
        }
    }
    assert_eq!(joined, b"1-2");
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1000));
}

#[test]
fn close_reason_and_is_closed_when_the_peer_closes() {
    let (mut client, mut server) = pair();
    assert!(!server.is_closed());
    assert_eq!(server.close_reason(), None);
    client.send(TMessage::text("before")).unwrap();
    client
        .close(Some(TCloseFrame {
            code: TCloseCode::from(4000),
            reason: "client done".into(),
        }))
        .unwrap();
    assert_eq!(server.next(), Some(Message::Text("before".into())));
    assert!(!server.is_closed());
    assert_eq!(server.next(), None);
    assert!(server.is_closed());
    assert_eq!(
        server.close_reason(),
        Some(&CloseFrame {
            code: CloseCode(4000),
            reason: "client done".into()
        })
    );
    assert!(matches!(server.send_text("late"), Err(SendError::Closed)));
    assert!(matches!(server.close(1000, ""), Err(SendError::Closed)));
    match client.read() {
        Ok(TMessage::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 4000),
        other => panic!("expected our close reply, got {other:?}"),
    }
}

#[test]
fn close_reason_and_is_closed_when_we_close() {
    let (mut client, mut server) = pair();
    server.close(4001, "server done").unwrap();
    assert!(server.is_closed(), "closed as soon as our close is sent");
    assert_eq!(server.close_reason(), None, "no reply yet");
    assert!(matches!(server.send_binary(b"x"), Err(SendError::Closed)));
    match client.read() {
        Ok(TMessage::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason, "server done");
        }
        other => panic!("expected our close, got {other:?}"),
    }
    // Sends tungstenite's reply.
    client.flush().unwrap();
    assert_eq!(server.next(), None);
    assert_eq!(server.close_reason().map(|f| f.code), Some(CloseCode(4001)));
    drop(server);
    assert!(matches!(
        client.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
}

#[test]
fn peer_vanishing_ends_iteration() {
    let (client, mut server) = pair();
    drop(client);
    assert_eq!(server.next(), None);
    assert!(server.is_closed());
    assert_eq!(server.close_reason(), None);
}

#[test]
fn drop_sends_close_1000() {
    // Server side.
    let (mut client, server) = pair();
    drop(server);
    match client.read() {
        Ok(TMessage::Close(Some(frame))) => {
            assert_eq!(frame.code, TCloseCode::Normal);
            assert_eq!(frame.reason, "");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    // Client side.
    let (client, peer) = support::tungstenite_peer(|mut ws: TWebSocket| drain(&mut ws));
    drop(client);
    let (messages, close) = peer.join().unwrap();
    assert!(messages.is_empty());
    assert_eq!(close.map(|f| f.code), Some(TCloseCode::Normal));
}

#[test]
fn drop_after_close_sends_nothing_more() {
    let (mut client, mut server) = pair();
    server.close(1001, "going away").unwrap();
    drop(server);
    match client.read() {
        Ok(TMessage::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected one close frame, got {other:?}"),
    }
    // Nothing follows but the end of the connection.
    match client.read() {
        Err(tungstenite::Error::ConnectionClosed)
        | Err(tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ))
        | Err(tungstenite::Error::Io(_)) => {}
        other => panic!("expected the end, got {other:?}"),
    }
}

#[test]
fn pings_are_answered_and_pongs_skipped_while_iterating() {
    let (mut client, peer) = support::tungstenite_peer(|mut ws: TWebSocket| {
        ws.send(TMessage::Ping(b"from peer"[..].into())).unwrap();
        let mut seen = Vec::new();
        // Our ping and our pong, in whichever order they come.
        while seen.len() < 2 {
            match ws.read().expect("read") {
                m @ (TMessage::Ping(_) | TMessage::Pong(_)) => seen.push(m),
                other => panic!("unexpected {other:?}"),
            }
        }
        ws.send(TMessage::text("after pings")).unwrap();
        let _ = drain(&mut ws);
        seen
    });
    client.send_ping(b"from us").unwrap();
    assert_eq!(client.next(), Some(Message::Text("after pings".into())));
    drop(client);
    let seen = peer.join().unwrap();
    assert!(
        seen.contains(&TMessage::Ping(b"from us"[..].into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&TMessage::Pong(b"from peer"[..].into())),
        "{seen:?}"
    );
}

/// Bytes that arrive in the same read as the handshake response are processed before the
/// first `recv`; what they call for (here a pong) must still be written.
#[test]
fn frames_that_arrive_with_the_handshake_response_are_answered() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let peer = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let mut request = Vec::new();
        let mut byte = [0u8];
        while !request.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).expect("request");
            request.push(byte[0]);
        }
        let request = String::from_utf8(request).expect("ASCII request");
        let key = request
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .expect("a key");
        // The response and a ping in one write.
        let mut reply = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            wsbox::handshake::accept_key(key)
        )
        .into_bytes();
        reply.extend_from_slice(&[0x89, 4]);
        reply.extend_from_slice(b"ping");
        stream.write_all(&reply).expect("write");
        // Our pong: FIN + 0xA, masked, 4 bytes.
        let mut pong = [0u8; 10];
        stream.read_exact(&mut pong).expect("the pong");
        let mask = [pong[2], pong[3], pong[4], pong[5]];
        let payload: Vec<u8> = pong[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        stream.write_all(&[0x81, 2, b'o', b'k']).expect("write");
        (pong[0], pong[1], payload)
    });
    let mut client = wsbox::client::connect(&format!("ws://{addr}/")).expect("handshake");
    client
        .get_ref()
        .set_read_timeout(Some(TIMEOUT))
        .expect("timeout");
    assert_eq!(
        client.recv().expect("recv"),
        Some(Message::Text("ok".into()))
    );
    let (b0, b1, payload) = peer.join().unwrap();
    assert_eq!((b0, b1, payload.as_slice()), (0x8A, 0x84, &b"ping"[..]));
}

/// RFC 6455 §7.1.1: after the close handshake the server closes the TCP connection first, so
/// that it, not the client, holds TIME_WAIT; our client waits for that before it reports the
/// end. A client that returned at once would see the flag still unset (on a machine too
/// loaded to return within the pause this passes vacuously; it never fails spuriously).
#[test]
fn client_waits_for_the_server_to_close_the_tcp_connection() {
    let server_dropped = Arc::new(AtomicBool::new(false));
    let dropped = Arc::clone(&server_dropped);
    let (mut client, peer) = support::tungstenite_peer(move |mut ws: TWebSocket| {
        ws.close(None).unwrap();
        match ws.read() {
            Ok(TMessage::Close(_)) => {}
            other => panic!("expected the close reply, got {other:?}"),
        }
        thread::sleep(Duration::from_millis(300));
        dropped.store(true, Ordering::SeqCst);
    });
    assert_eq!(client.recv().unwrap(), None);
    assert!(
        server_dropped.load(Ordering::SeqCst),
        "the client reported the end before the server closed the TCP connection"
    );
    peer.join().unwrap();
}
