//! Bearer-token checks. The token is compared in constant time and never
//! logged (it lives in a `Secret`, whose `Debug` is redacted).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};

/// Require the admin token. Without a configured token, deployment is off.
pub(crate) fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.config.auth.admin_token else {
        return Err(ApiError::forbidden(
            "deploying, replacing and undeploying are disabled: no admin token is configured (auth.admin_token or WASMPROC_ADMIN_TOKEN)",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        None => Err(ApiError::unauthorized(
            "this operation needs `Authorization: Bearer <token>`",
        )),
        Some(candidate) if token.matches(candidate) => Ok(()),
        Some(_) => Err(ApiError::forbidden("the bearer token is not valid")),
    }
}

/// Middleware for execution and job routes when `auth.protect_jobs` is on.
pub(crate) async fn protect_jobs(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.config.auth.protect_jobs
        && let Err(error) = require_admin(&state, request.headers())
    {
        return error.into_response();
    }
    next.run(request).await
}
