//! `--metrics ADDR`: what the runner is doing, as Prometheus text at `GET /metrics`, on a
//! listener of its own. The counters come from [`crate::metrics`]; the few values that are
//! state rather than counts (cluster nodes, handler version, guest memory) are read from the
//! [`Server`] at each scrape.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::metrics::{METRICS, family};
use crate::server::Server;

/// The exposition: the declared metrics, then the server's state.
fn render(server: &Server) -> String {
    let mut out = String::with_capacity(4096);
    METRICS.render(&mut out);
    let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    if METRICS.clustered() {
        let nodes = server.bus.cluster().map_or(0, |c| c.nodes());
        let help = "Other runners of the cluster heard from lately.";
        family(
            &mut out,
            "cluster_nodes",
            "gauge",
            help,
            &[("", to_i64(nodes))],
        );
    }
    let stats = server.bus.histories.store().stats();
    let n = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    family(
        &mut out,
        "store_bytes",
        "gauge",
        "Bytes the store holds (--data-max-bytes): keys, values and kept history, each entry with 32 more.",
        &[("", n(stats.bytes))],
    );
    family(
        &mut out,
        "store_keys",
        "gauge",
        "Keys in the store's namespaces (expired ones not swept yet included).",
        &[("", n(stats.keys))],
    );
    family(
        &mut out,
        "store_commits_total",
        "counter",
        "Transactions the store committed to disk, and the writes they held (writes / commits: the group commit's batching).",
        &[
            ("{what=\"commits\"}", n(stats.commits)),
            ("{what=\"writes\"}", n(stats.writes_batched)),
        ],
    );
    family(
        &mut out,
        "store_history_lost_total",
        "counter",
        "History writes the store lost (its queue or --data-max-bytes full, or a failed commit such as a full disk); live delivery went on.",
        &[("", n(stats.failed_writes))],
    );
    let runtime = &server.runtime;
    family(
        &mut out,
        "handler_version",
        "gauge",
        "The handler version serving (1 at start, one more per reload).",
        &[("", i64::try_from(runtime.latest()).unwrap_or(i64::MAX))],
    );
    family(
        &mut out,
        "guest_memory_bytes",
        "gauge",
        "Linear memory held by live instances, and --memory-budget.",
        &[
            ("{kind=\"used\"}", to_i64(runtime.budget.used())),
            ("{kind=\"budget\"}", to_i64(runtime.budget.limit())),
        ],
    );
    out
}

/// Scrapers served at once; a connection past them is closed at once. A scraper needs
/// one; the bound keeps idle sockets from taking the descriptors sized for
/// `--max-connections`.
const MAX_CONNECTIONS: usize = 16;
/// How long a metrics connection may take to send its request head, and to live in all.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const LIFETIME: Duration = Duration::from_secs(30);

/// Serves `GET /metrics` on `listener` until the process ends: at most
/// [`MAX_CONNECTIONS`] at once, each for at most [`LIFETIME`].
pub async fn serve(listener: TcpListener, server: Arc<Server>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            debug!(%peer, "metrics connection refused: {MAX_CONNECTIONS} are open");
            continue;
        };
        let server = server.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(answer(&request, &server)) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(LIFETIME, connection).await {
                Ok(Err(error)) => debug!(%peer, %error, "metrics connection ended"),
                Err(_) => debug!(%peer, "metrics connection closed after {LIFETIME:?}"),
                Ok(Ok(())) => {}
            }
        });
    }
}

fn answer(request: &hyper::Request<Incoming>, server: &Server) -> hyper::Response<Full<Bytes>> {
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        return crate::http::plain(StatusCode::NOT_FOUND, "metrics are at GET /metrics\n");
    }
    let mut response = hyper::Response::new(Full::new(Bytes::from(render(server))));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Binds `addr` and logs where the metrics are.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for --metrics on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the metrics address: {e}"))?;
    info!(addr = %local, "metrics at http://{local}/metrics");
    Ok(listener)
}
