//! The opening handshake (RFC 6455 §4): request validation, `Sec-WebSocket-Accept`,
//! subprotocol choice, and the 101/400/426 responses. Pure functions over `http` types.
//!
//! [`accept`] leaves what it settled ([`Accepted`]) in the 101 response's extensions, for
//! whoever completes the upgrade to open the session from: the blocking
//! [`server`](crate::server) behind [`start`](crate::start), the guest SDK, a custom server.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use sha1::{Digest, Sha1};

use super::config::Config;
use super::deflate::{self, Params};
use super::error::{RequestError, WebsocketError};
use super::session::Session;

/// The GUID that RFC 6455 §1.3 appends to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: base64(SHA-1(key ‖ GUID)).
///
/// # Examples
///
/// ```
/// // The example from RFC 6455 §1.3.
/// assert_eq!(
///     wsbox::handshake::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
/// );
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// Whether any comma-separated token of any `name` header equals `token`, ignoring ASCII
/// case and surrounding whitespace.
pub(crate) fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Checks an upgrade request against RFC 6455 §4.2.1 and returns its `Sec-WebSocket-Key`.
///
/// # Examples
///
/// ```
/// let request = http::Request::get("/chat")
///     .header("Host", "example.com")
///     .header("Upgrade", "websocket")
///     .header("Connection", "keep-alive, Upgrade")
///     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
///     .header("Sec-WebSocket-Version", "13")
///     .body(())
///     .unwrap();
/// assert_eq!(wsbox::handshake::validate(&request).unwrap(), "dGhlIHNhbXBsZSBub25jZQ==");
/// ```
pub fn validate<B>(request: &Request<B>) -> Result<&str, RequestError> {
    if request.method() != Method::GET {
        return Err(RequestError::MethodNotGet);
    }
    if request.version() < Version::HTTP_11 {
        return Err(RequestError::HttpVersionTooOld);
    }
    let headers = request.headers();
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) => return Err(RequestError::MissingHost),
        // RFC 7230 §5.4: two hosts could route one way here and another way in a proxy.
        (Some(_), Some(_)) => return Err(RequestError::DuplicateHost),
        (Some(_), None) => {}
    }
    if !has_token(headers, header::UPGRADE, "websocket") {
        return Err(RequestError::MissingUpgradeWebsocket);
    }
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(RequestError::MissingConnectionUpgrade);
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(RequestError::MissingKey);
    };
    let key = key
        .to_str()
        .map_err(|_| RequestError::InvalidKey)?
        .trim_ascii();
    match BASE64.decode(key) {
        Ok(bytes) if bytes.len() == 16 => {}
        _ => return Err(RequestError::InvalidKey),
    }
    let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    match (versions.next(), versions.next()) {
        (Some(v), None) if v.as_bytes().trim_ascii() == b"13" => Ok(key),
        _ => Err(RequestError::UnsupportedVersion),
    }
}

/// The subprotocols a client offered, in its order of preference
/// (see [`requested_protocols`](crate::requested_protocols)).
#[derive(Debug, Clone)]
pub struct RequestedProtocolsIter {
    protocols: std::vec::IntoIter<String>,
}

impl Iterator for RequestedProtocolsIter {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        self.protocols.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.protocols.size_hint()
    }
}

impl ExactSizeIterator for RequestedProtocolsIter {}

/// The subprotocols a request offers: every `Sec-WebSocket-Protocol` header line, split at
/// commas, trimmed, empty items dropped, in order.
pub(crate) fn requested_protocols<B>(request: &Request<B>) -> RequestedProtocolsIter {
    let protocols = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect::<Vec<_>>();
    RequestedProtocolsIter {
        protocols: protocols.into_iter(),
    }
}

/// What an accepted handshake settled, found in the extensions of the 101 response that
/// [`accept`] returns. Whoever sends that response opens the session from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    config: Config,
    protocol: Option<String>,
    deflate: Option<Params>,
}

