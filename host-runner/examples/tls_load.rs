//! What TLS costs the runner: RSS per idle WebSocket and handshakes per second, `wss`
//! against `ws` (`wsload conns` speaks no TLS). Drives the default echo handler.
//!
//! ```sh
//! cargo build --release -p wsbox-runner --example tls_load
//! target/release/examples/tls_load certs /tmp/wsbox-tls          # ca.pem, cert.pem, key.pem
//! target/release/wsbox-runner --hibernate-after 1s --max-connections-per-address 0 \
//!     --tls-cert /tmp/wsbox-tls/cert.pem --tls-key /tmp/wsbox-tls/key.pem &
//! target/release/examples/tls_load idle --ca /tmp/wsbox-tls/ca.pem --connections 5000 --rss-pid $!
//! target/release/examples/tls_load handshakes --ca /tmp/wsbox-tls/ca.pem --secs 10
//! ```
//! Without `--ca` the client speaks plain `ws` (run the runner without the TLS flags).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a CA (ca.pem) and a `localhost` certificate it signs (cert.pem, key.pem).
    Certs { dir: PathBuf },
    /// Opens `--connections` WebSockets, waits for them to hibernate, and prints the
    /// runner's RSS growth per connection.
    Idle {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 5_000)]
        connections: usize,
        /// The runner's pid, whose RSS is read from /proc.
        #[arg(long)]
        rss_pid: u32,
        /// How long to wait once all are open (above the runner's --hibernate-after).
        #[arg(long, default_value_t = 5)]
        settle_secs: u64,
    },
    /// Connects, upgrades, echoes one message and closes, from `--concurrency` tasks, for
    /// `--secs`; prints completed handshakes per second.
    Handshakes {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

#[derive(clap::Args, Clone)]
struct Target {
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Speak `wss`, trusting this CA (PEM); plain `ws` without it.
    #[arg(long)]
    ca: Option<PathBuf>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Ws = tokio_tungstenite::WebSocketStream<Box<dyn Io>>;

struct Client {
    addr: SocketAddr,
    tls: Option<TlsConnector>,
}

impl Client {
    fn new(target: &Target) -> Client {
        let tls = target.ca.as_deref().map(|ca| {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).expect("read --ca") {
                roots.add(cert.expect("a PEM certificate")).expect("a CA");
            }
            let config = ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            TlsConnector::from(Arc::new(config))
        });
        Client {
            addr: target.addr,
            tls,
        }
    }

    async fn open(&self) -> Result<Ws, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let (io, scheme): (Box<dyn Io>, _) = match &self.tls {
            None => (Box::new(tcp), "ws"),
            Some(connector) => {
                let name = ServerName::try_from("localhost").expect("server name");
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| e.to_string())?;
                (Box::new(tls), "wss")
            }
        };
        let url = format!("{scheme}://localhost:{}/", self.addr.port());
        let (ws, _) = tokio_tungstenite::client_async(url, io)
            .await
            .map_err(|e| e.to_string())?;
        Ok(ws)
    }
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match args.command {
        Command::Certs { dir } => certs(&dir),
        Command::Idle {
            target,
            connections,
            rss_pid,
            settle_secs,
        } => runtime.block_on(idle(target, connections, rss_pid, settle_secs)),
        Command::Handshakes {
            target,
            secs,
            concurrency,
        } => runtime.block_on(handshakes(target, secs, concurrency)),
    }
}

fn certs(dir: &Path) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "wsbox load CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("signed");
    std::fs::create_dir_all(dir).expect("create the directory");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("ca.pem");
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("cert.pem");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("key.pem");
}

async fn idle(target: Target, connections: usize, rss_pid: u32, settle_secs: u64) {
    let client = Arc::new(Client::new(&target));
    // One connection first, so that the per-thread buffers and the warm instances exist
    // before the baseline.
    let warm = client.open().await.expect("first connection");
    tokio::time::sleep(Duration::from_secs(settle_secs)).await;
    let before = rss_kib(rss_pid);
    let mut open = Vec::with_capacity(connections);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..connections.div_ceil(100) {
        for _ in 0..100.min(connections - chunk * 100) {
            let client = client.clone();
            tasks.spawn(async move { client.open().await });
        }
        while let Some(result) = tasks.join_next().await {
            open.push(result.expect("task").expect("connection"));
        }
    }
    tokio::time::sleep(Duration::from_secs(settle_secs)).await;
    let after = rss_kib(rss_pid);
    let per = (after - before) as f64 * 1024.0 / connections as f64;
    println!(
        "{} idle connections: runner RSS {before} KiB -> {after} KiB, {per:.0} bytes each",
        open.len()
    );
    drop(open);
    drop(warm);
}

async fn handshakes(target: Target, secs: u64, concurrency: usize) {
    let client = Arc::new(Client::new(&target));
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let done = done.clone();
        tasks.spawn(async move {
            while Instant::now() < deadline {
                let mut ws = client.open().await.expect("connection");
                ws.send(Message::text("x")).await.expect("send");
                let echoed = ws.next().await.expect("an answer").expect("a message");
                assert_eq!(echoed, Message::text("x"));
                let _ = ws.close(None).await;
                while let Some(Ok(_)) = ws.next().await {}
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let started = Instant::now();
    while tasks.join_next().await.is_some() {}
    let n = done.load(Ordering::Relaxed);
    println!(
        "{n} handshakes (connect, upgrade, one echo, close) in {:.1} s: {:.0}/s",
        started.elapsed().as_secs_f64(),
        n as f64 / started.elapsed().as_secs_f64()
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the runner runs");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
