//! What survives a SIGKILL, and what a failing disk does: both in a child process (this test
//! binary run again), since the first kills it and the second limits its file size.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{CHILD_DIR, CHILD_MODE, block_on, eventually, on_disk, spawn_child};
use wsbox_store::{Config, Error, HistoryRecord, Store};

fn record(offset: u64, len: usize) -> HistoryRecord {
    HistoryRecord {
        epoch: 1,
        offset,
        at_ms: 0,
        binary: false,
        payload: Bytes::from(vec![b'h'; len]),
    }
}

/// The child side (see `spawn_child`); does nothing in an ordinary test run.
#[test]
fn child() {
    let (Ok(mode), Ok(dir)) = (std::env::var(CHILD_MODE), std::env::var(CHILD_DIR)) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    match mode.as_str() {
        "write-until-killed" => write_until_killed(&dir),
        "disk-full" => disk_full(&dir),
        other => panic!("unknown child mode {other}"),
    }
}

/// Sets k0, k1, … one after another, printing each once acknowledged, until killed.
fn write_until_killed(dir: &std::path::Path) {
    let store = Store::open(on_disk(dir)).expect("child open");
    for i in 0u64.. {
        // History is acknowledged by flush; the key by its own future.
        store.history_append("t", record(i, 10));
        block_on(store.set("ns", &format!("k{i}"), i.to_string().into_bytes(), None)).expect("set");
        block_on(store.flush()).expect("flush");
        println!("ACKED {i}");
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut kid = spawn_child("child", "write-until-killed", dir.path());
    let mut last = None;
    while last.is_none_or(|n| n < 50) {
        let line = kid
            .lines
            .wait_for("ACKED ", Duration::from_secs(30))
            .expect("the child acknowledged writes");
        last = Some(line.trim().parse::<u64>().expect("index"));
    }
    kid.child.kill().expect("SIGKILL");
    kid.child.wait().expect("reap");
    let last = last.unwrap_or_default();

    let store = Store::open(on_disk(dir.path())).expect("reopen after the kill");
    for i in 0..=last {
        assert_eq!(
            store.get("ns", &format!("k{i}")),
            Ok(Some(i.to_string().into_bytes())),
            "k{i} was acknowledged"
        );
    }
    let (_, records) = store.history_load("t").expect("load").expect("topic");
    assert!(
        records.len() as u64 > last,
        "{} history records, {} flushed",
        records.len(),
        last + 1
    );
    // The counts read back from the rows match what is there.
    let stats = store.stats();
    assert_eq!(
        stats.keys,
        store.list("ns", "", None, 1000).expect("list").len() as u64
    );
    assert_eq!(stats.history_records, records.len() as u64);
}

/// Fills the disk (a file-size limit at the file's current size), reports what each call
/// said, lifts the limit and writes again.
fn disk_full(dir: &std::path::Path) {
    let store = Store::open(Config {
        commit_window: Duration::ZERO,
        ..on_disk(dir)
    })
    .expect("child open");
    block_on(store.set("ns", "small", b"v".to_vec(), None)).expect("set");
    store.history_append("t", record(0, 10));
    block_on(store.flush()).expect("flush");
    let len = std::fs::metadata(dir.join("store.redb"))
        .expect("stat")
        .len();
    set_file_size_limit(len);

    let big = block_on(store.set("ns", "big", vec![7; 1 << 20], None));
    println!("BIG {big:?}");
    store.history_append("t", record(1, 1 << 20));
    println!("FLUSH {:?}", block_on(store.flush()));
    println!("FAILED {}", store.stats().failed_writes);
    // The writer reopens the file after the failure; reads come back once it has.
    let mut read = store.get("ns", "small");
    eventually(Duration::from_secs(5), || {
        read = store.get("ns", "small");
        read.is_ok()
    });
    println!("GET {read:?}");
    println!(
        "LOAD {:?}",
        store.history_load("t").map(|h| h.map(|(_, r)| r.len()))
    );

    set_file_size_limit(libc::RLIM_INFINITY);
    let after = block_on(store.set("ns", "after", b"ok".to_vec(), None));
    println!("AFTER {after:?} {:?}", store.get("ns", "after"));
}

/// Caps the size of files this process writes; a write past it fails with EFBIG instead of
/// raising SIGXFSZ, which we ignore.
fn set_file_size_limit(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit and signal take plain values; SIG_IGN is a valid disposition.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0, "setrlimit");
    }
}

#[test]
fn a_full_disk_fails_the_batch_and_the_store_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut kid = spawn_child("child", "disk-full", dir.path());
    let limit = Duration::from_secs(30);
    let big = kid.lines.wait_for("BIG ", limit).expect("BIG");
    let flush = kid.lines.wait_for("FLUSH ", limit).expect("FLUSH");
    let failed = kid.lines.wait_for("FAILED ", limit).expect("FAILED");
    let get = kid.lines.wait_for("GET ", limit).expect("GET");
    let load = kid.lines.wait_for("LOAD ", limit).expect("LOAD");
    let after = kid.lines.wait_for("AFTER ", limit).expect("AFTER");
    assert!(kid.child.wait().expect("child").success());

    assert!(
        big.starts_with("Err(Unavailable(") && big.contains("store.redb"),
        "{big}"
    );
    assert!(
        flush.starts_with("Err(Unavailable("),
        "the history append's batch failed too: {flush}"
    );
    assert!(
        failed.trim().parse::<u64>().expect("count") >= 1,
        "{failed}"
    );
    assert_eq!(
        get,
        format!("{:?}", Ok::<_, Error>(Some(b"v".to_vec()))),
        "reads work after the failure"
    );
    assert_eq!(load, "Ok(Some(1))", "committed history is still there");
    assert_eq!(
        after,
        format!("Ok(()) {:?}", Ok::<_, Error>(Some(b"ok".to_vec()))),
        "writes work once there is room"
    );

    let store = Store::open(on_disk(dir.path())).expect("reopen");
    assert_eq!(
        store.get("ns", "big"),
        Ok(None),
        "the failed write left nothing"
    );
    assert_eq!(store.get("ns", "small"), Ok(Some(b"v".to_vec())));
}
