//! Image routes: list, inspect, history, tag, remove, prune, load, save, import, pull, push, and
//! `POST /auth` (login), which checks credentials against a registry.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use super::api::{ApiError, ApiResult, Responder};
use super::http::{Body, Chunked, Head};
use super::Engine;
use crate::image::distribution::{domain_of_server, endpoints, AuthConfig, Session, Settings, HUB_AUTH_ADDRESS};
use crate::image::pull::{Platform, PullRequest};
use crate::image::push::PushRequest;
use crate::image::reference::Reference;
use crate::image::store::Deleted;
use crate::image::Error;

/// Maps the image store's errors onto Engine API statuses.
pub fn api_error(e: &Error) -> ApiError {
    match e {
        Error::NotFound(m) => ApiError::not_found(m.clone()),
        Error::Conflict(m) => ApiError::conflict(m.clone()),
        Error::InvalidInput(m) => ApiError::bad_request(m.clone()),
        Error::Io(m) => ApiError::internal(m.clone()),
        Error::Unauthorized(m) => ApiError::new(401, m.clone()),
    }
}

/// Who uses an image, for `rmi` and prune refusals.
fn users(e: &Engine) -> impl Fn(&crate::store::digest::Digest) -> Option<crate::image::store::User> + '_ {
    let list = e.containers.image_users();
    move |d| {
        let mut hit: Option<crate::image::store::User> = None;
        for (img, cid, running) in &list {
            if img == d.as_str() {
                if *running {
                    return Some(crate::image::store::User { container: cid.clone(), running: true });
                }
                hit.get_or_insert(crate::image::store::User { container: cid.clone(), running: false });
            }
        }
        hit
    }
}

/// `GET /images/json?all=&filters=&digests=`.
pub fn list(e: &Engine, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let filters = parse_filters(head.param("filters"))?;
    let dangling = filters.get("dangling").and_then(|v| v.first()).map(|v| v == "true" || v == "1");
    let refs: Vec<String> = filters.get("reference").cloned().unwrap_or_default();
    let users = e.containers.image_users();
    let mut out = Vec::new();
    for img in e.images.list() {
        if let Some(d) = dangling {
            if d != img.repo_tags.is_empty() {
                continue;
            }
        }
        if !refs.is_empty() && !img.repo_tags.iter().any(|t| refs.iter().any(|p| ref_matches(p, t))) {
            continue;
        }
        let mut s = e.images.summary_json(&img);
        s["Containers"] = json!(users.iter().filter(|(i, _, _)| i == img.id.as_str()).count());
        out.push(s);
    }
    r.json(200, &Value::Array(out))?;
    Ok(())
}

/// `reference=busybox`, `reference=busy*:lat*` against a familiar tag.
fn ref_matches(pattern: &str, tag: &str) -> bool {
    let (pname, ptag) = pattern.split_once(':').map_or((pattern, None), |(a, b)| (a, Some(b)));
    let (tname, ttag) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    glob(pname, tname) && ptag.is_none_or(|p| glob(p, ttag))
}

/// `*` and `?` wildcards.
pub fn glob(p: &str, s: &str) -> bool {
    let (p, s) = (p.as_bytes(), s.as_bytes());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            pi += 1;
            mark = si;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// The `filters` query parameter: `{"key": ["v", …]}` or the older `{"key": {"v": true}}`.
pub fn parse_filters(raw: Option<&str>) -> Result<std::collections::BTreeMap<String, Vec<String>>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    let Some(raw) = raw.filter(|s| !s.is_empty()) else { return Ok(out) };
    let v: Value = serde_json::from_str(raw).map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
    let obj = v.as_object().ok_or_else(|| ApiError::bad_request("invalid filter: not an object"))?;
    for (k, vals) in obj {
        let list: Vec<String> = match vals {
            Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
            Value::Object(o) => o.iter().filter(|(_, b)| b.as_bool() == Some(true)).map(|(s, _)| s.clone()).collect(),
            _ => return Err(ApiError::bad_request(format!("invalid filter {k:?}"))),
        };
        out.insert(k.clone(), list);
    }
    Ok(out)
}

