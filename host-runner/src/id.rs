//! A connection's id: what a guest names another connection by (`send-to`,
//! `close-other`), and what the cluster routes on. A leaf: the type lives in the cluster's
//! wire crate (`wsbox-cluster-wire`, which `fuzz/` reaches too), since commands carry it.

pub use wsbox_cluster_wire::Id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_anything_else() {
        let id = Id::random(0xdeadbeef).expect("random");
        let text = id.to_string();
        assert!(text.starts_with("deadbeef"));
        assert_eq!(id.node(), 0xdeadbeef);
        assert_eq!(text.len(), 32);
        assert_eq!(Id::parse(&text), Some(id));
        assert_eq!(Id::parse(&text.to_uppercase()), Some(id));
        assert_eq!(Id::parse(&text[..31]), None);
        assert_eq!(Id::parse(&format!("{}g", &text[..31])), None);
        assert_eq!(Id::parse(""), None);
        assert_ne!(Id::random(0xdeadbeef).expect("random"), id);
    }
}
