//! The inputs of one job, as the host hands them over.

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ProcessError;

/// A decoded binary input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryInput {
    /// The decoded bytes.
    pub bytes: Vec<u8>,
    /// The media type, when the input was a qualified value that gave one.
    pub media_type: Option<String>,
}

/// The inputs of a job: a JSON object keyed by input id.
///
/// The host has already validated them against the process description and
/// fetched inputs given by reference, so a value is either a plain JSON value
/// or an OGC qualified value (`{"value": …, "mediaType": …}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    values: Map<String, Value>,
}

impl Inputs {
    /// Parse the JSON text the host passes to `execute`.
    pub fn from_json(text: &str) -> Result<Self, ProcessError> {
        match serde_json::from_str(text) {
            Ok(Value::Object(values)) => Ok(Self { values }),
            Ok(other) => Err(ProcessError::invalid_input(format!(
                "inputs must be a JSON object, got {other}"
            ))),
            Err(e) => Err(ProcessError::invalid_input(format!(
                "inputs are not valid JSON: {e}"
            ))),
        }
    }

    /// Deserialise all inputs into a serde type (a struct with one field per
    /// input id, `Option` for optional ones).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ProcessError> {
        serde_json::from_value(Value::Object(self.values.clone()))
            .map_err(|e| ProcessError::invalid_input(e.to_string()))
    }

    /// The raw value of an input, if given.
    pub fn get(&self, id: &str) -> Option<&Value> {
        self.values.get(id)
    }

    /// The value of an input, unwrapping an OGC qualified value
    /// (`{"value": …}`) to its `value`.
    pub fn value(&self, id: &str) -> Option<&Value> {
        let raw = self.values.get(id)?;
        Some(match raw {
            Value::Object(fields) if fields.contains_key("value") => &fields["value"],
            other => other,
        })
    }

    /// A string input, if given; an error if it is not a string.
    pub fn optional_str(&self, id: &str) -> Result<Option<&str>, ProcessError> {
        match self.value(id) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ProcessError::invalid_input(format!(
                "input '{id}' must be a string, got {other}"
            ))),
        }
    }

    /// A string input that must be present.
    pub fn required_str(&self, id: &str) -> Result<&str, ProcessError> {
        self.optional_str(id)?
            .ok_or_else(|| ProcessError::invalid_input(format!("input '{id}' is required")))
    }

    /// A numeric input, if given; an error if it is not a number.
    pub fn optional_f64(&self, id: &str) -> Result<Option<f64>, ProcessError> {
        match self.value(id) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                ProcessError::invalid_input(format!("input '{id}' must be a number, got {v}"))
            }),
        }
    }

    /// A binary input, decoded from base64. Accepts a plain base64 string or
    /// a qualified value `{"value": "<base64>", "mediaType": …}`.
    pub fn binary(&self, id: &str) -> Result<Option<BinaryInput>, ProcessError> {
        let media_type = match self.values.get(id) {
            Some(Value::Object(fields)) => fields
                .get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        };
        let Some(encoded) = self.optional_str(id)? else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| ProcessError::invalid_input(format!("input '{id}' is not base64: {e}")))?;
        Ok(Some(BinaryInput { bytes, media_type }))
    }

    /// Ids of the inputs that were given, in the order received.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_values_unwrap_to_their_value() {
        let inputs =
            Inputs::from_json(r#"{"a": {"value": "x", "mediaType": "text/plain"}, "b": "y"}"#)
                .unwrap();
        assert_eq!(inputs.required_str("a").unwrap(), "x");
        assert_eq!(inputs.required_str("b").unwrap(), "y");
        assert_eq!(inputs.required_str("c").unwrap_err().code, "invalid-input");
    }

    #[test]
    fn binary_inputs_decode_base64_with_media_type() {
        let inputs = Inputs::from_json(
            r#"{"img": {"value": "AAEC", "mediaType": "image/png"}, "raw": "AAEC"}"#,
        )
        .unwrap();
        let img = inputs.binary("img").unwrap().unwrap();
        assert_eq!(img.bytes, vec![0, 1, 2]);
        assert_eq!(img.media_type.as_deref(), Some("image/png"));
        let raw = inputs.binary("raw").unwrap().unwrap();
        assert_eq!((raw.bytes, raw.media_type), (vec![0, 1, 2], None));
        assert!(
            Inputs::from_json(r#"{"x": "%%%"}"#)
                .unwrap()
                .binary("x")
                .is_err()
        );
    }

    #[test]
    fn non_object_inputs_are_rejected() {
        assert!(Inputs::from_json("[1]").is_err());
        assert!(Inputs::from_json("not json").is_err());
    }

    #[test]
    fn parse_deserialises_into_a_struct() {
        #[derive(serde::Deserialize)]
        struct Args {
            name: String,
            count: Option<u32>,
        }
        let args: Args = Inputs::from_json(r#"{"name": "n"}"#)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(args.name, "n");
        assert_eq!(args.count, None);
    }
}
