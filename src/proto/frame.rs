//! Frame headers (RFC 6455 §5.2), opcodes and payload masking.
//!
//! Pure functions over byte slices: decoding never consumes a partial header, and a
//! declared payload length is returned for the caller to check against its limits before
//! it reserves any memory.

// Close codes are RFC terms of their own that errors name too; re-exported at their old path.
pub use super::close_code::CloseCode;
use super::error::ProtocolError;

/// Data frame opcodes (§5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    /// 0x0: continues a fragmented message.
    Continue,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x3–0x7: reserved.
    Reserved(u8),
}

/// Control frame opcodes (§5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// 0x8
    Close,
    /// 0x9
    Ping,
    /// 0xA
    Pong,
    /// 0xB–0xF: reserved.
    Reserved(u8),
}

/// A frame's opcode: data or control, with a catch-all for reserved values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// Text, binary or continuation.
    Data(Data),
    /// Close, ping or pong.
    Control(Control),
}

impl OpCode {
    /// Whether this is a control opcode (the high bit of the nibble is set).
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Control(_))
    }
}

impl From<u8> for OpCode {
    fn from(byte: u8) -> Self {
        match byte & 0x0F {
            0x0 => OpCode::Data(Data::Continue),
            0x1 => OpCode::Data(Data::Text),
            0x2 => OpCode::Data(Data::Binary),
            b @ 0x3..=0x7 => OpCode::Data(Data::Reserved(b)),
            0x8 => OpCode::Control(Control::Close),
            0x9 => OpCode::Control(Control::Ping),
            0xA => OpCode::Control(Control::Pong),
            b => OpCode::Control(Control::Reserved(b)),
        }
    }
}

impl From<OpCode> for u8 {
    fn from(op: OpCode) -> u8 {
        match op {
            OpCode::Data(Data::Continue) => 0x0,
            OpCode::Data(Data::Text) => 0x1,
            OpCode::Data(Data::Binary) => 0x2,
            OpCode::Data(Data::Reserved(b)) | OpCode::Control(Control::Reserved(b)) => b,
            OpCode::Control(Control::Close) => 0x8,
            OpCode::Control(Control::Ping) => 0x9,
            OpCode::Control(Control::Pong) => 0xA,
        }
    }
}

/// The RSV1 bit of [`FrameHeader::rsv`]: set on the first frame of a compressed message
/// when permessage-deflate is agreed (RFC 7692 §6).
pub const RSV1: u8 = 0b100;

/// The longest possible header: 2 bytes, 8 of extended length, 4 of mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Whether this is the final frame of a message.
    pub fin: bool,
    /// RSV1–RSV3 as the low three bits.
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The declared payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Decodes a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a header (nothing is consumed), or the
    /// header and its length in bytes. Only rules that need nothing but the header's own bytes
    /// are checked here: reserved bits, reserved opcodes, control frame fragmentation and size,
    /// and the 64-bit length's top bit. Masking and continuation rules depend on the session.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsbox::frame::{Data, FrameHeader, OpCode};
    /// let (header, len) = FrameHeader::parse(&[0x81, 0x05]).unwrap().unwrap();
    /// assert_eq!((header.opcode, header.payload_len, len), (OpCode::Data(Data::Text), 5, 2));
    /// assert_eq!(FrameHeader::parse(&[0x81]), Ok(None));
    /// ```
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        Self::parse_with(buf, 0)
    }

    /// [`FrameHeader::parse`], allowing the reserved bits in `allowed_rsv` (those an agreed
    /// extension gives a meaning, e.g. [`RSV1`]); whether they fit the opcode is for the
    /// extension to check.
    pub fn parse_with(
        buf: &[u8],
        allowed_rsv: u8,
    ) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x07;
        let opcode = OpCode::from(b0);
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        if rsv & !allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBitsSet);
        }
        match opcode {
            OpCode::Data(Data::Reserved(b)) | OpCode::Control(Control::Reserved(b)) => {
                return Err(ProtocolError::ReservedOpcode(b));
            }
            OpCode::Control(_) if !fin => return Err(ProtocolError::FragmentedControlFrame),
            OpCode::Control(_) if len7 > 125 => return Err(ProtocolError::ControlFrameTooLong),
            _ => {}
        }
        let ext_len = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header_len = 2 + ext_len + if masked { 4 } else { 0 };
        if buf.len() < header_len {
            return Ok(None);
        }
        let payload_len = match len7 {
            126 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
            127 => {
                let mut be = [0; 8];
                be.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(ProtocolError::InvalidPayloadLength);
                }
                len
            }
            n => u64::from(n),
        };
        let mask = masked.then(|| {
            let at = 2 + ext_len;
            [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
        });
        Ok(Some((
            FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                payload_len,
            },
            header_len,
        )))
    }

    /// Appends the encoded header to `out`, using the shortest length encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let b0 = (u8::from(self.fin) << 7) | ((self.rsv & 0x07) << 4) | u8::from(self.opcode);
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        out.push(b0);
        match self.payload_len {
            n @ 0..=125 => out.push(mask_bit | n as u8),
            n @ 126..=0xFFFF => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        if let Some(mask) = self.mask {
            out.extend_from_slice(&mask);
        }
    }
}

