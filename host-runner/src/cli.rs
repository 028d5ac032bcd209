//! Command-line flags and their validation into the [`Settings`] the rest of the runner
//! reads: only `main` sees the flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

mod caps;
mod rooms;
mod values;

use values::{parse_dir, parse_duration, parse_env, parse_origin, parse_size};

use crate::settings::{AppLimits, ClientRate, EPOCH_TICK, FIBER_STACK, Settings};

/// Serves WebSocket handler components: every connection gets its own sandboxed instance.
///
/// With no arguments, serves the embedded echo handler (with a demo page) on
/// http://127.0.0.1:8080/.
/// `--client-rate-action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RateAction {
    /// Stop reading the client's socket until it is back under the rate.
    Pause,
    /// Close the connection with 1008.
    Close,
}

#[derive(Debug, Parser)]
#[command(name = "wsbox-runner", version)]
pub struct Args {
    /// The handler component to serve (world `wsbox:websocket/app@0.2.x`).
    /// Without it, the embedded echo handler is served.
    #[arg(long, value_name = "FILE.wasm")]
    pub handler: Option<PathBuf>,

    /// Address to listen on. Port 0 picks a free port; the bound address is printed.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Most connections served at once; more are answered `503 Service Unavailable`.
    /// At most 2^20 (and the open-file limit).
    #[arg(long, value_name = "N", default_value_t = 12_000)]
    pub max_connections: usize,

    /// Most guest instances live at once (the instance pool's size, at most 20000: each
    /// costs kernel memory mappings). When all are live, idle ones hibernate early; when
    /// none is idle, a new connection gets 503. Default: --max-connections, at most 10000.
    #[arg(long, value_name = "N")]
    pub max_instances: Option<usize>,

    /// Most connections from one client address (IPv6: one /64) at once; more are
    /// answered 503, so that one client cannot take every place. Default: a quarter of
    /// --max-connections (3000), but at least 64 (so that tests, benchmarks and a browser on
    /// loopback work with small --max-connections). 0 turns the cap off: do so behind a
    /// reverse proxy, where every client has the proxy's address.
    #[arg(long, value_name = "N")]
    pub max_connections_per_address: Option<usize>,

    /// Largest request head (request line and headers); larger ones get
    /// `431 Request Header Fields Too Large`. At least 8KiB.
    #[arg(long, value_name = "SIZE", default_value = "16KiB", value_parser = parse_size)]
    pub max_request_head: u64,

    /// Largest request body passed to the handler; larger ones get `413 Content Too Large`.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_request_body: u64,

    /// Time a connection has for its whole HTTP phase: sending its request heads and
    /// bodies and reading the responses, until it upgrades to a WebSocket. Then it is
    /// dropped (guards against slowloris, stalled bodies and clients that never read).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Close a WebSocket (code 1000) that received nothing for this long; 0 means never.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Largest payload one WebSocket frame may declare (closed with 1009 beyond).
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
    pub max_frame_size: u64,

    /// Largest WebSocket message, all fragments together (closed with 1009 beyond).
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
    pub max_message_size: u64,

    /// Bytes one WebSocket may have waiting to be written to its client. A message sent
    /// to a connection that has more waiting is dropped (`send` reports `backpressure`, a
    /// publish skips it, the drop is counted in its close log line), so that a slow reader
    /// costs bounded memory and never stalls a sender. A connection's own answers are
    /// paced instead: it reads nothing more from its client while over half this bound.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_backpressure: u64,

    /// Close a connection over --max-backpressure (code 1008) instead of dropping what is
    /// sent to it.
    #[arg(long)]
    pub close_on_backpressure: bool,

    /// permessage-deflate (RFC 7692) with clients that offer it (browsers do): `shared`
    /// compresses without context takeover either way, so a connection keeps no deflate
    /// state (the engines belong to the worker threads) and a publish is compressed once;
    /// `takeover` lets each connection keep its context (better ratios for many small
    /// similar messages, ≈ --deflate-window-bits/--deflate-mem-level worth of state per
    /// connection; publishes reach it uncompressed); `off` declines.
    #[arg(long, value_name = "MODE", default_value = "shared")]
    pub deflate: crate::settings::Mode,

    /// zlib compression level, 0 (store) to 9 (smallest).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(0..=9))]
    pub deflate_level: u8,

