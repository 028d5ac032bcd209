//! Helpers shared by the integration tests: a runtime to block on, stores in temp dirs, and
//! child processes (this test binary run again) for what needs a second process.

#![allow(dead_code)] // each test file uses its own part of this

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wsbox_store::{Config, Store};

/// Runs a future to completion on a fresh current-thread runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Runs all the futures concurrently (each polled from the start, like tasks of a server) and
/// returns their outputs in order.
pub fn join_all<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let tasks: Vec<_> = futures.into_iter().map(|f| rt.spawn(f)).collect();
    rt.block_on(async {
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            out.push(task.await.expect("task"));
        }
        out
    })
}

/// An in-memory store with the default limits, collection off.
pub fn memory() -> Store {
    Store::open(Config {
        idle_namespace: None,
        ..Config::default()
    })
    .expect("open in memory")
}

/// A config for a store in `dir`.
pub fn on_disk(dir: &Path) -> Config {
    Config {
        dir: Some(dir.to_owned()),
        ..Config::default()
    }
}

/// Polls `check` every 10 ms until it holds or `limit` passes; whether it held.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The environment variable that makes a test binary's `child` test do `mode`.
pub const CHILD_MODE: &str = "WSBOX_STORE_CHILD";
/// The store directory a child is to use.
pub const CHILD_DIR: &str = "WSBOX_STORE_DIR";

/// A child process (this test binary run again), killed if the test ends before it does.
pub struct Kid {
    pub child: Child,
    pub lines: Lines,
}

/// Runs this test binary again, running only the test named `entry`, which reads `mode` and
/// `dir` from the environment. Its stdin and stdout are piped.
pub fn spawn_child(entry: &str, mode: &str, dir: &Path) -> Kid {
    spawn_child_as(entry, mode, dir, None).expect("re-run the test binary")
}

/// [`spawn_child`], as user `uid` if given (root may run a child as another user, unless a
/// sandbox forbids it: hence the `Result`).
pub fn spawn_child_as(
    entry: &str,
    mode: &str,
    dir: &Path,
    uid: Option<u32>,
) -> std::io::Result<Kid> {
    let mut command = Command::new(std::env::current_exe().expect("own path"));
    command
        .args([entry, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_MODE, mode)
        .env(CHILD_DIR, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if let Some(uid) = uid {
        std::os::unix::process::CommandExt::uid(&mut command, uid);
    }
    let mut child = command.spawn()?;
    let lines = Lines::new(child.stdout.take().expect("piped stdout"));
    Ok(Kid { child, lines })
}

impl Drop for Kid {
    fn drop(&mut self) {
        // Already gone in a test that went well; then both calls fail harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's stdout lines, read on a thread so that waiting for one can time out.
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    pub fn new(stdout: ChildStdout) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// Waits (at most `limit`) for a line holding `marker` (libtest may print "test child ..."
    /// before it); returns what follows the marker.
    pub fn wait_for(&self, marker: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.0.recv_timeout(left).ok()?;
            if let Some(at) = line.find(marker) {
                return Some(line[at + marker.len()..].to_owned());
            }
        }
    }
}

/// Whether this process can read a directory it made mode 000 (root can).
pub fn chmod_is_ineffective() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
