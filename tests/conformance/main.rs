//! Conformance of the library's server against hand-built bytes over a real socket, one
//! table per Autobahn TestSuite category (framing, pings, reserved bits, opcodes,
//! fragmentation, UTF-8, limits, close codes) plus the opening handshake.
//!
//! Each row is written to a fresh connection to `wsbox::server::Server` running an echo
//! handler on 127.0.0.1; the row lists every frame the server must send back, in order,
//! ending with its close frame, after which the server must close the TCP connection.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use wsbox::server::Server;

/// How long any single read may wait for the server.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The pause between the writes of a row that is split into several writes, so that they
/// reach the server as separate reads.
const WRITE_GAP: Duration = Duration::from_millis(10);

const FIN: u8 = 0x80;
const CONT: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// The limits of the second server, small enough to reach in a test.
const MAX_FRAME: usize = 1000;
const MAX_MESSAGE: usize = 2000;

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

// ---------------------------------------------------------------------------------------
// The servers under test.

fn echo_server(config: wsbox::Config) -> SocketAddr {
    let server = Server::bind("127.0.0.1:0", move |request: &http::Request<Vec<u8>>| {
        match wsbox::start_with_config(request, None::<&str>, config) {
            Ok((response, websocket)) => {
                thread::spawn(move || {
                    if let Ok(mut websocket) = websocket.recv() {
                        while let Some(message) = websocket.next() {
                            let sent = match message {
                                wsbox::Message::Text(text) => websocket.send_text(&text),
                                wsbox::Message::Binary(data) => websocket.send_binary(&data),
                            };
                            if sent.is_err() {
                                break;
                            }
                        }
                    }
                });
                response.map(|()| Vec::new())
            }
            Err(error) => error.to_response(),
        }
    })
    .expect("bind 127.0.0.1:0");
    let addr = server.local_addr().expect("local_addr");
    thread::spawn(move || server.run());
    addr
}

fn default_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| echo_server(wsbox::Config::default()))
}

fn limited_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        echo_server(
            wsbox::Config::default()
                .max_frame_size(MAX_FRAME)
                .max_message_size(MAX_MESSAGE),
        )
    })
}

// ---------------------------------------------------------------------------------------
// Hand-built client frames.

/// The header of a masked frame whose first byte is `b0` (FIN, RSV and opcode) and whose
/// declared payload length is `len`, in the shortest encoding.
fn header(b0: u8, len: u64) -> Vec<u8> {
    let mut out = vec![b0];
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out
}

/// A complete masked frame, masked byte by byte as RFC 6455 §5.3 defines it.
fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(b0, payload.len() as u64);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

fn text(s: &str) -> Vec<u8> {
    frame(FIN | TEXT, s.as_bytes())
}

fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    frame(FIN | CLOSE, &payload)
}

fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// `bytes` cut at the given offsets, one write per piece.
fn cut(bytes: &[u8], at: &[usize]) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for &end in at.iter().chain(std::iter::once(&bytes.len())) {
        pieces.push(bytes[start..end].to_vec());
        start = end;
    }
    pieces
}

// ---------------------------------------------------------------------------------------
// The table.

/// A frame the server sends: opcode (FIN is always set) and payload.
type Reply = (u8, Vec<u8>);

struct Case {
    name: String,
    limited: bool,
    /// Written together with the handshake request, before its response arrives.
    with_request: Vec<u8>,
    writes: Vec<Vec<u8>>,
    replies: Vec<Reply>,
}

/// The server echoes and stays open: after `replies`, our normal close is answered with
/// 1000 and the connection ends.
fn echo(name: impl Into<String>, writes: Vec<Vec<u8>>, mut replies: Vec<Reply>) -> Case {
    let mut writes = writes;
    writes.push(close_frame(1000, b""));
    replies.push(close_reply(1000));
    Case {
        name: name.into(),
        limited: false,
        with_request: Vec::new(),
        writes,
        replies,
    }
}

