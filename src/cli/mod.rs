//! The docker-compatible client (`tug`, or `docker` by argv[0]): global options, the verb table
//! with docker's usage lines, argument-count checks and error printing with docker's exit codes.
//! Each verb lives in its own file; the HTTP side is `client.rs`.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use serde_json::Value;

mod client;
mod commit;
mod containers;
mod cp;
mod df;
mod events;
mod exec;
mod export;
mod flags;
mod format;
mod images;
mod inspect;
mod port;
mod prune;
mod ps;
mod registry;
mod run;
mod stats;
mod stream;
mod system;
mod template;
mod top;
mod update;
mod volume;

use client::{Client, Host};
use flags::{b, v, Flag, Parsed};

/// A failed verb: what to print on stderr and the exit code.
#[derive(Debug)]
pub struct Error {
    pub msg: String,
    pub code: u8,
    /// The HTTP status when the daemon refused (404 makes `run` pull).
    pub status: u16,
}

impl Error {
    pub fn msg(m: impl Into<String>) -> Error {
        Error { msg: m.into(), code: 1, status: 0 }
    }
    pub fn daemon(status: u16, m: String) -> Error {
        Error { msg: format!("Error response from daemon: {m}"), code: 1, status }
    }
    pub fn io(e: std::io::Error) -> Error {
        Error::msg(e.to_string())
    }
    /// Exit with `code` and print nothing (a container's own exit status).
    pub fn exit(code: u8) -> Error {
        Error { msg: String::new(), code, status: 0 }
    }
}

/// What every verb gets.
pub struct Ctx {
    /// `docker` or `tug`.
    pub prog: String,
    /// The command as typed for messages: `docker run`, `docker container ls`.
    pub cmd: String,
    /// The verb's usage line after the command words, for flag-value errors.
    pub usage: &'static str,
    pub client: Client,
}

impl Ctx {
    /// A flag value the verb rejected: pflag's `invalid argument …` wording, the usage, exit 125,
    /// as docker reports a flag whose value does not parse.
    pub fn flag_error(&self, msg: &str) -> Error {
        let cmd = self.cmd.strip_prefix(&format!("{} ", self.prog)).unwrap_or(&self.cmd);
        usage_error(&self.prog, cmd, self.usage, msg, 125)
    }
}

/// Writes to stdout; a closed pipe is not an error worth reporting.
pub fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

/// Writes a line to stderr.
pub fn err_line(s: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{s}");
}

type Run = fn(&Ctx, Parsed) -> Result<(), Error>;

/// Argument-count rule, with docker's wording.
#[derive(Clone, Copy)]
enum Arity {
    None,
    AtLeast(usize),
    AtMost(usize),
    Exactly(usize),
    Range(usize, usize),
}

