//! Interop with tungstenite, a WebSocket implementation no one here wrote: its client
//! against our server (`wsbox::server::Server` + `wsbox::start`), and our client
//! (`wsbox::client`) against its server (`tungstenite::accept`), all on 127.0.0.1.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::Duration;

use tungstenite::Message as TMessage;
use tungstenite::client::IntoClientRequest;
use tungstenite::error::{Error as TError, ProtocolError as TProtocolError, SubProtocolError};
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::CloseFrame as TCloseFrame;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{CloseCode as TCloseCode, Data, OpCode};
use wsbox::server::ServerConfig;
use wsbox::{CloseCode, CloseFrame, Message, Websocket};

mod support;

/// How long any read may block, on either side.
const TIMEOUT: Duration = Duration::from_secs(10);

type TWebSocket = tungstenite::WebSocket<TcpStream>;

// ---------------------------------------------------------------------------------------
// Our server, tungstenite's client.

/// The next server-side `Websocket`, with the read timeout set.
fn accept(accepted: &Receiver<Websocket>) -> Websocket {
    let websocket = accepted
        .recv_timeout(TIMEOUT)
        .expect("the server accepted no connection");
    websocket
        .get_ref()
        .set_read_timeout(Some(TIMEOUT))
        .expect("set_read_timeout");
    websocket
}

/// A tungstenite client connection to `addr` with the given `Sec-WebSocket-Protocol` offer.
fn tungstenite_client(
    addr: SocketAddr,
    path: &str,
    protocols: Option<&str>,
) -> Result<(TWebSocket, tungstenite::handshake::client::Response), TError> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(TIMEOUT))
        .expect("set_read_timeout");
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("valid URL");
    if let Some(protocols) = protocols {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocols.parse().expect("valid header value"),
        );
    }
    tungstenite::client(request, stream).map_err(|e| match e {
        HandshakeError::Failure(e) => e,
        HandshakeError::Interrupted(_) => panic!("a blocking handshake was interrupted"),
    })
}

fn protocol_of(response: &tungstenite::handshake::client::Response) -> Option<&str> {
    response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().expect("ASCII header"))
}

/// Reads the next data or close message, skipping pings and pongs.
fn read_data(client: &mut TWebSocket) -> TMessage {
    loop {
        match client.read().expect("tungstenite read") {
            TMessage::Ping(_) | TMessage::Pong(_) => continue,
            message => return message,
        }
    }
}

#[test]
fn tungstenite_client_text_binary_and_large_messages() {
    let (addr, accepted) = support::server(ServerConfig::default(), |_| None);
    let (mut client, _) = tungstenite_client(addr, "/", None).expect("handshake");
    let server = thread::spawn(move || support::echo(accept(&accepted)));

    client.send(TMessage::text("Hello, wsbox")).unwrap();
    assert_eq!(read_data(&mut client), TMessage::text("Hello, wsbox"));
    client.send(TMessage::text("κόσμε 𝄞")).unwrap();
    assert_eq!(read_data(&mut client), TMessage::text("κόσμε 𝄞"));
    let binary: Vec<u8> = (0..=255).collect();
    client.send(TMessage::binary(binary.clone())).unwrap();
    assert_eq!(read_data(&mut client), TMessage::binary(binary));
    client.send(TMessage::binary(Vec::new())).unwrap();
    assert_eq!(read_data(&mut client), TMessage::binary(Vec::new()));

    let mib: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    client.send(TMessage::binary(mib.clone())).unwrap();
    assert_eq!(read_data(&mut client), TMessage::binary(mib));
    let text_mib = "wsbox ".repeat((1 << 20) / 6);
    client.send(TMessage::text(text_mib.clone())).unwrap();
    assert_eq!(read_data(&mut client), TMessage::text(text_mib));

    client.close(None).unwrap();
    while client.read().is_ok() {}
    assert_eq!(
        server.join().unwrap(),
        Some(CloseFrame {
            code: CloseCode::NO_STATUS,
            reason: String::new()
        })
    );
}

