//! `--memory-budget`: the linear memory of all live instances together. Many connections
//! that each need more memory than the budget leaves for a second one are all answered, one
//! after the other, and the runner's RSS never passes the budget plus a stated overhead; a
//! growth the budget can never hold fails with 1011; a budget too small for one instance
//! answers new connections 503.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Runner, rss};

const MIB: u64 = 1 << 20;
/// `--memory-budget`: room for one instance grown by [`GROW_MIB`], not for two.
const BUDGET_MIB: u64 = 24;
/// What each `/grow` message allocates and touches.
const GROW_MIB: u64 = 16;
const CONNECTIONS: usize = 12;
/// `--max-message-size`: the host's read and write buffers per connection stay below it.
const MAX_MESSAGE: u64 = 64 * 1024;
/// What a connection costs the runner outside the budget while its call waits for it: the
/// fiber stack the call runs on (2 MiB, resident as deep as the call went), and 208 KiB of
/// slack for its instance's tables and host-side state (a freed pool slot keeps nothing
/// resident: see `KEEP_RESIDENT_*` in the runner's engine).
const PER_CALL: u64 = 2 * MIB + 208 * 1024;

/// Samples `pid`'s RSS every 2 ms while `work` runs; returns the highest sample.
fn peak_rss_during(pid: u32, work: impl FnOnce()) -> u64 {
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss(pid));
                std::thread::sleep(Duration::from_millis(2));
            }
            peak.max(rss(pid))
        })
    };
    work();
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("the sampler")
}

/// The runner with the budget and message size above; a growth may wait for the budget
/// as long as its call may run (`guest_cpu`).
fn budget_runner(guest_cpu: &str, extra: &[&str]) -> Runner {
    let budget = format!("{BUDGET_MIB}MiB");
    let max_message = MAX_MESSAGE.to_string();
    let mut args = vec![
        "--memory-budget",
        &budget,
        "--max-message-size",
        &max_message,
        "--max-frame-size",
        &max_message,
        "--guest-cpu",
        guest_cpu,
    ];
    args.extend_from_slice(extra);
    Runner::with_test_handler(&args)
}

/// Twelve connections each ask for [`GROW_MIB`] three times at once; every request is
/// answered, and the RSS stays within
/// `baseline + budget + connections × (max message size + PER_CALL)`, where the baseline is
/// the RSS after one such request was served and its instance dropped (code, pools, one
/// connection's host state). (Measured: about 32 MiB over the baseline with the budget,
/// 170 MiB without.)
fn many_large_requests_stay_in_budget(extra: &[&str]) {
    // Generous: twelve calls may have to run one after the other on a loaded machine.
    let runner = budget_runner("20s", extra);
    let pid = runner.pid();
    let mut warm = runner.connect("/grow");
    assert_eq!(warm.ask(&GROW_MIB.to_string()), format!("grew {GROW_MIB}"));
    warm.close(1000, "warm");
    let _ = warm.expect_close();
    std::thread::sleep(Duration::from_millis(500));
    let baseline = rss(pid);

    let peak = peak_rss_during(pid, || {
        std::thread::scope(|scope| {
            for i in 0..CONNECTIONS {
                let runner = &runner;
                scope.spawn(move || {
                    let mut client = runner.connect("/grow");
                    for round in 0..3 {
                        assert_eq!(
                            client.ask(&GROW_MIB.to_string()),
                            format!("grew {GROW_MIB}"),
                            "connection {i}, round {round}"
                        );
                    }
                });
            }
        });
    });
    let limit = baseline + BUDGET_MIB * MIB + CONNECTIONS as u64 * (MAX_MESSAGE + PER_CALL);
    eprintln!(
        "RSS baseline {} KiB, peak {} KiB, limit {} KiB",
        baseline / 1024,
        peak / 1024,
        limit / 1024
    );
    assert!(
        peak <= limit,
        "peak RSS {peak} > baseline {baseline} + budget + per-connection overhead = {limit}"
    );
}

#[test]
fn large_requests_of_hibernating_connections_stay_in_budget() {
    many_large_requests_stay_in_budget(&["--hibernate-after", "0"]);
}

#[test]
fn large_requests_of_live_connections_stay_in_budget() {
    // Each instance grew past twice its initial memory, so it is dropped after the call
    // however recent its last one.
    many_large_requests_stay_in_budget(&[]);
}

#[test]
fn a_growth_the_budget_can_never_hold_fails_with_1011() {
    let runner = budget_runner("1s", &["--hibernate-after", "0"]);
    let mut client = runner.connect("/grow");
    let peer = client.local_addr();
    client.send(tungstenite::Message::text((BUDGET_MIB + 1).to_string()));
    assert_eq!(
        client.expect_close(),
        Some(tungstenite::protocol::frame::coding::CloseCode::Error)
    );
    // The budget refused it, not --guest-memory.
    runner.wait_for_line(peer, "--memory-budget is exhausted");
    runner.wait_for_line(peer, "websocket closed");
    // What it held was given back: the next connection grows as far as the budget allows.
    let mut next = runner.connect("/grow");
    assert_eq!(next.ask(&GROW_MIB.to_string()), format!("grew {GROW_MIB}"));
}

#[test]
fn a_budget_too_small_for_one_instance_answers_503() {
    let runner = Runner::with_test_handler(&["--memory-budget", "64KiB"]);
    let (head, mut stream) = runner.upgrade_head("/none", &[]);
    assert!(head.starts_with("http/1.1 503"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    let mut body = vec![0; length];
    std::io::Read::read_exact(&mut stream, &mut body).expect("read the body");
    assert_eq!(body, b"memory budget exhausted\n");
    // Plain requests too: every connection needs an instance.
    let response = runner.raw(
        format!(
            "GET /whoami HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            runner.addr
        )
        .as_bytes(),
    );
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(
        response.ends_with("memory budget exhausted\n"),
        "{response}"
    );
}

#[test]
fn a_wake_the_budget_cannot_hold_is_told_to_try_again_later() {
    // The test handler's instance starts with 128 KiB (a 64 KiB stack, .cargo/config.toml,
    // and its data): this budget holds one instance, not two.
    let runner = Runner::with_test_handler(&[
        "--memory-budget",
        "192KiB",
        "--hibernate-after",
        "0",
        "--handshake-timeout",
        "1s",
        "--guest-cpu",
        "20s",
    ]);
    let mut sleeper = runner.connect("/sleep");
    let mut waker = runner.connect("/none");
    waker.echo("while nobody else is awake");
    // The sleeper's call holds the only instance for 3 s; the waker waits 1 s for another.
    sleeper.send(tungstenite::Message::text("3000"));
    std::thread::sleep(Duration::from_millis(300));
    let peer = waker.local_addr();
    waker.send(tungstenite::Message::text("wake me"));
    assert_eq!(
        waker.expect_close(),
        Some(tungstenite::protocol::frame::coding::CloseCode::Again)
    );
    let closed = runner.wait_for_line(peer, "websocket closed");
    assert!(closed.contains("close_code=\"1013\""), "{closed}");
    // The sleeper was not disturbed, and once it is asleep again there is room.
    assert_eq!(sleeper.text(), "3000");
    let mut next = runner.connect("/none");
    next.echo("after");
}
