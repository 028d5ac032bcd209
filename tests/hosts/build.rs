//! Builds wsbox.wasm and hands its path to the crate as `WSBOX_WASM` (see
//! `wasm_build::export_wsbox_wasm`).

fn main() {
    wasm_build::export_wsbox_wasm();
}