#[test]
fn tungstenite_client_ping_is_answered() {
    let (addr, accepted) = support::server(ServerConfig::default(), |_| None);
    let (mut client, _) = tungstenite_client(addr, "/", None).expect("handshake");
    let server = thread::spawn(move || support::echo(accept(&accepted)));

    client
        .send(TMessage::Ping(b"are you there"[..].into()))
        .unwrap();
    assert_eq!(
        client.read().unwrap(),
        TMessage::Pong(b"are you there"[..].into())
    );
    // A ping in the middle of traffic is answered before the echo that follows it.
    client.send(TMessage::Ping(vec![7; 125].into())).unwrap();
    client.send(TMessage::text("after the ping")).unwrap();
    assert_eq!(client.read().unwrap(), TMessage::Pong(vec![7; 125].into()));
    assert_eq!(client.read().unwrap(), TMessage::text("after the ping"));
    drop(client);
    assert_eq!(server.join().unwrap(), None, "no close frame was sent");
}

#[test]
fn close_initiated_by_tungstenite_client() {
    let (addr, accepted) = support::server(ServerConfig::default(), |_| None);
    let (mut client, _) = tungstenite_client(addr, "/", None).expect("handshake");
    let server = thread::spawn(move || support::echo(accept(&accepted)));

    client
        .close(Some(TCloseFrame {
            code: TCloseCode::from(4000),
            reason: "client says bye".into(),
        }))
        .unwrap();
    // Our server answers with the code (§5.5.1), then ends the connection.
    match client.read() {
        Ok(TMessage::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 4000),
        other => panic!("expected the close reply, got {other:?}"),
    }
    assert!(matches!(client.read(), Err(TError::ConnectionClosed)));
    assert_eq!(
        server.join().unwrap(),
        Some(CloseFrame {
            code: CloseCode(4000),
            reason: "client says bye".into()
        })
    );
}

#[test]
fn close_initiated_by_our_server() {
    let (addr, accepted) = support::server(ServerConfig::default(), |_| None);
    let (mut client, _) = tungstenite_client(addr, "/", None).expect("handshake");
    let server = thread::spawn(move || {
        let mut websocket = accept(&accepted);
        websocket.close(4001, "server says bye").unwrap();
        assert!(websocket.is_closed());
        // The reply arrives while we keep reading; no message comes before it.
        assert_eq!(websocket.next(), None);
        websocket.close_reason().cloned()
    });

    match client.read() {
        Ok(TMessage::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason, "server says bye");
        }
        other => panic!("expected the server's close, got {other:?}"),
    }
    // tungstenite sends its reply on the next read, then sees the end of the connection.
    assert!(matches!(client.read(), Err(TError::ConnectionClosed)));
    let reply = server.join().unwrap().expect("the client's reply");
    assert_eq!(reply.code, CloseCode(4001));
}

#[test]
fn subprotocol_none() {
    let (addr, accepted) = support::server(ServerConfig::default(), |_| None);
    let (mut client, response) = tungstenite_client(addr, "/", None).expect("handshake");
    assert_eq!(protocol_of(&response), None);
    client.send(TMessage::text("no protocol")).unwrap();
    let server = thread::spawn(move || support::echo(accept(&accepted)));
    assert_eq!(read_data(&mut client), TMessage::text("no protocol"));
    drop(client);
    server.join().unwrap();

    // What the client offers is ignored: no Sec-WebSocket-Protocol comes back, which
    // tungstenite (having offered one) treats as a failed handshake.
    match tungstenite_client(addr, "/", Some("chat")) {
        Err(TError::Protocol(TProtocolError::SecWebSocketSubProtocolError(
            SubProtocolError::NoSubProtocol,
        ))) => {}
        other => panic!("expected NoSubProtocol, got {:?}", other.map(|(_, r)| r)),
    }
}

#[test]
fn subprotocol_exactly_one() {
    let (addr, accepted) = support::server(ServerConfig::default(), |_| Some("echo".into()));
    let (mut client, response) =
        tungstenite_client(addr, "/", Some("chat, echo")).expect("handshake");
    assert_eq!(protocol_of(&response), Some("echo"));
    let server = thread::spawn(move || support::echo(accept(&accepted)));
    client.send(TMessage::text("with echo")).unwrap();
    assert_eq!(read_data(&mut client), TMessage::text("with echo"));
    drop(client);
    server.join().unwrap();

    for offer in [Some("chat"), Some("echo2, ech"), None] {
        match tungstenite_client(addr, "/", offer) {
            Err(TError::Http(response)) => {
                assert_eq!(response.status(), 400, "offer {offer:?}");
                let body = response.body().as_deref().unwrap_or_default();
                assert_eq!(
                    String::from_utf8_lossy(body),
                    "the client did not offer the required subprotocol\n"
                );
            }
            other => panic!(
                "offer {offer:?}: expected 400, got {:?}",
                other.map(|(_, r)| r)
            ),
        }
    }
}

