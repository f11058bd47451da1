//! `volume create`, `volume ls`, `volume inspect`, `volume rm`, `volume prune`: docker's bodies,
//! its table and row fields (natural name order), its inspect document (the Go struct's fields,
//! 4-space indented) and its prune prompt and report.

use serde_json::{json, Map, Value};

use super::client::{enc, query, Body};
use super::containers::confirm;
use super::flags::Parsed;
use super::format::human_size_prec;
use super::template::Template;
use super::{check_filters, each, err_line, filters_json, out, render, Ctx, Error};

pub const HEADERS: &[(&str, &str)] = &[
    ("Name", "VOLUME NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
    ("Group", "GROUP"),
    ("Availability", "AVAILABILITY"),
    ("Status", "STATUS"),
];

fn kv(items: &[String]) -> Map<String, Value> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => (l.to_string(), Value::String(String::new())),
        })
        .collect()
}

pub fn create(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let mut name = p.get("name").unwrap_or("").to_string();
    if let Some(arg) = p.args.first() {
        if !name.is_empty() && name != *arg {
            return Err(Error::msg(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
            ));
        }
        name = arg.clone();
    }
    // `-o key=value`; a bare key stands for an empty value, as docker's map option takes it.
    let opts = kv(&p.all("opt"));
    let body = json!({
        "Name": name,
        "Driver": p.get("driver").unwrap_or("local"),
        "DriverOpts": opts,
        "Labels": kv(&p.all("label")),
    });
    let v = ctx.client.request("POST", "/volumes/create", Body::Json(body))?.json()?;
    out(&format!("{}\n", v["Name"].as_str().unwrap_or("")));
    Ok(())
}

/// sortorder.NaturalLess: runs of digits compare as numbers, the rest byte by byte.
pub fn natural_less(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (na, nb) = (&a[si..i], &b[sj..j]);
            // Leading zeros aside, a longer run is a bigger number.
            let ta = &na[na.iter().position(|&c| c != b'0').unwrap_or(na.len())..];
            let tb = &nb[nb.iter().position(|&c| c != b'0').unwrap_or(nb.len())..];
            let o = ta.len().cmp(&tb.len()).then(ta.cmp(tb)).then(na.len().cmp(&nb.len()));
            if o != Ordering::Equal {
                return o;
            }
        } else if a[i].is_ascii_digit() != b[j].is_ascii_digit() {
            // Digits sort before anything else.
            return if a[i].is_ascii_digit() { Ordering::Less } else { Ordering::Greater };
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    a.len().cmp(&b.len())
}

/// The row context docker's volume formatter offers.
pub fn row(v: &Value) -> Value {
    let labels = v["Labels"].as_object().cloned().unwrap_or_default();
    let label_str =
        labels.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(",");
    let usage = &v["UsageData"];
    let (links, size) = if usage.is_object() {
        (usage["RefCount"].as_i64().unwrap_or(0).to_string(), human_size_prec(usage["Size"].as_f64().unwrap_or(0.0), 4))
    } else {
        ("N/A".to_string(), "N/A".to_string())
    };
    let cluster = &v["ClusterVolume"];
    let na = |s: Option<&str>| s.unwrap_or("N/A").to_string();
    json!({
        "Name": v["Name"].as_str().unwrap_or(""),
        "Driver": v["Driver"].as_str().unwrap_or(""),
        "Scope": v["Scope"].as_str().unwrap_or(""),
        "Mountpoint": v["Mountpoint"].as_str().unwrap_or(""),
        "Labels": label_str,
        "Links": links,
        "Size": size,
        "Group": na(cluster["Spec"]["Group"].as_str().filter(|s| !s.is_empty())),
        "Availability": na(cluster["Spec"]["Availability"].as_str()),
        "Status": if cluster.is_object() { "available".to_string() } else { "N/A".to_string() },
        "~Label": labels,
    })
}

pub fn ls(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let format = match p.get("format") {
        Some("json") => "{{json .}}".to_string(),
        Some(f) if !f.is_empty() && f != "table" => f.to_string(),
        _ if p.on("quiet") => "{{.Name}}".to_string(),
        _ => "table {{.Driver}}\t{{.Name}}".to_string(),
    };
    check_filters(ctx, &p.all("filter"), "-f, --filter")?;
    let q = filters_json(&p.all("filter"))?.map(|f| query(&[("filters", f)])).unwrap_or_default();
    let v = ctx.client.get_json(&format!("/volumes?{q}"))?;
    let mut vols: Vec<Value> = v["Volumes"].as_array().cloned().unwrap_or_default();
    vols.sort_by(|a, b| natural_less(a["Name"].as_str().unwrap_or(""), b["Name"].as_str().unwrap_or("")));
    let rows: Vec<Value> = vols.iter().map(row).collect();
    out(&render(&format, &rows, HEADERS)?);
    Ok(())
}

