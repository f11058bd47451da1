//! `stats`: each container's `/containers/{id}/stats` samples turned into docker's columns (CPU %
//! from the difference to the previous sample, memory without the inactive page cache, summed
//! network and block I/O, pids), once with `--no-stream`, else redrawn every half second until
//! interrupted. Without names it follows the container list (running ones, or all with `-a`).
//!
//! Each container has a collector thread holding its own daemon connection; the main thread only
//! reads their latest entries, so one slow container cannot hold up the table.

use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client::{enc, query, Body, Client};
use super::flags::Parsed;
use super::format::{human_bytes, human_size};
use super::{out, render, Ctx, Error};

const DEFAULT_FORMAT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

const HEADERS: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("ID", "CONTAINER ID"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// The refresh period of the streaming table, docker's.
const TICK: Duration = Duration::from_millis(500);
/// A container without a sample for this long shows `--`, as docker's collector times out.
const STALE: Duration = Duration::from_secs(2);

/// One container's numbers, computed from a stats sample as the docker CLI computes them.
#[derive(Clone, Default, Debug, PartialEq)]
struct Entry {
    name: String,
    id: String,
    cpu: f64,
    mem: f64,
    mem_limit: f64,
    mem_perc: f64,
    net_rx: f64,
    net_tx: f64,
    blk_read: f64,
    blk_write: f64,
    pids: u64,
    invalid: bool,
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn entry(v: &Value) -> Entry {
    let (cpu, pre) = (&v["cpu_stats"], &v["precpu_stats"]);
    let cpu_delta = u64_of(&cpu["cpu_usage"]["total_usage"]) as f64 - u64_of(&pre["cpu_usage"]["total_usage"]) as f64;
    let system_delta = u64_of(&cpu["system_cpu_usage"]) as f64 - u64_of(&pre["system_cpu_usage"]) as f64;
    let mut online = u64_of(&cpu["online_cpus"]) as f64;
    if online == 0.0 {
        online = cpu["cpu_usage"]["percpu_usage"].as_array().map_or(0, Vec::len) as f64;
    }
    let cpu_perc = if system_delta > 0.0 && cpu_delta > 0.0 { cpu_delta / system_delta * online * 100.0 } else { 0.0 };
    // Usage minus the inactive file cache: `total_inactive_file` on cgroup v1, `inactive_file` on v2.
    let m = &v["memory_stats"];
    let usage = u64_of(&m["usage"]);
    let mem = match m["stats"]["total_inactive_file"].as_u64() {
        Some(inactive) if inactive < usage => usage - inactive,
        _ => {
            let inactive = u64_of(&m["stats"]["inactive_file"]);
            if inactive < usage {
                usage - inactive
            } else {
                usage
            }
        }
    } as f64;
    let limit = u64_of(&m["limit"]) as f64;
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in v["networks"].as_object().into_iter().flat_map(|m| m.values()) {
        rx += u64_of(&n["rx_bytes"]) as f64;
        tx += u64_of(&n["tx_bytes"]) as f64;
    }
    let (mut read, mut write) = (0.0, 0.0);
    for b in v["blkio_stats"]["io_service_bytes_recursive"].as_array().into_iter().flatten() {
        match b["op"].as_str().and_then(|o| o.bytes().next()) {
            Some(b'r' | b'R') => read += u64_of(&b["value"]) as f64,
            Some(b'w' | b'W') => write += u64_of(&b["value"]) as f64,
            _ => {}
        }
    }
    Entry {
        name: v["name"].as_str().unwrap_or("").to_string(),
        id: v["id"].as_str().unwrap_or("").to_string(),
        cpu: cpu_perc,
        mem,
        mem_limit: limit,
        mem_perc: if limit != 0.0 { mem / limit * 100.0 } else { 0.0 },
        net_rx: rx,
        net_tx: tx,
        blk_read: read,
        blk_write: write,
        pids: u64_of(&v["pids_stats"]["current"]),
        invalid: false,
    }
}

/// docker's `stringid.TruncateID`: no algorithm prefix, 12 characters.
fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    id.chars().take(12).collect()
}

/// The template row: every field a string, as docker's stats context methods return them.
fn row(container: &str, e: &Entry, trunc: bool) -> Value {
    let pct = |v: f64| format!("{v:.2}%");
    let dash = |s: String| if e.invalid { "--".to_string() } else { s };
    json!({
        "Container": container,
        "Name": if e.name.len() > 1 { e.name[1..].to_string() } else { "--".to_string() },
        "ID": if trunc { truncate_id(&e.id) } else { e.id.clone() },
        "CPUPerc": dash(pct(e.cpu)),
        "MemUsage": if e.invalid { "-- / --".to_string() } else { format!("{} / {}", human_bytes(e.mem), human_bytes(e.mem_limit)) },
        "MemPerc": dash(pct(e.mem_perc)),
        "NetIO": dash(format!("{} / {}", human_size(e.net_rx), human_size(e.net_tx))),
        "BlockIO": dash(format!("{} / {}", human_size(e.blk_read), human_size(e.blk_write))),
        "PIDs": dash(e.pids.to_string()),
    })
}

/// What a collector shares with the table.
struct Slot {
    /// The name or ID the user gave (the 12-character ID when listing).
    container: String,
    entry: Entry,
    err: Option<String>,
    /// The first sample (or failure) is in.
    first: bool,
    last: Instant,
    /// Tells the collector to stop (the container left the list).
    stop: Arc<AtomicBool>,
}

type Shared = Arc<Mutex<Slot>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Slot> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads samples for one container into its slot until the stream ends or the slot is dropped.
fn collect(client: &Client, slot: &Shared, stream: bool) {
    let (container, stop) = {
        let s = lock(slot);
        (s.container.clone(), s.stop.clone())
    };
    let q = query(&[("stream", if stream { "1" } else { "0" }.to_string())]);
    let resp = match client.request("GET", &format!("/containers/{}/stats?{q}", enc(&container)), Body::None) {
        Ok(r) => r,
        Err(e) => {
            let mut s = lock(slot);
            s.err = Some(e.msg);
            s.entry.invalid = true;
            s.first = true;
            return;
        }
    };
    for line in BufReader::new(resp).lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
        let mut s = lock(slot);
        s.entry = entry(&v);
        s.err = None;
        s.first = true;
        s.last = Instant::now();
        if !stream || stop.load(Ordering::Relaxed) {
            return;
        }
    }
    // The daemon ended the stream (the container stopped): the numbers are no longer live.
    let mut s = lock(slot);
    s.entry.invalid = true;
    s.first = true;
}

