//! What the cluster holds is bounded, through a real nats-server: publishes waiting for NATS
//! by bytes (`--cluster-queue-bytes`: past it they are dropped and counted), and the answers
//! a runner gives to node ids it never heard of (paced: a flood of made-up ids on NATS does
//! not make it announce all its counts once per id).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Runner;
use common::nats::{Nats, node_of, publish, subscriber, two_runners, wait_for_subscribers};
use common::scrape::{metrics_addr, scrape, scrape_until, value};

#[test]
fn publishes_past_the_queue_bytes_are_dropped_and_counted() {
    let nats = Nats::start();
    // 64 bytes: a subject (`wsbox.t.cQ`, 10) and a short message fit, 100 bytes do not.
    let (a, b) = two_runners(
        &nats,
        &["--metrics", "127.0.0.1:0", "--cluster-queue-bytes", "64"],
    );
    let metrics_a = metrics_addr(&a);
    let mut on_a = subscriber(&a, "q");
    let mut on_b = subscriber(&b, "q");
    let mut publisher = a.connect("/topics");
    wait_for_subscribers(&mut publisher, "q", 2);
    let dropped = |s: &_| value(s, "wsbox_cluster_publishes_dropped_total");
    let before = scrape(metrics_a);

    publish(&mut publisher, "pub q short");
    assert_eq!(on_a.text(), "short");
    assert_eq!(on_b.text(), "short");
    let long = "x".repeat(100);
    publish(&mut publisher, &format!("pub q {long}"));
    assert_eq!(on_a.text(), long, "local subscribers get it all the same");
    let after = scrape_until(metrics_a, |s| dropped(s) > dropped(&before));
    assert_eq!(dropped(&after), dropped(&before) + 1, "{after:?}");
    publish(&mut publisher, "pub q again");
    assert_eq!(on_a.text(), "again");
    assert_eq!(
        on_b.text(),
        "again",
        "the long one never crossed, the next one did"
    );
}

/// A NATS client speaking the protocol by hand, free to claim any node id; it does not hear
/// its own messages.
struct Raw(TcpStream);

impl Raw {
    fn connect(nats: &Nats) -> Raw {
        let address = nats.url().trim_start_matches("nats://").to_owned();
        let mut stream = TcpStream::connect(address).expect("nats-server");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        stream
            .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\n")
            .expect("CONNECT");
        Raw(stream)
    }

    fn send(&mut self, command: &[u8]) {
        self.0.write_all(command).expect("write to nats-server");
    }

    /// Everything nats-server sends within `time`, answering its PINGs.
    fn read_for(&mut self, time: Duration) -> String {
        let deadline = Instant::now() + time;
        let mut text = Vec::new();
        let mut buffer = [0; 65536];
        while Instant::now() < deadline {
            match self.0.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => text.extend_from_slice(&buffer[..n]),
                Err(_) => {}
            }
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        if text.contains("PING\r\n") {
            self.send(b"PONG\r\n");
        }
        text
    }
}

#[test]
fn made_up_node_ids_do_not_make_a_runner_announce_everything_each_time() {
    const FAKE: u32 = 200;
    let nats = Nats::start();
    let runner = Runner::with_test_handler(&["--cluster", &nats.url()]);
    let me = u32::from_str_radix(&node_of(&runner), 16).expect("hex");
    // A topic of its own, so that it has counts to announce.
    let _subscriber = subscriber(&runner, "room");
    let mut raw = Raw::connect(&nats);
    raw.send(b"SUB wsbox.counts 1\r\nSUB wsbox.hb 2\r\nPING\r\n");
    assert!(raw.read_for(Duration::from_millis(300)).contains("PONG"));
    // Let the runner's own first announcement of `room` pass.
    std::thread::sleep(Duration::from_millis(600));
    let _ = raw.read_for(Duration::from_millis(100));

    let started = Instant::now();
    for i in 0..FAKE {
        let node = 0x7000_0000 + i;
        assert_ne!(node, me);
        raw.send(b"PUB wsbox.hb 5\r\n");
        raw.send(&node.to_be_bytes());
        raw.send(b"\x00\r\n");
    }
    // Two heartbeats of the runner's: anything held back has gone by then.
    let heard = raw.read_for(Duration::from_millis(2500));
    let took = started.elapsed();
    let announcements = heard.matches("MSG wsbox.counts 1 ").count();
    let hellos = heard.matches("MSG wsbox.hb 2 ").count();
    eprintln!(
        "{FAKE} made-up nodes in {took:?}: {announcements} announcements, {hellos} heartbeats"
    );
    assert!(
        announcements >= 1,
        "the new nodes are told the counts: {heard:?}"
    );
    // One full answer per 500 ms, the rest waiting for a beat: a handful in 2.5 s, not 200.
    let most = usize::try_from(took.as_millis() / 500 + 2).expect("small");
    assert!(
        announcements <= most,
        "{announcements} announcements in {took:?}"
    );
    assert!(hellos <= most + 3, "{hellos} heartbeats in {took:?}");
    assert!(runner.log().matches("cluster node joined").count() >= FAKE as usize / 2);
}
