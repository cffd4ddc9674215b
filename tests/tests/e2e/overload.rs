//! Overload: ten times more concurrent async submissions than the queue
//! holds, against the `wasmproc-under-test` child (one worker, a small
//! `max_queued_jobs`, slow-enough echo jobs so the queue fills).
//!
//! Asserted: every submission gets 201 or 503; every 503 is an OGC
//! exception with a numeric `Retry-After` and writes no job; right after
//! the burst no more jobs are pending than the queue and the worker hold;
//! every 201 job completes successfully with its own results; the queue
//! takes jobs again once drained; the child's peak RSS (`VmHWM`) stays
//! under a fixed bound that does not grow with the number of submissions.
//!
//! Short by default (queue 20, 200 submissions); `WASMPROC_LONG=1` runs
//! queue 100 with 1000 submissions. Prints one
//! `RELIABILITY-SUMMARY scenario=overload …` line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wasmproc_tests::{
    ChildConfig, ChildServer, assert_retry_after_seconds, fan_out, last_segment, output_value,
    slow_echo,
};

use super::BINARY;

/// Peak RSS allowed to the server, in MiB. An idle debug-build child peaks
/// at ~60 MiB and one running echo job adds a few MiB (the job's linear
/// memory is a few MiB). Rejected submissions must cost nothing lasting,
/// and accepted ones are at most `max_queued_jobs` small records, so the
/// peak may not depend on how many submissions arrive: 256 MiB leaves
/// room for hundreds of concurrent connections and request buffers, and
/// is far below what keeping every rejected request (or a job per
/// submission in memory) would reach in long mode.
const PEAK_RSS_BOUND_MIB: u64 = 256;

struct Scale {
    queue: usize,
    submissions: usize,
    /// Submissions in flight at once.
    concurrency: usize,
    /// Seconds each echo job sleeps.
    pause: f64,
}

fn scale() -> Scale {
    if wasmproc_tests::long_mode() {
        Scale {
            queue: 100,
            submissions: 1000,
            concurrency: 250,
            pause: 0.1,
        }
    } else {
        Scale {
            queue: 20,
            submissions: 200,
            concurrency: 200,
            pause: 0.2,
        }
    }
}

/// One submission's answer: accepted with a job id, or rejected.
enum Answer {
    Accepted(String),
    Rejected,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_the_queue_gets_503_for_the_excess_and_completes_the_rest() {
    let Scale {
        queue,
        submissions,
        concurrency,
        pause,
    } = scale();
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = ChildConfig::write(
        dir.path(),
        &format!("\n[execution]\nmax_concurrent_jobs = 1\nmax_queued_jobs = {queue}\n"),
    );
    let child = Arc::new(config.spawn(BINARY));
    let idle_rss = child.rss_kib();
    let started = Instant::now();

    // The burst: `concurrency` tasks, each submitting its share at once.
    let submit = move |child: Arc<ChildServer>, i| async move {
        let request = slow_echo(&format!("job {i}"), pause);
        let reply = child.execute_async_reply("echo", &request).await;
        let answer = match reply.status {
            201 => {
                let location = reply
                    .header("location")
                    .unwrap_or_else(|| panic!("201 without Location: {}", reply.text()));
                Answer::Accepted(last_segment(&location))
            }
            503 => {
                let seconds = assert_retry_after_seconds(&reply);
                assert!(seconds > 0, "Retry-After {seconds} is not positive");
                Answer::Rejected
            }
            other => panic!(
                "submission {i}: expected 201 or 503, got {other}: {}",
                reply.text()
            ),
        };
        (i, answer)
    };
    let mut accepted = Vec::new();
    let mut rejected = 0usize;
    for (i, answer) in fan_out(submissions, concurrency, child.clone(), submit).await {
        match answer {
            Answer::Accepted(id) => accepted.push((i, id)),
            Answer::Rejected => rejected += 1,
        }
    }
    let burst = started.elapsed();
    assert_eq!(accepted.len() + rejected, submissions);

    // Right after the burst, at most the queue plus the one worker's job
    // are still pending: no submission got past a full queue.
    let pending = pending_jobs(&child).await;
    assert!(
        pending <= queue + 1,
        "{pending} jobs pending after the burst with max_queued_jobs = {queue} and 1 worker"
    );
    assert!(
        accepted.len() >= queue,
        "only {} of {submissions} accepted: the queue of {queue} was never full",
        accepted.len()
    );
    assert!(
        rejected > 0,
        "{submissions} concurrent submissions of {pause} s jobs never filled a queue of {queue}"
    );

    // Every accepted job completes, with its own results.
    let deadline = Duration::from_secs(60) + Duration::from_secs_f64(pause * accepted.len() as f64);
    let mut completed = 0usize;
    for (i, id) in &accepted {
        let remaining = deadline.saturating_sub(started.elapsed());
        let status = child
            .wait_for_status(id, &["successful"], remaining.max(Duration::from_secs(1)))
            .await;
        assert_eq!(status["status"], "successful", "{status}");
        let results = child.get_json(&format!("/jobs/{id}/results")).await;
        assert_eq!(
            output_value(&results, "stringInput"),
            json!(format!("job {i}")),
            "results of job {id}: {results}"
        );
        completed += 1;
    }

    // A 503 wrote nothing: the server knows exactly the accepted jobs.
    let listed = child
        .get_json(&format!("/jobs?limit={}", submissions + 10))
        .await;
    let listed = listed["jobs"].as_array().map_or(0, Vec::len);
    assert_eq!(
        listed,
        accepted.len(),
        "jobs stored vs submissions answered 201"
    );

    // Drained, the queue takes jobs again.
    let again = child
        .execute_async("echo", &json!({ "inputs": { "stringInput": "again" } }))
        .await;
    child
        .wait_for_status(&again, &["successful"], Duration::from_secs(30))
        .await;

    let peak = child.peak_rss_kib();
    println!(
        "RELIABILITY-SUMMARY scenario=overload queue={queue} workers=1 submitted={submissions} \
         accepted={} rejected_503={rejected} completed={completed} failed=0 lost={} \
         idle_rss_mib={} peak_rss_mib={} burst_s={:.1} total_s={:.1}",
        accepted.len(),
        accepted.len() - completed,
        idle_rss / 1024,
        peak / 1024,
        burst.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    assert!(
        peak < PEAK_RSS_BOUND_MIB * 1024,
        "server peak RSS {} MiB exceeds {PEAK_RSS_BOUND_MIB} MiB",
        peak / 1024
    );
    match Arc::try_unwrap(child) {
        Ok(child) => child.kill9(),
        Err(_) => panic!("child still shared"),
    }
}

/// Jobs that are `accepted` or `running` now (one listing, so no job is
/// counted twice).
async fn pending_jobs(child: &ChildServer) -> usize {
    let list = child.get_json("/jobs?limit=10000").await;
    list["jobs"]
        .as_array()
        .expect("jobs array")
        .iter()
        .filter(|job| job["status"] == "accepted" || job["status"] == "running")
        .count()
}
