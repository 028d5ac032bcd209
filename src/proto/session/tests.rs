use proptest::prelude::*;

use super::*;

fn client() -> Session {
    let mut counter = 0u32;
    Session::client(Config::default(), move || {
        counter = counter.wrapping_mul(747796405).wrapping_add(2891336453);
        counter.to_le_bytes()
    })
}

fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_frame(
        &mut out,
        fin,
        OpCode::from(opcode),
        Some([0x37, 0xFA, 0x21, 0x3D]),
        payload,
    );
    out
}

fn events(session: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

fn output(session: &mut Session) -> Vec<u8> {
    let mut out = Vec::new();
    session.poll_transmit(&mut out);
    out
}

/// Feeds `wire` to a fresh server, returns its events, output and result.
fn serve(wire: &[u8], config: Config) -> (Vec<Event>, Vec<u8>, Result<(), Error>) {
    let mut server = Session::server(config);
    let result = server.receive(wire);
    (events(&mut server), output(&mut server), result)
}

fn close_code_of(out: &[u8]) -> u16 {
    assert_eq!(
        out[0], 0x88,
        "expected an unmasked close frame, got {out:02x?}"
    );
    u16::from_be_bytes([out[2], out[3]])
}

#[test]
fn text_and_binary_round_trip() {
    let mut c = client();
    let mut s = Session::server(Config::default());
    c.send_text("héllo").unwrap();
    c.send_binary(&[0, 1, 2]).unwrap();
    s.receive(&output(&mut c)).unwrap();
    assert_eq!(
        events(&mut s),
        [
            Event::Message(Message::Text("héllo".into())),
            Event::Message(Message::Binary(vec![0, 1, 2]))
        ]
    );
    s.send_text("back").unwrap();
    c.receive(&output(&mut s)).unwrap();
    assert_eq!(
        events(&mut c),
        [Event::Message(Message::Text("back".into()))]
    );
}

#[test]
fn every_split_point_gives_the_same_events() {
    let mut wire = masked(false, 0x1, "κό".as_bytes());
    wire.extend(masked(true, 0x9, b"ping"));
    wire.extend(masked(true, 0x0, "σμε".as_bytes()));
    wire.extend(masked(true, 0x2, &[7; 300]));
    let (expected, _, result) = serve(&wire, Config::default());
    result.unwrap();
    assert_eq!(expected.len(), 3);
    for a in 0..wire.len() {
        for b in a..wire.len() {
            let mut s = Session::server(Config::default());
            for part in [&wire[..a], &wire[a..b], &wire[b..]] {
                s.receive(part).unwrap();
            }
            assert_eq!(events(&mut s), expected, "split at {a}, {b}");
        }
    }
}

#[test]
fn ping_is_answered_with_pong_even_mid_message() {
    let mut wire = masked(false, 0x1, b"hel");
    wire.extend(masked(true, 0x9, b"abc"));
    wire.extend(masked(true, 0x0, b"lo"));
    let (events, out, result) = serve(&wire, Config::default());
    result.unwrap();
    assert_eq!(
        events,
        [
            Event::Ping(b"abc".to_vec()),
            Event::Message(Message::Text("hello".into()))
        ]
    );
    assert_eq!(out, [0x8A, 3, b'a', b'b', b'c']);
}

#[test]
fn violations_close_with_1002() {
    let mut too_long_ping = masked(true, 0x9, &[0; 125]);
    too_long_ping[1] = 0x80 | 126; // claim an extended length
    let cases: Vec<(&str, Vec<u8>, ProtocolError)> = vec![
        (
            "unmasked",
            vec![0x81, 0x00],
            ProtocolError::UnmaskedClientFrame,
        ),
        (
            "rsv1",
            {
                let mut f = masked(true, 1, b"x");
                f[0] |= 0x40;
                f
            },
            ProtocolError::ReservedBitsSet,
        ),
        (
            "opcode 3",
            masked(true, 0x3, b""),
            ProtocolError::ReservedOpcode(3),
        ),
        (
            "opcode 0xB",
            masked(true, 0xB, b""),
            ProtocolError::ReservedOpcode(0xB),
        ),
        (
            "fragmented ping",
            masked(false, 0x9, b""),
            ProtocolError::FragmentedControlFrame,
        ),
        (
            "ping 126",
            too_long_ping,
            ProtocolError::ControlFrameTooLong,
        ),
        (
            "lone continuation",
            masked(true, 0x0, b"x"),
            ProtocolError::UnexpectedContinuation,
        ),
        (
            "text inside fragmented",
            [masked(false, 0x1, b"a"), masked(true, 0x1, b"b")].concat(),
            ProtocolError::ExpectedContinuation,
        ),
        (
            "close 1 byte",
            masked(true, 0x8, &[3]),
            ProtocolError::InvalidClosePayload,
        ),
    ];
    for (name, wire, expected) in cases {
        let (_, out, result) = serve(&wire, Config::default());
        assert_eq!(result, Err(Error::Protocol(expected)), "{name}");
        assert_eq!(close_code_of(&out), 1002, "{name}");
    }
}

#[test]
fn invalid_close_codes_are_1002_and_valid_ones_echoed() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        let (_, out, result) = serve(&masked(true, 0x8, &code.to_be_bytes()), Config::default());
        assert_eq!(
            result,
            Err(Error::Protocol(ProtocolError::InvalidCloseCode(code)))
        );
        assert_eq!(close_code_of(&out), 1002, "code {code}");
    }
    for code in [1000u16, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        let (events, out, result) = serve(&masked(true, 0x8, &payload), Config::default());
        result.unwrap();
        assert_eq!(
            events,
            [Event::Close(CloseFrame {
                code: CloseCode(code),
                reason: "bye".into()
            })]
        );
        assert_eq!(close_code_of(&out), code);
        assert_eq!(out.len(), 4, "the reply echoes the code only");
    }
    let (events, out, _) = serve(&masked(true, 0x8, b""), Config::default());
    assert_eq!(
        events,
        [Event::Close(CloseFrame {
            code: CloseCode::NO_STATUS,
            reason: String::new()
        })]
    );
    assert_eq!(out, [0x88, 0x00]);
}

