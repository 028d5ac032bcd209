//! The `history` and `presence` interfaces (`wit/rooms.wit`) the runner gives guests,
//! translated onto the calling connection's [`State`](crate::state::State).

use std::time::Duration;

use super::StoreData;
use crate::history::{self, Start};
use crate::id;
use crate::registry::MAX_MEMBERS_PAGE;
use crate::settings::MAX_PRESENCE_INFO;
use crate::wit::Message;
use crate::wit::bindings::wsbox::websocket::history::{
    self as wit_history, Bounds, Entry, HistoryError, Position,
};
use crate::wit::bindings::wsbox::websocket::presence::{self, Member, Page, PresenceError};

fn position(position: history::Position) -> Position {
    Position {
        epoch: position.epoch_text(),
        offset: position.offset,
    }
}

impl wit_history::Host for StoreData {
    fn max_messages(&mut self) -> u32 {
        self.state.history_limit()
    }

    fn enable(&mut self, topic: String, bounds: Bounds) -> Result<(), HistoryError> {
        let bounds = history::Bounds {
            max_messages: bounds.max_messages,
            max_age: (bounds.max_age_ms > 0).then(|| Duration::from_millis(bounds.max_age_ms)),
        };
        self.state.enable_history(&topic, bounds)
    }

    fn head(&mut self, topic: String) -> Result<Position, HistoryError> {
        self.state.history_head(&topic).map(position)
    }

    fn publish(
        &mut self,
        topic: String,
        msg: Message,
        include_self: bool,
    ) -> Result<(Position, u32), HistoryError> {
        // Checked first: a publish to a topic without history is not made at all.
        self.state.history_head(&topic)?;
        match self.state.publish(&topic, msg, include_self) {
            (queued, Some(at)) => Ok((position(at), queued)),
            // History was on a moment ago and no call turns it off: unreachable in effect.
            (_, None) => Err(HistoryError::Off),
        }
    }

    fn subscribe_from(
        &mut self,
        topic: String,
        start: wit_history::Start,
    ) -> Result<Position, HistoryError> {
        let start = match start {
            wit_history::Start::Last(n) => Start::Last(n),
            wit_history::Start::After(at) => {
                // An epoch that is not one of ours names no position kept here.
                let epoch = history::Position::parse_epoch(&at.epoch).ok_or(HistoryError::Gone)?;
                Start::After(history::Position {
                    epoch,
                    offset: at.offset,
                })
            }
        };
        self.state.subscribe_from(&topic, start).map(position)
    }

    fn last(&mut self, topic: String, n: u32) -> Result<Vec<Entry>, HistoryError> {
        let n = n.min(self.state.history_limit());
        let (epoch, entries) = self.state.history_last(&topic, n)?;
        Ok(entries
            .into_iter()
            .map(|entry| Entry {
                position: position(history::Position {
                    epoch,
                    offset: entry.offset,
                }),
                message: crate::wit::from_parts(entry.kind, &entry.payload),
            })
            .collect())
    }
}

impl presence::Host for StoreData {
    fn max_info(&mut self) -> u32 {
        MAX_PRESENCE_INFO
    }

    fn set_info(&mut self, topic: String, info: Vec<u8>) -> Result<(), PresenceError> {
        self.state.set_info(&topic, info)
    }

    fn members(&mut self, topic: String, after: Option<String>, limit: u32) -> Page {
        // An `after` that is no id starts from the beginning, as none would.
        let after = after.as_deref().and_then(id::Id::parse);
        let limit = limit.min(MAX_MEMBERS_PAGE);
        let members = self.state.members(&topic, after, limit);
        let next = members
            .more
            .then(|| members.page.last().map(|(id, _)| id.to_string()))
            .flatten();
        Page {
            members: members
                .page
                .into_iter()
                .map(|(id, info)| Member {
                    id: id.to_string(),
                    info: info.into_vec(),
                })
                .collect(),
            next,
        }
    }
}
