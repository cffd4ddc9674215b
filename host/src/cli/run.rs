//! `wasmproc run` and `wasmproc describe`: one module, locally.
//!
//! On a terminal, `run` draws a progress bar on stderr (compiling, then the
//! guest's own `progress` reports, with the elapsed time) and clears it
//! before the stats line. When stderr is not a terminal (a pipe, a file, a
//! test) the bar is hidden and stderr carries exactly the stats line, the
//! error and, with `--show-log`, the log lines.
//!
//! Both keep the server's artifact cache (`runtime/artifact_cache.rs`) in a
//! per-user directory, so a second run of the same component skips the
//! compile (seconds for Python and JavaScript components) and the stats
//! line says `compile=cached`.
//!
//! # What `run` does, in order
//! 1. Build a [`Runtime`] with the server's code (engine, linker,
//!    sandbox) and default settings, its memory cap raised to `--memory`
//!    when that is above the engine's default of 1 GiB.
//! 2. Parse `--inputs`; it must be a JSON object.
//! 3. Load the file: compile it (or take the cached artifact) and call the
//!    guest's `describe()`, under the runtime's own describe budget.
//! 4. Unless `--no-validate`: build the input rules from the description
//!    (rules that cannot be built, which the server would refuse to
//!    deploy, stop here), check the inputs against them, fetch `href`
//!    inputs through the SSRF guard and check again; see
//!    [`check_inputs`].
//! 5. Run the guest with the limits of the flags (each defaulting to the
//!    server's [`Limits::default`]), the bar following its progress and,
//!    with `--show-log`, its log lines going to stderr as they come.
//! 6. Unless `--no-validate`, hold the outputs to the description as the
//!    server does with `output_checks = "strict"`.
//! 7. Print the stats line, then the outputs or the failure.
//!
//! Exit statuses: 0 when the run succeeded (and its outputs passed the
//! checks); 1 when the guest ran and failed (fuel, memory, timeout, a trap,
//! its own error, invalid outputs); 2, through `main`, when it never ran
//! (unreadable or invalid file, bad `--inputs`, inputs the server would
//! refuse, a cache directory that cannot be opened).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use bytesize::ByteSize;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;
use wasmproc::config::HrefConfig;
use wasmproc::jobs::{AddressGuard, GuardedClient, InputValidator, resolve_references};
use wasmproc::runtime::{
    JobLog, Limits, LogSink, OutputValue, ProcessModule, ProgressSink, RunOutcome, Runtime,
    RuntimeConfig,
};

/// Arguments of `wasmproc run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The component (.wasm).
    file: PathBuf,
    /// The inputs as a JSON object keyed by input id.
    ///
    /// The `inputs` member of an execute request, as `POST
    /// /processes/{id}/execution` takes it: plain values, qualified values
    /// (`{"value": …, "mediaType": …}`) and `href` references.
    #[arg(long, default_value = "{}")]
    inputs: String,
    /// Fuel budget (instructions).
    ///
    /// Default: the server's default limit, 10^11. A guest that burns it
    /// all stops with `outcome=fuel-exhausted`.
    #[arg(long)]
    fuel: Option<u64>,
    /// Linear memory budget, e.g. `64MiB`.
    ///
    /// Default: the server's default limit, 256 MiB. Unlike on a server,
    /// no maximum caps it: a local run may ask for more than 1 GiB.
    #[arg(long)]
    memory: Option<ByteSize>,
    /// Wall-clock budget, e.g. `10s` or `500ms`.
    ///
    /// Default: the server's default limit, one minute. It counts the run
    /// only, not the compile before it.
    #[arg(long)]
    timeout: Option<humantime::Duration>,
    /// Output size budget, e.g. `1MiB`.
    ///
    /// Default: the server's default limit, 64 MiB.
    #[arg(long)]
    output_limit: Option<ByteSize>,
    /// Print the job log's lines (the guest's `log` calls, stdout and
    /// stderr, each with its time and source) to stderr as they are written.
    #[arg(long)]
    show_log: bool,
    /// Skip the server's checks: inputs against the description (unknown
    /// ids, required ones, min/maxOccurs, schemas, media types) before the
    /// run, outputs against the declared output schemas after it.
    #[arg(long)]
    no_validate: bool,
    /// A host `href` inputs may be fetched from although it is loopback or
    /// private (repeatable): the server's `href.allowed_hosts`. Without
    /// one, only public hosts are fetched, as on a server with the default
    /// configuration.
    ///
    /// As on the server, a non-empty list means only these hosts: once
    /// one is given, a public host that is not listed is refused too.
    #[arg(long = "allow-href-host", value_name = "HOST")]
    allow_href_hosts: Vec<String>,
    /// `--cache-dir` and `--no-cache`, shared with `describe`.
    #[command(flatten)]
    cache: CacheArgs,
}

