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
type Subscribers = Arc<Mutex<Vec<Arc<Peer>>>>;

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
        lock(&subscribers).push(peer.clone());
    }

    pub fn unsubscribe(&self, topic: &str, peer: &Arc<Peer>) {
        let mut topics = lock(&self.topics);
        let Some(subscribers) = topics.get(topic) else {
            return;
        };
        let mut list = lock(subscribers);
        if let Some(at) = list.iter().position(|p| Arc::ptr_eq(p, peer)) {
            list.swap_remove(at);
        }
        if list.is_empty() {
            drop(list);
            topics.remove(topic);
        }
    }

    /// Subscribers of `topic` (on this node).
    pub fn subscribers(&self, topic: &str) -> u32 {
        let subscribers = lock(&self.topics).get(topic).cloned();
        subscribers.map_or(0, |s| u32::try_from(lock(&s).len()).unwrap_or(u32::MAX))
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
                let count = u32::try_from(lock(&list).len()).unwrap_or(u32::MAX);
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
        for peer in list.iter() {
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
