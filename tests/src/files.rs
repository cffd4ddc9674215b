//! A tiny HTTP file server on 127.0.0.1 for inputs and modules given by
//! reference (`href`).

use std::net::SocketAddr;

use axum::Router;
use axum::http::header;

/// Serves fixed bodies at fixed paths on 127.0.0.1 (404 elsewhere).
/// Stops when dropped.
pub struct FileServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl FileServer {
    /// Serve each `(path, content type, body)`.
    pub async fn start(files: Vec<(&str, &str, Vec<u8>)>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the file server");
        let addr = listener.local_addr().expect("local address");
        let mut app = Router::new();
        for (path, content_type, body) in files {
            let content_type = content_type.to_owned();
            app = app.route(
                path,
                axum::routing::get(move || {
                    let (content_type, body) = (content_type.clone(), body.clone());
                    async move { ([(header::CONTENT_TYPE, content_type)], body) }
                }),
            );
        }
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("file server");
        });
        Self { addr, task }
    }

    /// Serve one body.
    pub async fn single(path: &str, content_type: &str, body: Vec<u8>) -> Self {
        Self::start(vec![(path, content_type, body)]).await
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
