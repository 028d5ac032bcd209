//! Process-wide limits: the file-descriptor limit, and connections beyond
//! `--max-connections` (answered 503 without touching the guest).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{info, warn};

/// Descriptors the runner needs besides one per connection (listener, epoch ticker,
/// wasmtime's memfds, stdio, preopened directories).
const SPARE_DESCRIPTORS: u64 = 64;

/// Raises the soft RLIMIT_NOFILE to the hard limit, and warns when that still cannot hold
/// `max_connections` sockets.
pub fn raise_nofile(max_connections: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct we pass, which lives on our stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        warn!(error = %std::io::Error::last_os_error(), "cannot read RLIMIT_NOFILE");
        return;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            info!(
                from = limit.rlim_cur,
                to = raised.rlim_cur,
                "raised the open-file limit"
            );
            limit = raised;
        } else {
            warn!(error = %std::io::Error::last_os_error(), "cannot raise RLIMIT_NOFILE");
        }
    }
    let needed = max_connections as u64 + SPARE_DESCRIPTORS;
    if limit.rlim_cur < needed {
        warn!(
            open_file_limit = limit.rlim_cur,
            needed,
            max_connections,
            "the open-file limit is below what --max-connections needs; raise the hard limit \
             (ulimit -Hn) or lower --max-connections"
        );
    }
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\n\
content-length: 32\r\n\
retry-after: 1\r\n\
connection: close\r\n\r\n\
too many connections, try later\n";

/// Answers a connection over the limit with 503 and closes it.
pub async fn refuse(mut stream: TcpStream) {
    // The request is read (briefly, bounded) before closing: closing a socket with unread
    // input sends a reset, which could destroy the 503 before the client reads it.
    let mut head = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut head)).await;
    if stream.write_all(BUSY).await.is_ok() {
        let _ = stream.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while matches!(stream.read(&mut head).await, Ok(n) if n > 0) {}
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn busy_response_declares_its_length() {
        let text = std::str::from_utf8(super::BUSY).expect("ascii");
        let (_, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(text.contains(&format!("content-length: {}\r\n", body.len())));
    }
}
