//! Several wasmproc nodes, as separate processes on 127.0.0.1 ports, on one
//! real PostgreSQL database: jobs survive a node killed with SIGKILL,
//! dismissals and deploys cross nodes, roles split API and compute, and a
//! restarted PostgreSQL loses nothing that was acknowledged.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wasmproc_tests::{
    Api, CLUSTER_TOKEN, Cluster, NodeSpec, OwnPostgres, TEST_LEASE, TestDatabase, assert_exception,
    assert_retry_later, body_links, last_segment,
};

use super::BINARY;

/// Poll `check` every 50 ms until it returns `Some`, at most `timeout`.
async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "not {what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `wasmproc_store_up` of a node's `/metrics`: 1 when its store answered
/// the scrape's query, 0 when it did not.
async fn store_up(api: &Api) -> f64 {
    let metrics = api.get("/metrics").await;
    metrics.expect_status(200);
    let text = metrics.text();
    let line = text
        .lines()
        .find(|line| line.starts_with("wasmproc_store_up"))
        .unwrap_or_else(|| panic!("no wasmproc_store_up in\n{text}"));
    line.rsplit(' ')
        .next()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("unreadable: {line}"))
}

/// Job counts by status, straight from the database.
async fn statuses(db: &TestDatabase) -> BTreeMap<String, i64> {
    db.client()
        .await
        .query("SELECT status, count(*) FROM jobs GROUP BY status", &[])
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// The ids of the first page of `/jobs` of a node.
async fn job_page(api: &Api, query: &str) -> Vec<String> {
    api.get_json(&format!("/jobs?{query}")).await["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jobID"].as_str().unwrap().to_owned())
        .collect()
}

/// The name of the node that ran a job: its statusInfo's `node` is
/// `name#instance`. Panics when the statusInfo names no node, or not so.
fn node_of(status_info: &Value) -> String {
    let node = status_info["node"]
        .as_str()
        .unwrap_or_else(|| panic!("no node: {status_info}"));
    let (name, _instance) = node
        .split_once('#')
        .unwrap_or_else(|| panic!("node {node:?} is not name#instance: {status_info}"));
    name.to_owned()
}

