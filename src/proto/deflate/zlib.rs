//! Raw DEFLATE (RFC 1951) streams through zlib's C API, from two implementations of it: the
//! one place that calls zlib, and the only `unsafe` of the codec.
//!
//! - **zlib-rs** (a Rust port of zlib-ng): 1.4× faster than C zlib at level 6 and 1.6× at
//!   level 1 (asked for as its level 2, below), 2.4–2.7× faster to inflate, the same output
//!   size (2 MB of JSON-like text in 128 KiB messages, this machine). Its tables are fixed at
//!   C zlib's largest (a 64 Ki-entry hash, a 32 KiB inflate window): 380 KiB to compress,
//!   48 KiB to inflate, whatever the window and memLevel.
//! - **C zlib**: its tables follow the window and memLevel, down to 24 KiB to compress and
//!   8 KiB to inflate at 9 bits.
//!
//! A context a connection keeps between messages (takeover) runs on C zlib when its window or
//! memLevel is under what zlib-rs's tables are sized for ([`Backend::for_kept`]); the shared
//! [`Engines`](super::Engines) compress a short message on C zlib in a window no larger than
//! the message ([`Backend::for_shared`]): a shared compressor clears its hash table for each
//! message, and zlib-rs's is always 128 KiB. The rest runs on zlib-rs. Components have
//! zlib-rs only (no C toolchain for wasm32 is assumed).
//!
//! zlib's allocations go through the Rust global allocator (C zlib's by the `zalloc` set
//! here, zlib-rs's by its `rust-allocator` feature), so they are counted where Rust memory is.

/// Shared compressors use zlib-rs from this window up (messages over 2 KiB; below, C zlib's
/// smaller tables are cleared faster than zlib-rs compresses). Measured through the runner
/// (`--deflate shared`, JSON echo, 100 connections, window 1, µs of its CPU per message, one
/// run): C zlib in the agreed 15-bit window as before → now, 256 B 19.9 → 17.6, 1 KiB 29.9 →
/// 24.9, 4 KiB 60.9 → 49.8, 16 KiB 153.5 → 111.4, 64 KiB 485 → 326. zlib-rs in the agreed
/// window for every message took 26.4 at 256 B.
#[cfg(not(target_family = "wasm"))]
const SHARED_ZLIB_RS_FROM: u8 = 12;

/// Which zlib a stream runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    #[cfg(not(target_family = "wasm"))]
    C,
    Rs,
}

impl Backend {
    /// A stream shared between connections, compressing messages of up to `window_bits`
    /// on their own: where zlib-rs's faster compression pays for clearing its larger hash
    /// table for each message.
    // Components have only zlib-rs.
    #[cfg_attr(target_family = "wasm", allow(unused_variables))]
    pub(super) fn for_shared(window_bits: u8) -> Backend {
        #[cfg(not(target_family = "wasm"))]
        if window_bits < SHARED_ZLIB_RS_FROM {
            return Backend::C;
        }
        Backend::Rs
    }

    /// A stream kept by one connection: C zlib where the window or memLevel (`None` for a
    /// decompressor) is under what zlib-rs's fixed tables are sized for; zlib-rs, faster,
    /// otherwise.
    // Components have only zlib-rs.
    #[cfg_attr(target_family = "wasm", allow(unused_variables))]
    pub(super) fn for_kept(window_bits: u8, mem_level: Option<u8>) -> Backend {
        #[cfg(not(target_family = "wasm"))]
        if window_bits < super::MAX_WINDOW_BITS || mem_level.is_some_and(|m| m < 8) {
            return Backend::C;
        }
        Backend::Rs
    }

    /// What a compressor with these settings holds, as measured with a counting allocator
    /// (zlib 1.3.1, zlib-rs 0.6.8): the window and its chain, twice the window's bytes
    /// each; C zlib's hash and pending buffer, 2^(memLevel+8) each; zlib-rs's fixed 128 KiB
    /// hash and its buffers, 7 × 2^(memLevel+6).
    pub(super) fn deflater_bytes(self, window_bits: u8, mem_level: u8) -> usize {
        let (window, mem) = (1usize << window_bits, 1usize << mem_level);
        match self {
            #[cfg(not(target_family = "wasm"))]
            Backend::C => 4 * window + 512 * mem + 6_160,
            Backend::Rs => 4 * window + (128 << 10) + 448 * mem + 3_312,
        }
    }

    /// What a decompressor with this window holds, measured as above: C zlib's window plus
    /// its state; zlib-rs's, whatever the window.
    // zlib-rs's size does not depend on the window, and components have only zlib-rs.
    #[cfg_attr(target_family = "wasm", allow(unused_variables))]
    pub(super) fn inflater_bytes(self, window_bits: u8) -> usize {
        match self {
            #[cfg(not(target_family = "wasm"))]
            Backend::C => (1 << window_bits) + 7_320,
            Backend::Rs => 47_664,
        }
    }
}

