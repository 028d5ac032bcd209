//! The blocking server against clients that hold on to it, on 127.0.0.1: too many
//! connections, a request trickled a byte at a time, a WebSocket peer that never reads,
//! one that never speaks. Every client here is bounded in count and time.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use http::{Request, Response};
use wsbox::server::{Server, ServerConfig};

mod support;

/// How long a test waits for anything that should happen promptly.
const TIMEOUT: Duration = Duration::from_secs(10);

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream
}

/// Sends a GET on a fresh connection and returns the status line's code, or the error.
fn get_status(addr: SocketAddr) -> io::Result<String> {
    let mut stream = connect(addr);
    stream.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(answer.get(9..12).unwrap_or(&answer)).into_owned())
}

/// The status a fresh connection is answered with before it sends anything (a refused
/// connection is answered at once; writing first could race the server's close).
fn unprompted_status(addr: SocketAddr) -> String {
    let mut stream = connect(addr);
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("an answer and a close");
    String::from_utf8_lossy(answer.get(9..12).unwrap_or(&answer)).into_owned()
}

fn tungstenite_client(addr: SocketAddr) -> tungstenite::WebSocket<TcpStream> {
    let (websocket, _) =
        tungstenite::client(format!("ws://{addr}/"), connect(addr)).expect("tungstenite handshake");
    websocket
}

/// Retries `check` until it holds or `TIMEOUT` passes.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < TIMEOUT {
        if check() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn connections_beyond_the_limit_get_503_until_one_ends() {
    let (addr, accepted) = support::server(ServerConfig::default().max_connections(2), |_| None);
    // One upgraded connection and one that says nothing take both slots.
    let mut websocket = tungstenite_client(addr);
    let server_side = accepted.recv_timeout(TIMEOUT).expect("accepted");
    let idle = connect(addr);
    assert_eq!(unprompted_status(addr), "503");

    // The idle connection leaving frees a slot.
    drop(idle);
    assert!(eventually(|| get_status(addr).is_ok_and(|s| s == "200")));

    // A WebSocket holds its slot until the server side is dropped, not just until the
    // upgrade: with it and an idle connection open, a third still gets 503.
    let idle = connect(addr);
    assert_eq!(unprompted_status(addr), "503");
    drop(server_side);
    let _ = websocket.close(None);
    assert!(eventually(|| get_status(addr).is_ok_and(|s| s == "200")));
    drop(idle);
}

#[test]
fn limits_that_cannot_work_are_refused_at_bind() {
    let huge = Duration::MAX;
    for config in [
        ServerConfig::default().max_connections(0),
        ServerConfig::default().request_timeout(Duration::ZERO),
        // `Instant + Duration` would overflow (a panic) on the first connection.
        ServerConfig::default().request_timeout(huge),
        ServerConfig::default().write_timeout(huge),
        ServerConfig::default().idle_timeout(Some(huge)),
    ] {
        let error = Server::bind_with_config("127.0.0.1:0", config, |_: &Request<Vec<u8>>| {
            Response::new(Vec::new())
        })
        .err()
        .unwrap_or_else(|| panic!("{config:?} was accepted"));
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{config:?}");
    }
}

#[test]
fn a_trickled_request_is_cut_off_at_the_deadline() {
    // The default deadline is 10 s; a byte every 500 ms keeps any per-read timeout happy.
    let (addr, _) = support::server(ServerConfig::default(), |_| None);
    let mut stream = connect(addr);
    let request = b"GET / HTTP/1.1\r\nHost: a\r\nX-Padding: "
        .iter()
        .chain(&[b'x'; 100]);
    let started = Instant::now();
    for &byte in request {
        if stream.write_all(&[byte]).is_err() || started.elapsed() > Duration::from_secs(40) {
            break;
        }
        thread::sleep(Duration::from_millis(500));
    }
    let elapsed = started.elapsed();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "{elapsed:?}: {answer:?}"
    );
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}

#[test]
fn a_body_that_never_comes_is_cut_off_at_the_deadline() {
    let config = ServerConfig::default().request_timeout(Duration::from_secs(1));
    let (addr, _) = support::server(config, |_| None);
    let mut stream = connect(addr);
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab")
        .expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

#[test]
fn a_websocket_send_to_a_peer_that_never_reads_times_out() {
    // The default write timeout is 10 s.
    let (addr, accepted) = support::server(ServerConfig::default(), |_| None);
    let _client = tungstenite_client(addr);
    let mut websocket = accepted.recv_timeout(TIMEOUT).expect("accepted");
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let chunk = vec![0u8; 256 << 10];
        // Loopback buffers take a few MiB; the peer reads none of it.
        let outcome = (0..4096).find_map(|_| websocket.send_binary(&chunk).err());
        let dropped = Instant::now();
        drop(websocket);
        let _ = done.send((outcome.map(|e| e.to_string()), dropped.elapsed()));
    });
    let (outcome, drop_took) = result
        .recv_timeout(Duration::from_secs(90))
        .expect("the send gives up within the write timeout");
    assert!(outcome.is_some(), "1 GiB sent to a peer that reads nothing");
    assert!(drop_took < Duration::from_secs(5), "{drop_took:?}");
}

#[test]
fn an_idle_websocket_ends_after_the_idle_timeout() {
    let config = ServerConfig::default().idle_timeout(Some(Duration::from_secs(1)));
    let (addr, accepted) = support::server(config, |_| None);
    let _client = tungstenite_client(addr);
    let mut websocket = accepted.recv_timeout(TIMEOUT).expect("accepted");
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(websocket.recv().map_err(|e| e.kind()));
    });
    let outcome = result
        .recv_timeout(Duration::from_secs(30))
        .expect("recv returns after the idle timeout");
    assert!(
        matches!(
            outcome,
            Err(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
        ),
        "{outcome:?}"
    );
}
