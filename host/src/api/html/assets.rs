//! The stylesheet and the script of the pages, compiled into the binary
//! (`host/assets/`) and served at `/ui/static/{name}`: nothing is loaded
//! from another origin, and the page CSP allows exactly these.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::super::{ApiError, Path};

/// Each asset: its file name, media type and contents. `include_str!`
/// puts the files into the binary at compile time, so a server needs no
/// files beside it and an asset cannot differ from the code that links
/// it.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "wasmproc.css",
        "text/css; charset=utf-8",
        include_str!("../../../assets/wasmproc.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../../assets/favicon.svg"),
    ),
    (
        "job.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../assets/job.js"),
    ),
];

/// Bumped with the crate version, so a new release's assets are fetched
/// afresh while a page's assets are cached for a day.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One asset of the HTML pages.
///
/// Cached by browsers for a day (the `?v=` of its links changes with each
/// release); a name not in the built-in list is a 404.
#[utoipa::path(get, path = "/ui/static/{name}", tag = "HTML", operation_id = "getAsset",
    params(("name" = String, Path, description = "File name: wasmproc.css, job.js or favicon.svg")),
    responses((status = 200, description = "The stylesheet or script of the HTML pages", content_type = "text/css", body = String),
        (status = 400, description = "The name is not valid UTF-8", body = Exception, content_type = "application/problem+json"),
        (status = 404, description = "No such asset", body = Exception, content_type = "application/problem+json")))]
pub(crate) async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let Some((_, media_type, contents)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            crate::ogc::exception_type::NOT_FOUND,
            "Not found",
            format!("no asset '{name}'"),
        ));
    };
    let mut response = (*contents).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    Ok(response)
}

/// The site icon.
///
/// For the requests browsers make on their own (for a plain-text log,
/// say), which would otherwise be 404s in their console.
#[utoipa::path(get, path = "/favicon.ico", tag = "HTML", operation_id = "getFavicon",
    responses((status = 200, description = "The site icon (SVG)", content_type = "image/svg+xml", body = String)))]
pub(crate) async fn favicon() -> Response {
    match asset(Path("favicon.svg".to_owned())).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}
