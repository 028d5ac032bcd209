//! The other nodes' subscriber counts, as they announced them, and when each node was last
//! heard: what makes `subscribers` cluster-wide.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A node not heard for this long (three heartbeats) is taken for gone, with its counts.
pub const EXPIRY: Duration = Duration::from_secs(3);

#[derive(Default)]
pub struct Remote(Mutex<Table>);

#[derive(Default)]
struct Table {
    /// When each live node was last heard.
    nodes: HashMap<u32, Instant>,
    /// Each topic's non-zero counts, by node.
    topics: HashMap<Box<str>, Vec<(u32, u32)>>,
}

impl Remote {
    fn lock(&self) -> MutexGuard<'_, Table> {
        // Every update is one step: a poisoned table is still consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes that `node` was heard at `now`; true if it was not known (new, or back after
    /// it expired), when it must be told our counts.
    pub fn heard(&self, node: u32, now: Instant) -> bool {
        self.lock().nodes.insert(node, now).is_none()
    }

    /// `node` has `count` subscribers of `topic` now. (Callers note it [`heard`] first.)
    ///
    /// [`heard`]: Remote::heard
    pub fn set(&self, node: u32, topic: &str, count: u32) {
        let mut table = self.lock();
        match table.topics.entry(topic.into()) {
            Entry::Occupied(mut entry) => {
                let counts = entry.get_mut();
                counts.retain(|&(n, _)| n != node);
                if count > 0 {
                    counts.push((node, count));
                }
                if counts.is_empty() {
                    entry.remove();
                }
            }
            Entry::Vacant(entry) => {
                if count > 0 {
                    entry.insert(vec![(node, count)]);
                }
            }
        }
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
            table.topics.retain(|_, counts| {
                counts.retain(|(node, _)| !gone.contains(node));
                !counts.is_empty()
            });
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_over_nodes_and_expire_with_them() {
        let remote = Remote::default();
        let t0 = Instant::now();
        assert!(remote.heard(1, t0));
        assert!(!remote.heard(1, t0));
        remote.set(1, "room", 3);
        remote.heard(2, t0);
        remote.set(2, "room", 4);
        remote.set(2, "other", 1);
        assert_eq!(remote.total("room", t0), 7);
        remote.set(1, "room", 0);
        assert_eq!(remote.total("room", t0), 4);
        // Node 2 stops; node 1 goes on beating.
        let later = t0 + EXPIRY;
        remote.heard(1, later);
        assert_eq!(
            remote.total("room", later),
            0,
            "a silent node counts no more"
        );
        assert_eq!(remote.expire(later), vec![2]);
        assert_eq!(remote.nodes(), 1);
        assert!(
            remote.heard(2, later),
            "a node back after expiring is new again"
        );
        assert_eq!(remote.total("other", later), 0);
    }
}
