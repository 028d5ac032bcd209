//! Log output: `tracing` lines on stderr, filtered by `--log`, else RUST_LOG, else `info`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(flag: Option<&str>) -> Result<(), String> {
    let filter = match flag {
        Some(directives) => EnvFilter::try_new(directives)
            .map_err(|error| format!("--log {directives:?}: {error}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}

/// wasmtime-wasi's sync bindings panic when a guest makes a blocking WASI call on a tokio
/// worker; the runner turns that into `Fault::Blocking` and logs it with the peer, so the
/// panic's own report (and backtrace) would only be noise. Other panics print as usual.
pub fn quiet_blocking_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if !message.starts_with("Cannot start a runtime from within a runtime") {
            default(info);
        }
    }));
}
