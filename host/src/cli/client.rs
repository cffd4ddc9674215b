//! `wasmproc deploy | replace | undeploy | processes`: the client side of
//! OGC API - Processes Part 2, against a running server.
//!
//! | command | HTTP | success |
//! |---|---|---|
//! | `deploy FILE` | `POST /processes` | 201, the process summary printed |
//! | `deploy FILE --replace`, `replace FILE` | `PUT /processes/{id}`, `POST` on 404 | 204, `replaced ID` (201 after the `POST`) |
//! | `undeploy ID…` | `DELETE /processes/{id}`, one per id | 204, `undeployed ID` |
//! | `processes` | `GET /processes?limit=10000`, then each `next` link | 200, one line per process |
//!
//! The module is sent as it is (`application/wasm`), or, with `--id`, as
//! an `application/ogcapppkg+json` application package whose description
//! is the module's own under the new id, so one component can be
//! deployed under several ids without rebuilding. Deploy, replace and
//! undeploy need the admin role on the server: `--token` is the admin
//! token or an admin key, and listing needs a key only when the server
//! protects its processes.
//!
//! What a user sees: a success prints the server's answer (or the line
//! above) on stdout and exits 0; an answer with an error status prints
//! `HTTP <status>` and the server's problem document (pretty JSON) on
//! stderr and exits 1; a server that cannot be reached, or a file that
//! cannot be read (or, when it has to be described locally, loaded), is
//! an error and exits 2 through `main`, and so is a request that takes
//! longer than `--timeout` (a server that accepts the connection and never
//! answers). Without a local description the server is the one to refuse
//! a bad file: 400, exit 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use clap::Args;
use serde_json::{Value, json};

/// Where the server is and how to authenticate.
///
/// Shared by every client command (flattened into `DeployArgs` and
/// `UndeployArgs`, and the whole of `processes`'s arguments).
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Base URL of the server.
    ///
    /// What `wasmproc serve` printed as `listening on`, or its
    /// `public_url`: the paths `/processes…` are appended to it, a
    /// trailing slash removed first.
    #[arg(long, default_value = "http://127.0.0.1:5000", env = "WASMPROC_URL")]
    url: String,
    /// Admin bearer token.
    ///
    /// Sent as `Authorization: Bearer`: the server's admin token (the
    /// same variable `serve` reads, so one environment serves both) or an
    /// API key. Deploy, replace and undeploy need the admin role: without
    /// a token they get 401, and 403 from a server that has no admin
    /// token and no admin key. `processes` needs a key of any role only
    /// when the server sets `auth.protect_processes`.
    #[arg(long, env = "WASMPROC_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Longest one request may take, in seconds, from connecting to the
    /// last byte of the answer.
    ///
    /// A deploy waits while the server compiles the module (up to its
    /// compile timeout, 120 s by default, for a big Python component), so
    /// the default leaves room for that. Connecting alone may take 10 s.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    timeout: u64,
}

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most pages `processes` follows (`next` links) before it stops, so a
/// server that links in a circle cannot keep it going.
const MAX_PAGES: usize = 1000;

/// Arguments of `deploy` and `replace`.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// The component (.wasm).
    file: PathBuf,
    /// Deploy under this id (overrides the id in the module's description).
    ///
    /// The module is then compiled and described locally first (through
    /// the artifact cache of `wasmproc run`), and sent as an application
    /// package carrying its description under this id.
    #[arg(long)]
    id: Option<String>,
    /// Replace the process when one with this id is deployed already
    /// (`PUT /processes/{id}`; jobs already accepted finish on the old
    /// version); deploy it when none is.
    #[arg(long)]
    replace: bool,
    /// `--url` and `--token`.
    #[command(flatten)]
    server: ServerArgs,
}

