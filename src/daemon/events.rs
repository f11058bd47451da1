//! `GET /events`: what happened to containers, images and volumes, as Docker reports it.
//!
//! Events are kept in memory, the last [`KEEP`] of them, for `--since`; subscribers wait on a
//! condition variable and stream each new event as one JSON object. An event is Docker's shape:
//! `Type`, `Action`, `Actor {ID, Attributes}`, `scope`, `time`, `timeNano`, plus the legacy
//! `status`/`id`/`from` for containers and images.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::api::{ApiError, ApiResult, Responder};
use super::containers::Record;
use super::http::Head;
use super::images::parse_filters;
use super::Engine;

/// How many past events `--since` can reach.
const KEEP: usize = 1024;

#[derive(Default)]
pub struct Events {
    log: Mutex<Log>,
    wake: Condvar,
}

#[derive(Default)]
struct Log {
    /// Sequence number of the first event in `events`.
    first: u64,
    events: VecDeque<Value>,
}

impl Events {
    /// Records an event.
    pub fn emit(&self, kind: &str, action: &str, id: &str, attrs: &[(&str, &str)], from: Option<&str>) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut a = Map::new();
        for (k, v) in attrs {
            a.insert((*k).to_string(), Value::String((*v).to_string()));
        }
        let mut ev = json!({
            "Type": kind,
            "Action": action,
            "Actor": {"ID": id, "Attributes": a},
            "scope": "local",
            "time": now.as_secs(),
            "timeNano": now.as_nanos() as u64,
        });
        if kind == "container" || kind == "image" {
            ev["status"] = json!(action);
            ev["id"] = json!(id);
            if let Some(f) = from {
                ev["from"] = json!(f);
            }
        }
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.events.push_back(ev);
        if log.events.len() > KEEP {
            log.events.pop_front();
            log.first += 1;
        }
        drop(log);
        self.wake.notify_all();
    }

    /// A container event: the image, the name and the labels go into the attributes.
    pub fn container(&self, r: &Record, action: &str, extra: &[(&str, &str)]) {
        let image = if r.image_name.is_empty() { r.image.clone() } else { r.image_name.clone() };
        let mut attrs: Vec<(String, String)> = vec![("image".into(), image.clone()), ("name".into(), r.name.clone())];
        for (k, v) in r.config.labels.iter().flatten() {
            attrs.push((k.clone(), v.clone()));
        }
        for (k, v) in extra {
            attrs.push(((*k).to_string(), (*v).to_string()));
        }
        let borrowed: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.emit("container", action, &r.id, &borrowed, Some(&image));
    }

    /// Events from sequence `from` on, and the next sequence number.
    fn since(&self, from: u64) -> (Vec<Value>, u64) {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let start = from.max(log.first);
        let skip = usize::try_from(start - log.first).unwrap_or(usize::MAX);
        let v: Vec<Value> = log.events.iter().skip(skip).cloned().collect();
        (v, log.first + log.events.len() as u64)
    }

    /// Waits up to `d` for an event at or after `seq`.
    fn wait(&self, seq: u64, d: Duration) {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.first + (log.events.len() as u64) > seq {
            return;
        }
        let _ = self.wake.wait_timeout(log, d);
    }
}

/// A `since`/`until` value: seconds, with an optional fraction, or an RFC 3339 time.
fn parse_time(s: &str) -> Option<u128> {
    if let Ok(f) = s.parse::<f64>() {
        return Some((f * 1e9) as u128);
    }
    super::containers::parse_rfc3339(s).map(|t| u128::from(t) * 1_000_000_000)
}

/// Whether an event passes Docker's `filters`: each key's values are alternatives, and every key
/// must match.
fn matches(ev: &Value, filters: &std::collections::BTreeMap<String, Vec<String>>) -> bool {
    let attr = |k: &str| ev["Actor"]["Attributes"][k].as_str().unwrap_or("").to_string();
    let kind = ev["Type"].as_str().unwrap_or("");
    let action = ev["Action"].as_str().unwrap_or("");
    let id = ev["Actor"]["ID"].as_str().unwrap_or("");
    filters.iter().all(|(k, vals)| {
        vals.iter().any(|v| match k.as_str() {
            "type" => kind == v,
            // `exec_start: sh -c …` matches `exec_start`.
            "event" => action == v || action.split(':').next() == Some(v.as_str()),
            "container" => kind == "container" && (id.starts_with(v.as_str()) || attr("name") == *v),
            "image" => {
                (kind == "image" && (id.starts_with(v.as_str()) || attr("name") == *v))
                    || (kind == "container" && attr("image") == *v)
            }
            "volume" => kind == "volume" && id == v,
            "label" => match v.split_once('=') {
                Some((lk, lv)) => attr(lk) == lv,
                None => ev["Actor"]["Attributes"].get(v.as_str()).is_some(),
            },
            "scope" => v == "local",
            _ => false,
        })
    })
}

/// `GET /events`.
pub fn stream(e: &Engine, head: &Head, r: &mut Responder<'_>) -> ApiResult {
    let since = head.param("since").filter(|s| !s.is_empty()).map(|s| parse_time(s).ok_or(s));
    let until = head.param("until").filter(|s| !s.is_empty()).map(|s| parse_time(s).ok_or(s));
    let since = since.transpose().map_err(|s| ApiError::bad_request(format!("invalid since: {s:?}")))?;
    let until = until.transpose().map_err(|s| ApiError::bad_request(format!("invalid until: {s:?}")))?;
    let filters = parse_filters(head.param("filters"))?;
    for k in filters.keys() {
        if !["type", "event", "container", "image", "volume", "label", "scope"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
        }
    }
    let now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let mut w = r.stream(200, "application/json", &[])?;
    // Without `since`, only what happens from now on.
    let (_, mut seq) = e.events.since(u64::MAX);
    if since.is_some() {
        seq = 0;
    }
    loop {
        let (evs, next) = e.events.since(seq);
        seq = next;
        for ev in evs {
            let t = u128::from(ev["timeNano"].as_u64().unwrap_or(0));
            if since.is_some_and(|s| t < s) {
                continue;
            }
            if until.is_some_and(|u| t > u) {
                w.finish()?;
                return Ok(());
            }
            if matches(&ev, &filters) {
                let mut line = serde_json::to_vec(&ev).unwrap_or_default();
                line.push(b'\n');
                w.write_all(&line)?;
            }
        }
        if until.is_some_and(|u| now() > u) {
            break;
        }
        // A client that went away is noticed at the next write.
        e.events.wait(seq, Duration::from_secs(1));
    }
    w.finish()?;
    Ok(())
}
