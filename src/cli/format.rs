//! Output formatting shared by the verbs: docker's table writer (Go's tabwriter with minwidth 10,
//! padding 3), human sizes and durations (go-units), Go-style quoting and truncation, and the
//! `json.Indent` re-indenter `docker inspect` prints through. No I/O here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Aligns tab-separated cells the way Go's `tabwriter.NewWriter(out, minwidth, 1, padding, ' ', 0)`
/// does: a cell ended by a tab is padded to its column block's width; the last cell of a line
/// is not part of any column.
pub fn tabwrite(text: &str, minwidth: usize, padding: usize) -> String {
    let mut lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    // A trailing newline leaves one empty line behind; it is not output.
    let ends_nl = text.ends_with('\n');
    if ends_nl {
        lines.pop();
    }
    let mut out = String::new();
    let mut widths = Vec::new();
    format_block(&lines, 0, lines.len(), &mut widths, minwidth, padding, &mut out);
    if !ends_nl && out.ends_with('\n') {
        out.pop();
    }
    out
}

fn cell_width(s: &str) -> usize {
    s.chars().count()
}

/// Go's `tabwriter.(*Writer).format`: recursively finds the column blocks.
fn format_block(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(&lines[line0..this], widths, out);
        line0 = this;
        let mut width = minwidth;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(cell_width(lines[this][column]) + padding);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, minwidth, padding, out);
        widths.pop();
        line0 = this;
    }
    write_lines(&lines[line0..line1], widths, out);
}

fn write_lines(lines: &[Vec<&str>], widths: &[usize], out: &mut String) {
    for line in lines {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() {
                out.extend(std::iter::repeat_n(' ', widths[j].saturating_sub(cell_width(cell))));
            }
        }
        out.push('\n');
    }
}

/// Go's `%.*g` for a non-negative value: `precision` significant digits, trailing zeros removed,
/// exponent form when the exponent is below -4 or at least `precision`.
fn go_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let p = precision.max(1);
    // Round to p significant digits first; the exponent comes from the rounded value.
    let sci = format!("{:.*e}", p - 1, v);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= i32::try_from(p).unwrap_or(i32::MAX) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), exp.abs())
    } else {
        let decimals = usize::try_from(i32::try_from(p).unwrap_or(0) - 1 - exp).unwrap_or(0);
        trim(&format!("{v:.decimals$}"))
    }
}

/// go-units `HumanSizeWithPrecision(size, 3)`: 1000-based units, 3 significant digits (`4.26MB`).
pub fn human_size(size: f64) -> String {
    human_size_prec(size, 3)
}

/// go-units `HumanSizeWithPrecision` with any precision (`HumanSize` is 4).
pub fn human_size_prec(size: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(s, precision), UNITS[i])
}

/// go-units `BytesSize`: 1024-based units, 4 significant digits (`15.5GiB`).
pub fn human_bytes(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1024.0 && i < UNITS.len() - 1 {
        s /= 1024.0;
        i += 1;
    }
    format!("{}{}", go_g(s, 4), UNITS[i])
}

/// go-units `HumanDuration`: "Less than a second", "About a minute", "3 hours", "2 weeks"…
pub fn human_duration(secs_f: f64) -> String {
    let seconds = secs_f as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Hours are rounded to the nearest hour, as time.Duration.Round(time.Hour) does.
    let hours = ((secs_f / 3600.0) + 0.5).floor() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs_f / 3600.0) as i64 / 24 / 365)
}

/// Seconds since the epoch, now.
pub fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// `HumanDuration(now - t) + " ago"` for a unix timestamp.
pub fn ago(unix: i64) -> String {
    format!("{} ago", human_duration(now_secs() - unix as f64))
}

/// Go's `time.Unix(t, 0).String()` in UTC: `2024-02-29 23:59:59 +0000 UTC`.
pub fn unix_string(unix: i64) -> String {
    let s = crate::timefmt::rfc3339_nanos(unix, 0);
    format!("{} {} +0000 UTC", &s[..10], &s[11..19])
}