/// Where `run` and `describe` keep compiled components.
#[derive(Debug, Args)]
pub(crate) struct CacheArgs {
    /// The artifact cache: compiled components, keyed by the module's
    /// sha256 and the engine's compatibility hash, as the server keeps
    /// them in `data_dir/artifacts`. Default `$XDG_CACHE_HOME/wasmproc`,
    /// else `~/.cache/wasmproc`.
    ///
    /// The artifacts go in its `artifacts/` subfolder, which is bounded
    /// like the server's cache (2 GiB, least recently used first). An
    /// artifact made by another engine version is not used; the
    /// component is compiled again.
    #[arg(long, env = "WASMPROC_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every time; read and write no cache.
    #[arg(long)]
    no_cache: bool,
}

impl CacheArgs {
    /// The artifact directory, if caching: `--cache-dir`, else the XDG
    /// cache directory, else none (no home, nowhere to write).
    fn artifact_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        let base = self.cache_dir.clone().or_else(|| {
            let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty());
            xdg.map(|dir| PathBuf::from(dir).join("wasmproc"))
                .or_else(|| {
                    std::env::var_os("HOME")
                        .filter(|v| !v.is_empty())
                        .map(|home| PathBuf::from(home).join(".cache"))
                        .map(|cache| cache.join("wasmproc"))
                })
        })?;
        Some(base.join("artifacts"))
    }

    /// A runtime config with the cache set (a cache that cannot be
    /// opened is reported by `Runtime::new`).
    fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            artifact_dir: self.artifact_dir(),
            ..RuntimeConfig::default()
        }
    }
}

/// How often the bar redraws by itself, so the spinner and elapsed time
/// move while a guest computes without reporting progress (indicatif
/// redraws at most 20 times a second anyway).
const BAR_TICK: Duration = Duration::from_millis(100);

/// The progress bar on stderr when it is a terminal; a hidden bar, which
/// draws nothing, otherwise.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(100);
    // The template is a constant; it parses, or every run would fail.
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:30}] {pos:>3}% {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(BAR_TICK);
    bar
}

/// The runtime settings of `deploy` and `replace` (which describe the
/// module locally): the cache of `run`, from `WASMPROC_CACHE_DIR` or the
/// XDG default.
pub(crate) fn default_runtime_config() -> RuntimeConfig {
    CacheArgs {
        cache_dir: std::env::var_os("WASMPROC_CACHE_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        no_cache: false,
    }
    .runtime_config()
}

/// The guest's `progress(percent, message)` moves the bar.
///
/// A message stays until the next one replaces it, so a guest that
/// reports only percentages keeps the last message it sent (or
/// `running`). The hidden bar of a non-terminal ignores both.
struct BarProgress(ProgressBar);

impl ProgressSink for BarProgress {
    fn progress(&self, percent: u8, message: Option<String>) {
        self.0.set_position(u64::from(percent));
        if let Some(message) = message {
            self.0.set_message(message);
        }
    }
}

/// `--show-log`: each log line to stderr as soon as it is complete. The bar
/// is lifted while the line is written (`suspend`), so lines scroll above
/// it instead of mixing with it; a hidden bar just writes.
struct StderrLog(ProgressBar);

impl LogSink for StderrLog {
    fn line(&self, line: &str) {
        self.0.suspend(|| eprintln!("{line}"));
    }
}

/// Read `file` and load it on `runtime`: compile (or take the cached
/// artifact), link and run its `describe()`. Either failure names the
/// file (`reading …`, `loading …`) ahead of the reason.
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
///
/// The description is what the guest's `describe()` returns, pretty
/// printed as JSON on stdout. Loading only requires a JSON object of at
/// most 1 MiB; the checks a deploy adds (the OGC `process.yaml` schema,
/// the id, the input rules) are not made, so a description the server
/// would refuse is still printed, which helps to see why.
pub(crate) async fn describe(file: PathBuf, cache: CacheArgs) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(cache.runtime_config())?;
    let module = load(&file, &runtime).await?;
    println!("{}", serde_json::to_string_pretty(module.description())?);
    Ok(ExitCode::SUCCESS)
}