/// Input zlib rejected as not a valid DEFLATE stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CorruptData;

/// How far [`Inflater::inflate`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inflated {
    /// All input was used and all output produced.
    Done,
    /// The output reached its limit with more to come.
    LimitReached,
}

// Some output room for each call into zlib: about a socket read's worth.
const CHUNK: usize = 16 << 10;

/// Defines a backend's `Deflater` and `Inflater` over the zlib API in scope as `z`, with
/// `blank_stream` and `level_for` from the invoking module.
macro_rules! streams {
    () => {
        /// A raw DEFLATE compressor on this backend: no zlib header or checksum (negative
        /// `windowBits`).
        pub(crate) struct Deflater {
            // Boxed: zlib's state points back at the stream, which must therefore not move.
            stream: Box<z::z_stream>,
        }

        /// A raw DEFLATE decompressor.
        pub(crate) struct Inflater {
            stream: Box<z::z_stream>,
        }

        /// Leaves no pointer into the caller's buffers behind in the stream once a call returns.
        fn clear_pointers(stream: &mut z::z_stream) {
            stream.next_in = std::ptr::null_mut();
            stream.avail_in = 0;
            stream.next_out = std::ptr::null_mut();
            stream.avail_out = 0;
        }

        fn stream_size() -> c_int {
            std::mem::size_of::<z::z_stream>() as c_int
        }

        impl Deflater {
            /// `window_bits` 9–15, `mem_level` 1–9, `level` 0–9, all checked by the caller.
            pub(crate) fn new(level: u8, window_bits: u8, mem_level: u8) -> Self {
                let mut stream = blank_stream();
                // SAFETY: `stream` is a zeroed z_stream with valid allocator functions, boxed so it
                // stays put; the version string is zlib's own, the size that of the struct we pass.
                let status = unsafe {
                    z::deflateInit2_(
                        &mut *stream,
                        level_for(level),
                        z::Z_DEFLATED,
                        -c_int::from(window_bits),
                        c_int::from(mem_level),
                        z::Z_DEFAULT_STRATEGY,
                        z::zlibVersion(),
                        stream_size(),
                    )
                };
                // Only a failed allocation or arguments out of the ranges above make it fail.
                assert_eq!(status, z::Z_OK, "deflateInit2 failed");
                Deflater { stream }
            }

            /// Compresses all of `input` onto the end of `out`, ending with a sync flush (so `out`
            /// ends with the empty stored block `00 00 FF FF`).
            pub(crate) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
                let mut rest = input;
                loop {
                    // Input longer than zlib's `uInt` goes in slices.
                    if self.stream.avail_in == 0 && !rest.is_empty() {
                        let take = rest.len().min(u32::MAX as usize);
                        self.stream.next_in = rest.as_ptr() as _;
                        self.stream.avail_in = take as _;
                        rest = &rest[take..];
                    }
                    out.reserve(super::CHUNK.max(input.len() / 4));
                    let spare = out.spare_capacity_mut();
                    let room = spare.len().min(u32::MAX as usize);
                    self.stream.next_out = spare.as_mut_ptr().cast();
                    self.stream.avail_out = room as _;
                    // SAFETY: next_in/avail_in describe readable input that outlives the call;
                    // next_out/avail_out describe `out`'s spare capacity, which zlib only writes.
                    let status = unsafe { z::deflate(&mut *self.stream, z::Z_SYNC_FLUSH) };
                    let written = room - self.stream.avail_out as usize;
                    // SAFETY: zlib initialised the first `written` bytes of the spare capacity.
                    unsafe { out.set_len(out.len() + written) };
                    debug_assert!(status == z::Z_OK || status == z::Z_BUF_ERROR);
                    // A sync flush is complete once zlib leaves output room unused.
                    if self.stream.avail_in == 0 && rest.is_empty() && self.stream.avail_out > 0 {
                        break;
                    }
                }
                clear_pointers(&mut self.stream);
            }

            /// Forgets the window: the next message is compressed on its own.
            pub(crate) fn reset(&mut self) {
                // SAFETY: the stream was initialised by deflateInit2_.
                unsafe { z::deflateReset(&mut *self.stream) };
            }
        }

        impl Drop for Deflater {
            fn drop(&mut self) {
                // SAFETY: the stream was initialised by deflateInit2_ and is ended once.
                unsafe { z::deflateEnd(&mut *self.stream) };
            }
        }

        impl Inflater {
            /// `window_bits` 9–15, checked by the caller.
            pub(crate) fn new(window_bits: u8) -> Self {
                let mut stream = blank_stream();
                // SAFETY: as in `Deflater::new`.
                let status = unsafe {
                    z::inflateInit2_(
                        &mut *stream,
                        -c_int::from(window_bits),
                        z::zlibVersion(),
                        stream_size(),
                    )
                };
                assert_eq!(status, z::Z_OK, "inflateInit2 failed");
                Inflater { stream }
            }

            /// Decompresses `input` onto the end of `out`, which never grows past `limit` bytes.
            /// `LimitReached` when there is more output than that: the rest of the input is then
            /// left unread and the stream must be reset before its next use.
            pub(crate) fn inflate(
                &mut self,
                input: &[u8],
                out: &mut Vec<u8>,
                limit: usize,
            ) -> Result<super::Inflated, super::CorruptData> {
                let mut rest = input;
                loop {
                    if self.stream.avail_in == 0 {
                        let take = rest.len().min(u32::MAX as usize);
                        self.stream.next_in = rest.as_ptr() as _;
                        self.stream.avail_in = take as _;
                        rest = &rest[take..];
                    }
                    let allowed = limit.saturating_sub(out.len());
                    // At the limit, one byte of scratch room tells whether anything is left to come.
                    let mut scratch = [0u8; 1];
                    let room = if allowed == 0 {
                        self.stream.next_out = scratch.as_mut_ptr();
                        1
                    } else {
                        // Amortised growth, but never a capacity past the limit: `reserve` alone
                        // could double a buffer just under the limit to twice the limit.
                        let want = allowed.min(super::CHUNK.max(input.len() * 4));
                        if out.capacity() - out.len() < want {
                            let grown = out.capacity().saturating_mul(2).min(limit) - out.len();
                            out.reserve_exact(grown.max(want));
                        }
                        let spare = out.spare_capacity_mut();
                        self.stream.next_out = spare.as_mut_ptr().cast();
                        spare.len().min(allowed).min(u32::MAX as usize)
                    };
                    self.stream.avail_out = room as _;
                    // SAFETY: next_in/avail_in describe `input`, which outlives the call; next_out/
                    // avail_out describe `out`'s spare capacity (or `scratch`), which zlib only writes.
                    let status = unsafe { z::inflate(&mut *self.stream, z::Z_SYNC_FLUSH) };
                    let written = room - self.stream.avail_out as usize;
                    if allowed == 0 {
                        if written > 0 {
                            clear_pointers(&mut self.stream);
                            return Ok(super::Inflated::LimitReached);
                        }
                    } else {
                        // SAFETY: zlib initialised the first `written` bytes of the spare capacity.
                        unsafe { out.set_len(out.len() + written) };
                    }
                    match status {
                        z::Z_OK | z::Z_BUF_ERROR => {}
                        // A final block ends the stream; what follows starts a new one (RFC 7692
                        // §7.2.3.3 lets a sender end a message that way).
                        z::Z_STREAM_END => self.reset(),
                        _ => {
                            clear_pointers(&mut self.stream);
                            return Err(super::CorruptData);
                        }
                    }
                    // Done once all input is in and zlib left output room unused.
                    if self.stream.avail_in == 0 && rest.is_empty() && self.stream.avail_out > 0 {
                        clear_pointers(&mut self.stream);
                        return Ok(super::Inflated::Done);
                    }
                }
            }

            /// Forgets the window: the next message is decompressed on its own.
            pub(crate) fn reset(&mut self) {
                // SAFETY: the stream was initialised by inflateInit2_.
                unsafe { z::inflateReset(&mut *self.stream) };
            }
        }

        impl Drop for Inflater {
            fn drop(&mut self) {
                // SAFETY: the stream was initialised by inflateInit2_ and is ended once.
                unsafe { z::inflateEnd(&mut *self.stream) };
            }
        }

        // zlib streams are used by one thread at a time; nothing in them is tied to a thread.
        // SAFETY: the raw pointers in z_stream point into memory owned by the stream itself (its
        // state) or are cleared after each call (next_in, next_out).
        unsafe impl Send for Deflater {}
        // SAFETY: as for Deflater.
        unsafe impl Send for Inflater {}
    };
}

