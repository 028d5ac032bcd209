//! The permessage-deflate handshake (RFC 7692 §5, §7.1): the server's choice among the
//! client's offers, the client's offer, and the client's check of the server's answer.

use http::header::{HeaderMap, SEC_WEBSOCKET_EXTENSIONS};

pub use super::super::error::ExtensionError;
use super::{Deflate, MAX_WINDOW_BITS, MIN_WINDOW_BITS, Params};

pub(super) const NAME: &str = "permessage-deflate";

/// One parameter of an extension element: a name and an optional value (unquoted).
type Param<'a> = (&'a str, Option<&'a str>);

/// The extensions listed in every `Sec-WebSocket-Extensions` line, in order: a name and its
/// parameters, or `None` for an element that does not parse (RFC 7230 list syntax; empty
/// elements are skipped).
fn elements(headers: &HeaderMap) -> Vec<Option<(&str, Vec<Param<'_>>)>> {
    let mut found = Vec::new();
    for value in headers.get_all(SEC_WEBSOCKET_EXTENSIONS) {
        let Ok(value) = value.to_str() else {
            found.push(None);
            continue;
        };
        for element in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            found.push(parse_element(element));
        }
    }
    found
}

fn parse_element(element: &str) -> Option<(&str, Vec<Param<'_>>)> {
    let mut parts = element.split(';').map(str::trim);
    let name = parts.next().filter(|name| is_token(name))?;
    let mut params = Vec::new();
    for part in parts {
        let (key, value) = match part.split_once('=') {
            Some((key, value)) => (key.trim_end(), Some(unquote(value.trim_start())?)),
            None => (part, None),
        };
        if !is_token(key) {
            return None;
        }
        params.push((key, value));
    }
    Some((name, params))
}

/// A parameter value: a token, or a quoted string whose content is a token (RFC 6455 §9.1).
fn unquote(value: &str) -> Option<&str> {
    let value = match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => value,
    };
    is_token(value).then_some(value)
}

/// RFC 7230 §3.2.6 `token`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A window size value: exactly "8" to "15" (RFC 7692 §7.1.2.1 ABNF, no leading zeros).
fn window_bits(value: Option<&str>) -> Result<u8, ExtensionError> {
    match value.map(str::parse::<u8>) {
        Some(Ok(bits @ 8..=15)) if !value.is_some_and(|v| v.starts_with('0')) => Ok(bits),
        _ => Err(ExtensionError::InvalidParameter),
    }
}

/// The four parameters as an offer or a response states them.
#[derive(Debug, Default)]
struct Stated {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the parameter without a value (allowed in an offer only).
    client_max_window_bits: Option<Option<u8>>,
}

