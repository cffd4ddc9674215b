//! HTML for every resource, without a browser: negotiation (`Accept`,
//! `?f=`), valid pages with a strict CSP, error pages, and the forms
//! (execute, deploy, replace, undeploy) posted as a browser without
//! JavaScript would post them. The same flows in a real browser are in
//! `browser.rs`.

use serde_json::json;
use wasmproc_tests::{
    ADMIN_TOKEN, HOSTILE_WASM, JOB_TIMEOUT, TestServer, assert_exception, last_segment, multipart,
};

use super::html_check::assert_valid_page;

/// What a browser's navigation sends.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

async fn page(server: &TestServer, path: &str) -> String {
    let reply = server.get_with(path, &[("accept", BROWSER_ACCEPT)]).await;
    reply.expect_status(200);
    assert!(
        reply.content_type().starts_with("text/html"),
        "{path}: {}",
        reply.content_type()
    );
    assert_eq!(
        reply.header("content-security-policy").as_deref(),
        Some(PAGE_CSP),
        "{path}"
    );
    assert_eq!(
        reply.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    let text = reply.text();
    assert_valid_page(path, &text);
    text
}

/// The first error shown inside a field of a refused form page, and that
/// field (the error's parent): where the page says which input was wrong.
fn first_field_error(
    document: &scraper::Html,
) -> (scraper::ElementRef<'_>, scraper::ElementRef<'_>) {
    let error = document
        .select(&scraper::Selector::parse(".field .error").unwrap())
        .next()
        .expect("an error inside a field");
    let field = scraper::ElementRef::wrap(error.parent().unwrap()).unwrap();
    (error, field)
}

/// Whether `element` holds an element matching `css`.
fn has(element: scraper::ElementRef<'_>, css: &str) -> bool {
    element
        .select(&scraper::Selector::parse(css).unwrap())
        .next()
        .is_some()
}

/// Whether a page shows `message`, its apostrophes as they are or
/// escaped as `&#39;` (either is what a browser displays).
fn shows(page: &str, message: &str) -> bool {
    page.contains(message) || page.contains(&message.replace('\'', "&#39;"))
}

/// Submit the execution form of `process` with the fields `texts` (no
/// files) as a browser does, and insist on 400: a refused form, shown
/// again. Returns the page.
async fn refused_form(server: &TestServer, process: &str, texts: &[(&str, &str)]) -> String {
    let path = format!("/ui/processes/{process}/execution");
    let reply = post_form(server, &path, texts, &[]).await;
    reply.expect_status(400);
    reply.text()
}

async fn post_form(
    server: &TestServer,
    path: &str,
    texts: &[(&str, &str)],
    files: &[(&str, &str, &[u8])],
) -> wasmproc_tests::Reply {
    let (content_type, body) = multipart(texts, files);
    server
        .send(
            reqwest::Method::POST,
            path,
            &[("content-type", &content_type), ("accept", BROWSER_ACCEPT)],
            Some(body),
        )
        .await
}

#[tokio::test]
async fn every_resource_is_a_valid_page_for_a_browser_and_json_for_clients() {
    let server = TestServer::start().await;
    let (job, _) = server
        .execute_sync(
            "hello-world",
            &json!({"inputs": {"name": "Joe"}, "response": "document"}),
        )
        .await;
    for path in [
        "/".to_owned(),
        "/conformance".into(),
        "/api".into(),
        "/processes".into(),
        "/processes/hello-world".into(),
        "/processes/echo".into(),
        "/processes/geometry".into(),
        "/jobs".into(),
        format!("/jobs/{job}"),
        format!("/jobs/{job}/results"),
    ] {
        page(&server, &path).await;
        // No Accept, `*/*` and `?f=json` (over a browser's Accept) are JSON.
        for (query, accept) in [
            ("", None),
            ("", Some("*/*")),
            ("f=json", Some(BROWSER_ACCEPT)),
        ] {
            let url = if query.is_empty() {
                path.clone()
            } else {
                format!("{path}?{query}")
            };
            let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
            let reply = server
                .send(reqwest::Method::GET, &url, &headers, None)
                .await;
            reply.expect_status(200);
            assert!(
                reply.content_type().contains("json"),
                "{url}: {}",
                reply.content_type()
            );
            // Not a page: nothing on it may run or load.
            let csp = reply.header("content-security-policy").unwrap_or_default();
            assert!(csp.contains("sandbox"), "{url}: {csp}");
        }
        // `?f=html` wins over an API client's Accept.
        let reply = server
            .get_with(&format!("{path}?f=html"), &[("accept", "application/json")])
            .await;
        reply.expect_status(200);
        assert!(
            reply.content_type().starts_with("text/html"),
            "{path}?f=html"
        );
    }
    let reply = server.get("/processes?f=xml").await;
    let body = assert_exception(&reply, 400, None);
    assert!(body["detail"].as_str().unwrap().contains("'xml'"), "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_html_conformance_class_is_declared() {
    let server = TestServer::start().await;
    server
        .assert_conforms_to(&["http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/html"])
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn errors_are_pages_for_browsers_and_exceptions_for_clients() {
    let server = TestServer::start().await;
    let missing = "/jobs/00000000-0000-4000-8000-000000000000";
    let reply = server
        .get_with(missing, &[("accept", BROWSER_ACCEPT)])
        .await;
    reply.expect_status(404);
    assert!(reply.content_type().starts_with("text/html"));
    let text = reply.text();
    assert_valid_page(missing, &text);
    assert!(text.contains("no-such-job"), "{text}");
    assert_exception(&server.get(missing).await, 404, Some("no-such-job"));
    server.shutdown().await;
}

#[tokio::test]
async fn the_process_page_has_a_form_generated_from_the_input_schemas() {
    let server = TestServer::start().await;
    let echo = page(&server, "/processes/echo").await;
    let document = scraper::Html::parse_document(&echo);
    let select = |css: &str| scraper::Selector::parse(css).unwrap();
    let field = |name: &str| {
        document
            .select(&select(&format!("[name=\"input.{name}\"]")))
            .next()
            .unwrap_or_else(|| panic!("no field for {name}"))
            .value()
            .clone()
    };
    assert_eq!(field("stringInput").name(), "input");
    assert_eq!(field("stringInput").attr("type"), Some("text"));
    assert!(field("stringInput").attr("required").is_some());
    assert_eq!(field("doubleInput").attr("type"), Some("number"));
    assert_eq!(field("pause").attr("max"), Some("60.0"));
    assert_eq!(field("objectInput").name(), "textarea");
    assert_eq!(field("arrayInput").name(), "textarea");
    assert_eq!(field("binaryInput").attr("type"), Some("file"));
    assert_eq!(document.select(&select("input[name=mode]")).count(), 2);
    // hostile's `behaviour` is an enum: a select of its values.
    let hostile_server = TestServer::builder().with_hostile().start().await;
    let hostile = page(&hostile_server, "/processes/hostile").await;
    assert!(hostile.contains("<select"), "{hostile}");
    assert!(hostile.contains(">infinite-loop</option>"), "{hostile}");
    hostile_server.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_execute_form_works_without_javascript_sync_and_async() {
    let server = TestServer::start().await;
    // Sync: 303 to the results page.
    let reply = server
        .send(
            reqwest::Method::POST,
            "/ui/processes/hello-world/execution",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("accept", BROWSER_ACCEPT),
            ],
            Some(b"input.name=Joe&input.message=Welcome&mode=sync".to_vec()),
        )
        .await;
    reply.expect_status(303);
    let location = reply.header("location").unwrap();
    assert!(location.ends_with("/results"), "{location}");
    let results = page(&server, &location).await;
    assert!(results.contains("Hello Joe! Welcome"), "{results}");
    // Async: 303 to the job page; the job succeeds.
    let reply = post_form(
        &server,
        "/ui/processes/echo/execution",
        &[
            ("input.stringInput", "hi"),
            ("input.pause", "0.2"),
            ("mode", "async"),
        ],
        &[("input.binaryInput", "b.bin", b"bytes!")],
    )
    .await;
    reply.expect_status(303);
    let location = reply.header("location").unwrap();
    let job = last_segment(&location);
    let job_page = page(&server, &location).await;
    assert!(
        job_page.contains("job.js"),
        "a running job's page follows it"
    );
    server
        .wait_for_status(&job, &["successful"], JOB_TIMEOUT)
        .await;
    let job_page = page(&server, &location).await;
    assert!(
        !job_page.contains("job.js"),
        "an ended job's page needs no script"
    );
    assert!(job_page.contains("id=\"results-link\""), "{job_page}");
    let results = server.get_json(&format!("/jobs/{job}/results")).await;
    assert_eq!(results["stringInput"], "hi");
    // The file arrived base64-encoded.
    assert_eq!(
        wasmproc_tests::output_value(&results, "binaryInput"),
        json!("Ynl0ZXMh")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_refused_form_shows_the_exception_next_to_its_field_and_keeps_the_values() {
    let server = TestServer::start().await;
    // Not JSON in a JSON field: named by the form conversion.
    let text = refused_form(
        &server,
        "echo",
        &[
            ("input.stringInput", "kept <text>"),
            ("input.objectInput", "{oops"),
            ("mode", "sync"),
        ],
    )
    .await;
    assert_valid_page("refused echo form", &text);
    let document = scraper::Html::parse_document(&text);
    let (error, field) = first_field_error(&document);
    assert!(
        has(field, "textarea[name=\"input.objectInput\"]"),
        "the error sits in the objectInput field: {}",
        field.html()
    );
    let error_text = error.text().collect::<String>();
    assert!(error_text.contains("400 Invalid request"), "{error_text}");
    assert!(error_text.contains("not valid JSON"), "{error_text}");
    assert!(
        error_text.contains("urn:wasmproc:error:invalid-request"),
        "{error_text}"
    );
    // What was typed is still there, escaped.
    assert!(
        text.contains("value=\"kept &#60;text&#62;\"")
            || text.contains("value=\"kept &lt;text&gt;\""),
        "{text}"
    );
    assert!(text.contains(">{oops</textarea>"), "{text}");
    // A required input left out: named by the validator.
    let text = refused_form(
        &server,
        "hello-world",
        &[("input.message", "no name"), ("mode", "sync")],
    )
    .await;
    let document = scraper::Html::parse_document(&text);
    let (_, field) = first_field_error(&document);
    assert!(has(field, "[name=\"input.name\"]"), "{}", field.html());
    assert!(text.contains("value=\"no name\""), "{text}");
    // A nested process in a JSON field gets the checks of the API's tree:
    // an unknown process is refused, and nothing runs.
    let text = refused_form(
        &server,
        "echo",
        &[
            ("input.stringInput", "x"),
            (
                "input.objectInput",
                r#"{"process": "nowhere", "inputs": {}}"#,
            ),
            ("mode", "sync"),
        ],
    )
    .await;
    assert!(
        shows(&text, "no process 'nowhere' on this server"),
        "{text}"
    );
    let jobs = server.get_json("/jobs").await;
    assert!(
        jobs["jobs"].as_array().unwrap().is_empty(),
        "nothing ran: {jobs}"
    );
    // A number that is not one.
    let text = refused_form(
        &server,
        "echo",
        &[("input.stringInput", "x"), ("input.doubleInput", "three")],
    )
    .await;
    assert!(shows(&text, "'three' is not a number"), "{text}");
    // No such process: a 404 page.
    let reply = post_form(&server, "/ui/processes/nope/execution", &[], &[]).await;
    reply.expect_status(404);
    assert!(reply.content_type().starts_with("text/html"));
    server.shutdown().await;
}

#[tokio::test]
async fn admins_deploy_replace_and_undeploy_from_the_pages() {
    let server = TestServer::builder().with_admin_token().start().await;
    let wasm = std::fs::read(HOSTILE_WASM).unwrap();
    // An admin form (deploy, replace, undeploy) sent with `token`, and
    // the module when there is one.
    let admin_form = async |path: &str, token: &str, module: Option<&[u8]>| {
        let files: Vec<(&str, &str, &[u8])> = module
            .map(|wasm| ("module", "h.wasm", wasm))
            .into_iter()
            .collect();
        post_form(&server, path, &[("token", token)], &files).await
    };
    let list = page(&server, "/processes").await;
    assert!(
        list.contains("action=\"") && list.contains("/ui/processes\""),
        "{list}"
    );
    // A wrong token: the list again, with the exception, status 403.
    let reply = admin_form("/ui/processes", "wrong", Some(&wasm)).await;
    reply.expect_status(403);
    let text = reply.text();
    assert_valid_page("refused deploy", &text);
    assert!(text.contains("the bearer token is not valid"), "{text}");
    // Deploy.
    let reply = admin_form("/ui/processes", ADMIN_TOKEN, Some(&wasm)).await;
    reply.expect_status(303);
    assert!(
        reply
            .header("location")
            .unwrap()
            .ends_with("/processes/hostile")
    );
    let process = page(&server, "/processes/hostile").await;
    assert!(
        process.contains("/ui/processes/hostile/replace"),
        "{process}"
    );
    // Replace, then undeploy.
    let reply = admin_form("/ui/processes/hostile/replace", ADMIN_TOKEN, Some(&wasm)).await;
    reply.expect_status(303);
    let reply = post_form(&server, "/ui/processes/hostile/undeploy", &[], &[]).await;
    reply.expect_status(401);
    assert!(reply.text().contains("Unauthorized"));
    let reply = admin_form("/ui/processes/hostile/undeploy", ADMIN_TOKEN, None).await;
    reply.expect_status(303);
    assert!(reply.header("location").unwrap().ends_with("/processes"));
    assert_exception(
        &server.get("/processes/hostile").await,
        404,
        Some("no-such-process"),
    );
    // Built-ins are immutable: no admin forms on their pages.
    let builtin = page(&server, "/processes/hello-world").await;
    assert!(!builtin.contains("/replace"), "{builtin}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_job_list_page_filters_and_pages_with_the_cursor() {
    let server = TestServer::start().await;
    for name in ["a", "b", "c"] {
        server
            .execute_sync("hello-world", &json!({"inputs": {"name": name}}))
            .await;
    }
    server
        .execute_sync("echo", &json!({"inputs": {"stringInput": "x"}}))
        .await;
    // What the filter form sends: every field, empty ones too.
    let first = page(
        &server,
        "/jobs?processID=hello-world&status=successful&type=process&datetime=&minDuration=&maxDuration=&limit=2",
    )
    .await;
    assert_eq!(first.matches("<tr>").count() - 1, 2, "{first}");
    assert!(!first.contains(">echo</a>"), "{first}");
    // Each job is shown by the last 8 hex digits of its id, the random
    // ones (its first digits are its creation time, alike for a minute).
    let document = scraper::Html::parse_document(&first);
    let shown: Vec<(String, String)> = document
        .select(&scraper::Selector::parse("td a.mono").unwrap())
        .map(|a| {
            let href = a.value().attr("href").unwrap_or_default().to_owned();
            (a.text().collect(), href)
        })
        .collect();
    assert_eq!(shown.len(), 2, "{first}");
    for (text, href) in &shown {
        assert_eq!(text.len(), 8, "{text}");
        assert!(href.ends_with(text.as_str()), "{text} {href}");
    }
    assert_ne!(shown[0].0, shown[1].0, "{shown:?}");
    let next = scraper::Html::parse_document(&first)
        .select(&scraper::Selector::parse("a[rel=next]").unwrap())
        .next()
        .and_then(|a| a.value().attr("href").map(str::to_owned))
        .expect("a next link");
    assert!(next.contains("cursor="), "{next}");
    let second = page(&server, &next).await;
    assert_eq!(second.matches("<tr>").count() - 1, 1, "{second}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_workflow_jobs_page_lists_its_steps_and_a_steps_page_its_parent() {
    let server = TestServer::start().await;
    let request = json!({"inputs": {"stringInput": {
        "process": "hello-world", "inputs": {"name": "Joe"}
    }}});
    let (parent, _) = server.execute_sync("echo", &request).await;
    let text = page(&server, &format!("/jobs/{parent}")).await;
    let document = scraper::Html::parse_document(&text);
    let select = |css: &str| scraper::Selector::parse(css).unwrap();
    let rows: Vec<scraper::ElementRef<'_>> =
        document.select(&select("#job-steps tbody tr")).collect();
    assert_eq!(rows.len(), 1, "one step: {text}");
    let cells: Vec<String> = rows[0]
        .select(&select("td"))
        .map(|td| td.text().collect::<String>())
        .collect();
    assert_eq!(cells[0], "inputs.stringInput.process", "{text}");
    let step_href = rows[0]
        .select(&select("a"))
        .next()
        .and_then(|a| a.value().attr("href"))
        .expect("a link to the step")
        .to_owned();
    let step = wasmproc_tests::last_segment(&step_href);
    assert_eq!(cells[1], step);
    assert_eq!(server.job(&step).await["processID"], "hello-world");
    // The step's page links back to the job it computed an input of.
    let text = page(&server, &format!("/jobs/{step}")).await;
    assert!(
        text.contains("<dt>Step of</dt>")
            && text.contains(&format!("href=\"{}/jobs/{parent}\"", server.base())),
        "{text}"
    );
    assert!(
        !text.contains("id=\"job-steps\""),
        "no steps of its own: {text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn geojson_outputs_are_drawn_and_raw_outputs_are_sandboxed() {
    let server = TestServer::start().await;
    let (job, _) = server
        .execute_sync(
            "geometry",
            &json!({"response": "document", "inputs": {"geometry":
                {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,1],[0,0]]]}}}),
        )
        .await;
    let results = page(&server, &format!("/jobs/{job}/results")).await;
    assert!(results.contains("<svg class=\"map\""), "{results}");
    let raw = server.get(&format!("/jobs/{job}/results/centroid")).await;
    raw.expect_status(200);
    let csp = raw.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    // The assets the pages load are served, with the page CSP allowing
    // exactly them.
    for asset in ["/ui/static/wasmproc.css", "/ui/static/job.js"] {
        server.get(asset).await.expect_status(200);
    }
    assert_exception(&server.get("/ui/static/nope.js").await, 404, None);
    server.shutdown().await;
}
