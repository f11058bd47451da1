//! `POST /commit`: a container's changes as a new image (`docker commit`).
//!
//! The layer is the container's overlay upper directory, whiteouts converted to the OCI form. A
//! running container is frozen while it is read (`pause`, the default), so the layer is a
//! consistent snapshot.

use serde_json::{json, Map, Value};

use super::api::{ApiError, ApiResult, Responder};
use super::http::{Body, Head};
use super::images::api_error;
use super::Engine;

/// Config keys a commit carries from the container into the image.
const KEPT: [&str; 10] = [
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
    "OnBuild",
    "Shell",
    "Healthcheck",
];

pub fn commit(e: &Engine, head: &Head, body: &mut Body<'_>, r: &mut Responder<'_>) -> ApiResult {
    let data = body.read_all(1 << 20).map_err(|err| ApiError::bad_request(format!("cannot read body: {err}")))?;
    let overrides: Map<String, Value> = if data.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&data) {
            Ok(Value::Object(m)) => m,
            Ok(Value::Null) => Map::new(),
            Ok(_) => return Err(ApiError::bad_request("invalid JSON: the config must be an object")),
            Err(err) => return Err(ApiError::bad_request(format!("invalid JSON: {err}"))),
        }
    };
    let key = head
        .param("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("No container specified"))?;
    let rec = e.containers.find(key)?;
    let changes: Vec<String> = head.params("changes").iter().map(|s| s.to_string()).collect();
    let changes = crate::image::config::ConfigChanges::parse(&changes).map_err(|x| api_error(&x))?;
    let reference = match (head.param("repo").filter(|s| !s.is_empty()), head.param("tag").filter(|s| !s.is_empty())) {
        (Some(repo), Some(tag)) => Some(format!("{repo}:{tag}")),
        (Some(repo), None) => Some(repo.to_string()),
        (None, Some(_)) => return Err(ApiError::bad_request("tag given without a repository")),
        _ => None,
    };
    let parent = e.images.resolve(&rec.image).ok();
    // The image's config, then what the container was created with, then the request's.
    let mut config: Map<String, Value> =
        parent.as_ref().and_then(|p| p.config.get("config")).and_then(Value::as_object).cloned().unwrap_or_default();
    let created_with = rec.config_json.as_object().cloned().unwrap_or_default();
    for src in [&created_with, &overrides] {
        for k in KEPT {
            if let Some(v) = src.get(k).filter(|v| !v.is_null() && v.as_str() != Some("")) {
                config.insert(k.to_string(), v.clone());
            }
        }
        if let Some(Value::Object(labels)) = src.get("Labels") {
            let mut all = config.get("Labels").and_then(Value::as_object).cloned().unwrap_or_default();
            all.extend(labels.clone());
            config.insert("Labels".into(), Value::Object(all));
        }
        if let Some(Value::Array(env)) = src.get("Env") {
            let mut cur: Vec<String> = config
                .get("Env")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default();
            for kv in env.iter().filter_map(Value::as_str) {
                let k = kv.split('=').next().unwrap_or_default();
                cur.retain(|x| x.split('=').next() != Some(k));
                cur.push(kv.to_string());
            }
            config.insert("Env".into(), json!(cur));
        }
    }
    changes.apply(&mut config);
    let pause = head.flag("pause", true) && rec.state.status == "running";
    if pause {
        e.containers.pause(&rec.id, true)?;
    }
    let layers = match parent.as_ref() {
        Some(p) => e.images.layer_dirs(p).map_err(ApiError::from)?,
        None => Vec::new(),
    };
    let scratch = e.layout.tmp().join(format!("commit-{}", super::containers::random_hex(8)));
    let upper = match e.containers.upper_dir(&rec, &layers, &scratch) {
        Ok(u) => u,
        Err(err) => {
            let _ = std::fs::remove_dir_all(&scratch);
            if pause {
                let _ = e.containers.pause(&rec.id, false);
            }
            return Err(ApiError::internal(format!("commit: {err}")));
        }
    };
    let created_by = std::iter::once(rec.path.clone()).chain(rec.args.iter().cloned()).collect::<Vec<_>>().join(" ");
    let res = e.images.commit_container(&crate::image::config::CommitInput {
        parent: parent.as_ref(),
        upper: &upper,
        config,
        comment: head.param("comment").unwrap_or(""),
        author: head.param("author").unwrap_or(""),
        created_by: &created_by,
        reference: reference.as_deref(),
    });
    if pause {
        let _ = e.containers.pause(&rec.id, false);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let id = res.map_err(|x| api_error(&x))?;
    let image_ref = reference.clone().unwrap_or_default();
    e.events.container(
        &rec,
        "commit",
        &[("comment", head.param("comment").unwrap_or("")), ("imageID", id.as_str()), ("imageRef", &image_ref)],
    );
    r.json(201, &json!({ "Id": id.as_str() }))?;
    Ok(())
}
