//! `events`: the daemon's event stream, one line per event as it arrives — docker's default line
//! (`<time> <type> <action> <id> (k=v, …)`, attributes sorted by key) or a `--format` template
//! run on the Go message's fields. Without `--until` it runs until interrupted.

use std::io::{BufRead, BufReader, Write};

use serde_json::{json, Value};

use super::client::{query, Body};
use super::containers::time_param;
use super::flags::Parsed;
use super::template::Template;
use super::{check_filters, filters_json, Ctx, Error};

/// The local time zone's offset from UTC at `secs`, in seconds east.
fn utc_offset(secs: i64) -> i64 {
    let t: i64 = secs;
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r reads `t` and writes only into `tm`, both live on our stack; it is
    // the reentrant variant, safe beside other threads.
    let r = unsafe { nix::libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        0
    } else {
        tm.tm_gmtoff
    }
}

/// Go's `time.Unix(0, nanos).Format(RFC3339NanoFixed)`: local time, nine fraction digits, `Z`
/// for UTC or a `+hh:mm` offset.
pub fn rfc3339_local(nanos: i128) -> String {
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(0);
    let frac = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0);
    let off = utc_offset(secs);
    let s = crate::timefmt::rfc3339_nanos(secs + off, frac);
    if off == 0 {
        return s;
    }
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.abs();
    format!("{}{sign}{:02}:{:02}", s.trim_end_matches('Z'), a / 3600, (a % 3600) / 60)
}

/// docker's default event line.
fn pretty(ev: &Value) -> String {
    let mut s = String::new();
    let nanos = ev["timeNano"].as_i64().unwrap_or(0);
    let secs = ev["time"].as_i64().unwrap_or(0);
    if nanos != 0 {
        s.push_str(&rfc3339_local(i128::from(nanos)));
        s.push(' ');
    } else if secs != 0 {
        s.push_str(&rfc3339_local(i128::from(secs) * 1_000_000_000));
        s.push(' ');
    }
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    s.push_str(&format!("{} {} {}", text(&ev["Type"]), text(&ev["Action"]), text(&ev["Actor"]["ID"])));
    // serde_json's map is ordered by key: the attributes come out sorted, as docker sorts them.
    if let Some(attrs) = ev["Actor"]["Attributes"].as_object().filter(|a| !a.is_empty()) {
        let list: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={}", text(v))).collect();
        s.push_str(&format!(" ({})", list.join(", ")));
    }
    s.push('\n');
    s
}

/// The event as the Go `events.Message` a template sees: its field names, not the JSON keys.
fn message(ev: &Value) -> Value {
    json!({
        "Status": ev["status"].as_str().unwrap_or(""),
        "ID": ev["id"].as_str().unwrap_or(""),
        "From": ev["from"].as_str().unwrap_or(""),
        "Type": ev["Type"].as_str().unwrap_or(""),
        "Action": ev["Action"].as_str().unwrap_or(""),
        "Actor": {
            "ID": ev["Actor"]["ID"].as_str().unwrap_or(""),
            "Attributes": ev["Actor"]["Attributes"].as_object().cloned().unwrap_or_default(),
        },
        "Scope": ev["scope"].as_str().unwrap_or(""),
        "Time": ev["time"].as_i64().unwrap_or(0),
        "TimeNano": ev["timeNano"].as_i64().unwrap_or(0),
    })
}

/// `{{json .}}` of the Go message: its struct order and JSON names, empty legacy fields left
/// out, attributes sorted, no HTML escaping (docker's template `json` function).
fn message_json(ev: &Value) -> String {
    let q = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    let mut s = String::from("{");
    for k in ["status", "id", "from"] {
        if let Some(v) = ev[k].as_str().filter(|v| !v.is_empty()) {
            s.push_str(&format!("{}:{},", q(&json!(k)), q(&json!(v))));
        }
    }
    let attrs = ev["Actor"]["Attributes"].as_object().cloned().unwrap_or_default();
    s.push_str(&format!(
        "\"Type\":{},\"Action\":{},\"Actor\":{{\"ID\":{},\"Attributes\":{}}},\"scope\":{},\"time\":{},\"timeNano\":{}}}",
        q(&json!(ev["Type"].as_str().unwrap_or(""))),
        q(&json!(ev["Action"].as_str().unwrap_or(""))),
        q(&json!(ev["Actor"]["ID"].as_str().unwrap_or(""))),
        q(&Value::Object(attrs)),
        q(&json!(ev["scope"].as_str().unwrap_or(""))),
        ev["time"].as_i64().unwrap_or(0),
        ev["timeNano"].as_i64().unwrap_or(0),
    ));
    s
}

/// How each event is printed.
enum Shape {
    Pretty,
    Json,
    Template(Template),
}

pub fn events(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    check_filters(ctx, &p.all("filter"), "-f, --filter")?;
    let shape = match p.get("format").filter(|f| !f.is_empty()) {
        None => Shape::Pretty,
        Some(f) if f == "json" || f.replace(' ', "") == "{{json.}}" => Shape::Json,
        Some(f) => {
            let parsed = Template::parse(f).map_err(|e| format!("template: :1: {e}"));
            // docker validates the template on an empty message; a failure exits 64.
            let checked = parsed.and_then(|t| {
                t.execute_strict(&message(&Value::Null))
                    .map(|_| t)
                    .map_err(|e| format!("template: :1: executing \"\": {e}"))
            });
            Shape::Template(checked.map_err(|e| Error {
                msg: format!("Error parsing format: {e}"),
                code: 64,
                status: 0,
            })?)
        }
    };
    let mut q = Vec::new();
    if let Some(s) = p.get("since").filter(|s| !s.is_empty()) {
        q.push(("since", time_param(s)));
    }
    if let Some(s) = p.get("until").filter(|s| !s.is_empty()) {
        q.push(("until", time_param(s)));
    }
    if let Some(f) = filters_json(&p.all("filter"))? {
        q.push(("filters", f));
    }
    let r = ctx.client.request("GET", &format!("/events?{}", query(&q)), Body::None)?;
    let mut stdout = std::io::stdout();
    for line in BufReader::new(r).lines() {
        let line = line.map_err(Error::io)?;
        if line.trim().is_empty() {
            continue;
        }
        let ev: Value = serde_json::from_str(&line).map_err(|e| Error::msg(e.to_string()))?;
        if let Some(m) = ev["error"].as_str() {
            return Err(Error::msg(m.to_string()));
        }
        let text = match &shape {
            Shape::Pretty => pretty(&ev),
            Shape::Json => message_json(&ev) + "\n",
            Shape::Template(t) => {
                let mut s = t.execute(&message(&ev)).map_err(Error::msg)?;
                s.push('\n');
                s
            }
        };
        // A reader that went away (a closed pipe) ends the stream quietly.
        if stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_line() {
        let ev = json!({"Type": "container", "Action": "create", "Actor": {"ID": "abc",
            "Attributes": {"name": "web", "image": "busybox"}}, "time": 1, "timeNano": 1_000_000_005i64});
        let line = pretty(&ev);
        assert!(line.ends_with(" container create abc (image=busybox, name=web)\n"), "{line}");
        assert!(line.contains(":01.000000005"), "{line}");
        if utc_offset(1) == 0 {
            assert!(line.starts_with("1970-01-01T00:00:01.000000005Z "), "{line}");
        }
        let m = message(&ev);
        assert_eq!((m["Actor"]["ID"].as_str(), m["TimeNano"].as_i64()), (Some("abc"), Some(1_000_000_005)));
    }
}
