//! permessage-deflate in the component: negotiation as the library does it, compressed
//! messages to and from native sessions, a zip bomb against the instance's memory, and the
//! engines its sessions without context takeover share.

use host_tests::{
    DeflateOptions, DeflateParams, Event, ExtensionError, Guest, Incoming, Limits, Message, Role,
    Session,
};
use wsbox::Config;
use wsbox::client::OsMasks;
use wsbox::deflate::{self, Deflate, Params};
use wsbox::session::{self as native, Session as NativeSession};

use crate::frames::{DEFAULT_LIMITS, feed, messages};
use crate::handshake::{header, header_value, native, upgrade_request};

fn options(ours: &Deflate) -> DeflateOptions {
    DeflateOptions {
        level: ours.get_level(),
        mem_level: ours.get_mem_level(),
        max_window_bits: ours.get_max_window_bits(),
        no_context_takeover: ours.get_no_context_takeover(),
    }
}

fn from_wit(params: DeflateParams) -> Params {
    Params {
        server_no_context_takeover: params.server_no_context_takeover,
        client_no_context_takeover: params.client_no_context_takeover,
        server_max_window_bits: params.server_max_window_bits,
        client_max_window_bits: params.client_max_window_bits,
    }
}

fn to_wit(params: Params) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: params.server_no_context_takeover,
        client_no_context_takeover: params.client_no_context_takeover,
        server_max_window_bits: params.server_max_window_bits,
        client_max_window_bits: params.client_max_window_bits,
    }
}

/// A JSON-like text, similar to its neighbours as chat or telemetry messages are.
fn json(i: usize) -> String {
    format!(
        r#"{{"seq":{i},"user":"user-{}","room":"lobby","text":"message number {i}, nothing to see here"}}"#,
        i % 13
    )
}

#[test]
fn server_negotiation_matches_the_library() {
    let mut guest = Guest::new().unwrap();
    let ours = Deflate::default().max_window_bits(11).mem_level(4);
    let offers = [
        None,
        Some("permessage-deflate"),
        Some("permessage-deflate; client_max_window_bits"),
        // An 8-bit server window is declined; the fallback after it is taken.
        Some(
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_no_context_takeover",
        ),
        Some("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10"),
        Some("permessage-deflate; x-unknown"),
    ];
    for offer in offers {
        let mut req = upgrade_request();
        req.headers
            .extend(offer.map(|o| header("Sec-WebSocket-Extensions", o)));
        let expected = deflate::negotiate(native(&req).headers(), &ours);
        let accepted = guest
            .start_with_deflate(&req, None, options(&ours))
            .unwrap()
            .unwrap();
        assert_eq!(accepted.response.status, 101);
        assert_eq!(accepted.deflate.map(from_wit), expected, "{offer:?}");
        let announced = header_value(&accepted.response, "sec-websocket-extensions");
        let wanted = expected.map(|p| p.to_header());
        assert_eq!(announced, wanted.as_deref().map(str::as_bytes), "{offer:?}");
    }
}

#[test]
fn client_offer_and_check_match_the_library() {
    let mut guest = Guest::new().unwrap();
    for ours in [
        Deflate::default(),
        Deflate::default()
            .max_window_bits(10)
            .no_context_takeover(true),
    ] {
        let offer = guest.deflate_offer(options(&ours)).unwrap();
        assert_eq!(offer, deflate::offer(&ours));
        for answer in [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate, permessage-deflate",
            "x-webkit-deflate-frame",
        ] {
            let headers = vec![header("Sec-WebSocket-Extensions", answer)];
            let mut map = http::HeaderMap::new();
            map.insert("sec-websocket-extensions", answer.parse().unwrap());
            let expected = deflate::check_response(&map, &ours);
            let got = guest
                .check_deflate_response(&headers, options(&ours))
                .unwrap();
            match (got, expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got.map(from_wit), expected, "{answer}"),
                (Err(ExtensionError::UnsupportedExtension), Err(e)) => {
                    assert_eq!(e, deflate::ExtensionError::UnsupportedExtension, "{answer}");
                }
                (Err(ExtensionError::InvalidParameter), Err(e)) => {
                    assert_eq!(e, deflate::ExtensionError::InvalidParameter, "{answer}");
                }
                (got, expected) => panic!("{answer}: {got:?} but the library says {expected:?}"),
            }
        }
    }
    // A value `http` cannot hold is not an answer to accept.
    let bad = vec![(
        "sec-websocket-extensions".to_owned(),
        b"permessage-deflate\n".to_vec(),
    )];
    let got = guest.check_deflate_response(&bad, options(&Deflate::default()));
    assert_eq!(got.unwrap(), Err(ExtensionError::InvalidParameter));
}

