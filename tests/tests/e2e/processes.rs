//! The process list and process descriptions.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use wasmproc_tests::{TestServer, assert_exception, assert_valid, body_link};

const BUILTINS: &[&str] = &["hello-world", "echo", "geometry"];

fn ids(list: &Value) -> Vec<String> {
    list["processes"]
        .as_array()
        .expect("processes array")
        .iter()
        .map(|p| p["id"].as_str().expect("process id").to_owned())
        .collect()
}

#[tokio::test]
async fn process_list_contains_the_builtin_processes() {
    let server = TestServer::start().await;
    let list = server.get_json("/processes").await;
    assert_valid("processList.yaml", &list);
    let ids = ids(&list);
    for builtin in BUILTINS {
        assert!(ids.iter().any(|id| id == builtin), "{builtin} in {ids:?}");
    }
    for summary in list["processes"].as_array().unwrap() {
        for field in ["id", "version", "jobControlOptions", "links"] {
            assert!(
                summary.get(field).is_some(),
                "summary without {field}: {summary}"
            );
        }
        assert!(
            summary.get("inputs").is_none() && summary.get("outputs").is_none(),
            "a summary is not a description: {summary}"
        );
        // The summary links to the description.
        let id = summary["id"].as_str().unwrap();
        let links = summary["links"].as_array().unwrap();
        assert!(
            links.iter().any(|l| l["href"]
                .as_str()
                .is_some_and(|h| h.ends_with(&format!("/processes/{id}")))),
            "summary of {id} does not link to its description: {summary}"
        );
    }
    assert!(
        body_link(&list, "self").is_some(),
        "process list without self link: {list}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn process_list_limit_one_pages_with_next_links() {
    let server = TestServer::start().await;
    let mut seen = BTreeSet::new();
    let pages = server
        .list_pages("/processes?limit=1", "processList.yaml", 10)
        .await;
    for list in pages {
        let page = ids(&list);
        assert_eq!(page.len(), 1, "limit=1 gave {page:?}");
        assert!(seen.insert(page[0].clone()), "{} seen twice", page[0]);
    }
    for builtin in BUILTINS {
        assert!(seen.contains(*builtin), "paging missed {builtin}: {seen:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn process_list_rejects_limit_out_of_range() {
    let server = TestServer::start().await;
    for limit in ["0", "10001", "-1", "abc"] {
        let reply = server.get(&format!("/processes?limit={limit}")).await;
        assert_exception(&reply, 400, None);
    }
    // The largest allowed limit works.
    server.get_json("/processes?limit=10000").await;
    server.shutdown().await;
}

#[tokio::test]
async fn hello_world_description_declares_a_string_name_input() {
    let server = TestServer::start().await;
    let description = server.get_json("/processes/hello-world").await;
    assert_valid("process.yaml", &description);
    assert_eq!(description["id"], "hello-world");
    assert_eq!(description["inputs"]["name"]["schema"]["type"], "string");
    assert_eq!(description["inputs"]["message"]["schema"]["type"], "string");
    assert!(description["outputs"]["echo"]["schema"].is_object());
    let options = description["jobControlOptions"].as_array().unwrap();
    assert!(options.contains(&json!("sync-execute")), "{options:?}");
    assert!(options.contains(&json!("async-execute")), "{options:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn every_builtin_description_is_valid() {
    let server = TestServer::start().await;
    for id in BUILTINS {
        let description = server.get_json(&format!("/processes/{id}")).await;
        assert_valid("process.yaml", &description);
        assert_eq!(description["id"], *id);
        assert!(description["inputs"].is_object() && description["outputs"].is_object());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_process_returns_404_no_such_process() {
    let server = TestServer::start().await;
    let reply = server.get("/processes/no-such-thing").await;
    assert_exception(&reply, 404, Some("no-such-process"));
    server.shutdown().await;
}

#[tokio::test]
async fn executing_an_unknown_process_returns_404_no_such_process() {
    let server = TestServer::start().await;
    let reply = server
        .execute("no-such-thing", &json!({ "inputs": {} }))
        .await;
    assert_exception(&reply, 404, Some("no-such-process"));
    server.shutdown().await;
}