/// The document docker prints: the API's volume decoded into the Go struct (its fields, in their
/// order, which is alphabetical; maps sorted; empty optional fields left out) and re-encoded.
fn inspect_doc(v: &Value) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, omit_empty: bool| {
        let x = v.get(k).cloned().unwrap_or(Value::Null);
        let empty = match &x {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if omit_empty && empty {
            return;
        }
        let x = match (k, x) {
            ("Driver" | "Mountpoint" | "Name" | "Scope", Value::Null) => Value::String(String::new()),
            (_, x) => x,
        };
        m.insert(k.to_string(), x);
    };
    for (k, omit) in [
        ("ClusterVolume", true),
        ("CreatedAt", true),
        ("Driver", false),
        ("Labels", false),
        ("Mountpoint", false),
        ("Name", false),
        ("Options", false),
        ("Scope", false),
        ("Status", true),
        ("UsageData", true),
    ] {
        put(k, omit);
    }
    Value::Object(m)
}

/// Go's `json.MarshalIndent(v, "", "    ")`, HTML characters escaped as encoding/json does.
fn go_indent(v: &Value) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = v.serialize(&mut ser);
    String::from_utf8_lossy(&buf)
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

pub fn inspect(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let tmpl = match p.get("format").filter(|f| !f.is_empty() && *f != "json") {
        Some(f) => {
            Some(Template::parse(f).map_err(|e| Error::msg(format!("template parsing error: template: :1: {e}")))?)
        }
        None => None,
    };
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    let mut text = String::new();
    for name in &p.args {
        match ctx.client.get_json(&format!("/volumes/{}", enc(name))) {
            Ok(v) => {
                let doc = inspect_doc(&v);
                match &tmpl {
                    Some(t) => match t.execute(&doc) {
                        Ok(s) => {
                            text.push_str(&s);
                            text.push('\n');
                        }
                        Err(e) => {
                            out(&text);
                            return Err(Error::msg(format!("template: :1: executing \"\": {e}")));
                        }
                    },
                    None => docs.push(doc),
                }
            }
            Err(e) => errors.push(e.msg),
        }
    }
    if tmpl.is_none() {
        text = if docs.is_empty() { "[]\n".to_string() } else { format!("{}\n", go_indent(&Value::Array(docs))) };
    }
    out(&text);
    if errors.is_empty() {
        return Ok(());
    }
    err_line(&errors.join("\n"));
    Err(Error::exit(1))
}

pub fn rm(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let q = if p.on("force") { "?force=1" } else { "" };
    each(&p.args, |name| {
        let r = ctx.client.request("DELETE", &format!("/volumes/{}{q}", enc(name)), Body::None)?;
        r.text().map_err(Error::io)?;
        Ok(())
    })
}

pub fn prune(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let mut filters = p.all("filter");
    check_filters(ctx, &filters, "--filter")?;
    let mut warning = "WARNING! This will remove anonymous local volumes not used by at least one container.";
    if p.on("all") {
        if filters.iter().any(|f| f.split_once('=').is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("all"))) {
            return Err(Error::msg("conflicting options: cannot specify both --all and --filter all=1"));
        }
        filters.push("all=true".to_string());
        warning = "WARNING! This will remove all local volumes not used by at least one container.";
    }
    let q = filters_json(&filters)?.map(|f| query(&[("filters", f)])).unwrap_or_default();
    if !p.on("force") && !confirm(warning) {
        // docker reports a cancelled prune with no message and success.
        return Ok(());
    }
    let v = ctx.client.request("POST", &format!("/volumes/prune?{q}"), Body::None)?.json()?;
    let mut s = String::new();
    let deleted: Vec<&str> = v["VolumesDeleted"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let mut space = 0.0;
    if !deleted.is_empty() {
        s.push_str("Deleted Volumes:\n");
        for d in deleted {
            s.push_str(d);
            s.push('\n');
        }
        s.push('\n');
        space = v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    }
    s.push_str(&format!("Total reclaimed space: {}\n", human_size_prec(space, 4)));
    out(&s);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_and_doc() {
        let mut names = vec!["v10", "v2", "a", "v1", "b01", "b1"];
        names.sort_by(|a, b| natural_less(a, b));
        assert_eq!(names, ["a", "b1", "b01", "v1", "v2", "v10"]);
        let v = json!({"Name": "x", "Driver": "local", "Labels": null, "Options": {}, "Scope": "local",
                       "Mountpoint": "/m", "CreatedAt": "", "Extra": 1});
        let doc = inspect_doc(&v);
        assert_eq!(
            go_indent(&doc),
            "{\n    \"Driver\": \"local\",\n    \"Labels\": null,\n    \"Mountpoint\": \"/m\",\n    \"Name\": \"x\",\n    \"Options\": {},\n    \"Scope\": \"local\"\n}"
        );
    }
}
