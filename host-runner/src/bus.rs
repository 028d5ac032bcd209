//! What a connection publishes to and addresses: this runner's [`Registry`], the topics
//! with history ([`Histories`]), and with `--cluster` the other runners, through the
//! [`Cluster`].

use std::sync::{Arc, OnceLock};

use crate::cluster::Cluster;
use crate::deflate::Outgoing;
use crate::history::{Histories, Position};
use crate::peer::Peer;
use crate::registry::Registry;

pub struct Bus {
    pub registry: Arc<Registry>,
    pub histories: Histories,
    cluster: OnceLock<Arc<Cluster>>,
}

impl Bus {
    /// A bus of one runner whose ids start with `node`.
    pub fn new(node: u32, histories: Histories) -> Self {
        Bus {
            registry: Arc::new(Registry::new(node)),
            histories,
            cluster: OnceLock::new(),
        }
    }

    pub fn node(&self) -> u32 {
        self.registry.node
    }

    /// Joins the cluster, once, before the runner serves.
    pub fn join(&self, cluster: Arc<Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    pub fn subscribe(&self, topic: &str, peer: &Arc<Peer>) {
        self.registry.subscribe(topic, peer);
        self.changed(topic);
    }

    /// A replay caught up and joined `topic` in the registry itself (under its history's
    /// lock, see [`crate::history::Replay::pump`]).
    pub fn joined(&self, topic: &str) {
        self.changed(topic);
    }

    pub fn unsubscribe(&self, topic: &str, peer: &Arc<Peer>) {
        self.registry.unsubscribe(topic, peer);
        self.changed(topic);
    }

    /// Forgets a connection that ended, with its subscriptions.
    pub fn remove(&self, peer: &Arc<Peer>, topics: &[Box<str>]) {
        self.registry.remove(peer, topics);
        for topic in topics {
            self.changed(topic);
        }
    }

    /// The cluster follows this runner's subscribers (its NATS subscriptions, its counts).
    fn changed(&self, topic: &str) {
        if let Some(cluster) = self.cluster.get() {
            cluster.changed(topic);
        }
    }

    /// Subscribers of `topic` on every runner: this one's now, the others' as they last
    /// announced them.
    pub fn subscribers(&self, topic: &str) -> u64 {
        let local = u64::from(self.registry.subscribers(topic));
        local
            + self
                .cluster
                .get()
                .map_or(0, |c| c.remote_subscribers(topic))
    }

    /// Publishes to the other runners (see [`Cluster::publish`]), then queues `message`
    /// here as [`Registry::publish`] does; returns how many connections here took it. To a
    /// topic with history (never in a cluster) the message gets its position and envelope
    /// first ([`Histories::publish`]): `message` is the enveloped one afterwards.
    pub fn publish(
        &self,
        topic: &str,
        message: &mut Outgoing,
        skip: Option<&Arc<Peer>>,
        delivered: &mut Vec<Arc<Peer>>,
    ) -> (u32, Option<Position>) {
        if let Some(cluster) = self.cluster.get() {
            let (kind, data) = message.parts();
            cluster.publish(topic, kind, data);
        }
        if let Some((position, queued)) =
            self.histories
                .publish(topic, &self.registry, message, skip, delivered)
        {
            return (queued, Some(position));
        }
        (self.registry.publish(topic, message, skip, delivered), None)
    }

    /// Whether `topic` keeps a history here.
    pub fn has_history(&self, topic: &str) -> bool {
        self.histories.log(topic).is_some()
    }
}