/// The server sends `replies` and then fails the connection with `code`.
fn fails(
    name: impl Into<String>,
    writes: Vec<Vec<u8>>,
    mut replies: Vec<Reply>,
    code: u16,
) -> Case {
    replies.push(close_reply(code));
    Case {
        name: name.into(),
        limited: false,
        with_request: Vec::new(),
        writes,
        replies,
    }
}

/// Moves the case's first write into the handshake request's write.
fn pipelined(mut case: Case) -> Case {
    case.with_request = case.writes.remove(0);
    case
}

fn limited(mut case: Case) -> Case {
    case.limited = true;
    case
}

fn close_reply(code: u16) -> Reply {
    (CLOSE, code.to_be_bytes().to_vec())
}

fn text_reply(s: &str) -> Reply {
    (TEXT, s.as_bytes().to_vec())
}

fn binary_reply(data: &[u8]) -> Reply {
    (BINARY, data.to_vec())
}

/// Runs every case, each on its own connection, and fails naming every case that failed.
fn run(cases: Vec<Case>) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| run_case(case).err().map(|e| format!("{}: {e}", case.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
}

fn run_case(case: &Case) -> Result<(), String> {
    let addr = if case.limited {
        limited_server()
    } else {
        default_server()
    };
    let mut stream = open(addr, &case.with_request)?;
    for (i, bytes) in case.writes.iter().enumerate() {
        if i > 0 {
            thread::sleep(WRITE_GAP);
        }
        stream
            .write_all(bytes)
            .map_err(|e| format!("write {i} failed: {e}"))?;
    }
    for (i, (opcode, payload)) in case.replies.iter().enumerate() {
        let (got_opcode, got_payload) =
            read_frame(&mut stream).map_err(|e| format!("reply {i}: {e}"))?;
        if (got_opcode, &got_payload) != (*opcode, payload) {
            return Err(format!(
                "reply {i}: expected opcode {opcode:#x} with {}, got opcode {got_opcode:#x} with {}",
                show(payload),
                show(&got_payload)
            ));
        }
    }
    expect_eof(&mut stream)
}

fn show(payload: &[u8]) -> String {
    if payload.len() > 32 {
        format!("{} bytes", payload.len())
    } else {
        format!("{payload:02x?}")
    }
}

// ---------------------------------------------------------------------------------------
// The raw client.

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// RFC 6455 §1.3's accept value for `KEY`.
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| format!("socket options: {e}"))?;
    Ok(stream)
}

/// Connects and performs the opening handshake by hand, sending `with_request` in the same
/// write as the request.
fn open(addr: SocketAddr, with_request: &[u8]) -> Result<TcpStream, String> {
    let mut stream = connect(addr)?;
    let mut request = format!(
        "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    request.extend_from_slice(with_request);
    stream
        .write_all(&request)
        .map_err(|e| format!("write handshake: {e}"))?;
    let response = read_response(&mut stream)?;
    if response.status != 101 {
        return Err(format!("handshake answered {}", response.status));
    }
    if response.header("sec-websocket-accept") != Some(ACCEPT) {
        return Err(format!(
            "wrong Sec-WebSocket-Accept {:?}",
            response.header("sec-websocket-accept")
        ));
    }
    Ok(stream)
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a response head byte by byte (so no frame bytes are consumed), then its
/// `Content-Length` body.
fn read_response(stream: &mut TcpStream) -> Result<HttpResponse, String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => return Err(format!("connection closed in the response head {head:?}")),
            Err(e) => return Err(format!("reading the response head: {e}")),
        }
        if head.len() > 16 << 10 {
            return Err("response head over 16 KiB".into());
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        other => return Err(format!("unparsable response head: {other:?}")),
    }
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let mut response = HttpResponse {
        status: parsed.code.unwrap_or(0),
        headers,
        body: Vec::new(),
    };
    let length: usize = match response.header("content-length") {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("bad Content-Length {v:?}"))?,
        None => 0,
    };
    response.body = vec![0; length];
    stream
        .read_exact(&mut response.body)
        .map_err(|e| format!("reading the body: {e}"))?;
    Ok(response)
}

