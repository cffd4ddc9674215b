//! Who is calling, and what they may do.
//!
//! A caller presents `Authorization: Bearer <secret>`. The secret is either
//! the admin token (`auth.admin_token`, role admin) or one of the API keys
//! (`[[auth.keys]]`, each with a role). Keys are configured as SHA-256
//! hashes: the presented secret is hashed once and compared with every
//! configured hash in constant time, so neither the configuration nor the
//! time taken tells anything about a key.
//!
//! What each role may do ([`Role`]): `read` lists and describes processes,
//! `execute` also runs them and sees its own jobs, `admin` also deploys,
//! replaces and undeploys, and sees every job. Which operations ask for a
//! role at all depends on the configuration:
//!
//! | operations | needs |
//! |---|---|
//! | deploy, replace, undeploy | admin, always |
//! | execution, `/jobs…` | execute, when keys are configured or `auth.protect_jobs` |
//! | `/processes`, `/processes/{id}` | read, when `auth.protect_processes` |
//! | `/processes/{id}/package` | read, when jobs or processes are protected |
//!
//! Job ownership follows: a job records the key that created it
//! ([`Caller::owner`]), and a caller who does not see every job
//! ([`Caller::may_see`]) gets 404 for another caller's job, exactly as for
//! a job that does not exist, so ids cannot be probed.
//!
//! Secrets never reach the log: the admin token lives in a `Secret` (its
//! `Debug` is redacted) and a key is known by its name only.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};
use crate::config::{ApiKey, AuthConfig, Role};
use crate::jobs::JobOwner;
use crate::store::JobRecord;

/// The least role of each operation that asks for one, by its OpenAPI
/// `operationId`: written into the OpenAPI document as `x-wasmproc-role`
/// ([`super::openapi`]), where the role-by-role test checks every
/// operation against what the server does.
pub(crate) const OPERATION_ROLES: &[(&str, Role)] = &[
    ("getProcesses", Role::Read),
    ("getProcessDescription", Role::Read),
    ("getPackage", Role::Read),
    ("execute", Role::Execute),
    ("executeForm", Role::Execute),
    ("getJobs", Role::Execute),
    ("getStatus", Role::Execute),
    ("dismiss", Role::Execute),
    ("getResult", Role::Execute),
    ("getResultOutput", Role::Execute),
    ("getJobLog", Role::Execute),
    ("deploy", Role::Admin),
    ("replace", Role::Admin),
    ("undeploy", Role::Admin),
    ("deployForm", Role::Admin),
    ("replaceForm", Role::Admin),
    ("undeployForm", Role::Admin),
];

/// Who made a request.
///
/// The job routes get it from [`jobs_access`] as a request extension;
/// other handlers get it from [`require`] when they need one. It carries
/// no secret: a key is known by its configuration (name, role, storage
/// bound), never by what the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// No credentials, or credentials not asked for: on a server whose
    /// jobs are not protected, every caller of a job route is anonymous,
    /// whatever header it sent. Only reaches routes that need none.
    Anonymous,
    /// The admin token (`auth.admin_token`): role admin, owning nothing.
    AdminToken,
    /// A configured key, with the role and storage bound it was given.
    Key(ApiKey),
}

impl Caller {
    /// The caller's role (`None`: anonymous). Roles are ordered, so a
    /// check is one comparison against the least role an operation needs.
    pub(crate) fn role(&self) -> Option<Role> {
        match self {
            Self::Anonymous => None,
            Self::AdminToken => Some(Role::Admin),
            Self::Key(key) => Some(key.role),
        }
    }

    /// Whether every job is visible to this caller: admins, and anybody
    /// on a server whose jobs are not protected (there, only anonymous
    /// callers reach the job routes).
    fn sees_every_job(&self) -> bool {
        !matches!(self.role(), Some(Role::Read | Role::Execute))
    }

    /// The owner that jobs created by this caller record: the key, for a
    /// key. The admin token and anonymous callers create jobs that belong
    /// to nobody (only callers who see every job see them).
    pub(crate) fn owner(&self) -> Option<JobOwner> {
        match self {
            Self::Key(key) => Some(JobOwner {
                name: key.name.clone(),
                max_stored_bytes: key.max_stored_bytes,
            }),
            Self::Anonymous | Self::AdminToken => None,
        }
    }

    /// The owner `GET /jobs` is restricted to (`None`: every job).
    pub(crate) fn listed_owner(&self) -> Option<String> {
        match self {
            Self::Key(key) if !self.sees_every_job() => Some(key.name.clone()),
            _ => None,
        }
    }

    /// Whether this caller may see (and so read, and dismiss) `job`.
    pub(crate) fn may_see(&self, job: &JobRecord) -> bool {
        self.sees_every_job()
            || matches!(self, Self::Key(key) if job.owner.as_deref() == Some(key.name.as_str()))
    }
}

/// The bearer secret of a request, if it sent one. The scheme is matched
/// as `Bearer` or `bearer` (RFC 7235 makes it case-insensitive; these are
/// the spellings clients send) and surrounding spaces are trimmed. Any
/// other `Authorization` (Basic, say) counts as no credentials, so the
/// answer is a 401 asking for a bearer token, not a 403.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// The configured key whose hash is `secret`'s. Every hash is compared
/// (in constant time) whatever matches, so timing does not tell which
/// key, or how many, came close. Comparing hashes rather than secrets
/// also makes every comparison the same length. A key whose `sha256` is
/// not 64 hex digits matches nothing; configuration validation refuses
/// such a key, and two keys with one hash, before the server starts.
fn key_for(auth: &AuthConfig, secret: &str) -> Option<ApiKey> {
    let presented = Sha256::digest(secret.as_bytes());
    let mut found = None;
    for key in &auth.keys {
        let Some(digest) = key.digest() else { continue };
        if bool::from(digest.as_slice().ct_eq(presented.as_slice())) {
            found = Some(key.clone());
        }
    }
    found
}

