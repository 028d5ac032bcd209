//! New handler versions while serving: on SIGHUP, or with `--watch` when the handler file
//! changes, the file is compiled, linked and instantiated once; if all that works it becomes
//! the current version ([`Runtime::reload`](crate::engine::Runtime::reload)), else it is
//! refused and the old version keeps serving. No connection is touched here: each one moves
//! to the new version at its next guest call. SIGHUP also reads `--tls-cert`/`--tls-key`
//! again ([`Certificate::reload`]).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use crate::metrics::METRICS;
use crate::server::Server;
use crate::tls::Certificate;

/// How often `--watch` looks at the handler file.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// What `--watch` compares: a file being written changes one or the other.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// Serves reload requests until the process ends.
pub async fn run(server: Arc<Server>) {
    // Installed even without a handler file: SIGHUP's default action ends the process.
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(error) => {
            warn!(%error, "cannot install the SIGHUP handler: no reloads on SIGHUP");
            return;
        }
    };
    let path = server.settings.handler.clone();
    let watch = server.settings.watch;
    let mut loaded = path.as_deref().and_then(stamp);
    // A change is loaded once the file has stayed the same for one more look, so that a
    // file still being written is not read half-way.
    let mut changed: Stamp = None;
    let mut ticks = tokio::time::interval(WATCH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                if let Some(tls) = &server.settings.tls {
                    reload_certificate(&tls.certificate);
                }
                match &path {
                    Some(path) => {
                        loaded = stamp(path);
                        reload(&server, path).await;
                    }
                    None if server.settings.tls.is_some() => {}
                    None => warn!("SIGHUP ignored: the embedded handler is served, there is no --handler file to reload"),
                }
            }
            _ = ticks.tick(), if watch => {
                let Some(path) = &path else { continue };
                let now = stamp(path);
                if now == loaded {
                    changed = None;
                } else if changed.is_some() && now == changed {
                    loaded = now;
                    changed = None;
                    reload(&server, path).await;
                } else {
                    changed = now;
                }
            }
        }
    }
}

/// A renewed certificate: new handshakes use it, open connections keep theirs.
fn reload_certificate(certificate: &Certificate) {
    let (cert, key) = certificate.files();
    match certificate.reload() {
        Ok(()) => info!(cert = %cert.display(), key = %key.display(), "certificate reloaded"),
        Err(error) => warn!(%error, "certificate reload refused; the current one keeps serving"),
    }
}

async fn reload(server: &Server, path: &Path) {
    let started = Instant::now();
    let result = match std::fs::read(path) {
        Ok(wasm) => match server.new_conn() {
            Ok(conn) => server.runtime.reload(wasm, conn).await,
            Err(error) => Err(wasmtime::format_err!("no randomness: {error}")),
        },
        Err(error) => Err(wasmtime::format_err!(
            "cannot read {}: {error}",
            path.display()
        )),
    };
    match result {
        Ok(version) => {
            METRICS.reloads_ok.inc();
            info!(
                version,
                path = %path.display(),
                took_ms = started.elapsed().as_millis() as u64,
                "handler reloaded"
            );
        }
        Err(error) => {
            METRICS.reloads_refused.inc();
            warn!(
                path = %path.display(),
                version = server.runtime.latest(),
                error = format!("{error:#}"),
                "reload refused; the current version keeps serving"
            );
        }
    }
}
