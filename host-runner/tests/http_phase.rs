//! The HTTP phase is bounded: a client that stalls in it loses its connection within
//! `--handshake-timeout`, and one address cannot hold more than its share of the server.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use common::Runner;

/// The bound the tests set, and how long past it a drop may take on a loaded machine.
const TIMEOUT: &str = "1s";
const SLACK: Duration = Duration::from_secs(4);

/// Waits until a new connection is served (200) again: the stalled one gave its place back.
fn place_is_freed(runner: &Runner, since: Instant) -> Duration {
    loop {
        let status = runner.status_of_get("/");
        if status.starts_with("HTTP/1.1 200") {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(1) + SLACK,
            "the stalled connection still holds the only place: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_stalled_request_body_is_dropped_within_the_timeout() {
    let runner = Runner::start(&["--handshake-timeout", TIMEOUT, "--max-connections", "1"]);
    let mut stream = TcpStream::connect(runner.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(1) + SLACK))
        .expect("timeout");
    let started = Instant::now();
    // The head arrives at once (hyper's header timer is satisfied); the body never does.
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n\r\n")
        .expect("write the head");
    let mut buf = [0u8; 1024];
    let ended = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(error) if error.kind() == ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    let elapsed = started.elapsed();
    assert!(ended, "still open after {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "dropped too early: {elapsed:?}"
    );
    place_is_freed(&runner, started);
}

#[test]
fn a_pipeliner_that_never_reads_is_dropped_within_the_timeout() {
    let runner = Runner::start(&["--handshake-timeout", TIMEOUT, "--max-connections", "1"]);
    // A small receive window, so that the runner's answers fill the path quickly.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(&runner.addr.into()).expect("connect");
    let mut stream: TcpStream = socket.into();
    stream.set_nonblocking(true).expect("nonblocking");
    let started = Instant::now();
    let batch = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(2000);
    let mut stalled_since: Option<Instant> = None;
    let mut written = 0usize;
    // Writes requests until the runner stops taking them (its answers have nowhere to go),
    // or drops the connection; bounded in bytes and time.
    while written < 256 << 20 && started.elapsed() < Duration::from_secs(20) {
        match stream.write(batch.as_bytes()) {
            Ok(n) => {
                written += n;
                stalled_since = None;
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(500) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => break,
        }
    }
    let freed = place_is_freed(&runner, started);
    // Reading now finds the end of the stream, not more answers.
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut sink = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(error) if error.kind() == ErrorKind::ConnectionReset => break,
            Err(error) => panic!("the pipelining connection is still open: {error}"),
        }
    }
    eprintln!("wrote {written} bytes of requests; place freed after {freed:?}");
}

#[test]
fn one_address_cannot_take_every_place() {
    let runner = Runner::start(&["--max-connections-per-address", "2"]);
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut first = runner.connect_on(runner.tcp_from(loopback), "/", &[]);
    let mut second = runner.connect_on(runner.tcp_from(loopback), "/", &[]);
    // A third from the same address is refused before reaching a guest ...
    let mut third = runner.tcp_from(loopback);
    third
        .write_all(format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", runner.addr).as_bytes())
        .expect("write");
    let mut response = String::new();
    let _ = third.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    let log = runner.wait_for_log("--max-connections-per-address");
    assert!(log.contains("127.0.0.1"), "{log}");
    // ... while another address still gets in, and the first two are still served.
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut elsewhere = runner.connect_on(runner.tcp_from(other), "/", &[]);
    elsewhere.echo("from 127.0.0.2");
    first.echo("first");
    second.echo("second");
    // A place given back is given to the same address again.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut stream = runner.tcp_from(loopback);
        stream
            .write_all(
                format!(
                    "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    runner.addr
                )
                .as_bytes(),
            )
            .expect("write");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        if response.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "place not freed: {response}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn by_default_many_connections_from_loopback_are_served() {
    let runner = Runner::start(&[]);
    let mut clients: Vec<_> = (0..80).map(|_| runner.connect("/")).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.echo(&format!("client {i}"));
    }
}
