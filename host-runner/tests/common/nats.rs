//! A real nats-server (Debian's, installed by `ensure_nats_server` in scripts/setup.sh) on a
//! free loopback port, killed on drop, and what the cluster tests share.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Client, IO_TIMEOUT, Runner, log_field};

/// What nats-server prints once it accepts clients.
const READY: &str = "Server is ready";

pub struct Nats {
    child: Option<Child>,
    port: u16,
}

impl Nats {
    /// Starts nats-server on a port the kernel just handed out. Another process may take
    /// that port between the probe and nats-server's bind; then nats-server exits and a new
    /// port is tried.
    pub fn start() -> Nats {
        for _ in 0..5 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|probe| probe.local_addr())
                .expect("a free loopback port")
                .port();
            if let Some(child) = spawn(port) {
                return Nats {
                    child: Some(child),
                    port,
                };
            }
        }
        panic!("nats-server did not start on any of five free ports");
    }

    /// `nats://127.0.0.1:PORT`, for the runners' `--cluster`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: its clients see their connections drop, as in a crash)
    /// and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed server again on the same port, so that its clients can reconnect to
    /// the URL they know.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a killed server only");
        // nats-server binds with SO_REUSEADDR, so the old connections' TIME_WAIT does not
        // stand in the way; a retry covers a slow release of the port.
        let deadline = Instant::now() + IO_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = spawn(self.port) {
                self.child = Some(child);
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("nats-server did not start again on port {}", self.port);
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// nats-server on `port`, once it announced it is ready and accepts a TCP connection;
/// `None` if it exited first (the port was taken).
fn spawn(port: u16) -> Option<Child> {
    let program = if Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok()
    {
        "nats-server"
    } else {
        // Debian installs it in /usr/sbin, which a user's PATH may lack.
        "/usr/sbin/nats-server"
    };
    let mut child = Command::new(program)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "nats-server is installed (./test.sh runs ensure_nats_server from scripts/setup.sh)",
        );
    let stderr = child.stderr.take().expect("piped stderr");
    let (ready, announced) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[nats:{port}] {line}");
            if line.contains(READY) {
                let _ = ready.send(());
            }
        }
    });
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut is_ready = false;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return None;
        }
        is_ready = is_ready || announced.try_recv().is_ok();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if is_ready && TcpStream::connect_timeout(&addr, IO_TIMEOUT).is_ok() {
            return Some(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nats-server on port {port} was not ready within {IO_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (up to `limit`) for `runner`'s log to contain `needle` at least `times` times;
/// returns how many times it does.
pub fn wait_for_count(runner: &Runner, needle: &str, times: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let seen = runner.log().matches(needle).count();
        if seen >= times || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The node id (8 hex digits) that `runner` logged when it joined the cluster.
pub fn node_of(runner: &Runner) -> String {
    assert_eq!(
        wait_for_count(runner, "cluster connected", 1, IO_TIMEOUT),
        1,
        "{}",
        runner.log()
    );
    let log = runner.log();
    let line = log
        .lines()
        .find(|line| line.contains("cluster connected"))
        .expect("counted above");
    let node = log_field(line, "node").unwrap_or_else(|| panic!("no node= in {line:?}"));
    assert!(
        node.len() == 8 && node.bytes().all(|b| b.is_ascii_hexdigit()),
        "{line}"
    );
    node
}

/// Two runners serving the test handler in the cluster of `nats`, each with `extra` flags.
pub fn two_runners(nats: &Nats, extra: &[&str]) -> (Runner, Runner) {
    let url = nats.url();
    let start = || {
        let mut args = vec!["--cluster", url.as_str()];
        args.extend_from_slice(extra);
        Runner::with_test_handler(&args)
    };
    (start(), start())
}

/// Asks `client` (a `/topics` connection) `count TOPIC` until it answers `subscribers N`,
/// and returns how long that took; panics with the last answer after 10 s. (Other nodes'
/// counts arrive within ~250 ms while the link is up, and a node that is gone drops out
/// within 3 s.)
pub fn wait_for_subscribers(client: &mut Client, topic: &str, n: usize) -> Duration {
    let start = Instant::now();
    let expected = format!("subscribers {n}");
    loop {
        let answer = client.ask(&format!("count {topic}"));
        if answer == expected {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < IO_TIMEOUT,
            "count {topic} is still {answer:?} after {IO_TIMEOUT:?}, not {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A `/topics` client that its `handle` subscribed to `topic`.
pub fn subscriber(runner: &Runner, topic: &str) -> Client {
    runner.connect(&format!("/topics?sub={topic}"))
}

/// Asks `publisher` (a `/topics` client) to publish and checks it was done.
pub fn publish(publisher: &mut Client, command: &str) {
    let answer = publisher.ask(command);
    assert!(answer.starts_with("published "), "{command}: {answer}");
}
