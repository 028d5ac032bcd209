//! The HTTP/1.1 phase of a connection: hyper parses requests, the guest's `handle` answers
//! them, and a 101 answer (checked against the request by the runner, which frames the
//! WebSocket) hands the socket over to the WebSocket phase.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use wsbox::handshake::Accepted;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    CONNECTION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, ORIGIN, UPGRADE,
};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, StatusCode, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info, warn};

use crate::engine::{Fault, Sandbox};
use crate::guest::Guest;
use crate::server::{NoSandbox, Server};
use crate::state::RequestInfo;
use crate::wit::{Request, Response};

type HttpResponse = hyper::Response<Full<Bytes>>;

/// A connection whose guest accepted a WebSocket upgrade.
pub struct Upgraded<S> {
    /// The TCP stream, or the TLS stream over it.
    pub stream: S,
    /// Bytes the client sent after its request head, already read by hyper.
    pub early: Bytes,
    pub sandbox: Sandbox,
}

/// What the requests of one connection share: its guest — the connection's state (its id)
/// from the first request on, with a live instance only while a request is answered or
/// after an upgrade was accepted: between keep-alive requests the instance hibernates, so an
/// idle HTTP connection holds none — and the upgrade once one was accepted. hyper's
/// service futures must be `Send` and `'static`, hence a lock; it is never held across an
/// await: a request takes the guest out for its call and puts it back.
#[derive(Default)]
struct Slot {
    guest: Option<Guest>,
    upgrade: Option<OnUpgrade>,
}

fn lock(slot: &Mutex<Slot>) -> std::sync::MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long a new connection waits for idle instances to hibernate when memory or
/// instances run short, before its 503.
const NEW_CONNECTION_PATIENCE: Duration = Duration::from_millis(500);

/// How long a response already being written may still take once the HTTP phase's
/// deadline has passed: a client that reads gets its answer, one that does not is dropped.
const DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// Serves HTTP requests on `stream` until the connection ends (`None`) or a request is
/// upgraded to a WebSocket, within `--handshake-timeout` for the whole phase: hyper's own
/// timer covers only request heads, so a stalled body or a client that never reads the
/// responses would otherwise hold the connection, and its guest, forever. At the deadline
/// no further request is read, and a response in flight gets [`DEADLINE_GRACE`] to finish.
///
/// `limit` is what is left of `--handshake-timeout` (a TLS handshake took the rest).
pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    shared: &Arc<Server>,
    limit: Duration,
) -> Option<Upgraded<S>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let slot = Arc::new(Mutex::new(Slot::default()));
    let _cleanup = Cleanup {
        slot: &slot,
        server: shared,
    };
    let service = {
        let slot = slot.clone();
        let shared = shared.clone();
        hyper::service::service_fn(move |request| {
            let slot = slot.clone();
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(respond(request, &slot, &shared, peer).await) }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limit)
        .max_buf_size(shared.settings.max_request_head);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let mut shutdown = shared.shutdown.clone();
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = tokio::time::sleep(limit) => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(DEADLINE_GRACE, connection).await {
                Ok(result) => result,
                Err(_) => {
                    debug!(%peer, ?limit, "http phase timed out");
                    return None;
                }
            }
        }
        () = shutdown.wait() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(shared.settings.shutdown_timeout, connection).await {
                Ok(result) => result,
                Err(_) => return None,
            }
        }
    };
    if let Err(error) = result {
        debug!(%peer, %error, "http connection ended");
        return None;
    }
    let on_upgrade = lock(&slot).upgrade.take()?;
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(error) => {
            debug!(%peer, %error, "upgrade failed");
            return None;
        }
    };
    // hyper hands back the io it was given; anything else would be a hyper bug.
    let Ok(parts) = upgraded.downcast::<TokioIo<S>>() else {
        warn!(%peer, "upgraded connection is not the accepted stream");
        return None;
    };
    let Some(Guest::Live(sandbox)) = lock(&slot).guest.take() else {
        return None;
    };
    Some(Upgraded {
        stream: parts.io.into_inner(),
        early: parts.read_buf,
        sandbox,
    })
}

