//! The key-value API: each function's answers and its argument errors.

mod common;

use std::time::Duration;

use common::{block_on, memory, on_disk};
use wsbox_store::{Error, Store};

#[test]
fn set_then_get_and_overwrite() {
    let store = memory();
    assert_eq!(store.get("ns", "k"), Ok(None));
    block_on(store.set("ns", "k", b"one".to_vec(), None)).expect("set");
    assert_eq!(store.get("ns", "k"), Ok(Some(b"one".to_vec())));
    block_on(store.set("ns", "k", b"two".to_vec(), None)).expect("overwrite");
    assert_eq!(store.get("ns", "k"), Ok(Some(b"two".to_vec())));
    // Namespaces are separate.
    assert_eq!(store.get("other", "k"), Ok(None));
    block_on(store.set("ns", "empty", Vec::new(), None)).expect("empty value");
    assert_eq!(store.get("ns", "empty"), Ok(Some(Vec::new())));
}

#[test]
fn ops_apply_in_the_order_called() {
    let store = memory();
    // Called without awaiting in between: queued in call order, so the last one wins.
    let first = store.set("ns", "k", b"1".to_vec(), None);
    let second = store.set("ns", "k", b"2".to_vec(), None);
    let third = store.increment("ns", "n", 5);
    let fourth = store.increment("ns", "n", -2);
    block_on(async {
        // Awaited out of order on purpose.
        assert_eq!(fourth.await, Ok(3));
        second.await.expect("second");
        first.await.expect("first");
        assert_eq!(third.await, Ok(5));
    });
    assert_eq!(store.get("ns", "k"), Ok(Some(b"2".to_vec())));
}

#[test]
fn delete_says_whether_it_was_there() {
    let store = memory();
    assert_eq!(block_on(store.delete("ns", "k")), Ok(false));
    block_on(store.set("ns", "k", b"v".to_vec(), None)).expect("set");
    assert_eq!(block_on(store.delete("ns", "k")), Ok(true));
    assert_eq!(store.get("ns", "k"), Ok(None));
    assert_eq!(block_on(store.delete("ns", "k")), Ok(false));
    assert_eq!(store.stats().keys, 0);
    assert_eq!(store.stats().namespaces, 0);
}

#[test]
fn list_by_prefix_in_byte_order_with_paging() {
    let store = memory();
    block_on(async {
        for key in ["b/2", "a", "b/1", "b/10", "c", "b", "ba"] {
            store
                .set("ns", key, b"x".to_vec(), None)
                .await
                .expect("set");
        }
        store
            .set("nt", "b/3", b"x".to_vec(), None)
            .await
            .expect("other namespace");
        store
            .set("n", "b/4", b"x".to_vec(), None)
            .await
            .expect("shorter namespace");
    });
    assert_eq!(
        store.list("ns", "", None, 100).expect("all"),
        ["a", "b", "b/1", "b/10", "b/2", "ba", "c"]
    );
    assert_eq!(
        store.list("ns", "b/", None, 100).expect("prefix"),
        ["b/1", "b/10", "b/2"]
    );
    assert_eq!(
        store.list("ns", "b/", None, 2).expect("limit"),
        ["b/1", "b/10"]
    );
    assert_eq!(
        store.list("ns", "b/", Some("b/10"), 2).expect("page 2"),
        ["b/2"]
    );
    assert_eq!(
        store
            .list("ns", "b", Some("a"), 100)
            .expect("after before the prefix"),
        ["b", "b/1", "b/10", "b/2", "ba"]
    );
    assert_eq!(
        store
            .list("ns", "b/", Some("c"), 100)
            .expect("after past it"),
        Vec::<String>::new()
    );
    assert_eq!(
        store.list("ns", "", None, 0).expect("limit 0"),
        Vec::<String>::new()
    );
    assert_eq!(
        store.list("ns", "zz", None, 10).expect("no match"),
        Vec::<String>::new()
    );
    assert_eq!(
        store
            .list("empty", "", None, 10)
            .expect("unknown namespace"),
        Vec::<String>::new()
    );
}

#[test]
fn list_caps_at_a_thousand() {
    let store = memory();
    block_on(async {
        let writes: Vec<_> = (0..1200)
            .map(|i| store.set("ns", &format!("k{i:05}"), Vec::new(), None))
            .collect();
        for w in writes {
            w.await.expect("set");
        }
    });
    let page = store.list("ns", "k", None, u32::MAX).expect("list");
    assert_eq!(page.len(), 1000);
    assert_eq!(page[999], "k00999");
    let rest = store
        .list("ns", "k", Some(&page[999]), 1000)
        .expect("next page");
    assert_eq!(rest.len(), 200);
}

