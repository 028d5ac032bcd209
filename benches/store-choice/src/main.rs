//! redb against SQLite for wsbox-store's workload, on this machine's disk in a temp dir:
//! (a) 20,000 sets of 100-byte values, ~200 per fsync'd transaction (group commit);
//! (b) 100,000 random gets of those keys; (c) 500 sets, one fsync'd transaction each.
//! Run: `cargo run --release` (either engine alone: `--no-default-features --features redb`).
//! `STORE_CHOICE_DIR` picks the directory the temp dir is made in (default: the system's).

use std::time::{Duration, Instant};

const KEYS: usize = 20_000;
const BATCH: usize = 200;
const GETS: usize = 100_000;
const SINGLE: usize = 500;
const VALUE: [u8; 100] = [0x5a; 100];

/// The key the store would write: a namespace and a key, as its composite key has them.
fn key(i: usize) -> String {
    format!("room-{:03}/key-{i:08}", i % 37)
}

/// A fixed xorshift, so that both engines read the same keys in the same order.
fn random_indexes() -> Vec<usize> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..GETS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % KEYS as u64) as usize
        })
        .collect()
}

struct Figures {
    group: Duration,
    gets: Duration,
    single: Duration,
    file_bytes: u64,
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name:<8} group commit: {:>9.0} sets/s ({:.2} s) | gets: {:>9.0}/s ({:.3} s) | fsync each: {:>6.0} sets/s ({:.2} s) | file {} KiB",
        KEYS as f64 / f.group.as_secs_f64(),
        f.group.as_secs_f64(),
        GETS as f64 / f.gets.as_secs_f64(),
        f.gets.as_secs_f64(),
        SINGLE as f64 / f.single.as_secs_f64(),
        f.single.as_secs_f64(),
        f.file_bytes / 1024,
    );
}

#[cfg(feature = "redb")]
fn run_redb(dir: &std::path::Path) -> Figures {
    use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
    const T: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
    let path = dir.join("store.redb");
    let db = Database::create(&path).expect("create redb");

    let start = Instant::now();
    for batch in 0..KEYS / BATCH {
        let mut tx = db.begin_write().expect("begin");
        tx.set_durability(Durability::Immediate)
            .expect("durability");
        {
            let mut t = tx.open_table(T).expect("table");
            for i in batch * BATCH..(batch + 1) * BATCH {
                t.insert(key(i).as_str(), VALUE.as_slice()).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    let group = start.elapsed();

    // One read transaction per get: what the store does, so that each get sees the latest commit.
    let idx = random_indexes();
    let start = Instant::now();
    let mut found = 0usize;
    for &i in &idx {
        let rx = db.begin_read().expect("read");
        let t = rx.open_table(T).expect("table");
        if let Some(v) = t.get(key(i).as_str()).expect("get") {
            found += v.value().len();
        }
    }
    let gets = start.elapsed();
    assert_eq!(found, GETS * VALUE.len());

    let start = Instant::now();
    for i in 0..SINGLE {
        let mut tx = db.begin_write().expect("begin");
        tx.set_durability(Durability::Immediate)
            .expect("durability");
        {
            let mut t = tx.open_table(T).expect("table");
            t.insert(format!("single-{i}").as_str(), VALUE.as_slice())
                .expect("insert");
        }
        tx.commit().expect("commit");
    }
    let single = start.elapsed();
    drop(db);
    Figures {
        group,
        gets,
        single,
        file_bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
    }
}

/// WAL with `synchronous = FULL`: SQLite's fastest mode in which a commit is durable when it returns.
#[cfg(feature = "sqlite")]
fn run_sqlite(dir: &std::path::Path) -> Figures {
    use rusqlite::{Connection, params};
    let path = dir.join("store.sqlite");
    let mut db = Connection::open(&path).expect("open sqlite");
    db.pragma_update(None, "journal_mode", "WAL").expect("wal");
    db.pragma_update(None, "synchronous", "FULL").expect("sync");
    db.execute_batch("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        .expect("schema");

    let start = Instant::now();
    for batch in 0..KEYS / BATCH {
        let tx = db.transaction().expect("begin");
        {
            let mut st = tx
                .prepare_cached("INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)")
                .expect("prepare");
            for i in batch * BATCH..(batch + 1) * BATCH {
                st.execute(params![key(i), VALUE.as_slice()])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    let group = start.elapsed();

    let idx = random_indexes();
    let start = Instant::now();
    let mut found = 0usize;
    {
        let mut st = db
            .prepare_cached("SELECT v FROM kv WHERE k = ?1")
            .expect("prepare");
        for &i in &idx {
            let v: Vec<u8> = st.query_row(params![key(i)], |r| r.get(0)).expect("get");
            found += v.len();
        }
    }
    let gets = start.elapsed();
    assert_eq!(found, GETS * VALUE.len());

    let start = Instant::now();
    for i in 0..SINGLE {
        let tx = db.transaction().expect("begin");
        tx.prepare_cached("INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)")
            .expect("prepare")
            .execute(params![format!("single-{i}"), VALUE.as_slice()])
            .expect("insert");
        tx.commit().expect("commit");
    }
    let single = start.elapsed();
    drop(db);
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    Figures {
        group,
        gets,
        single,
        file_bytes: size(&path) + size(&dir.join("store.sqlite-wal")),
    }
}

fn main() {
    let base = std::env::var_os("STORE_CHOICE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for round in 1..=rounds {
        println!("round {round}");
        #[cfg(feature = "redb")]
        {
            let dir = tempfile::tempdir_in(&base).expect("temp dir");
            print("redb", &run_redb(dir.path()));
        }
        #[cfg(feature = "sqlite")]
        {
            let dir = tempfile::tempdir_in(&base).expect("temp dir");
            print("sqlite", &run_sqlite(dir.path()));
        }
    }
}
