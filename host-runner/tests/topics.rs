//! Topics: subscribe and unsubscribe at any time (also in `handle`), the limits, publish
//! with and without the sender, the subscriber count, and the order of what one publisher
//! publishes. (10,000 subscribers: tests/python/test_app.py.)

mod common;

use std::time::Duration;

use common::{Client, Runner};
use tungstenite::Message;

/// A `/topics` client subscribed to `topics` by command: subscribed once each answer came.
fn subscriber(runner: &Runner, topics: &[&str]) -> Client {
    let mut client = runner.connect("/topics");
    for topic in topics {
        assert_eq!(client.ask(&format!("sub {topic}")), "subscribed");
    }
    client
}

/// A `/topics` client subscribed to `topics` by the guest's `handle` (`?sub=T&sub=U`).
fn subscriber_from_handle(runner: &Runner, topics: &[&str]) -> Client {
    let query: Vec<String> = topics.iter().map(|t| format!("sub={t}")).collect();
    runner.connect(&format!("/topics?{}", query.join("&")))
}

#[test]
fn publish_reaches_every_subscriber_and_the_sender_only_if_asked() {
    let runner = Runner::with_test_handler(&[]);
    let mut subscribers: Vec<Client> = (0..5).map(|_| subscriber(&runner, &["news"])).collect();
    let mut other = subscriber(&runner, &["sport"]);
    let mut publisher = runner.connect("/topics");
    assert_eq!(publisher.ask("count news"), "subscribers 5");
    assert_eq!(publisher.ask("count nobody"), "subscribers 0");

    assert_eq!(publisher.ask("pub news extra extra"), "published 5");
    for subscriber in &mut subscribers {
        assert_eq!(subscriber.text(), "extra extra");
    }
    publisher.send(Message::text("pubbin news raw"));
    assert_eq!(publisher.text(), "published 5");
    for subscriber in &mut subscribers {
        assert_eq!(subscriber.next(), Ok(Message::binary(b"raw".to_vec())));
    }

    // A subscriber publishing without include-self does not hear itself...
    assert_eq!(subscribers[0].ask("pub news from zero"), "published 4");
    for subscriber in &mut subscribers[1..] {
        assert_eq!(subscriber.text(), "from zero");
    }
    // ...and with it, gets its own message before the answer.
    subscribers[1].send(Message::text("pubself news from one"));
    assert_eq!(subscribers[1].text(), "from one");
    assert_eq!(subscribers[1].text(), "published 5");
    for (i, subscriber) in subscribers.iter_mut().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!(subscriber.text(), "from one", "subscriber {i}");
    }
    // Nothing crossed to the other topic, nor to the publisher.
    assert_eq!(other.within(std::time::Duration::from_millis(300)), None);
    assert_eq!(
        publisher.within(std::time::Duration::from_millis(100)),
        None
    );
}

#[test]
fn subscriptions_change_at_any_time_and_end_with_the_connection() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = subscriber_from_handle(&runner, &["a", "b"]);
    assert_eq!(client.ask("list"), "topics a,b");
    assert_eq!(client.ask("sub c"), "subscribed");
    // Twice is not an error, and counts once.
    assert_eq!(client.ask("sub c"), "subscribed");
    assert_eq!(client.ask("count c"), "subscribers 1");
    assert_eq!(client.ask("unsub a"), "unsubscribed true");
    assert_eq!(client.ask("unsub a"), "unsubscribed false");
    assert_eq!(client.ask("list"), "topics b,c");

    let mut publisher = runner.connect("/topics");
    assert_eq!(publisher.ask("pub a not for you"), "published 0");
    assert_eq!(publisher.ask("pub c for you"), "published 1");
    assert_eq!(client.text(), "for you");

    // Resubscribing after an unsubscribe works.
    assert_eq!(client.ask("sub a"), "subscribed");
    assert_eq!(publisher.ask("pub a again"), "published 1");
    assert_eq!(client.text(), "again");

    let peer = client.local_addr();
    client.close(1000, "bye");
    let _ = client.expect_close();
    runner.wait_for_line(peer, "websocket closed");
    for topic in ["a", "b", "c"] {
        assert_eq!(publisher.ask(&format!("count {topic}")), "subscribers 0");
    }
    assert_eq!(publisher.ask("pub a anyone"), "published 0");

    // A vanished connection's subscriptions end too.
    let vanishing = subscriber(&runner, &["v"]);
    assert_eq!(publisher.ask("count v"), "subscribers 1");
    let peer = vanishing.local_addr();
    drop(vanishing);
    runner.wait_for_line(peer, "websocket closed");
    assert_eq!(publisher.ask("count v"), "subscribers 0");
}

