//! Image verbs: `images`, `tag`, `rmi`, `load`, `save`, `import`, `history`.
//! Rows follow docker's image formatter: one per repository:tag (and per digest with
//! `--digests`), `<none>` for dangling images.

use std::io::Write;

use serde_json::{json, Value};

use super::client::{query, Body};
use super::flags::Parsed;
use super::format::{ago, ellipsis, human_size, human_size_prec, short_id, unix_string};
use super::ps::familiar;
use super::{err_line, filters_json, out, render, stream, Ctx, Error};

pub const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

/// Splits `name[:tag][@digest]` into (name, tag, digest); the tag is after the last ':' that
/// follows the last '/' (so `host:5000/x` has no tag).
pub fn split_ref(r: &str) -> (String, Option<String>, Option<String>) {
    let (rest, digest) = match r.split_once('@') {
        Some((a, d)) => (a, Some(d.to_string())),
        None => (r, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (rest[..slash + i].to_string(), Some(rest[slash + i + 1..].to_string()), digest),
        None => (rest.to_string(), None, digest),
    }
}

/// The row context of one image under a given repository, tag and digest (docker's imageContext).
pub fn image_row(img: &Value, trunc: bool, repo: &str, tag: &str, digest: &str) -> Value {
    let id = img["Id"].as_str().unwrap_or("");
    let created = img["Created"].as_i64().unwrap_or(0);
    let size = img["Size"].as_f64().unwrap_or(0.0);
    // -1 means the daemon did not compute it.
    let shared = img["SharedSize"].as_f64().unwrap_or(-1.0);
    let containers = match img["Containers"].as_i64() {
        Some(-1) | None => "N/A".to_string(),
        Some(n) => n.to_string(),
    };
    json!({
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Repository": repo,
        "Tag": tag,
        "Digest": digest,
        "CreatedSince": ago(created),
        "CreatedAt": unix_string(created),
        "Size": human_size(size),
        "Containers": containers,
        "VirtualSize": human_size_prec(img["VirtualSize"].as_f64().unwrap_or(size), 4),
        "SharedSize": if shared < 0.0 { "N/A".to_string() } else { human_size_prec(shared, 4) },
        "UniqueSize": if shared < 0.0 { "N/A".to_string() } else { human_size_prec(size - shared, 4) },
    })
}

fn image_rows(img: &Value, trunc: bool, digests: bool) -> Vec<Value> {
    let base = |repo: &str, tag: &str, digest: &str| image_row(img, trunc, repo, tag, digest);
    let strs = |k: &str| -> Vec<String> {
        img[k].as_array().into_iter().flatten().filter_map(|s| s.as_str()).map(str::to_string).collect()
    };
    let tags: Vec<String> = strs("RepoTags").into_iter().filter(|t| t != "<none>:<none>").collect();
    let dgsts: Vec<String> = strs("RepoDigests").into_iter().filter(|t| t != "<none>@<none>").collect();
    if tags.is_empty() && dgsts.is_empty() {
        return vec![base("<none>", "<none>", "<none>")];
    }
    // repo → tags and repo → digests, in first-seen order.
    let mut repos: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    let slot = |repos: &mut Vec<(String, Vec<String>, Vec<String>)>, r: String| -> usize {
        match repos.iter().position(|x| x.0 == r) {
            Some(i) => i,
            None => {
                repos.push((r, Vec::new(), Vec::new()));
                repos.len() - 1
            }
        }
    };
    for t in &tags {
        let (name, tag, _) = split_ref(t);
        let i = slot(&mut repos, familiar(&name));
        repos[i].1.push(tag.unwrap_or_else(|| "latest".into()));
    }
    for d in &dgsts {
        let (name, _, digest) = split_ref(d);
        let i = slot(&mut repos, familiar(&name));
        repos[i].2.extend(digest);
    }
    let mut rows = Vec::new();
    for (repo, tags, ds) in repos {
        if tags.is_empty() {
            if digests {
                rows.extend(ds.iter().map(|d| base(&repo, "<none>", d)));
            } else {
                rows.push(base(&repo, "<none>", ""));
            }
            continue;
        }
        for t in tags {
            if !digests || ds.is_empty() {
                rows.push(base(&repo, &t, "<none>"));
            } else {
                rows.extend(ds.iter().map(|d| base(&repo, &t, d)));
            }
        }
    }
    rows
}

pub fn images(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let trunc = !p.on("no-trunc");
    let digests = p.on("digests");
    let format = match p.get("format") {
        Some(f) if !f.is_empty() && f != "table" => f.to_string(),
        _ if p.on("quiet") => "{{.ID}}".into(),
        _ if digests => "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into(),
        _ => "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into(),
    };
    let mut filters = p.all("filter");
    if let Some(r) = p.args.first() {
        filters.push(format!("reference={r}"));
    }
    let mut q = Vec::new();
    if p.on("all") {
        q.push(("all", "1".to_string()));
    }
    if let Some(f) = filters_json(&filters)? {
        q.push(("filters", f));
    }
    let list = ctx.client.get_json(&format!("/images/json?{}", query(&q)))?;
    let rows: Vec<Value> = list.as_array().into_iter().flatten().flat_map(|i| image_rows(i, trunc, digests)).collect();
    out(&render(&format, &rows, HEADERS)?);
    Ok(())
}

pub fn tag(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let (repo, tag, digest) = split_ref(&p.args[1]);
    if digest.is_some() {
        return Err(Error::msg("refusing to create a tag with a digest reference"));
    }
    let q = query(&[("repo", familiar(&repo)), ("tag", tag.unwrap_or_else(|| "latest".into()))]);
    ctx.client.post(&format!("/images/{}/tag?{q}", p.args[0]), Body::None)
}

pub fn rmi(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let mut q = Vec::new();
    if p.on("force") {
        q.push(("force", "1".to_string()));
    }
    if p.on("no-prune") {
        q.push(("noprune", "1".to_string()));
    }
    let q = query(&q);
    let mut failed = false;
    for name in &p.args {
        match ctx.client.request("DELETE", &format!("/images/{name}?{q}"), Body::None).and_then(|r| r.json()) {
            Ok(v) => {
                let mut s = String::new();
                for item in v.as_array().into_iter().flatten() {
                    if let Some(u) = item["Untagged"].as_str() {
                        s.push_str(&format!("Untagged: {u}\n"));
                    }
                    if let Some(d) = item["Deleted"].as_str() {
                        s.push_str(&format!("Deleted: {d}\n"));
                    }
                }
                out(&s);
            }
            Err(e) => {
                err_line(&e.msg);
                failed = true;
            }
        }
    }
    if failed {
        return Err(Error::exit(1));
    }
    Ok(())
}

pub fn load(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let mut input: Box<dyn std::io::Read> = match p.get("input") {
        Some(f) => Box::new(std::fs::File::open(f).map_err(|e| Error::msg(format!("open {f}: {}", io_text(&e))))?),
        None => {
            if stream::is_tty(0) {
                return Err(Error::msg("requested load from stdin, but stdin is empty"));
            }
            Box::new(std::io::stdin())
        }
    };
    // Progress bars only on a terminal, as docker decides.
    let quiet = p.on("quiet") || !stream::is_tty(1);
    let path = format!("/images/load?{}", query(&[("quiet", if quiet { "1" } else { "0" }.to_string())]));
    let r = ctx.client.request("POST", &path, Body::Stream(&mut input, "application/x-tar"))?;
    if r.header("Content-Type").is_some_and(|c| c.contains("json")) {
        stream::json_messages(r, &mut std::io::stdout(), |_| {})
    } else {
        out(&r.text().map_err(Error::io)?);
        Ok(())
    }
}

/// Go's error text for a failed open (`no such file or directory`).
fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_lowercase()
}