/// Unregisters an accepted upgrade whose socket never reached the WebSocket phase (the
/// client vanished after the 101, the phase timed out): whatever way [`serve`] returns
/// without handing the sandbox on.
struct Cleanup<'a> {
    slot: &'a Mutex<Slot>,
    server: &'a Server,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let guest = lock(self.slot).guest.take();
        if let Some(mut guest) = guest {
            self.server.forget(guest.state());
        }
    }
}

async fn respond(
    mut request: hyper::Request<Incoming>,
    slot: &Mutex<Slot>,
    shared: &Arc<Server>,
    peer: SocketAddr,
) -> HttpResponse {
    let wants_upgrade =
        request.headers().contains_key(UPGRADE) || request.method() == Method::CONNECT;
    if wants_upgrade
        && let Some(origin) = foreign_origin(request.headers(), &shared.settings.allowed_origins)
    {
        info!(%peer, ?origin, "upgrade refused with 403: origin not allowed");
        return closing(plain(
            StatusCode::FORBIDDEN,
            "cross-origin WebSocket refused: Origin not in the runner's --allowed-origin\n",
        ));
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, shared.settings.max_request_body)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"),
    };
    let headers: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let request = Request {
        method: parts.method.as_str().to_owned(),
        uri: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), ToString::to_string),
        version: match parts.version {
            Version::HTTP_10 => 10,
            _ => 11,
        },
        headers: headers.clone(),
        body: body.to_vec(),
    };
    let path = parts.uri.path().to_owned();
    let info = RequestInfo {
        path: path.clone(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        protocol: None,
    };

    let taken = lock(slot).guest.take();
    let made = match taken {
        // A keep-alive connection's next request: a fresh instance for its state.
        Some(mut guest) => match guest
            .wake_within(shared, peer, NEW_CONNECTION_PATIENCE)
            .await
        {
            Ok(_) => Ok(guest),
            Err(error) => {
                lock(slot).guest = Some(guest);
                Err(error)
            }
        },
        None => shared
            .sandbox(peer, NEW_CONNECTION_PATIENCE)
            .await
            .map(Guest::Live),
    };
    let mut guest = match made {
        Ok(guest) => guest,
        Err(error) => {
            warn!(%peer, %error, "no instance for a request: 503");
            crate::metrics::METRICS.refused_503.inc();
            let reason = match error {
                NoSandbox::Fault(Fault::Budget) => "memory budget exhausted\n",
                _ => "no capacity\n",
            };
            return closing(plain(StatusCode::SERVICE_UNAVAILABLE, reason));
        }
    };
    let Some(sandbox) = guest.live() else {
        return closing(plain(StatusCode::SERVICE_UNAVAILABLE, "no capacity\n"));
    };
    sandbox.state().set_request(info);
    let answer = sandbox.handle(&request).await;
    sandbox.state().flush_delivered();
    let answer = match answer {
        Ok(answer) => answer,
        Err(fault) => {
            warn!(%peer, path, %fault, "handler failed on a request");
            return closing(plain(StatusCode::INTERNAL_SERVER_ERROR, "handler failed\n"));
        }
    };
    let head = hyper::Request::from_parts(parts, ());
    let response = if answer.status == 101 {
        accept(&head, answer, shared, sandbox)
    } else {
        to_hyper(answer)
    };
    let response = match response {
        Ok(response) => response,
        Err(problem) => {
            warn!(%peer, path, problem, "handler returned an invalid response");
            return closing(plain(StatusCode::INTERNAL_SERVER_ERROR, "handler failed\n"));
        }
    };
    debug!(%peer, method = %head.method(), path, status = response.status().as_u16(), "request");
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        lock(slot).upgrade = Some(on_upgrade);
    } else {
        // What the guest set up for a WebSocket that did not open is dropped, and so is
        // the instance until the connection's next request.
        sandbox.state().reset();
        guest.hibernate();
    }
    lock(slot).guest = Some(guest);
    response
}

