//! The pages in a real browser: Debian's chromium, headless, driven
//! through chromedriver (WebDriver) with fantoccini, against a real server
//! on 127.0.0.1.
//!
//! One walk through the UI as a person would take it: the landing page,
//! the process list, hello-world's page, its form filled and run
//! synchronously (results page) and asynchronously (job page, followed to
//! the end by its script, then the results), an echo job that pauses,
//! whose status and progress the job page updates in place while it runs,
//! its log, a refused form (the exception next to the field, the value
//! kept), the job list, the API page, a GeoJSON map and a phone-sized
//! view. On every page: no console message of level SEVERE (script
//! errors, CSP violations, failed loads), and the served HTML passes
//! `html_check` (html5ever's parser, via scraper).
//!
//! With `WASMPROC_SCREENSHOTS=1` the main pages are saved as PNGs in
//! `docs/` (the README shows them).
//!
//! Needs `tests/browser-up.sh` (chromium, chromium-driver); without them
//! this test fails and says so.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use wasmproc_tests::{Api, TestServer};

use super::html_check::assert_valid_page;

/// The flags chromium starts with (plus a fresh `--user-data-dir`).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1280,900",
];
/// Longest wait for anything the browser does (a page, a job's end).
const WAIT: Duration = Duration::from_secs(30);
/// Between two looks at the page while waiting.
const POLL: Duration = Duration::from_millis(100);
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// chromedriver as a child process on a free loopback port; killed when
/// dropped.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Chromedriver {
    async fn start(log: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("chromedriver is missing ({e}): run tests/browser-up.sh (Debian's chromium and chromium-driver)")
            });
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        };
        let status = Api::new(format!("http://127.0.0.1:{port}"));
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = tokio::time::timeout(Duration::from_secs(2), async {
                reqwest::Client::new()
                    .get(status.url("/status"))
                    .send()
                    .await
                    .ok()?
                    .json::<Value>()
                    .await
                    .ok()
            })
            .await
            .ok()
            .flatten();
            if ready.is_some_and(|s| s["value"]["ready"] == true) {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready within {WAIT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Selenium's `getLog` for the browser's console, which chromedriver
/// serves at `POST /session/{id}/se/log`; each call returns the entries
/// since the last one.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(r#"{"type": "browser"}"#.to_owned()),
        )
    }
}

/// The walk's state: the browser, the server's client, where screenshots
/// go (if anywhere), what was checked.
struct Walk {
    client: Client,
    api: Api,
    screenshots: Option<PathBuf>,
    pages_checked: usize,
}

impl Walk {
    /// Console entries since the last call.
    async fn console(&self) -> Vec<Value> {
        let entries = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("chromedriver serves the browser log");
        entries.as_array().cloned().unwrap_or_default()
    }

    /// Check the page the browser shows: no SEVERE console entry since the
    /// last check, and its HTML as served is valid. Then a screenshot
    /// named `name`, when asked for.
    async fn check(&mut self, name: &str) {
        self.check_with_status(name, None).await;
    }

    /// [`Walk::check`] for a page answered with an error status on
    /// purpose (a refused form is a 400): chromium logs that status of the
    /// document itself as a failed load; that one entry is expected, any
    /// other is not.
    async fn check_with_status(&mut self, name: &str, status: Option<u16>) {
        let url = self.client.current_url().await.unwrap().to_string();
        let expected = status.map(|s| {
            format!("{url} - Failed to load resource: the server responded with a status of {s} ")
        });
        let severe: Vec<Value> = self
            .console()
            .await
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .filter(|e| {
                !expected.as_deref().is_some_and(|expected| {
                    e["source"] == "network"
                        && e["message"]
                            .as_str()
                            .is_some_and(|m| m.starts_with(expected))
                })
            })
            .collect();
        assert!(severe.is_empty(), "console errors on {url}: {severe:#?}");
        let reply = self.api.get_with(&url, &[("accept", BROWSER_ACCEPT)]).await;
        if reply.content_type().starts_with("text/html") {
            assert_valid_page(&url, &reply.text());
        }
        self.pages_checked += 1;
        self.screenshot(name).await;
    }

