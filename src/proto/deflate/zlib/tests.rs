use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use super::*;

/// Counts the bytes each thread holds, so that tests running side by side do not see each
/// other's allocations.
struct PerThread;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: every call is passed on to the system allocator unchanged; the counting touches
// only a const-initialised thread-local without a destructor, which allocates nothing.
unsafe impl GlobalAlloc for PerThread {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.with(|held| held.set(held.get() + layout.size() as isize));
        // SAFETY: as the caller promised for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.with(|held| held.set(held.get() - layout.size() as isize));
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: PerThread = PerThread;

fn held() -> isize {
    HELD.with(Cell::get)
}

const BACKENDS: [Backend; 2] = [Backend::C, Backend::Rs];

/// JSON-like text with some bytes no word has.
fn text(len: usize) -> Vec<u8> {
    let words = [
        "{\"user\":",
        "\"ann\",",
        "\"text\":",
        "hello ",
        "world ",
        "42, ",
        "frame ",
    ];
    let mut x: u32 = 2_463_534_242;
    let mut text = Vec::with_capacity(len + 16);
    while text.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        text.extend_from_slice(words[x as usize % words.len()].as_bytes());
        if x.is_multiple_of(5) {
            text.push((x >> 24) as u8);
        }
    }
    text
}

#[test]
fn the_stated_sizes_are_what_the_streams_hold() {
    let input = text(256 << 10);
    // Output room reserved beforehand: only what the streams allocate is counted.
    let mut compressed = Vec::with_capacity(1 << 20);
    let mut back = Vec::with_capacity(1 << 20);
    for backend in BACKENDS {
        for (window_bits, mem_level) in [(9, 5), (11, 4), (13, 8), (15, 8), (15, 9)] {
            compressed.clear();
            back.clear();
            let before = held();
            let mut deflater = Deflater::new(backend, 6, window_bits, mem_level);
            deflater.compress(&input, &mut compressed);
            let deflating = held() - before;
            let mut inflater = Inflater::new(backend, window_bits);
            let inflated = inflater.inflate(&compressed, &mut back, 1 << 20);
            assert_eq!(inflated, Ok(Inflated::Done));
            assert_eq!(back, input);
            let inflating = held() - before - deflating;
            let stated = (
                backend.deflater_bytes(window_bits, mem_level) as isize,
                backend.inflater_bytes(window_bits) as isize,
            );
            let case = format!("{backend:?} at {window_bits} bits, memLevel {mem_level}");
            assert_eq!((deflating, inflating), stated, "{case}");
        }
    }
}

#[test]
fn each_backend_reads_what_the_other_writes() {
    let input = text(200 << 10);
    for level in [1, 6, 9] {
        for window_bits in [9, 12, 15] {
            for (from, to) in [(Backend::C, Backend::Rs), (Backend::Rs, Backend::C)] {
                let mut deflater = Deflater::new(from, level, window_bits, 8);
                let mut inflater = Inflater::new(to, window_bits);
                // Three messages on one context, as with takeover.
                for part in input.chunks(70 << 10) {
                    let (mut compressed, mut back) = (Vec::new(), Vec::new());
                    deflater.compress(part, &mut compressed);
                    assert_eq!(
                        inflater.inflate(&compressed, &mut back, 1 << 20),
                        Ok(Inflated::Done)
                    );
                    assert!(
                        back == part,
                        "{from:?} → {to:?}, level {level}, {window_bits} bits"
                    );
                }
            }
        }
    }
}

#[test]
fn streams_run_on_c_zlib_where_its_tables_are_smaller() {
    assert_eq!(Backend::for_kept(15, Some(8)), Backend::Rs);
    assert_eq!(Backend::for_kept(15, Some(9)), Backend::Rs);
    assert_eq!(Backend::for_kept(15, None), Backend::Rs);
    assert_eq!(Backend::for_kept(15, Some(7)), Backend::C);
    assert_eq!(Backend::for_kept(14, Some(9)), Backend::C);
    assert_eq!(Backend::for_kept(9, None), Backend::C);
    // Where zlib-rs is chosen it costs at most half again C zlib's.
    let (rs, c) = (Backend::Rs, Backend::C);
    let ratio = (rs.deflater_bytes(15, 8) + rs.inflater_bytes(15)) as f64
        / (c.deflater_bytes(15, 8) + c.inflater_bytes(15)) as f64;
    assert!(ratio < 1.5, "{ratio}");
}

#[test]
fn level_1_on_zlib_rs_compresses_as_c_zlib_does() {
    let input = text(512 << 10);
    let size = |backend| {
        let mut out = Vec::new();
        Deflater::new(backend, 1, 15, 8).compress(&input, &mut out);
        out.len() as f64
    };
    let ratio = size(Backend::Rs) / size(Backend::C);
    assert!(
        (0.95..1.05).contains(&ratio),
        "zlib-rs / C zlib at level 1: {ratio}"
    );
}
