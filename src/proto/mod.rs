//! The protocol core: RFC 6455 as pure functions over `http` types and byte slices, and the
//! sans-IO [`Session`](session::Session) state machine.
//!
//! Nothing in this folder does I/O, reads a clock, draws from a global RNG, or names a type
//! of the layers around it (sockets, threads, channels, WIT bindings, hosts): time and
//! masking entropy come in as arguments, bytes go in and out through the caller. The
//! blocking API (`websocket`, `server`, `client`), the guest SDK and `wsbox.wasm` are edges
//! built on it, so the same core runs natively, in a component, and in the runner.

mod close_code;
pub mod config;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod session;
mod utf8;

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    /// What code in the core must not name: I/O, threads and channels, clocks, entropy, WIT
    /// bindings, and (through `crate::`) the edges built on it.
    /// Paths are matched by their last segments too (`io::`, `time::`), so a grouped import
    /// such as `use std::{io, net}` is caught by its use.
    const FORBIDDEN: [&str; 12] = [
        "std::io",
        "io::",
        "net::",
        "std::fs",
        "thread::",
        "std::sync",
        "time::",
        "Instant",
        "SystemTime",
        "getrandom",
        "wit_bindgen",
        "crate::",
    ];

    fn check(dir: &Path, found: &mut Vec<String>) {
        for entry in fs::read_dir(dir).expect("src/proto is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                check(&path, found);
                continue;
            }
            // Tests may use anything; doc comments may link to the edges.
            if path.ends_with("tests.rs") {
                continue;
            }
            let code = fs::read_to_string(&path).expect("a source file");
            let code = code.split("#[cfg(test)]").next().unwrap_or_default();
            for (number, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for word in FORBIDDEN.iter().filter(|word| line.contains(*word)) {
                    found.push(format!("{}:{}: {word}", path.display(), number + 1));
                }
            }
        }
    }

    #[test]
    fn the_core_names_nothing_outside_it() {
        let mut found = Vec::new();
        check(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/proto"),
            &mut found,
        );
        assert!(
            found.is_empty(),
            "the core reaches out:\n{}",
            found.join("\n")
        );
    }
}
