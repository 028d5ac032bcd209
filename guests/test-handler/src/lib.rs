//! A handler for the runner's tests, written against the raw WIT bindings of the `app` world
//! (not the guest SDK) so that it tests the runner alone. The request path picks the
//! behaviour:
//!
//! - `/none`, `/exact`, `/pick`: echo, choosing the subprotocol in each of the three ways
//!   (none; exactly `echo`, refused if not offered; the first offered of `v1.chat`, `v2.chat`);
//! - `/trap`, `/spin`, `/alloc`: accept, then on the first message panic, loop forever, or
//!   allocate without bound; `/trap-open`, `/trap-close`, `/trap-alarm`: panic in `on-open`,
//!   in `on-close`, or in `on-alarm` (echo otherwise; a text message `N` sets an alarm);
//! - `/trap-handshake`: panic in `handle`;
//! - `/print`: echo, printing to stdout and stderr in `handle` and each `on-message` (a
//!   line per stream, an unfinished line, and a line longer than the runner's limit);
//! - `/env`: a 200 whose body lists the environment the guest sees;
//! - `/framing`, `/framing-101`: a 200, or an accepted upgrade (then echo), that also sets
//!   framing and hop-by-hop headers (a false `content-length`, `transfer-encoding`,
//!   `connection` naming another header, …) for the runner to drop;
//! - `/kick`: on the first message, closes with 1008 "kicked", then tries to send and prints
//!   `send after close: RESULT`; a message delivered after that panics;
//! - `/sleep`: each message is a number of milliseconds to sleep (a blocking WASI call)
//!   before echoing it;
//! - `/file`: a 200 whose body is `/data/greeting.txt` (granted by `--dir`), else a 404
//!   saying why;
//! - `/id`: `on-open` sends the connection's id; then echo; `/whoami`: a 200 whose body is
//!   the connection's id (no upgrade);
//! - `/request`: `handle` sends `from handle`, and `on-open` sends a description of the
//!   connection (see [`describe`]); the first offered subprotocol is chosen;
//! - `/send-to`, `/close-other`, `/topics`, `/alarm`, `/attach`, `/flood`: text commands
//!   that call the `connection` imports and answer with their results (see [`commands`]);
//! - `/count`, `/auto`, `/version`, `/grow`: hibernation, auto-responses, reloads and the
//!   memory budget (see [`lifecycle`]); `/count`'s `note TEXT` keeps notes on the heap;
//! - `/hostile`: alarm loops publishing to itself, large auto-responses (see [`hostile`]).
//!
//! Hibernation: an instance that did not run `handle` (woken, or of a new version) takes
//! its mode from the request path the host kept, so every mode works with the runner's
//! `--hibernate-after 0` except what lives in instance memory across calls: `/kick`'s
//! check that no message follows its close (a woken instance would take such a message
//! for the first one instead of panicking), and `/count`'s `instance=` (which shows the wakes on purpose).
//! `/request`'s `handle-id` and `/alarm`'s `?ms=` are used by `on-open`, which runs on
//! the instance that ran `handle`.
//!
//! Any upgrade may carry `?sub=T&sub=U` to subscribe in `handle` (a refusal answers 400),
//! `sleep=MS` to sleep there (after what precedes it in the query; then it prints
//! `slept MS ms in handle`), `alarm=MS` to set an alarm there, and `close=CODE` to close
//! there (reason `closed in handle`); `/attach` takes `?set=X` to set the attachment there.
//!
//! Every mode prints `on-close CODE CLEAN REASON` to stdout when `on-close` runs, and
//! `on-alarm` when `on-alarm` does, for the tests to see in the runner's log.

use std::cell::RefCell;

mod commands;
mod hostile;
mod kv;
mod lifecycle;
mod rooms;

mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "app" });
}

