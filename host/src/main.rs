//! The `wasmproc` command line. Run `wasmproc --help`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc malloc: the job path allocates and frees many
/// small buffers on several threads (HTTP, sled, wasmtime), where glibc's
/// allocator showed as ~15% of the server's CPU in the sync-path profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
