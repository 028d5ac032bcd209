//! The file: its tables, how rows are encoded, the format number, and opening it.
//!
//! Everything here is format 1. A change to any table's key or value encoding is a new
//! format number, so that an older wsbox refuses the file ([`OpenError::NewerFormat`]) instead
//! of misreading it.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use redb::backends::InMemoryBackend;
use redb::{
    Builder, Database, DatabaseError, ReadableDatabase, ReadableTable, StorageError,
    TableDefinition, TableError, TableHandle,
};

use crate::error::OpenError;

/// The format this build writes and the newest it reads.
pub(crate) const FORMAT: u64 = 1;

/// What the store counts for one key or history record on top of its own bytes: roughly what
/// redb spends on it (B-tree entry offsets, the composite key's length prefixes, our 8-byte
/// expiry or 17-byte record header, the TTL index entry). An estimate, but a fixed one, so that
/// a quota means the same thing on every machine: 1,000 one-byte keys with one-byte values count
/// 34,000 bytes.
pub const ENTRY_OVERHEAD: u64 = 32;

/// `"format"` → [`FORMAT`].
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `(namespace, key)` → value: 8 bytes of expiry (unix ms, little-endian, 0 = none), then the
/// value's bytes. A tuple key so that one namespace's keys are contiguous and in byte order.
pub(crate) const KV: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("kv");
/// `(expiry ms, namespace, key)` for every key with a TTL: the sweep reads it from the start.
pub(crate) const EXPIRY: TableDefinition<(u64, &str, &str), ()> = TableDefinition::new("kv_expiry");
/// namespace → (bytes, keys, last touched unix ms). A namespace without keys has no row.
pub(crate) const NAMESPACES: TableDefinition<&str, (u64, u64, u64)> =
    TableDefinition::new("namespaces");
/// topic → (epoch, bytes, records).
pub(crate) const TOPICS: TableDefinition<&str, (u64, u64, u64)> = TableDefinition::new("topics");
/// `(topic, offset)` → 8 bytes of `at_ms`, 1 byte `binary`, then the payload.
pub(crate) const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");

/// The names of every table above: a file holding any other table is not ours.
const TABLES: [&str; 6] = ["meta", "kv", "kv_expiry", "namespaces", "topics", "history"];

/// redb's page cache. Its default (1 GiB) would be resident beside the runner's instances;
/// 64 MiB holds the B-tree's inner pages of a full default store many times over.
const CACHE_BYTES: usize = 64 << 20;

/// Bytes a key or record is counted for (see [`ENTRY_OVERHEAD`]).
pub(crate) fn entry_bytes(name_len: usize, value_len: usize) -> u64 {
    name_len as u64 + value_len as u64 + ENTRY_OVERHEAD
}

/// A KV value as stored: expiry (0 = none) and the caller's bytes.
pub(crate) fn encode_value(expires_ms: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&expires_ms.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// The inverse of [`encode_value`]; `None` for a row too short to be ours.
pub(crate) fn decode_value(stored: &[u8]) -> Option<(u64, &[u8])> {
    let (expiry, value) = stored.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*expiry), value))
}

/// Whether a value with this expiry reads as absent at `now_ms`.
pub(crate) fn expired(expires_ms: u64, now_ms: u64) -> bool {
    expires_ms != 0 && expires_ms <= now_ms
}

/// A history record's value: `at_ms`, `binary`, payload (epoch and offset live elsewhere).
pub(crate) fn encode_record(at_ms: u64, binary: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&at_ms.to_le_bytes());
    out.push(u8::from(binary));
    out.extend_from_slice(payload);
    out
}

/// The inverse of [`encode_record`].
pub(crate) fn decode_record(stored: &[u8]) -> Option<(u64, bool, &[u8])> {
    let (at, rest) = stored.split_first_chunk::<8>()?;
    let (&binary, payload) = rest.split_first()?;
    Some((u64::from_le_bytes(*at), binary != 0, payload))
}

/// Where a store lives.
#[derive(Clone, Debug)]
pub(crate) enum Location {
    Memory,
    File(PathBuf),
}

impl Location {
    /// The file name inside `Config::dir`.
    pub(crate) fn new(dir: Option<&Path>) -> Location {
        match dir {
            None => Location::Memory,
            Some(dir) => Location::File(dir.join("store.redb")),
        }
    }

    /// What error texts name.
    pub(crate) fn describe(&self) -> String {
        match self {
            Location::Memory => "the in-memory store".to_owned(),
            Location::File(path) => path.display().to_string(),
        }
    }
}

/// Opens (creating if need be) the database and checks or writes its format.
pub(crate) fn open(location: &Location) -> Result<Database, OpenError> {
    let mut builder = Builder::new();
    builder.set_cache_size(CACHE_BYTES);
    let (db, path) = match location {
        Location::Memory => {
            let db = builder
                .create_with_backend(InMemoryBackend::new())
                .map_err(|e| open_error(Path::new(":memory:"), e))?;
            (db, Path::new(":memory:"))
        }
        Location::File(path) => {
            if let Some(dir) = path.parent() {
                // 0700: guests' data is nobody else's business on a shared machine.
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|source| OpenError::Unreadable {
                        path: dir.to_owned(),
                        source,
                    })?;
            }
            // redb checks some invariants of a file it reads with debug assertions, which
            // panic in debug builds on a damaged file: that is `Corrupt` too.
            let db = catch_unwind(AssertUnwindSafe(|| builder.create(path)))
                .map_err(|panic| OpenError::Corrupt {
                    path: path.clone(),
                    detail: panic_text(&panic),
                })?
                .map_err(|e| open_error(path, e))?;
            (db, path.as_path())
        }
    };
    check_format(&db, path)?;
    Ok(db)
}

