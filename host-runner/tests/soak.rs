//! The soak benchmark (examples/soak.rs) for 30 s with 500 connections: echo, publish and
//! pauses on both sides of `--hibernate-after 1s`, with a reload half-way. Nothing may be
//! lost, duplicated or corrupted, no connection may drop, and connections must have
//! hibernated and woken.

mod common;
#[path = "../examples/soak_load/mod.rs"]
mod soak_load;

use std::time::Duration;

use common::{Runner, log_field};

const CONNECTIONS: usize = 500;

#[test]
fn five_hundred_connections_for_thirty_seconds_lose_nothing() {
    let runner = Runner::with_test_handler(&["--hibernate-after", "1s"]);
    let config = soak_load::Config {
        addr: runner.addr,
        connections: CONNECTIONS,
        duration: Duration::from_secs(30),
        max_idle: Duration::from_secs(1),
        group_size: 10,
        reload_pid: Some(runner.pid()),
        rss_pid: Some(runner.pid()),
    };
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(soak_load::run(config));
    eprintln!("{report:?}");
    assert!(report.clean(CONNECTIONS), "{report:?}");
    // Both kinds of traffic ran: 10 groups published to 9 subscribers each.
    assert!(report.published >= 9 * 10, "{report:?}");
    // Every message sent was answered once, and every delivery counted once.
    assert_eq!(
        report.received,
        report.sent + report.published,
        "{report:?}"
    );
    assert!(report.sent > CONNECTIONS as u64, "{report:?}");
    // The runner was sampled throughout: its RSS did not keep growing after the warm-up
    // (the first third), within 25% and 8 MiB.
    let third = report.rss_kib.len() / 3;
    assert!(third > 0, "{report:?}");
    let warm = report.rss_kib[third..].iter().min().copied().unwrap_or(0);
    let last = report.rss_kib.last().copied().unwrap_or(0);
    assert!(
        last <= warm + warm / 4 + 8 * 1024,
        "RSS grew: {:?}",
        report.rss_kib
    );

    let log = runner.wait_for_log("handler reloaded");
    assert!(log.contains("handler reloaded"), "no reload:\n{log}");
    // Every connection closed cleanly, and between them they woke from hibernation.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let closed = loop {
        let log = runner.log();
        let closed: Vec<String> = log
            .lines()
            .filter(|line| line.contains("websocket closed"))
            .map(str::to_owned)
            .collect();
        if closed.len() >= CONNECTIONS || std::time::Instant::now() > deadline {
            break closed;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(closed.len(), CONNECTIONS);
    let wakes: u64 = closed
        .iter()
        .filter_map(|line| log_field(line, "wakes")?.parse::<u64>().ok())
        .sum();
    assert!(wakes >= CONNECTIONS as u64, "only {wakes} wakes");
    let codes = closed
        .iter()
        .filter_map(|line| log_field(line, "close_code"));
    assert!(codes.clone().all(|code| code == "1000"), "{closed:?}");
}
