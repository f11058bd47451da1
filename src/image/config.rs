//! Image configs: `docker import` with `--change` instructions, and the JSON shapes of
//! `/images/{name}/json`, `/images/{name}/history` and `/images/json`.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use serde_json::{json, Map, Value};

use super::archive::host_arch;
use super::layer;
use super::reference::Reference;
use super::store::{
    Image, ImageStore, Pending, MEDIA_OCI_CONFIG, MEDIA_OCI_LAYER, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST,
};
use super::Error;
use crate::store::digest::Digest;
use crate::timefmt;

/// Dockerfile instructions applied to an image config (`docker import --change`, `docker commit
/// --change`). Values are parsed as a Dockerfile would: JSON array or shell form.
#[derive(Debug, Clone, Default)]
pub struct ConfigChanges {
    /// (instruction, value) in order; validated by [`ConfigChanges::parse`].
    changes: Vec<(String, Value)>,
    /// The commit message (`docker import -m`), recorded in the config and history; empty means
    /// Docker's default for an import, `Imported from -`.
    pub comment: String,
}

impl ConfigChanges {
    /// Parses `--change` strings such as `CMD ["sh"]`, `ENV A=1 B="x y"`, `EXPOSE 80/tcp 53/udp`.
    pub fn parse(lines: &[String]) -> Result<ConfigChanges, Error> {
        let mut changes = Vec::new();
        for line in lines {
            let line = line.trim();
            let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            let instr = word.to_ascii_uppercase();
            let bad = |why: &str| Error::InvalidInput(format!("{instr}: {why}"));
            let value = match instr.as_str() {
                "CMD" | "ENTRYPOINT" => json!(exec_or_shell(rest)?),
                "ENV" | "LABEL" => {
                    let mut map = Map::new();
                    for (k, v) in key_values(rest, instr == "ENV").map_err(|e| bad(&e))? {
                        map.insert(k, json!(v));
                    }
                    Value::Object(map)
                }
                "WORKDIR" | "USER" | "STOPSIGNAL" => {
                    if rest.is_empty() {
                        return Err(bad("requires exactly one argument"));
                    }
                    json!(rest)
                }
                "EXPOSE" => {
                    let mut ports = Map::new();
                    for p in words(rest).map_err(|e| bad(&e))? {
                        let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                        let proto = proto.to_ascii_lowercase();
                        let ok_num = |n: &str| n.parse::<u16>().is_ok();
                        let ok = num.split_once('-').map_or(ok_num(num), |(a, b)| ok_num(a) && ok_num(b));
                        if !ok || !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
                            return Err(bad(&format!("invalid port {p:?}")));
                        }
                        ports.insert(format!("{num}/{proto}"), json!({}));
                    }
                    Value::Object(ports)
                }
                "VOLUME" => {
                    let list = if rest.starts_with('[') {
                        serde_json::from_str::<Vec<String>>(rest).map_err(|e| bad(&e.to_string()))?
                    } else {
                        words(rest).map_err(|e| bad(&e))?
                    };
                    Value::Object(list.into_iter().map(|v| (v, json!({}))).collect())
                }
                "" => continue,
                _ => return Err(Error::InvalidInput(format!("{word} is not a valid change command"))),
            };
            changes.push((instr, value));
        }
        Ok(ConfigChanges { changes, comment: String::new() })
    }

    /// Applies the changes to the `config` object of an image config.
    pub fn apply(&self, config: &mut Map<String, Value>) {
        for (instr, value) in &self.changes {
            let key = match instr.as_str() {
                "CMD" => "Cmd",
                "ENTRYPOINT" => "Entrypoint",
                "WORKDIR" => "WorkingDir",
                "USER" => "User",
                "STOPSIGNAL" => "StopSignal",
                "ENV" => {
                    let mut env: Vec<Value> = config.get("Env").and_then(Value::as_array).cloned().unwrap_or_default();
                    for (k, v) in value.as_object().into_iter().flatten() {
                        let prefix = format!("{k}=");
                        env.retain(|e| !e.as_str().is_some_and(|e| e.starts_with(&prefix)));
                        env.push(json!(format!("{k}={}", v.as_str().unwrap_or(""))));
                    }
                    config.insert("Env".into(), Value::Array(env));
                    continue;
                }
                "LABEL" | "EXPOSE" | "VOLUME" => {
                    let key = match instr.as_str() {
                        "LABEL" => "Labels",
                        "EXPOSE" => "ExposedPorts",
                        _ => "Volumes",
                    };
                    let slot = config.entry(key).or_insert_with(|| json!({}));
                    if !slot.is_object() {
                        *slot = json!({});
                    }
                    if let (Some(m), Some(add)) = (slot.as_object_mut(), value.as_object()) {
                        m.extend(add.clone());
                    }
                    continue;
                }
                _ => continue,
            };
            config.insert(key.into(), value.clone());
        }
    }
}

