//! The web console and the API reference page: small hand-written pages in
//! `console/`, embedded in the binary at build time and served with a
//! strict Content-Security-Policy (no inline script or style, same origin
//! only). The reference page renders `/openapi.json` itself, so it needs no
//! CDN and works offline.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use super::error::ApiError;

/// The files of `console/`, compiled into the binary (also in debug builds).
#[derive(rust_embed::Embed)]
#[folder = "console/"]
struct Assets;

/// Only our own origin, no inline code, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// `GET /console`: the page.
pub async fn page() -> Result<HttpResponse, ApiError> {
    serve("index.html")
}

/// `GET /docs`: the API reference, rendered from `/openapi.json`.
pub async fn docs_page() -> Result<HttpResponse, ApiError> {
    serve("docs.html")
}

/// `GET /`: a browser that opens the service's address lands on the
/// console.
pub async fn root() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/console"))
        .finish()
}

/// `GET /console/{file}`: the pages' scripts and style sheets.
pub async fn asset(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    serve(&file)
}

fn serve(name: &str) -> Result<HttpResponse, ApiError> {
    let file = Assets::get(name).ok_or_else(|| ApiError::NotFound("no such file".into()))?;
    let mime = file.metadata.mimetype();
    let content_type = if mime.starts_with("text/") || mime == "application/javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(file.data.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_assets_are_embedded() {
        for name in [
            "index.html",
            "console.js",
            "console.css",
            "sw.js",
            "docs.html",
            "docs.js",
            "docs.css",
        ] {
            assert!(Assets::get(name).is_some(), "{name}");
        }
    }

    /// Values reach the pages as text only: the scripts never parse markup.
    #[test]
    fn the_scripts_never_write_markup() {
        for name in ["console.js", "sw.js", "docs.js"] {
            let script = Assets::get(name).unwrap();
            let script = std::str::from_utf8(&script.data).unwrap();
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!script.contains(sink), "{name} uses {sink}");
            }
        }
        for name in ["index.html", "docs.html"] {
            let page = Assets::get(name).unwrap();
            let page = std::str::from_utf8(&page.data).unwrap();
            assert!(
                !page.contains("<script>") && !page.contains("style="),
                "inline code in {name}"
            );
        }
    }

    #[test]
    fn the_policy_allows_no_inline_code() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-eval"));
    }
}