/// C zlib.
#[cfg(not(target_family = "wasm"))]
mod c {
    use libz_sys as z;
    use std::ffi::c_int;

    fn blank_stream() -> Box<z::z_stream> {
        Box::new(z::z_stream {
            next_in: std::ptr::null_mut(),
            avail_in: 0,
            total_in: 0,
            next_out: std::ptr::null_mut(),
            avail_out: 0,
            total_out: 0,
            msg: std::ptr::null_mut(),
            state: std::ptr::null_mut(),
            zalloc: super::rust_alloc::zalloc,
            zfree: super::rust_alloc::zfree,
            opaque: std::ptr::null_mut(),
            data_type: 0,
            adler: 0,
            reserved: 0,
        })
    }

    fn level_for(level: u8) -> c_int {
        c_int::from(level)
    }

    streams!();
}

/// zlib-rs.
mod rs {
    use libz_rs_sys as z;
    use std::ffi::c_int;

    fn blank_stream() -> Box<z::z_stream> {
        Box::default()
    }

    /// zlib-rs's level 1 is zlib-ng's "quick" strategy (static Huffman codes only): 30% more
    /// bytes than C zlib's level 1 on JSON-like text. Its level 2 is C zlib's level 1
    /// algorithm (within 2% of its size) at 1.6× less CPU, so level 1 is asked for as 2.
    fn level_for(level: u8) -> c_int {
        c_int::from(if level == 1 { 2 } else { level })
    }

