//! Backpressure: a client that stops reading costs bounded memory and never slows anyone
//! else. What is sent to it past `--max-backpressure` is dropped and counted (`send` and
//! `send-to` say `backpressure`, a publish skips it), or with `--close-on-backpressure` it
//! is closed with 1008; a connection's own echo traffic is paced instead of dropped.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{BINARY, CLOSE, Client, RawClient, Runner, TEXT, close_code, log_field};
use tungstenite::Message;

/// Publishes per batch: small enough that a reading subscriber never nears the bound
/// (the test reads each batch before publishing the next), while the batches together
/// are far more than the kernel buffers of a client that does not read.
const BATCH: u32 = 2;
const BATCHES: u32 = 400;
const SIZE: usize = 16 * 1024;

/// A client on a [`Runner::slow_socket`] subscribed to `firehose`, which it will not read.
fn slow_subscriber(runner: &Runner) -> RawClient {
    let mut slow = runner.connect_raw_on(runner.slow_socket(), "/topics");
    slow.send(TEXT, b"sub firehose").expect("send");
    let answer = slow.read_frame().expect("read");
    assert_eq!(answer, Some((TEXT, b"subscribed".to_vec())));
    slow
}

/// The `dropped=` count of `peer`'s "websocket closed" line.
fn dropped(runner: &Runner, peer: SocketAddr) -> u64 {
    let line = runner.wait_for_line(peer, "websocket closed");
    log_field(&line, "dropped")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no dropped= count in {line}"))
}

/// A `/topics` or `/flood` connection still answers.
fn still_answers(client: &mut Client) {
    let answer = client.ask("nonsense");
    assert!(answer.starts_with("unknown command"), "{answer}");
}

/// Reads the `ok` flood messages a flood accepted, checking their indices rise. They need
/// not be a prefix of the flood: the socket may drain between two sends and take a later one.
fn read_accepted(client: &mut RawClient, ok: u32) {
    let mut last = None;
    for _ in 0..ok {
        let (opcode, data) = client.read_frame().expect("read").expect("a frame");
        assert_eq!(opcode, BINARY);
        let index = u32::from_be_bytes(data[..4].try_into().expect("an index"));
        assert!(last < Some(index), "out of order: {index} after {last:?}");
        last = Some(index);
    }
}

/// Reads one flood message from a reading client and checks its index.
fn expect_stamped(client: &mut Client, index: u32) {
    match client.next() {
        Ok(Message::Binary(data)) => {
            assert_eq!(data.len(), SIZE);
            assert_eq!(data[..4], index.to_be_bytes(), "out of order");
        }
        other => panic!("expected flood message {index}, got {other:?}"),
    }
}

/// Publishes BATCHES × BATCH flood messages to `topic`, reading every one on `fast` before
/// the next batch; returns the sum of the `published N` answers.
fn publish_in_lockstep(publisher: &mut Client, fast: &mut Client, topic: &str) -> u64 {
    let mut published = 0;
    for _ in 0..BATCHES {
        let answer = publisher.ask(&format!("pub {topic} {BATCH} {SIZE}"));
        let n: u64 = answer
            .strip_prefix("published ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{answer}"));
        published += n;
        for index in 0..BATCH {
            expect_stamped(fast, index);
        }
    }
    published
}

#[test]
fn a_subscriber_that_stops_reading_loses_deliveries_and_they_are_counted() {
    let runner = Runner::with_test_handler(&["--max-backpressure", "256KiB"]);
    let slow = slow_subscriber(&runner);
    let slow_peer = slow.stream.local_addr().expect("local address");
    let mut fast = runner.connect("/topics");
    assert_eq!(fast.ask("sub firehose"), "subscribed");
    let mut publisher = runner.connect("/flood");

    let published = publish_in_lockstep(&mut publisher, &mut fast, "firehose");
    let total = u64::from(BATCHES * BATCH);
    // The fast one got every message (checked while publishing), the slow one not all.
    assert!(published >= total, "{published}");
    let skipped = 2 * total - published;
    assert!(skipped > 0, "nothing was dropped for the slow subscriber");

    // Its neighbours are unaffected.
    still_answers(&mut fast);
    drop(slow);
    assert_eq!(dropped(&runner, slow_peer), skipped);
    fast.close(1000, "done");
    let _ = fast.expect_close();
    assert_eq!(dropped(&runner, fast.local_addr()), 0);
}

#[test]
fn send_to_a_client_that_stops_reading_reports_backpressure() {
    let runner = Runner::with_test_handler(&["--max-backpressure", "256KiB"]);
    let mut slow = runner.connect_raw_on(runner.slow_socket(), "/id");
    let slow_peer = slow.stream.local_addr().expect("local address");
    let Some((TEXT, id)) = slow.read_frame().expect("read") else {
        panic!("no id");
    };
    let id = String::from_utf8(id).expect("utf-8");
    let mut flooder = runner.connect("/flood");

    let answer = flooder.ask(&format!("to {id} 800 {SIZE}"));
    let counts: Vec<u32> = answer
        .split(' ')
        .filter_map(|word| word.parse().ok())
        .collect();
    let [ok, backpressure, closed, gone] = counts[..] else {
        panic!("{answer}");
    };
    assert_eq!((closed, gone), (0, 0), "{answer}");
    assert_eq!(ok + backpressure, 800, "{answer}");
    assert!(backpressure > 0, "{answer}");
    // The flooder itself is fine.
    still_answers(&mut flooder);

    // What was accepted arrives, in order, once the slow client reads.
    slow.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    read_accepted(&mut slow, ok);
    drop(slow);
    assert_eq!(dropped(&runner, slow_peer), u64::from(backpressure));
}

