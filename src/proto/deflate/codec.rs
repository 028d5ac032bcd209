//! Compressing and decompressing whole messages as agreed (RFC 7692 §7.2).

use super::zlib::{Backend, CorruptData, Deflater, Inflated, Inflater};
use super::{Compression, Deflate, MAX_WINDOW_BITS, MIN_WINDOW_BITS, Params};

/// The empty stored block a sync flush ends with: stripped from each compressed message,
/// put back before inflating it (§7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Compressors and a decompressor lent to connections without context takeover, message by
/// message. Keep one per thread and pass it to every session on that thread: such
/// connections then hold no deflate memory between messages.
///
/// # Examples
///
/// ```
/// let engines = wsbox::deflate::Engines::default();
/// assert_eq!(engines.len(), 0); // Built on first use.
/// ```
#[derive(Default)]
pub struct Engines {
    // One per agreed compression and message window (9–15 bits): about 1 MB per level at
    // most, in practice a few.
    deflaters: Vec<(Compression, Deflater)>,
    inflater: Option<Inflater>,
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines").field("len", &self.len()).finish()
    }
}

impl Engines {
    /// How many engines have been built.
    pub fn len(&self) -> usize {
        self.deflaters.len() + usize::from(self.inflater.is_some())
    }

    /// Whether none has been built yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `payload` compressed as `how` says, as one whole message that refers to no
    /// earlier one (no context takeover): the bytes after a frame header with RSV1 set.
    /// Such bytes suit every connection that agreed to the same [`Compression`], whether or
    /// not its receiving end keeps context, so a message sent to many connections is
    /// compressed once.
    ///
    /// # Examples
    ///
    /// ```
    /// use wsbox::deflate::{Deflate, Engines, Params};
    ///
    /// let how = Params::default().compression(&Deflate::default(), true).unwrap();
    /// let mut engines = Engines::default();
    /// let mut compressed = Vec::new();
    /// engines.compress(how, "compressible ".repeat(100).as_bytes(), &mut compressed);
    /// assert!(compressed.len() < 100);
    /// ```
    pub fn compress(&mut self, how: Compression, payload: &[u8], out: &mut Vec<u8>) {
        let how = how.for_message(payload.len());
        let index = match self.deflaters.iter().position(|(k, _)| *k == how) {
            Some(index) => index,
            None => {
                let backend = Backend::for_shared(how.window_bits);
                self.deflaters.push((how, how.deflater(backend)));
                self.deflaters.len() - 1
            }
        };
        let deflater = &mut self.deflaters[index].1;
        compress_with(deflater, payload, out);
        deflater.reset();
    }

    fn inflater(&mut self) -> &mut Inflater {
        // The widest window decodes whatever window the peer used.
        self.inflater.get_or_insert_with(|| {
            Inflater::new(Backend::for_shared(MAX_WINDOW_BITS), MAX_WINDOW_BITS)
        })
    }
}

/// Why a compressed message could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// It inflates to more than the limit; no more than the limit was produced.
    TooBig,
    /// It is not valid DEFLATE data.
    Corrupt,
}

/// One connection's compression: what was agreed, and the engines kept between messages
/// where context takeover was agreed (built on first use).
pub(crate) struct Codec {
    // `None`: agreed to a window zlib cannot keep to (8 bits), so messages go out plain.
    send: Option<Compression>,
    send_takeover: bool,
    receive_window: u8,
    receive_takeover: bool,
    deflater: Option<Deflater>,
    inflater: Option<Inflater>,
}

impl Codec {
    /// The codec of the server (`server == true`) or client end of a connection that agreed
    /// on `params`, compressing as `ours` allows.
    pub(crate) fn new(params: &Params, ours: &Deflate, server: bool) -> Self {
        let (_, send_takeover) = params.direction(server);
        let (receive_window, receive_takeover) = params.direction(!server);
        Codec {
            send: params.compression(ours, server),
            send_takeover: send_takeover && !ours.no_context_takeover,
            // `Params` is public: a window past the RFC's range must not reach zlib.
            receive_window: receive_window.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS),
            receive_takeover,
            deflater: None,
            inflater: None,
        }
    }

    /// Whether messages are sent compressed: always, unless the peer capped our window
    /// below what zlib can do (an uncompressed message is always allowed, RFC 7692 §6).
    pub(crate) fn compresses(&self) -> bool {
        self.send.is_some()
    }

    /// Appends `payload`, compressed, to `out` (plain if [`Codec::compresses`] is false).
    pub(crate) fn deflate(&mut self, engines: &mut Engines, payload: &[u8], out: &mut Vec<u8>) {
        let Some(how) = self.send else {
            return out.extend_from_slice(payload);
        };
        if self.send_takeover {
            let deflater = self.deflater.get_or_insert_with(|| {
                how.deflater(Backend::for_kept(how.window_bits, Some(how.mem_level)))
            });
            compress_with(deflater, payload, out);
        } else {
            engines.compress(how, payload, out);
        }
    }

    /// Appends the inflated `compressed` message to `out`, which never grows past `limit`.
    pub(crate) fn inflate(
        &mut self,
        engines: &mut Engines,
        compressed: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        let window = self.receive_window;
        let inflater = if self.receive_takeover {
            self.inflater
                .get_or_insert_with(|| Inflater::new(Backend::for_kept(window, None), window))
        } else {
            engines.inflater()
        };
        let result = inflate_all(inflater, compressed, out, limit);
        // A shared engine is clean for the next connection; an own one that failed is
        // never used again.
        if !self.receive_takeover || result.is_err() {
            inflater.reset();
        }
        result
    }
}

/// Compresses `payload` onto `out` as one message: the sync flush's tail stripped (§7.2.1).
fn compress_with(deflater: &mut Deflater, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    deflater.compress(payload, out);
    if out[start..].ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    if out.len() == start {
        // zlib writes nothing for an empty message right after a flush; the peer needs
        // a block to put the tail after: an empty stored block's header (§7.2.3.6).
        out.push(0x00);
    }
}

fn inflate_all(
    inflater: &mut Inflater,
    compressed: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), InflateError> {
    for part in [compressed, &TAIL] {
        match inflater.inflate(part, out, limit) {
            Ok(Inflated::Done) => {}
            Ok(Inflated::LimitReached) => return Err(InflateError::TooBig),
            Err(CorruptData) => return Err(InflateError::Corrupt),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
