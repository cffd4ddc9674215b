//! Fetching inputs given by reference (`{"href": …}`) before a job runs.
//!
//! Guests have no network, so the host fetches for them, with a size limit,
//! a timeout, and a guard against server-side request forgery: only http and
//! https, and only public addresses unless the host is in the configured
//! allow-list (loopback and private ranges included, deliberately).

use std::net::IpAddr;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::validate::{InputValidator, Occurrence, classify};
use crate::config::HrefConfig;

/// Why a reference could not be resolved; the text names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct FetchError(pub String);

/// Whether an address may be fetched without being allow-listed.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| !is_public(IpAddr::V4(v4))))
        }
    }
}

/// Check that `href` may be fetched under `config`.
pub async fn check_reference(href: &str, config: &HrefConfig) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(href).map_err(|e| format!("'{href}' is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https references are fetched, not '{}'",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("'{href}' has no host"))?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    if config
        .allowed_hosts
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(bare_host))
    {
        return Ok(url);
    }
    if !config.allowed_hosts.is_empty() {
        return Err(format!(
            "host '{host}' is not in the allow-list of href hosts"
        ));
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses = tokio::net::lookup_host((bare_host, port))
        .await
        .map_err(|e| format!("cannot resolve '{host}': {e}"))?;
    for address in addresses {
        if !is_public(address.ip()) {
            return Err(format!(
                "host '{host}' resolves to the non-public address {}; add it to href.allowed_hosts to allow it",
                address.ip()
            ));
        }
    }
    Ok(url)
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchFailure {
    /// The body is larger than the limit (in bytes).
    TooLarge(u64),
    /// Refused, unreachable, or an HTTP error; the text says which.
    Failed(String),
}

/// Fetch `href` under the guards of `config` (scheme, allow-list,
/// non-public addresses, timeout), reading at most `limit` bytes. Returns
/// the body and its media type.
pub async fn fetch_bytes(
    client: &reqwest::Client,
    href: &str,
    config: &HrefConfig,
    limit: u64,
) -> Result<(Vec<u8>, String), FetchFailure> {
    let url = check_reference(href, config)
        .await
        .map_err(FetchFailure::Failed)?;
    let failed = FetchFailure::Failed;
    let mut response = client
        .get(url)
        .timeout(config.timeout)
        .send()
        .await
        .map_err(|e| failed(format!("fetching '{href}' failed: {e}")))?;
    if !response.status().is_success() {
        return Err(failed(format!(
            "fetching '{href}' answered HTTP {}",
            response.status()
        )));
    }
    let media_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| failed(format!("reading '{href}' failed: {e}")))?
    {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(FetchFailure::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, media_type))
}

/// Fetch one reference and turn it into an input value: JSON documents
/// become JSON, text becomes a string, anything else a base64 qualified
/// value with the response's media type.
async fn fetch(client: &reqwest::Client, href: &str, config: &HrefConfig) -> Result<Value, String> {
    let (body, media_type) = fetch_bytes(client, href, config, config.max_bytes)
        .await
        .map_err(|failure| match failure {
            FetchFailure::TooLarge(limit) => {
                format!("'{href}' is larger than the limit of {limit} bytes")
            }
            FetchFailure::Failed(reason) => reason,
        })?;
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        return serde_json::from_slice(&body)
            .map_err(|e| format!("'{href}' is not valid JSON: {e}"));
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
pub(crate) async fn resolve_references(
    client: &reqwest::Client,
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
                *item = fetch(client, &href, config)
                    .await
                    .map_err(|e| FetchError(format!("input '{id}': {e}")))?;
            }
        }
    }
    validator
        .validate(inputs)
        .map_err(|e| FetchError(format!("after fetching references: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_and_odd_schemes_are_refused_unless_allowed() {
        let config = HrefConfig::default();
        assert!(
            check_reference("file:///etc/passwd", &config)
                .await
                .is_err()
        );
        assert!(
            check_reference("ftp://example.org/x", &config)
                .await
                .is_err()
        );
        let err = check_reference("http://127.0.0.1:9/x", &config)
            .await
            .unwrap_err();
        assert!(err.contains("non-public"), "{err}");
        assert!(check_reference("http://[::1]:9/x", &config).await.is_err());
        assert!(check_reference("http://10.1.2.3/x", &config).await.is_err());
        let allowed = HrefConfig {
            allowed_hosts: vec!["127.0.0.1".into()],
            ..HrefConfig::default()
        };
        assert!(
            check_reference("http://127.0.0.1:9/x", &allowed)
                .await
                .is_ok()
        );
        assert!(
            check_reference("http://10.1.2.3/x", &allowed)
                .await
                .is_err()
        );
    }
}
