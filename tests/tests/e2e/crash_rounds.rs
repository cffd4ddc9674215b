//! Crash rounds: kill -9 the `wasmproc-under-test` child at a random moment
//! of a mixed load, several times over one data directory.
//!
//! Each round starts the server on the shared data directory, checks what
//! the previous round left (below), then runs concurrent clients for a
//! random time — sync hello-world, async hello-world, async echo with a
//! pause, async jobs of deployed processes, dismissals of their own async
//! jobs — while one deployer deploys, replaces and undeploys three
//! processes (hello-world's and echo's modules as application packages),
//! and SIGKILLs the server in the middle of it.
//!
//! After every restart it asserts:
//! - the store opens (the server starts) and the log has no panic and no
//!   "cannot restore deployed process", and never contains the admin token;
//! - every process whose deploy/replace/undeploy was answered before the
//!   kill is in exactly that state; one whose request was unanswered is in
//!   the state before or after it; a listed process describes itself (valid
//!   `process.yaml`, the version deployed) and executes correctly — never
//!   half-written;
//! - recovery leaves no job `accepted` or `running`: all reach a final
//!   state within a bound;
//! - every async job answered 201 still exists (lost = 0) unless its
//!   dismissal was answered 200, and is `successful` with the right
//!   results, or `failed` with "interrupted by server restart";
//! - a job's final state never changes in later rounds;
//! - a dismissal answered 200 is not undone by the crash.
//!
//! Problems are printed as they are found, labelled (`LOST`, `STUCK`,
//! `UNDONE-DEPLOY`, `UNDONE-UNDEPLOY`, `UNDONE-REPLACE`,
//! `UNDONE-DISMISSAL`, `FAILED-OTHER`, `FINAL-CHANGED`, …); the rounds go
//! on (taking what the server kept as the new state), and the test fails
//! at the end listing all of them.
//!
//! Sync jobs answered 200 are counted (found after the crash or not) but not
//! asserted on: a sync job's record is not flushed before its response.
//!
//! A second test sends SIGTERM instead: the server stops accepting
//! connections, lets a job that ends within `shutdown_grace` finish, stops
//! a longer one and re-queues it, exits 0, and after a restart runs the
//! re-queued and the queued jobs to success.
//!
//! The random choices come from a seed printed first (`WASMPROC_SEED=N`
//! replays the same choices; thread timing still varies). Short by default
//! (3 rounds of at most 2.5 s of load); `WASMPROC_LONG=1` runs 20 rounds of
//! up to 6 s. Prints one `RELIABILITY-SUMMARY scenario=crash_rounds …` line.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use wasmproc_tests::{
    Api, ChildConfig, POLL_INTERVAL, REL_MONITOR, assert_retry_later, assert_valid, last_segment,
    link_header_href, output_value,
};

use super::BINARY;
const HELLO_WASM: &str = env!("WASMPROC_GUEST_HELLO_WORLD");
const ECHO_WASM: &str = env!("WASMPROC_GUEST_ECHO");
const TOKEN: &str = "crash-t0ken";
/// The ids the deployer works on.
const SLOTS: [&str; 3] = ["crash-a", "crash-b", "crash-c"];
/// The message of a job failed by start-up recovery.
const INTERRUPTED: &str = "interrupted by server restart";

struct Scale {
    rounds: usize,
    /// Load runs for a random time in `min_load..max_load` before the kill.
    min_load: Duration,
    max_load: Duration,
    /// Concurrent job clients (the deployer comes on top).
    clients: usize,
    /// How long recovery may take to bring every job to a final state.
    recovery: Duration,
}

fn scale() -> Scale {
    if wasmproc_tests::long_mode() {
        Scale {
            rounds: 20,
            min_load: Duration::from_millis(300),
            max_load: Duration::from_secs(6),
            clients: 4,
            recovery: Duration::from_secs(180),
        }
    } else {
        Scale {
            rounds: 3,
            min_load: Duration::from_millis(300),
            max_load: Duration::from_millis(2500),
            clients: 3,
            recovery: Duration::from_secs(60),
        }
    }
}

/// xorshift64*: small, seedable, good enough to pick operations.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        low + (high - low).mul_f64(self.unit())
    }
    /// An independent generator for another task.
    fn fork(&mut self) -> Rng {
        Rng::new(self.next())
    }
}