    /// With `--deflate takeover`: the largest LZ77 window a connection keeps, 9–15 bits
    /// (2^(N+2) bytes to compress, 2^N to decompress).
    #[arg(long, value_name = "BITS", default_value_t = 11,
          value_parser = clap::value_parser!(u8).range(9..=15))]
    pub deflate_window_bits: u8,

    /// With `--deflate takeover`: zlib's memLevel for a connection's compressor, 1–9
    /// (2^(N+9) bytes).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u8).range(1..=9))]
    pub deflate_mem_level: u8,

    /// With `--deflate shared`: messages shorter than this go out uncompressed, since a
    /// few bytes compressed on their own hardly shrink and cost CPU. (With `takeover` every
    /// message is compressed: its context makes even short ones shrink.)
    #[arg(long, value_name = "SIZE", default_value = "128", value_parser = parse_size)]
    pub deflate_threshold: u64,

    #[command(flatten)]
    pub rooms: rooms::RoomArgs,

    /// Topics one WebSocket may be subscribed to at once (at least 1).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_topics: u32,

    /// Longest topic name, in bytes (at least 1).
    #[arg(long, value_name = "SIZE", default_value = "256", value_parser = parse_size)]
    pub max_topic_len: u64,

    /// Largest attachment (the value the runner keeps for each connection's guest).
    #[arg(long, value_name = "SIZE", default_value = "16KiB", value_parser = parse_size)]
    pub max_attachment: u64,

    /// Auto-response pairs (messages the runner answers without calling the guest) one
    /// WebSocket may register.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_auto_responses: u32,

    /// Largest auto-response request, and largest response.
    #[arg(long, value_name = "SIZE", default_value = "2KiB", value_parser = parse_size)]
    pub max_auto_response_size: u64,

    /// Drop the instance of a WebSocket whose guest has had no call for this long
    /// (hibernation): the runner keeps the socket, id, topics, attachment, alarm and
    /// auto-responses, answers pings and auto-responses itself, and wakes a fresh instance
    /// for the next message, alarm or close. `0` hibernates after every callback.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub hibernate_after: Duration,

    /// Linear memory of all live guest instances together. A new connection whose
    /// instance does not fit gets 503; a growing guest waits for others to hibernate, up
    /// to --guest-cpu, then fails (1011). Default: half of physical memory (with
    /// --host-memory's quarter, a quarter stays for the kernel and the runner itself).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory_budget: Option<u64>,

    /// Bytes the host may hold for all connections together, beside each one's
    /// --max-backpressure: frames waiting for clients that read slowly (each counted with
    /// an 80-byte overhead), TLS records sealed and not yet written (32 KiB a connection
    /// at most) and unfinished inbound messages. Past it, messages to other connections and
    /// a connection's own sends are dropped and counted (`wsbox_host_refusals_total`), as
    /// past --max-backpressure, and a connection whose unfinished message grows is closed
    /// with 1013.
    /// Default: a quarter of physical memory, so that it and --memory-budget (half) stay
    /// below physical memory together.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub host_memory: Option<u64>,

    /// Reload the handler when its file changes (checked every 500 ms), as on SIGHUP: new
    /// connections and every next call of an open one run the new version; no socket is
    /// dropped, and a file that fails to compile or link is refused (the old version keeps
    /// serving).
    #[arg(long, requires = "handler")]
    pub watch: bool,

    /// Linear memory one guest instance may use; beyond it the guest traps and its
    /// connection is closed with 1011. Must be at least 4 × the max message size (measured:
    /// the message being assembled, its echo and allocator slack).
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub guest_memory: u64,

    /// Time one guest call may hold its connection, running or waiting in a WASI call
    /// (time yielded to other connections at each 10 ms tick does not count); a call still
    /// going then is stopped and its connection closed with 1011.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub guest_cpu: Duration,

    /// Time a connection's guest calls may hold it per second, on average (one second's
    /// worth may be spent at once, and one more owed). A guest over it is called for nothing
    /// more — its client is not read and its alarm waits — until it is back under, so that
    /// a guest keeping itself busy (an alarm loop, a client that never stops asking) cannot
    /// hold a core. The default, `1s`, is a whole core per connection: no limit; `250ms`
    /// holds every connection to a quarter of a core.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub guest_cpu_rate: Duration,

    /// Lines a connection's guest may print per second, on stdout and on stderr each (a
    /// second's worth at once); 0: no limit. The lines over it are dropped and counted
    /// (`wsbox_guest_log_dropped_total`, and in one warning once lines are logged again),
    /// so that a guest printing in a loop cannot fill the disk or hold the logger.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub guest_log_rate: u64,

    /// Entries of a guest instance's WASI resource table (streams, pollables, …; a timer's
    /// pollable takes two) held at once; one more fails the call that asks for it (the
    /// connection closes with 1011). Each costs the host about 130 bytes while held
    /// (measured); wasmtime's own limits let one instance hold ~100,000 handles, ~26 MB.
    #[arg(long, value_name = "N", default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub guest_resources: u32,

    /// Messages (data messages and pings) one client may send per second, a second's worth
    /// at once; 0: no limit. Over it, `--client-rate-action` decides.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub client_message_rate: u64,

    /// Bytes one client may send per second (as read from its socket, before inflating), a
    /// second's worth at once; 0: no limit. Over it, `--client-rate-action` decides.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub client_byte_rate: u64,

    /// What a client over --client-message-rate or --client-byte-rate gets: `pause` (its
    /// socket is not read until it is back under: TCP backpressure, nothing lost) or `close`
    /// (code 1008, "message rate exceeded").
    #[arg(long, value_name = "ACTION", default_value = "pause")]
    pub client_rate_action: RateAction,

    /// On SIGINT/SIGTERM, how long open WebSockets get to finish the close handshake
    /// (code 1001) before the process exits anyway.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Lets WebSocket upgrades whose `Origin` header is ORIGIN (`https://app.example`,
    /// `http://localhost:8080`) through; repeatable. Once given, upgrades from any other
    /// origin get 403 before the handler sees them, so that web pages elsewhere cannot
    /// open WebSockets with their visitors' cookies (cross-site WebSocket hijacking).
    /// Requests without `Origin` (not from a browser) are not checked. Default: every
    /// origin may upgrade, which suits the embedded echo but not a handler that trusts
    /// cookies or the network it listens on.
    #[arg(long = "allowed-origin", value_name = "ORIGIN", value_parser = parse_origin)]
    pub allowed_origins: Vec<String>,

    /// Where compiled handlers are kept, keyed by their content, wasmtime's version and the
    /// engine's settings, so that a restart or reload of a handler already compiled loads
    /// its native code instead of compiling it again (seconds for a JavaScript or Python
    /// handler). Created with mode 0700; refused (and the cache left off) if another user
    /// owns it or others may write it. `off`: no cache. Default: `$XDG_CACHE_HOME/wsbox-runner`,
    /// else `$HOME/.cache/wsbox-runner`, else off.
    #[arg(long, value_name = "DIR|off", env = "WSBOX_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Grants guests a host directory, as `HOST::GUEST` (read-write). Repeatable.
    /// Guests get no filesystem access without it.
    #[arg(long = "dir", value_name = "HOST::GUEST", value_parser = parse_dir)]
    pub dirs: Vec<(PathBuf, String)>,

    /// Grants guests an environment variable: `NAME=VALUE`, or `NAME` to pass the runner's
    /// own value. Repeatable. Guests see no environment without it.
    #[arg(long = "env", value_name = "NAME[=VALUE]", value_parser = parse_env)]
    pub envs: Vec<(String, Option<String>)>,

    /// Serve Prometheus metrics at http://ADDR/metrics (WebSockets live and hibernated,
    /// messages, bytes, publishes, drops, wakes, guest faults, reloads, guest memory). Port 0
    /// picks one; the bound address is logged. At most 16 connections at once (more are
    /// closed), each with 5 s to send its request and 30 s to live.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,

    /// Serve `https` and `wss` (TLS 1.2 and 1.3, ALPN `http/1.1`) with this certificate
    /// chain: a PEM file, the server's certificate first, then its intermediates.
    /// Requires --tls-key. Without them the runner serves `http` and `ws`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert: a PEM file (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Join a cluster of runners through NATS: `nats://HOST:PORT` (several separated by
    /// commas; `nats://USER:PASSWORD@HOST:PORT` for password auth). Topics and connection
    /// ids then reach every runner with the same --cluster-name. Without it the runner is
    /// a single node. The runner refuses to start if it cannot reach NATS.
    #[arg(long, value_name = "URL", env = "WSBOX_CLUSTER")]
    pub cluster: Option<String>,

    /// Token for NATS token auth.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WSBOX_CLUSTER_TOKEN",
        requires = "cluster"
    )]
    pub cluster_token: Option<String>,

    /// NATS credentials file (JWT and NKey seed, as `nsc` writes it).
    #[arg(
        long,
        value_name = "FILE",
        env = "WSBOX_CLUSTER_CREDS",
        requires = "cluster"
    )]
    pub cluster_creds: Option<PathBuf>,

    /// The cluster's name: the first token of its NATS subjects. Runners with different
    /// names on one NATS do not see each other.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "wsbox",
        env = "WSBOX_CLUSTER_NAME"
    )]
    pub cluster_name: String,

    /// How long the first connection to NATS may take before the runner gives up.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub cluster_connect_timeout: Duration,

    /// Publishes to other runners that may wait for the NATS connection at once; more are
    /// dropped (and counted).
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub cluster_queue: usize,

    /// The bytes those publishes may hold together (their subjects and payloads): past it,
    /// publishes to other runners are dropped (and counted), as past --cluster-queue, so a
    /// slow NATS link holds at most this much, not --cluster-queue × the message size
    /// (64 GiB at 1 MiB). A publish larger than it never crosses. Default: 64MiB.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub cluster_queue_bytes: u64,

    /// Log filter, e.g. `info`, `debug`, `wsbox_runner=trace` (default: RUST_LOG, else info).
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
}

