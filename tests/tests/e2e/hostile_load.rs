//! Hostile modules under load, against the `wasmproc-under-test` child:
//! while good hello-world jobs run continuously (sync, and async polled to
//! the end), every behaviour of the `hostile` guest runs several times,
//! concurrently, half async and half sync.
//!
//! `hostile` has the small limits of [`hostile_limits`] (5e7 fuel, 32 MiB,
//! 1 s, 1 MiB of outputs, 64 KiB of log); `hostile-roomy`, the same
//! module deployed as an application package with 1e9 fuel and 10 s, shows
//! that a log flood with enough fuel succeeds (its log is truncated).
//!
//! Asserted: every good job succeeds with the right output; every hostile
//! job fails with its own reason (the strings of `hostile.rs`: fuel,
//! memory, trapped, output, wall-clock, exit, the process's message) in
//! its status and its results (async) or in the exception (sync); the
//! roomy log flood succeeds; the child's peak RSS (`VmHWM`) stays under a
//! bound derived from the limits (see [`peak_bound_kib`]).
//!
//! Short by default (2 runs of each of the 12 cases); `WASMPROC_LONG=1`
//! runs 50 of each. Prints one `RELIABILITY-SUMMARY scenario=hostile_load …`
//! line.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use wasmproc_tests::{
    ADMIN_TOKEN, Api, ChildConfig, HOSTILE_WASM, Reply, assert_error_exception, detail,
    output_value,
};

use super::BINARY;
/// Jobs running at once in the child.
const WORKERS: u64 = 4;
/// The memory limit of each hostile job, in MiB.
const HOSTILE_MEMORY_MIB: u64 = 32;
/// How long a job may take from submission to its final status, queueing
/// behind the hostile jobs included.
const JOB_DEADLINE: Duration = Duration::from_secs(120);

struct Scale {
    /// Runs of each case.
    repeats: usize,
    /// Hostile jobs in flight at once.
    hostile_clients: usize,
}

fn scale() -> Scale {
    if wasmproc_tests::long_mode() {
        Scale {
            repeats: 50,
            hostile_clients: 8,
        }
    } else {
        Scale {
            repeats: 2,
            hostile_clients: 4,
        }
    }
}

/// The peak RSS allowed to the child, in KiB: what it used idle, plus
/// every worker holding a hostile job's full linear memory (the memory
/// limit is per job, and at most `WORKERS` jobs run), plus 128 MiB for
/// everything else — host-side copies of outputs up to the 1 MiB output
/// limit, the 64 KiB logs, compiled code, HTTP buffers of the clients.
/// Leaked guest memory or unbounded log/output buffering would exceed it
/// in the long run.
fn peak_bound_kib(idle_kib: u64) -> u64 {
    idle_kib + (WORKERS * HOSTILE_MEMORY_MIB + 128) * 1024
}

/// What a hostile case must do.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Fail with a message containing this (lowercase); `a|b` accepts
    /// either (a small budget may be stopped by whichever of two limits
    /// comes first on a loaded machine).
    Fails(&'static str),
    /// Succeed with output `result` = this.
    Succeeds(&'static str),
}

/// Whether `text` contains one of the `|`-separated alternatives.
fn names(text: &str, alternatives: &str) -> bool {
    alternatives.split('|').any(|reason| text.contains(reason))
}

#[derive(Debug, Clone)]
struct Case {
    process: &'static str,
    inputs: Value,
    expect: Expect,
}

fn cases() -> Vec<Case> {
    let hostile = |behaviour: &str, reason: &'static str| Case {
        process: "hostile",
        inputs: json!({ "behaviour": behaviour }),
        expect: Expect::Fails(reason),
    };
    vec![
        hostile("infinite-loop", "fuel"),
        hostile("memory-bomb", "memory"),
        hostile("deep-recursion", "trapped"),
        hostile("panic", "trapped"),
        Case {
            process: "hostile",
            inputs: json!({ "behaviour": "huge-output", "size": 2 * 1024 * 1024 }),
            expect: Expect::Fails("output"),
        },
        hostile("endless-sleep", "wall-clock"),
        hostile("process-error", "refusing on purpose"),
        hostile("exit", "exit"),
        // Linked but inert capabilities: no directory, no network.
        hostile("read-file", "reading /etc/passwd failed"),
        hostile("open-socket", "connecting to 127.0.0.1:9 failed"),
        // 20,000 log lines need ~1.5e8 fuel: the small budget stops it (its
        // fuel, or its 1 s when the machine is busy)...
        hostile("log-flood", "fuel|wall-clock"),
        // ...and with room it succeeds, its log cut at log_bytes.
        Case {
            process: "hostile-roomy",
            inputs: json!({ "behaviour": "log-flood" }),
            expect: Expect::Succeeds("flooded"),
        },
        // 200,000 progress reports: kept in memory, written a few times a
        // second, so the storm costs the store (and the other jobs)
        // nothing much.
        Case {
            process: "hostile-roomy",
            inputs: json!({ "behaviour": "progress-storm", "size": 200_000 }),
            expect: Expect::Succeeds("stormed"),
        },
    ]
}