#[test]
fn a_connection_flooding_itself_gets_backpressure() {
    let runner = Runner::with_test_handler(&["--max-backpressure", "256KiB"]);
    let mut client = runner.connect_raw_on(runner.slow_socket(), "/flood");
    let peer = client.stream.local_addr().expect("local address");
    client
        .send(TEXT, format!("self 800 {SIZE}").as_bytes())
        .expect("send");
    // The report may itself be dropped: the log has it.
    let line = runner.wait_for_line(peer, "flood ok");
    let report = line.split("flood ").nth(1).expect("the report");
    let counts: Vec<u32> = report
        .split(' ')
        .filter_map(|word| word.parse().ok())
        .take(4)
        .collect();
    let [ok, backpressure, closed, gone] = counts[..] else {
        panic!("{line}");
    };
    assert_eq!((closed, gone), (0, 0), "{line}");
    assert!(backpressure > 0, "{line}");
    read_accepted(&mut client, ok);
    drop(client);
    assert!(dropped(&runner, peer) >= u64::from(backpressure));
}

#[test]
fn close_on_backpressure_closes_the_slow_one_only() {
    let runner =
        Runner::with_test_handler(&["--max-backpressure", "256KiB", "--close-on-backpressure"]);
    let mut slow = slow_subscriber(&runner);
    let slow_peer = slow.stream.local_addr().expect("local address");
    let mut fast = runner.connect("/topics");
    assert_eq!(fast.ask("sub firehose"), "subscribed");
    let mut publisher = runner.connect("/flood");

    let published = publish_in_lockstep(&mut publisher, &mut fast, "firehose");
    let total = u64::from(BATCHES * BATCH);
    assert!(
        published < 2 * total,
        "the slow subscriber got everything: {published}"
    );
    still_answers(&mut fast);

    // The slow one, reading at last, finds what was queued and then a 1008.
    slow.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut last = None;
    let mut messages = 0u64;
    while let Some((opcode, payload)) = slow.read_frame().expect("read") {
        if opcode == CLOSE {
            last = Some(payload);
            break;
        }
        messages += 1;
    }
    let close = last.expect("a close frame");
    assert_eq!(close_code(&close), Some(1008), "{close:?}");
    assert_eq!(&close[2..], b"backpressure");
    assert!(messages < total, "{messages}");
    // No more deliveries after the close frame, and the publishes stopped counting it.
    let reply = RawClient::frame(CLOSE, &close[..2]);
    let _ = std::io::Write::write_all(&mut slow.stream, &reply);
    runner.wait_for_line(slow_peer, "websocket closed");
    assert_eq!(publisher.ask("pub firehose 1 16"), "published 1");
    fast.close(1000, "done");
    let _ = fast.expect_close();
    assert_eq!(dropped(&runner, fast.local_addr()), 0);
}

#[test]
fn echo_traffic_is_paced_not_dropped() {
    let runner = Runner::with_test_handler(&["--max-backpressure", "256KiB"]);
    let mut client = runner.connect_raw("/none");
    let peer = client.stream.local_addr().expect("local address");
    let mut writer = client.stream.try_clone().expect("clone the socket");
    let count = 256u32;
    // 16 MiB of echo requests written while nobody reads for a second: the runner must
    // stop reading rather than drop echoes.
    let sending = std::thread::spawn(move || {
        for index in 0..count {
            let mut data = vec![7u8; 64 * 1024];
            data[..4].copy_from_slice(&index.to_be_bytes());
            std::io::Write::write_all(&mut writer, &RawClient::frame(BINARY, &data))
                .expect("write");
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    for index in 0..count {
        let (opcode, data) = client.read_frame().expect("read").expect("an echo");
        assert_eq!(opcode, BINARY);
        assert_eq!(data.len(), 64 * 1024);
        assert_eq!(data[..4], index.to_be_bytes(), "out of order");
    }
    sending.join().expect("the writer");
    client.send(CLOSE, &1000u16.to_be_bytes()).expect("close");
    let _ = client.read_to_end();
    assert_eq!(dropped(&runner, peer), 0);
}

#[test]
fn a_message_larger_than_the_bound_is_sent_when_nothing_waits() {
    // The bound is on what already waits: one 2 MiB message to an idle connection goes.
    let runner = Runner::with_test_handler(&["--max-backpressure", "1MiB"]);
    let mut client = runner.connect("/flood");
    client.send(Message::text("self 1 2097152"));
    match client.next() {
        Ok(Message::Binary(data)) => assert_eq!(data.len(), 2 << 20),
        other => panic!("expected the 2 MiB message, got {other:?}"),
    }
    // (The text answer that follows may meet the 2 MiB still waiting: the log has it.)
    let line = runner.wait_for_line(client.local_addr(), "flood ok");
    assert!(
        line.contains("flood ok 1 backpressure 0 closed 0 gone 0"),
        "{line}"
    );
}
