//! `--tls-cert` / `--tls-key`: the runner serves `https` and `wss` (rustls), checked with
//! tungstenite over a rustls client that trusts only the test's own CA (rcgen).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::tls::{Certs, TlsStream};
use common::{IO_TIMEOUT, Runner};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

fn start(certs: &Certs, handler: bool, extra: &[&str]) -> Runner {
    let flags = certs.flags();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    if handler {
        Runner::with_test_handler(&args)
    } else {
        Runner::start(&args)
    }
}

/// The next data or control message (close frames and connection ends panic).
fn next(socket: &mut WebSocket<TlsStream>) -> Message {
    loop {
        match socket.read().expect("read a message") {
            Message::Frame(_) => continue,
            message => return message,
        }
    }
}

fn text(socket: &mut WebSocket<TlsStream>) -> String {
    match next(socket) {
        Message::Text(text) => text.as_str().to_owned(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn ask(socket: &mut WebSocket<TlsStream>, command: &str) -> String {
    socket.send(Message::text(command)).expect("send");
    text(socket)
}

#[test]
fn echoes_over_wss_with_alpn_http11() {
    let certs = Certs::new("echo");
    let runner = start(&certs, false, &[]);
    let mut socket = certs.wss(runner.addr, "/");
    assert_eq!(
        socket.get_ref().conn.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "the runner offers http/1.1 by ALPN"
    );
    for message in ["hello over tls", "", "ünïcödé ✓"] {
        socket.send(Message::text(message)).expect("send");
        assert_eq!(text(&mut socket), message);
    }
    // Larger than a TLS record (16 KiB) and than the runner's 64 KiB reads: many records
    // each way, opened across reads.
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    socket.send(Message::binary(blob.clone())).expect("send");
    assert_eq!(next(&mut socket), Message::binary(blob));
    socket
        .send(Message::Ping(b"there?".to_vec().into()))
        .expect("ping");
    assert_eq!(next(&mut socket), Message::Pong(b"there?".to_vec().into()));

    socket
        .close(Some(CloseFrame {
            code: CloseCode::from(4321),
            reason: "bye".into(),
        }))
        .expect("close");
    let code = loop {
        match socket.read() {
            Ok(Message::Close(frame)) => break frame.map(|f| f.code),
            Ok(_) => continue,
            Err(error) => panic!("no close frame back: {error}"),
        }
    };
    assert_eq!(code, Some(CloseCode::from(4321)));
    let _ = socket.flush();
    let log = runner.wait_for_log("close_code=4321");
    assert!(log.contains("end=\"closed\""), "{log}");
}

/// Many messages sent before any is read: the runner's replies queue (sealed) behind a
/// client that does not read, and all come back in order.
#[test]
fn pipelined_messages_come_back_in_order() {
    let certs = Certs::new("pipeline");
    let runner = start(&certs, false, &[]);
    let mut socket = certs.wss(runner.addr, "/");
    let count = 2_000;
    let payload = "x".repeat(900);
    for i in 0..count {
        socket
            .write(Message::text(format!("{i} {payload}")))
            .expect("queue");
    }
    socket.flush().expect("flush");
    for i in 0..count {
        let echoed = text(&mut socket);
        assert!(
            echoed.starts_with(&format!("{i} ")),
            "message {i}: {echoed:.20}"
        );
    }
}

/// Frames the guest sent in `handle` and in `on-open` (written once the socket is
/// attached) arrive first, in order.
#[test]
fn frames_sent_before_the_upgrade_completes_arrive_first() {
    let certs = Certs::new("early");
    let runner = start(&certs, true, &[]);
    let mut socket = certs.wss(runner.addr, "/request?x=1");
    assert_eq!(text(&mut socket), "from handle");
    let described = text(&mut socket);
    assert!(described.contains("/request"), "{described}");
}

/// A publish is written to every TLS subscriber, each sealed with its own keys, in order.
#[test]
fn publishes_reach_every_tls_subscriber_in_order() {
    let certs = Certs::new("publish");
    let runner = start(&certs, true, &[]);
    let mut subscribers: Vec<_> = (0..4)
        .map(|_| {
            let mut socket = certs.wss(runner.addr, "/topics");
            assert_eq!(ask(&mut socket, "sub news"), "subscribed");
            socket
        })
        .collect();
    let mut publisher = certs.wss(runner.addr, "/topics");
    for i in 0..100 {
        assert_eq!(
            ask(&mut publisher, &format!("pub news item {i}")),
            "published 4"
        );
    }
    for (n, subscriber) in subscribers.iter_mut().enumerate() {
        for i in 0..100 {
            assert_eq!(text(subscriber), format!("item {i}"), "subscriber {n}");
        }
    }
}

/// Subscribers that subscribe in `handle` while a publisher keeps publishing: what is
/// delivered between the 101 and the socket's attachment waits in plaintext and is sealed
/// at attachment, so every subscriber reads whole, ordered messages from its first on.
#[test]
fn publishes_during_the_upgrade_are_sealed_at_attachment() {
    let certs = Certs::new("attach");
    let runner = start(&certs, true, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let mut socket = certs.wss(runner.addr, "/topics");
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let answer = ask(&mut socket, &format!("pub news {i}"));
                assert!(answer.starts_with("published"), "{answer}");
                i += 1;
            }
            i
        })
    };
    for _ in 0..60 {
        let mut subscriber = certs.wss(runner.addr, "/topics?sub=news");
        let first: u64 = text(&mut subscriber).parse().expect("a number");
        for expected in first + 1..first + 5 {
            assert_eq!(text(&mut subscriber), expected.to_string());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let published = publisher.join().expect("publisher");
    assert!(published > 60, "only {published} publishes");
}

/// Sends `request` over TLS and reads the whole response (the runner closes after it).
fn https(certs: &Certs, runner: &Runner, request: &str) -> String {
    let mut stream = certs.connect(runner.addr);
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = Vec::new();
    // A TCP end without TLS close_notify is an error to rustls; the bytes read still count.
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn serves_the_demo_page_over_https() {
    let certs = Certs::new("page");
    let runner = start(&certs, false, &[]);
    let response = https(
        &certs,
        &runner,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("text/html"), "{response}");
    // The page connects back with wss when it was loaded over https.
    assert!(
        response.contains(r#"location.protocol === "https:""#),
        "{response}"
    );
}

/// SIGHUP reads the certificate files again: new handshakes get the new certificate, an
/// open connection goes on, and files that do not load leave the current one serving.
#[test]
fn sighup_reloads_the_certificate() {
    let first = Certs::new("reload-first");
    let second = Certs::new("reload-second");
    let runner = start(&first, false, &[]);
    let mut open = first.wss(runner.addr, "/");
    let sighup = || {
        let pid = i32::try_from(runner.pid()).expect("pid");
        // SAFETY: kill(2) with a valid signal number has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    };

    std::fs::write(&first.cert, &second.cert_pem).expect("renew cert.pem");
    std::fs::write(&first.key, &second.key_pem).expect("renew key.pem");
    sighup();
    let log = runner.wait_for_log("certificate reloaded");
    assert!(log.contains("certificate reloaded"), "{log}");
    let mut renewed = second.wss(runner.addr, "/");
    renewed.send(Message::text("renewed")).expect("send");
    assert_eq!(text(&mut renewed), "renewed");
    assert!(
        first.try_connect(runner.addr).is_err(),
        "the old certificate is still served"
    );
    open.send(Message::text("still open")).expect("send");
    assert_eq!(text(&mut open), "still open");

    std::fs::write(&first.key, "not a key\n").expect("break key.pem");
    sighup();
    let log = runner.wait_for_log("certificate reload refused");
    assert!(log.contains("certificate reload refused"), "{log}");
    let mut after = second.wss(runner.addr, "/");
    after.send(Message::text("kept")).expect("send");
    assert_eq!(text(&mut after), "kept");
}

/// A client that offers only HTTP/2 by ALPN is refused in the handshake: the runner speaks
/// HTTP/1.1 only.
#[test]
fn alpn_without_http11_is_refused() {
    let certs = Certs::new("alpn");
    let runner = start(&certs, false, &[]);
    let mut config = (*certs.client).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let mut tcp = TcpStream::connect(runner.addr).expect("connect");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut connection =
        tokio_rustls::rustls::ClientConnection::new(config.into(), name).expect("conn");
    let error = loop {
        match connection.complete_io(&mut tcp) {
            Ok(_) if connection.is_handshaking() => continue,
            Ok(_) => panic!("the handshake completed without a common protocol"),
            Err(error) => break error,
        }
    };
    assert!(
        error.to_string().contains("NoApplicationProtocol"),
        "{error}"
    );
}

/// A client that trusts another CA refuses the runner's certificate, and the runner goes
/// on serving the others.
#[test]
fn clients_check_the_certificate_chain() {
    let certs = Certs::new("chain");
    let stranger = Certs::new("stranger");
    let runner = start(&certs, false, &[]);
    let mut tcp = TcpStream::connect(runner.addr).expect("connect");
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut connection =
        tokio_rustls::rustls::ClientConnection::new(stranger.client.clone(), name).expect("conn");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let refused = loop {
        match connection.complete_io(&mut tcp) {
            Ok(_) if connection.is_handshaking() => continue,
            Ok(_) => break None,
            Err(error) => break Some(error),
        }
    };
    let error = refused.expect("a certificate from an unknown CA is refused");
    // Both CAs have the same name: the stranger's key does not verify the signature.
    assert!(
        error.to_string().contains("invalid peer certificate"),
        "{error}"
    );
    let mut socket = certs.wss(runner.addr, "/");
    socket.send(Message::text("still here")).expect("send");
    assert_eq!(text(&mut socket), "still here");
}

/// Plain HTTP (or a plain WebSocket upgrade) sent to the TLS port: the client gets no
/// HTTP answer and its connection ends promptly; a WebSocket open meanwhile goes on.
#[test]
fn plain_http_on_the_tls_port_fails_cleanly() {
    let certs = Certs::new("plain");
    let runner = start(&certs, false, &[]);
    let mut open = certs.wss(runner.addr, "/");
    open.send(Message::text("before")).expect("send");
    assert_eq!(text(&mut open), "before");

    for request in [
        "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
        format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            runner.addr
        ),
    ] {
        let mut tcp = TcpStream::connect(runner.addr).expect("connect");
        tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let started = Instant::now();
        tcp.write_all(request.as_bytes()).expect("send");
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the connection ended after {:?}",
            started.elapsed()
        );
        assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    }
    open.send(Message::text("after")).expect("send");
    assert_eq!(text(&mut open), "after");
    let mut fresh = certs.wss(runner.addr, "/");
    fresh.send(Message::text("fresh")).expect("send");
    assert_eq!(text(&mut fresh), "fresh");
}

/// A client that connects and never starts the TLS handshake is dropped at
/// `--handshake-timeout`, like a slow HTTP client.
#[test]
fn a_silent_client_is_dropped_at_the_handshake_timeout() {
    let certs = Certs::new("silent");
    let runner = start(&certs, false, &["--handshake-timeout", "1s"]);
    let mut tcp = TcpStream::connect(runner.addr).expect("connect");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let started = Instant::now();
    let mut sink = [0u8; 64];
    let read = tcp.read(&mut sink);
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "expected the connection to end, got {read:?}"
    );
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "dropped after {waited:?}"
    );
}

#[test]
fn bad_certificate_or_key_files_are_refused_at_start() {
    let certs = Certs::new("bad");
    let other = Certs::new("bad-other");
    let dir = std::env::temp_dir().join(format!("wsbox-tls-{}-garbage", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a pem file\n").expect("write");
    let missing = dir.join("missing.pem");
    let cert = certs.cert.display().to_string();
    let key = certs.key.display().to_string();
    let garbage = garbage.display().to_string();
    let missing = missing.display().to_string();
    let other_key = other.key.display().to_string();

    let cases: [(&[&str], &str); 6] = [
        (&["--tls-cert", &missing, "--tls-key", &key], &missing),
        (
            &["--tls-cert", &garbage, "--tls-key", &key],
            "no CERTIFICATE",
        ),
        (&["--tls-cert", &cert, "--tls-key", &garbage], &garbage),
        // A certificate as the key: the file has no private key.
        (&["--tls-cert", &cert, "--tls-key", &cert], "--tls-key"),
        (
            &["--tls-cert", &cert, "--tls-key", &other_key],
            "is not the key of the certificate",
        ),
        (&["--tls-cert", &cert], "--tls-key"),
    ];
    for (args, expected) in cases {
        let stderr = common::refused_flags(args);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
