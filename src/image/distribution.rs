//! The client side of the OCI distribution API: which endpoint serves a registry, how to
//! authenticate to it, and one authenticated request at a time. Pull and push (`pull.rs`,
//! `push.rs`) build on [`Session`]; nothing here touches the image store.
//!
//! Endpoints follow dockerd's rules: `docker.io` goes through the configured mirrors first, then
//! `registry-1.docker.io`; a loopback registry (`localhost`, 127.0.0.0/8, `::1`) is spoken to over
//! plain HTTP; a registry listed as insecure (`insecure-registries`, `--insecure-registry`, by
//! `host[:port]` or CIDR) is tried over HTTPS and then HTTP; every other one needs HTTPS.
//!
//! Authentication is driven by the registry's challenge to `GET /v2/`: `Basic` gets the client's
//! credentials, `Bearer realm=…,service=…` gets a token from the realm (anonymously, or with the
//! credentials as Basic auth) for the session's scopes. A 401 later in the session (an expired
//! token) renews the authorization once and retries.

use std::io::{self, Read};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::Error;
use crate::image::reference::DEFAULT_DOMAIN;

/// Docker Hub's API endpoint (`docker.io` names the registry, this host serves it).
const HUB_ENDPOINT: &str = "https://registry-1.docker.io";
/// The server address the docker CLI uses for Docker Hub credentials.
pub const HUB_AUTH_ADDRESS: &str = "https://index.docker.io/v1/";
/// Manifest types asked for, in order of preference.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Largest token or error document read.
const SMALL_MAX: u64 = 1 << 20;

/// Registry settings from daemon.json and the daemon's flags.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `host[:port]` or CIDR entries reachable over plain HTTP.
    pub insecure: Vec<String>,
    /// Mirrors of Docker Hub (`http://127.0.0.1:5000` or `https://mirror.example`).
    pub mirrors: Vec<String>,
}

/// Credentials as the docker CLI sends them (`X-Registry-Auth`, `POST /auth`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// `base64(user:pass)`, the form config.json stores.
    #[serde(default)]
    pub auth: String,
    #[serde(default, rename = "serveraddress")]
    pub server_address: String,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
    #[serde(default, rename = "registrytoken")]
    pub registry_token: String,
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` header (base64url of the JSON, padded or not). `None` for an
    /// absent or empty one, or one that does not decode (docker treats those as anonymous too).
    pub fn from_header(h: Option<&str>) -> Option<AuthConfig> {
        let h = h?.trim();
        if h.is_empty() {
            return None;
        }
        let json = crate::b64::decode(h)?;
        let a: AuthConfig = serde_json::from_slice(&json).ok()?;
        a.normalised()
    }

    /// Fills username/password from `auth`; `None` when nothing usable is left.
    pub fn normalised(mut self) -> Option<AuthConfig> {
        if self.username.is_empty() && !self.auth.is_empty() {
            let raw = crate::b64::decode(&self.auth).unwrap_or_default();
            if let Some((u, p)) = String::from_utf8_lossy(&raw).split_once(':') {
                self.username = u.to_string();
                self.password = p.to_string();
            }
        }
        let empty = self.username.is_empty() && self.identity_token.is_empty() && self.registry_token.is_empty();
        (!empty).then_some(self)
    }

    fn basic(&self) -> Option<String> {
        (!self.username.is_empty())
            .then(|| format!("Basic {}", crate::b64::encode(format!("{}:{}", self.username, self.password).as_bytes())))
    }
}

/// The registry domain a `serveraddress` (`https://index.docker.io/v1/`, `http://host:5000`,
/// `host:5000`) names.
pub fn domain_of_server(address: &str) -> String {
    let s = address.trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" | "registry.hub.docker.com" => {
            DEFAULT_DOMAIN.to_string()
        }
        h => h.to_string(),
    }
}

/// One base URL that may serve a registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `http://127.0.0.1:5000`, without a trailing slash.
    pub url: String,
    /// A Docker Hub mirror: any failure moves on to the next endpoint.
    pub mirror: bool,
}

/// The endpoints to try for `domain`, in order.
pub fn endpoints(settings: &Settings, domain: &str) -> Vec<Endpoint> {
    if domain == DEFAULT_DOMAIN {
        let mut out: Vec<Endpoint> = settings
            .mirrors
            .iter()
            .map(|m| m.trim_end_matches('/'))
            .filter(|m| m.starts_with("http://") || m.starts_with("https://"))
            .map(|m| Endpoint { url: m.to_string(), mirror: true })
            .collect();
        out.push(Endpoint { url: HUB_ENDPOINT.to_string(), mirror: false });
        return out;
    }
    let https = Endpoint { url: format!("https://{domain}"), mirror: false };
    let http = Endpoint { url: format!("http://{domain}"), mirror: false };
    if is_loopback(domain) {
        vec![http]
    } else if is_insecure(settings, domain) {
        vec![https, http]
    } else {
        vec![https]
    }
}

