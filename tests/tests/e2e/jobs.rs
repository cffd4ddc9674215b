//! The job list and its filters, job status, dismissal.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wasmproc_tests::{
    Api, JOB_TIMEOUT, TestServer, assert_exception, assert_valid, body_link, check_exception,
    fill_until_storage_full, set_job_control, wait_for_storage_room,
};

fn job_ids(list: &Value) -> Vec<String> {
    list["jobs"]
        .as_array()
        .unwrap_or_else(|| panic!("no jobs array: {list}"))
        .iter()
        .map(|j| j["jobID"].as_str().expect("jobID").to_owned())
        .collect()
}

/// `GET /jobs?query`, validated against `jobList.yaml`; returns the ids.
async fn list(api: &Api, query: &str) -> Vec<String> {
    let body = api.get_json(&format!("/jobs?{query}")).await;
    assert_valid("jobList.yaml", &body);
    job_ids(&body)
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// Jobs of a server used by the list tests, in submission order.
struct Fixture {
    hello: Vec<String>,
    echo: String,
    slow_echo: String,
    failed: String,
}

impl Fixture {
    fn all(&self) -> Vec<String> {
        let mut all = self.hello.clone();
        all.extend([
            self.echo.clone(),
            self.slow_echo.clone(),
            self.failed.clone(),
        ]);
        all
    }
}

/// Two hello-world jobs, a quick echo, an echo that runs 1.5 s (all
/// successful) and a failed hostile job, run one after the other.
async fn fixture(server: &TestServer) -> Fixture {
    let hello_request = json!({ "inputs": { "name": "Joe" } });
    let (first, _) = server.execute_sync("hello-world", &hello_request).await;
    let (second, _) = server.execute_sync("hello-world", &hello_request).await;
    let (echo, _) = server
        .execute_sync("echo", &json!({ "inputs": { "stringInput": "x" } }))
        .await;
    let (slow_echo, _) = server
        .execute_sync(
            "echo",
            &json!({ "inputs": { "stringInput": "slow", "pause": 1.5 } }),
        )
        .await;
    let (failed, _) = server.failed_hostile("process-error").await;
    Fixture {
        hello: vec![first, second],
        echo,
        slow_echo,
        failed,
    }
}

#[tokio::test]
async fn job_list_is_newest_first_and_filters_work() {
    let server = super::server().with_hostile().start().await;
    let jobs = fixture(&server).await;
    let all = jobs.all();
    let newest_first: Vec<String> = all.iter().rev().cloned().collect();
    let mut problems = Vec::new();

    let body = server.get_json("/jobs").await;
    assert_valid("jobList.yaml", &body);
    for job in body["jobs"].as_array().unwrap() {
        assert_eq!(job["type"], "process", "{job}");
    }
    let got = job_ids(&body);
    if got != newest_first {
        problems.push(format!(
            "all, newest first: got {got:?}, want {newest_first:?}"
        ));
    }

    let without = |skip: &String| -> Vec<String> {
        newest_first
            .iter()
            .filter(|id| *id != skip)
            .cloned()
            .collect()
    };
    // (query, the jobs it lists newest first, whether their order is
    // left out of the comparison)
    let cases: Vec<(&str, Vec<String>, bool)> = vec![
        (
            "processID=echo",
            vec![jobs.echo.clone(), jobs.slow_echo.clone()],
            true,
        ),
        (
            "processID=hello-world&processID=hostile",
            vec![
                jobs.hello[0].clone(),
                jobs.hello[1].clone(),
                jobs.failed.clone(),
            ],
            true,
        ),
        ("processID=nope", vec![], false),
        ("status=failed", vec![jobs.failed.clone()], false),
        ("status=successful", without(&jobs.failed), false),
        (
            "status=failed&status=successful",
            newest_first.clone(),
            false,
        ),
        ("status=running", vec![], false),
        ("type=process", newest_first.clone(), false),
        // An open end, an open start in the past, a closed interval
        // around now, one in the future.
        (
            "datetime=2020-01-01T00:00:00Z/..",
            newest_first.clone(),
            false,
        ),
        ("datetime=../2020-01-01T00:00:00Z", vec![], false),
        (
            "datetime=2020-01-01T00:00:00Z/2999-12-31T23:59:59Z",
            newest_first.clone(),
            false,
        ),
        ("datetime=2999-01-01T00:00:00Z/..", vec![], false),
        ("minDuration=1", vec![jobs.slow_echo.clone()], false),
        ("maxDuration=1", without(&jobs.slow_echo), false),
        // Combined filters.
        (
            "processID=echo&minDuration=1",
            vec![jobs.slow_echo.clone()],
            false,
        ),
    ];
    for (query, want, any_order) in cases {
        let (got, want) = if any_order {
            (sorted(list(&server, query).await), sorted(want))
        } else {
            (list(&server, query).await, want)
        };
        if got != want {
            problems.push(format!("{query}: got {got:?}, want {want:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    server.shutdown().await;
}

#[tokio::test]
async fn job_list_pages_with_limit_offset_and_next_links() {
    let server = super::server().start().await;
    let request = json!({ "inputs": { "name": "Joe" } });
    let mut submitted = Vec::new();
    for _ in 0..5 {
        submitted.push(server.execute_sync("hello-world", &request).await.0);
    }
    submitted.reverse(); // newest first

    let mut seen = Vec::new();
    for body in server.list_pages("/jobs?limit=2", "jobList.yaml", 5).await {
        let page = job_ids(&body);
        assert!(page.len() <= 2, "limit=2 gave {page:?}");
        seen.extend(page);
    }
    assert_eq!(seen, submitted, "paging with next links");

    assert_eq!(
        list(&server, "limit=2&offset=2").await,
        submitted[2..4].to_vec(),
        "limit=2&offset=2"
    );
    assert_eq!(list(&server, "offset=5").await, Vec::<String>::new());
    for bad in [
        "limit=0",
        "limit=abc",
        "status=finished",
        "datetime=yesterday",
    ] {
        let reply = server.get(&format!("/jobs?{bad}")).await;
        assert_exception(&reply, 400, None);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn job_ids_are_unguessable_and_in_creation_order() {
    // A job id is the only key to a job's inputs and results (without
    // `protect_jobs`): after the creation millisecond (UUID v7, so that
    // the stores append new jobs instead of scattering them) it must be
    // random, 74 bits drawn anew for every id, not a counter.
    let server = super::server().start().await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let (id, reply) = server
            .execute_sync("hello-world", &json!({ "inputs": { "name": "Joe" } }))
            .await;
        reply.expect_status(200);
        ids.push(uuid::Uuid::parse_str(&id).expect("job id is a UUID"));
    }
    let millis = |id: &uuid::Uuid| {
        assert_eq!(id.get_version(), Some(uuid::Version::SortRand), "{id}");
        let (seconds, nanos) = id.get_timestamp().expect("v7 has a time").to_unix();
        seconds * 1000 + u64::from(nanos) / 1_000_000
    };
    let times: Vec<u64> = ids.iter().map(millis).collect();
    assert!(times.is_sorted(), "{ids:?}");
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    // Neighbours share no 30 bits of the random part (they would with a
    // counter): 19 random pairs agreeing there is ~2e-8.
    let alike = ids
        .windows(2)
        .filter(|pair| pair[0].as_bytes()[8..12] == pair[1].as_bytes()[8..12])
        .count();
    assert_eq!(alike, 0, "{ids:?}");
    // The time in the id is the job's `created`, to the millisecond.
    let status = server.get(&format!("/jobs/{}", ids[0])).await;
    let created: chrono::DateTime<chrono::Utc> = status.json()["created"]
        .as_str()
        .expect("created")
        .parse()
        .expect("created is RFC 3339");
    assert_eq!(created.timestamp_millis() as u64, times[0], "{status:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_job_returns_404_no_such_job() {
    let server = super::server().start().await;
    let random = uuid::Uuid::new_v4().to_string();
    for path in [
        format!("/jobs/{random}"),
        format!("/jobs/{random}/results"),
        format!("/jobs/{random}/results/echo"),
        "/jobs/not-a-uuid".to_owned(),
        "/jobs/not-a-uuid/results".to_owned(),
    ] {
        let reply = server.get(&path).await;
        assert_exception(&reply, 404, Some("no-such-job"));
    }
    let reply = server.delete(&format!("/jobs/{random}")).await;
    assert_exception(&reply, 404, Some("no-such-job"));
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_output_of_a_successful_job_returns_404() {
    let server = super::server().start().await;
    let job_id = server.hello_job().await;
    let reply = server
        .get(&format!("/jobs/{job_id}/results/no-such-output"))
        .await;
    assert_exception(&reply, 404, None);
    server.shutdown().await;
}

#[tokio::test]
async fn status_info_links_to_itself_and_to_results_when_done() {
    let server = super::server().start().await;
    let job_id = server.hello_job().await;
    let status_info = server.job(&job_id).await;
    let self_link =
        body_link(&status_info, "self").unwrap_or_else(|| panic!("no self link: {status_info}"));
    assert_eq!(self_link, format!("{}/jobs/{job_id}", server.base()));
    let results = body_link(&status_info, wasmproc_tests::rel::RESULTS)
        .unwrap_or_else(|| panic!("no results link: {status_info}"));
    server.get(&results).await.expect_status(200);
    server.shutdown().await;
}

/// Gone after dismissal: 404 or 410, as an OGC exception.
fn assert_gone(reply: &wasmproc_tests::Reply) {
    let gone = check_exception(reply, Some(404), None)
        .or_else(|_| check_exception(reply, Some(410), None));
    assert!(
        gone.is_ok(),
        "{}: expected 404 or 410, got {} {}",
        reply.request,
        reply.status,
        reply.text()
    );
}

/// Panic unless a hello-world job runs to the end within 5 s: on a server
/// with one worker, proof that the (long) job dismissed before no longer
/// holds it. `why` says what a slow job would mean.
async fn assert_the_worker_is_free(server: &Api, why: &str) {
    let started = Instant::now();
    server.hello_job().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the next job waited {:?}: {why}",
        started.elapsed()
    );
}

#[tokio::test]
async fn dismissing_a_running_job_stops_it() {
    let server = super::server().with_one_worker().start().await;
    let job_id = server.running_echo("x", 30.0).await;

    let reply = server.delete(&format!("/jobs/{job_id}")).await;
    reply.expect_status(200);
    let status_info = reply.expect_json();
    assert_valid("statusInfo.yaml", &status_info);
    assert_eq!(status_info["status"], "dismissed");
    assert_eq!(status_info["jobID"], job_id.as_str());

    assert_gone(&server.get(&format!("/jobs/{job_id}")).await);
    assert_gone(&server.get(&format!("/jobs/{job_id}/results")).await);

    // The only worker is free again at once: the 30 s job really stopped.
    assert_the_worker_is_free(&server, "the dismissed job kept its worker").await;
    let successful = list(&server, "status=successful").await;
    assert!(
        !successful.contains(&job_id),
        "dismissed job became successful"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn dismissing_a_queued_job_removes_it_before_it_runs() {
    let server = super::server().with_one_worker().start().await;
    let running = server.running_echo("x", 30.0).await;
    let queued = server.start_echo("x", 30.0).await;
    assert_eq!(server.job(&queued).await["status"], "accepted");

    let reply = server.delete(&format!("/jobs/{queued}")).await;
    reply.expect_status(200);
    assert_eq!(reply.expect_json()["status"], "dismissed");
    assert_gone(&server.get(&format!("/jobs/{queued}")).await);

    let reply = server.delete(&format!("/jobs/{running}")).await;
    reply.expect_status(200);
    assert_eq!(reply.expect_json()["status"], "dismissed");

    assert_the_worker_is_free(&server, "a dismissed job kept the worker").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_process_without_dismiss_keeps_its_jobs() {
    let server = super::server()
        .configure(|c| set_job_control(c, "echo", &["sync-execute", "async-execute"]))
        .start()
        .await;
    let job_id = server.running_echo("x", 1.0).await;
    for state in ["running", "successful"] {
        let reply = server.delete(&format!("/jobs/{job_id}")).await;
        let exception = assert_exception(&reply, 405, None);
        assert_eq!(
            exception["type"],
            "urn:wasmproc:error:dismiss-not-supported"
        );
        let detail = exception["detail"].as_str().unwrap();
        assert!(
            detail.contains("'echo'") && detail.contains("dismiss"),
            "{detail}"
        );
        assert_eq!(
            reply.header("allow").as_deref(),
            Some("GET, HEAD"),
            "{state}"
        );
        // The job goes on, and its results stay.
        let done = server
            .wait_for_status(&job_id, &["successful"], JOB_TIMEOUT)
            .await;
        assert_eq!(done["status"], "successful");
    }
    server
        .get(&format!("/jobs/{job_id}/results"))
        .await
        .expect_status(200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_sync_request_whose_job_is_dismissed_gets_a_409_saying_so() {
    let server = super::server().start().await;
    let api = server.api().clone();
    let request = tokio::spawn(async move {
        api.execute(
            "echo",
            &json!({ "inputs": { "stringInput": "x", "pause": 30 } }),
        )
        .await
    });
    // The sync job is recorded as running from its start.
    let deadline = Instant::now() + JOB_TIMEOUT;
    let job_id = loop {
        if let Some(id) = list(&server, "status=running&processID=echo").await.pop() {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the sync job never showed as running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    server
        .delete(&format!("/jobs/{job_id}"))
        .await
        .expect_status(200);
    let reply = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("the sync request was answered soon after the dismissal")
        .unwrap();
    let exception = assert_exception(&reply, 409, None);
    assert_eq!(exception["type"], "urn:wasmproc:error:job-dismissed");
    assert!(
        exception["detail"].as_str().unwrap().contains(&job_id),
        "{exception}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn past_the_storage_bound_new_jobs_get_507_and_reads_and_deletions_go_on() {
    let server = super::server()
        .configure(|c| {
            c.execution.max_stored_bytes = 60_000;
            c.execution.storage_recount = Duration::from_millis(200);
        })
        .start()
        .await;
    // echo stores its input twice (request and result): ~16 KB a job.
    let big = json!({ "inputs": { "stringInput": "x".repeat(8_000) } });
    let (stored, _, _) =
        fill_until_storage_full("a 60 KB bound", async || server.execute("echo", &big).await).await;
    // Async submissions are refused too; nothing was queued for them.
    let reply = server
        .post_json(
            "/processes/echo/execution",
            &big,
            &[("prefer", "respond-async")],
        )
        .await;
    assert_exception(&reply, 507, None);

    // Reads go on.
    assert_eq!(
        sorted(list(&server, "processID=echo").await),
        sorted(stored.clone())
    );
    for id in &stored {
        server.get(&format!("/jobs/{id}")).await.expect_status(200);
        server
            .get(&format!("/jobs/{id}/results"))
            .await
            .expect_status(200);
    }
    // Deletions go on, and free the room for new jobs (seen at the next
    // count, a few hundred milliseconds here).
    for id in &stored {
        server
            .delete(&format!("/jobs/{id}"))
            .await
            .expect_status(200);
    }
    wait_for_storage_room("every job deleted", async || {
        server.execute("echo", &big).await
    })
    .await;
    server.shutdown().await;
}

/// Below `execution.min_free_disk_bytes` of free disk space (here a floor
/// no disk reaches), new jobs, sync and async, get 507 with Retry-After
/// and a detail naming the setting; the server goes on answering reads.
/// On PostgreSQL the jobs live in the database and the floor does not
/// apply: they are accepted.
#[tokio::test]
async fn below_the_free_disk_floor_new_jobs_get_507_and_reads_go_on() {
    let server = super::server()
        .configure(|c| c.execution.min_free_disk_bytes = u64::MAX)
        .start()
        .await;
    let hello = json!({ "inputs": { "name": "Joe" } });
    for prefer in [None, Some("respond-async")] {
        let headers: Vec<(&str, &str)> = prefer.map(|p| ("prefer", p)).into_iter().collect();
        let reply = server
            .post_json("/processes/hello-world/execution", &hello, &headers)
            .await;
        if super::ON_POSTGRES {
            reply.expect_status(if prefer.is_some() { 201 } else { 200 });
            continue;
        }
        let exception = assert_exception(&reply, 507, None);
        assert_eq!(exception["type"], "urn:wasmproc:error:storage-full");
        assert!(
            exception["detail"]
                .as_str()
                .is_some_and(|d| d.contains("min_free_disk_bytes")),
            "{exception}"
        );
        assert!(reply.header("retry-after").is_some(), "{:?}", reply.headers);
    }
    let stored = list(&server, "").await.len();
    assert_eq!(stored, if super::ON_POSTGRES { 2 } else { 0 });
    server.get("/processes").await.expect_status(200);
    server.shutdown().await;
}
