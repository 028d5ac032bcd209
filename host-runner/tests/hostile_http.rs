//! Clients that hold HTTP connections open without doing anything cannot take what others
//! need: an idle keep-alive connection holds no guest instance, and idle connections to
//! `--metrics` cannot take the descriptors sized for `--max-connections`. Each test failed
//! before its fix.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Runner, read_response};

#[test]
fn idle_keep_alive_connections_hold_no_instance() {
    const IDLE: usize = 1_000;
    /// The bound issue 19 sets on an upgrade's 101 next to the idle connections.
    const UPGRADE_BOUND: Duration = Duration::from_millis(50);
    // An instance pool far smaller than the idle connections (100 + 64 spare slots).
    let runner = Runner::with_test_handler(&[
        "--max-instances",
        "100",
        "--max-connections-per-address",
        "0",
    ]);
    let mut idle = Vec::with_capacity(IDLE);
    for n in 0..IDLE {
        let mut stream = TcpStream::connect(runner.addr).expect("connect");
        stream
            .write_all(b"GET /whoami HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .expect("request");
        let response = read_response(&mut stream);
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "request {n}: {response}"
        );
        idle.push(stream);
    }
    // They stay open, idle; an upgrade from another address gets its 101 at once (the
    // median of five, so that one scheduling hiccup of a loaded machine does not decide).
    let mut took: Vec<Duration> = (0..5)
        .map(|_| {
            let stream = runner.tcp_from("127.0.0.2".parse().expect("address"));
            let started = Instant::now();
            let (head, _stream) = runner.upgrade_head_on(stream, "/none", &[]);
            let took = started.elapsed();
            assert!(head.starts_with("http/1.1 101"), "{head}");
            took
        })
        .collect();
    took.sort();
    eprintln!("101 next to {IDLE} idle keep-alive connections: {took:?}");
    assert!(took[2] < UPGRADE_BOUND, "the upgrades took {took:?}");
    let mut client = runner.connect("/none");
    client.echo("still served");
    // And a kept connection's next request is served, by a fresh instance, as the same
    // connection (its id).
    let stream = &mut idle[0];
    stream
        .write_all(b"GET /whoami HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .expect("request");
    let first = read_response(stream);
    stream
        .write_all(b"GET /whoami HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .expect("request");
    let second = read_response(stream);
    let id = |response: &str| response.rsplit("\r\n\r\n").next().map(str::to_owned);
    assert_eq!(id(&first), id(&second), "one connection, one id");
}

#[test]
fn idle_metrics_connections_cannot_take_the_descriptors() {
    // Few descriptors, as a small server has: the runner raises the limit only as far as
    // --max-connections needs.
    let runner = Runner::start_under(
        &["prlimit", "--nofile=256:256"],
        &["--metrics", "127.0.0.1:0", "--max-connections", "64"],
    );
    let metrics = common::scrape::metrics_addr(&runner);
    // More idle connections than the process has descriptors.
    let idle: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(metrics).ok())
        .collect();
    assert!(idle.len() >= 250, "only {} connected", idle.len());
    std::thread::sleep(Duration::from_millis(300));
    // The main listener still accepts, and upgrades.
    let mut client = runner.connect("/");
    client.echo("still served");
}
