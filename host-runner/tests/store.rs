//! The store (`wit/store.wit`, `--data-*`): every call and its errors as values, one-step
//! increments from two connections, what survives a restart (keys, and histories with
//! their positions after a clean stop, a new epoch after a crash), and a data directory
//! that must stop the start: locked by another runner, corrupt, of a newer format. A full
//! disk (RLIMIT_FSIZE) loses history writes, counted, while delivery goes on.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Client, Runner};
use tungstenite::Message;

/// A fresh directory under the system's temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("wsbox-store-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn client(runner: &Runner) -> Client {
    runner.connect("/topics")
}

#[test]
fn every_call_works_and_errors_are_values() {
    let runner = Runner::with_test_handler(&["--data-namespace-quota", "10KiB"]);
    let mut c = client(&runner);
    assert_eq!(c.ask("kvget room topic"), "none");
    assert_eq!(c.ask("kvset room topic rust"), "ok");
    assert_eq!(c.ask("kvget room topic"), "value rust");
    assert_eq!(c.ask("kvset room b 1"), "ok");
    assert_eq!(c.ask("kvset room a 1"), "ok");
    assert_eq!(c.ask("kvset other a 1"), "ok");
    assert_eq!(c.ask("kvkeys room - - 10"), "keys a,b,topic");
    assert_eq!(c.ask("kvkeys room - a 1"), "keys b");
    assert_eq!(c.ask("kvkeys room t - 10"), "keys topic");
    assert_eq!(c.ask("kvdel room a"), "deleted true");
    assert_eq!(c.ask("kvdel room a"), "deleted false");
    assert_eq!(c.ask("kvinc room n 5"), "value 5");
    assert_eq!(c.ask("kvinc room n -7"), "value -2");
    assert_eq!(c.ask("kvinc room topic 1"), "not-a-number");
    assert_eq!(c.ask("kvset room big 9223372036854775807"), "ok");
    assert_eq!(c.ask("kvinc room big 1"), "overflow");
    assert_eq!(c.ask("kvcas room lock - me"), "swapped true");
    assert_eq!(c.ask("kvcas room lock - you"), "swapped false");
    assert_eq!(c.ask("kvcas room lock me -"), "swapped true");
    assert_eq!(c.ask("kvget room lock"), "none");
    // A time to live.
    assert_eq!(c.ask("kvset room brief x 150"), "ok");
    assert_eq!(c.ask("kvget room brief"), "value x");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.ask("kvget room brief"), "none");
    // Errors: an empty key, the runner's own namespace, a value over 1 MiB, the quota.
    assert_eq!(c.ask("kvget room -"), "bad-key");
    assert_eq!(c.ask("kvset nul clean-stop 1"), "bad-key");
    assert_eq!(c.ask("kvget nul clean-stop"), "bad-key");
    assert_eq!(
        c.ask(&format!("kvfill room huge {}", (1 << 20) + 1)),
        "too-large"
    );
    assert_eq!(c.ask("kvfill room half 6000"), "ok");
    assert_eq!(c.ask("kvfill room other-half 6000"), "quota");
    assert_eq!(c.ask("kvget room other-half"), "none");
    // Another namespace has its own quota.
    assert_eq!(c.ask("kvfill elsewhere half 6000"), "ok");
    // And still serving.
    assert_eq!(c.ask("kvget room topic"), "value rust");
}

#[test]
fn increments_from_two_connections_are_never_lost() {
    let runner = Runner::with_test_handler(&[]);
    let mut clients = [client(&runner), client(&runner)];
    const EACH: u32 = 200;
    for client in &mut clients {
        for _ in 0..EACH {
            client.send(Message::text("kvinc room visits 1"));
        }
    }
    for client in &mut clients {
        for _ in 0..EACH {
            assert!(client.text().starts_with("value "));
        }
    }
    assert_eq!(clients[0].ask("kvget room visits"), "value 400");
}

fn stop(mut runner: Runner, signal: i32) {
    let pid = i32::try_from(runner.pid()).expect("pid");
    // SAFETY: kill sends a signal to the runner this test started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    assert!(
        runner.wait_exit(Duration::from_secs(10)).is_some(),
        "runner did not stop"
    );
}

/// `from T E O` answers `from E O`: the epoch of an answer.
fn epoch(answer: &str) -> String {
    answer.split(' ').nth(1).expect("an epoch").to_owned()
}

