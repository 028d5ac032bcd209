//! Limits and options of a WebSocket session.

use super::deflate::Deflate;

/// Limits and options for a [`Session`](crate::session::Session) or
/// [`Websocket`](crate::Websocket).
///
/// Every field has a documented default that is safe to expose to untrusted peers.
/// Anything that bends RFC 6455 is off by default and must be switched on explicitly.
///
/// # Examples
///
/// ```
/// let config = wsbox::Config::default()
///     .max_message_size(1 << 20)
///     .max_frame_size(64 << 10);
/// assert_eq!(config.get_max_message_size(), 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    max_frame_size: usize,
    max_message_size: usize,
    accept_unmasked_frames: bool,
    deflate: Option<Deflate>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            accept_unmasked_frames: false,
            deflate: None,
        }
    }
}

impl Config {
    /// The largest payload a single received frame may declare; default 16 MiB.
    ///
    /// Checked against the frame header before any payload is read, so a peer
    /// cannot make us buffer a frame it merely announces. Exceeding it closes
    /// the connection with 1009 (message too big).
    #[must_use]
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// The largest message (all fragments together) we accept; default 64 MiB.
    ///
    /// Guards against a peer that streams continuation frames forever. Checked on
    /// every frame header; exceeding it closes with 1009 (message too big).
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Accept unmasked frames from a client (server role only); default `false`.
    ///
    /// RFC 6455 §5.1 requires a server to close the connection (1002) when a
    /// client frame is not masked. Only switch this on for trusted, non-browser
    /// peers that skip masking.
    #[must_use]
    pub fn accept_unmasked_frames(mut self, accept: bool) -> Self {
        self.accept_unmasked_frames = accept;
        self
    }

    /// Offer (client) or accept (server) permessage-deflate (RFC 7692) with these options;
    /// default `None`, no compression.
    ///
    /// Compressed messages are inflated within [`Config::max_message_size`]: a small frame
    /// that would inflate past it closes the connection with 1009 once the limit is reached,
    /// not after. See [`Deflate`] for what a connection costs in memory.
    #[must_use]
    pub fn deflate(mut self, deflate: Option<Deflate>) -> Self {
        self.deflate = deflate;
        self
    }

    /// See [`Config::max_frame_size`].
    pub fn get_max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// See [`Config::max_message_size`].
    pub fn get_max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// See [`Config::accept_unmasked_frames`].
    pub fn get_accept_unmasked_frames(&self) -> bool {
        self.accept_unmasked_frames
    }

    /// See [`Config::deflate`].
    pub fn get_deflate(&self) -> Option<&Deflate> {
        self.deflate.as_ref()
    }
}
