//! Log output: `tracing` lines on stderr, filtered by `--log`, else RUST_LOG, else `info`
//! (with the NATS client's own lines at `warn`: the runner logs the link's transitions
//! once each, and async-nats would log every reconnection attempt).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(flag: Option<&str>) -> Result<(), String> {
    let filter = match flag {
        Some(directives) => EnvFilter::try_new(directives)
            .map_err(|error| format!("--log {directives:?}: {error}"))?,
        None => EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}
