//! `top CONTAINER [ps OPTIONS]`: the daemon's process table (`GET /containers/{id}/top`) laid out
//! by docker's tabwriter (minimum width 20, padding 3). The ps options go to the daemon as
//! `ps_args`; what it does with them is the daemon's business.

use super::client::{enc, query};
use super::flags::Parsed;
use super::format::tabwrite;
use super::{out, Ctx, Error};

pub fn top(ctx: &Ctx, p: Parsed) -> Result<(), Error> {
    let mut path = format!("/containers/{}/top", enc(&p.args[0]));
    if p.args.len() > 1 {
        path.push('?');
        path.push_str(&query(&[("ps_args", p.args[1..].join(" "))]));
    }
    let v = ctx.client.get_json(&path)?;
    let cells = |row: &serde_json::Value| -> String {
        row.as_array()
            .into_iter()
            .flatten()
            .map(|c| c.as_str().map(str::to_string).unwrap_or_else(|| c.to_string()))
            .collect::<Vec<_>>()
            .join("\t")
    };
    let mut text = cells(&v["Titles"]);
    text.push('\n');
    for proc in v["Processes"].as_array().into_iter().flatten() {
        text.push_str(&cells(proc));
        text.push('\n');
    }
    out(&tabwrite(&text, 20, 3));
    Ok(())
}
