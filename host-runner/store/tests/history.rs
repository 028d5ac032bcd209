//! Topic history: append, trim, drop, load, topics, epochs, and dropped appends.

mod common;

use bytes::Bytes;
use common::{block_on, memory, on_disk};
use wsbox_store::{Config, ENTRY_OVERHEAD, HistoryRecord, Store};

fn record(epoch: u64, offset: u64, payload: &'static [u8]) -> HistoryRecord {
    HistoryRecord {
        epoch,
        offset,
        at_ms: 1_700_000_000_000 + offset,
        binary: offset % 2 == 1,
        payload: Bytes::from_static(payload),
    }
}

fn offsets(store: &Store, topic: &str) -> Option<(u64, Vec<u64>)> {
    store
        .history_load(topic)
        .expect("load")
        .map(|(epoch, records)| (epoch, records.iter().map(|r| r.offset).collect()))
}

#[test]
fn append_then_load_in_offset_order() {
    let store = memory();
    assert_eq!(store.history_load("t").expect("load"), None);
    // Out of order on purpose: loads come back ascending.
    for offset in [2, 0, 1] {
        store.history_append("t", record(7, offset, b"payload"));
    }
    block_on(store.flush()).expect("flush");
    let (epoch, records) = store.history_load("t").expect("load").expect("topic");
    assert_eq!(epoch, 7);
    assert_eq!(
        records,
        vec![
            record(7, 0, b"payload"),
            record(7, 1, b"payload"),
            record(7, 2, b"payload")
        ]
    );
    let stats = store.stats();
    assert_eq!((stats.topics, stats.history_records), (1, 3));
    assert_eq!(stats.bytes, 3 * (1 + 7 + ENTRY_OVERHEAD));
    assert_eq!(stats.failed_writes, 0);
}

/// A full log in memory trims its stored copy at every publish: the trims of one batch are
/// applied as the last of them (from the highest offset), with the same result.
#[test]
fn a_trim_per_append_in_one_batch_keeps_the_last_window() {
    let store = memory();
    for offset in 1..=20 {
        store.history_append("t", record(5, offset, b"x"));
        store.history_append("u", record(6, offset, b"y"));
        if offset > 3 {
            store.history_trim("t", 5, offset - 2);
        }
    }
    store.history_trim("u", 6, 9);
    store.history_trim("u", 6, 4); // lower than one before it: nothing more goes
    store.history_trim("t", 4, 20); // another epoch: ignored
    // A new epoch starts the log over; a trim of the old one after it is ignored.
    store.history_append("v", record(1, 1, b"z"));
    store.history_trim("v", 1, 1);
    store.history_append("v", record(2, 7, b"z"));
    store.history_trim("v", 1, 9);
    block_on(store.flush()).expect("flush");
    assert_eq!(offsets(&store, "t"), Some((5, (18..=20).collect())));
    assert_eq!(offsets(&store, "u"), Some((6, (9..=20).collect())));
    assert_eq!(offsets(&store, "v"), Some((2, vec![7])));
    assert_eq!(store.stats().history_records, 3 + 12 + 1);
}

#[test]
fn an_offset_written_twice_keeps_the_last() {
    let store = memory();
    store.history_append("t", record(1, 0, b"first"));
    store.history_append("t", record(1, 0, b"second!"));
    block_on(store.flush()).expect("flush");
    let (_, records) = store.history_load("t").expect("load").expect("topic");
    assert_eq!(records, vec![record(1, 0, b"second!")]);
    assert_eq!(store.stats().bytes, 1 + 7 + ENTRY_OVERHEAD);
}

