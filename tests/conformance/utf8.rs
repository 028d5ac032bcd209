//! UTF-8 in text messages, checked as the fragments arrive (Autobahn 6.x).

use crate::*;

#[test]
fn utf8() {
    let kosme = "κόσμε";
    let clef = "𝄞 and \u{10FFFF}";
    // Every byte of a multi-byte text in its own fragment: most cuts fall inside a code point.
    let bytes = "κόσμε𝄞".as_bytes();
    let per_byte: Vec<u8> = bytes
        .iter()
        .enumerate()
        .flat_map(|(i, b)| {
            let op = if i == 0 { TEXT } else { CONT };
            let fin = if i + 1 == bytes.len() { FIN } else { 0 };
            frame(op | fin, &[*b])
        })
        .collect();
    // Autobahn 6.3.1: κόσμε, then a UTF-16 surrogate, then "edited".
    let autobahn_631 = [
        0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80, 0x65,
        0x64, 0x69, 0x74, 0x65, 0x64,
    ];
    // A frame announcing 20 bytes of which only the first five (already invalid) are sent.
    let mut invalid_start = [b'a'; 20];
    invalid_start[..5].copy_from_slice(&[b'o', b'k', 0xce, 0xba, 0xff]);
    let partial_frame = frame(FIN | TEXT, &invalid_start)[..6 + 5].to_vec();
    run(vec![
        echo("valid Greek", vec![text(kosme)], vec![text_reply(kosme)]),
        echo(
            "4-byte code points and U+10FFFF",
            vec![text(clef)],
            vec![text_reply(clef)],
        ),
        echo(
            "fragments cut at code point boundaries",
            vec![concat(&[
                frame(TEXT, "κό".as_bytes()),
                frame(FIN | CONT, "σμε".as_bytes()),
            ])],
            vec![text_reply(kosme)],
        ),
        echo(
            "one byte per fragment, cuts inside code points",
            vec![per_byte],
            vec![text_reply("κόσμε𝄞")],
        ),
        echo(
            "a code point split across frames in separate writes",
            vec![frame(TEXT, &[0xf0, 0x9d]), frame(FIN | CONT, &[0x84, 0x9e])],
            vec![text_reply("𝄞")],
        ),
        echo(
            "invalid UTF-8 in a binary message is not checked",
            vec![frame(FIN | BINARY, &[0xff, 0xfe, 0xc0, 0xaf])],
            vec![binary_reply(&[0xff, 0xfe, 0xc0, 0xaf])],
        ),
        fails(
            "Autobahn 6.3.1 surrogate in a frame",
            vec![frame(FIN | TEXT, &autobahn_631)],
            vec![],
            1007,
        ),
        fails(
            "0xff byte",
            vec![frame(FIN | TEXT, &[b'a', 0xff])],
            vec![],
            1007,
        ),
        fails(
            "overlong encoding of '/'",
            vec![frame(FIN | TEXT, &[0xc0, 0xaf])],
            vec![],
            1007,
        ),
        fails(
            "code point above U+10FFFF",
            vec![frame(FIN | TEXT, &[0xf4, 0x90, 0x80, 0x80])],
            vec![],
            1007,
        ),
        fails(
            "message ends inside a code point",
            vec![frame(FIN | TEXT, &[b'a', 0xce])],
            vec![],
            1007,
        ),
        fails(
            "fragmented message ends inside a code point",
            vec![concat(&[frame(TEXT, &[0xce]), frame(FIN | CONT, b"")])],
            vec![],
            1007,
        ),
        fails(
            "invalid in a first fragment, before the message ends",
            vec![frame(TEXT, &[b'o', b'k', 0xce, 0xba, 0xff])],
            vec![],
            1007,
        ),
        fails(
            "invalid sequence across two unfinished fragments",
            vec![frame(TEXT, &[b'a', 0xf4]), frame(CONT, &[0x90, 0x80])],
            vec![],
            1007,
        ),
        fails(
            "invalid within a frame whose payload has not all arrived",
            vec![partial_frame],
            vec![],
            1007,
        ),
        fails(
            "valid message, then an invalid one",
            vec![text(kosme), frame(FIN | TEXT, &autobahn_631)],
            vec![text_reply(kosme)],
            1007,
        ),
    ]);
}
