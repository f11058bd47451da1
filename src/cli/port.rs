//! `port CONTAINER [PRIVATE_PORT[/PROTO]]`: the published ports from the container's
//! `NetworkSettings.Ports`, all of them as `80/tcp -> 0.0.0.0:8080` lines or the host addresses
//! of one, in natural order as docker sorts them.

use std::cmp::Ordering;

use serde_json::Value;

use super::client::enc;
use super::flags::Parsed;
use super::{out, Ctx, Error};

/// Go's `net.JoinHostPort`: IPv6 addresses in brackets.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Natural order: digit runs compare as numbers (then by leading zeros), digits sort before
/// other bytes, and the rest compares bytewise; a prefix sorts first.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return if da { Ordering::Less } else { Ordering::Greater };
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        let (za, zb) = (i, j);
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (na, nb) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let ord = (i - na).cmp(&(j - nb)).then_with(|| a[na..i].cmp(&b[nb..j])).then_with(|| (na - za).cmp(&(nb - zb)));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// Go's `strconv.ParseUint(s, 10, 16)` error text, if `s` is not a port number.
fn parse_port_error(s: &str) -> Option<String> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Some(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    if s.parse::<u16>().is_err() {
        return Some(format!("strconv.ParseUint: parsing {s:?}: value out of range"));
    }
    None
}

fn frontends(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|f| join_host_port(f["HostIp"].as_str().unwrap_or(""), f["HostPort"].as_str().unwrap_or("")))
        .collect()
}

pub fn port(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let name = &p.args[0];
    let info = ctx.client.get_json(&format!("/containers/{}/json", enc(name)))?;
    let ports = &info["NetworkSettings"]["Ports"];
    let mut lines = Vec::new();
    if let Some(want) = p.args.get(1) {
        let (num, proto) = want.split_once('/').unwrap_or((want, ""));
        let proto = if proto.is_empty() { "tcp" } else { proto };
        if let Some(e) = parse_port_error(num) {
            return Err(Error::msg(format!("Error: invalid port ({num}): {e}")));
        }
        lines = frontends(&ports[format!("{num}/{proto}")]);
        if lines.is_empty() {
            return Err(Error::msg(format!("Error: No public port '{want}' published for {name}")));
        }
    } else {
        for (private, fronts) in ports.as_object().into_iter().flatten() {
            lines.extend(frontends(fronts).into_iter().map(|f| format!("{private} -> {f}")));
        }
    }
    lines.sort_by(|a, b| natural_cmp(a, b));
    if !lines.is_empty() {
        out(&format!("{}\n", lines.join("\n")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn natural_order_and_ports() {
        let mut v = vec!["80/tcp -> 0.0.0.0:9000", "443/tcp -> [::]:443", "80/tcp -> 0.0.0.0:10000", "8080/udp -> :1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["80/tcp -> 0.0.0.0:9000", "80/tcp -> 0.0.0.0:10000", "443/tcp -> [::]:443", "8080/udp -> :1"]);
        assert_eq!(natural_cmp("a01", "a1"), Ordering::Greater);
        assert_eq!(natural_cmp("a", "ab"), Ordering::Less);
        assert_eq!(parse_port_error("abc").unwrap(), "strconv.ParseUint: parsing \"abc\": invalid syntax");
        assert_eq!(parse_port_error("70000").unwrap(), "strconv.ParseUint: parsing \"70000\": value out of range");
        assert!(parse_port_error("+1").is_some() && parse_port_error("65535").is_none());
        assert_eq!(
            frontends(&json!([{"HostIp": "::", "HostPort": "80"}, {"HostIp": "0.0.0.0", "HostPort": "81"}])),
            ["[::]:80", "0.0.0.0:81"]
        );
    }
}
