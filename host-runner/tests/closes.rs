//! The WebSocket's end: a close the guest starts is bounded and nothing follows its close
//! frame, the last close frame is not lost to a reset, and `on-close` tells the guest how
//! the connection ended (code, reason, clean) whatever ended it.

mod common;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::{BINARY, CLOSE, PING, RawClient, Runner, TEXT, close_code};
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

/// A guest that kicked its peer (1008) must not wait for it longer than this: the runner
/// bounds the close handshake by `--handshake-timeout` (1 s here), plus slack for a loaded
/// machine.
const CLOSE_BOUND: Duration = Duration::from_secs(6);

/// Sends "go" on `/kick` and returns the client once the guest's 1008 close frame arrived.
fn kicked(runner: &Runner) -> RawClient {
    let mut client = runner.connect_raw("/kick");
    client.send(TEXT, b"go").expect("send");
    let (opcode, payload) = client
        .read_frame()
        .expect("read")
        .expect("a close frame, not the end");
    assert_eq!(opcode, CLOSE);
    assert_eq!(close_code(&payload), Some(1008));
    assert_eq!(&payload[2..], b"kicked");
    client
}

#[test]
fn guest_close_is_bounded_while_the_peer_keeps_pinging() {
    let runner = Runner::with_test_handler(&["--handshake-timeout", "1s"]);
    let mut client = kicked(&runner);
    let peer = client.stream.local_addr().expect("local address");
    client
        .stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let started = Instant::now();
    // The peer ignores the close frame and pings ten times a second; nothing may follow the
    // close frame, not even a pong.
    let ended = loop {
        if client.send(PING, b"still here").is_err() {
            break true;
        }
        match client.read_frame() {
            Ok(None) => break true,
            Ok(Some(frame)) => panic!("a frame after the close frame: {frame:?}"),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break true,
        }
        if started.elapsed() > CLOSE_BOUND {
            break false;
        }
    };
    assert!(ended, "the connection outlived its close handshake");
    assert_eq!(runner.on_close_of(peer), "1006 false");
    runner.wait_for_line(peer, "websocket closed");
}

#[test]
fn guest_close_is_bounded_without_an_idle_timeout() {
    let runner = Runner::with_test_handler(&["--idle-timeout", "0", "--handshake-timeout", "1s"]);
    let mut client = kicked(&runner);
    let peer = client.stream.local_addr().expect("local address");
    client
        .stream
        .set_read_timeout(Some(CLOSE_BOUND))
        .expect("timeout");
    // A silent peer: the runner must end the connection by itself.
    match client.read_frame() {
        Ok(None) => {}
        Ok(Some(frame)) => panic!("unexpected frame {frame:?}"),
        Err(error) => panic!("the connection was not ended: {error}"),
    }
    assert_eq!(runner.on_close_of(peer), "1006 false");
}

#[test]
fn messages_after_the_guests_close_are_dropped() {
    let runner = Runner::with_test_handler(&["--handshake-timeout", "1s"]);
    let mut client = kicked(&runner);
    let peer = client.stream.local_addr().expect("local address");
    // The guest panics if this reaches it; and its own send after the close was refused.
    client.send(TEXT, b"again").expect("send");
    let frames = client.read_to_end().expect("read");
    assert!(frames.is_empty(), "after the guest's 1008: {frames:?}");
    runner.wait_for_line(peer, "websocket closed");
    let lines = runner.lines_of(peer).join("\n");
    assert!(lines.contains("send after close: closed"), "{lines}");
    assert!(
        !lines.contains("message after the guest's close"),
        "{lines}"
    );
    assert!(
        !lines.contains("closing the connection with 1011"),
        "{lines}"
    );
    assert!(!lines.contains("guest failed"), "{lines}");
}

#[test]
fn a_close_in_handle_follows_the_101_and_nothing_after_it() {
    let runner = Runner::with_test_handler(&[]);
    // `/request` sends "from handle" after the query's close: refused, as closed.
    let mut client = runner.connect_raw("/request?close=4000");
    let peer = client.stream.local_addr().expect("local address");
    let (opcode, payload) = client.read_frame().expect("read").expect("a frame");
    assert_eq!(opcode, CLOSE);
    assert_eq!(close_code(&payload), Some(4000));
    assert_eq!(&payload[2..], b"closed in handle");
    client.send(CLOSE, &payload[..2]).expect("answer the close");
    assert_eq!(client.read_to_end().expect("read"), []);
    assert_eq!(runner.on_close_of(peer), "4000 true");
}

#[test]
fn a_fault_in_on_close_sends_no_second_close_frame() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect_raw("/trap-close");
    let peer = client.stream.local_addr().expect("local address");
    let mut close = 4001u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    client.send(CLOSE, &close).expect("send the close frame");
    let frames = client.read_to_end().expect("read");
    assert_eq!(frames.len(), 1, "one close frame, the reply: {frames:?}");
    assert_eq!(frames[0].0, CLOSE);
    assert_eq!(close_code(&frames[0].1), Some(4001));
    assert_eq!(runner.on_close_of(peer), "4001 true bye");
    runner.wait_for_line(peer, "trap requested in on-close");
    runner.connect("/none").echo("still serving");
}

