//! wsbox.wasm under wasmtime (its exports against `wit/`: tests/wit-check): the handshake
//! against the native library, frame sessions against each other and against native sessions, and
//! permessage-deflate.

mod deflate;
mod frames;
mod handshake;
