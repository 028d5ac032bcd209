//! The runner's allocator: jemalloc, with the host-side state of guest instances kept in
//! an arena of its own.
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

use std::ffi::{CStr, c_void};
use std::sync::OnceLock;

use tikv_jemalloc_sys::mallctl;

/// jemalloc, whose background thread gives freed pages back to the kernel a second after
/// they were freed. Measured as above: glibc malloc kept 20 KB per connection of the freed
/// instances' host-side state (its arenas return only their tops); with `malloc_trim`
/// every few seconds 8 KB; mimalloc 20 KB.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Read by jemalloc at startup. Dirty pages decay in 1 s (default 10 s) so that the memory
/// of a burst of hibernations is returned soon after. Blocks up to 128 KiB (default 32 KiB)
/// are cached per thread: 64 KiB messages took 9% more CPU each without (as much as with
/// glibc malloc, measured against it with `compare.sh`).
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,tcache_max:131072\0";

const CREATE: &CStr = c"arenas.create";
const THREAD_ARENA: &CStr = c"thread.arena";
const FLUSH: &CStr = c"thread.tcache.flush";

/// Returns the blocks this thread's cache holds to their arenas.
pub fn flush_thread_cache() {
    // SAFETY: `thread.tcache.flush` takes and returns nothing.
    unsafe {
        mallctl(
            FLUSH.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
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
                CREATE.as_ptr(),
                (&raw mut arena).cast::<c_void>(),
                &raw mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        (status == 0).then_some(arena)
    })
}

/// Sets this thread's arena, returning the one it had.
fn swap_thread_arena(arena: u32) -> Option<u32> {
    let mut previous: u32 = 0;
    let mut len = size_of::<u32>();
    let mut new = arena;
    // SAFETY: `thread.arena` is an unsigned (u32) read into `previous` and written from
    // `new`, both live locals whose sizes we pass.
    let status = unsafe {
        mallctl(
            THREAD_ARENA.as_ptr(),
            (&raw mut previous).cast::<c_void>(),
            &raw mut len,
            (&raw mut new).cast::<c_void>(),
            size_of::<u32>(),
        )
    };
    (status == 0).then_some(previous)
}

/// While alive, this thread allocates in the instance arena. Frees go to
/// whichever arena allocated, so a value made here may be dropped anywhere.
pub struct InstanceArena {
    previous: Option<u32>,
}

impl InstanceArena {
    pub fn enter() -> Self {
        let previous = instance_arena().and_then(swap_thread_arena);
        if previous.is_some() {
            flush_thread_cache();
        }
        InstanceArena { previous }
    }
}

impl Drop for InstanceArena {
    fn drop(&mut self) {
        if let Some(previous) = self.previous {
            swap_thread_arena(previous);
            flush_thread_cache();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> Option<u32> {
        let current = swap_thread_arena(0)?;
        swap_thread_arena(current);
        Some(current)
    }

    #[test]
    fn the_guard_switches_the_arena_and_back() {
        let before = current().expect("jemalloc answers thread.arena");
        let instances = instance_arena().expect("an arena can be made");
        assert_ne!(before, instances);
        {
            let _inside = InstanceArena::enter();
            assert_eq!(current(), Some(instances));
            // Allocating and freeing across the switch is fine.
            drop(vec![0u8; 100]);
        }
        assert_eq!(current(), Some(before));
    }
}
