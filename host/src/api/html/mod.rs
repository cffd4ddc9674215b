//! HTML for people: every OGC resource as a page, the forms that execute,
//! deploy, replace and undeploy, and the vendored CSS and JavaScript.
//!
//! # Negotiation
//! A request gets HTML when `?f=html` says so, or when it has no `f` and
//! its `Accept` header prefers `text/html` to every JSON type it names
//! ([`negotiate`]; a browser's navigation does, `curl` and API clients do
//! not, so JSON stays the default). `?f=json` always gets JSON. Each
//! handler in `api/*.rs` asks for a [`Format`], builds its JSON document as
//! before, and only then hands it to a page function here: the page shows
//! exactly what the JSON says.
//!
//! # Pages without JavaScript
//! Every page is rendered on the server; forms are plain HTML forms that
//! POST to `/ui/…` endpoints (`forms.rs`, `admin.rs`), which turn the
//! fields into the API's own requests and answer with a redirect (303) to
//! the page of what they made, or with the form again, the OGC exception
//! next to the field it names and what the user typed kept. The one script
//! (`assets/job.js`) follows a running job's status and progress on its
//! page; without it a `<noscript>` refresh does the same, more coarsely.
//!
//! # Safety
//! Templates are askama templates in `host/templates/`, compiled into the
//! binary: a template that does not compile fails the build, and every
//! value is HTML-escaped unless a template says otherwise (only the
//! server-built SVG map does). Pages carry a strict Content-Security-Policy
//! ([`PAGE_CSP`]): scripts and styles from this origin's `/ui/static/`
//! only, no inline script or style, no other origin. Every other response
//! gets [`DEFAULT_CSP`], which sandboxes it: a raw job output served as
//! `text/html` or `image/svg+xml` cannot run script on this origin.
//!
//! # Files
//! - `negotiate.rs`: `f` and `Accept` → [`Format`].
//! - `pages.rs`: one function per page (landing, conformance, API
//!   definition, process list, process, job list, job, results, error).
//! - `form_fields.rs`: the execute form's fields, generated from input
//!   schemas, and the modes it offers (what `pages.rs` shows).
//! - `forms.rs`: a submitted form read and turned into an execute
//!   request (what `POST /ui/processes/{id}/execution` does).
//! - `admin.rs`: deploy, replace and undeploy forms (bearer token in a
//!   form field, sent with each submission and never stored).
//! - `openapi_view.rs`: the OpenAPI document as a list of operations.
//! - `geojson.rs`: GeoJSON drawn as an inline SVG map (no tiles).
//! - `assets.rs`: the CSS and JavaScript compiled into the binary.

pub(crate) mod admin;
pub(crate) mod assets;
pub(crate) mod form_fields;
pub(crate) mod forms;
mod geojson;
mod negotiate;
mod openapi_view;
pub(crate) mod pages;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub(crate) use negotiate::{Format, is_json, negotiate, quality};

use super::ApiError;

/// The Content-Security-Policy of every page: nothing but this origin's
/// own scripts, styles, images (job outputs) and `fetch` calls (job
/// status); forms post to this origin only; no framing, no `<base>`.
pub(crate) const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The Content-Security-Policy of every response that is not a page (JSON
/// documents, raw outputs, the log, metrics): nothing may load or run, and
/// the `sandbox` directive gives a document opened from it an opaque
/// origin, so guest-made HTML or SVG cannot act as this server.
pub(crate) const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'; sandbox";

/// Media type of the pages. The charset is stated so that a browser
/// never guesses one from the bytes.
const HTML: &str = "text/html; charset=utf-8";

/// A handler that takes a [`Format`] gets the negotiated one, or the
/// request is refused with a 400 before the handler runs (an `f` other
/// than `json` or `html`).
impl<S: Send + Sync> FromRequestParts<S> for Format {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let accept = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        negotiate(parts.uri.query(), accept)
    }
}

