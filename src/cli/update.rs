//! `update [OPTIONS] CONTAINER...`: new resource limits and restart policy through
//! `POST /containers/{id}/update`. Only the flags given are sent (a zero or empty value means
//! "leave as is" to the Engine), each container that took them is printed, and the failures
//! are reported together with exit 1.

use serde_json::{json, Map, Value};

use super::client::{enc, Body};
use super::flags::{v, Flag, Parsed};
use super::run::ram_bytes;
use super::{err_line, out, Ctx, Error};

pub const FLAGS: &[Flag] = &[
    v("blkio-weight", None),
    v("cpu-period", None),
    v("cpu-quota", None),
    v("cpu-rt-period", None),
    v("cpu-rt-runtime", None),
    v("cpu-shares", Some('c')),
    v("cpus", None),
    v("cpuset-cpus", None),
    v("cpuset-mems", None),
    v("memory", Some('m')),
    v("memory-reservation", None),
    v("memory-swap", None),
    v("pids-limit", None),
    v("restart", None),
];

/// The flag as pflag names it in errors: `-m, --memory` or `--cpus`.
fn flag_name(long: &str) -> String {
    match FLAGS.iter().find(|f| f.long == long).and_then(|f| f.short) {
        Some(c) => format!("-{c}, --{long}"),
        None => format!("--{long}"),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` as pflag's int flags use it, with its error wording.
fn parse_int(s: &str) -> Result<i64, String> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let parsed = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) if !hex.starts_with(['+', '-']) => i64::from_str_radix(hex, 16),
        _ if digits.starts_with(['+', '-']) => "x".parse::<i64>(),
        _ => digits.parse::<i64>(),
    };
    match parsed {
        Ok(n) => Ok(if neg { -n } else { n }),
        Err(e) if matches!(e.kind(), std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow) => {
            Err(format!("strconv.ParseInt: parsing {s:?}: value out of range"))
        }
        Err(_) => Err(format!("strconv.ParseInt: parsing {s:?}: invalid syntax")),
    }
}

/// docker's `NanoCPUs`: a rational number of CPUs (`1.5`, `3/2`) in billionths.
fn parse_cpus(s: &str) -> Result<i64, String> {
    let bad = || format!("failed to parse {s} as a rational number");
    let value = match s.split_once('/') {
        Some((n, d)) => {
            let (n, d): (f64, f64) = (n.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
            if d == 0.0 {
                return Err(bad());
            }
            n / d
        }
        None => s.parse::<f64>().map_err(|_| bad())?,
    };
    if !value.is_finite() {
        return Err(bad());
    }
    let nano = value * 1e9;
    if (nano - nano.round()).abs() > 1e-3 {
        return Err("value is too precise".into());
    }
    Ok(nano.round() as i64)
}

/// The update body from the flags given; `Err` is a flag value that does not parse.
fn body(p: &Parsed) -> Result<Map<String, Value>, String> {
    let mut b = Map::new();
    let bad = |long: &str, val: &str, why: String| format!("\"{val}\" for \"{}\" flag: {why}", flag_name(long));
    for (long, key) in
        [("memory", "Memory"), ("memory-reservation", "MemoryReservation"), ("memory-swap", "MemorySwap")]
    {
        if let Some(val) = p.get(long) {
            let n = if long == "memory-swap" && val == "-1" {
                -1
            } else {
                ram_bytes(val).map_err(|e| bad(long, val, e))?
            };
            if n != 0 {
                b.insert(key.into(), json!(n));
            }
        }
    }
    for (long, key) in [
        ("cpu-period", "CpuPeriod"),
        ("cpu-quota", "CpuQuota"),
        ("cpu-rt-period", "CpuRealtimePeriod"),
        ("cpu-rt-runtime", "CpuRealtimeRuntime"),
        ("cpu-shares", "CpuShares"),
        ("pids-limit", "PidsLimit"),
    ] {
        if let Some(val) = p.get(long) {
            let n = parse_int(val).map_err(|e| bad(long, val, e))?;
            if n != 0 {
                b.insert(key.into(), json!(n));
            }
        }
    }
    if let Some(val) = p.get("blkio-weight") {
        let n = parse_int(val)
            .ok()
            .filter(|n| (0..=i64::from(u16::MAX)).contains(n) && !val.starts_with(['-', '+']))
            .ok_or_else(|| {
            bad("blkio-weight", val, format!("strconv.ParseUint: parsing {val:?}: invalid syntax"))
        })?;
        if n != 0 {
            b.insert("BlkioWeight".into(), json!(n));
        }
    }
    if let Some(val) = p.get("cpus") {
        let n = parse_cpus(val).map_err(|e| bad("cpus", val, e))?;
        if n != 0 {
            b.insert("NanoCpus".into(), json!(n));
        }
    }
    for (long, key) in [("cpuset-cpus", "CpusetCpus"), ("cpuset-mems", "CpusetMems")] {
        if let Some(val) = p.get(long).filter(|v| !v.is_empty()) {
            b.insert(key.into(), json!(val));
        }
    }
    Ok(b)
}

/// docker's `ParseRestartPolicy`: `name[:count]`; the name itself is the daemon's to judge.
fn restart_policy(s: &str) -> Result<Value, Error> {
    let (name, count) = s.split_once(':').map_or((s, ""), |(n, c)| (n, c));
    if s.contains(':') && name.is_empty() {
        return Err(Error::msg("invalid restart policy format: no policy provided before colon"));
    }
    let count: i64 = if count.is_empty() {
        0
    } else {
        count
            .parse()
            .map_err(|_| Error::msg("invalid restart policy format: maximum retry count must be an integer"))?
    };
    Ok(json!({"Name": name, "MaximumRetryCount": count}))
}

pub fn update(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let mut b = body(&p).map_err(|m| ctx.flag_error(&format!("invalid argument {m}")))?;
    if !FLAGS.iter().any(|f| p.has(f.long)) {
        return Err(Error::msg("you must provide one or more flags when using this command"));
    }
    if let Some(r) = p.get("restart").filter(|r| !r.is_empty()) {
        b.insert("RestartPolicy".into(), restart_policy(r)?);
    }
    let mut warnings = Vec::new();
    let mut failed = false;
    for name in &p.args {
        let r = ctx
            .client
            .request("POST", &format!("/containers/{}/update", enc(name)), Body::Json(Value::Object(b.clone())))
            .and_then(|r| r.json());
        match r {
            Ok(v) => {
                out(&format!("{name}\n"));
                warnings
                    .extend(v["Warnings"].as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from));
            }
            Err(e) => {
                err_line(&e.msg);
                failed = true;
            }
        }
    }
    if !warnings.is_empty() {
        out(&format!("{}\n", warnings.join("\n")));
    }
    if failed {
        return Err(Error::exit(1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(words: &str) -> Parsed {
        let w: Vec<String> = words.split_whitespace().map(str::to_string).collect();
        super::super::flags::parse(&w, FLAGS, true).unwrap()
    }

    #[test]
    fn bodies_and_errors() {
        let b = body(&parsed("-m 128m --memory-swap -1 --cpus 1.5 --pids-limit 20 -c 512 --cpuset-cpus 0 x")).unwrap();
        assert_eq!(
            Value::Object(b),
            json!({"Memory": 134217728, "MemorySwap": -1, "NanoCpus": 1_500_000_000i64, "PidsLimit": 20, "CpuShares": 512, "CpusetCpus": "0"})
        );
        assert_eq!(body(&parsed("-m abc x")).unwrap_err(), "\"abc\" for \"-m, --memory\" flag: invalid size: 'abc'");
        assert_eq!(
            body(&parsed("--cpus abc x")).unwrap_err(),
            "\"abc\" for \"--cpus\" flag: failed to parse abc as a rational number"
        );
        assert_eq!(
            body(&parsed("--pids-limit 1x x")).unwrap_err(),
            "\"1x\" for \"--pids-limit\" flag: strconv.ParseInt: parsing \"1x\": invalid syntax"
        );
        assert_eq!(parse_int("0x10"), Ok(16));
        assert_eq!(parse_int("-5"), Ok(-5));
        assert!(parse_int("+-5").is_err());
        assert_eq!(parse_cpus("3/2"), Ok(1_500_000_000));
        assert_eq!(restart_policy("on-failure:3").unwrap(), json!({"Name": "on-failure", "MaximumRetryCount": 3}));
        assert!(restart_policy("on-failure:x").unwrap_err().msg.contains("must be an integer"));
        assert!(restart_policy(":3").unwrap_err().msg.contains("no policy provided"));
    }
}
