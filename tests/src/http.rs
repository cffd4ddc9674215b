//! A small HTTP client for the OGC API: requests, replies, links, polling.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::schema::{assert_valid, schema_errors};

/// How often job status is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long a short job may take from submission to a final status.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(10);
/// The rel of a sync response's `Link` to its job.
pub const REL_MONITOR: &str = "monitor";
/// Exception type URIs of OGC API - Processes Part 1 1.0.
pub const EXCEPTION_PREFIX: &str = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/";

/// A reply read to the end: status, headers and body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// `METHOD url` of the request, for messages.
    pub request: String,
    /// The HTTP status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the request and body if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} → {}: body is not JSON ({e}): {}",
                self.request,
                self.status,
                self.text()
            )
        })
    }

    /// A header as text (the first, if repeated).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Every value of a header, e.g. several `Link` headers.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    }

    /// The `Content-Type` (empty when absent).
    pub fn content_type(&self) -> String {
        self.header("content-type").unwrap_or_default()
    }

    /// Panic unless the status is `expected`, showing the body.
    pub fn expect_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status,
            expected,
            "{}: expected status {expected}, got {}; body: {}",
            self.request,
            self.status,
            self.text()
        );
        self
    }

    /// Panic unless the body is JSON served as `application/json` (or a
    /// `+json` type); returns it.
    pub fn expect_json(&self) -> Value {
        let content_type = self.content_type();
        assert!(
            is_json_media_type(&content_type),
            "{}: expected a JSON content type, got {content_type:?}; body: {}",
            self.request,
            self.text()
        );
        self.json()
    }

    /// The href of the `Link` header entry whose rel is `rel`.
    pub fn link_header(&self, rel: &str) -> Option<String> {
        self.header_all("link")
            .iter()
            .find_map(|value| link_header_href(value, rel))
    }
}

/// Whether a media type is JSON (`application/json`, `…+json`), ignoring
/// parameters.
pub fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// The href of the entry with relation `rel` in an RFC 8288 `Link` header
/// value (`<url>; rel=monitor, <url2>; rel="next"`).
pub fn link_header_href(value: &str, rel: &str) -> Option<String> {
    value.split(',').find_map(|entry| {
        let entry = entry.trim();
        let start = entry.find('<')?;
        let end = entry.find('>')?;
        let href = &entry[start + 1..end];
        let matches = entry[end + 1..].split(';').any(|param| {
            let Some((key, val)) = param.trim().split_once('=') else {
                return false;
            };
            key.trim().eq_ignore_ascii_case("rel")
                && val
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|r| r == rel)
        });
        matches.then(|| href.to_owned())
    })
}

