//! What wsbox runners say to each other over NATS: the subjects, and the payloads on them.
//! A crate of its own so that `fuzz/` reaches every parser here; `wsbox-runner` uses it as
//! `cluster::wire`. Every parser takes untrusted bytes (anyone who may publish on the
//! cluster's NATS subjects) and returns `None` for anything it would not have encoded.
//!
//! Every subject starts with the cluster's namespace (`--cluster-name`, `wsbox` by default):
//! - `NS.t.TOPIC`: a publish to TOPIC, its name base64url-encoded (any bytes become a
//!   single subject token of `[A-Za-z0-9_-]`, so no name can reach another's subject or
//!   a wildcard); payload: the kind, then the message.
//! - `NS.n.NODE`: requests to the node NODE (8 hex digits): a send or a close for one of
//!   its connections, answered with one [`Status`] byte.
//! - `NS.hb`: each node's heartbeat, once a second: its node id, and a hello flag (asking
//!   every node for its counts).
//! - `NS.counts`: a node's subscriber counts for the topics that changed: its node id, then
//!   (count, name length, name) for each.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{BufMut, Bytes, BytesMut};
use wsbox::frame::Data;

mod id;

pub use id::Id;

/// The longest topic name a cluster takes (`--max-topic-len` is held to it): a longer one
/// would make a subject past NATS's 4 KiB control line.
pub const MAX_TOPIC: usize = 2048;

pub struct Subjects {
    namespace: String,
}

impl Subjects {
    /// `None` unless `name` is one subject token of letters, digits, `-` and `_`.
    pub fn new(name: &str) -> Option<Self> {
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Subjects {
            namespace: name.to_owned(),
        })
    }

    pub fn topic(&self, topic: &str) -> String {
        format!("{}.t.{}", self.namespace, URL_SAFE_NO_PAD.encode(topic))
    }

    pub fn node(&self, node: u32) -> String {
        format!("{}.n.{node:08x}", self.namespace)
    }

    pub fn heartbeat(&self) -> String {
        format!("{}.hb", self.namespace)
    }

    pub fn counts(&self) -> String {
        format!("{}.counts", self.namespace)
    }
}

fn kind_byte(kind: Data) -> u8 {
    // Messages are text or binary; nothing else reaches here.
    if kind == Data::Text { 1 } else { 2 }
}

fn kind_of(byte: u8) -> Option<Data> {
    match byte {
        1 => Some(Data::Text),
        2 => Some(Data::Binary),
        _ => None,
    }
}

/// A published message on a topic subject.
pub fn message(kind: Data, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + data.len());
    out.put_u8(kind_byte(kind));
    out.put_slice(data);
    out.freeze()
}

/// The kind and bytes of a published message; `None` for anything malformed (a text that
/// is not UTF-8 included: it would reach browsers as a protocol violation).
pub fn parse_message(payload: &[u8]) -> Option<(Data, &[u8])> {
    let (&kind, data) = payload.split_first()?;
    checked(kind, data)
}

fn checked(kind: u8, data: &[u8]) -> Option<(Data, &[u8])> {
    let kind = kind_of(kind)?;
    if kind == Data::Text && std::str::from_utf8(data).is_err() {
        return None;
    }
    Some((kind, data))
}

/// What a node is asked to do for one of its connections.
#[derive(Debug, PartialEq)]
pub enum Command<'a> {
    Send(Id, Data, &'a [u8]),
    Close(Id, u16, &'a str),
}

const CLOSE: u8 = 3;

impl Command<'_> {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            Command::Send(id, kind, data) => {
                out.put_u8(kind_byte(*kind));
                out.put_slice(id.as_bytes());
                out.put_slice(data);
            }
            Command::Close(id, code, reason) => {
                out.put_u8(CLOSE);
                out.put_slice(id.as_bytes());
                out.put_u16(*code);
                out.put_slice(reason.as_bytes());
            }
        }
        out.freeze()
    }

    pub fn parse(payload: &[u8]) -> Option<Command<'_>> {
        let (&op, rest) = payload.split_first()?;
        let (id, rest) = rest.split_first_chunk::<16>()?;
        let id = Id::from_bytes(*id);
        if op == CLOSE {
            let (code, reason) = rest.split_first_chunk::<2>()?;
            let reason = std::str::from_utf8(reason).ok()?;
            return Some(Command::Close(id, u16::from_be_bytes(*code), reason));
        }
        let (kind, data) = checked(op, rest)?;
        Some(Command::Send(id, kind, data))
    }
}

/// A node's answer to a [`Command`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Status {
    Ok,
    Closed,
    Gone,
    Backpressure,
}

impl Status {
    pub fn encode(self) -> Bytes {
        Bytes::from_static(match self {
            Status::Ok => b"0",
            Status::Closed => b"1",
            Status::Gone => b"2",
            Status::Backpressure => b"3",
        })
    }

    pub fn parse(payload: &[u8]) -> Option<Status> {
        match payload {
            b"0" => Some(Status::Ok),
            b"1" => Some(Status::Closed),
            b"2" => Some(Status::Gone),
            b"3" => Some(Status::Backpressure),
            _ => None,
        }
    }
}

/// A heartbeat: the node, and whether it asks the others for their counts (hello).
pub fn heartbeat(node: u32, hello: bool) -> Bytes {
    let mut out = BytesMut::with_capacity(5);
    out.put_u32(node);
    out.put_u8(u8::from(hello));
    out.freeze()
}

