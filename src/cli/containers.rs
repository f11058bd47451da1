//! Container verbs that act and report: `wait`, `stop`, `restart`, `kill`, `rm`, `pause`,
//! `unpause`, `rename`, `diff`, `logs`. Multi-target verbs print each name that succeeded and
//! each error, and exit 1 if any failed.

use super::client::{enc, query, Body};
use super::flags::Parsed;
use super::{each, err_line, out, stream, Ctx, Error};

pub fn wait(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let mut failed = false;
    for id in &p.args {
        let r = ctx.client.request("POST", &format!("/containers/{}/wait", enc(id)), Body::None).and_then(|r| r.json());
        match r {
            Ok(v) => {
                if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
                    err_line(m);
                    failed = true;
                } else {
                    out(&format!("{}\n", v["StatusCode"].as_i64().unwrap_or(-1)));
                }
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

fn stop_query(p: &Parsed) -> String {
    let mut q = Vec::new();
    if let Some(t) = p.get("timeout").or(p.get("time")) {
        q.push(("t", t.to_string()));
    }
    if let Some(s) = p.get("signal") {
        q.push(("signal", s.to_string()));
    }
    query(&q)
}

pub fn stop(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let q = stop_query(&p);
    each(&p.args, |id| ctx.client.post(&format!("/containers/{}/stop?{q}", enc(id)), Body::None))
}

pub fn restart(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let q = stop_query(&p);
    each(&p.args, |id| ctx.client.post(&format!("/containers/{}/restart?{q}", enc(id)), Body::None))
}

pub fn kill(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let q = p.get("signal").map(|s| query(&[("signal", s.to_string())])).unwrap_or_default();
    each(&p.args, |id| ctx.client.post(&format!("/containers/{}/kill?{q}", enc(id)), Body::None))
}

pub fn rm(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let mut q = Vec::new();
    if p.on("volumes") {
        q.push(("v", "1".to_string()));
    }
    if p.on("link") {
        q.push(("link", "1".to_string()));
    }
    if p.on("force") {
        q.push(("force", "1".to_string()));
    }
    let q = query(&q);
    each(&p.args, |id| {
        let r = ctx.client.request("DELETE", &format!("/containers/{}?{q}", enc(id)), Body::None)?;
        r.text().map_err(Error::io)?;
        Ok(())
    })
}

pub fn pause(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    each(&p.args, |id| ctx.client.post(&format!("/containers/{}/pause", enc(id)), Body::None))
}

pub fn unpause(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    each(&p.args, |id| ctx.client.post(&format!("/containers/{}/unpause", enc(id)), Body::None))
}

pub fn rename(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let (old, new) = (p.args[0].trim(), p.args[1].trim());
    if old.is_empty() || new.is_empty() {
        return Err(Error::msg("Error: Neither old nor new names may be empty"));
    }
    let path = format!("/containers/{}/rename?{}", enc(old), query(&[("name", new.to_string())]));
    if let Err(e) = ctx.client.post(&path, Body::None) {
        // docker prints the daemon's reason, then its own summary line.
        err_line(&e.msg);
        return Err(Error::msg(format!("Error: failed to rename container named {old}")));
    }
    Ok(())
}

/// `diff`: one `C|A|D /path` line per change, in the daemon's order.
pub fn diff(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let changes = ctx.client.get_json(&format!("/containers/{}/changes", enc(&p.args[0])))?;
    let mut s = String::new();
    for c in changes.as_array().into_iter().flatten() {
        let kind = match c["Kind"].as_u64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "",
        };
        s.push_str(&format!("{kind} {}\n", c["Path"].as_str().unwrap_or("")));
    }
    out(&s);
    Ok(())
}

/// `--since 10m` style: a Go duration relative to now becomes a unix timestamp; anything else
/// (RFC 3339, unix seconds) goes to the daemon as typed.
pub fn time_param(s: &str) -> String {
    let units: &[(&str, f64)] = &[("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)];
    for (u, mul) in units {
        if let Some(n) = s.strip_suffix(u) {
            if let Ok(n) = n.parse::<f64>() {
                // "5m" must not be read as "5" + "m" after "ms" failed; the order above handles it.
                let t = super::format::now_secs() - n * mul;
                return format!("{:.9}", t);
            }
        }
    }
    s.to_string()
}

pub fn logs(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let id = &p.args[0];
    let info = ctx.client.get_json(&format!("/containers/{}/json", enc(id)))?;
    let mut q = vec![("stdout", "1".to_string()), ("stderr", "1".to_string())];
    if p.on("follow") {
        q.push(("follow", "1".to_string()));
    }
    if let Some(s) = p.get("since") {
        q.push(("since", time_param(s)));
    }
    if let Some(s) = p.get("until") {
        q.push(("until", time_param(s)));
    }
    if p.on("timestamps") {
        q.push(("timestamps", "1".to_string()));
    }
    if p.on("details") {
        q.push(("details", "1".to_string()));
    }
    q.push(("tail", p.get("tail").unwrap_or("all").to_string()));
    let mut r = ctx.client.request("GET", &format!("/containers/{}/logs?{}", enc(id), query(&q)), Body::None)?;
    let res =
        if info["Config"]["Tty"].as_bool().unwrap_or(false) { stream::copy_raw(&mut r) } else { stream::demux(&mut r) };
    res.map_err(Error::io)
}

/// Asks `question` on stdout and reads y/N from stdin.
pub fn confirm(question: &str) -> bool {
    out(&format!("{question}\nAre you sure you want to continue? [y/N] "));
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    // Only "y" or "Y": docker takes "yes" as a no.
    line.trim().eq_ignore_ascii_case("y")
}
