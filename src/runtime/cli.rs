//! `tug-runtime`: the runc-compatible command line, as containerd's go-runc and podman's conmon
//! call it.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use super::container::{self, CreateOpts, ExecOpts, Global};
use super::spec::{Process, Spec, User};
use super::state::{Status, DEFAULT_ROOT};

#[derive(Parser, Debug)]
#[command(name = "tug-runtime", about = "OCI runtime (runc-compatible)", disable_version_flag = true)]
struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Write errors to this file as well as stderr.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// `text` or `json`.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for compatibility; cgroupfs is always used (systemd-style paths are mapped onto it).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for compatibility (`--rootless auto`, `spec --rootless`); rootless mode is not implemented.
    #[arg(long, global = true, hide = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Args, Debug, Default)]
struct CreateArgs {
    #[arg(short = 'b', long, default_value = ".")]
    bundle: PathBuf,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container, leaving its process waiting for `start`.
    Create(CreateArgs),
    /// Start a created container's process.
    Start { id: String },
    /// Create and start a container; wait for it unless --detach.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(short = 'd', long)]
        detach: bool,
        #[arg(long = "keep")]
        keep: bool,
    },
    /// Print the OCI state of a container.
    State { id: String },
    /// Send a signal to the container's init (or every process with --all).
    Kill {
        #[arg(short = 'a', long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container's state, cgroup and process (with --force).
    Delete {
        #[arg(short = 'f', long)]
        force: bool,
        id: String,
    },
    /// List containers.
    List {
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Run a new process inside a container.
    Exec(Box<ExecArgs>),
    /// List the processes of a container.
    Ps {
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Write a config.json with Docker's defaults.
    Spec {
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
    },
    /// Print what this runtime supports (runtime-spec features.md).
    Features,
}

#[derive(Args, Debug)]
struct ExecArgs {
    #[arg(short = 'p', long)]
    process: Option<PathBuf>,
    #[arg(short = 't', long)]
    tty: bool,
    #[arg(short = 'd', long)]
    detach: bool,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// An inherited, connected socket to send the pty master on, instead of a path (tug's own
    /// callers: the daemon's exec).
    #[arg(long = "console-fd", hide = true)]
    console_fd: Option<i32>,
    #[arg(long)]
    cwd: Option<String>,
    #[arg(short = 'e', long)]
    env: Vec<String>,
    #[arg(short = 'u', long)]
    user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    #[arg(short = 'c', long = "cap")]
    cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    #[arg(long = "process-label", hide = true)]
    process_label: Option<String>,
    #[arg(long, hide = true)]
    apparmor: Option<String>,
    #[arg(long, hide = true)]
    cgroup: Option<String>,
    #[arg(long = "ignore-paused", hide = true)]
    ignore_paused: bool,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    if cli.version {
        println!("tug-runtime version {}", crate::version::VERSION);
        println!("commit: {}", crate::version::COMMIT);
        println!("spec: {}", super::spec::OCI_VERSION);
        return ExitCode::SUCCESS;
    }
    let g = Global { root: cli.root.clone(), cgroup_root: PathBuf::from("/sys/fs/cgroup") };
    let Some(cmd) = cli.cmd else {
        eprintln!("tug-runtime: a command is required (create, start, run, state, kill, delete, list, exec, ps, pause, resume, spec, features)");
        return ExitCode::from(1);
    };
    match dispatch(&g, cmd) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(255)),
        Err(msg) => {
            log_error(&cli.log, &cli.log_format, &msg);
            eprintln!("tug-runtime: {msg}");
            ExitCode::from(1)
        }
    }
}

