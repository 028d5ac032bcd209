//! Runners in a cluster over a real nats-server that the tests start on a free port:
//! a publish reaches every subscriber on every node exactly once and in order, subscriber
//! counts are cluster-wide within the stated staleness, topic names that look like NATS
//! subjects stay apart, sends and closes find an id on another node, and hibernated
//! subscribers receive remote publishes without waking. Faults (nats-server or a runner
//! killed, NATS unreachable at start) and the metrics: cluster_faults.rs.

mod common;

use std::time::{Duration, Instant};

use common::nats::{Nats, node_of, publish, subscriber, two_runners, wait_for_subscribers};
use common::{Client, Runner, close_and_count_wakes};
use tungstenite::Message;

#[test]
fn a_publish_reaches_both_runners_once_from_either_side() {
    let nats = Nats::start();
    let (a, b) = two_runners(&nats, &[]);
    let mut on_a = subscriber(&a, "news");
    let mut on_b = subscriber(&b, "news");
    let mut publisher_a = a.connect("/topics");
    let mut publisher_b = b.connect("/topics");
    wait_for_subscribers(&mut publisher_a, "news", 2);
    wait_for_subscribers(&mut publisher_b, "news", 2);

    for (publisher, text) in [(&mut publisher_a, "from a"), (&mut publisher_b, "from b")] {
        publish(publisher, &format!("pub news {text}"));
        assert_eq!(on_a.text(), text);
        assert_eq!(on_b.text(), text);
    }
    on_b.send(Message::text("pubbin news raw"));
    assert!(on_b.text().starts_with("published "));
    assert_eq!(on_a.next(), Ok(Message::binary(b"raw".to_vec())));
    // A subscriber publishing with include-self hears itself once, before the answer.
    on_a.send(Message::text("pubself news mine"));
    assert_eq!(on_a.text(), "mine");
    assert!(on_a.text().starts_with("published "));
    assert_eq!(on_b.text(), "mine");
    // Nothing came back a second time through NATS, nor reached the publishers.
    for client in [&mut on_a, &mut on_b, &mut publisher_a, &mut publisher_b] {
        assert_eq!(client.within(Duration::from_millis(500)), None);
    }

    // In order per publisher, from both sides at once.
    for i in 0..50 {
        publisher_a.send(Message::text(format!("pub news a{i}")));
        publisher_b.send(Message::text(format!("pub news b{i}")));
    }
    for publisher in [&mut publisher_a, &mut publisher_b] {
        for _ in 0..50 {
            assert!(publisher.text().starts_with("published "));
        }
    }
    for client in [&mut on_a, &mut on_b] {
        let (mut next_a, mut next_b) = (0, 0);
        while next_a < 50 || next_b < 50 {
            let text = client.text();
            if text == format!("a{next_a}") {
                next_a += 1;
            } else if text == format!("b{next_b}") {
                next_b += 1;
            } else {
                panic!("{text:?} arrived while a{next_a} and b{next_b} were due");
            }
        }
        assert_eq!(client.within(Duration::from_millis(300)), None);
    }
}

#[test]
fn subscriber_counts_are_cluster_wide_within_the_staleness_bound() {
    let nats = Nats::start();
    let (a, b) = two_runners(&nats, &[]);
    let mut ask_a = a.connect("/topics");
    let mut ask_b = b.connect("/topics");
    let mut on_a = subscriber(&a, "room");
    let mut on_b: Vec<Client> = (0..3).map(|_| subscriber(&b, "room")).collect();
    let mut slowest = wait_for_subscribers(&mut ask_a, "room", 4);
    slowest = slowest.max(wait_for_subscribers(&mut ask_b, "room", 4));
    assert_eq!(ask_a.ask("count elsewhere"), "subscribers 0");

    // An unsubscribe, a close and a vanished client on B are all seen on A.
    assert_eq!(on_b[0].ask("unsub room"), "unsubscribed true");
    slowest = slowest.max(wait_for_subscribers(&mut ask_a, "room", 3));
    on_b[1].close(1000, "bye");
    let _ = on_b[1].expect_close();
    // The runner ends the connection when the client's TCP close comes (or after a linger);
    // the staleness is counted from there.
    b.wait_for_line(on_b[1].local_addr(), "websocket closed");
    slowest = slowest.max(wait_for_subscribers(&mut ask_a, "room", 2));
    drop(on_b.pop());
    slowest = slowest.max(wait_for_subscribers(&mut ask_a, "room", 1));
    // And a change on A is seen on B.
    assert_eq!(on_a.ask("unsub room"), "unsubscribed true");
    slowest = slowest.max(wait_for_subscribers(&mut ask_b, "room", 0));
    assert_eq!(ask_a.ask("count room"), "subscribers 0");
    eprintln!("slowest count to converge: {slowest:?}");
    // Counts follow within milliseconds here; the bound only has to tell a count that
    // follows from one that waits for the 3 s expiry, with room for a loaded CI machine.
    assert!(slowest < Duration::from_secs(3), "{slowest:?}");
}

