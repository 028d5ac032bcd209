//! The other nodes' subscriber counts, as they announced them, and when each node was last
//! heard: what makes `subscribers` cluster-wide; and what hearing from a node asks of this
//! one (an [`Answer`]).
//!
//! Anyone who may publish on the cluster's subjects can speak as any node, so all of it is
//! bounded: the nodes and counts remembered ([`Bounds`]), and how often this node answers
//! with a hello or all its counts ([`PACE`]). Whatever comes in this node's own name is
//! ignored (with `no_echo`, only someone else can send it).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A node not heard for this long (three heartbeats) is taken for gone, with its counts.
pub const EXPIRY: Duration = Duration::from_secs(3);

/// The shortest time between two full answers (a hello, or all of this node's counts): one
/// asked for sooner waits for the first heartbeat past it, a second at most. Without it,
/// each node id new to a runner (a flapping node's, or any that someone on NATS makes up)
/// had every runner announce all its topics and say hello at once, and each hello had every
/// other runner announce all of its own again.
pub const PACE: Duration = Duration::from_millis(500);

/// How much of the other nodes is remembered. Past a bound the new is not (a node's beats
/// and counts, one more count) until room is made: a node expires, a count drops to 0.
/// Publishes to a topic not remembered stay on this node. With the defaults the table holds
/// at most about 64 MiB of names and 100 MiB of the rest.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Nodes heard within [`EXPIRY`]. Default 1,024 (clusters are tens of runners).
    pub nodes: usize,
    /// Counts, one per topic and node with subscribers: so distinct topics too. Default
    /// 1,048,576 (8 bytes each, about 90 more for a topic's first).
    pub entries: usize,
    /// The bytes of the distinct topics' names together (each at most 2 KiB). Default
    /// 64 MiB.
    pub names: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            nodes: 1024,
            entries: 1 << 20,
            names: 64 << 20,
        }
    }
}

pub struct Remote {
    /// This node: never one of the others.
    me: u32,
    bounds: Bounds,
    table: Mutex<Table>,
}

/// What this node owes the others after hearing from one of them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[must_use]
pub struct Answer {
    /// The node that was new to this one (to be logged).
    pub joined: Option<u32>,
    /// Say hello: ask every node for its counts.
    pub hello: bool,
    /// Announce all of this node's counts.
    pub announce: bool,
    /// A bound kept something from being remembered, the first time since a node expired
    /// (to be logged).
    pub full: bool,
}

#[derive(Default)]
struct Table {
    /// When each live node was last heard.
    nodes: HashMap<u32, Instant>,
    /// Each topic's non-zero counts, by node.
    topics: HashMap<Box<str>, Vec<(u32, u32)>>,
    /// The counts in `topics`.
    entries: usize,
    /// The bytes of `topics`' names.
    names: usize,
    /// When the last full answer was given.
    answered: Option<Instant>,
    /// A full answer asked for within [`PACE`] of the last: it goes at a beat.
    held: Answer,
    /// A bound was hit and said so since a node last expired.
    full: bool,
}

impl Remote {
    pub fn new(me: u32) -> Self {
        Self::with_bounds(me, Bounds::default())
    }