/// The server's input checks, in its order: the request's inputs against
/// the description (what the API does before accepting a job), then the
/// `href` inputs fetched through the SSRF guard and checked again (what a
/// job does before its guest starts).
async fn check_inputs(
    rules: &InputValidator,
    inputs: &mut serde_json::Map<String, serde_json::Value>,
    href: &HrefConfig,
) -> Result<(), String> {
    rules.validate(inputs).map_err(|e| e.to_string())?;
    let client = GuardedClient::new(AddressGuard::for_href(href));
    resolve_references(&client, inputs, rules, href)
        .await
        .map_err(|e| e.to_string())
}

/// `wasmproc run FILE --inputs JSON`: print outputs as JSON on stdout and a
/// stats line on stderr; exit 1 when the run fails.
///
/// The outputs are one JSON object keyed by output id: a JSON output as
/// its value, a binary one as `{"value", "encoding": "base64",
/// "mediaType"}`. The stats line, `outcome= fuel= peak_memory= duration=
/// compile=`, is printed whatever the outcome, so a script can read the
/// cost of a failed run too; `compile=` is the time loading took (compile
/// and `describe()`), or `cached`. A failure adds `error: ` and the same
/// reason a failed job's status would carry.
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
    let mut config = args.cache.runtime_config();
    config.engine.max_memory_bytes = config.engine.max_memory_bytes.max(limits.memory_bytes);
    let runtime = Runtime::new(config)?;
    let inputs: serde_json::Value =
        serde_json::from_str(&args.inputs).context("--inputs is not valid JSON")?;
    let serde_json::Value::Object(mut inputs) = inputs else {
        anyhow::bail!("--inputs must be a JSON object");
    };
    let bar = progress_bar();
    bar.set_message(format!("compiling {}", args.file.display()));
    let started = std::time::Instant::now();
    let module = match load(&args.file, &runtime).await {
        Ok(module) => module,
        Err(error) => {
            bar.finish_and_clear();
            return Err(error);
        }
    };
    // What loading cost: a compile, or a cached artifact (milliseconds).
    let compile = if module.from_cache() {
        "cached".to_owned()
    } else {
        format!("{:?}", started.elapsed())
    };
    let rules = if args.no_validate {
        None
    } else {
        match InputValidator::new(module.description()) {
            Ok(rules) => Some(rules),
            Err(error) => {
                bar.finish_and_clear();
                anyhow::bail!(
                    "{}: {error}; the server would refuse to deploy it (fix describe(), or pass \
                     --no-validate to run it anyway)",
                    args.file.display()
                );
            }
        }
    };
    if let Some(rules) = &rules {
        bar.set_message("checking inputs");
        let href = HrefConfig {
            allowed_hosts: args.allow_href_hosts.clone(),
            ..HrefConfig::default()
        };
        let checked = check_inputs(rules, &mut inputs, &href).await;
        if let Err(reason) = checked {
            bar.finish_and_clear();
            if reason.contains("href.allowed_hosts") {
                // The guard's reason reads "host 'NAME' resolves to …"
                // or "host 'NAME' is not in href.allowed_hosts".
                let host = reason
                    .split_once("host '")
                    .and_then(|(_, rest)| rest.split_once('\''))
                    .map_or("HOST", |(host, _)| host);
                anyhow::bail!(
                    "invalid inputs: {reason}\nA server refuses it too unless href.allowed_hosts \
                     lists the host; locally, pass --allow-href-host {host} (the same setting)."
                );
            }
            anyhow::bail!(
                "invalid inputs: {reason}\nThe server would refuse this request too (400). Fix \
                 --inputs (`wasmproc describe {file}` lists the inputs and their schemas), or \
                 pass --no-validate to run without the checks.",
                file = args.file.display()
            );
        }
    }
    let inputs = serde_json::Value::Object(inputs).to_string();
    bar.set_message("running");

    let mut log = JobLog::new(limits.log_bytes);
    if args.show_log {
        log = log.with_sink(Arc::new(StderrLog(bar.clone())));
    }
    let report = runtime
        .run(
            &module,
            &inputs,
            &limits,
            Arc::new(BarProgress(bar.clone())),
            &CancellationToken::new(),
            log,
        )
        .await;
    bar.finish_and_clear();
    // The server's output checks too (declared ids, each once, values
    // valid against their schemas, media types the description does not
    // contradict), so a local run fails where a job would.
    let outcome = match &rules {
        Some(rules) => rules.check_outputs(report.outcome),
        None => report.outcome,
    };
    let stats = &report.stats;
    eprintln!(
        "outcome={} fuel={} peak_memory={} duration={:?} compile={compile}",
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
            if let RunOutcome::InvalidOutput { .. } = failed {
                // The reason already says what to fix.
                eprintln!(
                    "The server would fail this job too (unless output_checks = \"warn\" for \
                     it); --no-validate skips this check."
                );
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
