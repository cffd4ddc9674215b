//! The JSON documents built from stored jobs: statusInfo and the results
//! document. Shared by the HTTP API and the callbacks.
//!
//! One builder for both, so that what a callback receives is exactly what
//! `GET /jobs/{id}` and `GET /jobs/{id}/results` would have answered at
//! that moment: the same fields, the same links (built from the server's
//! base URL, never from a request's `Host` header, so a callback body and
//! a status read agree behind any proxy).
//!
//! statusInfo carries, beyond OGC's fields, what a user of this server
//! needs to act on a job: what it used (fuel, peak memory, duration), the
//! node that ran it (cluster), how many times it was started when more
//! than once, the failure reason as its message, and links to its log,
//! its process and its results. The results document renders each output
//! as the request asked (`value` inline: JSON as JSON, objects and bytes
//! as qualified values with their media type, bytes base64-encoded; or
//! `reference`: a link to `/jobs/{id}/results/{output}`).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::ogc::{Link, StatusInfo, TransmissionMode, Usage, rel};
use crate::runtime::{OutputValue, ProcessOutput};
use crate::store::{JobRecord, JobResults};

/// The URL of a job: `{base_url}/jobs/{id}`, from the server's
/// configured base URL (never a request's `Host`), so that the `Location`
/// of a 201, the `monitor` link of a sync answer and every link in a
/// callback body name the same place behind any proxy.
pub fn job_url(base_url: &str, job: &JobRecord) -> String {
    format!("{base_url}/jobs/{}", job.id)
}

/// The URL of one output of a job, `{base_url}/jobs/{id}/results/{output}`:
/// where an output requested by reference is served raw, with its own
/// media type.
pub fn output_url(base_url: &str, job: &JobRecord, output_id: &str) -> String {
    format!("{base_url}/jobs/{}/results/{output_id}", job.id)
}

/// The statusInfo document of a job, from its record as given.
///
/// Links: `self`; `results` only once the job is successful; its `log` at
/// any stage; its process's description; `up` to the parent of a step;
/// `via` to the job whose results a cached job reused; one `item` per
/// step, to the step's job here or, for a remote step, to its URL on the
/// other server. `usage` is there once the guest ran (`stats`), `node`
/// once a node of a cluster took the job, and `attempts` only when the
/// job was started more than once (its node was lost while it ran; a
/// shutdown gives its attempt back), so that a plain job's document
/// stays OGC's.
pub fn status_info(job: &JobRecord, base_url: &str) -> StatusInfo {
    let url = job_url(base_url, job);
    // Every link but the log's is to a JSON document.
    let json =
        |href: String, rel: &str, title: &str| Link::new(href, rel, "application/json", title);
    let mut links = vec![json(url.clone(), "self", "status of this job")];
    if job.status == crate::ogc::JobStatus::Successful {
        links.push(json(
            format!("{url}/results"),
            rel::RESULTS,
            "results of this job",
        ));
    }
    // The job's log (guest stdout/stderr and host.log lines, then how it
    // ended): `GET /jobs/{id}/log`.
    links.push(Link::new(
        format!("{url}/log"),
        "log",
        "text/plain",
        "log of this job",
    ));
    links.push(json(
        format!("{base_url}/processes/{}", job.process_id),
        rel::PROCESS_DESC,
        "the process this job runs",
    ));
    // Jobs this one came from: a workflow step links `up` to the job it
    // computes an input of, a cached job `via` to the job whose results
    // it reused.
    let origins = [
        (job.parent, "up", "the job this step computes an input of"),
        (
            job.cached_from,
            "via",
            "the job whose results this one reused",
        ),
    ];
    links.extend(origins.into_iter().filter_map(|(origin, rel, title)| {
        origin.map(|origin| json(format!("{base_url}/jobs/{origin}"), rel, title))
    }));
    // And a job with steps links to each (`item`, titled with the input's
    // path): to its job here, or for a remote step to its URL there.
    links.extend(job.steps.iter().map(|step| {
        json(
            step.url
                .clone()
                .unwrap_or_else(|| format!("{base_url}/jobs/{}", step.job_id)),
            "item",
            &format!("step computing {}", step.path),
        )
    }));
    StatusInfo {
        process_id: job.process_id.clone(),
        job_type: "process".into(),
        job_id: job.id.to_string(),
        status: job.status,
        message: job.message.clone(),
        created: job.created,
        started: job.started,
        finished: job.finished,
        updated: job.updated,
        progress: job.progress,
        links,
        usage: job.stats.map(|s| Usage {
            fuel_consumed: s.fuel_consumed,
            peak_memory_bytes: s.peak_memory_bytes,
            duration_ms: s.duration.as_millis() as u64,
        }),
        node: job.node.clone(),
        attempts: (job.attempts > 1).then_some(job.attempts),
    }
}

/// The outputs the request asked for, each with its transmission mode, in
/// the order the process produced them. No `outputs` in the request means
/// all outputs by value.
///
/// A requested output the process did not produce is left out (the
/// output checks of `jobs/validate.rs` already held the run to its
/// description). An `outputs` member that does not parse counts as no
/// selection: it was checked when the request arrived, so this only
/// happens to records written under other rules.
pub fn selected_outputs<'a>(
    job: &JobRecord,
    results: &'a JobResults,
) -> Vec<(&'a ProcessOutput, TransmissionMode)> {
    let requested = job.request.output_requests().ok().flatten();
    results
        .outputs
        .iter()
        .filter_map(|output| match &requested {
            None => Some((output, TransmissionMode::Value)),
            Some(list) => list
                .iter()
                .find(|(id, _)| id == &output.id)
                .map(|(_, spec)| (output, spec.transmission_mode)),
        })
        .collect()
}

/// An output inline in a results document (`inlineOrRefData`): plain JSON
/// for strings, numbers, booleans and arrays; a qualified value for objects
/// and binary data.
///
/// An object (and `null`) is wrapped as `{"value", "mediaType"}` because a
/// bare object could read as a qualified value or a reference
/// (`{"href": …}`) to a client, or to a server feeding it to another
/// process; bytes are base64 with `"encoding": "base64"`, since JSON
/// cannot carry them.
pub fn inline_value(output: &ProcessOutput) -> Value {
    match &output.value {
        OutputValue::Json(value @ (Value::Object(_) | Value::Null)) => json!({
            "value": value,
            "mediaType": output.media_type,
        }),
        OutputValue::Json(value) => value.clone(),
        OutputValue::Bytes(bytes) => json!({
            "value": base64::engine::general_purpose::STANDARD.encode(bytes),
            "encoding": "base64",
            "mediaType": output.media_type,
        }),
    }
}

/// The results document (`results.yaml`) of a successful job: one member
/// per selected output, by value ([`inline_value`]) or as a link to
/// [`output_url`] (`rel` `results`, with the output's media type), as
/// the request's transmission modes say. The answer of
/// `GET /jobs/{id}/results` and of a sync execution when the request's
/// `response` is `document` (the default of the former), and the body
/// posted to `successUri`.
pub fn results_document(job: &JobRecord, results: &JobResults, base_url: &str) -> Value {
    let mut document = Map::new();
    for (output, mode) in selected_outputs(job, results) {
        let value = match mode {
            TransmissionMode::Value => inline_value(output),
            TransmissionMode::Reference => json!({
                "href": output_url(base_url, job, &output.id),
                "type": output.media_type,
                "rel": rel::RESULTS,
                "title": output.id,
            }),
        };
        document.insert(output.id.clone(), value);
    }
    Value::Object(document)
}
