//! `--cluster nats://…`: runners that share topics and connection ids through NATS.
//!
//! A publish reaches this node's subscribers directly (the [`Registry`]) and every other
//! node through the topic's subject, to which a node subscribes only while it has
//! subscribers of its own; the connection has `no_echo` set, so a node never hears its own
//! publish back. A send or close to another node's connection is a request to that node's
//! subject, answered with the result. Each node announces its subscriber counts as they
//! change and beats once a second; `subscribers` adds the counts of the nodes heard lately.
//! A node that starts, gets its link back or hears a node new to it says hello: every node
//! answers with all its counts, so that no announcement lost in an outage is missed for long.
//! Such full answers go at most once per [`counts::PACE`] (more wait for the next beat), and
//! the other nodes' counts are remembered within [`counts::Bounds`]: anyone on NATS can
//! speak as a node.
//!
//! Delivery across nodes is at most once: while the link is down, publishes to other nodes
//! are dropped and counted, not queued. Order holds per publisher and topic: one node's
//! publishes share one NATS connection, and each topic is read by one task.

mod counts;
mod queue;

/// The wire format, a crate of its own so that `fuzz/` reaches its parsers.
pub use wsbox_cluster_wire as wire;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, Event, Subscriber};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use wsbox::frame::Data;

use crate::deflate::Outgoing;
use crate::id::Id;
use crate::metrics::METRICS;
use crate::peer::Refused;
use crate::registry::Registry;
use crate::settings;
use counts::Remote;
use queue::{Queue, Waiting};
use wire::{Command, Status, Subjects};

/// How often a node says it is alive; [`counts::EXPIRY`] is three of these.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Changes of subscriber counts within this window go out in one announcement.
const COALESCE: Duration = Duration::from_millis(20);
/// An announcement is cut into messages of about this size.
const ANNOUNCEMENT: usize = 16 * 1024;
/// Publishes from other nodes queued to subscribers before they are written.
const BURST: usize = 64;
/// How long a routed send waits for the other node's answer.
const ROUTE_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// NATS messages each subscription (a topic's, this node's requests, the heartbeats, the
/// counts) holds before its task reads them; more are dropped by async-nats and counted
/// (`cluster_lost`). Its default, 65,536, let one topic hold 64 GiB at nats-server's
/// default 1 MiB `max_payload`; this holds 1 GiB at worst (the server's `max_payload` is
/// the knob for less) and, with small messages, a few MiB. It is still 16 × [`BURST`],
/// what a topic's task takes at once, and holds the largest burst an honest node sends
/// here: a full announcement, 1,024 × [`ANNOUNCEMENT`] = 16 MiB of counts (about 700,000
/// topics of 16-byte names).
const SUBSCRIPTION_CAPACITY: usize = 1024;

/// Why a routed send or close got no answer.
pub struct Unreachable;

pub struct Cluster {
    node: u32,
    client: Client,
    subjects: Subjects,
    remote: Remote,
    link: Arc<Link>,
    /// Publishes to the other nodes, waiting for [`Cluster::forward`].
    queue: Queue,
    /// Topics whose local count changed since the last announcement.
    dirty: Mutex<HashSet<Box<str>>>,
    changed: Notify,
}

/// The state of the NATS connection, as its events tell it. Up from the start: the first
/// connection is made before the runner serves, and its event is not a transition.
struct Link {
    up: AtomicBool,
    /// The link came back: the others have forgotten this node, tell them again.
    restored: Notify,
}

