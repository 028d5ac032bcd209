//! The modes about an instance's life rather than a connection's: hibernation,
//! auto-responses, reloads and the memory budget. Each message is answered with one
//! message.
//!
//! - `/count`: any message is answered `instance=N attachment=M`: N counts the messages
//!   this instance has seen (a static: it starts again at 1 in a fresh instance), M the
//!   messages of the connection, kept in the attachment (u32, little endian).
//! - `/auto`: `on-open` registers the auto-responses text `ping` → `pong` and binary
//!   `[1, 2, 3]` → `[4, 5, 6]` (printing `auto-response refused: ERROR` if the host
//!   refuses one). Text `clear` clears `ping` (answers `cleared`, or `not cleared` when it
//!   was not registered); `big` registers a request one byte over
//!   `max-auto-response-size` (answers `ok`, `too-large` or `too-many`); `many` registers
//!   `many-0` → `auto-0`, `many-1` → `auto-1`, … until the host refuses one and answers
//!   how many it took (a number; at most `max-auto-responses` + 1 are tried). Any other
//!   text is answered `woke:TEXT`, a binary message with itself after a 0xFF byte.
//! - `/version`: a text message is answered `test-handler:TEXT`, a binary one with itself
//!   after the bytes `test-handler:` (the echo guest answers with the message alone, so a
//!   reload from one to the other shows at the next message).
//! - `/grow`: text `N` allocates N MiB, writes every byte, frees them and answers
//!   `grew N` (the instance's memory stays grown; the allocation is not kept).

use std::cell::Cell;

use crate::Mode;
use crate::bindings::wsbox::websocket::connection::{self, AutoResponseError};
use crate::bindings::wsbox::websocket::types::Message;

thread_local! {
    // Messages seen by this instance: instance memory, lost with the instance.
    static SEEN: Cell<u32> = const { Cell::new(0) };
    // `/count`'s `note TEXT`: notes on the instance's heap, lost with the instance.
    static NOTES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What `/auto`'s `on-open` registers.
pub(crate) fn register_auto_responses() {
    let pairs = [
        (Message::Text("ping".into()), Message::Text("pong".into())),
        (
            Message::Binary(vec![1, 2, 3]),
            Message::Binary(vec![4, 5, 6]),
        ),
    ];
    for (request, response) in &pairs {
        if let Err(error) = connection::set_auto_response(request, response) {
            println!("auto-response refused: {}", auto_error(error));
        }
    }
}

pub(crate) fn run(mode: Mode, msg: Message) {
    let answer = match (mode, msg) {
        (Mode::Count, Message::Text(text)) if text.starts_with("note ") => {
            Message::Text(note(&text["note ".len()..]))
        }
        (Mode::Count, _) => Message::Text(count()),
        (Mode::Auto, Message::Text(text)) => Message::Text(auto(text)),
        (Mode::Auto, Message::Binary(data)) => Message::Binary(prefixed(&[0xff], data)),
        (Mode::Version, Message::Text(text)) => Message::Text(format!("test-handler:{text}")),
        (Mode::Version, Message::Binary(data)) => Message::Binary(prefixed(b"test-handler:", data)),
        (Mode::Grow, Message::Text(text)) => Message::Text(grow(&text)),
        (_, Message::Text(text)) => Message::Text(format!("unknown command: {text}")),
        (_, Message::Binary(_)) => Message::Text("unknown command: binary".into()),
    };
    let _ = connection::send(&answer);
}

/// Keeps `text` on the heap and answers every note this instance kept: `notes a,b`.
fn note(text: &str) -> String {
    NOTES.with_borrow_mut(|notes| {
        notes.push(text.to_owned());
        format!("notes {}", notes.join(","))
    })
}

fn count() -> String {
    let seen = SEEN.with(|seen| {
        seen.set(seen.get().wrapping_add(1));
        seen.get()
    });
    let kept = <[u8; 4]>::try_from(connection::attachment().as_slice())
        .map_or(0, u32::from_le_bytes)
        .wrapping_add(1);
    if let Err(too_large) = connection::set_attachment(&kept.to_le_bytes()) {
        return format!("too-large {}", too_large.max);
    }
    format!("instance={seen} attachment={kept}")
}

fn auto(command: String) -> String {
    match command.as_str() {
        "clear" => {
            let ping = Message::Text("ping".into());
            if connection::clear_auto_response(&ping) {
                "cleared".into()
            } else {
                "not cleared".into()
            }
        }
        "big" => {
            let size = usize::try_from(connection::max_auto_response_size()).unwrap_or(usize::MAX);
            let request = Message::Text("b".repeat(size.saturating_add(1)));
            match connection::set_auto_response(&request, &Message::Text("big".into())) {
                Ok(()) => "ok".into(),
                Err(error) => auto_error(error).into(),
            }
        }
        "many" => {
            let mut taken = 0u32;
            for i in 0..=connection::max_auto_responses() {
                let request = Message::Text(format!("many-{i}"));
                let response = Message::Text(format!("auto-{i}"));
                if connection::set_auto_response(&request, &response).is_err() {
                    break;
                }
                taken += 1;
            }
            taken.to_string()
        }
        _ => format!("woke:{command}"),
    }
}

fn grow(command: &str) -> String {
    let Some(bytes) = command
        .parse::<usize>()
        .ok()
        .and_then(|mib| mib.checked_mul(1 << 20))
    else {
        return format!("unknown command: {command}");
    };
    // Non-zero, so every page is written; an allocation the host refuses traps.
    let grown = vec![1u8; bytes];
    std::hint::black_box(&grown);
    format!("grew {command}")
}

fn prefixed(prefix: &[u8], data: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + data.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(&data);
    out
}

pub(crate) fn auto_error(error: AutoResponseError) -> &'static str {
    match error {
        AutoResponseError::TooLarge => "too-large",
        AutoResponseError::TooMany => "too-many",
    }
}