/// Linux's default `fs.nr_open`: no process holds more descriptors, so no more sockets. The
/// instance pool sizes its bookkeeping by this flag: 10^9 slots took 56 GB before a guest ran.
const MAX_CONNECTIONS: usize = 1 << 20;
/// The instance pool maps two regions per fiber stack and a few per live memory, and Linux
/// allows 65,530 mappings per process by default (`vm.max_map_count`).
const MAX_INSTANCES: usize = 20_000;
const DEFAULT_MAX_INSTANCES: usize = 10_000;
/// hyper's smallest read buffer; a smaller head limit cannot be enforced.
const MIN_REQUEST_HEAD: u64 = 8 * 1024;
/// The per-address cap when none is given: a quarter of `--max-connections`, but no less
/// than this, so that small servers tried from one machine behave as configured.
const MIN_DEFAULT_PER_ADDRESS: usize = 64;
/// Above this the pool's address-space reservation (connections × (guest memory + fiber
/// stack)) cannot be mapped on x86-64/aarch64 with 47-bit user address spaces.
const MAX_RESERVATION: u64 = 64 << 40;

impl Args {
    /// Checks the flags against each other; the error says which flag to change.
    pub fn validate(self) -> Result<Settings, String> {
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".into());
        }
        if self.max_connections > MAX_CONNECTIONS {
            return Err(format!(
                "--max-connections can be at most {MAX_CONNECTIONS} (got {})",
                self.max_connections
            ));
        }
        let max_connections_per_address = match self.max_connections_per_address {
            Some(0) => None,
            Some(n) if n > self.max_connections => {
                return Err(format!(
                    "--max-connections-per-address ({n}) cannot exceed --max-connections ({}); \
                     0 turns the cap off",
                    self.max_connections
                ));
            }
            Some(n) => Some(n),
            None => Some(
                (self.max_connections / 4)
                    .max(MIN_DEFAULT_PER_ADDRESS)
                    .min(self.max_connections),
            ),
        };
        if self.max_request_head < MIN_REQUEST_HEAD {
            return Err(format!(
                "--max-request-head must be at least {MIN_REQUEST_HEAD} bytes (got {})",
                self.max_request_head
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err("--handshake-timeout must be positive".into());
        }
        if self.guest_cpu < EPOCH_TICK {
            return Err(format!("--guest-cpu must be at least {EPOCH_TICK:?}"));
        }
        if self.guest_cpu_rate < EPOCH_TICK || self.guest_cpu_rate > Duration::from_secs(1) {
            return Err(format!(
                "--guest-cpu-rate must be between {EPOCH_TICK:?} and 1s (a whole core)"
            ));
        }
        if self.max_frame_size == 0 || self.max_message_size == 0 {
            return Err("--max-frame-size and --max-message-size must be positive".into());
        }
        if self.max_frame_size > self.max_message_size {
            return Err(format!(
                "--max-frame-size ({}) cannot exceed --max-message-size ({})",
                self.max_frame_size, self.max_message_size
            ));
        }
        if self.max_topics == 0 || self.max_topic_len == 0 {
            return Err("--max-topics and --max-topic-len must be at least 1".into());
        }
        caps::check_app_limits(&self)?;
        let max_topic_len =
            u32::try_from(self.max_topic_len).map_err(|_| "--max-topic-len cannot exceed 4GiB")?;
        let max_attachment = u32::try_from(self.max_attachment)
            .map_err(|_| "--max-attachment cannot exceed 4GiB")?;
        let max_auto_response_size = u32::try_from(self.max_auto_response_size)
            .map_err(|_| "--max-auto-response-size cannot exceed 4GiB")?;
        let memory_budget = self
            .memory_budget
            .unwrap_or_else(crate::limits::default_memory_budget);
        if memory_budget == 0 {
            return Err("--memory-budget must be positive".into());
        }
        let host_memory = self
            .host_memory
            .unwrap_or_else(crate::limits::default_host_memory);
        if host_memory == 0 {
            return Err("--host-memory must be positive".into());
        }
        if self.guest_memory > u64::from(u32::MAX) + 1 {
            return Err("--guest-memory cannot exceed 4GiB (32-bit guests)".into());
        }
        // The guest holds the message being assembled and the frame that answers it, plus
        // allocator slack: 3× a maximal message measured too little (the echo guest trapped).
        let needed = self.max_message_size.saturating_mul(4);
        if self.guest_memory < needed {
            return Err(format!(
                "--guest-memory ({}) must be at least 4 × --max-message-size ({}), i.e. {needed}",
                self.guest_memory, self.max_message_size
            ));
        }
        let guest_memory = round_up_to_wasm_page(self.guest_memory);
        let max_instances = self
            .max_instances
            .unwrap_or(self.max_connections.min(DEFAULT_MAX_INSTANCES));
        if max_instances == 0 || max_instances > MAX_INSTANCES {
            return Err(format!(
                "--max-instances must be between 1 and {MAX_INSTANCES} (got {max_instances})"
            ));
        }
        if (max_instances as u64).saturating_mul(guest_memory.saturating_add(FIBER_STACK))
            > MAX_RESERVATION
        {
            return Err(format!(
                "--max-instances × (--guest-memory + a 2 MiB fiber stack) exceeds the {} TiB \
                 the instance pool may reserve; lower one of them",
                MAX_RESERVATION >> 40
            ));
        }
        let mut envs = Vec::with_capacity(self.envs.len());
        for (name, value) in self.envs {
            let value = match value {
                Some(value) => value,
                None => std::env::var(&name)
                    .map_err(|_| format!("--env {name}: the runner's environment has no {name}"))?,
            };
            envs.push((name, value));
        }
        for (host, _) in &self.dirs {
            if !host.is_dir() {
                return Err(format!("--dir {}: not a directory", host.display()));
            }
        }
        let cluster = match self.cluster {
            Some(url) => {
                if max_topic_len as usize > crate::cluster::wire::MAX_TOPIC {
                    return Err(format!(
                        "--max-topic-len cannot exceed {} bytes with --cluster (NATS subjects)",
                        crate::cluster::wire::MAX_TOPIC
                    ));
                }
                if crate::cluster::wire::Subjects::new(&self.cluster_name).is_none() {
                    return Err(format!(
                        "--cluster-name {:?}: use letters, digits, '-' and '_'",
                        self.cluster_name
                    ));
                }
                Some(crate::settings::Cluster {
                    url,
                    token: self.cluster_token,
                    creds: self.cluster_creds,
                    name: self.cluster_name,
                    connect_timeout: self.cluster_connect_timeout,
                    queue: self.cluster_queue.max(1),
                    queue_bytes: usize::try_from(self.cluster_queue_bytes).unwrap_or(usize::MAX),
                })
            }
            None => None,
        };
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::load(cert, key)?),
            _ => None,
        };
        Ok(Settings {
            handler: self.handler,
            listen: self.listen,
            max_connections: self.max_connections,
            max_instances,
            max_connections_per_address,
            max_request_head: usize::try_from(self.max_request_head)
                .map_err(|_| "--max-request-head is too large")?,
            max_request_body: usize::try_from(self.max_request_body)
                .map_err(|_| "--max-request-body is too large")?,
            handshake_timeout: self.handshake_timeout,
            idle_timeout: (!self.idle_timeout.is_zero()).then_some(self.idle_timeout),
            max_frame_size: self.max_frame_size,
            max_message_size: self.max_message_size,
            close_on_backpressure: self.close_on_backpressure,
            history: self.rooms.history()?,
            store: self.rooms.store()?,
            app: AppLimits {
                guest: wsbox::app::Limits::new(
                    self.max_topics,
                    max_topic_len,
                    max_attachment,
                    self.max_auto_responses,
                    max_auto_response_size,
                ),
                max_backpressure: usize::try_from(self.max_backpressure)
                    .map_err(|_| "--max-backpressure is too large")?,
            },
            hibernate_after: self.hibernate_after,
            memory_budget: usize::try_from(memory_budget).unwrap_or(usize::MAX),
            host_memory: usize::try_from(host_memory).unwrap_or(usize::MAX),
            watch: self.watch,
            metrics: self.metrics,
            cluster,
            deflate: crate::settings::Deflate {
                mode: self.deflate,
                level: self.deflate_level,
                window_bits: self.deflate_window_bits,
                mem_level: self.deflate_mem_level,
                threshold: usize::try_from(self.deflate_threshold).unwrap_or(usize::MAX),
            },
            tls,
            guest_memory: usize::try_from(guest_memory)
                .map_err(|_| "--guest-memory is too large")?,
            guest_cpu: self.guest_cpu,
            guest_cpu_rate: self.guest_cpu_rate,
            guest_log_rate: self.guest_log_rate,
            guest_resources: self.guest_resources as usize,
            client_rate: ClientRate {
                messages: self.client_message_rate,
                bytes: self.client_byte_rate,
                close: self.client_rate_action == RateAction::Close,
            },
            shutdown_timeout: self.shutdown_timeout,
            allowed_origins: self.allowed_origins,
            dirs: self.dirs,
            cache_dir: match self.cache_dir {
                Some(dir) if dir.as_os_str() == "off" => None,
                Some(dir) => Some(dir),
                None => default_cache_dir(),
            },
            envs,
        })
    }
}

