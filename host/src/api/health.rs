//! `GET /livez` and `GET /readyz`: what a load balancer, systemd or an
//! orchestrator asks a node, so that several nodes can stand behind one
//! address and a node that cannot work is taken out of rotation.
//!
//! The two answer different questions, and must not be merged:
//! - **Live** (`/livez`): the process serves HTTP. Nothing else is
//!   consulted. A node whose database is down is still alive, and
//!   restarting it would not bring the database back; an orchestrator
//!   that restarted every node on a database outage would turn a short
//!   outage into a long one.
//! - **Ready** (`/readyz`): the node can do its work now, which means its
//!   store answers. On PostgreSQL that is a pooled connection and one
//!   `SELECT 1` within `store.timeout`; sled lives in this process and is
//!   always ready. When the store does not answer, the answer is the one
//!   every other request gets meanwhile: 503 `store-unavailable` with
//!   `Retry-After`. A load balancer then sends clients to the other nodes
//!   instead of letting them meet that 503. The connection comes from the
//!   pool the requests use, so a node whose pool stays taken for all of
//!   `store.timeout` is not ready either: its requests would get that
//!   same 503.
//!
//! Neither asks for credentials, whatever the auth settings (a health
//! check carries no key), and neither tells more than the backend's name.
//! Both say `Cache-Control: no-store`: a cached health answer is a wrong
//! one. A node stopping gracefully closes its listening socket first, so
//! from that moment a health check's connection is refused: shutting down
//! needs no state of its own here.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState};

/// The body of a health answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `live` (`GET /livez`) or `ready` (`GET /readyz`).
    #[schema(example = "ready")]
    status: String,
    /// The store that answered: `sled` or `postgres` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "postgres")]
    store: Option<String>,
}

/// Whether the node serves HTTP.
///
/// Always 200 while it does: nothing else is consulted, so a database
/// outage never makes a node look dead.
#[utoipa::path(get, path = "/livez", tag = "Monitoring", operation_id = "getLiveness",
    responses((status = 200, description = "The node serves HTTP", body = Health)))]
pub(crate) async fn live() -> Response {
    not_stored(Health {
        status: "live".into(),
        store: None,
    })
}

/// Whether the node can work now: its store answers.
///
/// PostgreSQL: a connection and `SELECT 1` within `store.timeout`; sled
/// is in the process and always answers.
#[utoipa::path(get, path = "/readyz", tag = "Monitoring", operation_id = "getReadiness",
    responses(
        (status = 200, description = "Ready: the store answered", body = Health),
        (status = 503, description = "store-unavailable: the database did not answer within store.timeout; see Retry-After", body = Exception, content_type = "application/problem+json")))]
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.store.ping().await?;
    Ok(not_stored(Health {
        status: "ready".into(),
        store: Some(state.store.backend_name().into()),
    }))
}

/// `health` as JSON, marked not to be cached.
fn not_stored(health: Health) -> Response {
    let mut response = Json(health).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
