//! `system df`: `GET /system/df` summarised as docker's formatter does — one row per type
//! (images, containers, local volumes, build cache) with counts, sizes and what is reclaimable —
//! or, with `-v`, docker's four sections (image, container, volume and build-cache rows), or a
//! `--format` template over either. The figures are computed here from the daemon's lists, as
//! the docker CLI computes them, so both clients print the same from the same answer.

use serde_json::{json, Value};

use crate::image::reference::Reference;

use super::flags::Parsed;
use super::format::{ago, human_size, human_size_prec, short_id};
use super::template::Template;
use super::{images, out, ps, render, volume, Ctx, Error};

const SUMMARY_TABLE: &str = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
const SUMMARY_RAW: &str =
    "type: {{.Type}}\ntotal: {{.TotalCount}}\nactive: {{.Active}}\nsize: {{.Size}}\nreclaimable: {{.Reclaimable}}\n";
const SUMMARY_HEADERS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

const IMAGE_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const CONTAINER_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const VOLUME_TABLE: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
const CACHE_TABLE: &str =
    "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";
const CACHE_HEADERS: &[(&str, &str)] = &[
    ("ID", "CACHE ID"),
    ("CacheType", "CACHE TYPE"),
    ("Size", "SIZE"),
    ("CreatedSince", "CREATED"),
    ("LastUsedSince", "LAST USED"),
    ("UsageCount", "USAGE"),
    ("Shared", "SHARED"),
    ("Description", "DESCRIPTION"),
    ("Parent", "PARENT"),
    ("CreatedAt", "CREATED AT"),
    ("LastUsedAt", "LAST USED AT"),
    ("InUse", "IN USE"),
];

/// docker's raw (`--format raw`) layout of `-v`: each item's own raw template under its type.
const VERBOSE_RAW: &str = "{{range .Images}}type: Image\nrepository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n\n{{end -}}\n{{range .Containers}}type: Container\ncontainer_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\nsize: {{.Size}}\n\n{{end -}}\n{{range .Volumes}}type: Volume\nname: {{.Name}}\ndriver: {{.Driver}}\n\n{{end -}}\n{{range .BuildCache}}type: Build Cache\nbuild_cache_id: {{.ID}}\nparent_id: {{.Parent}}\nbuild_cache_type: {{.CacheType}}\ndescription: {{.Description}}\ncreated_at: {{.CreatedAt}}\ncreated_since: {{.CreatedSince}}\nlast_used_at: {{.LastUsedAt}}\nlast_used_since: {{.LastUsedSince}}\nusage_count: {{.UsageCount}}\nin_use: {{.InUse}}\nshared: {{.Shared}}\n\n{{end -}}";

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// `SIZE (PCT%)` when there is a total to take a share of, else just the size.
fn reclaimable(reclaim: i64, total: i64) -> String {
    if total > 0 {
        format!("{} ({}%)", human_size_prec(reclaim as f64, 4), reclaim * 100 / total)
    } else {
        human_size_prec(reclaim as f64, 4)
    }
}

fn summary_row(kind: &str, total: usize, active: usize, size: i64, reclaim: String) -> Value {
    json!({
        "Type": kind,
        "TotalCount": total.to_string(),
        "Active": active.to_string(),
        "Size": human_size_prec(size as f64, 4),
        "Reclaimable": reclaim,
    })
}

/// A container that still holds its space: running, paused or restarting.
fn is_active(c: &Value) -> bool {
    let s = c["State"].as_str().unwrap_or("");
    s.contains("running") || s.contains("paused") || s.contains("restarting")
}

/// The four summary rows, computed from the lists as docker's formatter does.
fn summary_rows(du: &Value) -> Vec<Value> {
    let imgs = list(&du["Images"]);
    let layers = int(&du["LayersSize"]);
    // What images in use hold on their own (shared layers are reclaimable only with the last user).
    let used: i64 = imgs
        .iter()
        .filter(|i| int(&i["Containers"]) != 0)
        .filter(|i| int(&i["Size"]) != -1 && int(&i["SharedSize"]) != -1)
        .map(|i| int(&i["Size"]) - int(&i["SharedSize"]))
        .sum();
    let images = summary_row(
        "Images",
        imgs.len(),
        imgs.iter().filter(|i| int(&i["Containers"]) > 0).count(),
        layers,
        reclaimable(layers - used, layers),
    );
    let ctrs = list(&du["Containers"]);
    let rw = |c: &Value| int(&c["SizeRw"]);
    let ctr_size: i64 = ctrs.iter().map(rw).sum();
    let containers = summary_row(
        "Containers",
        ctrs.len(),
        ctrs.iter().filter(|c| is_active(c)).count(),
        ctr_size,
        reclaimable(ctrs.iter().filter(|c| !is_active(c)).map(rw).sum(), ctr_size),
    );
    let vols = list(&du["Volumes"]);
    let known: Vec<&Value> = vols.iter().filter(|v| int(&v["UsageData"]["Size"]) != -1).collect();
    let vol_size: i64 = known.iter().map(|v| int(&v["UsageData"]["Size"])).sum();
    let volumes = summary_row(
        "Local Volumes",
        vols.len(),
        vols.iter().filter(|v| int(&v["UsageData"]["RefCount"]) > 0).count(),
        vol_size,
        reclaimable(
            known.iter().filter(|v| int(&v["UsageData"]["RefCount"]) == 0).map(|v| int(&v["UsageData"]["Size"])).sum(),
            vol_size,
        ),
    );
    let cache = list(&du["BuildCache"]);
    let builder = cache_size(&cache);
    let in_use: i64 = cache.iter().filter(|c| c["InUse"] == true && c["Shared"] != true).map(|c| int(&c["Size"])).sum();
    let build = summary_row(
        "Build Cache",
        cache.len(),
        cache.iter().filter(|c| c["InUse"] == true).count(),
        builder,
        human_size_prec((builder - in_use) as f64, 4),
    );
    vec![images, containers, volumes, build]
}

