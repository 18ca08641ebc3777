//! The web client: server-rendered HTML pages for browsing roots and looking at datasets, with
//! images, lines and tables drawn by the server (`cat2-view`) from the same block-level read
//! path as the REST API, so a view of a 400 MB cube decodes about the blocks it shows.
//!
//! Pages work with JavaScript off (plain GET forms: every view parameter is in the URL, so a
//! copied URL shows the same pixels); `static/cat2.js` only enhances (search as you type,
//! sliders that swap the image without reloading, play). Every asset is inside the binary and
//! the pages load nothing from elsewhere (a strict `Content-Security-Policy` says so).
//!
//! # Layout
//! - `pages`: home (roots, search, path list; 0.2.0's `/`, `/htmx/root-list/`,
//!   `/htmx/path-list/`) and folders; `dataset`: the dataset page (`/roots/{path}`);
//! - `query`: view parameters in URLs, parsed once and written back canonically;
//! - `render`: image, line and table jobs on the read path, within the decode budget, with a
//!   small cache of rendered images; `routes`: `/web/img|line|value|export|raw`, the tomography
//!   plugin's 0.2.0 URLs; `markup`: the page frame, metadata panel, plain-file previews.

mod dataset;
mod h5grove;
mod markup;
mod pages;
mod query;
mod render;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::ApiError;
use crate::sub::Sub;

/// What the web routes share: the core and the cache of rendered images.
pub(crate) struct Web {
    pub(crate) sub: Arc<Sub>,
    pub(crate) renders: render::Renders,
}

type Shared = axum::extract::State<Arc<Web>>;

/// The page CSP: nothing from elsewhere, no inline scripts.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; \
                   script-src 'self'; object-src 'none'; frame-ancestors 'self'; base-uri 'none'";

/// The web client's routes on `sub` (no fallback: unknown paths reach the API's JSON 404).
pub(crate) fn router(sub: Arc<Sub>) -> Router {
    let web = Arc::new(Web {
        renders: render::Renders::new(),
        sub: sub.clone(),
    });
    Router::new()
        .route("/", get(pages::home))
        .route("/htmx/root-list/", get(pages::root_list))
        .route("/htmx/path-list/", get(pages::path_list))
        .route("/roots/{*path}", get(pages::roots))
        .route("/web/img/{*path}", get(routes::img))
        .route("/web/line/{*path}", get(routes::line))
        .route("/web/value/{*path}", get(routes::value))
        .route("/web/export/{*path}", get(routes::export))
        .route("/web/raw/{*path}", get(routes::raw))
        .route("/web/colorbar/{cmap}", get(routes::colorbar))
        .route(
            "/plugins/tomography/display/{*path}",
            get(routes::tomo_display),
        )
        .route("/plugins/tomography/image/{*path}", get(routes::tomo_image))
        .route("/static/{file}", get(markup::asset))
        .merge(h5grove::routes())
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(sub.cfg.auth_tokens.clone()),
            crate::auth::require,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(web)
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// A failed web request: a status and a message, as an HTML page (pages) or plain text
/// (images and downloads).
#[derive(Debug)]
pub(crate) struct WebError {
    status: StatusCode,
    message: String,
    page: bool,
}

impl WebError {
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            page: false,
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            page: false,
        }
    }

    /// The same error shown as a page.
    pub(crate) fn page(mut self) -> Self {
        self.page = true;
        self
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        if e.status().is_server_error() {
            tracing::warn!(error = %e, "web request failed");
        }
        Self {
            status: e.status(),
            message: e.to_string(),
            page: false,
        }
    }
}

impl From<cat2_view::ViewError> for WebError {
    fn from(e: cat2_view::ViewError) -> Self {
        Self::bad(e.to_string())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if self.page {
            let title = self.status.canonical_reason().unwrap_or("Error");
            let body = markup::frame(
                title,
                &[],
                maud::html! {
                    h1 { (self.status.as_u16()) " " (title) }
                    p.error role="alert" { (self.message) }
                    p { a href="/" { "Back to the roots" } }
                },
            );
            (self.status, body).into_response()
        } else {
            (
                self.status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                self.message,
            )
                .into_response()
        }
    }
}
