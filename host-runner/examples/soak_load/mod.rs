//! The soak load against a runner serving guests/test-handler: many connections, mixing
//! echo (`/none`), publish (`/topics`) and idle pauses long enough to hibernate, checking
//! that every message comes back exactly once, in order and intact. Shared by
//! `examples/soak.rs` (the benchmark) and `tests/soak.rs` (its short CI run).
//!
//! Roles: a fifth of the connections (rounded down to whole groups) form groups of
//! [`Config::group_size`]; in each, member 0 publishes to the group's topic with `pub` and
//! the others are subscribed to it from their upgrade (`?sub=`). The others echo.
//! Every message carries its sender (connection or group), a sequence number and an FNV-1a
//! checksum: an echo must match the oldest message still awaited, and each subscriber must
//! see each group sequence number once, in order. Connections send in bursts, then pause
//! for a random time up to twice [`Config::max_idle`].

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Barrier, Semaphore};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Loopback connections rotate over 127.0.0.1..=127.0.0.32, as `wsload` does, so that
/// 50,000 of them do not run out of ephemeral ports.
const SOURCES: u8 = 32;
/// How long one awaited answer may take on a loaded machine before it counts as lost.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long subscribers wait, after the run, for what was published to arrive.
const DRAIN: Duration = Duration::from_secs(30);
/// Handshakes in flight at once.
const CONNECTING: usize = 64;

pub struct Config {
    pub addr: SocketAddr,
    pub connections: usize,
    pub duration: Duration,
    /// Pauses between bursts are random up to twice this; above the runner's
    /// `--hibernate-after`, most of them hibernate the connection.
    pub max_idle: Duration,
    pub group_size: usize,
    /// Sent SIGHUP half-way through.
    pub reload_pid: Option<u32>,
    /// Its RSS is sampled throughout.
    pub rss_pid: Option<u32>,
}

#[derive(Debug, Default)]
pub struct Report {
    /// Messages sent: echoes, publish commands and subscriber queries.
    pub sent: u64,
    /// Echoes and answers that matched, and deliveries in order.
    pub received: u64,
    /// Deliveries the runner reported queued (`published N`, summed).
    pub published: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub corrupted: u64,
    /// Answers with a wrong count (`published N`, `subscribers N` other than the group's).
    pub wrong_answers: u64,
    pub reconnects: u64,
    /// Connections that answered a last round trip after the run.
    pub open_at_end: usize,
    pub rss_kib: Vec<u64>,
}

impl Report {
    /// Whether nothing was lost, duplicated, corrupted or miscounted, and nothing reconnected.
    pub fn clean(&self, connections: usize) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.corrupted == 0
            && self.wrong_answers == 0
            && self.reconnects == 0
            && self.open_at_end == connections
    }
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    received: AtomicU64,
    published: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    corrupted: AtomicU64,
    wrong_answers: AtomicU64,
    reconnects: AtomicU64,
    open_at_end: AtomicUsize,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

type Ws = WebSocketStream<TcpStream>;

#[derive(Debug)]
struct Broken;

/// What one connection's task shares with the others.
struct Shared {
    addr: SocketAddr,
    counts: Counts,
    max_idle: Duration,
    group_size: usize,
    /// Per group: how many messages its publisher published, once its flag in
    /// `publishers_done` is set.
    published_seqs: Vec<AtomicU64>,
    publishers_done: Vec<AtomicBool>,
    /// Every connection is open before the run starts, and each stays open until all made
    /// their last round trip.
    start: Barrier,
    end: Barrier,
    connecting: Semaphore,
}

enum Role {
    Echo,
    Publisher(usize),
    Subscriber(usize),
}

