//! The runner's counters and gauges: process-wide atomics, bumped where the work happens
//! (relaxed: a scrape needs no ordering between them), read only by a scrape
//! ([`crate::admin`] serves them with `--metrics`). A leaf.
//!
//! Each metric is declared once, in the table below, with the exposition it appears in:
//! the struct, its static and the Prometheus text all come from that table.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};

/// A counter or gauge.
pub struct Value(AtomicI64);

impl Value {
    const fn new(value: i64) -> Self {
        Value(AtomicI64::new(value))
    }

    pub fn add(&self, n: u64) {
        self.0
            .fetch_add(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    pub fn sub(&self, n: u64) {
        self.0
            .fetch_sub(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
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

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Writes one metric family in the Prometheus text format: `# HELP`, `# TYPE`, then one
/// sample per `(labels, value)`.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, i64)]) {
    let _ = writeln!(out, "# HELP wsbox_{name} {help}");
    let _ = writeln!(out, "# TYPE wsbox_{name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "wsbox_{name}{labels} {value}");
    }
}

/// Declares the metrics: each family (its name, type and help, and `if METHOD` when it is
/// shown only while `Metrics::METHOD` is true), then its series: a new value
/// (`field = initial`) or one declared above (`@field`), with its labels.
macro_rules! metrics {
    ($(
        $family:literal $kind:ident $help:literal $(if $shown:ident)? {
            $( $(@$again:ident)? $( $(#[$doc:meta])* $field:ident = $init:literal )? $labels:literal; )+
        }
    )+) => {
        pub struct Metrics {
            $($( $( $(#[$doc])* pub $field: Value, )? )+)+
        }

        pub static METRICS: Metrics = Metrics {
            $($( $( $field: Value::new($init), )? )+)+
        };

        impl Metrics {
            /// Every family of the table, in the Prometheus text format.
            pub fn render(&self, out: &mut String) {
                $(
                    if true $(&& self.$shown())? {
                        family(out, $family, stringify!($kind), $help, &[
                            $( ($labels, $(self.$again.get())? $(self.$field.get())?), )+
                        ]);
                    }
                )+
            }
        }
    };
}

metrics! {
    "websockets" gauge "Open WebSockets, by whether their guest has a live instance." {
        websockets_live = 0 "{state=\"live\"}";
        websockets_hibernated = 0 "{state=\"hibernated\"}";
    }
    "messages_received_total" counter "Messages from clients (auto-answered ones included)." {
        messages_in = 0 "";
    }
    "auto_responses_total" counter "Messages answered by an auto-response, without the guest." {
        auto_responses = 0 "";
    }
    "bytes_total" counter "WebSocket bytes read from and written to clients." {
        bytes_in = 0 "{direction=\"in\"}";
        bytes_out = 0 "{direction=\"out\"}";
    }
    "publishes_total" counter "publish calls here (local) and publishes received from other nodes (remote)." {
        publishes = 0 "{scope=\"local\"}";
        cluster_received = 0 "{scope=\"remote\"}";
    }
    "deliveries_total" counter "Messages queued to other connections by publish and send-to." {
        deliveries = 0 "";
    }
    "backpressure_drops_total" counter "Messages dropped because their connection had --max-backpressure waiting." {
        dropped = 0 "";
    }
    "deflate_messages_total" counter "Messages compressed for clients (a publish once per window its subscribers agreed to)." {
        /// Messages compressed (a publish counts once per window its subscribers agreed
        /// to, however many they are), and their bytes before and after.
        deflated = 0 "";
    }
    "deflate_bytes_total" counter "Messages compressed: their payload bytes (raw) and their frames' (compressed)." {
        deflate_raw = 0 "{stage=\"raw\"}";
        deflate_compressed = 0 "{stage=\"compressed\"}";
    }
    "hibernations_total" counter "Instances dropped from idle WebSockets." {
        hibernations = 0 "";
    }
    "wakes_total" counter "Fresh instances made for hibernated WebSockets." {
        wakes = 0 "";
    }
    "guest_faults_total" counter "Guest calls that failed, by kind." {
        faults_cpu = 0 "{kind=\"cpu\"}";
        faults_memory = 0 "{kind=\"memory\"}";
        faults_budget = 0 "{kind=\"budget\"}";
        faults_trap = 0 "{kind=\"trap\"}";
    }
    "host_bytes" gauge "Bytes the host holds for connections, by kind: frames waiting for slow clients (outbox, each entry counted with its overhead), TLS records sealed and not yet written (sealed), and what clients sent that is not yet a message (inbound: unfinished messages, bytes read past a client's rate)." {
        host_outbox = 0 "{kind=\"outbox\"}";
        host_sealed = 0 "{kind=\"sealed\"}";
        host_inbound = 0 "{kind=\"inbound\"}";
    }
    "history_bytes" gauge "Bytes topics' histories hold (payloads kept, each with its overhead), against --history-max-bytes." {
        history_bytes = 0 "";
    }
    "history_messages_total" counter "Messages of topics with history: replayed to subscribers starting from a position; not kept (larger than --history-topic-bytes, or no room under --history-max-bytes); trimmed before a replay reached them (a gap its client sees)." {
        history_replayed = 0 "{event=\"replayed\"}";
        history_unkept = 0 "{event=\"unkept\"}";
        history_skipped = 0 "{event=\"skipped\"}";
    }
    "guest_log_dropped_total" counter "Lines guests printed over --guest-log-rate, not logged." {
        guest_log_dropped = 0 "";
    }
    "client_over_rate_total" counter "Times a client went over --client-message-rate or --client-byte-rate (its reads paused, or it was closed with 1008)." {
        client_over_rate = 0 "";
    }
    "host_refusals_total" counter "Frames dropped, or connections closed with 1013 as their unfinished message grew, because the host held --host-memory for all connections together." {
        host_refusals = 0 "";
    }
    "refused_total" counter "Connections answered 503 (connection limits, memory budget, instances)." {
        refused_503 = 0 "";
    }
    "reloads_total" counter "Handler reloads, by result." {
        reloads_ok = 0 "{result=\"ok\"}";
        reloads_refused = 0 "{result=\"refused\"}";
    }
    "cluster_connected" gauge "1 while the NATS link of --cluster is up, 0 while it is down." if clustered {
        /// With `--cluster`: 1 while the NATS link is up; -1 (not shown) without a cluster.
        cluster_connected = -1 "";
    }
    "cluster_publishes_sent_total" counter "Publishes written to NATS for other nodes." if clustered {
        cluster_sent = 0 "";
    }
    "cluster_publishes_received_total" counter "Publishes from other nodes." if clustered {
        @cluster_received "";
    }
    "cluster_publishes_dropped_total" counter "Publishes not offered to other nodes: made while the link was down, or --cluster-queue or --cluster-queue-bytes full." if clustered {
        cluster_dropped = 0 "";
    }
    "cluster_sends_total" counter "send-to and close-other routed to other nodes." if clustered {
        cluster_sends = 0 "";
    }
    "cluster_reconnects_total" counter "Times the NATS link came back." if clustered {
        cluster_reconnects = 0 "";
    }
    "cluster_lost_total" counter "Messages from NATS lost because this runner read them too slowly (slow consumer)." if clustered {
        cluster_lost = 0 "";
    }
}

impl Metrics {
    /// Whether the runner is in a cluster (`--cluster`): its families are shown then.
    pub fn clustered(&self) -> bool {
        self.cluster_connected.get() >= 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_declared_again_shows_the_same_value() {
        let mut out = String::new();
        METRICS.render(&mut out);
        assert!(out.contains("# TYPE wsbox_websockets gauge\n"));
        assert!(out.contains("wsbox_bytes_total{direction=\"in\"} "));
        // Not in a cluster: its families are left out.
        assert!(!out.contains("cluster_"));
        METRICS.cluster_connected.set(1);
        METRICS.cluster_received.add(3);
        let mut out = String::new();
        METRICS.render(&mut out);
        METRICS.cluster_connected.set(-1);
        assert!(out.contains("wsbox_publishes_total{scope=\"remote\"} 3\n"));
        assert!(out.contains("wsbox_cluster_publishes_received_total 3\n"));
    }
}
