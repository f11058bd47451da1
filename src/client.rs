//! The docker-compatible client. Until the daemon exists it only says what this executable can be.

use std::ffi::OsString;
use std::process::ExitCode;

pub fn main(args: Vec<OsString>) -> ExitCode {
    let first = args.get(1).and_then(|a| a.to_str()).unwrap_or("");
    match first {
        "--version" | "-v" | "version" => {
            println!("tug version {}, commit {}", crate::version::VERSION, crate::version::COMMIT);
            ExitCode::SUCCESS
        }
        "" | "help" | "--help" | "-h" => {
            print_usage();
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("tug: '{other}' is not a tug command.");
            print_usage();
            ExitCode::from(125)
        }
    }
}

fn print_usage() {
    println!("Usage: tug COMMAND | tug-runtime COMMAND | tug install DIR");
    println!();
    println!("One executable, several personalities, chosen by its name or first argument:");
    println!("  tug, docker        client (the container commands arrive with the daemon)");
    println!("  tug-runtime        OCI runtime, runc-compatible (also `tug runtime …`)");
    println!("  tug install DIR    symlink every applet name in DIR to this executable");
    println!("  tug --version      print the version");
}
