//! The wasmtime side: one engine with a pooling allocator, the handler compiled and
//! pre-instantiated once, and a [`Sandbox`] (fresh `Store` + instance) per connection,
//! whose store holds the connection's [`State`] for the `connection` imports.
//!
//! Guest calls are async calls on fibers, so that no guest holds a tokio worker: at every
//! epoch tick a running guest yields, and resumes only after the worker has run the other
//! ready tasks and polled for I/O and timers. A spinning guest thus delays its neighbours
//! by at most a tick per spinner on the same worker, and WASI calls that wait (files,
//! sleeping) wait as futures instead of failing. `--guest-cpu` bounds the time a call holds
//! its connection, yields excluded: running and waiting in WASI both count.
//!
//! The handler can be replaced while the runner serves ([`Runtime::reload`]): the engine
//! and its linker stay, each [`Sandbox`] remembers the [`Version`] it was made from, and
//! the connection drops an instance of an old version before its next call.

use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use tracing::warn;

use crate::alloc;
use crate::metrics::METRICS;
use crate::settings::{EPOCH_TICK, FIBER_STACK, Settings};
use crate::state::State;

mod budget;
mod cache;
mod clock;
mod imports;
mod kv;
mod rooms;
mod stdio;

pub use budget::Budget;
use budget::{Limiter, OverBudget, OverLimit};
pub use cache::Cache;
use clock::{CallClock, OutOfTime};
use stdio::{GuestLog, Which};

use crate::wit::bindings::{App, AppPre};
use crate::wit::{Message, Request, Response};

/// Core instances one component may create: a Rust guest has its module plus the adapter
/// shims wit-component adds.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const TABLES_PER_COMPONENT: u32 = 4;
/// Instances kept beyond `--max-instances`, so that a connection being torn down while its
/// replacement is accepted never finds the pool empty.
const POOL_HEADROOM: u32 = 64;

/// How much of a freed instance's linear memory and tables wasmtime resets in place (with
/// memset) instead of returning to the kernel: nothing. Kept pages stay with their slot until
/// it is used again, and with hibernation every slot the pool ever had live at once keeps
/// them: 128 KiB kept cost 176 KB per connection after a burst of 10,000 connections had all
/// hibernated (`wsload conns`), against 4 KB now. The price is page faults on each new
/// instance: handshakes/s 10% lower (9.5k → 8.6k, `wsload handshakes`).
const KEEP_RESIDENT_MEMORY: usize = 0;
const KEEP_RESIDENT_TABLE: usize = 0;
/// How much of a freed fiber stack is zeroed in place and kept (nothing, as above); the
/// rest goes back to the kernel. Without zeroing a stack keeps every page a call ever
/// touched, for good.
const KEEP_RESIDENT_STACK: usize = 0;

/// What each connection's store holds: WASI (stdio into the log, grants from the flags),
/// the store's limits, and the connection as its imports see it.
pub struct StoreData {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limiter,
    stdout: GuestLog,
    stderr: GuestLog,
    state: State,
}

impl WasiView for StoreData {
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
    /// The instance did not fit in `--memory-budget`: a new one could not be made, or
    /// one could not grow within its patience.
    Budget,
    /// `--max-instances` are live.
    Full,
    /// Any other trap (panic, unreachable, …).
    Trap(wasmtime::Error),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Cpu => write!(f, "guest exceeded its CPU time per call"),
            Fault::Memory => write!(f, "guest exceeded its memory limit"),
            Fault::Budget => write!(f, "{OverBudget}"),
            Fault::Full => write!(f, "--max-instances instances are live"),
            Fault::Trap(error) => write!(f, "guest failed: {error:#}"),
        }
    }
}

impl Fault {
    /// Counts the fault by kind, for `--metrics`.
    pub fn count(&self) {
        let m = &METRICS;
        match self {
            Fault::Cpu => m.faults_cpu.inc(),
            Fault::Memory => m.faults_memory.inc(),
            Fault::Budget | Fault::Full => m.faults_budget.inc(),
            Fault::Trap(_) => m.faults_trap.inc(),
        }
    }
}

impl From<wasmtime::Error> for Fault {
    fn from(error: wasmtime::Error) -> Self {
        if error.downcast_ref::<OutOfTime>().is_some() {
            Fault::Cpu
        } else if error.downcast_ref::<OverLimit>().is_some() {
            Fault::Memory
        } else if error.downcast_ref::<OverBudget>().is_some() {
            Fault::Budget
        } else if error
            .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
            .is_some()
        {
            Fault::Full
        } else {
            Fault::Trap(error)
        }
    }
}