/// Arguments of `undeploy`.
#[derive(Debug, Args)]
pub(crate) struct UndeployArgs {
    /// Process ids.
    ///
    /// Each is undeployed in turn; one that fails (not found, built in)
    /// does not stop the others, and the exit status is 1 if any failed.
    #[arg(required = true)]
    ids: Vec<String>,
    /// `--url` and `--token`.
    #[command(flatten)]
    server: ServerArgs,
}

/// A request to `path` (which starts with `/`) on the server, with the
/// bearer token when one is given. `path` is appended to `--url` as it
/// is: an id in it is not percent-encoded, which valid process ids
/// (`A-Z a-z 0-9 - _ .`) never need.
fn request(
    server: &ServerArgs,
    method: reqwest::Method,
    path: &str,
) -> anyhow::Result<reqwest::RequestBuilder> {
    let url = format!("{}{path}", server.url.trim_end_matches('/'));
    request_url(server, method, &url)
}

/// A request to the absolute `url` with `--token` and `--timeout`. Each
/// call builds its own client, which costs nothing that matters to a
/// command making a few requests.
fn request_url(
    server: &ServerArgs,
    method: reqwest::Method,
    url: &str,
) -> anyhow::Result<reqwest::RequestBuilder> {
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(Duration::from_secs(server.timeout))
        .build()
        .context("setting up the HTTP client")?;
    let builder = client.request(method, url);
    Ok(match &server.token {
        Some(token) => builder.bearer_auth(token),
        None => builder,
    })
}

/// Print the server's answer; exit 1 when it is an error.
///
/// A JSON body (a summary, a problem document) is pretty-printed; any
/// other text is shown as it is, and an empty body prints nothing on
/// success. A body that cannot be read counts as empty.
async fn report(response: reqwest::Response) -> anyhow::Result<ExitCode> {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let shown = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(text);
    if status.is_success() {
        if !shown.is_empty() {
            println!("{shown}");
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("HTTP {status}\n{shown}");
        Ok(ExitCode::FAILURE)
    }
}

/// Deploy (or replace) a component.
///
/// `replace` (the `replace` command, or `deploy --replace`) sends `PUT
/// /processes/{id}`, the id being `--id` or the module's own; a 404 there
/// (nothing to replace) falls back to deploying. A plain deploy that finds
/// the id taken (409) says how to replace it instead of showing the bare
/// status.
///
/// The same body goes with both requests of a fallback: the component
/// as it is, or the package when `--id` is given. A replace of a built-in
/// process gets 403 (`immutable-process`) and exits 1 like any other
/// refusal; it is not retried as a deploy, which would fail with 409.
pub(crate) async fn deploy(args: DeployArgs, replace: bool) -> anyhow::Result<ExitCode> {
    let replace = replace || args.replace;
    let wasm = tokio::fs::read(&args.file)
        .await
        .with_context(|| format!("reading {}", args.file.display()))?;
    // Another id than the module's: an application package carrying the
    // module's own description under the new id.
    let package = match &args.id {
        Some(id) => {
            let mut description = describe_locally(&wasm).await?;
            description["id"] = json!(id);
            Some(json!({
                "processDescription": { "process": description },
                "executionUnit": {
                    "value": base64::engine::general_purpose::STANDARD.encode(&wasm),
                    "mediaType": "application/wasm"
                }
            }))
        }
        None => None,
    };
    let send = |method: reqwest::Method, path: String| {
        let builder = request(&args.server, method, &path).map(|builder| match &package {
            Some(package) => builder
                .header("content-type", "application/ogcapppkg+json")
                .json(package),
            None => builder
                .header("content-type", "application/wasm")
                .body(wasm.clone()),
        });
        async move { builder?.send().await.context("contacting the server") }
    };
    if replace {
        let id = match &args.id {
            Some(id) => id.clone(),
            None => describe_locally(&wasm).await?["id"]
                .as_str()
                .map(str::to_owned)
                .with_context(|| {
                    format!(
                        "{}: its description has no id; pass --id",
                        args.file.display()
                    )
                })?,
        };
        let response = send(reqwest::Method::PUT, format!("/processes/{id}")).await?;
        if response.status() != reqwest::StatusCode::NOT_FOUND {
            if response.status().is_success() {
                println!("replaced {id}");
            }
            return report(response).await;
        }
        // Nothing deployed under that id yet: deploy it.
    }
    let response = send(reqwest::Method::POST, "/processes".to_owned()).await?;
    if response.status() == reqwest::StatusCode::CONFLICT {
        let text = response.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_owned))
            .unwrap_or(text);
        let id_flag = args
            .id
            .as_ref()
            .map(|id| format!(" --id {id}"))
            .unwrap_or_default();
        eprintln!(
            "error: {detail} (HTTP 409 Conflict).\nTo replace the deployed version (jobs already \
             accepted finish on it), run:\n    wasmproc deploy {file}{id_flag} --replace\nor \
             deploy under another id with --id NEW-ID.",
            file = args.file.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    report(response).await
}

/// The module's description, compiled through the per-user artifact
/// cache of `wasmproc run`.
///
/// Needed when the id is not known from the flags (`replace` without
/// `--id` must name the process in its URL) or a package must carry the
/// description (`--id`). Loading runs the guest's `describe()` in the
/// local sandbox; a file that is not a loadable component fails here,
/// before anything is sent.
async fn describe_locally(wasm: &[u8]) -> anyhow::Result<Value> {
    let runtime = wasmproc::runtime::Runtime::new(super::run::default_runtime_config())?;
    let module = runtime.load(wasm.to_vec()).await?;
    Ok(module.description().clone())
}

/// Undeploy processes: one `DELETE /processes/{id}` per id, in the order
/// given, printing `undeployed ID` or the server's error for each.
///
/// Exit 1 when any id failed (404 for an unknown one, 403 for a built-in
/// or processes-directory one); a connection failure ends the command at
/// once with exit 2, whatever ids are left.
pub(crate) async fn undeploy(args: UndeployArgs) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for id in &args.ids {
        let response = request(
            &args.server,
            reqwest::Method::DELETE,
            &format!("/processes/{id}"),
        )?
        .send()
        .await
        .context("contacting the server")?;
        if report(response).await? != ExitCode::SUCCESS {
            code = ExitCode::FAILURE;
        } else {
            println!("undeployed {id}");
        }
    }
    Ok(code)
}

