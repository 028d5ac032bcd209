//! `/topics` commands for `history` and `presence` (wit/rooms.wit), answered as the other
//! `/topics` commands are (one text message each; errors by their WIT names):
//!
//! - `history T N AGE_MS` enables history (`history on`); `head T` answers `head E O`;
//!   `kept T N` answers `kept O1,O2,…|TEXT1|TEXT2…` (offsets, then the texts as kept);
//!   `pubkept T TEXT` publishes with `history.publish` (`position E O count N`);
//!   `from T E O` subscribes after position E O and `fromlast T N` from the last N
//!   (`from E O`: the head then).
//! - `info T TEXT` sets the presence info (`info ok`); `members T AFTER LIMIT` (AFTER `-`
//!   for none) answers `members ID=INFO,…` and ` next ID` when more follow.

use crate::bindings::wsbox::websocket::history::{self, Bounds, HistoryError, Position, Start};
use crate::bindings::wsbox::websocket::presence::{self, PresenceError};
use crate::bindings::wsbox::websocket::types::Message;

fn error(error: HistoryError) -> String {
    match error {
        HistoryError::BadName => "bad-name",
        HistoryError::Off => "off",
        HistoryError::Gone => "gone",
        HistoryError::TooMany => "too-many",
        HistoryError::Unsupported => "unsupported",
    }
    .into()
}

fn position(at: &Position) -> String {
    format!("{} {}", at.epoch, at.offset)
}

pub(crate) fn command(words: &[&str]) -> Option<String> {
    let from = |topic: &str, start: Start| match history::subscribe_from(topic, &start) {
        Ok(head) => format!("from {}", position(&head)),
        Err(e) => error(e),
    };
    Some(match words {
        ["history", topic, n, age] => {
            let bounds = Bounds {
                max_messages: n.parse().ok()?,
                max_age_ms: age.parse().ok()?,
            };
            match history::enable(topic, bounds) {
                Ok(()) => "history on".into(),
                Err(e) => error(e),
            }
        }
        ["head", topic] => match history::head(topic) {
            Ok(head) => format!("head {}", position(&head)),
            Err(e) => error(e),
        },
        ["kept", topic, n] => match history::last(topic, n.parse().ok()?) {
            Ok(entries) => {
                let offsets: Vec<String> = entries
                    .iter()
                    .map(|e| e.position.offset.to_string())
                    .collect();
                let texts: Vec<String> = entries
                    .iter()
                    .map(|e| match &e.message {
                        Message::Text(text) => text.clone(),
                        Message::Binary(data) => format!("binary:{}", data.len()),
                    })
                    .collect();
                format!("kept {}|{}", offsets.join(","), texts.join("|"))
            }
            Err(e) => error(e),
        },
        ["pubkept", topic, text @ ..] => {
            match history::publish(topic, &Message::Text(text.join(" ")), false) {
                Ok((at, count)) => format!("position {} count {count}", position(&at)),
                Err(e) => error(e),
            }
        }
        ["from", topic, epoch, offset] => {
            let after = Position {
                epoch: (*epoch).to_owned(),
                offset: offset.parse().ok()?,
            };
            from(topic, Start::After(after))
        }
        ["fromlast", topic, n] => from(topic, Start::Last(n.parse().ok()?)),
        ["info", topic, text @ ..] => match presence::set_info(topic, text.join(" ").as_bytes()) {
            Ok(()) => "info ok".into(),
            Err(PresenceError::NotSubscribed) => "not-subscribed".into(),
            Err(PresenceError::TooLarge) => "too-large".into(),
        },
        ["members", topic, after, limit] => {
            let after = (*after != "-").then_some(*after);
            let page = presence::members(topic, after, limit.parse().ok()?);
            let members: Vec<String> = page
                .members
                .iter()
                .map(|m| format!("{}={}", m.id, String::from_utf8_lossy(&m.info)))
                .collect();
            let next = page
                .next
                .map(|id| format!(" next {id}"))
                .unwrap_or_default();
            format!("members {}{next}", members.join(","))
        }
        _ => return crate::kv::command(words),
    })
}
