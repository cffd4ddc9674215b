//! The error responses that many operations share, declared once in the
//! OpenAPI document (`components/responses`) and referenced by each
//! handler's annotation as `(status = 401, response = Unauthorized)`, or
//! several at once by a set that groups them (`AdminRefusals`,
//! `JobRefusals`, …), for operations that refuse alike.
//!
//! Each type here only describes a response: its doc comment is the
//! description and its one field the body schema ([`Exception`], the OGC
//! exception document). Nothing constructs them; the errors themselves are
//! [`super::ApiError`]s. An operation whose refusal means something of its
//! own (a deploy's 409 for a taken id, the results' 404 while a job runs)
//! keeps declaring it inline, in its own words.
//!
//! Every error may also come as a page: a browser that negotiated HTML gets
//! the same status with the exception rendered ([`super::html`]), so
//! [`super::openapi`] adds `text/html` beside `application/problem+json`
//! to each of these.

#![expect(
    dead_code,
    reason = "the field names the body schema for the OpenAPI document; nothing reads it"
)]

use std::collections::BTreeMap;
use std::marker::PhantomData;

use utoipa::openapi::{Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToResponse};

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

/// A token that is neither the admin token nor a key with the role
/// admin; deployment disabled (neither is configured); or, to replace or
/// undeploy, a process that belongs to the installation
/// (`immutable-process`). The detail says which.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct AdminForbidden(Exception);

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

/// A deploy or replace body that is neither a component
/// (`application/wasm`) nor an application package
/// (`application/ogcapppkg+json`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct NotAModule(Exception);

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

/// The refusals of every operation that reads a request body before it
/// looks at it: 408 [`BodyTimeout`] for a body that trickles in, 413
/// [`TooLarge`] for one over its bound. Listed in an annotation as
/// `responses(..., BodyRejections)`, once per operation.
pub(crate) struct BodyRejections;

impl IntoResponses for BodyRejections {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            ("408".to_owned(), reference::<BodyTimeout>()),
            ("413".to_owned(), reference::<TooLarge>()),
        ])
    }
}

/// The refusals of every operation on one resource by its id, before and
/// when it looks the resource up: 400 [`InvalidId`], 401
/// [`Unauthorized`], 403 [`Forbidden`], 500 [`ServerError`], and 404
/// `NotFound` ([`NoSuchJob`] or [`NoSuchProcess`]). Listed in an annotation
/// by one of its names, [`JobRefusals`] or [`ProcessRefusals`].
pub(crate) struct ByIdRefusals<NotFound>(PhantomData<NotFound>);

/// The refusals of every operation on one job: [`ByIdRefusals`].
pub(crate) type JobRefusals = ByIdRefusals<NoSuchJob>;

/// The refusals of every read of one process: [`ByIdRefusals`].
pub(crate) type ProcessRefusals = ByIdRefusals<NoSuchProcess>;

impl<NotFound: for<'a> ToResponse<'a>> IntoResponses for ByIdRefusals<NotFound> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            ("400".to_owned(), reference::<InvalidId>()),
            ("401".to_owned(), reference::<Unauthorized>()),
            ("403".to_owned(), reference::<Forbidden>()),
            ("404".to_owned(), reference::<NotFound>()),
            ("500".to_owned(), reference::<ServerError>()),
        ])
    }
}

/// The refusals of every operation on the process list itself (deploy,
/// replace, undeploy), made before anything else is looked at: 401
/// [`Unauthorized`] and 403 [`AdminForbidden`].
pub(crate) struct AdminRefusals;

impl IntoResponses for AdminRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            ("401".to_owned(), reference::<Unauthorized>()),
            ("403".to_owned(), reference::<AdminForbidden>()),
        ])
    }
}

/// The refusals of deploy and replace before they look at the module:
/// [`BodyRejections`] and 415 [`NotAModule`].
pub(crate) struct ModuleBodyRejections;

impl IntoResponses for ModuleBodyRejections {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = BodyRejections::responses();
        responses.insert("415".to_owned(), reference::<NotAModule>());
        responses
    }
}

/// The answers of both reads of a job's results (all of them, or one
/// output) other than the results themselves and the 404: 400
/// [`JobFailedOnInputs`] and 500 [`JobFailed`], which carry the failed
/// job's exception, and 401 [`Unauthorized`], 403 [`Forbidden`]. Each
/// operation declares its 404 in its own words (which of
/// `no-such-job`, `no-such-output` and `result-not-ready` it can be).
pub(crate) struct ResultRefusals;

impl IntoResponses for ResultRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            ("400".to_owned(), reference::<JobFailedOnInputs>()),
            ("401".to_owned(), reference::<Unauthorized>()),
            ("403".to_owned(), reference::<Forbidden>()),
            ("500".to_owned(), reference::<JobFailed>()),
        ])
    }
}

/// The refusals every form endpoint (`/ui/...`) shares, all made before
/// the form is read: [`BodyRejections`] and 415 [`NotAForm`]. Listed in an
/// annotation as `responses(..., FormRejections)` so that each form
/// operation declares them by reference, once.
pub(crate) struct FormRejections;

impl IntoResponses for FormRejections {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = BodyRejections::responses();
        responses.insert("415".to_owned(), reference::<NotAForm>());
        responses
    }
}

/// A `$ref` to the shared response `T` in `components/responses`, by the
/// name its [`ToResponse`] derive gives it.
fn reference<'a, T: ToResponse<'a>>() -> RefOr<Response> {
    RefOr::Ref(Ref::from_response_name(T::response().0))
}

/// The refusals of the admin forms (deploy, replace, undeploy): 401
/// without a token, 403 with a wrong one (or deployment disabled, or, to
/// replace or undeploy, a built-in process). Described here rather than
/// referenced: a browser gets the form again with the refusal, and
/// [`super::openapi`] adds that page-or-exception content to every form
/// refusal. The forms on one process list their 404 beside these.
pub(crate) struct AdminFormRefusals;

impl IntoResponses for AdminFormRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let described = |text: &str| RefOr::T(ResponseBuilder::new().description(text).build());
        BTreeMap::from([
            ("401".to_owned(), described("No token")),
            (
                "403".to_owned(),
                described("Wrong token, deployment disabled, or immutable-process"),
            ),
        ])
    }
}