/// The href of the first link with relation `rel` in a JSON body's `links`.
pub fn body_link(body: &Value, rel: &str) -> Option<String> {
    body.get("links")?
        .as_array()?
        .iter()
        .find(|l| l.get("rel").and_then(Value::as_str) == Some(rel))
        .and_then(|l| l.get("href"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The href of every link with relation `rel` in a JSON body's `links`
/// (a job's `item` links to its steps, say); panics when `links` is
/// missing or a link has no href.
pub fn body_links(body: &Value, rel: &str) -> Vec<String> {
    body["links"]
        .as_array()
        .unwrap_or_else(|| panic!("no links array: {body}"))
        .iter()
        .filter(|l| l["rel"] == rel)
        .map(|l| {
            l["href"]
                .as_str()
                .unwrap_or_else(|| panic!("link without href: {l}"))
                .to_owned()
        })
        .collect()
}

/// The last path segment of a URL, e.g. the job id of `…/jobs/{id}`.
pub fn last_segment(url: &str) -> String {
    url.split(['?', '#'])
        .next()
        .unwrap_or_default()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The value of output `id` in a results document: the plain value, or the
/// `value` of a qualified value. A link (`href`) is returned as is.
pub fn output_value(results: &Value, id: &str) -> Value {
    let output = results
        .get(id)
        .unwrap_or_else(|| panic!("results have no output {id:?}: {results}"));
    match output {
        Value::Object(map) if map.contains_key("value") && !map.contains_key("href") => {
            map["value"].clone()
        }
        other => other.clone(),
    }
}

/// Panic unless `reply` is an OGC exception with HTTP status `status`:
/// JSON (`application/problem+json` or `application/json`) valid against
/// `exception.yaml`, with `title`, `detail` and `status` equal to the HTTP
/// status, and (when given) a `type` of
/// `http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/<type_name>`.
/// Returns the body.
pub fn assert_exception(reply: &Reply, status: u16, type_name: Option<&str>) -> Value {
    check_exception(reply, Some(status), type_name).unwrap_or_else(|problem| panic!("{problem}"))
}

/// [`assert_exception`] (any `type`) whose `detail` also contains
/// `fragment`: the check of most refusals, which say in the detail which
/// part of the request was wrong. Returns the body.
pub fn assert_detail(reply: &Reply, status: u16, fragment: &str) -> Value {
    let body = assert_exception(reply, status, None);
    assert!(
        detail(&body).contains(fragment),
        "{} → {}: detail does not mention {fragment:?}: {body}",
        reply.request,
        reply.status
    );
    body
}

/// Like [`assert_exception`] for any 4xx/5xx status. Returns the body.
pub fn assert_error_exception(reply: &Reply, type_name: Option<&str>) -> Value {
    check_exception(reply, None, type_name).unwrap_or_else(|problem| panic!("{problem}"))
}

/// What [`assert_exception`] checks, as a `Result`: the body, or what is
/// wrong. `status: None` accepts any 4xx/5xx status.
pub fn check_exception(
    reply: &Reply,
    status: Option<u16>,
    type_name: Option<&str>,
) -> Result<Value, String> {
    let context = format!("{} → {} {}", reply.request, reply.status, reply.text());
    match status {
        Some(expected) if reply.status != expected => {
            return Err(format!("expected status {expected}: {context}"));
        }
        None if !(400..600).contains(&reply.status) => {
            return Err(format!("expected an error status: {context}"));
        }
        _ => {}
    }
    let content_type = reply.content_type().to_ascii_lowercase();
    if !(content_type.starts_with("application/problem+json")
        || content_type.starts_with("application/json"))
    {
        return Err(format!(
            "exception content type {content_type:?}: {context}"
        ));
    }
    let body: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("exception body is not JSON ({e}): {context}"))?;
    let errors = schema_errors("exception.yaml", &body);
    if !errors.is_empty() {
        return Err(format!(
            "not an exception.yaml body ({errors:?}): {context}"
        ));
    }
    if body.get("status").and_then(Value::as_u64) != Some(u64::from(reply.status)) {
        return Err(format!(
            "exception `status` must be the HTTP status: {context}"
        ));
    }
    for field in ["title", "detail"] {
        if body
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(format!("exception without `{field}`: {context}"));
        }
    }
    if let Some(name) = type_name {
        let expected = format!("{EXCEPTION_PREFIX}{name}");
        if body["type"].as_str() != Some(expected.as_str()) {
            return Err(format!("exception type is not {expected}: {context}"));
        }
    }
    Ok(body)
}

/// The `detail` of an exception body (empty if none).
pub fn detail(body: &Value) -> String {
    body.get("detail")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The request of an `echo` job that says `text` and then sleeps `pause`
/// seconds.
pub fn slow_echo(text: &str, pause: f64) -> Value {
    serde_json::json!({ "inputs": { "stringInput": text, "pause": pause } })
}

/// [`assert_exception`] with `status` (503 busy, 507 full) whose reply
/// also has a `Retry-After` header: a refusal the client may try again
/// later. Returns the body.
pub fn assert_retry_later(reply: &Reply, status: u16) -> Value {
    let body = assert_exception(reply, status, None);
    assert!(
        reply.header("retry-after").is_some(),
        "{} → {status} without Retry-After: {:?}",
        reply.request,
        reply.headers
    );
    body
}

/// Call `probe` every `interval` until it answers `Ok`, at most `timeout`:
/// the bounded wait of every test that waits for the server to get
/// somewhere (a job status, a deletion, room freed). `Err` says what was
/// seen instead; on timeout the panic names `what` and the last of those.
/// Returns what `probe` answered.
pub async fn poll_until<T, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Fut,
) -> T
where
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(done) => return done,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}: {seen}"
            ),
        }
        tokio::time::sleep(interval).await;
    }
}

/// The reqwest client of the tests: no proxy (the server is on
/// 127.0.0.1), redirects returned rather than followed (tests check them),
/// and at most `timeout` a request.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

