//! The rooms benchmark (issue 22): what topics with history and the store cost a runner,
//! each scenario against one runner, printing one JSON line per measured phase. Server CPU
//! is the runner's utime+stime from `/proc/PID/stat` before and after each phase, so ratios
//! between phases of one run hold on a shared machine where absolute rates do not.
//!
//! ```sh
//! cargo build --release -p wsbox-runner --example rooms_bench
//! scripts/build-guest.sh broadcast                   # fanout
//! scripts/build-guest.sh test-handler                # store, resume
//! target/release/wsbox-runner --handler …/guest_broadcast.wasm --listen 127.0.0.1:9001 \
//!     --client-message-rate 0 --client-byte-rate 0 --data-dir "$(mktemp -d)" &
//! target/release/examples/rooms_bench fanout --addr 127.0.0.1:9001 --pid $! --subs 1000,1
//! ```
//! `scripts/bench-rooms.sh` runs all three and prints the table.
//!
//! - `fanout`: one publisher and N subscribers on a topic of `guests/broadcast`, history off
//!   (path `/tK`) and on (`/tK?history=H`), alternated for `--rounds`; W messages in flight
//!   (one is done when all N+1 connections, the publisher too, received it). Every delivery
//!   is unwrapped (the 16-byte binary prefix, or the JSON `pos` member), checked byte for
//!   byte, and its offset must follow the connection's previous one.
//! - `store`: N connections to test-handler's `/topics`, each with one command in flight:
//!   phases `call` (an unknown command: the guest call alone, the baseline), `kvset`, then
//!   `kvget`; a get must read the connection's last set.
//! - `resume`: `history T N 0` and `/flood` `pub T N SIZE`, then C clients `fromlast T N` at
//!   once: each must get offsets 1..N in order, epoch and payload as published; wall time
//!   is from the first subscribe to the last delivery.
//!
//! Exits with status 1 when a check failed (a gap, a wrong byte, a stalled phase).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use futures_util::stream::{self, SplitSink};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, spawn_local};
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Loopback connections rotate over 127.0.0.1..=127.0.0.32, as `wsload` does.
const SOURCES: u8 = 32;
/// Handshakes in flight at once.
const CONNECTING: usize = 64;
/// How long a phase may go without progress before it counts as stalled.
const STALL: Duration = Duration::from_secs(10);
/// The byte every payload is filled with after its sequence number.
const PAD: u8 = 0x5a;
/// Sequence numbers of the messages that find out whether every subscriber is in.
const SYNC: u64 = 1 << 63;

type Ws = WebSocketStream<TcpStream>;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Target {
    /// The runner's address.
    #[arg(long)]
    addr: SocketAddr,
    /// The runner's pid: its CPU time is read from /proc.
    #[arg(long)]
    pid: u32,
    /// Seconds measured per phase, after a second of warm-up.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
}

#[derive(Subcommand)]
enum Command {
    /// History off vs on for each subscriber count and size (guests/broadcast).
    Fanout {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_delimiter = ',', default_value = "1000,1")]
        subs: Vec<usize>,
        #[arg(long, value_delimiter = ',', default_value = "16,1024")]
        sizes: Vec<usize>,
        /// Messages the publisher keeps in flight.
        #[arg(long, default_value_t = 4)]
        window: u64,
        /// Messages kept with history on.
        #[arg(long, default_value_t = 1000)]
        history: u32,
        /// Only history off, or only on (to profile one); both by default.
        #[arg(long)]
        only: Option<Mode>,
        /// `binary` (the 16-byte prefix) or `text` (JSON objects: the `pos` member; size >= 40).
        #[arg(long, default_value = "binary")]
        kind: Kind,
        #[arg(long, default_value_t = 2)]
        rounds: usize,
    },
    /// kvset then kvget from many connections, one command in flight each (test-handler).
    Store {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 1000)]
        conns: usize,
        /// Connections are spread over this many namespaces (rooms).
        #[arg(long, default_value_t = 100)]
        namespaces: usize,
        /// The phases of a round, in order (a get answers `none` for a key not set yet).
        #[arg(long, value_delimiter = ',', default_value = "call,set,get")]
        ops: Vec<Op>,
        #[arg(long, default_value_t = 2)]
        rounds: usize,
    },
    /// Clients resuming a topic's whole history at once (test-handler).
    Resume {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Messages published and kept.
        #[arg(long, default_value_t = 1000)]
        messages: u32,
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// The runner's --metrics address, for `wsbox_history_bytes`.
        #[arg(long)]
        metrics: Option<SocketAddr>,
        #[arg(long, default_value_t = 2)]
        rounds: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Off,
    On,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    Binary,
    Text,
}

