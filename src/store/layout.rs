//! Every path of the state tree, built in one place.
//!
//! ```text
//! <root>/
//! ├── layout.json            {"version":1}; an unknown version refuses to open
//! ├── lock                   flock'd by the daemon for its whole life
//! ├── tmp/                   staging for atomic writes (same filesystem, so rename commits)
//! ├── images/                an OCI image layout: oci-layout, index.json, blobs/sha256/<hex>, ingest/
//! ├── layers/sha256/<chain-id>/diff/
//! ├── containers/<id>/       container.json, state.json, bundle/, upper/, work/, json.log
//! ├── names/<name>           holds the container id; created O_EXCL
//! ├── volumes/<name>/        _data/ and opts.json
//! ├── networks/<name>.json
//! ├── build/cache/
//! ├── distribution/          what the registry client remembers: sources/<blob-hex> (registries
//! │                          and repositories a blob is known in), compressed/<diff-id-hex>
//! │                          (the gzip blob made from an uncompressed layer for push)
//! └── registry/docker/registry/v2/
//! ```

use std::io;
use std::path::{Path, PathBuf};

use super::atomic;
use super::digest::Digest;

/// The on-disk layout version this code reads and writes.
pub const LAYOUT_VERSION: u64 = 1;

/// The default data root.
pub const DEFAULT_ROOT: &str = "/var/lib/tug";

/// A data root and the paths inside it.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens (creating if needed) the tree at `root`, refusing an unknown layout version.
    pub fn open(root: &Path) -> io::Result<Layout> {
        let layout = Layout { root: root.to_path_buf() };
        std::fs::create_dir_all(root)?;
        let version_file = layout.root.join("layout.json");
        match std::fs::read(&version_file) {
            Ok(data) => {
                let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", version_file.display()))
                })?;
                let found = v.get("version").and_then(|v| v.as_u64());
                if found != Some(LAYOUT_VERSION) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: unsupported layout version {found:?}", version_file.display()),
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                for dir in [layout.tmp(), layout.blobs_dir(), layout.ingest_dir(), layout.containers_dir()] {
                    std::fs::create_dir_all(dir)?;
                }
                let body = format!("{{\"version\":{LAYOUT_VERSION}}}\n");
                atomic::write(&version_file, body.as_bytes())?;
            }
            Err(e) => return Err(e),
        }
        Ok(layout)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("lock")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }
    pub fn blobs_dir(&self) -> PathBuf {
        self.images_dir().join("blobs").join("sha256")
    }
    pub fn blob(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }
    pub fn ingest_dir(&self) -> PathBuf {
        self.images_dir().join("ingest")
    }
    /// The OCI layout's `index.json`: the image store's names.
    pub fn images_index(&self) -> PathBuf {
        self.images_dir().join("index.json")
    }
    /// Parent of every unpacked layer directory.
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers").join("sha256")
    }
    /// One unpacked layer: `diff/` (the overlay lowerdir) and `layer.json` (diff ID, size).
    pub fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.layers_dir().join(chain_id.hex())
    }
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }
    pub fn name_file(&self, name: &str) -> PathBuf {
        self.root.join("names").join(name)
    }
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.root.join("volumes").join(name)
    }
    pub fn network_file(&self, name: &str) -> PathBuf {
        self.root.join("networks").join(format!("{name}.json"))
    }
    pub fn build_cache_dir(&self) -> PathBuf {
        self.root.join("build").join("cache")
    }
    /// The registry client's memory: blob sources and compressed forms of uncompressed layers.
    pub fn distribution_dir(&self) -> PathBuf {
        self.root.join("distribution")
    }
    pub fn registry_dir(&self) -> PathBuf {
        self.root.join("registry").join("docker").join("registry").join("v2")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_fresh_and_refuses_unknown_version() {
        let dir = atomic::tests::temp_dir("layout");
        let l = Layout::open(&dir).unwrap();
        assert!(l.blobs_dir().is_dir());
        assert_eq!(std::fs::read_to_string(dir.join("layout.json")).unwrap(), "{\"version\":1}\n");
        Layout::open(&dir).unwrap();
        std::fs::write(dir.join("layout.json"), "{\"version\":99}").unwrap();
        let err = Layout::open(&dir).unwrap_err().to_string();
        assert!(err.contains("unsupported layout version"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
