//! Slow clients cannot hold the server: headers and bodies have deadlines.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmproc_tests::TestServer;

/// Read until the server closes the connection (or `limit` passes);
/// returns what was read.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < limit {
        match tokio::time::timeout(limit, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// Four clients that would each hold a connection and its task, all at
/// once against one server whose header and body deadlines are 500 ms:
/// one that trickles its headers, one that trickles its body (a 408
/// `request-timeout`), one that connects and says nothing, and one that
/// opens an HTTP/2 connection with prior knowledge (the preface and a
/// SETTINGS frame) and sends no request. Each is cut off within seconds,
/// so idle sockets cannot pile up until the server runs out of file
/// descriptors, and the server still answers everybody else.
#[tokio::test]
async fn slow_and_silent_clients_are_cut_off() {
    let server = TestServer::builder()
        .configure(|c| {
            c.header_read_timeout = Duration::from_millis(500);
            c.body_read_timeout = Duration::from_millis(500);
        })
        .start()
        .await;
    let address = server.base().trim_start_matches("http://").to_owned();
    // (who, what it sends before falling silent, how the answer starts
    // when there must be one)
    let clients: [(&str, &[u8], Option<&str>); 4] = [
        ("headers trickling", b"GET /processes HTTP/1.1\r\nHost: 127.0.0.1\r\n", None),
        (
            "body trickling",
            b"POST /processes/hello-world/execution HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"inputs\":",
            Some("HTTP/1.1 408"),
        ),
        ("silent", b"", None),
        (
            "http/2 without a request",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
            None,
        ),
    ];
    let started = Instant::now();
    let mut streams = Vec::new();
    for (_, sent, _) in &clients {
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        stream.write_all(sent).await.expect("write");
        streams.push(stream);
    }
    for ((who, _, answer), mut stream) in clients.iter().zip(streams) {
        let response = read_until_closed(&mut stream, Duration::from_secs(15)).await;
        let held = started.elapsed();
        assert!(held < Duration::from_secs(5), "{who}: held for {held:?}");
        if let Some(answer) = answer {
            assert!(response.starts_with(answer), "{who}: {response}");
            assert!(response.contains("request-timeout"), "{who}: {response}");
        }
    }
    server.get("/processes").await.expect_status(200);
    server.shutdown().await;
}
