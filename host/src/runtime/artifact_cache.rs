//! The compiled-artifact cache: compile a module once, reload it in
//! milliseconds after a restart.
//!
//! Artifacts are files `<module sha256>-<engine hash>.cwasm` in one
//! directory. The engine hash (from
//! [`Engine::precompile_compatibility_hash`]) changes with the wasmtime
//! version and with engine settings such as fuel and epochs, so an artifact
//! is never loaded into an engine it was not made for.
//!
//! Deserialising an artifact runs native code produced by whoever wrote the
//! file, so only artifacts this server wrote are loaded: next to each
//! artifact is an HMAC-SHA256 tag under a random key kept in the cache
//! directory (`cache.key`). A file that was modified, truncated or dropped
//! in from elsewhere fails the check and is recompiled from the module.
//!
//! The directory is bounded: after each store, the least recently used
//! artifacts (by modification time, which a load refreshes) are deleted
//! until the artifacts and their tags fit in the configured size. An
//! undeployed process's artifact, or one an older engine wrote, is
//! therefore dropped once newer ones need the room, and a missing artifact
//! only costs a compilation.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;

type HmacSha256 = Hmac<Sha256>;

/// Name of the file holding the tag key.
const KEY_FILE: &str = "cache.key";

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactCache {
    /// The cache directory: artifacts, tags and the key file.
    dir: PathBuf,
    /// The HMAC key, from `cache.key` (created at first open).
    key: [u8; 32],
    /// 16 hex digits derived from the engine's compatibility hash; part of
    /// every artifact's name and of every tag. Derived with std's
    /// `DefaultHasher`, whose output may change between Rust releases: a
    /// rebuilt binary may then miss its old artifacts, which costs only
    /// recompilation.
    engine_hash: String,
    /// Most bytes of artifacts and tags kept (see the module docs).
    max_bytes: u64,
}

