//! Starts `wsbox-runner` as a process on 127.0.0.1:0 and talks to it; killed on drop.

#![allow(dead_code)] // each test file uses a different part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub mod browser;
pub mod nats;
mod raw;
pub mod scrape;
pub mod sdk_imports;
pub mod tls;
#[allow(unused_imports)] // as above: not every test file speaks raw frames
pub use raw::*;

/// Bounds every socket read in the tests.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Flags for a headless Chromium that talks to nothing but the test's own servers.
pub const HEADLESS_CHROMIUM: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

pub struct Runner {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Runner {
    /// Starts the runner with `args` (plus `--listen 127.0.0.1:0`) and waits for its address.
    pub fn start(args: &[&str]) -> Runner {
        Runner::start_under(&[], args)
    }

    /// [`Runner::start`], run by `wrapper` (a command and its arguments that then runs the
    /// runner, e.g. `prlimit --nofile=256:256`).
    pub fn start_under(wrapper: &[&str], args: &[&str]) -> Runner {
        let runner = env!("CARGO_BIN_EXE_wsbox-runner");
        let mut command = match wrapper {
            [] => Command::new(runner),
            [program, rest @ ..] => {
                let mut command = Command::new(program);
                command.args(rest).arg(runner);
                command
            }
        };
        // In memory unless a test passes --data-dir: tests run many runners at once, and a
        // store directory is one runner's at a time.
        let mut child = command
            .env("WSBOX_DATA_DIR", "memory")
            .args(["--listen", "127.0.0.1:0", "--log", "info"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wsbox-runner");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[runner] {line}");
                sink.lock().expect("log lock").push_str(&(line + "\n"));
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the runner's first line");
        let addr = line
            .trim()
            .strip_prefix("wsbox-runner listening on http://")
            .or_else(|| {
                line.trim()
                    .strip_prefix("wsbox-runner listening on https://")
            })
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("a socket address");
        Runner { child, addr, log }
    }

    /// Starts the runner serving the test handler guest.
    pub fn with_test_handler(args: &[&str]) -> Runner {
        let wasm = test_handler();
        let mut all = vec!["--handler", wasm.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        Runner::start(&all)
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// A tungstenite client connected to `path`.
    pub fn connect(&self, path: &str) -> Client {
        self.connect_with(path, &[])
    }

    /// A tungstenite client offering `protocols`, with the 101 response.
    /// Connects with the library's client offering permessage-deflate as `deflate` says;
    /// returns the socket and the `Sec-WebSocket-Extensions` the runner answered.
    pub fn connect_deflate(
        &self,
        path: &str,
        deflate: wsbox::deflate::Deflate,
    ) -> (wsbox::Websocket<TcpStream>, String) {
        let session = wsbox::Config::default().deflate(Some(deflate));
        let config = wsbox::client::ClientConfig::default().session(session);
        let (client, response) =
            wsbox::client::connect_with_config(&self.url(path), &[], &config).expect("connects");
        let agreed = response
            .headers()
            .get("sec-websocket-extensions")
            .map(|v| v.to_str().expect("ASCII").to_owned())
            .unwrap_or_default();
        (client, agreed)
    }

    pub fn connect_with(&self, path: &str, protocols: &[&str]) -> Client {
        let mut request =
            tungstenite::client::IntoClientRequest::into_client_request(self.url(path))
                .expect("request");
        if !protocols.is_empty() {
            request.headers_mut().insert(
                "sec-websocket-protocol",
                protocols.join(", ").parse().expect("header value"),
            );
        }
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let (socket, response) = tungstenite::client(request, MaybeTlsStream::Plain(stream))
            .expect("websocket handshake");
        Client {
            socket,
            protocol: response
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().expect("ascii").to_owned()),
        }
    }

    /// Sends raw bytes and returns everything the runner sends back until it closes (or
    /// the timeout).
    pub fn raw(&self, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.write_all(request).expect("write request");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    }

    /// Sends an upgrade request for `path` offering `protocols` and returns the response
    /// head (lowercased), leaving the connection open until it is dropped.
    pub fn upgrade_head(&self, path: &str, protocols: &[&str]) -> (String, TcpStream) {
        let stream = TcpStream::connect(self.addr).expect("connect");
        self.upgrade_head_on(stream, path, protocols)
    }

    /// [`Runner::upgrade_head`] on a connected `stream`.
    pub fn upgrade_head_on(
        &self,
        mut stream: TcpStream,
        path: &str,
        protocols: &[&str],
    ) -> (String, TcpStream) {
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
            self.addr
        );
        for protocol in protocols {
            request.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
        }
        request.push_str("\r\n");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.write_all(request.as_bytes()).expect("write request");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
        (String::from_utf8_lossy(&head).to_ascii_lowercase(), stream)
    }

    /// A TCP connection to the runner from the local address `from` (any 127.x.y.z works
    /// on Linux loopback), to stand for a second client machine.
    pub fn tcp_from(&self, from: IpAddr) -> TcpStream {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(self.addr),
            socket2::Type::STREAM,
            None,
        )
        .expect("socket");
        socket
            .bind(&SocketAddr::new(from, 0).into())
            .expect("bind the client address");
        socket.connect(&self.addr.into()).expect("connect");
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream
    }

