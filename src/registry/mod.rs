//! `tug-registry` / `tug registry`: an OCI distribution (v1.1) registry over the distribution
//! registry's own filesystem layout, so a directory is interchangeable with Debian's
//! `docker-registry`. `serve` answers the API; `gc` collects unreferenced blobs, also while a
//! server runs.
//!
//! Not here: token authentication and schema 1 manifests on push.

pub mod api;
pub mod gc;
pub mod handlers;
pub mod manifest;
pub mod server;
pub mod storage;
pub mod tls;

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Where `--root` points by default: the registry directory of the state tree (DESIGN §3).
const DEFAULT_ROOT: &str = "/var/lib/tug/registry";

#[derive(Parser, Debug)]
#[command(name = "tug-registry", about = "OCI distribution registry", disable_version_flag = true)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Serve the registry API.
    Serve(ServeArgs),
    /// Delete blobs no manifest references.
    Gc(GcArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:5000].
    #[arg(long)]
    addr: Option<String>,
    /// Storage root (holds docker/registry/v2, as distribution's rootdirectory) [default:
    /// /var/lib/tug/registry].
    #[arg(long)]
    root: Option<PathBuf>,
    /// Refuse every write (push, delete).
    #[arg(long)]
    read_only: bool,
    /// Require HTTP Basic authentication against this htpasswd file (bcrypt entries).
    #[arg(long, value_name = "FILE")]
    htpasswd: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1, unencrypted).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Connections served at once; more wait to be accepted [default: 64].
    #[arg(long)]
    max_connections: Option<usize>,
    /// A JSON file with any of these settings: `addr`, `root`, `read-only`, `htpasswd`,
    /// `tls-cert`, `tls-key`, `max-connections`. Flags given on the command line win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The config file: the flags' names, every key optional; unknown keys are errors, so a typo is
/// not silently ignored.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ServeConfig {
    addr: Option<String>,
    root: Option<PathBuf>,
    #[serde(default)]
    read_only: bool,
    htpasswd: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_connections: Option<usize>,
}

impl ServeArgs {
    /// Fills what the flags left unset from the config file, then the defaults.
    fn resolved(mut self) -> Result<(ServeArgs, String, PathBuf, usize), String> {
        let cfg = match &self.config {
            Some(p) => {
                let data = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
                let de = &mut serde_json::Deserializer::from_slice(&data);
                serde_path_to_error::deserialize::<_, ServeConfig>(de)
                    .map_err(|e| format!("{}: {}: {}", p.display(), e.path(), e.inner()))?
            }
            None => ServeConfig::default(),
        };
        self.read_only |= cfg.read_only;
        self.htpasswd = self.htpasswd.or(cfg.htpasswd);
        if self.tls_cert.is_none() && self.tls_key.is_none() {
            self.tls_cert = cfg.tls_cert;
            self.tls_key = cfg.tls_key;
        }
        let addr = self.addr.clone().or(cfg.addr).unwrap_or_else(|| "127.0.0.1:5000".into());
        let root = self.root.clone().or(cfg.root).unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        let max = self.max_connections.or(cfg.max_connections).unwrap_or(64);
        if max == 0 {
            return Err("max-connections must be at least 1".into());
        }
        Ok((self, addr, root, max))
    }
}

#[derive(clap::Args, Debug)]
struct GcArgs {
    /// Storage root.
    #[arg(long, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Print what would be deleted and delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also delete manifests no tag reaches (and the blobs only they referenced).
    #[arg(long)]
    delete_untagged: bool,
    /// Never delete anything modified less than this many seconds before gc starts.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    min_age: u64,
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let a = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match a.cmd {
        Cmd::Serve(s) => serve(s),
        Cmd::Gc(g) => collect(g),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tug-registry: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(a: ServeArgs) -> Result<(), String> {
    let (a, addr, root, max_connections) = a.resolved()?;
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(tls::load(cert, key)?),
        (None, None) => None,
        // clap's `requires` refuses these first; a config file must give both too.
        _ => return Err("tls-cert and tls-key go together".into()),
    };
    let auth = a.htpasswd.as_deref().map(server::Htpasswd::load).transpose()?;
    std::fs::create_dir_all(root.join("docker/registry/v2"))
        .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let listener = TcpListener::bind(&addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map(|l| l.to_string()).unwrap_or(addr.clone());
    eprintln!(
        "tug-registry: serving {} on {local}{}{}{}",
        root.display(),
        if tls.is_some() { " (https)" } else { "" },
        if a.read_only { " (read-only)" } else { "" },
        if auth.is_some() { " (htpasswd)" } else { "" }
    );
    let registry = handlers::Registry { storage: storage::Storage::new(&root), read_only: a.read_only };
    let srv = Arc::new(server::Server { registry, auth, tls });
    server::serve(listener, srv, max_connections).map_err(|e| e.to_string())
}

fn collect(a: GcArgs) -> Result<(), String> {
    if !a.root.join("docker/registry/v2").is_dir() {
        return Err(format!("{}: no registry storage here (docker/registry/v2 is missing)", a.root.display()));
    }
    let s = storage::Storage::new(&a.root);
    let opts =
        gc::Options { dry_run: a.dry_run, delete_untagged: a.delete_untagged, min_age: Duration::from_secs(a.min_age) };
    let r = gc::run(&s, &opts)?;
    let verb = if a.dry_run { "eligible for deletion" } else { "deleted" };
    for (repo, d) in &r.untagged {
        println!("{repo}: manifest {d} {verb} (untagged)");
    }
    for d in &r.swept {
        println!("blob {d} {verb}");
    }
    println!(
        "{} blobs marked, {} blobs ({} bytes) and {} manifests {verb}, {} blobs kept as younger than {}s, {} stale uploads removed",
        r.marked,
        r.swept.len(),
        r.bytes,
        r.untagged.len(),
        r.kept_young,
        a.min_age,
        r.uploads_removed
    );
    Ok(())
}
