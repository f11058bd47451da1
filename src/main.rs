#![recursion_limit = "256"]
//! The dispatch table: one executable, several personalities (DESIGN §1).
//!
//! The applet is picked from the basename of argv[0] (a leading `-` stripped, as login shells add
//! one), else from the first argument; anything else is the client.

use std::ffi::OsString;
use std::process::ExitCode;

mod b64;
mod cli;
mod daemon;
// pack_dir (export, commit) and a few paths wait for their routes (next issues).
#[allow(dead_code)]
mod image;
mod install;
mod monitor;
mod registry;
mod runtime;
// Paths for volumes, networks, the build cache and the registry wait for their issues.
#[allow(dead_code)]
mod store;
mod timefmt;
mod version;

/// An applet's entry point: the whole argv, with argv[0] naming the applet.
type Applet = fn(Vec<OsString>) -> ExitCode;

/// Names reachable through argv[0]; `hidden` ones are not reachable as a first argument.
const APPLETS: &[(&str, Applet, bool)] = &[
    ("tug", cli::main, false),
    ("docker", cli::main, false),
    ("tug-runtime", runtime::cli::main, false),
    ("tugd", daemon::main, false),
    ("dockerd", daemon::main, false),
    ("tug-init", runtime::init::main, true),
    ("tug-monitor", monitor::main, true),
    ("tug-archive", daemon::archive::main, true),
    ("tug-registry", registry::main, false),
];

/// Verbs of `tug VERB …` that select an applet rather than a client command.
const VERBS: &[(&str, Applet)] = &[
    ("runtime", runtime::cli::main),
    ("daemon", daemon::main),
    ("install", install::main),
    ("registry", registry::main),
];

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let name = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().trim_start_matches('-').to_string())
        .unwrap_or_default();
    if let Some((_, applet, _)) = APPLETS.iter().find(|(n, _, _)| *n == name) {
        if name == "tug" || name == "docker" {
            if let Some(verb) = args.get(1).and_then(|a| a.to_str()) {
                if let Some((v, applet)) = VERBS.iter().find(|(v, _)| *v == verb) {
                    // `tug runtime create …` behaves as `tug-runtime create …`.
                    let mut rest = args[2..].to_vec();
                    let argv0 = match *v {
                        "runtime" => "tug-runtime",
                        "daemon" => "tugd",
                        "registry" => "tug-registry",
                        _ => "tug-install",
                    };
                    rest.insert(0, argv0.into());
                    return applet(rest);
                }
            }
        }
        return applet(args);
    }
    cli::main(args)
}

/// Every applet name, for `tug install` and the client's help text.
pub fn applet_names() -> Vec<&'static str> {
    APPLETS.iter().filter(|(_, _, hidden)| !hidden).map(|(n, _, _)| *n).collect()
}