/// The host part of `host[:port]` / `[v6]:port`.
fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match domain.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => domain,
    }
}

fn is_loopback(domain: &str) -> bool {
    let host = host_of(domain);
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Listed by `host[:port]` exactly, by host, or by a CIDR holding the host's address.
fn is_insecure(settings: &Settings, domain: &str) -> bool {
    let host = host_of(domain);
    settings.insecure.iter().any(|entry| {
        let e = entry.trim().trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/');
        if e == domain || e == host {
            return true;
        }
        let Some((net, bits)) = e.split_once('/') else { return false };
        let (Ok(net), Ok(bits), Ok(ip)) = (net.parse::<IpAddr>(), bits.parse::<u32>(), host.parse::<IpAddr>()) else {
            return false;
        };
        match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
                let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
                let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    })
}

/// What a request sends.
pub enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`, reporting each read's running total to `progress`.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
        progress: &'a (dyn Fn(u64) + Sync),
    },
}

/// A response: status, headers, and the body still to be read.
pub type Response = ureq::http::Response<ureq::Body>;

/// A header of a response, as text.
pub fn header(r: &Response, name: &str) -> Option<String> {
    r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Reads a small body (JSON, errors) of at most `max` bytes.
pub fn read_small(r: Response, max: u64) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    r.into_body()
        .into_reader()
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Io(format!("reading registry response: {e}")))?;
    if out.len() as u64 > max {
        return Err(Error::InvalidInput(format!("registry response larger than {max} bytes")));
    }
    Ok(out)
}

/// A registry's error answer as docker prints it: `manifest unknown: manifest unknown`, with the
/// spec code (empty when the body has none).
pub fn registry_error(r: Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let body = read_small(r, SMALL_MAX).unwrap_or_default();
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let first = &v["errors"][0];
    match first["code"].as_str() {
        Some(code) => {
            let what = code.to_ascii_lowercase().replace('_', " ");
            let msg = first["message"].as_str().unwrap_or("");
            let text = if msg.is_empty() { what } else { format!("{what}: {msg}") };
            (status, code.to_string(), text)
        }
        None => {
            let text = String::from_utf8_lossy(&body).trim().to_string();
            let reason = ureq::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason());
            let head = format!("{status} {}", reason.unwrap_or(""));
            (status, String::new(), if text.is_empty() || text.len() > 200 { head } else { format!("{head}: {text}") })
        }
    }
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq)]
enum Challenge {
    Basic,
    Bearer { realm: String, service: String, scope: String },
}

fn parse_challenge(h: &str) -> Option<Challenge> {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    let mut params = std::collections::HashMap::new();
    // key="value" pairs separated by commas; values may hold commas inside their quotes.
    let mut s = rest.trim();
    for _ in 0..32 {
        if s.is_empty() {
            break;
        }
        let Some((k, after)) = s.split_once('=') else { break };
        let (v, next) = match after.strip_prefix('"') {
            Some(q) => match q.find('"') {
                Some(i) => (&q[..i], q[i + 1..].trim_start_matches([',', ' '])),
                None => (q, ""),
            },
            None => match after.split_once(',') {
                Some((v, n)) => (v, n.trim_start()),
                None => (after, ""),
            },
        };
        params.insert(k.trim().to_ascii_lowercase(), v.to_string());
        s = next;
    }
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned().unwrap_or_default(),
            scope: params.get("scope").cloned().unwrap_or_default(),
        })
    } else {
        None
    }
}

/// An authenticated conversation with one registry endpoint, for a fixed set of scopes
/// (`repository:test/busybox:pull,push`).
pub struct Session {
    agent: ureq::Agent,
    /// The endpoint's base URL.
    pub base: String,
    creds: Option<AuthConfig>,
    scopes: Vec<String>,
    /// The `Authorization` value every request carries (none before a challenge).
    authorization: Mutex<Option<String>>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        // A stalled transfer fails instead of hanging a pull forever; data that flows never does.
        .timeout_per_read(Some(Duration::from_secs(120)))
        .timeout_per_write(Some(Duration::from_secs(120)))
        .max_redirects(10)
        .user_agent(format!("tug/{}", crate::version::VERSION))
        .build()
        .new_agent()
}

/// A transport failure, worded like docker's (`Get "http://…/v2/": connection refused`).
fn transport(method: &str, url: &str, e: ureq::Error) -> Error {
    let detail = match &e {
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    };
    let m = method.chars().next().map(|c| c.to_string()).unwrap_or_default() + &method[1..].to_ascii_lowercase();
    Error::Io(format!("{m} \"{url}\": {detail}"))
}

impl Session {
    /// Pings `GET /v2/` on the first endpoint that answers and authorizes for `scopes` if the
    /// registry asks for it. An endpoint that cannot be reached moves on to the next.
    pub fn connect(eps: &[Endpoint], creds: Option<AuthConfig>, scopes: Vec<String>) -> Result<Session, Error> {
        let mut last = Error::Io("no registry endpoint".into());
        for ep in eps {
            let s = Session {
                agent: agent(),
                base: ep.url.clone(),
                creds: creds.clone(),
                scopes: scopes.clone(),
                authorization: Mutex::new(None),
            };
            let url = format!("{}/v2/", s.base);
            match s.agent.get(&url).call() {
                Ok(r) if r.status().as_u16() == 401 => {
                    if let Some(c) = header(&r, "www-authenticate").as_deref().and_then(parse_challenge) {
                        let _ = read_small(r, SMALL_MAX);
                        let auth = s.authorize(&c)?;
                        *s.lock() = auth;
                    }
                    return Ok(s);
                }
                Ok(r) if r.status().is_success() => {
                    let _ = read_small(r, SMALL_MAX);
                    return Ok(s);
                }
                Ok(r) if ep.mirror => last = Error::Io(format!("mirror {}: {}", ep.url, registry_error(r).2)),
                Ok(r) => {
                    // Some registries answer /v2/ with 404 yet serve the API; go on and see.
                    let _ = read_small(r, SMALL_MAX);
                    return Ok(s);
                }
                Err(e) => last = transport("GET", &url, e),
            }
        }
        Err(last)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.authorization.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the session holds credentials-backed authorization (for `POST /auth`).
    pub fn check_login(&self) -> Result<(), Error> {
        let url = format!("{}/v2/", self.base);
        let r = self.request("GET", &url, &[], Payload::Empty)?;
        let status = r.status();
        let _ = read_small(r, SMALL_MAX);
        if status.is_success() {
            return Ok(());
        }
        Err(Error::Unauthorized(format!(
            "login attempt to {url} failed with status: {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )))
    }

    /// The `Authorization` value answering challenge `c` for this session's scopes.
    fn authorize(&self, c: &Challenge) -> Result<Option<String>, Error> {
        match c {
            Challenge::Basic => Ok(self.creds.as_ref().and_then(AuthConfig::basic)),
            Challenge::Bearer { realm, service, scope } => {
                if let Some(t) = self.creds.as_ref().map(|c| &c.registry_token).filter(|t| !t.is_empty()) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let mut scopes = self.scopes.clone();
                for s in scope.split(' ').filter(|s| !s.is_empty()) {
                    if !scopes.iter().any(|x| x == s) {
                        scopes.push(s.to_string());
                    }
                }
                let refresh = self.creds.as_ref().map(|c| c.identity_token.clone()).filter(|t| !t.is_empty());
                let resp = if let Some(token) = refresh {
                    // OAuth2 refresh-token grant, as docker does with an identity token.
                    let mut form = vec![
                        ("grant_type", "refresh_token".to_string()),
                        ("service", service.clone()),
                        ("client_id", "docker".to_string()),
                        ("refresh_token", token),
                    ];
                    form.extend(scopes.iter().map(|s| ("scope", s.clone())));
                    self.agent.post(realm).send_form(form.iter().map(|(k, v)| (*k, v.as_str())))
                } else {
                    let mut req = self.agent.get(realm);
                    if !service.is_empty() {
                        req = req.query("service", service);
                    }
                    for s in &scopes {
                        req = req.query("scope", s);
                    }
                    if let Some(b) = self.creds.as_ref().and_then(AuthConfig::basic) {
                        req = req.header("Authorization", b);
                    }
                    req.call()
                };
                let resp = resp.map_err(|e| transport("GET", realm, e))?;
                let status = resp.status().as_u16();
                if status == 401 || status == 403 {
                    let (_, _, text) = registry_error(resp);
                    return Err(Error::Unauthorized(format!("unauthorized: {text}")));
                }
                if !resp.status().is_success() {
                    let (_, _, text) = registry_error(resp);
                    return Err(Error::Io(format!("token from {realm}: {text}")));
                }
                let body = read_small(resp, SMALL_MAX)?;
                let v: Value = serde_json::from_slice(&body)
                    .map_err(|e| Error::InvalidInput(format!("token from {realm}: {e}")))?;
                let token = v["token"].as_str().or(v["access_token"].as_str()).unwrap_or("");
                if token.is_empty() {
                    return Err(Error::InvalidInput(format!("token from {realm}: no token in the answer")));
                }
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// `path` (starting with `/`) or a full URL the registry gave (`Location`), as a full URL.
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else if path_or_url.starts_with('/') {
            format!("{}{path_or_url}", self.base)
        } else {
            format!("{}/{path_or_url}", self.base)
        }
    }

    /// One request; a 401 renews the authorization from its challenge and retries once.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<Response, Error> {
        let url = self.url(url);
        for attempt in 0..2 {
            let auth = self.lock().clone();
            let resp = self.send(method, &url, headers, &payload, auth.as_deref())?;
            if resp.status().as_u16() == 401 && attempt == 0 {
                if let Some(c) = header(&resp, "www-authenticate").as_deref().and_then(parse_challenge) {
                    let renewed = self.authorize(&c)?;
                    if renewed.is_some() && renewed != auth {
                        let _ = read_small(resp, SMALL_MAX);
                        *self.lock() = renewed;
                        continue;
                    }
                }
            }
            return Ok(resp);
        }
        Err(Error::Unauthorized(format!("{method} {url}: unauthorized")))
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: &Payload<'_>,
        auth: Option<&str>,
    ) -> Result<Response, Error> {
        let mut b = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(a) = auth {
            b = b.header("Authorization", a);
        }
        let fail = |e: ureq::Error| transport(method, url, e);
        let bad = |e: ureq::http::Error| Error::InvalidInput(format!("{method} {url}: {e}"));
        match payload {
            Payload::Empty => {
                let needs_length = matches!(method, "POST" | "PUT" | "PATCH");
                if needs_length {
                    b = b.header("Content-Length", "0");
                }
                self.agent.run(b.body(()).map_err(bad)?).map_err(fail)
            }
            Payload::Bytes(data) => self.agent.run(b.body(data.to_vec()).map_err(bad)?).map_err(fail),
            Payload::File { path, offset, len, progress } => {
                let mut f = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
                io::Seek::seek(&mut f, io::SeekFrom::Start(*offset)).map_err(|e| Error::io(path.display(), e))?;
                let mut reader = Counted { inner: f.take(*len), n: 0, progress: *progress };
                b = b.header("Content-Length", len.to_string());
                let body = ureq::SendBody::from_reader(&mut reader);
                self.agent.run(b.body(body).map_err(bad)?).map_err(fail)
            }
        }
    }
}

/// A reader that reports how much has been read.
struct Counted<'a, R> {
    inner: R,
    n: u64,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        (self.progress)(self.n);
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_dockerd() {
        let s = Settings { insecure: vec!["reg.lan:5000".into(), "10.1.0.0/16".into()], mirrors: vec![] };
        let urls = |d: &str| endpoints(&s, d).into_iter().map(|e| e.url).collect::<Vec<_>>();
        assert_eq!(urls("127.0.0.1:5000"), ["http://127.0.0.1:5000"]);
        assert_eq!(urls("localhost:5000"), ["http://localhost:5000"]);
        assert_eq!(urls("[::1]:5000"), ["http://[::1]:5000"]);
        assert_eq!(urls("reg.lan:5000"), ["https://reg.lan:5000", "http://reg.lan:5000"]);
        assert_eq!(urls("10.1.2.3:80"), ["https://10.1.2.3:80", "http://10.1.2.3:80"]);
        assert_eq!(urls("10.2.2.3"), ["https://10.2.2.3"]);
        assert_eq!(urls("quay.io"), ["https://quay.io"]);
        assert_eq!(urls("docker.io"), [HUB_ENDPOINT]);
        let m = Settings { insecure: vec![], mirrors: vec!["http://127.0.0.1:9/".into()] };
        let eps = endpoints(&m, "docker.io");
        assert_eq!((eps[0].url.as_str(), eps[0].mirror, eps.len()), ("http://127.0.0.1:9", true, 2));
    }

    #[test]
    fn challenges_and_auth_headers() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: "registry.docker.io".into(),
                scope: "repository:library/busybox:pull,push".into()
            })
        );
        assert_eq!(parse_challenge("Basic realm=\"x\""), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(crate::b64::encode(b"alice:s3cret"), "YWxpY2U6czNjcmV0");
        assert_eq!(crate::b64::encode(b"ab"), "YWI=");
        assert_eq!(crate::b64::decode("YWI").unwrap(), b"ab");
        let h = crate::b64::encode(br#"{"username":"u","password":"p?>","serveraddress":"h:1"}"#)
            .replace('+', "-")
            .replace('/', "_");
        let a = AuthConfig::from_header(Some(&h)).unwrap();
        assert_eq!((a.username.as_str(), a.server_address.as_str()), ("u", "h:1"));
        assert!(AuthConfig::from_header(Some("e30=")).is_none(), "{{}} is anonymous");
        let a = AuthConfig { auth: crate::b64::encode(b"x:y:z"), ..Default::default() }.normalised().unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("x", "y:z"));
        assert_eq!(domain_of_server(HUB_AUTH_ADDRESS), "docker.io");
        assert_eq!(domain_of_server("http://127.0.0.1:5000/"), "127.0.0.1:5000");
    }
}
