//! Serde wire types of OGC API - Processes Part 1 Core 1.0 documents.
//!
//! Only shapes live here — no behaviour, no storage. Field names follow the
//! published 1.0 schemas (`jobID`, `processID`, `type: "process"`, ...);
//! tests validate our responses against the official schemas.

mod exception;
mod execute;
mod landing;
mod link;
mod process_description;
mod status;

pub use exception::{Exception, exception_type};
pub use execute::{
    ExecuteRequest, InvalidOutputRequest, OutputRequest, ResponseType, Subscriber, TransmissionMode,
};
pub use landing::{ConformanceClasses, LandingPage};
pub use link::{Link, rel};
pub use process_description::{InvalidDescription, check_process_description};
pub use status::{JobList, JobStatus, StatusInfo, Usage};

/// Conformance classes this server implements and tests.
pub const CONFORMANCE_CLASSES: &[&str] = &[
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/ogc-process-description",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/callback",
    "http://www.opengis.net/spec/ogcapi-processes-2/1.0/conf/deploy-replace-undeploy",
    "http://www.opengis.net/spec/ogcapi-processes-2/1.0/conf/ogcapppkg",
    "http://www.opengis.net/spec/ogcapi-processes-3/1.0/conf/nested-processes",
    "http://www.opengis.net/spec/ogcapi-processes-3/1.0/conf/deployable-workflows",
];

/// `sync-execute` in `jobControlOptions`.
pub const SYNC_EXECUTE: &str = "sync-execute";
/// `async-execute` in `jobControlOptions`.
pub const ASYNC_EXECUTE: &str = "async-execute";
/// `dismiss` in `jobControlOptions`.
pub const DISMISS: &str = "dismiss";
