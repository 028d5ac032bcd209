//! The WebSocket's end: a close the guest starts is bounded, one close frame at most, the
//! last one is not lost to a reset, and the guest hears `on-peer-gone` whenever the
//! connection ends without a close handshake.

mod common;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::{BINARY, CLOSE, PING, RawClient, Runner, TEXT, close_code};

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
    client
}

#[test]
fn guest_close_is_bounded_while_the_peer_keeps_pinging() {
    let runner = Runner::with_test_handler(&["--handshake-timeout", "1s"]);
    let mut client = kicked(&runner);
    client
        .stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let started = Instant::now();
    // The peer ignores the close frame and pings ten times a second.
    let ended = loop {
        if client.send(PING, b"still here").is_err() {
            break true;
        }
        match client.read_frame() {
            Ok(None) => break true,
            Ok(Some((opcode, _))) => assert_ne!(opcode, CLOSE, "a second close frame"),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break true,
        }
        if started.elapsed() > CLOSE_BOUND {
            break false;
        }
    };
    assert!(ended, "the connection outlived its close handshake");
    // The guest's line comes before the runner's close line: wait for the latter.
    let log = runner.wait_for_log("websocket closed");
    assert!(log.contains("close handshake timed out"), "{log}");
    assert!(log.contains("on-peer-gone"), "{log}");
}

#[test]
fn guest_close_is_bounded_without_an_idle_timeout() {
    let runner = Runner::with_test_handler(&["--idle-timeout", "0", "--handshake-timeout", "1s"]);
    let mut client = kicked(&runner);
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
    let log = runner.wait_for_log("on-peer-gone");
    assert!(log.contains("on-peer-gone"), "{log}");
}

#[test]
fn a_fault_after_the_guests_close_sends_no_second_close_frame() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = kicked(&runner);
    // The guest panics on a message after its close.
    client.send(TEXT, b"again").expect("send");
    let frames = client.read_to_end().expect("read");
    assert!(
        frames.iter().all(|(opcode, _)| *opcode != CLOSE),
        "after the guest's 1008: {frames:?}"
    );
    let log = runner.wait_for_log("message after the guest's close");
    assert!(log.contains("message after the guest's close"), "{log}");
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
fn a_failed_write_still_tells_the_guest() {
    let runner = Runner::with_test_handler(&["--idle-timeout", "1s"]);
    let mut client = runner.connect_raw("/none");
    client
        .stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    // Never read: the echoes fill both sockets, the runner's write stalls past its bound
    // (the idle timeout) and fails. At most 256 MiB, or until the runner gives up.
    let message = RawClient::frame(BINARY, &[3; 64 * 1024]);
    for _ in 0..4096 {
        if std::io::Write::write_all(&mut client.stream, &message).is_err() {
            break;
        }
    }
    // The guest's line comes before the runner's close line: wait for the latter.
    let log = runner.wait_for_log("websocket closed");
    assert!(log.contains("end=\"write failed\""), "{log}");
    assert!(log.contains("on-peer-gone"), "{log}");
}
