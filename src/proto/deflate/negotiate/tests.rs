use http::HeaderValue;

use super::*;

fn headers(lines: &[&str]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in lines {
        map.append(
            SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_str(line).unwrap(),
        );
    }
    map
}

fn server(lines: &[&str], ours: Deflate) -> Option<String> {
    negotiate(&headers(lines), &ours).map(|params| params.to_header())
}

#[test]
fn the_plain_offer_is_accepted_as_is() {
    assert_eq!(
        server(&["permessage-deflate"], Deflate::default()).as_deref(),
        Some("permessage-deflate")
    );
    // Chromium's offer: the bare client_max_window_bits means 15 when not capped.
    assert_eq!(
        server(
            &["permessage-deflate; client_max_window_bits"],
            Deflate::default()
        )
        .as_deref(),
        Some("permessage-deflate")
    );
}

#[test]
fn no_offer_or_another_extension_is_declined() {
    assert_eq!(server(&[], Deflate::default()), None);
    assert_eq!(
        server(&["x-webkit-deflate-frame"], Deflate::default()),
        None
    );
}

#[test]
fn context_takeover_parameters() {
    assert_eq!(
        server(
            &["permessage-deflate; server_no_context_takeover"],
            Deflate::default()
        )
        .as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    assert_eq!(
        server(
            &["permessage-deflate; client_no_context_takeover"],
            Deflate::default()
        )
        .as_deref(),
        Some("permessage-deflate; client_no_context_takeover")
    );
    // Ours asks for none either way, whatever the offer.
    assert_eq!(
        server(
            &["permessage-deflate"],
            Deflate::default().no_context_takeover(true)
        )
        .as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
}

#[test]
fn window_bits_from_9_to_15() {
    for bits in 9..=15u8 {
        let offer = format!("permessage-deflate; server_max_window_bits={bits}");
        assert_eq!(
            negotiate(&headers(&[&offer]), &Deflate::default())
                .and_then(|p| p.server_max_window_bits),
            Some(bits)
        );
        let offer = format!("permessage-deflate; client_max_window_bits={bits}");
        let params = negotiate(&headers(&[&offer]), &Deflate::default()).unwrap();
        assert_eq!(params.client_max_window_bits, (bits < 15).then_some(bits));
        assert!(!params.client_no_context_takeover, "{bits}");
        // Our smaller window wins, on both sides.
        let both = format!(
            "permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"
        );
        let params =
            negotiate(&headers(&[&both]), &Deflate::default().max_window_bits(11)).unwrap();
        assert_eq!(params.server_max_window_bits, Some(bits.min(11)));
        assert_eq!(params.client_max_window_bits, Some(bits.min(11)));
    }
    // Quoted values are values too (RFC 6455 §9.1).
    assert_eq!(
        server(
            &["permessage-deflate; server_max_window_bits=\"10\""],
            Deflate::default()
        )
        .as_deref(),
        Some("permessage-deflate; server_max_window_bits=10")
    );
}

#[test]
fn a_client_window_we_cannot_cap_costs_its_context_takeover() {
    let small = Deflate::default().max_window_bits(10);
    assert_eq!(
        server(&["permessage-deflate"], small).as_deref(),
        Some("permessage-deflate; client_no_context_takeover")
    );
    assert_eq!(
        server(&["permessage-deflate; client_max_window_bits"], small).as_deref(),
        Some("permessage-deflate; client_max_window_bits=10")
    );
}

#[test]
fn a_server_window_of_8_is_declined_and_the_next_offer_taken() {
    assert_eq!(
        server(
            &["permessage-deflate; server_max_window_bits=8"],
            Deflate::default()
        ),
        None
    );
    // A client that will use 8 bits itself is fine: a wider window decodes it.
    assert_eq!(
        server(
            &["permessage-deflate; client_max_window_bits=8"],
            Deflate::default()
        )
        .as_deref(),
        Some("permessage-deflate; client_max_window_bits=8")
    );
    // Fallback across offers, in one line or several.
    let fallback = "permessage-deflate; server_max_window_bits=8, \
                    permessage-deflate; server_no_context_takeover, permessage-deflate";
    assert_eq!(
        server(&[fallback], Deflate::default()).as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    assert_eq!(
        server(
            &[
                "permessage-deflate; server_max_window_bits=8",
                "permessage-deflate"
            ],
            Deflate::default()
        )
        .as_deref(),
        Some("permessage-deflate")
    );
}

#[test]
fn malformed_offers_are_declined() {
    let bad = [
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=1a",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; unknown",
        "permessage-deflate; server_max_window_bits=\"10",
        "permessage-deflate;; client_no_context_takeover",
        "permessage deflate",
    ];
    for offer in bad {
        assert_eq!(server(&[offer], Deflate::default()), None, "{offer}");
        // A bad offer does not spoil a good one after it.
        assert_eq!(
            server(&[offer, "permessage-deflate"], Deflate::default()).as_deref(),
            Some("permessage-deflate"),
            "{offer}"
        );
    }
}

fn client(lines: &[&str], ours: Deflate) -> Result<Option<Params>, ExtensionError> {
    check_response(&headers(lines), &ours)
}

#[test]
fn the_client_offers_what_the_server_answers() {
    for ours in [
        Deflate::default(),
        Deflate::default().max_window_bits(9),
        Deflate::default()
            .max_window_bits(12)
            .no_context_takeover(true),
    ] {
        let params = negotiate(&headers(&[&offer(&ours)]), &Deflate::default()).unwrap();
        assert_eq!(client(&[&params.to_header()], ours), Ok(Some(params)));
    }
}

#[test]
fn the_client_checks_the_answer() {
    use ExtensionError::*;
    let ours = Deflate::default();
    assert_eq!(client(&[], ours), Ok(None));
    let agreed = client(&["permessage-deflate; server_max_window_bits=10"], ours);
    assert_eq!(agreed.unwrap().unwrap().server_max_window_bits, Some(10));
    let agreed = client(&["permessage-deflate; client_max_window_bits=8"], ours);
    assert_eq!(agreed.unwrap().unwrap().client_max_window_bits, Some(8));
    let cases = [
        ("x-webkit-deflate-frame", UnsupportedExtension),
        (
            "permessage-deflate, permessage-deflate",
            UnsupportedExtension,
        ),
        (
            "permessage-deflate; client_max_window_bits",
            InvalidParameter,
        ),
        (
            "permessage-deflate; client_max_window_bits=16",
            InvalidParameter,
        ),
        ("permessage-deflate; foo", InvalidParameter),
        (
            "permessage-deflate; client_no_context_takeover=x",
            InvalidParameter,
        ),
        ("permessage-deflate;", InvalidParameter),
    ];
    for (answer, error) in cases {
        assert_eq!(client(&[answer], ours), Err(error), "{answer}");
    }
    // What the offer asked of the server must be in the answer.
    let small = Deflate::default()
        .max_window_bits(10)
        .no_context_takeover(true);
    for answer in [
        "permessage-deflate; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
        "permessage-deflate; server_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=9; \
         client_max_window_bits=11",
    ] {
        assert_eq!(client(&[answer], small), Err(InvalidParameter), "{answer}");
    }
}