/// Reads one server frame; it must be final and unmasked (§5.1).
fn read_frame(stream: &mut TcpStream) -> Result<(u8, Vec<u8>), String> {
    let mut head = [0u8; 2];
    read_exact(stream, &mut head)?;
    if head[0] & 0xF0 != FIN {
        return Err(format!("FIN/RSV bits {:#x} in a server frame", head[0]));
    }
    if head[1] & 0x80 != 0 {
        return Err("server frame is masked".into());
    }
    let len = match head[1] & 0x7F {
        126 => {
            let mut ext = [0u8; 2];
            read_exact(stream, &mut ext)?;
            u64::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            read_exact(stream, &mut ext)?;
            u64::from_be_bytes(ext)
        }
        n => u64::from(n),
    };
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n <= 1 << 20)
        .ok_or_else(|| format!("server frame of {len} bytes"))?;
    let mut payload = vec![0; len];
    read_exact(stream, &mut payload)?;
    Ok((head[0] & 0x0F, payload))
}

fn read_exact(stream: &mut TcpStream, buf: &mut [u8]) -> Result<(), String> {
    stream.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => "connection closed before the expected frame".into(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no frame within {TIMEOUT:?}")
        }
        _ => format!("read failed: {e}"),
    })
}

/// After its close frame the server must close the TCP connection: a read returns 0.
fn expect_eof(stream: &mut TcpStream) -> Result<(), String> {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!(
            "{n} more bytes after the close: {:02x?}",
            &buf[..n]
        )),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(format!(
                "the server did not close the connection within {TIMEOUT:?}"
            ))
        }
        Err(e) => Err(format!("expected a clean end of stream, got {e}")),
    }
}

// ---------------------------------------------------------------------------------------
// The categories.

#[test]
fn framing() {
    let mut cases = Vec::new();
    for len in [0usize, 125, 126, 127, 65535, 65536] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        cases.push(echo(
            format!("binary of {len} bytes"),
            vec![frame(FIN | BINARY, &data)],
            vec![binary_reply(&data)],
        ));
        let s = "*".repeat(len);
        cases.push(echo(
            format!("text of {len} bytes"),
            vec![text(&s)],
            vec![text_reply(&s)],
        ));
    }
    let data: Vec<u8> = (0..300).map(|i| i as u8).collect();
    let wire = frame(FIN | BINARY, &data);
    // Cut inside the first two bytes, the extended length, the mask and the payload.
    cases.push(echo(
        "one frame split across seven writes",
        cut(&wire, &[1, 2, 3, 6, 9, 100, 250]),
        vec![binary_reply(&data)],
    ));
    let wire = text("Hello, split world");
    let every_byte: Vec<usize> = (1..wire.len()).collect();
    cases.push(echo(
        "one frame written a byte at a time",
        cut(&wire, &every_byte),
        vec![text_reply("Hello, split world")],
    ));
    let messages: Vec<String> = (0..100).map(|i| format!("message {i}")).collect();
    cases.push(echo(
        "100 frames in one write",
        vec![
            messages
                .iter()
                .map(|m| text(m))
                .collect::<Vec<_>>()
                .concat(),
        ],
        messages.iter().map(|m| text_reply(m)).collect(),
    ));
    let three = concat(&[text("one"), frame(FIN | BINARY, &[2; 200]), text("three")]);
    cases.push(echo(
        "three frames cut at arbitrary points",
        cut(&three, &[5, 17, 40, 212]),
        vec![
            text_reply("one"),
            binary_reply(&[2; 200]),
            text_reply("three"),
        ],
    ));
    let mut huge = vec![FIN | BINARY, 0x80 | 127];
    huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
    huge.extend_from_slice(&MASK);
    cases.push(fails(
        "64-bit length with the top bit set",
        vec![huge],
        vec![],
        1002,
    ));
    cases.push(fails(
        "unmasked client frame",
        vec![vec![FIN | TEXT, 2, b'h', b'i']],
        vec![],
        1002,
    ));
    cases.push(fails(
        "unmasked ping after a message",
        vec![text("ok"), vec![FIN | PING, 0]],
        vec![text_reply("ok")],
        1002,
    ));
    run(cases);
}

