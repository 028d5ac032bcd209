use std::io::Write;

use flate2::Compression;
use flate2::write::DeflateEncoder;

use super::super::{Config, Event, Message};
use super::*;
use crate::proto::close_code::CloseCode;
use crate::proto::deflate::Deflate;

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

fn pair(params: Params, config: Config) -> (Session, Session) {
    let client = Session::client(config, || [9, 8, 7, 6]).with_deflate(params);
    let server = Session::server(config).with_deflate(params);
    (client, server)
}

fn output(session: &mut Session) -> Vec<u8> {
    let mut out = Vec::new();
    session.poll_transmit(&mut out);
    out
}

fn events(session: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

/// `payload` compressed by an independent DEFLATE (miniz_oxide), tail stripped.
fn independent_deflate(payload: &[u8]) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(payload).unwrap();
    encoder.flush().unwrap();
    let mut out = encoder.get_ref().clone();
    assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]));
    out.truncate(out.len() - 4);
    out
}

/// A masked client frame with the reserved bits `rsv`.
fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_frame_with(
        &mut out,
        fin,
        rsv,
        OpCode::from(opcode),
        Some(MASK),
        payload,
    );
    out
}

fn close_code_of(out: &[u8]) -> u16 {
    assert_eq!(out[0], 0x88, "expected a close frame, got {out:02x?}");
    u16::from_be_bytes([out[2], out[3]])
}

#[test]
fn messages_go_both_ways_compressed() {
    for params in [
        Params::default(),
        Params {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: Some(9),
            client_max_window_bits: Some(10),
        },
    ] {
        let (mut client, mut server) = pair(params, Config::default());
        let text = "{\"event\":\"tick\",\"value\":1}".repeat(40);
        for _ in 0..3 {
            client.send_text(&text).unwrap();
            client.send_binary(text.as_bytes()).unwrap();
        }
        let wire = output(&mut client);
        assert!(wire.len() < text.len(), "{} bytes", wire.len());
        // RSV1 on each (single-frame) message, masked as a client must.
        assert_eq!(wire[0], 0xC1);
        server.receive(&wire).unwrap();
        let received = events(&mut server);
        assert_eq!(received.len(), 6);
        for (i, event) in received.into_iter().enumerate() {
            let expected = if i % 2 == 0 {
                Message::Text(text.clone())
            } else {
                Message::Binary(text.clone().into_bytes())
            };
            assert_eq!(event, Event::Message(expected.clone()));
            server.send_message(&expected).unwrap();
        }
        client.receive(&output(&mut server)).unwrap();
        assert_eq!(events(&mut client).len(), 6);
    }
}

#[test]
fn a_compressed_message_in_fragments_from_an_independent_deflater() {
    let text = "fragmented and compressed ".repeat(50);
    let compressed = independent_deflate(text.as_bytes());
    let (_, mut server) = pair(Params::default(), Config::default());
    let (first, rest) = compressed.split_at(compressed.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);
    let mut wire = frame(false, RSV1, 0x1, first);
    wire.extend(frame(false, 0, 0x0, second));
    // A ping between fragments is not compressed and does not disturb the message.
    wire.extend(frame(true, 0, 0x9, b"hi"));
    wire.extend(frame(true, 0, 0x0, third));
    // Fed a byte at a time: headers and payloads straddle every call.
    for byte in &wire {
        server.receive(std::slice::from_ref(byte)).unwrap();
    }
    assert_eq!(
        events(&mut server),
        [
            Event::Ping(b"hi".to_vec()),
            Event::Message(Message::Text(text))
        ]
    );
    // The pong is not compressed: RSV1 clear.
    assert_eq!(output(&mut server)[..2], [0x8A, 0x02]);
}

#[test]
fn uncompressed_messages_still_pass() {
    let (_, mut server) = pair(Params::default(), Config::default());
    server.receive(&frame(true, 0, 0x1, b"plain")).unwrap();
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::Text("plain".into()))]
    );
}

#[test]
fn control_frames_are_never_compressed() {
    let (mut client, mut server) = pair(Params::default(), Config::default());
    server.send_ping(b"ping").unwrap();
    server.send_pong(b"pong").unwrap();
    server.close(1000u16, "bye").unwrap();
    let wire = output(&mut server);
    assert_eq!([wire[0], wire[6], wire[12]], [0x89, 0x8A, 0x88]);
    client.receive(&wire).unwrap();
    assert!(client.is_finished());
}

#[test]
fn misplaced_rsv1_is_a_protocol_error() {
    let ping = frame(true, RSV1, 0x9, b"x");
    let mut continuation = frame(false, RSV1, 0x1, &independent_deflate(b"ab"));
    continuation.extend(frame(true, RSV1, 0x0, b""));
    let cases = [
        (ping.clone(), ProtocolError::CompressedControlFrame, true),
        (continuation, ProtocolError::CompressedContinuation, true),
        // Without permessage-deflate agreed, RSV1 is a reserved bit like the others.
        (
            frame(true, RSV1, 0x1, b"x"),
            ProtocolError::ReservedBitsSet,
            false,
        ),
        (ping, ProtocolError::ReservedBitsSet, false),
        // RSV2 stays reserved either way.
        (
            frame(true, 0b010, 0x1, b"x"),
            ProtocolError::ReservedBitsSet,
            true,
        ),
    ];
    for (wire, error, agreed) in cases {
        let mut server = Session::server(Config::default());
        if agreed {
            server = server.with_deflate(Params::default());
        }
        assert_eq!(server.receive(&wire), Err(error.into()), "{error:?}");
        assert_eq!(close_code_of(&output(&mut server)), 1002, "{error:?}");
    }
}

