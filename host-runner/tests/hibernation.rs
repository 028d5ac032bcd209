//! Hibernation: with `--hibernate-after 0` a connection's instance is dropped after every
//! callback and each wake gets a fresh one, while the host keeps the socket, the id, the
//! topics, the attachment, the alarm and the auto-responses, answers pings and
//! auto-responses alone, and writes what others send. The next message, the alarm or the
//! client's close wakes the guest.

mod common;

use std::time::Duration;

use common::{Runner, close_and_count_wakes};
use tungstenite::Message;

/// The runner serving the test handler, dropping instances after every callback.
fn hibernating(extra: &[&str]) -> Runner {
    let mut args = vec!["--hibernate-after", "0"];
    args.extend_from_slice(extra);
    Runner::with_test_handler(&args)
}

#[test]
fn every_message_gets_a_fresh_instance_and_the_attachment_goes_on() {
    let runner = hibernating(&[]);
    let mut client = runner.connect("/count");
    for n in 1..=3 {
        assert_eq!(client.ask("x"), format!("instance=1 attachment={n}"));
    }
    // Three messages and the close each woke it.
    assert!(close_and_count_wakes(&runner, client) >= 4);
}

#[test]
fn an_instance_lives_until_its_connection_was_idle_for_hibernate_after() {
    let runner = Runner::with_test_handler(&["--hibernate-after", "2s"]);
    let mut client = runner.connect("/count");
    for n in 1..=3 {
        assert_eq!(client.ask("x"), format!("instance={n} attachment={n}"));
    }
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(client.ask("x"), "instance=1 attachment=4");
    assert_eq!(client.ask("x"), "instance=2 attachment=5");
    // Closed while live: only the message after the pause woke it.
    assert_eq!(close_and_count_wakes(&runner, client), 1);
}

#[test]
fn the_id_and_direct_sends_survive_hibernation() {
    let runner = hibernating(&[]);
    let mut target = runner.connect("/id");
    let id = target.text();
    assert_eq!(id.len(), 32, "{id:?}");
    let mut sender = runner.connect("/send-to");
    let _ = sender.text();
    // Written by the host to the hibernated target.
    assert_eq!(sender.ask(&format!("{id}:for a sleeper")), "ok");
    assert_eq!(target.text(), "for a sleeper");
    // The woken target still echoes, and is still reachable by its id.
    target.echo("awake");
    assert_eq!(sender.ask(&format!("{id}:again")), "ok");
    assert_eq!(target.text(), "again");
}

#[test]
fn publishes_reach_a_hibernated_subscriber_without_waking_it() {
    let runner = hibernating(&[]);
    let mut listener = runner.connect("/count?sub=news");
    let quiet = runner.connect("/count?sub=nothing");
    let mut publisher = runner.connect("/topics");
    assert_eq!(publisher.ask("count news"), "subscribers 1");
    for i in 0..5 {
        assert_eq!(publisher.ask(&format!("pub news item {i}")), "published 1");
    }
    publisher.send(Message::text("pubbin news raw"));
    assert_eq!(publisher.text(), "published 1");
    for i in 0..5 {
        assert_eq!(listener.text(), format!("item {i}"));
    }
    assert_eq!(listener.next(), Ok(Message::binary(b"raw".to_vec())));
    // No on-message ran for the deliveries: the attachment's counter starts now.
    assert_eq!(listener.ask("x"), "instance=1 attachment=1");
    // Six deliveries woke it no more than a connection that got none: both woke for one
    // message and the close.
    let mut quiet = quiet;
    assert_eq!(quiet.ask("x"), "instance=1 attachment=1");
    let woken = close_and_count_wakes(&runner, listener);
    assert_eq!(woken, close_and_count_wakes(&runner, quiet));
}

#[test]
fn an_alarm_wakes_a_hibernated_connection() {
    let runner = hibernating(&[]);
    // Set in on-open; the client never sends anything.
    let mut client = runner.connect("/alarm?ms=300");
    assert_eq!(client.text(), "alarm");
    runner.wait_for_line(client.local_addr(), "on-alarm");
    // Set in on-message, after which the instance was dropped.
    assert_eq!(client.ask("200"), "set 200");
    assert_eq!(client.text(), "alarm");
    // A cancelled one stays cancelled across the drop.
    assert_eq!(client.ask("300"), "set 300");
    assert_eq!(client.ask("cancel"), "cancelled");
    assert_eq!(client.within(Duration::from_millis(1000)), None);
}

#[test]
fn pings_are_answered_while_hibernated() {
    let runner = hibernating(&[]);
    let mut client = runner.connect("/none");
    client.echo("before");
    let peer = client.local_addr();
    for i in 0..3u8 {
        client.send(Message::Ping(vec![i; 4].into()));
        assert_eq!(client.next(), Ok(Message::Pong(vec![i; 4].into())));
    }
    client.echo("after");
    // Only the two messages and the close called the guest after its upgrade.
    let quiet = runner.connect("/none");
    let mut quiet = quiet;
    quiet.echo("before");
    quiet.echo("after");
    assert_eq!(
        close_and_count_wakes(&runner, client),
        close_and_count_wakes(&runner, quiet)
    );
    assert_eq!(runner.on_close_of(peer), "1000 true bye");
}

