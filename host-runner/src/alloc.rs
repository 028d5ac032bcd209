//! The runner's allocator: jemalloc, with the host-side state of guest instances kept in
//! an arena of its own, allocated and freed around the thread's block cache.
//!
//! Instances come and go (hibernation drops them), connections stay. Mixed in one heap, a
//! burst of live instances leaves the survivors' small blocks scattered over pages the
//! instances used, and those pages are never given back. Measured with `wsload conns
//! --count 10000` once all 10,000 had hibernated (after being live together): 6.1–7.0 KB
//! per connection in one heap; 4.0–4.3 KB with instances made in their own arena, with the
//! thread's block cache flushed around it and after an instance is dropped (the cache
//! would otherwise hand one arena's blocks to the other); 2.7–3.7 KB when few instances
//! were ever live at once (`--hibernate-after 0`). Without the thread cache at all 4.2–4.6
//! KB, but echo at window 16 was 20–25% slower.
//!
//! Those flushes cost more than a profile showed (3.5% of the samples under `wsload
//! handshakes`): each emptied the thread's cache, and the hundreds of allocations after it
//! refilled it from the arenas' locked bins. Now, while a thread makes or drops an instance
//! ([`InstanceArena`]), its allocations and frees bypass the thread's cache
//! (`MALLOCX_TCACHE_NONE`), allocations in the instance arena: the cache never holds an
//! instance's blocks, so it is never flushed. Measured against the flushes, runner pinned to
//! one core, both in one run: 7,380–7,530 handshakes/s against 5,750–5,880 (`wsload handshakes
//! --conns 4`; 132 µs of CPU each against 169), a 10,000-connect burst at 8,250/s against
//! 6,560/s, a wake and hibernation 57 µs of CPU against 73 (echo, 100 connections, 16 B, at
//! `--hibernate-after 0` minus live), live echo unchanged (6.65 µs a message against 6.75),
//! and the same 5.0–5.1 KB per hibernated connection at 10,000. Routing them through an
//! explicit cache of each thread's for the instance arena (`tcache.create`) was no faster,
//! and held 6.2 KB per hibernated connection (that cache recycled other arenas' blocks into
//! instances).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ffi::{CStr, c_int, c_void};
use std::sync::OnceLock;

use tikv_jemalloc_sys::{
    MALLOCX_ALIGN, MALLOCX_ARENA, MALLOCX_TCACHE_NONE, MALLOCX_ZERO, mallctl, mallocx, rallocx,
    sdallocx,
};
use tikv_jemallocator::Jemalloc;

/// jemalloc, whose background thread gives freed pages back to the kernel a second after
/// they were freed. Measured as above: glibc malloc kept 20 KB per connection of the freed
/// instances' host-side state (its arenas return only their tops); with `malloc_trim`
/// every few seconds 8 KB; mimalloc 20 KB.
#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

/// Read by jemalloc at startup. Dirty pages decay in 1 s (default 10 s) so that the memory
/// of a burst of hibernations is returned soon after. Blocks up to 128 KiB (default 32 KiB)
/// are cached per thread: 64 KiB messages took 9% more CPU each without (as much as with
/// glibc malloc, measured against it with `compare.sh`).
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,tcache_max:131072\0";

const CREATE_ARENA: &CStr = c"arenas.create";

/// jemalloc, with the flags of [`InstanceArena`] added while one is alive on the thread.
pub struct Allocator;

// For the allocator's own use: a const initialiser and no destructor, so that reading it
// allocates nothing and works at any point of a thread's life.
thread_local! {
    /// While an [`InstanceArena`] is alive, the `mallocx` flags of an allocation: the
    /// instance arena, no thread cache. Zero otherwise.
    static INSTANCE_FLAGS: Cell<c_int> = const { Cell::new(0) };
}

fn instance_flags() -> c_int {
    INSTANCE_FLAGS.with(Cell::get)
}

/// The alignment flag jemalloc needs for `layout` (none where `malloc`'s alignment does), as
/// `tikv_jemallocator` computes it (its `layout_to_flags` is private). 16 is
/// `_Alignof(max_align_t)` on x86_64 and aarch64; on a target where it is 8 this would
/// under-align 16-byte blocks, so the runner must not be built there unchanged.
fn align_flags(align: usize, size: usize) -> c_int {
    if align <= 16 && align <= size {
        0
    } else {
        MALLOCX_ALIGN(align)
    }
}

