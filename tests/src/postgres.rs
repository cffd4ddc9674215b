//! A PostgreSQL database of its own for each test, dropped at the end.
//!
//! The server comes from `WASMPROC_TEST_DATABASE_URL`, or else from the
//! URL `tests/postgres-up.sh` wrote to `target/test-postgres/url` (the
//! README's test command runs that script first). Without either, a test
//! that needs PostgreSQL fails and says what to run.

use std::path::PathBuf;

use tokio_postgres::NoTls;
use uuid::Uuid;

/// The maintenance database URL of the test server.
pub fn admin_url() -> String {
    if let Ok(url) = std::env::var("WASMPROC_TEST_DATABASE_URL")
        && !url.is_empty()
    {
        return url;
    }
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target/test-postgres/url");
    match std::fs::read_to_string(&file) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => panic!(
            "this test needs PostgreSQL: run `tests/postgres-up.sh` (it starts a throwaway \
             cluster on 127.0.0.1 and writes {}), or set WASMPROC_TEST_DATABASE_URL",
            file.display()
        ),
    }
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).expect("the test database URL is a URL");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

async fn admin_client() -> tokio_postgres::Client {
    let url = admin_url();
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL at {url}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A database created for one test; dropped (with its connections) when
/// this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Create a fresh, empty database.
    pub async fn create() -> Self {
        let name = format!("wasmproc_test_{}", Uuid::new_v4().simple());
        admin_client()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let url = with_database(&admin_url(), &name);
        Self { name, url }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Run SQL on it (for checks of stored state).
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url));
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside or outside a runtime: use a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async {
                admin_client()
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}