#[test]
fn the_clients_close_or_disappearance_wakes_the_guest() {
    let runner = hibernating(&[]);
    let mut client = runner.connect("/none");
    client.echo("hello");
    let peer = client.local_addr();
    client.close(4001, "leaving");
    let _ = client.expect_close();
    assert_eq!(runner.on_close_of(peer), "4001 true leaving");

    // Gone without a close frame.
    let mut client = runner.connect("/none");
    client.echo("hello");
    let peer = client.local_addr();
    drop(client);
    assert_eq!(runner.on_close_of(peer), "1006 false");
}

#[test]
fn auto_responses_are_answered_by_the_host_without_waking_the_guest() {
    let runner = hibernating(&[]);
    let mut client = runner.connect("/auto");
    let mut quiet = runner.connect("/auto");
    for _ in 0..5 {
        assert_eq!(client.ask("ping"), "pong");
        client.send(Message::binary(vec![1, 2, 3]));
        assert_eq!(client.next(), Ok(Message::binary(vec![4, 5, 6])));
    }
    // Kind and bytes must both match: these wake the guest.
    assert_eq!(client.ask("hello"), "woke:hello");
    assert_eq!(client.ask("\u{1}\u{2}\u{3}"), "woke:\u{1}\u{2}\u{3}");
    client.send(Message::binary(b"ping".to_vec()));
    assert_eq!(client.next(), Ok(Message::binary(b"\xffping".to_vec())));
    assert_eq!(client.ask("ping "), "woke:ping ");
    // The ten auto-answered messages woke nothing: the same count as a connection that
    // sent only the four others.
    assert_eq!(quiet.ask("hello"), "woke:hello");
    assert_eq!(quiet.ask("\u{1}\u{2}\u{3}"), "woke:\u{1}\u{2}\u{3}");
    quiet.send(Message::binary(b"ping".to_vec()));
    assert_eq!(quiet.next(), Ok(Message::binary(b"\xffping".to_vec())));
    assert_eq!(quiet.ask("ping "), "woke:ping ");
    assert_eq!(
        close_and_count_wakes(&runner, client),
        close_and_count_wakes(&runner, quiet)
    );
}

#[test]
fn auto_responses_work_on_a_live_instance_too() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/auto");
    assert_eq!(client.ask("ping"), "pong");
    assert_eq!(client.ask("hello"), "woke:hello");
    assert_eq!(client.ask("ping"), "pong");
}

#[test]
fn a_cleared_auto_response_reaches_the_guest() {
    let runner = hibernating(&[]);
    let mut client = runner.connect("/auto");
    assert_eq!(client.ask("ping"), "pong");
    assert_eq!(client.ask("clear"), "cleared");
    assert_eq!(client.ask("ping"), "woke:ping");
    // The binary pair was not cleared.
    client.send(Message::binary(vec![1, 2, 3]));
    assert_eq!(client.next(), Ok(Message::binary(vec![4, 5, 6])));
}

#[test]
fn auto_response_limits_are_enforced() {
    let runner = hibernating(&[]);
    let mut client = runner.connect("/auto");
    // Defaults: 2 KiB, and 8 pairs of which on-open registered 2.
    assert_eq!(client.ask("big"), "too-large");
    assert_eq!(client.ask("many"), "6");
    // The registered ones still work.
    assert_eq!(client.ask("ping"), "pong");

    let runner = hibernating(&["--max-auto-responses", "3", "--max-auto-response-size", "8"]);
    let mut client = runner.connect("/auto");
    assert_eq!(client.ask("big"), "too-large");
    assert_eq!(client.ask("many"), "1");
    assert_eq!(client.ask("ping"), "pong");
    // The pair registered by an on-message is answered by the host too.
    assert_eq!(client.ask("many-0"), "auto-0");
    assert_eq!(client.ask("many-1"), "woke:many-1");
}

#[test]
fn compression_context_survives_hibernation() {
    // The session, its kept compression context included, lives in the host: an instance
    // dropped after every message loses nothing of it.
    let runner = Runner::start(&["--hibernate-after", "0", "--deflate", "takeover"]);
    let deflate = wsbox::deflate::Deflate::default().max_window_bits(11);
    let (mut client, agreed) = runner.connect_deflate("/", deflate);
    assert_eq!(
        agreed,
        "permessage-deflate; server_max_window_bits=11; client_max_window_bits=11"
    );
    let peer = client.get_ref().local_addr().expect("address");
    let mut raw = 0;
    for n in 0..200 {
        let json = format!("{{\"n\":{n},\"user\":\"ann\",\"text\":\"the same words again\"}}");
        raw += json.len();
        client.send_text(&json).expect("sends");
        match client.recv().expect("reads") {
            Some(wsbox::Message::Text(text)) => assert_eq!(text, json),
            other => panic!("not the echo of {n}: {other:?}"),
        }
    }
    let _ = client.close(1000, "done");
    while let Ok(Some(_)) = client.recv() {}
    let line = runner.wait_for_line(peer, "websocket closed");
    let out: usize = common::log_field(&line, "bytes_out")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no bytes_out in {line:?}"));
    let wakes: usize = common::log_field(&line, "wakes")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wakes in {line:?}"));
    assert!(wakes >= 200, "{line}");
    // With the context kept, each echo refers to the last: a fraction of its size.
    assert!(
        out * 4 < raw,
        "{out} bytes out for {raw} bytes of messages: {line}"
    );
}
