//! The execute request (`execute.yaml`, `output.yaml`, `subscriber.yaml`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body of `POST /processes/{id}/execution`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ExecuteRequest {
    /// Inputs keyed by input id: a value, a qualified value
    /// (`{"value", "mediaType"}`), a reference (`{"href"}`), or an array of
    /// those for inputs with `maxOccurs > 1`.
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    /// The outputs wanted and how; absent means all outputs, by value.
    #[schema(value_type = Option<Object>)]
    pub outputs: Option<Map<String, Value>>,
    /// `raw` (default) or `document`.
    pub response: Option<ResponseType>,
    /// Callback URIs.
    pub subscriber: Option<Subscriber>,
}

/// How results are returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResponseType {
    /// Output values themselves (one output) or a multipart body.
    #[default]
    Raw,
    /// A JSON results document.
    Document,
}

/// How one output is delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransmissionMode {
    /// Inline.
    #[default]
    Value,
    /// As a link to `/jobs/{id}/results/{outputId}`.
    Reference,
}

/// One entry of the request's `outputs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OutputRequest {
    /// Inline or by reference.
    pub transmission_mode: TransmissionMode,
}

/// Callback URIs for a job.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscriber {
    /// Receives the results document when the job succeeds.
    /// (`successUrl` is accepted too: the 1.0 schema's typo.)
    #[serde(alias = "successUrl")]
    pub success_uri: Option<String>,
    /// Receives the status info when the job starts running.
    pub in_progress_uri: Option<String>,
    /// Receives the status info when the job fails.
    pub failed_uri: Option<String>,
}

/// An entry of an execute request's `outputs` that is not an
/// [`OutputRequest`] (not an object, or a `transmissionMode` other than
/// `value` and `reference`).
///
/// Happens when a request arrives: the client gets a 400
/// `invalid-request` whose detail is this text, naming the output. A job
/// already stored whose selection no longer parses is served every
/// output, by value.
#[derive(Debug, thiserror::Error)]
#[error("output '{output}': {source}")]
pub struct InvalidOutputRequest {
    /// The output id the entry is keyed by.
    pub output: String,
    /// Why the entry does not parse.
    #[source]
    pub source: serde_json::Error,
}

impl ExecuteRequest {
    /// The parsed `outputs` selection: `None` means every output by value.
    /// An entry that is not an object is an error naming the output.
    pub fn output_requests(
        &self,
    ) -> Result<Option<Vec<(String, OutputRequest)>>, InvalidOutputRequest> {
        let Some(outputs) = &self.outputs else {
            return Ok(None);
        };
        outputs
            .iter()
            .map(|(id, spec)| {
                serde_json::from_value::<OutputRequest>(spec.clone())
                    .map(|request| (id.clone(), request))
                    .map_err(|source| InvalidOutputRequest {
                        output: id.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}
