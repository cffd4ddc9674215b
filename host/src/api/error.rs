//! The one API error type: every failure becomes an OGC exception document
//! with the right HTTP status.
//!
//! Every handler returns `Result<_, ApiError>`, and every error of the
//! layers below converts into it here, each by an exhaustive `match` (no
//! catch-all: a new error variant does not compile until it has a status):
//! - [`StoreError`]: the database unreachable or restarting is 503
//!   `store-unavailable` with `Retry-After` (the client may retry and loses
//!   nothing); a full queue is 503 `queue-full`; anything else is a 500.
//! - [`JobError`]: a full queue or too many waiting sync requests are 503
//!   with `Retry-After`; a full storage bound is 507; an unknown job is
//!   404; a process that does not allow dismissal is 405 with `Allow`; a
//!   shutdown in progress is 503.
//! - [`RegisterError`]: a taken id is 409 `duplicated-process`, a built-in
//!   is 403 `immutable-process`, a module that does not compile, link or
//!   describe itself is 400 naming why.
//! - axum's path rejection: a segment that is not UTF-8 once decoded, or
//!   that does not deserialize, is a 400 `invalid-parameter`; missing path
//!   parameters are our own bug, a 500. axum marks these enums
//!   `#[non_exhaustive]`, so this one conversion needs catch-all arms.
//!
//! What a status tells the client, across the API: 400 and 415 mean the
//! request must change before it is sent again; 401 and 403 that the
//! credentials must; 404 that the resource is not there (or not the
//! caller's to see); 409 that the state of the resource is in the way;
//! 503 and 507 with `Retry-After` that the same request may succeed later
//! unchanged; 500 that the server failed and its operator should look.
//!
//! The document is `application/problem+json` with OGC's `type`, `title`,
//! `status` and `detail`. `type` is an OGC exception URI where Part 1 or 2
//! defines one (`no-such-process`, `no-such-job`, `result-not-ready`,
//! `no-such-output`, `duplicated-process`, `immutable-process`) and a
//! `urn:wasmproc:error:` name otherwise, so a client can branch on it.
//! `detail` says what was wrong and, where it helps, what to do; it is cut
//! to [`MAX_DETAIL_BYTES`], because it often quotes what the client sent.
//! A 500 never carries the internal error's text (it may name files or
//! queries): the text goes to the server's log, the client gets a fixed
//! sentence.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::jobs::{JobError, RegisterError};
use crate::ogc::{Exception, exception_type as ty};
use crate::store::StoreError;

/// Longest `detail` sent, in bytes. Details quote what the client sent
/// (an input value, an id); a megabyte-long invalid input must not come
/// back as a megabyte-long error.
pub(crate) const MAX_DETAIL_BYTES: usize = 4096;

/// `detail` cut to [`MAX_DETAIL_BYTES`] on a character boundary, saying
/// how much was left out. The cut is made 64 bytes short of the bound to
/// leave room for that note, so the result never exceeds the bound.
fn bounded_detail(mut detail: String) -> String {
    if detail.len() <= MAX_DETAIL_BYTES {
        return detail;
    }
    let mut end = MAX_DETAIL_BYTES - 64;
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    let cut = detail.len() - end;
    detail.truncate(end);
    detail.push_str(&format!("… ({cut} more bytes not shown)"));
    detail
}

/// An error answered as an OGC exception.
///
/// Built by the constructors below or converted from the errors of the
/// layers below (`?` in a handler does it), and answered by its
/// `IntoResponse` as an `application/problem+json` document with the
/// headers the status calls for. The fields are private so that every
/// error goes through `new`, which bounds the detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status of the answer, and the document's `status`.
    status: StatusCode,
    /// The document's `type`: an OGC exception URI or a
    /// `urn:wasmproc:error:` name, the one field a client should branch
    /// on.
    type_uri: &'static str,
    /// A short fixed title for the kind of error (never client text).
    title: &'static str,
    /// What went wrong in this request, already bounded.
    detail: String,
    /// The `Retry-After` header, in seconds: set on errors where the
    /// same request may succeed later.
    retry_after_seconds: Option<u64>,
    /// Whether to send `WWW-Authenticate: Bearer`, as RFC 9110 asks of a
    /// 401.
    ask_for_bearer_token: bool,
    /// The `Allow` header of a 405.
    allow: Option<&'static str>,
}