fn seed() -> u64 {
    match std::env::var("WASMPROC_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("WASMPROC_SEED={text:?}: {e}")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

/// A deployed version of a slot: hello-world's or echo's module, with
/// version `1.0.N` or `2.0.N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Hello(u32),
    Echo(u32),
}

impl Version {
    fn string(self) -> String {
        match self {
            Version::Hello(n) => format!("1.0.{n}"),
            Version::Echo(n) => format!("2.0.{n}"),
        }
    }

    fn parse(text: &str) -> Option<Version> {
        let (major, n) = text.rsplit_once('.')?;
        let n = n.parse().ok()?;
        match major {
            "1.0" => Some(Version::Hello(n)),
            "2.0" => Some(Version::Echo(n)),
            _ => None,
        }
    }

    /// An execute request for this version and what its one output must be
    /// (output id, value).
    fn request(self, tag: &str) -> (Value, String, Value) {
        match self {
            Version::Hello(_) => hello_request(tag),
            Version::Echo(_) => echo_request(tag, None),
        }
    }
}

fn hello_request(name: &str) -> (Value, String, Value) {
    (
        json!({ "inputs": { "name": name } }),
        "echo".into(),
        json!(format!("Hello {name}!")),
    )
}

fn echo_request(text: &str, pause: Option<f64>) -> (Value, String, Value) {
    let mut inputs = json!({ "stringInput": text });
    if let Some(pause) = pause {
        inputs["pause"] = json!(pause);
    }
    (
        json!({ "inputs": inputs }),
        "stringInput".into(),
        json!(text),
    )
}

/// An async job answered 201.
#[derive(Debug, Clone)]
struct AckedJob {
    id: String,
    process: String,
    round: usize,
    /// Output id and value of its results when it succeeds.
    output: String,
    value: Value,
}

/// What the clients were told, and what the checks found.
#[derive(Default)]
struct Ledger {
    acked: Vec<AckedJob>,
    /// Dismissals answered 200.
    dismissed: HashSet<String>,
    /// Dismissals sent but not answered (the job may or may not exist).
    dismiss_unanswered: HashSet<String>,
    /// Sync jobs answered 200 with the right output: (id, round).
    sync_ok: Vec<(String, usize)>,
    /// Requests the kill left unanswered.
    unanswered: usize,
    /// Async submissions answered 503 (queue full).
    rejected_503: usize,
    /// Submissions to a deployed process refused because the deployer
    /// changed it meanwhile (400/404).
    raced: usize,
    /// Confirmed state of each slot.
    processes: BTreeMap<String, Option<Version>>,
    /// A deploy/replace/undeploy sent but not answered: (slot, target).
    in_flight: Option<(String, Option<Version>)>,
    /// Deploy operations answered with success.
    deploys_acked: usize,
    next_version: u32,
    /// The final status seen for each job once it was checked.
    final_seen: HashMap<String, String>,
    problems: Vec<String>,
}

/// Figures over all rounds.
#[derive(Debug, Default)]
struct Figures {
    completed: usize,
    interrupted: usize,
    lost: usize,
    /// Ended otherwise (a problem).
    failed_other: usize,
    /// Absent, but their dismissal was sent (and not answered) before the kill.
    gone_after_unanswered_dismissal: usize,
    sync_found: usize,
    sync_missing: usize,
    sync_not_successful: usize,
    undone_dismissals: usize,
}

type Shared = Arc<Mutex<Ledger>>;

fn lock(ledger: &Shared) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A reply, or why there was none (the server was killed).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// An HTTP client that reports a dead server as an `Err` instead of
/// panicking (unlike [`Api`]).
#[derive(Clone)]
struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: wasmproc_tests::http_client(Duration::from_secs(30)),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, String> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .headers(map);
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| e.to_string())?.to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    async fn post_json(
        &self,
        path: &str,
        body: &Value,
        extra: &[(&str, &str)],
    ) -> Result<Answer, String> {
        let mut headers = vec![("content-type", "application/json")];
        headers.extend_from_slice(extra);
        self.send(
            Method::POST,
            path,
            &headers,
            Some(serde_json::to_vec(body).expect("JSON body")),
        )
        .await
    }
}

/// The descriptions and modules the deployer uses.
struct Modules {
    hello: (Value, String),
    echo: (Value, String),
}