/// docker's `formatter.Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 1 {
        return s.chars().take(1).collect();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote`: double quotes, backslash escapes for quotes, backslashes and
/// non-printable characters; printable Unicode kept as is.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `stringid.TruncateID`: the hex after any `sha256:` prefix, cut to 12 characters.
pub fn short_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, h)| h);
    id.chars().take(12).collect()
}

/// Go's `json.Indent(dst, src, "", indent)`: keeps the document's own key order and bytes,
/// drops insignificant whitespace, puts one element per line and `": "` after keys; empty
/// arrays and objects stay `[]` and `{}`.
pub fn json_indent(src: &[u8], indent: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    // Set after an opening bracket until we see whether the container is empty.
    let mut pending_open = false;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        for _ in 0..depth {
            out.extend_from_slice(indent.as_bytes());
        }
    };
    for &b in src {
        if in_str {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        if b.is_ascii_whitespace() {
            continue;
        }
        if pending_open {
            pending_open = false;
            if b == b']' || b == b'}' {
                depth -= 1;
                out.push(b);
                continue;
            }
            newline(&mut out, depth);
        }
        match b {
            b'"' => {
                in_str = true;
                out.push(b);
            }
            b'{' | b'[' => {
                out.push(b);
                depth += 1;
                pending_open = true;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(4_264_000.0), "4.26MB");
        assert_eq!(human_size(1_981_234.0), "1.98MB");
        assert_eq!(human_size(5_000_000.0), "5MB");
        assert_eq!(human_size(12_345_678.0), "12.3MB");
        assert_eq!(human_size(123_456_789.0), "123MB");
        // %.3g of 999.5 rounds up to an exponent form, as Go prints it.
        assert_eq!(human_size(999_500.0), "1e+03kB");
        assert_eq!(human_size(1.5e9), "1.5GB");
    }

    #[test]
    fn durations_like_go_units() {
        assert_eq!(human_duration(0.3), "Less than a second");
        assert_eq!(human_duration(1.2), "1 second");
        assert_eq!(human_duration(59.0), "59 seconds");
        assert_eq!(human_duration(60.0), "About a minute");
        assert_eq!(human_duration(119.0), "About a minute");
        assert_eq!(human_duration(120.0), "2 minutes");
        assert_eq!(human_duration(3599.0), "59 minutes");
        assert_eq!(human_duration(3600.0 * 1.4), "About an hour");
        assert_eq!(human_duration(3600.0 * 1.6), "2 hours");
        assert_eq!(human_duration(3600.0 * 47.0), "47 hours");
        assert_eq!(human_duration(86400.0 * 3.0), "3 days");
        assert_eq!(human_duration(86400.0 * 20.0), "2 weeks");
        assert_eq!(human_duration(86400.0 * 90.0), "3 months");
        assert_eq!(human_duration(86400.0 * 365.25 * 56.0), "56 years");
    }

    #[test]
    fn tabwriter_pads_like_go() {
        let t = tabwrite("CONTAINER ID\tIMAGE\tPORTS\tNAMES\nabc\tlocalhost/busybox\t\tt1\n", 10, 3);
        assert_eq!(
            t,
            "CONTAINER ID   IMAGE               PORTS     NAMES\nabc            localhost/busybox             t1\n"
        );
        // Lines with fewer cells end a column block.
        assert_eq!(tabwrite("a\tb\nlong-cell\n", 1, 1), "a b\nlong-cell\n");
        // Width counts characters, not bytes.
        assert_eq!(tabwrite("é…\tx\n", 1, 1), "é… x\n");
    }

    #[test]
    fn quoting_and_truncation() {
        assert_eq!(ellipsis("sh -c 'echo hello world'", 20), "sh -c 'echo hello w…");
        assert_eq!(go_quote(&ellipsis("sh -c 'echo hello world'", 20)), "\"sh -c 'echo hello w…\"");
        assert_eq!(go_quote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\x01\"");
        assert_eq!(short_id("sha256:63aa08cecdf4abcdef"), "63aa08cecdf4");
        assert_eq!(unix_string(0), "1970-01-01 00:00:00 +0000 UTC");
    }

    #[test]
    fn indent_keeps_order() {
        let src = br#"[{"Id":"x","A":[],"B":{},"C":[1,{"k":"a,b:c"}],"D":"q\"}"}]"#;
        let want = "[\n    {\n        \"Id\": \"x\",\n        \"A\": [],\n        \"B\": {},\n        \"C\": [\n            1,\n            {\n                \"k\": \"a,b:c\"\n            }\n        ],\n        \"D\": \"q\\\"}\"\n    }\n]";
        assert_eq!(String::from_utf8(json_indent(src, "    ")).unwrap(), want);
    }
}
