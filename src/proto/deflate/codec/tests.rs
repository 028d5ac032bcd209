use std::io::Write;

use flate2::Compression;
use flate2::write::DeflateEncoder;

use super::*;

/// JSON-like text: repetitive across messages, so context takeover shows.
fn message(i: usize) -> Vec<u8> {
    format!(
        r#"{{"id":{i},"user":"user-{}","event":"price_update","symbol":"ABC","price":{}.{:02},"tags":["a","b","c"]}}"#,
        i % 7,
        100 + i % 13,
        i % 100
    )
    .into_bytes()
}

fn params(takeover: bool, bits: Option<u8>) -> Params {
    Params {
        server_no_context_takeover: !takeover,
        client_no_context_takeover: !takeover,
        server_max_window_bits: bits,
        client_max_window_bits: bits,
    }
}

/// Decodes with miniz_oxide one message at a time, keeping its window between messages as
/// a peer with context takeover does (one raw stream, each message ended by the tail).
fn independent_inflate(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut stream = Vec::new();
    let mut ends = Vec::new();
    let mut decompress = flate2::Decompress::new(false);
    let mut out = vec![0; 1 << 20];
    for compressed in messages {
        stream.clear();
        stream.extend_from_slice(compressed);
        stream.extend_from_slice(&TAIL);
        let before = decompress.total_out();
        decompress
            .decompress(&stream, &mut out, flate2::FlushDecompress::Sync)
            .expect("our output is valid DEFLATE");
        ends.push(out[..(decompress.total_out() - before) as usize].to_vec());
    }
    ends
}

#[test]
fn an_independent_inflater_reads_what_we_compress() {
    for takeover in [true, false] {
        for bits in [None, Some(9), Some(12)] {
            let agreed = params(takeover, bits);
            let mut codec = Codec::new(&agreed, &Deflate::default(), true);
            let mut engines = Engines::default();
            let sent: Vec<Vec<u8>> = (0..50).map(message).collect();
            let wire: Vec<Vec<u8>> = sent
                .iter()
                .map(|m| {
                    let mut out = Vec::new();
                    codec.deflate(&mut engines, m, &mut out);
                    assert!(!out.ends_with(&TAIL));
                    out
                })
                .collect();
            assert_eq!(independent_inflate(&wire), sent, "{takeover} {bits:?}");
            // Only without takeover are the shared engines used.
            assert_eq!(engines.len(), usize::from(!takeover));
        }
    }
}

#[test]
fn context_takeover_makes_repeated_messages_smaller() {
    let sizes = |takeover| {
        let mut codec = Codec::new(&params(takeover, None), &Deflate::default(), true);
        let mut engines = Engines::default();
        (0..2)
            .map(|_| {
                let mut out = Vec::new();
                codec.deflate(&mut engines, &message(1), &mut out);
                out.len()
            })
            .collect::<Vec<_>>()
    };
    let with = sizes(true);
    let without = sizes(false);
    assert_eq!(without[0], without[1]);
    // The first message is compressed on its own either way (by another zlib, in a window
    // its size without takeover: within a few bytes).
    assert!(with[0].abs_diff(without[0]) <= 4, "{with:?} {without:?}");
    assert!(with[1] * 3 < with[0], "{with:?}");
}

#[test]
fn we_inflate_what_an_independent_deflater_compresses() {
    // One raw stream with sync flushes: context takeover across the messages.
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    let mut wire = Vec::new();
    for i in 0..20 {
        let start = encoder.get_ref().len();
        encoder.write_all(&message(i)).unwrap();
        encoder.flush().unwrap();
        let flushed = &encoder.get_ref()[start..];
        assert!(flushed.ends_with(&TAIL));
        wire.push(flushed[..flushed.len() - TAIL.len()].to_vec());
    }
    let mut codec = Codec::new(&params(true, None), &Deflate::default(), false);
    let mut engines = Engines::default();
    for (i, compressed) in wire.iter().enumerate() {
        let mut out = Vec::new();
        codec
            .inflate(&mut engines, compressed, &mut out, 1 << 20)
            .unwrap();
        assert_eq!(out, message(i));
    }
    // Without takeover, each message stands alone.
    let mut codec = Codec::new(&params(false, None), &Deflate::default(), false);
    for i in 0..3 {
        let mut alone = Vec::new();
        DeflateEncoder::new(&mut alone, Compression::fast())
            .write_all(&message(i))
            .unwrap();
        let mut out = Vec::new();
        codec
            .inflate(&mut engines, &alone, &mut out, 1 << 20)
            .unwrap();
        assert_eq!(out, message(i), "a final block ends the message");
    }
}

#[test]
fn round_trip_at_every_window_with_both_roles() {
    for bits in 9..=15u8 {
        for takeover in [true, false] {
            let agreed = params(takeover, Some(bits));
            let ours = Deflate::default().mem_level(1 + bits % 9);
            let mut server = Codec::new(&agreed, &ours, true);
            let mut client = Codec::new(&agreed, &ours, false);
            let mut engines = Engines::default();
            for i in 0..20 {
                let text = message(i).repeat(1 + i * 10);
                let mut wire = Vec::new();
                server.deflate(&mut engines, &text, &mut wire);
                let mut out = Vec::new();
                client
                    .inflate(&mut engines, &wire, &mut out, 1 << 20)
                    .unwrap();
                assert_eq!(out, text, "{bits} {takeover} {i}");
            }
        }
    }
}