impl ApiError {
    /// An error with every field chosen. `detail` is cut to
    /// `MAX_DETAIL_BYTES` here, whichever constructor called.
    pub fn new(
        status: StatusCode,
        type_uri: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            type_uri,
            title,
            detail: bounded_detail(detail.into()),
            retry_after_seconds: None,
            ask_for_bearer_token: false,
            allow: None,
        }
    }

    /// 401: credentials are missing; answered with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self {
            ask_for_bearer_token: true,
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                ty::UNAUTHORIZED,
                "Unauthorized",
                detail,
            )
        }
    }

    /// 403: the credentials are wrong or the operation is disabled. The
    /// client should not retry with the same credentials; unlike a 401, no
    /// `WWW-Authenticate` invites it to.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ty::FORBIDDEN, "Forbidden", detail)
    }

    /// 404 `no-such-process`.
    pub fn no_such_process(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ty::NO_SUCH_PROCESS,
            "No such process",
            format!("there is no process '{id}'"),
        )
    }

    /// 404 `no-such-job`.
    pub fn no_such_job(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ty::NO_SUCH_JOB,
            "No such job",
            format!("there is no job '{id}'"),
        )
    }

    /// 404 `result-not-ready`: the job exists but is still `accepted` or
    /// `running` (named in the detail). OGC Part 1 answers 404 here; the
    /// client polls the job's status and asks again once it has ended.
    pub fn result_not_ready(id: &str, status: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ty::RESULT_NOT_READY,
            "Result not ready",
            format!("job '{id}' is {status}; its results are not ready yet"),
        )
    }

    /// 404 `no-such-output`.
    pub fn no_such_output(job: &str, output: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ty::NO_SUCH_OUTPUT,
            "No such output",
            format!("job '{job}' has no output '{output}'"),
        )
    }

    /// 400 for a malformed request body or invalid inputs. The detail
    /// should name the part at fault (a JSON path, an input id), because
    /// the HTML form and clients use it to point at the field.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ty::INVALID_REQUEST,
            "Invalid request",
            detail,
        )
    }

    /// 400 for a query or path parameter out of range or malformed: a
    /// `limit` of 0, an unknown `status`, an `f` other than json or html.
    pub fn invalid_parameter(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ty::INVALID_PARAMETER,
            "Invalid parameter",
            detail,
        )
    }

    /// 415 for a body of the wrong media type.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ty::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            detail,
        )
    }

    /// 406 when the resource has no representation the client accepts.
    pub fn not_acceptable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_ACCEPTABLE,
            ty::NOT_ACCEPTABLE,
            "Not acceptable",
            detail,
        )
    }

    /// 413 for a body over the limit, the limit named so a client can
    /// tell how far over it was.
    pub fn payload_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ty::PAYLOAD_TOO_LARGE,
            "Payload too large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// A body that could not be read: 413 when over `limit`, 408 when it
    /// did not arrive within `body_read_timeout`, else 400 (a broken
    /// connection, a malformed chunked encoding). The timeout is found in
    /// the rejection's chain of sources, where the timeout layer left it.
    pub fn unreadable_body(
        rejection: &axum::extract::rejection::BytesRejection,
        limit: u64,
    ) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::payload_too_large(limit)
        } else if is_timeout(rejection) {
            Self::new(
                StatusCode::REQUEST_TIMEOUT,
                ty::REQUEST_TIMEOUT,
                "Request timeout",
                "the request body did not arrive in time",
            )
        } else {
            Self::invalid_request(format!("could not read the request body: {rejection}"))
        }
    }

    /// 500 without internals: the detail is logged, not sent. Logged at
    /// error level in the request's span, so the request id the client
    /// got in `x-request-id` finds the line.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ty::SERVER_ERROR,
            "Internal server error",
            "the server failed to handle the request; the error is in its log",
        )
    }

    /// Ask the client to come back after this many seconds
    /// (`Retry-After`). Only for errors where the same request may succeed
    /// later: a full queue, a database that is restarting.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// The HTTP status. The HTML forms re-render a refused form with it,
    /// so the page carries the status the API would have sent.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The exception document this error is answered with (the HTML
    /// pages show it next to the form field it concerns).
    pub(crate) fn exception(&self) -> Exception {
        Exception {
            type_uri: self.type_uri.to_owned(),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            instance: None,
        }
    }
}

/// Whether reading the body failed because the body deadline passed.
/// axum wraps the body's error, so the chain of `source()`s is walked
/// until the timeout layer's own error type turns up, or the chain ends.
fn is_timeout(rejection: &axum::extract::rejection::BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = source {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// The answer: the status, the exception document as
/// `application/problem+json`, and the headers the status calls for
/// (`WWW-Authenticate` on a 401, `Allow` on a 405, `Retry-After` where
/// set).
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Exception {
            type_uri: self.type_uri.to_owned(),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            instance: None,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.ask_for_bearer_token {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(methods) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(methods));
        }
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A path that did not deserialize: the rejection of the crate's `Path`
/// extractor. Every route's parameters are strings, so the only failure a
/// client can cause is a segment that is not UTF-8 once percent-decoded.
///
/// The one conversion here with catch-all arms: axum marks `PathRejection`
/// and `ErrorKind` `#[non_exhaustive]`, so a `match` on them must have
/// one. Every rejection axum has today is named, so that arm only takes
/// what a later axum adds (a 500); every kind but invalid UTF-8 is the
/// same 400 naming the path, today's and later ones alike.
impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match rejection {
            PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
                ErrorKind::InvalidUtf8InPathParam { .. } => ApiError::invalid_parameter(
                    "a path segment is not valid UTF-8 once percent-decoded",
                ),
                // Every other kind, today's and a later axum's, is a 400
                // naming the path.
                _ => ApiError::invalid_parameter(format!("invalid path: {}", e.body_text())),
            },
            // No path parameters in the request's extensions: the route
            // and the extractor disagree, our own bug.
            PathRejection::MissingPathParams(_) => ApiError::internal(&rejection),
            // `#[non_exhaustive]`: a rejection a later axum adds.
            _ => ApiError::internal(&rejection),
        }
    }
}