/// A JSON array of strings (exec form), else `/bin/sh -c REST` (shell form), as a Dockerfile reads it.
fn exec_or_shell(rest: &str) -> Result<Vec<String>, Error> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return Ok(v);
        }
    }
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

/// Splits on whitespace, honouring double and single quotes and backslash escapes.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                cur.push(chars.next().ok_or("trailing backslash")?);
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `K=V K2="v 2"` pairs; with `legacy`, also the old `ENV K some value` form.
fn key_values(s: &str, legacy: bool) -> Result<Vec<(String, String)>, String> {
    let ws = words(s)?;
    if ws.is_empty() {
        return Err("requires at least one argument".into());
    }
    if legacy && !ws[0].contains('=') {
        let (k, v) = s.split_once(char::is_whitespace).ok_or("requires a value")?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{w:?} is not KEY=VALUE")),
        })
        .collect()
}

/// Seconds since the epoch of an RFC 3339 timestamp (`2024-01-02T03:04:05.123Z`, `…+01:00`); 0 if
/// it does not parse.
pub fn unix_time(s: &str) -> i64 {
    fn num(s: &str, a: usize, b: usize) -> Option<i64> {
        s.get(a..b)?.parse().ok()
    }
    let parse = || -> Option<i64> {
        let (y, mo, d) = (num(s, 0, 4)?, num(s, 5, 7)?, num(s, 8, 10)?);
        let (h, mi, sec) = (num(s, 11, 13)?, num(s, 14, 16)?, num(s, 17, 19)?);
        // The zone follows the optional fraction.
        let zone = s[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
        let offset = match zone {
            "Z" | "z" | "" => 0,
            z => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                sign * (num(z, 1, 3)? * 3600 + num(z, 4, 6)? * 60)
            }
        };
        let days = timefmt::days_from_civil(y, mo, d);
        Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
    };
    parse().unwrap_or(0)
}

/// What `docker commit` gives the store.
pub struct CommitInput<'a> {
    pub parent: Option<&'a Image>,
    /// The container's overlay upper directory.
    pub upper: &'a Path,
    /// The new image's `config` (the container's, with `--change`s applied).
    pub config: Map<String, Value>,
    pub comment: &'a str,
    pub author: &'a str,
    pub created_by: &'a str,
    pub reference: Option<&'a str>,
}

impl ImageStore {
    /// `docker import`: one layer from a (plain or gzip) root filesystem tar, a config built from
    /// `changes` (and its comment), an optional name. Returns the image ID.
    pub fn import(&self, rootfs: impl Read, changes: &ConfigChanges, reference: Option<&str>) -> Result<Digest, Error> {
        let comment = if changes.comment.is_empty() { "Imported from -" } else { changes.comment.as_str() };
        let refs: Vec<Reference> =
            reference.map(Reference::parse).transpose().map_err(Error::InvalidInput)?.into_iter().collect();
        let stage = self.stage_dir("import")?;
        let r = (|| {
            let blob = stage.join("layer.blob");
            let (digest, size) = {
                let mut f = File::create(&blob)?;
                let mut hashing = TeeDigest::new(rootfs, &mut f);
                let mut sink = io::sink();
                io::copy(&mut hashing, &mut sink).map_err(|e| Error::io("reading import", e))?;
                hashing.finish()
            };
            let diff_id = layer::diff_id(File::open(&blob)?).map_err(|e| Error::io("import", e))?;
            let chain = layer::chain_id(None, &diff_id);
            if !self.layout.layer_dir(&chain).join("diff").is_dir() {
                self.unpack_layer(&blob, &diff_id, &stage.join("layers").join(chain.hex()))
                    .map_err(|e| Error::io("import", e))?;
            }
            let mut head = [0u8; 2];
            let n = File::open(&blob)?.read(&mut head)?;
            let media = if layer::is_gzip(&head[..n]) { MEDIA_OCI_LAYER_GZIP } else { MEDIA_OCI_LAYER };
            let created = timefmt::now_rfc3339();
            let mut cfg = Map::new();
            changes.apply(&mut cfg);
            let config = json!({
                "architecture": host_arch(),
                "os": "linux",
                "created": created,
                "comment": comment,
                "config": cfg,
                "rootfs": { "type": "layers", "diff_ids": [diff_id.as_str()] },
                "history": [{ "created": created, "comment": comment }],
            });
            let layers = vec![json!({ "mediaType": media, "digest": digest.as_str(), "size": size })];
            self.commit_new_layer(&stage, &config, layers, (blob, digest), refs)
        })();
        let _ = fs::remove_dir_all(&stage);
        r
    }

