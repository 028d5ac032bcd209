//! Builds the embedded default handler (`guests/echo`) for wasm32-wasip2 and tells main.rs
//! where it is.

use std::path::Path;

fn main() {
    let root = wasm_build::workspace_root();
    let wasm = wasm_build::build_component(
        "guest-echo",
        "guest_echo",
        &[
            &root.join("guests/echo"),
            &root.join("src"),
            &root.join("wit"),
            Path::new("build.rs"),
        ],
    );
    println!("cargo:rustc-env=WSBOX_DEFAULT_HANDLER={}", wasm.display());
}