/// The store's errors: unavailability is the client's to retry, a full
/// queue is load, the rest is the server's fault (500, logged).
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match &error {
            // The database is down or restarting: the client may retry.
            StoreError::Unavailable { retry_after, .. } => {
                tracing::warn!(%error, "store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ty::STORE_UNAVAILABLE,
                    "Database unavailable",
                    "the database cannot be reached right now; try again shortly",
                )
                .retry_after(retry_after.as_secs().max(1))
            }
            StoreError::QueueFull(_) => queue_full(&error),
            // Out of disk: a condition of the server, not a bug, and the
            // client may come back once an operator freed space.
            StoreError::Sled(_) if error.is_disk_full() => {
                tracing::error!(%error, "the store's disk is full: writes fail until space is freed and the server restarts");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    ty::STORAGE_FULL,
                    "Storage full",
                    "the server's disk is full: nothing more can be stored until an operator frees space and restarts it",
                )
                .retry_after(30)
            }
            StoreError::Sled(_)
            | StoreError::Postgres(_)
            | StoreError::Encoding(_)
            | StoreError::SchemaTooNew { .. } => ApiError::internal(&error),
        }
    }
}

/// 503 `queue-full` with `Retry-After`: too many jobs are waiting, the
/// async queue (`max_queued_jobs`) or the sync waiters
/// (`max_waiting_sync`). Nothing was stored: the request may be sent
/// again as it is, after the five seconds `Retry-After` suggests.
fn queue_full(error: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ty::QUEUE_FULL,
        "Queue full",
        error.to_string(),
    )
    .retry_after(5)
}

/// The scheduler's errors, each mapped to what the client can do about
/// it (see the module documentation).
impl From<JobError> for ApiError {
    fn from(error: JobError) -> Self {
        match error {
            JobError::QueueFull(_) | JobError::SyncQueueFull(_) => queue_full(&error),
            // Retry-After: freed space shows at the next count of the
            // stored data (`execution.storage_recount`, 30 s by default).
            JobError::StorageFull { .. }
            | JobError::OwnerStorageFull { .. }
            | JobError::DiskFull { .. } => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                ty::STORAGE_FULL,
                "Storage full",
                error.to_string(),
            )
            .retry_after(30),
            JobError::NoSuchJob(id) => ApiError::no_such_job(&id.to_string()),
            // The inputs given to a workflow make no sound tree.
            JobError::Workflow(_) => ApiError::invalid_request(error.to_string()),
            // The job resource exists but takes no DELETE: 405 with the
            // methods it does take.
            JobError::DismissNotSupported { .. } => {
                let mut refused = ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    ty::DISMISS_NOT_SUPPORTED,
                    "Dismiss not supported",
                    error.to_string(),
                );
                refused.allow = Some("GET, HEAD");
                refused
            }
            JobError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ty::SERVER_ERROR,
                "Shutting down",
                error.to_string(),
            )
            .retry_after(5),
            JobError::Store(e) => e.into(),
        }
    }
}

/// The registry's errors, from deploy, replace and undeploy.
impl From<RegisterError> for ApiError {
    fn from(error: RegisterError) -> Self {
        match error {
            RegisterError::Store(e) => e.into(),
            RegisterError::Duplicate(_) => ApiError::new(
                StatusCode::CONFLICT,
                ty::DUPLICATED_PROCESS,
                "Duplicated process",
                error.to_string(),
            ),
            RegisterError::Immutable(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                ty::IMMUTABLE_PROCESS,
                "Immutable process",
                error.to_string(),
            ),
            RegisterError::NotFound(id) => ApiError::no_such_process(&id),
            // The module or its description: the deployer's to fix.
            RegisterError::IdMismatch { .. }
            | RegisterError::Load(_)
            | RegisterError::Description(_)
            | RegisterError::InvalidDescription(_)
            | RegisterError::Workflow(_) => ApiError::invalid_request(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_details_are_cut_on_a_character_boundary() {
        let short = ApiError::invalid_request("short");
        assert_eq!(short.detail, "short");
        let long = ApiError::invalid_request("é".repeat(100_000));
        assert!(
            long.detail.len() <= MAX_DETAIL_BYTES,
            "{}",
            long.detail.len()
        );
        assert!(
            long.detail.ends_with("more bytes not shown)"),
            "{}",
            long.detail
        );
        assert!(long.detail.starts_with("ééé"));
    }
}
