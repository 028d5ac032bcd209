//! Scrapes a runner's `--metrics` endpoint (Prometheus text) and checks its shape.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{IO_TIMEOUT, Runner, log_field};

/// The metrics address the runner logged.
pub fn metrics_addr(runner: &Runner) -> SocketAddr {
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
pub fn get(addr: SocketAddr, path: &str) -> String {
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
pub fn scrape(addr: SocketAddr) -> HashMap<String, i64> {
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
pub fn scrape_until(
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

pub fn value(samples: &HashMap<String, i64>, series: &str) -> i64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:?}"))
}
