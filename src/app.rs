//! What the `app` world's host and its guests agree on outside the WIT records: the limits
//! a host puts on what a guest keeps in it. `wsbox-runner` fills a [`Limits`] from its
//! flags and answers the guest's `max-*` imports from it; the guest SDK reads it back with
//! [`Websocket::limits`](crate::guest::Websocket::limits) (feature `guest`).

/// The host's limits on what one connection's guest keeps in the host: topics, the
/// attachment and auto-responses. `wsbox-runner`'s flags of the same names set them.
///
/// # Examples
///
/// ```
/// let limits = wsbox::app::Limits::new(64, 256, 16 * 1024, 8, 2 * 1024);
/// assert!(limits.max_topic_len as usize >= "room/lobby".len());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Topics one connection may subscribe to (64 by default, at least 1).
    pub max_topics: u32,
    /// Bytes in a topic name (256 by default, at least 1).
    pub max_topic_len: u32,
    /// Bytes in an attachment (16 KiB by default).
    pub max_attachment: u32,
    /// Auto-response pairs one connection may have (8 by default).
    pub max_auto_responses: u32,
    /// Bytes in an auto-response's request, and in its response (2 KiB by default).
    pub max_auto_response_size: u32,
}

impl Limits {
    /// Limits with these values, in the order of the fields.
    pub const fn new(
        max_topics: u32,
        max_topic_len: u32,
        max_attachment: u32,
        max_auto_responses: u32,
        max_auto_response_size: u32,
    ) -> Self {
        Limits {
            max_topics,
            max_topic_len,
            max_attachment,
            max_auto_responses,
            max_auto_response_size,
        }
    }
}
