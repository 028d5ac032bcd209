//! `wss://` in the client (feature `tls`, on for the tests through wsbox's dev-dependency on
//! itself), against TLS WebSocket servers written by others: tungstenite over a rustls
//! server connection, and Python `websockets` with `ssl` (which compresses by default).
//! Certificates are made per test with rcgen: a CA and a leaf it signs.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use wsbox::client::rustls::crypto::ring;
use wsbox::client::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use wsbox::client::rustls::server::WebPkiClientVerifier;
use wsbox::client::rustls::server::danger::ClientCertVerifier;
use wsbox::client::rustls::{
    self, AlertDescription, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
};
use wsbox::client::{ClientConfig, TlsError, connect_tls, tls_config};
use wsbox::deflate::Deflate;
use wsbox::{ClientError, CloseCode, Config, Message};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A CA and a leaf it signed for `names`.
struct Pki {
    ca: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    leaf_pem: String,
    leaf_key: KeyPair,
}

impl Pki {
    fn new(names: &[&str]) -> Pki {
        Pki::with(names, |_| {})
    }

    /// A CA and a leaf for `names`, with `edit` applied to the leaf's parameters.
    fn with(names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names: a store holding another CA of the same name would find it as the
        // issuer and fail on its signature instead (`BadSignature`).
        static CAS: AtomicUsize = AtomicUsize::new(0);
        let n = CAS.fetch_add(1, Ordering::Relaxed);
        ca.distinguished_name
            .push(DnType::CommonName, format!("wsbox test CA {n}"));
        let ca_cert = ca.self_signed(&ca_key).expect("self-signed CA");
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().expect("leaf key");
        let mut leaf =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("leaf params");
        edit(&mut leaf);
        let leaf = leaf.signed_by(&leaf_key, &issuer).expect("leaf signed");
        Pki {
            ca: ca_cert.der().clone(),
            leaf: leaf.der().clone(),
            leaf_pem: leaf.pem(),
            leaf_key,
        }
    }

    /// A root store holding this CA only.
    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).expect("CA into the store");
        roots
    }

    fn server_config(&self) -> Arc<ServerConfig> {
        self.server_config_with(WebPkiClientVerifier::no_client_auth())
    }

    /// A TLS 1.2 and 1.3 server configuration checking clients with `clients`.
    fn server_config_with(&self, clients: Arc<dyn ClientCertVerifier>) -> Arc<ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_client_cert_verifier(clients)
            .with_single_cert(vec![self.leaf.clone()], key)
            .expect("server certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

type ServerSocket = tungstenite::WebSocket<StreamOwned<ServerConnection, TcpStream>>;

/// A tungstenite server over rustls for one connection: `serve` gets the open WebSocket,
/// or the handshake's error (to see which alert our client sent).
fn tungstenite_tls<T: Send + 'static>(
    config: Arc<ServerConfig>,
    serve: impl FnOnce(Result<ServerSocket, tungstenite::Error>) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().expect("accept");
        tcp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        tcp.set_write_timeout(Some(TIMEOUT)).expect("timeout");
        let tls = StreamOwned::new(ServerConnection::new(config).expect("connection"), tcp);
        serve(tungstenite::accept(tls).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => panic!("a blocking handshake"),
        }))
    });
    (addr, handle)
}

/// The TLS error rustls reported in a failed handshake of `tungstenite_tls`.
fn rustls_error(error: &tungstenite::Error) -> Option<&rustls::Error> {
    match error {
        tungstenite::Error::Io(e) => e.get_ref()?.downcast_ref(),
        _ => None,
    }
}

fn client_config() -> ClientConfig {
    ClientConfig::default()
        .handshake_timeout(TIMEOUT)
        .read_timeout(Some(TIMEOUT))
}