/// Makes a new file format 1, or checks that an existing one is a wsbox store we can read.
fn check_format(db: &Database, path: &Path) -> Result<(), OpenError> {
    let corrupt = |detail: String| OpenError::Corrupt {
        path: path.to_owned(),
        detail,
    };
    let storage = |e: StorageError| corrupt(e.to_string());
    let table = |e: TableError| match e {
        TableError::Storage(e) => storage(e),
        other => corrupt(other.to_string()),
    };
    let tx = db.begin_write().map_err(|e| corrupt(e.to_string()))?;
    let names: Vec<String> = tx
        .list_tables()
        .map_err(storage)?
        .map(|t| t.name().to_owned())
        .collect();
    if let Some(stranger) = names.iter().find(|n| !TABLES.contains(&n.as_str())) {
        return Err(corrupt(format!(
            "a redb database, but with table {stranger:?}, which is not a wsbox store's"
        )));
    }
    {
        let mut meta = tx.open_table(META).map_err(table)?;
        let found = meta.get("format").map_err(storage)?.map(|v| v.value());
        match found {
            Some(FORMAT) => {}
            Some(found) if found > FORMAT => {
                return Err(OpenError::NewerFormat {
                    path: path.to_owned(),
                    found: u32::try_from(found).unwrap_or(u32::MAX),
                    supported: FORMAT as u32,
                });
            }
            Some(other) => {
                return Err(corrupt(format!(
                    "format number {other} was never written by wsbox"
                )));
            }
            None if !names.is_empty() => {
                return Err(corrupt("wsbox tables without a format number".to_owned()));
            }
            None => {
                meta.insert("format", FORMAT).map_err(storage)?;
            }
        }
    }
    // Creates the tables of a new file; in an old one, checks their types.
    tx.open_table(KV).map_err(table)?;
    tx.open_table(EXPIRY).map_err(table)?;
    tx.open_table(NAMESPACES).map_err(table)?;
    tx.open_table(TOPICS).map_err(table)?;
    tx.open_table(HISTORY).map_err(table)?;
    tx.commit().map_err(|e| corrupt(e.to_string()))?;
    Ok(())
}

/// redb's open errors in the store's terms.
fn open_error(path: &Path, e: DatabaseError) -> OpenError {
    let path = path.to_owned();
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            OpenError::Locked { path }
        }
        // redb reports a file that is not a database as InvalidData, and one cut short as a
        // read past its end.
        DatabaseError::Storage(StorageError::Io(source))
            if !matches!(
                source.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ) =>
        {
            OpenError::Unreadable { path, source }
        }
        DatabaseError::Storage(StorageError::Io(e)) => OpenError::Corrupt {
            path,
            detail: e.to_string(),
        },
        DatabaseError::UpgradeRequired(v) => OpenError::Corrupt {
            path,
            detail: format!("written in redb file format {v}, older than this build reads"),
        },
        other => OpenError::Corrupt {
            path,
            detail: other.to_string(),
        },
    }
}

/// What a caught panic said.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".to_owned());
    format!("redb panicked while opening it: {text}")
}

/// What the store holds, as the writer keeps count; read from the rows at open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Keys, values and records, each with [`ENTRY_OVERHEAD`].
    pub(crate) bytes: u64,
    pub(crate) namespaces: u64,
    pub(crate) keys: u64,
    pub(crate) topics: u64,
    pub(crate) records: u64,
}

impl Totals {
    /// Sums the namespace and topic rows.
    pub(crate) fn load(db: &Database) -> Result<Totals, String> {
        let tx = db.begin_read().map_err(|e| e.to_string())?;
        let mut totals = Totals::default();
        let namespaces = tx.open_table(NAMESPACES).map_err(|e| e.to_string())?;
        for row in namespaces.iter().map_err(|e| e.to_string())? {
            let (_, row) = row.map_err(|e| e.to_string())?;
            let (bytes, keys, _) = row.value();
            totals.bytes += bytes;
            totals.keys += keys;
            totals.namespaces += 1;
        }
        let topics = tx.open_table(TOPICS).map_err(|e| e.to_string())?;
        for row in topics.iter().map_err(|e| e.to_string())? {
            let (_, row) = row.map_err(|e| e.to_string())?;
            let (_, bytes, records) = row.value();
            totals.bytes += bytes;
            totals.records += records;
            totals.topics += 1;
        }
        Ok(totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        assert_eq!(
            decode_value(&encode_value(7, b"abc")),
            Some((7, &b"abc"[..]))
        );
        assert_eq!(decode_value(&encode_value(0, b"")), Some((0, &b""[..])));
        assert_eq!(decode_value(b"short"), None);
        assert_eq!(
            decode_record(&encode_record(9, true, b"p")),
            Some((9, true, &b"p"[..]))
        );
        assert_eq!(decode_record(&[0; 8]), None);
    }

    #[test]
    fn expiry_zero_is_never() {
        assert!(!expired(0, u64::MAX));
        assert!(expired(5, 5));
        assert!(!expired(6, 5));
    }

    #[test]
    fn memory_store_gets_format_one() {
        let db = open(&Location::Memory).expect("open");
        let tx = db.begin_read().expect("read");
        let meta = tx.open_table(META).expect("meta");
        assert_eq!(
            meta.get("format").expect("get").map(|v| v.value()),
            Some(FORMAT)
        );
    }
}
