//! Manifests as the registry sees them: which media types it accepts, which blobs and child
//! manifests a document references (for validation on push and marking in gc), its subject
//! (for the referrers API) and the descriptor it contributes to a referrers list.

use serde_json::{json, Value};

use crate::store::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Layer media types whose blobs live elsewhere (`urls`): not required in the repository.
const FOREIGN_LAYERS: &[&str] = &[
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/// What the registry needs to know about a manifest document.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    /// Config and layers: blobs that must be in the repository.
    pub blobs: Vec<Digest>,
    /// Manifests an index refers to: must be revisions of the repository.
    pub children: Vec<Digest>,
    pub subject: Option<Digest>,
    /// `artifactType`, else (image manifests) the config's media type.
    pub artifact_type: Option<String>,
    pub annotations: Option<Value>,
}

/// Is `mt` a manifest type the registry stores?
pub fn is_manifest_type(mt: &str) -> bool {
    matches!(mt, OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_LIST)
}

/// Parses and validates a pushed manifest. `content_type` is the request's Content-Type; the
/// document's own `mediaType` must agree with it when both are given.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
    if !v.is_object() {
        return Err("manifest is not a JSON object".into());
    }
    if v["schemaVersion"].as_u64() != Some(2) {
        return Err("only schemaVersion 2 manifests are accepted".into());
    }
    // Content-Type may carry parameters (`; charset=utf-8`).
    let header = content_type.map(|c| c.split(';').next().unwrap_or("").trim()).filter(|c| is_manifest_type(c));
    let body = v["mediaType"].as_str();
    let media_type = match (header, body) {
        (Some(h), Some(b)) if h != b => return Err(format!("mediaType {b} does not match Content-Type {h}")),
        (_, Some(b)) if !is_manifest_type(b) => return Err(format!("unsupported manifest media type {b}")),
        (_, Some(b)) => b.to_string(),
        (Some(h), None) => h.to_string(),
        (None, None) => infer_type(&v).to_string(),
    };
    describe(&v, media_type)
}

/// Reads a stored manifest (already validated when it was pushed, or written by another
/// registry): lenient about the media type, which is inferred when the document lacks one.
pub fn read(bytes: &[u8]) -> Result<Manifest, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
    let media_type = match v["mediaType"].as_str() {
        Some(m) => m.to_string(),
        None if v["schemaVersion"].as_u64() == Some(1) => DOCKER_SCHEMA1_SIGNED.to_string(),
        None => infer_type(&v).to_string(),
    };
    if media_type == DOCKER_SCHEMA1_SIGNED || v["schemaVersion"].as_u64() == Some(1) {
        // Schema 1: layers are `fsLayers[].blobSum`; no config, no subject.
        let mut blobs = Vec::new();
        for l in v["fsLayers"].as_array().into_iter().flatten() {
            if let Some(d) = l["blobSum"].as_str().and_then(|s| Digest::parse(s).ok()) {
                blobs.push(d);
            }
        }
        return Ok(Manifest {
            media_type,
            blobs,
            children: Vec::new(),
            subject: None,
            artifact_type: None,
            annotations: None,
        });
    }
    describe(&v, media_type)
}

/// The Content-Type to serve a stored manifest with.
pub fn media_type_of(bytes: &[u8]) -> String {
    read(bytes).map(|m| m.media_type).unwrap_or_else(|_| OCI_MANIFEST.to_string())
}

fn infer_type(v: &Value) -> &'static str {
    if v.get("manifests").is_some() {
        OCI_INDEX
    } else {
        OCI_MANIFEST
    }
}

fn describe(v: &Value, media_type: String) -> Result<Manifest, String> {
    let mut m = Manifest {
        blobs: Vec::new(),
        children: Vec::new(),
        subject: None,
        artifact_type: v["artifactType"].as_str().map(str::to_string),
        annotations: v.get("annotations").filter(|a| a.is_object()).cloned(),
        media_type,
    };
    if let Some(s) = v.get("subject").filter(|s| !s.is_null()) {
        m.subject = Some(descriptor_digest(s, "subject")?);
    }
    if matches!(m.media_type.as_str(), OCI_INDEX | DOCKER_LIST) {
        let list = v["manifests"].as_array().ok_or("an index needs a manifests array")?;
        for (i, d) in list.iter().enumerate() {
            m.children.push(descriptor_digest(d, &format!("manifests[{i}]"))?);
        }
        return Ok(m);
    }
    let config = v.get("config").ok_or("an image manifest needs a config descriptor")?;
    m.blobs.push(descriptor_digest(config, "config")?);
    if m.artifact_type.is_none() {
        m.artifact_type = config["mediaType"].as_str().map(str::to_string);
    }
    for (i, l) in v["layers"].as_array().into_iter().flatten().enumerate() {
        let d = descriptor_digest(l, &format!("layers[{i}]"))?;
        let foreign = FOREIGN_LAYERS.contains(&l["mediaType"].as_str().unwrap_or(""))
            && l["urls"].as_array().is_some_and(|u| !u.is_empty());
        if !foreign {
            m.blobs.push(d);
        }
    }
    Ok(m)
}

fn descriptor_digest(d: &Value, what: &str) -> Result<Digest, String> {
    let s = d["digest"].as_str().ok_or_else(|| format!("{what}: descriptor without a digest"))?;
    if d.get("size").is_some_and(|s| !s.is_u64()) {
        return Err(format!("{what}: size is not a non-negative integer"));
    }
    Digest::parse(s).map_err(|e| format!("{what}: {e}"))
}

impl Manifest {
    /// The descriptor of this manifest in a referrers list.
    pub fn referrer_descriptor(&self, digest: &Digest, size: u64) -> Value {
        let mut d = json!({ "mediaType": self.media_type, "digest": digest.as_str(), "size": size });
        if let Some(t) = &self.artifact_type {
            d["artifactType"] = json!(t);
        }
        if let Some(a) = &self.annotations {
            d["annotations"] = a.clone();
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifest_references_and_subject() {
        let doc = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x-sig",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": d('a'), "size": 2},
            "layers": [{"mediaType": "x", "digest": d('b'), "size": 3},
                       {"mediaType": FOREIGN_LAYERS[0], "digest": d('c'), "size": 3, "urls": ["http://x"]}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d('e'), "size": 9},
            "annotations": {"k": "v"}
        });
        let m = parse(&serde_json::to_vec(&doc).unwrap(), Some("application/vnd.oci.image.manifest.v1+json")).unwrap();
        assert_eq!(m.blobs.iter().map(|b| b.to_string()).collect::<Vec<_>>(), vec![d('a'), d('b')]);
        assert_eq!(m.subject.unwrap().to_string(), d('e'));
        assert_eq!(m.artifact_type.as_deref(), Some("application/x-sig"));
    }

    #[test]
    fn index_and_refusals() {
        let idx =
            json!({"schemaVersion": 2, "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": d('1'), "size": 5}]});
        let m = parse(&serde_json::to_vec(&idx).unwrap(), Some(DOCKER_LIST)).unwrap();
        assert_eq!((m.media_type.as_str(), m.children.len()), (DOCKER_LIST, 1));
        assert!(parse(b"[]", None).is_err());
        assert!(parse(b"{\"schemaVersion\":1}", None).is_err());
        let wrong = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
        assert!(parse(&serde_json::to_vec(&wrong).unwrap(), Some(OCI_MANIFEST)).is_err());
        let bad_digest = json!({"schemaVersion": 2, "config": {"digest": "sha256:../../x", "size": 1}});
        assert!(parse(&serde_json::to_vec(&bad_digest).unwrap(), None).is_err());
    }
}