fn tls_error(result: Result<impl Sized, ClientError>) -> TlsError {
    match result.map(|_| ()) {
        Err(ClientError::Tls(e)) => e,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[test]
fn echoes_text_binary_and_a_large_message_then_closes_cleanly() {
    let pki = Pki::new(&["localhost"]);
    let (addr, server) = tungstenite_tls(pki.server_config(), |socket| {
        let mut socket = socket.expect("server handshake");
        let sni = socket.get_ref().conn.server_name().map(str::to_owned);
        loop {
            match socket.read().expect("server read") {
                tungstenite::Message::Close(frame) => {
                    // tungstenite answers the close itself; flushing sends it.
                    let _ = socket.flush();
                    return (
                        sni,
                        frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                    );
                }
                message @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_)) => {
                    socket.send(message).expect("server echo")
                }
                _ => {}
            }
        }
    });
    let url = format!("wss://localhost:{}/echo", addr.port());
    let (mut websocket, response) =
        connect_tls(&url, &[], &client_config(), tls_config(pki.roots())).expect("wss handshake");
    assert_eq!(response.status(), 101);
    assert_eq!(
        websocket.get_ref().conn.alpn_protocol(),
        Some(&b"http/1.1"[..])
    );

    websocket.send_text("héllo over TLS").unwrap();
    assert_eq!(
        websocket.next(),
        Some(Message::Text("héllo over TLS".into()))
    );
    websocket.send_binary(&[0, 1, 2, 255]).unwrap();
    assert_eq!(websocket.next(), Some(Message::Binary(vec![0, 1, 2, 255])));
    // Many TLS records each way (16 KiB each).
    let large: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    websocket.send_binary(&large).unwrap();
    assert_eq!(websocket.next(), Some(Message::Binary(large)));

    websocket.close(CloseCode::NORMAL, "bye").unwrap();
    let started = Instant::now();
    assert_eq!(websocket.next(), None);
    assert!(
        started.elapsed() < TIMEOUT / 2,
        "the server's close and TCP close end the connection"
    );
    assert_eq!(
        websocket.close_reason().map(|c| c.code),
        Some(CloseCode::NORMAL)
    );
    let (sni, close) = server.join().expect("server thread");
    assert_eq!(sni.as_deref(), Some("localhost"), "SNI is the URL's host");
    assert_eq!(close, Some((1000, "bye".to_owned())));
}

#[test]
fn a_certificate_from_an_unknown_ca_is_refused() {
    let pki = Pki::new(&["localhost"]);
    let other = Pki::new(&["localhost"]);
    let (addr, server) = tungstenite_tls(pki.server_config(), |socket| {
        rustls_error(&socket.expect_err("the client refuses")).cloned()
    });
    let url = format!("wss://localhost:{}/", addr.port());
    let error = tls_error(connect_tls(
        &url,
        &[],
        &client_config(),
        tls_config(other.roots()),
    ));
    assert!(matches!(error, TlsError::UnknownIssuer), "{error:?}");
    assert!(error.to_string().contains("root store"), "{error}");
    assert_eq!(
        server.join().expect("server thread"),
        Some(rustls::Error::AlertReceived(AlertDescription::UnknownCA)),
        "the server is told why"
    );
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let pki = Pki::new(&["wrong.example"]);
    let (addr, server) = tungstenite_tls(pki.server_config(), |socket| socket.is_err());
    let url = format!("wss://localhost:{}/", addr.port());
    let error = tls_error(connect_tls(
        &url,
        &[],
        &client_config(),
        tls_config(pki.roots()),
    ));
    match &error {
        TlsError::NameMismatch { host, presented } => {
            assert_eq!(host, "localhost");
            assert!(
                presented.iter().any(|name| name.contains("wrong.example")),
                "{presented:?}"
            );
        }
        other => panic!("expected a name mismatch, got {other:?}"),
    }
    assert!(server.join().expect("server thread"));

    // An address is checked against the certificate's addresses, not its names.
    let pki = Pki::new(&["localhost"]);
    let (addr, server) = tungstenite_tls(pki.server_config(), |socket| socket.is_err());
    let url = format!("wss://127.0.0.1:{}/", addr.port());
    let error = tls_error(connect_tls(
        &url,
        &[],
        &client_config(),
        tls_config(pki.roots()),
    ));
    assert!(
        matches!(&error, TlsError::NameMismatch { host, .. } if host == "127.0.0.1"),
        "{error:?}"
    );
    assert!(server.join().expect("server thread"));
}

