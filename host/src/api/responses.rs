//! The error responses that many operations share, declared once in the
//! OpenAPI document (`components/responses`) and referenced by each
//! handler's annotation as `(status = 401, response = Unauthorized)`.
//!
//! Each type here only describes a response: its doc comment is the
//! description and its one field the body schema ([`Exception`], the OGC
//! exception document). Nothing constructs them; the errors themselves are
//! [`super::ApiError`]s. An operation whose refusal means something of its
//! own (a deploy's 403 for an immutable process, the results' 404 while a
//! job runs) keeps declaring it inline, in its own words.
//!
//! Every error may also come as a page: a browser that negotiated HTML gets
//! the same status with the exception rendered ([`super::html`]), so
//! [`super::openapi`] adds `text/html` beside `application/problem+json`
//! to each of these.

#![expect(
    dead_code,
    reason = "the field names the body schema for the OpenAPI document; nothing reads it"
)]

use utoipa::ToResponse;

use crate::ogc::Exception;

/// No credentials where the server asks for them (which operations do
/// depends on its auth settings; `x-wasmproc-role` names the least role).
/// Sent with `WWW-Authenticate: Bearer`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct Unauthorized(Exception);

/// A bearer token that is neither the admin token nor an API key, or a
/// key whose role is below the one the operation needs (the detail names
/// both).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct Forbidden(Exception);

/// A path id that is not valid UTF-8 once percent-decoded
/// (`invalid-parameter`). Any other string is a valid id here: one that
/// names nothing is a 404, not a 400.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct InvalidId(Exception);

/// `no-such-process`: no process with that id.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct NoSuchProcess(Exception);

/// `no-such-job`: no job with that id, or one the caller may not see.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct NoSuchJob(Exception);

/// The request body did not arrive within `body_read_timeout`, so a
/// client that sends slowly cannot hold a request open indefinitely.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct BodyTimeout(Exception);

/// The request body is larger than `max_request_bytes` (refused as soon
/// as a `Content-Length` says so).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct TooLarge(Exception);

/// A form endpoint got a body that is not `multipart/form-data` or
/// `application/x-www-form-urlencoded`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct NotAForm(Exception);

/// Server error: a failure of the server itself. The detail is a fixed
/// sentence; the cause is in the server's log, under the request id.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct ServerError(Exception);

/// The job failed on its inputs (a process error the guest blamed on
/// them, or an input its schema refused), so its results are this
/// exception; also a path id that is not valid UTF-8.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct JobFailedOnInputs(Exception);

/// The job failed for another reason (a limit it hit, a trap, an invalid
/// output; the detail names it), so its results are this exception; or
/// the server itself failed.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct JobFailed(Exception);
