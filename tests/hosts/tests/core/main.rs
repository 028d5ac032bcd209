//! wsbox.wasm under wasmtime: its exports against `wit/`, the handshake against the native
//! library, frame sessions against each other and against native sessions, and
//! permessage-deflate.

mod deflate;
mod exports;
mod frames;
mod handshake;
