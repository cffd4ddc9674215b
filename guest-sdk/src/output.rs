//! Outputs of a job, built by the process and lowered to the WIT types.

use serde::Serialize;

use crate::bindings::wasmproc::process::types;

/// The value of an output.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputValue {
    /// A JSON text.
    Json(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

/// One output of a job, named by its id in the process description.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The output id.
    pub id: String,
    /// The media type; the host defaults it to `application/json` for JSON
    /// and `application/octet-stream` for bytes.
    pub media_type: Option<String>,
    /// The value.
    pub value: OutputValue,
}

impl Output {
    /// A JSON output from any serialisable value (strings become JSON strings).
    pub fn json(id: impl Into<String>, value: &impl Serialize) -> Self {
        // Serialising plain data to a string cannot fail; fall back to null
        // rather than panic for exotic `Serialize` impls that refuse.
        let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
        Self {
            id: id.into(),
            media_type: None,
            value: OutputValue::Json(text),
        }
    }

    /// A JSON output with an explicit media type (e.g. `application/geo+json`).
    pub fn json_as(
        id: impl Into<String>,
        media_type: impl Into<String>,
        value: &impl Serialize,
    ) -> Self {
        Self {
            media_type: Some(media_type.into()),
            ..Self::json(id, value)
        }
    }

    /// A binary output with its media type (e.g. `image/png`).
    pub fn bytes(id: impl Into<String>, media_type: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            id: id.into(),
            media_type: Some(media_type.into()),
            value: OutputValue::Bytes(bytes),
        }
    }

    pub(crate) fn lower(self) -> types::Output {
        types::Output {
            id: self.id,
            media_type: self.media_type,
            value: match self.value {
                OutputValue::Json(text) => types::Value::Json(text),
                OutputValue::Bytes(bytes) => types::Value::Bytes(bytes),
            },
        }
    }
}
