//! Command-line parsing and the subcommands. `anyhow` lives here, at the
//! binary's edge; the library returns typed errors.
//!
//! The commands fall in three groups:
//!
//! - **The server**: `serve` builds a [`wasmproc::config::Config`] from
//!   the file, the environment and the flags, and hands it to
//!   [`wasmproc::server::serve`], which runs until SIGINT or SIGTERM.
//!   `config check` builds the same configuration without the flags and
//!   prints it instead of serving.
//! - **Local, no server**: `run` and `describe` (`run.rs`) load a
//!   component with the server's runtime and sandbox; `new` (`new.rs`)
//!   writes a project folder; `key new` (`key.rs`) prints an API key.
//! - **Clients of a running server**: `deploy`, `replace`, `undeploy` and
//!   `processes` (`client.rs`) make the HTTP calls of OGC API - Processes
//!   Part 2 against `--url`, with `--token` as the bearer token.
//!
//! Where a setting of `serve` comes from, first match wins: the flag, the
//! flag's `WASMPROC_*` environment variable (clap reads both), the config
//! file, the built-in default. Two settings have no flag because a flag
//! shows in `ps`: `WASMPROC_ADMIN_TOKEN` and `WASMPROC_DATABASE_URL`
//! override the file (see `load_config`).
//!
//! Exit statuses: a command returns the `ExitCode` for what it found (0,
//! or 1 for a "no": a failed run, an HTTP error, a configuration that does
//! not check) and an `Err` when it could not do its work; `main.rs` prints
//! the error and exits 2, the status clap uses for usage errors too.

mod client;
mod key;
mod new;
mod run;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wasmproc::config::{NodeRole, StoreBackend};
use wasmproc::telemetry::{LogFormat, init_logging};

/// wasmproc: OGC API - Processes with WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "wasmproc", version, about)]
pub(crate) struct Cli {
    // The `about` above is the crate's description (Cargo.toml); a second
    // paragraph in this doc comment would become the `--help` text.
    /// The one subcommand; `wasmproc` without one prints the usage and
    /// exits 2.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands. Each variant's doc comment is its line in
/// `wasmproc --help` and the heading of its own `--help`; `main` below
/// says which function runs each.
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the OGC API - Processes HTTP API.
    Serve(ServeArgs),
    /// Run a process module once, locally, in the same sandbox as the server.
    Run(run::RunArgs),
    /// Create a process project (Rust, Python, JavaScript or C) that builds
    /// with one command and runs with `wasmproc run`.
    New(new::NewArgs),
    /// Deploy a component to a running server (OGC API - Processes Part 2).
    Deploy(client::DeployArgs),
    /// Replace a deployed process with a new component.
    Replace(client::DeployArgs),
    /// Undeploy processes from a running server.
    Undeploy(client::UndeployArgs),
    /// List the processes of a running server.
    Processes(client::ServerArgs),
    /// Print a module's OGC process description.
    Describe {
        /// The component (.wasm).
        file: PathBuf,
        /// `--cache-dir` and `--no-cache`, as for `run`: describing
        /// compiles the component, and the cache makes that once.
        #[command(flatten)]
        cache: run::CacheArgs,
    },
    /// Inspect the server configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Make API keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `wasmproc key …`: only `new` so far. Keys are never listed or revoked
/// from here: the server knows them from its configuration, so revoking
/// one is deleting its `[[auth.keys]]` table and restarting.
#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Print a new random API key and the `[[auth.keys]]` table (name,
    /// role, SHA-256 of the key) that makes the server accept it.
    New(key::NewKeyArgs),
}

/// `wasmproc config …`: commands that read the server's configuration
/// without starting a server.
#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (TOML: defaults filled in, each
    /// process's limits resolved, the admin token redacted) and exit 1 if
    /// the settings contradict each other, as `serve` would refuse them.
    Check {
        /// A TOML config file (see README); without one, the defaults.
        #[arg(long, env = "WASMPROC_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// Arguments of `wasmproc serve`; flags override the config file.
///
/// Every flag is optional and stays `None` when not given, so that an
/// absent flag leaves the file's setting (or the default) in place;
/// `serve` copies only the flags that were given over the loaded
/// configuration. Each flag can also come from its `WASMPROC_*`
/// environment variable.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// A TOML config file (see README); every setting has a default.
    #[arg(long, env = "WASMPROC_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:5000).
    ///
    /// Port 0 takes a free port; the `wasmproc listening on` line printed
    /// at start-up names the one bound (unless `public_url` is set, which
    /// links use instead). A `worker` node listens on nothing.
    #[arg(long, env = "WASMPROC_BIND")]
    bind: Option<SocketAddr>,
    /// Directory of the database and artifact cache (default ./wasmproc-data).
    ///
    /// Created if missing. It holds the sled database (not used with
    /// PostgreSQL) and `artifacts/`, the compiled components that spare a
    /// restart from compiling every process again.
    #[arg(long, env = "WASMPROC_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A directory of .wasm process modules to serve (immutable).
    ///
    /// Every `*.wasm` file in it (not in subfolders) is loaded at start-up,
    /// in file-name order, as a process the API cannot replace or
    /// undeploy. A file that does not load stops the start-up, naming it.
    #[arg(long, env = "WASMPROC_PROCESSES")]
    processes: Option<PathBuf>,
    /// Jobs this node runs at once (default: its cores). 0 makes an
    /// API-only node of a cluster: it runs no jobs itself.
    #[arg(long, env = "WASMPROC_WORKERS")]
    workers: Option<usize>,
    /// `all` (default), `api` (serve the API, run no jobs) or `worker` (run
    /// async jobs, no HTTP listener). `api` and `worker` need the
    /// PostgreSQL store.
    #[arg(long, env = "WASMPROC_ROLE", value_parser = ["all", "api", "worker"])]
    role: Option<String>,
    /// This node's name in a cluster (default: host name and port).
    #[arg(long, env = "WASMPROC_NODE_NAME")]
    node_name: Option<String>,
    /// The server's own log on stderr: `text` (default) or `json` (one
    /// object per line with the request and job ids). Overrides
    /// `log_format` of the config.
    #[arg(long, env = "WASMPROC_LOG_FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
}