/// A rendered page as a response: status, `text/html`, the page CSP, and
/// `Vary: Accept` (the same URL answers JSON to other clients). A render
/// failure can only come from a `Display` impl failing, which ours never
/// do; it is still answered as an OGC exception, not a panic.
///
/// `Cache-Control: no-store`: a page shows state that changes (a job's
/// status, the process list), so a stored copy, in the browser or a
/// shared cache, would soon show it wrong.
pub(crate) fn page(status: StatusCode, template: &impl askama::Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, html).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(HTML));
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_CSP),
            );
            headers.insert(header::VARY, HeaderValue::from_static("Accept"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            ApiError::internal(&format!("rendering a page failed: {error}")).into_response()
        }
    }
}

/// A 303 See Other to `location`: where a form submission sends the
/// browser (the page of the job or process it made), so a reload does not
/// submit twice.
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Largest exception body read back to render it as a page: details are
/// capped at 4 KiB (`api/error.rs`), so anything bigger is not ours.
const MAX_EXCEPTION_BYTES: usize = 64 * 1024;

/// Whether the answer to `request` should be a page when it is an OGC
/// exception: a person's browser (HTML negotiated by `?f=` or `Accept`)
/// reading (GET, HEAD) or submitting one of the `/ui/` forms. API clients
/// that POST JSON keep JSON errors whatever they accept. Decided before
/// the request is handed on, since the handler consumes it.
pub(crate) fn wants_page(request: &Request) -> bool {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    (request.method() == Method::GET
        || request.method() == Method::HEAD
        || request.uri().path().starts_with("/ui/"))
        && negotiate(request.uri().query(), accept) == Ok(Format::Html)
}

/// What every answer gets on its way out (`api::edge`): for a person
/// ([`wants_page`]), an OGC exception becomes an error page with the same
/// status; and every response gets the security headers (the default CSP
/// unless a page set its own, `nosniff`).
pub(crate) async fn dress(mut response: Response, for_people: bool, base_url: &str) -> Response {
    if for_people && is_exception(&response) {
        response = exception_page(response, base_url).await;
    }
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Whether a response is one of our OGC exceptions: an error status with
/// the problem media type. Other error bodies (a raw output, plain text)
/// are passed through untouched.
fn is_exception(response: &Response) -> bool {
    response.status().as_u16() >= 400
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/problem+json"))
}

/// Re-render an exception response as an error page, keeping its status
/// and the headers a client acts on (`WWW-Authenticate`, `Retry-After`,
/// `Allow`). A body that is too large or not an exception document after
/// all is passed on rather than lost in a second error.
async fn exception_page(response: Response, base_url: &str) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_EXCEPTION_BYTES).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let exception: crate::ogc::Exception = match serde_json::from_slice(&bytes) {
        Ok(exception) => exception,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    let mut page = pages::error_page(base_url, parts.status, &exception);
    for name in [header::WWW_AUTHENTICATE, header::RETRY_AFTER, header::ALLOW] {
        if let Some(value) = parts.headers.get(&name) {
            page.headers_mut().insert(name, value.clone());
        }
    }
    page
}

/// The URL of the same resource as JSON: `href` with `f=json`. A
/// resource's page links it (`rel=alternate` and in the footer), and
/// `f=json` wins over a browser's `Accept`, so the link shows the JSON in
/// the browser.
pub(crate) fn json_href(href: &str) -> String {
    with_format(href, "json")
}

/// `href` with its `f` parameter set to `format` (others kept).
pub(crate) fn with_format(href: &str, format: &str) -> String {
    let (path, query) = href.split_once('?').unwrap_or((href, ""));
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(k, _)| k != "f")
        .collect();
    pairs.push(("f".into(), format.into()));
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{path}?{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_f_parameter_is_replaced_and_others_kept() {
        assert_eq!(json_href("http://h/jobs"), "http://h/jobs?f=json");
        assert_eq!(
            with_format("http://h/jobs?status=failed&f=html&limit=5", "json"),
            "http://h/jobs?status=failed&limit=5&f=json"
        );
    }
}