// SAFETY: every path is jemalloc's `mallocx` family (or `tikv_jemallocator`, which calls
// it) with the caller's layout; the extra flags only choose the arena and skip the cache.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match instance_flags() {
            // SAFETY: as the caller promised for `layout`.
            0 => unsafe { Jemalloc.alloc(layout) },
            // SAFETY: `layout` has a non-zero size, as the caller promised.
            flags => unsafe {
                mallocx(
                    layout.size(),
                    flags | align_flags(layout.align(), layout.size()),
                )
                .cast()
            },
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match instance_flags() {
            // SAFETY: as the caller promised for `layout`.
            0 => unsafe { Jemalloc.alloc_zeroed(layout) },
            // SAFETY: as in `alloc`.
            flags => unsafe {
                let flags = flags | align_flags(layout.align(), layout.size()) | MALLOCX_ZERO;
                mallocx(layout.size(), flags).cast()
            },
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match instance_flags() {
            // SAFETY: `ptr` was allocated by this allocator with `layout`.
            0 => unsafe { Jemalloc.dealloc(ptr, layout) },
            // Straight back to the block's own arena, whichever it is.
            // SAFETY: as above.
            _ => unsafe {
                let flags = MALLOCX_TCACHE_NONE | align_flags(layout.align(), layout.size());
                sdallocx(ptr.cast(), layout.size(), flags)
            },
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match instance_flags() {
            // SAFETY: as the caller promised for `ptr`, `layout` and `new_size`.
            0 => unsafe { Jemalloc.realloc(ptr, layout, new_size) },
            // SAFETY: as above.
            flags => unsafe {
                rallocx(
                    ptr.cast(),
                    new_size,
                    flags | align_flags(layout.align(), new_size),
                )
                .cast()
            },
        }
    }
}

/// The arena for instances, made on first use; `None` if jemalloc refused.
fn instance_arena() -> Option<u32> {
    static ARENA: OnceLock<Option<u32>> = OnceLock::new();
    *ARENA.get_or_init(|| {
        let mut arena: u32 = 0;
        let mut len = size_of::<u32>();
        // SAFETY: `arenas.create` writes an unsigned (u32) into `arena`, whose size we pass;
        // it reads nothing.
        let status = unsafe {
            mallctl(
                CREATE_ARENA.as_ptr(),
                (&raw mut arena).cast::<c_void>(),
                &raw mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        (status == 0).then_some(arena)
    })
}

/// While alive, this thread allocates in the instance arena and frees to the blocks' own
/// arenas, bypassing its cache. Make one around whatever makes or drops an instance's
/// host-side state.
pub struct InstanceArena {
    previous: c_int,
}

impl InstanceArena {
    pub fn enter() -> Self {
        let flags = match instance_arena() {
            Some(arena) => MALLOCX_ARENA(arena as usize) | MALLOCX_TCACHE_NONE,
            // jemalloc refused: one heap, as with `malloc`.
            None => 0,
        };
        InstanceArena {
            previous: INSTANCE_FLAGS.replace(flags),
        }
    }
}

impl Drop for InstanceArena {
    fn drop(&mut self) {
        INSTANCE_FLAGS.set(self.previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_sets_the_flags_and_puts_them_back() {
        assert_eq!(instance_flags(), 0);
        {
            let _outer = InstanceArena::enter();
            let flags = instance_flags();
            assert_ne!(flags, 0, "jemalloc made an arena");
            {
                let _inner = InstanceArena::enter();
                assert_eq!(instance_flags(), flags);
            }
            assert_eq!(instance_flags(), flags);
        }
        assert_eq!(instance_flags(), 0);
    }

    #[repr(align(64))]
    struct Aligned(u8);

    #[test]
    fn blocks_move_across_the_guard_in_both_directions() {
        let mut outside = vec![1u8; 100];
        let (mut inside, aligned) = {
            let _guard = InstanceArena::enter();
            // Grown (reallocated) and freed inside, made outside.
            outside.extend_from_slice(&[2; 5000]);
            drop(std::mem::take(&mut outside));
            (vec![3u8; 100], Box::new(Aligned(4)))
        };
        assert_eq!((&raw const *aligned).addr() % 64, 0);
        assert_eq!(aligned.0, 4);
        // Grown and freed outside, made inside.
        inside.extend_from_slice(&[5; 5000]);
        assert_eq!((inside[99], inside[100]), (3, 5));
    }

    #[test]
    fn blocks_made_inside_come_from_the_instance_arena() {
        let arena = instance_arena().expect("an arena can be made");
        let inside = {
            let _guard = InstanceArena::enter();
            vec![0u8; 200]
        };
        let outside = Box::new([0u8; 200]);
        assert_eq!(arena_of(inside.as_ptr()), Some(arena));
        assert_ne!(arena_of(outside.as_ptr()), Some(arena));
    }

    fn arena_of(ptr: *const u8) -> Option<u32> {
        let mut arena: u32 = 0;
        let mut len = size_of::<u32>();
        let mut ptr = ptr.cast::<c_void>();
        // SAFETY: `arenas.lookup` reads a pointer and writes an unsigned (u32).
        let status = unsafe {
            mallctl(
                c"arenas.lookup".as_ptr(),
                (&raw mut arena).cast::<c_void>(),
                &raw mut len,
                (&raw mut ptr).cast::<c_void>(),
                size_of::<*const c_void>(),
            )
        };
        (status == 0).then_some(arena)
    }
}
