//! Store-level tests: load, save, import, names and deletion against a temp data root.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::config::ConfigChanges;
use super::layer::tests::{file, tar_bytes};
use super::store::{Deleted, ImageStore, User};
use super::Error;
use crate::store::atomic::tests::temp_dir;
use crate::store::digest::Digest;
use crate::store::layout::Layout;

fn store(tag: &str) -> (PathBuf, ImageStore) {
    let root = temp_dir(tag);
    let layout = Layout::open(&root).unwrap();
    (root, ImageStore::open(&layout).unwrap())
}

/// A legacy `docker save` archive; manifest.json is written last, as a streaming test should have it.
fn archive(layers: &[Vec<u8>], tags: &[&str], config_extra: Value) -> (Vec<u8>, Digest) {
    let diff_ids: Vec<String> = layers.iter().map(|l| super::layer::diff_id(&l[..]).unwrap().to_string()).collect();
    let mut config = json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": { "Cmd": ["sh"], "Labels": { "a": "b" } },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": [{ "created": "2024-01-02T03:04:05Z", "created_by": "test" }],
    });
    if let (Some(c), Some(extra)) = (config.as_object_mut(), config_extra.as_object()) {
        c.extend(extra.clone());
    }
    let config = serde_json::to_vec(&config).unwrap();
    let id = Digest::of(&config);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&format!("{}.json", id.hex()), &config);
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let p = format!("l{i}/layer.tar");
        add(&p, l);
        paths.push(p);
    }
    let manifest = json!([{ "Config": format!("{}.json", id.hex()), "RepoTags": tags, "Layers": paths }]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    (b.into_inner().unwrap(), id)
}

fn base_layer() -> Vec<u8> {
    tar_bytes(&[file("bin/sh", b"#!fake shell"), file("etc/hostname", b"box")])
}

