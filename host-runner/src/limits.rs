//! Process-wide limits: the file-descriptor limit, the default memory budget, the per-address cap, and connections
//! beyond either (answered 503 without touching the guest).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tracing::{info, warn};

/// Descriptors the runner needs besides one per connection (listener, epoch ticker,
/// wasmtime's memfds, stdio, preopened directories).
const SPARE_DESCRIPTORS: u64 = 64;

/// Physical memory, `None` when the system does not say.
fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf reads system constants and has no preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    match (u64::try_from(pages), u64::try_from(size)) {
        (Ok(pages), Ok(size)) if pages > 0 && size > 0 => Some(pages.saturating_mul(size)),
        _ => None,
    }
}

/// The default `--memory-budget`: half of physical memory, so that guests cannot take the memory the
/// host's own buffers and the kernel's socket buffers need.
pub fn default_memory_budget() -> u64 {
    // Unknown: 4 GiB, room for 64 instances at the default --guest-memory.
    physical_memory().map_or(4 << 30, |bytes| bytes / 2)
}

/// The default `--host-memory`: a quarter of physical memory, so that with the default
/// `--memory-budget` (half) guests and the host's buffers together leave a quarter to the
/// kernel (socket buffers, page cache) and the runner's own code and tables.
pub fn default_host_memory() -> u64 {
    physical_memory().map_or(2 << 30, |bytes| bytes / 4)
}

/// A write past RLIMIT_FSIZE (a full disk, as a quota sets it) raises SIGXFSZ, which
/// kills the process by default: ignored, the write fails with EFBIG instead, the store
/// reports it, and the runner goes on serving (history writes are counted as lost).
pub fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code; done at
    // start, before any thread that could race on signal dispositions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Raises RLIMIT_NOFILE to what `max_connections` sockets need: the soft limit up to the
/// hard one, and the hard one too where the process may (root, CAP_SYS_RESOURCE). Warns
/// when the limit still cannot hold them.
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
    let needed = max_connections as u64 + SPARE_DESCRIPTORS;
    let (from, hard) = (limit.rlim_cur, limit.rlim_max);
    let mut raise_to = |to: u64| {
        let raised = libc::rlimit {
            rlim_cur: to,
            rlim_max: to,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        let done = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0;
        if done {
            limit = raised;
        }
        done
    };
    // Past the hard limit if need be (refused unless privileged, or past fs.nr_open),
    // else up to it.
    if from < needed && !raise_to(needed.max(hard)) && from < hard {
        raise_to(hard);
    }
    if limit.rlim_cur > from {
        info!(from, to = limit.rlim_cur, "raised the open-file limit");
    }
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

/// Open connections per client address, under `--max-connections-per-address`.
pub struct PerAddress {
    /// `None`: no cap, nothing is counted.
    max: Option<usize>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place under its address's cap, given back on drop.
pub struct AddressPlace {
    taken: Option<(Arc<PerAddress>, IpAddr)>,
}

impl PerAddress {
    pub fn new(max: Option<usize>) -> Arc<Self> {
        Arc::new(PerAddress {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    pub fn max(&self) -> Option<usize> {
        self.max
    }

    /// A place for a connection from `ip`, or `None` when its address is at the cap.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<AddressPlace> {
        let Some(max) = self.max else {
            return Some(AddressPlace { taken: None });
        };
        let key = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressPlace {
            taken: Some((self.clone(), key)),
        })
    }
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let Some((owner, key)) = self.taken.take() else {
            return;
        };
        let mut open = owner.open.lock().unwrap_or_else(PoisonError::into_inner);
        // Entries go when their last connection does: the map holds only open addresses.
        if let Entry::Occupied(mut entry) = open.entry(key) {
            *entry.get_mut() -= 1;
            if *entry.get() == 0 {
                entry.remove();
            }
        }
    }
}

/// What the cap counts: an IPv4 address (also when it arrives IPv4-mapped on a dual-stack
/// socket), or an IPv6 /64, the usual allocation of one host, which can use all of it.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
        IpAddr::V4(_) => ip,
    }
}

