//! permessage-deflate in a [`Session`]: RSV1 on a message's first frame, whole messages
//! inflated within the message limit, data messages compressed when sent.

use super::super::deflate::{Codec, Engines, InflateError, Params};
use super::super::frame::{self, Data, FrameHeader, OpCode, RSV1};
use super::{CapacityError, CapacityKind, Error, ProtocolError, Role, Session};

impl Session {
    /// Compresses and decompresses messages as `params` (what the handshake agreed) says,
    /// with the options of this session's [`Config::deflate`](crate::Config::deflate) (or
    /// the defaults). Call it before any frame is sent or received.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsbox::deflate::Params;
    /// use wsbox::session::{Event, Session};
    /// use wsbox::{Config, Message};
    ///
    /// let params = Params::default();
    /// let mut client = Session::client(Config::default(), || [1, 2, 3, 4]).with_deflate(params);
    /// let mut server = Session::server(Config::default()).with_deflate(params);
    /// client.send_text(&"compressible ".repeat(100)).unwrap();
    /// let mut wire = Vec::new();
    /// client.poll_transmit(&mut wire);
    /// assert!(wire.len() < 100);
    /// server.receive(&wire).unwrap();
    /// let Some(Event::Message(Message::Text(text))) = server.poll_event() else { panic!() };
    /// assert_eq!(text.len(), 1300);
    /// ```
    #[must_use]
    pub fn with_deflate(mut self, params: Params) -> Self {
        let ours = self.config.get_deflate().copied().unwrap_or_default();
        self.deflate = Some(Codec::new(&params, &ours, self.role == Role::Server));
        self
    }

    /// Whether permessage-deflate is on (see [`Session::with_deflate`]).
    pub fn is_deflate(&self) -> bool {
        self.deflate.is_some()
    }

    /// Exchanges the session's [`Engines`] with `engines`. A session compresses messages
    /// without context takeover with its engines, built when first needed and dropped by
    /// [`Session::shrink_to_fit`]. To share one set among many sessions (one per thread),
    /// swap it in before feeding or sending to a session and back out after: idle sessions
    /// then hold no compression memory.
    pub fn swap_engines(&mut self, engines: &mut Engines) {
        std::mem::swap(&mut self.engines, engines);
    }

    /// Runs `f` with `engines` lent to this session, and takes them back after: the one
    /// way to share a set of [`Engines`] among sessions (one set per thread, say), so that
    /// idle sessions hold no compression memory. A session without permessage-deflate is
    /// handed to `f` as it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsbox::deflate::{Engines, Params};
    /// use wsbox::session::{Event, Session};
    /// use wsbox::{Config, Message};
    ///
    /// let params = Params::default();
    /// let mut shared = Engines::default();
    /// let mut client = Session::client(Config::default(), || [1, 2, 3, 4]).with_deflate(params);
    /// let mut server = Session::server(Config::default()).with_deflate(params);
    /// client.send_text(&"compressible ".repeat(100)).unwrap();
    /// let mut wire = Vec::new();
    /// client.poll_transmit(&mut wire);
    /// let event = server.with_engines(&mut shared, |server| server.next_event(&mut &wire[..]));
    /// assert!(matches!(event, Some(Event::Message(Message::Text(text))) if text.len() == 1300));
    /// ```
    pub fn with_engines<R>(&mut self, engines: &mut Engines, f: impl FnOnce(&mut Self) -> R) -> R {
        if !self.is_deflate() {
            return f(self);
        }
        self.swap_engines(engines);
        let result = f(self);
        self.swap_engines(engines);
        result
    }

    pub(super) fn allowed_rsv(&self) -> u8 {
        if self.deflate.is_some() { RSV1 } else { 0 }
    }

    /// RSV1 marks a compressed message on its first frame only (RFC 7692 §6.1).
    pub(super) fn check_rsv1(&mut self, header: &FrameHeader) -> Result<(), Error> {
        let compressed = header.rsv & RSV1 != 0;
        match header.opcode {
            OpCode::Data(Data::Text | Data::Binary) => self.message_compressed = compressed,
            OpCode::Control(_) if compressed => {
                return Err(ProtocolError::CompressedControlFrame.into());
            }
            OpCode::Data(Data::Continue) if compressed => {
                return Err(ProtocolError::CompressedContinuation.into());
            }
            _ => {}
        }
        Ok(())
    }

    /// Replaces the compressed message in `self.message` by its inflated bytes.
    pub(super) fn inflate_message(&mut self) -> Result<(), Error> {
        self.message_compressed = false;
        let Some(codec) = self.deflate.as_mut() else {
            return Ok(());
        };
        let compressed = std::mem::take(&mut self.message);
        let limit = self.config.get_max_message_size();
        let mut inflated = Vec::new();
        match codec.inflate(&mut self.engines, &compressed, &mut inflated, limit) {
            Ok(()) => {
                self.message = inflated;
                Ok(())
            }
            Err(InflateError::TooBig) => Err(CapacityError {
                kind: CapacityKind::Message,
                size: limit as u64 + 1,
                max: limit,
            }
            .into()),
            Err(InflateError::Corrupt) => Err(ProtocolError::InvalidCompressedData.into()),
        }
    }

    /// Queues a data message compressed, as one frame with RSV1.
    pub(super) fn queue_compressed(&mut self, opcode: OpCode, payload: &[u8]) {
        let Some(codec) = self.deflate.as_mut() else {
            return self.queue_frame(opcode, payload);
        };
        let mut compressed = Vec::new();
        codec.deflate(&mut self.engines, payload, &mut compressed);
        let mask = self.masks.as_mut().map(|m| m.next_mask());
        frame::encode_frame_with(&mut self.out, true, RSV1, opcode, mask, &compressed);
    }
}

#[cfg(test)]
mod tests;
