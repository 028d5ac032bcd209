//! `frames.session` in the component: component ↔ component, native ↔ component, split input,
//! violations and the close handshake.

use host_tests::{CloseFrame, Event, Guest, Incoming, Limits, Message, Role, SendError, Session};
use wsbox::Config;
use wsbox::client::OsMasks;
use wsbox::session::{self as native, Session as NativeSession};

pub(crate) const DEFAULT_LIMITS: Limits = Limits {
    max_frame_size: 16 << 20,
    max_message_size: 64 << 20,
};

/// Deterministic chunk sizes (xorshift), so a failure can be replayed.
struct Splitter(u64);

impl Splitter {
    fn chunks<'a>(&mut self, mut data: &'a [u8], max: usize) -> Vec<&'a [u8]> {
        let mut chunks = Vec::new();
        while !data.is_empty() {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let n = (self.0 as usize % max + 1).min(data.len());
            chunks.push(&data[..n]);
            data = &data[n..];
        }
        chunks
    }
}

/// Feeds `chunks` to a component session; returns every event and every transmitted byte,
/// and the failure if there was one.
pub(crate) fn feed(guest: &mut Guest, session: Session, chunks: &[&[u8]]) -> Incoming {
    let mut all = Incoming {
        events: Vec::new(),
        transmit: Vec::new(),
        failure: None,
    };
    for chunk in chunks {
        let incoming = guest.receive(session, chunk).expect("no trap");
        all.events.extend(incoming.events);
        all.transmit.extend(incoming.transmit);
        if incoming.failure.is_some() {
            all.failure = incoming.failure;
        }
    }
    all
}

