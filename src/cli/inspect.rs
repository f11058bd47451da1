//! `inspect`, `container inspect`, `image inspect`: the daemon's JSON re-indented as docker does
//! (its own key order, 4 spaces), or one `--format` execution per object.

use serde_json::Value;

use super::client::{enc, Body};
use super::flags::Parsed;
use super::format::json_indent;
use super::template::Template;
use super::{err_line, out, Ctx, Error};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Container,
    Image,
    Any,
}

/// Fetches one object's raw JSON; a missing object is the daemon's 404.
fn fetch(ctx: &Ctx, kind: Kind, name: &str) -> Result<Vec<u8>, Error> {
    let path = match kind {
        Kind::Container => format!("/containers/{}/json", enc(name)),
        _ => format!("/images/{name}/json"),
    };
    let mut r = ctx.client.request("GET", &path, Body::None)?;
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut body).map_err(Error::io)?;
    Ok(body)
}

fn run_inspect(ctx: &Ctx, p: &Parsed, kind: Kind) -> Result<(), Error> {
    let tmpl = match p.get("format").filter(|f| !f.is_empty()) {
        Some(f) => {
            Some(Template::parse(f).map_err(|e| Error::msg(format!("template parsing error: template: :1: {e}")))?)
        }
        None => None,
    };
    let mut raws: Vec<Vec<u8>> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut text = String::new();
    for name in &p.args {
        let got = match kind {
            // Without --type: a container, else an image, as docker tries them.
            Kind::Any => match fetch(ctx, Kind::Container, name) {
                Err(e) if e.status == 404 => match fetch(ctx, Kind::Image, name) {
                    Err(e) if e.status == 404 => Ok(None),
                    other => other.map(Some),
                },
                other => other.map(Some),
            },
            k => fetch(ctx, k, name).map(Some),
        };
        let raw = match got {
            Ok(Some(r)) => r,
            Ok(None) => {
                errors.push(format!("Error: No such object: {name}"));
                continue;
            }
            Err(e) => {
                errors.push(e.msg);
                continue;
            }
        };
        match &tmpl {
            Some(t) => {
                let v: Value = serde_json::from_slice(&raw).map_err(|e| Error::msg(e.to_string()))?;
                match t.execute(&v) {
                    Ok(s) => {
                        text.push_str(&s);
                        text.push('\n');
                    }
                    Err(e) => {
                        out(&text);
                        return Err(Error::msg(format!("template: :1: executing \"\": {e}")));
                    }
                }
            }
            None => raws.push(raw),
        }
    }
    if tmpl.is_none() {
        if raws.is_empty() {
            text = "[]\n".into();
        } else {
            let joined = [b"[".to_vec(), raws.join(&b","[..]), b"]".to_vec()].concat();
            text = String::from_utf8_lossy(&json_indent(&joined, "    ")).into_owned();
            text.push('\n');
        }
    }
    out(&text);
    if errors.is_empty() {
        return Ok(());
    }
    for e in &errors {
        err_line(e);
    }
    Err(Error::exit(1))
}

pub fn inspect(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let kind = match p.get("type") {
        None | Some("") => Kind::Any,
        Some("container") => Kind::Container,
        Some("image") => Kind::Image,
        Some(t) => return Err(Error::msg(format!("\"{t}\" is not a valid value for --type"))),
    };
    run_inspect(ctx, &p, kind)
}

pub fn container_inspect(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    run_inspect(ctx, &p, Kind::Container)
}

pub fn image_inspect(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    run_inspect(ctx, &p, Kind::Image)
}
