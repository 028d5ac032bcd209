//! Accounting, quotas, TTLs, idle namespaces, group commit and backpressure.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{block_on, eventually, join_all, on_disk};
use wsbox_store::{Config, ENTRY_OVERHEAD, Error, HistoryRecord, Store};

fn with(config: Config) -> Store {
    Store::open(config).expect("open")
}

fn small(namespace_quota: u64, max_bytes: u64) -> Store {
    with(Config {
        namespace_quota,
        max_bytes,
        idle_namespace: None,
        ..Config::default()
    })
}

#[test]
fn bytes_are_counted_exactly() {
    let store = small(1 << 20, 1 << 20);
    block_on(store.set("ns", "k", vec![0; 10], None)).expect("set");
    assert_eq!(store.stats().bytes, 1 + 10 + ENTRY_OVERHEAD);
    block_on(store.set("ns", "k", vec![0; 5], None)).expect("shrink");
    assert_eq!(store.stats().bytes, 1 + 5 + ENTRY_OVERHEAD);
    block_on(store.set("ns", "key2", vec![0; 100], None)).expect("second key");
    assert_eq!(
        store.stats().bytes,
        (1 + 5) + (4 + 100) + 2 * ENTRY_OVERHEAD
    );
    assert_eq!((store.stats().keys, store.stats().namespaces), (2, 1));
    block_on(store.delete("ns", "k")).expect("delete");
    block_on(store.delete("ns", "key2")).expect("delete");
    assert_eq!(store.stats().bytes, 0);
    assert_eq!((store.stats().keys, store.stats().namespaces), (0, 0));
}

#[test]
fn namespace_quota_refuses_growth_and_changes_nothing() {
    // Room for three 100-byte values (1 + 100 + 32 = 133 bytes each: 399) but not four.
    let store = small(440, 1 << 20);
    block_on(async {
        for key in ["a", "b", "c"] {
            store
                .set("ns", key, vec![1; 100], None)
                .await
                .expect("fits");
        }
        assert_eq!(
            store.set("ns", "d", vec![1; 100], None).await,
            Err(Error::Quota)
        );
        assert_eq!(
            store.set("ns", "a", vec![2; 150], None).await,
            Err(Error::Quota),
            "growing a key"
        );
        assert_eq!(
            store.increment("ns", "n", 1).await,
            Ok(1),
            "a small key still fits (34 bytes)"
        );
        assert_eq!(
            store.increment("ns", "n", 1_000_000_000_000).await,
            Err(Error::Quota)
        );
        assert_eq!(
            store
                .compare_and_swap("ns", "e", None, Some(vec![1; 100]), None)
                .await,
            Err(Error::Quota)
        );
        store
            .set("other", "d", vec![1; 100], None)
            .await
            .expect("another namespace has its own quota");
        store
            .set("ns", "a", vec![3; 50], None)
            .await
            .expect("shrinking always fits");
    });
    assert_eq!(store.get("ns", "d"), Ok(None));
    assert_eq!(store.get("ns", "e"), Ok(None));
    assert_eq!(store.get("ns", "n"), Ok(Some(b"1".to_vec())));
    assert_eq!(store.get("ns", "a"), Ok(Some(vec![3; 50])));
}

#[test]
fn a_lowered_quota_still_lets_a_namespace_shrink() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = with(on_disk(dir.path()));
        block_on(store.set("ns", "k", vec![0; 1000], None)).expect("set");
    }
    let store = with(Config {
        namespace_quota: 500,
        ..on_disk(dir.path())
    });
    assert_eq!(
        block_on(store.set("ns", "k", vec![0; 1001], None)),
        Err(Error::Quota)
    );
    block_on(store.set("ns", "k", vec![0; 900], None)).expect("over quota but shrinking");
    assert_eq!(block_on(store.delete("ns", "k")), Ok(true));
}