struct Verb {
    /// The words that select it: `["ps"]`, `["container", "ls"]`.
    names: &'static [&'static [&'static str]],
    /// Usage after the command words: `[OPTIONS] CONTAINER [CONTAINER...]`.
    usage: &'static str,
    flags: &'static [Flag],
    /// `false` for run/create: flags only before the image.
    interspersed: bool,
    arity: Arity,
    run: Run,
}

const FORMAT: Flag = v("format", None);

const RUN_FLAGS: &[Flag] = &[
    b("detach", Some('d')),
    b("interactive", Some('i')),
    b("tty", Some('t')),
    b("rm", None),
    v("name", None),
    v("env", Some('e')),
    v("env-file", None),
    v("workdir", Some('w')),
    v("user", Some('u')),
    v("entrypoint", None),
    v("hostname", Some('h')),
    v("domainname", None),
    v("label", Some('l')),
    b("read-only", None),
    v("memory", Some('m')),
    v("memory-swap", None),
    v("cpus", None),
    v("cpu-shares", Some('c')),
    v("cpuset-cpus", None),
    v("pids-limit", None),
    v("cap-add", None),
    v("cap-drop", None),
    b("privileged", None),
    v("security-opt", None),
    v("ulimit", None),
    v("network", None),
    v("net", None),
    v("tmpfs", None),
    v("log-driver", None),
    v("log-opt", None),
    v("restart", None),
    v("stop-signal", None),
    v("stop-timeout", None),
    b("init", None),
    b("sig-proxy", None),
    v("detach-keys", None),
    v("attach", Some('a')),
    b("quiet", Some('q')),
    v("pull", None),
    v("platform", None),
    v("volume", Some('v')),
    v("publish", Some('p')),
    v("add-host", None),
    v("dns", None),
];

/// `exec`'s flags (flags end at the container, as for `run`).
pub const EXEC_FLAGS: &[Flag] = &[
    b("detach", Some('d')),
    b("interactive", Some('i')),
    b("tty", Some('t')),
    v("env", Some('e')),
    v("env-file", None),
    v("workdir", Some('w')),
    v("user", Some('u')),
    b("privileged", None),
    v("detach-keys", None),
];

const STOP_FLAGS: &[Flag] = &[v("timeout", Some('t')), v("time", None), v("signal", Some('s'))];

static VERBS: &[Verb] = &[
    Verb {
        names: &[&["run"], &["container", "run"]],
        usage: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
        flags: RUN_FLAGS,
        interspersed: false,
        arity: Arity::AtLeast(1),
        run: run::run,
    },
    Verb {
        names: &[&["create"], &["container", "create"]],
        usage: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
        flags: RUN_FLAGS,
        interspersed: false,
        arity: Arity::AtLeast(1),
        run: run::create,
    },
    Verb {
        names: &[&["start"], &["container", "start"]],
        usage: "[OPTIONS] CONTAINER [CONTAINER...]",
        flags: &[b("attach", Some('a')), b("interactive", Some('i')), v("detach-keys", None)],
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: run::start,
    },
    Verb {
        names: &[&["attach"], &["container", "attach"]],
        usage: "[OPTIONS] CONTAINER",
        flags: &[v("detach-keys", None), b("no-stdin", None), b("sig-proxy", None)],
        interspersed: true,
        arity: Arity::Exactly(1),
        run: run::attach,
    },
    Verb {
        names: &[&["ps"], &["container", "ls"], &["container", "ps"], &["container", "list"]],
        usage: "[OPTIONS]",
        flags: &[
            b("all", Some('a')),
            b("quiet", Some('q')),
            v("last", Some('n')),
            b("latest", Some('l')),
            b("size", Some('s')),
            v("filter", Some('f')),
            FORMAT,
            b("no-trunc", None),
        ],
        interspersed: true,
        arity: Arity::None,
        run: ps::ps,
    },
    Verb {
        names: &[&["wait"], &["container", "wait"]],
        usage: "CONTAINER [CONTAINER...]",
        flags: &[],
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: containers::wait,
    },
    Verb {
        names: &[&["stop"], &["container", "stop"]],
        usage: "[OPTIONS] CONTAINER [CONTAINER...]",
        flags: STOP_FLAGS,
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: containers::stop,
    },
    Verb {
        names: &[&["restart"], &["container", "restart"]],
        usage: "[OPTIONS] CONTAINER [CONTAINER...]",
        flags: STOP_FLAGS,
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: containers::restart,
    },
    Verb {
        names: &[&["kill"], &["container", "kill"]],
        usage: "[OPTIONS] CONTAINER [CONTAINER...]",
        flags: &[v("signal", Some('s'))],
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: containers::kill,
    },
    Verb {
        names: &[&["rm"], &["container", "rm"], &["container", "remove"]],
        usage: "[OPTIONS] CONTAINER [CONTAINER...]",
        flags: &[b("force", Some('f')), b("volumes", Some('v')), b("link", Some('l'))],
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: containers::rm,
    },
    Verb {
        names: &[&["logs"], &["container", "logs"]],
        usage: "[OPTIONS] CONTAINER",
        flags: &[
            b("follow", Some('f')),
            v("tail", Some('n')),
            v("since", None),
            v("until", None),
            b("timestamps", Some('t')),
            b("details", None),
        ],
        interspersed: true,
        arity: Arity::Exactly(1),
        run: containers::logs,
    },
    Verb {
        names: &[&["diff"], &["container", "diff"]],
        usage: "CONTAINER",
        flags: &[],
        interspersed: true,
        arity: Arity::Exactly(1),
        run: containers::diff,
    },
    Verb {
        names: &[&["pause"], &["container", "pause"]],
        usage: "CONTAINER [CONTAINER...]",
        flags: &[],
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: containers::pause,
    },
    Verb {
        names: &[&["unpause"], &["container", "unpause"]],
        usage: "CONTAINER [CONTAINER...]",
        flags: &[],
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: containers::unpause,
    },
    Verb {
        names: &[&["rename"], &["container", "rename"]],
        usage: "CONTAINER NEW_NAME",
        flags: &[],
        interspersed: true,
        arity: Arity::Exactly(2),
        run: containers::rename,
    },
    Verb {
        names: &[&["top"], &["container", "top"]],
        usage: "CONTAINER [ps OPTIONS]",
        flags: &[],
        // Everything after the container goes to ps.
        interspersed: false,
        arity: Arity::AtLeast(1),
        run: top::top,
    },
    Verb {
        names: &[&["stats"], &["container", "stats"]],
        usage: "[OPTIONS] [CONTAINER...]",
        flags: &[b("all", Some('a')), b("no-stream", None), b("no-trunc", None), FORMAT],
        interspersed: true,
        arity: Arity::AtLeast(0),
        run: stats::stats,
    },
    Verb {
        names: &[&["export"], &["container", "export"]],
        usage: "[OPTIONS] CONTAINER",
        flags: &[v("output", Some('o'))],
        interspersed: true,
        arity: Arity::Exactly(1),
        run: export::export,
    },
    Verb {
        names: &[&["update"], &["container", "update"]],
        usage: "[OPTIONS] CONTAINER [CONTAINER...]",
        flags: update::FLAGS,
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: update::update,
    },
    Verb {
        names: &[&["port"], &["container", "port"]],
        usage: "CONTAINER [PRIVATE_PORT[/PROTO]]",
        flags: &[],
        interspersed: true,
        arity: Arity::Range(1, 2),
        run: port::port,
    },
    Verb {
        names: &[&["container", "prune"]],
        usage: "[OPTIONS]",
        flags: &[b("force", Some('f')), v("filter", None)],
        interspersed: true,
        arity: Arity::None,
        run: prune::container_prune,
    },
    Verb {
        names: &[&["commit"], &["container", "commit"]],
        usage: "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
        flags: &[v("author", Some('a')), v("change", Some('c')), v("message", Some('m')), b("pause", Some('p'))],
        // Flags end at the container, as docker's commit parses them.
        interspersed: false,
        arity: Arity::Range(1, 2),
        run: commit::commit,
    },
    Verb {
        names: &[&["inspect"]],
        usage: "[OPTIONS] NAME|ID [NAME|ID...]",
        flags: &[v("format", Some('f')), v("type", None), b("size", Some('s'))],
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: inspect::inspect,
    },
    Verb {
        names: &[&["container", "inspect"]],
        usage: "[OPTIONS] CONTAINER [CONTAINER...]",
        flags: &[v("format", Some('f')), b("size", Some('s'))],
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: inspect::container_inspect,
    },
    Verb {
        names: &[&["image", "inspect"]],
        usage: "[OPTIONS] IMAGE [IMAGE...]",
        flags: &[v("format", Some('f')), v("platform", None)],
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: inspect::image_inspect,
    },
    Verb {
        names: &[&["images"], &["image", "ls"], &["image", "list"]],
        usage: "[OPTIONS] [REPOSITORY[:TAG]]",
        flags: &[
            b("all", Some('a')),
            b("quiet", Some('q')),
            b("digests", None),
            v("filter", Some('f')),
            FORMAT,
            b("no-trunc", None),
            b("tree", None),
        ],
        interspersed: true,
        arity: Arity::Range(0, 1),
        run: images::images,
    },
    Verb {
        names: &[&["tag"], &["image", "tag"]],
        usage: "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
        flags: &[],
        interspersed: true,
        arity: Arity::Exactly(2),
        run: images::tag,
    },
    Verb {
        names: &[&["rmi"], &["image", "rm"], &["image", "remove"]],
        usage: "[OPTIONS] IMAGE [IMAGE...]",
        flags: &[b("force", Some('f')), b("no-prune", None), v("platform", None)],
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: images::rmi,
    },
    Verb {
        names: &[&["load"], &["image", "load"]],
        usage: "[OPTIONS]",
        flags: &[v("input", Some('i')), b("quiet", Some('q')), v("platform", None)],
        interspersed: true,
        arity: Arity::None,
        run: images::load,
    },
    Verb {
        names: &[&["save"], &["image", "save"]],
        usage: "[OPTIONS] IMAGE [IMAGE...]",
        flags: &[v("output", Some('o')), v("platform", None)],
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: images::save,
    },
    Verb {
        names: &[&["import"], &["image", "import"]],
        usage: "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
        flags: &[v("change", Some('c')), v("message", Some('m')), v("platform", None)],
        interspersed: true,
        arity: Arity::Range(1, 2),
        run: images::import,
    },
    Verb {
        names: &[&["history"], &["image", "history"]],
        usage: "[OPTIONS] IMAGE",
        flags: &[b("human", Some('H')), b("no-trunc", None), b("quiet", Some('q')), FORMAT, v("platform", None)],
        interspersed: true,
        arity: Arity::Exactly(1),
        run: images::history,
    },
    Verb {
        names: &[&["image", "prune"]],
        usage: "[OPTIONS]",
        flags: &[b("all", Some('a')), b("force", Some('f')), v("filter", None)],
        interspersed: true,
        arity: Arity::None,
        run: prune::image_prune,
    },
    Verb {
        names: &[&["exec"], &["container", "exec"]],
        usage: "[OPTIONS] CONTAINER COMMAND [ARG...]",
        flags: EXEC_FLAGS,
        interspersed: false,
        arity: Arity::AtLeast(2),
        run: exec::exec,
    },
    Verb {
        names: &[&["cp"], &["container", "cp"]],
        usage: "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tdocker cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
        flags: &[b("follow-link", Some('L')), b("archive", Some('a')), b("quiet", Some('q'))],
        interspersed: true,
        arity: Arity::Exactly(2),
        run: cp::cp,
    },
    Verb {
        names: &[&["events"], &["system", "events"]],
        usage: "[OPTIONS]",
        flags: &[v("since", None), v("until", None), v("filter", Some('f')), FORMAT],
        interspersed: true,
        arity: Arity::None,
        run: events::events,
    },
    Verb {
        names: &[&["volume", "create"]],
        usage: "[OPTIONS] [VOLUME]",
        flags: &[v("driver", Some('d')), v("name", None), v("label", None), v("opt", Some('o'))],
        interspersed: true,
        arity: Arity::AtMost(1),
        run: volume::create,
    },
    Verb {
        names: &[&["volume", "ls"], &["volume", "list"]],
        usage: "[OPTIONS]",
        flags: &[b("quiet", Some('q')), v("filter", Some('f')), FORMAT, b("cluster", None)],
        interspersed: true,
        arity: Arity::None,
        run: volume::ls,
    },
    Verb {
        names: &[&["volume", "inspect"]],
        usage: "[OPTIONS] VOLUME [VOLUME...]",
        flags: &[v("format", Some('f'))],
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: volume::inspect,
    },
    Verb {
        names: &[&["volume", "rm"], &["volume", "remove"]],
        usage: "[OPTIONS] VOLUME [VOLUME...]",
        flags: &[b("force", Some('f'))],
        interspersed: true,
        arity: Arity::AtLeast(1),
        run: volume::rm,
    },
    Verb {
        names: &[&["volume", "prune"]],
        usage: "[OPTIONS]",
        flags: &[b("all", Some('a')), v("filter", None), b("force", Some('f'))],
        interspersed: true,
        arity: Arity::None,
        run: volume::prune,
    },
    Verb {
        names: &[&["pull"], &["image", "pull"]],
        usage: "[OPTIONS] NAME[:TAG|@DIGEST]",
        flags: &[
            b("all-tags", Some('a')),
            b("quiet", Some('q')),
            v("platform", None),
            b("disable-content-trust", None),
        ],
        interspersed: true,
        arity: Arity::Exactly(1),
        run: registry::pull,
    },
    Verb {
        names: &[&["push"], &["image", "push"]],
        usage: "[OPTIONS] NAME[:TAG]",
        flags: &[
            b("all-tags", Some('a')),
            b("quiet", Some('q')),
            v("platform", None),
            b("disable-content-trust", None),
        ],
        interspersed: true,
        arity: Arity::Exactly(1),
        run: registry::push,
    },
    Verb {
        names: &[&["login"]],
        usage: "[OPTIONS] [SERVER]",
        flags: &[v("username", Some('u')), v("password", Some('p')), b("password-stdin", None)],
        interspersed: true,
        arity: Arity::Range(0, 1),
        run: registry::login,
    },
    Verb {
        names: &[&["logout"]],
        usage: "[SERVER]",
        flags: &[],
        interspersed: true,
        arity: Arity::Range(0, 1),
        run: registry::logout,
    },
    Verb {
        names: &[&["version"]],
        usage: "[OPTIONS]",
        flags: &[v("format", Some('f'))],
        interspersed: true,
        arity: Arity::None,
        run: system::version,
    },
    Verb {
        names: &[&["info"], &["system", "info"]],
        usage: "[OPTIONS]",
        flags: &[v("format", Some('f'))],
        interspersed: true,
        arity: Arity::None,
        run: system::info,
    },
    Verb {
        names: &[&["system", "df"]],
        usage: "[OPTIONS]",
        flags: &[b("verbose", Some('v')), FORMAT],
        interspersed: true,
        arity: Arity::None,
        run: df::df,
    },
    Verb {
        names: &[&["system", "prune"]],
        usage: "[OPTIONS]",
        flags: &[b("all", Some('a')), b("force", Some('f')), b("volumes", None), v("filter", None)],
        interspersed: true,
        arity: Arity::None,
        run: prune::system_prune,
    },
];

/// Management commands: `docker container …`, `docker image …`.
const GROUPS: &[&str] = &["container", "image", "system", "volume"];

/// Global options before the verb.
const GLOBAL: &[Flag] = &[
    v("host", Some('H')),
    v("context", Some('c')),
    v("config", None),
    b("debug", Some('D')),
    v("log-level", Some('l')),
    b("tls", None),
    b("tlsverify", None),
    v("tlscacert", None),
    v("tlscert", None),
    v("tlskey", None),
    b("version", Some('v')),
];

/// The client's entry point.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let prog = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().trim_start_matches('-').to_string())
        .filter(|n| n == "docker")
        .unwrap_or_else(|| "tug".to_string());
    let words: Vec<String> = args.iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    match run_main(&prog, &words) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.msg.is_empty() {
                err_line(&e.msg);
            }
            ExitCode::from(e.code)
        }
    }
}