/// A runner that joins a cluster later learns the counts the others had, and they learn
/// its.
#[test]
fn a_runner_that_joins_later_learns_the_counts() {
    let nats = Nats::start();
    let url = nats.url();
    let a = Runner::with_test_handler(&["--cluster", url.as_str()]);
    let _on_a: Vec<Client> = (0..2).map(|_| subscriber(&a, "early")).collect();
    let mut ask_a = a.connect("/topics");
    assert_eq!(ask_a.ask("count early"), "subscribers 2");

    let b = Runner::with_test_handler(&["--cluster", url.as_str()]);
    let mut ask_b = b.connect("/topics");
    wait_for_subscribers(&mut ask_b, "early", 2);
    let _on_b = subscriber(&b, "early");
    wait_for_subscribers(&mut ask_a, "early", 3);
    wait_for_subscribers(&mut ask_b, "early", 3);
}

/// Topic names are any bytes; NATS gives `.`, `*`, `>` and a leading `$` or `_INBOX`
/// meanings, which must not leak into topics.
#[test]
fn topic_names_that_look_like_subjects_stay_apart() {
    let nats = Nats::start();
    let (a, b) = two_runners(&nats, &[]);
    let names = [
        "a", "a.b", "a.*", "a.>", "*", ">", ".", "a..b", "$SYS.x", "_INBOX.x", "é.ü", "%2E",
    ];
    // Subscribed by command: some of these names are not allowed in a URL's query.
    let mut on_b: Vec<Client> = names
        .iter()
        .map(|name| {
            let mut client = b.connect("/topics");
            assert_eq!(client.ask(&format!("sub {name}")), "subscribed", "{name}");
            client
        })
        .collect();
    let mut publisher = a.connect("/topics");
    for name in names {
        wait_for_subscribers(&mut publisher, name, 1);
    }
    for name in names {
        publish(&mut publisher, &format!("pub {name} to {name}"));
    }
    for (name, client) in names.iter().zip(&mut on_b) {
        assert_eq!(client.text(), format!("to {name}"));
    }
    for client in &mut on_b {
        assert_eq!(client.within(Duration::from_millis(200)), None);
    }
}

#[test]
fn sends_and_closes_reach_an_id_on_the_other_runner() {
    let nats = Nats::start();
    let (a, b) = two_runners(&nats, &[]);
    let (node_a, node_b) = (node_of(&a), node_of(&b));
    assert_ne!(node_a, node_b);

    let mut sender = a.connect("/send-to");
    let sender_id = sender.text();
    let mut target = b.connect("/id");
    let target_id = target.text();
    for (id, node) in [(&sender_id, &node_a), (&target_id, &node_b)] {
        assert_eq!(id.len(), 32, "{id:?}");
        assert!(id.starts_with(node.as_str()), "{id} is not on node {node}");
    }

    assert_eq!(sender.ask(&format!("{target_id}:over nats")), "ok");
    assert_eq!(target.text(), "over nats");
    // And back, from B to an id on A.
    let mut sender_b = b.connect("/send-to");
    let _ = sender_b.text();
    assert_eq!(sender_b.ask(&format!("{sender_id}:and back")), "ok");
    assert_eq!(sender.text(), "and back");
    // The target is a live echo connection still, and got nothing twice.
    target.echo("still here");

    // Closed from A with a code and reason of A's choosing.
    let mut closer = a.connect("/close-other");
    let _ = closer.text();
    let mut victim = b.connect("/id");
    let victim_id = victim.text();
    assert_eq!(closer.ask(&format!("{victim_id} 4001 closed from a")), "ok");
    assert_eq!(victim.expect_close(), Some(4001.into()));
    let on_close = b.on_close_of(victim.local_addr());
    assert!(on_close.starts_with("4001 true"), "{on_close}");
    b.wait_for_line(victim.local_addr(), "websocket closed");

    // An id that ended, one that never was on a node that is, and one on no node.
    target.close(1000, "bye");
    let _ = target.expect_close();
    b.wait_for_line(target.local_addr(), "websocket closed");
    let never = format!("{node_b}{}", "0".repeat(24));
    let nowhere = format!("{}{}", other_node(&[&node_a, &node_b]), &target_id[8..]);
    for id in [&target_id, &victim_id, &never, &nowhere] {
        assert_eq!(sender.ask(&format!("{id}:anyone?")), "gone", "{id}");
        assert_eq!(closer.ask(id), "gone", "{id}");
    }
}

/// A node id that is none of `nodes`.
fn other_node(nodes: &[&str]) -> String {
    (0u32..)
        .map(|n| format!("{n:08x}"))
        .find(|candidate| !nodes.contains(&candidate.as_str()))
        .expect("some 8-digit id is free")
}

