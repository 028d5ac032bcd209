//! Reserved bits and reserved opcodes (Autobahn 3.x, 4.x).

use crate::*;

#[test]
fn reserved_bits() {
    let mut cases = Vec::new();
    for (rsv, bits) in [
        ("RSV1", 0x40),
        ("RSV2", 0x20),
        ("RSV3", 0x10),
        ("RSV1-3", 0x70),
    ] {
        cases.push(fails(
            format!("{rsv} on a text frame"),
            vec![frame(FIN | bits | TEXT, b"Hello")],
            vec![],
            1002,
        ));
        cases.push(fails(
            format!("{rsv} on a binary frame after a good message"),
            vec![
                text("good"),
                concat(&[
                    frame(FIN | bits | BINARY, &[1, 2, 3]),
                    frame(FIN | PING, b"unanswered"),
                ]),
            ],
            vec![text_reply("good")],
            1002,
        ));
        cases.push(fails(
            format!("{rsv} on a ping"),
            vec![frame(FIN | bits | PING, b"ping")],
            vec![],
            1002,
        ));
        cases.push(fails(
            format!("{rsv} on a close"),
            vec![frame(FIN | bits | CLOSE, &1000u16.to_be_bytes())],
            vec![],
            1002,
        ));
    }
    run(cases);
}

#[test]
fn opcodes() {
    let mut cases = Vec::new();
    for op in (0x3..=0x7).chain(0xB..=0xF) {
        cases.push(fails(
            format!("reserved opcode {op:#x}"),
            vec![frame(FIN | op, b"")],
            vec![],
            1002,
        ));
        // A good message first, then the reserved frame with a payload and a ping that must
        // go unanswered.
        cases.push(fails(
            format!("reserved opcode {op:#x} with payload after a message"),
            vec![
                text("before"),
                concat(&[frame(FIN | op, b"reserved"), frame(FIN | PING, b"")]),
            ],
            vec![text_reply("before")],
            1002,
        ));
    }
    run(cases);
}
