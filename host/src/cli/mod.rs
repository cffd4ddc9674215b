//! Command-line parsing and the subcommands. `anyhow` lives here, at the
//! binary's edge; the library returns typed errors.

mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// wasmproc: OGC API - Processes with WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "wasmproc", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a process module once, locally, in the same sandbox as the server.
    Run(run::RunArgs),
    /// Print a module's OGC process description.
    Describe {
        /// The component (.wasm).
        file: PathBuf,
    },
}

/// Run the parsed command; the exit code says whether it succeeded.
pub(crate) fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Run(args) => runtime.block_on(run::run(args)),
        Command::Describe { file } => runtime.block_on(run::describe(file)),
    }
}
