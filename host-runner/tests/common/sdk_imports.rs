//! The `history`, `presence` and `store` imports (0.2.1) through each SDK, against tungstenite
//! clients: guests/test-js, guests/test-py and guests/test-rust answer the same commands in the
//! same words (listed in guests/test-js/rooms.js), and [`rooms_and_store`] drives any of them
//! (js_guest.rs, python_guest.rs, rust_guest.rs). Errors must come back as values (the error's
//! name), not as a trap.

use std::time::Duration;

use tungstenite::Message;

use super::Runner;

/// Everything below, on `runner` (serving test-js or test-py). Uses the topics `kept` and
/// `lobby` and the namespace `ns`.
pub fn rooms_and_store(runner: &Runner) {
    history(runner);
    presence(runner);
    store(runner);
}

/// The epoch and offset of an answer `WORD E O` (`head`, `from`).
fn position(answer: &str, word: &str) -> (String, u64) {
    let words: Vec<&str> = answer.split(' ').collect();
    assert!(words.len() == 3 && words[0] == word, "{answer}");
    (words[1].to_owned(), words[2].parse().expect("an offset"))
}

/// A text message in its envelope: `{"pos":{"epoch":E,"offset":O},` then the rest.
fn enveloped(epoch: &str, offset: u64, rest: &str) -> String {
    format!(r#"{{"pos":{{"epoch":"{epoch}","offset":{offset}}},{rest}"#)
}

/// The position in front of a binary message (offset, then epoch; big-endian) and the rest.
fn binary(
    message: Result<Message, Option<tungstenite::protocol::frame::coding::CloseCode>>,
) -> (String, u64, Vec<u8>) {
    let Ok(Message::Binary(data)) = message else {
        panic!("expected a binary message, got {message:?}");
    };
    let offset = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
    let epoch = u64::from_be_bytes(data[8..16].try_into().expect("8 bytes"));
    (format!("{epoch:016x}"), offset, data[16..].to_vec())
}

fn history(runner: &Runner) {
    let mut a = runner.connect("/");
    let mut b = runner.connect("/");
    assert_eq!(a.ask("head kept"), "off", "no history before `enable`");
    assert_eq!(a.ask("history kept 10 0"), "ok");
    let (epoch, head) = position(&a.ask("head kept"), "head");
    assert_eq!((epoch.len(), head), (16, 0));

    // Every publish gets the next position, in the envelope and in the answer.
    assert_eq!(b.ask("sub kept"), "ok");
    assert_eq!(
        a.ask(r#"pubkept kept {"n":1}"#),
        format!("position {epoch} 1 count 1")
    );
    assert_eq!(b.text(), enveloped(&epoch, 1, r#""n":1}"#));
    assert_eq!(a.ask("pub kept hello"), "1", "a plain publish is kept too");
    assert_eq!(b.text(), enveloped(&epoch, 2, r#""data":"hello"}"#));
    assert_eq!(
        a.ask("pubkeptbin kept raw"),
        format!("position {epoch} 3 count 1")
    );
    assert_eq!(binary(b.next()), (epoch.clone(), 3, b"raw".to_vec()));
    assert_eq!(
        a.ask("kept kept 10"),
        r#"kept 1,2,3|{"n":1}|hello|binary:3"#
    );
    assert_eq!(a.ask("kept kept 1"), "kept 3|binary:3");

    // From after a position: what followed it, then the live messages.
    let mut c = runner.connect("/");
    assert_eq!(
        c.ask(&format!("from kept {epoch} 1")),
        format!("from {epoch} 3")
    );
    assert_eq!(c.text(), enveloped(&epoch, 2, r#""data":"hello"}"#));
    assert_eq!(binary(c.next()).1, 3);
    // From the last n.
    let mut d = runner.connect("/");
    assert_eq!(d.ask("fromlast kept 1"), format!("from {epoch} 3"));
    assert_eq!(binary(d.next()).1, 3);
    assert_eq!(
        a.ask("pubkept kept live"),
        format!("position {epoch} 4 count 3")
    );
    for client in [&mut b, &mut c, &mut d] {
        assert_eq!(client.text(), enveloped(&epoch, 4, r#""data":"live"}"#));
    }

    // A smaller bound trims at once: after 1 is gone, as is any position of another epoch,
    // and nothing is subscribed then.
    assert_eq!(a.ask("history kept 2 0"), "ok");
    let mut e = runner.connect("/");
    assert_eq!(e.ask(&format!("from kept {epoch} 1")), "gone");
    let other = if epoch.starts_with('0') { "1" } else { "0" };
    assert_eq!(
        e.ask(&format!("from kept {other}{} 3", &epoch[1..])),
        "gone"
    );
    assert_eq!(e.ask("fromlast elsewhere 5"), "off");
    assert_eq!(e.ask("count kept"), "3");
    assert_eq!(
        e.ask(&format!("from kept {epoch} 2")),
        format!("from {epoch} 4")
    );
    assert_eq!(binary(e.next()).1, 3);
    assert_eq!(e.text(), enveloped(&epoch, 4, r#""data":"live"}"#));
}

fn presence(runner: &Runner) {
    let mut clients = Vec::new();
    let mut listed = Vec::new();
    for info in ["ann", "bob", ""] {
        let mut client = runner.connect("/");
        assert_eq!(client.ask("sub lobby"), "ok");
        if !info.is_empty() {
            assert_eq!(client.ask(&format!("info lobby {info}")), "ok");
        }
        listed.push((client.ask("id"), format!("{}={info}", client.ask("id"))));
        clients.push(client);
    }
    listed.sort();
    let asker = &mut clients[0];

    // Pages in id order, each naming where the next starts.
    let second = &listed[1].0;
    assert_eq!(
        asker.ask("members lobby - 2"),
        format!("members {},{} next {second}", listed[0].1, listed[1].1)
    );
    assert_eq!(
        asker.ask(&format!("members lobby {second} 2")),
        format!("members {}", listed[2].1)
    );
    let too_long = format!("info lobby {}", "x".repeat(300));
    assert_eq!(asker.ask(&too_long), "too-large");
    let mut outsider = runner.connect("/");
    assert_eq!(outsider.ask("info lobby eve"), "not-subscribed");
}

fn store(runner: &Runner) {
    let mut s = runner.connect("/");
    assert_eq!(s.ask("get ns k"), "unset");
    assert_eq!(s.ask("set ns k v1"), "ok");
    assert_eq!(s.ask("get ns k"), "value v1");
    assert_eq!(s.ask("set ns k2 v2"), "ok");
    assert_eq!(s.ask("set ns other x"), "ok");
    assert_eq!(s.ask("keys ns k - 10"), "keys k,k2");
    assert_eq!(s.ask("keys ns - k 10"), "keys k2,other");
    assert_eq!(s.ask("keys ns - - 1"), "keys k");

    // Counters, their errors as values: a 64-bit delta, past what a JavaScript number holds.
    assert_eq!(s.ask("incr ns n 5"), "sum 5");
    assert_eq!(s.ask("incr ns n -7"), "sum -2");
    assert_eq!(s.ask("incr ns n -9223372036854775807"), "overflow");
    assert_eq!(s.ask("incr ns k 1"), "not-a-number");

    // Compare and swap, unset as `-`.
    assert_eq!(s.ask("cas ns k v1 w"), "true");
    assert_eq!(s.ask("cas ns k v1 x"), "false");
    assert_eq!(s.ask("get ns k"), "value w");
    assert_eq!(s.ask("cas ns fresh - new"), "true");
    assert_eq!(s.ask("cas ns fresh - again"), "false");
    assert_eq!(s.ask("cas ns fresh new -"), "true");
    assert_eq!(s.ask("get ns fresh"), "unset");
    assert_eq!(s.ask("del ns k"), "true");
    assert_eq!(s.ask("del ns k"), "false");

    // Times to live, by `set` and by `compare-and-swap`.
    assert_eq!(s.ask("set ns brief soon 200"), "ok");
    assert_eq!(s.ask("cas ns lease - me 200"), "true");
    assert_eq!(s.ask("get ns brief"), "value soon");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(s.ask("get ns brief"), "unset");
    assert_eq!(s.ask("get ns lease"), "unset");

    // Refusals are values, and the connection goes on.
    assert_eq!(s.ask(&format!("get ns {}", "k".repeat(600))), "bad-key");
    assert_eq!(s.ask("big ns k"), "too-large");
    // Values outlive the connection that wrote them.
    drop(s);
    assert_eq!(runner.connect("/").ask("get ns k2"), "value v2");
}
