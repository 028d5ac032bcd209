//! The host's key-value store: the `store` import (`wit/store.wit`, package 0.2.1) as the
//! methods of [`Store`], one namespace of it.

use std::fmt;
use std::time::Duration;

use super::__internal::bindings::wsbox::websocket::store as host;
use super::websocket::alarm_ms;

/// One namespace of the key-value store the host keeps (one per room, say): values that
/// outlive the connection, its instance and the runner itself (unless the runner keeps its
/// store in memory, `--data-dir memory`).
///
/// Keys are UTF-8, 1 to 512 bytes; values at most 1 MiB; a namespace name 1 to 256 bytes.
/// A namespace holds at most the host's quota (64 MiB by default), and one nobody read or
/// wrote for a while (7 days by default) is deleted. A read sees every write that returned;
/// a write returns once the host committed it to disk, and that wait counts toward the
/// call's CPU time limit. Errors are values ([`StoreError`]), never traps.
///
/// A `Store` is only a name: making one costs nothing and checks nothing (a bad name
/// fails each call with [`StoreError::BadKey`]).
///
/// # Examples
///
/// A visit counter per room, and a room's topic set by its first member only:
///
/// ```
/// use wsbox::guest::{Store, StoreError};
///
/// /// Counts a visit to `room`; how many there were, this one included.
/// fn visit(room: &str) -> Result<i64, StoreError> {
///     // Two connections counting at once never lose one's visit.
///     Store::new(format!("room-{room}")).increment("visits", 1)
/// }
///
/// /// Sets the room's topic if it has none yet; whether this call set it.
/// fn claim_topic(room: &Store, topic: &str) -> Result<bool, StoreError> {
///     room.compare_and_swap("topic", None, Some(topic.as_bytes()), None)
/// }
/// # let _ = (visit, claim_topic);
/// # assert_eq!(Store::new("room-lobby").namespace(), "room-lobby");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Store {
    namespace: String,
}

/// Why a store call failed; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The key or the namespace is empty or too long (512 and 256 bytes).
    BadKey,
    /// The value is larger than 1 MiB.
    TooLarge,
    /// The namespace would pass its quota (`--data-namespace-quota`).
    Quota,
    /// The host's store would pass its bound (`--data-max-bytes`).
    Full,
    /// [`Store::increment`] of a value that is not a decimal integer.
    NotANumber,
    /// [`Store::increment`] past the range of `i64`.
    Overflow,
    /// The host's database failed (a full disk, say).
    Unavailable,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreError::BadKey => "the key or the namespace is empty or too long",
            StoreError::TooLarge => "the value is larger than 1 MiB",
            StoreError::Quota => "the namespace would pass its quota",
            StoreError::Full => "the host's store is full",
            StoreError::NotANumber => "the value is not a decimal integer",
            StoreError::Overflow => "the sum is out of the range of i64",
            StoreError::Unavailable => "the host's store is unavailable",
        })
    }
}

impl std::error::Error for StoreError {}

impl From<host::StoreError> for StoreError {
    fn from(error: host::StoreError) -> Self {
        match error {
            host::StoreError::BadKey => StoreError::BadKey,
            host::StoreError::TooLarge => StoreError::TooLarge,
            host::StoreError::Quota => StoreError::Quota,
            host::StoreError::Full => StoreError::Full,
            host::StoreError::NotANumber => StoreError::NotANumber,
            host::StoreError::Overflow => StoreError::Overflow,
            host::StoreError::Unavailable => StoreError::Unavailable,
        }
    }
}

/// A time to live in whole milliseconds, rounded up (a short one is not an immediate
/// expiry), saturating.
fn ttl_ms(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(alarm_ms)
}

impl Store {
    /// The namespace `namespace` (1 to 256 bytes).
    pub fn new(namespace: impl Into<String>) -> Store {
        Store {
            namespace: namespace.into(),
        }
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The value of `key`; `None` if unset, or its time to live is over.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(host::get(&self.namespace, key)?)
    }

    /// Sets `key` to `value`; with a `ttl` it reads as unset once that is over
    /// (millisecond resolution).
    pub fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        Ok(host::set(&self.namespace, key, value, ttl_ms(ttl))?)
    }

    /// Deletes `key`; whether it was set.
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(host::delete(&self.namespace, key)?)
    }

    /// The keys that start with `prefix`, in byte order, after `after` if given, at most
    /// `limit` (at most 1000): pass the last one as `after` for the next page.
    pub fn keys(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        Ok(host::keys(&self.namespace, prefix, after, limit)?)
    }

    /// Adds `delta` to the decimal integer in `key` (0 if unset) and returns the sum, in
    /// one step: two connections incrementing at once never lose one's addition. The key
    /// keeps its time to live.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        Ok(host::increment(&self.namespace, key, delta)?)
    }

    /// Sets `key` to `new` (unsets it if `None`), for `ttl` if given, only if its value is
    /// `expected` now (`None`: unset), in one step; whether it did.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        Ok(host::compare_and_swap(
            &self.namespace,
            key,
            expected,
            new,
            ttl_ms(ttl),
        )?)
    }
}
