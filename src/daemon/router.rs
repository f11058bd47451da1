//! Every Engine API route in one `match` on (method, path segments).

use super::api::{ApiError, ApiResult, Responder};
use super::http::{Body, Head};
use super::{system, Engine};

/// Dispatches one request. `path` has its `/v1.NN` prefix removed already.
pub fn route(e: &Engine, head: &Head, path: &str, body: &mut Body<'_>, r: &mut Responder<'_>) -> ApiResult {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = head.method.as_str();
    match (method, segs.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => system::ping(r),
        ("GET", ["version"]) => system::version(e, r),
        ("GET", ["info"]) => system::info(e, r),
        _ => {
            let _ = body;
            Err(ApiError::not_found(format!("page not found: {method} {path}")))
        }
    }
}