    streams!();
}

/// A raw DEFLATE compressor: no zlib header or checksum (negative `windowBits`).
pub(super) enum Deflater {
    #[cfg(not(target_family = "wasm"))]
    C(c::Deflater),
    Rs(rs::Deflater),
}

/// A raw DEFLATE decompressor.
pub(super) enum Inflater {
    #[cfg(not(target_family = "wasm"))]
    C(c::Inflater),
    Rs(rs::Inflater),
}

/// Calls the same method on whichever backend a stream runs on.
macro_rules! on_backend {
    ($stream:expr, $inner:ident => $call:expr) => {
        match $stream {
            #[cfg(not(target_family = "wasm"))]
            Self::C($inner) => $call,
            Self::Rs($inner) => $call,
        }
    };
}

impl Deflater {
    /// `window_bits` 9–15, `mem_level` 1–9, `level` 0–9, all checked by the caller.
    pub(super) fn new(backend: Backend, level: u8, window_bits: u8, mem_level: u8) -> Self {
        match backend {
            #[cfg(not(target_family = "wasm"))]
            Backend::C => Deflater::C(c::Deflater::new(level, window_bits, mem_level)),
            Backend::Rs => Deflater::Rs(rs::Deflater::new(level, window_bits, mem_level)),
        }
    }

    /// Compresses all of `input` onto the end of `out`, ending with a sync flush (so `out`
    /// ends with the empty stored block `00 00 FF FF`).
    pub(super) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        on_backend!(self, d => d.compress(input, out))
    }

    /// Forgets the window: the next message is compressed on its own.
    pub(super) fn reset(&mut self) {
        on_backend!(self, d => d.reset())
    }
}

impl Inflater {
    /// `window_bits` 9–15, checked by the caller.
    pub(super) fn new(backend: Backend, window_bits: u8) -> Self {
        match backend {
            #[cfg(not(target_family = "wasm"))]
            Backend::C => Inflater::C(c::Inflater::new(window_bits)),
            Backend::Rs => Inflater::Rs(rs::Inflater::new(window_bits)),
        }
    }

    /// Decompresses `input` onto the end of `out`, which never grows past `limit` bytes.
    /// `LimitReached` when there is more output than that: the rest of the input is then
    /// left unread and the stream must be reset before its next use.
    pub(super) fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<Inflated, CorruptData> {
        on_backend!(self, i => i.inflate(input, out, limit))
    }

    /// Forgets the window: the next message is decompressed on its own.
    pub(super) fn reset(&mut self) {
        on_backend!(self, i => i.reset())
    }
}

/// zlib's allocator, on the Rust global allocator: each block starts with its size, which
/// `zfree` needs to rebuild the layout.
#[cfg(not(target_family = "wasm"))]
mod rust_alloc {
    use std::alloc::{Layout, alloc, dealloc};
    use std::ffi::c_void;

    // Room for the size, keeping the block aligned as malloc would.
    const HEADER: usize = 16;

    pub(super) unsafe extern "C" fn zalloc(_: *mut c_void, items: u32, size: u32) -> *mut c_void {
        let Some(total) = (items as usize)
            .checked_mul(size as usize)
            .and_then(|bytes| bytes.checked_add(HEADER))
        else {
            return std::ptr::null_mut();
        };
        let Ok(layout) = Layout::from_size_align(total, HEADER) else {
            return std::ptr::null_mut();
        };
        // SAFETY: the layout has a non-zero size (it includes the header).
        let block = unsafe { alloc(layout) };
        if block.is_null() {
            return block.cast();
        }
        // SAFETY: the block is at least HEADER bytes, aligned for a usize.
        unsafe {
            block.cast::<usize>().write(total);
            block.add(HEADER).cast()
        }
    }

    pub(super) unsafe extern "C" fn zfree(_: *mut c_void, address: *mut c_void) {
        if address.is_null() {
            return;
        }
        // SAFETY: `address` came from `zalloc`, so HEADER bytes before it hold the size of
        // a block allocated with this layout.
        unsafe {
            let block = address.cast::<u8>().sub(HEADER);
            let total = block.cast::<usize>().read();
            dealloc(block, Layout::from_size_align_unchecked(total, HEADER));
        }
    }
}

#[cfg(test)]
mod tests;