pub(crate) fn messages(incoming: &Incoming) -> Vec<Message> {
    incoming
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn sample_messages() -> Vec<Message> {
    let mut out = vec![
        Message::Text(String::new()),
        Message::Text("hello".into()),
        Message::Text("héllo wörld ✓ 𝄞".repeat(40)),
        Message::Binary(Vec::new()),
    ];
    for len in [1, 125, 126, 127, 65_535, 65_536, 200_000] {
        out.push(Message::Binary(
            (0..len).map(|i| (i * 31 % 251) as u8).collect(),
        ));
    }
    out
}

fn to_native(message: &Message) -> wsbox::Message {
    match message {
        Message::Text(t) => wsbox::Message::Text(t.clone()),
        Message::Binary(b) => wsbox::Message::Binary(b.clone()),
    }
}

fn native_events(session: &mut NativeSession) -> Vec<native::Event> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

#[test]
fn component_client_to_component_server_any_split() {
    let mut client_guest = Guest::new().unwrap();
    let mut server_guest = Guest::new().unwrap();
    let client = client_guest.session(Role::Client, DEFAULT_LIMITS).unwrap();
    let server = server_guest.session(Role::Server, DEFAULT_LIMITS).unwrap();
    let sent = sample_messages();
    let mut wire = Vec::new();
    for message in &sent {
        wire.extend(client_guest.send(client, message).unwrap().unwrap());
    }
    // Every split of the small messages at every byte, then random splits of everything.
    let small: usize = wire.len().min(200);
    for at in 0..=small {
        let mut guest = Guest::new().unwrap();
        let server = guest.session(Role::Server, DEFAULT_LIMITS).unwrap();
        let got = feed(&mut guest, server, &[&wire[..at], &wire[at..small]]);
        assert!(got.failure.is_none(), "split at {at}: {:?}", got.failure);
    }
    let mut splitter = Splitter(0x9E37_79B9_7F4A_7C15);
    let chunks = splitter.chunks(&wire, 3000);
    assert!(chunks.len() > 100);
    let got = feed(&mut server_guest, server, &chunks);
    assert_eq!(got.failure, None);
    assert!(got.transmit.is_empty());
    assert_eq!(messages(&got), sent);

    // And back: the server's unmasked frames, split one byte at a time.
    let mut wire = Vec::new();
    for message in &sent[..4] {
        wire.extend(server_guest.send(server, message).unwrap().unwrap());
    }
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    let got = feed(&mut client_guest, client, &bytes);
    assert_eq!(got.failure, None);
    assert_eq!(messages(&got), sent[..4]);
}

#[test]
fn native_client_to_component_server_and_back() {
    let mut guest = Guest::new().unwrap();
    let server = guest.session(Role::Server, DEFAULT_LIMITS).unwrap();
    let mut client = NativeSession::client(Config::default(), OsMasks::new());
    let sent = sample_messages();
    for message in &sent {
        client.send_message(&to_native(message)).unwrap();
    }
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    let chunks = Splitter(7).chunks(&wire, 1500);
    let got = feed(&mut guest, server, &chunks);
    assert_eq!(got.failure, None);
    assert_eq!(messages(&got), sent);

    // The component's frames, decoded by the native client.
    let mut wire = Vec::new();
    for message in &sent {
        wire.extend(guest.send(server, message).unwrap().unwrap());
    }
    for chunk in Splitter(11).chunks(&wire, 700) {
        client.receive(chunk).unwrap();
    }
    let expected: Vec<_> = sent
        .iter()
        .map(|m| native::Event::Message(to_native(m)))
        .collect();
    assert_eq!(native_events(&mut client), expected);
}

#[test]
fn component_client_to_native_server() {
    let mut guest = Guest::new().unwrap();
    let client = guest.session(Role::Client, DEFAULT_LIMITS).unwrap();
    let mut server = NativeSession::server(Config::default());
    let sent = sample_messages();
    let mut wire = Vec::new();
    for message in &sent {
        wire.extend(guest.send(client, message).unwrap().unwrap());
    }
    for chunk in Splitter(5).chunks(&wire, 4096) {
        server.receive(chunk).unwrap();
    }
    let expected: Vec<_> = sent
        .iter()
        .map(|m| native::Event::Message(to_native(m)))
        .collect();
    assert_eq!(native_events(&mut server), expected);

    // Masks come from wasi:random: the same message is masked differently each time.
    let hello = Message::Text("the same sixteen".into());
    let first = guest.send(client, &hello).unwrap().unwrap();
    let second = guest.send(client, &hello).unwrap().unwrap();
    assert_eq!(first[1] & 0x80, 0x80, "client frames are masked");
    assert_ne!(first[2..6], second[2..6], "fresh masking keys");
}

#[test]
fn ping_is_answered_with_pong() {
    let mut guest = Guest::new().unwrap();
    let server = guest.session(Role::Server, DEFAULT_LIMITS).unwrap();
    let client = guest.session(Role::Client, DEFAULT_LIMITS).unwrap();
    let ping = guest.ping(client, b"are you there?").unwrap().unwrap();
    let got = feed(&mut guest, server, &[&ping]);
    assert_eq!(got.events, [Event::Ping(b"are you there?".to_vec())]);
    assert!(!got.transmit.is_empty(), "the pong is in transmit");
    let back = feed(&mut guest, client, &[&got.transmit]);
    assert_eq!(back.events, [Event::Pong(b"are you there?".to_vec())]);
    assert!(back.transmit.is_empty());

    // A ping payload is cut to the 125 bytes a control frame may carry.
    let long = guest.ping(client, &[7; 300]).unwrap().unwrap();
    let got = feed(&mut guest, server, &[&long]);
    assert_eq!(got.events, [Event::Ping(vec![7; 125])]);
}

#[test]
fn close_handshake() {
    let mut guest = Guest::new().unwrap();
    let server = guest.session(Role::Server, DEFAULT_LIMITS).unwrap();
    let client = guest.session(Role::Client, DEFAULT_LIMITS).unwrap();
    assert!(!guest.is_closed(client).unwrap());
    let close = guest.close(client, 4000, "bye").unwrap().unwrap();
    assert!(guest.is_closed(client).unwrap());
    assert!(!guest.is_finished(client).unwrap());
    assert_eq!(
        guest.send(client, &Message::Text("late".into())).unwrap(),
        Err(SendError::Closed)
    );
    assert_eq!(guest.ping(client, b"").unwrap(), Err(SendError::Closed));
    assert_eq!(
        guest.close(client, 1000, "").unwrap(),
        Err(SendError::Closed)
    );

    let bye = CloseFrame {
        code: 4000,
        reason: "bye".into(),
    };
    let got = feed(&mut guest, server, &[&close]);
    assert_eq!(got.events, [Event::Close(bye.clone())]);
    assert_eq!(got.failure, None);
    assert!(guest.is_finished(server).unwrap());
    assert_eq!(guest.close_received(server).unwrap(), Some(bye));

    // The echoed close carries the code (RFC 6455 §5.5.1) and finishes the client.
    let back = feed(&mut guest, client, &[&got.transmit]);
    assert_eq!(back.events.len(), 1);
    let Event::Close(echo) = &back.events[0] else {
        panic!("{:?}", back.events);
    };
    assert_eq!(echo.code, 4000);
    assert!(guest.is_finished(client).unwrap());
    guest.drop_session(server).unwrap();
    guest.drop_session(client).unwrap();
}

#[test]
fn close_code_and_reason_are_sanitised() {
    let mut guest = Guest::new().unwrap();
    let client = guest.session(Role::Client, DEFAULT_LIMITS).unwrap();
    let mut server = NativeSession::server(Config::default());
    // 1005 may not be sent on the wire; the reason must fit in 123 bytes.
    let close = guest
        .close(client, 1005, &"é".repeat(100))
        .unwrap()
        .unwrap();
    server.receive(&close).unwrap();
    let Some(native::Event::Close(frame)) = server.poll_event() else {
        panic!("no close event");
    };
    assert_eq!(frame.code.0, 1000);
    assert_eq!(frame.reason, "é".repeat(61));
}

/// A native client's frame for `payload`, masked, with `opcode` and FIN as given.
fn raw_frame(opcode: u8, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=65_535 => {
            out.push(mask_bit | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend(key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend(payload),
    }
    out
}

/// The close code in a close frame the component sent (unmasked: server role).
fn close_code(frame: &[u8]) -> u16 {
    assert_eq!(frame[0], 0x88, "a final close frame: {frame:?}");
    u16::from_be_bytes([frame[2], frame[3]])
}

#[test]
fn violations_fail_with_the_right_code() {
    const KEY: Option<[u8; 4]> = Some([0x12, 0x34, 0x56, 0x78]);
    let small = Limits {
        max_frame_size: 1000,
        max_message_size: 1500,
    };
    let cases: Vec<(&str, Limits, Vec<u8>, u16)> = vec![
        (
            "unmasked client frame",
            DEFAULT_LIMITS,
            raw_frame(0x1, true, b"hi", None),
            1002,
        ),
        (
            "reserved opcode",
            DEFAULT_LIMITS,
            raw_frame(0x3, true, b"", KEY),
            1002,
        ),
        (
            "fragmented ping",
            DEFAULT_LIMITS,
            raw_frame(0x9, false, b"", KEY),
            1002,
        ),
        (
            "long ping",
            DEFAULT_LIMITS,
            raw_frame(0x9, true, &[0; 126], KEY),
            1002,
        ),
        (
            "lone continuation",
            DEFAULT_LIMITS,
            raw_frame(0x0, true, b"x", KEY),
            1002,
        ),
        (
            "bad close code",
            DEFAULT_LIMITS,
            raw_frame(0x8, true, &1005u16.to_be_bytes(), KEY),
            1002,
        ),
        (
            "invalid utf-8",
            DEFAULT_LIMITS,
            raw_frame(0x1, true, &[0xce, 0xba, 0xff], KEY),
            1007,
        ),
        (
            "frame too big",
            small,
            raw_frame(0x2, true, &[0; 1001], KEY),
            1009,
        ),
        (
            "message too big",
            small,
            [
                raw_frame(0x2, false, &[0; 1000], KEY),
                raw_frame(0x0, true, &[0; 501], KEY),
            ]
            .concat(),
            1009,
        ),
    ];
    for (name, limits, wire, code) in cases {
        let mut guest = Guest::new().unwrap();
        let server = guest.session(Role::Server, limits).unwrap();
        // Split at every byte: a violation is found however the bytes arrive.
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        let got = feed(&mut guest, server, &bytes);
        let failure = got.failure.unwrap_or_else(|| panic!("{name}: no failure"));
        assert_eq!(failure.code, code, "{name}: {}", failure.reason);
        assert!(!failure.reason.is_empty(), "{name}");
        assert_eq!(close_code(&got.transmit), code, "{name}");
        assert!(guest.is_finished(server).unwrap(), "{name}");
        // Once failed, input is ignored.
        let after = guest
            .receive(server, &raw_frame(0x1, true, b"ignored", KEY))
            .unwrap();
        assert!(
            after.events.is_empty() && after.transmit.is_empty(),
            "{name}"
        );
        assert_eq!(
            after.failure,
            Some(failure),
            "{name}: the same failure again"
        );
    }

    // Events before the violation are kept.
    let mut guest = Guest::new().unwrap();
    let server = guest.session(Role::Server, DEFAULT_LIMITS).unwrap();
    let wire = [
        raw_frame(0x1, true, b"ok", KEY),
        raw_frame(0x1, true, b"no", None),
    ]
    .concat();
    let got = guest.receive(server, &wire).unwrap();
    assert_eq!(got.events, [Event::Message(Message::Text("ok".into()))]);
    assert_eq!(got.failure.map(|f| f.code), Some(1002));

    // A client must refuse a masked frame from the server.
    let client = guest.session(Role::Client, DEFAULT_LIMITS).unwrap();
    let got = guest
        .receive(client, &raw_frame(0x1, true, b"masked", KEY))
        .unwrap();
    assert_eq!(got.failure.map(|f| f.code), Some(1002));
}