#[test]
fn an_expired_certificate_is_refused() {
    let pki = Pki::with(&["localhost"], |leaf| {
        leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let (addr, server) = tungstenite_tls(pki.server_config(), |socket| socket.is_err());
    let url = format!("wss://localhost:{}/", addr.port());
    let error = tls_error(connect_tls(
        &url,
        &[],
        &client_config(),
        tls_config(pki.roots()),
    ));
    assert!(matches!(error, TlsError::Expired), "{error:?}");
    assert!(server.join().expect("server thread"));
}

#[test]
fn a_server_that_wants_a_client_certificate_says_so() {
    let pki = Pki::new(&["localhost"]);
    let clients = WebPkiClientVerifier::builder_with_provider(
        Arc::new(pki.roots()),
        Arc::new(ring::default_provider()),
    )
    .build()
    .expect("client verifier");
    let config = pki.server_config_with(clients);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local_addr").port();
    // rustls alone: the refusal comes before any WebSocket.
    let server = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().expect("accept");
        tcp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let mut connection = ServerConnection::new(config).expect("connection");
        let error = loop {
            if let Err(e) = connection.complete_io(&mut tcp) {
                break e;
            }
        };
        // Read what the client sent after its Finished (the upgrade request) until it
        // hangs up: closing with it unread would reset the connection, and the reset could
        // overtake our alert.
        let _ = std::io::copy(&mut tcp, &mut std::io::sink());
        error.to_string()
    });
    let url = format!("wss://localhost:{port}/");
    // With TLS 1.3 our handshake is over before the server looks at our (empty)
    // certificate: its alert arrives while we read the upgrade's response.
    let error = tls_error(connect_tls(
        &url,
        &[],
        &client_config(),
        tls_config(pki.roots()),
    ));
    assert!(
        matches!(
            error,
            TlsError::Other(rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired
            ))
        ),
        "{error:?}"
    );
    let server = server.join().expect("server thread");
    assert!(server.contains("no certificates"), "{server}");
}

#[test]
fn a_plain_server_reached_with_wss_is_not_tls() {
    let pki = Pki::new(&["localhost"]);
    let refused = |port: u16| {
        let url = format!("wss://127.0.0.1:{port}/");
        let error = tls_error(connect_tls(
            &url,
            &[],
            &client_config(),
            tls_config(pki.roots()),
        ));
        assert!(matches!(error, TlsError::NotTls), "{error:?}");
        assert!(error.to_string().contains("plain ws://"), "{error}");
    };
    // Python `websockets` and wsbox's server hang up on a ClientHello.
    refused(Python::serve(None).port);
    let (addr, _accepted) = support::server(Default::default(), |_| None);
    refused(addr.port());

    // Others (nginx, Node's http) answer it with a 400: bytes that are no TLS record.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local_addr").port();
    let http = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().expect("accept");
        tcp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let mut hello = [0; 5];
        tcp.read_exact(&mut hello).expect("the ClientHello");
        tcp.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .expect("the 400");
        hello
    });
    refused(port);
    assert_eq!(
        http.join().expect("server")[0],
        22,
        "a TLS handshake record came"
    );
}

#[test]
fn the_url_picks_the_function() {
    let error = wsbox::client::connect("wss://localhost:1/").unwrap_err();
    assert!(
        matches!(&error, ClientError::InvalidUrl(why) if why.contains("connect_tls")),
        "{error:?}"
    );
    let tls = tls_config(RootCertStore::empty());
    let error = connect_tls("ws://localhost:1/", &[], &client_config(), tls).unwrap_err();
    assert!(matches!(error, ClientError::InvalidUrl(_)), "{error:?}");
}

