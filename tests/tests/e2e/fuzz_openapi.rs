//! Fuzz the HTTP API from its own OpenAPI document (`GET /api`) with
//! schemathesis, against a real server on 127.0.0.1.
//!
//! The server has an admin token and `auth.protect_jobs`, so every
//! mutating route needs `Authorization: Bearer …`. Schemathesis runs twice:
//! with the token (every operation, its examples, boundary values,
//! generated and schema-violating data, and stateful sequences following
//! the document's links: deploy random bytes, execute, poll, dismiss), and
//! without it (every protected route must answer a documented 401). Checks:
//! no 5xx, status codes, content types, response headers and bodies as
//! documented, schema-violating requests rejected, unsupported methods 405,
//! deleted jobs gone, deployed processes readable, auth not ignored. Not
//! checked: `positive_data_acceptance`, since the execute body's `inputs`
//! is a free-form object in the document and each process validates its
//! own inputs, so schema-valid bodies are rightly refused with 400.
//!
//! A bounded number of examples per operation keeps this under a minute
//! or two on two cores; jobs started by fuzzed inputs are held to 2 s of
//! wall clock and the synchronous wait to 5 s, fetching `href` inputs is
//! restricted to an unresolvable host, and the schemathesis process is
//! killed after [`WALL_CLOCK`]. `reliability/fuzz.sh` is the long run.
//!
//! Needs `reliability/install-tools.sh` (a pinned schemathesis in
//! `reliability/.venv`); without it this test fails and says so. Set
//! `WASMPROC_FUZZ_SEED` to replay a run (the seed is printed).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmproc_tests::{ADMIN_TOKEN, TestServer};

/// Hard limit on one schemathesis run; it is killed past it.
const WALL_CLOCK: Duration = Duration::from_secs(150);
/// Examples per operation and phase, with and without the token.
const EXAMPLES_AUTHENTICATED: u32 = 100;
const EXAMPLES_ANONYMOUS: u32 = 25;
/// The checks (names as in schemathesis 4.32, reliability/requirements.txt).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_schema_conformance,response_headers_conformance,negative_data_rejection,\
unsupported_method,use_after_free,ensure_resource_availability,ignored_auth";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The schemathesis CLI of `reliability/.venv`; panics with how to
/// install it when it is missing.
fn schemathesis() -> PathBuf {
    let binary = workspace().join("reliability/.venv/bin/schemathesis");
    assert!(
        binary.is_file(),
        "{} is missing: run reliability/install-tools.sh (it installs the pinned \
         schemathesis from PyPI into reliability/.venv) and run this test again",
        binary.display()
    );
    binary
}

struct Run {
    status: Option<i32>,
    output: String,
    took: Duration,
}

/// Run schemathesis against `api_url` (on a blocking thread); killed
/// after [`WALL_CLOCK`].
async fn run_schemathesis(api_url: &str, examples: u32, token: Option<&str>) -> Run {
    let api_url = api_url.to_owned();
    let token = token.map(str::to_owned);
    tokio::task::spawn_blocking(move || run_blocking(&api_url, examples, token.as_deref()))
        .await
        .expect("schemathesis runner")
}

fn run_blocking(api_url: &str, examples: u32, token: Option<&str>) -> Run {
    let binary = schemathesis();
    let scratch = tempfile::tempdir().expect("scratch directory");
    let mut command = Command::new(&binary);
    command
        .arg("run")
        .arg(api_url)
        .args(["--checks", CHECKS])
        .args(["--max-examples", &examples.to_string()])
        .args(["--request-timeout", "30"])
        .args(["--generation-database", "none"])
        .args(["--workers", "1"])
        .arg("--no-color");
    if let Ok(seed) = std::env::var("WASMPROC_FUZZ_SEED") {
        command.args(["--seed", seed.trim()]);
    }
    if let Some(token) = token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    command
        .current_dir(scratch.path())
        .env(
            "SCHEMATHESIS_HOOKS",
            workspace().join("reliability/schemathesis_hooks.py"),
        )
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    // Drain both pipes on their own threads so a full pipe cannot stall it.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < WALL_CLOCK => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "schemathesis did not finish within {WALL_CLOCK:?} against {api_url} and \
                     was killed; its output so far:\n{}{}",
                    stdout.join().unwrap_or_default(),
                    stderr.join().unwrap_or_default()
                );
            }
            Err(e) => panic!("waiting for schemathesis: {e}"),
        }
    };
    Run {
        status: status.code(),
        output: format!(
            "{}{}",
            stdout.join().unwrap_or_default(),
            stderr.join().unwrap_or_default()
        ),
        took: started.elapsed(),
    }
}

/// Panic (showing the whole output) unless the run passed and tested
/// `operations` operations.
fn assert_passed(run: &Run, what: &str, operations: usize) {
    eprintln!(
        "schemathesis {what}: exit {:?} in {:.1?}",
        run.status, run.took
    );
    let tested = format!("Tested: {operations}");
    assert!(
        run.status == Some(0) && run.output.contains(&tested),
        "schemathesis {what} failed (exit {:?}; expected \"{tested}\"). Its report:\n\n{}",
        run.status,
        run.output
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_survives_schemathesis_and_matches_its_openapi_document() {
    let binary = schemathesis();
    let server = TestServer::builder()
        .with_admin_token()
        .configure(|c| {
            c.auth.protect_jobs = true;
            c.execution.sync_timeout = Duration::from_secs(5);
            c.execution.max_concurrent_jobs = 2;
            c.execution.max_queued_jobs = 64;
            c.limits.default.timeout = Duration::from_secs(2);
            c.limits.max.timeout = Duration::from_secs(2);
            c.href.allowed_hosts = vec!["href-fetching-is-off.invalid".into()];
            c.href.timeout = Duration::from_secs(2);
            // Generated subscriber URIs are refused without a DNS lookup.
            c.callbacks.allowed_hosts = vec!["callbacks-are-off.invalid".into()];
            c.callbacks.timeout = Duration::from_secs(1);
            c.callbacks.attempts = 1;
        })
        .start()
        .await;
    let document: Value = server.get_json("/api").await;
    let operations: usize = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|path| path.as_object().map_or(0, |methods| methods.len()))
        .sum();
    assert!(operations >= 15, "only {operations} operations in /api");
    // Schemathesis leaves out the operation that serves the document itself.
    let operations = operations - 1;
    let api_url = format!("{}/api", server.base());
    eprintln!(
        "fuzzing {api_url} ({operations} operations) with {}",
        binary.display()
    );

    let run = run_schemathesis(&api_url, EXAMPLES_AUTHENTICATED, Some(ADMIN_TOKEN)).await;
    assert_passed(&run, "with the admin token", operations);
    let run = run_schemathesis(&api_url, EXAMPLES_ANONYMOUS, None).await;
    assert_passed(&run, "without a token", operations);

    // Still serving after all of it.
    let reply = server.get("/processes/hello-world").await;
    reply.expect_status(200);
    server.shutdown().await;
}