    /// Save the whole page as `docs/{name}.png` (when screenshots are
    /// asked for): the window is made as tall as the page first.
    async fn screenshot(&self, name: &str) {
        let Some(dir) = &self.screenshots else { return };
        let (width, _) = self.client.get_window_size().await.unwrap();
        let height = self
            .client
            // The page's height plus the window's own (the screenshot is of
            // the viewport).
            .execute(
                "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight;",
                vec![],
            )
            .await
            .ok()
            .and_then(|h| h.as_u64())
            .unwrap_or(900)
            .clamp(400, 2400);
        self.client
            .set_window_size(width as u32, height as u32)
            .await
            .unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        self.client
            .set_window_size(width as u32, 900)
            .await
            .unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        element.clear().await.unwrap();
        element.send_keys(text).await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Wait (bounded, polling) until the current URL ends with `suffix`.
    async fn wait_for_url(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.client.current_url().await.unwrap().to_string();
            if done(&url) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "not at {what} within {WAIT:?}: {url}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Wait (bounded, polling) until the job page's status reads `status`.
    async fn wait_for_status(&self, status: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.text("#job-status").await == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the job page did not show {status} within {WAIT:?}; it shows {:?}",
                self.text("#job-status").await
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_runs_hello_world_in_a_real_browser() {
    let server = TestServer::builder().with_admin_token().start().await;
    let scratch = tempfile::tempdir().unwrap();
    let driver = Chromedriver::start(&std::path::PathBuf::from("/tmp/wtui-chromedriver.log")).await;
    let profile = scratch.path().join("profile");
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        "goog:loggingPrefs": {"browser": "ALL"}
    });
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities.as_object().unwrap().clone())
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("no chromium session: {e}"));
    let screenshots = std::env::var("WASMPROC_SCREENSHOTS")
        .is_ok_and(|v| v == "1")
        .then(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs"));
    if let Some(dir) = &screenshots {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut walk = Walk {
        client,
        api: server.api().clone(),
        screenshots,
        pages_checked: 0,
    };
    let base = server.base().to_owned();

    // The landing page, then the process list.
    walk.client.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(walk.text("h1").await, "wasmproc");
    walk.check("landing").await;
    walk.click("header nav a[href$='/processes']").await;
    walk.wait_for_url("the process list", |u| u.ends_with("/processes"))
        .await;
    walk.check("processes").await;

    // hello-world, synchronously: the results page.
    walk.click("a[href$='/processes/hello-world']").await;
    walk.wait_for_url("hello-world", |u| u.ends_with("/processes/hello-world"))
        .await;
    walk.check("process").await;
    walk.type_into("[name='input.name']", "Joe").await;
    walk.type_into("[name='input.message']", "Welcome").await;
    walk.click("input[name=mode][value=sync]").await;
    walk.click("form[action$='/execution'] button[type=submit]")
        .await;
    walk.wait_for_url("the results", |u| u.ends_with("/results"))
        .await;
    let output = walk.text("section.output pre").await;
    assert_eq!(output, "Hello Joe! Welcome");
    walk.check("results").await;

    // hello-world, asynchronously: the job page follows it to the end.
    walk.client.back().await.unwrap();
    walk.wait_for_url("hello-world", |u| u.ends_with("/processes/hello-world"))
        .await;
    walk.type_into("[name='input.name']", "Ada").await;
    walk.click("input[name=mode][value=async]").await;
    walk.click("form[action$='/execution'] button[type=submit]")
        .await;
    let job_url = walk
        .wait_for_url("the job page", |u| {
            u.contains("/jobs/") && !u.ends_with("/results")
        })
        .await;
    walk.wait_for_status("successful").await;
    walk.check("job-hello-world").await;
    walk.click("#results-link").await;
    walk.wait_for_url("the results", |u| u.ends_with("/results"))
        .await;
    assert_eq!(walk.text("section.output pre").await, "Hello Ada! Welcome");
    walk.check("results-async").await;
    assert!(job_url.contains("/jobs/"));

    // An echo job that pauses: the page shows it running at 10 % and then
    // successful, updated in place by its script (no navigation here).
    walk.client
        .goto(&format!("{base}/processes/echo"))
        .await
        .unwrap();
    walk.type_into("[name='input.stringInput']", "live").await;
    walk.type_into("[name='input.pause']", "3").await;
    walk.click("input[name=mode][value=async]").await;
    walk.click("form[action$='/execution'] button[type=submit]")
        .await;
    walk.wait_for_url("the echo job", |u| u.contains("/jobs/"))
        .await;
    walk.wait_for_status("running").await;
    let deadline = Instant::now() + WAIT;
    loop {
        // The live value of the bar (a number), not its initial attribute.
        let value = walk
            .client
            .execute(
                "return document.getElementById('job-progress').value;",
                vec![],
            )
            .await
            .unwrap();
        if value.as_f64() == Some(10.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the progress bar never showed 10 %"
        );
        tokio::time::sleep(POLL).await;
    }
    assert!(walk.text("#job-message").await.contains("pausing"));
    walk.screenshot("job-running").await;
    walk.wait_for_status("successful").await;
    walk.check("job-echo").await;
    walk.click("#log-link").await;
    walk.wait_for_url("the log", |u| u.ends_with("/log")).await;
    let log = walk.text("body").await;
    assert!(log.contains("[wasmproc] successful"), "{log}");
    walk.check("log").await;

    // A refused form: the exception next to the field, the value kept.
    walk.client
        .goto(&format!("{base}/processes/echo"))
        .await
        .unwrap();
    walk.type_into("[name='input.stringInput']", "kept").await;
    walk.type_into("[name='input.objectInput']", "{oops").await;
    walk.click("form[action$='/execution'] button[type=submit]")
        .await;
    walk.client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(".field .error"))
        .await
        .unwrap();
    let error = walk.text(".field .error").await;
    assert!(error.contains("not valid JSON"), "{error}");
    let kept = walk
        .client
        .find(Locator::Css("[name='input.objectInput']"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("{oops"));
    walk.check_with_status("form-error", Some(400)).await;

    // The job list, the API definition, a map.
    walk.client.goto(&format!("{base}/jobs")).await.unwrap();
    assert!(walk.text("table").await.contains("hello-world"));
    walk.check("jobs").await;
    walk.client.goto(&format!("{base}/api")).await.unwrap();
    walk.check("api").await;
    let (geometry_job, _) = walk
        .api
        .execute_sync(
            "geometry",
            &json!({"response": "document", "inputs": {"geometry": {"type": "Polygon",
                "coordinates": [[[4.85, 52.35], [4.95, 52.35], [4.95, 52.39], [4.90, 52.40], [4.85, 52.38], [4.85, 52.35]]]}}}),
        )
        .await;
    walk.client
        .goto(&format!("{base}/jobs/{geometry_job}/results"))
        .await
        .unwrap();
    walk.client
        .find(Locator::Css("svg.map"))
        .await
        .expect("a map");
    walk.check("results-map").await;

    // A phone.
    walk.client.set_window_size(390, 844).await.unwrap();
    walk.client
        .goto(&format!("{base}/processes/hello-world"))
        .await
        .unwrap();
    let overflow = walk
        .client
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overflow,
        Value::Bool(false),
        "the process page is wider than a phone"
    );
    walk.check("phone-process").await;

    assert_eq!(walk.pages_checked, 13);
    walk.client.close().await.unwrap();
    drop(driver);
    server.shutdown().await;
}