impl Modules {
    async fn load(api: &Api) -> Self {
        let base64 = |path: &str| {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
            base64::engine::general_purpose::STANDARD.encode(bytes)
        };
        let describe = |mut description: Value| {
            let fields = description.as_object_mut().expect("description object");
            fields.remove("links");
            fields.remove("mutable");
            description
        };
        Self {
            hello: (
                describe(api.get_json("/processes/hello-world").await),
                base64(HELLO_WASM),
            ),
            echo: (
                describe(api.get_json("/processes/echo").await),
                base64(ECHO_WASM),
            ),
        }
    }

    /// The application package of `version` as process `id`.
    fn package(&self, id: &str, version: Version) -> Vec<u8> {
        let (description, module) = match version {
            Version::Hello(_) => &self.hello,
            Version::Echo(_) => &self.echo,
        };
        let mut description = description.clone();
        description["id"] = json!(id);
        description["version"] = json!(version.string());
        serde_json::to_vec(&json!({
            "processDescription": { "process": description },
            "executionUnit": { "value": module, "mediaType": "application/wasm" },
        }))
        .expect("package JSON")
    }
}

/// One job client: random sync/async executions and dismissals until
/// `stop`, at most `max_ops` operations.
async fn job_client(
    http: Http,
    ledger: Shared,
    mut rng: Rng,
    stop: Arc<AtomicBool>,
    round: usize,
    client: usize,
) {
    let mut mine: Vec<String> = Vec::new();
    for op in 0..20_000 {
        let pause = rng.between(Duration::ZERO, Duration::from_millis(20));
        tokio::time::sleep(pause).await;
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let tag = format!("r{round}c{client}o{op}");
        let pick = rng.below(100);
        if pick < 30 {
            // Sync hello-world.
            let (request, _, value) = hello_request(&tag);
            match http
                .post_json("/processes/hello-world/execution", &request, &[])
                .await
            {
                Ok(a) if a.status == 200 && a.json() == Some(value.clone()) => {
                    let monitor = a
                        .headers
                        .get_all("link")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .find_map(|v| link_header_href(v, REL_MONITOR));
                    let mut ledger = lock(&ledger);
                    match monitor {
                        Some(href) => ledger.sync_ok.push((last_segment(&href), round)),
                        None => ledger
                            .problems
                            .push(format!("sync 200 without a monitor link: {:?}", a.headers)),
                    }
                }
                Ok(a) => lock(&ledger).problems.push(format!(
                    "sync hello-world {tag}: {} {}",
                    a.status,
                    a.text()
                )),
                Err(_) => lock(&ledger).unanswered += 1,
            }
        } else if pick < 85 {
            // Async: hello-world, echo with a pause, or a deployed process.
            let (process, (request, output, value)) = if pick < 60 {
                ("hello-world".to_owned(), hello_request(&tag))
            } else if pick < 75 {
                let pause = 0.05 + rng.unit() * 0.75;
                ("echo".to_owned(), echo_request(&tag, Some(pause)))
            } else {
                let present: Vec<(String, Version)> = lock(&ledger)
                    .processes
                    .iter()
                    .filter_map(|(id, v)| v.map(|v| (id.clone(), v)))
                    .collect();
                if present.is_empty() {
                    continue;
                }
                let (id, version) = present[rng.below(present.len() as u64) as usize].clone();
                (id, version.request(&tag))
            };
            let answer = http
                .post_json(
                    &format!("/processes/{process}/execution"),
                    &request,
                    &[("prefer", "respond-async")],
                )
                .await;
            let deployed = SLOTS.contains(&process.as_str());
            let mut ledger = lock(&ledger);
            match answer {
                Ok(a) if a.status == 201 => match a.header("location") {
                    Some(location) => {
                        let id = last_segment(&location);
                        mine.push(id.clone());
                        ledger.acked.push(AckedJob {
                            id,
                            process,
                            round,
                            output,
                            value,
                        });
                    }
                    None => ledger
                        .problems
                        .push(format!("201 without Location: {}", a.text())),
                },
                Ok(a) if a.status == 503 => ledger.rejected_503 += 1,
                Ok(a) if deployed && (a.status == 400 || a.status == 404) => ledger.raced += 1,
                Ok(a) => ledger.problems.push(format!(
                    "async {process} {tag}: {} {}",
                    a.status,
                    a.text()
                )),
                Err(_) => ledger.unanswered += 1,
            }
        } else {
            // Dismiss one of this client's own async jobs (so no other
            // client dismisses it at the same time).
            let Some(index) = (!mine.is_empty()).then(|| rng.below(mine.len() as u64) as usize)
            else {
                continue;
            };
            let id = mine.swap_remove(index);
            let answer = http
                .send(Method::DELETE, &format!("/jobs/{id}"), &[], None)
                .await;
            let mut ledger = lock(&ledger);
            match answer {
                Ok(a) if a.status == 200 => {
                    ledger.dismissed.insert(id);
                }
                Ok(a) => ledger.problems.push(format!(
                    "dismissing job {id} (answered 201, not dismissed before): {} {}",
                    a.status,
                    a.text()
                )),
                Err(_) => {
                    ledger.unanswered += 1;
                    ledger.dismiss_unanswered.insert(id);
                }
            }
        }
    }
}

