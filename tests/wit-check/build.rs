//! Builds wsbox.wasm (package `wsbox-component`) for wasm32-wasip2 and hands its path to the
//! crate as `WSBOX_WASM`, so `cargo test` always runs against the current sources.

fn main() {
    let root = wasm_build::workspace_root();
    let watch = [root.join("src"), root.join("wit"), root.join("component")];
    let watch: Vec<&std::path::Path> = watch.iter().map(|p| p.as_path()).collect();
    let wasm = wasm_build::build_component("wsbox-component", "wsbox_component", &watch);
    println!("cargo:rustc-env=WSBOX_WASM={}", wasm.display());
}
