//! guests/chat across two runners in one cluster (a real nats-server the test starts), in a
//! real browser: headless Chromium opens one page on each runner in the same room; each page
//! shows the other's messages and the member count 2, and when the page on one runner
//! closes, the other is told and counts 1. The pages are driven over the DevTools protocol
//! (common/browser.rs).

mod common;

use std::time::Duration;

use common::Runner;
use common::browser::{Browser, COUNT, LOG, count_is, say};
use common::nats::Nats;

#[test]
fn pages_on_two_runners_share_a_room() {
    two_runners_one_room(&[]);
}

/// The same with the chat's instances dropped after every callback: remote messages reach
/// hibernated members, and the counts come from the host.
#[test]
fn pages_on_two_runners_share_a_room_through_hibernation() {
    two_runners_one_room(&["--hibernate-after", "0"]);
}

fn two_runners_one_room(extra: &[&str]) {
    let nats = Nats::start();
    let wasm = common::guest("guest-chat");
    let url = nats.url();
    let start = || {
        let mut args = vec![
            "--handler",
            wasm.to_str().expect("utf-8 path"),
            "--cluster",
            url.as_str(),
        ];
        args.extend_from_slice(extra);
        Runner::start(&args)
    };
    let (a, b) = (start(), start());
    let mut browser = Browser::start();
    let ann = browser.open(&format!("http://{}/chat/lobby?nick=ann", a.addr));
    browser.wait_for(&ann, COUNT, |text| count_is(text, 1));
    // The chat counts its members once, when one joins; B learns of Ann within the
    // cluster's staleness bound (~250 ms), so Bob joins well after it.
    std::thread::sleep(Duration::from_secs(1));
    let (bob_page, bob) = browser.open_target(&format!("http://{}/chat/lobby?nick=bob", b.addr));
    browser.wait_for(&bob, COUNT, |text| count_is(text, 2));
    // Ann heard Bob's join from the other runner.
    browser.wait_for(&ann, COUNT, |text| count_is(text, 2));

    say(&mut browser, &ann, "hello from runner a");
    say(&mut browser, &bob, "hi ann, bob on runner b");
    for page in [&ann, &bob] {
        browser.wait_for(page, LOG, |log| {
            log.contains("ann: hello from runner a") && log.contains("bob: hi ann, bob on runner b")
        });
    }
    // Each message is shown once on each page.
    for page in [&ann, &bob] {
        let log = browser.eval(page, LOG);
        assert_eq!(log.matches("hello from runner a").count(), 1, "{log}");
        assert_eq!(log.matches("bob on runner b").count(), 1, "{log}");
    }

    // Another room, on either runner, hears nothing of it.
    let eve = browser.open(&format!("http://{}/chat/elsewhere?nick=eve", b.addr));
    browser.wait_for(&eve, COUNT, |text| count_is(text, 1));
    let log = browser.eval(&eve, LOG);
    assert!(!log.contains("hello from runner a"), "{log}");

    // Bob closes his tab on runner B: Ann, on runner A, is told and counts one member.
    browser.close(&bob_page);
    browser.wait_for(&ann, LOG, |log| log.contains("bob left (1 member)"));
    browser.wait_for(&ann, COUNT, |text| count_is(text, 1));

    // One lobby page went through each runner.
    for runner in [&a, &b] {
        let log = runner.log();
        let lobby = log
            .lines()
            .filter(|line| line.contains("websocket open") && line.contains("path=\"/chat/lobby\""))
            .count();
        assert_eq!(lobby, 1, "{log}");
    }
}