#[test]
fn subprotocol_picked_from_the_requested_list() {
    let supported = ["v1.chat", "v2.chat"];
    let (addr, accepted) = support::server(ServerConfig::default(), move |request| {
        wsbox::requested_protocols(request).find(|p| supported.contains(&p.as_str()))
    });
    // The client's order of preference wins.
    for (offer, chosen) in [
        ("v3.chat, v2.chat, v1.chat", "v2.chat"),
        ("v1.chat,v2.chat", "v1.chat"),
        ("x, v2.chat", "v2.chat"),
    ] {
        let (mut client, response) = tungstenite_client(addr, "/", Some(offer)).expect("handshake");
        assert_eq!(protocol_of(&response), Some(chosen), "offer {offer}");
        let server = thread::spawn({
            let websocket = accept(&accepted);
            move || support::echo(websocket)
        });
        client.send(TMessage::text(chosen)).unwrap();
        assert_eq!(read_data(&mut client), TMessage::text(chosen));
        drop(client);
        server.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Our client, tungstenite's server.

/// Echoes data messages until the peer closes; returns its close frame.
fn tungstenite_echo(mut ws: TWebSocket) -> Option<TCloseFrame> {
    loop {
        match ws.read() {
            Ok(m @ (TMessage::Text(_) | TMessage::Binary(_))) => ws.send(m).expect("echo"),
            Ok(TMessage::Close(frame)) => {
                // Sends tungstenite's reply.
                let _ = ws.flush();
                return frame;
            }
            Ok(_) => {}
            Err(e) => panic!("tungstenite server: {e}"),
        }
    }
}

#[test]
fn our_client_echo_and_close_handshake() {
    let (mut client, server) = support::tungstenite_peer(tungstenite_echo);

    client.send_text("Hello, tungstenite").unwrap();
    assert_eq!(
        client.next(),
        Some(Message::Text("Hello, tungstenite".into()))
    );
    client.send_binary(&[0, 1, 2, 255]).unwrap();
    assert_eq!(client.next(), Some(Message::Binary(vec![0, 1, 2, 255])));
    let mib: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 253) as u8).collect();
    client.send_binary(&mib).unwrap();
    assert_eq!(client.next(), Some(Message::Binary(mib)));

    client.close(1000, "done").unwrap();
    assert!(client.is_closed());
    assert_eq!(client.next(), None);
    // tungstenite echoes code and reason.
    assert_eq!(
        client.close_reason(),
        Some(&CloseFrame {
            code: CloseCode::NORMAL,
            reason: "done".into()
        })
    );
    let seen = server.join().unwrap().expect("a close frame");
    assert_eq!((u16::from(seen.code), seen.reason.as_str()), (1000, "done"));
}

#[test]
fn our_client_receives_fragmented_messages() {
    let (mut client, server) = support::tungstenite_peer(|mut ws: TWebSocket| {
        let fragment = |data: &[u8], op: Data, fin: bool| {
            TMessage::Frame(Frame::message(data.to_vec(), OpCode::Data(op), fin))
        };
        let k = "κόσμε".as_bytes();
        ws.send(fragment(b"Hel", Data::Text, false)).unwrap();
        ws.send(TMessage::Ping(b"between"[..].into())).unwrap();
        ws.send(fragment(b"lo", Data::Continue, true)).unwrap();
        // Cuts inside code points.
        ws.send(fragment(&k[..1], Data::Text, false)).unwrap();
        ws.send(fragment(&k[1..6], Data::Continue, false)).unwrap();
        ws.send(fragment(&k[6..], Data::Continue, true)).unwrap();
        ws.send(fragment(&[1, 2], Data::Binary, false)).unwrap();
        ws.send(fragment(&[], Data::Continue, false)).unwrap();
        ws.send(fragment(&[3], Data::Continue, true)).unwrap();
        // Our client answered the ping while reading; read up to its close.
        let mut pongs = Vec::new();
        loop {
            match ws.read() {
                Ok(TMessage::Pong(p)) => pongs.push(p.to_vec()),
                Ok(TMessage::Close(_)) => break,
                Ok(other) => panic!("unexpected {other:?}"),
                Err(e) => panic!("tungstenite server: {e}"),
            }
        }
        let _ = ws.flush();
        pongs
    });
    assert_eq!(client.next(), Some(Message::Text("Hello".into())));
    assert_eq!(client.next(), Some(Message::Text("κόσμε".into())));
    assert_eq!(client.next(), Some(Message::Binary(vec![1, 2, 3])));
    client.close(1000, "").unwrap();
    assert_eq!(client.next(), None);
    assert_eq!(server.join().unwrap(), [b"between".to_vec()]);
}