/// A cluster of two nodes named `a` and `b`, each serving the API with
/// one job worker, on a new database (kept alive by the handle returned
/// with it): the smallest cluster where one node can be busy and the
/// other idle.
async fn two_single_worker_nodes(a: &str, b: &str) -> (TestDatabase, Cluster) {
    Cluster::on_new_database(BINARY, &[NodeSpec::all(a, 1), NodeSpec::all(b, 1)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_jobs_survive_a_node_killed_mid_run() {
    let (db, cluster) = Cluster::on_new_database(
        BINARY,
        &[
            NodeSpec::all("node-a", 2),
            NodeSpec::all("node-b", 2),
            NodeSpec::all("node-c", 2),
        ],
    )
    .await;
    let cluster = Arc::new(tokio::sync::Mutex::new(cluster));
    let apis: Vec<Api> = {
        let c = cluster.lock().await;
        (0..3).map(|i| Api::new(c.node(i).base())).collect()
    };
    let request = json!({"inputs": {"stringInput": "x", "pause": 0.02}});

    // 1,000 submissions round-robin, 12 at a time; node-b is killed after
    // 400 and restarted a second later. A submission that reaches the dead
    // node fails to connect: only a 201 counts as accepted.
    let accepted = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let b_down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (accepted, next, b_down, request) = (
            accepted.clone(),
            next.clone(),
            b_down.clone(),
            request.clone(),
        );
        let apis: Vec<String> = apis.iter().map(|a| a.base().to_owned()).collect();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n >= 1000 {
                    break;
                }
                // While node-b is down, its share goes to node-a.
                let node = match n % 3 {
                    1 if b_down.load(std::sync::atomic::Ordering::SeqCst) => 0,
                    other => other,
                };
                let sent = client
                    .post(format!("{}/processes/echo/execution", apis[node]))
                    .header("prefer", "respond-async")
                    .json(&request)
                    .send()
                    .await;
                if let Ok(reply) = sent
                    && reply.status().as_u16() == 201
                    && let Some(location) = reply.headers().get("location")
                {
                    let id = last_segment(location.to_str().unwrap());
                    accepted.lock().unwrap().push(id);
                }
            }
        }));
    }
    eventually(Duration::from_secs(60), "400 submissions", || async {
        (next.load(std::sync::atomic::Ordering::SeqCst) >= 400).then_some(())
    })
    .await;
    b_down.store(true, std::sync::atomic::Ordering::SeqCst);
    cluster.lock().await.kill9(1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.lock().await.restart(1);
    let restarted_b = Api::new(cluster.lock().await.node(1).base());
    b_down.store(false, std::sync::atomic::Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let accepted: Vec<String> = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() >= 950,
        "most submissions are accepted: {}",
        accepted.len()
    );

    // Every accepted job ends: the killed node's running jobs come back
    // when their leases expire.
    eventually(Duration::from_secs(180), "every job finished", || async {
        let counts = statuses(&db).await;
        (!counts.contains_key("accepted") && !counts.contains_key("running")).then_some(())
    })
    .await;
    let client = db.client().await;
    // Every 201 has its job; a few more may exist: submissions node-b wrote
    // but was killed before answering (their clients saw no 201).
    let stored: HashSet<String> = client
        .query("SELECT id::text FROM jobs", &[])
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.get(0))
        .collect();
    let lost: Vec<&String> = accepted.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "accepted jobs lost: {lost:?}");
    assert!(
        stored.len() <= 1000,
        "{} jobs from 1000 submissions",
        stored.len()
    );
    let rows = client
        .query(
            "SELECT id::text, status, attempts, (SELECT count(*) FROM results r WHERE r.job_id = j.id) \
             FROM jobs j",
            &[],
        )
        .await
        .unwrap();
    let mut rerun = 0;
    for row in &rows {
        let (id, status, attempts, results): (String, String, i32, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert!((1..=3).contains(&attempts), "{id}: {attempts} attempts");
        match status.as_str() {
            "successful" => assert_eq!(results, 1, "{id}: one result row"),
            "failed" => {
                assert_eq!(results, 0);
                let job = apis[0].job(&id).await;
                assert!(
                    job["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "a failed job says why: {job}"
                );
            }
            other => panic!("{id} ended {other}"),
        }
        if attempts > 1 {
            rerun += 1;
        }
    }
    assert!(
        rerun > 0,
        "the killed node's running jobs were run again elsewhere"
    );
    // A sample of the accepted jobs, through every node.
    let sample: HashSet<&String> = accepted.iter().step_by(37).collect();
    for id in sample {
        for api in [&apis[0], &restarted_b, &apis[2]] {
            let job = api.job(id).await;
            assert!(
                ["successful", "failed"].contains(&job["status"].as_str().unwrap()),
                "{job}"
            );
        }
    }
    // `/jobs` answers the same from every node.
    let a = job_page(&apis[0], "limit=50").await;
    assert_eq!(a.len(), 50);
    assert_eq!(a, job_page(&restarted_b, "limit=50").await);
    assert_eq!(a, job_page(&apis[2], "limit=50").await);
    let failed_a = job_page(&apis[0], "status=failed&processID=echo").await;
    assert_eq!(
        failed_a,
        job_page(&apis[2], "status=failed&processID=echo").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dismissal_on_one_node_stops_the_job_on_another_within_a_second() {
    // Only node-b runs jobs; a and c serve the API.
    let (_db, cluster) = Cluster::on_new_database(
        BINARY,
        &[
            NodeSpec::api("node-a"),
            NodeSpec::all("node-b", 1),
            NodeSpec::api("node-c"),
        ],
    )
    .await;
    let (a, c) = (cluster.node(0), cluster.node(2));
    let long = a.start_echo("x", 30.0).await;
    let running = c
        .wait_for_status(&long, &["running"], Duration::from_secs(20))
        .await;
    assert_eq!(node_of(&running), "node-b", "{running}");
    let dismissed = c.delete(&format!("/jobs/{long}")).await;
    dismissed.expect_status(200);
    assert_eq!(dismissed.json()["status"], "dismissed");
    let started = Instant::now();
    // node-b's only worker is free again: a short job runs at once.
    let short = a
        .execute_async("echo", &json!({"inputs": {"stringInput": "y"}}))
        .await;
    a.wait_for_status(&short, &["successful"], Duration::from_secs(10))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the dismissed job kept its worker"
    );
    assert_exception(&a.get(&format!("/jobs/{long}")).await, 404, None);
    let log = eventually(Duration::from_secs(2), "node-b logs the stop", || async {
        let log = cluster.stderr(1);
        log.contains("dismissed on another node").then_some(log)
    })
    .await;
    assert!(log.contains(&long), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_jobs_submitted_to_a_busy_node_run_on_an_idle_one() {
    // One worker each. node-a first runs short jobs, so it would claim
    // many jobs ahead of its one worker; then a burst of long jobs reaches
    // it. They must not all wait behind its worker while node-b idles.
    let (_db, cluster) = two_single_worker_nodes("node-a", "node-b").await;
    let a = cluster.node(0);
    for i in 0..5 {
        let short = a
            .execute_async("echo", &json!({"inputs": {"stringInput": format!("s{i}")}}))
            .await;
        a.wait_for_status(&short, &["successful"], Duration::from_secs(20))
            .await;
    }
    // Submitted together, so that node-a may claim several at once.
    let submissions: Vec<_> = (0..4)
        .map(|i| {
            let a = a.api().clone();
            tokio::spawn(async move {
                a.execute_async(
                    "echo",
                    &json!({"inputs": {"stringInput": format!("long{i}"), "pause": 2}}),
                )
                .await
            })
        })
        .collect();
    let mut long = Vec::new();
    for submission in submissions {
        long.push(submission.await.unwrap());
    }
    let mut nodes = HashSet::new();
    for id in &long {
        let done = a
            .wait_for_status(id, &["successful"], Duration::from_secs(60))
            .await;
        nodes.insert(node_of(&done));
    }
    assert_eq!(
        nodes,
        HashSet::from(["node-a".to_owned(), "node-b".to_owned()]),
        "both nodes ran some of the long jobs"
    );
}

#[tokio::test]
async fn the_elements_of_a_map_run_on_every_node() {
    // One worker each. A synchronous request to node-a maps a slow echo
    // over six elements: the elements are queued for the cluster, so
    // node-b runs some of them while node-a runs the others.
    let (_db, cluster) = two_single_worker_nodes("node-a", "node-b").await;
    let a = cluster.node(0);
    let request = json!({"inputs": {
        "stringInput": "merged",
        "arrayInput": {
            "process": "echo",
            "inputs": {"stringInput": "element", "pause": 0.5},
            "outputs": {"doubleInput": {}},
            "map": {"input": "doubleInput", "over": [1, 2, 3, 4, 5, 6]}
        }
    }, "outputs": {"arrayInput": {}}});
    let (parent_id, reply) = a.execute_sync("echo", &request).await;
    assert_eq!(reply.json(), json!([1, 2, 3, 4, 5, 6]), "in element order");
    let parent = a.job(&parent_id).await;
    let steps: Vec<String> = body_links(&parent, "item")
        .iter()
        .map(|href| last_segment(href))
        .collect();
    assert_eq!(steps.len(), 6, "{parent}");
    let mut nodes = HashSet::new();
    for step in &steps {
        let step = a.job(step).await;
        assert_eq!(step["status"], "successful", "{step}");
        nodes.insert(node_of(&step));
    }
    assert_eq!(
        nodes,
        HashSet::from(["node-a".to_owned(), "node-b".to_owned()]),
        "both nodes ran some of the elements"
    );
}

/// An application package deploying the hello-world module under `id`.
fn package(id: &str, version: &str) -> Value {
    use base64::Engine as _;
    let wasm = std::fs::read(env!("WASMPROC_GUEST_HELLO_WORLD")).unwrap();
    json!({
        "processDescription": {"process": {
            "id": id, "version": version,
            "inputs": {"name": {"schema": {"type": "string"}}},
            "outputs": {"echo": {"schema": {"type": "string"}}}
        }},
        "executionUnit": {
            "value": base64::engine::general_purpose::STANDARD.encode(wasm),
            "mediaType": "application/wasm"
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_on_one_node_is_served_by_every_node_within_a_second() {
    let (_db, cluster) = two_single_worker_nodes("node-a", "node-c").await;
    let (a, c) = (cluster.node(0), cluster.node(1));
    let auth = format!("Bearer {CLUSTER_TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/ogcapppkg+json"),
    ];
    let body = serde_json::to_vec(&package("greeter", "1.0.0")).unwrap();
    a.send(reqwest::Method::POST, "/processes", &headers, Some(body))
        .await
        .expect_status(201);
    let deployed = Instant::now();
    eventually(Duration::from_secs(1), "node-c serves greeter", || async {
        (c.get("/processes/greeter").await.status == 200).then_some(())
    })
    .await;
    assert!(deployed.elapsed() <= Duration::from_secs(1));
    let (_, reply) = c
        .execute_sync("greeter", &json!({"inputs": {"name": "Ada"}}))
        .await;
    assert_eq!(reply.json(), json!("Hello Ada!"));

    // Replace on a: c shows the new version within a second.
    let body = serde_json::to_vec(&package("greeter", "2.0.0")).unwrap();
    a.send(
        reqwest::Method::PUT,
        "/processes/greeter",
        &headers,
        Some(body),
    )
    .await
    .expect_status(204);
    eventually(
        Duration::from_secs(1),
        "node-c serves version 2",
        || async {
            let reply = c.get("/processes/greeter").await;
            (reply.status == 200 && reply.json()["version"] == "2.0.0").then_some(())
        },
    )
    .await;

    // A duplicate deploy on c is refused: the id is taken cluster-wide.
    let body = serde_json::to_vec(&package("greeter", "3.0.0")).unwrap();
    let duplicate = c
        .send(reqwest::Method::POST, "/processes", &headers, Some(body))
        .await;
    assert_exception(&duplicate, 409, None);

    // Undeploy on a: gone from c within a second.
    a.send(
        reqwest::Method::DELETE,
        "/processes/greeter",
        &[("authorization", auth.as_str())],
        None,
    )
    .await
    .expect_status(204);
    eventually(
        Duration::from_secs(1),
        "greeter gone from node-c",
        || async { (c.get("/processes/greeter").await.status == 404).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_only_node_hands_jobs_to_a_worker_only_node() {
    let (_db, cluster) = Cluster::on_new_database(
        BINARY,
        &[NodeSpec::api("front"), NodeSpec::worker("back", 2)],
    )
    .await;
    let front = cluster.node(0);
    // hello-world allows sync and async; the API-only node cannot run it
    // itself, so without a preference it runs async (Part 1 negotiation).
    let reply = front
        .execute("hello-world", &json!({"inputs": {"name": "Joe"}}))
        .await;
    reply.expect_status(201);
    assert!(
        reply.header("preference-applied").is_none(),
        "no preference was given, none applied"
    );
    let id = last_segment(&reply.header("location").unwrap());
    let done = front
        .wait_for_status(&id, &["successful"], Duration::from_secs(20))
        .await;
    assert_eq!(node_of(&done), "back", "{done}");
    let results = front.get_json(&format!("/jobs/{id}/results")).await;
    assert_eq!(results["echo"], "Hello Joe!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_answers_503_meanwhile_and_loses_nothing_acknowledged() {
    let (pg, admin_url) = OwnPostgres::start();
    let db_url = {
        let mut url = reqwest::Url::parse(&admin_url).unwrap();
        url.set_path("/postgres");
        url.to_string()
    };
    let cluster = Cluster::start_with_timeout(
        BINARY,
        &db_url,
        &[NodeSpec::all("node-a", 2), NodeSpec::all("node-b", 2)],
        "1s",
    );
    let (a, b) = (cluster.node(0), cluster.node(1));
    let request = json!({"inputs": {"stringInput": "x", "pause": 0.5}});
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let node = if i % 2 == 0 { a } else { b };
        acknowledged.push(node.execute_async("echo", &request).await);
    }

    // Up: both nodes ready, and say on what.
    for api in [a, b] {
        let ready = api.get("/readyz").await;
        ready.expect_status(200);
        assert_eq!(
            ready.json(),
            json!({"status": "ready", "store": "postgres"})
        );
        assert_eq!(store_up(api).await, 1.0);
    }

    pg.stop();
    // While it is down: 503 with Retry-After, within the store timeout,
    // never a 500 or a hang.
    for api in [a, b] {
        let started = Instant::now();
        let status = api.get(&format!("/jobs/{}", acknowledged[0])).await;
        assert_retry_later(&status, 503);
        assert!(started.elapsed() < Duration::from_secs(10));
        let submit = api.execute_async_reply("echo", &request).await;
        assert_retry_later(&submit, 503);
        let list = api.get("/jobs").await;
        assert_exception(&list, 503, None);
        // A load balancer takes the node out (not ready, the same 503),
        // an orchestrator leaves it running (alive), and the metrics say
        // why.
        let ready = api.get("/readyz").await;
        let exception = assert_retry_later(&ready, 503);
        assert_eq!(
            exception["type"], "urn:wasmproc:error:store-unavailable",
            "{exception}"
        );
        api.get("/livez").await.expect_status(200);
        assert_eq!(store_up(api).await, 0.0);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.start_again();
    // Ready again once PostgreSQL answers.
    for api in [a, b] {
        eventually(
            Duration::from_secs(30),
            "ready after the restart",
            || async { (api.get("/readyz").await.status == 200).then_some(()) },
        )
        .await;
        assert_eq!(store_up(api).await, 1.0);
    }

    // Back: the nodes reconnect, and every acknowledged job completes.
    let deadline = Instant::now() + TEST_LEASE * 30;
    for id in &acknowledged {
        loop {
            let reply = a.get(&format!("/jobs/{id}")).await;
            if reply.status == 200 && reply.json()["status"] == "successful" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} did not succeed after the restart: {} {}\nnode-a:\n{}\nnode-b:\n{}",
                reply.status,
                reply.text(),
                cluster.stderr(0),
                cluster.stderr(1)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let after = b
        .execute_async("echo", &json!({"inputs": {"stringInput": "after"}}))
        .await;
    a.wait_for_status(&after, &["successful"], Duration::from_secs(20))
        .await;
    for i in 0..cluster.len() {
        assert!(
            !cluster.stderr(i).contains("panicked"),
            "node {} panicked:\n{}",
            cluster.name(i),
            cluster.stderr(i)
        );
    }
}