#[test]
fn bad_deflate_data_and_bad_utf8_inside_close_with_1007() {
    for payload in [vec![0xFF, 0xFF, 0xFF], independent_deflate(b"ok \xFF\xFE")] {
        let (_, mut server) = pair(Params::default(), Config::default());
        assert!(server.receive(&frame(true, RSV1, 0x1, &payload)).is_err());
        assert_eq!(
            close_code_of(&output(&mut server)),
            CloseCode::INVALID_PAYLOAD.0
        );
    }
}

#[test]
fn a_small_frame_that_inflates_past_the_limit_closes_with_1009() {
    // About 1 KB that inflates to 1 MiB.
    let zeros = independent_deflate(&vec![0; 1 << 20]);
    assert!(zeros.len() < 1100, "{}", zeros.len());
    let limit = 64 << 10;
    let config = Config::default().max_message_size(limit);
    let (_, mut server) = pair(Params::default(), config);
    let result = server.receive(&frame(true, RSV1, 0x2, &zeros));
    assert!(
        matches!(result, Err(Error::Capacity(CapacityError { max, .. })) if max == limit),
        "{result:?}"
    );
    assert_eq!(close_code_of(&output(&mut server)), 1009);
    // The inflated bytes were dropped, and never exceeded the limit.
    assert!(server.message.capacity() <= limit);
}

#[test]
fn a_gigabyte_bomb_is_stopped_at_the_default_limit() {
    // 1 MiB of zeros compressed, 1,024 times over: 1 GiB in about 1 MB of frame.
    let mut chunk = independent_deflate(&vec![0; 1 << 20]);
    chunk.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
    let bomb = chunk.repeat(1 << 10);
    let (_, mut server) = pair(Params::default(), Config::default());
    let limit = Config::default().get_max_message_size();
    assert_eq!(limit, 64 << 20);
    let result = server.receive(&frame(true, RSV1, 0x2, &bomb));
    assert!(matches!(result, Err(Error::Capacity(_))), "{result:?}");
    assert_eq!(close_code_of(&output(&mut server)), 1009);
}

#[test]
fn sessions_share_engines_and_idle_ones_keep_none() {
    let params = Params {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..Params::default()
    };
    let mut shared = Engines::default();
    let mut servers: Vec<Session> = (0..3)
        .map(|_| Session::server(Config::default()).with_deflate(params))
        .collect();
    for server in &mut servers {
        server.swap_engines(&mut shared);
        server.send_text("hello hello hello").unwrap();
        server
            .receive(&frame(true, RSV1, 0x1, &independent_deflate(b"hi")))
            .unwrap();
        server.swap_engines(&mut shared);
        assert!(server.engines.is_empty());
        assert_eq!(
            server.poll_event(),
            Some(Event::Message(Message::Text("hi".into())))
        );
    }
    // One compressor and one decompressor served all three.
    assert_eq!(shared.len(), 2);
    // A session left to itself builds its own, and drops them when told to shrink.
    let server = &mut servers[0];
    server.send_text("alone").unwrap();
    assert_eq!(server.engines.len(), 1);
    server.shrink_to_fit();
    assert!(server.engines.is_empty());
}

#[test]
fn the_handshake_agrees_and_the_sessions_follow() {
    let ours = Deflate::default().max_window_bits(10).mem_level(3);
    let config = Config::default().deflate(Some(ours));
    let offer = crate::proto::deflate::offer(&ours);
    let request = http::Request::get("/")
        .header("Host", "example.com")
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Extensions", offer)
        .body(())
        .unwrap();
    let response = crate::proto::handshake::accept(&request, None, config).unwrap();
    let params = crate::proto::deflate::check_response(response.headers(), &ours)
        .unwrap()
        .unwrap();
    let accepted = response
        .extensions()
        .get::<crate::proto::handshake::Accepted>()
        .unwrap();
    assert_eq!(accepted.deflate(), Some(params));
    let mut server = accepted.session();
    let mut client = Session::client(config, || [1, 2, 3, 4]).with_deflate(params);
    for i in 0..10 {
        let text = format!("message {i} {}", "padding ".repeat(i * 30));
        client.send_text(&text).unwrap();
        server.receive(&output(&mut client)).unwrap();
        assert_eq!(
            server.poll_event(),
            Some(Event::Message(Message::Text(text)))
        );
    }
    // Without deflate in the server's config, the offer is ignored.
    let response = crate::proto::handshake::accept(&request, None, Config::default()).unwrap();
    assert!(!response.headers().contains_key("sec-websocket-extensions"));
}

#[test]
fn a_client_capped_below_9_bits_sends_uncompressed() {
    let params = Params {
        client_max_window_bits: Some(8),
        ..Params::default()
    };
    let (mut client, mut server) = pair(params, Config::default());
    let text = "capped ".repeat(100);
    client.send_text(&text).unwrap();
    let wire = output(&mut client);
    // FIN and text, RSV1 clear: the whole text is there, masked.
    assert_eq!(wire[0], 0x81);
    assert_eq!(wire.len(), 2 + 2 + 4 + text.len());
    server.receive(&wire).unwrap();
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::Text(text.clone()))]
    );
    // The other way is still compressed.
    server.send_text(&text).unwrap();
    let wire = output(&mut server);
    assert_eq!(wire[0], 0xC1);
    client.receive(&wire).unwrap();
    assert_eq!(events(&mut client), [Event::Message(Message::Text(text))]);
}