/// The answer to a connection beyond `--max-connections`.
pub const SERVER_BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\n\
content-length: 32\r\n\
retry-after: 1\r\n\
connection: close\r\n\r\n\
too many connections, try later\n";

/// The answer to a connection beyond `--max-connections-per-address`.
pub const ADDRESS_BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\n\
content-length: 39\r\n\
retry-after: 1\r\n\
connection: close\r\n\r\n\
too many connections from your address\n";

/// Refusals answered at once: each holds its socket for up to ~1.2 s (see [`refuse`]), so
/// without a bound a flood beyond the caps would hold descriptors without limit and starve
/// `accept` for everyone.
const MAX_REFUSALS: usize = 256;

/// The refusals being answered, under [`MAX_REFUSALS`].
pub struct Refusals(Arc<Semaphore>);

impl Refusals {
    pub fn new() -> Self {
        Refusals(Arc::new(Semaphore::new(MAX_REFUSALS)))
    }

    /// Answers `stream` with `response` (a 503) in its own task, or, when [`MAX_REFUSALS`]
    /// are already being answered, closes it at once. Returns whether it is answered, so the
    /// caller logs each refusal only while their number is bounded.
    pub fn refuse(&self, stream: TcpStream, response: &'static [u8]) -> bool {
        crate::metrics::METRICS.refused_503.inc();
        match self.0.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    refuse(stream, response).await;
                    drop(permit);
                });
                true
            }
            Err(_) => false,
        }
    }
}

/// Answers a connection over a limit with `response` (a 503) and closes it.
async fn refuse(mut stream: TcpStream, response: &'static [u8]) {
    // The request is read (briefly, bounded) before closing: closing a socket with unread
    // input sends a reset, which could destroy the 503 before the client reads it.
    let mut head = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut head)).await;
    if stream.write_all(response).await.is_ok() {
        crate::linger::linger(&stream).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_responses_declare_their_length() {
        for response in [SERVER_BUSY, ADDRESS_BUSY] {
            let text = std::str::from_utf8(response).expect("ascii");
            let (_, body) = text.split_once("\r\n\r\n").expect("head and body");
            assert!(text.contains(&format!("content-length: {}\r\n", body.len())));
        }
    }

    #[test]
    fn the_cap_counts_per_address_and_gives_places_back() {
        let cap = PerAddress::new(Some(2));
        let ip = |text: &str| text.parse::<IpAddr>().expect("address");
        let a1 = cap.try_acquire(ip("192.0.2.1")).expect("first");
        let a2 = cap
            .try_acquire(ip("::ffff:192.0.2.1"))
            .expect("second, mapped");
        assert!(cap.try_acquire(ip("192.0.2.1")).is_none(), "third");
        let _b = cap.try_acquire(ip("192.0.2.2")).expect("another address");
        drop(a1);
        let _a3 = cap
            .try_acquire(ip("192.0.2.1"))
            .expect("a place given back");
        drop(a2);
        let _v6 = cap.try_acquire(ip("2001:db8::1")).expect("v6");
        let _v6 = cap
            .try_acquire(ip("2001:db8::ffff:2"))
            .expect("v6, same /64");
        assert!(
            cap.try_acquire(ip("2001:db8::3")).is_none(),
            "the /64 is full"
        );
        assert!(
            cap.try_acquire(ip("2001:db8:0:1::1")).is_some(),
            "another /64"
        );
    }

    #[test]
    fn without_a_cap_nothing_is_counted() {
        let cap = PerAddress::new(None);
        let places: Vec<_> = (0..100)
            .map(|_| cap.try_acquire(IpAddr::from([127, 0, 0, 1])))
            .collect();
        assert!(places.iter().all(Option::is_some));
        assert!(cap.open.lock().expect("lock").is_empty());
    }
}