#[test]
fn the_last_close_frame_survives_unread_input() {
    let runner =
        Runner::with_test_handler(&["--max-message-size", "64KiB", "--max-frame-size", "64KiB"]);
    let mut client = runner.connect_raw("/none");
    // A small receive buffer keeps the echoes (and the close frame after them) queued in the
    // runner's socket, where a reset would discard them.
    let size: libc::c_int = 4096;
    // SAFETY: sets an int-sized option on a socket this test owns, from a live c_int.
    let set = unsafe {
        libc::setsockopt(
            client.stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "setsockopt SO_RCVBUF");
    client
        .stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let echoes = 8;
    let mut input = Vec::new();
    for _ in 0..echoes {
        input.extend(RawClient::frame(BINARY, &[7; 16 * 1024]));
    }
    // Then a frame over the limit (1009), whose payload the runner never reads.
    input.extend(RawClient::frame(BINARY, &[9; 256 * 1024]));
    // Before the fix the runner resets the connection and this write may fail: the reads
    // below tell.
    let _ = std::io::Write::write_all(&mut client.stream, &input);
    std::thread::sleep(Duration::from_millis(500));
    let mut frames = client.read_to_end().expect("every frame, then the end");
    let (opcode, payload) = frames.pop().expect("a close frame");
    assert_eq!(opcode, CLOSE);
    assert_eq!(close_code(&payload), Some(1009));
    // The echoes before it (the last one may be cut by the close, in the same read).
    assert!(frames.len() >= echoes - 1, "{} echoes", frames.len());
    assert!(frames.iter().all(|(opcode, _)| *opcode == BINARY));
}

#[test]
fn a_client_that_never_reads_is_ended_and_the_guest_told() {
    let runner = Runner::with_test_handler(&["--idle-timeout", "1s", "--handshake-timeout", "1s"]);
    let mut client = runner.connect_raw("/none");
    let peer = client.stream.local_addr().expect("local address");
    client
        .stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    // Never read: the echoes fill both sockets and the runner's outbox, the runner stops
    // reading, the idle timeout starts a close that cannot be written, and the close
    // timeout ends it. At most 256 MiB, or until the runner stops taking input.
    let message = RawClient::frame(BINARY, &[3; 64 * 1024]);
    for _ in 0..4096 {
        if std::io::Write::write_all(&mut client.stream, &message).is_err() {
            break;
        }
    }
    let closed = runner.wait_for_line(peer, "websocket closed");
    assert!(
        closed.contains("dropped=0"),
        "echoes are paced, not dropped: {closed}"
    );
    let on_close = runner.on_close_of(peer);
    assert!(on_close.ends_with(" false"), "{on_close}");
}

#[test]
fn on_close_reports_the_peers_close_frame() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/none");
    client.echo("hi");
    client.close(4001, "bye");
    assert_eq!(client.expect_close(), Some(CloseCode::from(4001)));
    assert_eq!(runner.on_close_of(client.local_addr()), "4001 true bye");

    // A close frame without a code is reported as 1005.
    let mut raw = runner.connect_raw("/none");
    raw.send(CLOSE, b"").expect("send the close frame");
    let frames = raw.read_to_end().expect("read");
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].0, CLOSE);
    let peer = raw.stream.local_addr().expect("local address");
    assert_eq!(runner.on_close_of(peer), "1005 true");
}

#[test]
fn on_close_reports_a_peer_that_vanished() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/none");
    client.echo("then gone");
    let peer = client.local_addr();
    drop(client);
    assert_eq!(runner.on_close_of(peer), "1006 false");
}

#[test]
fn on_close_reports_the_code_sent_for_a_violation() {
    let runner =
        Runner::with_test_handler(&["--max-message-size", "1KiB", "--max-frame-size", "1KiB"]);
    let unmasked = [0x81u8, 0x02, b'h', b'i'].to_vec();
    let invalid_utf8 = RawClient::frame(TEXT, &[0xff, 0xfe]);
    let too_big = RawClient::frame(BINARY, &[0; 1025]);
    for (input, code) in [(unmasked, 1002), (invalid_utf8, 1007), (too_big, 1009)] {
        let mut client = runner.connect_raw("/none");
        let peer = client.stream.local_addr().expect("local address");
        std::io::Write::write_all(&mut client.stream, &input).expect("write");
        let frames = client.read_to_end().expect("read");
        assert_eq!(frames.len(), 1, "{code}: {frames:?}");
        assert_eq!(frames[0].0, CLOSE, "{code}");
        assert_eq!(close_code(&frames[0].1), Some(code));
        let on_close = runner.on_close_of(peer);
        assert!(on_close.starts_with(&format!("{code} false")), "{on_close}");
    }
}

#[test]
fn on_close_reports_the_answer_to_the_guests_close() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/kick");
    client.send(Message::text("go"));
    // tungstenite answers the close frame with its code.
    assert_eq!(client.expect_close(), Some(CloseCode::Policy));
    let on_close = runner.on_close_of(client.local_addr());
    assert!(on_close.starts_with("1008 true"), "{on_close}");
}

#[test]
fn on_close_reports_an_idle_timeout() {
    let runner = Runner::with_test_handler(&["--idle-timeout", "1s"]);
    let mut client = runner.connect("/none");
    client.echo("then silence");
    assert_eq!(client.expect_close(), Some(CloseCode::Normal));
    // The client answered the runner's 1000: a clean close.
    let on_close = runner.on_close_of(client.local_addr());
    assert!(on_close.starts_with("1000 true"), "{on_close}");
}
