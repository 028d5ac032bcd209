//! Arbitrary names into the cluster's subjects (`wsbox_cluster_wire::Subjects`): the
//! cluster's name (`--cluster-name`) and any topic a guest names, and connection ids as a
//! guest writes them (`Id::parse`).
//!
//! Input: a length byte `n`, then `n` bytes of cluster name, then the topic (both taken
//! only when UTF-8); the whole input is also tried as an id.
//!
//! Invariants checked: nothing panics; a name is taken exactly when it is one subject token
//! of `[A-Za-z0-9_-]`; a topic's subject is the namespace, `t`, and one token of
//! base64url that decodes to the topic (so two topics never share a subject, and no topic
//! reaches a wildcard or another token); an id parses only from 32 hex digits and prints
//! back as them in lowercase.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use wsbox_cluster_wire::{Id, Subjects};

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fuzz_target!(|input: &[u8]| {
    if let Ok(text) = std::str::from_utf8(input) {
        match Id::parse(text) {
            Some(id) => {
                assert_eq!(text.len(), 32);
                assert_eq!(id.to_string(), text.to_ascii_lowercase());
                assert_eq!(id.node().to_be_bytes()[..], id.as_bytes()[..4]);
            }
            None => assert!(text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit())),
        }
    }
    let Some((&n, rest)) = input.split_first() else {
        return;
    };
    let (name, topic) = rest.split_at(usize::from(n).min(rest.len()));
    let (Ok(name), Ok(topic)) = (std::str::from_utf8(name), std::str::from_utf8(topic)) else {
        return;
    };
    let Some(subjects) = Subjects::new(name) else {
        assert!(!is_token(name));
        return;
    };
    assert!(is_token(name));
    let subject = subjects.topic(topic);
    let token = subject
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(".t."))
        .expect("NS.t.TOKEN");
    assert!(topic.is_empty() || is_token(token), "{subject:?}");
    let decoded = URL_SAFE_NO_PAD.decode(token).expect("base64url");
    assert_eq!(decoded, topic.as_bytes());
    for other in [subjects.node(0), subjects.heartbeat(), subjects.counts()] {
        assert_ne!(subject, other);
    }
});