/// The deployer: deploy, replace or undeploy one slot at a time, until
/// `stop` or the first unanswered request.
async fn deployer(
    http: Http,
    ledger: Shared,
    modules: Arc<Modules>,
    mut rng: Rng,
    stop: Arc<AtomicBool>,
) {
    let auth = format!("Bearer {TOKEN}");
    for _ in 0..2_000 {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let slot = SLOTS[rng.below(SLOTS.len() as u64) as usize];
        let (current, n) = {
            let mut ledger = lock(&ledger);
            ledger.next_version += 1;
            (
                ledger.processes.get(slot).copied().flatten(),
                ledger.next_version,
            )
        };
        let fresh = if rng.below(2) == 0 {
            Version::Hello(n)
        } else {
            Version::Echo(n)
        };
        let (method, path, target, expected) = match current {
            None => (Method::POST, "/processes".to_owned(), Some(fresh), 201),
            Some(_) if rng.below(10) < 7 => {
                (Method::PUT, format!("/processes/{slot}"), Some(fresh), 204)
            }
            Some(_) => (Method::DELETE, format!("/processes/{slot}"), None, 204),
        };
        let body = target.map(|v| modules.package(slot, v));
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/ogcapppkg+json"));
        }
        lock(&ledger).in_flight = Some((slot.to_owned(), target));
        let answer = http.send(method.clone(), &path, &headers, body).await;
        let answered = {
            let mut ledger = lock(&ledger);
            match answer {
                Ok(a) if a.status == expected => {
                    ledger.processes.insert(slot.to_owned(), target);
                    ledger.in_flight = None;
                    ledger.deploys_acked += 1;
                }
                Ok(a) => {
                    ledger.in_flight = None;
                    ledger.problems.push(format!(
                        "{method} {path} ({slot} was {current:?}): expected {expected}, got {} {}",
                        a.status,
                        a.text()
                    ));
                }
                Err(_) => ledger.unanswered += 1,
            }
            ledger.in_flight.is_none()
        };
        if !answered {
            // Killed mid-request: the slot may be in either state.
            break;
        }
        let pause = rng.between(Duration::from_millis(20), Duration::from_millis(150));
        tokio::time::sleep(pause).await;
    }
}

/// The value of output `id` in a results document (plain or qualified).
fn output_of(results: &Value, id: &str) -> Option<Value> {
    results.get(id).map(|_| output_value(results, id))
}

/// Every job the server lists (all pages), by id.
async fn all_jobs(api: &Api) -> HashMap<String, Value> {
    const PAGE: usize = 10_000;
    let mut jobs = HashMap::new();
    for page in 0..100 {
        let list = api
            .get_json(&format!("/jobs?limit={PAGE}&offset={}", page * PAGE))
            .await;
        let items = list["jobs"].as_array().expect("jobs array");
        for job in items {
            let id = job["jobID"].as_str().expect("jobID").to_owned();
            jobs.insert(id, job.clone());
        }
        if items.len() < PAGE {
            return jobs;
        }
    }
    panic!("more than 100 pages of jobs");
}

