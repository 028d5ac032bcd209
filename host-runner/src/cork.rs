//! What one callback sends to its own connection, collected and written in one go when it
//! returns: a callback's sends cost one write, and stay in order with the pongs and close
//! frames the session adds.

use std::cell::Cell;
use std::io::IoSlice;

use bytes::Bytes;
use wsbox::frame::{Data, FrameHeader, OpCode, encode_frame};

use crate::wit::{Message, parts};

/// Payloads from this size on are moved into the cork rather than copied: an echo of a
/// 64 KiB message otherwise copies it once more than it must.
const LARGE: usize = 8 * 1024;
/// A buffer that grew past this is freed rather than kept for the next callback.
const MAX_SPARE: usize = 1 << 20;
/// `writev` takes at most 1024 slices (IOV_MAX); past half that, large payloads are copied.
const MAX_LARGE: usize = 512;

thread_local! {
    /// The byte buffer is kept per worker thread rather than per connection, so that idle
    /// connections hold none: a callback takes it and the write gives it back.
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Appends a message as the one frame that carries it (server frames are unmasked).
pub fn encode(out: &mut Vec<u8>, message: &Message) {
    let (kind, payload) = parts(message);
    encode_parts(out, kind, payload);
}

/// Appends the one frame that carries a message of this kind and these bytes.
pub fn encode_parts(out: &mut Vec<u8>, kind: Data, payload: &[u8]) {
    encode_frame(out, true, OpCode::Data(kind), None, payload);
}

/// The one frame that carries a message of this kind and these bytes, to be queued to
/// other connections (a send, a publish, a delivery from another runner). A payload of
/// [`LARGE`] bytes or more is not copied: the frame is its header and the payload itself.
pub fn frame(kind: Data, payload: &Bytes) -> Frame {
    if payload.len() >= LARGE {
        let mut head = Vec::with_capacity(10);
        header(kind, payload.len()).encode(&mut head);
        return Frame {
            head: Bytes::from(head),
            body: payload.clone(),
        };
    }
    // A frame header is at most 10 bytes (server frames are unmasked).
    let mut out = Vec::with_capacity(payload.len() + 10);
    encode_parts(&mut out, kind, payload);
    Frame::whole(Bytes::from(out))
}

/// A frame queued to other connections, shared by all of them: one buffer, or a large
/// message's header and its payload as the sender handed it over. Not copying the payload
/// saves a copy per publish and holds it at the size it was allocated: copied behind a
/// header, a 1 MiB payload took jemalloc's next size class, 1.25 MiB, and a subscriber that
/// does not read held that (measured: 1.33 MiB of RSS per subscriber, 1.06 MiB the bound).
#[derive(Clone, Debug, Default)]
pub struct Frame {
    head: Bytes,
    /// Empty when `head` is the whole frame.
    body: Bytes,
}

impl Frame {
    /// A frame in one buffer.
    pub fn whole(bytes: Bytes) -> Self {
        Frame {
            head: bytes,
            body: Bytes::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// The frame in one buffer, copied.
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts().flat_map(|part| part.iter().copied()).collect()
    }

    /// The frame's bytes in wire order: one buffer or two.
    pub fn parts(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.head).chain((!self.body.is_empty()).then_some(&self.body))
    }
}

fn header(kind: Data, len: usize) -> FrameHeader {
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Data(kind),
        mask: None,
        payload_len: len as u64,
    }
}

#[derive(Default)]
pub struct Cork {
    /// Frame headers and small payloads, in order.
    bytes: Vec<u8>,
    /// Large payloads, each to be written at its offset in `bytes`.
    large: Vec<(usize, Vec<u8>)>,
}