fn usage_error(prog: &str, cmd: &str, usage: &str, msg: &str, code: u8) -> Error {
    let usage = format!("{prog} {cmd} {usage}");
    Error {
        msg: format!("{msg}\n\nUsage:  {}\n\nRun '{prog} {cmd} --help' for more information", usage.trim_end()),
        code,
        status: 0,
    }
}

fn run_main(prog: &str, words: &[String]) -> Result<(), Error> {
    // Global flags end at the first word that is not one.
    let mut i = 0;
    while i < words.len() && words[i].starts_with('-') && words[i] != "-" {
        let w = &words[i];
        let takes = GLOBAL.iter().any(|f| {
            f.takes_value && (w == &format!("--{}", f.long) || f.short.is_some_and(|c| w == &format!("-{c}")))
        });
        i += if takes { 2 } else { 1 };
    }
    let global = flags::parse(&words[..i.min(words.len())], GLOBAL, true).map_err(|m| Error {
        msg: format!("{m}\nSee '{prog} --help'."),
        code: 125,
        status: 0,
    })?;
    if global.on("version") {
        out(&format!(
            "{} version {}, build {}\n",
            if prog == "docker" { "Docker" } else { "tug" },
            crate::version::VERSION,
            crate::version::COMMIT
        ));
        return Ok(());
    }
    let rest = &words[i.min(words.len())..];
    if global.help || rest.is_empty() || rest[0] == "help" {
        print_help(prog);
        return Ok(());
    }
    let host = match global.get("host") {
        Some(h) => h.to_string(),
        None => {
            std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| client::DEFAULT_HOST.into())
        }
    };
    // Find the verb: one word, or a group and a word.
    let (verb, used) = if GROUPS.contains(&rest[0].as_str()) {
        let sub = rest.get(1).map(String::as_str).unwrap_or("");
        match VERBS.iter().find(|v| v.names.iter().any(|n| n.len() == 2 && n[0] == rest[0] && n[1] == sub)) {
            Some(v) => (v, 2),
            None => {
                if sub.is_empty() || sub == "--help" {
                    out(&format!("Usage:  {prog} {} COMMAND\n", rest[0]));
                    return Ok(());
                }
                return Err(usage_error(
                    prog,
                    &rest[0],
                    "",
                    &format!("{prog}: unknown command: {prog} {} {sub}", rest[0]),
                    1,
                ));
            }
        }
    } else {
        match VERBS.iter().find(|v| v.names.iter().any(|n| n.len() == 1 && n[0] == rest[0])) {
            Some(v) => (v, 1),
            None => {
                return Err(Error {
                    msg: format!(
                        "{prog}: unknown command: {prog} {}\n\nRun '{prog} --help' for more information",
                        rest[0]
                    ),
                    code: 1,
                    status: 0,
                })
            }
        }
    };
    let cmd = rest[..used].join(" ");
    let host = Host::parse(&host)?;
    let parsed = flags::parse(&rest[used..], verb.flags, verb.interspersed)
        .map_err(|m| usage_error(prog, &cmd, verb.usage, &m, 125))?;
    if parsed.help {
        out(&format!("\nUsage:  {prog} {cmd} {}\n", verb.usage));
        return Ok(());
    }
    let n = parsed.args.len();
    let arity_msg = match verb.arity {
        Arity::None if n > 0 => Some(("accepts no arguments".to_string(), "Run")),
        Arity::AtLeast(k) if n < k => {
            Some((format!("requires at least {k} argument{}", if k == 1 { "" } else { "s" }), "See"))
        }
        Arity::AtMost(k) if n > k => {
            // "SRun" is docker 28's own wording here.
            Some((format!("requires at most {k} argument{}", if k == 1 { "" } else { "s" }), "SRun"))
        }
        Arity::Exactly(k) if n != k => Some((format!("requires {k} argument{}", if k == 1 { "" } else { "s" }), "Run")),
        Arity::Range(lo, hi) if n < lo || n > hi => {
            Some((format!("requires at least {lo} and at most {hi} arguments"), "Run"))
        }
        _ => None,
    };
    if let Some((m, verb_word)) = arity_msg {
        return Err(Error {
            msg: format!(
                "{prog}: '{prog} {cmd}' {m}\n\nUsage:  {prog} {cmd} {}\n\n{verb_word} '{prog} {cmd} --help' for more information",
                verb.usage
            ),
            code: 1,
            status: 0,
        });
    }
    let ctx = Ctx {
        prog: prog.to_string(),
        cmd: format!("{prog} {cmd}"),
        usage: verb.usage,
        client: Client::new(host, prog),
    };
    (verb.run)(&ctx, parsed)
}

