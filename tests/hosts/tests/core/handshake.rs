//! `handshake` in the component, checked against the native library on the same requests.

use host_tests::{Guest, HandshakeError, Request, Response, WebsocketError};

const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

pub(crate) fn header(name: &str, value: &str) -> (String, Vec<u8>) {
    (name.into(), value.as_bytes().to_vec())
}

/// The upgrade request of RFC 6455 §1.2.
pub(crate) fn upgrade_request() -> Request {
    Request {
        method: "GET".into(),
        uri: "/chat".into(),
        version: 11,
        headers: vec![
            header("Host", "server.example.com"),
            header("Upgrade", "websocket"),
            header("Connection", "Upgrade"),
            header("Sec-WebSocket-Key", RFC_KEY),
            header("Sec-WebSocket-Version", "13"),
        ],
        body: Vec::new(),
    }
}

/// `upgrade_request` with every `name` header removed, then `value` added if given.
fn with_header(name: &str, value: Option<&str>) -> Request {
    let mut req = upgrade_request();
    req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    if let Some(value) = value {
        req.headers.push(header(name, value));
    }
    req
}

/// The same request as the native library sees it.
pub(crate) fn native(req: &Request) -> http::Request<()> {
    let version = match req.version {
        10 => http::Version::HTTP_10,
        _ => http::Version::HTTP_11,
    };
    let mut builder = http::Request::builder()
        .method(req.method.as_str())
        .uri(req.uri.as_str())
        .version(version);
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    builder.body(()).expect("test requests are valid HTTP")
}

pub(crate) fn header_value<'a>(response: &'a Response, name: &str) -> Option<&'a [u8]> {
    let mut values = response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name));
    let value = values.next().map(|(_, v)| v.as_slice());
    assert!(values.next().is_none(), "{name} appears twice");
    value
}

fn refused(guest: &mut Guest, req: &Request, subprotocol: Option<&str>) -> HandshakeError {
    match guest.start(req, subprotocol).expect("no trap") {
        Ok(response) => panic!("accepted with {}", response.status),
        Err(error) => error,
    }
}

