//! `--tls-cert` / `--tls-key`: the rustls configuration the runner serves `https` and `wss`
//! with, loaded (and checked) before the socket is bound, so that a bad file stops the
//! start with a message naming it rather than failing every handshake later. SIGHUP reads
//! the files again (a renewed certificate) without touching open connections.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tracing::debug;

/// What connections are served with: the configuration, and the certificate in it that a
/// reload replaces.
#[derive(Debug, Clone)]
pub struct Tls {
    pub config: Arc<ServerConfig>,
    pub certificate: Arc<Certificate>,
}

/// The certificate chain and key of `--tls-cert`/`--tls-key`. A reload (SIGHUP, `--watch`)
/// reads the files again and swaps them in if they are valid; a handshake takes whichever
/// is current when it starts, and open connections keep theirs.
#[derive(Debug)]
pub struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // The lock guards a pointer swap only: poisoned, it still holds a valid key.
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

impl Certificate {
    /// Reads the files again; on an error the current certificate stays.
    pub fn reload(&self) -> Result<(), String> {
        let key = certified_key(&self.cert, &self.key, &self.provider)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }

    pub fn files(&self) -> (&Path, &Path) {
        (&self.cert, &self.key)
    }
}

/// The configuration for a certificate chain and its private key, both PEM files.
///
/// ring is named rather than left to rustls' process-wide default: another crate in the
/// tree enabling a second provider would otherwise make the default ambiguous (a panic).
pub fn load(cert: &Path, key: &Path) -> Result<Tls, String> {
    let provider = Arc::new(ring::default_provider());
    let current = certified_key(cert, key, &provider)?;
    let certificate = Arc::new(Certificate {
        cert: cert.to_owned(),
        key: key.to_owned(),
        provider: provider.clone(),
        current: RwLock::new(Arc::new(current)),
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(certificate.clone());
    // The runner speaks HTTP/1.1 only (WebSockets over HTTP/2, RFC 8441, are not served):
    // a client offering only h2 is refused in the handshake rather than misunderstood.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        certificate,
    })
}

fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
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
    CertifiedKey::from_der(chain, key_der, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "--tls-key {} is not the key of the certificate in --tls-cert {}",
            key.display(),
            cert.display()
        ),
        e => format!("--tls-cert/--tls-key: {e}"),
    })
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
