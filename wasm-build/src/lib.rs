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
/// Adds the `wasm32-wasip2` target through rustup when it is missing (with a warning); panics
/// with instructions if that or the build fails: build scripts have no better channel.
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
    ensure_target();
    let target_dir = workspace.join("target").join("wasm");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--quiet", "--package", package, "--target", TARGET])
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
        panic!("building {package} for {TARGET} failed (see the compiler's output above)");
    }
    let wasm = target_dir
        .join(TARGET)
        .join("guest")
        .join(format!("{artifact}.wasm"));
    assert!(wasm.exists(), "{} was not produced", wasm.display());
    wasm
}

/// The target this crate builds for.
const TARGET: &str = "wasm32-wasip2";

/// Makes sure the standard library for [`TARGET`] is installed, adding it through rustup when
/// it is not (as cargo-component does). `rust-toolchain.toml` lists the target, but rustup
/// installs a toolchain's `targets` only when it installs the toolchain itself: a machine that
/// already had 1.95.0 has no wasm32-wasip2 until someone adds it.
fn ensure_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if target_installed(&rustc) {
        return;
    }
    eprintln!("wasm-build: adding the {TARGET} target with rustup (once per toolchain)");
    // Several build scripts may race here; whichever rustup loses still leaves the target
    // installed, so the result is judged by looking again, not by the exit status.
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    if target_installed(&rustc) {
        // Cargo replays a build script's warnings on later builds: say it in the past tense.
        println!(
            "cargo:warning=the {TARGET} target was missing; added it with `rustup target add {TARGET}`"
        );
        return;
    }
    match added {
        Err(e) => panic!(
            "the {TARGET} target is not installed and rustup could not be run ({e}). Install the \
             Rust standard library for {TARGET} for the compiler at `{rustc}` (with rustup: \
             `rustup target add {TARGET}`), then build again."
        ),
        Ok(status) => panic!(
            "the {TARGET} target is not installed and `rustup target add {TARGET}` failed \
             ({status}); see its output above."
        ),
    }
}

/// Whether the sysroot of `rustc` holds a standard library for [`TARGET`].
fn target_installed(rustc: &str) -> bool {
    let Ok(output) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&output.stdout);
    let lib = Path::new(sysroot.trim())
        .join("lib")
        .join("rustlib")
        .join(TARGET)
        .join("lib");
    std::fs::read_dir(lib).is_ok_and(|mut entries| entries.next().is_some())
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

/// For the build script of a crate that tests `wsbox.wasm` (tests/hosts, tests/wit-check):
/// builds it (package `wsbox-component`) for wasm32-wasip2, rebuilt when the library, `wit/`
/// or the component's sources change, and hands its path to the crate as `WSBOX_WASM`, so that
/// `cargo test` always runs against the current sources.
pub fn export_wsbox_wasm() {
    let root = workspace_root();
    let watch = [root.join("src"), root.join("wit"), root.join("component")];
    let watch: Vec<&Path> = watch.iter().map(PathBuf::as_path).collect();
    let wasm = build_component("wsbox-component", "wsbox_component", &watch);
    println!("cargo:rustc-env=WSBOX_WASM={}", wasm.display());
}
