//! Fragmented messages, with control frames between fragments (Autobahn 5.x).

use crate::*;

#[test]
fn fragmentation() {
    let many: Vec<Vec<u8>> = (0..20)
        .map(|i| {
            let b0 = if i == 0 { TEXT } else { CONT } | if i == 19 { FIN } else { 0 };
            frame(b0, format!("{i},").as_bytes())
        })
        .collect();
    let joined: String = (0..20).map(|i| format!("{i},")).collect();
    run(vec![
        echo(
            "text in three fragments",
            vec![concat(&[
                frame(TEXT, b"frag"),
                frame(CONT, b"men"),
                frame(FIN | CONT, b"ted"),
            ])],
            vec![text_reply("fragmented")],
        ),
        echo(
            "binary in two fragments",
            vec![concat(&[
                frame(BINARY, &[1, 2, 3]),
                frame(FIN | CONT, &[4, 5]),
            ])],
            vec![binary_reply(&[1, 2, 3, 4, 5])],
        ),
        echo(
            "fragments in separate writes",
            vec![
                frame(TEXT, b"frag"),
                frame(CONT, b"men"),
                frame(FIN | CONT, b"ted"),
            ],
            vec![text_reply("fragmented")],
        ),
        echo(
            "twenty fragments",
            vec![many.concat()],
            vec![text_reply(&joined)],
        ),
        echo(
            "empty fragments",
            vec![concat(&[
                frame(TEXT, b""),
                frame(CONT, b"abc"),
                frame(CONT, b""),
                frame(FIN | CONT, b""),
            ])],
            vec![text_reply("abc")],
        ),
        echo(
            "empty fragmented message",
            vec![concat(&[frame(BINARY, b""), frame(FIN | CONT, b"")])],
            vec![binary_reply(&[])],
        ),
        echo(
            "ping between fragments",
            vec![concat(&[
                frame(TEXT, b"Hel"),
                frame(FIN | PING, b"in between"),
                frame(FIN | CONT, b"lo"),
            ])],
            vec![(PONG, b"in between".to_vec()), text_reply("Hello")],
        ),
        echo(
            "ping between fragments in separate writes",
            vec![
                frame(BINARY, b"Hel"),
                frame(FIN | PING, b"p"),
                frame(FIN | CONT, b"lo"),
            ],
            vec![(PONG, b"p".to_vec()), binary_reply(b"Hello")],
        ),
        echo(
            "pong between fragments is ignored",
            vec![concat(&[
                frame(TEXT, b"Hel"),
                frame(FIN | PONG, b"ignored"),
                frame(FIN | CONT, b"lo"),
            ])],
            vec![text_reply("Hello")],
        ),
        fails(
            "continuation without a start",
            vec![frame(FIN | CONT, b"orphan")],
            vec![],
            1002,
        ),
        fails(
            "unfinished continuation without a start",
            vec![frame(CONT, b"orphan")],
            vec![],
            1002,
        ),
        fails(
            "continuation after a complete message",
            vec![text("done"), frame(FIN | CONT, b"more")],
            vec![text_reply("done")],
            1002,
        ),
        fails(
            "new text frame mid-message",
            vec![concat(&[frame(TEXT, b"first"), text("second")])],
            vec![],
            1002,
        ),
        fails(
            "new binary frame mid-text-message",
            vec![concat(&[frame(TEXT, b"first"), frame(FIN | BINARY, b"x")])],
            vec![],
            1002,
        ),
        fails(
            "fragmented ping",
            vec![concat(&[frame(PING, b"frag"), frame(FIN | CONT, b"ment")])],
            vec![],
            1002,
        ),
        fails("fragmented pong", vec![frame(PONG, b"frag")], vec![], 1002),
        fails(
            "fragmented close",
            vec![frame(CLOSE, &1000u16.to_be_bytes())],
            vec![],
            1002,
        ),
        fails(
            "fragmented ping inside a fragmented message",
            vec![concat(&[frame(TEXT, b"a"), frame(PING, b"b")])],
            vec![],
            1002,
        ),
    ]);
}
