//! What the flags decided, validated: one [`Settings`] (with its [`Deflate`] and
//! [`Cluster`] parts) that the engine, the data plane, the server and each connection
//! read. Plain data near the bottom of the runner, so that none of them needs the flags;
//! `cli` (the only module that sees them) builds it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::tls::Tls;

/// The epoch ticker's period: the granularity of the guest CPU limit.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The fiber stack each connection's guest calls run on (wasmtime's default; address space,
/// touched only as deep as a call goes).
pub const FIBER_STACK: u64 = 2 << 20;
/// Bytes in a connection's presence info for one topic (WIT `presence.max-info`).
pub const MAX_PRESENCE_INFO: u32 = 256;

/// What one connection may hold in the runner: what its guest keeps (topics, attachment,
/// auto-responses; the values of its `max-*` imports) and what waits to be written to it.
#[derive(Debug, Clone, Copy)]
pub struct AppLimits {
    pub guest: wsbox::app::Limits,
    /// `--max-backpressure`: bytes waiting for the client before sends to it are dropped.
    pub max_backpressure: usize,
}

impl AppLimits {
    /// The most one connection's guest can make the host keep for it, live or hibernated:
    /// its attachment, its auto-responses (request and response each), its topic names and
    /// its presence info in each (kept twice: by the state, and where `presence` reads it).
    /// Bounded by the flags alone (see [`Settings::state_per_connection`]), so not counted
    /// as it is used.
    pub fn state(&self) -> usize {
        let guest = &self.guest;
        let bytes = u64::from(guest.max_attachment)
            + 2 * u64::from(guest.max_auto_responses) * u64::from(guest.max_auto_response_size)
            + u64::from(guest.max_topics)
                * (u64::from(guest.max_topic_len) + 2 * u64::from(MAX_PRESENCE_INFO));
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }
}

impl Deflate {
    /// What a connection with context takeover keeps between messages, live or hibernated:
    /// its compressor and decompressor, as the library states them
    /// ([`wsbox::deflate::Deflate::takeover_state`]: ~31 KiB at the takeover defaults). `0`
    /// unless `--deflate takeover`.
    pub fn state(&self) -> usize {
        match (self.mode, self.deflate()) {
            (Mode::Takeover, Some(deflate)) => deflate.takeover_state(),
            _ => 0,
        }
    }
}

/// The bounds on topics' histories (`--history-*`): host memory, counted as it is used.
#[derive(Debug, Clone, Copy)]
pub struct HistoryLimits {
    /// Messages one topic keeps at most.
    pub max_messages: u32,
    /// Bytes one topic keeps at most (payloads and a fixed overhead per message).
    pub topic_bytes: usize,
    /// Bytes all topics keep together.
    pub max_bytes: usize,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub handler: Option<PathBuf>,
    pub listen: SocketAddr,
    pub max_connections: usize,
    pub max_instances: usize,
    /// `None`: no per-address cap.
    pub max_connections_per_address: Option<usize>,
    /// `Some`: connections speak TLS (`--tls-cert`, `--tls-key`).
    pub tls: Option<Tls>,
    pub max_request_head: usize,
    pub max_request_body: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub max_frame_size: u64,
    pub max_message_size: u64,
    pub close_on_backpressure: bool,
    /// What one connection may hold in the runner.
    pub app: AppLimits,
    pub history: HistoryLimits,
    /// `--data-*`: the store (`dir: None` for `--data-dir memory`).
    pub store: wsbox_store::Config,
    pub hibernate_after: Duration,
    pub memory_budget: usize,
    /// `--host-memory`: what all connections' outboxes may hold together.
    pub host_memory: usize,
    pub watch: bool,
    pub metrics: Option<SocketAddr>,
    pub cluster: Option<Cluster>,
    pub deflate: Deflate,
    pub guest_memory: usize,
    pub guest_cpu: Duration,
    /// `--guest-cpu-rate`: what a connection's calls may hold it per second, on average.
    pub guest_cpu_rate: Duration,
    /// `--guest-log-rate`: lines per second per stream; 0: no limit.
    pub guest_log_rate: u64,
    /// `--guest-resources`: WASI resources one instance may hold.
    pub guest_resources: usize,
    /// `--client-*-rate`: what a client may send per second.
    pub client_rate: ClientRate,
    pub shutdown_timeout: Duration,
    /// Origins (normalized by [`parse_origin`]) that may upgrade; empty: every origin.
    pub allowed_origins: Vec<String>,
    pub dirs: Vec<(PathBuf, String)>,
    /// `--cache-dir`: where compiled handlers are kept; `None`: off.
    pub cache_dir: Option<PathBuf>,
    pub envs: Vec<(String, String)>,
}

/// What one client may send per second (`--client-message-rate`, `--client-byte-rate`,
/// `--client-rate-action`); a second's worth may come at once.
#[derive(Debug, Clone, Copy)]
pub struct ClientRate {
    /// Messages (data messages and pings) per second; 0: no limit.
    pub messages: u64,
    /// Bytes read from the socket per second (frames as sent, before inflating); 0: no limit.
    pub bytes: u64,
    /// Over either rate: close with 1008 (`true`) or stop reading until back under it.
    pub close: bool,
}

impl Settings {
    /// The most a connection's state can hold in the host beside its outbox
    /// (`--max-backpressure`) and its unfinished input (`--host-memory`): its app state
    /// ([`AppLimits::state`]) and its deflate context ([`Deflate::state`]). The runner
    /// states it at startup, times `--max-connections`.
    pub fn state_per_connection(&self) -> usize {
        self.app.state().saturating_add(self.deflate.state())
    }
}

/// `--deflate`: whether and how the runner negotiates compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Never: offers are declined.
    Off,
    /// No context takeover either way: no deflate state per connection.
    Shared,
    /// Context takeover where the client allows it, in windows of `--deflate-window-bits`.
    Takeover,
}

/// The compression settings (`--deflate*`).
#[derive(Debug, Clone, Copy)]
pub struct Deflate {
    pub mode: Mode,
    pub level: u8,
    pub window_bits: u8,
    pub mem_level: u8,
    pub threshold: usize,
}

/// The `--cluster*` flags.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub url: String,
    pub token: Option<String>,
    pub creds: Option<PathBuf>,
    pub name: String,
    pub connect_timeout: Duration,
    /// Publishes to other nodes that may wait for the link at once; more are dropped.
    pub queue: usize,
    /// The bytes those publishes may hold together (subjects and payloads); more are dropped.
    pub queue_bytes: usize,
}
