//! Compiled handlers on disk (`--cache-dir`): a component is compiled once per content,
//! wasmtime version and engine settings, and later starts and reloads load the native code
//! instead of compiling it again (a 12 MB JavaScript component takes about 10 s of CPU to
//! compile; loading its code takes milliseconds).
//!
//! Loading precompiled code is `unsafe` in wasmtime: its header check covers compatibility,
//! not integrity, and code that did not come from this engine could do anything. So an
//! entry is trusted only as far as this holds:
//! - the directory is created by the runner with mode 0700, and one that another user owns
//!   or that others may write is refused (the runner then compiles without a cache);
//! - each entry starts with the SHA-256 of what follows it, checked before loading, so a
//!   torn or corrupted write is rebuilt, never loaded;
//! - entries are written to a temporary file and renamed into place, so that concurrent
//!   runners (the tests start hundreds) never see a partial entry.
//!
//! The key is the SHA-256 of the component and of the engine's compatibility hash (which
//! covers wasmtime's version and every setting that changes the code). Nothing is pruned:
//! an entry per handler version deployed; the directory may be deleted at any time.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::digest::{Context, SHA256, digest};
use tracing::{info, warn};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Length of the hash that starts every entry.
const HASH: usize = 32;

/// A directory of compiled components that only this user writes.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// Opens (creating it, mode 0700) the cache in `dir`.
    ///
    /// # Errors
    ///
    /// The directory cannot be made, or another user owns it, or others may write it.
    pub fn open(dir: &Path) -> Result<Cache, String> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let meta =
            std::fs::metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        if meta.uid() != uid {
            return Err(format!("{} belongs to another user", dir.display()));
        }
        if meta.permissions().mode() & 0o022 != 0 {
            return Err(format!("{} may be written by others", dir.display()));
        }
        Ok(Cache {
            dir: dir.to_owned(),
        })
    }

    /// `wasm` compiled for `engine`: from the cache when an entry verifies, else compiled
    /// and stored (a failure to store is logged; the component is still returned).
    ///
    /// # Errors
    ///
    /// `wasm` does not compile.
    pub fn component(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Component> {
        let path = self.dir.join(format!("{}.cwasm", key(engine, wasm)));
        match std::fs::read(&path) {
            Ok(entry) => match verified(&entry) {
                Some(code) => {
                    // SAFETY: `code` is what `Component::serialize` wrote for an engine with
                    // this compatibility hash (it is in the key), in a directory only this
                    // user may write, and its SHA-256 matches the one stored before it: it
                    // is this runner's own output, whole (see the module docs).
                    match unsafe { Component::deserialize(engine, code) } {
                        Ok(component) => {
                            info!(path = %path.display(), "handler loaded from the compile cache");
                            return Ok(component);
                        }
                        Err(error) => {
                            warn!(path = %path.display(), %error, "cached handler refused; compiling");
                        }
                    }
                }
                None => warn!(path = %path.display(), "cached handler does not verify; compiling"),
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => warn!(path = %path.display(), %error, "cannot read the compile cache"),
        }
        let component = Component::new(engine, wasm)?;
        match component.serialize() {
            Ok(code) => match self.store(&path, &code) {
                Ok(()) => info!(path = %path.display(), "handler compiled and cached"),
                Err(error) => {
                    warn!(path = %path.display(), %error, "cannot write the compile cache")
                }
            },
            Err(error) => warn!(%error, "cannot serialize the compiled handler"),
        }
        Ok(component)
    }

    /// Writes `code`, after its hash, to a temporary file renamed to `path`.
    fn store(&self, path: &Path, code: &[u8]) -> std::io::Result<()> {
        let mut file = tempfile_in(&self.dir)?;
        file.1.write_all(digest(&SHA256, code).as_ref())?;
        file.1.write_all(code)?;
        file.1.sync_all()?;
        std::fs::rename(&file.0, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&file.0);
        })
    }
}

/// The entry's code, if the hash before it matches.
fn verified(entry: &[u8]) -> Option<&[u8]> {
    let (hash, code) = entry.split_at_checked(HASH)?;
    (digest(&SHA256, code).as_ref() == hash).then_some(code)
}

/// The entry name for `wasm` compiled by `engine`.
fn key(engine: &Engine, wasm: &[u8]) -> String {
    let mut settings = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut settings);
    let mut key = Context::new(&SHA256);
    key.update(wasm);
    key.update(&settings.finish().to_le_bytes());
    key.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new file in `dir` with a name no other writer uses, and its path.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| std::io::Error::other(e.to_string()))?;
    let name = format!(".tmp-{}-{}", std::process::id(), u64::from_le_bytes(random));
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_verifies_only_whole() {
        let code = b"native code".to_vec();
        let mut entry = digest(&SHA256, &code).as_ref().to_vec();
        entry.extend_from_slice(&code);
        assert_eq!(verified(&entry), Some(&code[..]));
        assert_eq!(verified(&entry[..entry.len() - 1]), None, "torn");
        let last = entry.len() - 1;
        entry[last] ^= 1;
        assert_eq!(verified(&entry), None, "corrupted");
        assert_eq!(verified(&[0; 8]), None, "shorter than the hash");
    }
}