pub async fn run(config: Config) -> Report {
    let group_size = config.group_size.max(2);
    let groups = config.connections / 5 / group_size;
    let shared = Arc::new(Shared {
        addr: config.addr,
        counts: Counts::default(),
        max_idle: config.max_idle,
        group_size,
        published_seqs: (0..groups).map(|_| AtomicU64::new(0)).collect(),
        publishers_done: (0..groups).map(|_| AtomicBool::new(false)).collect(),
        start: Barrier::new(config.connections + 1),
        end: Barrier::new(config.connections),
        connecting: Semaphore::new(CONNECTING),
    });
    let mut tasks = Vec::new();
    for index in 0..config.connections {
        let role = match index / group_size {
            group if group < groups && index % group_size == 0 => Role::Publisher(group),
            group if group < groups => Role::Subscriber(group),
            _ => Role::Echo,
        };
        tasks.push(tokio::spawn(connection(
            shared.clone(),
            index,
            role,
            config.duration,
        )));
    }
    shared.start.wait().await;
    let started = Instant::now();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = config.rss_pid.map(|pid| {
        let every = (config.duration / 30).max(Duration::from_secs(1));
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while sampling.load(Ordering::Relaxed)
                && let Some(kib) = rss_kib(pid)
            {
                samples.push(kib);
                tokio::time::sleep(every).await;
            }
            samples
        })
    });
    if let Some(pid) = config.reload_pid {
        tokio::time::sleep_until(started + config.duration / 2).await;
        sighup(pid);
    }
    for task in tasks {
        let _ = task.await;
    }
    let counts = &shared.counts;
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    Report {
        sent: get(&counts.sent),
        received: get(&counts.received),
        published: get(&counts.published),
        lost: get(&counts.lost),
        duplicated: get(&counts.duplicated),
        corrupted: get(&counts.corrupted),
        wrong_answers: get(&counts.wrong_answers),
        reconnects: get(&counts.reconnects),
        open_at_end: counts.open_at_end.load(Ordering::Relaxed),
        rss_kib: match sampler {
            Some(sampler) => {
                sampling.store(false, Ordering::Relaxed);
                sampler.await.unwrap_or_default()
            }
            None => Vec::new(),
        },
    }
}

/// One connection's life: connect, run its role until `duration` after the common start,
/// a last round trip, then (once every connection made its own) the close handshake.
async fn connection(shared: Arc<Shared>, index: usize, role: Role, duration: Duration) {
    let path = match role {
        Role::Echo => "/none".to_owned(),
        Role::Publisher(_) => "/topics".to_owned(),
        Role::Subscriber(group) => format!("/topics?sub=soak{group}"),
    };
    let mut ws = connect_retrying(&shared, index, &path).await;
    shared.start.wait().await;
    let deadline = Instant::now() + duration;
    let mut rng = Rng::new(index as u64);
    // The next sequence number to send (echo, publisher) or to receive (subscriber).
    let mut position = 0;
    loop {
        let Some(socket) = ws.as_mut() else {
            add(&shared.counts.reconnects, 1);
            ws = connect_retrying(&shared, index, &path).await;
            if ws.is_none() && Instant::now() >= deadline {
                break;
            }
            continue;
        };
        let done = match role {
            Role::Echo => {
                echo_until(socket, &shared, index, &mut position, deadline, &mut rng).await
            }
            Role::Publisher(group) => {
                publish_until(socket, &shared, group, &mut position, deadline, &mut rng).await
            }
            Role::Subscriber(group) => {
                subscribe_until(socket, &shared, group, &mut position, deadline, &mut rng).await
            }
        };
        match done {
            Ok(()) => break,
            Err(Broken) => ws = None,
        }
    }
    if let Role::Publisher(group) = role {
        shared.publishers_done[group].store(true, Ordering::Release);
    }
    // The last round trip shows the socket is still open.
    if let Some(socket) = ws.as_mut() {
        let query = match role {
            Role::Echo => None,
            Role::Publisher(group) | Role::Subscriber(group) => Some(group),
        };
        let answered = match query {
            None => {
                let message = Message::text(format!("last {index}"));
                let echoed = send(socket, &shared, message.clone()).await.is_ok()
                    && next_data(socket).await.is_ok_and(|reply| reply == message);
                add(&shared.counts.received, u64::from(echoed));
                echoed
            }
            Some(group) => ask_count(socket, &shared, group).await.is_ok(),
        };
        if answered {
            shared.counts.open_at_end.fetch_add(1, Ordering::Relaxed);
        }
    }
    shared.end.wait().await;
    if let Some(mut socket) = ws {
        let _ = timeout(Duration::from_secs(10), async {
            let normal = CloseFrame {
                code: CloseCode::Normal,
                reason: "soak over".into(),
            };
            let _ = socket.close(Some(normal)).await;
            while let Some(Ok(_)) = socket.next().await {}
        })
        .await;
    }
}

async fn echo_until(
    ws: &mut Ws,
    shared: &Shared,
    index: usize,
    seq: &mut u64,
    deadline: Instant,
    rng: &mut Rng,
) -> Result<(), Broken> {
    let counts = &shared.counts;
    while Instant::now() < deadline {
        let mut awaited = VecDeque::new();
        for _ in 0..1 + rng.below(8) {
            let message = stamped(index as u64, *seq, rng);
            *seq += 1;
            awaited.push_back((*seq - 1, message.clone()));
            if send(ws, shared, message).await.is_err() {
                add(&counts.lost, awaited.len() as u64);
                return Err(Broken);
            }
        }
        while let Some((oldest, _)) = awaited.front() {
            let Ok(reply) = next_data(ws).await else {
                add(&counts.lost, awaited.len() as u64);
                return Err(Broken);
            };
            match unstamp(&reply) {
                Some((from, seq)) if from == index as u64 && seq < *oldest => {
                    add(&counts.duplicated, 1)
                }
                Some((from, seq)) if from == index as u64 => {
                    match awaited.iter().position(|(s, _)| *s == seq) {
                        Some(skipped) => {
                            add(&counts.lost, skipped as u64);
                            awaited.drain(..skipped);
                            let (_, sent) = awaited.pop_front().expect("found above");
                            let intact = sent == reply;
                            add(
                                if intact {
                                    &counts.received
                                } else {
                                    &counts.corrupted
                                },
                                1,
                            );
                        }
                        None => add(&counts.corrupted, 1),
                    }
                }
                _ => add(&counts.corrupted, 1),
            }
        }
        pause(shared, rng, deadline).await;
    }
    Ok(())
}

