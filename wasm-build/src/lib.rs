//! Builds a workspace package for `wasm32-wasip2` from a build script, so that
//! `cargo build`/`cargo test`/`cargo run` produce the components they embed or load.
//!
//! The nested cargo uses its own target directory (`target/wasm`), so it does not wait on
//! the lock of the outer build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `package` (a workspace member) with the `guest` profile for `wasm32-wasip2` and
/// returns the path of the component it produced (`<lib name>.wasm`).
///
/// Tells cargo to rerun the calling build script when anything under `watch` changes.
/// Panics with instructions if the `wasm32-wasip2` target is missing or the build fails:
/// build scripts have no better channel.
pub fn build_component(package: &str, artifact: &str, watch: &[&Path]) -> PathBuf {
    let workspace = workspace_root();
    for path in watch {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    // The `guest` profile, the locked dependency versions and the wasm32-wasip2 linker flags
    // (stack size) live in these; a change to any must rebuild the component, whoever embeds it.
    for shared in [
        workspace.join("Cargo.toml"),
        workspace.join("Cargo.lock"),
        workspace.join(".cargo").join("config.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", shared.display());
    }
    let target_dir = workspace.join("target").join("wasm");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args([
            "build",
            "--quiet",
            "--package",
            package,
            "--target",
            "wasm32-wasip2",
        ])
        .args(["--profile", "guest", "--target-dir"])
        .arg(&target_dir);
    // Flags and wrappers meant for the outer (native) build must not leak into this one.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MAKEFLAGS",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {package}: {e}"));
    if !status.success() {
        panic!(
            "building {package} for wasm32-wasip2 failed (see above). If the target is missing, \
             run `rustup target add wasm32-wasip2` (rust-toolchain.toml normally installs it)."
        );
    }
    let wasm = target_dir
        .join("wasm32-wasip2")
        .join("guest")
        .join(format!("{artifact}.wasm"));
    assert!(wasm.exists(), "{} was not produced", wasm.display());
    wasm
}

/// The workspace root: the nearest ancestor of the calling package with a `Cargo.lock`.
pub fn workspace_root() -> PathBuf {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run from a build script"));
    manifest
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .map(Path::to_path_buf)
        .unwrap_or(manifest)
}
