//! Fetching inputs given by reference (`{"href": …}`) before a job runs.
//!
//! Guests have no network, so the host fetches for them, with a size limit,
//! a timeout, and the SSRF guard of `href.allowed_hosts`
//! ([`AddressGuard`](super::address_guard::AddressGuard)): only http and
//! https, and only public addresses unless the host is allow-listed
//! (loopback and private ranges included, deliberately). The fetch goes
//! through a [`GuardedClient`], so the name is resolved once, by the guard,
//! and the connection goes to exactly the addresses it checked.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::address_guard::{AddressRefused, GuardedClient, refusal_in};
use super::validate::{InputValidator, InvalidInput, Occurrence, classify};
use crate::config::HrefConfig;

/// Why a job's `href` inputs could not be resolved
/// ([`resolve_references`]); the text names the input.
///
/// Happens when a job starts, before its guest runs (and in
/// `wasmproc run`): the job fails as `invalid-input`, and its status
/// message, which the client sees, is this error's text.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// One reference of `input` could not be fetched, or its body is not
    /// what its media type says (see [`FetchFailure`]).
    #[error("input '{input}': {source}")]
    Reference {
        /// The input id whose value (or one of whose values) it is.
        input: String,
        /// Why the reference could not become a value.
        #[source]
        source: FetchFailure,
    },
    /// Every reference was fetched, but the inputs as they now are fail
    /// the description's rules (a fetched value of the wrong type, say).
    #[error("inputs as they arrived (references fetched, nested processes run): {0}")]
    Revalidation(#[source] InvalidInput),
}

/// Why a fetch ([`fetch_bytes`]) failed, or its body could not be read as
/// an input value.
///
/// A job's `href` input that fails becomes a [`FetchError::Reference`]
/// naming the input (the job fails as `invalid-input` with the text); a
/// deploy's `executionUnit` that fails is a 413 for
/// [`TooLarge`](Self::TooLarge) and otherwise a 400 whose detail is
/// `executionUnit: ` and this text.
#[derive(Debug, thiserror::Error)]
pub enum FetchFailure {
    /// The body is larger than the limit.
    #[error("'{href}' is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The URL fetched.
        href: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The guard refused the URL or an address its host resolves to (a
    /// scheme other than http(s), a non-public address not allow-listed;
    /// also a string that is not a URL at all).
    #[error(transparent)]
    Refused(#[from] AddressRefused),
    /// The request could not be sent or got no answer: a connection
    /// refused, a timeout, a TLS failure.
    #[error("fetching '{href}' failed: {source}")]
    Unreachable {
        /// The URL fetched.
        href: String,
        /// reqwest's reason.
        #[source]
        source: reqwest::Error,
    },
    /// The answer's status is not 2xx (3xx included: redirects are not
    /// followed).
    #[error("fetching '{href}' answered HTTP {status}")]
    Status {
        /// The URL fetched.
        href: String,
        /// The status it answered.
        status: reqwest::StatusCode,
    },
    /// The body broke off while it was read.
    #[error("reading '{href}' failed: {source}")]
    Read {
        /// The URL fetched.
        href: String,
        /// reqwest's reason.
        #[source]
        source: reqwest::Error,
    },
    /// A job's reference answered a JSON media type, but the body is not
    /// JSON. Never returned by [`fetch_bytes`], which does not look into
    /// the body.
    #[error("'{href}' is not valid JSON: {source}")]
    NotJson {
        /// The URL fetched.
        href: String,
        /// The parser's reason.
        #[source]
        source: serde_json::Error,
    },
}

/// Fetch `href` through `client` (whose guard checks the scheme, the
/// allow-list and every address it connects to), within `timeout`, reading
/// at most `limit` bytes. Returns the body and its media type.
///
/// Redirects are not followed (the client follows none: a redirect is a
/// second URL nobody checked), so a 3xx fails like any answer not 2xx.
/// The body is read chunk by chunk and refused as soon as it would pass
/// `limit`, so a huge answer is never held whole. A response without
/// `Content-Type` is `application/octet-stream`.
pub async fn fetch_bytes(
    client: &GuardedClient,
    href: &str,
    timeout: Duration,
    limit: u64,
) -> Result<(Vec<u8>, String), FetchFailure> {
    let request = client.request(reqwest::Method::GET, href)?;
    let mut response = request.timeout(timeout).send().await.map_err(|e| {
        // A refusal by the guard's resolver says why better than reqwest's
        // "error sending request".
        match refusal_in(&e) {
            Some(refused) => FetchFailure::Refused(refused.clone()),
            None => FetchFailure::Unreachable {
                href: href.to_owned(),
                source: e,
            },
        }
    })?;
    if !response.status().is_success() {
        return Err(FetchFailure::Status {
            href: href.to_owned(),
            status: response.status(),
        });
    }
    let media_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let body = read_capped(&mut response, limit)
        .await
        .map_err(|error| match error {
            None => FetchFailure::TooLarge {
                href: href.to_owned(),
                limit,
            },
            Some(source) => FetchFailure::Read {
                href: href.to_owned(),
                source,
            },
        })?;
    Ok((body, media_type))
}

/// A response's body, read chunk by chunk and given up as soon as it
/// passes `limit` bytes (`Err(None)`), so a huge or endless body never
/// fills memory; `Err(Some(_))` when reading failed.
pub(super) async fn read_capped(
    response: &mut reqwest::Response,
    limit: u64,
) -> Result<Vec<u8>, Option<reqwest::Error>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Some)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Fetch one reference and turn it into an input value: JSON documents
/// become JSON, text becomes a string, anything else a base64 qualified
/// value with the response's media type.
async fn fetch(
    client: &GuardedClient,
    href: &str,
    config: &HrefConfig,
) -> Result<Value, FetchFailure> {
    let (body, media_type) = fetch_bytes(client, href, config.timeout, config.max_bytes).await?;
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        return serde_json::from_slice(&body).map_err(|source| FetchFailure::NotJson {
            href: href.to_owned(),
            source,
        });
    }
    if essence.starts_with("text/")
        && let Ok(text) = std::str::from_utf8(&body)
    {
        return Ok(Value::String(text.to_owned()));
    }
    Ok(json!({
        "value": base64::engine::general_purpose::STANDARD.encode(&body),
        "mediaType": essence,
    }))
}