/// A native client and a component server that agreed on `params`; messages both ways.
fn round_trip(ours: &Deflate, params: Params, count: usize) -> (usize, usize, usize) {
    let mut guest = Guest::new().unwrap();
    let server = guest
        .session_with_deflate(Role::Server, DEFAULT_LIMITS, to_wit(params), options(ours))
        .unwrap();
    let config = Config::default().deflate(Some(*ours));
    let mut client = NativeSession::client(config, OsMasks::new()).with_deflate(params);
    let (mut up, mut down, mut payload) = (0, 0, 0);
    for i in 0..count {
        let text = json(i);
        payload += text.len();
        client.send_text(&text).unwrap();
        let mut wire = Vec::new();
        client.poll_transmit(&mut wire);
        up += wire.len();
        let got = feed(&mut guest, server, &[&wire]);
        assert_eq!(got.failure, None);
        assert_eq!(messages(&got), [Message::Text(text.clone())]);
        let wire = guest
            .send(server, &Message::Text(text.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(wire[0] & 0x40, 0x40, "RSV1: compressed");
        down += wire.len();
        client.receive(&wire).unwrap();
        assert_eq!(
            client.poll_event(),
            Some(native::Event::Message(wsbox::Message::Text(text)))
        );
    }
    (payload, up, down)
}

#[test]
fn compressed_messages_to_and_from_native_sessions() {
    let small = Deflate::default().max_window_bits(11).mem_level(4);
    let takeover = Params {
        server_max_window_bits: Some(11),
        client_max_window_bits: Some(11),
        ..Params::default()
    };
    let fresh = Params {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..takeover
    };
    let (payload, up, down) = round_trip(&small, takeover, 200);
    let (_, fresh_up, fresh_down) = round_trip(&small, fresh, 200);
    assert!(fresh_up < payload && fresh_down < payload);
    assert!(up * 2 < fresh_up, "{up} with takeover, {fresh_up} without");
    assert!(
        down * 2 < fresh_down,
        "{down} with takeover, {fresh_down} without"
    );

    // Control frames are never compressed; RSV1 on one fails the connection.
    let mut guest = Guest::new().unwrap();
    let server = guest
        .session_with_deflate(
            Role::Server,
            DEFAULT_LIMITS,
            to_wit(takeover),
            options(&small),
        )
        .unwrap();
    let ping = [0xC9, 0x82, 0, 0, 0, 0, b'h', b'i'];
    let got = feed(&mut guest, server, &[&ping]);
    assert_eq!(got.failure.map(|f| f.code), Some(1002));
    assert_eq!(
        &got.transmit[..4],
        [0x88, 2, 0x03, 0xEA],
        "close 1002, no RSV1"
    );
}

/// A fresh component server with a 1 MiB message limit fed one message of `len` zeros,
/// compressed: what it reported, and how much its linear memory grew.
fn receive_zeros(len: usize) -> (Incoming, usize, usize) {
    const LIMIT: u64 = 1 << 20;
    let limits = Limits {
        max_frame_size: LIMIT,
        max_message_size: LIMIT,
    };
    let ours = Deflate::default();
    let mut guest = Guest::new().unwrap();
    let server = guest
        .session_with_deflate(
            Role::Server,
            limits,
            to_wit(Params::default()),
            options(&ours),
        )
        .unwrap();
    let config = Config::default().deflate(Some(ours));
    let mut client = NativeSession::client(config, OsMasks::new()).with_deflate(Params::default());
    client.send_binary(&vec![0; len]).unwrap();
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    let before = guest.peak_memory();
    let chunks: Vec<&[u8]> = wire.chunks(16 << 10).collect();
    let got = feed(&mut guest, server, &chunks);
    (got, wire.len(), guest.peak_memory() - before)
}

#[test]
fn zip_bomb_ends_with_1009_using_no_more_memory_than_a_message_at_the_limit() {
    let (legit, _, legit_grown) = receive_zeros(1 << 20);
    assert_eq!(legit.failure, None);
    assert_eq!(legit.events.len(), 1);
    let (bomb, wire, bomb_grown) = receive_zeros(64 << 20);
    assert!(wire < 128 << 10, "{wire} bytes on the wire");
    assert!(bomb.events.is_empty());
    assert_eq!(bomb.failure.map(|f| f.code), Some(1009));
    eprintln!(
        "linear memory grew {legit_grown} bytes for 1 MiB, {bomb_grown} for 64 MiB in {wire} bytes"
    );
    assert!(
        bomb_grown <= legit_grown + (256 << 10),
        "{bomb_grown} vs {legit_grown} bytes"
    );
}

/// How much 100 server sessions that each received and sent one compressed message grew
/// the instance's linear memory.
fn memory_of_100_sessions(no_context_takeover: bool) -> usize {
    let ours = Deflate::default().no_context_takeover(no_context_takeover);
    let params = Params {
        server_no_context_takeover: no_context_takeover,
        client_no_context_takeover: no_context_takeover,
        ..Params::default()
    };
    let text: String = (0..20).map(json).collect();
    let config = Config::default().deflate(Some(ours));
    let mut client = NativeSession::client(config, OsMasks::new()).with_deflate(params);
    client.send_text(&text).unwrap();
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);

    let mut guest = Guest::new().unwrap();
    let before = guest.peak_memory();
    let sessions: Vec<Session> = (0..100)
        .map(|_| {
            let session = guest
                .session_with_deflate(Role::Server, DEFAULT_LIMITS, to_wit(params), options(&ours))
                .unwrap();
            // The same first message of a stream suits every fresh session.
            let got = feed(&mut guest, session, &[&wire]);
            assert_eq!(got.events, [Event::Message(Message::Text(text.clone()))]);
            let sent = guest
                .send(session, &Message::Text(text.clone()))
                .unwrap()
                .unwrap();
            assert!(sent.len() < text.len() / 2);
            session
        })
        .collect();
    assert_eq!(sessions.len(), 100);
    guest.peak_memory() - before
}

#[test]
fn sessions_without_context_takeover_share_the_instances_engines() {
    let shared = memory_of_100_sessions(true);
    let takeover = memory_of_100_sessions(false);
    eprintln!("100 sessions: {shared} bytes without takeover, {takeover} with");
    assert!(shared < 2 << 20, "{shared} bytes");
    assert!(
        shared * 10 < takeover,
        "{shared} bytes shared, {takeover} with takeover"
    );
}
