//! `version` and `info`: docker's default layouts (the version template is docker's own, run
//! through our template engine and tabwriter) or a `--format` template.

use serde_json::{json, Value};

use super::client::MAX_API;
use super::flags::Parsed;
use super::format::{human_bytes, tabwrite};
use super::template::Template;
use super::{out, Ctx, Error};

/// docker/cli's default `version` template, minus the non-Engine component details ordering.
const VERSION_TEMPLATE: &str = r#"{{with .Client -}}
Client:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 Version:	{{.Version}}
 API version:	{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:	{{.GoVersion}}
 Git commit:	{{.GitCommit}}
 Built:	{{.BuildTime}}
 OS/Arch:	{{.Os}}/{{.Arch}}
 Context:	{{.Context}}
{{- end}}

{{- if .ServerOK}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:	{{.Version}}
  API version:	{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:	{{index .Details "GoVersion"}}
  Git commit:	{{index .Details "GitCommit"}}
  Built:	{{index .Details "BuildTime"}}
  OS/Arch:	{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:	{{index .Details "Experimental"}}
  {{- else }}
  Version:	{{$component.Version}}
  {{- range $key, $value := $component.Details}}
  {{$key}}:	{{$value}}
  {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}"#;

/// Go's GOARCH name for this machine.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

pub fn version(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let server = ctx.client.get_json("/version");
    let api = ctx.client.api_version().unwrap_or_else(|_| MAX_API.to_string());
    let client = json!({
        "Platform": {"Name": ""},
        "Version": crate::version::VERSION,
        "ApiVersion": api,
        "APIVersion": api,
        "DefaultAPIVersion": MAX_API,
        "GitCommit": crate::version::COMMIT,
        "GoVersion": "n/a (Rust)",
        "Os": "linux",
        "Arch": go_arch(),
        "BuildTime": "",
        "Context": "default",
    });
    let (server_ok, server_v) = match &server {
        Ok(s) => {
            let mut s = s.clone();
            // The Go struct calls it APIVersion; the JSON key is ApiVersion. Offer both.
            s["APIVersion"] = s["ApiVersion"].clone();
            if s["Platform"].is_null() {
                s["Platform"] = json!({"Name": ""});
            }
            (true, s)
        }
        Err(_) => (false, Value::Null),
    };
    let v = json!({"Client": client, "Server": server_v, "ServerOK": server_ok});
    match p.get("format").filter(|f| !f.is_empty()) {
        Some(f) => {
            let t = Template::parse(f).map_err(|e| Error::msg(format!("template parsing error: template: :1: {e}")))?;
            let s = t.execute(&v).map_err(|e| Error::msg(format!("template: :1: executing \"\": {e}")))?;
            out(&format!("{s}\n"));
        }
        None => {
            let t = Template::parse(VERSION_TEMPLATE).map_err(Error::msg)?;
            let s = t.execute(&v).map_err(Error::msg)?;
            out(&tabwrite(&format!("{s}\n"), 20, 1));
        }
    }
    server.map(|_| ())
}

pub fn info(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let mut v = ctx.client.get_json("/info")?;
    v["ClientInfo"] = json!({"Debug": false, "Context": "default", "Plugins": [], "Warnings": null});
    if let Some(f) = p.get("format").filter(|f| !f.is_empty()) {
        let t = Template::parse(f).map_err(|e| Error::msg(format!("template parsing error: template: :1: {e}")))?;
        let s = t.execute(&v).map_err(|e| Error::msg(format!("template: :1: executing \"\": {e}")))?;
        out(&format!("{s}\n"));
        return Ok(());
    }
    let g = |k: &str| super::template::print(&v[k]);
    let mut s = format!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n\nServer:\n",
        crate::version::VERSION
    );
    s.push_str(&format!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n Server Version: {}\n Storage Driver: {}\n",
        g("Containers"),
        g("ContainersRunning"),
        g("ContainersPaused"),
        g("ContainersStopped"),
        g("Images"),
        g("ServerVersion"),
        g("Driver")
    ));
    for pair in v["DriverStatus"].as_array().into_iter().flatten() {
        s.push_str(&format!("  {}: {}\n", super::template::print(&pair[0]), super::template::print(&pair[1])));
    }
    s.push_str(&format!(
        " Logging Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}\n Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n ID: {}\n Docker Root Dir: {}\n Debug Mode: {}\n Experimental: false\n Live Restore Enabled: false\n",
        g("LoggingDriver"),
        g("CgroupDriver"),
        g("CgroupVersion"),
        g("KernelVersion"),
        g("OperatingSystem"),
        g("OSType"),
        g("Architecture"),
        g("NCPU"),
        human_bytes(v["MemTotal"].as_f64().unwrap_or(0.0)),
        g("Name"),
        g("ID"),
        g("DockerRootDir"),
        g("Debug"),
    ));
    out(&s);
    Ok(())
}
