//! The prune verbs: `container prune`, `image prune` and `system prune`, which runs the
//! container, network, (with `--volumes`) volume, image and build-cache pruners in docker's
//! order. Each pruner returns docker's report section and the space it freed; the verbs print the
//! sections and `Total reclaimed space:` in go-units' `HumanSize`. `volume prune` keeps its own
//! file but shares the report shape.

use serde_json::Value;

use super::client::{query, Body};
use super::containers::confirm;
use super::flags::Parsed;
use super::format::human_size_prec;
use super::volume::natural_less;
use super::{check_filters, filters_json, out, Ctx, Error};

/// What one pruner freed and the section it prints (empty when nothing was removed).
struct Report {
    space: u64,
    text: String,
}

/// `POST /<what>/prune?filters=` (plus `extra` parameters), the answer as JSON.
fn call(ctx: &Ctx, what: &str, filters: &[String], extra: &[(&str, String)]) -> Result<Value, Error> {
    let mut q: Vec<(&str, String)> = extra.to_vec();
    if let Some(f) = filters_json(filters)? {
        q.push(("filters", f));
    }
    ctx.client.request("POST", &format!("/{what}/prune?{}", query(&q)), Body::None)?.json()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

/// "Title:\nid\nid\n", or nothing when the list is empty.
fn section(title: &str, ids: &[&str]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let mut s = format!("{title}:\n");
    for id in ids {
        s.push_str(id);
        s.push('\n');
    }
    s
}

fn space(v: &Value) -> u64 {
    v["SpaceReclaimed"].as_u64().unwrap_or(0)
}

fn prune_containers(ctx: &Ctx, filters: &[String]) -> Result<Report, Error> {
    let v = call(ctx, "containers", filters, &[])?;
    let text = section("Deleted Containers", &strings(&v["ContainersDeleted"]));
    // The space counts only when something was deleted, as docker reports it.
    Ok(Report { space: if text.is_empty() { 0 } else { space(&v) }, text })
}

fn prune_networks(ctx: &Ctx, filters: &[String]) -> Result<Report, Error> {
    let v = call(ctx, "networks", filters, &[])?;
    Ok(Report { space: 0, text: section("Deleted Networks", &strings(&v["NetworksDeleted"])) })
}

/// Anonymous volumes only: `system prune` never passes `--all` on to the volume pruner.
fn prune_volumes(ctx: &Ctx, filters: &[String]) -> Result<Report, Error> {
    let v = call(ctx, "volumes", filters, &[])?;
    let text = section("Deleted Volumes", &strings(&v["VolumesDeleted"]));
    Ok(Report { space: if text.is_empty() { 0 } else { space(&v) }, text })
}

/// Dangling images, or every image no container uses with `all`.
fn prune_images(ctx: &Ctx, all: bool, filters: &[String]) -> Result<Report, Error> {
    let mut filters = filters.to_vec();
    filters.push(format!("dangling={}", !all));
    let v = call(ctx, "images", &filters, &[])?;
    let deleted = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if deleted.is_empty() {
        return Ok(Report { space: 0, text: String::new() });
    }
    let mut text = "Deleted Images:\n".to_string();
    for d in &deleted {
        match d["Untagged"].as_str().filter(|u| !u.is_empty()) {
            Some(u) => text.push_str(&format!("untagged: {u}\n")),
            None => text.push_str(&format!("deleted: {}\n", d["Deleted"].as_str().unwrap_or(""))),
        }
    }
    Ok(Report { space: space(&v), text })
}

fn prune_build_cache(ctx: &Ctx, all: bool, filters: &[String]) -> Result<Report, Error> {
    let extra = if all { vec![("all", "1".to_string())] } else { Vec::new() };
    let v = call(ctx, "build", filters, &extra)?;
    Ok(Report { space: space(&v), text: section("Deleted build cache objects", &strings(&v["CachesDeleted"])) })
}

/// A pruner's section followed by a blank line (docker prints it with `Fprintln`).
fn print_section(r: &Report) {
    if !r.text.is_empty() {
        out(&format!("{}\n", r.text));
    }
}

fn print_total(space: u64) {
    out(&format!("Total reclaimed space: {}\n", human_size_prec(space as f64, 4)));
}

pub fn container_prune(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let filters = p.all("filter");
    check_filters(ctx, &filters, "--filter")?;
    // A declined prompt is not an error: docker exits 0 and prints nothing more.
    if !p.on("force") && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(());
    }
    let r = prune_containers(ctx, &filters)?;
    print_section(&r);
    print_total(r.space);
    Ok(())
}