async fn publish_until(
    ws: &mut Ws,
    shared: &Shared,
    group: usize,
    seq: &mut u64,
    deadline: Instant,
    rng: &mut Rng,
) -> Result<(), Broken> {
    let counts = &shared.counts;
    let subscribers = shared.group_size as u64 - 1;
    let result = async {
        while Instant::now() < deadline {
            for _ in 0..1 + rng.below(4) {
                let text = stamped_text(group as u64, *seq, rng);
                *seq += 1;
                send(ws, shared, Message::text(format!("pub soak{group} {text}"))).await?;
                let reply = next_data(ws).await?;
                match reply
                    .to_text()
                    .ok()
                    .and_then(|r| r.strip_prefix("published "))
                {
                    Some(n) if n == subscribers.to_string() => {
                        add(&counts.received, 1);
                        add(&counts.published, subscribers);
                    }
                    Some(_) => add(&counts.wrong_answers, 1),
                    None => add(&counts.corrupted, 1),
                }
            }
            pause(shared, rng, deadline).await;
        }
        Ok(())
    }
    .await;
    shared.published_seqs[group].store(*seq, Ordering::Release);
    result
}

async fn subscribe_until(
    ws: &mut Ws,
    shared: &Shared,
    group: usize,
    next: &mut u64,
    deadline: Instant,
    rng: &mut Rng,
) -> Result<(), Broken> {
    let counts = &shared.counts;
    let mut query_at = Instant::now() + idle(shared, rng);
    let mut queries_awaited = 0u32;
    loop {
        let now = Instant::now();
        if now >= deadline && shared.publishers_done[group].load(Ordering::Acquire) {
            let published = shared.published_seqs[group].load(Ordering::Acquire);
            if *next >= published && queries_awaited == 0 {
                return Ok(());
            }
            if now >= deadline + DRAIN {
                add(&counts.lost, published.saturating_sub(*next));
                return Ok(());
            }
        }
        if now >= query_at && now < deadline {
            send(ws, shared, Message::text(format!("count soak{group}"))).await?;
            queries_awaited += 1;
            query_at = now + idle(shared, rng);
        }
        let wait = (query_at.min(deadline + DRAIN)).max(now + Duration::from_millis(100)) - now;
        let message = match timeout(wait.min(ANSWER_TIMEOUT), ws.next()).await {
            Err(_) => continue,
            Ok(Some(Ok(message @ (Message::Text(_) | Message::Binary(_))))) => message,
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return Err(Broken),
        };
        if let Some(count) = message
            .to_text()
            .ok()
            .and_then(|t| t.strip_prefix("subscribers "))
        {
            match queries_awaited.checked_sub(1) {
                Some(left) if count == (shared.group_size - 1).to_string() => {
                    queries_awaited = left;
                    add(&counts.received, 1);
                }
                Some(left) => {
                    queries_awaited = left;
                    add(&counts.wrong_answers, 1);
                }
                None => add(&counts.duplicated, 1),
            }
            continue;
        }
        match unstamp(&message) {
            Some((from, seq)) if from == group as u64 && seq == *next => {
                add(&counts.received, 1);
                *next += 1;
            }
            Some((from, seq)) if from == group as u64 && seq < *next => {
                add(&counts.duplicated, 1);
            }
            Some((from, seq)) if from == group as u64 => {
                add(&counts.lost, seq - *next);
                add(&counts.received, 1);
                *next = seq + 1;
            }
            _ => add(&counts.corrupted, 1),
        }
    }
}

/// Asks `count soak{group}` and checks the answer (a publisher gets nothing else).
async fn ask_count(ws: &mut Ws, shared: &Shared, group: usize) -> Result<(), Broken> {
    send(ws, shared, Message::text(format!("count soak{group}"))).await?;
    loop {
        let reply = next_data(ws).await?;
        // A subscriber may still get what was published late: its task counted it.
        if let Some(count) = reply
            .to_text()
            .ok()
            .and_then(|t| t.strip_prefix("subscribers "))
        {
            let right = count == (shared.group_size - 1).to_string();
            add(
                if right {
                    &shared.counts.received
                } else {
                    &shared.counts.wrong_answers
                },
                1,
            );
            return Ok(());
        }
    }
}

