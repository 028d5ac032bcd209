//! `wss://`: the client handshake over rustls (feature `tls`), on ring, trusting only the
//! roots the caller gives.

use std::fmt;
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use http::{Response, Uri};
use rustls::crypto::ring;
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConnection, InvalidMessage, RootCertStore, StreamOwned};

use super::{ClientConfig, ClientError, handshake_until, host, open, parse_url, until};
use crate::websocket::Websocket;

/// The stream under a `wss://` [`Websocket`]: TLS over TCP. Its socket is `stream.sock`,
/// e.g. to change the timeouts [`connect_tls`] set.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A rustls client configuration that trusts exactly `roots`, for [`connect_tls`]: TLS 1.2
/// and 1.3 on the ring provider, ALPN `http/1.1` (WebSockets over HTTP/2 are not spoken).
///
/// Build your own [`rustls::ClientConfig`] instead for client certificates, session
/// resumption settings or another provider; set its ALPN to `http/1.1` or none.
///
/// # Examples
///
/// ```
/// use wsbox::client::rustls::RootCertStore;
///
/// let tls = wsbox::client::tls_config(RootCertStore::empty());
/// assert_eq!(tls.alpn_protocols, [b"http/1.1".to_vec()]);
/// ```
pub fn tls_config(roots: RootCertStore) -> Arc<rustls::ClientConfig> {
    // ring is named rather than left to rustls' process-wide default, which is ambiguous
    // (a panic) when another crate in the program enables a second provider.
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring's default provider supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Connects to a `wss://` URL: TCP, TLS with `tls` (see [`tls_config`]; the server name
/// checked and sent as SNI is the URL's host), then the WebSocket handshake offering
/// `protocols`, within the timeouts of `config`. The handshake timeout covers TLS and
/// the upgrade together.
///
/// # Examples
///
/// Trusting a private CA read from a PEM file:
///
/// ```no_run
/// use wsbox::client::rustls::RootCertStore;
/// use wsbox::client::rustls::pki_types::CertificateDer;
/// use wsbox::client::rustls::pki_types::pem::PemObject;
/// use wsbox::client::{ClientConfig, connect_tls, tls_config};
///
/// let mut roots = RootCertStore::empty();
/// for cert in CertificateDer::pem_file_iter("ca.pem").unwrap() {
///     roots.add(cert.unwrap()).unwrap();
/// }
/// let (mut websocket, _response) =
///     connect_tls("wss://localhost:8443/", &[], &ClientConfig::default(), tls_config(roots))
///         .unwrap();
/// websocket.send_text("hello").unwrap();
/// assert_eq!(websocket.next(), Some(wsbox::Message::Text("hello".into())));
/// ```
///
/// # Errors
///
/// [`ClientError::Tls`] when the TLS handshake fails (see [`TlsError`] for the causes
/// worth telling apart), [`ClientError::InvalidUrl`] for a URL that is not `wss://`, and
/// otherwise as [`connect_with_config`](super::connect_with_config).
pub fn connect_tls(
    url: &str,
    protocols: &[&str],
    config: &ClientConfig,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(Websocket<TlsStream>, Response<()>), ClientError> {
    let (uri, secure) = parse_url(url)?;
    if !secure {
        return Err(ClientError::InvalidUrl(
            "connect_tls opens wss:// URLs; ws:// ones go through connect_with_config".into(),
        ));
    }
    let name = ServerName::try_from(host(&uri).to_owned())
        .map_err(|e| ClientError::InvalidUrl(format!("the host is not a server name: {e}")))?;
    let connection = ClientConnection::new(tls, name).map_err(|e| TlsError::new(e, host(&uri)))?;
    let (tcp, deadline) = open(&uri, 443, config)?;
    let mut stream = StreamOwned::new(connection, tcp);
    tls_handshake(&mut stream, deadline, host(&uri))?;
    let (websocket, response) = upgrade(stream, &uri, protocols, config, deadline)?;
    websocket
        .get_ref()
        .sock
        .set_read_timeout(config.read_timeout)?;
    websocket
        .get_ref()
        .sock
        .set_write_timeout(config.write_timeout)?;
    Ok((websocket, response))
}

/// Runs the TLS handshake by hand rather than with `complete_io`, so that every read is
/// bounded by what is left before `deadline` (`complete_io` reads until the handshake is
/// done, which a server trickling bytes could stretch indefinitely).
fn tls_handshake(stream: &mut TlsStream, deadline: Instant, host: &str) -> Result<(), ClientError> {
    let StreamOwned { conn, sock } = stream;
    let mut received = false;
    while conn.is_handshaking() {
        while conn.wants_write() {
            conn.write_tls(sock)?;
        }
        until(deadline, sock)?;
        match conn.read_tls(sock) {
            // Plain HTTP and WebSocket servers mostly hang up on a ClientHello, which is not
            // a request they can parse; a TLS server that refuses us says why in an alert.
            Ok(0) if !received => return Err(TlsError::NotTls.into()),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the TLS handshake",
                )
                .into());
            }
            Ok(_) => received = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        if let Err(e) = conn.process_new_packets() {
            // The alert that tells the server why, best effort: our error is the news.
            let _ = conn.write_tls(sock);
            return Err(TlsError::new(e, host).into());
        }
    }
    // Our last handshake flight (TLS 1.3's Finished) goes out before the request.
    while conn.wants_write() {
        conn.write_tls(sock)?;
    }
    sock.flush()?;
    Ok(())
}

