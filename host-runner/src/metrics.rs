//! `--metrics ADDR`: what the runner is doing, as Prometheus text at `GET /metrics`.
//!
//! The counters are process-wide atomics, bumped where the work happens (relaxed: a scrape
//! needs no ordering between them), and read only by a scrape.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::engine::Fault;
use crate::server::Server;

/// A counter or gauge.
pub struct Value(AtomicI64);

impl Value {
    pub fn add(&self, n: u64) {
        self.0
            .fetch_add(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub struct Metrics {
    pub websockets_open: Value,
    pub websockets_hibernated: Value,
    pub messages_in: Value,
    pub auto_responses: Value,
    pub bytes_in: Value,
    pub bytes_out: Value,
    pub publishes: Value,
    pub deliveries: Value,
    pub dropped: Value,
    /// Messages compressed, and their bytes before and after (a publish counts once per
    /// window its subscribers agreed to, however many they are).
    pub deflated: Value,
    pub deflate_raw: Value,
    pub deflate_compressed: Value,
    pub wakes: Value,
    pub hibernations: Value,
    pub faults_cpu: Value,
    pub faults_memory: Value,
    pub faults_budget: Value,
    pub faults_trap: Value,
    pub reloads_ok: Value,
    pub reloads_refused: Value,
    pub refused_503: Value,
    /// With `--cluster`: 1 while the NATS link is up; -1 (not shown) without a cluster.
    pub cluster_connected: Value,
    pub cluster_sent: Value,
    pub cluster_received: Value,
    pub cluster_dropped: Value,
    pub cluster_sends: Value,
    pub cluster_reconnects: Value,
    pub cluster_lost: Value,
}

pub static METRICS: Metrics = Metrics {
    websockets_open: Value(AtomicI64::new(0)),
    websockets_hibernated: Value(AtomicI64::new(0)),
    messages_in: Value(AtomicI64::new(0)),
    auto_responses: Value(AtomicI64::new(0)),
    bytes_in: Value(AtomicI64::new(0)),
    bytes_out: Value(AtomicI64::new(0)),
    publishes: Value(AtomicI64::new(0)),
    deliveries: Value(AtomicI64::new(0)),
    dropped: Value(AtomicI64::new(0)),
    deflated: Value(AtomicI64::new(0)),
    deflate_raw: Value(AtomicI64::new(0)),
    deflate_compressed: Value(AtomicI64::new(0)),
    wakes: Value(AtomicI64::new(0)),
    hibernations: Value(AtomicI64::new(0)),
    faults_cpu: Value(AtomicI64::new(0)),
    faults_memory: Value(AtomicI64::new(0)),
    faults_budget: Value(AtomicI64::new(0)),
    faults_trap: Value(AtomicI64::new(0)),
    reloads_ok: Value(AtomicI64::new(0)),
    reloads_refused: Value(AtomicI64::new(0)),
    refused_503: Value(AtomicI64::new(0)),
    cluster_connected: Value(AtomicI64::new(-1)),
    cluster_sent: Value(AtomicI64::new(0)),
    cluster_received: Value(AtomicI64::new(0)),
    cluster_dropped: Value(AtomicI64::new(0)),
    cluster_sends: Value(AtomicI64::new(0)),
    cluster_reconnects: Value(AtomicI64::new(0)),
    cluster_lost: Value(AtomicI64::new(0)),
};

/// Counts a guest fault by kind.
pub fn count_fault(fault: &Fault) {
    let m = &METRICS;
    match fault {
        Fault::Cpu => m.faults_cpu.inc(),
        Fault::Memory => m.faults_memory.inc(),
        Fault::Budget | Fault::Full => m.faults_budget.inc(),
        Fault::Trap(_) => m.faults_trap.inc(),
    }
}

/// The exposition: `# TYPE` lines and one sample per series.
fn render(server: &Server) -> String {
    let m = &METRICS;
    let mut out = String::with_capacity(4096);
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, i64)]| {
        let _ = writeln!(out, "# HELP wsbox_{name} {help}");
        let _ = writeln!(out, "# TYPE wsbox_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "wsbox_{name}{labels} {value}");
        }
    };
    let open = m.websockets_open.get();
    let hibernated = m.websockets_hibernated.get();
    family(
        "websockets",
        "gauge",
        "Open WebSockets, by whether their guest has a live instance.",
        &[
            ("{state=\"live\"}", open - hibernated),
            ("{state=\"hibernated\"}", hibernated),
        ],
    );
    family(
        "messages_received_total",
        "counter",
        "Messages from clients (auto-answered ones included).",
        &[("", m.messages_in.get())],
    );
    family(
        "auto_responses_total",
        "counter",
        "Messages answered by an auto-response, without the guest.",
        &[("", m.auto_responses.get())],
    );
    family(
        "bytes_total",
        "counter",
        "WebSocket bytes read from and written to clients.",
        &[
            ("{direction=\"in\"}", m.bytes_in.get()),
            ("{direction=\"out\"}", m.bytes_out.get()),
        ],
    );
    family(
        "publishes_total",
        "counter",
        "publish calls here (local) and publishes received from other nodes (remote).",
        &[
            ("{scope=\"local\"}", m.publishes.get()),
            ("{scope=\"remote\"}", m.cluster_received.get()),
        ],
    );
    family(
        "deliveries_total",
        "counter",
        "Messages queued to other connections by publish and send-to.",
        &[("", m.deliveries.get())],
    );
    family(
        "backpressure_drops_total",
        "counter",
        "Messages dropped because their connection had --max-backpressure waiting.",
        &[("", m.dropped.get())],
    );
    family(
        "deflate_messages_total",
        "counter",
        "Messages compressed for clients (a publish once per window its subscribers agreed to).",
        &[("", m.deflated.get())],
    );
    family(
        "deflate_bytes_total",
        "counter",
        "Messages compressed: their payload bytes (raw) and their frames' (compressed).",
        &[
            ("{stage=\"raw\"}", m.deflate_raw.get()),
            ("{stage=\"compressed\"}", m.deflate_compressed.get()),
        ],
    );
    family(
        "hibernations_total",
        "counter",
        "Instances dropped from idle WebSockets.",
        &[("", m.hibernations.get())],
    );
    family(
        "wakes_total",
        "counter",
        "Fresh instances made for hibernated WebSockets.",
        &[("", m.wakes.get())],
    );
    family(
        "guest_faults_total",
        "counter",
        "Guest calls that failed, by kind.",
        &[
            ("{kind=\"cpu\"}", m.faults_cpu.get()),
            ("{kind=\"memory\"}", m.faults_memory.get()),
            ("{kind=\"budget\"}", m.faults_budget.get()),
            ("{kind=\"trap\"}", m.faults_trap.get()),
        ],
    );
    family(
        "refused_total",
        "counter",
        "Connections answered 503 (connection limits, memory budget, instances).",
        &[("", m.refused_503.get())],
    );
    family(
        "reloads_total",
        "counter",
        "Handler reloads, by result.",
        &[
            ("{result=\"ok\"}", m.reloads_ok.get()),
            ("{result=\"refused\"}", m.reloads_refused.get()),
        ],
    );
    if m.cluster_connected.get() >= 0 {
        family(
            "cluster_connected",
            "gauge",
            "1 while the NATS link of --cluster is up, 0 while it is down.",
            &[("", m.cluster_connected.get())],
        );
        let nodes = server.bus.cluster().map_or(0, |c| c.nodes());
        family(
            "cluster_nodes",
            "gauge",
            "Other runners of the cluster heard from lately.",
            &[("", i64::try_from(nodes).unwrap_or(i64::MAX))],
        );
        for (name, help, value) in [
            (
                "publishes_sent",
                "Publishes written to NATS for other nodes.",
                &m.cluster_sent,
            ),
            (
                "publishes_received",
                "Publishes from other nodes.",
                &m.cluster_received,
            ),
            (
                "publishes_dropped",
                "Publishes not offered to other nodes: made while the link was down, or --cluster-queue full.",
                &m.cluster_dropped,
            ),
            (
                "sends",
                "send-to and close-other routed to other nodes.",
                &m.cluster_sends,
            ),
            (
                "reconnects",
                "Times the NATS link came back.",
                &m.cluster_reconnects,
            ),
        ] {
            family(
                &format!("cluster_{name}_total"),
                "counter",
                help,
                &[("", value.get())],
            );
        }
    }
    let runtime = &server.runtime;
    family(
        "handler_version",
        "gauge",
        "The handler version serving (1 at start, one more per reload).",
        &[("", i64::try_from(runtime.latest()).unwrap_or(i64::MAX))],
    );
    let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    family(
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

/// Serves `GET /metrics` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, server: Arc<Server>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "metrics: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(answer(&request, &server)) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(%peer, %error, "metrics connection ended");
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
