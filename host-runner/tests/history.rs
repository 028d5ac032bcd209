//! Topics that remember (`wit/rooms.wit`): positions in an envelope, resuming from a
//! position with no gap and no duplicate at the hand-over to live delivery while others
//! publish, replays paced by backpressure (never dropped), positions no longer kept, and
//! presence. Driven through guests/test-handler's `/topics` commands (its `rooms.rs`).

mod common;

use std::time::Duration;

use common::{Client, Runner};
use tungstenite::Message;

/// A `/topics` client with history on for `topic` (`n` messages kept).
fn member(runner: &Runner, topic: &str, n: u32) -> Client {
    let mut client = runner.connect("/topics");
    assert_eq!(client.ask(&format!("history {topic} {n} 0")), "history on");
    client
}

/// The offset in an enveloped text message (`{"pos":{"epoch":"…","offset":N},…`).
fn offset(text: &str) -> u64 {
    let at = text.find("\"offset\":").expect("an offset") + "\"offset\":".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a number")
}

fn epoch_of(text: &str) -> &str {
    let at = text.find("\"epoch\":\"").expect("an epoch") + "\"epoch\":\"".len();
    &text[at..at + 16]
}

/// The `E O` of an answer such as `from E O` or `head E O`.
fn position(answer: &str) -> (String, u64) {
    let words: Vec<&str> = answer.split(' ').collect();
    assert_eq!(words.len(), 3, "{answer}");
    (words[1].to_owned(), words[2].parse().expect("offset"))
}

