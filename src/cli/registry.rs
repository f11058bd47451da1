//! Registry verbs: `pull`, `push`, `login`, `logout`, and the credentials they share.
//!
//! Credentials live where the docker CLI keeps them: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) under `auths`, keyed by registry (`https://index.docker.io/v1/` for
//! Docker Hub, `host:port` otherwise), as `base64(user:pass)`. Pull and push send them to the
//! daemon in `X-Registry-Auth` (base64url of `{username,password,serveraddress}`); credential
//! helpers (`credsStore`) are not run.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use serde_json::{json, Value};

use super::client::{query, Body};
use super::flags::Parsed;
use super::{err_line, out, stream, Ctx, Error};
use crate::b64::{decode as base64_decode, encode as base64_encode};
use crate::image::distribution::{domain_of_server, HUB_AUTH_ADDRESS};
use crate::image::reference::{Reference, DEFAULT_DOMAIN};

/// The docker CLI's configuration directory.
fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker")
}

fn load_config() -> Result<Value, Error> {
    let path = config_dir().join("config.json");
    match std::fs::read(&path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(json!({})),
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| Error::msg(format!("loading config file {}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(Error::msg(format!("loading config file {}: {e}", path.display()))),
    }
}

/// Writes config.json through a temp file and a rename, mode 0600 (it holds passwords).
fn save_config(v: &Value) -> Result<PathBuf, Error> {
    let dir = config_dir();
    std::fs::create_dir_all(&dir).map_err(Error::io)?;
    let path = dir.join("config.json");
    let data = serde_json::to_vec_pretty(v).map_err(|e| Error::msg(e.to_string()))?;
    crate::store::atomic::write_with(&path, 0o600, |f| f.write_all(&data))
        .map_err(|e| Error::msg(format!("saving config file {}: {e}", path.display())))?;
    Ok(path)
}

/// The `auths` key for a registry domain.
fn auth_key(domain: &str) -> String {
    if domain == DEFAULT_DOMAIN {
        HUB_AUTH_ADDRESS.to_string()
    } else {
        domain.to_string()
    }
}

/// Stored (user, password) for `domain`, matching keys written with or without a scheme.
fn stored_credentials(domain: &str) -> Option<(String, String)> {
    let cfg = load_config().ok()?;
    let auths = cfg["auths"].as_object()?;
    let (_, entry) = auths.iter().find(|(k, _)| domain_of_server(k) == domain)?;
    let raw = base64_decode(entry["auth"].as_str()?)?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The `X-Registry-Auth` value for the registry of `image` (`{}` when none is stored).
pub fn registry_auth(image: &str) -> String {
    let domain = Reference::parse(image).map(|r| r.domain).unwrap_or_else(|_| DEFAULT_DOMAIN.to_string());
    let doc = match stored_credentials(&domain) {
        Some((u, p)) => json!({"username": u, "password": p, "serveraddress": auth_key(&domain)}),
        None => json!({}),
    };
    base64_encode(doc.to_string().as_bytes()).replace('+', "-").replace('/', "_")
}

/// `docker pull [-q] [--platform P] NAME[:TAG|@DIGEST]`.
pub fn pull(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let image = &p.args[0];
    let r = Reference::parse(image).map_err(Error::msg)?;
    if p.on("quiet") {
        pull_image(ctx, &r, p.get("platform"), &mut std::io::sink())?;
    } else {
        pull_image(ctx, &r, p.get("platform"), &mut std::io::stdout())?;
    }
    out(&format!("{r}\n"));
    Ok(())
}

/// `POST /images/create?fromImage=&tag=` with credentials; progress lines to `to`.
pub fn pull_image(ctx: &Ctx, r: &Reference, platform: Option<&str>, to: &mut dyn Write) -> Result<(), Error> {
    let tag = r.digest.as_ref().map(|d| d.to_string()).or(r.tag.clone()).unwrap_or_else(|| "latest".into());
    let mut q = vec![("fromImage", r.name()), ("tag", tag)];
    if let Some(pl) = platform.filter(|s| !s.is_empty()) {
        q.push(("platform", pl.to_string()));
    }
    let auth = registry_auth(&r.to_string());
    let path = format!("/images/create?{}", query(&q));
    let resp = ctx.client.request_with("POST", &path, Body::None, &[("X-Registry-Auth", &auth)])?;
    stream::json_messages(resp, to, |_| {})
}

/// `docker push [-a] [-q] NAME[:TAG]`.
pub fn push(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let image = &p.args[0];
    let r = Reference::parse_name_only(image).map_err(Error::msg)?;
    if r.digest.is_some() {
        return Err(Error::msg(format!("invalid reference format: cannot push a digest reference: {image}")));
    }
    let all = p.on("all-tags");
    let tag = match (&r.tag, all) {
        (Some(_), true) => return Err(Error::msg("tag can't be used with --all-tags/-a")),
        (Some(t), false) => t.clone(),
        (None, true) => String::new(),
        (None, false) => "latest".into(),
    };
    let name = Reference { tag: None, digest: None, ..r.clone() }.name();
    let auth = registry_auth(&name);
    let path = format!("/images/{name}/push?{}", query(&[("tag", tag)]));
    let resp = ctx.client.request_with("POST", &path, Body::None, &[("X-Registry-Auth", &auth)])?;
    if p.on("quiet") {
        stream::json_messages(resp, &mut std::io::sink(), |_| {})?;
        out(&format!("{}\n", r.name() + &r.tag.map(|t| format!(":{t}")).unwrap_or_default()));
        Ok(())
    } else {
        stream::json_messages(resp, &mut std::io::stdout(), |_| {})
    }
}

/// `docker login [-u USER] [-p PASS | --password-stdin] [SERVER]`.
pub fn login(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let server = p.args.first().cloned().unwrap_or_else(|| HUB_AUTH_ADDRESS.to_string());
    let domain = domain_of_server(&server);
    let key = auth_key(&domain);
    let stored = stored_credentials(&domain);
    let mut user = p.get("username").map(str::to_string).unwrap_or_default();
    let mut password = p.get("password").map(str::to_string).unwrap_or_default();
    if p.on("password-stdin") {
        if !password.is_empty() {
            return Err(Error::msg("--password and --password-stdin are mutually exclusive"));
        }
        if user.is_empty() {
            return Err(Error::msg("Must provide --username with --password-stdin"));
        }
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(Error::io)?;
        password = line.trim_end_matches(['\n', '\r']).to_string();
    } else if !password.is_empty() {
        err_line("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if user.is_empty() && password.is_empty() {
        match stored {
            Some((u, pw)) => (user, password) = (u, pw),
            None => return Err(Error::msg("Error: Cannot perform an interactive login from a non TTY device")),
        }
    }
    if user.is_empty() {
        return Err(Error::msg("Error: Non-null Username Required"));
    }
    let body = json!({"username": user, "password": password, "serveraddress": key});
    let resp = ctx.client.request("POST", "/auth", Body::Json(body))?;
    let v = resp.json()?;
    let mut cfg = load_config()?;
    if !cfg.is_object() {
        cfg = json!({});
    }
    if !cfg["auths"].is_object() {
        cfg["auths"] = json!({});
    }
    cfg["auths"][&key] = json!({"auth": base64_encode(format!("{user}:{password}").as_bytes())});
    let path = save_config(&cfg)?;
    err_line(&format!(
        "WARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
        path.display()
    ));
    out(&format!("{}\n", v["Status"].as_str().unwrap_or("Login Succeeded")));
    Ok(())
}

/// `docker logout [SERVER]`.
pub fn logout(_ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let server = p.args.first().cloned().unwrap_or_else(|| HUB_AUTH_ADDRESS.to_string());
    let domain = domain_of_server(&server);
    let key = auth_key(&domain);
    let mut cfg = load_config()?;
    let keys: Vec<String> = cfg["auths"]
        .as_object()
        .map(|m| m.keys().filter(|k| domain_of_server(k) == domain).cloned().collect())
        .unwrap_or_default();
    if keys.is_empty() {
        out(&format!("Not logged in to {key}\n"));
        return Ok(());
    }
    out(&format!("Removing login credentials for {key}\n"));
    if let Some(m) = cfg["auths"].as_object_mut() {
        for k in keys {
            m.remove(&k);
        }
    }
    save_config(&cfg)?;
    Ok(())
}
