//! `Store::open` and each of its errors, and what their messages tell the user.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{
    CHILD_DIR, CHILD_MODE, block_on, chmod_is_ineffective, on_disk, spawn_child, spawn_child_as,
};
use wsbox_store::{Config, Error, OpenError, Store};

/// The user a root test runs a child as, for permission checks that root would pass.
const NOBODY: u32 = 65_534;

#[test]
fn creates_the_directory_private() {
    let parent = tempfile::tempdir().expect("temp dir");
    let dir = parent.path().join("a").join("b");
    let store = Store::open(on_disk(&dir)).expect("open");
    assert!(dir.join("store.redb").is_file());
    let mode = fs::metadata(&dir).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    drop(store);
}

#[test]
fn a_second_open_in_this_process_is_locked_until_the_first_closes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Store::open(on_disk(dir.path())).expect("open");
    let clone = first.clone();
    match Store::open(on_disk(dir.path())) {
        Err(OpenError::Locked { path }) => assert_eq!(path, dir.path().join("store.redb")),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("opened twice"),
    }
    drop(first);
    assert!(
        matches!(
            Store::open(on_disk(dir.path())),
            Err(OpenError::Locked { .. })
        ),
        "a clone keeps it open"
    );
    drop(clone);
    Store::open(on_disk(dir.path())).expect("open after the last handle closed");
}

/// The child side of the tests that need a second process (see `spawn_child`).
#[test]
fn child() {
    let (Ok(mode), Ok(dir)) = (std::env::var(CHILD_MODE), std::env::var(CHILD_DIR)) else {
        return; // an ordinary test run
    };
    match mode.as_str() {
        "hold" => {
            let store = Store::open(on_disk(dir.as_ref())).expect("child open");
            println!("OPEN");
            // Holds the store until the parent closes our stdin.
            let _ = std::io::stdin().read_line(&mut String::new());
            drop(store);
        }
        "open" => match Store::open(on_disk(dir.as_ref())) {
            Err(OpenError::Unreadable { path, source }) => {
                println!("RESULT Unreadable {} {source}", path.display())
            }
            Err(other) => println!("RESULT {other:?}"),
            Ok(_) => println!("RESULT opened"),
        },
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn another_process_holding_the_store_makes_it_locked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut kid = spawn_child("child", "hold", dir.path());
    assert!(
        kid.lines
            .wait_for("OPEN", Duration::from_secs(30))
            .is_some(),
        "the child did not open the store"
    );
    let err = Store::open(on_disk(dir.path())).err();
    drop(kid.child.stdin.take()); // lets the child close the store and exit
    assert!(kid.child.wait().expect("child").success());
    match err {
        Some(OpenError::Locked { .. }) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
    Store::open(on_disk(dir.path())).expect("open once the child is gone");
}

#[test]
fn garbage_is_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let noise: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(dir.path().join("store.redb"), noise).expect("write garbage");
    match Store::open(on_disk(dir.path())) {
        Err(e @ OpenError::Corrupt { .. }) => assert!(e.to_string().contains("store.redb"), "{e}"),
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("opened garbage"),
    }
}

#[test]
fn a_truncated_file_is_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = Store::open(on_disk(dir.path())).expect("open");
        block_on(store.set("ns", "k", vec![1; 100_000], None)).expect("set");
    }
    let path = dir.path().join("store.redb");
    let len = fs::metadata(&path).expect("stat").len();
    // Shortest last: set_len would pad a shorter file back out with zeros.
    for keep in [len / 2, 4096 + 100, 100] {
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open file");
        file.set_len(keep).expect("truncate");
        drop(file);
        // redb records the file's length in its header, so every cut is caught at open.
        match Store::open(on_disk(dir.path())) {
            Err(OpenError::Corrupt { .. }) => {}
            Err(other) => panic!("truncated to {keep}: expected Corrupt, got {other}"),
            Ok(_) => panic!("truncated to {keep}: opened"),
        }
    }
}

#[test]
fn a_redb_file_that_is_not_a_store_is_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.redb");
    {
        let db = redb::Database::create(&path).expect("create");
        let tx = db.begin_write().expect("write");
        let table: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("someone_else");
        tx.open_table(table)
            .expect("table")
            .insert(1, 2)
            .expect("insert");
        tx.commit().expect("commit");
    }
    assert!(matches!(
        Store::open(on_disk(dir.path())),
        Err(OpenError::Corrupt { .. })
    ));
}

