//! The limits of the blocking server.

use std::time::Duration;

/// The longest timeout the server takes: a year is "never" in practice, and keeps
/// `Instant + timeout` far from overflowing.
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Limits of the blocking [`Server`](super::Server), each with a default that is safe to
/// expose to untrusted clients on a small machine. [`Server::bind_with_config`] refuses
/// zero limits and timeouts, and timeouts over a year.
///
/// [`Server::bind_with_config`]: super::Server::bind_with_config
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let config = wsbox::server::ServerConfig::default()
///     .max_connections(64)
///     .request_timeout(Duration::from_secs(5));
/// assert_eq!(config.get_max_connections(), 64);
/// assert_eq!(config.get_write_timeout(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    max_connections: usize,
    request_timeout: Duration,
    write_timeout: Duration,
    idle_timeout: Option<Duration>,
    max_request_head: usize,
    max_request_body: usize,
    max_headers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
            request_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(300)),
            max_request_head: 16 << 10,
            max_request_body: 1 << 20,
            max_headers: 64,
        }
    }
}

impl ServerConfig {
    /// The most connections open at once, WebSockets included (until the [`Websocket`]
    /// is dropped); default 1024.
    ///
    /// Each connection holds a thread. Beyond the limit, a new connection is answered
    /// `503 Service Unavailable` and closed at once, so a flood of idle clients cannot
    /// exhaust threads or memory and take the process down.
    ///
    /// [`Websocket`]: crate::Websocket
    #[must_use]
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// How long a client has to send a whole request, head and body, from the moment the
    /// server starts waiting for it (after accepting, or after the previous response);
    /// default 10 s.
    ///
    /// A deadline, not a per-read timeout: a client that trickles a byte now and then
    /// (slowloris) is cut off all the same. A connection idle between requests is closed;
    /// one caught mid-request gets `408 Request Timeout`.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long writing may stall; default 10 s.
    ///
    /// An HTTP response must be written completely within it. On an upgraded connection
    /// it is the socket's write timeout: a [`Websocket`](crate::Websocket) send fails
    /// (and dropping the `Websocket` gives up on its close frame) once the peer has read
    /// nothing for this long, so a client that never reads cannot block a thread forever.
    #[must_use]
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// The read timeout of an upgraded connection: a [`Websocket`](crate::Websocket)
    /// that receives nothing for this long ends with a `TimedOut`/`WouldBlock` error from
    /// `recv` (and `None` from `next`); default 300 s. `None` waits forever.
    ///
    /// Without it a silent client holds its connection slot and thread for good. Pings
    /// from the peer count as traffic.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The largest request head (request line and headers); default 16 KiB. Larger
    /// heads get `431 Request Header Fields Too Large` before they are buffered further.
    #[must_use]
    pub fn max_request_head(mut self, bytes: usize) -> Self {
        self.max_request_head = bytes;
        self
    }

    /// The largest request body; default 1 MiB. A larger declared `Content-Length` gets
    /// `413 Content Too Large` before any of the body is read.
    #[must_use]
    pub fn max_request_body(mut self, bytes: usize) -> Self {
        self.max_request_body = bytes;
        self
    }

    /// The most header lines a request may have; default 64. More get `431`.
    #[must_use]
    pub fn max_headers(mut self, headers: usize) -> Self {
        self.max_headers = headers;
        self
    }

    /// See [`ServerConfig::max_connections`].
    pub fn get_max_connections(&self) -> usize {
        self.max_connections
    }

    /// See [`ServerConfig::request_timeout`].
    pub fn get_request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// See [`ServerConfig::write_timeout`].
    pub fn get_write_timeout(&self) -> Duration {
        self.write_timeout
    }

    /// See [`ServerConfig::idle_timeout`].
    pub fn get_idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// See [`ServerConfig::max_request_head`].
    pub fn get_max_request_head(&self) -> usize {
        self.max_request_head
    }

    /// See [`ServerConfig::max_request_body`].
    pub fn get_max_request_body(&self) -> usize {
        self.max_request_body
    }

    /// See [`ServerConfig::max_headers`].
    pub fn get_max_headers(&self) -> usize {
        self.max_headers
    }

    /// Why this configuration cannot serve, if it cannot: a zero limit or timeout would
    /// refuse every connection or fail every socket call, and a timeout beyond
    /// [`MAX_TIMEOUT`] would overflow the deadlines computed from it.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let timeouts = [self.request_timeout, self.write_timeout];
        if timeouts
            .into_iter()
            .chain(self.idle_timeout)
            .any(|t| t > MAX_TIMEOUT)
        {
            return Err("timeouts must be at most a year");
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1");
        }
        if self.request_timeout.is_zero() || self.write_timeout.is_zero() {
            return Err("request_timeout and write_timeout must be positive");
        }
        if self.idle_timeout.is_some_and(|t| t.is_zero()) {
            return Err("idle_timeout must be positive (None waits forever)");
        }
        if self.max_request_head == 0 || self.max_headers == 0 {
            return Err("max_request_head and max_headers must be at least 1");
        }
        Ok(())
    }
}