impl Cluster {
    /// Connects to NATS (failing after `connect_timeout` if it cannot) and starts the tasks
    /// that serve this node's part of the cluster.
    pub async fn start(
        settings: &settings::Cluster,
        node: u32,
        registry: Arc<Registry>,
    ) -> Result<Arc<Cluster>, String> {
        let subjects = Subjects::new(&settings.name)
            .ok_or_else(|| format!("--cluster-name {:?} is not a subject token", settings.name))?;
        let link = Arc::new(Link {
            up: AtomicBool::new(true),
            restored: Notify::new(),
        });
        let options = options(settings, node, link.clone()).await?;
        let client = options
            .connect(settings.url.as_str())
            .await
            .map_err(|e| format!("cannot reach the cluster at {}: {e}", settings.url))?;
        METRICS.cluster_connected.set(1);
        let cannot = |e| format!("cannot subscribe at the cluster at {}: {e}", settings.url);
        let requests = client
            .subscribe(subjects.node(node))
            .await
            .map_err(cannot)?;
        let heartbeats = client
            .subscribe(subjects.heartbeat())
            .await
            .map_err(cannot)?;
        let counts = client.subscribe(subjects.counts()).await.map_err(cannot)?;
        let (queue, waiting) = queue::new(settings.queue, settings.queue_bytes);
        let cluster = Arc::new(Cluster {
            node,
            client,
            subjects,
            remote: Remote::new(node),
            link,
            queue,
            dirty: Mutex::new(HashSet::new()),
            changed: Notify::new(),
        });
        info!(url = %settings.url, node = %format_args!("{node:08x}"), "cluster connected");
        tokio::spawn(cluster.clone().forward(waiting));
        tokio::spawn(cluster.clone().serve_requests(requests, registry.clone()));
        tokio::spawn(cluster.clone().keep_counts(heartbeats, counts, registry));
        Ok(cluster)
    }

    fn is_up(&self) -> bool {
        self.link.up.load(Ordering::Relaxed)
    }

    /// Sends a publish to the other nodes that have subscribers of `topic` (as they
    /// announced); never waits. While the link is down every publish is dropped (and
    /// counted), as is one that finds the queue full (`--cluster-queue` publishes or
    /// `--cluster-queue-bytes`).
    pub fn publish(&self, topic: &str, kind: Data, data: &[u8]) {
        if !self.is_up() {
            METRICS.cluster_dropped.inc();
            return;
        }
        // Most topics of a large deployment live on one node: their publishes stay off NATS
        // (a lone runner with --cluster went from 0.75x to 1.02x of one without).
        if self.remote_subscribers(topic) == 0 {
            return;
        }
        let subject = self.subjects.topic(topic);
        if !self.queue.push(subject, wire::message(kind, data)) {
            METRICS.cluster_dropped.inc();
        }
    }

    /// Asks the node that holds `to` to send to it or close it, and waits for its answer.
    /// A node that is not running answers [`Status::Gone`] (NATS says nobody listens).
    pub async fn route(&self, to: Id, request: Command<'_>) -> Result<Status, Unreachable> {
        if !self.is_up() {
            return Err(Unreachable);
        }
        METRICS.cluster_sends.inc();
        let subject = self.subjects.node(to.node());
        let asked = self.client.request(subject, request.encode());
        match tokio::time::timeout(ROUTE_TIMEOUT, asked).await {
            Ok(Ok(reply)) => Status::parse(&reply.payload).ok_or(Unreachable),
            Ok(Err(error))
                if error.kind() == async_nats::client::RequestErrorKind::NoResponders =>
            {
                Ok(Status::Gone)
            }
            _ => Err(Unreachable),
        }
    }

    /// The subscribers of `topic` on the other nodes, as they last announced them.
    pub fn remote_subscribers(&self, topic: &str) -> u64 {
        self.remote.total(topic, Instant::now())
    }

    /// The other nodes heard within the last [`counts::EXPIRY`] (or not yet expired).
    pub fn nodes(&self) -> usize {
        self.remote.nodes()
    }

    /// Called by the registry when a topic's local subscribers changed.
    pub fn changed(&self, topic: &str) {
        let mut dirty = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        if dirty.is_empty() {
            self.changed.notify_one();
        }
        if !dirty.contains(topic) {
            dirty.insert(topic.into());
        }
    }

    /// Writes queued publishes to NATS in order.
    async fn forward(self: Arc<Self>, mut waiting: Waiting) {
        while let Some((subject, payload)) = waiting.pop().await {
            if !self.is_up() {
                METRICS.cluster_dropped.inc();
                continue;
            }
            match self.client.publish(subject, payload).await {
                Ok(()) => METRICS.cluster_sent.inc(),
                Err(_) => METRICS.cluster_dropped.inc(),
            }
        }
    }

    /// Answers the other nodes' sends and closes to this node's connections.
    async fn serve_requests(self: Arc<Self>, mut requests: Subscriber, registry: Arc<Registry>) {
        while let Some(message) = requests.next().await {
            let Some(reply) = message.reply else { continue };
            let status = match Command::parse(&message.payload) {
                Some(request) => serve(&registry, request, &message.payload),
                None => {
                    warn!(subject = %message.subject, "malformed cluster request ignored");
                    continue;
                }
            };
            let _ = self.client.publish(reply, status.encode()).await;
        }
    }

