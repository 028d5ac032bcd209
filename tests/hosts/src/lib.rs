//! A wasmtime host for `wsbox.wasm`: the `core` world's bindings and a sandbox to call them in.
//!
//! Every [`Guest`] is a fresh instance in its own `Store` whose WASI context grants nothing
//! (no files, environment, arguments, network or stdio); only `wasi:random` works, which
//! the client role needs for its masking keys. The store records how large the instance's
//! linear memory grew ([`Guest::peak_memory`]).

use std::sync::OnceLock;

use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Result, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    world: "core",
    path: "../../wit",
    additional_derives: [PartialEq],
});

pub use crate::wsbox::websocket::types::{
    CloseFrame, DeflateOptions, DeflateParams, HandshakeError, Limits, Message, Request, Response,
    WebsocketError,
};
pub use exports::wsbox::websocket::frames::{Event, Incoming, Role, SendError};
pub use exports::wsbox::websocket::handshake::{Accepted, ExtensionError};

/// The component this crate was built against (see `build.rs`).
pub const WSBOX_WASM: &str = env!("WSBOX_WASM");

/// A store's data: WASI state that denies everything, and the memory high-water mark.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: Peak,
}

/// Allows every growth and remembers the largest linear memory asked for.
#[derive(Default)]
struct Peak(usize);

impl ResourceLimiter for Peak {
    fn memory_growing(&mut self, _: usize, desired: usize, _: Option<usize>) -> Result<bool> {
        self.0 = self.0.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> Result<bool> {
        Ok(true)
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Compiling the component takes a while, so every guest shares one pre-instantiated copy.
fn pre() -> &'static CorePre<Sandbox> {
    static PRE: OnceLock<CorePre<Sandbox>> = OnceLock::new();
    PRE.get_or_init(|| {
        let engine = Engine::default();
        let component = Component::from_file(&engine, WSBOX_WASM)
            .unwrap_or_else(|e| panic!("cannot load {WSBOX_WASM}: {e:?}"));
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("WASI links");
        let pre = linker
            .instantiate_pre(&component)
            .expect("wsbox.wasm imports only WASI");
        CorePre::new(pre).expect("wsbox.wasm exports the core world")
    })
}

/// One instance of `wsbox.wasm` and its store.
pub struct Guest {
    store: Store<Sandbox>,
    core: Core,
}

impl Guest {
    /// A fresh instance.
    pub fn new() -> Result<Self> {
        let pre = pre();
        let wasi = WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut store = Store::new(
            pre.engine(),
            Sandbox {
                wasi,
                table: ResourceTable::new(),
                memory: Peak::default(),
            },
        );
        store.limiter(|sandbox| &mut sandbox.memory);
        let core = pre.instantiate(&mut store)?;
        Ok(Guest { store, core })
    }

    /// The largest size in bytes the instance's linear memory has had (memory never shrinks).
    pub fn peak_memory(&self) -> usize {
        self.store.data().memory.0
    }

    /// `handshake.start-with-deflate`.
    pub fn start_with_deflate(
        &mut self,
        req: &Request,
        subprotocol: Option<&str>,
        options: DeflateOptions,
    ) -> Result<Result<Accepted, HandshakeError>> {
        self.core
            .wsbox_websocket_handshake()
            .call_start_with_deflate(&mut self.store, req, subprotocol, options)
    }

    /// `handshake.deflate-offer`.
    pub fn deflate_offer(&mut self, options: DeflateOptions) -> Result<String> {
        self.core
            .wsbox_websocket_handshake()
            .call_deflate_offer(&mut self.store, options)
    }

    /// `handshake.check-deflate-response`.
    pub fn check_deflate_response(
        &mut self,
        headers: &[(String, Vec<u8>)],
        options: DeflateOptions,
    ) -> Result<Result<Option<DeflateParams>, ExtensionError>> {
        self.core
            .wsbox_websocket_handshake()
            .call_check_deflate_response(&mut self.store, headers, options)
    }

    /// `handshake.requested-protocols`.
    pub fn requested_protocols(&mut self, req: &Request) -> Result<Vec<String>> {
        self.core
            .wsbox_websocket_handshake()
            .call_requested_protocols(&mut self.store, req)
    }

    /// `handshake.start`.
    pub fn start(
        &mut self,
        req: &Request,
        subprotocol: Option<&str>,
    ) -> Result<Result<Response, HandshakeError>> {
        self.core
            .wsbox_websocket_handshake()
            .call_start(&mut self.store, req, subprotocol)
    }

    /// `handshake.accept-key`.
    pub fn accept_key(&mut self, key: &str) -> Result<String> {
        self.core
            .wsbox_websocket_handshake()
            .call_accept_key(&mut self.store, key)
    }

    /// A new `frames.session`.
    pub fn session(&mut self, role: Role, limits: Limits) -> Result<Session> {
        let handle = self
            .core
            .wsbox_websocket_frames()
            .session()
            .call_constructor(&mut self.store, role, limits)?;
        Ok(Session(handle))
    }

    /// A new `frames.session` made by `session.with-deflate`.
    pub fn session_with_deflate(
        &mut self,
        role: Role,
        limits: Limits,
        params: DeflateParams,
        options: DeflateOptions,
    ) -> Result<Session> {
        let handle = self
            .core
            .wsbox_websocket_frames()
            .session()
            .call_with_deflate(&mut self.store, role, limits, params, options)?;
        Ok(Session(handle))
    }

    /// `session.receive`.
    pub fn receive(&mut self, session: Session, bytes: &[u8]) -> Result<Incoming> {
        self.core
            .wsbox_websocket_frames()
            .session()
            .call_receive(&mut self.store, session.0, bytes)
    }

    /// `session.send`.
    pub fn send(
        &mut self,
        session: Session,
        message: &Message,
    ) -> Result<Result<Vec<u8>, SendError>> {
        self.core
            .wsbox_websocket_frames()
            .session()
            .call_send(&mut self.store, session.0, message)
    }

    /// `session.ping`.
    pub fn ping(&mut self, session: Session, data: &[u8]) -> Result<Result<Vec<u8>, SendError>> {
        self.core
            .wsbox_websocket_frames()
            .session()
            .call_ping(&mut self.store, session.0, data)
    }

    /// `session.close`.
    pub fn close(
        &mut self,
        session: Session,
        code: u16,
        reason: &str,
    ) -> Result<Result<Vec<u8>, SendError>> {
        self.core.wsbox_websocket_frames().session().call_close(
            &mut self.store,
            session.0,
            code,
            reason,
        )
    }

    /// `session.is-closed`.
    pub fn is_closed(&mut self, session: Session) -> Result<bool> {
        self.core
            .wsbox_websocket_frames()
            .session()
            .call_is_closed(&mut self.store, session.0)
    }

    /// `session.is-finished`.
    pub fn is_finished(&mut self, session: Session) -> Result<bool> {
        self.core
            .wsbox_websocket_frames()
            .session()
            .call_is_finished(&mut self.store, session.0)
    }

    /// `session.close-received`.
    pub fn close_received(&mut self, session: Session) -> Result<Option<CloseFrame>> {
        self.core
            .wsbox_websocket_frames()
            .session()
            .call_close_received(&mut self.store, session.0)
    }

    /// Drops a session inside the guest.
    pub fn drop_session(&mut self, session: Session) -> Result<()> {
        session.0.resource_drop(&mut self.store)
    }
}

/// A `frames.session` living in a [`Guest`].
#[derive(Debug, Clone, Copy)]
pub struct Session(ResourceAny);
