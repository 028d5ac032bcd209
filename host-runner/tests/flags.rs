//! Out-of-range and malformed flag values are refused at startup (status 2) with a message
//! naming the flag, instead of overflowing a deadline or panicking later.

mod common;

use common::refused_flags;

/// u64::MAX seconds: overflows `Instant + Duration` and the epoch deadline.
const HUGE: &str = "18446744073709551615s";

fn huge_duration_is_refused(flag: &str) {
    let stderr = refused_flags(&[flag, HUGE]);
    assert!(stderr.contains(flag), "{flag}: {stderr}");
    assert!(stderr.contains("at most 365 days"), "{flag}: {stderr}");
}

#[test]
fn huge_guest_cpu_is_refused() {
    huge_duration_is_refused("--guest-cpu");
}

#[test]
fn huge_idle_timeout_is_refused() {
    huge_duration_is_refused("--idle-timeout");
    // Minutes overflow on their own way (multiplied by 60).
    let stderr = refused_flags(&["--idle-timeout", "999999999999999999m"]);
    assert!(stderr.contains("at most 365 days"), "{stderr}");
}

#[test]
fn huge_handshake_timeout_is_refused() {
    huge_duration_is_refused("--handshake-timeout");
}

#[test]
fn huge_shutdown_timeout_is_refused() {
    huge_duration_is_refused("--shutdown-timeout");
}

#[test]
fn numbers_too_large_to_read_are_refused() {
    let stderr = refused_flags(&["--guest-cpu", "99999999999999999999999s"]);
    assert!(stderr.contains("too large"), "{stderr}");
    let stderr = refused_flags(&["--max-request-body", "99999999999GiB"]);
    assert!(stderr.contains("too large"), "{stderr}");
}

#[test]
fn malformed_origins_are_refused() {
    for origin in [
        "app.example",
        "https://app.example/path",
        "https://",
        "https://user@app.example",
        "https://app.example:port",
        "*",
    ] {
        let stderr = refused_flags(&["--allowed-origin", origin]);
        assert!(stderr.contains("--allowed-origin"), "{origin}: {stderr}");
        assert!(
            stderr.contains("expected an origin like"),
            "{origin}: {stderr}"
        );
    }
}

#[test]
fn a_per_address_cap_above_the_total_is_refused() {
    let stderr = refused_flags(&[
        "--max-connections",
        "10",
        "--max-connections-per-address",
        "11",
    ]);
    assert!(stderr.contains("--max-connections-per-address"), "{stderr}");
    assert!(stderr.contains("cannot exceed"), "{stderr}");
}

#[test]
fn more_connections_than_a_process_can_hold_are_refused() {
    // With small guests the reservation check passes; before, the instance pool's own
    // bookkeeping (56 GB for 10^9 slots) aborted the process at startup.
    let stderr = refused_flags(&[
        "--max-connections",
        "1000000000",
        "--guest-memory",
        "64KiB",
        "--max-message-size",
        "16KiB",
        "--max-frame-size",
        "16KiB",
    ]);
    assert!(stderr.contains("--max-connections"), "{stderr}");
    assert!(stderr.contains("at most"), "{stderr}");
}

#[test]
fn topic_limits_below_one_are_refused() {
    for flag in ["--max-topics", "--max-topic-len"] {
        let stderr = refused_flags(&[flag, "0"]);
        assert!(stderr.contains(flag), "{flag}: {stderr}");
        assert!(stderr.contains("at least 1"), "{flag}: {stderr}");
    }
}

#[test]
fn cluster_flags_that_cannot_work_are_refused_before_connecting() {
    // No NATS listens on port 1: a refusal must come from the flags, not the connection.
    let url = "nats://127.0.0.1:1";
    let stderr = refused_flags(&["--cluster", url, "--cluster-name", "a.b"]);
    assert!(stderr.contains("--cluster-name"), "{stderr}");
    let stderr = refused_flags(&["--cluster", url, "--max-topic-len", "4KiB"]);
    assert!(stderr.contains("--max-topic-len"), "{stderr}");
    let stderr = refused_flags(&["--cluster-token", "secret"]);
    assert!(stderr.contains("--cluster"), "{stderr}");
}

#[test]
fn deflate_values_out_of_range_are_refused() {
    for (flag, value) in [
        ("--deflate", "always"),
        ("--deflate-level", "10"),
        ("--deflate-window-bits", "8"),
        ("--deflate-window-bits", "16"),
        ("--deflate-mem-level", "0"),
        ("--deflate-threshold", "lots"),
    ] {
        let stderr = refused_flags(&[flag, value]);
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
}

#[test]
fn what_every_connection_keeps_has_sanity_caps() {
    for (flag, value) in [
        ("--max-attachment", "2MiB"),
        ("--max-auto-responses", "65"),
        ("--max-auto-response-size", "65KiB"),
        ("--max-topics", "5000"),
    ] {
        let stderr = refused_flags(&[flag, value]);
        assert!(
            stderr.contains(&format!("{flag} can be at most")),
            "{flag} {value}: {stderr}"
        );
    }
}

#[test]
fn the_state_every_connection_may_keep_is_stated_at_startup() {
    let runner = common::Runner::start(&["--max-attachment", "1MiB"]);
    let log = runner.wait_for_log("connection state bound");
    let line = log
        .lines()
        .find(|line| line.contains("connection state bound"))
        .unwrap_or_else(|| panic!("{log}"));
    // 1 MiB + 8 × 2 × 2 KiB + 64 × (256 bytes of name + 2 × 256 of presence info).
    assert!(line.contains("per_connection=1130496"), "{line}");
}
