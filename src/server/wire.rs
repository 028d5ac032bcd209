//! HTTP/1.1 bytes for the blocking server, with no socket: a request parser that is
//! strict about body framing, and the response head that goes with it.

use http::{Method, Request, Response, StatusCode, Version, header};

use super::ServerConfig;

/// Why a request is refused: the status to answer with and a short reason for the body.
/// The connection is closed after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 408, 413, 431 or 501.
    pub status: StatusCode,
    /// One line of plain text, without the newline.
    pub reason: &'static str,
}

impl Refusal {
    fn new(status: StatusCode, reason: &'static str) -> Self {
        Refusal { status, reason }
    }

    fn bad(reason: &'static str) -> Self {
        Refusal::new(StatusCode::BAD_REQUEST, reason)
    }
}

/// A whole request, and how many bytes of the input it used.
pub type ParsedRequest = (Request<Vec<u8>>, usize);

/// Parses one request, head and `Content-Length` body, from the start of `buf`.
///
/// Returns `Ok(None)` while `buf` holds only part of a request (read more and call
/// again; nothing is consumed), or the request and how many bytes of `buf` it used (what
/// follows is the next pipelined request, or WebSocket frames after an upgrade).
///
/// Body framing is strict, because a proxy in front that reads it differently lets a
/// client smuggle a second request past it: exactly one `Content-Length`, all digits
/// (RFC 7230 §3.3.2: no sign, no list); `Transfer-Encoding` is not supported (501).
/// Limits come from `config`: a head over `max_request_head` or with more than
/// `max_headers` lines gets 431, a declared body over `max_request_body` 413, checked
/// before the body is buffered.
///
/// # Examples
///
/// ```
/// use wsbox::server::{ServerConfig, parse_request};
///
/// let config = ServerConfig::default();
/// let wire = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET";
/// let (request, used) = parse_request(wire, &config).unwrap().unwrap();
/// assert_eq!((request.uri().path(), request.body().as_slice(), used), ("/echo", &b"hi"[..], 53));
/// assert!(matches!(parse_request(&wire[..52], &config), Ok(None)));
///
/// let smuggled = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 10\r\n\r\n";
/// assert_eq!(parse_request(smuggled, &config).unwrap_err().status, 400);
/// ```
pub fn parse_request(buf: &[u8], config: &ServerConfig) -> Result<Option<ParsedRequest>, Refusal> {
    Ok(match parse_progress(buf, config)? {
        Progress::Complete(parsed) => Some(*parsed),
        Progress::Head | Progress::Body { .. } => None,
    })
}

/// How far a buffer got towards a whole request.
pub(super) enum Progress {
    Complete(Box<ParsedRequest>),
    /// The head is incomplete: it cannot complete before another line ends.
    Head,
    /// The head is complete; the request is once the buffer holds `total` bytes.
    Body {
        total: usize,
    },
}

/// [`parse_request`], saying what an incomplete request waits for, so that a reader
/// parses again only when that can change the answer: re-parsing the head on every byte
/// a client trickles would make it cost the server quadratic time.
pub(super) fn parse_progress(buf: &[u8], config: &ServerConfig) -> Result<Progress, Refusal> {
    let head_too_large = || {
        Refusal::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request head too large",
        )
    };
    let mut headers = vec![httparse::EMPTY_HEADER; config.get_max_headers()];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n > config.get_max_request_head() => {
            return Err(head_too_large());
        }
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= config.get_max_request_head() => {
            return Err(head_too_large());
        }
        Ok(httparse::Status::Partial) => return Ok(Progress::Head),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "too many headers",
            ));
        }
        Err(_) => return Err(Refusal::bad("malformed HTTP request")),
    };
    let (Some(method), Some(path), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(Refusal::bad("malformed HTTP request"));
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .version(if version == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        });
    let mut content_length = None;
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return Err(Refusal::bad("repeated Content-Length"));
            }
            content_length = Some(parse_content_length(h.value)?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Refusal::new(
                StatusCode::NOT_IMPLEMENTED,
                "Transfer-Encoding is not supported",
            ));
        }
        builder = builder.header(h.name, h.value);
    }
    let too_large = || Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    let end = match content_length {
        Some(n) if n > config.get_max_request_body() as u64 => return Err(too_large()),
        // `n as usize` is exact: `n` is at most `max_request_body`.
        Some(n) => head_len.checked_add(n as usize).ok_or_else(too_large)?,
        None => head_len,
    };
    let Some(body) = buf.get(head_len..end) else {
        return Ok(Progress::Body { total: end });
    };
    let request = builder
        .body(body.to_vec())
        .map_err(|_| Refusal::bad("invalid request line or header"))?;
    Ok(Progress::Complete(Box::new((request, end))))
}