pub fn save(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let output = p.get("output");
    if output.is_none() && stream::is_tty(1) {
        return Err(Error::msg("cowardly refusing to save to a terminal. Use the -o flag or redirect"));
    }
    let q = query(&p.args.iter().map(|n| ("names", n.clone())).collect::<Vec<_>>());
    let mut r = ctx.client.request("GET", &format!("/images/get?{q}"), Body::None)?;
    match output {
        Some(path) => {
            // Written next to the target and renamed, so a failed save leaves no partial file.
            let target = std::path::Path::new(path);
            let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let tmp = dir.join(format!(
                ".{}.tmp{}",
                target.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
                std::process::id()
            ));
            let res = (|| {
                let mut f = std::fs::File::create(&tmp)?;
                std::io::copy(&mut r, &mut f)?;
                f.sync_all()?;
                std::fs::rename(&tmp, target)
            })();
            if let Err(e) = res {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::msg(format!("failed to save image: {e}")));
            }
        }
        None => {
            let mut o = std::io::stdout().lock();
            std::io::copy(&mut r, &mut o).map_err(Error::io)?;
            let _ = o.flush();
        }
    }
    Ok(())
}

pub fn import(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let src = &p.args[0];
    let mut q: Vec<(&str, String)> = vec![("fromSrc", "-".to_string())];
    if let Some(r) = p.args.get(1) {
        let (repo, tag, _) = split_ref(r);
        q.push(("repo", repo));
        if let Some(t) = tag {
            q.push(("tag", t));
        }
    }
    if let Some(m) = p.get("message") {
        q.push(("message", m.to_string()));
    }
    for c in p.all("change") {
        q.push(("changes", c));
    }
    let mut input: Box<dyn std::io::Read> = if src == "-" {
        Box::new(std::io::stdin())
    } else if src.starts_with("http://") || src.starts_with("https://") {
        return Err(Error::msg("importing from a URL is not supported; download the file and import it"));
    } else {
        Box::new(std::fs::File::open(src).map_err(|e| Error::msg(format!("open {src}: {}", io_text(&e))))?)
    };
    let r = ctx.client.request(
        "POST",
        &format!("/images/create?{}", query(&q)),
        Body::Stream(&mut input, "application/x-tar"),
    )?;
    stream::json_messages(r, &mut std::io::stdout(), |_| {})
}