#[test]
fn trim_drops_below_the_offset_for_its_epoch_only() {
    let store = memory();
    for offset in 0..5 {
        store.history_append("t", record(3, offset, b"x"));
    }
    store.history_trim("t", 3, 2);
    block_on(store.flush()).expect("flush");
    assert_eq!(offsets(&store, "t"), Some((3, vec![2, 3, 4])));
    store.history_trim("t", 2, 4); // computed for another epoch: ignored
    store.history_trim("t", 3, 0); // nothing below 0
    store.history_trim("nobody", 3, 10);
    block_on(store.flush()).expect("flush");
    assert_eq!(offsets(&store, "t"), Some((3, vec![2, 3, 4])));
    store.history_trim("t", 3, u64::MAX);
    block_on(store.flush()).expect("flush");
    assert_eq!(
        offsets(&store, "t"),
        Some((3, vec![])),
        "trimmed empty, still known"
    );
    assert_eq!(store.stats().bytes, 0);
    assert_eq!(store.stats().history_records, 0);
}

#[test]
fn a_new_epoch_starts_the_log_over() {
    let store = memory();
    store.history_append("t", record(1, 10, b"old"));
    store.history_append("t", record(1, 11, b"old"));
    store.history_append("t", record(2, 0, b"new"));
    block_on(store.flush()).expect("flush");
    assert_eq!(offsets(&store, "t"), Some((2, vec![0])));
    assert_eq!(store.stats().history_records, 1);
    assert_eq!(store.stats().bytes, 1 + 3 + ENTRY_OVERHEAD);
}

#[test]
fn drop_and_topics() {
    let store = memory();
    for topic in ["b", "a", "c", "🦀"] {
        store.history_append(topic, record(1, 0, b"x"));
    }
    block_on(store.flush()).expect("flush");
    assert_eq!(
        store.history_topics().expect("topics"),
        ["a", "b", "c", "🦀"]
    );
    store.history_drop("b");
    store.history_drop("unknown");
    block_on(store.flush()).expect("flush");
    assert_eq!(store.history_topics().expect("topics"), ["a", "c", "🦀"]);
    assert_eq!(store.history_load("b").expect("load"), None);
    assert_eq!(store.stats().topics, 3);
    assert_eq!(store.stats().history_records, 3);
}

#[test]
fn topics_and_namespaces_do_not_mix() {
    let store = memory();
    store.history_append("room", record(1, 0, b"x"));
    block_on(store.set("room", "k", b"v".to_vec(), None)).expect("set");
    store.history_drop("room");
    block_on(store.flush()).expect("flush");
    assert_eq!(store.get("room", "k"), Ok(Some(b"v".to_vec())));
}

#[test]
fn history_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = Store::open(on_disk(dir.path())).expect("open");
        for offset in 0..3 {
            store.history_append("t", record(9, offset, b"kept"));
        }
        // No flush: dropping the last handle commits what is queued.
    }
    let store = Store::open(on_disk(dir.path())).expect("reopen");
    assert_eq!(offsets(&store, "t"), Some((9, vec![0, 1, 2])));
    assert_eq!(store.stats().history_records, 3);
    assert_eq!(store.stats().bytes, 3 * (1 + 4 + ENTRY_OVERHEAD));
}

#[test]
fn appends_past_the_queue_are_dropped_and_counted() {
    // The queue holds 64 MiB of history payloads; 1 MiB records arrive far faster than the
    // writer stores them (the commit window alone holds it back 200 ms), so some are dropped.
    let store = Store::open(Config {
        max_bytes: 1 << 30,
        commit_window: std::time::Duration::from_millis(200),
        ..Config::default()
    })
    .expect("open");
    let payload = Bytes::from(vec![0u8; 1 << 20]);
    let sent = 100u64;
    for offset in 0..sent {
        store.history_append(
            "t",
            HistoryRecord {
                epoch: 1,
                offset,
                at_ms: 0,
                binary: true,
                payload: payload.clone(),
            },
        );
    }
    block_on(store.flush()).expect("flush");
    let stats = store.stats();
    assert!(stats.failed_writes > 0, "nothing was dropped: {stats:?}");
    assert_eq!(
        stats.history_records + stats.failed_writes,
        sent,
        "{stats:?}"
    );
}