/// Counts for the summary.
#[derive(Default)]
struct Counts {
    hostile_failed_with_reason: AtomicUsize,
    hostile_succeeded: AtomicUsize,
    good_sync: AtomicUsize,
    good_async: AtomicUsize,
}

impl Counts {
    /// Panic unless `reply` is an OGC exception whose detail names
    /// `reason` (see [`names`]), then count a hostile job that failed with
    /// its reason. `what` says which answer of which case, for the message.
    fn failed_naming(&self, reply: &Reply, reason: &str, what: &str) {
        let body = assert_error_exception(reply, None);
        assert!(
            names(&detail(&body).to_lowercase(), reason),
            "{what} does not name {reason:?}: {body}"
        );
        self.hostile_failed_with_reason
            .fetch_add(1, Ordering::SeqCst);
    }
}

/// Run one hostile case, sync or async, and check its outcome.
async fn run_case(api: &Api, case: &Case, sync: bool, counts: &Counts) {
    let what = format!(
        "{} {} ({})",
        case.process,
        case.inputs,
        if sync { "sync" } else { "async" }
    );
    if sync {
        let request = json!({ "inputs": case.inputs, "response": "document" });
        let reply = api.execute(case.process, &request).await;
        match case.expect {
            Expect::Fails(reason) => {
                counts.failed_naming(&reply, reason, &format!("{what}: the exception"));
            }
            Expect::Succeeds(value) => {
                reply.expect_status(200);
                assert_eq!(
                    output_value(&reply.json(), "result"),
                    json!(value),
                    "{what}"
                );
                counts.hostile_succeeded.fetch_add(1, Ordering::SeqCst);
            }
        }
        return;
    }
    let job_id = api
        .execute_async(case.process, &json!({ "inputs": case.inputs }))
        .await;
    match case.expect {
        Expect::Fails(reason) => {
            let status = api
                .wait_for_status(&job_id, &["failed"], JOB_DEADLINE)
                .await;
            let message = status["message"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            assert!(
                names(&message, reason),
                "{what}: job {job_id} failed without naming {reason:?}: {status}"
            );
            let reply = api.get(&format!("/jobs/{job_id}/results")).await;
            counts.failed_naming(&reply, reason, &format!("{what}: the results exception"));
        }
        Expect::Succeeds(value) => {
            api.wait_for_status(&job_id, &["successful"], JOB_DEADLINE)
                .await;
            let results = api.get_json(&format!("/jobs/{job_id}/results")).await;
            assert_eq!(output_value(&results, "result"), json!(value), "{what}");
            counts.hostile_succeeded.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Good jobs until `stop`: sync hello-world, or async hello-world polled to
/// the end (so at most one job of this client is pending).
async fn good_client(
    api: Api,
    sync: bool,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    client: usize,
) {
    for i in 0..100_000 {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let name = format!("good-{client}-{i}");
        let expected = json!(format!("Hello {name}!"));
        let request = json!({ "inputs": { "name": name } });
        if sync {
            let reply = api.execute("hello-world", &request).await;
            assert_eq!(
                reply.status,
                200,
                "good sync job {name} did not succeed: {}",
                reply.text()
            );
            assert_eq!(reply.json(), expected, "good sync job {name}");
            counts.good_sync.fetch_add(1, Ordering::SeqCst);
        } else {
            let job_id = api.execute_async("hello-world", &request).await;
            api.wait_for_status(&job_id, &["successful"], JOB_DEADLINE)
                .await;
            let results = api.get_json(&format!("/jobs/{job_id}/results")).await;
            assert_eq!(
                output_value(&results, "echo"),
                expected,
                "good async job {job_id}"
            );
            counts.good_async.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Deploy the hostile module again as `hostile-roomy`, with room to flood.
async fn deploy_roomy(api: &Api) {
    let mut description = api.get_json("/processes/hostile").await;
    let fields = description.as_object_mut().expect("description object");
    fields.remove("links");
    fields.remove("mutable");
    fields.insert("id".into(), json!("hostile-roomy"));
    let wasm = std::fs::read(HOSTILE_WASM).unwrap_or_else(|e| panic!("{HOSTILE_WASM}: {e}"));
    let package = json!({
        "processDescription": { "process": description },
        "executionUnit": {
            "value": base64::engine::general_purpose::STANDARD.encode(wasm),
            "mediaType": "application/wasm"
        },
        "limits": {
            "fuel": 1_000_000_000u64,
            "memory_bytes": HOSTILE_MEMORY_MIB * 1024 * 1024,
            "timeout": "10s",
            "output_bytes": 1024 * 1024,
            "log_bytes": 64 * 1024
        }
    });
    api.send_package(ADMIN_TOKEN, Method::POST, "/processes", &package)
        .await
        .expect_status(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_jobs_fail_with_their_reason_while_good_jobs_succeed() {
    let Scale {
        repeats,
        hostile_clients,
    } = scale();
    let dir = tempfile::tempdir().expect("temporary directory");
    let processes = dir.path().join("processes");
    std::fs::create_dir_all(&processes).expect("processes dir");
    std::fs::copy(HOSTILE_WASM, processes.join("hostile.wasm"))
        .unwrap_or_else(|e| panic!("copying {HOSTILE_WASM}: {e}"));
    let config = ChildConfig::write(
        dir.path(),
        &format!(
            "processes_dir = {processes:?}\n\n[execution]\nmax_concurrent_jobs = {WORKERS}\n\n\
             [auth]\nadmin_token = {ADMIN_TOKEN:?}\n\n[processes.hostile.limits]\nfuel = 50000000\n\
             memory_bytes = {}\ntimeout = \"1s\"\noutput_bytes = 1048576\nlog_bytes = 65536\n",
            HOSTILE_MEMORY_MIB * 1024 * 1024
        ),
    );
    let child = config.spawn(BINARY);
    deploy_roomy(&child).await;
    let idle_rss = child.rss_kib();
    let started = Instant::now();
    let counts = Arc::new(Counts::default());

    // The good load.
    let stop = Arc::new(AtomicBool::new(false));
    let mut good = Vec::new();
    for (client, sync) in [true, false, false].into_iter().enumerate() {
        good.push(tokio::spawn(good_client(
            child.api().clone(),
            sync,
            stop.clone(),
            counts.clone(),
            client,
        )));
    }

    // The hostile jobs, every case `repeats` times, interleaved, half sync.
    let mut work: Vec<(Case, bool)> = Vec::new();
    for repeat in 0..repeats {
        for (i, case) in cases().into_iter().enumerate() {
            work.push((case, (repeat + i) % 2 == 1));
        }
    }
    let hostile_total = work.len();
    let work = Arc::new(Mutex::new(work));
    let mut hostile = Vec::new();
    for _ in 0..hostile_clients {
        let api = child.api().clone();
        let work = work.clone();
        let counts = counts.clone();
        hostile.push(tokio::spawn(async move {
            loop {
                let next = work.lock().unwrap_or_else(PoisonError::into_inner).pop();
                let Some((case, sync)) = next else { break };
                run_case(&api, &case, sync, &counts).await;
            }
        }));
    }
    for task in hostile {
        task.await.expect("a hostile case did not end as expected");
    }
    stop.store(true, Ordering::SeqCst);
    for task in good {
        task.await.expect("a good job did not succeed");
    }

    // The server still serves, and the hostile jobs are all stored.
    child
        .assert_answers(
            "hello-world",
            json!({ "name": "after" }),
            json!("Hello after!"),
        )
        .await;
    let peak = child.peak_rss_kib();
    let end_rss = child.rss_kib();
    let failed = counts.hostile_failed_with_reason.load(Ordering::SeqCst);
    let succeeded = counts.hostile_succeeded.load(Ordering::SeqCst);
    let good_sync = counts.good_sync.load(Ordering::SeqCst);
    let good_async = counts.good_async.load(Ordering::SeqCst);
    println!(
        "RELIABILITY-SUMMARY scenario=hostile_load repeats={repeats} workers={WORKERS} \
         hostile_submitted={hostile_total} hostile_failed_with_reason={failed} \
         hostile_flood_succeeded={succeeded} good_submitted={} good_completed={} good_failed=0 \
         lost=0 idle_rss_mib={} peak_rss_mib={} end_rss_mib={} bound_mib={} total_s={:.1}",
        good_sync + good_async,
        good_sync + good_async,
        idle_rss / 1024,
        peak / 1024,
        end_rss / 1024,
        peak_bound_kib(idle_rss) / 1024,
        started.elapsed().as_secs_f64(),
    );
    assert_eq!(
        failed + succeeded,
        hostile_total,
        "every hostile case was checked"
    );
    assert!(
        good_sync > 0 && good_async > 0,
        "the good load ran: {good_sync} sync, {good_async} async"
    );
    assert!(
        peak <= peak_bound_kib(idle_rss),
        "server peak RSS {} MiB exceeds the bound of {} MiB (idle {} MiB)",
        peak / 1024,
        peak_bound_kib(idle_rss) / 1024,
        idle_rss / 1024
    );
    child.kill9();
}
