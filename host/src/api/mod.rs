//! The HTTP API: axum routers, one file per OGC resource.
//!
//! - `landing.rs`: `/`, `/conformance`.
//! - `openapi.rs`: `/api`, the OpenAPI 3.0 document.
//! - `processes.rs`: `/processes`, `/processes/{id}`.
//! - `execution.rs`: `/processes/{id}/execution`, the one place that
//!   negotiates the execution mode.
//! - `jobs.rs`: `/jobs`, `/jobs/{id}`, `/jobs/{id}/results[/{output}]`.
//! - `job_log.rs`: `/jobs/{id}/log`, a job's log as text.
//! - `metrics.rs`: `/metrics`, Prometheus text.
//! - `health.rs`: `/livez` and `/readyz`, for load balancers and
//!   orchestrators (readiness asks the store).
//! - `html/`: every resource above as a page for people (negotiated by
//!   `Accept` and `?f=html`), the `/ui/…` form endpoints, the CSS and
//!   JavaScript, and the error pages the edge middleware (`edge.rs`) turns
//!   exceptions into for browsers.
//! - `results.rs`: rendering results (raw, document, multipart, references).
//! - `deploy.rs`: Part 2 deploy, replace, undeploy, package.
//! - `auth.rs`: who is calling (admin token, API keys with roles) and
//!   what they may do.
//! - `error.rs`: [`ApiError`], the OGC exception every failure becomes.
//! - `edge.rs`: the middleware every request and answer passes first and
//!   last (request id, span, metrics, pages for people).
//! - `responses.rs`: the error responses many operations share, declared
//!   once in the OpenAPI document.
//! - `parameters.rs`: the path parameters many operations share
//!   (`{processID}`, `{jobID}`), declared once in the same way.
//!
//! # The path of a request through the router
//! axum matches the route first and applies the layers of [`router`] to
//! each route and to the fallbacks, so every layer knows the matched
//! route. The layers wrap each other, the last added outermost, so a
//! request meets them in this order, and its response in the reverse:
//! 1. the edge (`edge.rs`, one middleware): a request id (the client's
//!    `x-request-id`, or a fresh UUID), echoed in the response and carried
//!    by the span every log line of the request is written in; the HTTP
//!    metrics (by route and status, so they count every answer, error
//!    pages included); and the pages for people: an OGC exception
//!    rendered as a page for a browser, the security headers on every
//!    response;
//! 2. a caught panic, answered as a 500 exception rather than a dropped
//!    connection;
//! 3. CORS, then the body's deadline and size bounds (a declared
//!    `Content-Length` over the limit is a 413 before anything is read);
//! 4. for execution and `/jobs…` only, the authentication middleware
//!    (`auth::jobs_access`), which hands the handler its caller; the
//!    other routes authenticate in the handler, because whether they ask
//!    at all depends on the settings.
//!
//! A handler then goes the same way every time: who is calling, parse the
//! path, query and body, validate them against the process, and only then
//! hand the request to the scheduler or the registry, which write to the
//! store. Every refusal on that way is an [`ApiError`], answered before
//! anything is stored, so a refused request changes nothing.

mod auth;
mod deploy;
mod edge;
mod error;
mod execution;
mod health;
pub(crate) mod html;
mod job_log;
mod jobs;
mod landing;
mod metrics;
mod openapi;
mod parameters;
mod processes;
mod responses;
mod results;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use error::ApiError;

use crate::config::Config;
use crate::jobs::{ProcessRegistry, RegisteredProcess, Scheduler};
use crate::ogc::{Link, exception_type};
use crate::store::Store;

/// What every handler can reach: [`Shared`], behind one `Arc`.
///
/// axum clones the state into every handler and middleware that extracts
/// it, several times per request, so a clone must be one reference count:
/// with the five handles of [`Shared`] cloned and dropped one by one,
/// dropping them alone was 0.65 % of a sync request's CPU. Fields are
/// reached through `Deref` (`state.registry`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The state the handlers share, built once at start. Each field is
/// itself a handle onto shared state (an `Arc`, or a type that is one
/// inside), so the parts can also be handed on alone (the scheduler to a
/// spawned task) without copying the processes or the settings.
pub struct Shared {
    /// The processes on offer, compiled and ready. Handlers look processes
    /// up here, in memory, never in the store; it is kept in step with the
    /// store by deploys and, in a cluster, by other nodes' notifications.
    pub registry: Arc<ProcessRegistry>,
    /// Accepts, runs and dismisses jobs. Handlers give it requests that
    /// are already validated: what it may still refuse is load (a full
    /// queue, full storage) or a shutdown in progress.
    pub scheduler: Scheduler,
    /// The durable state: jobs, results, processes and modules. Handlers
    /// read jobs from it directly; writes go through the scheduler or the
    /// registry, which keep the invariants that span several records.
    pub store: Store,
    /// The settings as loaded at start; they do not change while the
    /// server runs.
    pub config: Arc<Config>,
    /// Base URL for links, without a trailing slash: the configured
    /// `public_url` (else `http://` and the bound address), so that every
    /// link in a document is absolute and, behind a proxy, points where
    /// the client can reach the server.
    pub base_url: Arc<str>,
}

