//! A chat for `wsbox-runner`: rooms by path, a nickname from the query, join and leave
//! notices with the member count, rooms that remember their last 50 frames, pages that
//! resume after a dropped socket, and a member list.
//!
//! ```sh
//! scripts/run-guest.sh chat        # then open http://127.0.0.1:8080/chat/lobby?nick=ann
//! ```
//!
//! # HTTP
//!
//! - `GET /chat/ROOM` serves the chat page; its script opens a WebSocket to the same path
//!   and query. ROOM is 1 to 64 ASCII letters, digits, `-`, `_` or `.`.
//! - An upgrade request to `/chat/ROOM?nick=NAME` joins ROOM as NAME (letters, digits,
//!   `-`, `_`, `.`, at most 24; anything else is dropped). Without a usable name the member
//!   is `guest-` and the first four hex digits of its connection id, e.g. `guest-1a2b`.
//!   `&after=EPOCH-OFFSET` (a page reconnecting) resumes after that position.
//! - `GET /` redirects to `/chat/lobby` (keeping the query); anything else is a 404.
//!
//! # Wire format
//!
//! The client sends text frames: each is one chat message (cut to 2000 characters).
//! Binary frames are refused: the connection is closed with 1003. The server sends text
//! frames, each one JSON object; every frame but `hello` is published to the room's topic,
//! which has history, so the host puts its position first (`"pos":{"epoch":E,"offset":N}`,
//! contiguous offsets: `wit/rooms.wit`):
//!
//! | frame | to | meaning |
//! |---|---|---|
//! | `{"type":"hello","nick":"guest-1a2b","members":["ann"],"epoch":E,"head":N,"resumed":false}` | the new member | the nickname it got, who is there, the position it joined at; then the room's last 50 frames (those up to `head` are history), or with `resumed` what followed the page's `after` |
//! | `{"type":"join","nick":"ann","count":2}` | the room, the new member included | `ann` joined; `count` members now |
//! | `{"type":"message","nick":"ann","text":"hi"}` | the room, the sender included | `ann` said `hi` |
//! | `{"type":"leave","nick":"ann","count":1}` | the rest of the room | `ann` left; `count` remain |
//!
//! # How it uses the host
//!
//! Each room is a topic named by its path, with history: the host keeps the last 50
//! frames, replays them to a newcomer (or what a reconnecting page missed) and then the
//! live ones, without calling the handler. The member count is the topic's subscriber
//! count, the member list its presence (each member's info is its nickname), and every
//! notice and message is one `publish` (encoded once by the host for the whole room). The handler keeps no state of its own: the nickname lives in the
//! connection's attachment, which the host keeps, so a handler rebuilt for the connection
//! (after hibernation) has all it needs.

mod names;
mod wire;

use wsbox::guest::{Handler, HistoryError, Position, Start, Websocket};
use wsbox::{CloseCode, Message};

/// The chat page (`src/page.html`): the same for every room, which its script reads from
/// the address bar.
const PAGE: &str = include_str!("page.html");

/// The longest chat message passed on, in characters.
const MAX_TEXT: usize = 2000;
/// Messages a room keeps, and a newcomer gets before the live ones.
const HISTORY: u32 = 50;
/// Members listed in a newcomer's `hello`, at most.
const MAX_LISTED: usize = 1000;

struct Chat;

impl Handler for Chat {
    fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        let path = request.uri().path();
        if path == "/" {
            return to_lobby(request.uri().query());
        }
        if names::room(path).is_none() {
            return respond(http::StatusCode::NOT_FOUND, "text/plain", "no such room\n");
        }
        if request.headers().contains_key(http::header::UPGRADE) {
            return wsbox::guest::accept(request, None).unwrap_or_else(|e| e.to_response());
        }
        if request.method() != http::Method::GET {
            let mut response = respond(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "GET only\n",
            );
            response
                .headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
            return response;
        }
        respond(http::StatusCode::OK, "text/html", PAGE)
    }

    fn on_open(&mut self, websocket: &mut Websocket) {
        let request = websocket.request();
        let topic = request.path();
        let nick = names::nick(request.query())
            .unwrap_or_else(|| names::default_nick(websocket.id().as_str()));
        // Fails only under a host configured far below its defaults (16 KiB attachments,
        // 64 topics of 256 bytes): a nickname and one room always fit those.
        if websocket.set_attachment(nick.as_bytes()).is_err() {
            websocket.close(CloseCode::INTERNAL_ERROR, "the host's limits are too small");
            return;
        }
        let Some(joined) = join(websocket, topic, names::after(request.query())) else {
            websocket.close(CloseCode::INTERNAL_ERROR, "the host's limits are too small");
            return;
        };
        // Shown with this member in the others' `hello`; fails only if not subscribed.
        let _ = websocket.set_presence(topic, nick.as_bytes());
        let members = members(websocket, topic);
        // Fails only if the client already left; `on_close` follows then. Sent before the
        // history the host replays once this call returns.
        let _ = websocket.send_text(&wire::hello(&wire::Hello {
            nick: &nick,
            members: &members,
            epoch: &joined.head.epoch,
            head: joined.head.offset,
            resumed: joined.resumed,
        }));
        let count = websocket.subscribers(topic);
        websocket.publish(topic, &Message::Text(wire::join(&nick, count)), true);
    }

    fn on_message(&mut self, websocket: &mut Websocket, message: Message) {
        let Message::Text(text) = message else {
            websocket.close(CloseCode::UNSUPPORTED_DATA, "text only");
            return;
        };
        if text.is_empty() {
            return;
        }
        let frame = wire::message(&nick(websocket), clip(&text, MAX_TEXT));
        websocket.publish(websocket.request().path(), &Message::Text(frame), true);
    }

    fn on_close(&mut self, websocket: &mut Websocket, _: &wsbox::guest::Close) {
        let topic = websocket.request().path();
        // Not subscribed means `on_open` gave up: no one was told of a join.
        if websocket.unsubscribe(topic) {
            let count = websocket.subscribers(topic);
            let frame = wire::leave(&nick(websocket), count);
            websocket.publish(topic, &Message::Text(frame), false);
        }
    }
}