#[test]
fn our_client_answers_server_pings() {
    let (mut client, server) = support::tungstenite_peer(|mut ws: TWebSocket| {
        ws.send(TMessage::Ping(b"heartbeat"[..].into())).unwrap();
        let pong = ws.read().expect("the pong");
        ws.send(TMessage::text("pong seen")).unwrap();
        tungstenite_echo(ws);
        pong
    });
    assert_eq!(client.next(), Some(Message::Text("pong seen".into())));
    drop(client);
    assert_eq!(
        server.join().unwrap(),
        TMessage::Pong(b"heartbeat"[..].into())
    );
}

#[test]
fn close_initiated_by_tungstenite_server() {
    let (mut client, server) = support::tungstenite_peer(|mut ws: TWebSocket| {
        ws.send(TMessage::text("last words")).unwrap();
        ws.close(Some(TCloseFrame {
            code: TCloseCode::from(4002),
            reason: "server leaving".into(),
        }))
        .unwrap();
        match ws.read() {
            Ok(TMessage::Close(frame)) => {
                let _ = ws.flush();
                frame
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => panic!("tungstenite server: {e}"),
        }
    });
    assert_eq!(client.next(), Some(Message::Text("last words".into())));
    assert_eq!(client.next(), None);
    assert!(client.is_closed());
    assert_eq!(
        client.close_reason(),
        Some(&CloseFrame {
            code: CloseCode(4002),
            reason: "server leaving".into()
        })
    );
    assert!(matches!(
        client.send_text("too late"),
        Err(wsbox::SendError::Closed)
    ));
    let reply = server.join().unwrap().expect("our reply");
    assert_eq!(u16::from(reply.code), 4002);
}

#[test]
fn our_client_subprotocols_against_tungstenite_server() {
    use tungstenite::handshake::server::{ErrorResponse, Request, Response};

    /// Runs one handshake of our client, offering `offer`, against a tungstenite server
    /// whose callback answers with `answer`.
    fn attempt(
        offer: &'static [&'static str],
        answer: fn(&Request, Response) -> Result<Response, ErrorResponse>,
    ) -> Result<Option<String>, wsbox::ClientError> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            // Fails when the callback refuses or our client drops the connection.
            let _ = tungstenite::accept_hdr(stream, answer);
        });
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let uri: http::Uri = format!("ws://{addr}/").parse().expect("uri");
        let result = wsbox::client::handshake(stream, &uri, offer, wsbox::Config::default()).map(
            |(websocket, response)| {
                drop(websocket);
                response
                    .headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().expect("ASCII").to_owned())
            },
        );
        server.join().unwrap();
        result
    }

    // Callbacks have the signature tungstenite's `Callback` requires.
    #[allow(clippy::result_large_err)]
    fn pick_last(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
        let offered = request.headers()["sec-websocket-protocol"]
            .to_str()
            .unwrap();
        let last = offered.rsplit(',').next().unwrap().trim().to_owned();
        response
            .headers_mut()
            .insert("sec-websocket-protocol", last.parse().unwrap());
        Ok(response)
    }
    #[allow(clippy::result_large_err)]
    fn pick_unoffered(_: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
        response
            .headers_mut()
            .insert("sec-websocket-protocol", "zzz".parse().unwrap());
        Ok(response)
    }
    #[allow(clippy::result_large_err)]
    fn refuse(_: &Request, _: Response) -> Result<Response, ErrorResponse> {
        let mut refusal = ErrorResponse::new(Some("go away".into()));
        *refusal.status_mut() = http::StatusCode::FORBIDDEN;
        Err(refusal)
    }

    assert_eq!(attempt(&["a", "b"], pick_last).unwrap(), Some("b".into()));
    assert!(matches!(
        attempt(&["a"], pick_unoffered),
        Err(wsbox::ClientError::UnexpectedSubprotocol(p)) if p == "zzz"
    ));
    assert!(matches!(
        attempt(&[], pick_unoffered),
        Err(wsbox::ClientError::UnexpectedSubprotocol(_))
    ));
    assert!(matches!(
        attempt(&["a"], refuse),
        Err(wsbox::ClientError::Rejected { status: 403 })
    ));
}