impl AppState {
    /// Wrap what the handlers share.
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }

    /// The process `id` is registered under, or the OGC `no-such-process`
    /// exception (404) every endpoint under `/processes/{id}` answers
    /// when there is none.
    pub(crate) fn process(&self, id: &str) -> Result<Arc<RegisteredProcess>, ApiError> {
        self.registry
            .get(id)
            .ok_or_else(|| ApiError::no_such_process(id))
    }
}

/// The whole API: every route of OGC API - Processes Parts 1 and 2, the
/// HTML forms and assets, `/metrics`, `/livez` and `/readyz`, and the
/// layers every request goes through (see the module documentation for
/// their order).
///
/// Unknown paths and methods are answered as OGC exceptions (404, 405)
/// rather than axum's empty replies, so a client always gets a document
/// it can parse.
pub fn router(state: AppState) -> Router {
    let body_limit = usize::try_from(state.config.max_request_bytes).unwrap_or(usize::MAX);
    // Execution and job routes: behind a key or the token when jobs are
    // protected (`auth.keys`, `auth.protect_jobs`), and each handler gets
    // the `Caller` (`auth::jobs_access`).
    let jobs = Router::new()
        .route(
            "/processes/{process_id}/execution",
            axum::routing::post(execution::execute),
        )
        .route("/jobs", get(jobs::list))
        .route("/jobs/{job_id}", get(jobs::status).delete(jobs::dismiss))
        .route("/jobs/{job_id}/results", get(jobs::results))
        .route("/jobs/{job_id}/results/{output_id}", get(jobs::output))
        .route("/jobs/{job_id}/log", get(job_log::job_log))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::jobs_access,
        ));
    Router::new()
        .route("/", get(landing::landing_page))
        .route("/conformance", get(landing::conformance))
        .route("/api", get(openapi::api_document))
        .route("/processes", get(processes::list).post(deploy::deploy))
        .route(
            "/processes/{process_id}",
            get(processes::describe)
                .put(deploy::replace)
                .delete(deploy::undeploy),
        )
        .route("/processes/{process_id}/package", get(deploy::package))
        .route("/metrics", get(metrics::metrics))
        .route("/livez", get(health::live))
        .route("/readyz", get(health::ready))
        // The HTML forms (they check tokens themselves: a form carries the
        // token in a field, not a header) and the pages' assets.
        .route(
            "/ui/processes/{process_id}/execution",
            axum::routing::post(html::forms::execute),
        )
        .route("/ui/processes", axum::routing::post(html::admin::deploy))
        .route(
            "/ui/processes/{process_id}/replace",
            axum::routing::post(html::admin::replace),
        )
        .route(
            "/ui/processes/{process_id}/undeploy",
            axum::routing::post(html::admin::undeploy),
        )
        .route("/ui/static/{name}", get(html::assets::asset))
        .route("/favicon.ico", get(html::assets::favicon))
        .merge(jobs)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.config.max_request_bytes,
            reject_declared_oversize,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.config.body_read_timeout,
        ))
        .layer(cors_layer(&state.config.cors))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        // Outside the layers above, so it sees every answer (a 413 of the
        // size check, a 500 of a caught panic).
        .layer(axum::middleware::from_fn_with_state(
            state.base_url.clone(),
            edge::edge,
        ))
        .with_state(state)
}

/// CORS for browser clients: the configured origins, the methods and
/// headers of the API, and the response headers a client needs to read
/// (`Location` of a new job, `Link`, `Preference-Applied`, `Retry-After`).
///
/// Without configured origins the layer adds no CORS headers at all, so
/// browsers keep scripts of other origins out (the same-origin default);
/// `*` allows any origin. Credentials are not allowed either way: a
/// bearer token is sent by the script explicitly, not by the browser.
/// An origin that is not a valid header value is left out, not fatal.
fn cors_layer(config: &crate::config::CorsConfig) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, HeaderValue, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if config.allowed_origins.is_empty() {
        return CorsLayer::new();
    }
    let origins = if config.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::ACCEPT,
            HeaderName::from_static("prefer"),
        ])
        .expose_headers([
            header::LOCATION,
            header::LINK,
            header::RETRY_AFTER,
            HeaderName::from_static("preference-applied"),
        ])
}

/// 413 at once when `Content-Length` already says the body is over the
/// limit, instead of reading (or waiting for) the first `limit` bytes of a
/// body that will be refused anyway. Bodies without a length are held to
/// the limit as they are read (`DefaultBodyLimit`).
async fn reject_declared_oversize(
    axum::extract::State(limit): axum::extract::State<u64>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return ApiError::payload_too_large(limit).into_response();
    }
    next.run(request).await
}

/// The fallback of the router: a path no route matches is a 404 OGC
/// exception naming the path. It is answered before any authentication,
/// which is harmless: it says only that no such route exists, the same
/// for every caller.
async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        exception_type::NOT_FOUND,
        "Not found",
        format!("no resource at {}", uri.path()),
    )
}