#[test]
fn pings() {
    let p125: Vec<u8> = (0..125).collect();
    let p126: Vec<u8> = (0..126).collect();
    let pings: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; usize::from(i)]).collect();
    run(vec![
        echo(
            "ping payload echoed in the pong",
            vec![frame(FIN | PING, b"Hello")],
            vec![(PONG, b"Hello".to_vec())],
        ),
        echo(
            "empty ping",
            vec![frame(FIN | PING, b"")],
            vec![(PONG, vec![])],
        ),
        echo(
            "binary ping payload",
            vec![frame(
                FIN | PING,
                &[0x00, 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0x00, 0xFF],
            )],
            vec![(PONG, vec![0x00, 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0x00, 0xFF])],
        ),
        echo(
            "125-byte ping",
            vec![frame(FIN | PING, &p125)],
            vec![(PONG, p125.clone())],
        ),
        fails(
            "126-byte ping",
            vec![frame(FIN | PING, &p126)],
            vec![],
            1002,
        ),
        echo(
            "unsolicited pong is ignored",
            vec![concat(&[frame(FIN | PONG, b"unasked"), text("after")])],
            vec![text_reply("after")],
        ),
        echo(
            "unsolicited empty pong is ignored",
            vec![frame(FIN | PONG, b""), text("after")],
            vec![text_reply("after")],
        ),
        echo(
            "ten pings in one write answered in order",
            vec![
                pings
                    .iter()
                    .map(|p| frame(FIN | PING, p))
                    .collect::<Vec<_>>()
                    .concat(),
            ],
            pings.iter().map(|p| (PONG, p.clone())).collect(),
        ),
        echo(
            "ping split across writes",
            cut(&frame(FIN | PING, b"split ping"), &[1, 4, 9]),
            vec![(PONG, b"split ping".to_vec())],
        ),
    ]);
}

#[test]
fn reserved_bits() {
    let mut cases = Vec::new();
    for (rsv, bits) in [
        ("RSV1", 0x40),
        ("RSV2", 0x20),
        ("RSV3", 0x10),
        ("RSV1-3", 0x70),
    ] {
        cases.push(fails(
            format!("{rsv} on a text frame"),
            vec![frame(FIN | bits | TEXT, b"Hello")],
            vec![],
            1002,
        ));
        cases.push(fails(
            format!("{rsv} on a binary frame after a good message"),
            vec![
                text("good"),
                concat(&[
                    frame(FIN | bits | BINARY, &[1, 2, 3]),
                    frame(FIN | PING, b"unanswered"),
                ]),
            ],
            vec![text_reply("good")],
            1002,
        ));
        cases.push(fails(
            format!("{rsv} on a ping"),
            vec![frame(FIN | bits | PING, b"ping")],
            vec![],
            1002,
        ));
        cases.push(fails(
            format!("{rsv} on a close"),
            vec![frame(FIN | bits | CLOSE, &1000u16.to_be_bytes())],
            vec![],
            1002,
        ));
    }
    run(cases);
}

#[test]
fn opcodes() {
    let mut cases = Vec::new();
    for op in (0x3..=0x7).chain(0xB..=0xF) {
        cases.push(fails(
            format!("reserved opcode {op:#x}"),
            vec![frame(FIN | op, b"")],
            vec![],
            1002,
        ));
        // A good message first, then the reserved frame with a payload and a ping that must
        // go unanswered.
        cases.push(fails(
            format!("reserved opcode {op:#x} with payload after a message"),
            vec![
                text("before"),
                concat(&[frame(FIN | op, b"reserved"), frame(FIN | PING, b"")]),
            ],
            vec![text_reply("before")],
            1002,
        ));
    }
    run(cases);
}

