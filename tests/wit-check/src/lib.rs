//! wsbox.wasm's shape, without a component host: see `tests/exports.rs`.

/// The component this crate was built against (see `build.rs`).
pub const WSBOX_WASM: &str = env!("WSBOX_WASM");