pub fn image_prune(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let filters = p.all("filter");
    check_filters(ctx, &filters, "--filter")?;
    let all = p.on("all");
    let warning = if all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !p.on("force") && !confirm(warning) {
        return Ok(());
    }
    let r = prune_images(ctx, all, &filters)?;
    print_section(&r);
    print_total(r.space);
    Ok(())
}

/// docker's confirmation for `system prune`: what goes, then the label and until filters
/// (name=value, in natural order).
fn system_warning(all: bool, volumes: bool, filters: &[String]) -> String {
    let mut items = vec!["all stopped containers", "all networks not used by at least one container"];
    if volumes {
        items.push("all anonymous volumes not used by at least one container");
    }
    items.push(if all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    items.push(if all { "all build cache" } else { "unused build cache" });
    let mut s = "WARNING! This will remove:".to_string();
    for i in items {
        s.push_str(&format!("\n  - {i}"));
    }
    s.push('\n');
    // The same name=value split and clean-up as the filter flag's, duplicates once.
    let mut shown: Vec<String> = Vec::new();
    for f in filters {
        let Some((k, v)) = f.split_once('=') else { continue };
        let (k, v) = (k.trim().to_lowercase(), v.trim());
        let item = format!("{k}={v}");
        if matches!(k.as_str(), "label" | "label!" | "until") && !shown.contains(&item) {
            shown.push(item);
        }
    }
    if !shown.is_empty() {
        shown.sort_by(|a, b| natural_less(a, b));
        s.push_str("\n  Items to be pruned will be filtered with:");
        for f in shown {
            s.push_str(&format!("\n  - {f}"));
        }
        s.push('\n');
    }
    s
}

pub fn system_prune(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let filters = p.all("filter");
    check_filters(ctx, &filters, "--filter")?;
    let (all, volumes) = (p.on("all"), p.on("volumes"));
    let has_until =
        filters.iter().any(|f| f.split_once('=').is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("until")));
    if volumes && has_until {
        return Err(Error::msg("ERROR: The \"until\" filter is not supported with \"--volumes\""));
    }
    // The template's last line is the question confirm() asks.
    if !p.on("force") && !confirm(&system_warning(all, volumes, &filters)) {
        return Ok(());
    }
    let mut total = 0;
    let mut run = |r: Report| {
        print_section(&r);
        total += r.space;
    };
    run(prune_containers(ctx, &filters)?);
    run(prune_networks(ctx, &filters)?);
    if volumes {
        run(prune_volumes(ctx, &filters)?);
    }
    run(prune_images(ctx, all, &filters)?);
    run(prune_build_cache(ctx, all, &filters)?);
    print_total(total);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_prompt_reads_like_docker() {
        assert_eq!(
            system_warning(false, false, &[]),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n"
        );
        let f = ["label=a".to_string(), "Label!=b".into(), "until=1h".into(), "foo=bar".into(), "label=a".into()];
        assert_eq!(
            system_warning(true, true, &f),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all anonymous volumes not used by at least one container\n  - all images without at least one container associated to them\n  - all build cache\n\n  Items to be pruned will be filtered with:\n  - label!=b\n  - label=a\n  - until=1h\n"
        );
        assert_eq!(section("Deleted Volumes", &["a", "b"]), "Deleted Volumes:\na\nb\n");
        assert_eq!(section("Deleted Volumes", &[]), "");
    }
}
