//! Arbitrary bytes into the cluster's routed requests and their answers
//! (`wsbox_cluster_wire::Command::parse`, `Status::parse`): what one runner asks another to
//! do for one of its connections, from anyone who may publish on the node's subject.
//!
//! Invariants checked: nothing panics; an accepted command is exactly what `encode` writes
//! for it (so the parser accepts nothing the encoder would not write, and loses nothing), its
//! text (a close reason, a text message) is UTF-8; an accepted status is one of the four, and
//! encodes back to the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsbox::frame::Data;
use wsbox_cluster_wire::{Command, Status};

fuzz_target!(|input: &[u8]| {
    if let Some(command) = Command::parse(input) {
        assert_eq!(&command.encode()[..], input);
        match command {
            Command::Send(id, kind, data) => {
                assert_eq!(id.as_bytes()[..], input[1..17]);
                assert_eq!(data, &input[17..]);
                if kind == Data::Text {
                    assert!(std::str::from_utf8(data).is_ok());
                }
            }
            Command::Close(id, code, reason) => {
                assert_eq!(id.as_bytes()[..], input[1..17]);
                assert_eq!(code.to_be_bytes()[..], input[17..19]);
                assert_eq!(reason.as_bytes(), &input[19..]);
            }
        }
    } else {
        // Anything refused is short, of no known kind, or not UTF-8 where text must be.
        let known = matches!(input.first(), Some(1..=3));
        let long_enough = input.len() >= 17 + if input.first() == Some(&3) { 2 } else { 0 };
        let utf8_where_needed = match input.first() {
            Some(1) => std::str::from_utf8(&input[17.min(input.len())..]).is_ok(),
            Some(3) => std::str::from_utf8(&input[19.min(input.len())..]).is_ok(),
            _ => true,
        };
        assert!(
            !(known && long_enough && utf8_where_needed),
            "refused a valid command"
        );
    }
    if let Some(status) = Status::parse(input) {
        assert_eq!(&status.encode()[..], input);
    } else {
        assert!(!matches!(input, b"0" | b"1" | b"2" | b"3"));
    }
});
