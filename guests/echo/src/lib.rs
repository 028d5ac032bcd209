//! The default handler component of `wsbox-runner`: echoes every text and binary message
//! on an upgrade to any path (accepting the client's first offered subprotocol, if any),
//! and serves a demo page at `/` whose script talks to the echo. It keeps nothing between
//! calls, so an instance dropped while the connection is idle (hibernation) or replaced by
//! a new version changes nothing; it registers no auto-responses: every message reaches the
//! guest and comes back as it was.

use wsbox::Message;
use wsbox::guest::{Handler, Websocket};

/// Connects back to the server it came from (`wss` when served over `https`: a page may
/// not open `ws` from there), sends one message and shows the echo in `#echo` and the
/// extensions the browser and the server agreed on (`permessage-deflate; …`) in
/// `#extensions` (the browser tests read both there).
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>wsbox echo</title></head>
<body>
<h1>wsbox echo</h1>
<p>Sent: <code id="sent"></code></p>
<p>Echo: <code id="echo"></code></p>
<p>Extensions: <code id="extensions"></code></p>
<script>
const sent = "hello from " + navigator.userAgent.split(" ")[0];
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const socket = new WebSocket(scheme + location.host + "/");
socket.onopen = () => {
  document.getElementById("extensions").textContent = socket.extensions || "none";
  document.getElementById("sent").textContent = sent;
  socket.send(sent);
};
socket.onmessage = (event) => {
  document.getElementById("echo").textContent = event.data;
  socket.close(1000, "done");
};
socket.onerror = () => {
  document.getElementById("echo").textContent = "error";
};
</script>
</body>
</html>
"#;

struct Echo;

impl Handler for Echo {
    fn handle(&mut self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        if request.headers().contains_key(http::header::UPGRADE) {
            let protocol = wsbox::requested_protocols(request).next();
            return wsbox::guest::accept(request, protocol.as_deref())
                .unwrap_or_else(|error| error.to_response());
        }
        match (request.method(), request.uri().path()) {
            (&http::Method::GET, "/") => {
                respond(http::StatusCode::OK, "text/html; charset=utf-8", PAGE)
            }
            (_, "/") => {
                let mut response = respond(
                    http::StatusCode::METHOD_NOT_ALLOWED,
                    "text/plain; charset=utf-8",
                    "GET only\n",
                );
                response
                    .headers_mut()
                    .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
                response
            }
            _ => respond(
                http::StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "not found\n",
            ),
        }
    }

    fn on_message(&mut self, websocket: &mut Websocket, message: Message) {
        // Fails only once we are closing, when there is no one left to echo to (the host
        // stops reading from a client that does not read its echoes, so no backpressure).
        let _ = websocket.send_message(&message);
    }
}

fn respond(
    status: http::StatusCode,
    content_type: &'static str,
    body: &str,
) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.as_bytes().to_vec());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

wsbox::export_handler!(Echo);
