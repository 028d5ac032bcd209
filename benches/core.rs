//! Benchmarks of the protocol core: frame headers, masking, UTF-8 validation, and a server
//! `Session` receiving and sending.
//!
//! ```sh
//! cargo bench --bench core -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! `cargo test --all-targets` runs each benchmark once (criterion's test mode), so the
//! inputs are built outside the timed closures and stay small enough for a debug build.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wsbox::Config;
use wsbox::frame::{self, Data, FrameHeader, OpCode};
use wsbox::session::{Event, Session};

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// `payload` as one final frame a client would send (masked), ready for a server session.
fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    frame::encode_frame(&mut wire, true, opcode, Some(MASK), payload);
    wire
}

/// Feeds `wire` (one complete message) to `server`, `read` bytes at a time as from a socket,
/// and takes the message out again, so the session is back where it started for the next
/// iteration.
fn receive_message(server: &mut Session, wire: &[u8], read: usize) -> Event {
    for chunk in wire.chunks(read) {
        server
            .receive(chunk)
            .expect("the benchmark's own frames are valid");
    }
    server
        .poll_event()
        .expect("a complete frame yields its message")
}

fn headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("header");
    let cases = [
        ("7bit", 100u64, None),
        ("16bit_masked", 1000, Some(MASK)),
        ("64bit_masked", 1 << 20, Some(MASK)),
    ];
    for (name, payload_len, mask) in cases {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Data(Data::Binary),
            mask,
            payload_len,
        };
        let mut encoded = Vec::new();
        header.encode(&mut encoded);
        group.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| FrameHeader::parse(black_box(&encoded)))
        });
        let mut out = Vec::with_capacity(frame::MAX_HEADER_LEN);
        group.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| {
                out.clear();
                black_box(header).encode(&mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

/// Unmasking against the byte-at-a-time reference and against a plain copy of the same
/// bytes, the floor any in-place XOR pass is compared with.
fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in [16usize, 1 << 10, 64 << 10, 1 << 20] {
        group.throughput(Throughput::Bytes(size as u64));
        let source: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut buf = source.clone();
        group.bench_with_input(BenchmarkId::new("apply_mask", size), &size, |b, _| {
            b.iter(|| frame::apply_mask(black_box(&mut buf), black_box(MASK), 0))
        });
        group.bench_with_input(BenchmarkId::new("apply_mask_naive", size), &size, |b, _| {
            b.iter(|| frame::apply_mask_naive(black_box(&mut buf), black_box(MASK), 0))
        });
        group.bench_with_input(BenchmarkId::new("memcpy", size), &size, |b, _| {
            b.iter(|| black_box(&mut buf).copy_from_slice(black_box(&source)))
        });
    }
    group.finish();
}

/// A text message through a server session: unmasking plus incremental UTF-8 validation,
/// with a binary message of the same size as the no-validation baseline.
fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("receive_text_64KiB");
    let size = 64 << 10;
    let ascii = "The quick brown fox jumps over the lazy dog. ".repeat(size / 45 + 1);
    let multibyte = "κόσμε 𝄞 данные 數據 ".repeat(size / 36 + 1);
    let inputs = [
        (
            "ascii",
            client_frame(OpCode::Data(Data::Text), &ascii.as_bytes()[..size]),
        ),
        (
            "multibyte",
            client_frame(
                OpCode::Data(Data::Text),
                &multibyte.as_bytes()[..multibyte.floor_char_boundary(size)],
            ),
        ),
        (
            "binary",
            client_frame(OpCode::Data(Data::Binary), &ascii.as_bytes()[..size]),
        ),
    ];
    for (name, wire) in &inputs {
        group.throughput(Throughput::Bytes(wire.len() as u64));
        let mut server = Session::server(Config::default());
        group.bench_function(*name, |b| {
            b.iter(|| receive_message(&mut server, black_box(wire), wire.len()))
        });
    }
    group.finish();
}

fn receive(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_receive");
    let text = client_frame(OpCode::Data(Data::Text), b"0123456789abcdef");
    let binary = client_frame(OpCode::Data(Data::Binary), &vec![0xA5; 64 << 10]);
    let cases = [
        ("text_16B", &text, text.len()),
        ("binary_64KiB", &binary, binary.len()),
        ("binary_64KiB_in_16KiB_reads", &binary, 16 << 10),
    ];
    for (name, wire, read) in cases {
        group.throughput(Throughput::Bytes(wire.len() as u64));
        let mut server = Session::server(Config::default());
        group.bench_function(name, |b| {
            b.iter(|| receive_message(&mut server, black_box(wire), read))
        });
    }
    group.finish();
}

fn send(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_send_binary");
    for size in [16usize, 64 << 10] {
        group.throughput(Throughput::Bytes(size as u64));
        let payload = vec![0x5Au8; size];
        let mut server = Session::server(Config::default());
        let mut wire = Vec::new();
        group.bench_with_input(BenchmarkId::from_parameter(size), &payload, |b, payload| {
            b.iter(|| {
                server
                    .send_binary(black_box(payload))
                    .expect("the session is open");
                wire.clear();
                server.poll_transmit(&mut wire);
                black_box(wire.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, headers, masking, utf8, receive, send);
criterion_main!(benches);
