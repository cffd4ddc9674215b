//! Remote steps: a nested process on another OGC API - Processes server,
//! when `execution.remote_processes` allows its URL.
//!
//! ```json
//! {"inputs": {"stringInput": {
//!   "process": "http://127.0.0.1:5001/processes/hello-world",
//!   "inputs": {"name": "Joe"}, "outputs": {"greeting": {}}}}}
//! ```
//!
//! # What is allowed
//! A `process` URL that is not this server's is run only when it starts
//! with one of the prefixes in `execution.remote_processes` (empty by
//! default: every remote process is refused, 400), and it is reached
//! through the same SSRF guard as `href` inputs (`href.allowed_hosts`:
//! loopback and private addresses only when listed). Its inputs must be
//! values (or `href`s, or a deployed workflow's placeholders): the other
//! server validates them, so this one cannot check them before the job
//! runs, and it must select the one output it gives (this server does not
//! know the other's description).
//!
//! # How it runs
//! [`run_remote`] POSTs `{"inputs", "outputs": {<output>: {}}, "response":
//! "document"}` to `<process>/execution` with no preference, so the other
//! server runs it synchronously when it can: a 200 is the results document
//! and the output is taken from it. A 201 (a process that only runs
//! asynchronously there) gives the job's URL: it is polled (every 250 ms)
//! until it ends, then its results are read. Every response body is read
//! to at most `href.max_bytes`. The parent lists the remote job among its
//! steps, linked by its URL on the other server, when that server gave one
//! (a `Location`, or a `Link` with `rel="monitor"`, resolved against the
//! URL called, and only when it is on that same server). Dismissing the
//! parent (or its `workflow_timeout`) abandons the call, and DELETEs the
//! remote job when there is one. A refusal by the other server (4xx) fails
//! the parent as its client's mistake; anything else as a failed step.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::address_guard::{GuardedClient, refusal_in};
use super::href::read_capped;
use super::scheduler::Inner;
use crate::failure::FailureKind;
use crate::store::Step;

/// Pause between two looks at a remote asynchronous job.
const POLL: Duration = Duration::from_millis(250);

/// Whether `reference` names a process on another server that the
/// configuration allows (`execution.remote_processes` prefixes).
pub(crate) fn remote_allowed(reference: &str, allowed: &[String]) -> bool {
    (reference.starts_with("http://") || reference.starts_with("https://"))
        && allowed
            .iter()
            .any(|prefix| !prefix.is_empty() && reference.starts_with(prefix.as_str()))
}

/// Why a remote call failed: how the parent fails, and why.
type Failure = (FailureKind, String);

