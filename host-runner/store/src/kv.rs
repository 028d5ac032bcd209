//! Key-value namespaces: reads on the caller's thread, writes inside the writer's transaction.
//!
//! Every change to a key goes through [`put`], the one place that keeps a namespace's row
//! (bytes, keys, last touched), the TTL index and the store's totals in step with the key, and
//! that refuses growth past a quota.

use std::collections::HashMap;
use std::ops::Bound;
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable};

use crate::error::{Error, Fail, unavailable};
use crate::format::{KV, decode_value, encode_value, entry_bytes, expired};
use crate::writer::Txn;

/// `list` returns at most this many keys, whatever the caller asks for.
pub(crate) const LIST_CAP: u32 = 1000;
/// Expired keys one sweep deletes at most, so that a sweep never holds the writer for long
/// (1,000 deletions take a few milliseconds); a backlog drains over the following ticks.
pub(crate) const SWEEP_BUDGET: usize = 1000;

/// A namespace's row.
#[derive(Clone, Copy, Default)]
struct Row {
    bytes: u64,
    keys: u64,
    touched_ms: u64,
}

/// The value at `(ns, key)`, unless absent or expired.
pub(crate) fn get(
    db: &Database,
    ns: &str,
    key: &str,
    now_ms: u64,
) -> Result<Option<Vec<u8>>, Error> {
    let tx = db.begin_read().map_err(unavailable)?;
    let table = tx.open_table(KV).map_err(unavailable)?;
    let Some(stored) = table.get((ns, key)).map_err(unavailable)? else {
        return Ok(None);
    };
    let (expires, value) = decode_value(stored.value()).ok_or_else(damaged)?;
    Ok((!expired(expires, now_ms)).then(|| value.to_vec()))
}

/// Keys of `ns` that start with `prefix`, in byte order, strictly after `after`, unexpired.
pub(crate) fn list(
    db: &Database,
    ns: &str,
    prefix: &str,
    after: Option<&str>,
    limit: u32,
    now_ms: u64,
) -> Result<Vec<String>, Error> {
    let limit = limit.min(LIST_CAP) as usize;
    let mut keys = Vec::new();
    if limit == 0 {
        return Ok(keys);
    }
    let tx = db.begin_read().map_err(unavailable)?;
    let table = tx.open_table(KV).map_err(unavailable)?;
    // Keys with the prefix are contiguous from (ns, prefix); `after` may start us further on.
    let start = match after {
        Some(after) if after >= prefix => Bound::Excluded((ns, after)),
        _ => Bound::Included((ns, prefix)),
    };
    for entry in table
        .range((start, Bound::Unbounded))
        .map_err(unavailable)?
    {
        let (k, v) = entry.map_err(unavailable)?;
        let (k_ns, k_key) = k.value();
        if k_ns != ns || !k_key.starts_with(prefix) {
            break;
        }
        let (expires, _) = decode_value(v.value()).ok_or_else(damaged)?;
        if !expired(expires, now_ms) {
            keys.push(k_key.to_owned());
            if keys.len() == limit {
                break;
            }
        }
    }
    Ok(keys)
}

/// Sets `key` (with an expiry `ttl` from now, if any).
pub(crate) fn set(
    t: &mut Txn<'_>,
    ns: &str,
    key: &str,
    value: &[u8],
    ttl: Option<Duration>,
) -> Result<(), Fail> {
    let expires = expiry(t.now_ms, ttl);
    with_room(t, |t| put(t, ns, key, Some((value, expires)), true))
}

/// Deletes `key`; whether it was there (an expired key was not).
pub(crate) fn delete(t: &mut Txn<'_>, ns: &str, key: &str) -> Result<bool, Fail> {
    let existed = live(t, ns, key)?.is_some();
    put(t, ns, key, None, true)?;
    Ok(existed)
}

/// Adds `delta` to the decimal `i64` at `key` (absent: 0), keeping its expiry.
pub(crate) fn increment(t: &mut Txn<'_>, ns: &str, key: &str, delta: i64) -> Result<i64, Fail> {
    let (current, expires) = match live(t, ns, key)? {
        None => (0, 0),
        Some((expires, value)) => {
            let n = std::str::from_utf8(&value)
                .ok()
                .and_then(|s| s.parse::<i64>().ok());
            (n.ok_or(Error::NotANumber)?, expires)
        }
    };
    let next = current.checked_add(delta).ok_or(Error::Overflow)?;
    let text = next.to_string();
    with_room(t, |t| {
        put(t, ns, key, Some((text.as_bytes(), expires)), true)
    })?;
    Ok(next)
}

/// Writes `new` (or deletes, for `None`) if the live value is `expected` (`None`: absent).
pub(crate) fn compare_and_swap(
    t: &mut Txn<'_>,
    ns: &str,
    key: &str,
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
    ttl: Option<Duration>,
) -> Result<bool, Fail> {
    let current = live(t, ns, key)?;
    if current.as_ref().map(|(_, v)| v.as_slice()) != expected {
        return Ok(false);
    }
    match new {
        Some(value) => {
            let expires = expiry(t.now_ms, ttl);
            with_room(t, |t| put(t, ns, key, Some((value, expires)), true))?;
        }
        // Nothing to delete if it was absent: leave an expired row for the sweep.
        None if current.is_none() => {}
        None => put(t, ns, key, None, true)?,
    }
    Ok(true)
}

