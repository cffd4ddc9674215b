//! `wasmproc run` and `wasmproc describe`: one module, locally.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine as _;
use bytesize::ByteSize;
use clap::Args;
use tokio_util::sync::CancellationToken;
use wasmproc::jobs::InputValidator;
use wasmproc::runtime::{
    Limits, NoProgress, OutputValue, ProcessModule, RunOutcome, Runtime, RuntimeConfig,
};

/// Arguments of `wasmproc run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The component (.wasm).
    file: PathBuf,
    /// The inputs as a JSON object keyed by input id.
    #[arg(long, default_value = "{}")]
    inputs: String,
    /// Fuel budget (instructions).
    #[arg(long)]
    fuel: Option<u64>,
    /// Linear memory budget, e.g. `64MiB`.
    #[arg(long)]
    memory: Option<ByteSize>,
    /// Wall-clock budget, e.g. `10s` or `500ms`.
    #[arg(long)]
    timeout: Option<humantime::Duration>,
    /// Output size budget, e.g. `1MiB`.
    #[arg(long)]
    output_limit: Option<ByteSize>,
    /// Print the job log to stderr after the run.
    #[arg(long)]
    show_log: bool,
}

async fn load(file: &PathBuf, runtime: &Runtime) -> anyhow::Result<ProcessModule> {
    let wasm = tokio::fs::read(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    runtime
        .load(wasm)
        .await
        .with_context(|| format!("loading {}", file.display()))
}

/// `wasmproc describe FILE`: print the process description.
pub(crate) async fn describe(file: PathBuf) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let module = load(&file, &runtime).await?;
    println!("{}", serde_json::to_string_pretty(module.description())?);
    Ok(ExitCode::SUCCESS)
}

/// `wasmproc run FILE --inputs JSON`: print outputs as JSON on stdout and a
/// stats line on stderr; exit 1 when the run fails.
pub(crate) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let defaults = Limits::default();
    let limits = Limits {
        fuel: args.fuel.unwrap_or(defaults.fuel),
        memory_bytes: args.memory.map_or(defaults.memory_bytes, |m| m.as_u64()),
        timeout: args.timeout.map_or(defaults.timeout, Into::into),
        output_bytes: args
            .output_limit
            .map_or(defaults.output_bytes, |m| m.as_u64()),
        log_bytes: defaults.log_bytes,
    };
    let mut config = RuntimeConfig::default();
    config.engine.max_memory_bytes = config.engine.max_memory_bytes.max(limits.memory_bytes);
    let runtime = Runtime::new(config)?;
    let inputs: serde_json::Value =
        serde_json::from_str(&args.inputs).context("--inputs is not valid JSON")?;
    anyhow::ensure!(inputs.is_object(), "--inputs must be a JSON object");
    let module = load(&args.file, &runtime).await?;

    let report = runtime
        .run(
            &module,
            &args.inputs,
            &limits,
            Arc::new(NoProgress),
            &CancellationToken::new(),
        )
        .await;
    // The server's output checks too (declared ids, each once, media types
    // the description does not contradict), so a local run fails where a
    // job would.
    let outcome = match InputValidator::new(module.description()) {
        Ok(rules) => rules.check_outputs(report.outcome),
        Err(_) => report.outcome,
    };
    if args.show_log && !report.log.is_empty() {
        eprintln!("--- job log ---\n{}--- end of log ---", report.log);
    }
    let stats = &report.stats;
    eprintln!(
        "outcome={} fuel={} peak_memory={} duration={:?}",
        outcome.kind(),
        stats.fuel_consumed,
        ByteSize(stats.peak_memory_bytes),
        stats.duration
    );
    match &outcome {
        RunOutcome::Success { outputs } => {
            let mut document = serde_json::Map::new();
            for output in outputs {
                let value = match &output.value {
                    OutputValue::Json(value) => value.clone(),
                    OutputValue::Bytes(bytes) => serde_json::json!({
                        "value": base64::engine::general_purpose::STANDARD.encode(bytes),
                        "encoding": "base64",
                        "mediaType": output.media_type,
                    }),
                };
                document.insert(output.id.clone(), value);
            }
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(ExitCode::SUCCESS)
        }
        failed => {
            eprintln!("error: {}", failed.failure_reason().unwrap_or_default());
            Ok(ExitCode::FAILURE)
        }
    }
}