fn print_help(prog: &str) {
    let mut s =
        format!("\nUsage:  {prog} [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers\n\nCommands:\n");
    for v in VERBS {
        s.push_str(&format!("  {}\n", v.names[0].join(" ")));
    }
    s.push_str("\nGlobal Options:\n  -H, --host string   Daemon socket to connect to\n  -v, --version       Print version information and quit\n");
    out(&s);
}

/// Renders rows through a docker `--format` string: `table …` gets a header line (from
/// `headers`, field name → column title) and tabwriter alignment; anything else prints one
/// template execution per row.
pub fn render(format: &str, rows: &[Value], headers: &[(&str, &str)]) -> Result<String, Error> {
    let (table, body) = match format.strip_prefix("table") {
        Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => (true, rest),
        _ => (false, format),
    };
    let body = body.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n");
    let tmpl = template::Template::parse(&body)
        .map_err(|e| Error::msg(format!("failed to parse template: template: :1: {e}")))?;
    let mut text = String::new();
    if table {
        // The header runs the same template over the column titles; functions render empty.
        let hdr: serde_json::Map<String, Value> =
            headers.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
        let hdr_tmpl = template::Template::parse(&header_body(&body, headers)).map_err(Error::msg)?;
        text.push_str(&hdr_tmpl.execute(&Value::Object(hdr)).unwrap_or_default());
        text.push('\n');
    }
    for row in rows {
        let s = tmpl.execute_strict(row).map_err(|e| Error::msg(format!("failed to execute template: {e}")))?;
        text.push_str(&s);
        text.push('\n');
    }
    Ok(if table { format::tabwrite(&text, 10, 3) } else { text })
}