/// The tracked containers, in the order they were added.
struct Table {
    client: Arc<Client>,
    stream: bool,
    slots: Vec<Shared>,
}

impl Table {
    fn add(&mut self, container: &str) {
        if self.slots.iter().any(|s| lock(s).container == container) {
            return;
        }
        let slot = Arc::new(Mutex::new(Slot {
            container: container.to_string(),
            entry: Entry::default(),
            err: None,
            first: false,
            last: Instant::now(),
            stop: Arc::new(AtomicBool::new(false)),
        }));
        let (client, s, stream) = (self.client.clone(), slot.clone(), self.stream);
        std::thread::spawn(move || collect(&client, &s, stream));
        self.slots.push(slot);
    }

    /// Keeps only the containers in `ids`, stopping the other collectors.
    fn retain(&mut self, ids: &[String]) {
        self.slots.retain(|s| {
            let s = lock(s);
            let keep = ids.contains(&s.container);
            if !keep {
                s.stop.store(true, Ordering::Relaxed);
            }
            keep
        });
    }

    /// Waits (at most `STALE`) for every collector's first answer; the late ones time out.
    fn wait_first(&self) {
        let deadline = Instant::now() + STALE;
        while Instant::now() < deadline && !self.slots.iter().all(|s| lock(s).first) {
            std::thread::sleep(Duration::from_millis(10));
        }
        for s in &self.slots {
            let mut s = lock(s);
            if !s.first {
                s.first = true;
                s.err = Some("timeout waiting for stats".into());
                s.entry = Entry { invalid: true, ..Entry::default() };
            }
        }
    }

    fn rows(&self, trunc: bool) -> Vec<Value> {
        self.slots
            .iter()
            .map(|s| {
                let s = lock(s);
                let mut e = s.entry.clone();
                if self.stream && s.last.elapsed() > STALE {
                    e = Entry { name: e.name, id: e.id, invalid: true, ..Entry::default() };
                }
                row(&s.container, &e, trunc)
            })
            .collect()
    }
}

/// The 12-character IDs of the containers `stats` shows without names.
fn listed(client: &Client, all: bool) -> Result<Vec<String>, Error> {
    let q = if all { "?all=1" } else { "" };
    let list = client.get_json(&format!("/containers/json{q}"))?;
    Ok(list.as_array().into_iter().flatten().filter_map(|c| c["Id"].as_str()).map(truncate_id).collect())
}

