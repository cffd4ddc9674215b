//! Rendering a job's results as the request asked: a results document,
//! one raw value, a `multipart/related` body, or links only.
//!
//! OGC Part 1 lets the execute request choose (`response`, and per output
//! `transmissionMode`), and the same rendering serves the sync answer and
//! `GET /jobs/{id}/results` later, so both agree:
//! - `document` (the default): a JSON results document, each output inline
//!   or as a link to `/jobs/{id}/results/{output}`;
//! - `raw` with one output, by value: that value as the body, in its own
//!   media type (bytes as bytes, not base64);
//! - `raw` with several outputs: `multipart/related`, one part per output
//!   with its `Content-ID` and media type (an output by reference is an
//!   empty part with its `Content-Location`);
//! - `raw` with every output by reference: 204.
//!
//! In every `raw` answer each output by reference is also a `Link` header.
//!
//! Output media types come from the guest but were checked when the job
//! ended (a valid `Content-Type`, not contradicting the description), so
//! they can be sent as headers as they are.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::jobs::documents::{output_url, results_document, selected_outputs};
use crate::ogc::{ResponseType, TransmissionMode, rel};
use crate::runtime::{OutputValue, ProcessOutput};
use crate::store::{JobRecord, JobResults};

/// The bytes of one output as served raw: JSON as JSON text, except a
/// string for a `text/*` media type, which is served as plain text.
pub(crate) fn raw_bytes(output: &ProcessOutput) -> Vec<u8> {
    match &output.value {
        OutputValue::Json(serde_json::Value::String(text))
            if output.media_type.starts_with("text/") =>
        {
            text.clone().into_bytes()
        }
        OutputValue::Json(value) => value.to_string().into_bytes(),
        OutputValue::Bytes(bytes) => bytes.clone(),
    }
}

/// A response with one output's raw value, as its media type says. The
/// `Content-Type` is the output's own; one that is not a valid header
/// value (it was checked when the job ended, so this should not happen)
/// falls back to `application/octet-stream` rather than failing.
pub(crate) fn raw_output(output: &ProcessOutput) -> Response {
    let mut response = Body::from(raw_bytes(output)).into_response();
    set_content_type(response.headers_mut(), &output.media_type);
    response
}

/// Set `Content-Type`, or `application/octet-stream` when `media_type`
/// cannot be a header value: the client still gets the bytes, only not
/// told what they are.
fn set_content_type(headers: &mut HeaderMap, media_type: &str) {
    let value = HeaderValue::from_str(media_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, value);
}

/// The `Link` header of an output sent by reference in a raw answer:
/// its URL with the OGC `results` relation, its media type as `type` and
/// its id as `title`, so a client can tell the links apart. `None` when
/// the text cannot be a header value; the output is then only in the
/// body, if anywhere.
fn link_header(href: &str, output: &ProcessOutput) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "<{href}>; rel=\"{}\"; type=\"{}\"; title=\"{}\"",
        rel::RESULTS,
        output.media_type,
        output.id
    ))
    .ok()
}

/// Render results per `response` and the job's output selection.
///
/// Used by the synchronous answer and by `GET /jobs/{id}/results`, which
/// is why the two agree. Only the outputs the request selected are
/// rendered, each in its own transmission mode; the `Link` headers of
/// outputs by reference are added to whichever body is chosen.
pub(crate) fn render(
    job: &JobRecord,
    results: &JobResults,
    response: ResponseType,
    base_url: &str,
) -> Response {
    if response == ResponseType::Document {
        return axum::Json(results_document(job, results, base_url)).into_response();
    }
    let selected = selected_outputs(job, results);
    let mut headers = HeaderMap::new();
    for (output, mode) in &selected {
        if *mode == TransmissionMode::Reference
            && let Some(link) = link_header(&output_url(base_url, job, &output.id), output)
        {
            headers.append(header::LINK, link);
        }
    }
    let by_value: Vec<&ProcessOutput> = selected
        .iter()
        .filter(|(_, mode)| *mode == TransmissionMode::Value)
        .map(|(output, _)| *output)
        .collect();
    let mut response = match (by_value.as_slice(), selected.len()) {
        ([], _) => StatusCode::NO_CONTENT.into_response(),
        ([only], 1) => raw_output(only),
        _ => multipart(job, &selected, base_url),
    };
    response.headers_mut().extend(headers);
    response
}

/// A `multipart/related` body: one part per output, values inline and
/// references as empty parts with a `Content-Location`.
///
/// The boundary is random per response (`wasmproc-` and a UUID), so a
/// guest cannot plant it in an output to forge a part. Each part's
/// `Content-ID` is its output id: how a client matches the parts to the
/// outputs.
fn multipart(
    job: &JobRecord,
    selected: &[(&ProcessOutput, TransmissionMode)],
    base_url: &str,
) -> Response {
    let boundary = format!("wasmproc-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    for (output, mode) in selected {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(format!("Content-ID: <{}>\r\n", output.id).as_bytes());
        match mode {
            TransmissionMode::Value => {
                body.extend_from_slice(
                    format!("Content-Type: {}\r\n\r\n", output.media_type).as_bytes(),
                );
                body.extend_from_slice(&raw_bytes(output));
            }
            TransmissionMode::Reference => {
                body.extend_from_slice(
                    format!(
                        "Content-Type: {}\r\nContent-Location: {}\r\n\r\n",
                        output.media_type,
                        output_url(base_url, job, &output.id)
                    )
                    .as_bytes(),
                );
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut response = Body::from(body).into_response();
    set_content_type(
        response.headers_mut(),
        &format!("multipart/related; boundary={boundary}"),
    );
    response
}
