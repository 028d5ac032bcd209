//! The broadcast server of `wsload fanout` (`../shared/bench`): every text and binary
//! message received on a connection to path P goes, unchanged, to every connection then
//! open on P, the sender included. Paths are separate rooms: each is a topic, and one
//! `publish` has the host encode the message once and queue the same frame to every
//! subscriber. Any subprotocol the client offers first is accepted, as the echo does.
//!
//! `?history=N` (for `examples/rooms_bench.rs`): a connection whose request has it turns
//! history on for its topic, keeping the last N messages, before it subscribes; from then
//! on every message of the topic goes out in its envelope (`wit/rooms.wit`), to every
//! subscriber. Without it the guest is as above.
//!
//! Run it with `scripts/run-guest.sh broadcast`.

use wsbox::Message;
use wsbox::guest::{Handler, Websocket};

/// One connection: the topic is its path, kept from `handle` so that the callbacks of a
/// live instance need not ask the host for the request. An instance woken from hibernation
/// never saw `handle`: it asks once.
struct Broadcast {
    topic: String,
    /// `?history=N`: the N messages to keep, read in `handle` for `on_open`.
    history: Option<u32>,
}

impl Broadcast {
    fn topic(&mut self, websocket: &Websocket) -> &str {
        if self.topic.is_empty() {
            websocket.request().path().clone_into(&mut self.topic);
        }
        &self.topic
    }
}

impl Handler for Broadcast {
    fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        let protocol = wsbox::requested_protocols(request).next();
        match wsbox::guest::accept(request, protocol.as_deref()) {
            Ok(response) => {
                request.uri().path().clone_into(&mut self.topic);
                self.history = request.uri().query().and_then(history);
                response
            }
            Err(error) => error.to_response(),
        }
    }

    fn on_open(&mut self, websocket: &mut Websocket) {
        if let Some(n) = self.history
            && websocket.enable_history(&self.topic, n, None).is_err()
        {
            websocket.close(wsbox::CloseCode::POLICY_VIOLATION, "no history here");
            return;
        }
        if websocket.subscribe(&self.topic).is_err() {
            // Only a path longer than the host's topic names can fail: that room cannot be.
            websocket.close(
                wsbox::CloseCode::POLICY_VIOLATION,
                "path too long for a room",
            );
        }
    }

    fn on_message(&mut self, websocket: &mut Websocket, message: Message) {
        // Subscribers too slow to take it are skipped (and counted) by the host.
        websocket.publish(self.topic(websocket), &message, true);
    }
}

/// N of a `history=N` in the query, if any.
fn history(query: &str) -> Option<u32> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("history=")?.parse().ok())
}

wsbox::export_handler!(Broadcast {
    topic: String::new(),
    history: None,
});