#[test]
fn rfc_example_is_accepted() {
    let mut guest = Guest::new().unwrap();
    let response = guest.start(&upgrade_request(), None).unwrap().unwrap();
    assert_eq!(response.status, 101);
    assert_eq!(header_value(&response, "upgrade"), Some(&b"websocket"[..]));
    assert_eq!(header_value(&response, "connection"), Some(&b"Upgrade"[..]));
    assert_eq!(
        header_value(&response, "sec-websocket-accept"),
        Some(&b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="[..])
    );
    assert_eq!(header_value(&response, "sec-websocket-protocol"), None);
    assert!(response.body.is_empty());
}

#[test]
fn accept_key_matches_rfc_and_native() {
    let mut guest = Guest::new().unwrap();
    assert_eq!(
        guest.accept_key(RFC_KEY).unwrap(),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    for key in ["", "x", "AAAAAAAAAAAAAAAAAAAAAA==", "é ünïcode"] {
        assert_eq!(
            guest.accept_key(key).unwrap(),
            wsbox::handshake::accept_key(key),
            "{key:?}"
        );
    }
}

#[test]
fn each_invalid_request_matches_native() {
    let mut guest = Guest::new().unwrap();
    let mut post = upgrade_request();
    post.method = "POST".into();
    let mut old = upgrade_request();
    old.version = 10;
    let cases = [
        post,
        old,
        with_header("host", None),
        with_header("upgrade", None),
        with_header("upgrade", Some("h2c")),
        with_header("connection", None),
        with_header("connection", Some("keep-alive")),
        with_header("sec-websocket-key", None),
        with_header("sec-websocket-key", Some("dG9vc2hvcnQ=")),
        with_header("sec-websocket-key", Some("not base64!!")),
        with_header("sec-websocket-version", None),
        with_header("sec-websocket-version", Some("8")),
    ];
    let mut statuses = Vec::new();
    for req in &cases {
        let error = refused(&mut guest, req, None);
        let expected = wsbox::start(&native(req), None::<&str>).unwrap_err();
        let wsbox::WebsocketError::InvalidWebsocketRequest(why) = &expected else {
            panic!("native: {expected}");
        };
        assert_eq!(error.kind, WebsocketError::InvalidWebsocketRequest);
        assert_eq!(error.reason, why.to_string());
        let response = expected.to_response();
        assert_eq!(error.response.status, response.status().as_u16());
        assert_eq!(error.response.body, *response.body());
        assert_eq!(
            header_value(&error.response, "sec-websocket-version"),
            response
                .headers()
                .get("sec-websocket-version")
                .map(|v| v.as_bytes()),
        );
        statuses.push(error.response.status);
    }
    // Only the version error is a 426, with the version we speak.
    let mut expected = vec![400; cases.len()];
    expected[cases.len() - 2..].fill(426);
    assert_eq!(statuses, expected);
    let version = refused(
        &mut guest,
        &with_header("sec-websocket-version", Some("8")),
        None,
    );
    assert_eq!(
        header_value(&version.response, "sec-websocket-version"),
        Some(&b"13"[..])
    );
    assert_eq!(version.reason, "Sec-WebSocket-Version must be 13");
}

#[test]
fn garbage_from_the_host_is_a_bad_request() {
    let mut guest = Guest::new().unwrap();
    let mut bad_name = upgrade_request();
    bad_name.headers.push(header("bad name", "x"));
    let mut bad_value = upgrade_request();
    bad_value
        .headers
        .push(("x-bad".into(), b"line\r\nbreak".to_vec()));
    let mut bad_uri = upgrade_request();
    bad_uri.uri = "/a path with spaces".into();
    let mut bad_method = upgrade_request();
    bad_method.method = "G(ET".into();
    let mut bad_version = upgrade_request();
    bad_version.version = 12;
    let mut not_utf8 = upgrade_request();
    not_utf8.headers.push(("x-bytes".into(), vec![0xff, 0xfe]));
    let cases = [
        (bad_name, "invalid header name \"bad name\""),
        (bad_value, "invalid value for header \"x-bad\""),
        (bad_uri, "invalid request target \"/a path with spaces\""),
        (bad_method, "invalid method \"G(ET\""),
        (bad_version, "unknown HTTP version 12"),
    ];
    for (req, reason) in cases {
        let error = refused(&mut guest, &req, None);
        assert_eq!(error.kind, WebsocketError::InvalidWebsocketRequest);
        assert!(
            error.reason.starts_with(reason),
            "{:?} vs {reason:?}",
            error.reason
        );
        assert_eq!(error.response.status, 400);
        assert_eq!(
            String::from_utf8(error.response.body).unwrap(),
            format!("invalid websocket request: {}\n", error.reason)
        );
    }
    // Opaque (non-UTF-8) header values are legal HTTP and must not spoil the upgrade.
    assert_eq!(guest.start(&not_utf8, None).unwrap().unwrap().status, 101);
}

#[test]
fn three_subprotocol_modes() {
    let mut guest = Guest::new().unwrap();
    let mut req = upgrade_request();
    req.headers
        .push(header("Sec-WebSocket-Protocol", "v2.chat, v1.chat"));

    // None: whatever was offered, no protocol is announced.
    let response = guest.start(&req, None).unwrap().unwrap();
    assert_eq!(response.status, 101);
    assert_eq!(header_value(&response, "sec-websocket-protocol"), None);

    // Exactly one: offered → announced; not offered → wrong-subprotocol, 400.
    let response = guest.start(&req, Some("v1.chat")).unwrap().unwrap();
    assert_eq!(
        header_value(&response, "sec-websocket-protocol"),
        Some(&b"v1.chat"[..])
    );
    let error = refused(&mut guest, &req, Some("v3.chat"));
    assert_eq!(error.kind, WebsocketError::WrongSubprotocol);
    assert_eq!(error.response.status, 400);
    assert_eq!(
        error.reason,
        wsbox::WebsocketError::WrongSubprotocol.to_string()
    );
    assert_eq!(
        error.response.body,
        *wsbox::WebsocketError::WrongSubprotocol.to_response().body()
    );

    // Pick from the client's list.
    let supported = ["v1.chat"];
    let offered = guest.requested_protocols(&req).unwrap();
    let chosen = offered.iter().find(|p| supported.contains(&p.as_str()));
    let response = guest
        .start(&req, chosen.map(String::as_str))
        .unwrap()
        .unwrap();
    assert_eq!(
        header_value(&response, "sec-websocket-protocol"),
        Some(&b"v1.chat"[..])
    );
}

#[test]
fn requested_protocols_parsing() {
    let mut guest = Guest::new().unwrap();
    let mut req = upgrade_request();
    req.headers
        .push(header("Sec-WebSocket-Protocol", "chat,  superchat "));
    req.headers.push(header("x-other", "not, a, protocol"));
    req.headers
        .push(header("SEC-WEBSOCKET-PROTOCOL", " , v2.echo,,"));
    let offered = guest.requested_protocols(&req).unwrap();
    assert_eq!(offered, ["chat", "superchat", "v2.echo"]);
    assert_eq!(
        offered,
        wsbox::requested_protocols(&native(&req)).collect::<Vec<_>>()
    );

    assert!(
        guest
            .requested_protocols(&upgrade_request())
            .unwrap()
            .is_empty()
    );

    // A header the host could not have parsed does not hide the valid ones.
    req.headers.push(header("bad name", "x"));
    assert_eq!(guest.requested_protocols(&req).unwrap(), offered);
}
