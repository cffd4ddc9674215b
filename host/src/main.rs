//! The `wasmproc` command line. Run `wasmproc --help`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

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