    /// Subscribes to topics as local subscribers come and go, announces the counts, beats,
    /// and keeps the other nodes' counts.
    async fn keep_counts(
        self: Arc<Self>,
        mut heartbeats: Subscriber,
        mut counts: Subscriber,
        registry: Arc<Registry>,
    ) {
        let mut readers: HashMap<Box<str>, JoinHandle<()>> = HashMap::new();
        // Hello: the nodes already there answer with their counts.
        self.beat(true).await;
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            tokio::select! {
                () = self.changed.notified() => {
                    tokio::time::sleep(COALESCE).await;
                    let topics = std::mem::take(
                        &mut *self.dirty.lock().unwrap_or_else(PoisonError::into_inner),
                    );
                    let mut announce = Vec::with_capacity(topics.len());
                    for topic in topics {
                        let local = registry.subscribers(&topic);
                        self.follow(&topic, local > 0, &mut readers, &registry).await;
                        announce.push((topic, local));
                    }
                    self.announce(&announce).await;
                }
                _ = beat.tick() => {
                    let now = Instant::now();
                    let held = self.remote.handle_tick(now);
                    self.beat(held.hello).await;
                    if held.announce {
                        self.announce(&registry.topics()).await;
                    }
                    for node in self.remote.expire(now) {
                        info!(node = %format_args!("{node:08x}"), "cluster node gone");
                    }
                }
                () = self.link.restored.notified() => {
                    // The others forgot this node while the link was down, and it them.
                    self.beat(true).await;
                    self.announce(&registry.topics()).await;
                }
                Some(message) = heartbeats.next() => {
                    let Some((node, hello)) = wire::parse_heartbeat(&message.payload) else {
                        continue;
                    };
                    let answer = self.remote.handle_heartbeat(node, hello, Instant::now());
                    self.answer(answer, &registry).await;
                }
                Some(message) = counts.next() => {
                    let Some((node, entries)) = wire::parse_counts(&message.payload) else {
                        continue;
                    };
                    let answer = self.remote.handle_counts(node, entries, Instant::now());
                    self.answer(answer, &registry).await;
                }
            }
        }
    }

    /// Does what hearing from another node asks of this one.
    async fn answer(&self, answer: counts::Answer, registry: &Registry) {
        if let Some(node) = answer.joined {
            info!(node = %format_args!("{node:08x}"), "cluster node joined");
        }
        if answer.full {
            warn!(
                "cluster table full: some nodes or counts are not remembered (logged once \
                 until a node expires)"
            );
        }
        if answer.hello {
            self.beat(true).await;
        }
        if answer.announce {
            self.announce(&registry.topics()).await;
        }
    }

    /// Keeps this node subscribed to `topic`'s subject exactly while `wanted`.
    async fn follow(
        &self,
        topic: &str,
        wanted: bool,
        readers: &mut HashMap<Box<str>, JoinHandle<()>>,
        registry: &Arc<Registry>,
    ) {
        if wanted == readers.contains_key(topic) {
            return;
        }
        if !wanted {
            // Dropping the subscriber with its task unsubscribes.
            if let Some(reader) = readers.remove(topic) {
                reader.abort();
            }
            return;
        }
        match self.client.subscribe(self.subjects.topic(topic)).await {
            Ok(subscriber) => {
                let reader = tokio::spawn(deliver(subscriber, topic.into(), registry.clone()));
                readers.insert(topic.into(), reader);
            }
            Err(error) => warn!(%error, topic, "cannot subscribe at the cluster"),
        }
    }

    /// Says this node is alive; with `hello`, also asks every other node for its counts.
    async fn beat(&self, hello: bool) {
        if self.is_up() {
            let _ = self
                .client
                .publish(self.subjects.heartbeat(), wire::heartbeat(self.node, hello))
                .await;
        }
    }

    async fn announce(&self, entries: &[(Box<str>, u32)]) {
        if !self.is_up() || entries.is_empty() {
            return;
        }
        let entries = entries.iter().map(|(topic, count)| (&**topic, *count));
        for batch in wire::counts(self.node, entries, ANNOUNCEMENT) {
            let _ = self.client.publish(self.subjects.counts(), batch).await;
        }
    }
}

