//! The `wasmproc` command line. Run `wasmproc --help`.
//!
//! This file only sets the process up (allocator, backtrace policy) and
//! turns the outcome of a command into an exit status; parsing and the
//! commands themselves are in `cli`, the server in the library crate.
//!
//! Exit statuses, for every command: 0 on success; 1 when the command ran
//! and its answer is "no" (a failed run, a refused deploy, a configuration
//! that does not check); 2 when it could not do its work at all (a file
//! that cannot be read, a server that cannot be reached, a usage error
//! reported by clap). The error of a 2 is printed on stderr as `error: `
//! followed by its whole chain of causes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc malloc: the job path allocates and frees many
/// small buffers on several threads (HTTP, sled, wasmtime), where glibc's
/// allocator showed as ~15% of the server's CPU in the sync-path profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Parse the arguments, run the command and map its result to the exit
/// status; an error (`anyhow`, with its causes joined by `: `) becomes 2.
fn main() -> ExitCode {
    // Traps would otherwise capture host backtraces (slow, and kilobytes of
    // host frames in error text); we report wasm backtraces instead.
    // SAFETY: called first thing in `main`, before any thread exists.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let args = cli::Cli::parse();
    match cli::main(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
