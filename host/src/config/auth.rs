//! `[auth]`: who may call the API. The admin token, API keys with their
//! roles, and the checks a set of keys must pass (names that can own
//! jobs, real SHA-256 hashes, no key listed twice). What each role may do
//! is enforced in `api/auth.rs`; this file only says what is configured.
//! Secrets are wrapped in [`Secret`], which compares in constant time and
//! never shows in `Debug` output or logs.

use serde::{Deserialize, Serialize};

/// A secret that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; compare it with [`Secret::matches`] instead where
    /// possible.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compare with a candidate in time independent of where they differ
    /// (both sides are hashed first, so not even the length leaks).
    pub fn matches(&self, candidate: &str) -> bool {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        let (a, b) = (
            Sha256::digest(self.0.as_bytes()),
            Sha256::digest(candidate.as_bytes()),
        );
        a.as_slice().ct_eq(b.as_slice()).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Bearer-token authentication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The token that deploy, replace and undeploy require
    /// (`Authorization: Bearer <token>`); also read from the environment
    /// variable `WASMPROC_ADMIN_TOKEN`. Without one, deployment is disabled.
    pub admin_token: Option<Secret>,
    /// Also require the token for execution and job endpoints. Default
    /// `false`. Implied by `keys`.
    pub protect_jobs: bool,
    /// Also require a key (any role) to list and describe processes and
    /// to read their packages. Default `false`: process descriptions are
    /// public, as for an OGC client that discovers a server. Needs `keys`
    /// or `admin_token`.
    pub protect_processes: bool,
    /// API keys, each with a role (`[[auth.keys]]` tables). With at least
    /// one, execution and job endpoints need a key of role `execute` or
    /// `admin` (or the admin token), and every job belongs to the key that
    /// created it: an `execute` key sees and dismisses only its own jobs.
    /// `wasmproc key new --name NAME --role ROLE` makes one.
    pub keys: Vec<ApiKey>,
}

impl AuthConfig {
    /// Whether execution and job endpoints need a token or key.
    pub fn jobs_protected(&self) -> bool {
        self.protect_jobs || !self.keys.is_empty()
    }

    /// Whether anybody may deploy: there is an admin token or an admin key.
    pub fn deployment_enabled(&self) -> bool {
        self.admin_token.is_some() || self.keys.iter().any(|k| k.role == Role::Admin)
    }
}

/// What a key may do. Each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// List and describe processes (and read their packages).
    Read,
    /// Also run processes; see, read and dismiss its own jobs.
    Execute,
    /// Also deploy, replace and undeploy; see every job.
    Admin,
}

impl Role {
    /// The role as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Execute => "execute",
            Self::Admin => "admin",
        }
    }
}

/// One API key. The key itself is never stored: only its SHA-256, so a
/// leaked configuration file does not leak keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Who holds the key (`[A-Za-z0-9._-]`, at most 64 characters): the
    /// owner recorded on the jobs it creates and named in the server's log.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// SHA-256 of the key, 64 hexadecimal digits.
    pub sha256: String,
    /// Most bytes of job data (inputs, results, logs) the jobs of this key
    /// may keep stored; past it, its new jobs get 507 while other keys go
    /// on. Absent: only `execution.max_stored_bytes` bounds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stored_bytes: Option<u64>,
}

impl ApiKey {
    /// The SHA-256 as bytes, when it is 64 hexadecimal digits.
    pub fn digest(&self) -> Option<[u8; 32]> {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(&self.sha256, &mut digest).ok()?;
        Some(digest)
    }
}

/// Whether `name` may name a key: it is stored as a job's owner and used
/// in index keys, where `0x00` separates it from what follows.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What is wrong with the configured keys: a name that cannot be an
/// owner, two keys with one name (their jobs would mix), a hash that is not
/// one, or one key listed twice (which role would it have?).
pub(super) fn key_problems(keys: &[ApiKey]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = std::collections::HashSet::new();
    let mut digests = std::collections::HashSet::new();
    for key in keys {
        if !valid_key_name(&key.name) {
            problems.push(format!(
                "auth.keys: name '{}' must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
                key.name
            ));
        }
        if !names.insert(key.name.as_str()) {
            problems.push(format!("auth.keys: two keys are named '{}'", key.name));
        }
        match key.digest() {
            None => problems.push(format!(
                "auth.keys: the sha256 of key '{}' is not 64 hexadecimal digits \
                 (`wasmproc key new` prints a key and its hash)",
                key.name
            )),
            Some(digest) => {
                if !digests.insert(digest) {
                    problems.push(format!(
                        "auth.keys: key '{}' has the same sha256 as another key",
                        key.name
                    ));
                }
            }
        }
    }
    problems
}
