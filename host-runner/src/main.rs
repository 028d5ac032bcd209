//! `wsbox-runner`: serves a WebSocket handler component, one sandboxed instance per
//! connection. See `--help` and the README's Runner section.

mod admin;
mod alloc;
mod bus;
mod cli;
mod cluster;
mod connection;
mod cork;
mod deflate;
mod engine;
mod guest;
mod history;
mod http;
mod id;
mod limits;
mod linger;
mod logging;
mod metrics;
mod peer;
mod rate;
mod registry;
mod reload;
mod server;
mod settings;
mod shutdown;
mod state;
mod tls;
mod transport;
mod wit;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{error, info, warn};

use crate::server::Server;

/// The default handler: `guests/echo`, built for wasm32-wasip2 by build.rs.
static DEFAULT_HANDLER: &[u8] = include_bytes!(env!("WSBOX_DEFAULT_HANDLER"));

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let log = args.log.clone();
    let settings = match args.validate() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("wsbox-runner: {message}");
            return ExitCode::from(2);
        }
    };
    if let Err(message) = logging::init(log.as_deref()) {
        eprintln!("wsbox-runner: {message}");
        return ExitCode::from(2);
    }
    match run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn run(settings: settings::Settings) -> Result<(), String> {
    limits::raise_nofile(settings.max_connections);
    limits::ignore_file_size_signal();
    peer::limit_host_memory(settings.host_memory);
    let wasm = match &settings.handler {
        Some(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        None => DEFAULT_HANDLER.to_vec(),
    };
    let runtime = engine::Runtime::new(&wasm, &settings)
        .map_err(|e| format!("cannot load the handler: {e:#}"))?;
    drop(wasm);

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    // The accept loop runs on a worker, not on this thread: every connection task it
    // spawns then starts on the same worker, without a cross-thread wake-up (measured:
    // futex waits and context switches were a tenth of a handshake's CPU).
    tokio.block_on(async {
        tokio::spawn(serve(runtime, settings))
            .await
            .map_err(|e| format!("the accept loop failed: {e}"))?
    })
}

/// Says what connections may keep in the host beside their outboxes and unfinished input
/// (both within --host-memory): attachments, auto-responses, topic names, presence info,
/// deflate contexts, bounded per connection by their flags. Warns when that, for
/// --max-connections, passes --host-memory. And what topics' histories may keep.
fn state_bound(settings: &settings::Settings) {
    let each = settings.state_per_connection();
    let all = each.saturating_mul(settings.max_connections);
    info!(
        per_connection = each,
        max_connections = settings.max_connections,
        all,
        "connection state bound (attachment, auto-responses, topic names, presence info, deflate context)"
    );
    let history = settings.history;
    info!(
        max_bytes = history.max_bytes,
        topic_bytes = history.topic_bytes,
        max_messages = history.max_messages,
        "topic history bound (host memory, counted as kept)"
    );
    if all > settings.host_memory {
        warn!(
            "--max-connections × the state one connection may keep ({all} bytes) passes \
             --host-memory ({}): lower --max-connections, --max-attachment, \
             --max-auto-responses, --max-auto-response-size or --max-topics",
            settings.host_memory
        );
    }
}

/// Opens the store of `--data-dir`: a directory that is locked, unreadable, corrupt or of
/// a newer format stops the start here, with what to do.
async fn open_store(settings: &settings::Settings) -> Result<wsbox_store::Store, String> {
    let config = settings.store.clone();
    let store = tokio::task::spawn_blocking(move || wsbox_store::Store::open(config))
        .await
        .map_err(|e| format!("cannot open the store: {e}"))?
        .map_err(|e| format!("cannot open the store (--data-dir): {e}"))?;
    match &settings.store.dir {
        Some(dir) => info!(dir = %dir.display(), "store open"),
        None => info!("store in memory (--data-dir memory): nothing outlives this runner"),
    }
    Ok(store)
}

/// This runner's node id: random, so that runners started alike still differ.
fn node_id() -> Result<u32, String> {
    let mut bytes = [0; 4];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for the node id: {e}"))?;
    Ok(u32::from_be_bytes(bytes))
}

async fn serve(runtime: Arc<engine::Runtime>, settings: settings::Settings) -> Result<(), String> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let signal = shutdown::signal();
    tokio::pin!(signal);
    let (trigger, shutdown) = shutdown::channel();
    let max = settings.max_connections;
    let permits = Arc::new(Semaphore::new(max));
    let per_address = limits::PerAddress::new(settings.max_connections_per_address);
    let refusals = limits::Refusals::new();
    let shutdown_timeout = settings.shutdown_timeout;
    let metrics = match settings.metrics {
        Some(addr) => Some(admin::bind(addr).await?),
        None => None,
    };
    let node = node_id()?;
    let cluster = settings.cluster.clone();
    let store = open_store(&settings).await?;
    let clean = history::was_clean(&store)
        .await
        .map_err(|e| format!("cannot use the store: {e}"))?;
    let histories = history::Histories::new(settings.history, store.clone(), clean);
    let shared = Arc::new(Server::new(runtime, settings, shutdown, node, histories));
    if let Some(cluster) = cluster {
        let bus = &shared.bus;
        bus.join(cluster::Cluster::start(&cluster, node, bus.registry.clone()).await?);
    }
    {
        let mut stdout = std::io::stdout().lock();
        // Tests and scripts read this line to find the port.
        let scheme = if shared.settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let _ = writeln!(stdout, "wsbox-runner listening on {scheme}://{local}/");
        let _ = stdout.flush();
    }
    state_bound(&shared.settings);
    if let Some(listener) = metrics {
        tokio::spawn(admin::serve(listener, shared.clone()));
    }
    let reloads = tokio::spawn(reload::run(shared.clone()));

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let Some(place) = per_address.try_acquire(peer.ip()) else {
                        if refusals.refuse(stream, limits::ADDRESS_BUSY) {
                            warn!(
                                %peer,
                                max_connections_per_address = per_address.max(),
                                "connection refused with 503: too many from this address \
                                 (--max-connections-per-address; 0 behind a reverse proxy)"
                            );
                        }
                        continue;
                    };
                    match permits.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let shared = shared.clone();
                            tokio::spawn(async move {
                                // The address's place is held as long as the permit.
                                let _place = place;
                                connection::serve(stream, peer, shared, permit).await;
                            });
                        }
                        Err(_) => {
                            if refusals.refuse(stream, limits::SERVER_BUSY) {
                                warn!(%peer, max_connections = max, "connection refused with 503");
                            }
                        }
                    }
                }
                Err(error) => {
                    // Out of descriptors or memory: back off instead of spinning.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            name = &mut signal => {
                let name = name.map_err(|e| format!("cannot install signal handlers: {e}"))?;
                info!(signal = name, "shutting down");
                break;
            }
        }
    }
    drop(listener);
    reloads.abort();
    trigger.fire();
    let open = shutdown::drain(&permits, max, shutdown_timeout + Duration::from_millis(500)).await;
    if open > 0 {
        warn!(open, "exiting with connections still open");
    }
    // Histories' positions stay valid for the next runner only if all of them are stored.
    if open == 0
        && let Err(error) = history::mark_clean(&store).await
    {
        warn!(%error, "the store did not commit everything at the stop");
    }
    info!("stopped");
    Ok(())
}
