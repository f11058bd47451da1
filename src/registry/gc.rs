//! `tug registry gc`: mark every blob some manifest needs, sweep the rest.
//!
//! Mark: for every repository, the manifest revisions (with `--delete-untagged`: only the tagged
//! ones, the manifests an index among them lists, and the manifests whose subject is one of
//! those) and, for each, the manifest blob itself and its config and layers.
//!
//! Sweep, safe while `tug registry serve` runs on the same root. The rule: **nothing whose mtime
//! is at or after the cutoff (gc start minus `--min-age`) is deleted, and deletion happens only
//! under the exclusive gc lock.** It holds because every commit in the server — an upload
//! finished, a blob mounted, a manifest pushed — holds the same lock shared and, inside it,
//! sets to now the mtime of the blob data (and, for an index, of the child revision links and
//! their blobs) that it makes reachable. The gc start is taken under the exclusive lock, on the
//! filesystem's clock: a commit is then either wholly before it (and the marking sees it) or
//! wholly after it (and what it needs is fresh, so kept). A commit after the sweep finds what the
//! sweep removed gone, and the push is refused rather than left dangling. Uploads in flight are separate files under
//! `_uploads`, which the blob sweep never reads; an upload directory is removed only once it has
//! been idle for [`UPLOAD_MAX_AGE`] and no request holds its data file locked.
//!
//! `--min-age` (default an hour) also spares layers a client pushed just before gc started and
//! whose manifest is still on its way.

use std::collections::BTreeSet;
use std::fs::File;
use std::time::{Duration, SystemTime};

use nix::fcntl::{Flock, FlockArg};

use super::manifest;
use super::storage::Storage;
use crate::store::digest::Digest;

/// Uploads idle this long are abandoned (distribution purges after a week too).
pub const UPLOAD_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How deep index → manifest chains are followed while marking.
const MAX_DEPTH: usize = 8;

/// What a run found and did.
#[derive(Debug, Default)]
pub struct Report {
    pub marked: usize,
    /// Blobs deleted (or, in a dry run, that would be).
    pub swept: Vec<Digest>,
    pub bytes: u64,
    /// (repository, manifest) revisions removed as untagged.
    pub untagged: Vec<(String, Digest)>,
    /// Blobs left because they are younger than the cutoff.
    pub kept_young: usize,
    pub uploads_removed: usize,
}

/// Options of one run.
pub struct Options {
    pub dry_run: bool,
    pub delete_untagged: bool,
    pub min_age: Duration,
}

/// Runs a collection over the storage tree.
pub fn run(s: &Storage, opts: &Options) -> Result<Report, String> {
    let start = s.gc_start().map_err(|e| format!("gc lock: {e}"))?;
    let cutoff = start.checked_sub(opts.min_age).unwrap_or(SystemTime::UNIX_EPOCH);
    let young = |t: Option<SystemTime>| t.is_none_or(|t| t >= cutoff);
    let mut report = Report::default();

    // Mark.
    let mut marked: BTreeSet<Digest> = BTreeSet::new();
    let mut untagged: Vec<(String, Digest)> = Vec::new();
    for repo in s.all_repository_names() {
        let revisions = s.revisions(&repo);
        let roots: Vec<Digest> = if opts.delete_untagged {
            s.tags(&repo).unwrap_or_default().iter().filter_map(|t| s.resolve_tag(&repo, t)).collect()
        } else {
            revisions.clone()
        };
        let kept = mark_repo(s, &repo, &roots, &revisions, &mut marked);
        untagged.extend(revisions.into_iter().filter(|r| !kept.contains(r)).map(|r| (repo.clone(), r)));
    }
    report.marked = marked.len();

    let _lock = if opts.dry_run { None } else { Some(s.sweep_guard().map_err(|e| format!("gc lock: {e}"))?) };

    // Untagged revisions (their blobs are unmarked unless something kept needs them).
    for (repo, rev) in untagged {
        if young(s.revision_mtime(&repo, &rev)) {
            continue;
        }
        if !opts.dry_run {
            s.remove_revision(&repo, &rev).map_err(|e| format!("{repo}: removing {rev}: {e}"))?;
        }
        report.untagged.push((repo, rev));
    }

    // Blobs.
    for d in s.all_blobs() {
        if marked.contains(&d) {
            continue;
        }
        if young(s.blob_mtime(&d)) {
            report.kept_young += 1;
            continue;
        }
        report.bytes += s.blob_size(&d).unwrap_or(0);
        if !opts.dry_run {
            s.remove_blob(&d).map_err(|e| format!("removing blob {d}: {e}"))?;
        }
        report.swept.push(d);
    }

    // Repository links to what is gone, and abandoned uploads.
    if !opts.dry_run {
        let gone: BTreeSet<&Digest> = report.swept.iter().collect();
        for repo in s.all_repository_names() {
            for l in s.layer_links(&repo) {
                if gone.contains(&l) {
                    s.unlink_blob(&repo, &l).map_err(|e| format!("{repo}: unlinking {l}: {e}"))?;
                }
            }
            for id in s.uploads(&repo) {
                if remove_stale_upload(s, &repo, &id, start) {
                    report.uploads_removed += 1;
                }
            }
        }
    }
    Ok(report)
}

