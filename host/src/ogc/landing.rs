//! The landing page (`landingPage.yaml`) and conformance (`confClasses.yaml`).

use serde::{Deserialize, Serialize};

use super::Link;

/// `GET /`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LandingPage {
    /// Title of the service.
    pub title: String,
    /// What the service offers.
    pub description: String,
    /// Links to the API definition, conformance, processes and jobs.
    pub links: Vec<Link>,
}

/// `GET /conformance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConformanceClasses {
    /// The conformance class URIs.
    #[serde(rename = "conformsTo")]
    pub conforms_to: Vec<String>,
}
