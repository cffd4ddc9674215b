//! Slow clients cannot hold the server: headers and bodies have deadlines.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmproc_tests::TestServer;

/// Read until the server closes the connection (or `limit` passes);
/// returns what was read and how long it took.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < limit {
        match tokio::time::timeout(limit, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_disconnected() {
    let server = TestServer::builder()
        .configure(|c| c.header_read_timeout = Duration::from_millis(500))
        .start()
        .await;
    let mut stream = TcpStream::connect(server.base().trim_start_matches("http://"))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /processes HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("write");
    let (_, waited) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(
        waited < Duration::from_secs(5),
        "connection held for {waited:?}"
    );
    // The server is still fine for everybody else.
    server.get("/processes").await.expect_status(200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_trickling_its_body_gets_408() {
    let server = TestServer::builder()
        .configure(|c| c.body_read_timeout = Duration::from_millis(500))
        .start()
        .await;
    let mut stream = TcpStream::connect(server.base().trim_start_matches("http://"))
        .await
        .expect("connect");
    stream
        .write_all(
            b"POST /processes/hello-world/execution HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"inputs\":",
        )
        .await
        .expect("write");
    let (response, waited) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(
        waited < Duration::from_secs(5),
        "request held for {waited:?}"
    );
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("request-timeout"), "{response}");
    server.shutdown().await;
}

/// A client that connects and then says nothing, or opens an HTTP/2
/// connection with prior knowledge (the preface and a SETTINGS frame) and
/// then sends no request, holds a connection and its task: both are cut
/// off after `header_read_timeout`, so idle sockets cannot pile up until
/// the server runs out of file descriptors.
#[tokio::test]
async fn a_client_that_never_sends_a_request_is_disconnected() {
    let server = TestServer::builder()
        .configure(|c| c.header_read_timeout = Duration::from_millis(500))
        .start()
        .await;
    let address = server.base().trim_start_matches("http://").to_owned();
    let silent = TcpStream::connect(&address).await.expect("connect");
    let mut http2 = TcpStream::connect(&address).await.expect("connect");
    // The HTTP/2 connection preface, then an empty SETTINGS frame.
    http2
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("write");
    for (what, mut stream) in [("silent", silent), ("http/2", http2)] {
        let (_, waited) = read_until_closed(&mut stream, Duration::from_secs(15)).await;
        assert!(
            waited < Duration::from_secs(5),
            "{what}: connection held for {waited:?}"
        );
    }
    server.get("/processes").await.expect_status(200);
    server.shutdown().await;
}
