//! The exception document (`exception.yaml`, RFC 7807 style).

use serde::{Deserialize, Serialize};

/// An OGC exception: what went wrong, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Exception {
    /// A URI naming the kind of error.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary of the kind of error.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What happened in this case.
    pub detail: String,
    /// The request path it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// Exception type URIs.
pub mod exception_type {
    /// The process does not exist.
    pub const NO_SUCH_PROCESS: &str =
        "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-process";
    /// The job does not exist.
    pub const NO_SUCH_JOB: &str =
        "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job";
    /// The job has not finished.
    pub const RESULT_NOT_READY: &str =
        "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/result-not-ready";
    /// The output does not exist.
    pub const NO_SUCH_OUTPUT: &str =
        "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-output";
    /// The job failed.
    pub const JOB_FAILED: &str = "urn:wasmproc:error:job-failed";
    /// The request is malformed or its inputs invalid.
    pub const INVALID_REQUEST: &str = "urn:wasmproc:error:invalid-request";
    /// A query parameter is out of range.
    pub const INVALID_PARAMETER: &str = "urn:wasmproc:error:invalid-parameter";
    /// The body's media type is not accepted.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "urn:wasmproc:error:unsupported-media-type";
    /// No representation of the resource in a media type the client
    /// accepts.
    pub const NOT_ACCEPTABLE: &str = "urn:wasmproc:error:not-acceptable";
    /// The body did not arrive in time.
    pub const REQUEST_TIMEOUT: &str = "urn:wasmproc:error:request-timeout";
    /// The body is too large.
    pub const PAYLOAD_TOO_LARGE: &str = "urn:wasmproc:error:payload-too-large";
    /// The execution mode asked for is not available.
    pub const EXECUTION_MODE: &str = "urn:wasmproc:error:execution-mode-not-supported";
    /// The job queue is full.
    pub const QUEUE_FULL: &str = "urn:wasmproc:error:queue-full";
    /// No route.
    pub const NOT_FOUND: &str = "urn:wasmproc:error:not-found";
    /// The method is not allowed on this resource.
    pub const METHOD_NOT_ALLOWED: &str = "urn:wasmproc:error:method-not-allowed";
    /// A server-side failure.
    pub const SERVER_ERROR: &str = "urn:wasmproc:error:server-error";
    /// The database cannot be reached now (503, `Retry-After`).
    pub const STORE_UNAVAILABLE: &str = "urn:wasmproc:error:store-unavailable";
    /// A process with this id exists already.
    pub const DUPLICATED_PROCESS: &str =
        "http://www.opengis.net/def/exceptions/ogcapi-processes-2/1.0/duplicated-process";
    /// The process is built in and cannot be changed.
    pub const IMMUTABLE_PROCESS: &str =
        "http://www.opengis.net/def/exceptions/ogcapi-processes-2/1.0/immutable-process";
    /// Missing credentials.
    pub const UNAUTHORIZED: &str = "urn:wasmproc:error:unauthorized";
    /// Wrong credentials, or the operation is disabled.
    pub const FORBIDDEN: &str = "urn:wasmproc:error:forbidden";
    /// The job was dismissed (a synchronous request whose job a client
    /// dismissed while it ran).
    pub const DISMISSED: &str = "urn:wasmproc:error:job-dismissed";
    /// The stored job data reached its bound (507).
    pub const STORAGE_FULL: &str = "urn:wasmproc:error:storage-full";
    /// The job's process does not list `dismiss` in its
    /// `jobControlOptions`.
    pub const DISMISS_NOT_SUPPORTED: &str = "urn:wasmproc:error:dismiss-not-supported";
}
