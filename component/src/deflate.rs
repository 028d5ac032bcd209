//! permessage-deflate in `wsbox.wasm`: the WIT records ↔ [`::wsbox::deflate`] types, and
//! the engines that every session of the instance without context takeover borrows.

use std::cell::RefCell;

use ::wsbox::deflate::{Deflate, Engines, ExtensionError, Params};
use ::wsbox::session::Session;

use crate::exports::wsbox::websocket::handshake;
use crate::wsbox::websocket::types;

thread_local! {
    // An instance runs one call at a time, so one set serves all its sessions: a session
    // without context takeover then holds no deflate memory between calls.
    static ENGINES: RefCell<Engines> = RefCell::new(Engines::default());
}

/// Runs `op` with the instance's engines lent to `session`.
pub(crate) fn with_engines<T>(session: &mut Session, op: impl FnOnce(&mut Session) -> T) -> T {
    ENGINES.with_borrow_mut(|engines| session.with_engines(engines, op))
}

/// The library clamps each option to its range.
pub(crate) fn to_deflate(options: &types::DeflateOptions) -> Deflate {
    Deflate::default()
        .level(options.level)
        .mem_level(options.mem_level)
        .max_window_bits(options.max_window_bits)
        .no_context_takeover(options.no_context_takeover)
}

/// The host may pass any parameters; a window outside the RFC's 8–15 is brought into it
/// (8 means "send uncompressed", 15 decodes any window), so no value can make zlib fail.
pub(crate) fn to_params(params: &types::DeflateParams) -> Params {
    let window = |bits: Option<u8>| bits.map(|b| b.clamp(8, 15));
    Params {
        server_no_context_takeover: params.server_no_context_takeover,
        client_no_context_takeover: params.client_no_context_takeover,
        server_max_window_bits: window(params.server_max_window_bits),
        client_max_window_bits: window(params.client_max_window_bits),
    }
}

pub(crate) fn from_params(params: Params) -> types::DeflateParams {
    types::DeflateParams {
        server_no_context_takeover: params.server_no_context_takeover,
        client_no_context_takeover: params.client_no_context_takeover,
        server_max_window_bits: params.server_max_window_bits,
        client_max_window_bits: params.client_max_window_bits,
    }
}

pub(crate) fn from_extension_error(error: ExtensionError) -> handshake::ExtensionError {
    match error {
        ExtensionError::UnsupportedExtension => handshake::ExtensionError::UnsupportedExtension,
        // `ExtensionError` is non-exhaustive; anything else is about the parameters.
        _ => handshake::ExtensionError::InvalidParameter,
    }
}

/// The `sec-websocket-extensions` lines of a response's `headers`. A line `http` rejects
/// fails the check, as the library fails one that is not text.
pub(crate) fn extension_headers(
    headers: &[(String, Vec<u8>)],
) -> Result<http::HeaderMap, handshake::ExtensionError> {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            let value = http::HeaderValue::from_bytes(value)
                .map_err(|_| handshake::ExtensionError::InvalidParameter)?;
            map.append(http::header::SEC_WEBSOCKET_EXTENSIONS, value);
        }
    }
    Ok(map)
}