pub fn history(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let trunc = !p.on("no-trunc");
    let human = !p.has("human") || p.on("human");
    let format = match p.get("format") {
        Some(f) if !f.is_empty() && f != "table" => f.to_string(),
        _ if p.on("quiet") => "{{.ID}}".into(),
        _ => "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into(),
    };
    let v = ctx.client.get_json(&format!("/images/{}/history", p.args[0]))?;
    let rows: Vec<Value> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("");
            let created = h["Created"].as_i64().unwrap_or(0);
            let by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
            let size = h["Size"].as_f64().unwrap_or(0.0);
            let created_at = if created > 0 { crate::timefmt::rfc3339_nanos(created, 0).replace(".000000000Z", "Z") } else { "N/A".into() };
            json!({
                "ID": if trunc && id != "<missing>" { short_id(id) } else { id.to_string() },
                "CreatedSince": if !human { created_at.clone() } else if created <= 0 { "N/A".into() } else { ago(created) },
                "CreatedAt": created_at,
                "CreatedBy": if trunc { ellipsis(&by, 45) } else { by },
                "Size": if human { human_size(size) } else { format!("{size}") },
                "Comment": h["Comment"].as_str().unwrap_or(""),
            })
        })
        .collect();
    let headers = [
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    out(&render(&format, &rows, &headers)?);
    Ok(())
}

/// For `run`: the name as docker prints it in "Unable to find image" (`:latest` added).
pub fn tagged(r: &str) -> String {
    let (name, tag, digest) = split_ref(r);
    match (tag, digest) {
        (_, Some(d)) => format!("{}@{d}", familiar(&name)),
        (Some(t), None) => format!("{}:{t}", familiar(&name)),
        (None, None) => format!("{}:latest", familiar(&name)),
    }
}

/// `POST /images/create?fromImage=&tag=`, progress to stderr (the pull `run` and `create` do).
pub fn pull(ctx: &Ctx, r: &str, quiet: bool) -> Result<(), Error> {
    let reference = crate::image::reference::Reference::parse(r).map_err(Error::msg)?;
    if quiet {
        super::registry::pull_image(ctx, &reference, None, &mut std::io::sink())
    } else {
        super::registry::pull_image(ctx, &reference, None, &mut std::io::stderr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_and_rows() {
        assert_eq!(split_ref("localhost:5000/a/b:1"), ("localhost:5000/a/b".into(), Some("1".into()), None));
        assert_eq!(split_ref("localhost:5000/a"), ("localhost:5000/a".into(), None, None));
        assert_eq!(tagged("nosuch/img"), "nosuch/img:latest");
        assert_eq!(tagged("docker.io/library/busybox:1"), "busybox:1");
        let img = json!({"Id": "sha256:63aa08cecdf4c2c063fd", "RepoTags": ["foo:1", "localhost/busybox:latest", "foo:2"],
            "RepoDigests": ["foo@sha256:aa"], "Created": 0, "Size": 1981234, "Containers": -1});
        let rows = image_rows(&img, true, false);
        let got: Vec<String> =
            rows.iter().map(|r| format!("{}:{}:{}", r["Repository"], r["Tag"], r["Digest"])).collect();
        assert_eq!(
            got,
            ["\"foo\":\"1\":\"<none>\"", "\"foo\":\"2\":\"<none>\"", "\"localhost/busybox\":\"latest\":\"<none>\""]
        );
        assert_eq!(rows[0]["ID"], "63aa08cecdf4");
        assert_eq!(rows[0]["Size"], "1.98MB");
        assert_eq!(rows[0]["Containers"], "N/A");
        assert_eq!(image_rows(&img, true, true)[0]["Digest"], "sha256:aa");
        let dangling = json!({"Id": "sha256:ab", "RepoTags": [], "Created": 0, "Size": 0});
        assert_eq!(image_rows(&dangling, true, false)[0]["Repository"], "<none>");
    }
}
