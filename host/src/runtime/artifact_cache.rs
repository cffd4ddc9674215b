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
    dir: PathBuf,
    key: [u8; 32],
    engine_hash: String,
}

impl ArtifactCache {
    /// Open (or create) the cache directory for `engine`.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let key = load_or_create_key(&dir.join(KEY_FILE))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
            engine_hash: format!("{:016x}", hasher.finish()),
        })
    }

    fn artifact_path(&self, module_sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{module_sha256}-{}.cwasm", self.engine_hash))
    }

    fn tag(&self, artifact: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(self.engine_hash.as_bytes());
        mac.update(artifact);
        mac
    }

    /// The cached component for this module, if a valid artifact exists.
    pub(crate) fn load(&self, engine: &Engine, module_sha256: &str) -> Option<Component> {
        let path = self.artifact_path(module_sha256);
        let artifact = std::fs::read(&path).ok()?;
        let tag = std::fs::read(path.with_extension("tag")).ok()?;
        if self.tag(&artifact).verify_slice(&tag).is_err() {
            tracing::warn!(path = %path.display(), "ignoring artifact with a bad tag");
            return None;
        }
        // SAFETY: `Component::deserialize` trusts its input to be an artifact
        // produced by `Component::serialize` of a compatible engine. The HMAC
        // check above proves this server wrote these exact bytes with its
        // secret key, and the file name carries the engine's compatibility
        // hash, which wasmtime checks again while deserialising.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &artifact) };
        match component {
            Ok(component) => Some(component),
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
                let tag = self.tag(&artifact).finalize().into_bytes();
                // Write the artifact, then its tag, each via a temporary file and
                // a rename, so a crash never leaves a tagged partial artifact.
                write_atomically(&path, &artifact)?;
                write_atomically(&path.with_extension("tag"), &tag)
            });
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not cache a compiled component");
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

fn load_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    if let Ok(bytes) = std::fs::read(path)
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    write_atomically(path, &key)?;
    Ok(key)
}
