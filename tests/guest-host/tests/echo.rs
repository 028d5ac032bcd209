//! `guests/echo` under wasmtime, driven like the runner drives it, against an independent
//! peer: tungstenite's client encodes every frame we push into `on-bytes` (split at every
//! point, or at random points for large messages) and decodes every byte the guest returns.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use guest_host_tests::{Connection, Host, Limits, Reply, header, request};
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame, FrameHeader};
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::{Bytes, Message};

const KEY: &str = "x3JJHMbDL1EzLkh9GBhXDw==";

const LIMITS: Limits = Limits {
    max_frame_size: 4 << 20,
    max_message_size: 4 << 20,
};

fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host::load(env!("GUEST_ECHO_WASM")).expect("guest_echo.wasm loads"))
}

fn upgrade_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("Host", "127.0.0.1:8080"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ];
    headers.extend_from_slice(extra);
    headers
}

/// An in-memory transport for the tungstenite client: what it writes is collected for
/// `on-bytes`, what the guest replies is queued for it to read, and once the guest asks to
/// close, the end of the stream follows its last bytes.
#[derive(Default)]
struct Pipe {
    to_guest: Vec<u8>,
    from_guest: VecDeque<u8>,
    closed: bool,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.from_guest.is_empty() && !self.closed {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.from_guest.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.to_guest.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A tungstenite client connected to one instance of the guest.
struct Peer {
    guest: Connection,
    client: WebSocket<Pipe>,
}

impl Peer {
    /// A new instance, upgraded with `limits`.
    fn upgraded(limits: Limits) -> Peer {
        let mut guest = host().connect().expect("instantiate");
        let response = guest
            .handle(&request("GET", "/", &upgrade_headers(&[])), limits)
            .expect("handle");
        assert_eq!(response.status, 101);
        Peer {
            guest,
            client: WebSocket::from_raw_socket(Pipe::default(), Role::Client, None),
        }
    }

    fn send(&mut self, message: Message) {
        self.client.send(message).expect("client sends");
    }

    /// The bytes the client wrote since the last call.
    fn wire(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.client.get_mut().to_guest)
    }

    /// Feeds `wire` to the guest in chunks ending at `cuts` (ascending) and at the end, and
    /// hands the replies to the client. The guest may ask to close only after its last chunk.
    fn push(&mut self, wire: &[u8], cuts: &[usize]) {
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&wire.len())) {
            assert!(
                !self.closed(),
                "guest asked to close before the input ended"
            );
            let reply = self.guest.on_bytes(&wire[start..end]).expect("on-bytes");
            self.deliver(reply);
            start = end;
        }
    }

    fn deliver(&mut self, reply: Reply) {
        let pipe = self.client.get_mut();
        pipe.from_guest.extend(reply.data);
        pipe.closed |= reply.close;
    }

    /// Whether the guest asked to close the transport.
    fn closed(&mut self) -> bool {
        self.client.get_mut().closed
    }

    /// Everything the client can read now, ending with `None` if the connection closed.
    fn received(&mut self) -> Vec<Option<Message>> {
        let mut received = Vec::new();
        loop {
            match self.client.read() {
                Ok(message) => received.push(Some(message)),
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    return received;
                }
                Err(tungstenite::Error::ConnectionClosed) => {
                    received.push(None);
                    return received;
                }
                Err(e) => panic!("client read failed: {e}"),
            }
        }
    }
}

fn close_code(message: &Option<Message>) -> Option<CloseCode> {
    match message {
        Some(Message::Close(Some(frame))) => Some(frame.code),
        _ => None,
    }
}

/// A fragment of a data message, for the client to mask and send as is.
fn fragment(opcode: Data, payload: &[u8], fin: bool) -> Message {
    Message::Frame(Frame::message(
        Bytes::copy_from_slice(payload),
        OpCode::Data(opcode),
        fin,
    ))
}

/// A small deterministic generator (xorshift64*), so failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Ascending cut points through `len` bytes, chunks of 1 byte to `max` bytes.
    fn cuts(&mut self, len: usize, max: usize) -> Vec<usize> {
        let mut cuts = Vec::new();
        let mut at = 0;
        loop {
            // Mostly large reads with the odd tiny one, as a socket delivers them.
            let step = if self.below(4) == 0 {
                1 + self.below(8)
            } else {
                1 + self.below(max)
            };
            at += step;
            if at >= len {
                return cuts;
            }
            cuts.push(at);
        }
    }
}

