//! Arbitrary bytes into a publish from another runner (`wsbox_cluster_wire::parse_message`),
//! which the receiving runner frames and writes to its subscribers' sockets.
//!
//! Invariants checked: nothing panics; an accepted message is text or binary, a text is
//! UTF-8 (a browser would fail the connection otherwise), and `message` writes it back as
//! the input; a refused one is empty, of another kind, or text that is not UTF-8.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsbox::frame::Data;
use wsbox_cluster_wire::{message, parse_message};

fuzz_target!(|input: &[u8]| {
    match parse_message(input) {
        Some((kind, data)) => {
            assert!(matches!(kind, Data::Text | Data::Binary));
            if kind == Data::Text {
                assert!(std::str::from_utf8(data).is_ok());
            }
            assert_eq!(&message(kind, data)[..], input);
        }
        None => assert!(
            input.is_empty()
                || !matches!(input[0], 1 | 2)
                || (input[0] == 1 && std::str::from_utf8(&input[1..]).is_err())
        ),
    }
});