impl Cork {
    /// Bytes collected.
    pub fn len(&self) -> usize {
        self.bytes.len() + self.large.iter().map(|(_, p)| p.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.large.is_empty()
    }

    /// The buffer frames are appended to (a session's output, a published frame).
    pub fn bytes(&mut self) -> &mut Vec<u8> {
        if self.bytes.capacity() == 0 {
            self.bytes = SPARE.take();
        }
        &mut self.bytes
    }

    /// Appends a message as the one frame that carries it (server frames are unmasked).
    pub fn push(&mut self, message: Message) {
        if parts(&message).1.len() < LARGE || self.large.len() >= MAX_LARGE {
            encode(self.bytes(), &message);
            return;
        }
        let (opcode, payload) = match message {
            Message::Text(text) => (Data::Text, text.into_bytes()),
            Message::Binary(data) => (Data::Binary, data),
        };
        let bytes = self.bytes();
        header(opcode, payload.len()).encode(bytes);
        let at = bytes.len();
        self.large.push((at, payload));
    }

    /// Drops what was collected (a failed callback's sends).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.large.clear();
    }

    /// Hands the collected frames to `write` as slices in wire order, then empties the
    /// cork and gives its buffer back to the thread.
    pub fn drain(&mut self, write: impl FnOnce(&[IoSlice<'_>])) {
        if !self.is_empty() {
            let mut slices = Vec::with_capacity(2 * self.large.len() + 1);
            let mut from = 0;
            for (at, payload) in &self.large {
                slices.push(IoSlice::new(&self.bytes[from..*at]));
                slices.push(IoSlice::new(payload));
                from = *at;
            }
            slices.push(IoSlice::new(&self.bytes[from..]));
            slices.retain(|slice| !slice.is_empty());
            write(&slices);
        }
        self.large.clear();
        let mut bytes = std::mem::take(&mut self.bytes);
        if bytes.capacity() > 0 && bytes.capacity() <= MAX_SPARE {
            bytes.clear();
            SPARE.set(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collected(cork: &mut Cork) -> Vec<u8> {
        let mut out = Vec::new();
        cork.drain(|slices| slices.iter().for_each(|s| out.extend_from_slice(s)));
        out
    }

    #[test]
    fn large_payloads_go_out_in_place() {
        let mut cork = Cork::default();
        cork.push(Message::Text("a".into()));
        cork.push(Message::Binary(vec![7; LARGE]));
        cork.bytes().extend_from_slice(b"\x8a\x00");
        cork.push(Message::Binary(vec![9; LARGE + 1]));
        cork.push(Message::Text("z".into()));
        let expected_len = 3 + (4 + LARGE) + 2 + (4 + LARGE + 1) + 3;
        assert_eq!(cork.len(), expected_len);

        let mut expected = Vec::new();
        for (opcode, payload) in [(Data::Text, vec![b'a']), (Data::Binary, vec![7; LARGE])] {
            encode_frame(&mut expected, true, OpCode::Data(opcode), None, &payload);
        }
        expected.extend_from_slice(b"\x8a\x00");
        for (opcode, payload) in [(Data::Binary, vec![9; LARGE + 1]), (Data::Text, vec![b'z'])] {
            encode_frame(&mut expected, true, OpCode::Data(opcode), None, &payload);
        }
        assert_eq!(collected(&mut cork), expected);
        assert!(cork.is_empty());
        assert_eq!(collected(&mut cork), b"");
    }

    #[test]
    fn a_large_payload_is_framed_in_place() {
        for (kind, len) in [
            (Data::Text, 10),
            (Data::Binary, LARGE - 1),
            (Data::Binary, LARGE),
            (Data::Text, 1 << 20),
        ] {
            let payload = Bytes::from(vec![b'x'; len]);
            let frame = frame(kind, &payload);
            let mut expected = Vec::new();
            encode_parts(&mut expected, kind, &payload);
            assert_eq!(frame.to_vec(), expected, "{len}");
            assert_eq!(frame.len(), expected.len());
            let in_place = frame.parts().any(|part| part.as_ptr() == payload.as_ptr());
            assert_eq!(in_place, len >= LARGE, "{len}");
        }
    }
}