/// A method a matched path does not take (`PATCH /jobs`): a 405 OGC
/// exception. axum adds the `Allow` header of the methods the path does
/// take.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        exception_type::METHOD_NOT_ALLOWED,
        "Method not allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// The answer of a handler that panicked: a 500 whose detail says
/// nothing of the panic (its message may name internals). The log gets
/// an error line in the request's span, and Rust's panic hook prints the
/// message on standard error. The server keeps serving: one request's
/// bug must not take the others down.
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(&"a request handler panicked").into_response()
}

/// `axum::extract::Path` whose rejection is an OGC exception: a segment
/// that is not UTF-8 once percent-decoded (`/processes/%FF`) is a 400
/// `invalid-parameter` document, not axum's plain-text reply.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct Path<T>(pub(crate) T);

/// The `limit` and `offset` query parameters of a list.
///
/// OGC API - Processes pages its lists with `limit` and `next` links; the
/// `offset` is this server's way of saying where a page starts (the job
/// list also pages by cursor, see `jobs.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paging {
    /// How many items a page holds, 1 to `MAX_LIMIT`.
    pub(crate) limit: usize,
    /// How many items come before the page. Any non-negative value is
    /// accepted: past the end, the page is simply empty.
    pub(crate) offset: usize,
}

/// Largest `limit` a list accepts: large enough for a client that wants
/// everything at once, small enough that one request cannot ask the store
/// for an unbounded page.
const MAX_LIMIT: usize = 10_000;
/// `limit` when none is given.
const DEFAULT_LIMIT: usize = 10;

impl Paging {
    /// The first page at the default size: what a list without
    /// parameters shows.
    pub(crate) fn first() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }

    /// Parse `limit` (1..=10000, default 10) and `offset` (≥ 0, default 0).
    /// A value that is not a number, or a `limit` out of range, is a 400
    /// `invalid-parameter` naming it: a server that silently clamped it
    /// would answer a page the client did not ask for.
    pub(crate) fn from_query(query: &[(String, String)]) -> Result<Self, ApiError> {
        let number = |name: &str, default: usize| -> Result<usize, ApiError> {
            match query.iter().find(|(k, _)| k == name) {
                None => Ok(default),
                Some((_, v)) => v.parse().map_err(|_| {
                    ApiError::invalid_parameter(format!(
                        "{name} must be a non-negative integer, got '{v}'"
                    ))
                }),
            }
        };
        let limit = number("limit", DEFAULT_LIMIT)?;
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid_parameter(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {limit}"
            )));
        }
        Ok(Self {
            limit,
            offset: number("offset", 0)?,
        })
    }

    /// `self`, `next` and `prev` links for a page at `path` (other query
    /// parameters kept). `next` only when `has_more` (the caller knows
    /// whether items follow), `prev` only when the page does not start at
    /// the first item. Every link repeats `limit` and `offset` explicitly,
    /// so following one never depends on the server's default.
    pub(crate) fn links(
        &self,
        base_url: &str,
        path: &str,
        query: &[(String, String)],
        has_more: bool,
    ) -> Vec<Link> {
        let url = |offset: usize| {
            let mut params: Vec<(String, String)> = query
                .iter()
                .filter(|(k, _)| k != "limit" && k != "offset")
                .cloned()
                .collect();
            params.push(("limit".into(), self.limit.to_string()));
            params.push(("offset".into(), offset.to_string()));
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            format!("{base_url}{path}?{encoded}")
        };
        let mut links = vec![Link::new(
            url(self.offset),
            "self",
            "application/json",
            "this page",
        )];
        if has_more {
            links.push(Link::new(
                url(self.offset.saturating_add(self.limit)),
                "next",
                "application/json",
                "next page",
            ));
        }
        if self.offset > 0 {
            links.push(Link::new(
                url(self.offset.saturating_sub(self.limit)),
                "prev",
                "application/json",
                "previous page",
            ));
        }
        links
    }
}

/// The query parameters of a raw query string that a route understands,
/// as pairs (repeated keys kept, in order, percent-decoding and `+` as
/// space done). Handlers take the raw query rather than a typed one so
/// that a repeated filter (`status=a&status=b`) is theirs to interpret,
/// not a 400 from the extractor.
///
/// - A parameter not in `known` is dropped: unknown parameters are
///   ignored everywhere (OGC API - Processes lets a server ignore them),
///   and so are not carried into `self`/`next`/`prev` links either.
/// - A parameter of `blank_is_absent` with an empty value is dropped too:
///   a plain HTML GET form sends every field, `minDuration=` included,
///   where an API client would leave the parameter out.
pub(crate) fn query_pairs(
    raw: Option<&str>,
    known: &[&str],
    blank_is_absent: &[&str],
) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .filter(|(k, v)| {
            known.contains(&k.as_str()) && !(v.is_empty() && blank_is_absent.contains(&k.as_str()))
        })
        .collect()
}