/// XORs `buf` with `mask`, where `buf` starts `offset` bytes into the masked payload
/// (so a payload can be unmasked in chunks as it arrives).
///
/// Works a machine word at a time; [`apply_mask_naive`] is the byte-at-a-time reference it
/// is tested against.
///
/// # Examples
///
/// ```
/// let mut data = *b"Hello";
/// wsbox::frame::apply_mask(&mut data, [1, 2, 3, 4], 0);
/// wsbox::frame::apply_mask(&mut data[..2], [1, 2, 3, 4], 0);
/// wsbox::frame::apply_mask(&mut data[2..], [1, 2, 3, 4], 2);
/// assert_eq!(&data, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mask = rotate_mask(mask, offset);
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (byte, m) in chunks.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= m;
    }
}

/// The mask as seen from `offset` bytes into the payload.
fn rotate_mask(mask: [u8; 4], offset: usize) -> [u8; 4] {
    let mut m = mask;
    m.rotate_left(offset % 4);
    m
}

/// Byte-at-a-time masking: the RFC's definition, kept as the reference for tests and
/// benchmarks.
pub fn apply_mask_naive(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= mask[(offset + i) % 4];
    }
}

/// Appends one complete frame (header and payload, masked with `mask` if given) to `out`.
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    encode_frame_with(out, fin, 0, opcode, mask, payload);
}

/// [`encode_frame`] with the reserved bits `rsv` set (e.g. [`RSV1`] for a compressed
/// message).
pub fn encode_frame_with(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    out.reserve(MAX_HEADER_LEN + payload.len());
    header.encode(out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = mask {
        apply_mask(&mut out[start..], mask, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_matches_naive_at_every_length_and_alignment() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let data: Vec<u8> = (0..80u8).collect();
        for len in 0..=64 {
            for align in 0..8 {
                for offset in 0..4 {
                    let mut fast = data[align..align + len].to_vec();
                    let mut slow = fast.clone();
                    apply_mask(&mut fast, mask, offset);
                    apply_mask_naive(&mut slow, mask, offset);
                    assert_eq!(fast, slow, "len {len} align {align} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn mask_in_place_at_unaligned_start() {
        // Mask a sub-slice of a buffer so the fast path starts mid-word.
        let mask = [0xA1, 0xB2, 0xC3, 0xD4];
        for align in 0..8 {
            let mut buf = vec![0x5Au8; 100];
            let mut reference = buf.clone();
            apply_mask(&mut buf[align..align + 77], mask, 0);
            apply_mask_naive(&mut reference[align..align + 77], mask, 0);
            assert_eq!(buf, reference);
        }
    }

    #[test]
    fn header_lengths_round_trip() {
        for len in [0u64, 1, 125, 126, 127, 65535, 65536, 1 << 40] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let h = FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: OpCode::Data(Data::Binary),
                    mask,
                    payload_len: len,
                };
                let mut out = Vec::new();
                h.encode(&mut out);
                assert_eq!(FrameHeader::parse(&out), Ok(Some((h, out.len()))));
                for cut in 0..out.len() {
                    assert_eq!(
                        FrameHeader::parse(&out[..cut]),
                        Ok(None),
                        "len {len} cut {cut}"
                    );
                }
            }
        }
    }

    #[test]
    fn header_rules() {
        assert_eq!(
            FrameHeader::parse(&[0xC1, 0x00]),
            Err(ProtocolError::ReservedBitsSet)
        );
        assert_eq!(
            FrameHeader::parse(&[0x83, 0x00]),
            Err(ProtocolError::ReservedOpcode(3))
        );
        assert_eq!(
            FrameHeader::parse(&[0x8B, 0x00]),
            Err(ProtocolError::ReservedOpcode(0xB))
        );
        assert_eq!(
            FrameHeader::parse(&[0x09, 0x00]),
            Err(ProtocolError::FragmentedControlFrame)
        );
        assert_eq!(
            FrameHeader::parse(&[0x89, 126]),
            Err(ProtocolError::ControlFrameTooLong)
        );
        let mut huge = vec![0x82, 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            FrameHeader::parse(&huge),
            Err(ProtocolError::InvalidPayloadLength)
        );
    }
}
