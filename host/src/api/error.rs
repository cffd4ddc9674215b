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
/// how much was left out.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    type_uri: &'static str,
    title: &'static str,
    detail: String,
    retry_after_seconds: Option<u64>,
    ask_for_bearer_token: bool,
    /// The `Allow` header of a 405.
    allow: Option<&'static str>,
}

impl ApiError {
    /// An error with every field chosen.
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

    /// 403: the credentials are wrong or the operation is disabled.
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

    /// 404 `result-not-ready`.
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

    /// 400 for a malformed request body or invalid inputs.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ty::INVALID_REQUEST,
            "Invalid request",
            detail,
        )
    }

    /// 400 for a query parameter out of range.
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

    /// 413 for a body over the limit.
    pub fn payload_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ty::PAYLOAD_TOO_LARGE,
            "Payload too large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// A body that could not be read: 413 when over `limit`, else 400.
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

    /// 500 without internals: the detail is logged, not sent.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ty::SERVER_ERROR,
            "Internal server error",
            "the server failed to handle the request; the error is in its log",
        )
    }

    /// Ask the client to come back after this many seconds.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// The HTTP status.
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

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match rejection {
            PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
                ErrorKind::InvalidUtf8InPathParam { .. } => ApiError::invalid_parameter(
                    "a path segment is not valid UTF-8 once percent-decoded",
                ),
                _ => ApiError::invalid_parameter(format!("invalid path: {}", e.body_text())),
            },
            other => ApiError::internal(&other),
        }
    }
}

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
            StoreError::Sled(_)
            | StoreError::Postgres(_)
            | StoreError::Encoding(_)
            | StoreError::SchemaTooNew { .. } => ApiError::internal(&error),
        }
    }
}

/// 503 `queue-full` with `Retry-After`.
fn queue_full(error: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ty::QUEUE_FULL,
        "Queue full",
        error.to_string(),
    )
    .retry_after(5)
}

impl From<JobError> for ApiError {
    fn from(error: JobError) -> Self {
        match error {
            JobError::QueueFull(_) | JobError::SyncQueueFull(_) => queue_full(&error),
            // Retry-After: freed space shows at the next count of the
            // stored data (`execution.storage_recount`, 30 s by default).
            JobError::StorageFull { .. } | JobError::OwnerStorageFull { .. } => ApiError::new(
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
