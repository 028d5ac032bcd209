//! `--metrics ADDR`: a scrape of `GET /metrics` reports what the runner did, in the
//! Prometheus text format.

mod common;

use common::Runner;
use common::scrape::{get, metrics_addr, scrape, scrape_until, value};
use tungstenite::Message;

#[test]
fn a_scrape_reports_websockets_messages_wakes_faults_and_memory() {
    let runner = Runner::with_test_handler(&[
        "--metrics",
        "127.0.0.1:0",
        "--hibernate-after",
        "0",
        "--memory-budget",
        "1GiB",
    ]);
    let addr = metrics_addr(&runner);
    let before = scrape(addr);
    assert_eq!(value(&before, "wsbox_websockets{state=\"live\"}"), 0);
    assert_eq!(value(&before, "wsbox_handler_version"), 1);
    assert_eq!(
        value(&before, "wsbox_guest_memory_bytes{kind=\"budget\"}"),
        1 << 30
    );

    let mut clients: Vec<_> = (0..2).map(|_| runner.connect("/auto")).collect();
    for client in &mut clients {
        assert_eq!(client.ask("hello"), "woke:hello");
        assert_eq!(client.ask("ping"), "pong");
    }
    // With --hibernate-after 0 both are hibernated once their calls returned.
    let idle = scrape_until(addr, |s| {
        s.get("wsbox_websockets{state=\"hibernated\"}") == Some(&2)
    });
    assert_eq!(value(&idle, "wsbox_websockets{state=\"hibernated\"}"), 2);
    assert_eq!(value(&idle, "wsbox_websockets{state=\"live\"}"), 0);
    assert_eq!(value(&idle, "wsbox_messages_received_total"), 4);
    assert_eq!(value(&idle, "wsbox_auto_responses_total"), 2);
    assert!(value(&idle, "wsbox_wakes_total") >= 2, "{idle:?}");
    assert!(value(&idle, "wsbox_hibernations_total") >= 2, "{idle:?}");
    assert!(value(&idle, "wsbox_bytes_total{direction=\"in\"}") > 0);
    assert!(value(&idle, "wsbox_bytes_total{direction=\"out\"}") > 0);
    assert!(value(&idle, "wsbox_guest_memory_bytes{kind=\"used\"}") <= 1 << 30);

    // A guest that traps is counted by kind.
    let mut trapping = runner.connect("/trap");
    trapping.send(Message::text("boom"));
    let _ = trapping.expect_close();
    let faulted = scrape_until(addr, |s| {
        s.get("wsbox_guest_faults_total{kind=\"trap\"}") == Some(&1)
    });
    assert_eq!(
        value(&faulted, "wsbox_guest_faults_total{kind=\"trap\"}"),
        1
    );
    assert_eq!(value(&faulted, "wsbox_guest_faults_total{kind=\"cpu\"}"), 0);

    for client in &mut clients {
        client.close(1000, "done");
    }
    let closed = scrape_until(addr, |s| {
        s.get("wsbox_websockets{state=\"live\"}") == Some(&0)
            && s.get("wsbox_websockets{state=\"hibernated\"}") == Some(&0)
    });
    assert_eq!(value(&closed, "wsbox_websockets{state=\"live\"}"), 0);
    assert_eq!(value(&closed, "wsbox_websockets{state=\"hibernated\"}"), 0);

    assert!(get(addr, "/other").starts_with("HTTP/1.1 404"));
}

#[test]
fn a_scrape_counts_what_was_compressed() {
    let runner = Runner::start(&["--metrics", "127.0.0.1:0"]);
    let addr = metrics_addr(&runner);
    let (mut client, agreed) = runner.connect_deflate("/", wsbox::deflate::Deflate::default());
    assert_eq!(
        agreed,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    let json = "{\"user\":\"ann\",\"text\":\"hello, world\"},".repeat(50);
    client.send_text(&json).expect("sends");
    client.send_text("short").expect("sends");
    for expected in [json.as_str(), "short"] {
        match client.recv().expect("reads") {
            Some(wsbox::Message::Text(text)) => assert_eq!(text, expected),
            other => panic!("not the echo: {other:?}"),
        }
    }
    let scraped = scrape_until(addr, |s| s.get("wsbox_deflate_messages_total") == Some(&1));
    // The short echo is under --deflate-threshold: sent as it is, not counted.
    assert_eq!(value(&scraped, "wsbox_deflate_messages_total"), 1);
    let raw = value(&scraped, "wsbox_deflate_bytes_total{stage=\"raw\"}");
    let compressed = value(&scraped, "wsbox_deflate_bytes_total{stage=\"compressed\"}");
    assert_eq!(raw, json.len() as i64);
    assert!(compressed * 10 < raw, "{compressed} of {raw} bytes");
    let _ = client.close(1000, "done");
}
