//! Arbitrary bytes into `wsbox::server::parse_request`, the blocking server's HTTP/1.1
//! request parser, with limits small enough to reach.
//!
//! Input: one limits byte (max head, max body and max headers from small tables), then
//! the bytes the client sent.
//!
//! Invariants checked: nothing panics; a parsed request used no more than the input, its
//! body is exactly its one all-digit `Content-Length` (none means empty) and within the
//! limits; any prefix of a parsed request is "partial", and the request parses the same
//! with nothing or anything after it (pipelining); refusals are one of the documented
//! statuses; the parser never waits for more than a head and a body within the limits.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsbox::server::{ServerConfig, parse_request};

const HEADS: [usize; 4] = [32, 128, 1024, 16 << 10];
const BODIES: [usize; 4] = [0, 3, 64, 1 << 20];
const HEADER_COUNTS: [usize; 4] = [1, 3, 16, 64];

fuzz_target!(|input: &[u8]| {
    let Some((&limits, wire)) = input.split_first() else {
        return;
    };
    let config = ServerConfig::default()
        .max_request_head(HEADS[usize::from(limits & 3)])
        .max_request_body(BODIES[usize::from((limits >> 2) & 3)])
        .max_headers(HEADER_COUNTS[usize::from((limits >> 4) & 3)]);

    match parse_request(wire, &config) {
        Ok(Some((request, used))) => {
            assert!(used <= wire.len());
            let body = request.body();
            assert!(body.len() <= config.get_max_request_body());
            let lengths: Vec<_> = request.headers().get_all("content-length").iter().collect();
            match lengths.as_slice() {
                [] => assert!(body.is_empty()),
                [length] => {
                    let digits = length.as_bytes().trim_ascii();
                    assert!(!digits.is_empty() && digits.iter().all(u8::is_ascii_digit));
                    let digits = std::str::from_utf8(digits).expect("digits are ASCII");
                    assert_eq!(digits.parse::<u64>().ok(), Some(body.len() as u64));
                }
                more => panic!("{} Content-Length headers accepted", more.len()),
            }
            assert!(!request.headers().contains_key("transfer-encoding"));
            assert_eq!(&wire[used - body.len()..used], body.as_slice());

            // The same request alone, and with more bytes after it.
            let (alone, alone_used) = parse_request(&wire[..used], &config)
                .expect("a request parses alone")
                .expect("a request is complete alone");
            assert_eq!(alone_used, used);
            assert_eq!(alone.method(), request.method());
            assert_eq!(alone.uri(), request.uri());
            assert_eq!(alone.headers(), request.headers());
            assert_eq!(alone.body(), request.body());
            let mut longer = wire[..used].to_vec();
            longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
            let (_, longer_used) = parse_request(&longer, &config)
                .expect("a request parses with more after it")
                .expect("a request is complete with more after it");
            assert_eq!(longer_used, used);

            // Cut short anywhere, it is incomplete: never refused, never a different request.
            for end in [0, used / 2, used.saturating_sub(body.len() + 1), used - 1] {
                if end < used {
                    assert!(
                        matches!(parse_request(&wire[..end], &config), Ok(None)),
                        "prefix {end} of {used}"
                    );
                }
            }
        }
        // Waiting for more is bounded: a partial head is under its limit, and a complete
        // head waits for at most the largest body.
        Ok(None) => {
            assert!(wire.len() < config.get_max_request_head() + config.get_max_request_body());
        }
        Err(refusal) => {
            assert!(
                [400, 413, 431, 501].contains(&refusal.status.as_u16()),
                "{refusal:?}"
            );
            assert!(!refusal.reason.is_empty() && !refusal.reason.contains('\n'));
        }
    }
});
