//! Docker image references: `busybox`, `user/repo:tag`, `host:5000/a/b@sha256:…`.
//!
//! Parsing normalises to the full form (`docker.io/library/busybox:latest`) that the store keys on,
//! and [`Reference::familiar`] gives back the short form Docker prints. The grammar is the one the
//! distribution project documents for references; errors use Docker's wording so the CLI output
//! matches. Telling a name from an image ID is [`id_prefix`]'s job.

use std::fmt;

use crate::store::digest::Digest;

/// The registry a reference without a domain belongs to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
/// The tag a reference without tag or digest gets.
pub const DEFAULT_TAG: &str = "latest";
const NAME_MAX: usize = 255;

/// A parsed, normalised reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `quay.io`.
    pub domain: String,
    /// `library/busybox`, `user/repo`, `a/b/c`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference as the CLI accepts it, adding `:latest` when neither tag nor digest is given.
    pub fn parse(s: &str) -> Result<Reference, String> {
        let mut r = Reference::parse_name_only(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses without adding a default tag (for `docker tag SRC REPO` and `rmi` matching).
    pub fn parse_name_only(s: &str) -> Result<Reference, String> {
        let bad = || format!("invalid reference format: {s:?}");
        if s.is_empty() {
            return Err("invalid reference format".to_string());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d).map_err(|_| format!("invalid reference format: {s}"))?)),
            None => (s, None),
        };
        // The tag is after the last ':' only when no '/' follows it; otherwise the ':' is a port.
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(format!("invalid reference format: invalid tag {t:?}"));
            }
        }
        if name.is_empty() || name.len() > NAME_MAX {
            return Err(if name.is_empty() {
                bad()
            } else {
                format!("invalid reference format: repository name must not be more than {NAME_MAX} characters")
            });
        }
        let (domain, path) = split_domain(name);
        if !valid_domain(&domain) {
            return Err(bad());
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!("invalid reference format: repository name ({path}) must be lowercase"));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(bad());
        }
        Ok(Reference { domain, path, tag: tag.map(str::to_string), digest })
    }

    /// `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short repository name Docker prints: `busybox`, `user/repo`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The short form with tag and digest: `busybox:latest`, `localhost:5000/x@sha256:…`.
    pub fn familiar(&self) -> String {
        self.suffixed(self.familiar_name())
    }

    /// This reference with only its tag (no digest), or `None` if it has no tag.
    pub fn tagged(&self) -> Option<Reference> {
        self.tag.as_ref().map(|_| Reference { digest: None, ..self.clone() })
    }

    fn suffixed(&self, mut s: String) -> String {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.suffixed(self.name()))
    }
}

/// If `s` can only be an image ID or ID prefix (`sha256:ab12…`, or bare lowercase hex), its hex part.
///
/// A bare hex string is also a valid repository name, so the store tries it as a name first and as
/// an ID prefix second, as Docker does; a 64-character hex string is never taken as a name.
pub fn id_prefix(s: &str) -> Option<&str> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    let ok =
        !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then_some(hex)
}

/// Splits `name` into (domain, path), applying Docker's defaults: the first component is a domain
/// only if it has a `.` or `:`, is `localhost`, or has uppercase letters (never a valid path).
fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = if domain == LEGACY_DOMAIN { DEFAULT_DOMAIN.to_string() } else { domain };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') { format!("{OFFICIAL_PREFIX}{path}") } else { path };
    (domain, path)
}

/// `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty() && b.len() <= 128 && word(b[0]) && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`: alphanumeric runs joined by one separator each.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// Host labels joined by `.`, an optional `:port`, or a bracketed IPv6 address with optional port.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else { return false };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("x", Some(port)),
                None => return false,
            },
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
    };
    host.split('.').all(label_ok) && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_prints_familiar() {
        let d = format!("sha256:{}", "a".repeat(64));
        let table: &[(&str, &str, &str)] = &[
            ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
            ("user/repo", "docker.io/user/repo:latest", "user/repo:latest"),
            ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("index.docker.io/library/x:1", "docker.io/library/x:1", "x:1"),
            ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            ("localhost:5000/x:1", "localhost:5000/x:1", "localhost:5000/x:1"),
            ("host:5000/a/b:tag", "host:5000/a/b:tag", "host:5000/a/b:tag"),
            ("quay.io/a/b/c", "quay.io/a/b/c:latest", "quay.io/a/b/c:latest"),
            ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
            ("a-b.c/d__e_f", "a-b.c/d__e_f:latest", "a-b.c/d__e_f:latest"),
        ];
        for (input, full, familiar) in table {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *full, "{input}");
            assert_eq!(r.familiar(), *familiar, "{input}");
        }
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!((r.tag.as_deref(), r.familiar()), (None, format!("busybox@{d}")));
        let r = Reference::parse(&format!("localhost:5000/x:1@{d}")).unwrap();
        assert_eq!(r.to_string(), format!("localhost:5000/x:1@{d}"));
        assert_eq!(r.tagged().unwrap().to_string(), "localhost:5000/x:1");
        assert_eq!(Reference::parse_name_only("busybox").unwrap().tag, None);
    }

    #[test]
    fn rejects_with_docker_wording() {
        assert_eq!(
            Reference::parse("library/Busybox").unwrap_err(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            Reference::parse("Busybox").unwrap_err(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        for bad in [
            "",
            ":tag",
            "a/../b",
            "a/./b",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "x:-tag",
            "x:.tag",
            "busybox@sha256:abc",
            "busybox@md5:aa",
            "bad host/x",
            "x y",
            "a/b/",
            "/a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Reference::parse(&format!("x:{}", "a".repeat(129))).is_err());
        assert!(Reference::parse(&format!("x:{}", "a".repeat(128))).is_ok());
        // An uppercase first component is a domain (Docker's rule), so this one is valid.
        assert_eq!(Reference::parse("Host/x").unwrap().domain, "Host");
    }

    #[test]
    fn recognises_id_prefixes() {
        assert_eq!(id_prefix("sha256:abc"), Some("abc"));
        assert_eq!(id_prefix("0123abcdef"), Some("0123abcdef"));
        assert_eq!(id_prefix("busybox"), None);
        assert_eq!(id_prefix("sha256:"), None);
        assert_eq!(id_prefix(&"a".repeat(65)), None);
    }
}
