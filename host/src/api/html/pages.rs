//! One function per page. Each takes what its JSON handler already built
//! (the landing document, a page of summaries, a statusInfo, …) and
//! renders it with its template in `host/templates/`, so a page shows what
//! the JSON says; `base.html` is the frame every page shares.
//!
//! Each page has a view struct deriving `askama::Template`: its fields are
//! exactly what the template reads, already turned into text for people
//! (times to the second, sizes in KiB and MiB, durations in ms or s).
//! Formatting here rather than in the templates keeps them free of logic,
//! and a field the template names but the struct lacks fails the build.
//! Every value is escaped by askama; the one exception, the SVG map, is
//! built from numbers only (`geojson.rs`).

use std::sync::Arc;

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::super::AppState;
use super::form_fields::{FormField, FormState, SelectOption, fields, modes};
use super::{assets, geojson, json_href, openapi_view, page};
use crate::jobs::RegisteredProcess;
use crate::ogc::{Exception, JobList, JobStatus, LandingPage, Link, StatusInfo};
use crate::runtime::{OutputValue, ProcessOutput};
use crate::store::{JobRecord, JobResults};

/// What the frame of every page needs.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    /// The page title (before " · wasmproc").
    pub(crate) title: String,
    /// The base URL of links, no trailing slash.
    pub(crate) url: String,
    /// The crate version (asset cache busting, footer).
    pub(crate) version: &'static str,
    /// The same resource as JSON (`rel=alternate`, footer link).
    pub(crate) json_href: Option<String>,
    /// Load `job.js` (and refresh without JavaScript): the job page while
    /// the job has not ended.
    pub(crate) follow_job: bool,
}

impl Base {
    fn new(base_url: &str, title: impl Into<String>, json_href: Option<String>) -> Self {
        Self {
            title: title.into(),
            url: base_url.to_owned(),
            version: assets::VERSION,
            json_href,
            follow_job: false,
        }
    }
}

/// A time as people read it: `2026-01-02 03:04:05 UTC`, to the second
/// (the JSON keeps the full precision); a dash when there is none yet
/// (a job not started or not finished).
fn when(time: Option<DateTime<Utc>>) -> String {
    time.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "–".into())
}

/// Milliseconds as people read them: `850 ms` below a second, `3.00 s`
/// from there (job durations span microseconds to an hour).
fn millis(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.2} s", ms as f64 / 1000.0)
    }
}

/// Bytes as people read them (`1.1 MiB`), for output sizes and peak
/// memory.
fn bytes(n: u64) -> String {
    bytesize::ByteSize(n).to_string()
}

// ---- error -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    /// The frame.
    base: Base,
    /// The HTTP status, shown in the heading.
    status: u16,
    /// The OGC exception: title, detail and type URI are shown.
    exception: &'a Exception,
}

/// The page of an OGC exception: its status and title as the heading,
/// the detail and the type URI in the box every form error uses, and
/// links back home. Rendered by the error-page middleware for any
/// exception a browser gets, so handlers never build error pages.
pub(crate) fn error_page(base_url: &str, status: StatusCode, exception: &Exception) -> Response {
    page(
        status,
        &ErrorPage {
            base: Base::new(base_url, exception.title.clone(), None),
            status: status.as_u16(),
            exception,
        },
    )
}

// ---- landing and conformance -------------------------------------------------

/// A tile of the landing page.
struct Card {
    /// Where the tile leads.
    href: String,
    /// Its heading.
    title: &'static str,
    /// One sentence on what is there.
    text: &'static str,
}

/// A link row.
struct LinkRow {
    /// The link relation (`self`, `service-desc`, an OGC rel URI).
    rel: String,
    /// The target.
    href: String,
    /// The link's title, or its target when it has none.
    title: String,
    /// The media type the link announces.
    media_type: String,
}

