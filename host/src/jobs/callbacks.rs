//! Delivering job notifications to a request's `subscriber` URIs.
//!
//! Each notification is a POST with a JSON body, sent from its own task so a
//! slow receiver never holds up a job: up to `attempts` tries, each bounded
//! by `timeout`, with exponential backoff from 200 ms. A notification that
//! still fails is logged and dropped (the job's state is unaffected).
//!
//! Every URI passes the SSRF guard of `callbacks.allowed_hosts`
//! ([`AddressGuard`]) twice: at submission, where a refused URI is a 400
//! (`api/execution.rs`, through [`check_subscriber`]), and at delivery,
//! where the client connects only to addresses its guard resolved and
//! checked (a name may point elsewhere by then).

use std::time::Duration;

use serde_json::Value;

use super::address_guard::{AddressGuard, AddressRefused, GuardedClient, refusal_in};
use crate::config::CallbackConfig;
use crate::ogc::Subscriber;

/// A subscriber URI the guard refused, with the field that held it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subscriber.{field}: {refused}")]
pub struct SubscriberRefused {
    /// The field of the execute request (`successUri`, `inProgressUri`,
    /// `failedUri`).
    pub field: &'static str,
    /// Why its URI may not be called.
    pub refused: AddressRefused,
}

/// Check every URI of `subscriber` under `config`'s guard, resolving names
/// now: a URI that could never be called is refused when the job is
/// submitted, before it exists, rather than dropped when it finishes.
pub async fn check_subscriber(
    subscriber: &Subscriber,
    config: &CallbackConfig,
) -> Result<(), SubscriberRefused> {
    let guard = AddressGuard::for_callbacks(config);
    let fields = [
        ("successUri", &subscriber.success_uri),
        ("inProgressUri", &subscriber.in_progress_uri),
        ("failedUri", &subscriber.failed_uri),
    ];
    for (field, uri) in fields {
        if let Some(uri) = uri {
            guard
                .check_url_resolving(uri)
                .await
                .map_err(|refused| SubscriberRefused { field, refused })?;
        }
    }
    Ok(())
}

/// Sends callbacks.
#[derive(Debug, Clone)]
pub(crate) struct Callbacks {
    /// Connects only to addresses `callbacks.allowed_hosts` allows, and
    /// follows no redirects.
    client: GuardedClient,
    /// `attempts` and `timeout` of each delivery.
    config: CallbackConfig,
}

impl Callbacks {
    /// A sender with its own client, guarded by `callbacks.allowed_hosts`.
    pub(crate) fn new(config: CallbackConfig) -> Self {
        Self {
            client: GuardedClient::new(AddressGuard::for_callbacks(&config)),
            config,
        }
    }

    /// POST `body` to `uri` in the background; no-op when `uri` is `None`.
    ///
    /// Returns at once: the delivery is a task of its own on the current
    /// runtime. A non-2xx answer or a failed connection is tried again
    /// after 200 ms, then 400 ms and so on, up to `attempts` tries; a
    /// refusal by the guard ends it at once, since trying again would not
    /// change it. Nothing about the delivery is stored on the job.
    pub(crate) fn notify(&self, uri: Option<&str>, body: Value) {
        let Some(uri) = uri else { return };
        // Checked at submission already; a job stored before the guard
        // existed (or under another allow-list) is checked here again.
        if let Err(refused) = self.client.guard().check_url(uri) {
            tracing::warn!(uri, %refused, "callback not sent");
            return;
        }
        let (client, config, uri) = (self.client.clone(), self.config.clone(), uri.to_owned());
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            for attempt in 1..=config.attempts.max(1) {
                let sent = match client.request(reqwest::Method::POST, &uri) {
                    Ok(request) => request.timeout(config.timeout).json(&body).send().await,
                    Err(refused) => {
                        tracing::warn!(uri, %refused, "callback not sent");
                        return;
                    }
                };
                match sent {
                    Ok(response) if response.status().is_success() => return,
                    Ok(response) => {
                        tracing::debug!(uri, attempt, status = %response.status(), "callback refused")
                    }
                    Err(error) => {
                        if let Some(refused) = refusal_in(&error) {
                            // The name resolves to a forbidden address now:
                            // trying again would not change that.
                            tracing::warn!(uri, %refused, "callback not sent");
                            return;
                        }
                        tracing::debug!(uri, attempt, %error, "callback failed")
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            tracing::warn!(
                uri,
                "callback not delivered after {} attempts",
                config.attempts
            );
        });
    }
}
