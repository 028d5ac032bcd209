//! `--cache-dir`: a handler is compiled once, later starts load its native code, and an
//! entry that does not verify (torn, corrupted) is compiled again, never loaded.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::Runner;

fn scratch_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("wsbox-cache-{}-{nanos}", std::process::id()))
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("the cache directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect()
}

fn served(runner: &Runner) {
    runner.connect("/none").echo("served");
}

#[test]
fn a_handler_is_compiled_once_and_a_bad_entry_is_compiled_again() {
    let dir = scratch_dir();
    let flag = dir.to_str().expect("a UTF-8 path");
    let runner = Runner::with_test_handler(&["--cache-dir", flag]);
    runner.wait_for_log("handler compiled and cached");
    served(&runner);
    drop(runner);
    let mode = std::fs::metadata(&dir).expect("made").permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    let cached = entries(&dir);
    let [entry] = &cached[..] else {
        panic!("one entry expected: {cached:?}")
    };

    let runner = Runner::with_test_handler(&["--cache-dir", flag]);
    let log = runner.wait_for_log("handler loaded from the compile cache");
    assert!(!log.contains("compiled and cached"), "{log}");
    served(&runner);
    drop(runner);

    // One bit flipped in the code: the hash before it no longer matches.
    let mut bytes = std::fs::read(entry).expect("read the entry");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(entry, &bytes).expect("corrupt the entry");
    let runner = Runner::with_test_handler(&["--cache-dir", flag]);
    let log = runner.wait_for_log("handler compiled and cached");
    assert!(log.contains("does not verify"), "{log}");
    served(&runner);
    drop(runner);

    // A directory others may write is not used.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let runner = Runner::with_test_handler(&["--cache-dir", flag]);
    let log = runner.wait_for_log("may be written by others");
    assert!(!log.contains("loaded from the compile cache"), "{log}");
    served(&runner);
    drop(runner);
    let _ = std::fs::remove_dir_all(&dir);
}