#[test]
fn a_newer_format_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(Store::open(on_disk(dir.path())).expect("create"));
    let path = dir.path().join("store.redb");
    let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
    {
        let db = redb::Database::open(&path).expect("open with redb");
        let tx = db.begin_write().expect("write");
        tx.open_table(meta)
            .expect("meta")
            .insert("format", 2)
            .expect("insert");
        tx.commit().expect("commit");
    }
    match Store::open(on_disk(dir.path())) {
        Err(
            e @ OpenError::NewerFormat {
                found: 2,
                supported: 1,
                ..
            },
        ) => {
            assert!(e.to_string().contains("newer wsbox"), "{e}");
        }
        Err(other) => panic!("expected NewerFormat, got {other}"),
        Ok(_) => panic!("opened a newer format"),
    }
    // Still format 2: the refusal wrote nothing.
    let db = redb::Database::open(&path).expect("open with redb");
    let tx = redb::ReadableDatabase::begin_read(&db).expect("read");
    let table = tx.open_table(meta).expect("meta");
    let format = redb::ReadableTable::get(&table, "format")
        .expect("get")
        .map(|v| v.value());
    assert_eq!(format, Some(2));
}

#[test]
fn a_directory_without_permission_is_unreadable() {
    let parent = tempfile::tempdir().expect("temp dir");
    fs::set_permissions(parent.path(), fs::Permissions::from_mode(0o755)).expect("chmod parent");
    let dir = parent.path().join("locked-out");
    fs::create_dir(&dir).expect("mkdir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o000)).expect("chmod");
    let result = if chmod_is_ineffective() {
        // Root reads through mode 000, so a child process tries as user nobody.
        let Ok(kid) = spawn_child_as("child", "open", &dir, Some(NOBODY)) else {
            eprintln!("skipped: running as root and cannot start a process as nobody");
            return;
        };
        kid.lines
            .wait_for("RESULT ", Duration::from_secs(30))
            .expect("the child's result")
    } else {
        match Store::open(on_disk(&dir)) {
            Err(OpenError::Unreadable { path, source }) => {
                format!("Unreadable {} {source}", path.display())
            }
            Err(other) => format!("{other:?}"),
            Ok(_) => "opened".to_owned(),
        }
    };
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod back");
    let expected = format!("Unreadable {}", dir.join("store.redb").display());
    assert!(
        result.starts_with(&expected) && result.contains("denied"),
        "{result}"
    );
}

#[test]
fn a_file_in_place_of_the_directory_is_unreadable() {
    // Works as root too, unlike chmod.
    let parent = tempfile::tempdir().expect("temp dir");
    let file = parent.path().join("not-a-dir");
    fs::File::create(&file)
        .expect("create")
        .write_all(b"x")
        .expect("write");
    match Store::open(on_disk(&file)) {
        Err(e @ OpenError::Unreadable { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("not-a-dir") && text.contains("read and write"),
                "{text}"
            );
        }
        other => panic!("expected Unreadable, got {:?}", other.err()),
    }
    match Store::open(on_disk(&file.join("below"))) {
        Err(OpenError::Unreadable { path, .. }) => assert_eq!(path, file.join("below")),
        other => panic!("expected Unreadable, got {:?}", other.err()),
    }
}

#[test]
fn every_message_says_what_to_do() {
    let errors = [
        Error::BadKey,
        Error::TooLarge,
        Error::Quota,
        Error::Full,
        Error::NotANumber,
        Error::Overflow,
        Error::Unavailable("disk full".into()),
    ];
    for e in &errors {
        let text = e.to_string();
        assert!(text.len() > 20, "{text}");
        let _: &dyn std::error::Error = e;
    }
    assert!(Error::Full.to_string().contains("--data-max-bytes"));
    let path = std::path::PathBuf::from("/data/store.redb");
    let open = [
        OpenError::Locked { path: path.clone() },
        OpenError::Unreadable {
            path: path.clone(),
            source: std::io::Error::from_raw_os_error(13),
        },
        OpenError::Corrupt {
            path: path.clone(),
            detail: "bad magic".into(),
        },
        OpenError::NewerFormat {
            path: path.clone(),
            found: 2,
            supported: 1,
        },
    ];
    for e in &open {
        let text = e.to_string();
        assert!(text.contains("/data/store.redb"), "{text}");
        let _: &dyn std::error::Error = e;
    }
    assert!(
        std::error::Error::source(&open[1]).is_some(),
        "Unreadable carries the OS error"
    );
}

#[test]
fn memory_stores_are_independent() {
    let a = Store::open(Config::default()).expect("open");
    let b = Store::open(Config::default()).expect("open");
    block_on(a.set("ns", "k", b"a".to_vec(), None)).expect("set");
    assert_eq!(b.get("ns", "k"), Ok(None));
}
