//! `--metrics ADDR`: a scrape of `GET /metrics` reports what the runner did, in the
//! Prometheus text format.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{IO_TIMEOUT, Runner, log_field};
use tungstenite::Message;

/// The metrics address the runner logged.
fn metrics_addr(runner: &Runner) -> SocketAddr {
    let log = runner.wait_for_log("metrics at http://");
    let line = log
        .lines()
        .find(|line| line.contains("metrics at http://"))
        .expect("the runner logs where its metrics are");
    log_field(line, "addr")
        .expect("an addr field")
        .parse()
        .expect("a socket address")
}

/// One plain HTTP/1.1 GET; the whole response.
fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics port");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    response
}

/// Every sample of a scrape, by series (`name{labels}`). Also checks the exposition's
/// shape: every sample belongs to a family announced by `# TYPE`.
fn scrape(addr: SocketAddr) -> HashMap<String, i64> {
    let response = get(addr, "/metrics");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let mut families = Vec::new();
    let mut samples = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().expect("a family name");
            families.push(name.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            let family = series.split('{').next().expect("a name");
            assert!(families.iter().any(|f| f == family), "{line} has no # TYPE");
            samples.insert(series.to_owned(), value.parse().expect("an integer value"));
        }
    }
    samples
}

/// Scrapes until `ready` holds (up to 10 s); the last scrape.
fn scrape_until(
    addr: SocketAddr,
    ready: impl Fn(&HashMap<String, i64>) -> bool,
) -> HashMap<String, i64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let samples = scrape(addr);
        if ready(&samples) || Instant::now() > deadline {
            return samples;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn value(samples: &HashMap<String, i64>, series: &str) -> i64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:?}"))
}

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
