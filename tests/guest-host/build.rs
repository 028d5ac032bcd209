//! Builds `guests/echo` for wasm32-wasip2; the tests load it from `GUEST_ECHO_WASM`.

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
    println!("cargo:rustc-env=GUEST_ECHO_WASM={}", wasm.display());
}
