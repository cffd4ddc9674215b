//! Serving a benchmark endpoint: shared by the ceiling and the floor, so
//! both stand on the same axum server with the same checks.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;

/// Serve `app` on `addr` (a loopback address only) until Ctrl-C,
/// printing `NAME listening on http://ADDR` once bound. Exit 2 for a bad
/// address, 1 when binding or serving fails.
pub(crate) async fn serve(name: &str, addr: &str, app: Router) -> ExitCode {
    let addr: SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("invalid address {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    if !addr.ip().is_loopback() {
        eprintln!("the {name} listens on loopback addresses only, not {addr}");
        return ExitCode::from(2);
    }
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot bind {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    println!("{name} listening on http://{addr}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serving failed: {e}");
            ExitCode::from(1)
        }
    }
}
