//! Processes in any WASM language, end to end: the Python, JavaScript and C
//! example processes, built from source by `polyglot/build-all.sh`, are
//! deployed over HTTP (OGC API - Processes Part 2) and executed
//! synchronously and asynchronously; their own failures come back as failed
//! jobs carrying the guest's code and message.
//!
//! The components are read from `$WASMPROC_POLYGLOT_DIR`, else
//! `polyglot/out/`. Build them first:
//!
//! ```sh
//! polyglot/install-toolchains.sh && polyglot/build-all.sh
//! ```

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};
use wasmproc::config::Secret;
use wasmproc::server::Server;
use wasmproc_tests::{ADMIN_BEARER, ADMIN_TOKEN, polyglot_component};

/// A job of these examples takes milliseconds; compiling a Python component
/// at deploy takes seconds, more on a loaded machine.
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

/// An in-process server with an admin token, its data in a temporary
/// directory, and an HTTP client.
struct Harness {
    server: Server,
    base: String,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Self {
        let data = tempfile::Builder::new()
            .prefix("wasmproc-polyglot-")
            .tempdir()
            .expect("temporary directory");
        let mut config = wasmproc::config::Config {
            bind: "127.0.0.1:0".parse().expect("address"),
            data_dir: data.path().to_path_buf(),
            // Only the deployed guests: nothing else to compile at start-up.
            builtin_processes: false,
            ..Default::default()
        };
        config.auth.admin_token = Some(Secret::new(ADMIN_TOKEN));
        let server = Server::start(config)
            .await
            .unwrap_or_else(|e| panic!("server did not start: {e:?}"));
        let base = server.base_url().trim_end_matches('/').to_owned();
        Self {
            server,
            base,
            http: reqwest::Client::new(),
            _data: data,
        }
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    /// A server with a language's two examples: its hello-world, checked
    /// by [`check_hello_world`], then `example` deployed.
    async fn with_examples(hello_world: &str, example: &str) -> Self {
        let h = Self::start().await;
        check_hello_world(&h, hello_world).await;
        h.deploy(example, polyglot_component(example)).await;
        h
    }

    /// Deploy a component over HTTP; returns how long the deploy (which
    /// compiles the component) took.
    async fn deploy(&self, id: &str, wasm: Vec<u8>) -> Duration {
        let size = wasm.len();
        let started = Instant::now();
        let request = self
            .http
            .post(self.url("/processes"))
            .header(CONTENT_TYPE, "application/wasm")
            .header(AUTHORIZATION, ADMIN_BEARER)
            .body(wasm);
        let location = send_created(&format!("deploying {id} ({size} bytes)"), request).await;
        let took = started.elapsed();
        assert!(
            location.ends_with(&format!("/processes/{id}")),
            "deploy of {id}: Location {location}"
        );
        eprintln!("deployed {id}: {size} bytes, {took:?}");
        took
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        send_json(&format!("GET {path}"), self.http.get(self.url(path))).await
    }

    /// Synchronous execution: the status and the body as JSON.
    async fn execute_sync(&self, id: &str, request: Value) -> (StatusCode, Value) {
        let url = self.url(&format!("/processes/{id}/execution"));
        send_json(&format!("sync {id}"), self.http.post(url).json(&request)).await
    }

    /// Synchronous execution of `inputs` asking for a results document,
    /// which must come with 200.
    async fn sync_document(&self, id: &str, inputs: Value) -> Value {
        let request = json!({"inputs": inputs, "response": "document"});
        let (status, document) = self.execute_sync(id, request).await;
        assert_eq!(status, StatusCode::OK, "{document}");
        document
    }

    /// Asynchronous execution polled to a final state: the last statusInfo.
    async fn execute_async(&self, id: &str, request: Value) -> Value {
        let request = self
            .http
            .post(self.url(&format!("/processes/{id}/execution")))
            .header("Prefer", "respond-async")
            .json(&request);
        let location = send_created(&format!("async {id}"), request).await;
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let (status, info) = self.get(&location).await;
            assert_eq!(status, StatusCode::OK, "GET {location}: {info}");
            match info["status"].as_str() {
                Some("successful" | "failed" | "dismissed") => return info,
                Some("accepted" | "running") => {}
                other => panic!("job of {id}: unexpected status {other:?}: {info}"),
            }
            assert!(
                Instant::now() < deadline,
                "job of {id} not finished after {JOB_TIMEOUT:?}: {info}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Run `request` asynchronously to success, print what it used (see
    /// [`report_usage`]) and return its results document.
    async fn async_results(&self, id: &str, request: Value) -> Value {
        let info = self.execute_async(id, request).await;
        report_usage(id, &info);
        self.results(&info).await
    }

    /// The results document of a successful async job.
    async fn results(&self, info: &Value) -> Value {
        assert_eq!(info["status"], "successful", "job did not succeed: {info}");
        let job = info["jobID"].as_str().expect("jobID");
        let (status, results) = self.get(&format!("/jobs/{job}/results")).await;
        assert_eq!(status, StatusCode::OK, "results of {job}: {results}");
        results
    }

    async fn shutdown(self) {
        self.server
            .shutdown()
            .await
            .unwrap_or_else(|e| panic!("graceful shutdown failed: {e}"));
    }
}

/// Send `request` and read the reply: its status and its body as JSON.
/// Panics, naming `what`, when it cannot be sent or the body is not JSON.
async fn send_json(what: &str, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what} → {status}: not JSON ({e}): {text}"));
    (status, value)
}

/// Send `request`, which creates something (a deployed process, a job):
/// panics, naming `what`, unless it answers 201 with a `Location`, which
/// it returns.
async fn send_created(what: &str, request: reqwest::RequestBuilder) -> String {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{what} answered {status}: {body}"
    );
    location.unwrap_or_else(|| panic!("{what}: no Location: {body}"))
}

/// Print what a job used, for the README's languages table.
fn report_usage(what: &str, info: &Value) {
    eprintln!(
        "{what}: fuel {} duration {} ms",
        info["usage"]["fuelConsumed"], info["usage"]["durationMs"]
    );
}

/// The value of an output in a results document: objects come as
/// qualified values (`{"value": …, "mediaType": …}`).
fn output<'a>(results: &'a Value, id: &str) -> &'a Value {
    let value = &results[id];
    assert!(!value.is_null(), "no output '{id}' in {results}");
    match value.get("value") {
        Some(inner) if value.get("mediaType").is_some() => inner,
        _ => value,
    }
}

