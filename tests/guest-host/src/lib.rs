//! Runs handler components (the `handler-component` world) under wasmtime 48 the way
//! `wsbox-runner` does: the component compiled once, one instance per connection, a WASI
//! context that grants nothing, synchronous calls. The tests in `tests/` drive
//! `guests/echo` through it.

use std::path::Path;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Result, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    world: "handler-component",
    path: "../../wit",
});

pub use exports::wsbox::websocket::handler::Reply;
pub use wsbox::websocket::types::{Limits, Request, Response};

/// A compiled handler component, ready to instantiate.
pub struct Host {
    engine: Engine,
    component: Component,
    pre: HandlerComponentPre<State>,
}

/// What each instance's store holds: WASI state that std needs and that grants nothing.
struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Host {
    /// Compiles the component at `path` and links it against WASI.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let mut config = wasmtime::Config::new();
        config.concurrency_support(false);
        let engine = Engine::new(&config)?;
        let component = Component::from_file(&engine, path)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let pre = HandlerComponentPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Host {
            engine,
            component,
            pre,
        })
    }

    /// The names of the interfaces the component imports.
    pub fn imports(&self) -> Vec<String> {
        self.component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// A fresh instance, as for a new TCP connection.
    pub fn connect(&self) -> Result<Connection> {
        let state = State {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        let bindings = self.pre.instantiate(&mut store)?;
        Ok(Connection { store, bindings })
    }
}

/// One instance of the component: one connection.
pub struct Connection {
    store: Store<State>,
    bindings: HandlerComponent,
}

impl Connection {
    /// Calls `handle`.
    pub fn handle(&mut self, request: &Request, limits: Limits) -> Result<Response> {
        self.bindings
            .wsbox_websocket_handler()
            .call_handle(&mut self.store, request, limits)
    }

    /// Calls `on-bytes`.
    pub fn on_bytes(&mut self, data: &[u8]) -> Result<Reply> {
        self.bindings
            .wsbox_websocket_handler()
            .call_on_bytes(&mut self.store, data)
    }

    /// Calls `on-close-request`.
    pub fn on_close_request(&mut self, code: u16, reason: &str) -> Result<Reply> {
        self.bindings
            .wsbox_websocket_handler()
            .call_on_close_request(&mut self.store, code, reason)
    }

    /// Calls `on-peer-gone`.
    pub fn on_peer_gone(&mut self) -> Result<()> {
        self.bindings
            .wsbox_websocket_handler()
            .call_on_peer_gone(&mut self.store)
    }
}

/// A request with `headers`, as a host would pass it.
pub fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request {
    Request {
        method: method.to_owned(),
        uri: uri.to_owned(),
        version: 11,
        headers: headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec()))
            .collect(),
        body: Vec::new(),
    }
}

/// The value of the first header called `name` (any case) in `response`, as text.
pub fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}
