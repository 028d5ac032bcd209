//! Masking keys for the client role from the operating system's RNG: the one source of
//! entropy the core leaves to its callers (the blocking client, `wsbox.wasm`).

use crate::proto::session::MaskSource;

/// Masking keys from the OS RNG (`getrandom`), fetched 256 bytes at a time so a busy
/// client does not make one system call per frame.
#[derive(Debug)]
pub struct OsMasks {
    pool: [u8; 256],
    used: usize,
}

impl OsMasks {
    /// A source that fills its pool on first use.
    pub fn new() -> Self {
        OsMasks {
            pool: [0; 256],
            used: 256,
        }
    }
}

impl Default for OsMasks {
    fn default() -> Self {
        Self::new()
    }
}

impl MaskSource for OsMasks {
    fn next_mask(&mut self) -> [u8; 4] {
        if self.used == self.pool.len() {
            // Without entropy we cannot mask as RFC 6455 §10.3 requires; that is a broken
            // host, not something a peer can cause.
            getrandom::fill(&mut self.pool).expect("the OS random number generator failed");
            self.used = 0;
        }
        let mut mask = [0; 4];
        mask.copy_from_slice(&self.pool[self.used..self.used + 4]);
        self.used += 4;
        mask
    }
}
