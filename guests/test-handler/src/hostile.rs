//! `/hostile`: a guest that tries to make the host hold memory on its behalf, for the
//! runner's host-memory tests. The query says how (both may be given):
//!
//! - `selfpub=SIZE&count=N`: subscribes to `self`, then from an alarm loop (`set-alarm(0)`
//!   after each) publishes N binary messages of SIZE bytes to `self` with include-self, to a
//!   client that may not read. The count left lives in the attachment, so the loop survives
//!   hibernation; each publish prints `selfpub N`.
//! - `spin=MS&count=N`: from the same alarm loop, keeps the CPU busy for MS milliseconds
//!   in each of N alarms (printing `spun N` each time), instead of publishing.
//! - `auto=SIZE`: registers an auto-response: the text `p` is answered with SIZE bytes of
//!   `a`, without the guest: one small client message, one large answer.
//! - `resources=N`: opens N WASI pollables in `on-open` and never drops them, then prints
//!   `holding N resources` (a guest filling the host's resource table).
//! - `lines=N`: prints N lines (`line I`) for each message (a guest filling the log).
//!
//! Messages are echoed.

use crate::bindings::wsbox::websocket::connection;
use crate::bindings::wsbox::websocket::types::Message;

fn param(name: &str) -> Option<usize> {
    let query = connection::request().query;
    crate::query_pairs(&query)
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.parse().ok())
}

pub(crate) fn on_open() {
    if let Some(n) = param("resources") {
        let held: Vec<_> = (0..n)
            .map(|_| wasip2::clocks::monotonic_clock::subscribe_duration(1 << 40))
            .collect();
        println!("holding {} resources", held.len());
        std::mem::forget(held);
    }
    if let Some(size) = param("auto") {
        let response = Message::Text("a".repeat(size));
        if let Err(error) = connection::set_auto_response(&Message::Text("p".into()), &response) {
            println!(
                "auto-response refused: {}",
                crate::lifecycle::auto_error(error)
            );
        }
    }
    if let Some(count) = param("count") {
        let _ = connection::subscribe("self");
        let _ = connection::set_attachment(&(count as u64).to_be_bytes());
        connection::set_alarm(0);
    }
}

pub(crate) fn on_alarm() {
    let left = u64::from_be_bytes(connection::attachment().try_into().unwrap_or([0; 8]));
    if left == 0 {
        return;
    }
    if let Some(ms) = param("spin") {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(ms as u64);
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        println!("spun {left}");
    } else {
        let size = param("selfpub").unwrap_or(0);
        let queued = connection::publish("self", &Message::Binary(vec![7; size]), true);
        println!("selfpub {left} queued {queued}");
    }
    let _ = connection::set_attachment(&(left - 1).to_be_bytes());
    connection::set_alarm(0);
}

/// Before a message is echoed.
pub(crate) fn on_message() {
    for i in 0..param("lines").unwrap_or(0) {
        println!("line {i}");
    }
}