#[test]
fn invalid_utf8_is_1007_and_fails_fast() {
    let (_, out, result) = serve(
        &masked(true, 0x1, b"\xCE\xBA\xED\xA0\x80"),
        Config::default(),
    );
    assert_eq!(result, Err(Error::Protocol(ProtocolError::InvalidUtf8)));
    assert_eq!(close_code_of(&out), 1007);

    // The first fragment already holds an impossible sequence: fail before the message ends.
    let mut s = Session::server(Config::default());
    assert_eq!(
        s.receive(&masked(false, 0x1, b"ok\xF4\x90")),
        Err(Error::Protocol(ProtocolError::InvalidUtf8))
    );
    // ... even within one frame whose payload has not fully arrived.
    let frame = masked(true, 0x1, b"abc\xFFdefghijk");
    let mut s = Session::server(Config::default());
    assert!(s.receive(&frame[..10]).is_err());

    // A code point split across fragments is fine; one cut off at the end is not.
    let (events, _, result) = serve(
        &[masked(false, 0x1, b"\xE2\x82"), masked(true, 0x0, b"\xAC")].concat(),
        Config::default(),
    );
    result.unwrap();
    assert_eq!(events, [Event::Message(Message::Text("€".into()))]);
    let (_, out, result) = serve(&masked(true, 0x1, b"\xE2\x82"), Config::default());
    assert!(result.is_err());
    assert_eq!(close_code_of(&out), 1007);

    let mut bad_reason = 1000u16.to_be_bytes().to_vec();
    bad_reason.extend_from_slice(b"\xFF");
    let (_, out, _) = serve(&masked(true, 0x8, &bad_reason), Config::default());
    assert_eq!(close_code_of(&out), 1007);
}

