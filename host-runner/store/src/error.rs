//! What can go wrong, in terms a caller can act on: [`Error`] for the operations, [`OpenError`]
//! for [`Store::open`](crate::Store::open). `Fail` is the writer's own split between an
//! operation's answer and a failure that sinks the whole batch.

use std::io;
use std::path::PathBuf;

/// Why a key-value or history operation failed.
///
/// Every variant but [`Error::Unavailable`] is about the request itself and changes nothing in
/// the store; `Unavailable` means the database could not do its part, and the request may be
/// retried once the cause (named in its text) is fixed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The namespace is empty or longer than [`MAX_NAMESPACE`](crate::Store::MAX_NAMESPACE)
    /// bytes, or the key is empty or longer than [`MAX_KEY`](crate::Store::MAX_KEY) bytes.
    #[error("bad key: a namespace must be 1 to 256 bytes and a key 1 to 512 bytes of UTF-8")]
    BadKey,
    /// The value is longer than [`MAX_VALUE`](crate::Store::MAX_VALUE) bytes.
    #[error("value too large: at most 1 MiB a key; split it over several keys")]
    TooLarge,
    /// The write would take the namespace past `Config::namespace_quota`; nothing was written.
    #[error("namespace quota reached: delete keys of this namespace or raise its quota")]
    Quota,
    /// The write would take the whole store past `Config::max_bytes`; nothing was written.
    #[error("store full: delete keys or raise --data-max-bytes")]
    Full,
    /// `increment` found a value that is not a decimal ASCII `i64`.
    #[error("not a number: increment needs a value that is a decimal i64, such as \"42\"")]
    NotANumber,
    /// `increment` would leave the range of `i64`.
    #[error("overflow: the result of increment does not fit in an i64")]
    Overflow,
    /// The database failed (I/O error, disk full, writer stopped, queue full …); the text says
    /// what happened and what to check.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Why [`Store::open`](crate::Store::open) failed. Each variant names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another `Store` (this process) or another process has the database open.
    #[error(
        "{} is in use by another store (this process or another one): \
         stop that one, or give this one another data directory",
        path.display()
    )]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// The directory or the file cannot be created, read or written.
    #[error(
        "cannot use {}: {source}; check that it is a directory this user may read and write",
        path.display()
    )]
    Unreadable {
        /// The directory or file that failed.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file is not a wsbox store, or is damaged or truncated.
    #[error(
        "{} is not a readable wsbox store ({detail}): \
         move it aside to start empty, or restore it from a backup",
        path.display()
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What was wrong with it.
        detail: String,
    },
    /// The file was written by a newer wsbox whose format this one does not know.
    #[error(
        "{} has store format {found} but this wsbox reads format {supported} at most: \
         run a newer wsbox",
        path.display()
    )]
    NewerFormat {
        /// The database file.
        path: PathBuf,
        /// The format the file declares.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
}

/// The writer's verdict on one operation: the caller's answer, or a database failure that
/// aborts the whole transaction (and so every operation in the batch).
#[derive(Debug)]
pub(crate) enum Fail {
    /// Answer this operation with the error; the batch goes on.
    User(Error),
    /// The transaction is lost.
    Storage(String),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::User(e)
    }
}

impl From<redb::StorageError> for Fail {
    fn from(e: redb::StorageError) -> Self {
        Fail::Storage(e.to_string())
    }
}

impl From<redb::TableError> for Fail {
    fn from(e: redb::TableError) -> Self {
        Fail::Storage(e.to_string())
    }
}

/// A database failure seen by a reader.
pub(crate) fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}
