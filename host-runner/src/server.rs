//! What every connection task shares: the compiled handler, the settings, the open
//! WebSockets and topics, and the shutdown notice.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use tracing::debug;

use crate::history::Histories;
use crate::settings::Settings;
use wsbox::handshake::Accepted;

use crate::bus::Bus;
use crate::engine::{Fault, Runtime, Sandbox};
use crate::id::Id;
use crate::peer::Peer;
use crate::shutdown::Shutdown;
use crate::state::State;

/// Instances made ahead of the connections that will use them, so that a new connection
/// does not wait for its instantiation (measured: 10 µs of a 75 µs upgrade).
const WARM: usize = 2;
/// How often a connection waiting for memory or an instance tries again.
const SQUEEZE_RETRY: Duration = Duration::from_millis(20);

pub struct Server {
    pub runtime: Arc<Runtime>,
    pub settings: Settings,
    pub shutdown: Shutdown,
    pub bus: Arc<Bus>,
    /// Instances ready for the next connections.
    warm: Mutex<Vec<Sandbox>>,
    /// Instances ready or being made, at most [`WARM`].
    warming: AtomicUsize,
}

/// Why a connection got no instance.
pub enum NoSandbox {
    Random(getrandom::Error),
    Fault(Fault),
}

impl std::fmt::Display for NoSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoSandbox::Random(error) => write!(f, "no randomness for a connection id: {error}"),
            NoSandbox::Fault(fault) => write!(f, "cannot instantiate the handler: {fault}"),
        }
    }
}

impl Server {
    /// `node` is this runner's part of the ids it makes (random per process).
    pub fn new(
        runtime: Arc<Runtime>,
        settings: Settings,
        shutdown: Shutdown,
        node: u32,
        histories: Histories,
    ) -> Self {
        Server {
            runtime,
            settings,
            shutdown,
            bus: Arc::new(Bus::new(node, histories)),
            warm: Mutex::new(Vec::with_capacity(WARM)),
            warming: AtomicUsize::new(0),
        }
    }

    /// Makes the connection a WebSocket for the others: its peer (writable as soon as
    /// its socket is attached), its id and its subscriptions. `accepted` is what its
    /// handshake agreed to.
    pub fn register(&self, conn: &mut State, accepted: &Accepted) {
        let settings = &self.settings;
        let session = accepted.session();
        let peer = Arc::new(Peer::new(
            conn.id(),
            settings.app.max_backpressure,
            settings.close_on_backpressure,
            settings.deflate.form(accepted.deflate()),
        ));
        conn.upgrade(session, peer.clone());
        self.bus.registry.insert(peer.clone());
        for topic in conn.live_topics() {
            self.bus.subscribe(topic, &peer);
            let info = conn.info(topic);
            if !info.is_empty() {
                self.bus.registry.set_info(topic, &peer, info);
            }
        }
    }

    /// Unregisters a connection that ended, with its subscriptions.
    pub fn forget(&self, conn: &mut State) {
        conn.flush_delivered();
        if let Some(peer) = conn.peer() {
            self.bus.remove(peer, conn.topics());
        }
    }

    /// An instance of the current version for the connection from `peer`. When memory or
    /// instances run short, idle instances are asked to hibernate and this waits for them,
    /// up to `patience`.
    pub async fn sandbox(
        self: &Arc<Self>,
        peer: SocketAddr,
        patience: Duration,
    ) -> Result<Sandbox, NoSandbox> {
        let deadline = Instant::now() + patience;
        loop {
            match self.try_sandbox(peer).await {
                Err(NoSandbox::Fault(fault @ (Fault::Budget | Fault::Full))) => {
                    if Instant::now() >= deadline {
                        return Err(NoSandbox::Fault(fault));
                    }
                    self.runtime.budget.squeeze();
                    tokio::time::sleep(SQUEEZE_RETRY).await;
                }
                result => return result,
            }
        }
    }

    /// A warm instance if there is one (and a replacement is made in the background),
    /// else one made now.
    async fn try_sandbox(self: &Arc<Self>, peer: SocketAddr) -> Result<Sandbox, NoSandbox> {
        let warm = self
            .warm
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if warm.is_some() {
            self.warming.fetch_sub(1, Ordering::Relaxed);
        }
        // One made before a reload is dropped.
        let latest = self.runtime.latest();
        let sandbox = match warm.filter(|sandbox| sandbox.version == latest) {
            Some(mut sandbox) => {
                sandbox.assign(peer);
                sandbox
            }
            None => self.make(peer).await?,
        };
        self.rewarm();
        Ok(sandbox)
    }

    /// A `State` that belongs to no connection yet.
    pub fn new_conn(&self) -> Result<State, getrandom::Error> {
        Ok(State::new(
            Id::random(self.bus.node())?,
            self.bus.clone(),
            self.settings.app,
        ))
    }

    async fn make(&self, peer: SocketAddr) -> Result<Sandbox, NoSandbox> {
        let conn = self.new_conn().map_err(NoSandbox::Random)?;
        self.runtime
            .instantiate(peer, conn)
            .await
            .map_err(NoSandbox::Fault)
    }

    /// Starts making an instance if fewer than [`WARM`] are ready or being made. It runs
    /// after the task that asked, so off that connection's path.
    fn rewarm(self: &Arc<Self>) {
        if self.warming.fetch_add(1, Ordering::Relaxed) >= WARM {
            self.warming.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let server = self.clone();
        tokio::spawn(async move {
            let unassigned = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
            match server.make(unassigned).await {
                Ok(sandbox) => server
                    .warm
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(sandbox),
                Err(error) => {
                    server.warming.fetch_sub(1, Ordering::Relaxed);
                    debug!(%error, "no warm instance");
                }
            }
        });
    }

    /// The protocol limits of every session.
    pub fn session_config(&self) -> wsbox::Config {
        let limit = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        wsbox::Config::default()
            .max_frame_size(limit(self.settings.max_frame_size))
            .max_message_size(limit(self.settings.max_message_size))
            .deflate(self.settings.deflate.deflate())
    }
}
