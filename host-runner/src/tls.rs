//! `--tls-cert` / `--tls-key`: the rustls configuration the runner serves `https` and `wss`
//! with, loaded (and checked) before the socket is bound, so that a bad file stops the
//! start with a message naming it rather than failing every handshake later.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::debug;

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// The configuration for a certificate chain and its private key, both PEM files.
///
/// ring is named rather than left to rustls' process-wide default: another crate in the
/// tree enabling a second provider would otherwise make the default ambiguous (a panic).
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no CERTIFICATE in the file",
            cert.display()
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "--tls-key {} is not the key of the certificate in --tls-cert {}",
                key.display(),
                cert.display()
            ),
            e => format!("--tls-cert/--tls-key: {e}"),
        })?;
    // The runner speaks HTTP/1.1 only (WebSockets over HTTP/2, RFC 8441, are not served):
    // a client offering only h2 is refused in the handshake rather than misunderstood.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The TLS handshake of an accepted connection, within `limit` (a client that connects and
/// says nothing, or speaks plain HTTP to this port, is dropped like a slow HTTP client).
pub async fn accept(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    peer: SocketAddr,
    limit: Duration,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(limit, TlsAcceptor::from(config).accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            debug!(%peer, %error, "tls handshake failed");
            None
        }
        Err(_) => {
            debug!(%peer, ?limit, "tls handshake timed out");
            None
        }
    }
}