/// Panic unless `reply` is an OGC exception (see
/// [`assert_error_exception`]) with a `Retry-After` of a whole number of
/// seconds: a submission turned away by a full queue. Returns the
/// seconds.
pub fn assert_retry_after_seconds(reply: &Reply) -> u64 {
    assert_error_exception(reply, None);
    let retry_after = reply
        .header("retry-after")
        .unwrap_or_else(|| panic!("{} without Retry-After: {:?}", reply.status, reply.headers));
    retry_after
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {retry_after:?} is not a number of seconds"))
}

/// An HTTP client bound to one server's base URL.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    /// `method` on `path` as an administrator (`Authorization: Bearer
    /// {token}`), with `body` of `content_type`: deploy, replace and
    /// undeploy.
    pub async fn send_as_admin(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let authorization = format!("Bearer {token}");
        let mut headers = vec![("authorization", authorization.as_str())];
        if body.is_some() {
            headers.push(("content-type", content_type));
        }
        self.send(method, path, &headers, body).await
    }

    /// Deploy a component (`application/wasm`) as an administrator, and
    /// insist on 201.
    pub async fn deploy_wasm(&self, token: &str, wasm: Vec<u8>) -> Reply {
        let reply = self
            .send_as_admin(
                token,
                reqwest::Method::POST,
                "/processes",
                "application/wasm",
                Some(wasm),
            )
            .await;
        reply.expect_status(201);
        reply
    }

    /// Send an application package (`application/ogcapppkg+json`) as an
    /// administrator: POST `/processes` to deploy, PUT
    /// `/processes/{id}` to replace.
    pub async fn send_package(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        package: &Value,
    ) -> Reply {
        self.send_as_admin(
            token,
            method,
            path,
            "application/ogcapppkg+json",
            Some(package.to_string().into_bytes()),
        )
        .await
    }

    /// A client for the server at `base` (no trailing slash).
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            client: http_client(Duration::from_secs(60)),
        }
    }

    /// The base URL, like `http://127.0.0.1:41234`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `path` made absolute (URLs are kept as they are).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Send a request and read the whole reply.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let url = self.url(path);
        let mut request = self.client.request(method.clone(), &url);
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        request = request.headers(map);
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: reading the body failed: {e}"))
            .to_vec();
        Reply {
            request: format!("{method} {url}"),
            status,
            headers,
            body,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, &[], None).await
    }

    /// `GET path` with request headers (`accept`, `authorization`, …).
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(reqwest::Method::GET, path, headers, None).await
    }

    /// Poll `GET /jobs/{job_id}` (every 50 ms, at most 10 s) until it
    /// answers 404: a job removed by retention, a dismissal or a cascade.
    /// Panics on timeout with `what` and the last reply.
    pub async fn wait_until_job_gone(&self, job_id: &str, what: &str) {
        let path = &format!("/jobs/{job_id}");
        let timeout = Duration::from_secs(10);
        poll_until(what, timeout, POLL_INTERVAL, move || async move {
            let reply = self.get(path).await;
            match reply.status {
                404 => Ok(()),
                status => Err(format!("{path} still answers {status}: {}", reply.text())),
            }
        })
        .await;
    }

    /// `GET path`, expecting 200 and a JSON body; returns the body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.expect_status(200).expect_json()
    }

    /// Panic unless `GET /conformance` (200, JSON) declares every one of
    /// `classes` in its `conformsTo`.
    pub async fn assert_conforms_to(&self, classes: &[&str]) {
        let conformance = self.get_json("/conformance").await;
        let declared: Vec<&str> = conformance["conformsTo"]
            .as_array()
            .unwrap_or_else(|| panic!("no conformsTo array: {conformance}"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for class in classes {
            assert!(declared.contains(class), "{class} not in {declared:?}");
        }
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(reqwest::Method::DELETE, path, &[], None).await
    }

    /// `POST path` with a JSON body and extra headers.
    pub async fn post_json(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.send(
            reqwest::Method::POST,
            path,
            &all,
            Some(serde_json::to_vec(body).expect("serialisable body")),
        )
        .await
    }

    /// `POST /processes/{process}/execution` with no `Prefer` header.
    pub async fn execute(&self, process: &str, request: &Value) -> Reply {
        self.post_json(&format!("/processes/{process}/execution"), request, &[])
            .await
    }

    /// `POST /processes/{process}/execution` with `Prefer: respond-async`.
    pub async fn execute_async_reply(&self, process: &str, request: &Value) -> Reply {
        self.post_json(
            &format!("/processes/{process}/execution"),
            request,
            &[("prefer", "respond-async")],
        )
        .await
    }

    /// Execute asynchronously, expect 201 and return the job id.
    pub async fn execute_async(&self, process: &str, request: &Value) -> String {
        let reply = self.execute_async_reply(process, request).await;
        reply.expect_status(201);
        let location = reply
            .header("location")
            .unwrap_or_else(|| panic!("201 without Location: {}", reply.text()));
        last_segment(&location)
    }

    /// Execute asynchronously (expecting 201) and poll the job until its
    /// status is one of `wanted`, at most [`JOB_TIMEOUT`]: the opening of
    /// most job tests (a job running, or finished). Returns the job id and
    /// that statusInfo.
    pub async fn execute_async_until(
        &self,
        process: &str,
        request: &Value,
        wanted: &[&str],
    ) -> (String, Value) {
        let job_id = self.execute_async(process, request).await;
        let status_info = self.wait_for_status(&job_id, wanted, JOB_TIMEOUT).await;
        (job_id, status_info)
    }

    /// [`Api::execute_async_until`] of the request `{"inputs": inputs}`:
    /// the usual job of a test (no `response`, `outputs` or `subscriber`),
    /// run to one of `wanted`. Returns the job id and that statusInfo.
    pub async fn run_until(
        &self,
        process: &str,
        inputs: Value,
        wanted: &[&str],
    ) -> (String, Value) {
        let request = serde_json::json!({ "inputs": inputs });
        self.execute_async_until(process, &request, wanted).await
    }

    /// A job of the `hostile` process (served with
    /// [`TestServerBuilder::with_hostile`](crate::TestServerBuilder::with_hostile)
    /// or deployed) told to misbehave as `behaviour` (`panic`,
    /// `process-error`, `infinite-loop`, …), run until it has failed.
    /// Returns the job id and its failed statusInfo.
    pub async fn failed_hostile(&self, behaviour: &str) -> (String, Value) {
        let inputs = serde_json::json!({ "behaviour": behaviour });
        self.run_until("hostile", inputs, &["failed"]).await
    }

    /// An `echo` job that says `text` and then sleeps `pause` seconds,
    /// polled until it runs: the job that holds a worker (or is still
    /// running) while a test dismisses it, queues behind it or kills the
    /// server. Returns the job id.
    pub async fn running_echo(&self, text: &str, pause: f64) -> String {
        let job_id = self.start_echo(text, pause).await;
        self.wait_for_status(&job_id, &["running"], JOB_TIMEOUT)
            .await;
        job_id
    }

    /// Submit (`Prefer: respond-async`, expecting 201) an `echo` job that
    /// says `text` and then sleeps `pause` seconds, without waiting for
    /// it: a job that is still accepted or running when the test looks.
    /// Returns the job id.
    pub async fn start_echo(&self, text: &str, pause: f64) -> String {
        self.execute_async("echo", &slow_echo(text, pause)).await
    }

    /// Execute an `echo` job that says `text` and then sleeps `pause`
    /// seconds synchronously (no `Prefer`), whatever the reply: the job
    /// that holds a worker, or outlasts a sync timeout.
    pub async fn execute_echo(&self, text: &str, pause: f64) -> Reply {
        self.execute("echo", &slow_echo(text, pause)).await
    }

    /// A finished job to look at: hello-world run synchronously for
    /// `{"name": "Joe"}`. Returns its id.
    pub async fn hello_job(&self) -> String {
        let request = serde_json::json!({ "inputs": { "name": "Joe" } });
        self.execute_sync("hello-world", &request).await.0
    }

    /// Execute synchronously, expect 200 and return the job id of the
    /// `Link: <…/jobs/{id}>; rel=monitor` header with the reply.
    pub async fn execute_sync(&self, process: &str, request: &Value) -> (String, Reply) {
        let reply = self.execute(process, request).await;
        reply.expect_status(200);
        let monitor = reply.link_header(REL_MONITOR).unwrap_or_else(|| {
            panic!(
                "sync response without a rel=monitor Link header: {:?}",
                reply.headers
            )
        });
        (last_segment(&monitor), reply)
    }

    /// Follow a list from `first` (`/jobs?limit=2`, say) along its `next`
    /// links, at most `max_pages` pages, each fetched with 200 and valid
    /// against `schema` (`jobList.yaml`, `processList.yaml`). Returns the
    /// pages in order, for the test's checks of each.
    pub async fn list_pages(&self, first: &str, schema: &str, max_pages: usize) -> Vec<Value> {
        let mut pages = Vec::new();
        let mut url = Some(first.to_owned());
        while let Some(next) = url.take().filter(|_| pages.len() < max_pages) {
            let page = self.get_json(&next).await;
            assert_valid(schema, &page);
            url = body_link(&page, "next");
            pages.push(page);
        }
        pages
    }

    /// Panic unless `process`, executed synchronously with `inputs`,
    /// answers 200 with `expected` (the raw JSON answer): the check that a
    /// process still works after a deploy, a replacement or a restart.
    /// Returns the job id.
    pub async fn assert_answers(&self, process: &str, inputs: Value, expected: Value) -> String {
        let request = serde_json::json!({ "inputs": inputs });
        let (job_id, reply) = self.execute_sync(process, &request).await;
        assert_eq!(reply.json(), expected, "{process} of {request}");
        job_id
    }

    /// `GET /jobs/{id}`, expecting 200 and a statusInfo valid against
    /// `statusInfo.yaml`.
    pub async fn job(&self, job_id: &str) -> Value {
        let body = self.get_json(&format!("/jobs/{job_id}")).await;
        assert_valid("statusInfo.yaml", &body);
        body
    }

    /// The statusInfo of the one step of the workflow job `parent` (a
    /// statusInfo): panics unless `parent` links exactly one `item` and
    /// that step links back `up` to `parent`, the two ways a tree's jobs
    /// are linked.
    pub async fn only_step(&self, parent: &Value) -> Value {
        let steps = body_links(parent, "item");
        assert_eq!(steps.len(), 1, "not one step: {parent}");
        let step = self.job(&last_segment(&steps[0])).await;
        let parent_id = parent["jobID"].as_str().expect("jobID");
        assert_eq!(
            body_links(&step, "up"),
            vec![format!("{}/jobs/{parent_id}", self.base)],
            "{step}"
        );
        step
    }

    /// Poll `GET /jobs/{id}` (every 50 ms, at most `timeout`) until its
    /// status is one of `wanted`; returns that statusInfo. Panics on
    /// timeout, or when the job reaches a final status not in `wanted`.
    pub async fn wait_for_status(&self, job_id: &str, wanted: &[&str], timeout: Duration) -> Value {
        let what = format!("job {job_id} {wanted:?}");
        poll_until(&what, timeout, POLL_INTERVAL, move || async move {
            let status_info = self.job(job_id).await;
            let status = status_info["status"].as_str().unwrap_or_default();
            if wanted.contains(&status) {
                return Ok(status_info);
            }
            assert!(
                !["successful", "failed", "dismissed"].contains(&status),
                "job {job_id} ended {status}, expected one of {wanted:?}: {status_info}"
            );
            Err(status_info.to_string())
        })
        .await
    }

    /// Poll `GET /jobs/{id}` (every 50 ms, at most `timeout`) until
    /// `done(statusInfo)`; returns that statusInfo. Panics on timeout.
    pub async fn wait_until(
        &self,
        job_id: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let what = format!("job {job_id} {what}");
        let done = &done;
        poll_until(&what, timeout, POLL_INTERVAL, move || async move {
            let status_info = self.job(job_id).await;
            match done(&status_info) {
                true => Ok(status_info),
                false => Err(status_info.to_string()),
            }
        })
        .await
    }
}

/// How many jobs [`fill_until_storage_full`] runs at most: each stores
/// about 16 KB, far past the bounds of tens of kilobytes the tests set.
const STORAGE_FILL_JOBS: usize = 40;

/// Run synchronous jobs with `run` until the server refuses one for its
/// storage bound: the opening of the storage-bound tests (the server's
/// `max_stored_bytes`, a key's own bound). Panics unless a 507 comes within
/// 40 jobs (`STORAGE_FILL_JOBS`), at least two jobs were stored before it,
/// every earlier reply was 200 with a `rel=monitor` link, and the refusal
/// is an OGC exception of type `urn:wasmproc:error:storage-full` with a
/// `Retry-After` header. `bound` names the bound in the messages. Returns
/// the ids of the stored jobs, the 507 reply and its exception body.
pub async fn fill_until_storage_full(
    bound: &str,
    mut run: impl AsyncFnMut() -> Reply,
) -> (Vec<String>, Reply, Value) {
    let mut stored = Vec::new();
    let refused = loop {
        assert!(
            stored.len() < STORAGE_FILL_JOBS,
            "no 507 after {STORAGE_FILL_JOBS} jobs of 16 KB under {bound}"
        );
        let reply = run().await;
        if reply.status == 507 {
            break reply;
        }
        reply.expect_status(200);
        let monitor = reply.link_header(REL_MONITOR).expect("monitor link");
        stored.push(last_segment(&monitor));
    };
    assert!(
        stored.len() >= 2,
        "refused too early under {bound}: {} jobs",
        stored.len()
    );
    let exception = assert_retry_later(&refused, 507);
    assert_eq!(exception["type"], "urn:wasmproc:error:storage-full");
    (stored, refused, exception)
}

/// Retry `run` (every 100 ms, at most 20 s) until it answers 200 again:
/// room freed by deleting jobs is only seen at the server's next storage
/// count. Every refusal meanwhile must be a 507 OGC exception; `what`
/// names the wait in the timeout message.
pub async fn wait_for_storage_room(what: &str, mut run: impl AsyncFnMut() -> Reply) {
    let timeout = Duration::from_secs(20);
    let deadline = Instant::now() + timeout;
    loop {
        let reply = run().await;
        if reply.status == 200 {
            return;
        }
        assert_exception(&reply, 507, None);
        assert!(
            Instant::now() < deadline,
            "{what}: still refused {timeout:?} after deleting the jobs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `multipart/form-data` body: text fields, then files.
pub fn multipart(texts: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "wasmproc-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, value) in texts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, file_name, bytes) in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// One operation of an OpenAPI document, its path filled in.
#[derive(Debug, Clone)]
pub struct Operation {
    /// GET, POST, PUT or DELETE.
    pub method: reqwest::Method,
    /// The path with its parameters replaced.
    pub path: String,
    /// The path as the document writes it.
    pub template: String,
    /// Its `operationId` (`?` when it has none).
    pub id: String,
    /// The operation object itself.
    pub spec: Value,
}

impl Operation {
    /// What to send to this operation so that it gets past validation:
    /// `execute` (a JSON execute request) to `execute`, a component
    /// (`wasm()`, `application/wasm`) to any other POST or PUT (deploy,
    /// replace), and no body elsewhere. Returns the content type and body.
    pub fn request_body(
        &self,
        execute: &Value,
        wasm: impl FnOnce() -> Vec<u8>,
    ) -> (&'static str, Option<Vec<u8>>) {
        if self.id == "execute" {
            let json = serde_json::to_vec(execute).expect("serialisable request");
            ("application/json", Some(json))
        } else if self.method == reqwest::Method::POST || self.method == reqwest::Method::PUT {
            ("application/wasm", Some(wasm()))
        } else {
            ("application/json", None)
        }
    }

    /// Whether it declares bearer security (optional or required).
    pub fn declares_bearer(&self) -> bool {
        self.spec["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s.get("bearer").is_some()))
    }
}

/// [`operations`] with `{processID}`, `{jobID}` and `{outputID}` filled
/// in: the paths of the security tables, which need a process, a job of it
/// and one of its outputs to exist.
pub fn operations_on(document: &Value, process: &str, job: &str, output: &str) -> Vec<Operation> {
    let fill = [("processID", process), ("jobID", job), ("outputID", output)];
    operations(document, &fill)
}

/// Every GET, POST, PUT and DELETE operation of an OpenAPI `document`,
/// each `{name}` in its path replaced by the value `fill` gives it: the
/// table that security tests walk, so that a route added to the server is
/// tested without anybody listing it.
pub fn operations(document: &Value, fill: &[(&str, &str)]) -> Vec<Operation> {
    let mut found = Vec::new();
    let paths = document["paths"].as_object().expect("paths");
    for (template, item) in paths {
        let mut path = template.clone();
        for (name, value) in fill {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        for (method, spec) in item.as_object().expect("path item") {
            let method = match method.as_str() {
                "get" => reqwest::Method::GET,
                "post" => reqwest::Method::POST,
                "put" => reqwest::Method::PUT,
                "delete" => reqwest::Method::DELETE,
                _ => continue,
            };
            found.push(Operation {
                method,
                path: path.clone(),
                template: template.clone(),
                id: spec["operationId"].as_str().unwrap_or("?").to_owned(),
                spec: spec.clone(),
            });
        }
    }
    found
}