#[test]
fn keys_and_histories_survive_a_restart() {
    let dir = Scratch::new("restart");
    let args = ["--data-dir", dir.path()];
    let runner = Runner::with_test_handler(&args);
    let mut c = client(&runner);
    assert_eq!(c.ask("kvset room topic kept"), "ok");
    assert_eq!(c.ask("history room 10 0"), "history on");
    for i in 1..=5 {
        assert_eq!(c.ask(&format!("pub room m{i}")), "published 0");
    }
    let before = epoch(&c.ask("head room"));
    drop(c);
    stop(runner, libc::SIGTERM);

    // A clean stop: the same epoch, and a resume from a position of before works.
    let runner = Runner::with_test_handler(&args);
    let mut c = client(&runner);
    assert_eq!(c.ask("kvget room topic"), "value kept");
    assert_eq!(c.ask("history room 10 0"), "history on");
    assert_eq!(c.ask("head room"), format!("head {before} 5"));
    assert_eq!(
        c.ask(&format!("from room {before} 3")),
        format!("from {before} 5")
    );
    assert!(c.text().ends_with(r#""offset":4},"data":"m4"}"#));
    assert!(c.text().ends_with(r#""offset":5},"data":"m5"}"#));
    // Live now: its own copy (include-self) comes before the answer.
    c.send(Message::text("pubself room m6"));
    assert!(c.text().ends_with(r#""offset":6},"data":"m6"}"#));
    assert_eq!(c.text(), "published 1");
    drop(c);
    // Flushed within the commit window, then the crash.
    std::thread::sleep(Duration::from_millis(200));
    stop(runner, libc::SIGKILL);

    // After a crash: what was committed is there, under a new epoch; the old one is gone.
    let runner = Runner::with_test_handler(&args);
    let mut c = client(&runner);
    assert_eq!(c.ask("kvget room topic"), "value kept");
    assert_eq!(c.ask("history room 10 0"), "history on");
    let head = c.ask("head room");
    assert_ne!(epoch(&head), before, "{head}");
    assert!(head.ends_with(" 6"), "{head}");
    assert_eq!(c.ask(&format!("from room {before} 5")), "gone");
    assert_eq!(c.ask("kept room 10"), "kept 1,2,3,4,5,6|m1|m2|m3|m4|m5|m6");
}

/// Runs the runner with `args` and expects it not to start: it exits within 10 s, and
/// its stderr says `expected`.
fn refused_start(args: &[&str], expected: &str) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wsbox-runner"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start wsbox-runner")
        .wait_with_output()
        .expect("wait");
    assert!(!output.status.success(), "started with {args:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
}

#[test]
fn a_data_dir_that_is_locked_corrupt_or_newer_stops_the_start() {
    let dir = Scratch::new("faults");
    let args = ["--data-dir", dir.path()];
    let runner = Runner::with_test_handler(&args);
    refused_start(&args, "another");
    drop(runner);

    let file = Path::new(dir.path()).join("store.redb");
    let good = std::fs::read(&file).expect("the store file");
    std::fs::write(&file, b"not a database at all, not even close").expect("garbage");
    refused_start(&args, "not a readable wsbox store");

    std::fs::write(&file, &good).expect("restore");
    {
        let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
        let db = redb::Database::open(&file).expect("open with redb");
        let tx = db.begin_write().expect("write");
        tx.open_table(meta)
            .expect("meta")
            .insert("format", 99)
            .expect("insert");
        tx.commit().expect("commit");
    }
    refused_start(&args, "run a newer wsbox");
    // And a path that cannot be a directory.
    refused_start(&["--data-dir", "/dev/null/store"], "cannot open the store");
}

/// A full disk: history writes fail and are counted; everyone still gets every message.
#[test]
fn a_full_disk_loses_history_writes_not_deliveries() {
    let dir = Scratch::new("full");
    let runner = Runner::start_under(
        &["prlimit", "--fsize=4194304"],
        &[
            "--handler",
            common::test_handler().to_str().expect("utf-8"),
            "--data-dir",
            dir.path(),
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let metrics = common::scrape::metrics_addr(&runner);
    let mut publisher = client(&runner);
    let mut reader = client(&runner);
    assert_eq!(publisher.ask("history room 1000 0"), "history on");
    assert_eq!(reader.ask("sub room"), "subscribed");
    let mut flood = runner.connect("/flood");
    // 400 × 32 KiB: 12.8 MB of history to write, past the 4 MiB the file may reach; in
    // batches the reader takes (its backpressure bound is 1 MiB).
    for batch in 0..16u64 {
        assert_eq!(flood.ask("pub room 25 32768"), "published 25");
        for i in 0..25 {
            let Ok(Message::Binary(data)) = reader.next() else {
                panic!("expected binary message {i} of batch {batch}");
            };
            assert_eq!(data[..8], (batch * 25 + i + 1).to_be_bytes());
        }
    }
    let samples = common::scrape::scrape_until(metrics, |s| {
        s.get("wsbox_store_history_lost_total")
            .is_some_and(|n| *n > 0)
    });
    assert!(common::scrape::value(&samples, "wsbox_store_history_lost_total") > 0);
    // The store reads again once it has reopened its file after the failed commit (a few
    // milliseconds: `unavailable` meanwhile), and the runner still serves.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match publisher.ask("kvget room nothing").as_str() {
            "none" => break,
            "unavailable" if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => panic!("kvget answered {other}"),
        }
    }
    assert_eq!(publisher.ask("pub room after"), "published 1");
}
