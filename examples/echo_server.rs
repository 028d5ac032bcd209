//! Echoes text and binary messages on any path; answers other requests with a short note.
//! Accepts permessage-deflate (RFC 7692) when the client offers it.
//!
//! ```sh
//! cargo run --release --example echo_server -- --listen 127.0.0.1:9001
//! ```

use std::thread;

fn main() {
    let listen = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => "127.0.0.1:9001".to_owned(),
        [flag, addr] if flag == "--listen" => addr.clone(),
        _ => {
            eprintln!(
                "usage: echo_server [--listen ADDR]   (default 127.0.0.1:9001; port 0 picks one)"
            );
            std::process::exit(2);
        }
    };
    let server = wsbox::server::Server::bind(&listen, |request: &http::Request<Vec<u8>>| {
        if !request.headers().contains_key(http::header::UPGRADE) {
            return http::Response::new(
                b"wsbox echo server: connect with a WebSocket client\n".to_vec(),
            );
        }
        // Accept whichever subprotocol the client prefers, as an echo server may.
        let protocol = wsbox::requested_protocols(request).next();
        // Level 1: an echo server sends back what it got; the Autobahn suite's 128 MiB
        // compression cases take half the CPU of zlib's default level 6.
        let deflate = wsbox::deflate::Deflate::default().level(1);
        let config = wsbox::Config::default().deflate(Some(deflate));
        match wsbox::start_with_config(request, protocol, config) {
            Ok((response, websocket)) => {
                let spawned = thread::Builder::new().spawn(move || {
                    if let Ok(websocket) = websocket.recv() {
                        echo(websocket);
                    }
                });
                match spawned {
                    Ok(_) => response.map(|()| Vec::new()),
                    // `thread::spawn` would panic and take every connection down with it.
                    Err(_) => {
                        let mut busy = http::Response::new(b"server busy\n".to_vec());
                        *busy.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                        busy
                    }
                }
            }
            Err(error) => error.to_response(),
        }
    });
    let server = match server {
        Ok(server) => server,
        Err(e) => {
            eprintln!("echo_server: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    match server.local_addr() {
        Ok(addr) => println!("listening on ws://{addr}/"),
        Err(e) => eprintln!("echo_server: {e}"),
    }
    server.run();
}

fn echo(mut websocket: wsbox::Websocket) {
    while let Some(message) = websocket.next() {
        let sent = match message {
            wsbox::Message::Text(text) => websocket.send_text(&text),
            wsbox::Message::Binary(data) => websocket.send_binary(&data),
        };
        if sent.is_err() {
            break;
        }
    }
}