#[test]
fn limits_close_with_1009_before_buffering() {
    let config = Config::default().max_frame_size(10).max_message_size(15);
    // Only the header of an 11-byte frame: rejected before any payload arrives.
    let header = &masked(true, 0x2, &[0; 11])[..6];
    let (_, out, result) = serve(header, config);
    assert!(matches!(
        result,
        Err(Error::Capacity(CapacityError {
            kind: CapacityKind::Frame,
            size: 11,
            ..
        }))
    ));
    assert_eq!(close_code_of(&out), 1009);

    let wire = [masked(false, 0x2, &[0; 10]), masked(true, 0x0, &[0; 6])].concat();
    let (_, out, result) = serve(&wire, config);
    assert!(matches!(
        result,
        Err(Error::Capacity(CapacityError {
            kind: CapacityKind::Message,
            size: 16,
            ..
        }))
    ));
    assert_eq!(close_code_of(&out), 1009);

    let (events, _, result) = serve(
        &[masked(false, 0x2, &[0; 10]), masked(true, 0x0, &[0; 5])].concat(),
        config,
    );
    result.unwrap();
    assert_eq!(events, [Event::Message(Message::Binary(vec![0; 15]))]);
}

#[test]
fn announced_payload_is_reserved_only_up_to_a_cap() {
    // A header announcing 16 MiB within the limits, and one byte of payload.
    let wire = masked(true, 0x2, &vec![7; 16 << 20]);
    let mut server = Session::server(Config::default());
    server.receive(&wire[..15]).unwrap();
    assert!(server.message.capacity() <= RESERVE_AHEAD);

    // A frame that fits under the cap arrives in pieces without reallocating.
    let payload = vec![7; RESERVE_AHEAD];
    let wire = masked(true, 0x2, &payload);
    let mut server = Session::server(Config::default());
    server.receive(&wire[..20]).unwrap();
    let buffer = server.message.as_ptr();
    for chunk in wire[20..].chunks(1000) {
        assert_eq!(server.message.as_ptr(), buffer);
        server.receive(chunk).unwrap();
    }
    assert_eq!(
        events(&mut server),
        [Event::Message(Message::Binary(payload))]
    );
}

#[test]
fn nothing_is_sent_after_close() {
    let mut s = Session::server(Config::default());
    s.close(1000, "done").unwrap();
    assert!(s.is_closed() && !s.is_finished());
    assert_eq!(s.send_text("late"), Err(ClosedError));
    assert_eq!(s.close(1000, ""), Err(ClosedError));
    let out = output(&mut s);
    assert_eq!(close_code_of(&out), 1000);
    assert_eq!(&out[4..], b"done");
    // A ping arriving after our close is not answered; the peer's close finishes.
    s.receive(
        &[
            masked(true, 0x9, b"p"),
            masked(true, 0x8, &1000u16.to_be_bytes()),
        ]
        .concat(),
    )
    .unwrap();
    assert!(!s.has_output());
    assert!(s.is_finished());
    // Input after the peer's close is ignored.
    s.receive(&masked(true, 0x1, b"ignored")).unwrap();
    assert_eq!(events(&mut s).len(), 2);
}

#[test]
fn client_rejects_masked_frames() {
    let mut c = client();
    assert_eq!(
        c.receive(&masked(true, 0x1, b"x")),
        Err(Error::Protocol(ProtocolError::MaskedServerFrame))
    );
    let out = output(&mut c);
    assert_eq!(out[0], 0x88);
    assert_ne!(out[1] & 0x80, 0, "client close frames are masked");
}

#[test]
fn close_reason_is_truncated_and_bad_code_replaced() {
    let mut s = Session::server(Config::default());
    s.close(1005, &"é".repeat(100)).unwrap();
    let out = output(&mut s);
    assert_eq!(close_code_of(&out), 1000);
    assert!(out.len() - 2 <= 125);
    assert!(std::str::from_utf8(&out[4..]).is_ok());
}

proptest! {
    #[test]
    fn any_message_survives_any_split(
        messages in proptest::collection::vec(
            prop_oneof![
                ".{0,40}".prop_map(Message::Text),
                proptest::collection::vec(any::<u8>(), 0..300).prop_map(Message::Binary),
            ],
            1..6,
        ),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        client_to_server in any::<bool>(),
    ) {
        let (mut sender, mut receiver) = if client_to_server {
            (client(), Session::server(Config::default()))
        } else {
            (Session::server(Config::default()), client())
        };
        for m in &messages {
            sender.send_message(m).unwrap();
        }
        let wire = output(&mut sender);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.sort_unstable();
        let mut last = 0;
        for p in points.into_iter().chain([wire.len()]) {
            receiver.receive(&wire[last..p]).unwrap();
            last = p;
        }
        let received: Vec<Message> = events(&mut receiver)
            .into_iter()
            .map(|e| match e { Event::Message(m) => m, other => panic!("unexpected {other:?}") })
            .collect();
        prop_assert_eq!(received, messages);
    }
}

