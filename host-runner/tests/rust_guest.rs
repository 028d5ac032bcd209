//! The Rust SDK's `history`, `presence` and `store` wrappers (guests/test-rust) in the runner,
//! as common/sdk_imports.rs drives them through the JavaScript and Python SDKs too.

mod common;

use common::Runner;

#[test]
fn a_rust_handler_uses_history_presence_and_the_store() {
    let wasm = common::guest("guest-test-rust");
    let runner = Runner::start(&["--handler", wasm.to_str().expect("a UTF-8 path")]);
    common::sdk_imports::rooms_and_store(&runner);
}
