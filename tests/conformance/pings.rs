//! Pings and pongs (Autobahn 2.x).

use crate::*;

#[test]
fn pings() {
    let p125: Vec<u8> = (0..125).collect();
    let p126: Vec<u8> = (0..126).collect();
    let pings: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; usize::from(i)]).collect();
    run(vec![
        echo(
            "ping payload echoed in the pong",
            vec![frame(FIN | PING, b"Hello")],
            vec![(PONG, b"Hello".to_vec())],
        ),
        echo(
            "empty ping",
            vec![frame(FIN | PING, b"")],
            vec![(PONG, vec![])],
        ),
        echo(
            "binary ping payload",
            vec![frame(
                FIN | PING,
                &[0x00, 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0x00, 0xFF],
            )],
            vec![(PONG, vec![0x00, 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0x00, 0xFF])],
        ),
        echo(
            "125-byte ping",
            vec![frame(FIN | PING, &p125)],
            vec![(PONG, p125.clone())],
        ),
        fails(
            "126-byte ping",
            vec![frame(FIN | PING, &p126)],
            vec![],
            1002,
        ),
        echo(
            "unsolicited pong is ignored",
            vec![concat(&[frame(FIN | PONG, b"unasked"), text("after")])],
            vec![text_reply("after")],
        ),
        echo(
            "unsolicited empty pong is ignored",
            vec![frame(FIN | PONG, b""), text("after")],
            vec![text_reply("after")],
        ),
        echo(
            "ten pings in one write answered in order",
            vec![
                pings
                    .iter()
                    .map(|p| frame(FIN | PING, p))
                    .collect::<Vec<_>>()
                    .concat(),
            ],
            pings.iter().map(|p| (PONG, p.clone())).collect(),
        ),
        echo(
            "ping split across writes",
            cut(&frame(FIN | PING, b"split ping"), &[1, 4, 9]),
            vec![(PONG, b"split ping".to_vec())],
        ),
    ]);
}