/// One compiled and linked handler component.
pub struct Version {
    pre: AppPre<StoreData>,
    /// 1 for the handler the runner started with, then one more per reload.
    pub number: u64,
}

/// The engine and the current handler, shared by every connection.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StoreData>,
    current: RwLock<Arc<Version>>,
    /// `current`'s number, read without the lock before every guest call.
    latest: AtomicU64,
    pub budget: Arc<Budget>,
    guest_memory: usize,
    guest_cpu: Duration,
    guest_log_rate: u64,
    guest_resources: usize,
    dirs: Vec<(std::path::PathBuf, String)>,
    envs: Vec<(String, String)>,
    /// Where compiled handlers are kept (`--cache-dir`); `None`: compiled every time.
    cache: Option<Cache>,
}

impl Runtime {
    /// Compiles `wasm` (a component binary) and links it against async WASI, with stdio
    /// streams into the log (see [`stdio`]). Starts the epoch ticker thread that makes
    /// running guests yield and enforces the CPU limit.
    pub fn new(wasm: &[u8], settings: &Settings) -> wasmtime::Result<Arc<Self>> {
        let instances = u32::try_from(settings.max_instances)
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
            .max_tables_per_component(TABLES_PER_COMPONENT)
            .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
            .table_keep_resident(KEEP_RESIDENT_TABLE)
            .async_stack_keep_resident(KEEP_RESIDENT_STACK);

        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .concurrency_support(false)
            .memory_reservation(settings.guest_memory as u64)
            .memory_guard_size(0)
            .memory_reservation_for_growth(0)
            .async_stack_size(FIBER_STACK as usize)
            .async_stack_zeroing(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let mut linker = Linker::<StoreData>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        App::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        let cache = settings.cache_dir.as_deref().and_then(|dir| {
            Cache::open(dir)
                .inspect_err(
                    |error| warn!(%error, "no compile cache: handlers are compiled at every start"),
                )
                .ok()
        });
        let pre = link(&engine, &linker, cache.as_ref(), wasm)?;

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
            linker,
            current: RwLock::new(Arc::new(Version { pre, number: 1 })),
            latest: AtomicU64::new(1),
            budget: Budget::new(settings.memory_budget),
            guest_memory: settings.guest_memory,
            guest_cpu: settings.guest_cpu,
            guest_log_rate: settings.guest_log_rate,
            guest_resources: settings.guest_resources,
            dirs: settings.dirs.clone(),
            envs: settings.envs.clone(),
            cache,
        }))
    }

    /// The number of the current version.
    pub fn latest(&self) -> u64 {
        self.latest.load(Ordering::Acquire)
    }

    /// Compiles and links `wasm` as the next version, makes one instance of it to be sure
    /// it can be instantiated, and makes it current. On error the current version stays.
    pub async fn reload(&self, wasm: Vec<u8>, state: State) -> wasmtime::Result<u64> {
        let (engine, linker) = (self.engine.clone(), self.linker.clone());
        let cache = self.cache.clone();
        // Compiling takes seconds of CPU: off the workers that serve connections.
        let pre =
            tokio::task::spawn_blocking(move || link(&engine, &linker, cache.as_ref(), &wasm))
                .await
                .map_err(|e| wasmtime::format_err!("compilation stopped: {e}"))??;
        let number = self.latest() + 1;
        let version = Arc::new(Version { pre, number });
        let unassigned = SocketAddr::from(([0, 0, 0, 0], 0));
        self.instantiate_version(&version, unassigned, state)
            .await
            .map_err(|fault| wasmtime::format_err!("{fault}"))?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = version;
        self.latest.store(number, Ordering::Release);
        Ok(number)
    }

    /// A fresh instance of the current version with its own store and limits, for a
    /// connection from `peer`.
    pub async fn instantiate(&self, peer: SocketAddr, state: State) -> Result<Sandbox, Fault> {
        let version = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.instantiate_version(&version, peer, state).await
    }

    async fn instantiate_version(
        &self,
        version: &Version,
        peer: SocketAddr,
        state: State,
    ) -> Result<Sandbox, Fault> {
        // Most of the store's host-side state is allocated here; see `crate::alloc`.
        let _arena = alloc::InstanceArena::enter();
        let stdout = GuestLog::new(peer, Which::Stdout, self.guest_log_rate);
        let stderr = GuestLog::new(peer, Which::Stderr, self.guest_log_rate);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        for (name, value) in &self.envs {
            wasi.env(name, value);
        }
        for (host, guest) in &self.dirs {
            wasi.preopened_dir(host, guest, FsPerms::ReadWrite)?;
        }
        let clock = CallClock::new(self.guest_cpu);
        let mut table = ResourceTable::new();
        table.set_max_capacity(self.guest_resources);
        let state = StoreData {
            wasi: wasi.build(),
            table,
            limits: Limiter::new(self.budget.clone(), self.guest_memory),
            stdout,
            stderr,
            state,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter_async(|state| &mut state.limits);
        let ticking = clock.clone();
        store.epoch_deadline_callback(move |_| ticking.tick());
        store.set_epoch_deadline(1);
        clock.start();
        let bindings = clock
            .bound(version.pre.instantiate_async(&mut store))
            .await?;
        let state = store.data_mut();
        // From now on a growth may wait for the budget as long as the call may run.
        state.limits.patience = self.guest_cpu;
        let initial_memory = state.limits.held();
        Ok(Sandbox {
            store: ManuallyDrop::new(store),
            bindings,
            clock,
            version: version.number,
            initial_memory,
            last_call: Duration::ZERO,
        })
    }
}