/// Poll the job list until no job is `accepted` or `running` (at most
/// `timeout`); returns the list, or the stuck jobs.
async fn wait_until_settled(
    api: &Api,
    timeout: Duration,
) -> Result<HashMap<String, Value>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let jobs = all_jobs(api).await;
        let pending: Vec<&Value> = jobs
            .values()
            .filter(|j| j["status"] == "accepted" || j["status"] == "running")
            .collect();
        if pending.is_empty() {
            return Ok(jobs);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "STUCK: {} jobs still accepted/running {timeout:?} after the restart, e.g. {:?}",
                pending.len(),
                pending.iter().take(5).collect::<Vec<_>>()
            ));
        }
        tokio::time::sleep(POLL_INTERVAL * 4).await;
    }
}

/// The checks after a restart (see the module documentation). Problems
/// go to the ledger.
async fn check_after_restart(
    api: &Api,
    ledger: &Shared,
    figures: &mut Figures,
    round: usize,
    recovery: Duration,
) {
    // Processes: answered operations stuck, unanswered ones all or nothing.
    let listed: HashSet<String> = api.get_json("/processes?limit=10000").await["processes"]
        .as_array()
        .expect("processes array")
        .iter()
        .filter_map(|p| p["id"].as_str().map(str::to_owned))
        .collect();
    let (confirmed, in_flight) = {
        let ledger = lock(ledger);
        (ledger.processes.clone(), ledger.in_flight.clone())
    };
    let mut problems = Vec::new();
    let mut observed_states = BTreeMap::new();
    for slot in SLOTS {
        let before = confirmed.get(slot).copied().flatten();
        let mut allowed = vec![before];
        if let Some((id, target)) = &in_flight
            && id == slot
        {
            allowed.push(*target);
        }
        let reply = api.get(&format!("/processes/{slot}")).await;
        let observed = match reply.status {
            200 => {
                let description = reply.json();
                assert_valid("process.yaml", &description);
                let version = description["version"].as_str().and_then(Version::parse);
                let Some(version) = version else {
                    problems.push(format!("{slot}: unexpected description {description}"));
                    continue;
                };
                let (request, output, value) = version.request(&format!("check-{round}-{slot}"));
                let run = api
                    .post_json(
                        &format!("/processes/{slot}/execution"),
                        &json!({ "inputs": request["inputs"], "response": "document" }),
                        &[],
                    )
                    .await;
                let got = (run.status == 200)
                    .then(|| serde_json::from_slice::<Value>(&run.body).ok())
                    .flatten()
                    .and_then(|doc| output_of(&doc, &output));
                if got.as_ref() != Some(&value) {
                    problems.push(format!(
                        "{slot} ({version:?}) listed but does not execute: {} {}",
                        run.status,
                        run.text()
                    ));
                }
                Some(version)
            }
            404 => None,
            other => {
                problems.push(format!("GET /processes/{slot}: {other} {}", reply.text()));
                continue;
            }
        };
        if listed.contains(slot) != observed.is_some() {
            problems.push(format!(
                "{slot}: GET says {observed:?} but the list {} it",
                if listed.contains(slot) {
                    "has"
                } else {
                    "lacks"
                }
            ));
        }
        if !allowed.contains(&observed) {
            // Answered before the kill, but not what the store kept.
            let label = match (before, observed) {
                (Some(_), None) => "UNDONE-DEPLOY (answered deploy/replace lost)",
                (None, Some(_)) => "UNDONE-UNDEPLOY (answered undeploy undone)",
                _ => "UNDONE-REPLACE (answered replace undone)",
            };
            problems.push(format!(
                "{label}: {slot} is {observed:?} after the crash, but the last answered operation \
                 left it {before:?} (unanswered operation: {in_flight:?})"
            ));
        }
        observed_states.insert(slot.to_owned(), observed);
    }

    // Jobs: recovery settles everything, nothing answered 201 is lost.
    let jobs = match wait_until_settled(api, recovery).await {
        Ok(jobs) => jobs,
        Err(stuck) => {
            problems.push(stuck);
            lock(ledger).problems.append(&mut problems);
            return;
        }
    };
    let (acked, dismissed, dismiss_unanswered, sync_ok, final_seen) = {
        let ledger = lock(ledger);
        (
            ledger.acked.clone(),
            ledger.dismissed.clone(),
            ledger.dismiss_unanswered.clone(),
            ledger.sync_ok.clone(),
            ledger.final_seen.clone(),
        )
    };
    let mut new_finals = Vec::new();
    let mut undone = Vec::new();
    figures.completed = 0;
    figures.interrupted = 0;
    figures.lost = 0;
    figures.gone_after_unanswered_dismissal = 0;
    figures.failed_other = 0;
    for job in &acked {
        let found = jobs.get(&job.id);
        if dismissed.contains(&job.id) {
            let Some(found) = found else { continue };
            // Reported once; from here on it is checked like any job.
            undone.push(job.id.clone());
            figures.undone_dismissals += 1;
            problems.push(format!(
                "UNDONE-DISMISSAL: job {} (round {}): its dismissal was answered 200 before \
                 the crash, but it is back: {found}",
                job.id, job.round
            ));
        }
        let Some(found) = found else {
            if dismiss_unanswered.contains(&job.id) {
                figures.gone_after_unanswered_dismissal += 1;
                continue;
            }
            let direct = api.get(&format!("/jobs/{}", job.id)).await;
            figures.lost += 1;
            problems.push(format!(
                "LOST: job {} ({} in round {}) was answered 201 but is gone after the crash: \
                 GET → {} {}",
                job.id,
                job.process,
                job.round,
                direct.status,
                direct.text()
            ));
            continue;
        };
        let status = found["status"].as_str().unwrap_or_default().to_owned();
        let message = found["message"].as_str().unwrap_or_default();
        match status.as_str() {
            "successful" => {
                figures.completed += 1;
                if !final_seen.contains_key(&job.id) {
                    let results = api.get(&format!("/jobs/{}/results", job.id)).await;
                    let value = (results.status == 200)
                        .then(|| serde_json::from_slice::<Value>(&results.body).ok())
                        .flatten()
                        .and_then(|doc| output_of(&doc, &job.output));
                    if value.as_ref() != Some(&job.value) {
                        problems.push(format!(
                            "results of successful job {} ({}): {} {}, expected {} = {}",
                            job.id,
                            job.process,
                            results.status,
                            results.text(),
                            job.output,
                            job.value
                        ));
                    }
                }
            }
            "failed" if message.contains(INTERRUPTED) => figures.interrupted += 1,
            _ => {
                figures.failed_other += 1;
                problems.push(format!(
                    "FAILED-OTHER: job {} ({} in round {}) ended {status}: {found}",
                    job.id, job.process, job.round
                ));
            }
        }
        match final_seen.get(&job.id) {
            Some(before) if before != &status => problems.push(format!(
                "FINAL-CHANGED: job {} was {before} after an earlier restart, now {status}: {found}",
                job.id
            )),
            Some(_) => {}
            None => new_finals.push((job.id.clone(), status)),
        }
    }
    figures.sync_found = 0;
    figures.sync_missing = 0;
    figures.sync_not_successful = 0;
    for (id, _) in &sync_ok {
        match jobs.get(id) {
            Some(job) if job["status"] == "successful" => figures.sync_found += 1,
            Some(_) => figures.sync_not_successful += 1,
            None => figures.sync_missing += 1,
        }
    }

    let mut ledger = lock(ledger);
    for (slot, state) in observed_states {
        ledger.processes.insert(slot, state);
    }
    ledger.in_flight = None;
    ledger.final_seen.extend(new_finals);
    for id in undone {
        ledger.dismissed.remove(&id);
    }
    ledger.problems.append(&mut problems);
}