pub fn parse_heartbeat(payload: &[u8]) -> Option<(u32, bool)> {
    let (node, rest) = payload.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*node), rest.first() == Some(&1)))
}

/// Counts announcements of at most about `max` bytes each.
pub fn counts<'a>(
    node: u32,
    entries: impl IntoIterator<Item = (&'a str, u32)>,
    max: usize,
) -> Vec<Bytes> {
    let mut batches = Vec::new();
    let mut out = BytesMut::new();
    for (topic, count) in entries {
        if topic.len() > MAX_TOPIC {
            continue;
        }
        if out.is_empty() {
            out.put_u32(node);
        }
        out.put_u32(count);
        out.put_u16(topic.len() as u16);
        out.put_slice(topic.as_bytes());
        if out.len() >= max {
            batches.push(std::mem::take(&mut out).freeze());
        }
    }
    if !out.is_empty() {
        batches.push(out.freeze());
    }
    batches
}

/// The node and its (topic, count) pairs; `None` if malformed anywhere, a topic longer
/// than [`MAX_TOPIC`] included (the length field would allow 64 KiB; [`counts`] never
/// writes one).
pub fn parse_counts(payload: &[u8]) -> Option<(u32, Vec<(&str, u32)>)> {
    let (node, mut rest) = payload.split_first_chunk::<4>()?;
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let (count, tail) = rest.split_first_chunk::<4>()?;
        let (len, tail) = tail.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        if len > MAX_TOPIC || tail.len() < len {
            return None;
        }
        let (topic, tail) = tail.split_at(len);
        entries.push((std::str::from_utf8(topic).ok()?, u32::from_be_bytes(*count)));
        rest = tail;
    }
    Some((u32::from_be_bytes(*node), entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_topic_is_one_safe_subject_token() {
        let subjects = Subjects::new("wsbox").expect("a name");
        for topic in ["a", "a.b", "*", ">", "a b\tc", "é/ü", "..", "a.>"] {
            let subject = subjects.topic(topic);
            let token = subject.strip_prefix("wsbox.t.").expect("the prefix");
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{topic:?} -> {subject}"
            );
        }
        assert_ne!(subjects.topic("a.b"), subjects.topic("a_b"));
        assert!(Subjects::new("a.b").is_none());
        assert!(Subjects::new("").is_none());
        assert!(Subjects::new("*").is_none());
        assert_eq!(subjects.node(0xab), "wsbox.n.000000ab");
    }

    #[test]
    fn requests_round_trip_and_refuse_garbage() {
        let id = Id::from_bytes([7; 16]);
        for request in [
            Command::Send(id, Data::Text, b"hello"),
            Command::Send(id, Data::Binary, &[0, 255]),
            Command::Close(id, 4000, "bye"),
        ] {
            assert_eq!(Command::parse(&request.encode()), Some(request));
        }
        assert_eq!(Command::parse(b""), None);
        assert_eq!(Command::parse(&[1, 2, 3]), None);
        let mut bad_text = Command::Send(id, Data::Binary, &[0xff]).encode().to_vec();
        bad_text[0] = 1;
        assert_eq!(Command::parse(&bad_text), None);
        for status in [
            Status::Ok,
            Status::Closed,
            Status::Gone,
            Status::Backpressure,
        ] {
            assert_eq!(Status::parse(&status.encode()), Some(status));
        }
    }

    #[test]
    fn counts_round_trip_in_batches() {
        let topics: Vec<String> = (0..100).map(|i| format!("topic-{i}")).collect();
        let batches = counts(9, topics.iter().map(|t| (t.as_str(), 3)), 256);
        assert!(batches.len() > 1);
        let mut seen = Vec::new();
        for batch in &batches {
            let (node, entries) = parse_counts(batch).expect("well formed");
            assert_eq!(node, 9);
            seen.extend(entries.into_iter().map(|(t, c)| (t.to_owned(), c)));
        }
        assert_eq!(seen.len(), 100);
        assert_eq!(seen[42], ("topic-42".to_owned(), 3));
        assert_eq!(parse_counts(&batches[0][..7]), None);
        assert_eq!(parse_heartbeat(&heartbeat(5, true)), Some((5, true)));
        assert_eq!(parse_heartbeat(&heartbeat(5, false)), Some((5, false)));
        assert_eq!(parse_heartbeat(&[1, 2]), None);
        assert_eq!(
            parse_message(&message(Data::Text, b"hi")),
            Some((Data::Text, &b"hi"[..]))
        );
        assert_eq!(parse_message(&[1, 0xff]), None);
    }

    #[test]
    fn counts_refuse_a_topic_past_max_topic() {
        // Encoded by hand: `counts` itself skips such topics.
        let entry = |len: usize| {
            let mut out = 7u32.to_be_bytes().to_vec();
            out.extend(1u32.to_be_bytes());
            out.extend(u16::try_from(len).expect("short").to_be_bytes());
            out.extend(std::iter::repeat_n(b'a', len));
            out
        };
        let longest = entry(MAX_TOPIC);
        let (_, entries) = parse_counts(&longest).expect("the longest topic");
        assert_eq!(entries[0].0.len(), MAX_TOPIC);
        assert_eq!(parse_counts(&entry(MAX_TOPIC + 1)), None);
        assert_eq!(parse_counts(&entry(usize::from(u16::MAX))), None);
    }
}
