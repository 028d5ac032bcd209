//! The close handshake and close codes (Autobahn 7.x).

use crate::*;

#[test]
fn close_codes() {
    let mut cases = Vec::new();
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999,
    ] {
        cases.push(fails(
            format!("close {code} is echoed"),
            vec![close_frame(code, b"")],
            vec![],
            code,
        ));
    }
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        cases.push(fails(
            format!("close {code} is refused"),
            vec![close_frame(code, b"")],
            vec![],
            1002,
        ));
    }
    cases.push(fails(
        "close with a reason is answered with the code",
        vec![close_frame(1000, b"Goodbye")],
        vec![],
        1000,
    ));
    cases.push(fails(
        "close with a 123-byte reason",
        vec![close_frame(4000, &[b'r'; 123])],
        vec![],
        4000,
    ));
    cases.push(fails(
        "1-byte close payload",
        vec![frame(FIN | CLOSE, &[0x03])],
        vec![],
        1002,
    ));
    cases.push(fails(
        "close reason that is not UTF-8",
        vec![close_frame(
            1000,
            &[
                0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
            ],
        )],
        vec![],
        1007,
    ));
    cases.push(Case {
        name: "empty close is answered with an empty close".into(),
        limited: false,
        with_request: Vec::new(),
        writes: vec![frame(FIN | CLOSE, b"")],
        replies: vec![(CLOSE, vec![])],
    });
    cases.push(fails(
        "frames after the close are ignored",
        vec![concat(&[
            close_frame(1000, b""),
            text("too late"),
            frame(FIN | PING, b"too late"),
        ])],
        vec![],
        1000,
    ));
    cases.push(fails(
        "close after a message",
        vec![text("last"), close_frame(1001, b"")],
        vec![text_reply("last")],
        1001,
    ));
    // `Websocket` feeds the session one event at a time, so a message read in the same chunk
    // as a close (or a violation) reaches the handler, and its reply goes out, before our
    // close frame (Autobahn's STRICT ordering).
    cases.push(fails(
        "message and close in one write: the echo goes first",
        vec![concat(&[text("last"), close_frame(1001, b"")])],
        vec![text_reply("last")],
        1001,
    ));
    cases.push(fails(
        "message and violation in one write: the echo goes first",
        vec![concat(&[text("good"), frame(FIN | 0x40 | TEXT, b"bad")])],
        vec![text_reply("good")],
        1002,
    ));
    cases.push(fails(
        "close between fragments",
        vec![concat(&[
            frame(TEXT, b"unfinished"),
            close_frame(1000, b""),
        ])],
        vec![],
        1000,
    ));
    run(cases);
}