    /// A tungstenite client on `stream`, upgraded at `path` with the extra `headers`.
    pub fn connect_on(&self, stream: TcpStream, path: &str, headers: &[(&str, &str)]) -> Client {
        let mut request =
            tungstenite::client::IntoClientRequest::into_client_request(self.url(path))
                .expect("request");
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                value.parse().expect("header value"),
            );
        }
        let (socket, _) = tungstenite::client(request, MaybeTlsStream::Plain(stream))
            .expect("websocket handshake");
        Client {
            socket,
            protocol: None,
        }
    }

    /// The status line of a `GET path` on a fresh connection (`Connection: close`).
    pub fn status_of_get(&self, path: &str) -> String {
        let response = self.raw(
            format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.addr
            )
            .as_bytes(),
        );
        response.lines().next().unwrap_or("").to_owned()
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// The log lines about the connection whose client is at `peer`, in order.
    /// (The runner tags a connection's lines with `peer=` or with the `id=` its
    /// "websocket open" line pairs with that peer.)
    pub fn lines_of(&self, peer: SocketAddr) -> Vec<String> {
        let log = self.log();
        let id = log
            .lines()
            .find(|line| line.contains("websocket open") && is_about(line, peer))
            .and_then(|line| log_field(line, "id"));
        log.lines()
            .filter(|line| {
                is_about(line, peer)
                    || id
                        .as_ref()
                        .is_some_and(|id| log_field(line, "id").as_ref() == Some(id))
            })
            .map(str::to_owned)
            .collect()
    }

    /// Waits up to 10 s for a log line about `peer`'s connection that contains `needle`;
    /// panics with that connection's lines if none comes.
    pub fn wait_for_line(&self, peer: SocketAddr, needle: &str) -> String {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let lines = self.lines_of(peer);
            if let Some(line) = lines.iter().find(|line| line.contains(needle)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} for {peer}:\n{}",
                lines.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the guest's `on-close` line about `peer` and returns what follows
    /// `on-close ` (`CODE CLEAN REASON`).
    pub fn on_close_of(&self, peer: SocketAddr) -> String {
        let line = self.wait_for_line(peer, "on-close ");
        let (_, rest) = line.split_once("on-close ").expect("the needle");
        // tracing puts the fields after the message.
        rest.split(" peer=")
            .next()
            .unwrap_or(rest)
            .trim_end()
            .to_owned()
    }

    /// Waits up to 5 s for the log to contain `needle`.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the process to exit, and returns its status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Client {
    pub socket: WebSocket<MaybeTlsStream<TcpStream>>,
    pub protocol: Option<String>,
}

impl Client {
    pub fn send(&mut self, message: Message) {
        self.socket.send(message).expect("send");
    }

    /// The next data, ping or pong message, or the close frame's code (None if the
    /// connection ended without one).
    pub fn next(&mut self) -> Result<Message, Option<CloseCode>> {
        loop {
            match self.socket.read() {
                Ok(Message::Close(frame)) => return Err(frame.map(|f| f.code)),
                Ok(Message::Frame(_)) => continue,
                Ok(message) => return Ok(message),
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Err(None);
                }
                Err(error) => panic!("websocket read failed: {error}"),
            }
        }
    }

    /// Sends a text message and expects it back.
    pub fn echo(&mut self, text: &str) {
        self.send(Message::text(text));
        assert_eq!(self.next(), Ok(Message::text(text)));
    }

    /// The client's own address: the `peer` the runner logs for this connection.
    pub fn local_addr(&self) -> SocketAddr {
        match self.socket.get_ref() {
            MaybeTlsStream::Plain(stream) => stream.local_addr().expect("local address"),
            _ => unreachable!("the tests connect without TLS"),
        }
    }

    /// The next message, which must be text.
    pub fn text(&mut self) -> String {
        match self.next() {
            Ok(Message::Text(text)) => text.as_str().to_owned(),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// Sends a text command to the test handler and returns its text answer.
    pub fn ask(&mut self, command: &str) -> String {
        self.send(Message::text(command));
        self.text()
    }

    /// The next message (as [`Client::next`]) if one arrives within `wait`.
    pub fn within(&mut self, wait: Duration) -> Option<Result<Message, Option<CloseCode>>> {
        self.set_read_timeout(wait);
        let result = loop {
            match self.socket.read() {
                Ok(Message::Close(frame)) => break Some(Err(frame.map(|f| f.code))),
                Ok(Message::Frame(_)) => continue,
                Ok(message) => break Some(Ok(message)),
                Err(tungstenite::Error::Io(error))
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break None;
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    break Some(Err(None));
                }
                Err(error) => panic!("websocket read failed: {error}"),
            }
        };
        self.set_read_timeout(IO_TIMEOUT);
        result
    }

    fn set_read_timeout(&mut self, wait: Duration) {
        if let MaybeTlsStream::Plain(stream) = self.socket.get_mut() {
            stream.set_read_timeout(Some(wait)).expect("timeout");
        }
    }

    /// Starts the close handshake with `code` and `reason`.
    pub fn close(&mut self, code: u16, reason: &str) {
        self.socket
            .close(Some(tungstenite::protocol::CloseFrame {
                code: CloseCode::from(code),
                reason: reason.to_owned().into(),
            }))
            .expect("send the close frame");
    }

    /// Reads until the peer's close frame, answers it, and returns its code.
    pub fn expect_close(&mut self) -> Option<CloseCode> {
        loop {
            match self.next() {
                Ok(_) => continue,
                Err(code) => {
                    // tungstenite queues its answer to a close frame; this writes it.
                    let _ = self.socket.flush();
                    return code;
                }
            }
        }
    }
}