/// Run the remote process `reference` with `inputs`, selecting `output`
/// (see the module documentation). The step (the remote job, when the
/// other server gave its URL) and the output's value as an input value.
///
/// The POST is bounded by `execution.sync_timeout`, each later request by
/// `href.timeout`, and the whole call only by the parent's
/// `workflow_timeout`. A 200 without a `Location` or `monitor` link
/// leaves the step without a record, and the parent does not list it; a
/// remote step's record has the nil job id and the remote URL. The value
/// is the results document's member for `output` as the other server
/// rendered it (plain JSON, a qualified value, or a link), checked
/// against the parent's input like any other once the steps are done.
pub(super) async fn run_remote(
    inner: &Inner,
    path: &str,
    reference: &str,
    inputs: Map<String, Value>,
    output: &str,
    token: &CancellationToken,
) -> (Option<Step>, Result<Value, Failure>) {
    let body = json!({
        "inputs": inputs,
        "outputs": { output: {} },
        "response": "document",
    });
    let url = format!("{}/execution", reference.trim_end_matches('/'));
    let limit = inner.config.href.max_bytes;
    let timeout = inner.config.execution.sync_timeout;
    let sent = send(&inner.http, Method::POST, &url, Some(&body), timeout, limit);
    let reply = tokio::select! {
        reply = sent => reply,
        () = token.cancelled() => return (None, Err(abandoned(reference))),
    };
    let (status, headers, document) = match reply {
        Ok(reply) => reply,
        Err(failure) => return (None, Err(failure)),
    };
    let given = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| monitor_link(&headers));
    // Only a job on the server that was called is polled or dismissed: a
    // URL given by that server must not send this one elsewhere.
    let monitor = match given.map(|given| same_server_url(&url, &given)) {
        Some(Ok(job_url)) => Some(job_url),
        Some(Err(why)) => return (None, Err((FailureKind::Trap, why))),
        None => None,
    };
    let step = monitor.as_ref().map(|job_url| Step {
        path: path.to_owned(),
        job_id: Uuid::nil(),
        url: Some(job_url.clone()),
    });
    let document = match status {
        200 => document,
        201 => {
            let Some(job_url) = monitor else {
                let reason = format!("{reference} answered 201 without the job's Location");
                return (step, Err((FailureKind::Trap, reason)));
            };
            match follow(inner, reference, &job_url, token, limit).await {
                Ok(results) => results,
                Err(failure) => return (step, Err(failure)),
            }
        }
        other => return (step, Err(refused(reference, other, &document))),
    };
    let value = match document.get(output) {
        Some(value) => Ok(value.clone()),
        None => Err((
            FailureKind::InvalidOutput,
            format!("{reference} gave no output '{output}': {document}"),
        )),
    };
    (step, value)
}

/// Wait for the remote asynchronous job at `job_url` to end, then read its
/// results document. Dismissing the parent DELETEs the remote job.
async fn follow(
    inner: &Inner,
    reference: &str,
    job_url: &str,
    token: &CancellationToken,
    limit: u64,
) -> Result<Value, Failure> {
    let timeout = inner.config.href.timeout;
    loop {
        let look = send(&inner.http, Method::GET, job_url, None, timeout, limit);
        let looked = tokio::select! {
            looked = look => looked,
            () = token.cancelled() => {
                let deleted = send(&inner.http, Method::DELETE, job_url, None, timeout, limit).await;
                if let Err((_, why)) = deleted {
                    tracing::debug!(job = job_url, why, "remote step not dismissed with its parent");
                }
                return Err(abandoned(reference));
            }
        };
        let (status, _, status_info) = looked?;
        if status != 200 {
            return Err(refused(job_url, status, &status_info));
        }
        match status_info.get("status").and_then(Value::as_str) {
            Some("successful") => break,
            Some(ended @ ("failed" | "dismissed")) => {
                let why = status_info
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                return Err((
                    FailureKind::Trap,
                    format!("the remote job {job_url} {ended}: {why}"),
                ));
            }
            _ => {}
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = token.cancelled() => {}
        }
    }
    let results = format!("{}/results", job_url.trim_end_matches('/'));
    let (status, _, document) =
        send(&inner.http, Method::GET, &results, None, timeout, limit).await?;
    if status != 200 {
        return Err(refused(&results, status, &document));
    }
    Ok(document)
}

/// One request through the guarded client: the status, the headers and
/// the body as JSON (`null` when empty or not JSON), read to at most
/// `limit` bytes.
///
/// A URL or address the guard refuses fails as the client's mistake
/// (`invalid-input`, as for an `href`), no answer in time as `timeout`,
/// anything else as `trap`. Redirects are not followed (the guard's
/// client follows none): a 3xx is an answer like any other.
async fn send(
    client: &GuardedClient,
    method: Method,
    url: &str,
    body: Option<&Value>,
    timeout: Duration,
    limit: u64,
) -> Result<(u16, reqwest::header::HeaderMap, Value), Failure> {
    let failed = |why: String| (FailureKind::Trap, why);
    let mut request = client
        .request(method, url)
        .map_err(|refused| (FailureKind::InvalidInput, refused.to_string()))?
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(timeout);
    if let Some(body) = body {
        request = request.json(body);
    }
    let mut response = request.send().await.map_err(|e| match refusal_in(&e) {
        Some(refused) => (FailureKind::InvalidInput, refused.to_string()),
        None if e.is_timeout() => (
            FailureKind::Timeout,
            format!(
                "{url} did not answer within {}",
                humantime::format_duration(timeout)
            ),
        ),
        None => failed(format!("calling {url} failed: {e}")),
    })?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = read_capped(&mut response, limit)
        .await
        .map_err(|error| match error {
            None => failed(format!(
                "the answer of {url} is larger than href.max_bytes = {limit}"
            )),
            Some(e) => failed(format!("reading the answer of {url} failed: {e}")),
        })?;
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, headers, json))
}