/// One screen of the streaming display, byte for byte as docker 28 writes it: cursor home and
/// the table, then the same text again with each line followed by erase-to-end-of-line (so a
/// shorter line leaves nothing behind), then erase below (fewer containers than before).
fn frame(table: &str) -> String {
    let first = format!("\x1b[H{table}");
    let mut s = first.clone();
    for line in first.split('\n') {
        s.push_str(line);
        s.push_str(" \x1b[K\n");
    }
    s.push_str("\x1b[J");
    s
}

pub fn stats(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let format = match p.get("format") {
        Some(f) if !f.is_empty() && f != "table" => f.to_string(),
        _ => DEFAULT_FORMAT.to_string(),
    };
    let stream = !p.on("no-stream");
    let trunc = !p.on("no-trunc");
    let all = p.on("all");
    let show_all = p.args.is_empty();
    // One negotiated client shared by the collectors.
    let client = Arc::new(Client::new(ctx.client.host.clone(), &ctx.prog));
    client.api_version()?;
    let mut table = Table { client: client.clone(), stream, slots: Vec::new() };
    if show_all {
        for id in listed(&client, all)? {
            table.add(&id);
        }
    } else {
        for name in &p.args {
            table.add(name);
        }
    }
    table.wait_first();
    if !show_all {
        let errs: Vec<String> = table.slots.iter().filter_map(|s| lock(s).err.clone()).collect();
        if !errs.is_empty() {
            return Err(Error::msg(errs.join("\n")));
        }
    }
    // docker reports a template that fails on a row as a parsing error here.
    let render = |rows: &[Value]| {
        render(&format, rows, HEADERS).map_err(|e| match e.msg.strip_prefix("failed to execute template: ") {
            Some(m) => Error::msg(format!("template parsing error: {m}")),
            None => e,
        })
    };
    if !stream {
        out(&render(&table.rows(trunc))?);
        return Ok(());
    }
    let mut stdout = std::io::stdout();
    loop {
        std::thread::sleep(TICK);
        if show_all {
            // docker follows create/start/die events; the list gives the same picture.
            if let Ok(ids) = listed(&client, all) {
                if !all {
                    table.retain(&ids);
                }
                for id in &ids {
                    table.add(id);
                }
            }
        }
        let text = frame(&render(&table.rows(trunc))?);
        // A closed stdout (the pager quit) ends the display quietly.
        if stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_arithmetic() {
        let v = json!({
            "name": "/web", "id": "sha256:0123456789abcdef",
            "cpu_stats": {"cpu_usage": {"total_usage": 300, "percpu_usage": [1, 2]}, "system_cpu_usage": 2000, "online_cpus": 0},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 10 << 20, "limit": 64 << 20, "stats": {"total_inactive_file": 2 << 20, "inactive_file": 1}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 20}, "eth1": {"rx_bytes": 500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "write", "value": 1_000_000}, {"op": "Total", "value": 7}]},
            "pids_stats": {"current": 3},
        });
        let e = entry(&v);
        // 200/1000 of the machine, two CPUs from percpu_usage.
        assert!((e.cpu - 40.0).abs() < 1e-9, "{}", e.cpu);
        assert_eq!(e.mem, (8 << 20) as f64);
        let r = row("web", &e, true);
        assert_eq!(r["Name"], "web");
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "8MiB / 64MiB");
        assert_eq!(r["MemPerc"], "12.50%");
        assert_eq!(r["NetIO"], "2kB / 20B");
        assert_eq!(r["BlockIO"], "4.1kB / 1MB");
        assert_eq!(r["PIDs"], "3");
        let bad = row("x", &Entry { invalid: true, ..Entry::default() }, true);
        assert_eq!(
            (bad["Name"].as_str(), bad["MemUsage"].as_str(), bad["PIDs"].as_str()),
            (Some("--"), Some("-- / --"), Some("--"))
        );
        // cgroup v2: inactive_file; a cache larger than usage leaves usage alone.
        let v2 = json!({"memory_stats": {"usage": 100, "limit": 0, "stats": {"inactive_file": 150}}});
        assert_eq!((entry(&v2).mem, entry(&v2).mem_perc), (100.0, 0.0));
    }

    #[test]
    fn streaming_frame() {
        assert_eq!(frame("A\nB\n"), "\x1b[HA\nB\n\x1b[HA \x1b[K\nB \x1b[K\n \x1b[K\n\x1b[J");
    }
}