fn main() {
    let args = Args::parse();
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let clean = tokio::task::LocalSet::new().block_on(&runtime, async move {
        match args.command {
            Command::Fanout {
                target,
                subs,
                sizes,
                window,
                history,
                only,
                kind,
                rounds,
            } => {
                let mut clean = true;
                let mut topic = 0;
                for &n in &subs {
                    for &size in &sizes {
                        for round in 1..=rounds {
                            // off, on; then on, off: drift in the machine's load cancels out.
                            let mut order = if round % 2 == 1 {
                                vec![0, history]
                            } else {
                                vec![history, 0]
                            };
                            match only {
                                Some(Mode::Off) => order.retain(|&k| k == 0),
                                Some(Mode::On) => order.retain(|&k| k > 0),
                                None => {}
                            }
                            for kept in order {
                                topic += 1;
                                let phase = Fanout {
                                    subs: n,
                                    size,
                                    window,
                                    history: (kept > 0).then_some(kept),
                                    kind,
                                    topic: format!("/t{topic}"),
                                };
                                clean &= phase.run(&target, round).await;
                            }
                        }
                    }
                }
                clean
            }
            Command::Store {
                target,
                conns,
                namespaces,
                ops,
                rounds,
            } => store(&target, conns, namespaces.max(1), &ops, rounds).await,
            Command::Resume {
                target,
                clients,
                messages,
                size,
                metrics,
                rounds,
            } => {
                let mut clean = true;
                for round in 1..=rounds {
                    let topic = format!("resume{round}");
                    clean &= resume(&target, &topic, clients, messages, size, metrics, round).await;
                }
                clean
            }
        }
    });
    if !clean {
        std::process::exit(1);
    }
}

// ---- CPU and memory from /proc ----

/// CPU seconds so far: the runner's, this process's and the whole machine's (busy).
#[derive(Clone, Copy)]
struct Cpu {
    at: Instant,
    server: f64,
    client: f64,
    machine: f64,
}

impl Cpu {
    fn now(pid: u32) -> Cpu {
        Cpu {
            at: Instant::now(),
            server: process_cpu(&format!("/proc/{pid}/stat")),
            client: process_cpu("/proc/self/stat"),
            machine: machine_cpu(),
        }
    }
}

/// What a phase used: seconds of wall time, CPU seconds of the runner, and cores busy on
/// average (the runner, this client, everything else).
struct Used {
    secs: f64,
    server_s: f64,
    server: f64,
    client: f64,
    other: f64,
}

fn used(before: Cpu, after: Cpu) -> Used {
    let secs = (after.at - before.at).as_secs_f64();
    let server_s = after.server - before.server;
    let client_s = after.client - before.client;
    let machine_s = after.machine - before.machine;
    Used {
        secs,
        server_s,
        server: server_s / secs,
        client: client_s / secs,
        other: ((machine_s - server_s - client_s) / secs).max(0.0),
    }
}

fn tick() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1.0 / ticks.max(1) as f64
}

/// utime + stime of a process, in seconds (fields 14 and 15 of its stat).
fn process_cpu(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field(11) + field(12)) as f64 * tick()
}

/// Busy time of all CPUs (everything but idle and iowait), in seconds.
fn machine_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return 0.0;
    };
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    // Guest time is counted in user time already.
    let total: u64 = ticks.iter().take(8).sum();
    (total - idle) as f64 * tick()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
}

/// p50 and p99 of latencies in µs.
fn percentiles(latencies: &mut [u32]) -> (u32, u32) {
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    (at(0.5), at(0.99))
}

