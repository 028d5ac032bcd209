//! The cost of one `session.receive` of a 16-byte masked frame: through wasmtime (a call
//! into wsbox.wasm, lifting the event back out) against the native library. Prints the
//! ratio; run with `cargo run --release -p host-tests --example receive_cost`.
//!
//! A measurement, not a test: this machine is shared and noisy, so only the ratio means
//! anything, and only from one run where both sides were timed back to back.

use std::hint::black_box;
use std::time::{Duration, Instant};

use host_tests::{Guest, Limits, Role};
use wsbox::Config;
use wsbox::session::Session;

const CALLS: u32 = 100_000;
const ROUNDS: usize = 5;

/// A masked binary frame: 2 header bytes, 4 mask bytes, 10 payload bytes.
fn frame() -> Vec<u8> {
    let mut client = Session::client(Config::default(), || [0x12, 0x34, 0x56, 0x78]);
    client
        .send_binary(b"0123456789")
        .expect("a fresh session can send");
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    assert_eq!(wire.len(), 16);
    wire
}

fn native(frame: &[u8]) -> Duration {
    let mut server = Session::server(Config::default());
    let start = Instant::now();
    for _ in 0..CALLS {
        server.receive(black_box(frame)).expect("a valid frame");
        black_box(server.poll_event());
    }
    start.elapsed()
}

fn wasm(guest: &mut Guest, frame: &[u8]) -> wasmtime::Result<Duration> {
    let limits = Limits {
        max_frame_size: 16 << 20,
        max_message_size: 64 << 20,
    };
    let server = guest.session(Role::Server, limits)?;
    let start = Instant::now();
    for _ in 0..CALLS {
        let incoming = guest.receive(server, black_box(frame))?;
        assert_eq!(incoming.events.len(), 1);
        black_box(incoming);
    }
    let elapsed = start.elapsed();
    guest.drop_session(server)?;
    Ok(elapsed)
}

fn main() -> wasmtime::Result<()> {
    let frame = frame();
    let mut guest = Guest::new()?;
    // Warm up both (page faults, compilation caches), then alternate and keep the medians.
    native(&frame);
    wasm(&mut guest, &frame)?;
    let mut natives = Vec::new();
    let mut wasms = Vec::new();
    for _ in 0..ROUNDS {
        natives.push(native(&frame));
        wasms.push(wasm(&mut guest, &frame)?);
    }
    natives.sort();
    wasms.sort();
    let per_call = |d: Duration| d.as_secs_f64() * 1e9 / f64::from(CALLS);
    let (n, w) = (per_call(natives[ROUNDS / 2]), per_call(wasms[ROUNDS / 2]));
    println!("receive of a 16-byte masked frame, median of {ROUNDS} rounds of {CALLS} calls:");
    println!("  native wsbox:        {n:8.1} ns/call");
    println!("  wsbox.wasm/wasmtime: {w:8.1} ns/call");
    println!("  ratio:               {:8.1}x", w / n);
    Ok(())
}