impl ArtifactCache {
    /// Open (or create) the cache directory for `engine`, keeping at most
    /// `max_bytes` of artifacts.
    pub(crate) fn open(dir: &Path, engine: &Engine, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let key = load_or_create_key(&dir.join(KEY_FILE))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
            engine_hash: format!("{:016x}", hasher.finish()),
            max_bytes,
        })
    }

    /// `<dir>/<module sha256>-<engine hash>.cwasm`; the tag sits next to it
    /// with the extension `tag`.
    fn artifact_path(&self, module_sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{module_sha256}-{}.cwasm", self.engine_hash))
    }

    /// The HMAC over the engine hash, the module's sha256 and the
    /// artifact's bytes: the tag proves this server wrote these bytes for
    /// this engine *and this module*, so an artifact copied or renamed to
    /// another module's name fails the check instead of running one
    /// module's code as another's.
    fn tag(&self, module_sha256: &str, artifact: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(self.engine_hash.as_bytes());
        mac.update(b"\0");
        mac.update(module_sha256.as_bytes());
        mac.update(b"\0");
        mac.update(artifact);
        mac
    }

    /// The cached component for this module, if a valid artifact exists.
    pub(crate) fn load(&self, engine: &Engine, module_sha256: &str) -> Option<Component> {
        let path = self.artifact_path(module_sha256);
        let artifact = std::fs::read(&path).ok()?;
        let tag = std::fs::read(path.with_extension("tag")).ok()?;
        if self
            .tag(module_sha256, &artifact)
            .verify_slice(&tag)
            .is_err()
        {
            tracing::warn!(path = %path.display(), "ignoring artifact with a bad tag");
            return None;
        }
        // SAFETY: `Component::deserialize` trusts its input to be an artifact
        // produced by `Component::serialize` of a compatible engine. The HMAC
        // check above proves this server wrote these exact bytes with its
        // secret key for this module, and the file name carries the engine's
        // compatibility hash, which wasmtime checks again while deserialising.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &artifact) };
        match component {
            Ok(component) => {
                // Recently used: the last to go when the cache is trimmed.
                touch(&path);
                Some(component)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable artifact");
                None
            }
        }
    }

    /// Store a compiled component. Failures are logged, not fatal: the
    /// cache only saves time.
    pub(crate) fn store(&self, module_sha256: &str, component: &Component) {
        let result = component
            .serialize()
            .map_err(std::io::Error::other)
            .and_then(|artifact| {
                let path = self.artifact_path(module_sha256);
                let tag = self.tag(module_sha256, &artifact).finalize().into_bytes();
                // Write the artifact, then its tag, each via a temporary file and
                // a rename, so a crash never leaves a tagged partial artifact.
                write_atomically(&path, &artifact)?;
                write_atomically(&path.with_extension("tag"), &tag)
            });
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not cache a compiled component");
        }
        if let Err(e) = self.trim(&self.artifact_path(module_sha256)) {
            tracing::warn!(error = %e, "could not trim the artifact cache");
        }
    }

    /// Delete the least recently used artifacts (and their tags) until
    /// the directory's artifacts fit in `max_bytes`, sparing `keep` (the
    /// one just written, even if it alone is larger). Returns how many
    /// artifacts were deleted.
    fn trim(&self, keep: &Path) -> std::io::Result<usize> {
        let mut artifacts = Vec::new();
        let mut total = 0u64;
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "cwasm") {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // deleted meanwhile
            };
            let tag = std::fs::metadata(path.with_extension("tag")).map_or(0, |m| m.len());
            let size = meta.len() + tag;
            total += size;
            let used = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            artifacts.push((used, size, path));
        }
        if total <= self.max_bytes {
            return Ok(0);
        }
        artifacts.sort_by_key(|(used, _, _)| *used);
        let mut deleted = 0;
        for (_, size, path) in artifacts {
            if total <= self.max_bytes {
                break;
            }
            if path == keep {
                continue;
            }
            // The tag first: an artifact without its tag is never loaded.
            let _ = std::fs::remove_file(path.with_extension("tag"));
            if std::fs::remove_file(&path).is_ok() {
                total -= size;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// Set a file's modification time to now (best effort: a file that
/// cannot be touched is merely trimmed earlier).
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

/// Write `bytes` to a fresh temporary name in the same directory, then
/// rename it over `path`: a rename within one file system is atomic, so a
/// reader (or a crash) sees the old file or the whole new one, never half.
/// No fsync: after a power loss a file may be empty or short, and then its
/// tag does not match and it is recompiled.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// The cache's HMAC key: read from `path`, or 32 fresh random bytes (two
/// v4 UUIDs, 244 random bits) written there when the file is missing.
///
/// Servers sharing the directory may start at once: a new key is written
/// to a temporary file and hard-linked to `path`, which fails if the file
/// exists, so exactly one key is ever installed and a server that loses
/// the race reads the winner's (two servers with different keys would
/// reject each other's artifacts). A key file of the wrong length (a crash
/// mid-write before this ordering, or tampering) is replaced; that orphans
/// every existing artifact (their tags no longer verify), which costs
/// recompilation and nothing else.
fn load_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    for _ in 0..3 {
        match std::fs::read(path) {
            Ok(bytes) => match <[u8; 32]>::try_from(bytes.as_slice()) {
                Ok(key) => return Ok(key),
                Err(_) => {
                    // Unusable: make room for a new one (another server
                    // may remove it first, which is as good).
                    match std::fs::remove_file(path) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                        _ => {}
                    }
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // Straight from the operating system, as API keys are: drawn once
        // per data directory, so a system call costs nothing here.
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(std::io::Error::other)?;
        let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
        std::fs::write(&temporary, key)?;
        let installed = std::fs::hard_link(&temporary, path);
        let _ = std::fs::remove_file(&temporary);
        match installed {
            Ok(()) => return Ok(key),
            // Another server installed its key first: read that one.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "{} kept changing while it was read",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    /// A fake artifact of `size` bytes (and a 32-byte tag) last used
    /// `age` ago.
    fn artifact(dir: &Path, name: &str, size: usize, age: Duration) -> PathBuf {
        let path = dir.join(format!("{name}-0.cwasm"));
        std::fs::write(&path, vec![0u8; size]).unwrap();
        std::fs::write(path.with_extension("tag"), [0u8; 32]).unwrap();
        let file = std::fs::File::options().append(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
        path
    }

    #[test]
    fn servers_opening_one_directory_at_once_agree_on_one_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(KEY_FILE);
            let keys: Vec<[u8; 32]> = std::thread::scope(|scope| {
                let openers: Vec<_> = (0..4)
                    .map(|_| scope.spawn(|| load_or_create_key(&path).unwrap()))
                    .collect();
                openers.into_iter().map(|t| t.join().unwrap()).collect()
            });
            assert!(keys.iter().all(|k| *k == keys[0]), "different keys");
            assert_eq!(std::fs::read(&path).unwrap(), keys[0]);
            // Nothing but the key is left behind.
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        }
        // A key file of the wrong length is replaced by a usable one.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::write(&path, b"short").unwrap();
        let key = load_or_create_key(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), key);
    }

    #[test]
    fn trimming_drops_the_least_recently_used_artifacts_first() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = ArtifactCache::open(dir.path(), &engine, 2_200).unwrap();
        let oldest = artifact(dir.path(), "a", 1_000, Duration::from_secs(300));
        let older = artifact(dir.path(), "b", 1_000, Duration::from_secs(200));
        let newest = artifact(dir.path(), "c", 1_000, Duration::from_secs(100));
        // 3 × 1,032 bytes over a 2,200-byte bound: one goes, the oldest.
        assert_eq!(cache.trim(&newest).unwrap(), 1);
        assert!(!oldest.exists() && !oldest.with_extension("tag").exists());
        assert!(older.exists() && newest.exists());
        // Used since: `b` is now the most recent, `c` goes next.
        touch(&older);
        let another = artifact(dir.path(), "d", 1_000, Duration::ZERO);
        assert_eq!(cache.trim(&another).unwrap(), 1);
        assert!(!newest.exists(), "the least recently used one went");
        assert!(older.exists() && another.exists());
        // The key file is not an artifact and is never trimmed.
        assert!(dir.path().join(KEY_FILE).exists());
    }

    #[test]
    fn the_artifact_just_written_stays_even_if_it_alone_is_too_big() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::open(dir.path(), &Engine::default(), 100).unwrap();
        let other = artifact(dir.path(), "a", 50, Duration::from_secs(10));
        let big = artifact(dir.path(), "b", 1_000, Duration::ZERO);
        assert_eq!(cache.trim(&big).unwrap(), 1);
        assert!(big.exists() && !other.exists());
    }

    #[test]
    fn an_artifact_renamed_to_another_module_is_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = ArtifactCache::open(dir.path(), &engine, 1 << 30).unwrap();
        let wasm = include_bytes!(env!("WASMPROC_GUEST_HELLO_WORLD"));
        let component = Component::new(&engine, wasm).unwrap();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        cache.store(&a, &component);
        assert!(cache.load(&engine, &a).is_some(), "stored and loaded");
        let (from, to) = (cache.artifact_path(&a), cache.artifact_path(&b));
        std::fs::rename(&from, &to).unwrap();
        std::fs::rename(from.with_extension("tag"), to.with_extension("tag")).unwrap();
        assert!(cache.load(&engine, &b).is_none(), "another module's code");
    }
}