fn micros(since: Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

// ---- connections ----

async fn connect(addr: SocketAddr, index: usize, path: &str) -> Result<Ws, String> {
    let fail = |e: &dyn std::fmt::Display| format!("connect {path}: {e}");
    let stream = match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {
            let socket = TcpSocket::new_v4().map_err(|e| fail(&e))?;
            let one: libc::c_int = 1;
            // SAFETY: a valid socket and an int option of the size given. The port is then
            // picked per 4-tuple at connect, not per source address at bind.
            unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_BIND_ADDRESS_NO_PORT,
                    (&one as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
            let source = Ipv4Addr::new(127, 0, 0, 1 + (index % usize::from(SOURCES)) as u8);
            socket
                .bind(SocketAddr::new(source.into(), 0))
                .map_err(|e| fail(&e))?;
            socket.connect(addr).await.map_err(|e| fail(&e))?
        }
        _ => TcpStream::connect(addr).await.map_err(|e| fail(&e))?,
    };
    stream.set_nodelay(true).map_err(|e| fail(&e))?;
    let url = format!("ws://{addr}{path}");
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|e| fail(&e))?;
    Ok(ws)
}

/// Opens `n` connections, `CONNECTING` handshakes at a time; connection i to `path(i)`.
async fn open_all(
    addr: SocketAddr,
    n: usize,
    path: impl Fn(usize) -> String,
) -> Result<Vec<Ws>, String> {
    let opening = stream::iter(0..n).map(|i| {
        let path = path(i);
        async move { timeout(STALL, connect(addr, i, &path)).await }
    });
    let opened: Vec<_> = opening.buffered(CONNECTING).collect().await;
    opened
        .into_iter()
        .map(|r| {
            r.map_err(|_| "connect timed out".to_owned())
                .and_then(|r| r)
        })
        .collect()
}

/// Closes with a close handshake (what the runner answers is not waited for long).
async fn close_all(sockets: Vec<Ws>) {
    let closing = stream::iter(sockets).map(|mut ws| async move {
        let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
    });
    closing.buffer_unordered(256).collect::<Vec<()>>().await;
}

/// The next text message (answers of test-handler), skipping nothing else.
async fn answer(ws: &mut Ws) -> Result<String, String> {
    loop {
        match timeout(STALL, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Ok(text.as_str().to_owned()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(other))) => return Err(format!("unexpected {other:?}")),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(None) => return Err("closed".into()),
            Err(_) => return Err("no answer".into()),
        }
    }
}

async fn ask(ws: &mut Ws, command: &str) -> Result<String, String> {
    ws.send(Message::text(command))
        .await
        .map_err(|e| e.to_string())?;
    answer(ws).await
}

// ---- envelopes ----

/// A position: (epoch, offset).
type Pos = (u64, u64);

/// Takes off the envelope of a topic with history (`wit/rooms.wit`): 16 bytes in front of
/// binary (offset, epoch), a first member `"pos"` in JSON text. Text our payloads never
/// are (not a JSON object) comes back in `data` and is refused here. Positions are
/// (epoch, offset).
fn unwrap(binary: bool, data: &[u8], history: bool) -> Option<(Option<Pos>, Cow<'_, [u8]>)> {
    if !history {
        return Some((None, Cow::Borrowed(data)));
    }
    if binary {
        let offset = u64::from_be_bytes(data.get(..8)?.try_into().ok()?);
        let epoch = u64::from_be_bytes(data.get(8..16)?.try_into().ok()?);
        return Some((Some((epoch, offset)), Cow::Borrowed(&data[16..])));
    }
    let rest = data.strip_prefix(b"{\"pos\":{\"epoch\":\"")?;
    let epoch = u64::from_str_radix(std::str::from_utf8(rest.get(..16)?).ok()?, 16).ok()?;
    let rest = rest.get(16..)?.strip_prefix(b"\",\"offset\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let offset = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let rest = rest[digits..].strip_prefix(b"}")?;
    // `,"seq":…}` after the position: the object as published is `{` and that.
    let mut payload = vec![b'{'];
    payload.extend_from_slice(rest.strip_prefix(b",")?);
    Some((Some((epoch, offset)), Cow::Owned(payload)))
}

