//! The wasmtime side: one engine with a pooling allocator, the handler compiled and
//! pre-instantiated once, and a [`Guest`] (fresh `Store` + instance) per connection.
//!
//! Guest calls are async calls on fibers, so that no guest holds a tokio worker: at every
//! epoch tick a running guest yields, and resumes only after the worker has run the other
//! ready tasks and polled for I/O and timers. A spinning guest thus delays its neighbours
//! by at most a tick per spinner on the same worker, and WASI calls that wait (files,
//! sleeping) wait as futures instead of failing. `--guest-cpu` bounds the time a call holds
//! its connection, yields excluded: running and waiting in WASI both count.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::cli::{EPOCH_TICK, FIBER_STACK, Settings};

mod stdio;

use stdio::{GuestLog, Which};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "handler-component",
        exports: { default: async },
    });
}

pub use bindings::exports::wsbox::websocket::handler::Reply;
pub use bindings::wsbox::websocket::types::{Limits, Request, Response};
use bindings::{HandlerComponent, HandlerComponentPre};

/// Core instances one component may create: a Rust guest has its module plus the adapter
/// shims wit-component adds.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const TABLES_PER_COMPONENT: u32 = 4;
/// Instances kept beyond `--max-connections`, so that a connection being torn down while
/// its replacement is accepted never finds the pool empty.
const POOL_HEADROOM: u32 = 64;

/// What each connection's store holds.
pub struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    stdout: GuestLog,
    stderr: GuestLog,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Why a guest call failed; each ends the guest's connection.
#[derive(Debug)]
pub enum Fault {
    /// The guest call took longer than `--guest-cpu`, not counting its yields.
    Cpu,
    /// The guest asked for more than `--guest-memory`.
    Memory,
    /// Any other trap (panic, unreachable, …), or the pool ran out of instances.
    Trap(wasmtime::Error),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Cpu => write!(f, "guest exceeded its CPU time per call"),
            Fault::Memory => write!(f, "guest exceeded its memory limit"),
            Fault::Trap(error) => write!(f, "guest failed: {error:#}"),
        }
    }
}

impl From<wasmtime::Error> for Fault {
    fn from(error: wasmtime::Error) -> Self {
        if error.downcast_ref::<OutOfTime>().is_some() {
            Fault::Cpu
        } else if is_memory_limit(&error) {
            Fault::Memory
        } else {
            Fault::Trap(error)
        }
    }
}

/// Raised into the guest by the epoch callback when its call is out of time.
#[derive(Debug)]
struct OutOfTime;

impl std::fmt::Display for OutOfTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the guest call ran out of time")
    }
}

impl std::error::Error for OutOfTime {}

/// `StoreLimits` with `trap_on_grow_failure` reports a denied growth with these messages.
fn is_memory_limit(error: &wasmtime::Error) -> bool {
    let text = format!("{error:#}");
    text.contains("forcing trap when growing memory")
        || text.contains("forcing a memory growth failure")
}

/// The compiled handler, shared by every connection.
pub struct Runtime {
    engine: Engine,
    pre: HandlerComponentPre<Host>,
    guest_memory: usize,
    guest_cpu: Duration,
    dirs: Vec<(std::path::PathBuf, String)>,
    envs: Vec<(String, String)>,
}

impl Runtime {
    /// Compiles `wasm` (a component binary) and links it against async WASI, with stdio
    /// streams into the log (see [`stdio`]). Starts the epoch ticker thread that makes
    /// running guests yield and enforces the CPU limit.
    pub fn new(wasm: &[u8], settings: &Settings) -> wasmtime::Result<Arc<Self>> {
        let instances = u32::try_from(settings.max_connections)
            .unwrap_or(u32::MAX)
            .saturating_add(POOL_HEADROOM);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(4))
            .total_memories(instances)
            .total_tables(instances.saturating_mul(2))
            // A call holds a fiber stack while it runs or is suspended, so every connection
            // may hold one at once (spinning guests, guests waiting in WASI).
            .total_stacks(instances)
            .max_memory_size(settings.guest_memory)
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(1)
            .max_tables_per_component(TABLES_PER_COMPONENT);

        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .concurrency_support(false)
            .memory_reservation(settings.guest_memory as u64)
            .memory_guard_size(0)
            .memory_reservation_for_growth(0)
            .async_stack_size(FIBER_STACK as usize)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let component = Component::new(&engine, wasm)?;
        let mut linker = Linker::<Host>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let pre = HandlerComponentPre::new(linker.instantiate_pre(&component)?)?;

        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| wasmtime::format_err!("cannot start the epoch ticker: {e}"))?;

        Ok(Arc::new(Runtime {
            engine,
            pre,
            guest_memory: settings.guest_memory,
            guest_cpu: settings.guest_cpu,
            dirs: settings.dirs.clone(),
            envs: settings.envs.clone(),
        }))
    }

    /// A fresh instance with its own store and limits, for a connection from `peer`.
    pub async fn instantiate(&self, peer: SocketAddr) -> Result<Guest, Fault> {
        let stdout = GuestLog::new(peer, Which::Stdout);
        let stderr = GuestLog::new(peer, Which::Stderr);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        for (name, value) in &self.envs {
            wasi.env(name, value);
        }
        for (host, guest) in &self.dirs {
            wasi.preopened_dir(host, guest, FsPerms::ReadWrite)?;
        }
        let clock = CallClock::new(self.guest_cpu);
        let host = Host {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(self.guest_memory)
                .trap_on_grow_failure(true)
                .build(),
            stdout,
            stderr,
        };
        let mut store = Store::new(&self.engine, host);
        store.limiter(|host| &mut host.limits);
        let ticking = clock.clone();
        store.epoch_deadline_callback(move |_| ticking.tick());
        store.set_epoch_deadline(1);
        clock.start();
        let bindings = clock.bound(self.pre.instantiate_async(&mut store)).await?;
        Ok(Guest {
            store,
            bindings,
            clock,
        })
    }
}