impl From<&Link> for LinkRow {
    fn from(link: &Link) -> Self {
        Self {
            rel: link.rel.clone().unwrap_or_default(),
            href: link.href.clone(),
            title: link.title.clone().unwrap_or_else(|| link.href.clone()),
            media_type: link.media_type.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "landing.html")]
struct LandingView {
    /// The frame.
    base: Base,
    /// The service title (the landing document's).
    title: String,
    /// The service description.
    description: String,
    /// Tiles leading to the main resources.
    cards: Vec<Card>,
    /// The landing document's links, as a table.
    links: Vec<LinkRow>,
}

/// `/` as a page: the service title and description, a tile per main
/// resource (what a person looks for first), and the landing document's
/// links as a table (what an API client follows).
pub(crate) fn landing(base_url: &str, document: &LandingPage) -> Response {
    let card = |path: &str, title, text| Card {
        href: format!("{base_url}{path}"),
        title,
        text,
    };
    page(
        StatusCode::OK,
        &LandingView {
            base: Base::new(base_url, "Home", Some(json_href(&format!("{base_url}/")))),
            title: document.title.clone(),
            description: document.description.clone(),
            cards: vec![
                card(
                    "/processes",
                    "Processes",
                    "What this server can run: describe a process and execute it from a form.",
                ),
                card(
                    "/jobs",
                    "Jobs",
                    "Every job, sync and async, with its status, progress, log and results.",
                ),
                card(
                    "/api",
                    "API definition",
                    "The OpenAPI 3.0 document of this API.",
                ),
                card(
                    "/conformance",
                    "Conformance",
                    "The OGC API - Processes classes implemented.",
                ),
                card(
                    "/metrics",
                    "Metrics",
                    "Prometheus metrics: requests, jobs, queue, sandbox, store.",
                ),
            ],
            links: document.links.iter().map(LinkRow::from).collect(),
        },
    )
}

#[derive(Template)]
#[template(path = "conformance.html")]
struct ConformanceView<'a> {
    /// The frame.
    base: Base,
    /// The conformance class URIs, as the JSON lists them.
    classes: &'a [String],
}

/// `/conformance` as a page: the class URIs, one per line, exactly as the
/// JSON lists them.
pub(crate) fn conformance(base_url: &str, classes: &[String]) -> Response {
    page(
        StatusCode::OK,
        &ConformanceView {
            base: Base::new(
                base_url,
                "Conformance",
                Some(json_href(&format!("{base_url}/conformance"))),
            ),
            classes,
        },
    )
}

// ---- API definition ----------------------------------------------------------

#[derive(Template)]
#[template(path = "api.html")]
struct ApiView {
    /// The frame.
    base: Base,
    /// `info.title` of the document.
    title: String,
    /// `info.description`.
    description: String,
    /// The `openapi` version string.
    openapi_version: String,
    /// The document itself, as JSON.
    document_href: String,
    /// The operations, by tag.
    groups: Vec<openapi_view::TagGroup>,
}

/// `/api` as a page: the operations of the OpenAPI document, grouped by
/// tag (`openapi_view.rs`), with a link to the document itself. The same
/// document the JSON route serves is rendered, so the page cannot drift
/// from the API.
pub(crate) fn api(base_url: &str, document: &Value) -> Response {
    let info = document.get("info").cloned().unwrap_or(Value::Null);
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let document_href = json_href(&format!("{base_url}/api"));
    page(
        StatusCode::OK,
        &ApiView {
            base: Base::new(base_url, "API definition", Some(document_href.clone())),
            title: text(&info, "title"),
            description: text(&info, "description"),
            openapi_version: text(document, "openapi"),
            document_href,
            groups: openapi_view::groups(document),
        },
    )
}

// ---- processes ---------------------------------------------------------------

/// A row of the process list.
struct ProcessRow {
    /// The process id.
    id: String,
    /// Its page.
    href: String,
    /// Its title (empty when it has none).
    title: String,
    /// Its version.
    version: String,
    /// Its `jobControlOptions`, as badges.
    modes: Vec<String>,
    /// Whether it was deployed (and can be replaced or undeployed) rather than built in.
    mutable: bool,
}

#[derive(Template)]
#[template(path = "processes.html")]
struct ProcessesView {
    /// The frame.
    base: Base,
    /// This page of processes.
    processes: Vec<ProcessRow>,
    /// The previous page, when there is one.
    prev: Option<String>,
    /// The next page, when there is one.
    next: Option<String>,
    /// Whether deploying is enabled (an admin token or an admin key is
    /// configured): without either, the form is replaced by a note.
    admin_enabled: bool,
    /// A refused deploy, shown above the form.
    deploy_error: Option<Exception>,
}