/// Reads one element's parameters, refusing unknown, repeated and malformed ones
/// (RFC 7692 §7.1: such an offer is declined, such a response fails the connection).
fn read_params(params: &[Param<'_>]) -> Result<Stated, ExtensionError> {
    let mut stated = Stated::default();
    let mut seen = [false; 4];
    for &(key, value) in params {
        let index = match key {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return Err(ExtensionError::InvalidParameter),
        };
        if std::mem::replace(&mut seen[index], true) {
            return Err(ExtensionError::InvalidParameter);
        }
        match (index, value) {
            (0, None) => stated.server_no_context_takeover = true,
            (1, None) => stated.client_no_context_takeover = true,
            (2, _) => stated.server_max_window_bits = Some(window_bits(value)?),
            (3, None) => stated.client_max_window_bits = Some(None),
            (3, Some(_)) => stated.client_max_window_bits = Some(Some(window_bits(value)?)),
            _ => return Err(ExtensionError::InvalidParameter),
        }
    }
    Ok(stated)
}

/// The server's side: the parameters of the first of the client's permessage-deflate offers
/// in `headers` that `ours` can accept, or `None` to decline them all (the connection then
/// goes on uncompressed). Send [`Params::to_header`] as the response's
/// `Sec-WebSocket-Extensions`.
///
/// Declined: offers with unknown, repeated or malformed parameters, and offers that ask
/// the server for an 8-bit window (zlib cannot produce one). Whatever the offer, the
/// answer keeps within `ours`: its window, and no context takeover where it asks for none
/// or where the client's window could not be capped to it.
///
/// # Examples
///
/// ```
/// use http::HeaderMap;
/// use wsbox::deflate::{Deflate, negotiate};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     "sec-websocket-extensions",
///     "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits"
///         .parse()
///         .unwrap(),
/// );
/// let params = negotiate(&headers, &Deflate::default().max_window_bits(12)).unwrap();
/// assert_eq!(params.to_header(), "permessage-deflate; client_max_window_bits=12");
/// ```
pub fn negotiate(headers: &HeaderMap, ours: &Deflate) -> Option<Params> {
    elements(headers).into_iter().find_map(|element| {
        let (name, params) = element?;
        if !name.eq_ignore_ascii_case(NAME) {
            return None;
        }
        let offer = read_params(&params).ok()?;
        if offer
            .server_max_window_bits
            .is_some_and(|bits| bits < MIN_WINDOW_BITS)
        {
            return None;
        }
        let max = ours.max_window_bits;
        let client_max_window_bits = offer
            .client_max_window_bits
            .map(|bits| bits.unwrap_or(MAX_WINDOW_BITS).min(max))
            .filter(|&bits| bits < MAX_WINDOW_BITS);
        let client_window = client_max_window_bits.unwrap_or(MAX_WINDOW_BITS);
        Some(Params {
            server_no_context_takeover: offer.server_no_context_takeover
                || ours.no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || ours.no_context_takeover
                || client_window > max,
            server_max_window_bits: offer.server_max_window_bits.map(|bits| bits.min(max)),
            client_max_window_bits,
        })
    })
}

/// The client's side: the `Sec-WebSocket-Extensions` value offering permessage-deflate
/// as `ours` allows. Check the server's answer with [`check_response`].
///
/// With context takeover allowed, a second offer follows that includes
/// `client_no_context_takeover`: a server that accepts only clients without takeover (one
/// that reads the parameter as "the client accepts being asked", as the Autobahn suite does)
/// picks it instead of declining compression.
///
/// # Examples
///
/// ```
/// use wsbox::deflate::{Deflate, offer};
///
/// assert_eq!(
///     offer(&Deflate::default()),
///     "permessage-deflate; client_max_window_bits, \
///      permessage-deflate; client_no_context_takeover; client_max_window_bits",
/// );
/// assert_eq!(
///     offer(&Deflate::default().max_window_bits(10).no_context_takeover(true)),
///     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
///      server_max_window_bits=10; client_max_window_bits=10",
/// );
/// ```
pub fn offer(ours: &Deflate) -> String {
    let max = ours.max_window_bits;
    let windows = if max < MAX_WINDOW_BITS {
        format!("; server_max_window_bits={max}; client_max_window_bits={max}")
    } else {
        "; client_max_window_bits".to_owned()
    };
    if ours.no_context_takeover {
        format!("{NAME}; server_no_context_takeover; client_no_context_takeover{windows}")
    } else {
        format!("{NAME}{windows}, {NAME}; client_no_context_takeover{windows}")
    }
}

/// The client's side: what the server's response `headers` agreed to, given that the client
/// sent [`offer`]`(ours)`. `Ok(None)`: the server declined, the connection goes on
/// uncompressed.
///
/// # Errors
///
/// The connection must then be failed (RFC 6455 §4.1, RFC 7692 §5): the response names
/// another extension or several, or a parameter the offer does not allow, or a malformed
/// one.
///
/// # Examples
///
/// ```
/// use http::HeaderMap;
/// use wsbox::deflate::{Deflate, ExtensionError, check_response};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("sec-websocket-extensions", "permessage-deflate; foo".parse().unwrap());
/// assert_eq!(
///     check_response(&headers, &Deflate::default()),
///     Err(ExtensionError::InvalidParameter),
/// );
/// ```
pub fn check_response(
    headers: &HeaderMap,
    ours: &Deflate,
) -> Result<Option<Params>, ExtensionError> {
    let mut elements = elements(headers).into_iter();
    let (name, params) = match (elements.next(), elements.next()) {
        (None, _) => return Ok(None),
        (Some(Some(element)), None) => element,
        (Some(None), None) => return Err(ExtensionError::InvalidParameter),
        (Some(_), Some(_)) => return Err(ExtensionError::UnsupportedExtension),
    };
    if !name.eq_ignore_ascii_case(NAME) {
        return Err(ExtensionError::UnsupportedExtension);
    }
    let answer = read_params(&params)?;
    let max = ours.max_window_bits;
    let offered_max = (max < MAX_WINDOW_BITS).then_some(max);
    let client_max_window_bits = match answer.client_max_window_bits {
        None => None,
        // The response must give a value. (An 8-bit window, which zlib cannot keep to, is
        // accepted: the client then sends its messages uncompressed.)
        Some(None) => return Err(ExtensionError::InvalidParameter),
        Some(Some(bits)) if offered_max.is_some_and(|max| bits > max) => {
            return Err(ExtensionError::InvalidParameter);
        }
        Some(bits) => bits,
    };
    if offered_max.is_some_and(|max| answer.server_max_window_bits.is_none_or(|bits| bits > max))
        || (ours.no_context_takeover && !answer.server_no_context_takeover)
    {
        // Accepting the offer means accepting what it asked of the server (§7.1.1.1, §7.1.2.1).
        return Err(ExtensionError::InvalidParameter);
    }
    Ok(Some(Params {
        server_no_context_takeover: answer.server_no_context_takeover,
        client_no_context_takeover: answer.client_no_context_takeover,
        server_max_window_bits: answer.server_max_window_bits,
        client_max_window_bits,
    }))
}

#[cfg(test)]
mod tests;
