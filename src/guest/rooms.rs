//! Topics that remember and who is in them: the `history` and `presence` imports
//! (`wit/rooms.wit`, package 0.2.1) as methods of [`Websocket`].

use std::time::Duration;

use super::__internal::bindings::wsbox::websocket::history as host;
use super::__internal::bindings::wsbox::websocket::presence;
use super::Websocket;
use super::websocket::{Id, param};
use crate::proto::session::Message;

/// Where a message sits in its topic's history: `epoch` (16 hex digits) changes when the
/// history starts anew, `offset` counts from 1 within it. Every message of a topic with
/// history reaches its clients carrying its position (the envelope is in `wit/rooms.wit`:
/// a JSON object gets a first member `"pos":{"epoch":…,"offset":…}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// 16 lowercase hex digits.
    pub epoch: String,
    /// From 1, contiguous within the epoch.
    pub offset: u64,
}

/// Where [`Websocket::subscribe_from`] starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// After this position (a client's last one, when it reconnects).
    After(Position),
    /// The last n messages kept (a newcomer's backlog).
    Last(u32),
}

/// Why a history call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryError {
    /// The topic's name is empty or too long.
    BadName,
    /// The topic has no history: [`Websocket::enable_history`] first.
    Off,
    /// The position is no longer kept (or of another epoch): nothing was subscribed;
    /// reload the state and start from [`Start::Last`].
    Gone,
    /// This connection has as many subscriptions as the host allows.
    TooMany,
    /// Not on this runner (history in a cluster).
    Unsupported,
}

/// Why presence info was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PresenceError {
    /// This connection is not subscribed to the topic.
    NotSubscribed,
    /// Longer than the host's 256 bytes.
    TooLarge,
}

/// A page of a topic's subscribers ([`Websocket::members`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Ids in order, each with the info it set ([`Websocket::set_presence`]).
    pub members: Vec<(Id, Vec<u8>)>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<Id>,
}

fn history_error(error: host::HistoryError) -> HistoryError {
    match error {
        host::HistoryError::BadName => HistoryError::BadName,
        host::HistoryError::Off => HistoryError::Off,
        host::HistoryError::Gone => HistoryError::Gone,
        host::HistoryError::TooMany => HistoryError::TooMany,
        host::HistoryError::Unsupported => HistoryError::Unsupported,
    }
}

fn position(position: host::PositionResult) -> Position {
    Position {
        epoch: position.epoch,
        offset: position.offset,
    }
}

impl Websocket {
    /// Turns history on for `topic` (or changes its bounds): the last `max_messages` (at
    /// most the host's bound, 1000 by default), none older than `max_age`. Cheap and
    /// idempotent: call it whenever a room is opened.
    pub fn enable_history(
        &self,
        topic: &str,
        max_messages: u32,
        max_age: Option<Duration>,
    ) -> Result<(), HistoryError> {
        let max_age_ms = max_age.map_or(0, |age| {
            u64::try_from(age.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        host::enable(
            topic,
            host::Bounds {
                max_messages,
                max_age_ms,
            },
        )
        .map_err(history_error)
    }

    /// The position of the last message given in `topic` (offset 0 before the first).
    pub fn history_head(&self, topic: &str) -> Result<Position, HistoryError> {
        host::head(topic).map(position).map_err(history_error)
    }

    /// Publishes as [`publish`](Websocket::publish) does, to a topic with history, and
    /// returns the position the message got with the count it was queued to.
    pub fn publish_kept(
        &self,
        topic: &str,
        message: &Message,
        include_self: bool,
    ) -> Result<(Position, u32), HistoryError> {
        host::publish(topic, param(message), include_self)
            .map(|(at, count)| (position(at), count))
            .map_err(history_error)
    }

    /// Subscribes to `topic` from `start`: the host writes what is kept from there on, in
    /// order and paced by the client's backpressure, then the live messages — no gap, no
    /// duplicate, and no call to this handler for any of it. Returns the topic's head at
    /// the time of the call.
    pub fn subscribe_from(&self, topic: &str, start: &Start) -> Result<Position, HistoryError> {
        let start = match start {
            Start::After(at) => host::Start::After(host::PositionParam {
                epoch: &at.epoch,
                offset: at.offset,
            }),
            Start::Last(n) => host::Start::Last(*n),
        };
        host::subscribe_from(topic, start)
            .map(position)
            .map_err(history_error)
    }

    /// The last `n` messages kept in `topic`, oldest first, as published (no envelope).
    pub fn history(&self, topic: &str, n: u32) -> Result<Vec<(Position, Message)>, HistoryError> {
        host::last(topic, n)
            .map(|entries| {
                entries
                    .into_iter()
                    .map(|entry| (position(entry.position), entry.message.into()))
                    .collect()
            })
            .map_err(history_error)
    }

    /// Sets this connection's info in `topic` (which it must be subscribed to), shown with
    /// it in [`members`](Websocket::members): a nickname, say (at most 256 bytes).
    pub fn set_presence(&self, topic: &str, info: &[u8]) -> Result<(), PresenceError> {
        presence::set_info(topic, info).map_err(|error| match error {
            presence::PresenceError::NotSubscribed => PresenceError::NotSubscribed,
            presence::PresenceError::TooLarge => PresenceError::TooLarge,
        })
    }

    /// Subscribers of `topic` on this runner, in id order, from after `after`, at most
    /// `limit` (at most 1000) at a time.
    pub fn members(&self, topic: &str, after: Option<&Id>, limit: u32) -> Page {
        let page = presence::members(topic, after.map(Id::as_str), limit);
        Page {
            members: page
                .members
                .into_iter()
                .map(|member| (Id::from(member.id), member.info))
                .collect(),
            next: page.next.map(Id::from),
        }
    }
}