/// The href of the first link with relation `rel`.
fn link_href(links: &[Link], rel: &str) -> Option<String> {
    links
        .iter()
        .find(|l| l.rel.as_deref() == Some(rel))
        .map(|l| l.href.clone())
}

/// The `jobControlOptions` of a description or summary (badges).
fn job_control_options(description: &Value) -> Vec<String> {
    description
        .get("jobControlOptions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// `/processes` as a page: `summaries` and `links` are the JSON list's
/// (so paging works as it does in JSON, `prev`/`next` included), then
/// the deploy form when deploying is enabled (an admin token or key).
/// `status` and `deploy_error` are for a refused deploy, shown above the
/// form with the status of the refusal.
pub(crate) fn process_list(
    state: &AppState,
    summaries: &[Value],
    links: &[Link],
    status: StatusCode,
    deploy_error: Option<Exception>,
) -> Response {
    let base_url = &state.base_url;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let self_href = link_href(links, "self").unwrap_or_else(|| format!("{base_url}/processes"));
    page(
        status,
        &ProcessesView {
            base: Base::new(base_url, "Processes", Some(json_href(&self_href))),
            processes: summaries
                .iter()
                .map(|s| {
                    let id = text(s, "id");
                    ProcessRow {
                        href: format!("{base_url}/processes/{id}"),
                        title: text(s, "title"),
                        version: text(s, "version"),
                        modes: job_control_options(s),
                        mutable: s.get("mutable").and_then(Value::as_bool).unwrap_or(false),
                        id,
                    }
                })
                .collect(),
            prev: link_href(links, "prev"),
            next: link_href(links, "next"),
            admin_enabled: state.config.auth.deployment_enabled(),
            deploy_error,
        },
    )
}

/// An input or output of a process.
struct ParameterView {
    /// The input or output id.
    id: String,
    /// Its title, or its id.
    title: String,
    /// Its description.
    description: String,
    /// `required`, `optional` or `m to n times`.
    occurs: String,
    /// Its JSON Schema, pretty-printed.
    schema: String,
}

/// A mode radio button.
struct ModeChoice {
    /// The submitted value (`sync`, `async`).
    value: &'static str,
    /// What the radio button says.
    label: &'static str,
    /// Whether it is checked.
    selected: bool,
}

#[derive(Template)]
#[template(path = "process.html")]
struct ProcessView {
    /// The frame.
    base: Base,
    /// The process id.
    id: String,
    /// Its title, or its id.
    title: String,
    /// Its description.
    description: String,
    /// Its version.
    version: String,
    /// Its keywords, comma-separated.
    keywords: String,
    /// Its `jobControlOptions`.
    modes: Vec<String>,
    /// Whether it was deployed (replace and undeploy forms shown).
    mutable: bool,
    /// The job list filtered to this process.
    jobs_href: String,
    /// Whether any execution mode is enabled for it here; otherwise the form is replaced by a note.
    can_execute: bool,
    /// Where the execute form posts.
    form_action: String,
    /// A refusal that names no input, shown atop the form.
    form_error: Option<Exception>,
    /// One field per input, from its schema.
    fields: Vec<FormField>,
    /// The modes offered (radio buttons, or a hidden field when there is one).
    modes_offered: Vec<ModeChoice>,
    /// Whether jobs need a token or key (`auth.protect_jobs`, `auth.keys`): the form gets a token field.
    token_needed: bool,
    /// Each input with its schema.
    inputs: Vec<ParameterView>,
    /// Each output with its schema.
    outputs: Vec<ParameterView>,
    /// Whether deploying is enabled (an admin token or an admin key is
    /// configured): the replace and undeploy forms are shown only then.
    admin_enabled: bool,
    /// A refused replace or undeploy, shown above those forms.
    admin_error: Option<Exception>,
    /// Where the replace form posts.
    replace_action: String,
    /// Where the undeploy form posts.
    undeploy_action: String,
}

/// The inputs (`key` = `inputs`) or outputs of a description for the
/// page: title (or id), description, how often it occurs (`required`,
/// `optional`, `m to n times`) and its schema pretty-printed, in the
/// description's order.
fn parameters(description: &Value, key: &str) -> Vec<ParameterView> {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    description
        .get(key)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(id, p)| {
            let min = p.get("minOccurs").and_then(Value::as_u64).unwrap_or(1);
            let max = match p.get("maxOccurs") {
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(s)) => s.clone(),
                _ => "1".into(),
            };
            let title = match text(p, "title") {
                t if t.is_empty() => id.clone(),
                t => t,
            };
            ParameterView {
                id: id.clone(),
                title,
                description: text(p, "description"),
                occurs: match (min, max.as_str()) {
                    (0, "1") => "optional".into(),
                    (1, "1") => "required".into(),
                    (min, max) => format!("{min} to {max} times"),
                },
                schema: serde_json::to_string_pretty(p.get("schema").unwrap_or(&Value::Null))
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// `/processes/{id}` as a page: the description, the execute form (with
/// `form`'s values and refusal) and, for a deployed process, the replace
/// and undeploy forms (with `admin_error`).
///
/// The mode buttons offer only what the server would run
/// (`form_fields::modes`); the one preselected is the mode the refused form
/// asked for, else sync when offered, as the API's negotiation would
/// choose without a `Prefer` header. `status` is the status of the
/// refusal being shown, 200 otherwise.
pub(crate) fn process(
    state: &AppState,
    process: &Arc<RegisteredProcess>,
    status: StatusCode,
    form: &FormState,
    admin_error: Option<Exception>,
) -> Response {
    let base_url = &state.base_url;
    let id = process.id().to_owned();
    let description = process.description();
    let text = |k: &str| {
        description
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let (can_sync, can_async) = modes(state, process);
    let wants_async = form.mode.as_deref() == Some("async");
    let mut modes_offered = Vec::new();
    if can_sync {
        modes_offered.push(ModeChoice {
            value: "sync",
            label: "synchronously (wait for the results)",
            selected: !wants_async || !can_async,
        });
    }
    if can_async {
        modes_offered.push(ModeChoice {
            value: "async",
            label: "asynchronously (follow the job)",
            selected: wants_async || !can_sync,
        });
    }
    let form_error = match (&form.error_input, &form.error) {
        (None, Some(error)) => Some(error.clone()),
        _ => None,
    };
    let title = match text("title") {
        t if t.is_empty() => id.clone(),
        t => t,
    };
    page(
        status,
        &ProcessView {
            base: Base::new(
                base_url,
                title.clone(),
                Some(json_href(&format!("{base_url}/processes/{id}"))),
            ),
            title,
            description: text("description"),
            version: text("version"),
            keywords: description
                .get("keywords")
                .and_then(Value::as_array)
                .map(|k| {
                    k.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
            modes: job_control_options(&description),
            mutable: process.record.mutable,
            jobs_href: format!("{base_url}/jobs?processID={id}"),
            can_execute: can_sync || can_async,
            form_action: format!("{base_url}/ui/processes/{id}/execution"),
            form_error,
            fields: fields(&description, form),
            modes_offered,
            token_needed: state.config.auth.jobs_protected(),
            inputs: parameters(&description, "inputs"),
            outputs: parameters(&description, "outputs"),
            admin_enabled: state.config.auth.deployment_enabled(),
            admin_error,
            replace_action: format!("{base_url}/ui/processes/{id}/replace"),
            undeploy_action: format!("{base_url}/ui/processes/{id}/undeploy"),
            id,
        },
    )
}

// ---- jobs ------------------------------------------------------------------

/// A row of the job list.
struct JobRow {
    /// The job's page.
    href: String,
    /// The last 8 hex digits of its id (see `short`).
    short_id: String,
    /// Its process.
    process_id: String,
    /// Its process's page.
    process_href: String,
    /// Its status (also its badge's CSS class).
    status: &'static str,
    /// Its progress, `n %`, or empty.
    progress: String,
    /// When it was created.
    created: String,
    /// How long it ran, or empty.
    duration: String,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsView {
    /// The frame.
    base: Base,
    /// This page of jobs.
    jobs: Vec<JobRow>,
    /// The process filter: every process on offer (and the one asked for, even if undeployed since).
    process_options: Vec<SelectOption>,
    /// The status filter.
    status_options: Vec<SelectOption>,
    /// The type filter (`process` is the only type of job).
    type_options: Vec<SelectOption>,
    /// The `datetime` filter as typed.
    datetime: String,
    /// The `minDuration` filter as typed.
    min_duration: String,
    /// The `maxDuration` filter as typed.
    max_duration: String,
    /// The page size.
    limit: String,
    /// The previous page (offset paging only).
    prev: Option<String>,
    /// The next page: the same filters continued from a keyset cursor.
    next: Option<String>,
}

/// The last 8 hex digits of a job id: enough to tell jobs apart on a
/// page (the link carries the whole id). The last digits, because a job
/// id starts with its creation time in milliseconds (UUID v7,
/// `store::records`): the first 8 change only every 65 seconds, the last
/// are random.
fn short(id: &str) -> String {
    let skip = id.chars().count().saturating_sub(8);
    id.chars().skip(skip).collect()
}

/// `/jobs` as a page: the list's filters as a form (filled from `query`),
/// its jobs and its paging links.
///
/// The form is a plain GET to `/jobs`, so filtering is the API's own
/// filtering and a filtered page's URL can be bookmarked or shared. It
/// offers one process and one status at a time (the API takes lists);
/// the process choices are the processes on offer, plus the one asked
/// for when it has been undeployed since.
pub(crate) fn job_list(state: &AppState, list: &JobList, query: &[(String, String)]) -> Response {
    let base_url = &state.base_url;
    let value = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let process_id = match value("processID") {
        v if v.is_empty() => value("processId"),
        v => v,
    };
    let status = value("status");
    let mut process_ids: Vec<String> = state
        .registry
        .list()
        .iter()
        .map(|p| p.id().to_owned())
        .collect();
    if !process_id.is_empty() && !process_ids.contains(&process_id) {
        // An undeployed process still has jobs to list.
        process_ids.push(process_id.clone());
    }
    let self_href = link_href(&list.links, "self").unwrap_or_else(|| format!("{base_url}/jobs"));
    page(
        StatusCode::OK,
        &JobsView {
            base: Base::new(base_url, "Jobs", Some(json_href(&self_href))),
            jobs: list
                .jobs
                .iter()
                .map(|j| JobRow {
                    href: format!("{base_url}/jobs/{}", j.job_id),
                    short_id: short(&j.job_id),
                    process_href: format!("{base_url}/processes/{}", j.process_id),
                    process_id: j.process_id.clone(),
                    status: j.status.as_str(),
                    progress: j.progress.map(|p| format!("{p} %")).unwrap_or_default(),
                    created: when(Some(j.created)),
                    duration: j.usage.map(|u| millis(u.duration_ms)).unwrap_or_default(),
                })
                .collect(),
            process_options: SelectOption::plain(process_ids, &process_id),
            status_options: SelectOption::plain(
                ["accepted", "running", "successful", "failed", "dismissed"],
                &status,
            ),
            type_options: SelectOption::plain(["process"], &value("type")),
            datetime: value("datetime"),
            min_duration: value("minDuration"),
            max_duration: value("maxDuration"),
            limit: match value("limit") {
                l if l.is_empty() => "10".into(),
                l => l,
            },
            prev: link_href(&list.links, "prev"),
            next: link_href(&list.links, "next"),
        },
    )
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobView {
    /// The frame (with `job.js` while the job has not ended).
    base: Base,
    /// The job id.
    id: String,
    /// Its process.
    process_id: String,
    /// Its process's page (to run it again).
    process_href: String,
    /// Its status; `job.js` updates it in place.
    status: &'static str,
    /// Its progress in percent; `job.js` updates the bar.
    progress: u8,
    /// Its status message; `job.js` updates it.
    message: String,
    /// `synchronous` or `asynchronous`.
    mode: &'static str,
    /// When it was created.
    created: String,
    /// When it started, or a dash.
    started: String,
    /// When it finished, or a dash.
    finished: String,
    /// When its status last changed (RFC 3339, as the JSON says).
    updated: String,
    /// How long it ran, once it has.
    duration: String,
    /// Fuel it used, once it ran.
    fuel: String,
    /// Its highest linear memory, once it ran.
    peak_memory: String,
    /// The cluster node that ran it (PostgreSQL store only).
    node: String,
    /// Whether it succeeded (the results link is shown).
    successful: bool,
    /// Whether it has ended.
    finished_yet: bool,
    /// Its results page.
    results_href: String,
    /// Its log.
    log_href: String,
    /// The jobs it is linked to besides its steps: the job it computes an
    /// input of (`up`), the job whose results it reused (`via`).
    related: Vec<RelatedJob>,
    /// Its steps (nested processes, `item` links), in input order.
    steps: Vec<RelatedJob>,
}

/// A job linked from a job's page, from the statusInfo's links.
struct RelatedJob {
    /// What it is to this job (`Step of`, …), or for a step the input
    /// path it computes.
    title: String,
    /// Its URL (on another server for a remote step).
    href: String,
    /// The job id (shortened) or, for a remote step, its URL.
    label: String,
}

/// The related jobs and the steps of a job, from its statusInfo's links:
/// every relation the page shows comes from what the JSON says.
fn related_jobs(base_url: &str, info: &StatusInfo) -> (Vec<RelatedJob>, Vec<RelatedJob>) {
    let label = |href: &str| match href.strip_prefix(&format!("{base_url}/jobs/")) {
        Some(id) => id.to_owned(),
        None => href.to_owned(),
    };
    let (mut related, mut steps) = (Vec::new(), Vec::new());
    for link in &info.links {
        let title = match link.rel.as_deref() {
            Some("up") => "Step of".to_owned(),
            Some("via") => "Results reused from".to_owned(),
            Some("item") => {
                let path = link.title.as_deref().unwrap_or_default();
                steps.push(RelatedJob {
                    title: path
                        .strip_prefix("step computing ")
                        .unwrap_or(path)
                        .to_owned(),
                    href: link.href.clone(),
                    label: label(&link.href),
                });
                continue;
            }
            _ => continue,
        };
        related.push(RelatedJob {
            title,
            href: link.href.clone(),
            label: label(&link.href),
        });
    }
    (related, steps)
}

/// `/jobs/{id}` as a page, from its statusInfo; while the job has not
/// ended, `job.js` follows it.
///
/// `asynchronous` comes from the job record, not the statusInfo (OGC's
/// document has no such member), so the page shows a little more than
/// the JSON: whether a client waited for the job or polled it.
pub(crate) fn job(base_url: &str, info: &StatusInfo, asynchronous: bool) -> Response {
    let url = format!("{base_url}/jobs/{}", info.job_id);
    let mut base = Base::new(
        base_url,
        format!("Job {}", short(&info.job_id)),
        Some(json_href(&url)),
    );
    base.follow_job = !info.status.is_finished();
    let (related, steps) = related_jobs(base_url, info);
    page(
        StatusCode::OK,
        &JobView {
            base,
            id: info.job_id.clone(),
            process_href: format!("{base_url}/processes/{}", info.process_id),
            process_id: info.process_id.clone(),
            status: info.status.as_str(),
            progress: info.progress.unwrap_or(0),
            message: info.message.clone().unwrap_or_default(),
            mode: if asynchronous {
                "asynchronous"
            } else {
                "synchronous"
            },
            created: when(Some(info.created)),
            started: when(info.started),
            finished: when(info.finished),
            updated: info
                .updated
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            duration: info
                .usage
                .map(|u| millis(u.duration_ms))
                .unwrap_or_default(),
            fuel: info
                .usage
                .map(|u| u.fuel_consumed.to_string())
                .unwrap_or_default(),
            peak_memory: info
                .usage
                .map(|u| bytes(u.peak_memory_bytes))
                .unwrap_or_default(),
            node: info.node.clone().unwrap_or_default(),
            successful: info.status == JobStatus::Successful,
            finished_yet: info.status.is_finished(),
            results_href: format!("{url}/results"),
            log_href: format!("{url}/log"),
            related,
            steps,
        },
    )
}

/// One output on the results page.
struct OutputView {
    /// The output id.
    id: String,
    /// An element id made from it.
    dom_id: String,
    /// Its media type.
    media_type: String,
    /// Its size, for people.
    size: String,
    /// Its raw value (`/jobs/{id}/results/{output}`).
    href: String,
    /// `image`, `map`, `text` or `binary`.
    kind: &'static str,
    /// The pretty JSON or text shown.
    text: String,
    /// The SVG map (built by `geojson.rs`, safe to insert).
    svg: String,
}

#[derive(Template)]
#[template(path = "results.html")]
struct ResultsView {
    /// The frame.
    base: Base,
    /// The last 8 hex digits of the job id (see `short`).
    short_id: String,
    /// The job's page.
    job_href: String,
    /// Its process.
    process_id: String,
    /// Its process's page.
    process_href: String,
    /// The job's log.
    log_href: String,
    /// Every output the job produced.
    outputs: Vec<OutputView>,
}

/// Longest text shown inline on the results page; the rest is behind the
/// `raw` link. Outputs may be 64 MiB (the default output budget): a page
/// that large would hang the browser, and nobody reads past the first
/// screens of it anyway.
const MAX_SHOWN_BYTES: usize = 256 * 1024;

/// `text` cut to [`MAX_SHOWN_BYTES`] on a character boundary, saying so.
fn shown(mut text: String) -> String {
    if text.len() > MAX_SHOWN_BYTES {
        let mut end = MAX_SHOWN_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n… (cut here: the whole output is behind the raw link)");
    }
    text
}

/// How one output is shown, by its media type and value: binary `image/*`
/// as an `<img>` of its raw URL (same origin, so the page CSP allows it,
/// and the browser decodes it, not us); binary text or JSON as text;
/// other binary as a download link; JSON strings as they are, other JSON
/// pretty-printed, and drawn as a map when it is GeoJSON (whatever the
/// media type says: the `type` member decides).
fn output_view(base_url: &str, job: &JobRecord, output: &ProcessOutput) -> OutputView {
    let href = format!("{base_url}/jobs/{}/results/{}", job.id, output.id);
    let media = output.media_type.to_ascii_lowercase();
    let (kind, text, svg, size) = match &output.value {
        OutputValue::Bytes(b) if media.starts_with("image/") => {
            ("image", String::new(), String::new(), b.len())
        }
        OutputValue::Bytes(b) if media.starts_with("text/") || media.contains("json") => (
            "text",
            shown(String::from_utf8_lossy(b).into_owned()),
            String::new(),
            b.len(),
        ),
        OutputValue::Bytes(b) => ("binary", String::new(), String::new(), b.len()),
        OutputValue::Json(value) => {
            let pretty = match value {
                Value::String(s) => s.clone(),
                other => serde_json::to_string_pretty(other).unwrap_or_default(),
            };
            let size = pretty.len();
            match geojson::is_geojson(value)
                .then(|| geojson::svg(value, &output.id))
                .flatten()
            {
                Some(svg) => ("map", shown(pretty), svg, size),
                None => ("text", shown(pretty), String::new(), size),
            }
        }
    };
    OutputView {
        dom_id: output
            .id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect(),
        id: output.id.clone(),
        media_type: output.media_type.clone(),
        size: bytes(size as u64),
        href,
        kind,
        text,
        svg,
    }
}

/// `/jobs/{id}/results` as a page: every output, JSON pretty-printed,
/// images shown, GeoJSON drawn as a map.
///
/// Every output the job produced is shown, whatever outputs its request
/// selected: the page is for looking at a job, and each output links its
/// raw value (`/jobs/{id}/results/{output}`), which serves any of them.
pub(crate) fn results(base_url: &str, job: &JobRecord, results: &JobResults) -> Response {
    let url = format!("{base_url}/jobs/{}", job.id);
    page(
        StatusCode::OK,
        &ResultsView {
            base: Base::new(
                base_url,
                format!("Results of job {}", short(&job.id.to_string())),
                Some(json_href(&format!("{url}/results"))),
            ),
            short_id: short(&job.id.to_string()),
            job_href: url.clone(),
            process_href: format!("{base_url}/processes/{}", job.process_id),
            process_id: job.process_id.clone(),
            log_href: format!("{url}/log"),
            outputs: results
                .outputs
                .iter()
                .map(|o| output_view(base_url, job, o))
                .collect(),
        },
    )
}