impl Accepted {
    /// The limits for the session.
    pub fn config(&self) -> Config {
        self.config
    }

    /// The subprotocol announced in the 101 response, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The permessage-deflate parameters the 101 response agreed to, if any.
    pub fn deflate(&self) -> Option<Params> {
        self.deflate
    }

    /// The server session this handshake settled: its limits, and compression if agreed.
    pub fn session(&self) -> Session {
        let session = Session::server(self.config);
        match self.deflate {
            Some(params) => session.with_deflate(params),
            None => session,
        }
    }
}

/// Validates `request` and builds the 101 response, announcing `subprotocol` (which the
/// client must have offered) if given, and permessage-deflate if `config` allows it and the
/// client offered parameters it can accept ([`deflate::negotiate`]). The response carries an
/// [`Accepted`] with `config` in its extensions. [`start`](crate::start) is this plus the blocking server's hand-over;
/// a guest component or a custom server calls it directly.
///
/// # Errors
///
/// As [`start`](crate::start): what is wrong with the request, or
/// [`WebsocketError::WrongSubprotocol`].
///
/// # Examples
///
/// ```
/// use wsbox::handshake::{Accepted, accept};
///
/// let request = wsbox::doc_request(&["chat"]);
/// let response = accept(&request, Some("chat"), wsbox::Config::default()).unwrap();
/// assert_eq!(response.status(), 101);
/// let accepted = response.extensions().get::<Accepted>().unwrap();
/// assert_eq!(accepted.protocol(), Some("chat"));
/// ```
pub fn accept<B>(
    request: &Request<B>,
    subprotocol: Option<&str>,
    config: Config,
) -> Result<Response<()>, WebsocketError> {
    let key = validate(request)?;
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept_key(key));
    if let Some(protocol) = subprotocol {
        if !requested_protocols(request).any(|p| p == protocol) {
            return Err(WebsocketError::WrongSubprotocol);
        }
        let value =
            HeaderValue::from_str(protocol).map_err(|_| WebsocketError::WrongSubprotocol)?;
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    let deflate = config
        .get_deflate()
        .and_then(|ours| deflate::negotiate(request.headers(), ours));
    if let Some(params) = deflate {
        // Only tokens and digits: always a valid header value.
        response = response.header(header::SEC_WEBSOCKET_EXTENSIONS, params.to_header());
    }
    let accepted = Accepted {
        config,
        protocol: subprotocol.map(str::to_owned),
        deflate,
    };
    response
        .extension(accepted)
        .body(())
        .map_err(|_| WebsocketError::WrongSubprotocol)
}