#[test]
fn max_bytes_counts_every_namespace_and_history() {
    // 3 × 133 = 399 bytes fit in 450; each namespace alone could take more.
    let store = small(1 << 20, 450);
    block_on(async {
        store.set("a", "k", vec![0; 100], None).await.expect("fits");
        store.set("b", "k", vec![0; 100], None).await.expect("fits");
        assert_eq!(
            store.set("c", "k", vec![0; 200], None).await,
            Err(Error::Full)
        );
    });
    assert_eq!(store.get("c", "k"), Ok(None));
    // A history record takes the room that is left ...
    let record = HistoryRecord {
        epoch: 1,
        offset: 0,
        at_ms: 0,
        binary: false,
        payload: Bytes::from(vec![0; 100]),
    };
    store.history_append("t", record.clone());
    block_on(store.flush()).expect("flush");
    assert_eq!(store.stats().bytes, 2 * 133 + (1 + 100 + ENTRY_OVERHEAD));
    assert_eq!(
        block_on(store.set("c", "k", vec![0; 100], None)),
        Err(Error::Full)
    );
    // ... and one past max_bytes is dropped and counted.
    store.history_append(
        "t",
        HistoryRecord {
            offset: 1,
            ..record
        },
    );
    block_on(store.flush()).expect("flush");
    assert_eq!(store.stats().failed_writes, 1);
    assert_eq!(
        store.history_load("t").expect("load").map(|(_, r)| r.len()),
        Some(1)
    );
}

#[test]
fn expired_keys_read_as_absent_and_are_swept() {
    let store = small(1 << 20, 1 << 20);
    let ttl = Some(Duration::from_millis(50));
    block_on(async {
        store
            .set("ns", "short", b"v".to_vec(), ttl)
            .await
            .expect("set");
        store
            .set("ns", "long", b"v".to_vec(), Some(Duration::from_secs(3600)))
            .await
            .expect("set");
        store
            .set("ns", "forever", b"v".to_vec(), None)
            .await
            .expect("set");
    });
    assert_eq!(store.get("ns", "short"), Ok(Some(b"v".to_vec())));
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(store.get("ns", "short"), Ok(None));
    assert_eq!(
        store.list("ns", "", None, 10).expect("list"),
        ["forever", "long"]
    );
    assert_eq!(
        block_on(store.delete("ns", "short")),
        Ok(false),
        "expired is absent for delete too"
    );
    // delete removed it at once; the sweep would have too: check with a second short key.
    block_on(store.set("ns", "short2", b"v".to_vec(), ttl)).expect("set");
    let three_keys = store.stats().bytes;
    std::thread::sleep(Duration::from_millis(80));
    assert!(
        eventually(Duration::from_secs(3), || store.stats().keys == 2),
        "the sweep ran"
    );
    assert_eq!(store.stats().bytes, three_keys - (6 + 1 + ENTRY_OVERHEAD));
}

#[test]
fn expired_bytes_return_to_the_quota_when_needed() {
    // Room for one 150-byte value; the first expires, and the second write sweeps it at once.
    let store = small(250, 1 << 20);
    block_on(store.set("ns", "a", vec![0; 150], Some(Duration::from_millis(50)))).expect("set");
    std::thread::sleep(Duration::from_millis(80));
    block_on(store.set("ns", "b", vec![0; 150], None)).expect("the expired key made room");
    assert_eq!(store.stats().keys, 1);
}

