//! A tiny HTTP server on 127.0.0.1 that records the callbacks it receives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Callback {
    /// The HTTP method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Callback {
    /// The body as JSON; panics if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "callback {} {} body is not JSON ({e}): {}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

type Received = Arc<Mutex<Vec<Callback>>>;

/// Records every request to any path and answers `204 No Content`.
/// Stops when dropped.
pub struct CallbackReceiver {
    addr: SocketAddr,
    received: Received,
    task: tokio::task::JoinHandle<()>,
}

async fn record(
    State(received): State<Received>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let callback = Callback {
        method: method.to_string(),
        path: uri.path().to_owned(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.to_vec(),
    };
    received.lock().expect("callback list").push(callback);
    StatusCode::NO_CONTENT
}

impl CallbackReceiver {
    /// Listen on 127.0.0.1 on a free port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the callback receiver");
        let addr = listener.local_addr().expect("local address");
        let received = Received::default();
        let app = Router::new().fallback(record).with_state(received.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("callback receiver");
        });
        Self {
            addr,
            received,
            task,
        }
    }

    /// The absolute URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Callback> {
        self.received.lock().expect("callback list").clone()
    }

    /// Wait (at most `timeout`, polling every 20 ms) for the first request
    /// to `path`; panics on timeout listing what did arrive.
    pub async fn wait_for(&self, path: &str, timeout: Duration) -> Callback {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(callback) = self.received().into_iter().find(|c| c.path == path) {
                return callback;
            }
            assert!(
                Instant::now() < deadline,
                "no callback to {path} within {timeout:?}; received: {:?}",
                self.received()
                    .iter()
                    .map(|c| format!("{} {}", c.method, c.path))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for CallbackReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