/// The payload of message `seq`: binary, its number then `PAD`; text, a JSON object of the
/// same size.
fn payload(kind: Kind, seq: u64, size: usize) -> Vec<u8> {
    match kind {
        Kind::Binary => {
            let mut data = vec![PAD; size.max(8)];
            data[..8].copy_from_slice(&seq.to_be_bytes());
            data
        }
        Kind::Text => {
            let head = format!("{{\"seq\":{seq:020},\"pad\":\"");
            let pad = size.saturating_sub(head.len() + 2);
            let mut data = head.into_bytes();
            data.resize(data.len() + pad, PAD);
            data.extend_from_slice(b"\"}");
            data
        }
    }
}

/// The sequence number of a payload made by [`payload`], if it is one, whole.
fn seq_of(kind: Kind, data: &[u8], size: usize) -> Option<u64> {
    match kind {
        Kind::Binary => {
            let seq = u64::from_be_bytes(data.get(..8)?.try_into().ok()?);
            (data.len() == size.max(8) && data[8..].iter().all(|&b| b == PAD)).then_some(seq)
        }
        Kind::Text => {
            let seq = std::str::from_utf8(data.get(7..27)?).ok()?.parse().ok()?;
            (data == payload(kind, seq, size)).then_some(seq)
        }
    }
}

// ---- fanout ----

struct Fanout {
    subs: usize,
    size: usize,
    window: u64,
    history: Option<u32>,
    kind: Kind,
    topic: String,
}

/// What the connections of a fanout phase share (one thread: cells).
#[derive(Default)]
struct Board {
    receivers: u32,
    /// Per message in flight: receipts so far, and when it was sent.
    pending: RefCell<HashMap<u64, (u32, Instant)>>,
    completed: Cell<u64>,
    deliveries: Cell<u64>,
    /// Connections that received anything yet.
    synced: Cell<usize>,
    gaps: Cell<u64>,
    bad: Cell<u64>,
    errors: Cell<u64>,
    measuring: Cell<bool>,
    latencies: RefCell<Vec<u32>>,
    progress: Notify,
    stop: Cell<bool>,
}

fn bump(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get() + n);
}

impl Fanout {
    fn message(&self, seq: u64) -> Message {
        let data = payload(self.kind, seq, self.size);
        match self.kind {
            Kind::Binary => Message::binary(data),
            Kind::Text => Message::text(String::from_utf8(data).expect("ASCII")),
        }
    }