/// Errors go to `--log` too, where conmon and containerd look for them.
fn log_error(log: &Option<PathBuf>, format: &str, msg: &str) {
    let Some(path) = log else { return };
    let time = crate::timefmt::now_rfc3339();
    let line = if format == "json" {
        serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
    } else {
        format!("time={time:?} level=error msg={msg:?}")
    };
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

fn create_opts(a: &CreateArgs) -> CreateOpts {
    CreateOpts {
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
    }
}

fn dispatch(g: &Global, cmd: Cmd) -> Result<i32, String> {
    match cmd {
        Cmd::Create(a) => container::create(g, &a.id, &create_opts(&a)).map(|_| 0),
        Cmd::Start { id } => container::start(g, &id).map(|()| 0),
        Cmd::Run { create, detach, keep: _ } => container::run(g, &create.id, &create_opts(&create), detach),
        Cmd::State { id } => {
            let (st, sd) = container::load(g, &id)?;
            let status = st.status(&sd);
            println!("{}", serde_json::to_string_pretty(&st.oci_json(status)).map_err(|e| e.to_string())?);
            Ok(0)
        }
        Cmd::Kill { all, id, signal } => container::kill(g, &id, container::parse_signal(&signal)?, all).map(|()| 0),
        Cmd::Delete { force, id } => container::delete(g, &id, force).map(|()| 0),
        Cmd::List { format, quiet } => list(g, &format, quiet).map(|()| 0),
        Cmd::Exec(a) => exec(g, *a),
        Cmd::Ps { format, id, ps_args: _ } => ps(g, &id, &format).map(|()| 0),
        Cmd::Pause { id } => container::freeze(g, &id, true).map(|()| 0),
        Cmd::Resume { id } => container::freeze(g, &id, false).map(|()| 0),
        Cmd::Spec { bundle } => write_spec(&bundle).map(|()| 0),
        Cmd::Features => {
            println!("{}", serde_json::to_string_pretty(&super::defaults::features()).map_err(|e| e.to_string())?);
            Ok(0)
        }
    }
}

fn list(g: &Global, format: &str, quiet: bool) -> Result<(), String> {
    let mut rows = Vec::new();
    for id in container::list_ids(g) {
        if let Ok((st, sd)) = container::load(g, &id) {
            let status = st.status(&sd);
            rows.push((st, status));
        }
    }
    if quiet {
        for (st, _) in &rows {
            println!("{}", st.id);
        }
        return Ok(());
    }
    if format == "json" {
        let v: Vec<serde_json::Value> = rows.iter().map(|(st, s)| st.oci_json(*s)).collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|(st, s)| {
            let pid = if *s == Status::Stopped { 0 } else { st.pid };
            [
                st.id.clone(),
                pid.to_string(),
                s.as_str().to_string(),
                st.bundle.display().to_string(),
                st.created.clone(),
                "root".to_string(),
            ]
        })
        .collect();
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &table {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.len());
        }
    }
    for r in std::iter::once(&header).chain(table.iter()) {
        let line: Vec<String> = r.iter().zip(widths.iter()).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(())
}

fn ps(g: &Global, id: &str, format: &str) -> Result<(), String> {
    let (st, sd) = container::load(g, id)?;
    if st.status(&sd) == Status::Stopped {
        return Err(format!("container {id} is not running"));
    }
    let pids = st.cgroup.pids().map_err(|e| format!("cannot list processes: {e}"))?;
    if format == "json" {
        println!("{}", serde_json::to_string(&pids).map_err(|e| e.to_string())?);
        return Ok(());
    }
    println!("{:>8} CMD", "PID");
    for pid in pids {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd: Vec<String> =
            cmd.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        println!("{pid:>8} {}", cmd.join(" "));
    }
    Ok(())
}

fn exec(g: &Global, a: ExecArgs) -> Result<i32, String> {
    let process = match &a.process {
        Some(path) => {
            let data = std::fs::read(path).map_err(|e| format!("--process {}: {e}", path.display()))?;
            let de = &mut serde_json::Deserializer::from_slice(&data);
            serde_path_to_error::deserialize::<_, Process>(de)
                .map_err(|e| format!("--process {}: {}: {}", path.display(), e.path(), e.inner()))?
        }
        None => {
            if a.args.is_empty() {
                return Err("exec: process args are required (--process FILE or -- ARGS)".into());
            }
            let (st, sd) = container::load(g, &a.id)?;
            let _ = st;
            let spec = Spec::parse(&std::fs::read(sd.config()).map_err(|e| e.to_string())?)?;
            let base = spec.process.unwrap_or_default();
            let mut p = Process { args: a.args.clone(), terminal: a.tty, ..base };
            p.env.extend(a.env.iter().cloned());
            if let Some(cwd) = &a.cwd {
                p.cwd = cwd.clone();
            }
            if let Some(u) = &a.user {
                let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
                p.user = User {
                    uid: uid.parse().map_err(|_| format!("--user: invalid uid {uid:?}"))?,
                    gid: gid.parse().map_err(|_| format!("--user: invalid gid {gid:?}"))?,
                    umask: p.user.umask,
                    additional_gids: a.additional_gids.clone(),
                };
            }
            if a.no_new_privs {
                p.no_new_privileges = true;
            }
            if !a.cap.is_empty() {
                let mut caps = p.capabilities.unwrap_or_default();
                for c in &a.cap {
                    for set in [&mut caps.bounding, &mut caps.effective, &mut caps.permitted, &mut caps.inheritable] {
                        if !set.contains(c) {
                            set.push(c.clone());
                        }
                    }
                }
                p.capabilities = Some(caps);
            }
            p
        }
    };
    let mut process = process;
    if a.tty {
        process.terminal = true;
    }
    if process.args.is_empty() {
        return Err("exec: process.args must not be empty".into());
    }
    let o = ExecOpts {
        process,
        detach: a.detach,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        console_fd: a.console_fd,
        preserve_fds: a.preserve_fds,
    };
    container::exec(g, &a.id, &o)
}

fn write_spec(bundle: &std::path::Path) -> Result<(), String> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(format!("File {} exists. Remove it first", path.display()));
    }
    let spec = super::defaults::spec();
    let data = serde_json::to_vec_pretty(&spec).map_err(|e| e.to_string())?;
    crate::store::atomic::write(&path, &data).map_err(|e| format!("{}: {e}", path.display()))
}
