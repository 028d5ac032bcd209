//! The state's side of `history` and `presence` (`wit/rooms.wit`): subscriptions that
//! start from a position and catch up through the connection's task, and presence info.

use std::sync::Arc;

use super::State;
use crate::history::{Bounds, Entry, Position, Pumped, Refusal, Replay, Start};
use crate::id::Id;
use crate::peer::Peer;
use crate::registry::Members;
use crate::settings::MAX_PRESENCE_INFO;
use crate::wit::bindings::wsbox::websocket::connection::TopicError;
use crate::wit::bindings::wsbox::websocket::history::HistoryError;
use crate::wit::bindings::wsbox::websocket::presence::PresenceError;

impl From<Refusal> for HistoryError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Off => HistoryError::Off,
            Refusal::Gone => HistoryError::Gone,
        }
    }
}

impl From<TopicError> for HistoryError {
    fn from(error: TopicError) -> Self {
        match error {
            TopicError::BadName => HistoryError::BadName,
            TopicError::TooMany => HistoryError::TooMany,
        }
    }
}

/// What a connection keeps of history and presence.
#[derive(Default)]
pub(super) struct Rooms {
    /// Subscriptions catching up with their topic's history (`subscribe-from`): the
    /// connection's task writes them ([`State::pump_replays`]), then they go live.
    replays: Vec<Replay>,
    /// Presence info set for a topic (`presence.set-info`), for the registry to show.
    infos: Vec<(Box<str>, Box<[u8]>)>,
}

impl State {
    fn rooms(&mut self) -> &mut Rooms {
        self.rooms.get_or_insert_default()
    }

    fn replays(&self) -> &[Replay] {
        self.rooms.as_ref().map_or(&[], |rooms| &rooms.replays)
    }

    fn is_replaying(&self, topic: &str) -> bool {
        self.replays().iter().any(|r| r.topic() == topic)
    }

    /// Forgets the replay and the info of a topic unsubscribed from.
    pub(super) fn forget_room(&mut self, topic: &str) {
        if let Some(rooms) = &mut self.rooms {
            rooms.replays.retain(|replay| replay.topic() != topic);
            rooms.infos.retain(|(t, _)| **t != *topic);
        }
    }

    /// Subscribed, and not replaying: publishes reach it live.
    pub(super) fn is_live(&self, topic: &str) -> bool {
        self.is_subscribed(topic) && !self.is_replaying(topic)
    }

    /// The topics the bus delivers to live (all but those replaying).
    pub fn live_topics(&self) -> impl Iterator<Item = &str> {
        self.topics
            .iter()
            .map(|topic| &**topic)
            .filter(|topic| !self.is_replaying(topic))
    }

    /// The presence info set for `topic` (empty if none).
    pub fn info(&self, topic: &str) -> &[u8] {
        self.rooms
            .as_ref()
            .and_then(|rooms| rooms.infos.iter().find(|(t, _)| **t == *topic))
            .map_or(&[], |(_, info)| info)
    }

    fn history_ok(&self, topic: &str) -> Result<(), HistoryError> {
        self.topic_ok(topic)?;
        if self.bus.cluster().is_some() {
            return Err(HistoryError::Unsupported);
        }
        Ok(())
    }

    pub fn enable_history(&self, topic: &str, bounds: Bounds) -> Result<(), HistoryError> {
        self.history_ok(topic)?;
        self.bus.histories.enable(topic, bounds);
        Ok(())
    }

    pub fn history_head(&self, topic: &str) -> Result<Position, HistoryError> {
        self.history_ok(topic)?;
        Ok(self.bus.histories.head(topic)?)
    }

    pub fn history_last(&self, topic: &str, n: u32) -> Result<(u64, Vec<Entry>), HistoryError> {
        self.history_ok(topic)?;
        Ok(self.bus.histories.last(topic, n)?)
    }

    /// `subscribe-from`: subscribes without joining the topic's live subscribers; the
    /// connection's task replays from `start` and joins them once caught up. Returns the
    /// topic's head now.
    pub fn subscribe_from(&mut self, topic: &str, start: Start) -> Result<Position, HistoryError> {
        self.history_ok(topic)?;
        if self.is_subscribed(topic) {
            return Ok(self.bus.histories.head(topic)?);
        }
        if self.topics.len() >= self.limits.guest.max_topics as usize {
            return Err(HistoryError::TooMany);
        }
        let (replay, head) = self.bus.histories.replay(topic, start)?;
        self.topics.push(topic.into());
        self.rooms().replays.push(replay);
        Ok(head)
    }

    /// Whether subscriptions are still catching up.
    pub fn replaying(&self) -> bool {
        !self.replays().is_empty() && self.upgraded.is_some()
    }

    /// Writes what the replays have next into `peer`'s queue while it holds less than
    /// `mark` bytes; those caught up join their topics (with their presence info).
    pub fn pump_replays(&mut self, peer: &Arc<Peer>, mark: usize) {
        let registry = self.bus.registry.clone();
        let mut joined = Vec::new();
        self.rooms()
            .replays
            .retain_mut(|replay| match replay.pump(peer, &registry, mark) {
                Pumped::More => true,
                Pumped::Joined => {
                    joined.push(Box::<str>::from(replay.topic()));
                    false
                }
                Pumped::Closed => false,
            });
        for topic in joined {
            let info = self.info(&topic);
            if !info.is_empty() {
                registry.set_info(&topic, peer, info);
            }
            self.bus.joined(&topic);
        }
    }

    /// `presence.set-info`: shown with this connection in `topic`'s members.
    pub fn set_info(&mut self, topic: &str, info: Vec<u8>) -> Result<(), PresenceError> {
        if !self.is_subscribed(topic) {
            return Err(PresenceError::NotSubscribed);
        }
        if info.len() > MAX_PRESENCE_INFO as usize {
            return Err(PresenceError::TooLarge);
        }
        if let (true, Some(peer)) = (self.is_live(topic), self.peer()) {
            self.bus.registry.set_info(topic, peer, &info);
        }
        let infos = &mut self.rooms().infos;
        infos.retain(|(t, _)| **t != *topic);
        if !info.is_empty() {
            infos.push((topic.into(), info.into_boxed_slice()));
        }
        Ok(())
    }

    /// The runner's store (`store` imports).
    pub fn store(&self) -> &wsbox_store::Store {
        self.bus.histories.store()
    }

    /// The host's bound on a topic's `max-messages`.
    pub fn history_limit(&self) -> u32 {
        self.bus.histories.limits().max_messages
    }

    /// `presence.members`: this runner's subscribers of `topic` after `after`.
    pub fn members(&self, topic: &str, after: Option<Id>, limit: u32) -> Members {
        self.bus.registry.members(topic, after, limit)
    }
}