/// `Content-Length = 1*DIGIT` (RFC 7230 §3.3.2), around optional whitespace. `str::parse`
/// would also take a `+` sign, which other parsers in the path may not.
fn parse_content_length(value: &[u8]) -> Result<u64, Refusal> {
    let invalid = || Refusal::bad("invalid Content-Length");
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or_else(invalid)
    })
}

/// The response as bytes: head, and the body where one may follow. `Content-Length`
/// and `Transfer-Encoding` from the handler are replaced by the body's real length, so a
/// handler cannot frame the response differently from what is sent.
///
/// No body goes out for 1xx, 204 and 304 (RFC 7230 §3.3.3), nor for a `HEAD` request,
/// which gets the length a `GET` would have.
pub(super) fn encode_response(
    response: &Response<Vec<u8>>,
    request_method: &Method,
    close: bool,
) -> Vec<u8> {
    let status = response.status();
    let mut out = Vec::with_capacity(256 + response.body().len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in response.headers() {
        // The server frames the response and decides the connection's fate (`close`); a
        // 101 keeps the handler's `Connection: Upgrade`.
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || (name == header::CONNECTION && status != StatusCode::SWITCHING_PROTOCOLS)
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if !bodiless {
        out.extend_from_slice(format!("content-length: {}\r\n", response.body().len()).as_bytes());
    }
    if close && status != StatusCode::SWITCHING_PROTOCOLS {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !bodiless && request_method != Method::HEAD {
        out.extend_from_slice(response.body());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(wire: &str) -> Result<Option<ParsedRequest>, Refusal> {
        parse_request(wire.as_bytes(), &ServerConfig::default())
    }

    #[test]
    fn every_prefix_of_a_request_is_partial() {
        let wire = "POST /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        for end in 0..wire.len() {
            assert!(matches!(parse(&wire[..end]), Ok(None)), "{end}");
        }
        let (request, used) = parse(wire).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(request.body(), b"hello");
    }

    #[test]
    fn limits_are_checked_before_buffering() {
        let config = ServerConfig::default()
            .max_request_head(64)
            .max_request_body(4)
            .max_headers(2);
        let status = |wire: &str| {
            parse_request(wire.as_bytes(), &config)
                .map(|_| ())
                .map_err(|r| r.status)
        };
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n"),
            Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert_eq!(
            status(&format!("GET /{} HTTP/1.1\r\n", "x".repeat(64))),
            Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(StatusCode::NOT_IMPLEMENTED)
        );
    }

    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(parse_content_length(b" 0042 "), Ok(42));
        assert_eq!(parse_content_length(b"18446744073709551615"), Ok(u64::MAX));
        for bad in [
            &b"+1"[..],
            b"-1",
            b"",
            b" ",
            b"1,1",
            b"1 1",
            b"0x1",
            b"18446744073709551616",
        ] {
            assert!(parse_content_length(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bodiless_responses() {
        let response = |status: u16| {
            let mut response = Response::new(b"body".to_vec());
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, "99".parse().unwrap());
            response
        };
        let text = |status, method, close| {
            String::from_utf8(encode_response(&response(status), &method, close)).unwrap()
        };
        assert_eq!(
            text(200, Method::GET, true),
            "HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbody"
        );
        assert_eq!(
            text(200, Method::HEAD, false),
            "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n"
        );
        assert_eq!(
            text(204, Method::GET, false),
            "HTTP/1.1 204 No Content\r\n\r\n"
        );
        assert_eq!(
            text(304, Method::GET, false),
            "HTTP/1.1 304 Not Modified\r\n\r\n"
        );
        assert_eq!(
            text(101, Method::GET, true),
            "HTTP/1.1 101 Switching Protocols\r\n\r\n"
        );
    }
}