/// New lines of the server's stderr since byte `from` that show a panic,
/// a process that could not be restored, or the admin token (which every
/// deploy of the run sends and which must never be logged).
fn log_problems(stderr: &Path, from: usize) -> Vec<String> {
    let text = std::fs::read_to_string(stderr).unwrap_or_default();
    text.get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("panicked") || l.contains("cannot restore") || l.contains(TOKEN))
        .map(|l| format!("server log: {l}"))
        .collect()
}

fn tail(path: &Path, bytes: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(bytes);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_rounds_under_mixed_load_lose_nothing_answered() {
    let scale = scale();
    let seed = seed();
    println!(
        "crash_rounds: seed={seed} rounds={} (replay the choices with WASMPROC_SEED={seed})",
        scale.rounds
    );
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = ChildConfig::write(
        dir.path(),
        &format!("\n[execution]\nmax_concurrent_jobs = 2\n\n[auth]\nadmin_token = {TOKEN:?}\n"),
    );
    let stderr = config.stderr();
    let ledger: Shared = Arc::new(Mutex::new(Ledger::default()));
    let mut figures = Figures::default();
    let mut modules = None;
    let started = Instant::now();
    let mut peak_rss = 0;
    let mut all_problems: Vec<String> = Vec::new();

    for round in 0..=scale.rounds {
        let log_start = std::fs::metadata(stderr).map_or(0, |m| m.len() as usize);
        let child = config.spawn(BINARY);
        if round > 0 {
            check_after_restart(&child, &ledger, &mut figures, round, scale.recovery).await;
        }
        {
            let mut ledger = lock(&ledger);
            ledger.problems.extend(log_problems(stderr, log_start));
            // Report and keep going, so one run shows every kind of problem.
            for problem in ledger.problems.drain(..) {
                println!("crash_rounds: restart {round}: PROBLEM {problem}");
                all_problems.push(format!("restart {round}: {problem}"));
            }
        }
        peak_rss = peak_rss.max(child.peak_rss_kib());
        if round == scale.rounds {
            break;
        }
        let modules = match &modules {
            Some(modules) => Arc::clone(modules),
            None => {
                let loaded = Arc::new(Modules::load(&child).await);
                modules = Some(Arc::clone(&loaded));
                loaded
            }
        };

        let http = Http::new(child.base());
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for client in 0..scale.clients {
            tasks.push(tokio::spawn(job_client(
                http.clone(),
                ledger.clone(),
                rng.fork(),
                stop.clone(),
                round,
                client,
            )));
        }
        tasks.push(tokio::spawn(deployer(
            http.clone(),
            ledger.clone(),
            modules,
            rng.fork(),
            stop.clone(),
        )));
        let load = rng.between(scale.min_load, scale.max_load);
        tokio::time::sleep(load).await;
        peak_rss = peak_rss.max(child.peak_rss_kib());
        child.kill9();
        stop.store(true, Ordering::SeqCst);
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("a load task did not stop after the kill")
                .expect("load task");
        }
        let ledger = lock(&ledger);
        println!(
            "crash_rounds: round {round}: killed after {:.2} s; so far {} async jobs answered 201, \
             {} sync 200, {} dismissed, {} deploy operations answered, {} unanswered",
            load.as_secs_f64(),
            ledger.acked.len(),
            ledger.sync_ok.len(),
            ledger.dismissed.len(),
            ledger.deploys_acked,
            ledger.unanswered
        );
    }

    let ledger = lock(&ledger);
    // Answered 201 and not dismissed (an undone dismissal counts as not).
    let submitted = ledger.acked.len() - ledger.dismissed.len();
    println!(
        "RELIABILITY-SUMMARY scenario=crash_rounds seed={seed} rounds={} submitted={submitted} \
         completed={} failed_with_reason={} failed_other={} lost={} dismissed={} \
         undone_dismissals={} rejected_503={} deploy_ops_acked={} sync_ok={} \
         sync_found_successful={} sync_missing={} sync_other={} unanswered={} \
         problems={} peak_rss_mib={} total_s={:.1}",
        scale.rounds,
        figures.completed,
        figures.interrupted,
        figures.failed_other,
        figures.lost,
        ledger.dismissed.len(),
        figures.undone_dismissals,
        ledger.rejected_503,
        ledger.deploys_acked,
        ledger.sync_ok.len(),
        figures.sync_found,
        figures.sync_missing,
        figures.sync_not_successful,
        ledger.unanswered,
        all_problems.len(),
        peak_rss / 1024,
        started.elapsed().as_secs_f64(),
    );
    assert!(
        all_problems.is_empty(),
        "seed {seed}: {} problems:\n{}\nserver stderr (tail):\n{}",
        all_problems.len(),
        all_problems.join("\n"),
        tail(stderr, 4000)
    );
    assert_eq!(figures.lost, 0, "jobs answered 201 were lost");
    assert_eq!(
        figures.completed + figures.interrupted + figures.gone_after_unanswered_dismissal,
        submitted,
        "every job answered 201 and not dismissed is successful or interrupted"
    );
}