/// How long the current guest call has held its connection: the time since it started,
/// less the time it spent yielded to other tasks. Shared by the store's epoch callback
/// (which bounds running) and the [`Guest`] (which bounds waiting in WASI).
#[derive(Clone)]
struct CallClock(Arc<ClockState>);

struct ClockState {
    limit: Duration,
    /// Nanoseconds since `base` at which the current call started.
    started: AtomicU64,
    /// Nanoseconds the current call spent yielded.
    yielded: AtomicU64,
    base: Instant,
}

impl CallClock {
    fn new(limit: Duration) -> Self {
        CallClock(Arc::new(ClockState {
            limit,
            started: AtomicU64::new(0),
            yielded: AtomicU64::new(0),
            base: Instant::now(),
        }))
    }

    fn now(&self) -> u64 {
        nanos(self.0.base.elapsed())
    }

    fn start(&self) {
        self.0.started.store(self.now(), Ordering::Relaxed);
        self.0.yielded.store(0, Ordering::Relaxed);
    }

    /// The time the current call has left.
    fn left(&self) -> Duration {
        let held = self
            .now()
            .saturating_sub(self.0.started.load(Ordering::Relaxed))
            .saturating_sub(self.0.yielded.load(Ordering::Relaxed));
        self.0.limit.saturating_sub(Duration::from_nanos(held))
    }

    /// The epoch callback: the guest is running and a tick passed. Out of time, it traps;
    /// otherwise it yields to tokio until the next tick. `yield_now` (rather than waking
    /// itself) lets the worker run every other ready task and poll the I/O and timer
    /// drivers before the guest resumes.
    fn tick(&self) -> wasmtime::Result<UpdateDeadline> {
        if self.left().is_zero() {
            return Err(wasmtime::Error::new(OutOfTime));
        }
        let clock = self.clone();
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                let paused = clock.now();
                tokio::task::yield_now().await;
                let yielded = clock.now().saturating_sub(paused);
                clock.0.yielded.fetch_add(yielded, Ordering::Relaxed);
            }),
        ))
    }

    /// Runs a guest call, and drops it (unwinding the guest) if it waits in WASI past its
    /// time; running past it is the epoch callback's to catch.
    async fn bound<R>(&self, call: impl Future<Output = wasmtime::Result<R>>) -> Result<R, Fault> {
        let mut call = pin!(call);
        let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
        poll_fn(|cx| {
            loop {
                if let Poll::Ready(result) = call.as_mut().poll(cx) {
                    return Poll::Ready(result.map_err(Fault::from));
                }
                // Most calls finish in their first poll and never get here, nor a timer.
                let left = self.left();
                if left.is_zero() {
                    return Poll::Ready(Err(Fault::Cpu));
                }
                let deadline = tokio::time::Instant::now() + left;
                let timer =
                    timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                timer.as_mut().reset(deadline);
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
        })
        .await
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// One connection's instance. After a [`Fault`] the instance is unusable: drop it.
pub struct Guest {
    store: Store<Host>,
    bindings: HandlerComponent,
    clock: CallClock,
}

/// Calls one export the way every export is called: under the call clock (yielding at each
/// tick, bounded by `--guest-cpu`), with stdio lines left unfinished logged afterwards.
macro_rules! call_export {
    ($guest:ident, $export:ident $(, $arg:expr)*) => {{
        $guest.start();
        let handler = $guest.bindings.wsbox_websocket_handler();
        let result = $guest
            .clock
            .bound(handler.$export(&mut $guest.store $(, $arg)*))
            .await;
        $guest.end();
        result
    }};
}

impl Guest {
    pub async fn handle(&mut self, request: &Request, limits: Limits) -> Result<Response, Fault> {
        call_export!(self, call_handle, request, limits)
    }

    pub async fn on_bytes(&mut self, data: &[u8]) -> Result<Reply, Fault> {
        call_export!(self, call_on_bytes, data)
    }

    pub async fn on_close_request(&mut self, code: u16, reason: &str) -> Result<Reply, Fault> {
        call_export!(self, call_on_close_request, code, reason)
    }

    pub async fn on_peer_gone(&mut self) -> Result<(), Fault> {
        call_export!(self, call_on_peer_gone)
    }

    fn start(&mut self) {
        self.clock.start();
        // The first tick after this makes a running guest yield.
        self.store.set_epoch_deadline(1);
    }

    /// Logs stdio lines the call left unfinished.
    fn end(&self) {
        let host = self.store.data();
        host.stdout.end_call();
        host.stderr.end_call();
    }
}
