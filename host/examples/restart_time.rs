//! Time to ready after a restart with 50 deployed processes, with the
//! compiled-artifact cache and without it.
//!
//! Run with `cargo run --release -p wasmproc --example restart_time`.
//!
//! Deploys 50 distinct modules (hello-world with a unique custom section
//! each, so each has its own sha256 and its own compilation) over HTTP to a
//! server on 127.0.0.1, stops it, then times `Server::start` on the same
//! data directory: once as is (artifacts cached), once after deleting the
//! artifact directory (every module recompiled).

use std::time::{Duration, Instant};

use wasmproc::config::{Config, Secret};
use wasmproc::server::Server;

const PROCESSES: usize = 50;
const TOKEN: &str = "restart-bench";

/// A copy of `wasm` with a custom section named `name` appended: a valid
/// component with a different sha256.
fn with_custom_section(wasm: &[u8], name: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut contents = Vec::new();
    leb(name.len(), &mut contents);
    contents.extend_from_slice(name.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0);
    leb(contents.len(), &mut out);
    out.extend_from_slice(&contents);
    out
}

fn config(dir: &std::path::Path) -> Config {
    let mut config = Config {
        bind: "127.0.0.1:0".parse().expect("address"),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.auth.admin_token = Some(Secret::new(TOKEN));
    config
}

async fn time_start(dir: &std::path::Path) -> Duration {
    let started = Instant::now();
    let server = Server::start(config(dir)).await.expect("server starts");
    let elapsed = started.elapsed();
    let list: serde_json::Value =
        reqwest::get(format!("{}/processes?limit=100", server.base_url()))
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
    let count = list["processes"].as_array().map_or(0, Vec::len);
    assert_eq!(
        count,
        PROCESSES + 3,
        "all deployed processes are back (plus 3 built-ins)"
    );
    server.shutdown().await.expect("shutdown");
    elapsed
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hello = std::fs::read(env!("WASMPROC_GUEST_HELLO_WORLD")).expect("hello-world built");
    let server = Server::start(config(dir.path()))
        .await
        .expect("server starts");
    let client = reqwest::Client::new();
    let deploying = Instant::now();
    for i in 0..PROCESSES {
        let description = serde_json::json!({
            "id": format!("hello-{i}"), "version": "1.0.0", "title": format!("Hello {i}"),
            "inputs": { "name": { "schema": { "type": "string" } } },
            "outputs": { "echo": { "schema": { "type": "string" } } }
        });
        let wasm = with_custom_section(&hello, &format!("wasmproc-bench-{i}"));
        let package = serde_json::json!({
            "processDescription": { "process": description },
            "executionUnit": {
                "value": base64_encode(&wasm),
                "mediaType": "application/wasm"
            }
        });
        let response = client
            .post(format!("{}/processes", server.base_url()))
            .bearer_auth(TOKEN)
            .header("content-type", "application/ogcapppkg+json")
            .json(&package)
            .send()
            .await
            .expect("deploy");
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }
    println!(
        "deployed {PROCESSES} distinct modules in {:?}",
        deploying.elapsed()
    );
    server.shutdown().await.expect("shutdown");

    let mut cached = Vec::new();
    let mut uncached = Vec::new();
    for _ in 0..3 {
        cached.push(time_start(dir.path()).await);
        std::fs::remove_dir_all(dir.path().join("artifacts")).expect("drop the cache");
        uncached.push(time_start(dir.path()).await);
    }
    cached.sort();
    uncached.sort();
    println!("time to ready with {PROCESSES} deployed processes (median of 3):");
    println!("  with the artifact cache:    {:?}", cached[1]);
    println!("  without (all recompiled):   {:?}", uncached[1]);
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
