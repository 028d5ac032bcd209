//! The end of every connection the runner closes after writing a last answer (a close
//! frame, a 503).

use std::io::ErrorKind;
use std::time::Duration;

use tokio::net::TcpStream;

/// How long the runner reads (and discards) what a peer still sends after the last
/// answer: closing a socket with unread input resets the connection, which destroys the
/// answer if the peer has not read it yet.
const LINGER: Duration = Duration::from_secs(1);

/// Sends our FIN, then discards what the peer still sends until it closes too, for at
/// most [`LINGER`].
pub async fn linger(stream: &TcpStream) {
    if socket2::SockRef::from(stream)
        .shutdown(std::net::Shutdown::Write)
        .is_err()
    {
        return;
    }
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while stream.readable().await.is_ok() {
            match stream.try_read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
    })
    .await;
}