#[test]
fn next_event_reads_one_event_at_a_time() {
    let mut wire = masked(true, 0x1, b"one");
    wire.extend(masked(true, 0x9, b"ping"));
    wire.extend(masked(false, 0x2, b"fr"));
    wire.extend(masked(true, 0x0, b"ag"));
    wire.extend(masked(true, 0x8, &1000u16.to_be_bytes()));
    wire.extend(masked(true, 0x1, b"ignored after close"));
    let mut server = Session::server(Config::default());
    let mut rest = &wire[..];
    let mut order = Vec::new();
    while let Some(event) = server.next_event(&mut rest) {
        if let Event::Message(message) = &event {
            // An answer to each message goes out before the next automatic reply.
            server.send_message(message).unwrap();
        }
        order.push(event);
    }
    assert_eq!(
        order,
        [
            Event::Message(Message::Text("one".into())),
            Event::Ping(b"ping".to_vec()),
            Event::Message(Message::Binary(b"frag".to_vec())),
            Event::Close(CloseFrame {
                code: CloseCode::NORMAL,
                reason: String::new(),
            }),
        ]
    );
    assert_eq!(
        rest,
        masked(true, 0x1, b"ignored after close"),
        "nothing read past the close"
    );
    let mut expected = Vec::new();
    frame::encode_frame(&mut expected, true, OpCode::Data(Data::Text), None, b"one");
    frame::encode_frame(
        &mut expected,
        true,
        OpCode::Control(Control::Pong),
        None,
        b"ping",
    );
    frame::encode_frame(
        &mut expected,
        true,
        OpCode::Data(Data::Binary),
        None,
        b"frag",
    );
    frame::encode_frame(
        &mut expected,
        true,
        OpCode::Control(Control::Close),
        None,
        &1000u16.to_be_bytes(),
    );
    assert_eq!(output(&mut server), expected);

    // A violation stops there too, after the events before it.
    let mut wire = masked(true, 0x1, b"before");
    wire.extend(masked(true, 0x3, b""));
    let mut server = Session::server(Config::default());
    let mut rest = &wire[..];
    assert_eq!(
        server.next_event(&mut rest),
        Some(Event::Message(Message::Text("before".into())))
    );
    server.send_text("reply").unwrap();
    assert_eq!(server.next_event(&mut rest), None);
    assert!(server.error().is_some());
    let out = output(&mut server);
    assert_eq!(
        close_code_of(&out[2 + 5..]),
        1002,
        "the reply goes out before the close"
    );
}

#[test]
fn a_large_empty_buffer_given_to_poll_transmit_stays_with_the_caller() {
    let mut server = Session::server(Config::default());
    server
        .receive(&masked(true, 0x9, b"are you there"))
        .expect("a ping");
    assert!(matches!(events(&mut server)[..], [Event::Ping(_)]));
    let mut spare = Vec::with_capacity(64 * 1024);
    assert!(server.poll_transmit(&mut spare));
    assert_eq!(spare[0], 0x8A, "the pong");
    assert!(
        spare.capacity() >= 64 * 1024,
        "the caller's buffer was kept"
    );
    // The session keeps only its own small buffer, and frees it on request.
    assert!(server.out.capacity() < 1024);
    server.shrink_to_fit();
    assert_eq!(server.out.capacity(), 0);
    assert_eq!(server.events.capacity(), 0);
}

#[test]
fn an_unallocated_buffer_takes_the_output_without_a_copy() {
    let mut server = Session::server(Config::default());
    server.receive(&masked(true, 0x9, b"ping")).expect("a ping");
    let before = server.out.as_ptr();
    let mut out = Vec::new();
    assert!(server.poll_transmit(&mut out));
    assert_eq!(out.as_ptr(), before, "swapped, not copied");
}
