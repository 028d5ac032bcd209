//! wsbox.wasm under wasmtime: its exports against `wit/`, the handshake against the native
//! library, and frame sessions against each other and against native sessions.

mod exports;
mod frames;
mod handshake;
