//! The OpenAPI document as a page: a small renderer of our own in place
//! of Swagger UI (no script, no CDN). Operations are grouped by their
//! first tag, in the document's order; each shows its method, path,
//! summary, parameters, request media types and responses.

use serde_json::Value;

/// One parameter of an operation.
#[derive(Debug, Clone)]
pub(crate) struct ParameterView {
    /// The parameter name.
    pub(crate) name: String,
    /// Where it goes: `path`, `query`, `header`.
    pub(crate) location: String,
    /// Whether it must be given.
    pub(crate) required: bool,
    /// What it means.
    pub(crate) description: String,
}

/// One response of an operation.
#[derive(Debug, Clone)]
pub(crate) struct ResponseView {
    /// The status code (or `default`).
    pub(crate) status: String,
    /// What the response means.
    pub(crate) description: String,
    /// Its media types, comma-separated.
    pub(crate) media_types: String,
}

/// One operation.
#[derive(Debug, Clone)]
pub(crate) struct OperationView {
    /// The HTTP method, upper case.
    pub(crate) method: String,
    /// The method, lower case: the CSS class that colours it.
    pub(crate) method_class: String,
    /// The path template.
    pub(crate) path: String,
    /// The summary, or the description when there is none.
    pub(crate) summary: String,
    /// Whether a security requirement other than "none" is listed (a bearer token badge).
    pub(crate) secured: bool,
    /// Its parameters.
    pub(crate) parameters: Vec<ParameterView>,
    /// The media types of its request body, comma-separated.
    pub(crate) request_types: String,
    /// Its responses, in the document's order.
    pub(crate) responses: Vec<ResponseView>,
}

/// The operations of one tag.
#[derive(Debug, Clone)]
pub(crate) struct TagGroup {
    /// The tag (the first of an operation's tags; `Other` without one).
    pub(crate) tag: String,
    /// Its operations, in the document's order.
    pub(crate) operations: Vec<OperationView>,
}

/// The operation keys of an OpenAPI path item, in the order a page lists
/// them (reads first, then writes).
const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// A string field of an object, or empty: the document is walked as
/// plain JSON, and a missing member is shown as nothing.
fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// The keys of a `content` map (its media types), comma-separated.
fn media_types(content: Option<&Value>) -> String {
    content
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// The operations of an OpenAPI 3.0 document, grouped by tag.
///
/// Groups appear in the order their first operation does in `paths`.
/// The document has been through `serde_json::Value`, whose maps are
/// sorted (serde_json is built without `preserve_order`), so that order
/// is alphabetical by path: `/` first, the `/ui/…` endpoints last. A
/// malformed document yields fewer operations, never an error: the page
/// is a convenience, and the JSON is the contract.
pub(crate) fn groups(document: &Value) -> Vec<TagGroup> {
    let mut groups: Vec<TagGroup> = Vec::new();
    let Some(paths) = document.get("paths").and_then(Value::as_object) else {
        return groups;
    };
    for (path, item) in paths {
        for method in METHODS {
            let Some(operation) = item.get(*method) else {
                continue;
            };
            let tag = operation
                .get("tags")
                .and_then(Value::as_array)
                .and_then(|t| t.first())
                .and_then(Value::as_str)
                .unwrap_or("Other")
                .to_owned();
            let summary = match text(operation, "summary") {
                s if s.is_empty() => text(operation, "description"),
                s => s,
            };
            let secured = operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| {
                    s.iter()
                        .any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
                });
            let parameters = operation
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| ParameterView {
                    name: text(p, "name"),
                    location: text(p, "in"),
                    required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
                    description: text(p, "description"),
                })
                .collect();
            let request_types =
                media_types(operation.get("requestBody").and_then(|b| b.get("content")));
            let responses = operation
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(status, response)| ResponseView {
                    status: status.clone(),
                    description: text(response, "description"),
                    media_types: media_types(response.get("content")),
                })
                .collect();
            let view = OperationView {
                method: method.to_ascii_uppercase(),
                method_class: (*method).to_owned(),
                path: path.clone(),
                summary,
                secured,
                parameters,
                request_types,
                responses,
            };
            match groups.iter_mut().find(|g| g.tag == tag) {
                Some(group) => group.operations.push(view),
                None => groups.push(TagGroup {
                    tag,
                    operations: vec![view],
                }),
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_are_grouped_by_tag_with_their_details() {
        let document = json!({"paths": {
            "/jobs": {"get": {"tags": ["Jobs"], "summary": "The job list",
                "parameters": [{"name": "limit", "in": "query", "description": "Page size"}],
                "responses": {"200": {"description": "A page", "content": {"application/json": {}}}}}},
            "/jobs/{id}": {"delete": {"tags": ["Jobs"], "description": "Dismiss",
                "security": [{}, {"bearer": []}], "responses": {}}}
        }});
        let groups = groups(&document);
        assert_eq!(groups.len(), 1);
        let ops = &groups[0].operations;
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].method, "GET");
        assert_eq!(ops[0].parameters[0].name, "limit");
        assert_eq!(ops[0].responses[0].media_types, "application/json");
        assert_eq!(ops[1].summary, "Dismiss");
        assert!(ops[1].secured);
    }
}
