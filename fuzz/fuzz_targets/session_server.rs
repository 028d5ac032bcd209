//! Arbitrary bytes into a server `Session` with small limits, split into chunks and
//! interleaved with our own sends, as a script taken from the start of the input.
//!
//! Input layout: `[limits] [n] [n script bytes] [wire bytes...]`. Each script byte feeds the
//! next `byte >> 2` wire bytes (0–63, so empty chunks happen too) and then performs action
//! `byte & 3`: nothing, `send_binary`, `send_ping` or `close`. Whatever wire bytes the script
//! leaves go in one last chunk.
//!
//! Invariants checked:
//! - nothing panics;
//! - once `receive` fails it keeps failing with the same error, and no event or output
//!   appears after that;
//! - the events and the error do not depend on how the bytes were split (compared with a
//!   session that gets everything in one call);
//! - every event respects the limits and the RFC (sizes, close codes, nothing after Close);
//! - the output is a sequence of well-formed unmasked frames in which no frame follows a
//!   close frame, so no data frame is ever sent after close; a failure's close frame
//!   carries the failure's code.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsbox::frame::{Control, Data, FrameHeader, OpCode};
use wsbox::session::{Event, Session};
use wsbox::{CloseCode, ClosedError, Config, Error, Message};

const FRAME_LIMITS: [usize; 8] = [0, 1, 2, 125, 126, 200, 1024, 65536];
const MESSAGE_EXTRA: [usize; 4] = [0, 1, 300, 4096];

fuzz_target!(|input: &[u8]| {
    let [limits, n, rest @ ..] = input else {
        return;
    };
    let script_len = usize::from(n & 0x0F).min(rest.len());
    let (script, wire) = rest.split_at(script_len);

    let max_frame = FRAME_LIMITS[usize::from(limits & 7)];
    let max_message = max_frame + MESSAGE_EXTRA[usize::from((limits >> 3) & 3)];
    let config = Config::default()
        .max_frame_size(max_frame)
        .max_message_size(max_message)
        .accept_unmasked_frames(limits & 0x20 != 0);

    let mut session = Session::server(config);
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut failed: Option<Error> = None;
    let mut sent_binary = 0;
    let mut sent_pings = 0;
    let mut pos = 0;
    let mut step = |session: &mut Session, chunk: &[u8], action: u8| {
        let failed_before = failed;
        let events_before = events.len();
        let out_before = out.len();
        match (failed, session.receive(chunk)) {
            (Some(error), result) => assert_eq!(result, Err(error), "error is sticky"),
            (None, Err(error)) => failed = Some(error),
            (None, Ok(())) => {}
        }
        while let Some(event) = session.poll_event() {
            check_event(&event, &config);
            events.push(event);
        }
        let closed = session.is_closed();
        let sent = match action {
            1 => session.send_binary(b"data").map(|()| sent_binary += 1),
            2 => session.send_ping(b"p").map(|()| sent_pings += 1),
            3 => session.close(CloseCode::GOING_AWAY, "bye"),
            _ => Ok(()),
        };
        if action != 0 {
            assert_eq!(sent == Err(ClosedError), closed);
        }
        session.poll_transmit(&mut out);
        if failed_before.is_some() {
            assert_eq!(events.len(), events_before, "an event after an error");
            assert_eq!(out.len(), out_before, "output after an error");
        }
        if failed.is_some() {
            assert!(session.is_closed() && session.is_finished());
        }
    };
    for &byte in script {
        let end = (pos + usize::from(byte >> 2)).min(wire.len());
        step(&mut session, &wire[pos..end], byte & 3);
        pos = end;
    }
    step(&mut session, &wire[pos..], 0);

    let mut one_shot = Session::server(config);
    let one_shot_result = one_shot.receive(wire);
    let one_shot_events: Vec<Event> = std::iter::from_fn(|| one_shot.poll_event()).collect();
    assert_eq!(events, one_shot_events, "events depend on the split");
    assert_eq!(
        failed,
        one_shot_result.err(),
        "the error depends on the split"
    );

    check_close_is_last(&events, &session);
    check_output(
        &out,
        failed,
        &events,
        sent_binary,
        sent_pings,
        session.is_closed(),
    );
});

fn check_event(event: &Event, config: &Config) {
    match event {
        Event::Message(message) => {
            assert!(message.as_bytes().len() <= config.get_max_message_size());
            if let Message::Text(text) = message {
                assert!(std::str::from_utf8(text.as_bytes()).is_ok());
            }
        }
        Event::Ping(payload) | Event::Pong(payload) => {
            assert!(payload.len() <= 125.min(config.get_max_frame_size()));
        }
        Event::Close(close) => {
            if close.code == CloseCode::NO_STATUS {
                assert!(close.reason.is_empty());
            } else {
                assert!(close.code.is_sendable(), "{close:?}");
            }
            assert!(close.reason.len() <= 123);
        }
    }
}

fn check_close_is_last(events: &[Event], session: &Session) {
    let close_at = events.iter().position(|e| matches!(e, Event::Close(_)));
    match close_at {
        Some(at) => {
            assert_eq!(at, events.len() - 1, "an event after the peer's close");
            let Event::Close(close) = &events[at] else {
                unreachable!()
            };
            assert_eq!(session.close_received(), Some(close));
            assert!(session.is_closed() && session.is_finished());
        }
        None => assert_eq!(session.close_received(), None),
    }
}

fn check_output(
    out: &[u8],
    failed: Option<Error>,
    events: &[Event],
    sent_binary: usize,
    sent_pings: usize,
    closed: bool,
) {
    let mut pos = 0;
    let mut close_payload = None;
    let (mut binary, mut pings, mut pongs) = (0, 0, 0);
    while pos < out.len() {
        assert!(close_payload.is_none(), "a frame after our close frame");
        let (header, len) = FrameHeader::parse(&out[pos..])
            .expect("we send valid headers")
            .expect("we send whole frames");
        assert!(header.fin && header.mask.is_none());
        let start = pos + len;
        let end = start + usize::try_from(header.payload_len).expect("small frames");
        let payload = out.get(start..end).expect("we send whole payloads");
        match header.opcode {
            OpCode::Data(Data::Binary) => binary += 1,
            OpCode::Control(Control::Ping) => pings += 1,
            OpCode::Control(Control::Pong) => pongs += 1,
            OpCode::Control(Control::Close) => close_payload = Some(payload),
            other => panic!("unexpected frame {other:?}"),
        }
        pos = end;
    }
    assert_eq!((binary, pings), (sent_binary, sent_pings));
    let ping_events = events
        .iter()
        .filter(|e| matches!(e, Event::Ping(_)))
        .count();
    assert!(pongs <= ping_events);
    assert_eq!(close_payload.is_some(), closed, "close sent iff closed");
    if let (Some(error), Some(payload)) = (failed, close_payload) {
        // A failure closes with its own code unless we had closed first.
        let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
        assert!(
            code == Some(error.close_code().0) || code == Some(1001),
            "{code:?}"
        );
    }
}
