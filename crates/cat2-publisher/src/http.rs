//! Caterva2's publisher HTTP routes (spec §2.2), for health checks and old tools.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cat2_proto::{DatasetPath, RootName};

use crate::state::Datasets;

type AppState = (Arc<Datasets>, RootName);

pub(crate) fn router(datasets: Arc<Datasets>, name: RootName) -> axum::Router {
    axum::Router::new()
        .route("/api/list", get(list))
        .route("/api/info/{*path}", get(info))
        .with_state((datasets, name))
}

fn detail(status: StatusCode, text: String) -> Response {
    (status, Json(serde_json::json!({ "detail": text }))).into_response()
}

async fn list(State((datasets, _)): State<AppState>) -> Json<Vec<String>> {
    Json(datasets.list())
}

async fn info(
    State((datasets, name)): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(p) = DatasetPath::new(&path) else {
        return detail(StatusCode::BAD_REQUEST, format!("Invalid path {path}"));
    };
    let Some(entry) = datasets.get(p.as_str()) else {
        return detail(StatusCode::NOT_FOUND, "Not Found".into());
    };
    let etag = entry.etag.clone();
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let info = entry.ds.info(&format!("{name}/{p}"));
    ([(header::ETAG, etag)], Json(info)).into_response()
}