    /// `docker commit`: the parent image's layers plus one made from a container's overlay upper
    /// directory, with the container's config. Returns the new image ID.
    pub fn commit_container(&self, c: &CommitInput<'_>) -> Result<Digest, Error> {
        let refs: Vec<Reference> =
            c.reference.map(Reference::parse).transpose().map_err(Error::InvalidInput)?.into_iter().collect();
        let parent_manifest = match c.parent {
            Some(p) => {
                let data = fs::read(self.layout.blob(&p.manifest)).map_err(|e| Error::io("parent manifest", e))?;
                Some(super::store::Manifest::parse(&data).map_err(Error::Io)?)
            }
            None => None,
        };
        let stage = self.stage_dir("commit")?;
        let r = (|| {
            let blob = stage.join("layer.blob");
            let (digest, size) = {
                let mut f = File::create(&blob)?;
                layer::pack_diff(c.upper, &mut f).map_err(|e| Error::io("packing the container's changes", e))?;
                f.sync_all()?;
                Digest::of_reader(File::open(&blob)?).map_err(|e| Error::io("commit", e))?
            };
            // Uncompressed: the diff ID is the blob's digest.
            let diff_id = digest.clone();
            let parent_chain = c.parent.and_then(|p| p.chain_ids.last().cloned());
            let chain = layer::chain_id(parent_chain.as_ref(), &diff_id);
            if !self.layout.layer_dir(&chain).join("diff").is_dir() {
                self.unpack_layer(&blob, &diff_id, &stage.join("layers").join(chain.hex()))
                    .map_err(|e| Error::io("commit", e))?;
            }
            let created = timefmt::now_rfc3339();
            let mut config = c.parent.map(|p| p.config.clone()).unwrap_or_else(
                || json!({"architecture": host_arch(), "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
            );
            config["created"] = json!(created);
            config["config"] = Value::Object(c.config.clone());
            if !c.author.is_empty() {
                config["author"] = json!(c.author);
            }
            match c.comment {
                "" => {
                    if let Some(o) = config.as_object_mut() {
                        o.remove("comment");
                    }
                }
                m => config["comment"] = json!(m),
            }
            if let Some(ids) = config["rootfs"]["diff_ids"].as_array_mut() {
                ids.push(json!(diff_id.as_str()));
            }
            let mut h = json!({"created": created, "created_by": c.created_by});
            if !c.author.is_empty() {
                h["author"] = json!(c.author);
            }
            if !c.comment.is_empty() {
                h["comment"] = json!(c.comment);
            }
            match config["history"].as_array_mut() {
                Some(hist) => hist.push(h),
                None => config["history"] = json!([h]),
            }
            let mut layers: Vec<Value> = parent_manifest
                .iter()
                .flat_map(|m| m.layers.iter())
                .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
                .collect();
            layers.push(json!({ "mediaType": MEDIA_OCI_LAYER, "digest": digest.as_str(), "size": size }));
            self.commit_new_layer(&stage, &config, layers, (blob, digest), refs)
        })();
        let _ = fs::remove_dir_all(&stage);
        r
    }

    /// Commits an image made here (import, commit): its config, an OCI manifest over `layers`,
    /// and the one new layer blob staged in `stage`. Returns the image ID.
    fn commit_new_layer(
        &self,
        stage: &Path,
        config: &Value,
        layers: Vec<Value>,
        blob: (std::path::PathBuf, Digest),
        refs: Vec<Reference>,
    ) -> Result<Digest, Error> {
        let config = serde_json::to_vec(config).unwrap_or_default();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": { "mediaType": MEDIA_OCI_CONFIG, "digest": Digest::of(&config).as_str(), "size": config.len() },
            "layers": layers,
        });
        let pending = Pending {
            manifest: serde_json::to_vec(&manifest).unwrap_or_default(),
            manifest_media_type: MEDIA_OCI_MANIFEST.into(),
            config,
            blobs: vec![blob],
            refs,
        };
        let committed = self.commit(stage, vec![pending])?;
        committed.into_iter().next().map(|(id, _)| id).ok_or_else(|| Error::Io("nothing was committed".into()))
    }

