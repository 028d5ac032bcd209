//! Arbitrary bytes through `httparse` (as the blocking server reads a request) into
//! `wsbox::handshake::validate` and `wsbox::start`.
//!
//! Invariants checked: nothing panics; `start` accepts exactly the requests `validate`
//! accepts, answers 101 with the accept key of the validated key (a base64 16-byte nonce),
//! and can choose any subprotocol the request offered; every refusal maps to a 400 or 426.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsbox::handshake::{accept_key, validate};

fuzz_target!(|input: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = parsed.parse(input) else {
        return;
    };
    let mut builder = http::Request::builder()
        .method(parsed.method.unwrap_or("GET"))
        .uri(parsed.path.unwrap_or("/"))
        .version(if parsed.version == Some(0) {
            http::Version::HTTP_10
        } else {
            http::Version::HTTP_11
        });
    for h in parsed.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    // httparse admits a few things `http` does not (e.g. some URIs): not ours to judge.
    let Ok(request) = builder.body(()) else {
        return;
    };

    let validated = validate(&request);
    let protocols: Vec<String> = wsbox::requested_protocols(&request).collect();
    match &validated {
        Ok(key) => {
            assert_eq!(key.trim_ascii(), *key);
            let accept = accept_key(key);
            assert_eq!(accept.len(), 28);
            let (response, _websocket) =
                wsbox::start(&request, None::<&str>).expect("validate accepted it");
            assert_eq!(response.status(), 101);
            assert_eq!(response.headers()["sec-websocket-accept"], accept.as_str());
            for protocol in &protocols {
                assert!(!protocol.is_empty() && protocol.trim() == protocol);
                let (response, _websocket) = wsbox::start(&request, Some(protocol.clone()))
                    .expect("any offered protocol can be chosen");
                assert_eq!(
                    response.headers()["sec-websocket-protocol"],
                    protocol.as_str()
                );
            }
        }
        Err(reason) => {
            let error = wsbox::start(&request, None::<&str>).expect_err("validate refused it");
            assert_eq!(
                error,
                wsbox::WebsocketError::InvalidWebsocketRequest(reason.clone())
            );
            let status = error.to_response().status();
            assert!(status == 400 || status == 426, "{status}");
        }
    }
});