/// Deletes up to [`SWEEP_BUDGET`] expired keys, returning their bytes to the quotas.
pub(crate) fn sweep_expired(t: &mut Txn<'_>) -> Result<usize, Fail> {
    let mut due = Vec::new();
    for entry in t
        .expiry
        .range(..(t.now_ms.saturating_add(1), "", ""))?
        .take(SWEEP_BUDGET)
    {
        let (k, _) = entry?;
        let (expires, ns, key) = k.value();
        due.push((expires, ns.to_owned(), key.to_owned()));
    }
    for (expires, ns, key) in &due {
        t.expiry.remove((*expires, ns.as_str(), key.as_str()))?;
        // The index entry is stale if the key was rewritten since; `put` keeps them in step,
        // so this is only a guard.
        if stored(t, ns, key)?.is_some_and(|(e, _)| e == *expires) {
            put(t, ns, key, None, false)?;
        }
    }
    Ok(due.len())
}

/// Deletes every namespace last touched before `cutoff_ms`, unless `recent` says it was read
/// since (a touch not yet written to its row). Returns how many.
///
/// A namespace goes in one piece, so that no reader ever sees half of one; its size is bounded
/// by the namespace quota.
pub(crate) fn collect_idle(
    t: &mut Txn<'_>,
    cutoff_ms: u64,
    recent: impl Fn(&str) -> bool,
) -> Result<usize, Fail> {
    let mut idle = Vec::new();
    for entry in t.namespaces.iter()? {
        let (ns, row) = entry?;
        let (_, _, touched) = row.value();
        if touched < cutoff_ms && !recent(ns.value()) {
            idle.push(ns.value().to_owned());
        }
    }
    for ns in &idle {
        drop_namespace(t, ns)?;
    }
    Ok(idle.len())
}

/// Writes the last-touched times that reads noted in memory, for namespaces that still exist.
pub(crate) fn write_touches(t: &mut Txn<'_>, touches: &HashMap<String, u64>) -> Result<(), Fail> {
    for (ns, &at) in touches {
        if let Some(mut row) = row(t, ns)?
            && at > row.touched_ms
        {
            row.touched_ms = at;
            t.namespaces
                .insert(ns.as_str(), (row.bytes, row.keys, row.touched_ms))?;
        }
    }
    Ok(())
}

/// Every key of `ns`, its TTL index entries and its row.
fn drop_namespace(t: &mut Txn<'_>, ns: &str) -> Result<(), Fail> {
    // (ns, "") up to (ns + "\0", ""): exactly the keys of `ns`, since no string sorts between
    // `ns`'s own keys and `ns` followed by the smallest byte.
    let end = format!("{ns}\0");
    let mut expiries = Vec::new();
    for entry in t.kv.extract_if((ns, "")..(end.as_str(), ""), |_, _| true)? {
        let (k, v) = entry?;
        if let Some((expires, _)) = decode_value(v.value())
            && expires != 0
        {
            expiries.push((expires, k.value().1.to_owned()));
        }
    }
    for (expires, key) in &expiries {
        t.expiry.remove((*expires, ns, key.as_str()))?;
    }
    if let Some(row) = row(t, ns)? {
        t.namespaces.remove(ns)?;
        t.totals.bytes -= row.bytes.min(t.totals.bytes);
        t.totals.keys -= row.keys.min(t.totals.keys);
        t.totals.namespaces = t.totals.namespaces.saturating_sub(1);
    }
    Ok(())
}

