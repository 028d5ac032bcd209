//! Helpers shared by the integration tests (all on 127.0.0.1). Each test crate that says
//! `mod support;` uses only some of them, hence `allow(dead_code)`.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use http::{Request, Response};
use wsbox::server::{Server, ServerConfig};
use wsbox::{CloseFrame, Message, Websocket};

/// The read timeout of the connections `tungstenite_peer` makes, on both ends.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Serves on a free port of 127.0.0.1 with `config`: a request without `Upgrade` is
/// answered 200 "ok"; an upgrade goes to `wsbox::start` with the subprotocol `choose`
/// picks, and each server-side `Websocket` to the returned receiver.
pub fn server<F>(config: ServerConfig, choose: F) -> (SocketAddr, Receiver<Websocket>)
where
    F: Fn(&Request<Vec<u8>>) -> Option<String> + Send + Sync + 'static,
{
    let (sender, accepted) = mpsc::channel();
    let server =
        Server::bind_with_config("127.0.0.1:0", config, move |request: &Request<Vec<u8>>| {
            if !request.headers().contains_key(http::header::UPGRADE) {
                return Response::new(b"ok".to_vec());
            }
            match wsbox::start(request, choose(request)) {
                Ok((response, websocket)) => {
                    let sender = sender.clone();
                    thread::spawn(move || {
                        if let Ok(websocket) = websocket.recv() {
                            let _ = sender.send(websocket);
                        }
                    });
                    response.map(|()| Vec::new())
                }
                Err(error) => error.to_response(),
            }
        })
        .expect("bind 127.0.0.1:0");
    let addr = server.local_addr().expect("local_addr");
    thread::spawn(move || server.run());
    (addr, accepted)
}

/// Echoes every message until the connection ends; returns the peer's close frame.
pub fn echo(mut websocket: Websocket) -> Option<CloseFrame> {
    while let Some(message) = websocket.next() {
        let sent = match message {
            Message::Text(text) => websocket.send_text(&text),
            Message::Binary(data) => websocket.send_binary(&data),
        };
        if sent.is_err() {
            break;
        }
    }
    websocket.close_reason().cloned()
}

/// A tungstenite server running `serve` on its one connection, and our client to it.
pub fn tungstenite_peer<T, F>(serve: F) -> (Websocket, JoinHandle<T>)
where
    T: Send + 'static,
    F: FnOnce(tungstenite::WebSocket<TcpStream>) -> T + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        serve(tungstenite::accept(stream).expect("tungstenite handshake"))
    });
    let client = wsbox::client::connect(&format!("ws://{addr}/")).expect("our handshake");
    client
        .get_ref()
        .set_read_timeout(Some(TIMEOUT))
        .expect("timeout");
    (client, handle)
}
