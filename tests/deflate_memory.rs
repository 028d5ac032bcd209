//! What permessage-deflate costs in memory, counted by a global allocator: the engines
//! shared by connections without context takeover, and what a connection with takeover
//! keeps between messages. One test, so that nothing else allocates while it counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use wsbox::deflate::{Deflate, Engines, Params};
use wsbox::session::{Event, Session};
use wsbox::{Config, Message};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const TEXT: &str =
    r#"{"id":1,"user":"user-1","event":"price_update","symbol":"ABC","price":101.25}"#;

/// A client/server pair that agreed on `params`, with `deflate` options on both ends, after
/// a few messages both ways; the server shrunk as an idle connection would be.
fn exercised(params: Params, deflate: Deflate, shared: &mut Engines) -> (Session, Session) {
    let config = Config::default().deflate(Some(deflate));
    let mut client = Session::client(config, || [1, 2, 3, 4]).with_deflate(params);
    let mut server = Session::server(config).with_deflate(params);
    for _ in 0..5 {
        client.send_text(TEXT).unwrap();
        let mut wire = Vec::new();
        client.poll_transmit(&mut wire);
        server.swap_engines(shared);
        server.receive(&wire).unwrap();
        let Some(Event::Message(Message::Text(text))) = server.poll_event() else {
            panic!("no message");
        };
        server.send_text(&text).unwrap();
        server.swap_engines(shared);
        wire.clear();
        server.poll_transmit(&mut wire);
        client.receive(&wire).unwrap();
        assert!(client.poll_event().is_some());
    }
    server.shrink_to_fit();
    (client, server)
}

/// Heap bytes a server session keeps after messages: what dropping it frees.
fn server_bytes(params: Option<Params>, deflate: Deflate, shared: &mut Engines) -> isize {
    let (client, server) = match params {
        Some(params) => exercised(params, deflate, shared),
        None => {
            let server = Session::server(Config::default());
            let client = Session::client(Config::default(), || [1, 2, 3, 4]);
            (client, server)
        }
    };
    drop(client);
    let with = live();
    drop(server);
    with - live()
}

#[test]
fn deflate_memory() {
    let mut report = Vec::new();
    // Warm up: whatever the first use of anything allocates once.
    let _ = server_bytes(
        Some(Params::default()),
        Deflate::default(),
        &mut Engines::default(),
    );

    // The shared engines: built once per thread, whatever the number of connections.
    for (level, bits, mem) in [(6, 15, 8), (1, 15, 8), (1, 11, 4)] {
        let mut shared = Engines::default();
        let before = live();
        let no_takeover = Params {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..Params::default()
        };
        let deflate = Deflate::default()
            .level(level)
            .max_window_bits(bits)
            .mem_level(mem);
        let kept = server_bytes(Some(no_takeover), deflate, &mut shared);
        let engines = live() - before;
        report.push(format!(
            "shared engines (level {level}, window {bits}, memLevel {mem}): {engines} B; \
             per idle connection: {kept} B"
        ));
        assert_eq!(kept, 0, "an idle connection without takeover keeps nothing");
        assert_eq!(shared.len(), 2);
    }

    // Context takeover: each connection keeps its own compressor and decompressor, as
    // `Deflate::takeover_state` says (the runner states its bound with it).
    let plain = server_bytes(None, Deflate::default(), &mut Engines::default());
    for (bits, mem) in [(15, 8), (12, 5), (11, 4), (10, 3), (9, 1)] {
        let params = Params {
            server_max_window_bits: Some(bits),
            client_max_window_bits: Some(bits),
            ..Params::default()
        };
        let deflate = Deflate::default().max_window_bits(bits).mem_level(mem);
        let kept = server_bytes(Some(params), deflate, &mut Engines::default());
        report.push(format!(
            "context takeover, window {bits}, memLevel {mem}: {kept} B per connection"
        ));
        let stated = deflate.takeover_state() as isize;
        assert_eq!(kept - plain, stated, "window {bits}, memLevel {mem}");
        if bits <= 11 {
            assert!(
                kept <= 50 << 10,
                "{kept} bytes at window {bits}, memLevel {mem}"
            );
        }
    }
    report.push(format!("no deflate: {plain} B per idle connection"));
    report.push(format!(
        "size_of::<Session>(): {} B",
        std::mem::size_of::<Session>()
    ));
    // Shown with --nocapture: the figures for the report.
    println!("{}", report.join("\n"));
}