/// Compiles `wasm` (or loads it from the `cache`) and links it against WASI and the
/// `connection` interface.
fn link(
    engine: &Engine,
    linker: &Linker<StoreData>,
    cache: Option<&Cache>,
    wasm: &[u8],
) -> wasmtime::Result<AppPre<StoreData>> {
    let component = match cache {
        Some(cache) => cache.component(engine, wasm)?,
        None => Component::new(engine, wasm)?,
    };
    AppPre::new(linker.instantiate_pre(&component)?)
}

/// One connection's instance. After a [`Fault`] the instance is unusable: drop it.
pub struct Sandbox {
    /// Dropped by hand, inside an [`alloc::InstanceArena`]: its blocks go straight back to
    /// their arenas, never into the thread cache that connections allocate from.
    store: ManuallyDrop<Store<StoreData>>,
    bindings: App,
    clock: CallClock,
    /// The [`Version`] it is an instance of.
    pub version: u64,
    /// Linear memory it had once instantiated.
    initial_memory: usize,
    /// How long the last call held its connection, yields excluded.
    last_call: Duration,
}

/// Calls one export the way every export is called: under the call clock (yielding at each
/// tick, bounded by `--guest-cpu`), with stdio lines left unfinished logged afterwards.
macro_rules! call_export {
    ($sandbox:ident, $export:ident $(, $arg:expr)*) => {{
        $sandbox.start();
        let handler = $sandbox.bindings.wsbox_websocket_handler();
        let result = $sandbox
            .clock
            .bound(handler.$export(&mut *$sandbox.store $(, $arg)*))
            .await;
        $sandbox.end();
        result
    }};
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _arena = alloc::InstanceArena::enter();
        // SAFETY: dropped once, here; nothing uses the store after.
        unsafe { ManuallyDrop::drop(&mut self.store) };
    }
}

impl Sandbox {
    pub async fn handle(&mut self, request: &Request) -> Result<Response, Fault> {
        call_export!(self, call_handle, request)
    }

    pub async fn on_open(&mut self) -> Result<(), Fault> {
        call_export!(self, call_on_open)
    }

    pub async fn on_message(&mut self, message: &Message) -> Result<(), Fault> {
        call_export!(self, call_on_message, message)
    }

    pub async fn on_close(&mut self, code: u16, reason: &str, clean: bool) -> Result<(), Fault> {
        call_export!(self, call_on_close, code, reason, clean)
    }

    pub async fn on_alarm(&mut self) -> Result<(), Fault> {
        call_export!(self, call_on_alarm)
    }

    /// Gives a pre-made instance to the connection from `peer` (for its log lines).
    pub fn assign(&mut self, peer: SocketAddr) {
        let state = self.store.data();
        state.stdout.set_peer(peer);
        state.stderr.set_peer(peer);
    }

    pub fn state(&mut self) -> &mut State {
        &mut self.store.data_mut().state
    }

    /// Whether its memory grew past twice what it started with: then it holds more of the
    /// budget than an idle connection needs, and is released at its next idle point.
    pub fn is_bloated(&self) -> bool {
        self.store.data().limits.held() > self.initial_memory.saturating_mul(2)
    }

    fn start(&mut self) {
        self.clock.start();
        // The first tick after this makes a running guest yield.
        self.store.set_epoch_deadline(1);
    }

    /// Logs stdio lines the call left unfinished.
    /// How long the last call held its connection (running or waiting in WASI), the time
    /// it yielded to others excluded: what `--guest-cpu-rate` charges.
    pub fn last_call(&self) -> Duration {
        self.last_call
    }

    fn end(&mut self) {
        self.last_call = self.clock.held();
        let state = self.store.data();
        state.stdout.end_call();
        state.stderr.end_call();
    }
}