use bindings::exports::wsbox::websocket::handler::Guest;
use bindings::wsbox::websocket::connection;
use bindings::wsbox::websocket::types::{Message, Request, Response};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Echo,
    Print,
    Trap,
    Spin,
    Alloc,
    Kick,
    Sleep,
    Id,
    Request,
    SendTo,
    CloseOther,
    Topics,
    Alarm,
    Attach,
    Flood,
    TrapOpen,
    TrapClose,
    TrapAlarm,
    Count,
    Auto,
    Version,
    Grow,
    Hostile,
}

/// The mode of a WebSocket on `path`; `None` for a path that is not an upgrade's.
fn mode_of(path: &str) -> Option<Mode> {
    Some(match path {
        "/none" | "/framing-101" | "/exact" | "/pick" | "/bare" => Mode::Echo,
        "/print" => Mode::Print,
        "/trap" => Mode::Trap,
        "/spin" => Mode::Spin,
        "/alloc" => Mode::Alloc,
        "/kick" => Mode::Kick,
        "/sleep" => Mode::Sleep,
        "/id" => Mode::Id,
        "/request" => Mode::Request,
        "/send-to" => Mode::SendTo,
        "/close-other" => Mode::CloseOther,
        "/topics" => Mode::Topics,
        "/alarm" => Mode::Alarm,
        "/attach" => Mode::Attach,
        "/flood" => Mode::Flood,
        "/trap-open" => Mode::TrapOpen,
        "/trap-close" => Mode::TrapClose,
        "/trap-alarm" => Mode::TrapAlarm,
        "/count" => Mode::Count,
        "/auto" => Mode::Auto,
        "/version" => Mode::Version,
        "/grow" => Mode::Grow,
        "/hostile" => Mode::Hostile,
        _ => return None,
    })
}

/// What `handle` learnt, for the calls that follow on the same connection.
struct State {
    mode: Mode,
    /// The query of the upgrade request (`/alarm?ms=N` sets an alarm in `on-open`).
    query: String,
    /// `self-id` and `request().path` as `handle` saw them.
    handle_id: String,
    handle_path: String,
    /// `/kick` closed the connection.
    kicked: bool,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// The connection's mode: as `handle` found it, or, in an instance that never ran `handle`
/// (woken from hibernation, or a new version), from the request path the host kept.
fn mode() -> Option<Mode> {
    STATE.with_borrow_mut(|state| {
        if state.is_none() {
            let info = connection::request();
            *state = mode_of(&info.path).map(|mode| State {
                mode,
                query: info.query,
                handle_id: String::new(),
                handle_path: String::new(),
                kicked: false,
            });
        }
        state.as_ref().map(|s| s.mode)
    })
}

struct Handler;

impl Guest for Handler {
    fn handle(req: Request) -> Response {
        let Some(request) = to_http(&req) else {
            return text(400, "unparsable request\n");
        };
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or("").to_owned();
        match path.as_str() {
            "/file" => {
                return match std::fs::read_to_string("/data/greeting.txt") {
                    Ok(contents) => text(200, &contents),
                    Err(error) => text(404, &format!("cannot read /data/greeting.txt: {error}\n")),
                };
            }
            "/trap-handshake" => panic!("trap requested in handle"),
            "/framing" => {
                let mut response = text(200, "framed by the host\n");
                response.headers.extend(hop_by_hop());
                response.headers.push(("x-kept".into(), b"yes".to_vec()));
                return response;
            }
            "/whoami" => return text(200, &connection::self_id()),
            "/env" => {
                let vars: Vec<String> = std::env::vars()
                    .map(|(k, v)| format!("{k}={v}\n"))
                    .collect();
                return text(200, &vars.concat());
            }
            _ => {}
        }
        let Some(mode) = mode_of(&path) else {
            return text(404, "not found\n");
        };
        let protocol = match path.as_str() {
            "/exact" => Some("echo".to_owned()),
            "/pick" => {
                wsbox::requested_protocols(&request).find(|p| p == "v1.chat" || p == "v2.chat")
            }
            "/request" => wsbox::requested_protocols(&request).next(),
            _ => None,
        };
        if mode == Mode::Print {
            println!("guest stdout in handle");
            eprintln!("guest stderr in handle");
        }
        // State made here carries over to the WebSocket (topics, attachment, queued sends).
        for (key, value) in query_pairs(&query) {
            let refused = match (mode, key) {
                (_, "sub") => connection::subscribe(value)
                    .err()
                    .map(commands::topic_error),
                (_, "sleep") => {
                    let millis = value.parse().unwrap_or(0);
                    std::thread::sleep(std::time::Duration::from_millis(millis));
                    println!("slept {millis} ms in handle");
                    None
                }
                (_, "alarm") => {
                    connection::set_alarm(value.parse().unwrap_or(0));
                    None
                }
                (_, "close") => {
                    connection::close(value.parse().unwrap_or(1000), "closed in handle");
                    None
                }
                (Mode::Attach, "set") => connection::set_attachment(value.as_bytes())
                    .err()
                    .map(|e| format!("too-large {}", e.max)),
                _ => None,
            };
            if let Some(refused) = refused {
                return text(400, &format!("{key}={value}: {refused}\n"));
            }
        }
        if mode == Mode::Request {
            let _ = connection::send(&Message::Text("from handle".into()));
        }
        let response = if path == "/bare" {
            // The least a guest in any language answers (docs/handlers.md): a 101 with the
            // subprotocol of `?protocol=` and nothing else; the host does the handshake.
            Response {
                status: 101,
                headers: query_pairs(&query)
                    .filter(|(key, _)| *key == "protocol")
                    .map(|(_, value)| {
                        (
                            "sec-websocket-protocol".to_owned(),
                            value.as_bytes().to_vec(),
                        )
                    })
                    .collect(),
                body: Vec::new(),
            }
        } else {
            match wsbox::handshake::accept(&request, protocol.as_deref(), wsbox::Config::default())
            {
                Ok(response) => from_http(response.map(|()| Vec::new())),
                Err(error) => return from_http(error.to_response()),
            }
        };
        STATE.set(Some(State {
            mode,
            query,
            handle_id: connection::self_id(),
            handle_path: connection::request().path,
            kicked: false,
        }));
        let mut response = response;
        if path == "/framing-101" {
            // A 101 keeps its own `upgrade: websocket`.
            let extra = hop_by_hop()
                .into_iter()
                .filter(|(name, _)| name != "upgrade");
            response.headers.extend(extra);
        }
        response
    }