#[test]
fn get_root_serves_the_demo_page() {
    let mut guest = host().connect().unwrap();
    let response = guest
        .handle(&request("GET", "/", &[("Host", "127.0.0.1:8080")]), LIMITS)
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        header(&response, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = String::from_utf8(response.body).unwrap();
    assert!(
        page.contains(r#"new WebSocket("ws://" + location.host + "/")"#),
        "{page}"
    );
    assert!(page.contains(r#"id="echo""#), "{page}");

    // Keep-alive: the same instance answers the next request too.
    let response = guest
        .handle(
            &request("GET", "/nope", &[("Host", "127.0.0.1:8080")]),
            LIMITS,
        )
        .unwrap();
    assert_eq!(response.status, 404);
    let response = guest
        .handle(&request("POST", "/", &[("Host", "127.0.0.1:8080")]), LIMITS)
        .unwrap();
    assert_eq!(response.status, 405);
    assert_eq!(header(&response, "allow"), Some("GET"));
}

#[test]
fn invalid_requests_get_400_or_426() {
    let mut guest = host().connect().unwrap();
    // Not HTTP at all: the SDK answers before the handler sees it.
    for bad in [
        request("GET", "/", &[("bad header name", "x")]),
        request("GET", "not a uri", &[]),
        request("G E T", "/", &[]),
        request("GET", "/", &[("Host", "a\nb")]),
    ] {
        let response = guest.handle(&bad, LIMITS).unwrap();
        assert_eq!(response.status, 400, "{bad:?}");
    }
    let mut old = request("GET", "/", &[("Host", "x")]);
    old.version = 9;
    assert_eq!(guest.handle(&old, LIMITS).unwrap().status, 400);

    // Broken upgrades: the core's answers through the guest.
    let no_key = upgrade_headers(&[])
        .into_iter()
        .filter(|(name, _)| *name != "Sec-WebSocket-Key")
        .collect::<Vec<_>>();
    assert_eq!(
        guest
            .handle(&request("GET", "/", &no_key), LIMITS)
            .unwrap()
            .status,
        400
    );
    let mut version_8 = upgrade_headers(&[]);
    version_8.retain(|(name, _)| *name != "Sec-WebSocket-Version");
    version_8.push(("Sec-WebSocket-Version", "8"));
    let response = guest
        .handle(&request("GET", "/", &version_8), LIMITS)
        .unwrap();
    assert_eq!(response.status, 426);
    assert_eq!(header(&response, "sec-websocket-version"), Some("13"));
}

#[test]
fn upgrade_answers_101_with_the_accept_key() {
    let mut guest = host().connect().unwrap();
    let response = guest
        .handle(
            &request("GET", "/any/path?x=1", &upgrade_headers(&[])),
            LIMITS,
        )
        .unwrap();
    assert_eq!(response.status, 101);
    let expected = tungstenite::handshake::derive_accept_key(KEY.as_bytes());
    assert_eq!(
        header(&response, "sec-websocket-accept"),
        Some(expected.as_str())
    );
    assert_eq!(header(&response, "upgrade"), Some("websocket"));
    assert_eq!(header(&response, "connection"), Some("Upgrade"));
    assert_eq!(header(&response, "sec-websocket-protocol"), None);
    assert!(response.body.is_empty());

    // The client's first offered subprotocol is accepted.
    let mut guest = host().connect().unwrap();
    let offered = upgrade_headers(&[
        ("Sec-WebSocket-Protocol", "chat, superchat"),
        ("Sec-WebSocket-Protocol", "v2"),
    ]);
    let response = guest
        .handle(&request("GET", "/", &offered), LIMITS)
        .unwrap();
    assert_eq!(response.status, 101);
    assert_eq!(header(&response, "sec-websocket-protocol"), Some("chat"));
}

#[test]
fn small_sequence_echoes_at_every_split() {
    // Build the client's bytes once (masks are random per frame) and replay them.
    let mut peer = Peer::upgraded(LIMITS);
    peer.send(Message::text("hello"));
    peer.send(Message::binary(vec![0u8, 1, 2, 255]));
    peer.send(Message::Ping(Bytes::from_static(b"are you there")));
    // "wörld 𝄞" fragmented inside the 4-byte character, with a ping between fragments.
    let text = "wörld 𝄞".as_bytes();
    let cut = text.len() - 2;
    peer.send(fragment(Data::Text, &text[..3], false));
    peer.send(fragment(Data::Continue, &text[3..cut], false));
    peer.send(Message::Ping(Bytes::from_static(b"mid")));
    peer.send(fragment(Data::Continue, &text[cut..], true));
    peer.send(Message::binary(Vec::new()));
    let wire = peer.wire();

    let expected = vec![
        Some(Message::text("hello")),
        Some(Message::binary(vec![0u8, 1, 2, 255])),
        Some(Message::Pong(Bytes::from_static(b"are you there"))),
        Some(Message::Pong(Bytes::from_static(b"mid"))),
        Some(Message::text("wörld 𝄞")),
        Some(Message::binary(Vec::new())),
    ];
    let mut schedules: Vec<Vec<usize>> = (0..=wire.len()).map(|at| vec![at]).collect();
    schedules.push((1..wire.len()).collect());
    for cuts in schedules {
        let mut peer = Peer::upgraded(LIMITS);
        peer.push(&wire, &cuts);
        assert_eq!(peer.received(), expected, "cuts {cuts:?}");
        assert!(!peer.closed());
    }
}

#[test]
fn large_messages_echo_at_random_splits() {
    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut peer = Peer::upgraded(LIMITS);
    let binary: Vec<u8> = (0..1 << 20).map(|_| rng.next() as u8).collect();
    // Mixed-width characters, so chunks split them anywhere.
    let text: String = "aé€𝄞".chars().cycle().take(300_000).collect();
    for round in 0..4 {
        let message = if round % 2 == 0 {
            Message::binary(binary.clone())
        } else {
            Message::text(text.clone())
        };
        peer.send(message.clone());
        let wire = peer.wire();
        let cuts = rng.cuts(wire.len(), 96 << 10);
        peer.push(&wire, &cuts);
        assert_eq!(peer.received(), [Some(message)], "round {round}");
        assert!(started.elapsed() < Duration::from_secs(60), "too slow");
    }
    assert!(!peer.closed());
}

#[test]
fn protocol_violations_close_with_1002_or_1007() {
    let unmasked = {
        let mut wire = Vec::new();
        Frame::message(Bytes::from_static(b"hi"), OpCode::Data(Data::Text), true)
            .format(&mut wire)
            .unwrap();
        wire
    };
    let masked = |header: FrameHeader, payload: &'static [u8]| {
        let mut wire = Vec::new();
        let mut header = header;
        header.mask = Some([1, 2, 3, 4]);
        Frame::from_payload(header, Bytes::from_static(payload))
            .format(&mut wire)
            .unwrap();
        wire
    };
    let text = FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    };
    let cases = [
        ("unmasked frame", unmasked, CloseCode::Protocol),
        (
            "reserved bit",
            masked(
                FrameHeader {
                    rsv1: true,
                    ..text.clone()
                },
                b"x",
            ),
            CloseCode::Protocol,
        ),
        (
            "reserved opcode",
            masked(
                FrameHeader {
                    opcode: OpCode::Data(Data::Reserved(3)),
                    ..text.clone()
                },
                b"",
            ),
            CloseCode::Protocol,
        ),
        (
            "continuation without a message",
            masked(
                FrameHeader {
                    opcode: OpCode::Data(Data::Continue),
                    ..text.clone()
                },
                b"x",
            ),
            CloseCode::Protocol,
        ),
        (
            "invalid UTF-8",
            masked(text.clone(), b"\xff\xfe"),
            CloseCode::Invalid,
        ),
    ];
    for (name, wire, code) in cases {
        let mut peer = Peer::upgraded(LIMITS);
        // A good message first: it is echoed before the violation closes the connection.
        peer.send(Message::text("before"));
        let mut all = peer.wire();
        all.extend_from_slice(&wire);
        peer.push(&all, &[]);
        assert!(peer.closed(), "{name}: close=true");
        let received = peer.received();
        assert_eq!(received[0], Some(Message::text("before")), "{name}");
        assert_eq!(close_code(&received[1]), Some(code), "{name}: {received:?}");
        assert_eq!(received.len(), 3, "{name}: then the end: {received:?}");
        assert_eq!(received[2], None, "{name}");
        // Nothing more comes out of a failed connection.
        let reply = peer.guest.on_bytes(&peer_ping()).unwrap();
        assert!(reply.data.is_empty() && reply.close, "{name}");
    }
}

/// A masked ping, as raw bytes.
fn peer_ping() -> Vec<u8> {
    let mut wire = Vec::new();
    let mut frame = Frame::ping(Bytes::from_static(b"late"));
    frame.header_mut().mask = Some([9, 9, 9, 9]);
    frame.format(&mut wire).unwrap();
    wire
}

#[test]
fn messages_over_the_host_limits_close_with_1009() {
    let limits = Limits {
        max_frame_size: 1000,
        max_message_size: 2500,
    };
    // One frame over the frame limit; then a message over the message limit in fragments
    // that each fit.
    let too_big_frame = vec![Message::binary(vec![7u8; 1001])];
    let too_big_message = vec![
        fragment(Data::Binary, &[1; 1000], false),
        fragment(Data::Continue, &[2; 1000], false),
        fragment(Data::Continue, &[3; 501], true),
    ];
    for messages in [too_big_frame, too_big_message] {
        let mut peer = Peer::upgraded(limits);
        peer.send(Message::binary(vec![5u8; 1000]));
        for message in messages {
            peer.send(message);
        }
        let wire = peer.wire();
        peer.push(&wire, &[]);
        assert!(peer.closed());
        let received = peer.received();
        assert_eq!(received[0], Some(Message::binary(vec![5u8; 1000])));
        assert_eq!(
            close_code(&received[1]),
            Some(CloseCode::Size),
            "{received:?}"
        );
        assert_eq!(received[2..], [None]);
    }
}

#[test]
fn client_close_is_answered_and_ends_the_connection() {
    let mut peer = Peer::upgraded(LIMITS);
    peer.send(Message::text("last"));
    peer.client
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .unwrap();
    let wire = peer.wire();
    peer.push(&wire, &[wire.len() - 3]);
    assert!(peer.closed());
    let received = peer.received();
    assert_eq!(received[0], Some(Message::text("last")));
    assert_eq!(
        close_code(&received[1]),
        Some(CloseCode::Normal),
        "{received:?}"
    );
    assert_eq!(
        received.last(),
        Some(&None),
        "tungstenite saw the handshake complete"
    );
}

#[test]
fn close_request_sends_1001_then_waits_for_the_peer() {
    let mut peer = Peer::upgraded(LIMITS);
    let reply = peer.guest.on_close_request(1001, "shutting down").unwrap();
    assert!(!reply.close, "the peer has not answered yet");
    peer.deliver(reply);
    let received = peer.received();
    match &received[..] {
        [Some(Message::Close(Some(frame)))] => {
            assert_eq!(frame.code, CloseCode::Away);
            assert_eq!(frame.reason, "shutting down");
        }
        other => panic!("expected a 1001 close, got {other:?}"),
    }
    // tungstenite queued its close reply while reading; send it.
    peer.client.flush().unwrap();
    let wire = peer.wire();
    peer.push(&wire, &[]);
    assert!(peer.closed());
    // Asking again changes nothing.
    let reply = peer.guest.on_close_request(1001, "again").unwrap();
    assert!(reply.data.is_empty() && reply.close);
}

#[test]
fn instances_are_independent() {
    let small = Limits {
        max_frame_size: 100,
        max_message_size: 100,
    };
    let mut a = Peer::upgraded(LIMITS);
    let mut b = Peer::upgraded(small);
    let mut plain = host().connect().unwrap();

    // Half a frame into A; B's traffic and limits are its own.
    a.send(Message::text("for a"));
    let wire_a = a.wire();
    a.push(&wire_a[..4], &[]);
    b.send(Message::text("for b"));
    let wire_b = b.wire();
    b.push(&wire_b, &[]);
    assert_eq!(b.received(), [Some(Message::text("for b"))]);
    a.push(&wire_a[4..], &[]);
    assert_eq!(a.received(), [Some(Message::text("for a"))]);

    // 200 bytes: fine for A, over B's limit.
    a.send(Message::binary(vec![1u8; 200]));
    let wire = a.wire();
    a.push(&wire, &[]);
    assert_eq!(a.received(), [Some(Message::binary(vec![1u8; 200]))]);
    b.send(Message::binary(vec![1u8; 200]));
    let wire = b.wire();
    b.push(&wire, &[]);
    assert_eq!(close_code(&b.received()[0]), Some(CloseCode::Size));
    assert!(b.closed() && !a.closed());

    // An instance that never upgraded has no WebSocket: bytes close it.
    let reply = plain.on_bytes(b"\x81\x80abcd").unwrap();
    assert!(reply.data.is_empty() && reply.close);
    a.send(Message::text("still here"));
    let wire = a.wire();
    a.push(&wire, &[]);
    assert_eq!(a.received(), [Some(Message::text("still here"))]);
}

#[test]
fn peer_gone_frees_the_connection() {
    let mut peer = Peer::upgraded(LIMITS);
    peer.send(Message::text("x"));
    let wire = peer.wire();
    peer.push(&wire[..3], &[]);
    peer.guest.on_peer_gone().unwrap();
    let reply = peer.guest.on_bytes(&wire[3..]).unwrap();
    assert!(reply.data.is_empty() && reply.close);
}

#[test]
fn imports_nothing_but_what_std_needs() {
    // std's stdio, environment and exit, and the seed for its hash maps; no sockets, files
    // or clocks. `types` is the WIT package's own interface of type definitions.
    let allowed = [
        "wsbox:websocket/types@",
        "wasi:cli/",
        "wasi:io/",
        "wasi:random/insecure-seed@",
    ];
    let imports = host().imports();
    for import in &imports {
        assert!(
            allowed.iter().any(|prefix| import.starts_with(prefix)),
            "unexpected import {import} in {imports:?}"
        );
    }
}