/// Delivers a topic's publishes from other nodes to this node's subscribers, host-side (a
/// hibernated subscriber is not woken). The messages already waiting are queued before the
/// subscribers are written, so that a burst costs one write per subscriber, as a local
/// callback's publishes do. (`scripts/bench-cluster.sh`, 1,000 subscribers split over two
/// runners, window 16: one write per delivery gave 0.09x the deliveries/s of one runner;
/// bursts give 0.98x.)
async fn deliver(mut subscriber: Subscriber, topic: Box<str>, registry: Arc<Registry>) {
    let mut delivered = Vec::new();
    while let Some(first) = subscriber.next().await {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(message) = next {
            match wire::parse_message(&message.payload) {
                Some((kind, data)) => {
                    METRICS.cluster_received.inc();
                    let mut message = Outgoing::new(kind, message.payload.slice_ref(data));
                    let queued = registry.publish(&topic, &mut message, None, &mut delivered);
                    METRICS.deliveries.add(u64::from(queued));
                }
                None => warn!(topic = &*topic, "malformed cluster publish ignored"),
            }
            taken += 1;
            next = if taken < BURST {
                subscriber.next().now_or_never().flatten()
            } else {
                None
            };
        }
        for peer in delivered.drain(..) {
            peer.flush_delivered();
        }
    }
}

/// Does what another node asked for one of this node's connections.
/// `payload`: the bytes `request` was parsed from (a send's message is a slice of them).
fn serve(registry: &Registry, request: Command<'_>, payload: &Bytes) -> Status {
    let result = match request {
        Command::Send(id, kind, data) => {
            let Some(peer) = registry.get(id) else {
                return Status::Gone;
            };
            let mut message = Outgoing::new(kind, payload.slice_ref(data));
            peer.deliver(message.frame(peer.form())).map(|first| {
                METRICS.deliveries.inc();
                if first {
                    peer.flush_delivered();
                }
            })
        }
        Command::Close(id, code, reason) => match registry.get(id) {
            Some(peer) => peer.request_close(code, reason.to_owned()),
            None => return Status::Gone,
        },
    };
    match result {
        Ok(()) => Status::Ok,
        Err(Refused::Closed) => Status::Closed,
        Err(Refused::Backpressure) => Status::Backpressure,
    }
}

async fn options(
    settings: &settings::Cluster,
    node: u32,
    link: Arc<Link>,
) -> Result<ConnectOptions, String> {
    let mut options = ConnectOptions::new();
    if let Some(path) = &settings.creds {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| format!("cannot read --cluster-creds {}: {e}", path.display()))?;
    }
    if let Some(token) = &settings.token {
        options = options.token(token.clone());
    }
    Ok(options
        .name(format!("wsbox-runner {node:08x}"))
        .no_echo()
        .connection_timeout(settings.connect_timeout)
        .request_timeout(Some(ROUTE_TIMEOUT))
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            let exponent = u32::try_from(attempts.min(6)).unwrap_or(6);
            (Duration::from_millis(50) * 2u32.pow(exponent)).min(MAX_BACKOFF)
        })
        .event_callback(move |event| {
            let link = link.clone();
            async move { link.on(event) }
        }))
}

impl Link {
    /// Logs each transition once, and counts it.
    fn on(&self, event: Event) {
        match event {
            Event::Connected => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    METRICS.cluster_connected.set(1);
                    METRICS.cluster_reconnects.inc();
                    info!("cluster link restored");
                    self.restored.notify_one();
                }
            }
            Event::Disconnected | Event::Closed => {
                if self.up.swap(false, Ordering::Relaxed) {
                    METRICS.cluster_connected.set(0);
                    warn!(
                        "cluster link lost: publishes to other nodes are dropped until it returns"
                    );
                }
            }
            // Once per message lost: counted, not logged.
            Event::SlowConsumer(_) => METRICS.cluster_lost.inc(),
            Event::ServerError(error) => warn!(%error, "cluster server error"),
            // Every failed reconnection attempt is one: the transition was logged.
            Event::ClientError(error) => debug!(%error, "cluster client error"),
            Event::LameDuckMode | Event::Draining => {}
        }
    }
}