    fn on_open() {
        match mode() {
            Some(Mode::Id | Mode::SendTo | Mode::CloseOther) => {
                let _ = connection::send(&Message::Text(connection::self_id()));
            }
            Some(Mode::Request) => {
                let _ = connection::send(&Message::Text(describe()));
            }
            Some(Mode::Alarm) => {
                let query = STATE.with_borrow(|s| s.as_ref().map(|s| s.query.clone()));
                let ms = query_pairs(query.as_deref().unwrap_or(""))
                    .find(|(key, _)| *key == "ms")
                    .and_then(|(_, value)| value.parse().ok());
                if let Some(ms) = ms {
                    connection::set_alarm(ms);
                }
            }
            Some(Mode::TrapOpen) => panic!("trap requested in on-open"),
            Some(Mode::Auto) => lifecycle::register_auto_responses(),
            Some(Mode::Hostile) => hostile::on_open(),
            _ => {}
        }
    }

    fn on_message(msg: Message) {
        let Some(mode) = mode() else {
            panic!("on-message without an accepted upgrade");
        };
        if mode == Mode::Print {
            let len = match &msg {
                Message::Text(text) => text.len(),
                Message::Binary(data) => data.len(),
            };
            println!("guest stdout in on-message: {len} bytes");
            eprintln!("guest stderr in on-message");
            eprint!("guest unfinished line");
            println!("long:{}", "x".repeat(3000));
        }
        if mode == Mode::Hostile {
            hostile::on_message();
        }
        match mode {
            Mode::Echo
            | Mode::Print
            | Mode::Id
            | Mode::Request
            | Mode::TrapOpen
            | Mode::TrapClose
            | Mode::Hostile => {
                let _ = connection::send(&msg);
            }
            Mode::Trap => panic!("trap requested by the test"),
            Mode::Spin => spin(),
            Mode::Alloc => hog(),
            Mode::Kick => {
                let kicked = STATE.with_borrow_mut(|s| {
                    s.as_mut()
                        .is_some_and(|s| std::mem::replace(&mut s.kicked, true))
                });
                if kicked {
                    panic!("message after the guest's close");
                }
                connection::close(1008, "kicked");
                let result = connection::send(&Message::Text("after close".into()));
                println!("send after close: {}", commands::send_result(result));
            }
            Mode::Sleep => {
                let millis = match &msg {
                    Message::Text(text) => text.parse().unwrap_or(0),
                    Message::Binary(_) => 0,
                };
                std::thread::sleep(std::time::Duration::from_millis(millis));
                let _ = connection::send(&msg);
            }
            Mode::SendTo
            | Mode::CloseOther
            | Mode::Topics
            | Mode::Alarm
            | Mode::Attach
            | Mode::Flood
            | Mode::TrapAlarm => commands::run(mode, msg),
            Mode::Count | Mode::Auto | Mode::Version | Mode::Grow => lifecycle::run(mode, msg),
        }
    }