/// A random pause, cut at the deadline.
async fn pause(shared: &Shared, rng: &mut Rng, deadline: Instant) {
    tokio::time::sleep_until((Instant::now() + idle(shared, rng)).min(deadline)).await;
}

fn idle(shared: &Shared, rng: &mut Rng) -> Duration {
    let max = shared.max_idle.as_millis() as u64 * 2;
    Duration::from_millis(rng.below(max + 1))
}

async fn send(ws: &mut Ws, shared: &Shared, message: Message) -> Result<(), Broken> {
    match timeout(ANSWER_TIMEOUT, ws.send(message)).await {
        Ok(Ok(())) => {
            add(&shared.counts.sent, 1);
            Ok(())
        }
        _ => Err(Broken),
    }
}

/// The next text or binary message (pings are answered by tungstenite as it reads).
async fn next_data(ws: &mut Ws) -> Result<Message, Broken> {
    loop {
        match timeout(ANSWER_TIMEOUT, ws.next()).await {
            Ok(Some(Ok(message @ (Message::Text(_) | Message::Binary(_))))) => {
                return Ok(message);
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => continue,
            _ => return Err(Broken),
        }
    }
}

/// Connects (retrying for a while: a loaded runner may refuse at first); `None` when it
/// cannot.
async fn connect_retrying(shared: &Shared, index: usize, path: &str) -> Option<Ws> {
    let _permit = shared.connecting.acquire().await.ok()?;
    for attempt in 0..5u64 {
        if let Ok(Ok(ws)) = timeout(ANSWER_TIMEOUT, connect(shared.addr, index, path)).await {
            return Some(ws);
        }
        tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
    }
    None
}

async fn connect(addr: SocketAddr, index: usize, path: &str) -> Result<Ws, Broken> {
    let stream = match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {
            let socket = TcpSocket::new_v4().map_err(|_| Broken)?;
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
                .map_err(|_| Broken)?;
            socket.connect(addr).await.map_err(|_| Broken)?
        }
        _ => TcpStream::connect(addr).await.map_err(|_| Broken)?,
    };
    stream.set_nodelay(true).map_err(|_| Broken)?;
    let url = format!("ws://{addr}{path}");
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|_| Broken)?;
    Ok(ws)
}

/// A text (`FROM SEQ PAYLOAD SUM`) or binary (`FROM`, `SEQ` little endian, payload, `SUM`)
/// message; mostly small, now and then up to 64 KiB.
fn stamped(from: u64, seq: u64, rng: &mut Rng) -> Message {
    if rng.below(2) == 0 {
        return Message::text(stamped_text(from, seq, rng));
    }
    let mut data = Vec::new();
    data.extend_from_slice(&from.to_le_bytes());
    data.extend_from_slice(&seq.to_le_bytes());
    let len = payload_len(rng);
    data.extend((0..len).map(|_| rng.next() as u8));
    let sum = fnv1a(&data);
    data.extend_from_slice(&sum.to_le_bytes());
    Message::binary(data)
}

fn stamped_text(from: u64, seq: u64, rng: &mut Rng) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let payload: String = (0..payload_len(rng))
        .map(|_| char::from(LETTERS[rng.below(LETTERS.len() as u64) as usize]))
        .collect();
    let body = format!("{from} {seq} {payload}");
    let sum = fnv1a(body.as_bytes());
    format!("{body} {sum:08x}")
}

fn payload_len(rng: &mut Rng) -> u64 {
    if rng.below(32) == 0 {
        rng.below(64 * 1024)
    } else {
        rng.below(256)
    }
}

/// The sender and sequence number of a stamped message whose checksum holds.
fn unstamp(message: &Message) -> Option<(u64, u64)> {
    match message {
        Message::Text(text) => {
            let (body, sum) = text.as_str().rsplit_once(' ')?;
            if u32::from_str_radix(sum, 16).ok()? != fnv1a(body.as_bytes()) {
                return None;
            }
            let mut words = body.split(' ');
            Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
        }
        Message::Binary(data) => {
            let (body, sum) = data.split_at_checked(data.len().checked_sub(4)?)?;
            if u32::from_le_bytes(sum.try_into().ok()?) != fnv1a(body) || body.len() < 16 {
                return None;
            }
            let from = u64::from_le_bytes(body[..8].try_into().ok()?);
            Some((from, u64::from_le_bytes(body[8..16].try_into().ok()?)))
        }
        _ => None,
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// xorshift64*: reproducible per connection, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough below `n` (> 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
}

fn sighup(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGHUP) };
    }
}