#[test]
fn a_silent_server_times_the_tls_handshake_out() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("wss://localhost:{}/", listener.local_addr().unwrap().port());
    let config = client_config().handshake_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let result = connect_tls(&url, &[], &config, tls_config(RootCertStore::empty()));
    match result.map(|_| ()) {
        Err(ClientError::Io(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ),
            "{e:?}"
        ),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < TIMEOUT / 2, "{:?}", started.elapsed());
    drop(listener);
}

#[test]
fn deflate_over_wss_with_python_websockets() {
    let pki = Pki::new(&["localhost"]);
    let python = Python::serve(Some(&pki));
    let url = format!("wss://localhost:{}/", python.port);
    let config = client_config().session(Config::default().deflate(Some(Deflate::default())));
    let (mut websocket, response) =
        connect_tls(&url, &[], &config, tls_config(pki.roots())).expect("wss handshake");
    let agreed = response.headers()[http::header::SEC_WEBSOCKET_EXTENSIONS]
        .to_str()
        .unwrap();
    assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
    websocket.send_text("extensions?").unwrap();
    assert_eq!(
        websocket.next(),
        Some(Message::Text("permessage-deflate".into())),
        "the server compresses"
    );

    // `websockets` keeps its compression context across messages: similar messages
    // refer back to earlier ones, and so do ours.
    for i in 0..200 {
        let json = format!(
            r#"{{"id":{i},"user":"user{}","text":"message number {i}"}}"#,
            i % 7
        );
        websocket.send_text(&json).unwrap();
        assert_eq!(websocket.next(), Some(Message::Text(json)));
    }
    let large = r#"{"key":"value","list":[1,2,3]},"#.repeat(16 << 10);
    websocket.send_text(&large).unwrap();
    assert_eq!(websocket.next(), Some(Message::Text(large)));
    websocket.send_binary(&[7; 1000]).unwrap();
    assert_eq!(websocket.next(), Some(Message::Binary(vec![7; 1000])));

    websocket.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(websocket.next(), None);
    assert_eq!(
        websocket.close_reason().map(|c| c.code),
        Some(CloseCode::NORMAL)
    );
}

/// Python `websockets`' echo server, with TLS if given certificates (answering
/// "extensions?" with the names of the extensions it negotiated). Killed on drop.
struct Python {
    child: Child,
    port: u16,
    dir: Option<PathBuf>,
}

const PYTHON_SERVER: &str = r#"
import ssl, sys
from websockets.sync.server import serve

def handler(ws):
    for message in ws:
        if message == "extensions?":
            ws.send(",".join(e.name for e in ws.protocol.extensions))
        else:
            ws.send(message)

context = None
if len(sys.argv) > 1:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
with serve(handler, "127.0.0.1", 0, ssl=context, max_size=None) as server:
    print(server.socket.getsockname()[1], flush=True)
    server.serve_forever()
"#;

impl Python {
    fn serve(pki: Option<&Pki>) -> Python {
        let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
        assert!(
            std::path::Path::new(python).exists(),
            "{python} is missing: ./test.sh (scripts/setup.sh's ensure_venv) makes it"
        );
        let mut command = Command::new(python);
        command.args(["-c", PYTHON_SERVER]);
        let dir = pki.map(|pki| {
            let dir = std::env::temp_dir().join(format!(
                "wsbox-client-tls-{}-{:?}",
                std::process::id(),
                thread::current().id()
            ));
            std::fs::create_dir_all(&dir).expect("certificate directory");
            std::fs::write(dir.join("cert.pem"), &pki.leaf_pem).expect("cert.pem");
            std::fs::write(dir.join("key.pem"), pki.leaf_key.serialize_pem()).expect("key.pem");
            command.arg(dir.join("cert.pem")).arg(dir.join("key.pem"));
            dir
        });
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, port) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = port
            .recv_timeout(Duration::from_secs(60))
            .expect("the python server announces its port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("a port, not {line:?}"));
        Python { child, port, dir }
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