pub fn inspect(e: &Engine, name: &str, r: &mut Responder<'_>) -> ApiResult {
    let img = e.images.resolve(name).map_err(|x| api_error(&x))?;
    r.json(200, &e.images.inspect_json(&img))?;
    Ok(())
}

pub fn history(e: &Engine, name: &str, r: &mut Responder<'_>) -> ApiResult {
    let img = e.images.resolve(name).map_err(|x| api_error(&x))?;
    r.json(200, &e.images.history_json(&img))?;
    Ok(())
}

/// An image event whose actor is the image `name` resolves to.
fn image_event(e: &Engine, name: &str, action: &str, shown: &str) {
    if let Ok(img) = e.images.resolve(name) {
        e.events.emit("image", action, img.id.as_str(), &[("name", shown)], None);
    }
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub fn tag(e: &Engine, name: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let repo = head.param("repo").unwrap_or("");
    if repo.is_empty() {
        return Err(ApiError::bad_request("repository name must have at least one component"));
    }
    let target = match head.param("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    e.images.tag(name, &target).map_err(|x| api_error(&x))?;
    let shown = Reference::parse(&target).map(|r| r.familiar()).unwrap_or(target.clone());
    image_event(e, name, "tag", &shown);
    r.empty(201)?;
    Ok(())
}

/// `DELETE /images/{name}?force=&noprune=`.
pub fn remove(e: &Engine, name: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let users = users(e);
    let id = e.images.resolve(name).map(|i| i.id.to_string()).unwrap_or_default();
    let deleted = e.images.remove(name, head.flag("force", false), &users).map_err(|x| api_error(&x))?;
    for d in &deleted {
        match d {
            Deleted::Untagged(t) => e.events.emit("image", "untag", &id, &[("name", t)], None),
            Deleted::Deleted(i) => e.events.emit("image", "delete", i, &[("name", i)], None),
        }
    }
    r.json(200, &Value::Array(deleted.iter().map(|d| d.to_json()).collect()))?;
    Ok(())
}

/// `POST /images/prune?filters=`.
pub fn prune(e: &Engine, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let filters = parse_filters(head.param("filters"))?;
    let dangling_only = filters.get("dangling").and_then(|v| v.first()).is_none_or(|v| v != "false" && v != "0");
    let users = users(e);
    let (deleted, space) = e.images.prune(dangling_only, &users).map_err(|x| api_error(&x))?;
    let list: Vec<Value> = deleted.iter().map(|d| d.to_json()).collect();
    r.json(200, &json!({"ImagesDeleted": if list.is_empty() { Value::Null } else { Value::Array(list) }, "SpaceReclaimed": space}))?;
    Ok(())
}

/// `POST /images/load?quiet=`: the archive streams in; progress streams out as JSON messages.
pub fn load(e: &Engine, head: &Head, body: &mut Body<'_>, r: &mut Responder<'_>) -> ApiResult {
    let quiet = head.flag("quiet", false);
    let result = {
        let mut msgs: Vec<String> = Vec::new();
        let res = e.images.load(&mut *body, &mut |m| msgs.push(m.to_string()));
        if let Ok(loaded) = &res {
            for l in loaded {
                let id = l.id.to_string();
                let name = l.tags.first().cloned().unwrap_or_else(|| id.clone());
                e.events.emit("image", "load", &id, &[("name", &name)], None);
            }
        }
        res.map(|_| msgs)
    };
    let _ = body.drain();
    let mut w = r.stream(200, "application/json", &[])?;
    match result {
        Ok(msgs) => {
            // Quiet or not, the CLI prints these "stream" lines; progress bars are not sent.
            let _ = quiet;
            for m in msgs {
                let line = json!({"stream": format!("{m}\n")});
                w.write_all(format!("{line}\r\n").as_bytes())?;
            }
        }
        Err(err) => {
            let msg = api_error(&err).message;
            w.write_all(format!("{}\r\n", json!({"errorDetail": {"message": msg}, "error": msg})).as_bytes())?;
        }
    }
    w.finish()?;
    Ok(())
}

/// `GET /images/get?names=…` and `GET /images/{name}/get`: a `docker save` archive.
pub fn save(e: &Engine, names: Vec<String>, r: &mut Responder<'_>) -> ApiResult {
    // Resolve everything first so a missing image is a clean 404, not a broken stream.
    for n in &names {
        e.images.resolve(n).map_err(|x| api_error(&x))?;
    }
    for n in &names {
        image_event(e, n, "save", n);
    }
    let mut w = r.stream(200, "application/x-tar", &[])?;
    let res = e.images.save(&names, &mut w);
    if let Err(err) = res {
        // Headers are gone: end the stream short, so the client sees a truncated archive.
        eprintln!("tugd: save: {}", api_error(&err).message);
        return Ok(());
    }
    w.finish()?;
    Ok(())
}

/// `POST /images/create?fromSrc=-&repo=&tag=&changes=…` (`docker import`), or with `fromImage`
/// a pull from a registry.
pub fn create(e: &Engine, head: &Head, body: &mut Body<'_>, r: &mut Responder<'_>) -> ApiResult {
    if let Some(from) = head.param("fromImage") {
        let _ = body.drain();
        return pull(e, from, head, r);
    }
    if head.param("fromSrc") != Some("-") {
        return Err(ApiError::bad_request("only fromSrc=- (the request body) is supported for import"));
    }
    let changes: Vec<String> = head.params("changes").iter().map(|s| s.to_string()).collect();
    let changes = crate::image::config::ConfigChanges::parse(&changes).map_err(|x| api_error(&x))?;
    let reference = match (head.param("repo").filter(|s| !s.is_empty()), head.param("tag").filter(|s| !s.is_empty())) {
        (Some(repo), Some(tag)) => Some(format!("{repo}:{tag}")),
        (Some(repo), None) => Some(repo.to_string()),
        _ => None,
    };
    let res = e.images.import(&mut *body, &changes, reference.as_deref());
    let _ = body.drain();
    let mut w = r.stream(200, "application/json", &[])?;
    match res {
        Ok(id) => {
            let name = reference.clone().unwrap_or_else(|| id.to_string());
            e.events.emit("image", "import", id.as_str(), &[("name", &name)], None);
            w.write_all(format!("{}\r\n", json!({"status": id.as_str()})).as_bytes())?
        }
        Err(err) => {
            let msg = api_error(&err).message;
            w.write_all(format!("{}\r\n", json!({"errorDetail": {"message": msg}, "error": msg})).as_bytes())?;
        }
    }
    w.finish()?;
    Ok(())
}

/// The registry settings of the daemon's configuration (file and flags).
fn registry_settings(e: &Engine) -> Settings {
    let c = e.config.lock().unwrap_or_else(|p| p.into_inner());
    Settings { insecure: c.insecure_registries.clone(), mirrors: c.registry_mirrors.clone() }
}

/// A progress stream: one JSON message per chunk, its headers sent with the first message (so an
/// error before any progress is an HTTP error, as dockerd answers). A failed write (the client
/// went away) sets `cancel`, which stops the transfer behind it.
struct Progress<'a, 'b, 'c> {
    r: Mutex<&'b mut Responder<'a>>,
    cancel: &'c AtomicBool,
}

impl<'a, 'b, 'c> Progress<'a, 'b, 'c> {
    fn new(r: &'b mut Responder<'a>, cancel: &'c AtomicBool) -> Self {
        Progress { r: Mutex::new(r), cancel }
    }

    fn send(&self, m: Value) {
        let mut r = self.r.lock().unwrap_or_else(|p| p.into_inner());
        if !r.sent() && r.stream(200, "application/json", &[]).is_err() {
            self.cancel.store(true, Ordering::Relaxed);
            return;
        }
        if Chunked::new(r.w).write_all(format!("{m}\r\n").as_bytes()).is_err() {
            self.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Ends the answer: an error goes in-stream once progress was sent, else as the status.
    fn finish(self, result: Result<(), Error>) -> ApiResult {
        let r = self.r.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = result {
            if !r.sent() {
                return Err(api_error(&err));
            }
            let msg = err.to_string();
            let m = json!({"errorDetail": {"message": msg}, "error": msg});
            let _ = Chunked::new(r.w).write_all(format!("{m}\r\n").as_bytes());
        }
        Chunked::new(r.w).finish()?;
        Ok(())
    }
}

/// `POST /images/create?fromImage=&tag=&platform=` with `X-Registry-Auth`: pulls, streaming
/// dockerd's progress messages; failures are reported in the stream.
fn pull(e: &Engine, from: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let tag = head.param("tag").filter(|t| !t.is_empty());
    // The CLI sends a digest as the tag (`fromImage=x&tag=sha256:…`).
    let joined = match tag {
        Some(t) if t.starts_with("sha256:") => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    let reference = Reference::parse(&joined).map_err(ApiError::bad_request)?;
    let platform = match head.param("platform").filter(|p| !p.is_empty()) {
        Some(p) => Some(Platform::parse(p).map_err(|x| api_error(&x))?),
        None => None,
    };
    let settings = registry_settings(e);
    let cancel = AtomicBool::new(false);
    let progress = Progress::new(r, &cancel);
    let req = PullRequest {
        reference: reference.clone(),
        platform,
        auth: AuthConfig::from_header(head.header("X-Registry-Auth")),
        settings: &settings,
        cancel: &cancel,
    };
    let res = e.images.pull(&req, &|m| progress.send(m));
    match &res {
        Ok(_) => {
            let shown = reference.familiar();
            e.events.emit("image", "pull", &shown, &[("name", &reference.familiar_name())], None);
        }
        Err(err) => eprintln!("tugd: pull {}: {err}", reference.familiar()),
    }
    progress.finish(res.map(|_| ()))
}

/// `POST /images/{name}/push?tag=` with `X-Registry-Auth`.
pub fn push(e: &Engine, name: &str, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let tag = head.param("tag").filter(|t| !t.is_empty()).map(str::to_string);
    let settings = registry_settings(e);
    let cancel = AtomicBool::new(false);
    let progress = Progress::new(r, &cancel);
    let req = PushRequest {
        name: name.to_string(),
        tag,
        auth: AuthConfig::from_header(head.header("X-Registry-Auth")),
        settings: &settings,
        cancel: &cancel,
    };
    let res = e.images.push(&req, &|m| progress.send(m));
    match &res {
        Ok(pushed) => {
            for p in pushed {
                let id = p.reference.familiar();
                e.events.emit("image", "push", &id, &[("name", &p.reference.familiar_name())], None);
            }
        }
        Err(err) => eprintln!("tugd: push {name}: {err}"),
    }
    progress.finish(res.map(|_| ()))
}

/// `POST /auth` (`docker login`): checks the credentials against the registry's `/v2/`.
pub fn auth(e: &Engine, body: &mut Body<'_>, r: &mut Responder<'_>) -> ApiResult {
    let data = body.read_all(1 << 20)?;
    let a: AuthConfig =
        serde_json::from_slice(&data).map_err(|x| ApiError::bad_request(format!("invalid auth configuration: {x}")))?;
    let server = if a.server_address.is_empty() { HUB_AUTH_ADDRESS.to_string() } else { a.server_address.clone() };
    let domain = domain_of_server(&server);
    let a = a.normalised().ok_or_else(|| ApiError::bad_request("a username is required"))?;
    let eps: Vec<_> = endpoints(&registry_settings(e), &domain).into_iter().filter(|x| !x.mirror).collect();
    let session = Session::connect(&eps, Some(a), Vec::new()).map_err(|x| api_error(&x))?;
    session.check_login().map_err(|x| api_error(&x))?;
    r.json(200, &json!({"Status": "Login Succeeded", "IdentityToken": ""}))?;
    Ok(())
}