/// Every path under `root` with its size, for "the store is unchanged" checks.
fn listing(root: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = fs::symlink_metadata(e.path()).unwrap();
            out.push((
                e.path().strip_prefix(root).unwrap().display().to_string(),
                if md.is_dir() { 0 } else { md.len() },
            ));
            if md.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn load(s: &ImageStore, data: &[u8]) -> Result<Vec<String>, Error> {
    let mut msgs = Vec::new();
    s.load(data, &mut |m| msgs.push(m.to_string()))?;
    Ok(msgs)
}

fn nobody(_: &Digest) -> Option<User> {
    None
}

#[test]
fn load_resolve_and_inspect() {
    let (root, s) = store("img-load");
    let top = tar_bytes(&[file("etc/hostname", b"changed"), file(".wh.bin", b"")]);
    let (data, id) = archive(&[base_layer(), top], &["busybox:latest", "localhost:5000/x:1"], json!({}));
    let msgs = load(&s, &data).unwrap();
    assert_eq!(msgs, vec!["Loaded image: busybox:latest", "Loaded image: localhost:5000/x:1"]);
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        "localhost:5000/x:1",
        id.as_str(),
        id.hex(),
        &id.hex()[..12],
        &format!("sha256:{}", &id.hex()[..8]),
    ] {
        assert_eq!(s.resolve(name).unwrap_or_else(|e| panic!("{name}: {e}")).id, id, "{name}");
    }
    match s.resolve("nope") {
        Err(Error::NotFound(m)) => assert_eq!(m, "No such image: nope:latest"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(s.resolve("Bad/Name"), Err(Error::InvalidInput(_))));
    let img = s.resolve("busybox").unwrap();
    assert_eq!(img.repo_tags, vec!["busybox:latest", "localhost:5000/x:1"]);
    assert_eq!(img.size, 12 + 3 + 7);
    let dirs = s.layer_dirs(&img).unwrap();
    assert_eq!(dirs.len(), 2);
    assert_eq!(fs::read(dirs[0].join("bin/sh")).unwrap(), b"#!fake shell");
    assert_eq!(fs::read(dirs[1].join("etc/hostname")).unwrap(), b"changed");
    // Unpacking on demand: remove a layer dir and ask again.
    fs::remove_dir_all(dirs[1].parent().unwrap()).unwrap();
    assert_eq!(s.layer_dirs(&img).unwrap(), dirs);
    assert!(dirs[1].join("etc/hostname").is_file());

    let j = s.inspect_json(&img);
    assert_eq!(j["Id"], id.as_str());
    assert_eq!(j["RepoTags"], json!(["busybox:latest", "localhost:5000/x:1"]));
    assert_eq!(j["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(j["Config"]["Cmd"], json!(["sh"]));
    assert_eq!(j["Os"], "linux");
    let h = s.history_json(&img);
    assert_eq!(h[0]["Id"], id.as_str());
    assert_eq!(h[0]["Created"], 1_704_164_645);
    let sum = s.summary_json(&img);
    assert_eq!((sum["Created"].as_i64(), sum["Labels"]["a"].as_str()), (Some(1_704_164_645), Some("b")));
    assert_eq!(s.list().len(), 1);
    // A reopened store sees the same thing.
    let again = ImageStore::open(&Layout::open(&root).unwrap()).unwrap();
    assert_eq!(again.resolve("localhost:5000/x:1").unwrap().id, id);
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn save_load_round_trip_and_skopeo() {
    let (root, s) = store("img-save");
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&tar_bytes(&[file("gz/file", b"compressed")])).unwrap();
        e.finish().unwrap()
    };
    let (data, id) = archive(&[base_layer(), gz], &["busybox:latest", "busybox:1"], json!({}));
    load(&s, &data).unwrap();
    let (untagged, uid) = archive(&[base_layer()], &[], json!({ "created": "2020-01-01T00:00:00Z" }));
    assert_eq!(load(&s, &untagged).unwrap(), vec![format!("Loaded image ID: {uid}")]);
    let out = root.join("saved.tar");
    s.save(&["busybox".to_string(), uid.hex()[..12].to_string()], fs::File::create(&out).unwrap()).unwrap();

    let (root2, s2) = store("img-save2");
    let msgs = load(&s2, &fs::read(&out).unwrap()).unwrap();
    assert!(
        msgs.contains(&"Loaded image: busybox:1".to_string()) && msgs.contains(&format!("Loaded image ID: {uid}")),
        "{msgs:?}"
    );
    assert_eq!(s2.resolve("busybox:latest").unwrap().id, id);
    assert_eq!(s2.resolve(uid.as_str()).unwrap().id, uid);
    assert!(s2.layer_dirs(&s2.resolve("busybox").unwrap()).unwrap()[1].join("gz/file").is_file());

    // The OCI half alone (no manifest.json) loads too, names from the containerd annotation.
    let mut oci = tar::Builder::new(Vec::new());
    let mut ar = tar::Archive::new(fs::File::open(&out).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        if name != "manifest.json" && name != "repositories" {
            let h = e.header().clone();
            oci.append(&h, &mut e).unwrap();
        }
    }
    let (root3, s3) = store("img-save3");
    load(&s3, &oci.into_inner().unwrap()).unwrap();
    assert_eq!(s3.resolve("busybox:1").unwrap().id, id);

    // skopeo reads multi-image archives only with an explicit image; a single-image save needs none.
    let o = std::process::Command::new("skopeo")
        .args(["inspect", "--config", &format!("docker-archive:{}:busybox:1", out.display())])
        .output()
        .expect("skopeo is installed");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let single = root.join("single.tar");
    s.save(&["busybox:latest".to_string()], fs::File::create(&single).unwrap()).unwrap();
    for transport in ["docker-archive", "oci-archive"] {
        let o = std::process::Command::new("skopeo")
            .args(["inspect", "--raw", &format!("{transport}:{}", single.display())])
            .output()
            .unwrap();
        assert!(o.status.success(), "{transport}: {}", String::from_utf8_lossy(&o.stderr));
        let raw: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(raw["config"]["digest"], id.as_str(), "{transport}");
    }
    for r in [root, root2, root3] {
        fs::remove_dir_all(r).unwrap();
    }
}

#[test]
fn bad_archives_leave_the_store_unchanged() {
    let (root, s) = store("img-bad");
    let (good, _) = archive(&[base_layer()], &["keep:1"], json!({}));
    load(&s, &good).unwrap();
    let before = listing(&root);

    let other = tar_bytes(&[file("x", b"y")]);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    // The config claims a different diff ID than the layer has.
    let (mut wrong, _) = archive(std::slice::from_ref(&other), &["bad:1"], json!({}));
    let real = super::layer::diff_id(&other[..]).unwrap();
    let pos = wrong.windows(64).position(|w| w == real.hex().as_bytes()).unwrap();
    let cfg_len = wrong.len(); // keep the tar valid: flip one hex digit in place
    wrong[pos] = if wrong[pos] == b'0' { b'1' } else { b'0' };
    assert_eq!(wrong.len(), cfg_len);
    cases.push(("wrong diff id", wrong, "diff ID mismatch"));
    // manifest.json that is not JSON.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "manifest.json", &b"[{oop"[..]).unwrap();
    cases.push(("corrupt manifest.json", b.into_inner().unwrap(), "manifest.json"));
    // Truncated in the middle of a layer.
    let (full, _) = archive(&[tar_bytes(&[file("big", &[1u8; 5000])])], &["trunc:1"], json!({}));
    cases.push(("truncated", full[..3000].to_vec(), "invalid archive"));
    // A hostile layer with a correct diff ID.
    let hostile = tar_bytes(&[file("../../escape", b"x")]);
    cases.push(("hostile layer", archive(&[hostile], &["evil:1"], json!({})).0, "escapes"));
    // Layers listed that the archive lacks.
    let (mut missing, _) = archive(&[base_layer()], &["miss:1"], json!({}));
    let p = missing.windows(12).rposition(|w| w == b"l0/layer.tar").unwrap();
    missing[p] = b'm';
    cases.push(("missing layer", missing, "not found"));
    cases.push(("not an archive", b"hello".to_vec(), "invalid archive"));
    for (name, data, want) in cases {
        let err = load(&s, &data).expect_err(name);
        assert!(matches!(err, Error::InvalidInput(_)), "{name}: {err:?}");
        assert!(err.to_string().contains(want), "{name}: {err}");
        assert_eq!(listing(&root), before, "{name} changed the store");
    }
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn tag_remove_and_prune() {
    let (root, s) = store("img-rm");
    let (a, ida) = archive(&[base_layer()], &["busybox:latest"], json!({}));
    load(&s, &a).unwrap();
    let (b, idb) = archive(&[base_layer(), tar_bytes(&[file("b", b"b")])], &["other:1"], json!({}));
    load(&s, &b).unwrap();
    s.tag("busybox", "mine:v2").unwrap();
    s.tag(&ida.hex()[..12], "localhost:5000/mine").unwrap();
    assert_eq!(
        s.resolve("mine:v2").unwrap().repo_tags,
        vec!["busybox:latest", "localhost:5000/mine:latest", "mine:v2"]
    );
    assert!(matches!(s.tag("busybox", "Bad"), Err(Error::InvalidInput(_))));
    assert!(matches!(s.tag("nope", "x"), Err(Error::NotFound(_))));

    // Untag while other tags remain.
    assert_eq!(s.remove("mine:v2", false, &nobody).unwrap(), vec![Deleted::Untagged("mine:v2".into())]);
    // In use by a container: refusing to drop the last name, or the image by ID.
    let stopped = |d: &Digest| (d == &ida).then(|| User { container: "c0ffee".repeat(10), running: false });
    let running = |d: &Digest| (d == &ida).then(|| User { container: "abcdef".repeat(10), running: true });
    s.remove("localhost:5000/mine", false, &nobody).unwrap();
    let err = s.remove("busybox", false, &stopped).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "conflict: unable to remove repository reference \"busybox\" (must force) - container c0ffeec0ffee is using its referenced image {}",
            &ida.hex()[..12]
        )
    );
    let err = s.remove(ida.as_str(), true, &running).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container abcdefabcdef",
            &ida.hex()[..12]
        )
    );
    let err = s.remove(&ida.hex()[..12], false, &stopped).unwrap_err().to_string();
    assert!(err.contains("(must be forced) - image is being used by stopped container c0ffeec0ffee"), "{err}");
    // Forced with a stopped user: untagged, kept dangling (its layers are that container's lowerdirs).
    assert_eq!(s.remove("busybox", true, &stopped).unwrap(), vec![Deleted::Untagged("busybox:latest".into())]);
    assert!(s.resolve(ida.as_str()).unwrap().repo_tags.is_empty());

    // Removing `other`: the shared base layer stays for the dangling image.
    let base_chain = s.resolve(idb.as_str()).unwrap().chain_ids[0].clone();
    let top_chain = s.resolve(idb.as_str()).unwrap().chain_ids[1].clone();
    let recs = s.remove("other:1", false, &nobody).unwrap();
    assert_eq!(
        recs,
        vec![
            Deleted::Untagged("other:1".into()),
            Deleted::Deleted(idb.to_string()),
            Deleted::Deleted(top_chain.to_string())
        ]
    );
    assert!(s.layout().layer_dir(&base_chain).is_dir() && !s.layout().layer_dir(&top_chain).exists());
    assert!(matches!(s.resolve("other:1"), Err(Error::NotFound(_))));

    // Prune: nothing while in use, then the dangling image and its layer.
    assert!(s.prune(true, &stopped).unwrap().0.is_empty());
    let (recs, freed) = s.prune(true, &nobody).unwrap();
    assert_eq!(recs, vec![Deleted::Deleted(ida.to_string()), Deleted::Deleted(base_chain.to_string())]);
    assert_eq!(freed, 15);
    assert!(s.list().is_empty());
    assert_eq!(fs::read_dir(s.layout().blobs_dir()).unwrap().count(), 0, "all blobs gone");
    assert_eq!(fs::read_dir(s.layout().layers_dir()).unwrap().count(), 0, "all layers gone");

    // Multiple repositories by ID needs force; then everything is untagged and deleted.
    load(&s, &a).unwrap();
    s.tag("busybox", "again:1").unwrap();
    let err = s.remove(&ida.hex()[..12], false, &nobody).unwrap_err().to_string();
    assert!(err.ends_with("(must be forced) - image is referenced in multiple repositories"), "{err}");
    let recs = s.remove(&ida.hex()[..12], true, &nobody).unwrap();
    assert_eq!(recs.len(), 4, "{recs:?}");
    // prune -a keeps tagged images only when used.
    load(&s, &a).unwrap();
    assert_eq!(s.prune(true, &nobody).unwrap().0.len(), 0);
    assert_eq!(s.prune(false, &nobody).unwrap().0.len(), 3);
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn import_with_changes() {
    let (root, s) = store("img-import");
    let changes = ConfigChanges::parse(&[
        r#"CMD ["/bin/sh", "-c", "echo hi"]"#.into(),
        "ENTRYPOINT /entry --flag".into(),
        r#"ENV A=1 B="two words""#.into(),
        "ENV LEGACY some value".into(),
        "WORKDIR /srv".into(),
        "EXPOSE 80 53/udp".into(),
        "USER 1000:1000".into(),
        r#"LABEL org.x="y z""#.into(),
        r#"VOLUME ["/data"]"#.into(),
    ])
    .unwrap();
    let id = s.import(&base_layer()[..], &changes, Some("imported:v1")).unwrap();
    let img = s.resolve("imported:v1").unwrap();
    assert_eq!(img.id, id);
    let c = &img.config["config"];
    assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
    assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/entry --flag"]));
    assert_eq!(c["Env"], json!(["A=1", "B=two words", "LEGACY=some value"]));
    assert_eq!((c["WorkingDir"].as_str(), c["User"].as_str()), (Some("/srv"), Some("1000:1000")));
    assert_eq!(c["ExposedPorts"], json!({ "80/tcp": {}, "53/udp": {} }));
    assert_eq!(c["Labels"], json!({ "org.x": "y z" }));
    assert_eq!(c["Volumes"], json!({ "/data": {} }));
    assert_eq!(s.history_json(&img)[0]["Comment"], "Imported from -");
    assert!(s.layer_dirs(&img).unwrap()[0].join("bin/sh").is_file());
    // Untagged import and a hostile rootfs.
    let mut message = ConfigChanges::default();
    message.comment = "msg".into();
    let untagged = s.import(&base_layer()[..], &message, None).unwrap();
    let untagged = s.resolve(untagged.as_str()).unwrap();
    assert!(untagged.repo_tags.is_empty());
    assert_eq!(untagged.config["comment"], "msg");
    let before = listing(&root);
    let evil = tar_bytes(&[file("../x", b"")]);
    assert!(matches!(s.import(&evil[..], &ConfigChanges::default(), Some("evil")), Err(Error::InvalidInput(_))));
    assert_eq!(listing(&root), before);
    for bad in ["FROM x", "EXPOSE http", "ENV", "LABEL novalue"] {
        assert!(ConfigChanges::parse(&[bad.to_string()]).is_err(), "{bad}");
    }
    fs::remove_dir_all(&root).unwrap();
}

/// A real image: the archive `scripts/busybox-image.sh` builds (as `docker save` would).
#[test]
fn loads_a_real_busybox_archive() {
    let tmp = temp_dir("img-busybox-archive");
    let path = tmp.join("busybox.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-image.sh");
    let st = std::process::Command::new(script).arg(&path).output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let (root, s) = store("img-busybox");
    let msgs = load(&s, &fs::read(&path).unwrap()).unwrap();
    assert_eq!(msgs, vec!["Loaded image: localhost/busybox:latest"]);
    let img = s.resolve("localhost/busybox").unwrap();
    let dirs = s.layer_dirs(&img).unwrap();
    assert!(fs::symlink_metadata(dirs[0].join("bin/sh")).is_ok());
    let out = root.join("out.tar");
    s.save(&["localhost/busybox".into()], fs::File::create(&out).unwrap()).unwrap();
    let (root2, s2) = store("img-busybox2");
    load(&s2, &fs::read(&out).unwrap()).unwrap();
    assert_eq!(s2.resolve("localhost/busybox").unwrap().id, img.id);
    for d in [root, root2, tmp] {
        fs::remove_dir_all(d).unwrap();
    }
}
