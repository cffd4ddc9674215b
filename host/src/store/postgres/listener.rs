//! The two background tasks of a PostgreSQL node: the listener, which
//! turns notifications from other nodes into events, and the notifier,
//! which tells other nodes that jobs were queued.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{Notify, broadcast};
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::CHANNEL;
use crate::store::StoreEvent;

/// Longest pause between two reconnection attempts of the listener. The
/// pause starts at 200 ms and doubles; the cap keeps a node that was cut
/// off from staying deaf for long after the database is back.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Least time between two `queued` notifications from one node. Each
/// NOTIFY takes a database-wide lock while its transaction commits, so one
/// per submitted job would serialise every submission in the cluster; one
/// per 10 ms wakes idle nodes just as well (a woken node claims until the
/// queue is empty).
const ANNOUNCE_INTERVAL: Duration = Duration::from_millis(10);

/// What a notification payload means; `None` for a payload this build does
/// not know (sent by a newer node, or malformed), which is logged and
/// ignored so that nodes of two versions can share a database.
fn parse_payload(payload: &str) -> Option<Notification> {
    if payload == "queued" {
        return Some(Notification::Queued);
    }
    if let Some(id) = payload.strip_prefix("dismiss:") {
        return Uuid::parse_str(id)
            .ok()
            .map(|id| Notification::Event(StoreEvent::JobDismissed(id)));
    }
    if let Some(id) = payload.strip_prefix("finished:") {
        return Uuid::parse_str(id)
            .ok()
            .map(|id| Notification::Event(StoreEvent::JobFinished(id)));
    }
    payload
        .strip_prefix("process:")
        .map(|id| Notification::Event(StoreEvent::ProcessChanged(id.to_owned())))
}

/// A parsed notification.
#[derive(Debug, PartialEq)]
enum Notification {
    /// Jobs were queued somewhere: wake this node's dispatcher, which
    /// claims if it has room (no event: nothing else needs to know).
    Queued,
    /// Something subscribers react to, forwarded on the broadcast channel.
    Event(StoreEvent),
}

/// Keep a connection LISTENing on [`CHANNEL`], reconnecting with backoff.
/// Every (re)connection emits [`StoreEvent::Resync`] and wakes the queue:
/// whatever was announced while it was down is picked up by a reload.
///
/// The returned receiver completes once the first `LISTEN` is in effect,
/// so that the store can wait for it before it is used: a dismissal made
/// through this very node is announced only by NOTIFY, and one sent before
/// the LISTEN would never reach the worker running the job.
///
/// The connection is opened outside the pool: a `LISTEN` belongs to its
/// session, and a pooled connection is shared and recycled. It is built
/// from the pool's configuration, with its TCP keepalives, so a database
/// that vanished without closing the socket ends this loop too, and the
/// reconnection's `Resync` makes up for what was missed meanwhile.
pub(super) fn spawn_listener(
    config: tokio_postgres::Config,
    events: broadcast::Sender<StoreEvent>,
    queue_wake: Arc<Notify>,
    stop: CancellationToken,
) -> tokio::sync::oneshot::Receiver<()> {
    let (listening, first_listen) = tokio::sync::oneshot::channel();
    let mut listening = Some(listening);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        let mut first = true;
        while !stop.is_cancelled() {
            let connected = tokio::select! {
                () = stop.cancelled() => return,
                connected = config.connect(NoTls) => connected,
            };
            let (client, mut connection) = match connected {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "cannot connect the PostgreSQL listener; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            // The connection must be polled for the LISTEN to be sent and
            // for notifications to arrive: drive it here and forward what
            // it yields.
            let (sender, mut notifications) = tokio::sync::mpsc::unbounded_channel();
            let driver = tokio::spawn(async move {
                loop {
                    match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                        Some(Ok(AsyncMessage::Notification(n))) => {
                            if sender.send(n.payload().to_owned()).is_err() {
                                break;
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    }
                }
            });
            if let Err(error) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                tracing::warn!(%error, "LISTEN failed; reconnecting");
                driver.abort();
                // With the same backoff as a failed connect: a database
                // that accepts connections but refuses LISTEN must not be
                // hammered in a tight loop.
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            backoff = Duration::from_millis(200);
            if !first {
                tracing::info!("PostgreSQL listener reconnected; resynchronising");
            }
            first = false;
            if let Some(listening) = listening.take() {
                let _ = listening.send(());
            }
            let _ = events.send(StoreEvent::Resync);
            queue_wake.notify_one();
            loop {
                let payload = tokio::select! {
                    () = stop.cancelled() => { driver.abort(); return; }
                    payload = notifications.recv() => payload,
                };
                let Some(payload) = payload else { break };
                match parse_payload(&payload) {
                    Some(Notification::Queued) => queue_wake.notify_one(),
                    Some(Notification::Event(event)) => {
                        let _ = events.send(event);
                    }
                    None => tracing::debug!(payload, "unknown notification"),
                }
            }
            tracing::warn!("PostgreSQL listener connection lost; reconnecting");
            drop(client);
        }
    });
    first_listen
}

/// Send `NOTIFY wasmproc, 'queued'` after jobs were queued, at most once
/// per [`ANNOUNCE_INTERVAL`] (requests in between are coalesced into one).
///
/// Coalescing comes from `Notify`: any number of `notify_one` calls made
/// while the task sends or sleeps leave one stored permit, so the next
/// turn sends one notification for all of them. The notification is its
/// own autocommitted statement on the durable pool, sent after the jobs it
/// announces were committed, so a node it wakes never looks before they
/// are visible. A failure is only logged: the other nodes' dispatchers
/// also poll.
pub(super) fn spawn_notifier(pool: Pool, requests: Arc<Notify>, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = requests.notified() => {}
            }
            match pool.get().await {
                Ok(client) => {
                    if let Err(error) = client
                        .execute("SELECT pg_notify($1, 'queued')", &[&CHANNEL])
                        .await
                    {
                        // Other nodes still poll once a second.
                        tracing::debug!(%error, "could not announce queued jobs");
                    }
                }
                Err(error) => tracing::debug!(%error, "could not announce queued jobs"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(ANNOUNCE_INTERVAL) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_become_events() {
        let id = Uuid::new_v4();
        assert_eq!(parse_payload("queued"), Some(Notification::Queued));
        assert_eq!(
            parse_payload(&format!("dismiss:{id}")),
            Some(Notification::Event(StoreEvent::JobDismissed(id)))
        );
        assert_eq!(
            parse_payload("process:echo"),
            Some(Notification::Event(StoreEvent::ProcessChanged(
                "echo".into()
            )))
        );
        assert_eq!(
            parse_payload(&format!("finished:{id}")),
            Some(Notification::Event(StoreEvent::JobFinished(id)))
        );
        assert_eq!(parse_payload("dismiss:not-a-uuid"), None);
        assert_eq!(parse_payload("other"), None);
    }
}
