//! The runner's test of the Rust SDK (host-runner/tests/rust_guest.rs): the `history`,
//! `presence` and `store` wrappers (`Websocket::enable_history` …, `Store`), driven by text
//! commands in the words of guests/test-js and guests/test-py (listed in
//! guests/test-js/rooms.js; host-runner/tests/common/sdk_imports.rs drives all three), and
//! `id`, `echo TEXT`, `sub T`, `count T`, `pub T TEXT`. A binary message comes back as it is.

use std::time::Duration;

use wsbox::Message;
use wsbox::guest::{
    HistoryError, Id, Position, PresenceError, Start, Store, StoreError, TopicError, Websocket,
};

struct Test;

impl wsbox::guest::Handler for Test {
    fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        if request.headers().contains_key(http::header::UPGRADE) {
            return wsbox::guest::accept(request, None).unwrap_or_else(|e| e.to_response());
        }
        http::Response::new(b"test-rust\n".to_vec())
    }

    fn on_message(&mut self, websocket: &mut Websocket, message: Message) {
        let answer = match &message {
            Message::Text(text) => command(websocket, text),
            Message::Binary(_) => {
                let _ = websocket.send_message(&message);
                return;
            }
        };
        let _ = websocket.send_text(&answer);
    }
}

/// The name an error goes by in the WIT (and in the other SDKs).
trait Named {
    fn name(&self) -> &'static str;
}

impl Named for HistoryError {
    fn name(&self) -> &'static str {
        match self {
            HistoryError::BadName => "bad-name",
            HistoryError::Off => "off",
            HistoryError::Gone => "gone",
            HistoryError::TooMany => "too-many",
            HistoryError::Unsupported => "unsupported",
            _ => "unknown",
        }
    }
}

impl Named for TopicError {
    fn name(&self) -> &'static str {
        match self {
            TopicError::BadName => "bad-name",
            TopicError::TooMany => "too-many",
        }
    }
}

impl Named for PresenceError {
    fn name(&self) -> &'static str {
        match self {
            PresenceError::NotSubscribed => "not-subscribed",
            PresenceError::TooLarge => "too-large",
            _ => "unknown",
        }
    }
}

impl Named for StoreError {
    fn name(&self) -> &'static str {
        match self {
            StoreError::BadKey => "bad-key",
            StoreError::TooLarge => "too-large",
            StoreError::Quota => "quota",
            StoreError::Full => "full",
            StoreError::NotANumber => "not-a-number",
            StoreError::Overflow => "overflow",
            StoreError::Unavailable => "unavailable",
            _ => "unknown",
        }
    }
}

/// `format(value)`, or the error's name.
fn answer<T, E: Named>(result: Result<T, E>, format: impl FnOnce(T) -> String) -> String {
    result.map_or_else(|error| error.name().to_owned(), format)
}

fn at(position: &Position) -> String {
    format!("{} {}", position.epoch, position.offset)
}

/// `-` stands for none.
fn none(word: &str) -> Option<&str> {
    (word != "-").then_some(word)
}

fn number<T: std::str::FromStr + Default>(word: &str) -> T {
    word.parse().unwrap_or_default()
}

fn ttl(word: Option<&&str>) -> Option<Duration> {
    word.map(|ms| Duration::from_millis(number(ms)))
}

fn command(websocket: &Websocket, text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let word = |i: usize| words.get(i).copied().unwrap_or("");
    let rest = words
        .get(2..)
        .map(|rest| rest.join(" "))
        .unwrap_or_default();
    let kept = |result: Result<(Position, u32), HistoryError>| {
        answer(result, |(position, count)| {
            format!("position {} count {count}", at(&position))
        })
    };
    let from = |start: Start| {
        answer(websocket.subscribe_from(word(1), &start), |head| {
            format!("from {}", at(&head))
        })
    };
    let store = Store::new(word(1));
    let flag = |result: Result<bool, StoreError>| answer(result, |done| done.to_string());
    match word(0) {
        "id" => websocket.id().to_string(),
        "echo" => words[1..].join(" "),
        "sub" => answer(websocket.subscribe(word(1)), |()| "ok".into()),
        "count" => websocket.subscribers(word(1)).to_string(),
        "pub" => {
            let message = Message::Text(rest);
            websocket.publish(word(1), &message, false).to_string()
        }
        "history" => {
            let max_age = Some(Duration::from_millis(number(word(3)))).filter(|age| !age.is_zero());
            let result = websocket.enable_history(word(1), number(word(2)), max_age);
            answer(result, |()| "ok".into())
        }
        "head" => answer(websocket.history_head(word(1)), |head| {
            format!("head {}", at(&head))
        }),
        "pubkept" => kept(websocket.publish_kept(word(1), &Message::Text(rest), false)),
        "pubkeptbin" => {
            let message = Message::Binary(rest.into_bytes());
            kept(websocket.publish_kept(word(1), &message, false))
        }
        "from" => from(Start::After(Position {
            epoch: word(2).into(),
            offset: number(word(3)),
        })),
        "fromlast" => from(Start::Last(number(word(2)))),
        "kept" => answer(websocket.history(word(1), number(word(2))), |entries| {
            let offsets: Vec<String> = entries
                .iter()
                .map(|(at, _)| at.offset.to_string())
                .collect();
            let data = entries.iter().map(|(_, message)| match message {
                Message::Text(text) => text.to_string(),
                Message::Binary(data) => format!("binary:{}", data.len()),
            });
            std::iter::once(format!("kept {}", offsets.join(",")))
                .chain(data)
                .collect::<Vec<_>>()
                .join("|")
        }),
        "info" => answer(websocket.set_presence(word(1), rest.as_bytes()), |()| {
            "ok".into()
        }),
        "members" => {
            let after = none(word(2)).map(|id| Id::from(id.to_owned()));
            let page = websocket.members(word(1), after.as_ref(), number(word(3)));
            let listed: Vec<String> = page
                .members
                .iter()
                .map(|(id, info)| format!("{id}={}", String::from_utf8_lossy(info)))
                .collect();
            let next = page
                .next
                .map(|id| format!(" next {id}"))
                .unwrap_or_default();
            format!("members {}{next}", listed.join(","))
        }
        "set" => answer(
            store.set(word(2), word(3).as_bytes(), ttl(words.get(4))),
            |()| "ok".into(),
        ),
        "big" => answer(store.set(word(2), &vec![0; (1 << 20) + 1], None), |()| {
            "ok".into()
        }),
        "get" => answer(store.get(word(2)), |value| match value {
            Some(value) => format!("value {}", String::from_utf8_lossy(&value)),
            None => "unset".into(),
        }),
        "del" => flag(store.delete(word(2))),
        "keys" => answer(
            store.keys(none(word(2)).unwrap_or(""), none(word(3)), number(word(4))),
            |keys| format!("keys {}", keys.join(",")),
        ),
        "incr" => answer(store.increment(word(2), number(word(3))), |sum| {
            format!("sum {sum}")
        }),
        "cas" => flag(store.compare_and_swap(
            word(2),
            none(word(3)).map(str::as_bytes),
            none(word(4)).map(str::as_bytes),
            ttl(words.get(5)),
        )),
        verb => format!("unknown command: {verb}"),
    }
}

wsbox::export_handler!(Test);