#[test]
fn fragmentation() {
    let many: Vec<Vec<u8>> = (0..20)
        .map(|i| {
            let b0 = if i == 0 { TEXT } else { CONT } | if i == 19 { FIN } else { 0 };
            frame(b0, format!("{i},").as_bytes())
        })
        .collect();
    let joined: String = (0..20).map(|i| format!("{i},")).collect();
    run(vec![
        echo(
            "text in three fragments",
            vec![concat(&[
                frame(TEXT, b"frag"),
                frame(CONT, b"men"),
                frame(FIN | CONT, b"ted"),
            ])],
            vec![text_reply("fragmented")],
        ),
        echo(
            "binary in two fragments",
            vec![concat(&[
                frame(BINARY, &[1, 2, 3]),
                frame(FIN | CONT, &[4, 5]),
            ])],
            vec![binary_reply(&[1, 2, 3, 4, 5])],
        ),
        echo(
            "fragments in separate writes",
            vec![
                frame(TEXT, b"frag"),
                frame(CONT, b"men"),
                frame(FIN | CONT, b"ted"),
            ],
            vec![text_reply("fragmented")],
        ),
        echo(
            "twenty fragments",
            vec![many.concat()],
            vec![text_reply(&joined)],
        ),
        echo(
            "empty fragments",
            vec![concat(&[
                frame(TEXT, b""),
                frame(CONT, b"abc"),
                frame(CONT, b""),
                frame(FIN | CONT, b""),
            ])],
            vec![text_reply("abc")],
        ),
        echo(
            "empty fragmented message",
            vec![concat(&[frame(BINARY, b""), frame(FIN | CONT, b"")])],
            vec![binary_reply(&[])],
        ),
        echo(
            "ping between fragments",
            vec![concat(&[
                frame(TEXT, b"Hel"),
                frame(FIN | PING, b"in between"),
                frame(FIN | CONT, b"lo"),
            ])],
            vec![(PONG, b"in between".to_vec()), text_reply("Hello")],
        ),
        echo(
            "ping between fragments in separate writes",
            vec![
                frame(BINARY, b"Hel"),
                frame(FIN | PING, b"p"),
                frame(FIN | CONT, b"lo"),
            ],
            vec![(PONG, b"p".to_vec()), binary_reply(b"Hello")],
        ),
        echo(
            "pong between fragments is ignored",
            vec![concat(&[
                frame(TEXT, b"Hel"),
                frame(FIN | PONG, b"ignored"),
                frame(FIN | CONT, b"lo"),
            ])],
            vec![text_reply("Hello")],
        ),
        fails(
            "continuation without a start",
            vec![frame(FIN | CONT, b"orphan")],
            vec![],
            1002,
        ),
        fails(
            "unfinished continuation without a start",
            vec![frame(CONT, b"orphan")],
            vec![],
            1002,
        ),
        fails(
            "continuation after a complete message",
            vec![text("done"), frame(FIN | CONT, b"more")],
            vec![text_reply("done")],
            1002,
        ),
        fails(
            "new text frame mid-message",
            vec![concat(&[frame(TEXT, b"first"), text("second")])],
            vec![],
            1002,
        ),
        fails(
            "new binary frame mid-text-message",
            vec![concat(&[frame(TEXT, b"first"), frame(FIN | BINARY, b"x")])],
            vec![],
            1002,
        ),
        fails(
            "fragmented ping",
            vec![concat(&[frame(PING, b"frag"), frame(FIN | CONT, b"ment")])],
            vec![],
            1002,
        ),
        fails("fragmented pong", vec![frame(PONG, b"frag")], vec![], 1002),
        fails(
            "fragmented close",
            vec![frame(CLOSE, &1000u16.to_be_bytes())],
            vec![],
            1002,
        ),
        fails(
            "fragmented ping inside a fragmented message",
            vec![concat(&[frame(TEXT, b"a"), frame(PING, b"b")])],
            vec![],
            1002,
        ),
    ]);
}

