//! The soak benchmark: many connections to a runner serving guests/test-handler, for a
//! while, mixing echo, publish and idle pauses long enough to hibernate, and optionally a
//! reload half-way; prints what was sent, received, lost, duplicated and corrupted, the
//! reconnects, and the runner's RSS. See `soak_load` for what is checked.
//!
//! ```sh
//! cargo build --release -p wsbox-runner --example soak
//! target/release/wsbox-runner --handler target/wasm/wasm32-wasip2/guest/guest_test_handler.wasm \
//!     --listen 127.0.0.1:8080 --max-connections-per-address 0 &
//! target/release/examples/soak --connections 10000 --secs 600 --reload-pid $! --rss-pid $!
//! ```
//! It exits with status 1 unless the run was clean.

mod soak_load;

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The runner's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// How long the load runs, after every connection is open.
    #[arg(long, default_value_t = 600)]
    secs: u64,
    /// Pauses between bursts are random up to twice this: above the runner's
    /// --hibernate-after (default 10 s), most pauses hibernate the connection.
    #[arg(long, default_value_t = 8.0)]
    max_idle_secs: f64,
    /// Connections per publish group (one publisher, the rest subscribers).
    #[arg(long, default_value_t = 10)]
    group_size: usize,
    /// Sends this process SIGHUP half-way (the runner's pid: a reload mid-run).
    #[arg(long)]
    reload_pid: Option<u32>,
    /// Samples this process's RSS throughout (the runner's pid).
    #[arg(long)]
    rss_pid: Option<u32>,
}

fn main() {
    let args = Args::parse();
    raise_open_files_limit();
    let config = soak_load::Config {
        addr: args.addr,
        connections: args.connections,
        duration: Duration::from_secs(args.secs),
        max_idle: Duration::from_secs_f64(args.max_idle_secs),
        group_size: args.group_size,
        reload_pid: args.reload_pid,
        rss_pid: args.rss_pid,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let report = runtime.block_on(soak_load::run(config));
    println!(
        "connections={} sent={} received={} published={} lost={} duplicated={} corrupted={} \
         wrong_answers={} reconnects={} open_at_end={}",
        args.connections,
        report.sent,
        report.received,
        report.published,
        report.lost,
        report.duplicated,
        report.corrupted,
        report.wrong_answers,
        report.reconnects,
        report.open_at_end,
    );
    if !report.rss_kib.is_empty() {
        let samples: Vec<String> = report.rss_kib.iter().map(u64::to_string).collect();
        println!("rss_kib={}", samples.join(","));
    }
    if !report.clean(args.connections) {
        std::process::exit(1);
    }
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
