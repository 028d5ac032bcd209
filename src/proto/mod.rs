//! The protocol core: RFC 6455 as pure functions over `http` types and byte slices, and the
//! sans-IO [`Session`](session::Session) state machine.
//!
//! Nothing in this folder does I/O, reads a clock, draws from a global RNG, or names a type
//! of the layers around it (sockets, threads, channels, WIT bindings, hosts): time and
//! masking entropy come in as arguments, bytes go in and out through the caller. The
//! blocking API (`websocket`, `server`, `client`), the guest SDK and `wsbox.wasm` are edges
//! built on it, so the same core runs natively, in a component, and in the runner.

mod close_code;
pub mod config;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod session;
mod utf8;
