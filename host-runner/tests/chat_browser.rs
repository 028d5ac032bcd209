//! guests/chat in a real browser: headless Chromium opens two pages in one room, each sends
//! a message through the page's own form, and each must show the other's message and the
//! member count 2; when one tab closes, the other is told and counts 1; also with
//! `--hibernate-after 0`. Rooms remember: a page whose socket drops while others speak
//! resumes with nothing missing and nothing twice, and a newcomer sees the room's last
//! messages and its members. The same against guests/chat-js and guests/chat-py (the same
//! page and wire format). The pages are driven over the DevTools protocol
//! (common/browser.rs).

use std::path::Path;

mod common;

use common::Runner;
use common::browser::{Browser, COUNT, LOG, count_is, say};

#[test]
fn two_pages_in_one_room_see_each_other() {
    two_pages_in_one_room(&common::guest("guest-chat"), &[]);
}

#[test]
fn a_dropped_page_resumes_and_a_newcomer_gets_the_history() {
    remembers(&common::guest("guest-chat"));
}

/// The same with the chat's instance dropped after every callback: what it needs (room,
/// nickname, members) must come from the host, not from its memory.
#[test]
fn two_pages_in_one_room_see_each_other_through_hibernation() {
    two_pages_in_one_room(&common::guest("guest-chat"), &["--hibernate-after", "0"]);
}

/// The chat in JavaScript, live, through hibernation, and remembering (one build for all:
/// tests run in processes of their own, and two builds of one guest would write the same
/// file).
#[test]
fn the_javascript_chat_does_the_same() {
    let wasm = common::build_guest("chat-js");
    two_pages_in_one_room(&wasm, &[]);
    two_pages_in_one_room(&wasm, &["--hibernate-after", "0"]);
    remembers(&wasm);
}

/// The chat in Python, live, through hibernation, and remembering.
#[test]
fn the_python_chat_does_the_same() {
    let wasm = common::build_guest("chat-py");
    two_pages_in_one_room(&wasm, &[]);
    two_pages_in_one_room(&wasm, &["--hibernate-after", "0"]);
    remembers(&wasm);
}

fn two_pages_in_one_room(wasm: &Path, extra: &[&str]) {
    let mut args = vec!["--handler", wasm.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let runner = Runner::start(&args);
    let room = format!("http://{}/chat/lobby", runner.addr);
    let mut browser = Browser::start();
    let ann = browser.open(&format!("{room}?nick=ann"));
    let (bob_page, bob) = browser.open_target(&format!("{room}?nick=bob"));
    // Both joined: each page counts two members.
    browser.wait_for(&ann, COUNT, |text| count_is(text, 2));
    browser.wait_for(&bob, COUNT, |text| count_is(text, 2));

    say(&mut browser, &ann, "hello from ann");
    say(&mut browser, &bob, "hi ann, bob here");
    // Each page shows the other's message, and its own, under the senders' nicknames.
    for page in [&ann, &bob] {
        browser.wait_for(page, LOG, |log| {
            log.contains("ann: hello from ann") && log.contains("bob: hi ann, bob here")
        });
        browser.wait_for(page, COUNT, |text| count_is(text, 2));
    }

    // Another room hears nothing of it.
    let other = browser.open(&format!("http://{}/chat/elsewhere?nick=eve", runner.addr));
    browser.wait_for(&other, COUNT, |text| count_is(text, 1));
    let log = browser.eval(&other, LOG);
    assert!(!log.contains("hello from ann"), "{log}");

    // Bob closes his tab: Ann is told, and counts one member.
    browser.close(&bob_page);
    browser.wait_for(&ann, LOG, |log| log.contains("bob left (1 member)"));
    browser.wait_for(&ann, COUNT, |text| count_is(text, 1));

    // Both pages' sockets went through the runner.
    let log = runner.log();
    let lobby = log
        .lines()
        .filter(|line| line.contains("websocket open") && line.contains("path=\"/chat/lobby\""))
        .count();
    assert_eq!(lobby, 2, "{log}");
}

/// How often `needle` is a whole line of `log`.
fn lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|line| *line == needle).count()
}

fn remembers(wasm: &Path) {
    let runner = Runner::start(&["--handler", wasm.to_str().expect("utf-8 path")]);
    let room = format!("http://{}/chat/lobby", runner.addr);
    let mut browser = Browser::start();
    let ann = browser.open(&format!("{room}?nick=ann"));
    let bob = browser.open(&format!("{room}?nick=bob"));
    browser.wait_for(&ann, COUNT, |text| count_is(text, 2));
    browser.wait_for(&bob, COUNT, |text| count_is(text, 2));
    say(&mut browser, &ann, "before the drop");
    for page in [&ann, &bob] {
        browser.wait_for(page, LOG, |log| log.contains("ann: before the drop"));
    }

    // Ann's socket drops for 2 s; Bob speaks meanwhile.
    browser.eval(&ann, "chat.drop(2000)");
    for i in 0..3 {
        say(&mut browser, &bob, &format!("while away {i}"));
    }
    browser.wait_for(&bob, LOG, |log| log.contains("bob: while away 2"));
    let status = "document.querySelector('#status').textContent";
    assert_eq!(
        browser.eval(&ann, status),
        "reconnecting",
        "Bob was too slow"
    );
    browser.wait_for(&ann, LOG, |log| log.contains("bob: while away 2"));
    say(&mut browser, &bob, "after the return");
    browser.wait_for(&ann, LOG, |log| log.contains("bob: after the return"));
    let log = browser.eval(&ann, LOG);
    for line in [
        "ann: before the drop",
        "bob: while away 0",
        "bob: while away 1",
        "bob: while away 2",
        "bob: after the return",
    ] {
        assert_eq!(lines(&log, line), 1, "{line:?} in {log}");
    }
    let counters = "[chat.duplicates, chat.gaps, chat.resumes].join(',')";
    assert_eq!(browser.eval(&ann, counters), "0,0,1", "{log}");

    // A newcomer gets the room's last messages (marked as history) and its members.
    let carol = browser.open(&format!("{room}?nick=carol"));
    browser.wait_for(&carol, LOG, |log| {
        log.contains("ann: before the drop") && log.contains("bob: after the return")
    });
    let old = "String(document.querySelectorAll('#log li.history').length)";
    let old: usize = browser.eval(&carol, old).parse().expect("a count");
    assert!(old >= 5, "{old} frames shown as history");
    let members = "document.querySelector('#members').textContent";
    browser.wait_for(&carol, members, |text| text == "ann, bob, carol");
    browser.wait_for(&carol, COUNT, |text| count_is(text, 3));
}