#[test]
fn arbitrary_utf8_keys_and_namespaces() {
    let store = memory();
    let names = ["ключ", "🦀/🦀", "a\0b", "a", "a\u{7f}", " ", "\u{10ffff}"];
    block_on(async {
        for name in names {
            store
                .set(name, name, name.as_bytes().to_vec(), None)
                .await
                .expect("set");
        }
    });
    for name in names {
        assert_eq!(
            store.get(name, name),
            Ok(Some(name.as_bytes().to_vec())),
            "{name:?}"
        );
        assert_eq!(
            store.list(name, "", None, 10).expect("list"),
            [name],
            "{name:?}"
        );
    }
    // "a\0b" and "a\u{7f}" share the prefix "a"; "a" (the namespace) holds only "a".
    block_on(store.set("x", "a\0b", Vec::new(), None)).expect("set");
    block_on(store.set("x", "a", Vec::new(), None)).expect("set");
    assert_eq!(store.list("x", "a", None, 10).expect("list"), ["a", "a\0b"]);
}

#[test]
fn increment_counts_and_checks() {
    let store = memory();
    assert_eq!(block_on(store.increment("ns", "n", 1)), Ok(1));
    assert_eq!(block_on(store.increment("ns", "n", 41)), Ok(42));
    assert_eq!(block_on(store.increment("ns", "n", -50)), Ok(-8));
    assert_eq!(store.get("ns", "n"), Ok(Some(b"-8".to_vec())));
    block_on(store.set("ns", "text", b"forty".to_vec(), None)).expect("set");
    assert_eq!(
        block_on(store.increment("ns", "text", 1)),
        Err(Error::NotANumber)
    );
    block_on(store.set("ns", "spaced", b" 4".to_vec(), None)).expect("set");
    assert_eq!(
        block_on(store.increment("ns", "spaced", 1)),
        Err(Error::NotANumber)
    );
    block_on(store.set("ns", "bytes", vec![0xff, 0x31], None)).expect("set");
    assert_eq!(
        block_on(store.increment("ns", "bytes", 1)),
        Err(Error::NotANumber)
    );
    block_on(store.set("ns", "max", i64::MAX.to_string().into_bytes(), None)).expect("set");
    assert_eq!(
        block_on(store.increment("ns", "max", 1)),
        Err(Error::Overflow)
    );
    assert_eq!(
        block_on(store.increment("ns", "min", i64::MIN)),
        Ok(i64::MIN)
    );
    assert_eq!(
        block_on(store.increment("ns", "min", -1)),
        Err(Error::Overflow)
    );
    // A failed increment changed nothing.
    assert_eq!(
        store.get("ns", "max"),
        Ok(Some(i64::MAX.to_string().into_bytes()))
    );
}

#[test]
fn compare_and_swap_cases() {
    let store = memory();
    let cas = |expected: Option<&[u8]>, new: Option<&[u8]>| {
        block_on(store.compare_and_swap(
            "ns",
            "k",
            expected.map(<[u8]>::to_vec),
            new.map(<[u8]>::to_vec),
            None,
        ))
    };
    assert_eq!(
        cas(Some(b"x"), Some(b"y")),
        Ok(false),
        "present expected, absent found"
    );
    assert_eq!(store.get("ns", "k"), Ok(None));
    assert_eq!(cas(None, Some(b"a")), Ok(true), "create if absent");
    assert_eq!(
        cas(None, Some(b"b")),
        Ok(false),
        "absent expected, present found"
    );
    assert_eq!(cas(Some(b"b"), Some(b"c")), Ok(false), "wrong value");
    assert_eq!(store.get("ns", "k"), Ok(Some(b"a".to_vec())));
    assert_eq!(cas(Some(b"a"), Some(b"c")), Ok(true));
    assert_eq!(store.get("ns", "k"), Ok(Some(b"c".to_vec())));
    assert_eq!(cas(Some(b"c"), None), Ok(true), "delete");
    assert_eq!(store.get("ns", "k"), Ok(None));
    assert_eq!(cas(None, None), Ok(true), "absent and stays absent");
    assert_eq!(store.stats().keys, 0);
}

