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
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    addr: String,
    /// Storage root (holds docker/registry/v2, as distribution's rootdirectory).
    #[arg(long, default_value = DEFAULT_ROOT)]
    root: PathBuf,
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
    /// Connections served at once; more wait to be accepted.
    #[arg(long, default_value_t = 64)]
    max_connections: usize,
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
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(tls::load(cert, key)?),
        (None, None) => None,
        // clap's `requires` refuses these first.
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    let auth = a.htpasswd.as_deref().map(server::Htpasswd::load).transpose()?;
    std::fs::create_dir_all(a.root.join("docker/registry/v2"))
        .map_err(|e| format!("cannot create {}: {e}", a.root.display()))?;
    let listener = TcpListener::bind(&a.addr).map_err(|e| format!("cannot listen on {}: {e}", a.addr))?;
    let local = listener.local_addr().map(|l| l.to_string()).unwrap_or(a.addr.clone());
    eprintln!(
        "tug-registry: serving {} on {local}{}{}{}",
        a.root.display(),
        if tls.is_some() { " (https)" } else { "" },
        if a.read_only { " (read-only)" } else { "" },
        if auth.is_some() { " (htpasswd)" } else { "" }
    );
    let registry = handlers::Registry { storage: storage::Storage::new(&a.root), read_only: a.read_only };
    let srv = Arc::new(server::Server { registry, auth, tls });
    server::serve(listener, srv, a.max_connections).map_err(|e| e.to_string())
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