#[test]
fn every_message_carries_its_position_and_the_kept_ones_read_back() {
    let runner = Runner::with_test_handler(&[]);
    let mut publisher = member(&runner, "room", 10);
    let mut reader = runner.connect("/topics");
    assert_eq!(reader.ask("sub room"), "subscribed");
    let (epoch_at_start, head) = position(&publisher.ask("head room"));
    assert_eq!(head, 0);
    assert_eq!(epoch_at_start.len(), 16);

    assert_eq!(publisher.ask(r#"pub room {"text":"hi"}"#), "published 1");
    let got = reader.text();
    assert_eq!(
        got,
        format!(r#"{{"pos":{{"epoch":"{epoch_at_start}","offset":1}},"text":"hi"}}"#)
    );
    assert_eq!(publisher.ask("pub room plain \"quoted\""), "published 1");
    assert_eq!(
        reader.text(),
        format!(r#"{{"pos":{{"epoch":"{epoch_at_start}","offset":2}},"data":"plain \"quoted\""}}"#)
    );
    assert_eq!(publisher.ask("pubbin room raw"), "published 1");
    let Ok(Message::Binary(data)) = reader.next() else {
        panic!("expected binary");
    };
    assert_eq!(data[..8], 3u64.to_be_bytes());
    assert_eq!(
        format!(
            "{:016x}",
            u64::from_be_bytes(data[8..16].try_into().unwrap())
        ),
        epoch_at_start
    );
    assert_eq!(&data[16..], b"raw");
    // `history.publish` answers the position.
    assert_eq!(
        publisher.ask("pubkept room {}"),
        format!("position {epoch_at_start} 4 count 1")
    );
    assert_eq!(
        reader.text(),
        format!(r#"{{"pos":{{"epoch":"{epoch_at_start}","offset":4}}}}"#)
    );
    // Kept as published, without envelope.
    assert_eq!(publisher.ask("kept room 2"), "kept 3,4|binary:3|{}");
    // A topic without history: its publishes are untouched, its history calls say `off`.
    assert_eq!(publisher.ask("head elsewhere"), "off");
    assert_eq!(publisher.ask("pubkept elsewhere x"), "off");
    assert_eq!(publisher.ask("from elsewhere 0000000000000000 0"), "off");
}

#[test]
fn a_position_no_longer_kept_is_gone_and_last_n_starts_a_newcomer() {
    let runner = Runner::with_test_handler(&[]);
    let mut publisher = member(&runner, "room", 3);
    for i in 1..=10 {
        assert_eq!(publisher.ask(&format!("pub room m{i}")), "published 0");
    }
    let (epoch, head) = position(&publisher.ask("head room"));
    assert_eq!(head, 10);
    let mut late = runner.connect("/topics");
    // Kept: 8, 9, 10. After 7 is fine; after 6 is gone, as is another epoch or a future.
    assert_eq!(late.ask(&format!("from room {epoch} 6")), "gone");
    assert_eq!(late.ask("from room 00000000000000ff 9"), "gone");
    assert_eq!(late.ask("from room nonsense 9"), "gone");
    assert_eq!(late.ask(&format!("from room {epoch} 11")), "gone");
    assert_eq!(
        late.ask("list"),
        "topics ",
        "a refused resume subscribes nothing"
    );
    assert_eq!(late.ask("fromlast room 2"), format!("from {epoch} 10"));
    assert_eq!(offset(&late.text()), 9);
    assert_eq!(offset(&late.text()), 10);
    // Then live.
    assert_eq!(publisher.ask("pub room live"), "published 1");
    let live = late.text();
    assert_eq!((offset(&live), epoch_of(&live)), (11, epoch.as_str()));
    // Subscribed already: nothing is replayed again.
    assert_eq!(
        late.ask(&format!("from room {epoch} 8")),
        format!("from {epoch} 11")
    );
    assert_eq!(late.within(Duration::from_millis(200)), None);
}

/// The hand-over: while one client publishes as fast as it can, others subscribe from a
/// position; each must then see every offset from there on exactly once, in order.
#[test]
fn resuming_while_others_publish_loses_nothing_and_repeats_nothing() {
    let runner = Runner::with_test_handler(&[]);
    let mut publisher = member(&runner, "room", 1000);
    assert_eq!(publisher.ask("pub room first"), "published 0");
    let (epoch, _) = position(&publisher.ask("head room"));
    const MESSAGES: u64 = 600;
    let url = runner.url("/topics");
    let flood = std::thread::spawn(move || {
        let (mut socket, _) = tungstenite::connect(&url).expect("connect");
        for i in 0..MESSAGES {
            socket
                .send(Message::text(format!("pub room n{i}")))
                .expect("send");
        }
        // Every publish answered: all were made.
        for _ in 0..MESSAGES {
            socket.read().expect("answer");
        }
    });
    // Subscribers join at different moments of the flood, from its start.
    let mut readers = Vec::new();
    for _ in 0..4 {
        let mut reader = runner.connect("/topics");
        assert!(
            reader
                .ask(&format!("from room {epoch} 1"))
                .starts_with("from ")
        );
        readers.push(reader);
        std::thread::sleep(Duration::from_millis(5));
    }
    flood.join().expect("flood");
    for (n, reader) in readers.iter_mut().enumerate() {
        for expected in 2..=MESSAGES + 1 {
            let text = reader.text();
            assert_eq!(offset(&text), expected, "reader {n}: {text}");
        }
        assert_eq!(
            reader.within(Duration::from_millis(100)),
            None,
            "reader {n}"
        );
    }
}

/// Publishers that hear themselves (include-self) see the topic in offset order too: their
/// own copy does not overtake, nor fall behind, the others'.
#[test]
fn publishers_that_include_themselves_see_offsets_in_order() {
    let runner = Runner::with_test_handler(&[]);
    let mut first = member(&runner, "room", 1000);
    let mut clients = vec![runner.connect("/topics"), runner.connect("/topics")];
    for client in &mut clients {
        assert_eq!(client.ask("sub room"), "subscribed");
    }
    first.close(1000, "bye");
    const EACH: u64 = 200;
    for client in &mut clients {
        for i in 0..EACH {
            client.send(Message::text(format!("pubself room {i}")));
        }
    }
    for (n, client) in clients.iter_mut().enumerate() {
        let mut last = 0;
        let mut seen = 0;
        while seen < 2 * EACH {
            let text = client.text();
            if text.starts_with("published") {
                continue;
            }
            let at = offset(&text);
            assert_eq!(at, last + 1, "client {n} after {last}: {text}");
            last = at;
            seen += 1;
        }
    }
}

/// A replay larger than the connection's backpressure bound is paced by it: everything
/// arrives, nothing is dropped — also to a client that reads slowly.
#[test]
fn a_replay_is_paced_by_backpressure_never_dropped() {
    let runner = Runner::with_test_handler(&[
        "--max-backpressure",
        "64KiB",
        "--history-topic-bytes",
        "8MiB",
    ]);
    let _history = member(&runner, "room", 1000);
    // 800 messages of 4 KiB: 3.2 MB, fifty times the bound.
    let mut flood = runner.connect("/flood");
    assert_eq!(flood.ask("pub room 800 4096"), "published 0");
    let mut reader = runner.connect("/topics");
    assert!(reader.ask("fromlast room 1000").starts_with("from "));
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..800u32 {
        let Ok(Message::Binary(data)) = reader.next() else {
            panic!("expected binary message {i}");
        };
        assert_eq!(data[..8], (u64::from(i) + 1).to_be_bytes(), "offset of {i}");
        assert_eq!(data[16..20], i.to_be_bytes(), "flood index of {i}");
        assert_eq!(data.len(), 16 + 4096);
    }
    let peer = reader.local_addr();
    reader.close(1000, "bye");
    let _ = reader.expect_close();
    let line = runner.wait_for_line(peer, "websocket closed");
    assert_eq!(
        common::log_field(&line, "dropped").as_deref(),
        Some("0"),
        "{line}"
    );
}

/// Replay and live delivery happen in the host: a hibernated subscriber is not woken.
#[test]
fn a_hibernated_subscriber_is_replayed_and_fed_without_waking() {
    let runner = Runner::with_test_handler(&["--hibernate-after", "0"]);
    let mut publisher = member(&runner, "room", 100);
    for i in 0..50 {
        publisher.send(Message::text(format!("pub room m{i}")));
    }
    for _ in 0..50 {
        publisher.text();
    }
    let mut reader = runner.connect("/topics");
    assert!(reader.ask("fromlast room 50").starts_with("from "));
    for expected in 1..=50 {
        assert_eq!(offset(&reader.text()), expected);
    }
    for i in 0..20 {
        publisher.send(Message::text(format!("pub room live{i}")));
    }
    for expected in 51..=70 {
        assert_eq!(offset(&reader.text()), expected);
    }
    // Two wakes: for the `fromlast` command and for the close; none for the 70 messages.
    assert_eq!(common::close_and_count_wakes(&runner, reader), 2);
}

#[test]
fn presence_lists_subscribers_with_their_info_in_pages() {
    let runner = Runner::with_test_handler(&[]);
    let mut members: Vec<Client> = (0..5).map(|_| runner.connect("/topics")).collect();
    let mut ids = Vec::new();
    for (i, member) in members.iter_mut().enumerate() {
        assert_eq!(member.ask("info room nobody"), "not-subscribed");
        assert_eq!(member.ask("sub room"), "subscribed");
        if i < 4 {
            assert_eq!(member.ask(&format!("info room nick{i}")), "info ok");
        }
        let id = runner
            .log()
            .lines()
            .rev()
            .find(|line| line.contains(&format!("peer={}", member.local_addr())))
            .and_then(|line| common::log_field(line, "id"))
            .expect("id in the log");
        ids.push(id);
    }
    assert_eq!(
        members[0].ask(&format!("info room {}", "x".repeat(257))),
        "too-large"
    );
    let mut expected: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            if i < 4 {
                format!("{id}=nick{i}")
            } else {
                format!("{id}=")
            }
        })
        .collect();
    expected.sort();
    let asker = &mut members[0];
    let first = asker.ask("members room - 2");
    assert_eq!(
        first,
        format!(
            "members {},{} next {}",
            expected[0],
            expected[1],
            &expected[1][..32]
        )
    );
    let second = asker.ask(&format!("members room {} 10", &expected[1][..32]));
    assert_eq!(second, format!("members {}", expected[2..].join(",")));
    // Leaving takes the info along.
    assert_eq!(members[1].ask("unsub room"), "unsubscribed true");
    let all = members[0].ask("members room - 10");
    assert!(!all.contains(&ids[1]), "{all}");
    assert_eq!(all.matches('=').count(), 4);
    assert_eq!(members[0].ask("members nowhere - 10"), "members ");
}
