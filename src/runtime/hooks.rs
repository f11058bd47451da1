//! OCI hooks: each runs with the container state on stdin, in order, with an optional timeout.
//! A failing hook before the user process starts fails the operation; poststart and poststop
//! failures are only reported (runtime-spec "Lifecycle").

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::spec::Hook;

/// Runs `hooks` in order; the error names the hook kind, index and path.
pub fn run(kind: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<(), String> {
    let input = serde_json::to_vec(state).map_err(|e| e.to_string())?;
    for (i, hook) in hooks.iter().enumerate() {
        run_one(hook, &input).map_err(|e| format!("{kind} hook #{i} ({}): {e}", hook.path))?;
    }
    Ok(())
}

fn run_one(hook: &Hook, input: &[u8]) -> Result<(), String> {
    let mut cmd = Command::new(&hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in &hook.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin: a broken pipe is not a failure.
        let _ = stdin.write_all(input);
    }
    let deadline = hook.timeout.filter(|t| *t > 0).map(|t| Instant::now() + Duration::from_secs(t.unsigned_abs()));
    let Some(deadline) = deadline else {
        let status = child.wait().map_err(|e| e.to_string())?;
        return if status.success() { Ok(()) } else { Err(format!("exited with {status}")) };
    };
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", hook.timeout.unwrap_or_default()));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if !status.success() {
        return Err(format!("exited with {status}"));
    }
    Ok(())
}