impl WebsocketError {
    /// The HTTP response that refuses the upgrade: 426 Upgrade Required with
    /// `Sec-WebSocket-Version: 13` for an unsupported version, 400 Bad Request otherwise.
    /// The body is the reason, in plain text.
    ///
    /// # Examples
    ///
    /// ```
    /// let request = http::Request::get("/").body(()).unwrap();
    /// let error = wsbox::start(&request, None::<&str>).unwrap_err();
    /// let response = error.to_response();
    /// assert_eq!(response.status(), 400);
    /// assert_eq!(
    ///     String::from_utf8(response.into_body()).unwrap(),
    ///     "invalid websocket request: missing Host header\n",
    /// );
    /// ```
    pub fn to_response(&self) -> Response<Vec<u8>> {
        let mut response = Response::new(format!("{self}\n").into_bytes());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let WebsocketError::InvalidWebsocketRequest(RequestError::UnsupportedVersion) = self {
            *response.status_mut() = StatusCode::UPGRADE_REQUIRED;
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        } else {
            *response.status_mut() = StatusCode::BAD_REQUEST;
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_request() -> http::request::Builder {
        Request::get("/chat")
            .header("Host", "server.example.com")
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("Sec-WebSocket-Version", "13")
    }

    fn with_header(name: &str, value: &str) -> Request<()> {
        let mut req = upgrade_request().body(()).unwrap();
        let name = header::HeaderName::from_bytes(name.as_bytes()).unwrap();
        req.headers_mut().remove(&name);
        if !value.is_empty() {
            req.headers_mut()
                .insert(name, HeaderValue::from_str(value).unwrap());
        }
        req
    }

    #[test]
    fn rfc_example_is_accepted() {
        let response = accept(
            &upgrade_request().body(()).unwrap(),
            None,
            Config::default(),
        )
        .unwrap();
        assert_eq!(response.status(), 101);
        assert_eq!(
            response.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(!response.headers().contains_key("sec-websocket-protocol"));
    }

    #[test]
    fn each_rule_has_its_error() {
        use RequestError::*;
        let post = upgrade_request().method("POST").body(()).unwrap();
        assert_eq!(validate(&post), Err(MethodNotGet));
        let old = upgrade_request()
            .version(Version::HTTP_10)
            .body(())
            .unwrap();
        assert_eq!(validate(&old), Err(HttpVersionTooOld));
        let cases = [
            ("host", "", MissingHost),
            ("upgrade", "", MissingUpgradeWebsocket),
            ("upgrade", "h2c", MissingUpgradeWebsocket),
            ("connection", "", MissingConnectionUpgrade),
            ("connection", "keep-alive", MissingConnectionUpgrade),
            ("sec-websocket-key", "", MissingKey),
            ("sec-websocket-key", "dG9vc2hvcnQ=", InvalidKey),
            ("sec-websocket-key", "not base64!!", InvalidKey),
            ("sec-websocket-version", "", UnsupportedVersion),
            ("sec-websocket-version", "8", UnsupportedVersion),
        ];
        for (name, value, expected) in cases {
            assert_eq!(
                validate(&with_header(name, value)),
                Err(expected),
                "{name}: {value}"
            );
        }
    }

    #[test]
    fn a_repeated_host_is_refused() {
        let mut request = upgrade_request().body(()).unwrap();
        request
            .headers_mut()
            .append(header::HOST, HeaderValue::from_static("server.example.com"));
        assert_eq!(validate(&request), Err(RequestError::DuplicateHost));
        assert_eq!(
            WebsocketError::from(RequestError::DuplicateHost)
                .to_response()
                .status(),
            400
        );
    }

    #[test]
    fn tokens_are_case_insensitive_lists() {
        assert!(validate(&with_header("upgrade", "WebSocket")).is_ok());
        assert!(validate(&with_header("connection", "keep-alive,  UPGRADE ")).is_ok());
        let mut two_lines = with_header("connection", "keep-alive");
        two_lines
            .headers_mut()
            .append(header::CONNECTION, HeaderValue::from_static("upgrade"));
        assert!(validate(&two_lines).is_ok());
    }

    #[test]
    fn protocols_from_several_lines() {
        let req = upgrade_request()
            .header("Sec-WebSocket-Protocol", "chat,  superchat ")
            .header("Sec-WebSocket-Protocol", " , v2.echo")
            .body(())
            .unwrap();
        let protocols = requested_protocols(&req);
        assert_eq!(protocols.len(), 3);
        assert_eq!(
            protocols.collect::<Vec<_>>(),
            ["chat", "superchat", "v2.echo"]
        );
        assert_eq!(
            accept(&req, Some("superchat"), Config::default())
                .unwrap()
                .headers()["sec-websocket-protocol"],
            "superchat"
        );
        assert_eq!(
            accept(&req, Some("other"), Config::default()).unwrap_err(),
            WebsocketError::WrongSubprotocol
        );
    }

    #[test]
    fn error_responses() {
        let version = WebsocketError::InvalidWebsocketRequest(RequestError::UnsupportedVersion);
        let response = version.to_response();
        assert_eq!(response.status(), 426);
        assert_eq!(response.headers()["sec-websocket-version"], "13");
        assert_eq!(WebsocketError::WrongSubprotocol.to_response().status(), 400);
    }
}