/// Replace every reference among `inputs` by the fetched value, then
/// validate the result again.
///
/// References are fetched one after the other, in input order, each
/// occurrence of a repeated input on its own; the first that fails ends
/// the lot, naming its input. A fetched value is not searched for
/// references again.
///
/// The server calls this when a job starts (its inputs were validated by
/// [`InputValidator::validate`] when the request arrived); `wasmproc run`
/// calls the same two functions in the same order, with a client built on
/// the same [`AddressGuard`](super::address_guard::AddressGuard), so a
/// local run refuses and fetches exactly what a job would.
pub async fn resolve_references(
    client: &GuardedClient,
    inputs: &mut Map<String, Value>,
    validator: &InputValidator,
    config: &HrefConfig,
) -> Result<(), FetchError> {
    for (id, value) in inputs.iter_mut() {
        let repeated = validator.is_repeated(id, value);
        let items: Vec<&mut Value> = match value {
            Value::Array(items) if repeated => items.iter_mut().collect(),
            other => vec![other],
        };
        for item in items {
            if let Occurrence::Reference(href) = classify(item) {
                let href = href.to_owned();
                *item =
                    fetch(client, &href, config)
                        .await
                        .map_err(|source| FetchError::Reference {
                            input: id.clone(),
                            source,
                        })?;
            }
        }
    }
    validator.validate(inputs).map_err(FetchError::Revalidation)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::jobs::address_guard::{AddressGuard, LookupFuture};

    /// An HTTP server on 127.0.0.2 (loopback, but not what the system
    /// resolver says `localhost` is) that counts its requests.
    async fn server_on_127_0_0_2() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { "pinned" }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (addr, hits, task)
    }

    /// A guard whose lookup answers 127.0.0.2 for every name, counting the
    /// lookups.
    fn guard_resolving_to_127_0_0_2(allowed: &[&str]) -> (AddressGuard, Arc<AtomicUsize>) {
        let lookups = Arc::new(AtomicUsize::new(0));
        let counted = lookups.clone();
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        let guard = AddressGuard::new("href.allowed_hosts", &allowed, Duration::from_secs(5))
            .with_lookup(move |_name| -> LookupFuture {
                counted.fetch_add(1, Ordering::SeqCst);
                Box::pin(async { Ok(vec![IpAddr::from([127, 0, 0, 2])]) })
            });
        (guard, lookups)
    }

    /// The fetch connects where the guard's resolution says, and resolves
    /// once: the system says `localhost` is 127.0.0.1 (where nothing
    /// listens on this port), the guard says 127.0.0.2, and the body comes
    /// from 127.0.0.2. Without the guard as the client's resolver, reqwest
    /// would resolve again by itself and this fails.
    #[tokio::test]
    async fn a_fetch_connects_to_exactly_the_addresses_the_guard_resolved() {
        let (addr, hits, server) = server_on_127_0_0_2().await;
        let (guard, lookups) = guard_resolving_to_127_0_0_2(&["localhost"]);
        let client = GuardedClient::new(guard);
        let url = format!("http://localhost:{}/", addr.port());
        let (body, _) = fetch_bytes(&client, &url, Duration::from_secs(5), 1024)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(body, b"pinned");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(
            lookups.load(Ordering::SeqCst),
            1,
            "one resolution per fetch"
        );
        server.abort();
    }

    /// The same name, not allow-listed: the resolver's check refuses the
    /// non-public answer at connect time, with the guard's message, and the
    /// server is never reached.
    #[tokio::test]
    async fn a_fetch_is_refused_when_the_name_resolves_to_a_non_public_address() {
        let (addr, hits, server) = server_on_127_0_0_2().await;
        let (guard, lookups) = guard_resolving_to_127_0_0_2(&[]);
        let client = GuardedClient::new(guard);
        let url = format!("http://localhost:{}/", addr.port());
        let failure = fetch_bytes(&client, &url, Duration::from_secs(5), 1024)
            .await
            .unwrap_err();
        assert!(matches!(failure, FetchFailure::Refused(_)), "{failure:?}");
        assert_eq!(
            failure.to_string(),
            "host 'localhost' resolves to the non-public address 127.0.0.2; add 'localhost' to href.allowed_hosts to allow it"
        );
        assert_eq!(lookups.load(Ordering::SeqCst), 1);
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the server was reached");
        server.abort();
    }

    #[tokio::test]
    async fn odd_schemes_and_loopback_literals_are_refused_unless_allowed() {
        let open = GuardedClient::new(AddressGuard::for_href(&HrefConfig::default()));
        for (url, reason) in [
            ("file:///etc/passwd", "only http and https"),
            ("ftp://example.org/x", "only http and https"),
            ("http://127.0.0.1:9/x", "non-public"),
            ("http://[::1]:9/x", "non-public"),
            ("http://10.1.2.3/x", "non-public"),
        ] {
            match fetch_bytes(&open, url, Duration::from_secs(1), 1024).await {
                Err(failure @ FetchFailure::Refused(_)) => {
                    let message = failure.to_string();
                    assert!(message.contains(reason), "{url}: {message}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