#[test]
fn compare_and_swap_with_ttl() {
    let store = memory();
    let ttl = Some(Duration::from_millis(50));
    assert_eq!(
        block_on(store.compare_and_swap("ns", "lock", None, Some(b"me".to_vec()), ttl)),
        Ok(true)
    );
    assert_eq!(
        block_on(store.compare_and_swap("ns", "lock", None, Some(b"you".to_vec()), ttl)),
        Ok(false)
    );
    std::thread::sleep(Duration::from_millis(80));
    // Expired reads as absent, so "must be absent" holds again.
    assert_eq!(
        block_on(store.compare_and_swap("ns", "lock", None, Some(b"you".to_vec()), None)),
        Ok(true)
    );
    assert_eq!(store.get("ns", "lock"), Ok(Some(b"you".to_vec())));
}

#[test]
fn bad_keys_and_sizes_are_refused_before_queueing() {
    let store = memory();
    let long_key = "k".repeat(Store::MAX_KEY + 1);
    let long_ns = "n".repeat(Store::MAX_NAMESPACE + 1);
    let max_key = "k".repeat(Store::MAX_KEY);
    let max_ns = "n".repeat(Store::MAX_NAMESPACE);
    for (ns, key) in [
        ("", "k"),
        ("ns", ""),
        ("ns", long_key.as_str()),
        (long_ns.as_str(), "k"),
    ] {
        assert_eq!(store.get(ns, key), Err(Error::BadKey));
        assert_eq!(
            block_on(store.set(ns, key, Vec::new(), None)),
            Err(Error::BadKey)
        );
        assert_eq!(block_on(store.delete(ns, key)), Err(Error::BadKey));
        assert_eq!(block_on(store.increment(ns, key, 1)), Err(Error::BadKey));
        assert_eq!(
            block_on(store.compare_and_swap(ns, key, None, None, None)),
            Err(Error::BadKey)
        );
    }
    assert_eq!(store.list("", "", None, 1), Err(Error::BadKey));
    assert_eq!(store.list(&long_ns, "", None, 1), Err(Error::BadKey));
    block_on(store.set(&max_ns, &max_key, vec![0; Store::MAX_VALUE], None))
        .expect("limits are inclusive");
    assert_eq!(
        block_on(store.set("ns", "k", vec![0; Store::MAX_VALUE + 1], None)),
        Err(Error::TooLarge)
    );
    let too_large = Some(vec![0; Store::MAX_VALUE + 1]);
    assert_eq!(
        block_on(store.compare_and_swap("ns", "k", None, too_large, None)),
        Err(Error::TooLarge)
    );
    assert_eq!(store.get("ns", "k"), Ok(None));
}

#[test]
fn reopened_store_keeps_keys_and_counts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let before = {
        let store = Store::open(on_disk(dir.path())).expect("open");
        block_on(async {
            store
                .set("ns", "a", b"1".to_vec(), None)
                .await
                .expect("set");
            store
                .set("ns", "b", b"22".to_vec(), Some(Duration::from_secs(3600)))
                .await
                .expect("set");
            store
                .set("other", "c", b"333".to_vec(), None)
                .await
                .expect("set");
        });
        store.stats()
    };
    let store = Store::open(on_disk(dir.path())).expect("reopen");
    assert_eq!(store.get("ns", "b"), Ok(Some(b"22".to_vec())));
    assert_eq!(store.list("ns", "", None, 10).expect("list"), ["a", "b"]);
    let after = store.stats();
    assert_eq!(
        (after.bytes, after.keys, after.namespaces),
        (before.bytes, before.keys, before.namespaces)
    );
    assert_eq!(after.keys, 3);
}

#[test]
fn flush_waits_for_what_was_queued() {
    let store = memory();
    let write = store.set("ns", "k", b"v".to_vec(), None);
    block_on(store.flush()).expect("flush");
    assert_eq!(store.get("ns", "k"), Ok(Some(b"v".to_vec())));
    block_on(write).expect("set");
}

#[test]
fn a_clone_is_the_same_store_and_futures_outlive_it() {
    let store = memory();
    let clone = store.clone();
    let pending = clone.set("ns", "k", b"v".to_vec(), None);
    drop(clone);
    block_on(pending).expect("set through a dropped clone");
    assert_eq!(store.get("ns", "k"), Ok(Some(b"v".to_vec())));
    // Dropping the last handle commits what is queued before the file closes.
    let last = store.set("ns", "late", b"v".to_vec(), None);
    drop(store);
    assert_eq!(block_on(last), Ok(()));
}

#[test]
fn futures_are_send_and_static() {
    fn check<F: std::future::Future + Send + 'static>(_: F) {}
    let store = memory();
    let key = String::from("k");
    check(store.set("ns", &key, Vec::new(), None));
    check(store.delete("ns", &key));
    check(store.increment("ns", &key, 1));
    check(store.compare_and_swap("ns", &key, None, None, None));
    check(store.flush());
    drop(key);
}