    /// Docker's `GET /images/{name}/json` body.
    pub fn inspect_json(&self, image: &Image) -> Value {
        let c = &image.config;
        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
        let mut config = c.get("config").and_then(Value::as_object).cloned().unwrap_or_default();
        // The API shows a full container config; fill the keys the image config may omit.
        for (k, v) in [
            ("Hostname", json!("")),
            ("Domainname", json!("")),
            ("User", json!("")),
            ("AttachStdin", json!(false)),
            ("AttachStdout", json!(false)),
            ("AttachStderr", json!(false)),
            ("Tty", json!(false)),
            ("OpenStdin", json!(false)),
            ("StdinOnce", json!(false)),
            ("Env", Value::Null),
            ("Cmd", Value::Null),
            ("Image", json!("")),
            ("Volumes", Value::Null),
            ("WorkingDir", json!("")),
            ("Entrypoint", Value::Null),
            ("OnBuild", Value::Null),
            ("Labels", Value::Null),
        ] {
            config.entry(k).or_insert(v);
        }
        json!({
            "Id": image.id.as_str(),
            "RepoTags": image.repo_tags,
            "RepoDigests": image.repo_digests,
            "Parent": "",
            "Comment": s("comment"),
            "Created": image.created,
            "DockerVersion": s("docker_version"),
            "Author": s("author"),
            "Config": config,
            "Architecture": s("architecture"),
            "Variant": c.get("variant").cloned().unwrap_or(Value::Null),
            "Os": s("os"),
            "Size": image.size,
            "VirtualSize": image.size,
            "GraphDriver": { "Name": "overlay2", "Data": Value::Null },
            "RootFS": { "Type": "layers", "Layers": image.diff_ids.iter().map(Digest::as_str).collect::<Vec<_>>() },
            "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
        })
    }

    /// Docker's `GET /images/{name}/history` body: newest step first; only the top step carries
    /// the image ID and tags, earlier ones `<missing>` (their intermediate images do not exist).
    pub fn history_json(&self, image: &Image) -> Value {
        let history = image.config.get("history").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut layer = 0usize;
        let mut rows = Vec::new();
        for h in &history {
            let empty = h.get("empty_layer").and_then(Value::as_bool).unwrap_or(false);
            let size = if empty {
                0
            } else {
                layer += 1;
                image.layer_sizes.get(layer - 1).copied().unwrap_or(0)
            };
            let s = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            rows.push(json!({
                "Id": "<missing>",
                "Created": unix_time(&s("created")),
                "CreatedBy": s("created_by"),
                "Tags": Value::Null,
                "Size": size,
                "Comment": s("comment"),
            }));
        }
        if rows.is_empty() {
            rows.push(json!({
                "Id": "<missing>", "Created": unix_time(&image.created), "CreatedBy": "", "Tags": Value::Null,
                "Size": image.size, "Comment": "",
            }));
        }
        rows.reverse();
        rows[0]["Id"] = json!(image.id.as_str());
        rows[0]["Tags"] = if image.repo_tags.is_empty() { Value::Null } else { json!(image.repo_tags) };
        Value::Array(rows)
    }

    /// One element of Docker's `GET /images/json` body.
    pub fn summary_json(&self, image: &Image) -> Value {
        json!({
            "Id": image.id.as_str(),
            "ParentId": "",
            "RepoTags": image.repo_tags,
            "RepoDigests": image.repo_digests,
            "Created": unix_time(&image.created),
            "Size": image.size,
            "SharedSize": -1,
            "VirtualSize": image.size,
            "Labels": image.config.pointer("/config/Labels").filter(|l| l.is_object()).cloned().unwrap_or(json!({})),
            "Containers": -1,
        })
    }
}

/// Copies a reader into a file while hashing it.
struct TeeDigest<'a, R> {
    inner: R,
    out: &'a mut File,
    hash: sha2::Sha256,
    n: u64,
}

impl<'a, R: Read> TeeDigest<'a, R> {
    fn new(inner: R, out: &'a mut File) -> Self {
        use sha2::Digest as _;
        TeeDigest { inner, out, hash: sha2::Sha256::new(), n: 0 }
    }
    fn finish(self) -> (Digest, u64) {
        use sha2::Digest as _;
        let d = crate::store::digest::hex(&self.hash.finalize());
        (Digest::parse(&format!("sha256:{d}")).unwrap_or_else(|_| Digest::of(b"")), self.n)
    }
}

impl<R: Read> Read for TeeDigest<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use io::Write;
        use sha2::Digest as _;
        let k = self.inner.read(buf)?;
        self.out.write_all(&buf[..k])?;
        self.hash.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
}