#[test]
fn topic_limits_are_the_defaults_and_enforced() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/topics");
    assert_eq!(
        client.ask("limits"),
        "max-topics 64 max-topic-len 256 max-attachment 16384"
    );
    // The 65th topic is refused; the 64 stay.
    assert_eq!(client.ask("subn t 65"), "subscribed 64 then too-many");
    assert_eq!(client.ask("count t63"), "subscribers 1");
    assert_eq!(client.ask("count t64"), "subscribers 0");
    // Subscribing to one it has is still fine at the limit.
    assert_eq!(client.ask("sub t0"), "subscribed");
    assert_eq!(client.ask("unsub t0"), "unsubscribed true");
    assert_eq!(client.ask("sub t64"), "subscribed");

    let mut fresh = runner.connect("/topics");
    let longest = "n".repeat(256);
    assert_eq!(fresh.ask(&format!("sub {longest}")), "subscribed");
    assert_eq!(fresh.ask(&format!("sub {longest}n")), "bad-name");
    assert_eq!(fresh.ask(&format!("count {longest}")), "subscribers 1");
    // An empty name (a trailing space makes the word empty).
    assert_eq!(fresh.ask("sub "), "bad-name");
    // Multibyte names count bytes: 128 × 2 bytes fits, one more character does not.
    let wide = "é".repeat(128);
    assert_eq!(fresh.ask(&format!("sub {wide}")), "subscribed");
    assert_eq!(fresh.ask(&format!("sub {wide}é")), "bad-name");

    // A refused subscription in `handle` is the guest's to report (here a 400).
    let (head, _stream) = runner.upgrade_head(&format!("/topics?sub={longest}n"), &[]);
    assert!(head.starts_with("http/1.1 400"), "{head}");
}

#[test]
fn topic_limits_follow_the_flags() {
    let runner = Runner::with_test_handler(&["--max-topics", "3", "--max-topic-len", "8"]);
    let mut client = runner.connect("/topics");
    let limits = client.ask("limits");
    assert!(
        limits.starts_with("max-topics 3 max-topic-len 8 "),
        "{limits}"
    );
    assert_eq!(client.ask("subn x 4"), "subscribed 3 then too-many");
    assert_eq!(client.ask("unsub x0"), "unsubscribed true");
    assert_eq!(client.ask("sub 12345678"), "subscribed");
    assert_eq!(client.ask("unsub x1"), "unsubscribed true");
    assert_eq!(client.ask("sub 123456789"), "bad-name");
}

#[test]
fn one_publishers_messages_arrive_in_order_between_the_subscribers_own() {
    let runner = Runner::with_test_handler(&[]);
    let count = 40;
    let mut subscribers: Vec<Client> = (0..count).map(|_| subscriber(&runner, &["tick"])).collect();
    let mut publisher = runner.connect("/flood");
    // 200 publishes of 1 KiB in one guest call, while each subscriber also echoes.
    publisher.send(Message::text("pub tick 200 1024"));
    for subscriber in &mut subscribers {
        subscriber.send(Message::text("pub nothing mine"));
    }
    assert_eq!(publisher.text(), format!("published {}", 200 * count));
    for (i, subscriber) in subscribers.iter_mut().enumerate() {
        let mut next = 0u32;
        let mut answered = false;
        while next < 200 || !answered {
            match subscriber.next() {
                Ok(Message::Binary(data)) => {
                    assert_eq!(data.len(), 1024);
                    let index = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                    assert_eq!(index, next, "subscriber {i}");
                    assert!(data[4..].iter().all(|&b| b == 0x5a), "a frame was cut");
                    next += 1;
                }
                Ok(Message::Text(text)) => {
                    assert_eq!(text.as_str(), "published 0", "subscriber {i}");
                    answered = true;
                }
                other => panic!("subscriber {i}: {other:?}"),
            }
        }
    }
}

#[test]
fn subscriptions_made_for_a_refused_upgrade_are_dropped() {
    let runner = Runner::with_test_handler(&[]);
    // A plain GET: the guest subscribes in `handle`, then answers 400 (no upgrade). The
    // connection stays open; its subscription must not.
    let mut http = std::net::TcpStream::connect(runner.addr).expect("connect");
    http.set_read_timeout(Some(common::IO_TIMEOUT))
        .expect("timeout");
    let request = format!(
        "GET /topics?sub=ghost HTTP/1.1\r\nHost: {}\r\n\r\n",
        runner.addr
    );
    std::io::Write::write_all(&mut http, request.as_bytes()).expect("write");
    let response = common::read_response(&mut http);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    let mut publisher = runner.connect("/topics");
    assert_eq!(publisher.ask("count ghost"), "subscribers 0");
    assert_eq!(publisher.ask("pub ghost boo"), "published 0");
    // The same on an upgrade that the guest accepts counts.
    let _member = subscriber_from_handle(&runner, &["ghost"]);
    assert_eq!(publisher.ask("count ghost"), "subscribers 1");
}

