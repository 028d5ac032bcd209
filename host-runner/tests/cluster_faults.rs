//! A cluster's faults, with a real nats-server the tests start, kill and restart on a free
//! port: NATS lost while running (local traffic goes on, remote traffic is dropped and comes
//! back, each transition logged once), a runner killed (the others forget its subscribers and
//! its ids), NATS unreachable at start (a clear error), and the metrics that show the link.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::nats::{Nats, publish, subscriber, two_runners, wait_for_count, wait_for_subscribers};
use common::scrape::{metrics_addr, scrape, scrape_until, value};
use common::{Client, IO_TIMEOUT};
use tungstenite::Message;

/// How long a runner may take to reconnect after nats-server came back (async-nats backs
/// off between attempts).
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Publishes probes from `publisher` until one reaches `remote` (the link may be back
/// before the other node subscribed again); `local` gets every probe meanwhile. Then sends
/// `tag 0` … `tag 9` and checks that `remote` gets them in order, once, after any late
/// probes.
fn until_it_crosses(publisher: &mut Client, local: &mut Client, remote: &mut Client, tag: &str) {
    let deadline = Instant::now() + RECONNECT_TIMEOUT;
    for i in 0.. {
        publish(publisher, &format!("pub t probe {i}"));
        assert_eq!(local.text(), format!("probe {i}"));
        if let Some(crossed) = remote.within(Duration::from_millis(200)) {
            assert!(
                matches!(&crossed, Ok(Message::Text(text)) if text.starts_with("probe ")),
                "{crossed:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no probe crossed in {i} tries");
    }
    for n in 0..10 {
        publish(publisher, &format!("pub t {tag} {n}"));
        assert_eq!(local.text(), format!("{tag} {n}"));
    }
    let mut next = 0;
    while next < 10 {
        let text = remote.text();
        if !text.starts_with("probe ") {
            assert_eq!(text, format!("{tag} {next}"));
            next += 1;
        }
    }
    assert_eq!(remote.within(Duration::from_millis(300)), None);
}

#[test]
fn nats_killed_and_restarted_local_traffic_goes_on_and_remote_resumes() {
    let mut nats = Nats::start();
    let (a, b) = two_runners(&nats, &[]);
    let mut on_a = subscriber(&a, "t");
    let mut on_b = subscriber(&b, "t");
    let mut publisher_a = a.connect("/topics");
    let mut publisher_b = b.connect("/topics");
    let mut echo_a = a.connect("/none");
    let mut echo_b = b.connect("/none");
    let mut sender = a.connect("/send-to");
    let _ = sender.text();
    let mut target = b.connect("/id");
    let target_id = target.text();
    wait_for_subscribers(&mut publisher_a, "t", 2);
    wait_for_subscribers(&mut publisher_b, "t", 2);
    until_it_crosses(&mut publisher_a, &mut on_a, &mut on_b, "before");

    nats.kill();
    for runner in [&a, &b] {
        assert_eq!(
            wait_for_count(runner, "cluster link lost", 1, IO_TIMEOUT),
            1,
            "{}",
            runner.log()
        );
    }
    // Each runner serves its own clients as before; nothing crosses.
    for (publisher, local, echo) in [
        (&mut publisher_a, &mut on_a, &mut echo_a),
        (&mut publisher_b, &mut on_b, &mut echo_b),
    ] {
        echo.echo("still here");
        for n in 0..5 {
            publish(publisher, &format!("pub t alone {n}"));
            assert_eq!(local.text(), format!("alone {n}"));
        }
    }
    assert_eq!(on_a.within(Duration::from_millis(500)), None);
    assert_eq!(on_b.within(Duration::from_millis(100)), None);
    assert_eq!(sender.ask(&format!("{target_id}:lost?")), "unreachable");
    assert_eq!(target.within(Duration::from_millis(100)), None);
    // Cut off, each runner counts its own subscribers only.
    wait_for_subscribers(&mut publisher_a, "t", 1);
    wait_for_subscribers(&mut publisher_b, "t", 1);

    nats.restart();
    for runner in [&a, &b] {
        assert_eq!(
            wait_for_count(runner, "cluster link restored", 1, RECONNECT_TIMEOUT),
            1,
            "{}",
            runner.log()
        );
    }
    wait_for_subscribers(&mut publisher_a, "t", 2);
    wait_for_subscribers(&mut publisher_b, "t", 2);
    until_it_crosses(&mut publisher_a, &mut on_a, &mut on_b, "after");
    until_it_crosses(&mut publisher_b, &mut on_b, &mut on_a, "back");
    assert_eq!(sender.ask(&format!("{target_id}:back")), "ok");
    assert_eq!(target.text(), "back");

    // One line per transition, however many reconnection attempts there were.
    for runner in [&a, &b] {
        let log = runner.log();
        assert_eq!(log.matches("cluster link lost").count(), 1, "{log}");
        assert_eq!(log.matches("cluster link restored").count(), 1, "{log}");
    }
}

#[test]
fn a_killed_runner_drops_out_of_the_counts_and_its_ids_are_gone() {
    let nats = Nats::start();
    let (a, b) = two_runners(&nats, &[]);
    let mut on_a = subscriber(&a, "t");
    let _on_b: Vec<Client> = (0..3).map(|_| subscriber(&b, "t")).collect();
    let mut publisher = a.connect("/topics");
    let mut sender = a.connect("/send-to");
    let _ = sender.text();
    let mut closer = a.connect("/close-other");
    let _ = closer.text();
    let mut target = b.connect("/id");
    let target_id = target.text();
    wait_for_subscribers(&mut publisher, "t", 4);
    assert_eq!(sender.ask(&format!("{target_id}:alive?")), "ok");
    assert_eq!(target.text(), "alive?");

    // Dropping a Runner kills it with SIGKILL: no goodbye reaches the cluster.
    drop(b);
    let took = wait_for_subscribers(&mut publisher, "t", 1);
    eprintln!("the killed runner's subscribers left the count after {took:?}");
    // Expiry is 3 s after the last heartbeat, with room for a loaded CI machine.
    assert!(took < Duration::from_secs(8), "{took:?} (bound: 3 s)");

    publish(&mut publisher, "pub t still served");
    assert_eq!(on_a.text(), "still served");
    let mut echo = a.connect("/none");
    echo.echo("still here");
    assert_eq!(sender.ask(&format!("{target_id}:dead?")), "gone");
    assert_eq!(closer.ask(&target_id), "gone");
}

#[test]
fn nats_unreachable_at_start_is_a_clear_error() {
    // A port bound but not listening: connections to it are refused, and no other process
    // can take it while the test runs.
    let closed =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    closed
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    let port = closed
        .local_addr()
        .ok()
        .and_then(|addr| addr.as_socket())
        .expect("a bound address")
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsbox-runner"))
        .env("WSBOX_DATA_DIR", "memory")
        .args(["--listen", "127.0.0.1:0", "--cluster", &url])
        .args(["--cluster-connect-timeout", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wsbox-runner");
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(20) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    let _ = child.kill();
    let output = child.wait_with_output().expect("runner output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("cannot reach the cluster at"), "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
    assert!(!stdout.contains("listening"), "{stdout}");
    eprintln!("gave up after {took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[test]
fn metrics_show_the_link_and_the_publishes_that_cross_it() {
    let mut nats = Nats::start();
    let (a, b) = two_runners(&nats, &["--metrics", "127.0.0.1:0"]);
    let (metrics_a, metrics_b) = (metrics_addr(&a), metrics_addr(&b));
    let before_a = scrape(metrics_a);
    let before_b = scrape(metrics_b);
    for before in [&before_a, &before_b] {
        assert_eq!(value(before, "wsbox_cluster_connected"), 1);
        // Present from the start, so that a dashboard has a series to plot.
        value(before, "wsbox_cluster_publishes_dropped_total");
        value(before, "wsbox_cluster_reconnects_total");
    }
    let sent = |s: &_| value(s, "wsbox_cluster_publishes_sent_total");
    let received = |s: &_| value(s, "wsbox_cluster_publishes_received_total");
    let sends = |s: &_| value(s, "wsbox_cluster_sends_total");

    let mut on_b = subscriber(&b, "m");
    let mut on_a = subscriber(&a, "lonely");
    let mut publisher = a.connect("/topics");
    wait_for_subscribers(&mut publisher, "m", 1);
    for i in 0..3 {
        publish(&mut publisher, &format!("pub m {i}"));
        assert_eq!(on_b.text(), i.to_string());
    }
    let after_a = scrape_until(metrics_a, |s| sent(s) >= sent(&before_a) + 3);
    assert!(sent(&after_a) >= sent(&before_a) + 3, "{after_a:?}");
    let after_b = scrape_until(metrics_b, |s| received(s) >= received(&before_b) + 3);
    assert!(received(&after_b) >= received(&before_b) + 3, "{after_b:?}");

    // B follows only the topics it has subscribers of: of these two publishes, in this
    // order, it receives the second alone.
    publish(&mut publisher, "pub lonely here only");
    assert_eq!(on_a.text(), "here only");
    publish(&mut publisher, "pub m marker");
    assert_eq!(on_b.text(), "marker");
    let expected = received(&after_b) + 1;
    let after_b = scrape_until(metrics_b, |s| received(s) >= expected);
    assert_eq!(received(&after_b), expected, "{after_b:?}");

    let mut sender = a.connect("/send-to");
    let _ = sender.text();
    let mut target = b.connect("/id");
    let target_id = target.text();
    assert_eq!(sender.ask(&format!("{target_id}:routed")), "ok");
    assert_eq!(target.text(), "routed");
    let routed = scrape_until(metrics_a, |s| sends(s) > sends(&after_a));
    assert!(sends(&routed) > sends(&after_a), "{routed:?}");

    nats.kill();
    let dropped = |s: &_| value(s, "wsbox_cluster_publishes_dropped_total");
    let down = scrape_until(metrics_a, |s| s.get("wsbox_cluster_connected") == Some(&0));
    assert_eq!(value(&down, "wsbox_cluster_connected"), 0);
    // B's subscriber is still counted (for up to 3 s): this publish was for B, and is lost.
    publish(&mut publisher, "pub m lost");
    let lost = scrape_until(metrics_a, |s| dropped(s) > dropped(&down));
    assert!(dropped(&lost) > dropped(&down), "{lost:?}");
    let down = scrape_until(metrics_b, |s| s.get("wsbox_cluster_connected") == Some(&0));
    assert_eq!(value(&down, "wsbox_cluster_connected"), 0);
    nats.restart();
    for (runner, addr) in [(&a, metrics_a), (&b, metrics_b)] {
        wait_for_count(runner, "cluster link restored", 1, RECONNECT_TIMEOUT);
        let up = scrape_until(addr, |s| s.get("wsbox_cluster_connected") == Some(&1));
        assert_eq!(value(&up, "wsbox_cluster_connected"), 1);
        assert!(value(&up, "wsbox_cluster_reconnects_total") >= 1, "{up:?}");
    }
}
