//! Which representation a request gets: JSON (the default) or HTML.
//!
//! `f` wins: `?f=json` or `?f=html` (any other value is a 400
//! `invalid-parameter`, so a typo is not silently answered in the wrong
//! format). Without `f`, the `Accept` header decides, by quality: HTML
//! when `text/html` (or `application/xhtml+xml`) is named with a quality
//! above 0 and above that of every JSON type named (`application/json`,
//! any `…+json`). Wildcards (`*/*`, `text/*`) express no preference here:
//! `curl` sends `*/*` and gets JSON, a browser's navigation names
//! `text/html` and gets a page, and a client naming both equally gets
//! JSON, the API's own format.

use super::super::ApiError;

/// The representation of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The OGC JSON document.
    Json,
    /// A page for people.
    Html,
}

impl Format {
    /// Whether this is [`Format::Html`].
    pub(crate) fn is_html(self) -> bool {
        self == Format::Html
    }
}

/// Decide the format from the raw query string and the `Accept` header.
/// Only the first `f` counts. An unknown one is a 400 rather than JSON:
/// the client asked for a representation it would not get.
pub(crate) fn negotiate(query: Option<&str>, accept: Option<&str>) -> Result<Format, ApiError> {
    let f = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "f")
        .map(|(_, v)| v.into_owned());
    match f.as_deref() {
        Some("json") => return Ok(Format::Json),
        Some("html") => return Ok(Format::Html),
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "f must be 'json' or 'html', got '{other}'"
            )));
        }
        None => {}
    }
    Ok(from_accept(accept.unwrap_or("")))
}

/// The format an `Accept` header prefers (see the module doc).
fn from_accept(accept: &str) -> Format {
    let html = quality(accept, |media| {
        media == "text/html" || media == "application/xhtml+xml"
    });
    if html > 0.0 && html > quality(accept, is_json) {
        Format::Html
    } else {
        Format::Json
    }
}

/// Whether `media` (lowercase, without parameters) is a JSON type:
/// `application/json` or any `…+json`.
pub(crate) fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// The highest quality (`q`, 1 when not given, clamped to 0–1) that the
/// `Accept` header `accept` gives to a media range `named` accepts; 0 when
/// it names none. Ranges are compared lowercase and without parameters,
/// and wildcards only match where `named` says so: a caller decides what
/// `*/*` means for it.
pub(crate) fn quality(accept: &str, named: impl Fn(&str) -> bool) -> f32 {
    let mut best = 0.0_f32;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if !named(&media) {
            continue;
        }
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        best = best.max(q);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_and_f_choose_the_format() {
        use Format::*;
        const FIREFOX: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        let cases: &[(Option<&str>, Option<&str>, Format)] = &[
            (None, None, Json),
            (None, Some("*/*"), Json),
            (None, Some("application/json"), Json),
            (None, Some(FIREFOX), Html),
            (None, Some("text/html"), Html),
            (None, Some("text/html;q=0"), Json),
            (None, Some("application/json, text/html"), Json),
            (None, Some("application/json;q=0.5, text/html"), Html),
            (
                None,
                Some("text/html;q=0.5, application/problem+json"),
                Json,
            ),
            (None, Some("text/*"), Json),
            (Some("f=json"), Some(FIREFOX), Json),
            (Some("f=html"), Some("application/json"), Html),
            (Some("f=html"), None, Html),
            (Some("limit=5&f=html"), None, Html),
            (Some("limit=5"), Some(FIREFOX), Html),
        ];
        for (query, accept, expected) in cases {
            assert_eq!(
                negotiate(*query, *accept).unwrap(),
                *expected,
                "query {query:?}, Accept {accept:?}"
            );
        }
    }

    #[test]
    fn an_unknown_f_is_a_400_naming_it() {
        let error = negotiate(Some("f=xml"), None).unwrap_err();
        assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(format!("{error:?}").contains("'xml'"));
    }
}
