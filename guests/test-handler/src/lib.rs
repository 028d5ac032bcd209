//! A handler for the runner's tests, written against the raw WIT bindings (not the guest
//! SDK) so that it tests the runner alone. The request path picks the behaviour:
//!
//! - `/none`, `/exact`, `/pick`: echo, choosing the subprotocol in each of the three ways
//!   (none; exactly `echo`, refused if not offered; the first offered of `v1.chat`, `v2.chat`);
//! - `/trap`, `/spin`, `/alloc`: accept, then on the first message panic, loop forever, or
//!   allocate without bound;
//! - `/trap-handshake`: panic in `handle`;
//! - `/print`: echo, printing to stdout and stderr in `handle` and each `on-bytes` (a
//!   line per stream, an unfinished line, and a line longer than the runner's limit);
//! - `/env`: a 200 whose body lists the environment the guest sees;
//! - `/framing`, `/framing-101`: a 200, or an accepted upgrade (then echo), that also sets
//!   framing and hop-by-hop headers (a false `content-length`, `transfer-encoding`,
//!   `connection` naming another header, …) for the runner to drop.
//! - `/kick`: on the first message, starts the close handshake with 1008; a data message
//!   after that panics (a fault once the close frame is out);
//! - `/sleep`: each message is a number of milliseconds to sleep (a blocking WASI call)
//!   before echoing it;
//! - `/file`: a 200 whose body is `/data/greeting.txt` (granted by `--dir`), else a 404
//!   saying why.
//!
//! Every mode prints `on-peer-gone` to stdout when the host calls it, for the tests to see.

use std::cell::RefCell;

use wsbox::session::{Event, Session};

mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "handler-component" });
}

use bindings::exports::wsbox::websocket::handler::{Guest, Reply};
use bindings::wsbox::websocket::types::{Limits, Request, Response};

#[derive(Clone, Copy)]
enum Mode {
    Echo,
    /// Echo, after a 101 carrying hop-by-hop headers.
    Framing,
    Print,
    Trap,
    Spin,
    Alloc,
    Kick,
    Sleep,
}

struct Connection {
    session: Session,
    mode: Mode,
}

thread_local! {
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

struct Handler;

impl Guest for Handler {
    fn handle(req: Request, limits: Limits) -> Response {
        let request = match to_http(&req) {
            Some(request) => request,
            None => return text(400, "unparsable request\n"),
        };
        let path = request.uri().path().to_owned();
        let (protocol, mode) = match path.as_str() {
            "/none" => (None, Mode::Echo),
            "/exact" => (Some("echo".to_owned()), Mode::Echo),
            "/pick" => (
                wsbox::requested_protocols(&request).find(|p| p == "v1.chat" || p == "v2.chat"),
                Mode::Echo,
            ),
            "/print" => {
                println!("guest stdout in handle");
                eprintln!("guest stderr in handle");
                (None, Mode::Print)
            }
            "/trap" => (None, Mode::Trap),
            "/spin" => (None, Mode::Spin),
            "/alloc" => (None, Mode::Alloc),
            "/kick" => (None, Mode::Kick),
            "/sleep" => (None, Mode::Sleep),
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
            "/framing-101" => (None, Mode::Framing),
            "/env" => {
                let vars: Vec<String> = std::env::vars()
                    .map(|(k, v)| format!("{k}={v}\n"))
                    .collect();
                return text(200, &vars.concat());
            }
            _ => return text(404, "not found\n"),
        };
        let config = wsbox::Config::default()
            .max_frame_size(usize::try_from(limits.max_frame_size).unwrap_or(usize::MAX))
            .max_message_size(usize::try_from(limits.max_message_size).unwrap_or(usize::MAX));
        match wsbox::handshake::accept(&request, protocol.as_deref(), config) {
            Ok(response) => {
                CONNECTION.set(Some(Connection {
                    session: Session::server(config),
                    mode,
                }));
                let mut response = from_http(response.map(|()| Vec::new()));
                if let Mode::Framing = mode {
                    // A 101 keeps its own `upgrade: websocket`.
                    let extra = hop_by_hop()
                        .into_iter()
                        .filter(|(name, _)| name != "upgrade");
                    response.headers.extend(extra);
                }
                response
            }
            Err(error) => from_http(error.to_response()),
        }
    }

    fn on_bytes(data: Vec<u8>) -> Reply {
        with_connection(|connection| {
            if let Mode::Print = connection.mode {
                println!("guest stdout in on-bytes: {} bytes", data.len());
                eprintln!("guest stderr in on-bytes");
                eprint!("guest unfinished line");
                println!("long:{}", "x".repeat(3000));
            }
            // A violation queues its close frame, sent below like any other output.
            let mut input = &data[..];
            while let Some(event) = connection.session.next_event(&mut input) {
                if let Event::Message(message) = event {
                    match connection.mode {
                        Mode::Echo | Mode::Framing | Mode::Print => {
                            let _ = connection.session.send_message(&message);
                        }
                        Mode::Trap => panic!("trap requested by the test"),
                        Mode::Spin => spin(),
                        Mode::Alloc => hog(),
                        Mode::Kick if connection.session.is_closed() => {
                            panic!("message after the guest's close")
                        }
                        Mode::Kick => {
                            let _ = connection.session.close(1008u16, "kicked");
                        }
                        Mode::Sleep => {
                            let millis = std::str::from_utf8(message.as_bytes())
                                .ok()
                                .and_then(|text| text.parse().ok())
                                .unwrap_or(0);
                            std::thread::sleep(std::time::Duration::from_millis(millis));
                            let _ = connection.session.send_message(&message);
                        }
                    }
                }
            }
        })
    }

    fn on_close_request(code: u16, reason: String) -> Reply {
        with_connection(|connection| {
            let _ = connection.session.close(code, &reason);
        })
    }

    fn on_peer_gone() {
        println!("on-peer-gone");
        CONNECTION.set(None);
    }
}

fn with_connection(f: impl FnOnce(&mut Connection)) -> Reply {
    CONNECTION.with_borrow_mut(|slot| match slot {
        Some(connection) => {
            f(connection);
            let mut data = Vec::new();
            while connection.session.poll_transmit(&mut data) {}
            Reply {
                data,
                close: connection.session.is_finished(),
            }
        }
        None => Reply {
            data: Vec::new(),
            close: true,
        },
    })
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