/// Keeps only the plain `{{.Field}}` actions with a known title for the header row; functions
/// and unknown fields render empty there, as docker's header functions do.
fn header_body(body: &str, headers: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else { break };
        let action = rest[i + 2..i + j].trim().trim_matches('-').trim();
        if action.starts_with('.') && headers.iter().any(|(k, _)| action[1..] == **k) {
            out.push_str(&rest[i..i + j + 2]);
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

/// Splits a `--filter k=v` list into the API's `{"k":{"v":true}}`.
pub fn filters_json(list: &[String]) -> Result<Option<String>, Error> {
    if list.is_empty() {
        return Ok(None);
    }
    let mut m = serde_json::Map::new();
    for f in list {
        let Some((k, v)) = f.split_once('=') else {
            return Err(Error::msg("bad format of filter (expected name=value)"));
        };
        let e = m.entry(k.trim().to_lowercase()).or_insert_with(|| Value::Object(Default::default()));
        e[v.trim()] = Value::Bool(true);
    }
    Ok(Some(Value::Object(m).to_string()))
}

/// Checks `--filter` values as docker's filter option does when parsing flags: a value without
/// `=` is a flag error (exit 125, with the usage).
pub fn check_filters(ctx: &Ctx, list: &[String], flag: &str) -> Result<(), Error> {
    match list.iter().find(|f| !f.contains('=')) {
        Some(bad) => Err(ctx.flag_error(&format!(
            "invalid argument \"{bad}\" for \"{flag}\" flag: bad format of filter (expected name=value)"
        ))),
        None => Ok(()),
    }
}

/// Runs `f` on each name; prints each error and fails with exit 1 at the end, as docker's
/// multi-target verbs (stop, rm, kill…) do.
pub fn each(names: &[String], mut f: impl FnMut(&str) -> Result<(), Error>) -> Result<(), Error> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(()) => out(&format!("{n}\n")),
            Err(e) => {
                err_line(&e.msg);
                failed = true;
            }
        }
    }
    if failed {
        Err(Error::exit(1))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_render() {
        let rows = vec![json!({"ID": "abc", "Names": "web"}), json!({"ID": "defghi", "Names": "db"})];
        let t = render("table {{.ID}}\\t{{.Names}}", &rows, &[("ID", "CONTAINER ID"), ("Names", "NAMES")]).unwrap();
        assert_eq!(t, "CONTAINER ID   NAMES\nabc            web\ndefghi         db\n");
        assert_eq!(render("{{.Names}}", &rows, &[]).unwrap(), "web\ndb\n");
        assert_eq!(render("table {{json .}}", &rows[..1], &[]).unwrap(), "\n{\"ID\":\"abc\",\"Names\":\"web\"}\n");
        assert!(render("{{.Nope}}", &rows, &[]).is_err());
        assert_eq!(filters_json(&["status=exited".into()]).unwrap().unwrap(), r#"{"status":{"exited":true}}"#);
    }
}