/// How a member joined its room: the history's head then, and whether its replay goes on
/// from where its page asked.
struct Joined {
    head: Position,
    resumed: bool,
}

/// Subscribes to the room with its history on: from `after` (a page reconnecting) if the
/// host still keeps it, else the last [`HISTORY`] messages. Without history (a runner of a
/// cluster) a plain subscription, and the page is told so by an empty epoch.
fn join(websocket: &Websocket, topic: &str, after: Option<(String, u64)>) -> Option<Joined> {
    if websocket.enable_history(topic, HISTORY, None).is_err() {
        websocket.subscribe(topic).ok()?;
        let head = Position {
            epoch: String::new(),
            offset: 0,
        };
        return Some(Joined {
            head,
            resumed: false,
        });
    }
    if let Some((epoch, offset)) = after {
        let after = Start::After(Position { epoch, offset });
        match websocket.subscribe_from(topic, &after) {
            Ok(head) => {
                return Some(Joined {
                    head,
                    resumed: true,
                });
            }
            Err(HistoryError::Gone) => {}
            Err(_) => return None,
        }
    }
    let head = websocket
        .subscribe_from(topic, &Start::Last(HISTORY))
        .ok()?;
    Some(Joined {
        head,
        resumed: false,
    })
}

/// The nicknames of the room's members, from presence (at most [`MAX_LISTED`]).
fn members(websocket: &Websocket, topic: &str) -> Vec<String> {
    let mut nicks = Vec::new();
    let mut after = None;
    while nicks.len() < MAX_LISTED {
        let page = websocket.members(topic, after.as_ref(), 1000);
        nicks.extend(
            page.members
                .iter()
                .map(|(_, info)| String::from_utf8_lossy(info).into_owned()),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    nicks.truncate(MAX_LISTED);
    nicks
}

/// The member's nickname, from the attachment `on_open` set.
fn nick(websocket: &Websocket) -> String {
    String::from_utf8_lossy(&websocket.attachment()).into_owned()
}

/// At most `max` characters of `text`.
fn clip(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// `302` to the lobby, keeping the query (`/?nick=ann` → `/chat/lobby?nick=ann`).
fn to_lobby(query: Option<&str>) -> http::Response<Vec<u8>> {
    let target = match query {
        Some(query) => format!("/chat/lobby?{query}"),
        None => "/chat/lobby".to_owned(),
    };
    let body = "<!doctype html><a href=\"/chat/lobby\">the lobby</a>\n";
    let mut response = respond(http::StatusCode::FOUND, "text/html", body);
    // The query came from a valid request target, so it is a valid header value.
    if let Ok(location) = http::HeaderValue::try_from(target) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    response
}

fn respond(status: http::StatusCode, media_type: &str, body: &str) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.as_bytes().to_vec());
    *response.status_mut() = status;
    if let Ok(content_type) = http::HeaderValue::try_from(format!("{media_type}; charset=utf-8")) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, content_type);
    }
    response
}

wsbox::export_handler!(Chat);

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str) -> http::Response<Vec<u8>> {
        let request = http::Request::get(uri).body(Vec::new());
        Chat.handle(&request.unwrap_or_default())
    }

    #[test]
    fn pages_redirects_and_upgrades() {
        let page = get("/chat/lobby?nick=ann");
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        let html = String::from_utf8_lossy(page.body());
        for id in [
            "id=\"log\"",
            "id=\"count\"",
            "id=\"input\"",
            "id=\"send\"",
            "id=\"nick\"",
        ] {
            assert!(html.contains(id), "{id}");
        }

        let lobby = get("/?nick=ann");
        assert_eq!(lobby.status(), 302);
        assert_eq!(lobby.headers()["location"], "/chat/lobby?nick=ann");
        assert_eq!(get("/").headers()["location"], "/chat/lobby");

        assert_eq!(get("/chat/").status(), 404);
        assert_eq!(get("/chat/a/b").status(), 404);
        assert_eq!(get("/favicon.ico").status(), 404);

        let upgrade = wsbox::doc_request(&["chat"]);
        let mut upgrade = upgrade.map(|()| Vec::new());
        *upgrade.uri_mut() = http::Uri::from_static("/chat/lobby?nick=ann");
        let accepted = Chat.handle(&upgrade);
        assert_eq!(accepted.status(), 101);
        assert!(accepted.headers().get("sec-websocket-protocol").is_none());

        let mut post = http::Request::new(Vec::new());
        *post.method_mut() = http::Method::POST;
        *post.uri_mut() = http::Uri::from_static("/chat/lobby");
        assert_eq!(Chat.handle(&post).status(), 405);
    }

    #[test]
    fn clip_keeps_whole_characters() {
        assert_eq!(clip("héllo", 2), "hé");
        assert_eq!(clip("hi", 2), "hi");
        assert_eq!(clip("", 2), "");
        assert_eq!(
            clip(&"✓".repeat(MAX_TEXT + 5), MAX_TEXT).chars().count(),
            MAX_TEXT
        );
    }
}
