//! A `wss://` client (feature `tls`) trusting only the CA certificates in a PEM file: sends
//! each line of stdin as a text message, offering permessage-deflate, and prints the reply
//! (an echo server's).
//!
//! ```sh
//! wsbox-runner --tls-cert cert.pem --tls-key key.pem --listen 127.0.0.1:8443 &
//! echo hello | cargo run --example wss_client -- wss://localhost:8443/ ca.pem
//! ```

use std::io::{self, BufRead};
use std::process::ExitCode;

use wsbox::client::rustls::RootCertStore;
use wsbox::client::rustls::pki_types::CertificateDer;
use wsbox::client::rustls::pki_types::pem::PemObject;
use wsbox::client::{ClientConfig, connect_tls, tls_config};
use wsbox::deflate::Deflate;
use wsbox::{Config, Message};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, ca] = args.as_slice() else {
        eprintln!("usage: wss_client wss://HOST:PORT/PATH CA.pem");
        return ExitCode::from(2);
    };
    match run(url, ca) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("wss_client: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run(url: &str, ca: &str) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{ca}: {e}"))? {
        let cert = cert.map_err(|e| format!("{ca}: {e}"))?;
        roots.add(cert).map_err(|e| format!("{ca}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{ca}: no CERTIFICATE in the file"));
    }
    let config = ClientConfig::default()
        .session(Config::default().deflate(Some(Deflate::default())))
        .read_timeout(None);
    let (mut websocket, response) =
        connect_tls(url, &[], &config, tls_config(roots)).map_err(|e| e.to_string())?;
    if let Some(extensions) = response.headers().get("sec-websocket-extensions") {
        eprintln!("wss_client: extensions: {extensions:?}");
    }
    for line in io::stdin().lock().lines() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        websocket.send_text(&line).map_err(|e| e.to_string())?;
        match websocket.recv().map_err(|e| e.to_string())? {
            Some(Message::Text(text)) => println!("{text}"),
            Some(Message::Binary(data)) => println!("<{} bytes>", data.len()),
            None => return Err("the server closed the connection".into()),
        }
    }
    websocket
        .close(wsbox::CloseCode::NORMAL, "")
        .map_err(|e| e.to_string())?;
    while websocket.recv().map_err(|e| e.to_string())?.is_some() {}
    Ok(())
}