/// Runs a write; if a quota refused it, sweeps expired keys (whose bytes still count until
/// swept) and tries once more.
fn with_room(
    t: &mut Txn<'_>,
    mut write: impl FnMut(&mut Txn<'_>) -> Result<(), Fail>,
) -> Result<(), Fail> {
    match write(t) {
        Err(Fail::User(Error::Quota | Error::Full)) if sweep_expired(t)? > 0 => write(t),
        other => other,
    }
}

/// The one place a key changes: `new` is the value and its expiry, `None` deletes. Keeps the
/// namespace row, TTL index and totals in step; `touch` marks the namespace used.
fn put(
    t: &mut Txn<'_>,
    ns: &str,
    key: &str,
    new: Option<(&[u8], u64)>,
    touch: bool,
) -> Result<(), Fail> {
    let old = stored(t, ns, key)?;
    let old_bytes = old.map_or(0, |(_, len)| entry_bytes(key.len(), len));
    let new_bytes = new.map_or(0, |(value, _)| entry_bytes(key.len(), value.len()));
    let existing = row(t, ns)?;
    let mut row = existing.unwrap_or_default();
    if new_bytes > old_bytes {
        // Only growth is refused: a namespace over a quota lowered since may still shrink.
        let growth = new_bytes - old_bytes;
        if row.bytes + growth > t.limits.namespace_quota {
            return Err(Error::Quota.into());
        }
        if t.totals.bytes + growth > t.limits.max_bytes {
            return Err(Error::Full.into());
        }
    }
    if old.is_none() && new.is_none() {
        return Ok(());
    }
    if let Some((expires, _)) = old
        && expires != 0
    {
        t.expiry.remove((expires, ns, key))?;
    }
    match new {
        Some((value, expires)) => {
            t.kv.insert((ns, key), encode_value(expires, value).as_slice())?;
            if expires != 0 {
                t.expiry.insert((expires, ns, key), ())?;
            }
        }
        None => {
            t.kv.remove((ns, key))?;
        }
    }
    row.bytes = (row.bytes + new_bytes).saturating_sub(old_bytes);
    row.keys = (row.keys + u64::from(new.is_some())).saturating_sub(u64::from(old.is_some()));
    if touch {
        row.touched_ms = t.now_ms;
    }
    t.totals.bytes = (t.totals.bytes + new_bytes).saturating_sub(old_bytes);
    t.totals.keys =
        (t.totals.keys + u64::from(new.is_some())).saturating_sub(u64::from(old.is_some()));
    if row.keys == 0 {
        if existing.is_some() {
            t.namespaces.remove(ns)?;
            t.totals.namespaces = t.totals.namespaces.saturating_sub(1);
        }
    } else {
        t.namespaces
            .insert(ns, (row.bytes, row.keys, row.touched_ms))?;
        if existing.is_none() {
            t.totals.namespaces += 1;
        }
    }
    Ok(())
}

/// The stored entry's expiry and value length, expired or not.
fn stored(t: &Txn<'_>, ns: &str, key: &str) -> Result<Option<(u64, usize)>, Fail> {
    match t.kv.get((ns, key))? {
        None => Ok(None),
        Some(v) => {
            let (expires, value) = decode_value(v.value()).ok_or_else(damaged)?;
            Ok(Some((expires, value.len())))
        }
    }
}

/// The entry's expiry and value, unless absent or expired.
fn live(t: &Txn<'_>, ns: &str, key: &str) -> Result<Option<(u64, Vec<u8>)>, Fail> {
    match t.kv.get((ns, key))? {
        None => Ok(None),
        Some(v) => {
            let (expires, value) = decode_value(v.value()).ok_or_else(damaged)?;
            Ok((!expired(expires, t.now_ms)).then(|| (expires, value.to_vec())))
        }
    }
}

fn row(t: &Txn<'_>, ns: &str) -> Result<Option<Row>, Fail> {
    Ok(t.namespaces.get(ns)?.map(|r| {
        let (bytes, keys, touched_ms) = r.value();
        Row {
            bytes,
            keys,
            touched_ms,
        }
    }))
}

/// The unix-ms expiry for a TTL from `now_ms` (0: none). A TTL rounds up to whole
/// milliseconds, so a key with any TTL lives for at least one.
fn expiry(now_ms: u64, ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |ttl| {
        let ms = u64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        now_ms.saturating_add(ms.max(1))
    })
}

/// A row we did not write: a value shorter than its expiry header.
fn damaged() -> Error {
    Error::Unavailable(
        "a stored value is damaged (shorter than its header); the file may be corrupt".to_owned(),
    )
}

/// Checks a namespace and key against the limits (see [`Error::BadKey`]).
pub(crate) fn check_key(ns: &str, key: &str) -> Result<(), Error> {
    let ns_ok = !ns.is_empty() && ns.len() <= crate::Store::MAX_NAMESPACE;
    let key_ok = !key.is_empty() && key.len() <= crate::Store::MAX_KEY;
    if ns_ok && key_ok {
        Ok(())
    } else {
        Err(Error::BadKey)
    }
}

/// Checks a namespace alone (`list` takes a prefix, which may be empty).
pub(crate) fn check_namespace(ns: &str) -> Result<(), Error> {
    if !ns.is_empty() && ns.len() <= crate::Store::MAX_NAMESPACE {
        Ok(())
    } else {
        Err(Error::BadKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_a_millisecond() {
        assert_eq!(expiry(1000, None), 0);
        assert_eq!(expiry(1000, Some(Duration::ZERO)), 1001);
        assert_eq!(expiry(1000, Some(Duration::from_nanos(1))), 1001);
        assert_eq!(expiry(1000, Some(Duration::from_millis(50))), 1050);
        assert_eq!(expiry(1000, Some(Duration::MAX)), u64::MAX);
    }

    #[test]
    fn key_limits() {
        assert!(check_key("n", "k").is_ok());
        assert!(check_key(&"n".repeat(256), &"k".repeat(512)).is_ok());
        assert_eq!(check_key(&"n".repeat(257), "k"), Err(Error::BadKey));
        assert_eq!(check_key("n", &"k".repeat(513)), Err(Error::BadKey));
        assert_eq!(check_namespace(""), Err(Error::BadKey));
    }
}