/// Marks what `roots` reach in `repo`; returns the manifests kept. Referrers (manifests whose
/// subject is kept) are kept with their subject.
fn mark_repo(
    s: &Storage,
    repo: &str,
    roots: &[Digest],
    revisions: &[Digest],
    marked: &mut BTreeSet<Digest>,
) -> BTreeSet<Digest> {
    let mut kept: BTreeSet<Digest> = BTreeSet::new();
    let subjects: Vec<(Digest, Option<Digest>)> = revisions
        .iter()
        .map(|r| (r.clone(), s.manifest(repo, r).and_then(|b| manifest::read(&b).ok()).and_then(|m| m.subject)))
        .collect();
    let mut queue: Vec<(Digest, usize)> = roots.iter().map(|r| (r.clone(), 0)).collect();
    // Each round adds at least one manifest, so there are at most `revisions + roots` rounds.
    for _ in 0..=revisions.len() + roots.len() {
        while let Some((d, depth)) = queue.pop() {
            if !kept.insert(d.clone()) {
                continue;
            }
            marked.insert(d.clone());
            let Some(m) = s.manifest(repo, &d).and_then(|b| manifest::read(&b).ok()) else { continue };
            marked.extend(m.blobs.iter().cloned());
            if depth < MAX_DEPTH {
                queue.extend(m.children.iter().map(|c| (c.clone(), depth + 1)));
            }
        }
        let referrers: Vec<Digest> = subjects
            .iter()
            .filter(|(r, subj)| !kept.contains(r) && subj.as_ref().is_some_and(|x| kept.contains(x)))
            .map(|(r, _)| r.clone())
            .collect();
        if referrers.is_empty() {
            break;
        }
        queue.extend(referrers.into_iter().map(|r| (r, 0)));
    }
    kept
}

/// Removes an upload idle since before `start - UPLOAD_MAX_AGE` that no request is writing.
fn remove_stale_upload(s: &Storage, repo: &str, id: &str, start: SystemTime) -> bool {
    let data = s.upload_data(repo, id);
    let idle_since = std::fs::metadata(&data).and_then(|m| m.modified()).ok();
    let limit = start.checked_sub(UPLOAD_MAX_AGE).unwrap_or(SystemTime::UNIX_EPOCH);
    if idle_since.is_none_or(|t| t >= limit) {
        return false;
    }
    // A request appending to it holds this lock.
    let Ok(f) = File::open(&data) else { return false };
    let Ok(_busy) = Flock::lock(f, FlockArg::LockExclusiveNonblock) else { return false };
    s.cancel_upload(repo, id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &std::path::Path, secs: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs);
        File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
    }

    fn push_blob(s: &Storage, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::of(data);
        let id = s.start_upload(repo).unwrap();
        s.append(repo, &id, None, &mut &data[..]).unwrap();
        s.finish_upload(repo, &id, &d).unwrap();
        d
    }

    #[test]
    fn sweeps_old_unreferenced_keeps_referenced_and_young() {
        let root = crate::store::atomic::tests::temp_dir("registry-gc");
        let s = Storage::new(&root);
        let config = push_blob(&s, "r", b"{}");
        let layer = push_blob(&s, "r", b"layer");
        let orphan = push_blob(&s, "r", b"orphan");
        let fresh = push_blob(&s, "r", b"fresh");
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": "x", "digest": config.as_str(), "size": 2},
            "layers": [{"mediaType": "y", "digest": layer.as_str(), "size": 5}]});
        let mb = serde_json::to_vec(&m).unwrap();
        let md = Digest::of(&mb);
        s.put_manifest("r", &mb, &md, Some("v1"), || Ok(())).unwrap();
        for d in [&config, &layer, &orphan, &md] {
            age(&s.blob_data(d), 7200);
        }
        let opts = Options { dry_run: true, delete_untagged: false, min_age: Duration::from_secs(3600) };
        let dry = run(&s, &opts).unwrap();
        assert_eq!(dry.swept, vec![orphan.clone()]);
        assert!(s.blob_size(&orphan).is_some(), "a dry run deletes nothing");
        let r = run(&s, &Options { dry_run: false, ..opts }).unwrap();
        assert_eq!((r.swept, r.kept_young), (vec![orphan.clone()], 1));
        assert!(s.blob_size(&orphan).is_none() && s.repo_blob("r", &orphan).is_none());
        for d in [&config, &layer, &md, &fresh] {
            assert!(s.blob_size(d).is_some(), "{d}");
        }

        // Untagged: the manifest goes once its tag does (and it is old enough).
        s.delete_tag("r", "v1").unwrap();
        age(
            &root.join(format!("docker/registry/v2/repositories/r/_manifests/revisions/sha256/{}/link", md.hex())),
            7200,
        );
        let opts = Options { dry_run: false, delete_untagged: true, min_age: Duration::from_secs(3600) };
        let r = run(&s, &opts).unwrap();
        assert_eq!(r.untagged, vec![("r".to_string(), md.clone())]);
        assert!(s.blob_size(&layer).is_none() && s.blob_size(&md).is_none());
        assert!(s.blob_size(&fresh).is_some());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
