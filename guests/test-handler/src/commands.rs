//! The text commands of the modes that drive `connection` imports. Every command is
//! answered with one text message (unless stated otherwise); words are separated by single
//! spaces, and topic names therefore contain none.
//!
//! - `/send-to`: `ID:PAYLOAD` sends the text PAYLOAD to ID with `send-to`; answers `ok`,
//!   `closed`, `gone`, `backpressure` or `unreachable`.
//! - `/close-other`: `ID` (or `ID CODE REASON`) closes ID with `close-other` (4000
//!   "closed by other" by default); answers as `/send-to`.
//! - `/topics`: `sub T` (answers `subscribed`, `bad-name` or `too-many`), `subn P N`
//!   (subscribes to P0 … P(N-1), stopping at the first refusal; answers `subscribed K` or
//!   `subscribed K then ERROR`), `unsub T` (`unsubscribed true|false`), `pub T TEXT`,
//!   `pubself T TEXT` (include-self), `pubbin T TEXT` (as binary; each answers
//!   `published N`), `count T` (`subscribers N`), `list` (`topics A,B,…`, sorted), `limits`
//!   (`max-topics N max-topic-len N max-attachment N`), `close` (closes this connection
//!   with 4000 "closing", then prints `send after close: RESULT`; nothing is answered).
//! - `/alarm`, `/trap-alarm`: `N` sets the alarm N ms away (`set N`), `cancel` cancels it
//!   (`cancelled`).
//! - `/attach`: `set X` and `fill N` (N bytes of `a`) answer `ok` or `too-large MAX`; `get`
//!   answers with the attachment as a binary message.
//! - `/flood`: `N SIZE` (or `self N SIZE`) sends N binary messages of SIZE bytes to this
//!   connection with `send`, `to ID N SIZE` to ID with `send-to`; answers (and prints)
//!   `flood ok A backpressure B closed C gone D`. `pub T N SIZE` publishes N such messages
//!   to T and answers `published SUM`. A flood message starts with its index (u32, big
//!   endian) when SIZE allows, so that receivers can check the order.
//! - `/topics` also takes the `history` and `presence` commands of `rooms.rs`.
//!
//! Anything else is answered with `unknown command: …`.

use crate::Mode;
use crate::bindings::wsbox::websocket::connection::{self, SendError, TopicError};
use crate::bindings::wsbox::websocket::types::Message;

pub(crate) fn run(mode: Mode, msg: Message) {
    let command = match msg {
        Message::Text(text) => text,
        Message::Binary(_) => return reply("unknown command: binary".into()),
    };
    let words: Vec<&str> = command.split(' ').collect();
    let answer = match (mode, words.as_slice()) {
        (Mode::SendTo, _) => match command.split_once(':') {
            Some((to, payload)) => {
                send_result(connection::send_to(to, &Message::Text(payload.into())))
            }
            None => format!("unknown command: {command}"),
        },
        (Mode::CloseOther, [to]) => {
            send_result(connection::close_other(to, 4000, "closed by other"))
        }
        (Mode::CloseOther, [to, code, reason @ ..]) => match code.parse() {
            Ok(code) => send_result(connection::close_other(to, code, &reason.join(" "))),
            Err(_) => format!("unknown command: {command}"),
        },
        (Mode::Topics, _) => {
            topics(&words).unwrap_or_else(|| format!("unknown command: {command}"))
        }
        (Mode::Alarm | Mode::TrapAlarm, ["cancel"]) => {
            connection::cancel_alarm();
            "cancelled".into()
        }
        (Mode::Alarm | Mode::TrapAlarm, [ms]) => match ms.parse() {
            Ok(ms) => {
                connection::set_alarm(ms);
                format!("set {ms}")
            }
            Err(_) => format!("unknown command: {command}"),
        },
        (Mode::Attach, ["get"]) => {
            let _ = connection::send(&Message::Binary(connection::attachment()));
            return;
        }
        (Mode::Attach, ["set", value @ ..]) => attach(value.join(" ").into_bytes()),
        (Mode::Attach, ["fill", n]) => match n.parse() {
            Ok(n) => attach(vec![b'a'; n]),
            Err(_) => format!("unknown command: {command}"),
        },
        (Mode::Flood, _) => flood(&words).unwrap_or_else(|| format!("unknown command: {command}")),
        _ => format!("unknown command: {command}"),
    };
    reply(answer);
}

fn reply(answer: String) {
    let _ = connection::send(&Message::Text(answer));
}

