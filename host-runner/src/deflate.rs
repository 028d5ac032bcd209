//! permessage-deflate in the runner (RFC 7692): what each connection agreed to, the engines
//! shared per worker thread, and the frames of a message sent to many connections, built
//! once per form they need.
//!
//! By default (`--deflate shared`) the runner answers every offer with no context
//! takeover both ways, so a connection keeps no deflate state between messages: the
//! compressor and decompressor are borrowed from the worker thread for each message (as
//! uWebSockets' `SHARED_COMPRESSOR`). A publish is then compressed once for all its
//! subscribers. With `--deflate takeover` a client may keep its context and the runner keeps
//! its own per connection (in a small window); messages from other connections (publishes,
//! `send-to`) then go to it uncompressed, because bytes compressed without its context
//! would change the window its own messages refer to.

use std::cell::RefCell;

use bytes::Bytes;
use wsbox::deflate::{Compression, Deflate, Engines, Params};
use wsbox::frame::{Data, OpCode, RSV1, encode_frame_with};
use wsbox::session::Session;

use crate::cork::Frame;
use crate::metrics::METRICS;
use crate::settings::{self, Mode};

impl settings::Deflate {
    /// What the handshake may agree to, `None` when compression is off.
    pub fn deflate(&self) -> Option<Deflate> {
        let deflate = Deflate::default().level(self.level);
        match self.mode {
            Mode::Off => None,
            // Per-thread engines cost nothing per connection: the widest window.
            Mode::Shared => Some(deflate.no_context_takeover(true)),
            Mode::Takeover => Some(
                deflate
                    .max_window_bits(self.window_bits)
                    .mem_level(self.mem_level),
            ),
        }
    }

    /// How messages reach a connection that agreed to `params` (`None`: no compression).
    pub fn form(&self, params: Option<Params>) -> Form {
        let (Some(params), Some(ours)) = (params, self.deflate()) else {
            return Form::Plain;
        };
        let min_size = self.threshold;
        match params.compression(&ours, true) {
            None => Form::Plain,
            Some(how) if params.server_no_context_takeover => Form::Shared { how, min_size },
            Some(_) => Form::Takeover,
        }
    }
}

/// How a connection is sent messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Uncompressed: no compression agreed.
    Plain,
    /// Messages of `min_size` bytes or more compressed on their own, as `how` says.
    Shared { how: Compression, min_size: usize },
    /// Its own messages compressed by its session, with context (even a short message
    /// shrinks when it repeats earlier ones, so no threshold); messages from other
    /// connections uncompressed.
    Takeover,
}

impl Form {
    /// What the `websocket open` log line says.
    pub fn name(&self) -> &'static str {
        match self {
            Form::Plain => "none",
            Form::Shared { .. } => "shared",
            Form::Takeover => "takeover",
        }
    }
}

thread_local! {
    /// The engines of connections without context takeover on this worker thread, lent
    /// for one message at a time.
    static ENGINES: RefCell<Engines> = RefCell::new(Engines::default());
}

/// Runs `f` with `session` holding this thread's engines (a compressed message it reads or
/// sends borrows them), and takes them back after.
pub fn with_engines<R>(session: &mut Session, f: impl FnOnce(&mut Session) -> R) -> R {
    ENGINES.with_borrow_mut(|engines| session.with_engines(engines, f))
}

/// Appends the frame that carries a message to a connection sent messages as `form`.
/// Returns `false` (and appends nothing) for a message its session must compress itself
/// (context takeover).
pub fn encode(out: &mut Vec<u8>, form: Form, kind: Data, payload: &[u8]) -> bool {
    match form {
        Form::Shared { how, min_size } if payload.len() >= min_size => {
            // The header states the compressed length: compress first, then frame.
            let mut body = Vec::with_capacity(payload.len() / 2 + 16);
            ENGINES.with_borrow_mut(|engines| engines.compress(how, payload, &mut body));
            let start = out.len();
            encode_frame_with(out, true, RSV1, OpCode::Data(kind), None, &body);
            count(payload.len(), out.len() - start);
            true
        }
        Form::Takeover => false,
        _ => {
            crate::cork::encode_parts(out, kind, payload);
            true
        }
    }
}

/// Counts a message compressed for `--metrics`: its payload's size and its frame's.
pub fn count(raw: usize, compressed: usize) {
    METRICS.deflated.inc();
    METRICS.deflate_raw.add(raw as u64);
    METRICS.deflate_compressed.add(compressed as u64);
}

/// A message sent to other connections (a publish, a `send-to`, a delivery from another
/// runner): its frame is built once per form the recipients need, and shared by them.
pub struct Outgoing {
    kind: Data,
    payload: Bytes,
    plain: Option<Frame>,
    compressed: Vec<(Compression, Frame)>,
}