    pub fn with_bounds(me: u32, bounds: Bounds) -> Self {
        Remote {
            me,
            bounds,
            table: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Every update is one step: a poisoned table is still consistent.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A heartbeat from `node`, asking for every node's counts if `hello`.
    pub fn handle_heartbeat(&self, node: u32, hello: bool, now: Instant) -> Answer {
        if node == self.me {
            return Answer::default();
        }
        let mut table = self.lock();
        let Some(joined) = table.heard(node, now, &self.bounds) else {
            return table.refused();
        };
        let wanted = Answer {
            joined: joined.then_some(node),
            // A node that says hello tells its counts too; any other is asked.
            hello: joined && !hello,
            announce: hello || joined,
            full: false,
        };
        table.pace(wanted, now)
    }

    /// An announcement of `node`'s counts.
    pub fn handle_counts<'a>(
        &self,
        node: u32,
        entries: impl IntoIterator<Item = (&'a str, u32)>,
        now: Instant,
    ) -> Answer {
        if node == self.me {
            return Answer::default();
        }
        let mut table = self.lock();
        let Some(joined) = table.heard(node, now, &self.bounds) else {
            return table.refused();
        };
        let mut refused = false;
        for (topic, count) in entries {
            refused |= !table.set(node, topic, count, &self.bounds);
        }
        let wanted = Answer {
            joined: joined.then_some(node),
            hello: joined,
            announce: joined,
            full: false,
        };
        let answer = table.pace(wanted, now);
        if refused {
            return Answer {
                full: table.refused().full,
                ..answer
            };
        }
        answer
    }

    /// At each heartbeat: the full answer held back, if [`PACE`] allows it now.
    pub fn handle_tick(&self, now: Instant) -> Answer {
        let mut table = self.lock();
        let held = std::mem::take(&mut table.held);
        table.pace(held, now)
    }

    /// The subscribers of `topic` on the other live nodes.
    pub fn total(&self, topic: &str, now: Instant) -> u64 {
        let table = self.lock();
        let Some(counts) = table.topics.get(topic) else {
            return 0;
        };
        counts
            .iter()
            .filter(|(node, _)| table.is_live(*node, now))
            .map(|&(_, count)| u64::from(count))
            .sum()
    }

    /// Forgets the nodes not heard within [`EXPIRY`], and their counts; returns them.
    pub fn expire(&self, now: Instant) -> Vec<u32> {
        let mut table = self.lock();
        let table = &mut *table;
        let gone: Vec<u32> = table
            .nodes
            .keys()
            .copied()
            .filter(|&node| !table.is_live(node, now))
            .collect();
        if !gone.is_empty() {
            for node in &gone {
                table.nodes.remove(node);
            }
            let (entries, names) = (&mut table.entries, &mut table.names);
            table.topics.retain(|topic, counts| {
                let before = counts.len();
                counts.retain(|(node, _)| !gone.contains(node));
                *entries -= before - counts.len();
                if counts.is_empty() {
                    *names -= topic.len();
                }
                !counts.is_empty()
            });
            table.full = false;
        }
        gone
    }

    pub fn nodes(&self) -> usize {
        self.lock().nodes.len()
    }
}

impl Table {
    fn is_live(&self, node: u32, now: Instant) -> bool {
        self.nodes
            .get(&node)
            .is_some_and(|&heard| now.saturating_duration_since(heard) < EXPIRY)
    }

    /// Notes that `node` was heard at `now`: whether it was new (or back after it
    /// expired), when it must be told our counts; `None` if it is new and no room is left.
    fn heard(&mut self, node: u32, now: Instant, bounds: &Bounds) -> Option<bool> {
        if let Some(heard) = self.nodes.get_mut(&node) {
            *heard = now;
            return Some(false);
        }
        if self.nodes.len() >= bounds.nodes {
            return None;
        }
        self.nodes.insert(node, now);
        Some(true)
    }

    /// `node` has `count` subscribers of `topic` now; false if that was not remembered.
    fn set(&mut self, node: u32, topic: &str, count: u32, bounds: &Bounds) -> bool {
        let Some(counts) = self.topics.get_mut(topic) else {
            if count == 0 {
                return true;
            }
            if self.entries >= bounds.entries || self.names + topic.len() > bounds.names {
                return false;
            }
            self.topics.insert(topic.into(), vec![(node, count)]);
            self.entries += 1;
            self.names += topic.len();
            return true;
        };
        match counts.iter().position(|&(n, _)| n == node) {
            Some(at) if count > 0 => counts[at].1 = count,
            Some(at) => {
                counts.swap_remove(at);
                self.entries -= 1;
                if counts.is_empty() {
                    self.topics.remove(topic);
                    self.names -= topic.len();
                }
            }
            None if count == 0 => {}
            None if self.entries >= bounds.entries => return false,
            None => {
                counts.push((node, count));
                self.entries += 1;
            }
        }
        true
    }

    /// Gives the full part of `wanted` (hello, announce) now if [`PACE`] allows, with any
    /// held back; else holds it back for [`Remote::handle_tick`].
    fn pace(&mut self, mut wanted: Answer, now: Instant) -> Answer {
        if !wanted.hello && !wanted.announce {
            return wanted;
        }
        if self
            .answered
            .is_some_and(|last| now.saturating_duration_since(last) < PACE)
        {
            self.held.hello |= wanted.hello;
            self.held.announce |= wanted.announce;
            wanted.hello = false;
            wanted.announce = false;
            return wanted;
        }
        self.answered = Some(now);
        let held = std::mem::take(&mut self.held);
        wanted.hello |= held.hello;
        wanted.announce |= held.announce;
        wanted
    }

    /// Something was not remembered: says so once until a node expires.
    fn refused(&mut self) -> Answer {
        Answer {
            full: !std::mem::replace(&mut self.full, true),
            ..Answer::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_over_nodes_and_expire_with_them() {
        let remote = Remote::new(0);
        let t0 = Instant::now();
        assert_eq!(remote.handle_heartbeat(1, false, t0).joined, Some(1));
        assert_eq!(remote.handle_heartbeat(1, false, t0).joined, None);
        let _ = remote.handle_counts(1, [("room", 3)], t0);
        let _ = remote.handle_counts(2, [("room", 4), ("other", 1)], t0);
        assert_eq!(remote.total("room", t0), 7);
        let _ = remote.handle_counts(1, [("room", 0)], t0);
        assert_eq!(remote.total("room", t0), 4);
        // Node 2 stops; node 1 goes on beating.
        let later = t0 + EXPIRY;
        let _ = remote.handle_heartbeat(1, false, later);
        assert_eq!(
            remote.total("room", later),
            0,
            "a silent node counts no more"
        );
        assert_eq!(remote.expire(later), vec![2]);
        assert_eq!(remote.nodes(), 1);
        let table = remote.lock();
        assert_eq!((table.entries, table.names, table.topics.len()), (0, 0, 0));
        drop(table);
        assert_eq!(
            remote.handle_heartbeat(2, false, later).joined,
            Some(2),
            "a node back after expiring is new again"
        );
        assert_eq!(remote.total("other", later), 0);
    }

    #[test]
    fn our_own_node_id_is_never_remembered() {
        let remote = Remote::new(1);
        let t0 = Instant::now();
        assert_eq!(
            remote.handle_counts(1, [("room", 3)], t0),
            Answer::default()
        );
        assert!(
            remote.lock().topics.is_empty(),
            "an announcement in our name is not kept"
        );
        assert_eq!(remote.handle_heartbeat(1, true, t0), Answer::default());
        assert_eq!(remote.nodes(), 0);
    }

    #[test]
    fn nodes_topics_and_names_remembered_are_bounded() {
        let bounds = Bounds {
            nodes: 4,
            entries: 8,
            names: 64,
        };
        let remote = Remote::with_bounds(0, bounds);
        let t0 = Instant::now();
        for node in 1..=10 {
            let _ = remote.handle_heartbeat(node, false, t0);
        }
        assert_eq!(remote.nodes(), 4, "nodes past the bound are not remembered");
        let _ = remote.handle_counts(9, [("x", 1)], t0);
        assert_eq!(remote.total("x", t0), 0, "nor their counts");

        let topics: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        let remembered = |remote: &Remote| {
            topics
                .iter()
                .filter(|topic| remote.total(topic, t0) > 0)
                .count()
        };
        let _ = remote.handle_counts(1, topics.iter().map(|t| (t.as_str(), 1)), t0);
        assert_eq!(
            remembered(&remote),
            8,
            "entries past the bound are not remembered"
        );
        let _ = remote.handle_counts(1, [("t0", 5)], t0);
        assert_eq!(
            remote.total("t0", t0),
            5,
            "a remembered entry still changes"
        );
        let _ = remote.handle_counts(1, [("t0", 0), ("t19", 1)], t0);
        assert_eq!(remote.total("t19", t0), 1, "and one gone makes room");

        // Names: 64 bytes together; the 6 left hold 12, so 60 more do not fit.
        let _ = remote.handle_counts(1, [("t1", 0), ("t2", 0)], t0);
        let long = "n".repeat(60);
        let _ = remote.handle_counts(2, [(long.as_str(), 1)], t0);
        assert_eq!(
            remote.total(&long, t0),
            0,
            "names past the bound are not remembered"
        );

        // A node that expires frees its part.
        let later = t0 + EXPIRY;
        for node in [2, 3, 4] {
            let _ = remote.handle_heartbeat(node, false, later);
        }
        assert_eq!(remote.expire(later), vec![1]);
        let table = remote.lock();
        assert_eq!((table.entries, table.names, table.topics.len()), (0, 0, 0));
        drop(table);
        let _ = remote.handle_counts(2, [(long.as_str(), 1)], later);
        assert_eq!(remote.total(&long, later), 1);
    }

    #[test]
    fn full_answers_are_paced_however_many_nodes_appear() {
        let remote = Remote::new(0);
        let t0 = Instant::now();
        let (mut hellos, mut announces) = (0, 0);
        let mut tally = |answer: Answer| {
            hellos += usize::from(answer.hello);
            announces += usize::from(answer.announce);
        };
        // 300 node ids in 300 ms, new (with and without hello) or saying hello again.
        for node in 1..=300u32 {
            let now = t0 + Duration::from_millis(node.into());
            let answer = match node % 3 {
                0 => remote.handle_heartbeat(node, node % 2 == 0, now),
                1 => remote.handle_counts(node, [("room", 1)], now),
                _ => remote.handle_heartbeat(1, true, now),
            };
            assert!(answer.joined.is_none() || answer.joined == Some(node));
            tally(answer);
        }
        assert_eq!((hellos, announces), (1, 1), "one full answer per PACE");
        let held = remote.handle_tick(t0 + 2 * PACE);
        assert!(
            held.hello && held.announce,
            "what was held back goes at a beat"
        );
        assert_eq!(remote.handle_tick(t0 + 4 * PACE), Answer::default());
        assert_eq!(remote.total("room", t0 + 4 * PACE), 100);
    }
}