/// The build cache's size: records shared with others count once, with their owner.
fn cache_size(cache: &[Value]) -> i64 {
    cache.iter().filter(|c| c["Shared"] != true).map(|c| int(&c["Size"])).sum()
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2024-01-02T03:04:05.6Z`).
fn unix_of(t: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| t.get(r).and_then(|x| x.parse::<i64>().ok());
    let days = crate::timefmt::days_from_civil(n(0..4)?, n(5..7)?, n(8..10)?);
    Some(days * 86400 + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?)
}

/// One build-cache record as docker's buildCacheContext shows it.
fn cache_row(c: &Value, trunc: bool) -> Value {
    let mut id = c["ID"].as_str().unwrap_or("").to_string();
    if trunc {
        id = short_id(&id);
    }
    if c["InUse"] == true {
        id.push('*');
    }
    let time = |k: &str| c[k].as_str().and_then(unix_of);
    let since = |k: &str| time(k).map(ago).unwrap_or_default();
    json!({
        "ID": id,
        "Parent": c["Parents"].as_array().map(|p| p.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
        "CacheType": c["Type"].as_str().unwrap_or(""),
        "Description": c["Description"].as_str().unwrap_or(""),
        "Size": human_size(int(&c["Size"]) as f64),
        "CreatedAt": c["CreatedAt"].as_str().unwrap_or(""),
        "CreatedSince": since("CreatedAt"),
        "LastUsedAt": c["LastUsedAt"].as_str().unwrap_or(""),
        "LastUsedSince": since("LastUsedAt"),
        "UsageCount": int(&c["UsageCount"]).to_string(),
        "InUse": (c["InUse"] == true).to_string(),
        "Shared": (c["Shared"] == true).to_string(),
    })
}

/// The `-v` context: each list's rows (`trunc` for tables, as docker shortens IDs there).
fn verbose_context(du: &Value, trunc: bool) -> Value {
    let mut imgs = Vec::new();
    for img in list(&du["Images"]) {
        let tags: Vec<&str> = img["RepoTags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let digests: Vec<&str> =
            img["RepoDigests"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let dangling =
            (tags.is_empty() && digests.is_empty()) || (tags == ["<none>:<none>"] && digests == ["<none>@<none>"]);
        let (mut repo, mut tag) = ("<none>".to_string(), "<none>".to_string());
        if !tags.is_empty() && !dangling {
            // Only the first tag is shown; an unparsable one hides the image, as in docker.
            let Ok(r) = Reference::parse_name_only(tags[0]) else { continue };
            if let Some(t) = r.tag.clone() {
                repo = r.familiar_name();
                tag = t;
            }
        }
        imgs.push(images::image_row(&img, trunc, &repo, &tag, ""));
    }
    let ctrs: Vec<Value> = list(&du["Containers"])
        .into_iter()
        .map(|mut c| {
            // The virtual size is not shown here.
            c["SizeRootFs"] = json!(0);
            ps::row(&c, trunc)
        })
        .collect();
    let vols: Vec<Value> = list(&du["Volumes"]).iter().map(volume::row).collect();
    let cache: Vec<Value> = list(&du["BuildCache"]).iter().map(|c| cache_row(c, trunc)).collect();
    json!({"Images": imgs, "Containers": ctrs, "Volumes": vols, "BuildCache": cache})
}

/// Go's message for a field the context lacks, with the position and the node docker's
/// template engine names: `template: :1:2: executing "" at <.Bogus>: can't evaluate field
/// Bogus in type T`. Other errors keep their text.
fn field_error(format: &str, e: &str, type_name: &str) -> String {
    let Some(field) = e.strip_prefix("can't evaluate field ") else { return e.to_string() };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let found = format.match_indices(&format!(".{field}")).find(|(i, _)| {
        let before = format[..*i].chars().next_back();
        let after = format[i + 1 + field.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    });
    let Some((at, _)) = found else { return e.to_string() };
    // Go names the whole field chain (`.A.B`) and places it at its last element.
    let chain_len = format[at..].find(|c: char| !ident(c) && c != '.').unwrap_or(format.len() - at);
    let chain = &format[at..at + chain_len];
    let last = at + chain.rfind('.').unwrap_or(0);
    let before = &format[..last];
    let line = 1 + before.matches('\n').count();
    let col = before.rfind('\n').map_or(last, |nl| last - nl - 1);
    format!("template: :{line}:{col}: executing \"\" at <{chain}>: can't evaluate field {field} in type {type_name}")
}

/// docker's `preFormat`: `table` dropped, `json` as `{{json .}}`, spaces trimmed, `\t` and `\n`
/// escapes made real.
fn pre_format(format: &str) -> String {
    let f = if let Some(rest) = format.strip_prefix("table") {
        rest
    } else if format == "json" {
        "{{json .}}"
    } else {
        format
    };
    f.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n")
}

fn summary(du: &Value, format: &str) -> Result<String, Error> {
    let format = match format {
        "table" => SUMMARY_TABLE,
        "raw" => SUMMARY_RAW,
        "json" => "{{json .}}",
        f => f,
    };
    let rows = summary_rows(du);
    render(format, &rows, SUMMARY_HEADERS).map_err(|e| {
        let msg = match e.msg.strip_prefix("failed to execute template: ") {
            Some(x) => field_error(&pre_format(format), x, "*formatter.diskUsageImagesContext"),
            None => e.msg.strip_prefix("failed to parse template: ").unwrap_or(&e.msg).to_string(),
        };
        Error::msg(format!("template parsing error: {msg}"))
    })
}

fn verbose(du: &Value, format: &str) -> Result<String, Error> {
    if format == "table" {
        let duc = verbose_context(du, true);
        let mut s = "Images space usage:\n\n".to_string();
        s.push_str(&render(IMAGE_TABLE, &list(&duc["Images"]), images::HEADERS)?);
        s.push_str("\nContainers space usage:\n\n");
        s.push_str(&render(CONTAINER_TABLE, &list(&duc["Containers"]), ps::HEADERS)?);
        s.push_str("\nLocal Volumes space usage:\n\n");
        s.push_str(&render(VOLUME_TABLE, &list(&duc["Volumes"]), volume::HEADERS)?);
        let cache = list(&du["BuildCache"]);
        s.push_str(&format!("\nBuild cache usage: {}\n\n", human_size_prec(cache_size(&cache) as f64, 4)));
        s.push_str(&render(CACHE_TABLE, &list(&duc["BuildCache"]), CACHE_HEADERS)?);
        return Ok(s);
    }
    let duc = verbose_context(du, format.starts_with("table"));
    let body = if format == "raw" { VERBOSE_RAW.to_string() } else { pre_format(format) };
    let tmpl = Template::parse(&body).map_err(|e| Error::msg(format!("template parsing error: template: :1: {e}")))?;
    if body == "{{json .}}" {
        // The Go struct's field order, not the sorted keys of a map.
        let json = Template::parse("{{json .}}").map_err(Error::msg)?;
        let part = |k: &str| json.execute(&duc[k]).map_err(Error::msg);
        return Ok(format!(
            "{{\"Images\":{},\"Containers\":{},\"Volumes\":{},\"BuildCache\":{}}}",
            part("Images")?,
            part("Containers")?,
            part("Volumes")?,
            part("BuildCache")?
        ));
    }
    // Written as executed, without a newline of its own, as docker writes it.
    tmpl.execute_strict(&duc).map_err(|e| Error::msg(field_error(&body, &e, "*formatter.diskUsageContext")))
}

pub fn df(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let format = p.get("format").filter(|f| !f.is_empty()).unwrap_or("table");
    let du = ctx.client.get_json("/system/df")?;
    let text = if p.on("verbose") { verbose(&du, format)? } else { summary(&du, format)? };
    out(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_figures() {
        let du = json!({
            "LayersSize": 1_982_000,
            "Images": [{"Id": "sha256:ab", "Size": 1_982_000, "SharedSize": 0, "Containers": 2}],
            "Containers": [{"State": "exited", "SizeRw": 3000}, {"State": "running", "SizeRw": 0}],
            "Volumes": [{"UsageData": {"Size": 0, "RefCount": 1}}, {"UsageData": {"Size": 0, "RefCount": 0}}],
            "BuildCache": [],
        });
        let t = summary(&du, "table").unwrap();
        assert_eq!(
            t,
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          1         1         1.982MB   0B (0%)\n\
             Containers      2         1         3kB       3kB (100%)\n\
             Local Volumes   2         1         0B        0B\n\
             Build Cache     0         0         0B        0B\n"
        );
        assert_eq!(
            summary(&du, "{{.Bogus}}").unwrap_err().msg,
            "template parsing error: template: :1:2: executing \"\" at <.Bogus>: can't evaluate field Bogus in type *formatter.diskUsageImagesContext"
        );
        assert_eq!(summary(&du, "{{.Type").unwrap_err().msg, "template parsing error: template: :1: unclosed action");
    }

    #[test]
    fn field_errors_name_the_node() {
        let e = field_error("x\n  {{.A.B}}", "can't evaluate field A", "T");
        assert_eq!(e, "template: :2:6: executing \"\" at <.A.B>: can't evaluate field A in type T");
        assert_eq!(field_error("{{.Ab}}", "other", "T"), "other");
    }
}