/// The guest accepted an upgrade. The runner frames the WebSocket, so it checks the
/// acceptance itself (a valid upgrade request, a subprotocol the client offered) and
/// answers with its own 101, plus the guest's other headers (a cookie, say).
fn accept(
    head: &hyper::Request<()>,
    answer: Response,
    shared: &Server,
    sandbox: &mut Sandbox,
) -> Result<HttpResponse, &'static str> {
    if !answer.body.is_empty() {
        return Err("a 101 response has a body");
    }
    let protocol = answer
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-protocol"))
        .map(|(_, value)| String::from_utf8_lossy(value).trim().to_owned());
    let ours = wsbox::handshake::accept(head, protocol.as_deref(), shared.session_config())
        .map_err(|_| "a 101 for a request that is not a valid upgrade, or with a subprotocol the client did not offer")?;
    let accepted = ours
        .extensions()
        .get::<Accepted>()
        .ok_or("the handshake settled nothing")?;
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *response.headers_mut() = ours.headers().clone();
    let extra = Response {
        status: 200,
        headers: answer
            .headers
            .into_iter()
            .filter(|(name, _)| !name.to_ascii_lowercase().starts_with("sec-websocket-"))
            .collect(),
        body: Vec::new(),
    };
    let guest_headers = to_hyper(extra)?;
    for (name, value) in guest_headers.headers() {
        response.headers_mut().append(name, value.clone());
    }
    sandbox.state().set_protocol(protocol);
    shared.register(sandbox.state(), accepted);
    Ok(response)
}

/// The `Origin` of a request that `--allowed-origin` refuses, if any. Browsers always send
/// `Origin` on WebSocket upgrades; a request without it comes from no browser, so no
/// visitor's cookies ride on it.
fn foreign_origin<'a>(headers: &'a HeaderMap, allowed: &[String]) -> Option<&'a HeaderValue> {
    if allowed.is_empty() {
        return None;
    }
    let mut origins = headers.get_all(ORIGIN).iter();
    let origin = origins.next()?;
    let known = origin
        .to_str()
        .is_ok_and(|origin| allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)));
    // Two `Origin` headers are no browser's: refused rather than guessed at.
    (!known || origins.next().is_some()).then_some(origin)
}

/// The guest's answer as a hyper response. The runner owns the connection and the message
/// framing (`wit/types.wit`, `response.headers`): hyper writes the body it is given, so a
/// guest's `content-length` or `transfer-encoding` would contradict the bytes on the wire
/// (response splitting behind a proxy), and its `connection` or `keep-alive` would speak
/// for a connection it does not manage. Those are dropped; a 101 keeps its `upgrade`.
fn to_hyper(answer: Response) -> Result<HttpResponse, &'static str> {
    let status = StatusCode::from_u16(answer.status).map_err(|_| "invalid status code")?;
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    if switching && !answer.body.is_empty() {
        return Err("a 101 response has a body");
    }
    // `connection` also names further headers that hold for this hop only (RFC 9110 §7.6.1).
    let named: Vec<String> = answer
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| {
            String::from_utf8_lossy(value)
                .split(',')
                .map(|token| token.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut response = hyper::Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| "invalid header name")?;
        let value = HeaderValue::from_bytes(&value).map_err(|_| "invalid header value")?;
        let upgrade = switching && name == UPGRADE;
        if !upgrade && (is_hop_by_hop(&name) || named.iter().any(|n| n == name.as_str())) {
            continue;
        }
        headers.append(name, value);
    }
    if switching {
        // Whoever sends `upgrade` must name it in `connection` (RFC 9110 §7.8).
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
    Ok(response)
}

/// Headers about one connection or the message framing (RFC 9110 §7.6.1, RFC 9112 §6).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "content-length"
            | "transfer-encoding"
            | "keep-alive"
            | "te"
            | "trailer"
            | "upgrade"
    ) || name.as_str().starts_with("proxy-")
}

/// A response generated by the runner itself.
pub fn plain(status: StatusCode, body: &'static str) -> HttpResponse {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn closing(mut response: HttpResponse) -> HttpResponse {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}
