//! Reloading the handler: SIGHUP, or `--watch` seeing the `--handler` file change, makes
//! every later call run the new component without closing a socket; a component that does
//! not compile is refused and the old one keeps serving.
//!
//! The two versions tell themselves apart per message: guests/echo answers `/version`'s
//! `TEXT` with `TEXT`, the test handler with `test-handler:TEXT`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Client, Runner};

/// How long compiling a new version may take on a loaded machine.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// guests/echo, built for wasm32-wasip2 once per test process.
fn echo() -> PathBuf {
    common::guest("guest-echo")
}

/// A directory of its own for one test's handler file; removed on drop.
struct Deploy {
    dir: PathBuf,
}

impl Deploy {
    /// A fresh directory whose `handler.wasm` is a copy of `first`.
    fn new(name: &str, first: &Path) -> Deploy {
        let dir = std::env::temp_dir().join(format!("wsbox-reload-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the deploy directory");
        let deploy = Deploy { dir };
        deploy.replace_with(&std::fs::read(first).expect("read the first version"));
        deploy
    }

    fn handler(&self) -> PathBuf {
        self.dir.join("handler.wasm")
    }

    /// Puts `bytes` in place as a deploy would: written aside, then renamed over the old file,
    /// so that the runner never reads half a file.
    fn replace_with(&self, bytes: &[u8]) {
        let aside = self.dir.join("handler.wasm.new");
        std::fs::write(&aside, bytes).expect("write the new version");
        std::fs::rename(&aside, self.handler()).expect("rename the new version into place");
    }

    /// `--handler` and the handler's path, for [`Runner::start`].
    fn args(&self) -> [String; 2] {
        ["--handler".into(), self.handler().display().to_string()]
    }
}

impl Drop for Deploy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(deploy: &Deploy, extra: &[&str]) -> Runner {
    let handler = deploy.args();
    let mut args: Vec<&str> = handler.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    Runner::start(&args)
}

fn sighup(runner: &Runner) {
    let pid = libc::pid_t::try_from(runner.pid()).expect("a pid");
    // SAFETY: kill(2) with a valid signal number has no memory-safety preconditions.
    let sent = unsafe { libc::kill(pid, libc::SIGHUP) };
    assert_eq!(sent, 0, "kill -HUP {pid}");
}

/// Waits for the `occurrence`-th log line containing `needle` (1-based) and returns it.
fn wait_for_nth(runner: &Runner, needle: &str, occurrence: usize) -> String {
    let deadline = Instant::now() + RELOAD_TIMEOUT;
    loop {
        let log = runner.log();
        if let Some(line) = log
            .lines()
            .filter(|l| l.contains(needle))
            .nth(occurrence - 1)
        {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} line #{occurrence} in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `count` clients on `/version`, opened by four threads.
fn connect_many(runner: &Runner, count: usize) -> Vec<Client> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let share = count / 4 + usize::from(t < count % 4);
                scope.spawn(move || {
                    (0..share)
                        .map(|_| runner.connect("/version"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("a connecting thread"))
            .collect()
    })
}

/// Every client sends `text` and must get `expected` back.
fn ask_all(clients: &mut [Client], text: &str, expected: &str) {
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.ask(text), expected, "client {i}");
    }
}

/// 1,000 clients answered by the echo; v2 (the test handler) deployed and signalled; every
/// client is still open and its next message is answered by v2.
fn thousand_clients_move_to_v2(name: &str, extra: &[&str]) {
    let deploy = Deploy::new(name, &echo());
    let mut args = vec!["--max-connections-per-address", "0"];
    args.extend_from_slice(extra);
    let runner = start(&deploy, &args);
    let mut clients = connect_many(&runner, 1000);
    ask_all(&mut clients, "a", "a");

    deploy.replace_with(&std::fs::read(common::test_handler()).expect("read v2"));
    sighup(&runner);
    let line = wait_for_nth(&runner, "handler reloaded", 1);
    assert!(line.contains("version=2"), "{line}");

    ask_all(&mut clients, "b", "test-handler:b");
    // And new connections get v2 from their first call.
    let mut late = runner.connect("/version");
    assert_eq!(late.ask("c"), "test-handler:c");
    let log = runner.log();
    assert!(!log.contains("websocket closed"), "a socket closed:\n{log}");
}

#[test]
fn a_reload_keeps_a_thousand_hibernated_clients() {
    thousand_clients_move_to_v2("hibernated", &["--hibernate-after", "0"]);
}

#[test]
fn a_reload_keeps_a_thousand_live_clients_and_answers_with_v2() {
    // The default --hibernate-after (10 s) keeps their v1 instances live: each is dropped
    // before its next call.
    thousand_clients_move_to_v2("live", &[]);
}

#[test]
fn watch_reloads_when_the_file_changes() {
    let deploy = Deploy::new("watch", &echo());
    let runner = start(&deploy, &["--watch"]);
    let mut clients = connect_many(&runner, 20);
    ask_all(&mut clients, "a", "a");

    deploy.replace_with(&std::fs::read(common::test_handler()).expect("read v2"));
    let line = wait_for_nth(&runner, "handler reloaded", 1);
    assert!(line.contains("version=2"), "{line}");
    ask_all(&mut clients, "b", "test-handler:b");

    // And back: a third version.
    deploy.replace_with(&std::fs::read(echo()).expect("read v3"));
    let line = wait_for_nth(&runner, "handler reloaded", 2);
    assert!(line.contains("version=3"), "{line}");
    ask_all(&mut clients, "c", "c");
    let log = runner.log();
    assert!(!log.contains("websocket closed"), "a socket closed:\n{log}");
}

#[test]
fn a_broken_component_is_refused_and_the_old_one_keeps_serving() {
    let deploy = Deploy::new("broken", &echo());
    let runner = start(&deploy, &["--hibernate-after", "0"]);
    let mut clients = connect_many(&runner, 10);
    ask_all(&mut clients, "a", "a");

    deploy.replace_with(b"\0asm but not really a component");
    sighup(&runner);
    let line = wait_for_nth(&runner, "reload refused", 1);
    assert!(line.contains("WARN"), "{line}");
    ask_all(&mut clients, "b", "b");
    let mut late = runner.connect("/version");
    assert_eq!(late.ask("c"), "c");

    // A good one after it is taken.
    deploy.replace_with(&std::fs::read(common::test_handler()).expect("read v2"));
    sighup(&runner);
    wait_for_nth(&runner, "handler reloaded", 1);
    ask_all(&mut clients, "d", "test-handler:d");
    assert_eq!(late.ask("e"), "test-handler:e");
    let log = runner.log();
    assert!(!log.contains("websocket closed"), "a socket closed:\n{log}");
}

#[test]
fn sighup_without_a_handler_file_only_warns() {
    let runner = Runner::start(&[]);
    let mut before = runner.connect("/");
    before.echo("a");
    sighup(&runner);
    wait_for_nth(&runner, "WARN", 1);
    before.echo("b");
    let mut after = runner.connect("/");
    after.echo("c");
    let log = runner.log();
    assert!(!log.contains("handler reloaded"), "{log}");
    assert!(!log.contains("websocket closed"), "a socket closed:\n{log}");
}

/// A JavaScript handler is reloaded like any other: 20 clients of `guests/echo-js`, live and
/// hibernated, keep their sockets through a SIGHUP to `guests/test-js` (12 MB components,
/// compiled on the reload) and their next messages are answered by the new version.
#[test]
fn a_javascript_handler_reloads_without_dropping_a_socket() {
    let deploy = Deploy::new("js", &common::build_guest("echo-js"));
    let runner = start(&deploy, &["--hibernate-after", "1s"]);
    let mut clients: Vec<Client> = (0..20).map(|_| runner.connect("/")).collect();
    ask_all(&mut clients, "echo a", "echo a");
    // Half of them hibernate before the reload.
    std::thread::sleep(Duration::from_millis(1500));
    for client in clients.iter_mut().take(10) {
        assert_eq!(client.ask("echo b"), "echo b");
    }

    deploy.replace_with(&std::fs::read(common::build_guest("test-js")).expect("read v2"));
    sighup(&runner);
    let line = wait_for_nth(&runner, "handler reloaded", 1);
    assert!(line.contains("version=2"), "{line}");
    // test-js answers `echo TEXT` with TEXT.
    ask_all(&mut clients, "echo c", "c");
    let log = runner.log();
    assert!(!log.contains("websocket closed"), "a socket closed:\n{log}");
}