    async fn run(&self, target: &Target, round: usize) -> bool {
        let path = match self.history {
            Some(n) => format!("{}?history={n}", self.topic),
            None => self.topic.clone(),
        };
        let n = self.subs + 1;
        let sockets = match open_all(target.addr, n, |_| path.clone()).await {
            Ok(sockets) => sockets,
            Err(e) => {
                eprintln!("fanout: {e}");
                return false;
            }
        };
        let board = Rc::new(Board {
            receivers: n as u32,
            ..Board::default()
        });
        let this = Rc::new(Fanout {
            topic: path,
            ..*self
        });
        let mut sinks = Vec::new();
        let mut readers = Vec::new();
        for ws in sockets {
            let (sink, source) = ws.split();
            sinks.push(sink);
            let (board, this) = (board.clone(), this.clone());
            readers.push(spawn_local(
                async move { this.receive(source, &board).await },
            ));
        }
        let publishing = {
            let (board, this, sink) = (board.clone(), this.clone(), sinks.remove(0));
            spawn_local(async move { this.publish(sink, &board).await })
        };
        let synced = timeout(STALL * 2, async {
            while board.synced.get() < n {
                sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok();
        let clean = if synced {
            self.measure(target, round, &board, publishing, &mut sinks)
                .await
        } else {
            eprintln!(
                "fanout {}: {} of {n} connections received a sync message",
                self.topic,
                board.synced.get()
            );
            board.stop.set(true);
            publishing.abort();
            false
        };
        // Close handshakes: each reader ends with the runner's answer.
        for sink in &mut sinks {
            let _ = timeout(Duration::from_secs(2), sink.close()).await;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for mut reader in readers {
            let _ = tokio::time::timeout_at(deadline, &mut reader).await;
            reader.abort();
        }
        clean
    }

    /// The measured part of a phase, once every connection is in: a second of warm-up,
    /// `secs` measured, then what is in flight drains. Prints the phase's line; whether it
    /// was clean.
    async fn measure(
        &self,
        target: &Target,
        round: usize,
        board: &Board,
        publishing: JoinHandle<Option<SplitSink<Ws, Message>>>,
        sinks: &mut Vec<SplitSink<Ws, Message>>,
    ) -> bool {
        sleep(Duration::from_secs(1)).await;
        let (before, delivered, completed) = (
            Cpu::now(target.pid),
            board.deliveries.get(),
            board.completed.get(),
        );
        board.measuring.set(true);
        sleep(Duration::from_secs_f64(target.secs)).await;
        board.measuring.set(false);
        let after = Cpu::now(target.pid);
        let delivered = board.deliveries.get() - delivered;
        let completed = board.completed.get() - completed;
        board.stop.set(true);
        let published = publishing.await.ok().flatten();
        let stalled = published.is_none();
        sinks.extend(published);
        // What is in flight still arrives.
        let drained = timeout(STALL, async {
            while !board.pending.borrow().is_empty() {
                sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok();
        let u = used(before, after);
        let (p50, p99) = percentiles(&mut board.latencies.borrow_mut());
        let unfinished = board.pending.borrow().len();
        println!(
            "{{\"scenario\":\"fanout\",\"round\":{round},\"subs\":{},\"size\":{},\"kind\":\"{}\",\
             \"window\":{},\"history\":{},\"secs\":{:.3},\"broadcasts_per_s\":{:.0},\
             \"deliveries_per_s\":{:.0},\"server_us_per_delivery\":{:.3},\
             \"server_us_per_publish\":{:.2},\"server_cpu\":{:.2},\"client_cpu\":{:.2},\
             \"other_cpu\":{:.2},\"p50_us\":{p50},\"p99_us\":{p99},\"gaps\":{},\"bad\":{},\
             \"errors\":{},\"unfinished\":{unfinished}}}",
            self.subs,
            self.size,
            if self.kind == Kind::Binary {
                "binary"
            } else {
                "text"
            },
            self.window,
            self.history.unwrap_or(0),
            u.secs,
            completed as f64 / u.secs,
            delivered as f64 / u.secs,
            u.server_s * 1e6 / delivered.max(1) as f64,
            u.server_s * 1e6 / completed.max(1) as f64,
            u.server,
            u.client,
            u.other,
            board.gaps.get(),
            board.bad.get(),
            board.errors.get(),
        );
        !stalled
            && drained
            && board.gaps.get() == 0
            && board.bad.get() == 0
            && board.errors.get() == 0
    }

    /// Sync messages until every connection got one, then `window` in flight until `stop`.
    /// Gives the sink back; `None` when it stalled or the socket failed.
    async fn publish(
        &self,
        mut sink: SplitSink<Ws, Message>,
        board: &Board,
    ) -> Option<SplitSink<Ws, Message>> {
        let mut k = 0;
        while board.synced.get() < board.receivers as usize {
            if board.stop.get() {
                return None;
            }
            sink.send(self.message(SYNC | k)).await.ok()?;
            k += 1;
            sleep(Duration::from_millis(20)).await;
        }
        let mut seq = 0;
        while !board.stop.get() {
            while seq - board.completed.get() >= self.window {
                if timeout(STALL, board.progress.notified()).await.is_err() {
                    eprintln!("fanout {}: no progress for {STALL:?}", self.topic);
                    return None;
                }
            }
            board.pending.borrow_mut().insert(seq, (0, Instant::now()));
            sink.send(self.message(seq)).await.ok()?;
            seq += 1;
        }
        Some(sink)
    }

    /// Reads one connection until it closes.
    async fn receive(&self, mut source: stream::SplitStream<Ws>, board: &Board) {
        let mut seen = false;
        // The last position, and the next measured sequence number.
        let mut last: Option<Pos> = None;
        let mut next_seq = 0;
        while let Some(frame) = source.next().await {
            let (binary, data) = match frame {
                Ok(Message::Binary(data)) => (true, data),
                Ok(Message::Text(text)) => (false, text.into()),
                Ok(Message::Close(_)) => break,
                Ok(_) => continue,
                Err(_) => {
                    bump(&board.errors, 1);
                    break;
                }
            };
            let Some((position, payload)) = unwrap(binary, &data, self.history.is_some()) else {
                bump(&board.bad, 1);
                continue;
            };
            if let Some((epoch, offset)) = position {
                match last {
                    Some((e, o)) if e != epoch || offset <= o => bump(&board.bad, 1),
                    Some((_, o)) => bump(&board.gaps, offset - o - 1),
                    None => {}
                }
                last = Some((epoch, offset));
            }
            let Some(seq) = seq_of(self.kind, &payload, self.size) else {
                bump(&board.bad, 1);
                continue;
            };
            if !seen {
                seen = true;
                board.synced.set(board.synced.get() + 1);
            }
            if seq & SYNC != 0 {
                continue;
            }
            match seq.cmp(&next_seq) {
                std::cmp::Ordering::Less => bump(&board.bad, 1),
                std::cmp::Ordering::Greater => bump(&board.gaps, seq - next_seq),
                std::cmp::Ordering::Equal => {}
            }
            next_seq = seq + 1;
            bump(&board.deliveries, 1);
            let mut pending = board.pending.borrow_mut();
            let Some((count, sent)) = pending.get_mut(&seq) else {
                bump(&board.bad, 1);
                continue;
            };
            *count += 1;
            if *count == board.receivers {
                if board.measuring.get() {
                    board.latencies.borrow_mut().push(micros(*sent));
                }
                pending.remove(&seq);
                bump(&board.completed, 1);
                board.progress.notify_one();
            }
        }
    }
}

// ---- store ----

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
enum Op {
    Set,
    Get,
    /// A command test-handler does not know: the same guest call without the store, the
    /// baseline the other two are compared with.
    Call,
}

/// One connection's commands of one phase, with the value it set last.
struct Client {
    ws: Ws,
    index: usize,
    namespace: usize,
    last: Option<String>,
}

/// What the clients of a store phase share.
#[derive(Default)]
struct Tally {
    ops: Cell<u64>,
    wrong: Cell<u64>,
    errors: Cell<u64>,
    measuring: Cell<bool>,
    stop: Cell<bool>,
    latencies: RefCell<Vec<u32>>,
}

impl Client {
    async fn run(mut self, op: Op, tally: Rc<Tally>) -> Self {
        let mut seq = 0u64;
        while !tally.stop.get() {
            let (ns, i) = (self.namespace, self.index);
            let (command, expected) = match op {
                Op::Set => {
                    let value = format!("v{i:05}-{seq:010}");
                    let command = format!("kvset room{ns} k{i} {value}");
                    self.last = Some(value);
                    (command, "ok".to_owned())
                }
                Op::Call => ("nop".to_owned(), "unknown command: nop".to_owned()),
                Op::Get => {
                    let expected = match &self.last {
                        Some(value) => format!("value {value}"),
                        None => "none".to_owned(),
                    };
                    (format!("kvget room{ns} k{i}"), expected)
                }
            };
            let sent = Instant::now();
            match ask(&mut self.ws, &command).await {
                Ok(reply) => {
                    if reply != expected {
                        if tally.wrong.get() == 0 {
                            eprintln!("store: {command:?} answered {reply:?}, not {expected:?}");
                        }
                        bump(&tally.wrong, 1);
                    }
                    if tally.measuring.get() {
                        bump(&tally.ops, 1);
                        tally.latencies.borrow_mut().push(micros(sent));
                    }
                }
                Err(e) => {
                    eprintln!("store: {command:?}: {e}");
                    bump(&tally.errors, 1);
                    break;
                }
            }
            seq += 1;
        }
        self
    }
}

async fn store(
    target: &Target,
    conns: usize,
    namespaces: usize,
    ops: &[Op],
    rounds: usize,
) -> bool {
    let sockets = match open_all(target.addr, conns, |_| "/topics".to_owned()).await {
        Ok(sockets) => sockets,
        Err(e) => {
            eprintln!("store: {e}");
            return false;
        }
    };
    let mut clients: Vec<Client> = sockets
        .into_iter()
        .enumerate()
        .map(|(index, ws)| Client {
            ws,
            index,
            namespace: index % namespaces,
            last: None,
        })
        .collect();
    let mut clean = true;
    for round in 1..=rounds {
        for &op in ops {
            let tally = Rc::new(Tally::default());
            let tasks: Vec<JoinHandle<Client>> = clients
                .drain(..)
                .map(|client| spawn_local(client.run(op, tally.clone())))
                .collect();
            sleep(Duration::from_secs(1)).await;
            let before = Cpu::now(target.pid);
            tally.measuring.set(true);
            sleep(Duration::from_secs_f64(target.secs)).await;
            tally.measuring.set(false);
            let after = Cpu::now(target.pid);
            tally.stop.set(true);
            for task in tasks {
                match timeout(STALL * 3, task).await {
                    Ok(Ok(client)) => clients.push(client),
                    _ => bump(&tally.errors, 1),
                }
            }
            let u = used(before, after);
            let ops = tally.ops.get();
            let (p50, p99) = percentiles(&mut tally.latencies.borrow_mut());
            clean &= tally.wrong.get() == 0 && tally.errors.get() == 0;
            println!(
                "{{\"scenario\":\"store\",\"round\":{round},\"op\":\"{}\",\"conns\":{conns},\
                 \"namespaces\":{namespaces},\"secs\":{:.3},\"ops_per_s\":{:.0},\
                 \"server_us_per_op\":{:.2},\"p50_us\":{p50},\"p99_us\":{p99},\
                 \"server_cpu\":{:.2},\"client_cpu\":{:.2},\"other_cpu\":{:.2},\"wrong\":{},\
                 \"errors\":{}}}",
                match op {
                    Op::Set => "set",
                    Op::Get => "get",
                    Op::Call => "call",
                },
                u.secs,
                ops as f64 / u.secs,
                u.server_s * 1e6 / ops.max(1) as f64,
                u.server,
                u.client,
                u.other,
                tally.wrong.get(),
                tally.errors.get(),
            );
        }
    }
    close_all(clients.into_iter().map(|c| c.ws).collect()).await;
    clean
}

// ---- resume ----

/// One resuming client's result: deliveries in order, when the last came, what was wrong.
struct Resumed {
    delivered: u64,
    last_at: Option<Instant>,
    wrong: u64,
}

/// Sends `fromlast T N`, reads the answer and N deliveries, checks each.
async fn resume_one(mut ws: Ws, topic: String, n: u32, size: usize, epoch: u64) -> (Ws, Resumed) {
    let mut r = Resumed {
        delivered: 0,
        last_at: None,
        wrong: 0,
    };
    if ws
        .send(Message::text(format!("fromlast {topic} {n}")))
        .await
        .is_err()
    {
        r.wrong += 1;
        return (ws, r);
    }
    let mut answered = false;
    let expected_answer = format!("from {epoch:016x} {n}");
    while r.delivered < u64::from(n) || !answered {
        let data = match timeout(STALL, ws.next()).await {
            Ok(Some(Ok(Message::Binary(data)))) => data,
            Ok(Some(Ok(Message::Text(text)))) => {
                answered = true;
                if text.as_str() != expected_answer {
                    eprintln!("resume: answered {text:?}, not {expected_answer:?}");
                    r.wrong += 1;
                }
                continue;
            }
            Ok(Some(Ok(_))) => continue,
            _ => {
                r.wrong += 1;
                break;
            }
        };
        r.last_at = Some(Instant::now());
        let expected = r.delivered + 1;
        let whole = unwrap(true, &data, true).is_some_and(|(position, payload)| {
            position == Some((epoch, expected)) && flood_payload(&payload, expected - 1, size)
        });
        if !whole {
            r.wrong += 1;
        }
        r.delivered += 1;
    }
    (ws, r)
}

/// What test-handler's `/flood` publishes as message `index`: the index (u32 big endian)
/// when it fits, then 0x5a.
fn flood_payload(data: &[u8], index: u64, size: usize) -> bool {
    let head = size.min(4);
    let stamp = (index as u32).to_be_bytes();
    data.len() == size && data[..head] == stamp[..head] && data[head..].iter().all(|&b| b == PAD)
}

async fn resume(
    target: &Target,
    topic: &str,
    clients: usize,
    n: u32,
    size: usize,
    metrics: Option<SocketAddr>,
    round: usize,
) -> bool {
    let setup = async {
        let mut control = connect(target.addr, 0, "/topics").await?;
        let mut flood = connect(target.addr, 1, "/flood").await?;
        let on = ask(&mut control, &format!("history {topic} {n} 0")).await?;
        let published = ask(&mut flood, &format!("pub {topic} {n} {size}")).await?;
        let head = ask(&mut control, &format!("head {topic}")).await?;
        let epoch = head
            .strip_prefix("head ")
            .and_then(|h| h.strip_suffix(&format!(" {n}")))
            .and_then(|e| u64::from_str_radix(e, 16).ok());
        match (on.as_str(), published.as_str(), epoch) {
            ("history on", "published 0", Some(epoch)) => Ok((control, flood, epoch)),
            _ => Err(format!("setup answered {on:?}, {published:?}, {head:?}")),
        }
    };
    let (control, flood, epoch) = match setup.await {
        Ok(setup) => setup,
        Err(e) => {
            eprintln!("resume: {e}");
            return false;
        }
    };
    let opened = Instant::now();
    let sockets = match open_all(target.addr, clients, |_| "/topics".to_owned()).await {
        Ok(sockets) => sockets,
        Err(e) => {
            eprintln!("resume: {e}");
            return false;
        }
    };
    let connect_s = opened.elapsed().as_secs_f64();
    let before = Cpu::now(target.pid);
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|ws| spawn_local(resume_one(ws, topic.to_owned(), n, size, epoch)))
        .collect();
    let mut results = Vec::new();
    let mut sockets = vec![control, flood];
    for task in tasks {
        if let Ok((ws, r)) = task.await {
            sockets.push(ws);
            results.push(r);
        }
    }
    let after = Cpu::now(target.pid);
    let delivered: u64 = results.iter().map(|r| r.delivered).sum();
    let wrong: u64 = results.iter().map(|r| r.wrong).sum();
    let complete = results
        .iter()
        .filter(|r| r.delivered == u64::from(n) && r.wrong == 0)
        .count();
    let last = results.iter().filter_map(|r| r.last_at).max();
    let wall = last.map_or(f64::NAN, |l| (l - before.at).as_secs_f64());
    let u = used(before, after);
    let rss = rss_kib(target.pid).unwrap_or(0);
    let history_bytes = match metrics {
        Some(addr) => scrape(addr, "wsbox_history_bytes").await.unwrap_or(-1),
        None => -1,
    };
    println!(
        "{{\"scenario\":\"resume\",\"round\":{round},\"clients\":{clients},\"messages\":{n},\
         \"size\":{size},\"connect_s\":{connect_s:.3},\"wall_s\":{wall:.3},\"delivered\":{delivered},\
         \"deliveries_per_s\":{:.0},\"server_us_per_delivery\":{:.3},\"server_cpu\":{:.2},\
         \"client_cpu\":{:.2},\"other_cpu\":{:.2},\"complete_clients\":{complete},\
         \"wrong\":{wrong},\"rss_kib\":{rss},\"history_bytes\":{history_bytes}}}",
        delivered as f64 / wall,
        u.server_s * 1e6 / delivered.max(1) as f64,
        u.server,
        u.client,
        u.other,
    );
    close_all(sockets).await;
    complete == clients && wrong == 0
}

/// One sample of the runner's Prometheus text (`--metrics`).
async fn scrape(addr: SocketAddr, name: &str) -> Option<i64> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut text = String::new();
    timeout(STALL, stream.read_to_string(&mut text))
        .await
        .ok()?
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Each connection is a file descriptor: take the hard limit.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid resource and a pointer to a live rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_come_off() {
        let mut binary = 7u64.to_be_bytes().to_vec();
        binary.extend_from_slice(&0xabu64.to_be_bytes());
        binary.extend_from_slice(&payload(Kind::Binary, 3, 16));
        let (position, data) = unwrap(true, &binary, true).unwrap();
        assert_eq!(position, Some((0xab, 7)));
        assert_eq!(seq_of(Kind::Binary, &data, 16), Some(3));
        let json = payload(Kind::Text, 5, 64);
        let text = format!(
            "{{\"pos\":{{\"epoch\":\"00000000000000ab\",\"offset\":9}},{}",
            std::str::from_utf8(&json[1..]).unwrap()
        );
        let (position, data) = unwrap(false, text.as_bytes(), true).unwrap();
        assert_eq!(position, Some((0xab, 9)));
        assert_eq!(data, json);
        assert_eq!(seq_of(Kind::Text, &data, 64), Some(5));
    }
}