#[test]
fn overwrite_and_increment_keep_or_clear_the_ttl() {
    let store = small(1 << 20, 1 << 20);
    let ttl = Some(Duration::from_millis(50));
    block_on(async {
        store
            .set("ns", "cleared", b"1".to_vec(), ttl)
            .await
            .expect("set");
        store
            .set("ns", "cleared", b"2".to_vec(), None)
            .await
            .expect("overwrite without ttl");
        store
            .set("ns", "counter", b"1".to_vec(), ttl)
            .await
            .expect("set");
        assert_eq!(store.increment("ns", "counter", 1).await, Ok(2));
    });
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(store.get("ns", "cleared"), Ok(Some(b"2".to_vec())));
    assert_eq!(
        store.get("ns", "counter"),
        Ok(None),
        "increment kept the expiry"
    );
    assert_eq!(
        block_on(store.increment("ns", "counter", 1)),
        Ok(1),
        "expired counts as absent"
    );
    // The sweep must not take the rewritten key with the old index entry.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(store.get("ns", "cleared"), Ok(Some(b"2".to_vec())));
}

#[test]
fn idle_namespaces_are_collected_and_read_ones_kept() {
    let store = with(Config {
        idle_namespace: Some(Duration::from_secs(1)),
        ..Config::default()
    });
    block_on(async {
        store
            .set("idle", "k", b"v".to_vec(), Some(Duration::from_secs(3600)))
            .await
            .expect("set");
        store
            .set("idle", "k2", b"v".to_vec(), None)
            .await
            .expect("set");
        store
            .set("read", "k", b"v".to_vec(), None)
            .await
            .expect("set");
    });
    assert_eq!(store.stats().namespaces, 2);
    // Reads alone (no writes) keep "read" alive.
    let collected = eventually(Duration::from_secs(6), || {
        assert_eq!(store.get("read", "k"), Ok(Some(b"v".to_vec())));
        store.stats().namespaces == 1
    });
    assert!(collected, "the idle namespace was collected");
    assert_eq!(store.stats().keys, 1);
    assert_eq!(store.stats().bytes, 1 + 1 + ENTRY_OVERHEAD);
    assert_eq!(
        store.list("idle", "", None, 10).expect("list"),
        Vec::<String>::new()
    );
    assert_eq!(store.get("read", "k"), Ok(Some(b"v".to_vec())));
}

#[test]
fn group_commit_shares_fsyncs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = with(Config {
        commit_window: Duration::from_millis(100),
        ..on_disk(dir.path())
    });
    let before = store.stats();
    let writes: Vec<_> = (0..500)
        .map(|i| store.set("ns", &format!("k{i}"), vec![0; 100], None))
        .collect();
    block_on(async {
        for w in writes {
            w.await.expect("set");
        }
    });
    let after = store.stats();
    let commits = after.commits - before.commits;
    assert_eq!(after.writes_batched - before.writes_batched, 500);
    assert!(
        commits <= 10,
        "500 writes called together took {commits} commits"
    );
}

#[test]
fn a_full_queue_makes_writes_wait_not_fail() {
    // 40 MiB of values is more than the queue's ~32 MiB of permits.
    let store = small(1 << 30, 1 << 30);
    let writes: Vec<_> = (0..40)
        .map(|i| store.set("ns", &format!("big{i}"), vec![7; 1 << 20], None))
        .collect();
    let small_writes = (0..9000).map(|i| store.set("small", &format!("k{i}"), Vec::new(), None));
    let writes: Vec<_> = writes
        .into_iter()
        .map(Box::pin)
        .chain(small_writes.map(Box::pin))
        .collect();
    for result in join_all(writes) {
        result.expect("waited for room");
    }
    assert_eq!(store.stats().keys, 9040);
}

#[test]
fn a_read_just_before_closing_still_counts_as_a_touch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = || Config {
        idle_namespace: Some(Duration::from_secs(2)),
        ..on_disk(dir.path())
    };
    {
        let store = with(config());
        block_on(store.set("ns", "k", b"v".to_vec(), None)).expect("set");
        std::thread::sleep(Duration::from_millis(1500));
        // Noted in memory only; closing the store writes it down.
        assert_eq!(store.get("ns", "k"), Ok(Some(b"v".to_vec())));
    }
    let store = with(config());
    // Written 2.8 s ago, read 1.3 s ago, after the reopened store's first collection.
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(store.stats().namespaces, 1, "collected as if never read");
}
