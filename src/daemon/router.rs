//! Every Engine API route in one `match` on (method, path segments).

use super::api::{ApiError, ApiResult, Responder};
use super::http::{Body, Head};
use super::volumes::api as vol;
use super::{archive, commit, containers_api as c, events, exec, images, system, Engine};

/// Dispatches one request. `path` has its `/v1.NN` prefix removed already.
pub fn route(e: &Engine, head: &Head, path: &str, body: &mut Body<'_>, r: &mut Responder<'_>) -> ApiResult {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = head.method.as_str();
    match (method, segs.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => system::ping(r),
        ("GET", ["version"]) => system::version(e, r),
        ("GET", ["info"]) => system::info(e, r),
        ("GET", ["system", "df"]) => system::df(e, head, r),
        ("POST", ["build", "prune"]) => system::build_prune(r),
        ("POST", ["networks", "prune"]) => system::networks_prune(r),

        ("POST", ["containers", "create"]) => c::create(e, head, body, r),
        ("GET", ["containers", "json"]) => c::list(e, head, r),
        ("GET", ["containers", id, "json"]) => c::inspect(e, id, r),
        ("POST", ["containers", id, "start"]) => c::start(e, id, r),
        ("POST", ["containers", id, "wait"]) => c::wait(e, id, head, r),
        ("POST", ["containers", id, "attach"]) => c::attach(e, id, head, r),
        ("GET", ["containers", id, "logs"]) => c::logs(e, id, head, r),
        ("POST", ["containers", id, "stop"]) => c::stop(e, id, head, r),
        ("POST", ["containers", id, "restart"]) => c::restart(e, id, head, r),
        ("POST", ["containers", id, "kill"]) => c::kill(e, id, head, r),
        ("POST", ["containers", id, "resize"]) => c::resize(e, id, head, r),
        ("DELETE", ["containers", id]) => c::remove(e, id, head, r),
        ("POST", ["containers", id, "pause"]) => c::pause(e, id, true, r),
        ("POST", ["containers", id, "unpause"]) => c::pause(e, id, false, r),
        ("POST", ["containers", id, "rename"]) => c::rename(e, id, head, r),
        ("POST", ["containers", "prune"]) => c::prune(e, r),
        ("GET", ["containers", id, "top"]) => c::top(e, id, head, r),
        ("GET", ["containers", id, "stats"]) => c::stats(e, id, head, r),
        ("GET", ["containers", id, "changes"]) => c::changes(e, id, r),
        ("POST", ["containers", id, "update"]) => c::update(e, id, body, r),
        ("GET", ["containers", id, "export"]) => c::export(e, id, r),
        ("HEAD", ["containers", id, "archive"]) => archive::stat(e, id, head, r),
        ("GET", ["containers", id, "archive"]) => archive::get(e, id, head, r),
        ("PUT", ["containers", id, "archive"]) => archive::put(e, id, head, body, r),
        ("POST", ["containers", id, "exec"]) => exec::create(e, id, body, r),
        ("POST", ["exec", id, "start"]) => exec::start(e, id, head, body, r),
        ("POST", ["exec", id, "resize"]) => exec::resize(e, id, head, r),
        ("GET", ["exec", id, "json"]) => exec::inspect(e, id, r),
        ("GET", ["events"]) => events::stream(e, head, r),
        ("POST", ["commit"]) => commit::commit(e, head, body, r),

        ("POST", ["volumes", "create"]) => vol::create(e, body, r),
        ("POST", ["volumes", "prune"]) => vol::prune(e, head, r),
        ("GET", ["volumes"]) => vol::list(e, head, r),
        ("GET", ["volumes", name @ ..]) if !name.is_empty() => vol::inspect(e, &name.join("/"), r),
        ("DELETE", ["volumes", name @ ..]) if !name.is_empty() => vol::remove(e, &name.join("/"), head, r),

        ("GET", ["images", "json"]) => images::list(e, head, r),
        ("POST", ["images", "load"]) => images::load(e, head, body, r),
        ("POST", ["images", "create"]) => images::create(e, head, body, r),
        ("POST", ["images", "prune"]) => images::prune(e, head, r),
        ("GET", ["images", "get"]) => images::save(e, head.params("names").iter().map(|s| s.to_string()).collect(), r),
        // Image names contain slashes: everything between "images" and the verb is the name.
        ("GET", ["images", name @ .., "json"]) if !name.is_empty() => images::inspect(e, &name.join("/"), r),
        ("GET", ["images", name @ .., "history"]) if !name.is_empty() => images::history(e, &name.join("/"), r),
        ("GET", ["images", name @ .., "get"]) if !name.is_empty() => images::save(e, vec![name.join("/")], r),
        ("POST", ["images", name @ .., "tag"]) if !name.is_empty() => images::tag(e, &name.join("/"), head, r),
        ("POST", ["images", name @ .., "push"]) if !name.is_empty() => images::push(e, &name.join("/"), head, r),
        ("POST", ["auth"]) => images::auth(e, body, r),
        ("DELETE", ["images", name @ ..]) if !name.is_empty() => images::remove(e, &name.join("/"), head, r),
        _ => Err(ApiError::not_found(format!("page not found: {method} {path}"))),
    }
}
