//! Conformance of the server role against hand-built bytes, one table per Autobahn
//! TestSuite category (framing, pings, reserved bits and opcodes, fragmentation, UTF-8,
//! limits, close codes) plus the opening handshake.
//!
//! Every row runs twice, through one harness: over a real socket to `wsbox::server::Server`
//! running an echo handler on 127.0.0.1 ([`socket`]), and against an in-memory
//! `Session` driven the same way ([`memory`]), so a failure tells the protocol core from
//! the blocking edge around it. A row lists every frame the server must send back, in
//! order, ending with its close frame, after which the server must be done (close the TCP
//! connection; be finished with nothing more to send).

use std::io::{self, Read};

mod close;
mod fragmentation;
mod framing;
mod handshake;
mod limits;
mod memory;
mod pings;
mod reserved;
mod socket;
mod utf8;

const FIN: u8 = 0x80;
const CONT: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// The limits of the rows marked [`limited`], small enough to reach in a test.
const MAX_FRAME: usize = 1000;
const MAX_MESSAGE: usize = 2000;

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// The limits a row runs with.
fn config(limited: bool) -> wsbox::Config {
    if limited {
        wsbox::Config::default()
            .max_frame_size(MAX_FRAME)
            .max_message_size(MAX_MESSAGE)
    } else {
        wsbox::Config::default()
    }
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

/// Runs every case over the socket and in memory, and fails naming every case that failed
/// and where.
fn run(cases: Vec<Case>) {
    let failures: Vec<String> = cases
        .iter()
        .flat_map(|case| {
            [
                ("socket", socket::run_case(case)),
                ("memory", memory::run_case(case)),
            ]
            .into_iter()
            .filter_map(move |(how, outcome)| {
                outcome.err().map(|e| format!("{how}: {}: {e}", case.name))
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures in {} cases:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
}

/// Compares the frames read from `from` (the server's output) with `case.replies`.
fn expect_replies(case: &Case, from: &mut impl Read) -> Result<(), String> {
    for (i, (opcode, payload)) in case.replies.iter().enumerate() {
        let (got_opcode, got_payload) = read_frame(from).map_err(|e| format!("reply {i}: {e}"))?;
        if (got_opcode, &got_payload) != (*opcode, payload) {
            return Err(format!(
                "reply {i}: expected opcode {opcode:#x} with {}, got opcode {got_opcode:#x} with {}",
                show(payload),
                show(&got_payload)
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reading the server's frames.

/// Reads one server frame; it must be final and unmasked (§5.1).
fn read_frame(stream: &mut impl Read) -> Result<(u8, Vec<u8>), String> {
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

fn read_exact(stream: &mut impl Read, buf: &mut [u8]) -> Result<(), String> {
    stream.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => "connection closed before the expected frame".into(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no frame within {:?}", socket::TIMEOUT)
        }
        _ => format!("read failed: {e}"),
    })
}

fn show(payload: &[u8]) -> String {
    if payload.len() > 32 {
        format!("{} bytes", payload.len())
    } else {
        format!("{payload:02x?}")
    }
}