/// Reads one HTTP response (head and a `content-length` body) from `stream`, leaving the
/// connection open.
pub fn read_response(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => panic!("the response head ended early: {head:?}"),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("read the body");
    head + &String::from_utf8_lossy(&body)
}

/// The value of the field `name=` in a log line (quotes removed; values with spaces are
/// cut at the first).
pub fn log_field(line: &str, name: &str) -> Option<String> {
    let field = format!(" {name}=");
    let start = line.find(&field)? + field.len();
    let value = line[start..].split(' ').next()?;
    Some(value.trim_matches('"').to_owned())
}

/// Closes `client` (1000 "bye"), waits for the runner's close line and returns its `wakes`:
/// how often the guest was woken from hibernation for that connection.
pub fn close_and_count_wakes(runner: &Runner, mut client: Client) -> u64 {
    let peer = client.local_addr();
    client.close(1000, "bye");
    let _ = client.expect_close();
    let line = runner.wait_for_line(peer, "websocket closed");
    log_field(&line, "wakes")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wakes=N in {line:?}"))
}

/// Whether a log line carries the field `peer=PEER` for exactly this address.
fn is_about(line: &str, peer: SocketAddr) -> bool {
    let field = format!("peer={peer}");
    line.match_indices(&field)
        .any(|(at, _)| !line[at + field.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

/// Runs the runner with `args` and expects it to refuse them: exit status 2 within 10 s,
/// without listening. Returns its stderr.
pub fn refused_flags(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsbox-runner"))
        .env("WSBOX_DATA_DIR", "memory")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wsbox-runner");
    let deadline = Instant::now() + IO_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let output = child.wait_with_output().expect("runner output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(2),
        "{args:?} should be refused with status 2\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.is_empty(), "{args:?}: the runner started: {stdout}");
    stderr
}

/// The guest crate `package` (e.g. `guest-echo`), built for wasm32-wasip2 once per test
/// process.
pub fn guest(package: &'static str) -> PathBuf {
    static BUILT: Mutex<Vec<(&str, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, wasm)) = built.iter().find(|(name, _)| *name == package) {
        return wasm.clone();
    }
    let wasm = wasm_build::build_component(package, &package.replace('-', "_"), &[]);
    built.push((package, wasm.clone()));
    wasm
}

/// guests/test-handler, built for wasm32-wasip2 once per test process.
pub fn test_handler() -> PathBuf {
    guest("guest-test-handler")
}

/// A process's resident set, from /proc.
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .expect("a VmRSS line")
}

impl Runner {
    /// A socket to the runner with a 4 KiB receive buffer: a client that does not read
    /// stops the runner's writes after a few KiB, so the kernel does not hide what the
    /// runner queues for it.
    pub fn slow_socket(&self) -> TcpStream {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        socket.connect(&self.addr.into()).expect("connect");
        socket.into()
    }
}

/// Builds guests/`name` with scripts/build-guest.sh: the component's path.
pub fn build_guest(name: &str) -> PathBuf {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let output = std::process::Command::new("scripts/build-guest.sh")
        .arg(name)
        .current_dir(root)
        .output()
        .expect("run scripts/build-guest.sh");
    assert!(
        output.status.success(),
        "build-guest {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    PathBuf::from(stdout.lines().last().expect("the component's path"))
}
