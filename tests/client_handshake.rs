//! What `wsbox::client` puts on the wire and how long it waits, seen from a raw socket
//! on 127.0.0.1 that records the request (and answers it with tungstenite where a real
//! server is needed).

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use wsbox::ClientError;

/// How long a test waits for anything that should happen promptly.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A listener that records the first request head of its first connection, then answers it
/// with tungstenite (so a correct request completes the handshake).
fn recording_server() -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    let (sender, heads) = mpsc::channel();
    thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            match (&stream).read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
        let _ = sender.send(String::from_utf8_lossy(&head).into_owned());
        // Hand tungstenite the head it has not seen: it reads the request itself.
        let replay = Replay {
            head: std::io::Cursor::new(head),
            stream,
        };
        if let Ok(mut websocket) = tungstenite::accept(replay) {
            let _ = websocket.close(None);
            let _ = websocket.flush();
        }
    });
    (addr, heads)
}

/// A stream whose first bytes are `head`, then the socket's.
struct Replay {
    head: std::io::Cursor<Vec<u8>>,
    stream: TcpStream,
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.head.read(buf)? {
            0 => self.stream.read(buf),
            n => Ok(n),
        }
    }
}

impl std::io::Write for Replay {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

#[test]
fn the_host_header_carries_no_userinfo() {
    let (addr, heads) = recording_server();
    let websocket = wsbox::client::connect(&format!("ws://user:secret@{addr}/chat?x=1"));
    let head = heads.recv_timeout(TIMEOUT).expect("a request");
    assert_eq!(header(&head, "host"), [addr.to_string()], "{head}");
    assert!(!head.contains("secret"), "{head}");
    assert!(head.starts_with("GET /chat?x=1 HTTP/1.1\r\n"), "{head}");
    websocket.expect("the handshake completes");
}

#[test]
fn subprotocols_that_are_not_tokens_are_refused_before_sending() {
    let uri: http::Uri = "ws://127.0.0.1/".parse().expect("uri");
    for bad in [
        "chat\r\nX-Injected: 1",
        "chat\n",
        "",
        "two words",
        "a,b",
        "quote\"d",
        "é",
    ] {
        let (addr, heads) = recording_server();
        let stream = TcpStream::connect(addr).expect("connect");
        let result = wsbox::client::handshake(stream, &uri, &["ok", bad], wsbox::Config::default());
        match result {
            Err(ClientError::InvalidProtocol(name)) => assert_eq!(name, bad),
            other => panic!("{bad:?}: expected InvalidProtocol, got {other:?}"),
        }
        // Nothing was sent: the recorder sees the connection end with an empty head.
        let head = heads
            .recv_timeout(TIMEOUT)
            .expect("the recorder saw the end");
        assert_eq!(head, "", "{bad:?}");
    }
    let (addr, heads) = recording_server();
    let stream = TcpStream::connect(addr).expect("connect");
    let good = ["chat", "v2.json-rpc", "x!#$%&'*+-.^_`|~9"];
    let result = wsbox::client::handshake(stream, &uri, &good, wsbox::Config::default());
    let head = heads.recv_timeout(TIMEOUT).expect("a request");
    assert_eq!(
        header(&head, "sec-websocket-protocol"),
        [good.join(", ")],
        "{head}"
    );
    // tungstenite chooses none of them, which is fine.
    result.expect("the handshake completes");
}

#[test]
fn connect_gives_up_on_a_server_that_never_answers() {
    // Accepts and reads, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    thread::spawn(move || {
        let held: Vec<TcpStream> = listener.incoming().take(1).flatten().collect();
        thread::sleep(Duration::from_secs(120));
        drop(held);
    });
    let (done, result) = mpsc::channel();
    let started = Instant::now();
    thread::spawn(move || {
        let _ = done.send(wsbox::client::connect(&format!("ws://{addr}/")).map(drop));
    });
    // The default handshake timeout is 10 s; allow a loaded machine plenty on top.
    let result = result
        .recv_timeout(Duration::from_secs(60))
        .expect("connect returns within a minute");
    match result {
        Err(ClientError::Io(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ),
            "{e:?}"
        ),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "gave up too early"
    );
}

#[test]
fn a_timeout_too_large_for_a_deadline_is_refused() {
    let (addr, _heads) = recording_server();
    let config = wsbox::client::ClientConfig::default().handshake_timeout(Duration::MAX);
    match wsbox::client::connect_with_config(&format!("ws://{addr}/"), &[], &config) {
        Err(ClientError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
        other => panic!("expected InvalidInput, got {:?}", other.map(drop)),
    }
}
