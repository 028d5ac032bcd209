//! `/topics` commands for `store` (wit/store.wit), answered as the other `/topics`
//! commands are (one text message each; errors by their WIT names). `-` stands for "none".
//!
//! - `kvset NS KEY VALUE [TTL_MS]` (`ok`), `kvfill NS KEY N` (N bytes of `a`: `ok`),
//!   `kvget NS KEY` (`value V` or `none`), `kvdel NS KEY` (`deleted true|false`),
//!   `kvkeys NS PREFIX AFTER LIMIT` (`keys A,B,…`), `kvinc NS KEY DELTA` (`value N`),
//!   `kvcas NS KEY EXPECTED NEW` (`swapped true|false`). A namespace `nul` is "\0wsbox".

use crate::bindings::wsbox::websocket::store::{self, StoreError};

fn error(error: StoreError) -> String {
    match error {
        StoreError::BadKey => "bad-key",
        StoreError::TooLarge => "too-large",
        StoreError::Quota => "quota",
        StoreError::Full => "full",
        StoreError::NotANumber => "not-a-number",
        StoreError::Overflow => "overflow",
        StoreError::Unavailable => "unavailable",
    }
    .into()
}

fn answer<T>(result: Result<T, StoreError>, ok: impl FnOnce(T) -> String) -> String {
    result.map_or_else(error, ok)
}

fn namespace(ns: &str) -> &str {
    if ns == "nul" { "\0wsbox" } else { ns }
}

fn none(word: &str) -> Option<&str> {
    (word != "-").then_some(word)
}

pub(crate) fn command(words: &[&str]) -> Option<String> {
    let set = |ns: &str, key: &str, value: &[u8], ttl: Option<u64>| {
        answer(store::set(namespace(ns), key, value, ttl), |()| "ok".into())
    };
    Some(match words {
        ["kvset", ns, key, value] => set(ns, key, value.as_bytes(), None),
        ["kvset", ns, key, value, ttl] => set(ns, key, value.as_bytes(), Some(ttl.parse().ok()?)),
        ["kvfill", ns, key, n] => set(ns, key, &vec![b'a'; n.parse().ok()?], None),
        ["kvget", ns, key] => answer(store::get(namespace(ns), none(key).unwrap_or("")), |v| {
            v.map_or("none".into(), |v| {
                format!("value {}", String::from_utf8_lossy(&v))
            })
        }),
        ["kvdel", ns, key] => answer(store::delete(namespace(ns), key), |d| {
            format!("deleted {d}")
        }),
        ["kvkeys", ns, prefix, after, limit] => {
            let prefix = none(prefix).unwrap_or("");
            let keys = store::keys(namespace(ns), prefix, none(after), limit.parse().ok()?);
            answer(keys, |keys| format!("keys {}", keys.join(",")))
        }
        ["kvinc", ns, key, delta] => answer(
            store::increment(namespace(ns), key, delta.parse().ok()?),
            |n| format!("value {n}"),
        ),
        ["kvcas", ns, key, expected, new] => {
            let expected = none(expected).map(str::as_bytes);
            let new = none(new).map(str::as_bytes);
            answer(
                store::compare_and_swap(namespace(ns), key, expected, new, None),
                |s| format!("swapped {s}"),
            )
        }
        _ => return None,
    })
}