pub(crate) fn send_result(result: Result<(), SendError>) -> String {
    match result {
        Ok(()) => "ok",
        Err(SendError::Closed) => "closed",
        Err(SendError::Gone) => "gone",
        Err(SendError::Backpressure) => "backpressure",
        Err(SendError::Unreachable) => "unreachable",
    }
    .into()
}

pub(crate) fn topic_error(error: TopicError) -> String {
    match error {
        TopicError::BadName => "bad-name",
        TopicError::TooMany => "too-many",
    }
    .into()
}

fn topics(words: &[&str]) -> Option<String> {
    let published = |topic: &str, msg: Message, include_self: bool| {
        format!(
            "published {}",
            connection::publish(topic, &msg, include_self)
        )
    };
    Some(match words {
        ["sub", topic] => match connection::subscribe(topic) {
            Ok(()) => "subscribed".into(),
            Err(error) => topic_error(error),
        },
        ["subn", prefix, n] => {
            let n: u32 = n.parse().ok()?;
            let mut done = 0;
            for i in 0..n {
                if let Err(error) = connection::subscribe(&format!("{prefix}{i}")) {
                    return Some(format!("subscribed {done} then {}", topic_error(error)));
                }
                done += 1;
            }
            format!("subscribed {done}")
        }
        ["unsub", topic] => format!("unsubscribed {}", connection::unsubscribe(topic)),
        ["pub", topic, text @ ..] => published(topic, Message::Text(text.join(" ")), false),
        ["pubself", topic, text @ ..] => published(topic, Message::Text(text.join(" ")), true),
        ["pubbin", topic, text @ ..] => {
            published(topic, Message::Binary(text.join(" ").into_bytes()), false)
        }
        ["count", topic] => format!("subscribers {}", connection::subscribers(topic)),
        ["list"] => {
            let mut topics = connection::topics();
            topics.sort();
            format!("topics {}", topics.join(","))
        }
        ["close"] => {
            connection::close(4000, "closing");
            let refused = connection::send(&Message::Text("after close".into()));
            println!("send after close: {}", send_result(refused));
            // Refused as well: nothing follows the close frame.
            "closing".into()
        }
        ["limits"] => format!(
            "max-topics {} max-topic-len {} max-attachment {}",
            connection::max_topics(),
            connection::max_topic_len(),
            connection::max_attachment()
        ),
        _ => return crate::rooms::command(words),
    })
}

fn attach(value: Vec<u8>) -> String {
    match connection::set_attachment(&value) {
        Ok(()) => "ok".into(),
        Err(too_large) => format!("too-large {}", too_large.max),
    }
}

fn flood(words: &[&str]) -> Option<String> {
    let numbers = |n: &str, size: &str| Some((n.parse::<u32>().ok()?, size.parse::<usize>().ok()?));
    let (target, n, size) = match words {
        [n, size] | ["self", n, size] => {
            let (n, size) = numbers(n, size)?;
            (None, n, size)
        }
        ["to", id, n, size] => {
            let (n, size) = numbers(n, size)?;
            (Some(*id), n, size)
        }
        ["pub", topic, n, size] => {
            let (n, size) = numbers(n, size)?;
            let sum: u64 = (0..n)
                .map(|i| u64::from(connection::publish(topic, &stamped(i, size), false)))
                .sum();
            return Some(format!("published {sum}"));
        }
        _ => return None,
    };
    // ok, backpressure, closed, gone
    let mut counts = [0u32; 4];
    for i in 0..n {
        let msg = stamped(i, size);
        let result = match target {
            Some(id) => connection::send_to(id, &msg),
            None => connection::send(&msg),
        };
        let slot = match result {
            Ok(()) => 0,
            Err(SendError::Backpressure) => 1,
            Err(SendError::Closed) => 2,
            Err(SendError::Gone | SendError::Unreachable) => 3,
        };
        counts[slot] += 1;
    }
    let [ok, backpressure, closed, gone] = counts;
    let report = format!("flood ok {ok} backpressure {backpressure} closed {closed} gone {gone}");
    // A flood of this connection may leave no room for the answer: the log has it too.
    println!("{report}");
    Some(report)
}

/// A binary message of `size` bytes that starts with `index` (big endian) when it fits.
fn stamped(index: u32, size: usize) -> Message {
    let mut data = vec![0x5a; size];
    if let Some(head) = data.get_mut(..4) {
        head.copy_from_slice(&index.to_be_bytes());
    }
    Message::Binary(data)
}