    fn on_close(code: u16, reason: String, clean: bool) {
        println!("on-close {code} {clean} {reason}");
        if mode() == Some(Mode::TrapClose) {
            panic!("trap requested in on-close");
        }
        STATE.set(None);
    }

    fn on_alarm() {
        println!("on-alarm");
        if mode() == Some(Mode::TrapAlarm) {
            panic!("trap requested in on-alarm");
        }
        if mode() == Some(Mode::Hostile) {
            return hostile::on_alarm();
        }
        let _ = connection::send(&Message::Text("alarm".into()));
    }
}

/// What `/request` sends first: one `key=value` line each for `id`, `path`, `query`,
/// `protocol`, `x-probe` (the values of every `x-probe` header, joined by `,`), and
/// `handle-id`/`handle-path` (what `handle` saw).
fn describe() -> String {
    let info = connection::request();
    let probes: Vec<String> = info
        .headers
        .iter()
        .filter(|(name, _)| name == "x-probe")
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
        .collect();
    let (handle_id, handle_path) = STATE.with_borrow(|s| {
        s.as_ref()
            .map(|s| (s.handle_id.clone(), s.handle_path.clone()))
            .unwrap_or_default()
    });
    format!(
        "id={}\npath={}\nquery={}\nprotocol={}\nx-probe={}\n\
         handle-id={handle_id}\nhandle-path={handle_path}",
        connection::self_id(),
        info.path,
        info.query,
        info.protocol.as_deref().unwrap_or("-"),
        probes.join(","),
    )
}

fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// Headers that describe the connection or the message framing, which the host owns; the
/// `content-length` is false on purpose.
fn hop_by_hop() -> Vec<(String, Vec<u8>)> {
    [
        ("content-length", "1000"),
        ("transfer-encoding", "chunked"),
        ("connection", "x-hop"),
        ("x-hop", "1"),
        ("keep-alive", "timeout=99"),
        ("te", "trailers"),
        ("trailer", "x-trailer"),
        ("proxy-connection", "keep-alive"),
        ("proxy-authenticate", "Basic"),
        ("upgrade", "h2c"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.as_bytes().to_vec()))
    .collect()
}

fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn hog() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

fn to_http(req: &Request) -> Option<http::Request<Vec<u8>>> {
    let mut builder = http::Request::builder()
        .method(req.method.as_str())
        .uri(req.uri.as_str());
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    builder.body(req.body.clone()).ok()
}

fn from_http(response: http::Response<Vec<u8>>) -> Response {
    let (parts, body) = response.into_parts();
    Response {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect(),
        body,
    }
}

fn text(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), b"text/plain; charset=utf-8".to_vec())],
        body: body.as_bytes().to_vec(),
    }
}

bindings::export!(Handler with_types_in bindings);
