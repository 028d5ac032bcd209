//! permessage-deflate (RFC 7692): the options a [`Config`](crate::Config) switches it on
//! with, the parameters a handshake agrees on, and the codec that applies them.
//!
//! Negotiation ([`negotiate`], [`offer`], [`check_response`]) is pure functions over
//! header values. The codec keeps no compression state of its own unless context takeover
//! was agreed: a session without takeover borrows the caller's [`Engines`] for each
//! message, so an idle connection holds no deflate memory at all.

mod codec;
mod negotiate;
mod zlib;

pub use codec::Engines;
pub(crate) use codec::{Codec, InflateError};
pub use negotiate::{ExtensionError, check_response, negotiate, offer};
use zlib::{Backend, Deflater};

/// The smallest LZ77 window zlib honours; it silently widens 8 to 9, so a peer that asks for
/// 8 cannot be given it and its offer is declined.
pub const MIN_WINDOW_BITS: u8 = 9;
/// The largest LZ77 window, and the RFC's default when a window is not negotiated.
pub const MAX_WINDOW_BITS: u8 = 15;

/// How this endpoint is willing to compress, set with
/// [`Config::deflate`](crate::Config::deflate).
///
/// # Examples
///
/// ```
/// use wsbox::deflate::Deflate;
///
/// // Small per-connection state when context takeover is agreed.
/// let deflate = Deflate::default().max_window_bits(11).mem_level(4);
/// let config = wsbox::Config::default().deflate(Some(deflate));
/// assert_eq!(config.get_deflate().unwrap().get_max_window_bits(), 11);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deflate {
    level: u8,
    mem_level: u8,
    max_window_bits: u8,
    no_context_takeover: bool,
}

impl Default for Deflate {
    fn default() -> Self {
        Deflate {
            level: 6,
            mem_level: 8,
            max_window_bits: MAX_WINDOW_BITS,
            no_context_takeover: false,
        }
    }
}

impl Deflate {
    /// zlib's compression level, 0 (store) to 9 (smallest); default 6. Clamped to 0–9.
    #[must_use]
    pub fn level(mut self, level: u8) -> Self {
        self.level = level.min(9);
        self
    }

    /// zlib's `memLevel`, 1–9; default 8. Under 8 (or with a window under 15 bits), a
    /// compressor kept with context takeover runs on C zlib, whose hash table and output
    /// buffer then cost `2^(mem_level + 9)` bytes together ([`Deflate::takeover_state`]).
    /// Clamped to 1–9. A compressor whose agreed window is smaller than 15 bits uses at
    /// most `window bits - 4` (see [`Params::compression`]).
    #[must_use]
    pub fn mem_level(mut self, mem_level: u8) -> Self {
        self.mem_level = mem_level.clamp(1, 9);
        self
    }

    /// The largest LZ77 window, as a power of two, 9–15; default 15. Our compressor uses no
    /// larger one, and a peer that lets us cap its window is asked for no larger one; a peer
    /// that does not (it offers no `client_max_window_bits` / the server answers none) and
    /// would need a larger window is asked for no context takeover instead, so a connection
    /// with takeover never keeps more than windows of this size. A window costs
    /// `2^(bits + 2)` bytes to compress and `2^bits` to decompress. Clamped to 9–15.
    #[must_use]
    pub fn max_window_bits(mut self, bits: u8) -> Self {
        self.max_window_bits = bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        self
    }

    /// Ask for no context takeover in both directions; default `false`. Each message is
    /// then compressed on its own, worse for many small similar messages, but a connection
    /// keeps no compression state between messages (the [`Engines`] are shared).
    #[must_use]
    pub fn no_context_takeover(mut self, no_context_takeover: bool) -> Self {
        self.no_context_takeover = no_context_takeover;
        self
    }

    /// The most deflate state a connection with context takeover keeps between messages
    /// under these options, in bytes: its compressor's and its decompressor's, in windows of
    /// at most [`Deflate::max_window_bits`] (a peer is never agreed a larger one with
    /// takeover). Each is built on first use; without takeover a connection keeps none.
    ///
    /// Measured, not estimated: zlib-rs, 1.4–2.7× faster, serves the full 15-bit window
    /// (~420 KiB with the defaults); smaller windows or a memLevel under 8 get C zlib, whose
    /// tables shrink with them (~31 KiB at 11 bits and memLevel 4).
    ///
    /// # Examples
    ///
    /// ```
    /// use wsbox::deflate::Deflate;
    ///
    /// let small = Deflate::default().max_window_bits(11).mem_level(4);
    /// assert!(small.takeover_state() < 32 << 10);
    /// assert!(Deflate::default().takeover_state() > 400 << 10);
    /// ```
    pub fn takeover_state(&self) -> usize {
        let window_bits = self.max_window_bits;
        let mem_level = self.mem_level.min(mem_level_for(window_bits));
        let deflater = Backend::for_kept(window_bits, Some(mem_level));
        let inflater = Backend::for_kept(window_bits, None);
        deflater.deflater_bytes(window_bits, mem_level) + inflater.inflater_bytes(window_bits)
    }