fn round_up_to_wasm_page(bytes: u64) -> u64 {
    bytes.div_ceil(65_536) * 65_536
}

/// `--cache-dir`'s default: the XDG cache directory, else `~/.cache`, under `wsbox-runner`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("wsbox-runner"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("wsbox-runner").chain(extra.iter().copied()))
            .expect("flags parse")
    }

    #[test]
    fn defaults_are_consistent() {
        let settings = args(&[]).validate().expect("defaults validate");
        assert_eq!(settings.max_message_size, 16 << 20);
        assert_eq!(settings.guest_memory, 64 << 20);
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn per_address_cap_defaults_to_a_quarter() {
        let cap = |flags: &[&str]| {
            args(flags)
                .validate()
                .expect("valid")
                .max_connections_per_address
        };
        assert_eq!(cap(&[]), Some(3000));
        assert_eq!(cap(&["--max-connections", "100"]), Some(64));
        assert_eq!(cap(&["--max-connections", "8"]), Some(8));
        assert_eq!(cap(&["--max-connections-per-address", "0"]), None);
        assert_eq!(cap(&["--max-connections-per-address", "7"]), Some(7));
    }

    #[test]
    fn bad_combinations_are_refused() {
        let refused = |flags: &[&str], needle: &str| {
            let error = args(flags).validate().expect_err("must be refused");
            assert!(error.contains(needle), "{error:?} should mention {needle}");
        };
        refused(&["--max-message-size", "32MiB"], "--guest-memory");
        refused(
            &["--max-frame-size", "1MiB", "--max-message-size", "1KiB"],
            "--max-frame-size",
        );
        refused(&["--max-request-head", "1KiB"], "--max-request-head");
        refused(&["--guest-cpu", "1ms"], "--guest-cpu");
        refused(&["--max-connections", "0"], "--max-connections");
        refused(&["--max-connections", "10000000"], "--max-connections");
        refused(&["--max-connections", "1048577"], "at most 1048576");
        refused(
            &[
                "--max-connections",
                "8",
                "--max-connections-per-address",
                "9",
            ],
            "--max-connections-per-address",
        );
        refused(
            &["--dir", "/nonexistent-wsbox-dir::/data"],
            "not a directory",
        );
    }

    #[test]
    fn grants_parse() {
        let settings = args(&["--env", "A=1", "--dir", "/tmp::/data"])
            .validate()
            .expect("valid grants");
        assert_eq!(settings.envs, [("A".to_owned(), "1".to_owned())]);
        assert_eq!(settings.dirs, [(PathBuf::from("/tmp"), "/data".to_owned())]);
    }
}