/// The WebSocket handshake over an established TLS stream. A TLS error in it (an alert
/// after TLS 1.3's handshake, e.g. a client certificate the server wanted) is reported as
/// [`ClientError::Tls`] rather than as the I/O error rustls wraps it in.
fn upgrade(
    stream: TlsStream,
    uri: &Uri,
    protocols: &[&str],
    config: &ClientConfig,
    deadline: Instant,
) -> Result<(Websocket<TlsStream>, Response<()>), ClientError> {
    handshake_until(stream, uri, protocols, config.session, |stream| {
        until(deadline, &stream.sock)
    })
    .map_err(|e| match e {
        ClientError::Io(io) => match io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            Some(tls) => TlsError::new(tls.clone(), host(uri)).into(),
            None => ClientError::Io(io),
        },
        e => e,
    })
}

/// Why the TLS handshake of a `wss://` connection failed. The first variants are the
/// failures a caller fixes in different places; everything else is in [`TlsError::Other`].
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// The server's certificate does not chain to a root in the store given: add the CA
    /// that issued it, or (if it is an intermediate's) make the server send its chain.
    UnknownIssuer,
    /// The certificate is valid, but not for the host in the URL: connect by one of the
    /// names it holds (`presented`, which may be empty if rustls did not say).
    NameMismatch {
        /// The host of the URL.
        host: String,
        /// The names in the certificate.
        presented: Vec<String>,
    },
    /// The certificate has expired (or this machine's clock is wrong).
    Expired,
    /// The server answered with something that is not TLS, or hung up on the TLS hello
    /// without a word: probably a plain `ws://` or HTTP server on that port.
    NotTls,
    /// Any other TLS failure (an alert from the server, no common protocol version, a bad
    /// signature, ...).
    Other(rustls::Error),
}

impl TlsError {
    /// What rustls reported, for a connection to `host`.
    fn new(e: rustls::Error, host: &str) -> Self {
        match e {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                TlsError::UnknownIssuer
            }
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            }) => TlsError::NameMismatch {
                host: host.to_owned(),
                presented,
            },
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => {
                TlsError::NameMismatch {
                    host: host.to_owned(),
                    presented: Vec::new(),
                }
            }
            rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            ) => TlsError::Expired,
            rustls::Error::InvalidMessage(
                InvalidMessage::InvalidContentType | InvalidMessage::UnknownProtocolVersion,
            ) => TlsError::NotTls,
            e => TlsError::Other(e),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::UnknownIssuer => f.write_str(
                "the server's certificate is not issued by a CA in the root store given",
            ),
            TlsError::NameMismatch { host, presented } => write!(
                f,
                "the server's certificate is not valid for {host:?} (it names {presented:?})"
            ),
            TlsError::Expired => f.write_str("the server's certificate has expired"),
            TlsError::NotTls => {
                f.write_str("the server did not answer in TLS (is it a plain ws:// server?)")
            }
            TlsError::Other(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Other(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TlsError> for ClientError {
    fn from(e: TlsError) -> Self {
        ClientError::Tls(e)
    }
}
