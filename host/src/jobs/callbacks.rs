//! Delivering job notifications to a request's `subscriber` URIs.
//!
//! Each notification is a POST with a JSON body, sent from its own task so a
//! slow receiver never holds up a job: up to `attempts` tries, each bounded
//! by `timeout`, with exponential backoff from 200 ms. A notification that
//! still fails is logged and dropped (the job's state is unaffected).

use std::time::Duration;

use serde_json::Value;

use crate::config::CallbackConfig;

/// Sends callbacks.
#[derive(Debug, Clone)]
pub(crate) struct Callbacks {
    client: reqwest::Client,
    config: CallbackConfig,
}

impl Callbacks {
    /// A sender with its own HTTP client.
    pub(crate) fn new(client: reqwest::Client, config: CallbackConfig) -> Self {
        Self { client, config }
    }

    /// POST `body` to `uri` in the background; no-op when `uri` is `None`.
    pub(crate) fn notify(&self, uri: Option<&str>, body: Value) {
        let Some(uri) = uri else { return };
        let Ok(url) = reqwest::Url::parse(uri) else {
            tracing::warn!(uri, "callback URI is not a URL");
            return;
        };
        if !matches!(url.scheme(), "http" | "https") {
            tracing::warn!(uri, "callback URI is not http(s)");
            return;
        }
        let (client, config) = (self.client.clone(), self.config.clone());
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            for attempt in 1..=config.attempts.max(1) {
                let sent = client
                    .post(url.clone())
                    .timeout(config.timeout)
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => return,
                    Ok(response) => {
                        tracing::debug!(%url, attempt, status = %response.status(), "callback refused")
                    }
                    Err(error) => tracing::debug!(%url, attempt, %error, "callback failed"),
                }
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            tracing::warn!(%url, "callback not delivered after {} attempts", config.attempts);
        });
    }
}
