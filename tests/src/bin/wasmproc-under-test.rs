//! The wasmproc server as a separate process, for the crash tests:
//! `wasmproc-under-test CONFIG.toml` serves until SIGINT/SIGTERM (or kill -9)
//! and first prints `wasmproc listening on http://127.0.0.1:PORT`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        eprintln!("usage: wasmproc-under-test CONFIG.toml");
        return ExitCode::from(2);
    };
    let config = match wasmproc::config::Config::from_file(&PathBuf::from(path)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // The log on stderr, as `wasmproc serve` writes it (tests read it),
    // in the config's `log_format`.
    wasmproc::telemetry::init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(wasmproc::server::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasmproc: {e}");
            ExitCode::FAILURE
        }
    }
}