    /// See [`Deflate::level`].
    pub fn get_level(&self) -> u8 {
        self.level
    }

    /// See [`Deflate::mem_level`].
    pub fn get_mem_level(&self) -> u8 {
        self.mem_level
    }

    /// See [`Deflate::max_window_bits`].
    pub fn get_max_window_bits(&self) -> u8 {
        self.max_window_bits
    }

    /// See [`Deflate::no_context_takeover`].
    pub fn get_no_context_takeover(&self) -> bool {
        self.no_context_takeover
    }
}

/// The largest `memLevel` worth using with a window of `window_bits`: a hash table of eight
/// entries per window byte. zlib slides its whole hash table each time the input passes a
/// window's length, so a 512-byte window under the default 32 Ki-entry table spends most of
/// its time in `fill_window` (a quarter of the runner's CPU under Autobahn's 13.x). Measured
/// at level 1 on 2 MB of text, memLevel 8 → 5 at 9 bits: 3.0× faster for 2% more bytes;
/// 7 at 11 bits: 1.25× faster, same size; a smaller table loses both ways (more collisions,
/// shorter blocks).
fn mem_level_for(window_bits: u8) -> u8 {
    window_bits.saturating_sub(4).clamp(1, 9)
}

/// How one end compresses the messages it sends under what a handshake agreed: zlib's level
/// and memory level from its [`Deflate`], the window from both. Get it with
/// [`Params::compression`]; connections with equal ones can be sent the same compressed
/// bytes ([`Engines::compress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    level: u8,
    window_bits: u8,
    mem_level: u8,
}

impl Compression {
    /// The LZ77 window compressed with, 9–15 bits.
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    fn deflater(&self, backend: Backend) -> Deflater {
        Deflater::new(backend, self.level, self.window_bits, self.mem_level)
    }

    /// How to compress a message of `len` bytes on its own (no context takeover): in no
    /// larger a window than it fills, which loses nothing (nothing outside the message can
    /// be referred to) and leaves a smaller hash table to clear for each message.
    fn for_message(self, len: usize) -> Compression {
        // The smallest window that holds the whole message.
        let fits = usize::BITS - len.saturating_sub(1).leading_zeros();
        let window_bits = (fits as u8).clamp(MIN_WINDOW_BITS, self.window_bits);
        Compression {
            window_bits,
            mem_level: self.mem_level.min(mem_level_for(window_bits)),
            ..self
        }
    }
}

/// The parameters of permessage-deflate agreed in a handshake (RFC 7692 §7.1), as the
/// server's response states them. A window given as `None` was not negotiated: 15 bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Params {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// The largest window the server compresses with.
    pub server_max_window_bits: Option<u8>,
    /// The largest window the client compresses with.
    pub client_max_window_bits: Option<u8>,
}

impl Params {
    /// The `Sec-WebSocket-Extensions` value of a response that accepts these parameters.
    ///
    /// # Examples
    ///
    /// ```
    /// let params = wsbox::deflate::Params {
    ///     client_no_context_takeover: true,
    ///     client_max_window_bits: Some(10),
    ///     ..Default::default()
    /// };
    /// assert_eq!(
    ///     params.to_header(),
    ///     "permessage-deflate; client_no_context_takeover; client_max_window_bits=10",
    /// );
    /// ```
    pub fn to_header(&self) -> String {
        let mut header = String::from(negotiate::NAME);
        if self.server_no_context_takeover {
            header.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            header.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            header.push_str(&format!("; server_max_window_bits={bits}"));
        }
        if let Some(bits) = self.client_max_window_bits {
            header.push_str(&format!("; client_max_window_bits={bits}"));
        }
        header
    }

    /// How the server (`server == true`) or the client compresses under these parameters
    /// when its options are `ours`; `None` if it must send its messages uncompressed (the
    /// peer capped its window at 8 bits, which zlib cannot keep to).
    pub fn compression(&self, ours: &Deflate, server: bool) -> Option<Compression> {
        let (window, _) = self.direction(server);
        // A smaller window than agreed is always allowed.
        let window_bits = window.min(ours.max_window_bits);
        (window >= MIN_WINDOW_BITS).then_some(Compression {
            level: ours.level,
            window_bits,
            mem_level: ours.mem_level.min(mem_level_for(window_bits)),
        })
    }

    /// `(window bits, context takeover)` of the compressor of the endpoint that is the
    /// server (`server == true`) or the client.
    pub(crate) fn direction(&self, server: bool) -> (u8, bool) {
        if server {
            (
                self.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
                !self.server_no_context_takeover,
            )
        } else {
            (
                self.client_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
                !self.client_no_context_takeover,
            )
        }
    }
}
