//! Links (`link.yaml`) and the relation types we use.

use serde::{Deserialize, Serialize};

/// A web link.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Link {
    /// Target URL.
    pub href: String,
    /// Relation type.
    pub rel: Option<String>,
    /// Media type of the target.
    #[serde(rename = "type")]
    pub media_type: Option<String>,
    /// Human-readable title.
    pub title: Option<String>,
}

impl Link {
    /// A link with a relation, media type and title.
    pub fn new(href: impl Into<String>, rel: &str, media_type: &str, title: &str) -> Self {
        Self {
            href: href.into(),
            rel: Some(rel.to_owned()),
            media_type: Some(media_type.to_owned()),
            title: Some(title.to_owned()),
        }
    }
}

/// Relation types.
pub mod rel {
    /// The API definition.
    pub const SERVICE_DESC: &str = "service-desc";
    /// Human-readable API documentation.
    pub const SERVICE_DOC: &str = "service-doc";
    /// The conformance declaration.
    pub const CONFORMANCE: &str = "http://www.opengis.net/def/rel/ogc/1.0/conformance";
    /// The process list.
    pub const PROCESSES: &str = "http://www.opengis.net/def/rel/ogc/1.0/processes";
    /// The job list.
    pub const JOB_LIST: &str = "http://www.opengis.net/def/rel/ogc/1.0/job-list";
    /// A process description.
    pub const PROCESS_DESC: &str = "http://www.opengis.net/def/rel/ogc/1.0/process-desc";
    /// The execution endpoint of a process.
    pub const EXECUTE: &str = "http://www.opengis.net/def/rel/ogc/1.0/execute";
    /// The results of a job.
    pub const RESULTS: &str = "http://www.opengis.net/def/rel/ogc/1.0/results";
    /// The status of a job.
    pub const MONITOR: &str = "monitor";
}
