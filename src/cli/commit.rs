//! `commit` / `container commit`: `POST /commit` with the container, the target name split into
//! repo and tag as docker's client splits it, the message, author and Dockerfile changes; prints
//! the new image ID. The layer and config are the daemon's business.

use crate::image::reference::Reference;

use super::client::{query, Body};
use super::flags::Parsed;
use super::{out, Ctx, Error};

pub fn commit(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    // docker's client trims the ID and refuses an empty one before asking the daemon.
    let container = p.args[0].trim();
    if container.is_empty() {
        return Err(Error::msg("invalid container name or ID: value is empty"));
    }
    let (repo, tag) = match p.args.get(1).filter(|r| !r.is_empty()) {
        Some(r) => {
            let reference = Reference::parse(r).map_err(Error::msg)?;
            if reference.digest.is_some() {
                return Err(Error::msg("refusing to create a tag with a digest reference"));
            }
            (reference.familiar_name(), reference.tag.unwrap_or_default())
        }
        None => (String::new(), String::new()),
    };
    let mut q = vec![
        ("container", container.to_string()),
        ("repo", repo),
        ("tag", tag),
        ("comment", p.get("message").unwrap_or("").to_string()),
        ("author", p.get("author").unwrap_or("").to_string()),
    ];
    for c in p.all("change") {
        q.push(("changes", c));
    }
    // Pausing is the default; only its absence is sent.
    if p.has("pause") && !p.on("pause") {
        q.push(("pause", "0".to_string()));
    }
    let v = ctx.client.request("POST", &format!("/commit?{}", query(&q)), Body::None)?.json()?;
    out(&format!("{}\n", v["Id"].as_str().unwrap_or("")));
    Ok(())
}
