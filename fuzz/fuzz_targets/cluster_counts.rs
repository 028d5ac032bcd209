//! Arbitrary bytes into what every runner reads from every other on the shared subjects:
//! subscriber-count announcements (`wsbox_cluster_wire::parse_counts`) and heartbeats
//! (`parse_heartbeat`). Anyone who may publish on the cluster's NATS can send them.
//!
//! Invariants checked: nothing panics; an accepted announcement has no topic longer than
//! `MAX_TOPIC`, holds no more entries than its bytes allow, and is exactly what `counts`
//! writes for the same node and entries (one batch when nothing cuts it), and cut into
//! small batches gives the same entries back; a heartbeat is accepted from 4 bytes on,
//! says hello only with a 1 after the node, and is what `heartbeat` writes when 5 bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsbox_cluster_wire::{MAX_TOPIC, counts, heartbeat, parse_counts, parse_heartbeat};

fuzz_target!(|input: &[u8]| {
    if let Some((node, entries)) = parse_counts(input) {
        assert_eq!(node.to_be_bytes()[..], input[..4]);
        // Each entry takes 6 bytes besides its name.
        assert!(entries.len() <= (input.len() - 4) / 6);
        assert!(entries.iter().all(|(topic, _)| topic.len() <= MAX_TOPIC));
        let batches = counts(node, entries.iter().copied(), usize::MAX);
        if entries.is_empty() {
            assert!(batches.is_empty());
            assert_eq!(input.len(), 4);
        } else {
            assert_eq!(batches.len(), 1);
            assert_eq!(&batches[0][..], input);
        }
        // Cut into small batches, the entries come back the same, in order.
        let batches = counts(node, entries.iter().copied(), 64);
        let mut again = Vec::new();
        for batch in &batches {
            let (same, part) = parse_counts(batch).expect("counts writes what parses");
            assert_eq!(same, node);
            again.extend(part);
        }
        assert_eq!(again, entries);
    }
    match parse_heartbeat(input) {
        Some((node, hello)) => {
            assert_eq!(node.to_be_bytes()[..], input[..4]);
            assert_eq!(hello, input.get(4) == Some(&1));
            if input.len() == 5 && input[4] <= 1 {
                assert_eq!(&heartbeat(node, hello)[..], input);
            }
        }
        None => assert!(input.len() < 4),
    }
});
