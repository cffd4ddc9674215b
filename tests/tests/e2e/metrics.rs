//! `GET /metrics`: Prometheus text that `promtool check metrics` accepts
//! and a Rust parser reads, whose counters move as jobs succeed and fail.
//!
//! The server runs as a child process: the metrics recorder is one per
//! process, and the in-process test servers of this binary share theirs.

use serde_json::json;
use wasmproc_tests::{Api, ChildConfig, REL_MONITOR, TestDatabase};

use super::BINARY;

/// One sample line of the text format.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A strict reader of the Prometheus text exposition format 0.0.4: every
/// line is a `# HELP`, a `# TYPE` (counter, gauge, histogram, summary,
/// untyped) or a sample `name{label="value",…} value`, label values
/// quoted with `\\`, `\"` and `\n` escapes (route templates such as
/// `/jobs/{job_id}` hold braces, which some parsers trip over), every
/// sample's family declared by a `# TYPE` before it. Panics naming the
/// line otherwise.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut types: std::collections::HashMap<String, String> = Default::default();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(_), Some(_)) => {}
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "unknown type: {line}"
                    );
                    types.insert(name.to_owned(), kind.to_owned());
                }
                _ => panic!("a comment that is neither HELP nor TYPE: {line}"),
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name = &line[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        let mut labels = Vec::new();
        let mut rest = &line[name_end..];
        if let Some(after) = rest.strip_prefix('{') {
            let bytes = after.as_bytes();
            let mut i = 0;
            loop {
                if bytes.get(i) == Some(&b'}') {
                    i += 1;
                    break;
                }
                let eq = after[i..]
                    .find('=')
                    .unwrap_or_else(|| panic!("label without '=': {line}"))
                    + i;
                let label = after[i..eq].to_owned();
                assert!(
                    !label.is_empty()
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "bad label name {label:?}: {line}"
                );
                assert_eq!(
                    bytes.get(eq + 1),
                    Some(&b'"'),
                    "unquoted label value: {line}"
                );
                i = eq + 2;
                let mut value = String::new();
                loop {
                    match bytes.get(i) {
                        None => panic!("unterminated label value: {line}"),
                        Some(b'\\') => {
                            match bytes.get(i + 1) {
                                Some(b'n') => value.push('\n'),
                                Some(b'\\') => value.push('\\'),
                                Some(b'"') => value.push('"'),
                                _ => panic!("bad escape: {line}"),
                            }
                            i += 2;
                        }
                        Some(b'"') => break,
                        Some(_) => {
                            let c = after[i..].chars().next().unwrap_or_default();
                            value.push(c);
                            i += c.len_utf8();
                        }
                    }
                }
                i += 1;
                labels.push((label, value));
                match bytes.get(i) {
                    Some(b',') => i += 1,
                    Some(b'}') => {}
                    _ => panic!("expected ',' or '}}' after a label: {line}"),
                }
            }
            rest = &after[i..];
        }
        let mut fields = rest.split_whitespace();
        let value = match fields.next().unwrap_or_else(|| panic!("no value: {line}")) {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            number => number
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("bad value ({e}): {line}")),
        };
        if let Some(timestamp) = fields.next() {
            timestamp
                .parse::<i64>()
                .unwrap_or_else(|e| panic!("bad timestamp ({e}): {line}"));
        }
        assert!(fields.next().is_none(), "trailing text: {line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(types.contains_key(family), "no # TYPE before: {line}");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

/// Scrape `/metrics`: the text, parsed.
async fn scrape(api: &Api) -> (String, Vec<Sample>) {
    let reply = api.get("/metrics").await;
    reply.expect_status(200);
    assert!(
        reply
            .content_type()
            .starts_with("text/plain; version=0.0.4"),
        "{}",
        reply.content_type()
    );
    let text = reply.text();
    let parsed = parse_exposition(&text);
    (text, parsed)
}

/// A counter's or gauge's value, or a histogram's count (its `_count`
/// sample), summed over the series with all of `labels`; 0 when there is
/// none.
fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    let count = format!("{metric}_count");
    let histogram = samples.iter().any(|s| s.name == count);
    samples
        .iter()
        .filter(|s| s.name == if histogram { count.as_str() } else { metric })
        .filter(|s| labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
        .sum()
}

#[test]
fn the_exposition_reader_reads_braces_escapes_and_histograms() {
    let text = r#"# HELP a_total A.
# TYPE a_total counter
a_total{route="/jobs/{job_id}",x="q\"\\n"} 3
# TYPE h histogram
h_bucket{le="+Inf"} 2
h_sum 0.5
h_count 2
"#;
    let samples = parse_exposition(text);
    assert_eq!(samples.len(), 4);
    assert_eq!(samples[0].label("route"), Some("/jobs/{job_id}"));
    assert_eq!(samples[0].label("x"), Some("q\"\\n"));
    assert_eq!(
        value(&samples, "a_total", &[("route", "/jobs/{job_id}")]),
        3.0
    );
    assert_eq!(value(&samples, "h", &[]), 2.0);
}

/// `promtool check metrics` (Debian's prometheus package, installed by
/// tests/browser-up.sh) must accept the text: format and naming lints.
fn promtool_check(text: &str) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool is missing ({e}): run tests/browser-up.sh (Debian package prometheus)")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn counters_move_as_jobs_succeed_and_fail_and_promtool_accepts_the_text() {
    let dir = tempfile::tempdir().unwrap();
    // Its own artifact cache: the test counts what it compiles.
    let config = ChildConfig::write_with_private_artifacts(
        dir.path(),
        "[execution]\nmax_concurrent_jobs = 2\n",
    );
    let server = config.spawn(BINARY);
    let (_, before) = scrape(server.api()).await;

    for name in ["a", "b"] {
        server
            .execute_sync("hello-world", &json!({"inputs": {"name": name}}))
            .await;
    }
    server
        .run_until("echo", json!({"stringInput": "x"}), &["successful"])
        .await;
    // Fails in the guest (not GeoJSON): a process-error.
    server
        .execute(
            "geometry",
            &json!({"inputs": {"geometry": {"type": "Banana"}}}),
        )
        .await
        .expect_status(400);
    // Refused before any job exists.
    server
        .execute("hello-world", &json!({"inputs": {}}))
        .await
        .expect_status(400);
    server.get("/jobs/not-a-job").await.expect_status(404);
    // A method HTTP does not define: answered 405, labelled `other`.
    let invented = reqwest::Method::from_bytes(b"FROBNICATE").unwrap();
    server
        .api()
        .send(invented, "/jobs", &[], None)
        .await
        .expect_status(405);

    let (text, after) = scrape(server.api()).await;
    promtool_check(&text);
    let delta = |metric: &str, labels: &[(&str, &str)]| {
        value(&after, metric, labels) - value(&before, metric, labels)
    };
    let hello = ("process", "hello-world");
    assert_eq!(
        delta("wasmproc_jobs_submitted_total", &[hello, ("mode", "sync")]),
        2.0,
        "{text}"
    );
    assert_eq!(
        delta(
            "wasmproc_jobs_submitted_total",
            &[("process", "echo"), ("mode", "async")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "wasmproc_jobs_finished_total",
            &[hello, ("outcome", "success")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            "wasmproc_jobs_finished_total",
            &[("process", "echo"), ("outcome", "success")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "wasmproc_jobs_finished_total",
            &[("process", "geometry"), ("outcome", "process-error")]
        ),
        1.0,
        "{text}"
    );
    for histogram in [
        "wasmproc_job_duration_seconds",
        "wasmproc_job_queue_wait_seconds",
        "wasmproc_job_fuel_consumed",
        "wasmproc_job_peak_memory_bytes",
    ] {
        assert_eq!(delta(histogram, &[hello]), 2.0, "{histogram}\n{text}");
    }
    assert!(
        delta("wasmproc_sandbox_instantiate_duration_seconds", &[]) >= 4.0,
        "{text}"
    );
    assert!(
        delta(
            "wasmproc_store_write_duration_seconds",
            &[("operation", "finish_job")]
        ) >= 4.0
    );
    assert!(
        delta(
            "wasmproc_store_write_duration_seconds",
            &[("operation", "enqueue_job")]
        ) >= 1.0
    );
    // HTTP by route template (not by raw path) and status.
    let execution = ("route", "/processes/{process_id}/execution");
    assert_eq!(
        delta(
            "wasmproc_http_requests_total",
            &[execution, ("method", "POST"), ("status", "200")]
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        delta(
            "wasmproc_http_requests_total",
            &[execution, ("method", "POST"), ("status", "400")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            "wasmproc_http_requests_total",
            &[("route", "/jobs/{job_id}"), ("status", "404")]
        ),
        1.0
    );
    assert!(
        !text.contains("not-a-job"),
        "raw paths must not become labels"
    );
    assert_eq!(
        delta(
            "wasmproc_http_requests_total",
            &[("route", "/jobs"), ("method", "other"), ("status", "405")]
        ),
        1.0,
        "{text}"
    );
    assert!(
        !text.contains("FROBNICATE"),
        "invented methods must not become labels"
    );
    assert!(delta("wasmproc_http_request_duration_seconds", &[execution]) >= 4.0);
    // Where the sync jobs started: the first of a process always on the
    // HTTP thread (it has no history yet); the second there too, unless
    // the first slice, on a cold sandbox slot, was over the budget.
    let started_on = |thread: &str| {
        delta(
            "wasmproc_sync_job_starts_total",
            &[hello, ("thread", thread)],
        )
    };
    assert!(started_on("http") >= 1.0, "{text}");
    assert_eq!(started_on("http") + started_on("executor"), 2.0, "{text}");
    // Gauges of the present.
    assert_eq!(value(&after, "wasmproc_workers", &[]), 2.0);
    assert_eq!(value(&after, "wasmproc_queue_depth", &[]), 0.0);
    assert_eq!(value(&after, "wasmproc_jobs_running", &[]), 0.0);
    assert_eq!(
        value(&after, "wasmproc_store_write_failures_total", &[]),
        0.0
    );
    // The built-ins were compiled at the first start (a fresh data dir)...
    assert!(
        value(&after, "wasmproc_artifact_cache_misses_total", &[]) >= 3.0,
        "{text}"
    );
    assert_eq!(
        value(&after, "wasmproc_artifact_cache_hits_total", &[]),
        0.0
    );
    // ...and come from the artifact cache after a restart. The restart
    // sets `sync_start_budget = "0s"`: every sync job then starts on the
    // job threads; and `keep_sync_jobs = false`: its sync jobs are counted
    // though not stored.
    server.kill9();
    let config = ChildConfig::write_with_private_artifacts(
        dir.path(),
        "[execution]\nmax_concurrent_jobs = 2\nsync_start_budget = \"0s\"\nkeep_sync_jobs = false\n",
    );
    let server = config.spawn(BINARY);
    let (_, restarted) = scrape(server.api()).await;
    assert!(value(&restarted, "wasmproc_artifact_cache_hits_total", &[]) >= 3.0);
    assert_eq!(
        value(&restarted, "wasmproc_artifact_cache_misses_total", &[]),
        0.0
    );
    let stored = async || server.get_json("/jobs?limit=100").await["jobs"].clone();
    let stored_before = stored().await;
    for name in ["c", "d"] {
        let reply = server
            .execute("hello-world", &json!({"inputs": {"name": name}}))
            .await;
        reply.expect_status(200);
        assert_eq!(reply.link_header(REL_MONITOR), None);
    }
    assert_eq!(stored().await, stored_before, "sync jobs stored");
    let (text, scraped) = scrape(server.api()).await;
    let started_on = |thread: &str| {
        value(
            &scraped,
            "wasmproc_sync_job_starts_total",
            &[hello, ("thread", thread)],
        )
    };
    assert_eq!(started_on("executor"), 2.0, "{text}");
    assert_eq!(started_on("http"), 0.0, "{text}");
    for (metric, labels) in [
        ("wasmproc_jobs_submitted_total", [hello, ("mode", "sync")]),
        (
            "wasmproc_jobs_finished_total",
            [hello, ("outcome", "success")],
        ),
    ] {
        assert_eq!(value(&scraped, metric, &labels), 2.0, "{metric}: {text}");
    }
}

/// A process whose sync jobs are long stops starting them on the HTTP
/// threads, which status reads share: `hostile`'s `infinite-loop` spins
/// until its fuel runs out (tens of milliseconds), so its first slice
/// (on an HTTP thread: the process has no history yet) ends at an epoch
/// tick, at most 10 ms in, far over the 200 µs `sync_start_budget`. Once
/// a slice like that has counted, the process's next jobs start on the
/// job threads (a probe comes only one job in 16).
#[tokio::test]
async fn sync_jobs_of_a_process_whose_jobs_are_long_leave_the_http_threads() {
    const JOBS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let processes = dir.path().join("processes");
    std::fs::create_dir_all(&processes).unwrap();
    std::fs::copy(wasmproc_tests::HOSTILE_WASM, processes.join("hostile.wasm")).unwrap();
    let config = ChildConfig::write(
        dir.path(),
        &format!(
            "builtin_processes = false\nprocesses_dir = {processes:?}\n\
             [processes.hostile]\nlimits = {{ fuel = 50000000, timeout = \"5s\" }}\n"
        ),
    );
    let server = config.spawn(BINARY);
    for _ in 0..JOBS {
        let reply = server
            .execute(
                "hostile",
                &json!({"inputs": {"behaviour": "infinite-loop"}}),
            )
            .await;
        assert!(
            reply.text().to_lowercase().contains("fuel"),
            "{}: {}",
            reply.status,
            reply.text()
        );
    }
    let (text, samples) = scrape(server.api()).await;
    let started_on = |thread: &str| {
        value(
            &samples,
            "wasmproc_sync_job_starts_total",
            &[("process", "hostile"), ("thread", thread)],
        )
    };
    assert_eq!(
        started_on("http") + started_on("executor"),
        JOBS as f64,
        "{text}"
    );
    assert!(started_on("http") >= 1.0, "the first starts there: {text}");
    // A first slice can end early, at a tick that came just after it
    // started; a few of them in a row are what would keep jobs on the
    // HTTP threads, and five in a row do not happen.
    assert!(started_on("executor") >= 1.0, "{text}");
}

#[tokio::test]
async fn on_postgres_every_series_names_the_node() {
    let db = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let config = ChildConfig::write(
        dir.path(),
        &format!(
            "[store]\nbackend = \"postgres\"\nurl = {:?}\n[cluster]\nnode_name = \"metrics-node-a\"\n",
            db.url()
        ),
    );
    let server = config.spawn(BINARY);
    server
        .execute_sync("hello-world", &json!({"inputs": {"name": "pg"}}))
        .await;
    server
        .run_until("hello-world", json!({"name": "pg"}), &["successful"])
        .await;
    let (text, scrape) = scrape(server.api()).await;
    promtool_check(&text);
    assert!(!scrape.is_empty());
    for sample in &scrape {
        assert_eq!(
            sample.label("node"),
            Some("metrics-node-a"),
            "{} without the node label",
            sample.name
        );
    }
    let hello = ("process", "hello-world");
    assert_eq!(
        value(&scrape, "wasmproc_jobs_submitted_total", &[hello]),
        2.0
    );
    assert_eq!(
        value(
            &scrape,
            "wasmproc_jobs_finished_total",
            &[hello, ("outcome", "success")]
        ),
        2.0
    );
    drop(server);
    drop(db);
}