/// List processes: id, version, mutable, title.
///
/// One tab-separated line per process, in the server's order, for
/// scripts (`cut -f1` gives the ids). The third column is `mutable` for a
/// deployed process and `built-in` for one the API cannot change (built
/// in or from the processes directory). A field the summary lacks is
/// printed empty. Pages of up to 10000 processes (the server's largest
/// `limit`) are asked for, following each page's `next` link, at most
/// [`MAX_PAGES`] of them.
pub(crate) async fn processes(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let mut url = format!("{}/processes?limit=10000", args.url.trim_end_matches('/'));
    for _ in 0..MAX_PAGES {
        let response = request_url(&args, reqwest::Method::GET, &url)?
            .send()
            .await
            .context("contacting the server")?;
        if !response.status().is_success() {
            return report(response).await;
        }
        let list: Value = response.json().await.context("reading the process list")?;
        for process in list["processes"].as_array().into_iter().flatten() {
            println!(
                "{}\t{}\t{}\t{}",
                process["id"].as_str().unwrap_or(""),
                process["version"].as_str().unwrap_or(""),
                if process["mutable"].as_bool().unwrap_or(false) {
                    "mutable"
                } else {
                    "built-in"
                },
                process["title"].as_str().unwrap_or("")
            );
        }
        let next = list["links"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|link| link["rel"] == "next")
            .and_then(|link| link["href"].as_str());
        match next {
            Some(next) => url = next.to_owned(),
            None => return Ok(ExitCode::SUCCESS),
        }
    }
    anyhow::bail!("the server gave more than {MAX_PAGES} pages of processes")
}