impl Outgoing {
    pub fn new(kind: Data, payload: Bytes) -> Self {
        Outgoing {
            kind,
            payload,
            plain: None,
            compressed: Vec::new(),
        }
    }

    /// The message's kind and bytes.
    pub fn parts(&self) -> (Data, &Bytes) {
        (self.kind, &self.payload)
    }

    /// The frame for a connection sent messages as `form`.
    pub fn frame(&mut self, form: Form) -> &Frame {
        let (kind, payload) = (self.kind, &self.payload);
        match form {
            Form::Shared { how, min_size } if payload.len() >= min_size => {
                let at = match self.compressed.iter().position(|(h, _)| *h == how) {
                    Some(at) => at,
                    None => {
                        let mut out = Vec::with_capacity(payload.len() / 2 + 16);
                        encode(&mut out, form, kind, payload);
                        self.compressed.push((how, Frame::whole(Bytes::from(out))));
                        self.compressed.len() - 1
                    }
                };
                &self.compressed[at].1
            }
            _ => self
                .plain
                .get_or_insert_with(|| crate::cork::frame(kind, payload)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsbox::Config;
    use wsbox::session::Event;

    fn settings(mode: Mode) -> settings::Deflate {
        settings::Deflate {
            mode,
            level: 1,
            window_bits: 11,
            mem_level: 4,
            threshold: 128,
        }
    }

    /// What a client that agreed to `params` reads from `wire`.
    fn read(params: Option<Params>, wire: &[u8]) -> Vec<wsbox::Message> {
        let mut client = Session::client(Config::default(), || [7, 7, 7, 7]);
        if let Some(params) = params {
            client = client.with_deflate(params);
        }
        client.receive(wire).expect("valid frames");
        std::iter::from_fn(|| client.poll_event())
            .filter_map(|event| match event {
                Event::Message(message) => Some(message),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_default_agrees_to_no_context_takeover_either_way() {
        let shared = settings(Mode::Shared).deflate().expect("on");
        assert!(shared.get_no_context_takeover());
        assert_eq!(settings(Mode::Off).deflate(), None);
        let takeover = settings(Mode::Takeover).deflate().expect("on");
        assert_eq!(takeover.get_max_window_bits(), 11);
        assert_eq!(takeover.get_mem_level(), 4);
    }

    #[test]
    fn a_message_to_many_is_compressed_once_per_form_and_read_back() {
        let params = Params {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..Params::default()
        };
        let shared = settings(Mode::Shared).form(Some(params));
        assert!(matches!(shared, Form::Shared { .. }));
        let text = "{\"user\":\"ann\",\"text\":\"hello\"},".repeat(20);
        let mut outgoing = Outgoing::new(Data::Text, Bytes::from(text.clone()));
        let frame = outgoing.frame(shared).clone();
        let compressed = frame.to_vec();
        assert!(
            compressed.len() < text.len() / 4,
            "{} bytes",
            compressed.len()
        );
        assert_eq!(compressed[0] & 0x40, 0x40, "RSV1 marks it compressed");
        // The second subscriber of the same form gets the very same bytes.
        let first = |frame: &Frame| frame.parts().next().map(|part| part.as_ptr());
        assert_eq!(first(outgoing.frame(shared)), first(&frame));
        assert_eq!(outgoing.compressed.len(), 1);
        let plain = outgoing.frame(Form::Plain).to_vec();
        assert_eq!(plain.len(), text.len() + 4);
        for (params, wire) in [(Some(params), &compressed), (None, &plain)] {
            let got = read(params, wire);
            assert_eq!(got, [wsbox::Message::Text(text.clone())]);
        }
    }

    #[test]
    fn small_messages_and_takeover_connections_get_plain_frames() {
        let takeover = settings(Mode::Takeover).form(Some(Params::default()));
        assert_eq!(takeover, Form::Takeover);
        let big = vec![b'a'; 1000];
        let mut outgoing = Outgoing::new(Data::Binary, Bytes::from(big.clone()));
        assert_eq!(outgoing.frame(takeover).len(), 1004);
        let mut own = Vec::new();
        assert!(
            !encode(&mut own, takeover, Data::Binary, &big),
            "its session compresses"
        );
        let shared = settings(Mode::Shared).form(Some(Params {
            server_no_context_takeover: true,
            ..Params::default()
        }));
        let small = b"0123456789";
        assert!(encode(&mut own, shared, Data::Binary, small));
        assert_eq!(own.len(), 12);
        assert_eq!(own[0] & 0x40, 0, "under the threshold: plain");
        assert_eq!(
            settings(Mode::Off).form(Some(Params::default())),
            Form::Plain
        );
        assert_eq!(settings(Mode::Shared).form(None), Form::Plain);
    }
}