/// `given` (absolute, or relative to `called`) when it is on the same
/// server (scheme, host and port) as `called`.
fn same_server_url(called: &str, given: &str) -> Result<String, String> {
    let called = reqwest::Url::parse(called).map_err(|e| format!("'{called}': {e}"))?;
    let job = called
        .join(given)
        .map_err(|e| format!("the job URL '{given}' from {called}: {e}"))?;
    if job.origin() != called.origin() {
        return Err(format!(
            "{called} gave a job URL on another server ('{job}'); it is not followed"
        ));
    }
    Ok(job.to_string())
}

/// The target of a `Link: <…>; rel="monitor"` header, if any.
fn monitor_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|link| link.contains("rel=\"monitor\"") || link.contains("rel=monitor"))
        .and_then(|link| {
            let start = link.find('<')? + 1;
            let end = link.find('>')?;
            (start < end).then(|| link[start..end].to_owned())
        })
}

/// The failure for an answer other than the one expected: the other
/// server's exception `detail` when it sent one. A 4xx is the request's
/// fault, so the parent's client's.
fn refused(url: &str, status: u16, body: &Value) -> Failure {
    let detail = body
        .get("detail")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| body.to_string());
    let kind = if (400..500).contains(&status) {
        FailureKind::InvalidInput
    } else {
        FailureKind::Trap
    };
    (kind, format!("{url} answered {status}: {detail}"))
}

/// The failure of a remote call abandoned because its parent stopped.
fn abandoned(reference: &str) -> Failure {
    (
        FailureKind::Trap,
        format!("the call to {reference} was abandoned: its parent stopped"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allow_listed_prefixes_are_remote_processes() {
        let allowed = vec!["http://127.0.0.1:5001/processes/".to_owned()];
        assert!(remote_allowed(
            "http://127.0.0.1:5001/processes/echo",
            &allowed
        ));
        assert!(!remote_allowed(
            "http://127.0.0.1:5002/processes/echo",
            &allowed
        ));
        assert!(!remote_allowed("echo", &allowed));
        assert!(!remote_allowed(
            "http://127.0.0.1:5001/processes/echo",
            &[String::new()]
        ));
    }

    #[test]
    fn job_urls_are_followed_only_on_the_server_called() {
        let called = "http://127.0.0.1:5001/processes/echo/execution";
        assert_eq!(
            same_server_url(called, "/jobs/1").as_deref(),
            Ok("http://127.0.0.1:5001/jobs/1")
        );
        assert_eq!(
            same_server_url(called, "http://127.0.0.1:5001/jobs/2").as_deref(),
            Ok("http://127.0.0.1:5001/jobs/2")
        );
        assert!(same_server_url(called, "http://127.0.0.1:5002/jobs/3").is_err());
        assert!(same_server_url(called, "https://127.0.0.1:5001/jobs/3").is_err());
    }

    #[test]
    fn the_monitor_link_is_found_among_others() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            "<http://a/x>; rel=\"self\", <http://127.0.0.1:5001/jobs/1>; rel=\"monitor\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            monitor_link(&headers).as_deref(),
            Some("http://127.0.0.1:5001/jobs/1")
        );
    }
}
