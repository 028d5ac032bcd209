//! Throughput on this machine's disk, printed, not asserted (`--nocapture` to see it):
//! 8 threads setting 100-byte values (each awaiting its write; then each with 64 in flight),
//! and 8 threads getting random keys. Counts are fixed, so the test is bounded in time.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{block_on, join_all, on_disk};
use wsbox_store::Store;

const THREADS: usize = 8;

fn per_second(n: usize, since: Instant) -> f64 {
    n as f64 / since.elapsed().as_secs_f64()
}

/// Runs `work(thread)` on 8 threads at once; returns how long they took together.
fn on_threads(store: &Store, work: impl Fn(Store, usize) + Send + Sync + 'static) -> Instant {
    let work = Arc::new(work);
    let start = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, work) = (store.clone(), work.clone());
            std::thread::spawn(move || work(store, t))
        })
        .collect();
    for thread in threads {
        thread.join().expect("worker");
    }
    start
}

#[test]
fn throughput_on_disk() {
    let dir = tempfile::tempdir_in(
        std::env::var_os("STORE_BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()),
    )
    .expect("temp dir");
    let store = Store::open(on_disk(dir.path())).expect("open");
    let value = vec![0x5a; 100];

    // Each thread awaits every write: a commit carries at most 8 writes.
    const AWAITED: usize = 250;
    let v = value.clone();
    let start = on_threads(&store, move |store, t| {
        for i in 0..AWAITED {
            block_on(store.set(
                &format!("room-{t}"),
                &format!("awaited-{i}"),
                v.clone(),
                None,
            ))
            .expect("set");
        }
    });
    let awaited = per_second(THREADS * AWAITED, start);
    let before = store.stats();

    // Each thread keeps 64 writes in flight, like 64 guests of one worker thread.
    const PIPELINED: usize = 5_000;
    let v = value.clone();
    let start = on_threads(&store, move |store, t| {
        for chunk in 0..PIPELINED / 64 {
            let writes: Vec<_> = (0..64)
                .map(|i| {
                    store.set(
                        &format!("room-{t}"),
                        &format!("key-{:06}", chunk * 64 + i),
                        v.clone(),
                        None,
                    )
                })
                .collect();
            for result in join_all(writes) {
                result.expect("set");
            }
        }
    });
    let written = THREADS * (PIPELINED / 64) * 64;
    let pipelined = per_second(written, start);
    let after = store.stats();
    let per_commit = (after.writes_batched - before.writes_batched) as f64
        / (after.commits - before.commits) as f64;

    const GETS: usize = 50_000;
    let start = on_threads(&store, move |store, t| {
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ t as u64;
        for _ in 0..GETS {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = format!("key-{:06}", x % (PIPELINED / 64 * 64) as u64);
            let room = format!("room-{}", (x >> 32) % THREADS as u64);
            assert!(store.get(&room, &key).expect("get").is_some());
        }
    });
    let gets = per_second(THREADS * GETS, start);

    println!(
        "throughput ({} build, 8 threads, 100-byte values, on disk): \
         sets awaited one by one {awaited:.0}/s; \
         sets 64 in flight per thread {pipelined:.0}/s ({per_commit:.0} per fsync'd commit); \
         random gets {gets:.0}/s",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
}
