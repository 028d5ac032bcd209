//! Certificates made for one test (a CA and a `localhost` leaf it signs, with rcgen), the
//! runner flags that serve them, and blocking TLS clients that trust only that CA.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PublicKeyData};
use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::WebSocket;

use super::IO_TIMEOUT;

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;
pub type TlsWebSocket = WebSocket<TlsStream>;

/// A CA, a leaf for `localhost` and 127.0.0.1 signed by it, and their files (removed on drop).
pub struct Certs {
    dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client: Arc<ClientConfig>,
    /// The leaf's public key (SubjectPublicKeyInfo, DER), for browsers' pinning flags.
    pub spki: Vec<u8>,
    /// What `cert` and `key` hold, to put in another runner's files.
    pub cert_pem: String,
    pub key_pem: String,
}

impl Certs {
    /// New certificates, in a directory of their own named after `name`.
    pub fn new(name: &str) -> Certs {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "wsbox test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("self-signed CA");
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("leaf params")
            .signed_by(&leaf_key, &issuer)
            .expect("leaf signed by the CA");

        let dir = std::env::temp_dir().join(format!("wsbox-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("certificate directory");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let cert_pem = leaf.pem();
        let key_pem = leaf_key.serialize_pem();
        std::fs::write(&cert, &cert_pem).expect("write cert.pem");
        std::fs::write(&key, &key_pem).expect("write key.pem");

        let mut roots = RootCertStore::empty();
        roots
            .add(ca_cert.der().clone())
            .expect("CA into the root store");
        let mut client =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Every handshake shows the server's certificate: a resumed one would not.
        client.resumption = Resumption::disabled();
        Certs {
            dir,
            cert,
            key,
            client: Arc::new(client),
            spki: leaf_key.subject_public_key_info(),
            cert_pem,
            key_pem,
        }
    }

    /// The runner flags that serve these certificates.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--tls-cert".to_owned(),
            self.cert.display().to_string(),
            "--tls-key".to_owned(),
            self.key.display().to_string(),
        ]
    }

    /// A TLS connection to `addr` for `localhost`, handshake done.
    pub fn connect(&self, addr: SocketAddr) -> TlsStream {
        self.try_connect(addr).expect("TLS handshake")
    }

    /// The TLS handshake's result: `Err` when the server's certificate is refused.
    pub fn try_connect(&self, addr: SocketAddr) -> std::io::Result<TlsStream> {
        self.try_connect_on(TcpStream::connect(addr)?)
    }

    /// The TLS handshake over the connected `tcp`.
    pub fn try_connect_on(&self, tcp: TcpStream) -> std::io::Result<TlsStream> {
        tcp.set_read_timeout(Some(IO_TIMEOUT))?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))?;
        let name = ServerName::try_from("localhost").expect("server name");
        let connection =
            ClientConnection::new(self.client.clone(), name).expect("client connection");
        let mut stream = StreamOwned::new(connection, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(stream)
    }

    /// A WebSocket over TLS (`wss://localhost:PORT{path}`).
    pub fn wss(&self, addr: SocketAddr, path: &str) -> TlsWebSocket {
        self.wss_on(TcpStream::connect(addr).expect("connect"), path)
    }

    /// A WebSocket over TLS on the connected `tcp` (e.g. one with a small receive buffer).
    pub fn wss_on(&self, tcp: TcpStream, path: &str) -> TlsWebSocket {
        let url = format!(
            "wss://localhost:{}{path}",
            tcp.peer_addr().expect("peer").port()
        );
        let stream = self.try_connect_on(tcp).expect("TLS handshake");
        let (socket, response) = tungstenite::client::client(url, stream).expect("wss handshake");
        assert_eq!(response.status(), 101);
        socket
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
