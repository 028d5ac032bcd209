//! The wasmtime side: one engine with a pooling allocator, the handler compiled and
//! pre-instantiated once, and a [`Guest`] (fresh `Store` + instance) per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::cli::{EPOCH_TICK, Settings};

mod stdio;

use stdio::{GuestLog, Which, WouldBlock};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "handler-component",
    });
}

use bindings::exports::wsbox::websocket::handler::Guest as Handler;
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
    /// The guest ran past `--guest-cpu`.
    Cpu,
    /// The guest asked for more than `--guest-memory`.
    Memory,
    /// Any other trap (panic, unreachable, …), or the pool ran out of instances.
    Trap(wasmtime::Error),
    /// The guest made a WASI call that would have to wait (`poll` or `pollable.block` on
    /// something not ready, a blocking write to a stream that is not ready, …). Guest calls
    /// run directly on the tokio workers, where wasmtime-wasi's sync bindings cannot block,
    /// so such a call ends the connection like a trap. Stdout and stderr never wait: their
    /// lines go to the runner's log (see [`stdio`]).
    Blocking,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Cpu => write!(f, "guest exceeded its CPU time per call"),
            Fault::Memory => write!(f, "guest exceeded its memory limit"),
            Fault::Trap(error) => write!(f, "guest failed: {error:#}"),
            Fault::Blocking => write!(
                f,
                "guest failed: it made a blocking WASI call (poll, …), which handlers \
                 cannot make"
            ),
        }
    }
}

impl From<wasmtime::Error> for Fault {
    fn from(error: wasmtime::Error) -> Self {
        if error.downcast_ref::<WouldBlock>().is_some() {
            Fault::Blocking
        } else if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            Fault::Cpu
        } else if is_memory_limit(&error) {
            Fault::Memory
        } else {
            Fault::Trap(error)
        }
    }
}

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
    deadline_ticks: u64,
    dirs: Vec<(std::path::PathBuf, String)>,
    envs: Vec<(String, String)>,
}

impl Runtime {
    /// Compiles `wasm` (a component binary) and links it against sync WASI, with stdio
    /// streams that never block (see [`stdio`]). Starts the epoch ticker thread that
    /// enforces the CPU limit.
    pub fn new(wasm: &[u8], settings: &Settings) -> wasmtime::Result<Arc<Self>> {
        let instances = u32::try_from(settings.max_connections)
            .unwrap_or(u32::MAX)
            .saturating_add(POOL_HEADROOM);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(4))
            .total_memories(instances)
            .total_tables(instances.saturating_mul(2))
            .total_stacks(0)
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
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let component = Component::new(&engine, wasm)?;
        let mut linker = Linker::<Host>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        stdio::add_nonblocking_streams(&mut linker)?;
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
            // One tick more than the limit: the deadline may start just before a tick.
            deadline_ticks: ticks(settings.guest_cpu) + 1,
            dirs: settings.dirs.clone(),
            envs: settings.envs.clone(),
        }))
    }

    /// A fresh instance with its own store and limits, for a connection from `peer`.
    pub fn instantiate(&self, peer: SocketAddr) -> Result<Guest, Fault> {
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
        store.set_epoch_deadline(self.deadline_ticks);
        let bindings = self.pre.instantiate(&mut store)?;
        Ok(Guest {
            store,
            bindings,
            deadline_ticks: self.deadline_ticks,
        })
    }
}

fn ticks(limit: Duration) -> u64 {
    u64::try_from(limit.as_nanos().div_ceil(EPOCH_TICK.as_nanos())).unwrap_or(u64::MAX)
}

/// One connection's instance. After a [`Fault`] the instance is unusable: drop it.
pub struct Guest {
    store: Store<Host>,
    bindings: HandlerComponent,
    deadline_ticks: u64,
}

impl Guest {
    pub fn handle(&mut self, request: &Request, limits: Limits) -> Result<Response, Fault> {
        self.call(|handler, store| handler.call_handle(store, request, limits))
    }

    pub fn on_bytes(&mut self, data: &[u8]) -> Result<Reply, Fault> {
        self.call(|handler, store| handler.call_on_bytes(store, data))
    }

    pub fn on_close_request(&mut self, code: u16, reason: &str) -> Result<Reply, Fault> {
        self.call(|handler, store| handler.call_on_close_request(store, code, reason))
    }

    pub fn on_peer_gone(&mut self) -> Result<(), Fault> {
        self.call(|handler, store| handler.call_on_peer_gone(store))
    }

    fn call<R>(
        &mut self,
        f: impl FnOnce(&Handler, &mut Store<Host>) -> wasmtime::Result<R>,
    ) -> Result<R, Fault> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let handler = self.bindings.wsbox_websocket_handler();
        let store = &mut self.store;
        // wasmtime carries a host function's panic out through the guest's frames; the only
        // such panic is wasmtime-wasi's `in_tokio` refusing to block inside the runtime (`poll`
        // and the like; see `Fault::Blocking`). Stdio lines left unfinished are logged now. The instance is dropped after any fault, so nothing observes
        // the state the unwind left behind.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(handler, store)));
        let host = self.store.data();
        host.stdout.end_call();
        host.stderr.end_call();
        match result {
            Ok(result) => Ok(result?),
            Err(_) => Err(Fault::Blocking),
        }
    }
}