/// The file's settings (or the defaults), with the admin token from
/// `WASMPROC_ADMIN_TOKEN` when it is set: what `serve` and `config check`
/// both start from.
///
/// A set, non-empty `WASMPROC_DATABASE_URL` also switches the store to
/// PostgreSQL, whatever the file's `store.backend` says: the URL would be
/// of no use to sled. Empty variables count as unset, so `VAR=` in a
/// service file does not install an empty token. A file that cannot be
/// read or is not valid TOML for `Config` (unknown keys included) is an
/// error naming the file; nothing is validated here (`Config::validate`
/// is the caller's, or the server's, business).
fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<wasmproc::config::Config> {
    let mut config = match path {
        Some(path) => wasmproc::config::Config::from_file(path)?,
        None => wasmproc::config::Config::default(),
    };
    if let Ok(token) = std::env::var("WASMPROC_ADMIN_TOKEN")
        && !token.is_empty()
    {
        config.auth.admin_token = Some(wasmproc::config::Secret::new(token));
    }
    // The URL carries a password: the environment, not a flag that shows
    // in `ps`.
    if let Ok(url) = std::env::var("WASMPROC_DATABASE_URL")
        && !url.is_empty()
    {
        config.store.backend = StoreBackend::Postgres;
        config.store.url = Some(wasmproc::config::Secret::new(url));
    }
    Ok(config)
}

/// `wasmproc config check`: the effective configuration on stdout; exit 0
/// when `serve` would accept it, 1 with every contradiction on stderr when
/// not (2, from `main`, when the file cannot be read or parsed).
fn config_check(path: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let config = load_config(path)?;
    print!("{}", config.effective_toml()?);
    match config.validate() {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `wasmproc serve`: the configuration (file, environment, then flags),
/// the log subscriber, a multi-threaded tokio runtime for HTTP, and
/// [`wasmproc::server::serve`] on it until a signal ends it. Returns
/// success after a clean shutdown; an error (invalid configuration, store
/// or port unavailable, a process that does not load) is reported by
/// `main` with exit status 2.
///
/// `--workers 0` also makes the node API-only, the one role validation
/// accepts with no workers; an explicit `--role` is applied after it and
/// wins, so `--workers 0 --role all` is refused by validation rather than
/// silently changed.
fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = load_config(args.config.as_deref())?;
    if let Some(bind) = args.bind {
        config.bind = bind;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(dir) = args.processes {
        config.processes_dir = Some(dir);
    }
    if let Some(workers) = args.workers {
        config.execution.max_concurrent_jobs = workers;
        if workers == 0 {
            config.cluster.role = NodeRole::Api;
        }
    }
    if let Some(role) = args.role.as_deref() {
        config.cluster.role = match role {
            "api" => NodeRole::Api,
            "worker" => NodeRole::Worker,
            _ => NodeRole::All,
        };
    }
    if let Some(name) = args.node_name {
        config.cluster.node_name = Some(name);
    }
    if let Some(format) = args.log_format.as_deref().and_then(LogFormat::parse) {
        config.log_format = format;
    }
    init_logging(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(wasmproc::server::serve(config))?;
    Ok(ExitCode::SUCCESS)
}

/// Run the parsed command; the exit code says whether it succeeded.
///
/// `serve` installs the log subscriber itself, once its configuration
/// (which may ask for JSON lines) is read; every other command logs text.
pub(crate) fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    if !matches!(cli.command, Command::Serve(_)) {
        init_logging(LogFormat::Text);
    }
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Run(args) => block_on(run::run(args)),
        Command::New(args) => new::new_project(args),
        Command::Describe { file, cache } => block_on(run::describe(file, cache)),
        Command::Deploy(args) => block_on(client::deploy(args, false)),
        Command::Replace(args) => block_on(client::deploy(args, true)),
        Command::Undeploy(args) => block_on(client::undeploy(args)),
        Command::Processes(args) => block_on(client::processes(args)),
        Command::Config(ConfigCommand::Check { config }) => config_check(config.as_deref()),
        Command::Key(KeyCommand::New(args)) => key::new_key_command(args),
    }
}

/// Run an async command on a fresh multi-threaded tokio runtime. Each
/// client and local command gets its own (they run one at a time, in a
/// short-lived process); `serve` builds its runtime itself, after the
/// logging is set up.
fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    future: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
}
