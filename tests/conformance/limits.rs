//! The frame and message size limits (Autobahn 9.x, at sizes a test can reach).

use crate::*;

#[test]
fn limits() {
    let at_frame_limit = vec![0x5A; MAX_FRAME];
    let half = "h".repeat(MAX_MESSAGE / 2);
    run(vec![
        limited(echo(
            "frame exactly at the frame limit",
            vec![frame(FIN | BINARY, &at_frame_limit)],
            vec![binary_reply(&at_frame_limit)],
        )),
        // Only the header is sent: the declared length alone must be refused.
        limited(fails(
            "frame one byte over the frame limit",
            vec![header(FIN | BINARY, MAX_FRAME as u64 + 1)],
            vec![],
            1009,
        )),
        limited(fails(
            "frame declaring 2^62 bytes",
            vec![header(FIN | TEXT, 1 << 62)],
            vec![],
            1009,
        )),
        limited(echo(
            "message exactly at the message limit",
            vec![concat(&[
                frame(TEXT, half.as_bytes()),
                frame(FIN | CONT, half.as_bytes()),
            ])],
            vec![text_reply(&format!("{half}{half}"))],
        )),
        limited(fails(
            "message one byte over the message limit",
            vec![concat(&[
                frame(TEXT, half.as_bytes()),
                frame(CONT, half.as_bytes()),
                header(FIN | CONT, 1),
            ])],
            vec![],
            1009,
        )),
        limited(echo(
            "limit applies per message",
            vec![concat(&[
                frame(FIN | BINARY, &at_frame_limit),
                frame(FIN | BINARY, &at_frame_limit),
                frame(FIN | BINARY, &at_frame_limit),
            ])],
            vec![
                binary_reply(&at_frame_limit),
                binary_reply(&at_frame_limit),
                binary_reply(&at_frame_limit),
            ],
        )),
    ]);
}