#[test]
fn utf8() {
    let kosme = "κόσμε";
    let clef = "𝄞 and \u{10FFFF}";
    // Every byte of a multi-byte text in its own fragment: most cuts fall inside a code point.
    let bytes = "κόσμε𝄞".as_bytes();
    let per_byte: Vec<u8> = bytes
        .iter()
        .enumerate()
        .flat_map(|(i, b)| {
            let op = if i == 0 { TEXT } else { CONT };
            let fin = if i + 1 == bytes.len() { FIN } else { 0 };
            frame(op | fin, &[*b])
        })
        .collect();
    // Autobahn 6.3.1: κόσμε, then a UTF-16 surrogate, then "edited".
    let autobahn_631 = [
        0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80, 0x65,
        0x64, 0x69, 0x74, 0x65, 0x64,
    ];
    // A frame announcing 20 bytes of which only the first five (already invalid) are sent.
    let mut invalid_start = [b'a'; 20];
    invalid_start[..5].copy_from_slice(&[b'o', b'k', 0xce, 0xba, 0xff]);
    let partial_frame = frame(FIN | TEXT, &invalid_start)[..6 + 5].to_vec();
    run(vec![
        echo("valid Greek", vec![text(kosme)], vec![text_reply(kosme)]),
        echo(
            "4-byte code points and U+10FFFF",
            vec![text(clef)],
            vec![text_reply(clef)],
        ),
        echo(
            "fragments cut at code point boundaries",
            vec![concat(&[
                frame(TEXT, "κό".as_bytes()),
                frame(FIN | CONT, "σμε".as_bytes()),
            ])],
            vec![text_reply(kosme)],
        ),
        echo(
            "one byte per fragment, cuts inside code points",
            vec![per_byte],
            vec![text_reply("κόσμε𝄞")],
        ),
        echo(
            "a code point split across frames in separate writes",
            vec![frame(TEXT, &[0xf0, 0x9d]), frame(FIN | CONT, &[0x84, 0x9e])],
            vec![text_reply("𝄞")],
        ),
        echo(
            "invalid UTF-8 in a binary message is not checked",
            vec![frame(FIN | BINARY, &[0xff, 0xfe, 0xc0, 0xaf])],
            vec![binary_reply(&[0xff, 0xfe, 0xc0, 0xaf])],
        ),
        fails(
            "Autobahn 6.3.1 surrogate in a frame",
            vec![frame(FIN | TEXT, &autobahn_631)],
            vec![],
            1007,
        ),
        fails(
            "0xff byte",
            vec![frame(FIN | TEXT, &[b'a', 0xff])],
            vec![],
            1007,
        ),
        fails(
            "overlong encoding of '/'",
            vec![frame(FIN | TEXT, &[0xc0, 0xaf])],
            vec![],
            1007,
        ),
        fails(
            "code point above U+10FFFF",
            vec![frame(FIN | TEXT, &[0xf4, 0x90, 0x80, 0x80])],
            vec![],
            1007,
        ),
        fails(
            "message ends inside a code point",
            vec![frame(FIN | TEXT, &[b'a', 0xce])],
            vec![],
            1007,
        ),
        fails(
            "fragmented message ends inside a code point",
            vec![concat(&[frame(TEXT, &[0xce]), frame(FIN | CONT, b"")])],
            vec![],
            1007,
        ),
        fails(
            "invalid in a first fragment, before the message ends",
            vec![frame(TEXT, &[b'o', b'k', 0xce, 0xba, 0xff])],
            vec![],
            1007,
        ),
        fails(
            "invalid sequence across two unfinished fragments",
            vec![frame(TEXT, &[b'a', 0xf4]), frame(CONT, &[0x90, 0x80])],
            vec![],
            1007,
        ),
        fails(
            "invalid within a frame whose payload has not all arrived",
            vec![partial_frame],
            vec![],
            1007,
        ),
        fails(
            "valid message, then an invalid one",
            vec![text(kosme), frame(FIN | TEXT, &autobahn_631)],
            vec![text_reply(kosme)],
            1007,
        ),
    ]);
}

