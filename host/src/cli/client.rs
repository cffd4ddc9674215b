//! `wasmproc deploy | replace | undeploy | processes`: the client side of
//! OGC API - Processes Part 2, against a running server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use clap::Args;
use serde_json::{Value, json};

/// Where the server is and how to authenticate.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:5000", env = "WASMPROC_URL")]
    url: String,
    /// Admin bearer token.
    #[arg(long, env = "WASMPROC_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Arguments of `deploy` and `replace`.
#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// The component (.wasm).
    file: PathBuf,
    /// Deploy under this id (overrides the id in the module's description).
    #[arg(long)]
    id: Option<String>,
    /// Replace the process when one with this id is deployed already
    /// (`PUT /processes/{id}`; jobs already accepted finish on the old
    /// version); deploy it when none is.
    #[arg(long)]
    replace: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// Arguments of `undeploy`.
#[derive(Debug, Args)]
pub(crate) struct UndeployArgs {
    /// Process ids.
    #[arg(required = true)]
    ids: Vec<String>,
    #[command(flatten)]
    server: ServerArgs,
}

fn request(server: &ServerArgs, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    let url = format!("{}{path}", server.url.trim_end_matches('/'));
    let builder = reqwest::Client::new().request(method, url);
    match &server.token {
        Some(token) => builder.bearer_auth(token),
        None => builder,
    }
}

/// Print the server's answer; exit 1 when it is an error.
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
        let builder = request(&args.server, method, &path);
        let builder = match &package {
            Some(package) => builder
                .header("content-type", "application/ogcapppkg+json")
                .json(package),
            None => builder
                .header("content-type", "application/wasm")
                .body(wasm.clone()),
        };
        async move { builder.send().await.context("contacting the server") }
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
async fn describe_locally(wasm: &[u8]) -> anyhow::Result<Value> {
    let runtime = wasmproc::runtime::Runtime::new(super::run::default_runtime_config())?;
    let module = runtime.load(wasm.to_vec()).await?;
    Ok(module.description().clone())
}

/// Undeploy processes.
pub(crate) async fn undeploy(args: UndeployArgs) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for id in &args.ids {
        let response = request(
            &args.server,
            reqwest::Method::DELETE,
            &format!("/processes/{id}"),
        )
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
pub(crate) async fn processes(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let response = request(&args, reqwest::Method::GET, "/processes?limit=10000")
        .send()
        .await
        .context("contacting the server")?;
    if !response.status().is_success() {
        return report(response).await;
    }
    let list: Value = response.json().await?;
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
    Ok(ExitCode::SUCCESS)
}
