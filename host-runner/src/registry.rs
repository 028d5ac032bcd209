//! Every open WebSocket of this runner by id, and every topic's subscribers here: what
//! `send-to`, `close-other`, `publish` and `subscribers` look up (through the
//! [`Bus`](crate::bus::Bus), which adds the other runners of a cluster).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::deflate::Outgoing;
use crate::id::Id;
use crate::peer::Peer;

/// One topic's subscribers. Its own lock, so that a publish to a large topic holds up
/// only that topic.
type Subscribers = Arc<Mutex<Topic>>;

/// A topic's subscribers here, and the presence info of those that set one (kept apart
/// from the list a publish walks, which stays one pointer per subscriber).
#[derive(Default)]
struct Topic {
    peers: Vec<Arc<Peer>>,
    infos: HashMap<Id, Box<[u8]>>,
}

/// Members a `presence.members` page lists at most.
pub const MAX_MEMBERS_PAGE: u32 = 1000;

/// A page of a topic's subscribers here: ids in order, each with its presence info.
pub struct Members {
    pub page: Vec<(Id, Box<[u8]>)>,
    /// Whether more follow the last.
    pub more: bool,
}

pub struct Registry {
    /// This runner's part of every id it makes: random per process.
    pub node: u32,
    peers: Mutex<HashMap<Id, Arc<Peer>>>,
    topics: Mutex<HashMap<Box<str>, Subscribers>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is one step, so a poisoned lock is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    pub fn new(node: u32) -> Self {
        Registry {
            node,
            peers: Mutex::default(),
            topics: Mutex::default(),
        }
    }

    pub fn insert(&self, peer: Arc<Peer>) {
        lock(&self.peers).insert(peer.id, peer);
    }

    /// Forgets a connection that ended, with its subscriptions.
    pub fn remove(&self, peer: &Arc<Peer>, topics: &[Box<str>]) {
        lock(&self.peers).remove(&peer.id);
        for topic in topics {
            self.unsubscribe(topic, peer);
        }
    }

    pub fn get(&self, id: Id) -> Option<Arc<Peer>> {
        lock(&self.peers).get(&id).cloned()
    }

    pub fn subscribe(&self, topic: &str, peer: &Arc<Peer>) {
        let subscribers = lock(&self.topics).entry(topic.into()).or_default().clone();
        lock(&subscribers).peers.push(peer.clone());
    }

    /// Sets (or, empty, clears) the presence info of `peer`, a subscriber of `topic`.
    pub fn set_info(&self, topic: &str, peer: &Peer, info: &[u8]) {
        let Some(subscribers) = lock(&self.topics).get(topic).cloned() else {
            return;
        };
        let mut topic = lock(&subscribers);
        if info.is_empty() {
            topic.infos.remove(&peer.id);
        } else {
            topic.infos.insert(peer.id, info.into());
        }
    }

    /// Subscribers of `topic` here whose id is after `after`, in id order, at most
    /// `limit` (at most [`MAX_MEMBERS_PAGE`]), with their info.
    pub fn members(&self, topic: &str, after: Option<Id>, limit: u32) -> Members {
        let Some(subscribers) = lock(&self.topics).get(topic).cloned() else {
            return Members {
                page: Vec::new(),
                more: false,
            };
        };
        let topic = lock(&subscribers);
        let mut ids: Vec<Id> = topic
            .peers
            .iter()
            .map(|peer| peer.id)
            .filter(|id| after.is_none_or(|after| *id > after))
            .collect();
        let limit = limit.min(MAX_MEMBERS_PAGE) as usize;
        let more = ids.len() > limit;
        if more {
            ids.select_nth_unstable(limit);
            ids.truncate(limit);
        }
        ids.sort_unstable();
        let page = ids
            .into_iter()
            .map(|id| (id, topic.infos.get(&id).cloned().unwrap_or_default()))
            .collect();
        Members { page, more }
    }

    pub fn unsubscribe(&self, topic: &str, peer: &Arc<Peer>) {
        let mut topics = lock(&self.topics);
        let Some(subscribers) = topics.get(topic) else {
            return;
        };
        let mut list = lock(subscribers);
        if let Some(at) = list.peers.iter().position(|p| Arc::ptr_eq(p, peer)) {
            list.peers.swap_remove(at);
            list.infos.remove(&peer.id);
        }
        if list.peers.is_empty() {
            drop(list);
            topics.remove(topic);
        }
    }

    /// Subscribers of `topic` (on this node).
    pub fn subscribers(&self, topic: &str) -> u32 {
        let subscribers = lock(&self.topics).get(topic).cloned();
        subscribers.map_or(0, |s| {
            u32::try_from(lock(&s).peers.len()).unwrap_or(u32::MAX)
        })
    }

    /// Every topic with subscribers on this node, and how many.
    pub fn topics(&self) -> Vec<(Box<str>, u32)> {
        let topics: Vec<(Box<str>, Subscribers)> = lock(&self.topics)
            .iter()
            .map(|(topic, list)| (topic.clone(), list.clone()))
            .collect();
        topics
            .into_iter()
            .map(|(topic, list)| {
                let count = u32::try_from(lock(&list).peers.len()).unwrap_or(u32::MAX);
                (topic, count)
            })
            .collect()
    }

    /// Queues `message` to every subscriber of `topic` but `skip` (the publisher, which
    /// writes its own copy in order with its other sends); returns how many took it. The
    /// subscribers whose queue it started go to `delivered`, for the publisher to flush.
    pub fn publish(
        &self,
        topic: &str,
        message: &mut Outgoing,
        skip: Option<&Arc<Peer>>,
        delivered: &mut Vec<Arc<Peer>>,
    ) -> u32 {
        let Some(subscribers) = lock(&self.topics).get(topic).cloned() else {
            return 0;
        };
        let list = lock(&subscribers);
        let mut queued = 0u32;
        for peer in list.peers.iter() {
            if skip.is_some_and(|skip| Arc::ptr_eq(skip, peer)) {
                continue;
            }
            // A subscriber that is closing or too slow is skipped (and counted by it).
            if let Ok(first) = peer.deliver(message.frame(peer.form())) {
                queued = queued.saturating_add(1);
                if first {
                    delivered.push(peer.clone());
                }
            }
        }
        queued
    }
}
