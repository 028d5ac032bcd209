//! Framing (Autobahn 1.x): lengths in every encoding, frames split across writes and
//! several in one, and headers the server must refuse.

use crate::*;

#[test]
fn framing() {
    let mut cases = Vec::new();
    for len in [0usize, 125, 126, 127, 65535, 65536] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        cases.push(echo(
            format!("binary of {len} bytes"),
            vec![frame(FIN | BINARY, &data)],
            vec![binary_reply(&data)],
        ));
        let s = "*".repeat(len);
        cases.push(echo(
            format!("text of {len} bytes"),
            vec![text(&s)],
            vec![text_reply(&s)],
        ));
    }
    let data: Vec<u8> = (0..300).map(|i| i as u8).collect();
    let wire = frame(FIN | BINARY, &data);
    // Cut inside the first two bytes, the extended length, the mask and the payload.
    cases.push(echo(
        "one frame split across seven writes",
        cut(&wire, &[1, 2, 3, 6, 9, 100, 250]),
        vec![binary_reply(&data)],
    ));
    let wire = text("Hello, split world");
    let every_byte: Vec<usize> = (1..wire.len()).collect();
    cases.push(echo(
        "one frame written a byte at a time",
        cut(&wire, &every_byte),
        vec![text_reply("Hello, split world")],
    ));
    let messages: Vec<String> = (0..100).map(|i| format!("message {i}")).collect();
    cases.push(echo(
        "100 frames in one write",
        vec![
            messages
                .iter()
                .map(|m| text(m))
                .collect::<Vec<_>>()
                .concat(),
        ],
        messages.iter().map(|m| text_reply(m)).collect(),
    ));
    let three = concat(&[text("one"), frame(FIN | BINARY, &[2; 200]), text("three")]);
    cases.push(echo(
        "three frames cut at arbitrary points",
        cut(&three, &[5, 17, 40, 212]),
        vec![
            text_reply("one"),
            binary_reply(&[2; 200]),
            text_reply("three"),
        ],
    ));
    let mut huge = vec![FIN | BINARY, 0x80 | 127];
    huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
    huge.extend_from_slice(&MASK);
    cases.push(fails(
        "64-bit length with the top bit set",
        vec![huge],
        vec![],
        1002,
    ));
    cases.push(fails(
        "unmasked client frame",
        vec![vec![FIN | TEXT, 2, b'h', b'i']],
        vec![],
        1002,
    ));
    cases.push(fails(
        "unmasked ping after a message",
        vec![text("ok"), vec![FIN | PING, 0]],
        vec![text_reply("ok")],
        1002,
    ));
    run(cases);
}