#[test]
fn nothing_is_published_to_a_closing_subscriber() {
    let runner = Runner::with_test_handler(&["--handshake-timeout", "3s"]);
    // A raw client never answers the close frame: its connection stays closing.
    let mut closing = runner.connect_raw("/topics");
    let peer = closing.stream.local_addr().expect("local address");
    closing.send(common::TEXT, b"sub room").expect("send");
    assert_eq!(
        closing.read_frame().expect("read"),
        Some((common::TEXT, b"subscribed".to_vec()))
    );
    let mut member = subscriber(&runner, &["room"]);
    let mut publisher = runner.connect("/topics");
    assert_eq!(publisher.ask("pub room before"), "published 2");
    assert_eq!(member.text(), "before");
    assert_eq!(
        closing.read_frame().expect("read"),
        Some((common::TEXT, b"before".to_vec()))
    );

    closing
        .send(common::TEXT, b"close")
        .expect("send the command");
    let (opcode, payload) = closing
        .read_frame()
        .expect("read")
        .expect("the close frame");
    assert_eq!(opcode, common::CLOSE);
    assert_eq!(common::close_code(&payload), Some(4000));
    runner.wait_for_line(peer, "send after close: closed");
    assert_eq!(publisher.ask("pub room after"), "published 1");
    assert_eq!(member.text(), "after");
    // Until the runner gives up on it: no frame after the close frame.
    let frames = closing.read_to_end().expect("read");
    assert!(frames.is_empty(), "after the close frame: {frames:?}");
}

#[test]
fn a_subscription_made_in_handle_counts_once_the_101_arrived() {
    // A client that has its 101 is subscribed: a publish or count made after it cannot
    // miss it. (Joins in a row, each checked at once, to catch a window after the 101.)
    let runner = Runner::with_test_handler(&[]);
    let mut publisher = runner.connect("/topics");
    let mut members = Vec::new();
    let mut misses = Vec::new();
    for i in 0..300 {
        let topic = format!("join{}", i % 3);
        members.push(subscriber_from_handle(&runner, &[&topic]));
        let answer = publisher.ask(&format!("count {topic}"));
        if answer != format!("subscribers {}", i / 3 + 1) {
            misses.push(format!("join {}: {answer}", i + 1));
        }
    }
    assert!(misses.is_empty(), "{misses:?}");
}

#[test]
fn deliveries_reach_a_client_whose_guest_is_busy() {
    let runner = Runner::with_test_handler(&["--guest-cpu", "20s"]);
    let mut busy = runner.connect("/sleep?sub=news");
    let mut publisher = runner.connect("/topics");
    // The subscriber's guest sleeps 6 s in on-message; the publish is written meanwhile,
    // by the host, not after the call.
    busy.send(Message::text("6000"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(publisher.ask("pub news while you sleep"), "published 1");
    assert_eq!(
        busy.within(Duration::from_secs(3)),
        Some(Ok(Message::text("while you sleep")))
    );
    assert_eq!(busy.text(), "6000");
}

#[test]
fn clients_that_reset_around_their_101_leave_no_subscription() {
    let runner = Runner::with_test_handler(&[]);
    // Upgrade requests whose `handle` subscribes, then sleeps 300 ms, from clients that
    // reset the connection 250 to 350 ms in: around the time the guest accepts and the
    // runner writes the 101.
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(runner.addr).expect("connect");
            let request = format!(
                "GET /topics?sub=leak&sleep=300 HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Version: 13\r\n\r\n",
                runner.addr
            );
            std::io::Write::write_all(&mut stream, request.as_bytes()).expect("write");
            // SO_LINGER 0: the close is a reset, as from a client that crashed.
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .expect("SO_LINGER");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(250));
    for client in clients {
        drop(client);
        std::thread::sleep(Duration::from_millis(5));
    }
    // Past the handles' sleep, the count must come back to 0.
    std::thread::sleep(Duration::from_millis(1000));
    let mut counter = runner.connect("/topics");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let count = counter.ask("count leak");
        if count == "subscribers 0" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {count} after the clients left"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn concurrent_publishers_each_keep_their_order() {
    let runner = Runner::with_test_handler(&[]);
    let mut subscribers: Vec<Client> = (0..20).map(|_| subscriber(&runner, &["mix"])).collect();
    let count = 100;
    let publishers: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let mut publisher = runner.connect("/topics");
            std::thread::spawn(move || {
                for i in 0..count {
                    let answer = publisher.ask(&format!("pub mix {name}-{i}"));
                    assert_eq!(answer, "published 20");
                }
            })
        })
        .collect();
    for (s, subscriber) in subscribers.iter_mut().enumerate() {
        let mut next = [0; 3];
        for _ in 0..3 * count {
            let text = subscriber.text();
            let (name, i) = text.split_once('-').expect("NAME-I");
            let slot = usize::from(name.as_bytes()[0] - b'a');
            assert_eq!(i, next[slot].to_string(), "subscriber {s}: {text}");
            next[slot] += 1;
        }
    }
    for publisher in publishers {
        publisher.join().expect("a publisher");
    }
}