/// SIGTERM: the server stops accepting connections at once, lets a job
/// that ends within `shutdown_grace` finish, stops a longer one and puts it
/// back in the queue, leaves queued jobs queued, and exits 0; after a
/// restart the re-queued and queued jobs run to success. Sync requests
/// share the grace: one whose job ends within it gets its 200, one whose
/// job outlasts it gets 503 with Retry-After, not a cut connection and
/// not a shutdown kept waiting past the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_short_jobs_requeues_long_ones_and_stops_accepting() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = ChildConfig::write(
        dir.path(),
        "\n[execution]\nmax_concurrent_jobs = 4\nshutdown_grace = \"3s\"\n",
    );
    let mut child = config.spawn(BINARY);
    let echo =
        |text: &str, pause: f64| json!({ "inputs": { "stringInput": text, "pause": pause } });
    // Four workers: `short` and `sync short` end within the grace, `long`
    // and `sync long` do not; two wait.
    let short = child.execute_async("echo", &echo("short", 1.0)).await;
    let long = child.execute_async("echo", &echo("long", 6.0)).await;
    let sync = |text: &'static str, pause: f64| {
        let client = Api::new(child.base());
        tokio::spawn(async move { client.execute("echo", &echo(text, pause)).await })
    };
    let sync_short = sync("sync short", 1.0);
    let sync_long = sync("sync long", 8.0);
    for id in [&short, &long] {
        child
            .wait_for_status(id, &["running"], Duration::from_secs(30))
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.get_json("/jobs?status=running&limit=10").await["jobs"]
        .as_array()
        .map_or(0, Vec::len)
        < 4
    {
        assert!(
            Instant::now() < deadline,
            "the two sync jobs were not running within 30 s"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let queued = [
        child.execute_async("echo", &echo("queued 1", 0.1)).await,
        child.execute_async("echo", &echo("queued 2", 0.1)).await,
    ];
    child.sigterm();

    // While it waits for `long` (up to the 3 s grace), it takes no new
    // connection: poll (at most 2.5 s) until a fresh client is refused,
    // then check the server had not exited yet.
    let deadline = Instant::now() + Duration::from_millis(2500);
    let mut late = Vec::new();
    let refused = loop {
        let fresh = Http::new(child.base());
        let answer = fresh
            .post_json(
                "/processes/echo/execution",
                &echo("after SIGTERM", 0.0),
                &[("prefer", "respond-async")],
            )
            .await;
        match answer {
            Err(_) => break true,
            Ok(a) if a.status == 201 => {
                // Accepted in the instant before the signal was handled: it
                // must then be kept like any other.
                late.extend(a.header("location").map(|l| last_segment(&l)));
            }
            Ok(_) => {}
        }
        if Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        refused,
        "the server still accepted connections 2.5 s after SIGTERM"
    );
    assert!(
        child.exited().is_none(),
        "the server exited before the grace period, without waiting for the short job"
    );
    let status = tokio::task::spawn_blocking(move || child.wait_exit(Duration::from_secs(60)))
        .await
        .expect("waiting for the server");
    assert!(status.success(), "graceful exit status {status}");
    let answered = sync_short.await.expect("sync short request");
    answered.expect_status(200);
    assert!(
        answered.text().contains("sync short"),
        "the sync job within the grace answered its result: {}",
        answered.text()
    );
    let cut = sync_long.await.expect("sync long request");
    let body = assert_retry_later(&cut, 503);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("send the request again")),
        "the sync job stopped at the grace says to send it again: {body}"
    );

    let child = config.spawn(BINARY);
    let cut = child.job(&long).await;
    assert!(
        cut["status"] == "accepted" || cut["status"] == "running",
        "the long job was stopped at the grace and queued again: {cut}"
    );
    let after = child.job(&short).await;
    assert_eq!(
        after["status"], "successful",
        "the short job finished within the grace: {after}"
    );
    // Re-queued and queued jobs run again after the restart.
    let mut expected = vec![(long, "long"), (queued[0].clone(), "queued 1")];
    expected.push((queued[1].clone(), "queued 2"));
    expected.extend(late.into_iter().map(|id| (id, "after SIGTERM")));
    for (id, text) in &expected {
        let status = child
            .wait_for_status(id, &["successful"], Duration::from_secs(60))
            .await;
        let results = child.get_json(&format!("/jobs/{id}/results")).await;
        assert_eq!(
            output_value(&results, "stringInput"),
            json!(text),
            "{status}"
        );
    }
    // Nothing is left pending.
    let jobs = wait_until_settled(&child, Duration::from_secs(30))
        .await
        .unwrap_or_else(|stuck| panic!("{stuck}"));
    assert!(
        jobs.values().all(|j| j["status"] == "successful"),
        "{jobs:?}"
    );
    child.kill9();
}