/// One sync-flushed chunk of zeros repeated `copies` times: each copy refers only to the
/// zeros it writes itself, so the whole inflates to `copies` × `zeros` bytes.
fn bomb(zeros: usize, copies: usize) -> Vec<u8> {
    let mut chunk = Vec::new();
    let mut deflater = Deflater::new(Backend::Rs, 9, 15, 9);
    deflater.compress(&vec![0; zeros], &mut chunk);
    chunk.repeat(copies)
}

#[test]
fn inflating_stops_at_the_limit() {
    let limit = 1 << 20;
    // 1 GiB of zeros in about 1 MB.
    let bomb = bomb(1 << 20, 1 << 10);
    assert!(bomb.len() < 1_100_000, "{}", bomb.len());
    let mut check = vec![1; 2 << 20];
    flate2::Decompress::new(false)
        .decompress(
            &bomb[..bomb.len() / 1024],
            &mut check,
            flate2::FlushDecompress::Sync,
        )
        .expect("the chunk is valid DEFLATE");
    assert!(check[..1 << 20].iter().all(|&b| b == 0) && check[1 << 20] == 1);
    for takeover in [true, false] {
        let mut codec = Codec::new(&params(takeover, None), &Deflate::default(), true);
        let mut engines = Engines::default();
        let mut out = Vec::new();
        assert_eq!(
            codec.inflate(&mut engines, &bomb, &mut out, limit),
            Err(InflateError::TooBig)
        );
        assert_eq!(out.len(), limit);
        assert!(out.capacity() <= limit, "{}", out.capacity());
        // Exactly the limit is fine.
        let mut out = Vec::new();
        let exact = &bomb[..bomb.len() / 1024];
        codec.inflate(&mut engines, exact, &mut out, limit).unwrap();
        assert_eq!(out.len(), limit);
    }
}

#[test]
fn corrupt_data_is_refused_and_the_shared_engine_recovers() {
    let mut codec = Codec::new(&params(false, None), &Deflate::default(), true);
    let mut engines = Engines::default();
    let mut out = Vec::new();
    // Block type 3 is reserved.
    assert_eq!(
        codec.inflate(&mut engines, &[0xFF, 0xFF, 0xFF], &mut out, 1 << 20),
        Err(InflateError::Corrupt)
    );
    let mut wire = Vec::new();
    codec.deflate(&mut engines, b"still works", &mut wire);
    let mut out = Vec::new();
    codec
        .inflate(&mut engines, &wire, &mut out, 1 << 20)
        .unwrap();
    assert_eq!(out, b"still works");
}

#[test]
fn empty_and_incompressible_messages() {
    let agreed = params(true, None);
    let mut server = Codec::new(&agreed, &Deflate::default(), true);
    let mut client = Codec::new(&agreed, &Deflate::default(), false);
    let mut engines = Engines::default();
    let noise: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for payload in [&b""[..], &noise, b"", b"x"] {
        let mut wire = Vec::new();
        server.deflate(&mut engines, payload, &mut wire);
        assert!(wire.len() <= payload.len() + 64);
        let mut out = Vec::new();
        client
            .inflate(&mut engines, &wire, &mut out, 1 << 20)
            .unwrap();
        assert_eq!(out, payload);
    }
}

#[test]
fn windows_out_of_range_in_hand_made_params_are_kept_in_range() {
    let params = Params {
        server_max_window_bits: Some(20),
        client_max_window_bits: Some(20),
        ..Params::default()
    };
    for server in [true, false] {
        let mut codec = Codec::new(&params, &Deflate::default(), server);
        let mut engines = Engines::default();
        let mut wire = Vec::new();
        codec.deflate(&mut engines, &message(1), &mut wire);
        let mut back = Vec::new();
        let mut peer = Codec::new(&params, &Deflate::default(), !server);
        peer.inflate(&mut engines, &wire, &mut back, 1 << 20)
            .expect("inflates");
        assert_eq!(back, message(1));
    }
}

#[test]
fn a_small_window_gets_a_hash_table_no_larger_than_itself() {
    let ours = Deflate::default();
    let levels: Vec<u8> = (9..=15)
        .map(|bits| {
            let how = params(true, Some(bits)).compression(&ours, true).unwrap();
            assert_eq!(how.window_bits, bits);
            how.mem_level
        })
        .collect();
    // Eight hash entries per window byte, up to the default memLevel.
    assert_eq!(levels, [5, 6, 7, 8, 8, 8, 8]);
    // A smaller memLevel asked for is kept.
    let small = params(true, Some(12)).compression(&ours.mem_level(2), true);
    assert_eq!(small.unwrap().mem_level, 2);
}

#[test]
fn a_shared_engine_compresses_in_a_window_no_larger_than_the_message() {
    let agreed = params(false, None)
        .compression(&Deflate::default(), true)
        .unwrap();
    let windows: Vec<u8> = [0, 1, 512, 513, 4096, 4097, 20_000, 40_000, 1 << 20]
        .iter()
        .map(|&len| agreed.for_message(len).window_bits)
        .collect();
    assert_eq!(windows, [9, 9, 9, 10, 12, 13, 15, 15, 15]);
    let capped = params(false, Some(11)).compression(&Deflate::default(), true);
    assert_eq!(capped.unwrap().for_message(1 << 20).window_bits, 11);

    // Whatever the window and zlib chosen, a peer inflates each message on its own.
    let mut engines = Engines::default();
    for len in [10, 600, 3_000, 20_000, 100_000] {
        let text: Vec<u8> = (0..len).map(|i| message(i / 90)[i % 90]).collect();
        let mut compressed = Vec::new();
        engines.compress(agreed, &text, &mut compressed);
        assert!(compressed.len() < text.len().max(20), "{len}");
        assert_eq!(independent_inflate(&[compressed]), [text], "{len}");
    }
}
