//! `GET /ui/` and `GET /ui/{file}`: the auditor web view, three files embedded in the binary (docs/API.md,
//! The auditor web view). The page holds no data: it calls the same API with the auditor's token, which it
//! keeps in the tab's `sessionStorage`. Served under a Content-Security-Policy that allows only these files
//! and requests to this origin (no inline script or style, no eval, no other host), with `nosniff`, no
//! framing and no referrer.

use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use super::auth::Public;

/// The policy every file of the view is served with.
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const INDEX: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");

/// The view's files: name, content type, bytes.
const FILES: [(&str, &str, &str); 3] = [
    ("index.html", "text/html; charset=utf-8", INDEX),
    ("app.js", "text/javascript; charset=utf-8", APP_JS),
    ("app.css", "text/css; charset=utf-8", APP_CSS),
];

#[utoipa::path(
    get,
    path = "/ui/",
    tag = "ui",
    responses((status = 200, description = "The auditor web view's page", body = String, content_type = "text/html"))
)]
/// The page of the auditor web view.
pub(super) async fn index(_public: Public) -> Response {
    serve(INDEX, "text/html; charset=utf-8")
}

#[utoipa::path(
    get,
    path = "/ui/{file}",
    tag = "ui",
    params(("file" = String, Path, description = "`index.html`, `app.js` or `app.css`")),
    responses((status = 200, description = "A file of the auditor web view", body = String))
)]
/// A file of the auditor web view; any other name is `404 no-such-route`.
pub(super) async fn file(_public: Public, Path(name): Path<String>) -> Result<Response, ApiError> {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return Err(super::error::no_such_route().await);
    };
    Ok(serve(bytes, content_type))
}

fn serve(bytes: &'static str, content_type: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
    ];
    (headers, bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Register values reach the page only as text: no API that parses a string as markup or code.
    #[test]
    fn the_script_never_parses_strings_as_markup_or_code() {
        for forbidden in
            ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setTimeout(\""]
        {
            assert!(!APP_JS.contains(forbidden), "app.js uses {forbidden}");
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_loads_only_its_own_files() {
        assert!(!INDEX.contains("<style") && !INDEX.contains("style=") && !INDEX.contains(" on"));
        let sources: Vec<&str> =
            INDEX.split(['"', '\'']).filter(|s| s.ends_with(".js") || s.ends_with(".css")).collect();
        assert_eq!(sources, ["app.css", "app.js"]);
        assert_eq!(INDEX.matches("<script").count(), 1);
        assert!(INDEX.contains("<script src=\"app.js\" defer></script>"));
    }
}
