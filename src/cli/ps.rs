//! `ps` / `container ls`: `GET /containers/json`, one row per container with docker's field
//! names (`.ID`, `.Names`, `.RunningFor`…) rendered through the default table or `--format`.

use serde_json::{json, Value};

use super::client::query;
use super::flags::Parsed;
use super::format::{ago, ellipsis, go_quote, human_size, short_id, unix_string};
use super::{filters_json, out, render, Ctx, Error};

pub const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

pub fn ps(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let format = p.get("format").map(str::to_string);
    let quiet = p.on("quiet");
    let trunc = !p.on("no-trunc");
    let mut size = p.on("size");
    let format = match format {
        Some(f) if !f.is_empty() && f != "table" => f,
        _ if quiet => "{{.ID}}".to_string(),
        _ if size => {
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
                .to_string()
        }
        _ => {
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".to_string()
        }
    };
    // A custom format that shows sizes (or every field, `json .`) asks the daemon for them.
    if format.contains(".Size") || format.replace(' ', "").contains("json.}}") {
        size = true;
    }
    let mut q = Vec::new();
    if p.on("all") {
        q.push(("all", "1".to_string()));
    }
    let limit =
        if p.on("latest") { Some(1) } else { p.get("last").and_then(|n| n.parse::<i64>().ok()).filter(|n| *n > 0) };
    if let Some(n) = limit {
        q.push(("limit", n.to_string()));
    }
    if size {
        q.push(("size", "1".to_string()));
    }
    if let Some(f) = filters_json(&p.all("filter"))? {
        q.push(("filters", f));
    }
    let list = ctx.client.get_json(&format!("/containers/json?{}", query(&q)))?;
    let rows: Vec<Value> = list.as_array().map(|a| a.iter().map(|c| row(c, trunc)).collect()).unwrap_or_default();
    out(&render(&format, &rows, HEADERS)?);
    Ok(())
}

/// Drops `docker.io/library/` and `docker.io/` as docker's familiar names do.
pub fn familiar(name: &str) -> String {
    name.strip_prefix("docker.io/library/").or_else(|| name.strip_prefix("docker.io/")).unwrap_or(name).to_string()
}

/// The row context of one container, every field already a string as docker's are.
pub fn row(c: &Value, trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let mut names: Vec<String> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    if trunc {
        // Only the container's own name, not its link aliases (`other/alias`).
        if let Some(n) = names.iter().find(|n| !n.contains('/')) {
            names = vec![n.clone()];
        }
    }
    let image = c["Image"].as_str().unwrap_or("");
    let image_id = c["ImageID"].as_str().unwrap_or("");
    let image = if image.is_empty() {
        "<no image>".to_string()
    } else if trunc && short_id(image_id) == short_id(image) {
        short_id(image)
    } else if trunc {
        familiar(image.split('@').next().unwrap_or(image))
    } else {
        image.to_string()
    };
    let command = c["Command"].as_str().unwrap_or("");
    let command = go_quote(&if trunc { ellipsis(command, 20) } else { command.to_string() });
    let created = c["Created"].as_i64().unwrap_or(0);
    let labels: serde_json::Map<String, Value> = c["Labels"].as_object().cloned().unwrap_or_default();
    let label_str =
        labels.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(",");
    let srw = c["SizeRw"].as_f64().unwrap_or(0.0);
    let sv = c["SizeRootFs"].as_f64().unwrap_or(0.0);
    let size = if sv > 0.0 { format!("{} (virtual {})", human_size(srw), human_size(sv)) } else { human_size(srw) };
    let mut nets: Vec<String> =
        c["NetworkSettings"]["Networks"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    nets.sort();
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let n = m["Name"].as_str().filter(|s| !s.is_empty()).or(m["Source"].as_str()).unwrap_or("").to_string();
            if trunc {
                ellipsis(&n, 15)
            } else {
                n
            }
        })
        .collect();
    let volumes = c["Mounts"].as_array().into_iter().flatten().filter(|m| m["Type"] == "volume").count();
    json!({
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Names": names.join(","),
        "Image": image,
        "Command": command,
        "CreatedAt": unix_string(created),
        "RunningFor": ago(created),
        "Ports": ports(&c["Ports"]),
        "State": c["State"].as_str().unwrap_or(""),
        "Status": c["Status"].as_str().unwrap_or(""),
        "Size": size,
        "Labels": label_str,
        "Mounts": mounts.join(","),
        "Networks": nets.join(","),
        "LocalVolumes": volumes.to_string(),
        "Platform": null,
        "~Label": labels,
    })
}

/// docker's `DisplayablePorts`, without range folding: `0.0.0.0:8080->80/tcp, 443/tcp`.
fn ports(p: &Value) -> String {
    let mut out: Vec<String> = Vec::new();
    for port in p.as_array().into_iter().flatten() {
        let private = port["PrivatePort"].as_u64().unwrap_or(0);
        let ty = port["Type"].as_str().unwrap_or("tcp");
        let s = match (port["IP"].as_str(), port["PublicPort"].as_u64()) {
            (Some(ip), Some(public)) if public > 0 => {
                let ip = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
                format!("{ip}:{public}->{private}/{ty}")
            }
            _ => format!("{private}/{ty}"),
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_fields() {
        let c = json!({
            "Id": "35ac2ae09ada1a971760a3090143d5cb851647c85ac443116c4761675b4d538c",
            "Names": ["/d1", "/other/alias"],
            "Image": "docker.io/library/busybox:latest",
            "ImageID": "sha256:63aa08cecdf4c2c063fd8aefdcfb41ab",
            "Command": "sh -c 'echo out; echo err >&2; sleep 100'",
            "Created": 0,
            "Labels": {"a": "1"},
            "State": "running",
            "Status": "Up 2 seconds",
            "Ports": [{"PrivatePort": 80, "Type": "tcp"}, {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
        });
        let r = row(&c, true);
        assert_eq!(r["ID"], "35ac2ae09ada");
        assert_eq!(r["Names"], "d1");
        assert_eq!(r["Image"], "busybox:latest");
        assert_eq!(r["Command"], "\"sh -c 'echo out; ec…\"");
        assert_eq!(r["Ports"], "80/tcp, 0.0.0.0:8080->80/tcp");
        assert_eq!(r["Size"], "0B");
        assert_eq!(r["CreatedAt"], "1970-01-01 00:00:00 +0000 UTC");
        let r = row(&c, false);
        assert_eq!(r["Names"], "d1,other/alias");
        assert_eq!(r["Command"], "\"sh -c 'echo out; echo err >&2; sleep 100'\"");
    }
}
