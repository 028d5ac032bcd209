//! Raw DEFLATE (RFC 1951) streams through zlib's C API: the one place that calls it, and the
//! only `unsafe` of the codec. C zlib natively, for its `memLevel`; zlib-rs, which has the
//! same API, in components (and natively with `RUSTFLAGS="--cfg wsbox_zlib_rs"`, to test
//! that backend where tests run).
//!
//! zlib's allocations go through the Rust global allocator (natively by the `zalloc` set
//! here, zlib-rs by its `rust-allocator` feature), so they are counted where Rust memory is.

use std::ffi::c_int;

#[cfg(any(target_family = "wasm", wsbox_zlib_rs))]
use libz_rs_sys as z;
#[cfg(not(any(target_family = "wasm", wsbox_zlib_rs)))]
use libz_sys as z;

/// A raw DEFLATE compressor: no zlib header or checksum (negative `windowBits`).
pub(super) struct Deflater {
    // Boxed: zlib's state points back at the stream, which must therefore not move.
    stream: Box<z::z_stream>,
}

/// A raw DEFLATE decompressor.
pub(super) struct Inflater {
    stream: Box<z::z_stream>,
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

fn blank_stream() -> Box<z::z_stream> {
    #[cfg(any(target_family = "wasm", wsbox_zlib_rs))]
    return Box::default();
    #[cfg(not(any(target_family = "wasm", wsbox_zlib_rs)))]
    Box::new(z::z_stream {
        next_in: std::ptr::null_mut(),
        avail_in: 0,
        total_in: 0,
        next_out: std::ptr::null_mut(),
        avail_out: 0,
        total_out: 0,
        msg: std::ptr::null_mut(),
        state: std::ptr::null_mut(),
        zalloc: rust_alloc::zalloc,
        zfree: rust_alloc::zfree,
        opaque: std::ptr::null_mut(),
        data_type: 0,
        adler: 0,
        reserved: 0,
    })
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
    pub(super) fn new(level: u8, window_bits: u8, mem_level: u8) -> Self {
        let mut stream = blank_stream();
        // SAFETY: `stream` is a zeroed z_stream with valid allocator functions, boxed so it
        // stays put; the version string is zlib's own, the size that of the struct we pass.
        let status = unsafe {
            z::deflateInit2_(
                &mut *stream,
                c_int::from(level),
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
    pub(super) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        loop {
            // Input longer than zlib's `uInt` goes in slices.
            if self.stream.avail_in == 0 && !rest.is_empty() {
                let take = rest.len().min(u32::MAX as usize);
                self.stream.next_in = rest.as_ptr() as _;
                self.stream.avail_in = take as _;
                rest = &rest[take..];
            }
            out.reserve(CHUNK.max(input.len() / 4));
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
    pub(super) fn reset(&mut self) {
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
    pub(super) fn new(window_bits: u8) -> Self {
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
    pub(super) fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<Inflated, CorruptData> {
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
                let want = allowed.min(CHUNK.max(input.len() * 4));
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
                    return Ok(Inflated::LimitReached);
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
                    return Err(CorruptData);
                }
            }
            // Done once all input is in and zlib left output room unused.
            if self.stream.avail_in == 0 && rest.is_empty() && self.stream.avail_out > 0 {
                clear_pointers(&mut self.stream);
                return Ok(Inflated::Done);
            }
        }
    }

    /// Forgets the window: the next message is decompressed on its own.
    pub(super) fn reset(&mut self) {
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

/// zlib's allocator, on the Rust global allocator: each block starts with its size, which
/// `zfree` needs to rebuild the layout.
#[cfg(not(any(target_family = "wasm", wsbox_zlib_rs)))]
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