/// Panic unless each field of `expected` (an object) has its value in
/// `object`, as `assert_eq!(object[field], value)` would check it: an
/// integer must be an integer of that value, a float a number of that
/// value (`40` passes for `40.0`), anything else equal as JSON. The
/// examples' outputs are objects of many such fields.
fn assert_fields(object: &Value, expected: Value) {
    let expected = expected.as_object().expect("expected fields: an object");
    for (field, want) in expected {
        let got = &object[field];
        let same = if want.is_f64() {
            got.as_f64().is_some() && got.as_f64() == want.as_f64()
        } else if want.is_number() {
            got.as_i64().is_some() && got.as_i64() == want.as_i64()
        } else {
            got == want
        };
        assert!(same, "{field}: expected {want}, got {got} in {object}");
    }
}

/// The hello-world contract, the same as the Rust `hello-world`.
async fn check_hello_world(h: &Harness, id: &str) {
    h.deploy(id, polyglot_component(id)).await;

    let (status, description) = h.get(&format!("/processes/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{description}");
    assert_eq!(description["id"], id);
    assert_eq!(description["inputs"]["name"]["minOccurs"], 1);
    assert_eq!(description["inputs"]["message"]["minOccurs"], 0);
    assert_eq!(description["outputs"]["echo"]["schema"]["type"], "string");

    let (status, echo) = h
        .execute_sync(id, json!({"inputs": {"name": "Joe", "message": "Welcome"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo, "Hello Joe! Welcome");

    let document = h.sync_document(id, json!({"name": "Joe"})).await;
    assert_eq!(document, json!({"echo": "Hello Joe!"}));

    let info = h
        .execute_async(
            id,
            json!({"inputs": {"name": "Ada", "message": "Wasm everywhere "}}),
        )
        .await;
    report_usage(id, &info);
    assert!(
        info["usage"]["fuelConsumed"]
            .as_u64()
            .is_some_and(|f| f > 0),
        "{info}"
    );
    assert_eq!(
        h.results(&info).await,
        json!({"echo": "Hello Ada! Wasm everywhere"})
    );

    // The host validates inputs against the guest's description.
    let (status, exception) = h
        .execute_sync(id, json!({"inputs": {"message": "no name"}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{exception}");
}

/// Inputs that a language's example refuses, and the code and message it
/// reports for them: what [`check_failure`] expects.
struct Failure {
    inputs: Value,
    code: &'static str,
    message: &'static str,
}

impl Failure {
    fn new(inputs: Value, code: &'static str, message: &'static str) -> Self {
        Self {
            inputs,
            code,
            message,
        }
    }
}

/// The test of one language: a server with its hello-world (checked by
/// [`check_hello_world`]) and `example` deployed; `checks` runs the
/// example's own sync and async cases and returns the inputs it must
/// refuse, which [`check_failure`] checks; then the server shuts down.
async fn run_example(
    hello_world: &str,
    example: &str,
    checks: impl AsyncFnOnce(&Harness, &str) -> Failure,
) {
    let h = Harness::with_examples(hello_world, example).await;
    let failure = checks(&h, example).await;
    check_failure(&h, example, failure).await;
    h.shutdown().await;
}

/// A guest-reported failure: sync gives the exception with the guest's
/// message; async gives a failed job with it, and results are an exception.
async fn check_failure(h: &Harness, id: &str, failure: Failure) {
    let Failure {
        inputs,
        code,
        message,
    } = failure;
    let expected_status = if code == "invalid-input" {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let (status, exception) = h
        .execute_sync(id, json!({ "inputs": inputs.clone() }))
        .await;
    assert_eq!(status, expected_status, "{exception}");
    let detail = exception["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(code) && detail.contains(message),
        "sync failure of {id} should name '{code}' and '{message}': {exception}"
    );

    let info = h.execute_async(id, json!({ "inputs": inputs })).await;
    assert_eq!(info["status"], "failed", "{info}");
    let reason = info["message"].as_str().unwrap_or_default();
    assert!(
        reason.contains(code) && reason.contains(message),
        "failed job of {id} should name '{code}' and '{message}': {info}"
    );
    let job = info["jobID"].as_str().expect("jobID");
    let (status, exception) = h.get(&format!("/jobs/{job}/results")).await;
    assert!(
        status.is_client_error() || status.is_server_error(),
        "results of a failed job answered {status}: {exception}"
    );
    assert!(
        exception["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(message),
        "results exception of {id} should carry '{message}': {exception}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_processes_deploy_and_run_sync_and_async() {
    run_example("hello-world-py", "statistics-py", statistics_py).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_processes_deploy_and_run_sync_and_async() {
    run_example("hello-world-js", "geojson-summary-js", geojson_summary_js).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_processes_deploy_and_run_sync_and_async() {
    run_example("hello-world-c", "raster-stats-c", raster_stats_c).await;
}

/// The Python example: statistics of `values`, weighted when asked.
async fn statistics_py(h: &Harness, id: &str) -> Failure {
    let document = h
        .sync_document(
            id,
            json!({"values": [2, 4, 4, 4, 5, 5, 7, 9], "quantiles": 4}),
        )
        .await;
    let summary = output(&document, "summary");
    assert_fields(
        summary,
        json!({"count": 8, "sum": 40.0, "mean": 5.0, "median": 4.5, "min": 2, "max": 9}),
    );
    let stdev = summary["stdev"].as_f64().expect("stdev");
    assert!((stdev - 2.138_089_935_299_395).abs() < 1e-12, "{summary}");
    assert_eq!(summary["quantiles"], json!([4.0, 4.5, 5.5]));

    let results = h
        .async_results(
            id,
            json!({"inputs": {"values": [1, 2, 3, 10], "weights": [1, 1, 1, 0]}}),
        )
        .await;
    assert_eq!(output(&results, "summary")["weightedMean"], 2.0);

    Failure::new(
        json!({"values": [1, 2], "weights": [1]}),
        "invalid-input",
        "'weights' has 1 entries but 'values' has 2",
    )
}

/// The JavaScript example: the bounding box, centroid and summary of GeoJSON.
async fn geojson_summary_js(h: &Harness, id: &str) -> Failure {
    // A 2x2 square with a 1x1 hole in its lower-left corner, and a point.
    let collection = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]],
            [[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [10, -1]}}
    ]});
    let document = h.sync_document(id, json!({"geojson": collection})).await;
    assert_eq!(output(&document, "bbox"), &json!([0, -1, 10, 2]));
    // Area-weighted: (4·(1,1) − 1·(0.5,0.5)) / 3.
    let centroid = output(&document, "centroid");
    assert_eq!(
        centroid["geometry"]["coordinates"],
        json!([1.166667, 1.166667]),
        "{centroid}"
    );
    assert_eq!(document["centroid"]["mediaType"], "application/geo+json");
    let summary = output(&document, "summary");
    assert_fields(
        summary,
        json!({"features": 2, "geometryTypes": {"Polygon": 1, "Point": 1}, "vertices": 11, "area": 3}),
    );

    let results = h
        .async_results(
            id,
            json!({"inputs": {"geojson": {"type": "LineString", "coordinates": [[0, 0], [4, 0], [4, 2]]},
                              "precision": 3}}),
        )
        .await;
    // Length-weighted midpoints: (4·(2,0) + 2·(4,1)) / 6.
    assert_eq!(
        output(&results, "centroid")["geometry"]["coordinates"],
        json!([2.667, 0.333])
    );

    Failure::new(
        json!({"geojson": {"type": "FeatureCollection", "features": []}}),
        "no-result",
        "the GeoJSON has no coordinates",
    )
}

/// The C example: statistics, a histogram and a stretched band of a raster.
async fn raster_stats_c(h: &Harness, id: &str) -> Failure {
    // 4 x 2 uint8 samples 0..=7, base64; 0 is nodata.
    let raster = "AAECAwQFBgc=";
    let inputs = json!({
        "raster": {"value": raster, "mediaType": "application/octet-stream"},
        "width": 4, "height": 2, "nodata": 0, "bins": 4,
    });
    let document = h.sync_document(id, inputs).await;
    let statistics = output(&document, "statistics");
    // The crc32 is zlib.crc32(bytes(range(8))).
    assert_fields(
        statistics,
        json!({"count": 7, "nodataCount": 1, "min": 1, "max": 7, "mean": 4, "stddev": 2,
               "histogram": [2, 1, 2, 2], "crc32": "88aa689f"}),
    );
    // The stretched band is a binary output: base64 in a document.
    let stretched = &document["stretched"];
    assert_eq!(
        stretched["mediaType"], "application/octet-stream",
        "{stretched}"
    );
    assert_eq!(stretched["value"], "AAArVYCq1f8=", "{stretched}");

    // float32 samples 1.5, -2.5 (little endian) asynchronously.
    let results = h
        .async_results(
            id,
            json!({"inputs": {"raster": "AADAPwAAIMA=", "width": 2, "height": 1, "sampleType": "float32"}}),
        )
        .await;
    let statistics = output(&results, "statistics");
    assert_eq!(
        (statistics["min"].as_f64(), statistics["max"].as_f64()),
        (Some(-2.5), Some(1.5))
    );
    assert_eq!(statistics["mean"], -0.5);

    Failure::new(
        json!({"raster": raster, "width": 4, "height": 3}),
        "invalid-input",
        "raster has 8 bytes, expected 4 x 3 uint8 samples = 12 bytes",
    )
}