#[test]
fn limits() {
    let at_frame_limit = vec![0x5A; MAX_FRAME];
    let half = "h".repeat(MAX_MESSAGE / 2);
    run(vec![
        limited(echo(
            "frame exactly at the frame limit",
            vec![frame(FIN | BINARY, &at_frame_limit)],
            vec![binary_reply(&at_frame_limit)],
        )),
        // Only the header is sent: the declared length alone must be refused.
        limited(fails(
            "frame one byte over the frame limit",
            vec![header(FIN | BINARY, MAX_FRAME as u64 + 1)],
            vec![],
            1009,
        )),
        limited(fails(
            "frame declaring 2^62 bytes",
            vec![header(FIN | TEXT, 1 << 62)],
            vec![],
            1009,
        )),
        limited(echo(
            "message exactly at the message limit",
            vec![concat(&[
                frame(TEXT, half.as_bytes()),
                frame(FIN | CONT, half.as_bytes()),
            ])],
            vec![text_reply(&format!("{half}{half}"))],
        )),
        limited(fails(
            "message one byte over the message limit",
            vec![concat(&[
                frame(TEXT, half.as_bytes()),
                frame(CONT, half.as_bytes()),
                header(FIN | CONT, 1),
            ])],
            vec![],
            1009,
        )),
        limited(echo(
            "limit applies per message",
            vec![concat(&[
                frame(FIN | BINARY, &at_frame_limit),
                frame(FIN | BINARY, &at_frame_limit),
                frame(FIN | BINARY, &at_frame_limit),
            ])],
            vec![
                binary_reply(&at_frame_limit),
                binary_reply(&at_frame_limit),
                binary_reply(&at_frame_limit),
            ],
        )),
    ]);
}

#[test]
fn close_codes() {
    let mut cases = Vec::new();
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999,
    ] {
        cases.push(fails(
            format!("close {code} is echoed"),
            vec![close_frame(code, b"")],
            vec![],
            code,
        ));
    }
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        cases.push(fails(
            format!("close {code} is refused"),
            vec![close_frame(code, b"")],
            vec![],
            1002,
        ));
    }
    cases.push(fails(
        "close with a reason is answered with the code",
        vec![close_frame(1000, b"Goodbye")],
        vec![],
        1000,
    ));
    cases.push(fails(
        "close with a 123-byte reason",
        vec![close_frame(4000, &[b'r'; 123])],
        vec![],
        4000,
    ));
    cases.push(fails(
        "1-byte close payload",
        vec![frame(FIN | CLOSE, &[0x03])],
        vec![],
        1002,
    ));
    cases.push(fails(
        "close reason that is not UTF-8",
        vec![close_frame(
            1000,
            &[
                0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
            ],
        )],
        vec![],
        1007,
    ));
    cases.push(Case {
        name: "empty close is answered with an empty close".into(),
        limited: false,
        with_request: Vec::new(),
        writes: vec![frame(FIN | CLOSE, b"")],
        replies: vec![(CLOSE, vec![])],
    });
    cases.push(fails(
        "frames after the close are ignored",
        vec![concat(&[
            close_frame(1000, b""),
            text("too late"),
            frame(FIN | PING, b"too late"),
        ])],
        vec![],
        1000,
    ));
    cases.push(fails(
        "close after a message",
        vec![text("last"), close_frame(1001, b"")],
        vec![text_reply("last")],
        1001,
    ));
    // `Websocket` feeds the session one event at a time, so a message read in the same chunk
    // as a close (or a violation) reaches the handler, and its reply goes out, before our
    // close frame (Autobahn's STRICT ordering).
    cases.push(fails(
        "message and close in one write: the echo goes first",
        vec![concat(&[text("last"), close_frame(1001, b"")])],
        vec![text_reply("last")],
        1001,
    ));
    cases.push(fails(
        "message and violation in one write: the echo goes first",
        vec![concat(&[text("good"), frame(FIN | 0x40 | TEXT, b"bad")])],
        vec![text_reply("good")],
        1002,
    ));
    cases.push(fails(
        "close between fragments",
        vec![concat(&[
            frame(TEXT, b"unfinished"),
            close_frame(1000, b""),
        ])],
        vec![],
        1000,
    ));
    run(cases);
}

