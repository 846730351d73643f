//! The dashboard's own files: htmx (vendored, 0BSD licence, see `assets/htmx.LICENSE`) and the
//! stylesheet. Served from the binary: no CDN, no build step.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// htmx 2.0.11, `dist/htmx.min.js` of the npm package `htmx.org`.
const HTMX: &[u8] = include_bytes!("assets/htmx.min.js");
const CSS: &[u8] = include_bytes!("assets/dashboard.css");

/// `GET /assets/{name}`: no session needed (nothing secret in them).
pub(crate) async fn serve(name: web::Path<String>) -> HttpResponse {
    let (body, media) = match name.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "dashboard.css" => (CSS, "text/css; charset=utf-8"),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, media))
        .body(body)
}