/// 1,000 subscribers, 500 on each runner, and a publisher on each sending 100 numbered
/// messages at once: every subscriber gets all 200, each publisher's in order, none twice.
#[test]
fn a_thousand_subscribers_over_two_runners_miss_nothing() {
    const PER_RUNNER: usize = 500;
    const MESSAGES: usize = 100;
    let nats = Nats::start();
    let (a, b) = two_runners(&nats, &[]);
    let mut subscribers = Vec::with_capacity(2 * PER_RUNNER);
    for _ in 0..PER_RUNNER {
        subscribers.push(subscriber(&a, "fan"));
        subscribers.push(subscriber(&b, "fan"));
    }
    let mut ask_a = a.connect("/topics");
    let mut ask_b = b.connect("/topics");
    wait_for_subscribers(&mut ask_a, "fan", 2 * PER_RUNNER);
    wait_for_subscribers(&mut ask_b, "fan", 2 * PER_RUNNER);

    // `/flood` stamps each message with its index; the sizes tell the publishers apart.
    let (size_a, size_b) = (8, 9);
    let mut flood_a = a.connect("/flood");
    let mut flood_b = b.connect("/flood");
    let started = Instant::now();
    flood_a.send(Message::text(format!("pub fan {MESSAGES} {size_a}")));
    flood_b.send(Message::text(format!("pub fan {MESSAGES} {size_b}")));
    assert!(flood_a.text().starts_with("published "));
    assert!(flood_b.text().starts_with("published "));

    for (n, client) in subscribers.iter_mut().enumerate() {
        let mut next = [0u32; 2];
        for _ in 0..2 * MESSAGES {
            let data = match client.next() {
                Ok(Message::Binary(data)) => data,
                other => panic!("subscriber {n}: {other:?} after {next:?}"),
            };
            assert!(data.len() == size_a || data.len() == size_b, "{data:?}");
            let from = usize::from(data.len() == size_b);
            let index = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            assert_eq!(index, next[from], "subscriber {n}, publisher {from}");
            next[from] += 1;
        }
    }
    eprintln!(
        "{} deliveries read in {:?}",
        2 * PER_RUNNER * 2 * MESSAGES,
        started.elapsed()
    );
    // Nothing more came: a duplicate would be waiting by now.
    std::thread::sleep(Duration::from_millis(500));
    for (n, client) in subscribers.iter_mut().enumerate() {
        assert_eq!(
            client.within(Duration::from_millis(1)),
            None,
            "subscriber {n}"
        );
    }
}

#[test]
fn hibernated_subscribers_receive_remote_publishes_without_waking() {
    let nats = Nats::start();
    let (a, b) = two_runners(&nats, &["--hibernate-after", "0"]);
    let mut listener = b.connect("/count?sub=news");
    let mut quiet = b.connect("/count?sub=nothing");
    let mut publisher = a.connect("/topics");
    wait_for_subscribers(&mut publisher, "news", 1);
    for i in 0..5 {
        publish(&mut publisher, &format!("pub news item {i}"));
    }
    publisher.send(Message::text("pubbin news raw"));
    assert!(publisher.text().starts_with("published "));
    for i in 0..5 {
        assert_eq!(listener.text(), format!("item {i}"));
    }
    assert_eq!(listener.next(), Ok(Message::binary(b"raw".to_vec())));
    // No on-message ran for the deliveries: the attachment's counter starts now.
    assert_eq!(listener.ask("x"), "instance=1 attachment=1");
    // Six deliveries woke it no more than a connection that got none.
    assert_eq!(quiet.ask("x"), "instance=1 attachment=1");
    assert_eq!(
        close_and_count_wakes(&b, listener),
        close_and_count_wakes(&b, quiet)
    );
}

/// `--cluster-name` is a namespace: two pairs of runners on one nats-server do not see each
/// other's topics, counts or ids.
#[test]
fn runners_with_different_cluster_names_do_not_meet() {
    let nats = Nats::start();
    let url = nats.url();
    let runner = |name: &str| {
        Runner::with_test_handler(&["--cluster", url.as_str(), "--cluster-name", name])
    };
    let (red, red_too, blue) = (runner("red"), runner("red"), runner("blue"));
    let mut red_subscriber = subscriber(&red_too, "news");
    let mut blue_subscriber = subscriber(&blue, "news");
    let mut publisher = red.connect("/topics");
    wait_for_subscribers(&mut publisher, "news", 1);
    let mut ask_blue = blue.connect("/topics");
    assert_eq!(ask_blue.ask("count news"), "subscribers 1");

    publish(&mut publisher, "pub news for red");
    assert_eq!(red_subscriber.text(), "for red");
    assert_eq!(blue_subscriber.within(Duration::from_millis(500)), None);
    // A wait long past the staleness bound: the counts stayed apart.
    assert_eq!(publisher.ask("count news"), "subscribers 1");
    assert_eq!(ask_blue.ask("count news"), "subscribers 1");

    let mut sender = red.connect("/send-to");
    let _ = sender.text();
    let mut blue_target = blue.connect("/id");
    let blue_id = blue_target.text();
    assert_eq!(sender.ask(&format!("{blue_id}:hello?")), "gone");
    assert_eq!(blue_target.within(Duration::from_millis(300)), None);
}