/// Frames that a client sends right behind its request reach the server in the same read
/// as the request; they must be answered like any others.
#[test]
fn frames_pipelined_with_the_request() {
    run(vec![
        pipelined(echo(
            "ping",
            vec![frame(FIN | PING, b"early")],
            vec![(PONG, b"early".to_vec())],
        )),
        pipelined(echo("text", vec![text("early")], vec![text_reply("early")])),
        pipelined(fails("close", vec![close_frame(1000, b"")], vec![], 1000)),
        pipelined(fails(
            "protocol violation",
            vec![frame(FIN | 0x3, b"")],
            vec![],
            1002,
        )),
    ]);
}

// ---------------------------------------------------------------------------------------
// The opening handshake.

struct HandshakeCase {
    name: &'static str,
    request: String,
    status: u16,
    body: &'static str,
    header: Option<(&'static str, &'static str)>,
}

fn upgrade_request(method: &str, key: Option<&str>, version: &str) -> String {
    let key = key.map_or(String::new(), |k| format!("Sec-WebSocket-Key: {k}\r\n"));
    format!(
        "{method} / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         {key}Sec-WebSocket-Version: {version}\r\n\r\n"
    )
}

#[test]
fn handshake() {
    // Exactly the server's 16 KiB head limit, unfinished.
    let prefix = "GET / HTTP/1.1\r\nHost: localhost\r\nX-Fill: ";
    let huge = format!("{prefix}{}", "a".repeat((16 << 10) - prefix.len()));
    let cases = [
        HandshakeCase {
            name: "missing key",
            request: upgrade_request("GET", None, "13"),
            status: 400,
            body: "invalid websocket request: missing or repeated Sec-WebSocket-Key header\n",
            header: None,
        },
        HandshakeCase {
            name: "key of 5 bytes",
            request: upgrade_request("GET", Some("dG9vc2hvcnQ="), "13"),
            status: 400,
            body: "invalid websocket request: Sec-WebSocket-Key must be base64 of 16 bytes\n",
            header: None,
        },
        HandshakeCase {
            name: "version 8",
            request: upgrade_request("GET", Some(KEY), "8"),
            status: 426,
            body: "invalid websocket request: Sec-WebSocket-Version must be 13\n",
            header: Some(("sec-websocket-version", "13")),
        },
        HandshakeCase {
            name: "POST",
            request: upgrade_request("POST", Some(KEY), "13"),
            status: 400,
            body: "invalid websocket request: method must be GET\n",
            header: None,
        },
        HandshakeCase {
            name: "head too large",
            request: huge,
            status: 431,
            body: "request head too large\n",
            header: None,
        },
        HandshakeCase {
            name: "valid",
            request: upgrade_request("GET", Some(KEY), "13"),
            status: 101,
            body: "",
            header: Some(("sec-websocket-accept", ACCEPT)),
        },
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let outcome = connect(default_server()).and_then(|mut stream| {
            stream
                .write_all(case.request.as_bytes())
                .map_err(|e| format!("write: {e}"))?;
            read_response(&mut stream)
        });
        let problem = match outcome {
            Err(e) => Some(e),
            Ok(r) if r.status != case.status => {
                Some(format!("status {} instead of {}", r.status, case.status))
            }
            Ok(r) if r.body != case.body.as_bytes() => Some(format!(
                "body {:?} instead of {:?}",
                String::from_utf8_lossy(&r.body),
                case.body
            )),
            Ok(r) => case.header.and_then(|(name, value)| {
                (r.header(name) != Some(value))
                    .then(|| format!("{name}: {:?} instead of {value:?}", r.header(name)))
            }),
        };
        if let Some(problem) = problem {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
