//! The three ways to choose a subprotocol, through a handler guest.

mod common;

use common::Runner;

#[test]
fn three_subprotocol_modes() {
    let runner = Runner::with_test_handler(&[]);

    // None: whatever is offered, nothing is chosen. (tungstenite refuses a server that
    // chooses nothing from an offer, so this one is checked on the raw response.)
    let (head, _stream) = runner.upgrade_head("/none", &["echo", "chat"]);
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(!head.contains("sec-websocket-protocol"), "{head}");
    let mut client = runner.connect("/none");
    assert_eq!(client.protocol, None);
    client.echo("none");

    // Exactly one: chosen when offered…
    let mut client = runner.connect_with("/exact", &["chat", "echo"]);
    assert_eq!(client.protocol.as_deref(), Some("echo"));
    client.echo("exact");
    // …and the upgrade is refused when not.
    let (head, mut stream) = runner.upgrade_head("/exact", &["chat"]);
    assert!(head.starts_with("http/1.1 400"), "{head}");
    let mut body = [0u8; 200];
    let n = std::io::Read::read(&mut stream, &mut body).expect("read the body");
    let body = String::from_utf8_lossy(&body[..n]);
    assert!(body.contains("subprotocol"), "{body}");

    // Pick from the client's list: the client's first supported preference wins.
    let mut client = runner.connect_with("/pick", &["v3.chat", "v2.chat", "v1.chat"]);
    assert_eq!(client.protocol.as_deref(), Some("v2.chat"));
    client.echo("pick");
    let (head, _stream) = runner.upgrade_head("/pick", &["v9.chat"]);
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(!head.contains("sec-websocket-protocol"), "{head}");

    let log = runner.wait_for_log("protocol=\"v2.chat\"");
    assert!(log.contains("protocol=\"v2.chat\""), "{log}");
}

/// A guest in any language answers a bare 101, with at most `sec-websocket-protocol`: the
/// host validates the upgrade, computes the accept key and negotiates compression.
#[test]
fn a_bare_101_is_a_whole_acceptance() {
    let runner = Runner::with_test_handler(&[]);
    let mut client = runner.connect("/bare");
    assert_eq!(client.protocol, None);
    client.echo("bare");

    let mut client = runner.connect_with("/bare?protocol=v2.chat", &["v1.chat", "v2.chat"]);
    assert_eq!(client.protocol.as_deref(), Some("v2.chat"));
    client.echo("bare with a subprotocol");

    // The host computed the accept key (RFC 6455 §1.3's example key and answer).
    let (head, _stream) = runner.upgrade_head("/bare", &[]);
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );

    // A subprotocol the client did not offer: the host answers 500, not the guest's 101.
    let (head, _stream) = runner.upgrade_head("/bare?protocol=v9.chat", &["v1.chat"]);
    assert!(head.starts_with("http/1.1 500"), "{head}");
}
