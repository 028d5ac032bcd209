//! What a client may send per second (`--client-message-rate`, `--client-byte-rate`): over
//! it, its socket is not read until it is back under (nothing is lost), or, under
//! `--client-rate-action close`, it is closed with 1008.

mod common;

use std::time::{Duration, Instant};

use common::Runner;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

/// Sends `count` messages of `size` bytes at once, then reads their echoes: how long the
/// round took, and how many came back before the connection closed (with which code).
fn flood(runner: &Runner, count: usize, size: usize) -> (Duration, usize, Option<CloseCode>) {
    let mut client = runner.connect("/");
    let started = Instant::now();
    for i in 0..count {
        let mut text = format!("{i:06}");
        text.extend(std::iter::repeat_n('x', size.saturating_sub(text.len())));
        client.send(Message::text(text));
    }
    let mut echoed = 0;
    while echoed < count {
        match client.within(Duration::from_secs(20)) {
            Some(Ok(Message::Text(text))) => {
                assert!(text.starts_with(&format!("{echoed:06}")), "out of order");
                echoed += 1;
            }
            Some(Ok(_)) => {}
            Some(Err(code)) => return (started.elapsed(), echoed, code),
            None => panic!("no echo within 20 s after {echoed}"),
        }
    }
    (started.elapsed(), echoed, None)
}

#[test]
fn a_client_over_its_message_rate_is_paused_and_loses_nothing() {
    let runner = Runner::start(&["--client-message-rate", "200"]);
    // 200 at once (a second's worth), then 400 at 200 per second.
    let (took, echoed, closed) = flood(&runner, 600, 16);
    eprintln!("600 messages at 200/s: {took:?}");
    assert_eq!((echoed, closed), (600, None));
    assert!(took >= Duration::from_millis(1800), "took {took:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn a_client_over_its_byte_rate_is_paused_and_loses_nothing() {
    let runner = Runner::start(&["--client-byte-rate", "64KiB"]);
    // 256 KiB: 64 KiB at once, the rest at 64 KiB per second, the last read echoed as
    // soon as it is read (about 2.5 s; unlimited, a few milliseconds).
    let (took, echoed, closed) = flood(&runner, 8, 32 << 10);
    eprintln!("256 KiB at 64 KiB/s: {took:?}");
    assert_eq!((echoed, closed), (8, None));
    assert!(took >= Duration::from_millis(1800), "took {took:?}");
}

#[test]
fn a_client_over_its_rate_is_closed_with_1008_when_asked() {
    let runner = Runner::start(&[
        "--client-message-rate",
        "50",
        "--client-rate-action",
        "close",
    ]);
    let (_, echoed, closed) = flood(&runner, 300, 16);
    assert_eq!(closed, Some(CloseCode::Policy), "after {echoed} echoes");
    assert!(echoed < 300);
    runner.wait_for_log("client over its rate: closing");
}

#[test]
fn the_default_rates_let_an_ordinary_burst_through_at_once() {
    let runner = Runner::start(&[]);
    let (took, echoed, closed) = flood(&runner, 2_000, 16);
    assert_eq!((echoed, closed), (2_000, None));
    assert!(took < Duration::from_secs(2), "took {took:?}");
}