/// Who sent `headers`: anonymous without a bearer secret, else whoever it
/// belongs to, or 403 for a secret that is neither the admin token nor a
/// key. A wrong secret is a 403 rather than a 401 because the client did
/// authenticate, and failed: asking it again for credentials
/// (`WWW-Authenticate`) would invite a retry with the same secret.
pub(crate) fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let auth = &state.config.auth;
    let Some(secret) = bearer(headers) else {
        return Ok(Caller::Anonymous);
    };
    if auth.admin_token.as_ref().is_some_and(|t| t.matches(secret)) {
        return Ok(Caller::AdminToken);
    }
    key_for(auth, secret)
        .map(Caller::Key)
        .ok_or_else(|| ApiError::forbidden("the bearer token is not valid"))
}

/// The caller, who must hold at least `needed`: 401 without credentials,
/// 403 with a wrong secret or a role below `needed`.
///
/// For the admin role, a server where nobody could hold it (no admin
/// token, no admin key) answers 403 before looking at the credentials:
/// the operation is disabled, and saying so is more useful than a 401
/// asking for a token that does not exist.
pub(crate) fn require(
    state: &AppState,
    headers: &HeaderMap,
    needed: Role,
) -> Result<Caller, ApiError> {
    let auth = &state.config.auth;
    if needed == Role::Admin && !auth.deployment_enabled() {
        return Err(ApiError::forbidden(
            "deploying, replacing and undeploying are disabled: no admin token is configured \
             (auth.admin_token or WASMPROC_ADMIN_TOKEN) and no key has the role admin",
        ));
    }
    let caller = authenticate(state, headers)?;
    match caller.role() {
        None => Err(ApiError::unauthorized(
            "this operation needs `Authorization: Bearer <token>`",
        )),
        Some(role) if role < needed => Err(ApiError::forbidden(format!(
            "this operation needs a key with the role {}; this key has the role {}",
            needed.as_str(),
            role.as_str()
        ))),
        Some(_) => Ok(caller),
    }
}

/// Require the admin role (the admin token or an admin key): deploy,
/// replace and undeploy, whatever the other auth settings say, since
/// they put code on the server.
pub(crate) fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    require(state, headers, Role::Admin).map(drop)
}

/// The caller of an operation on processes (list, describe): anybody,
/// unless `auth.protect_processes` asks for a key.
pub(crate) fn process_reader(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.config.auth.protect_processes {
        require(state, headers, Role::Read)?;
    }
    Ok(())
}

/// The caller of `GET /processes/{id}/package`, which hands out a
/// process's code: a key whenever jobs or processes are protected.
pub(crate) fn package_reader(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let auth = &state.config.auth;
    if auth.protect_processes || auth.jobs_protected() {
        require(state, headers, Role::Read)?;
    }
    Ok(())
}

/// The caller of an execution or job operation: role execute when jobs
/// are protected (`auth.protect_jobs`, or any key configured), else
/// anybody, as [`Caller::Anonymous`]. The HTML execute form calls it too,
/// with its `token` field turned into the header, so a form and an API
/// call are held to the same rule.
pub(crate) fn job_caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if state.config.auth.jobs_protected() {
        require(state, headers, Role::Execute)
    } else {
        Ok(Caller::Anonymous)
    }
}

/// Middleware of the execution and job routes: refuses callers that may
/// not use them ([`job_caller`]) and hands the [`Caller`] to the handler
/// as a request extension.
///
/// It runs before the body is read, so an unauthorised client cannot make
/// the server read (or wait for) a large body, and the refusal (401, 403)
/// comes before any 404 or 400 that would tell it something about the
/// processes or jobs.
pub(crate) async fn jobs_access(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match job_caller(&state, request.headers()) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, role: Role, secret: &str) -> ApiKey {
        ApiKey {
            name: name.into(),
            role,
            sha256: Sha256::digest(secret.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            max_stored_bytes: None,
        }
    }

    #[test]
    fn a_secret_finds_its_key_by_hash() {
        let auth = AuthConfig {
            keys: vec![
                key("alice", Role::Execute, "alice-secret"),
                key("bob", Role::Read, "bob-secret"),
            ],
            ..AuthConfig::default()
        };
        assert_eq!(key_for(&auth, "bob-secret").unwrap().name, "bob");
        assert_eq!(key_for(&auth, "alice-secret").unwrap().role, Role::Execute);
        assert_eq!(key_for(&auth, "alice-secreT"), None);
        assert_eq!(key_for(&auth, ""), None);
    }

    #[test]
    fn execute_keys_see_only_their_own_jobs_and_admins_every_job() {
        let mut job = JobRecord::new("p", "s", Default::default(), true);
        let alice = Caller::Key(key("alice", Role::Execute, "a"));
        let bob = Caller::Key(key("bob", Role::Execute, "b"));
        let admin = Caller::Key(key("root", Role::Admin, "r"));
        assert!(!alice.may_see(&job), "nobody's job is not alice's");
        job.owner = Some("alice".into());
        assert!(alice.may_see(&job));
        assert!(!bob.may_see(&job));
        assert!(admin.may_see(&job) && Caller::AdminToken.may_see(&job));
        assert_eq!(alice.listed_owner().as_deref(), Some("alice"));
        assert_eq!(admin.listed_owner(), None);
        assert_eq!(
            admin.owner().unwrap().name,
            "root",
            "an admin key owns its jobs"
        );
        assert_eq!(Caller::AdminToken.owner(), None);
    }
}
