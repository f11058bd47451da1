//! The json-file log: Docker's `json.log` format, one JSON object per line, rotated by size.
//!
//! Owns line splitting, the exact byte encoding Docker's json-file driver uses, and rotation.
//! It does not read logs back (`docker logs` is the daemon's reader of these files).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Docker's copier buffer: a line longer than this is logged in pieces without a trailing
/// newline, so one runaway line cannot grow the monitor's memory.
pub const MAX_LINE: usize = 16 * 1024;

/// Splits one stream's bytes into log entries: each complete line with its `\n`, or a
/// [`MAX_LINE`] piece of a longer one. The unfinished tail waits for more bytes or [`finish`].
///
/// [`finish`]: LineSplitter::finish
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds `data`, calling `emit` for every entry it completes.
    pub fn feed(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8])) {
        while !data.is_empty() {
            let room = MAX_LINE - self.pending.len();
            let window = &data[..data.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if self.pending.is_empty() {
                        emit(&data[..=i]);
                    } else {
                        self.pending.extend_from_slice(&data[..=i]);
                        emit(&self.pending);
                        self.pending.clear();
                    }
                    data = &data[i + 1..];
                }
                None if window.len() == room => {
                    self.pending.extend_from_slice(window);
                    emit(&self.pending);
                    self.pending.clear();
                    data = &data[room..];
                }
                None => {
                    self.pending.extend_from_slice(window);
                    data = &[];
                }
            }
        }
        // Give back the memory of a long partial line once it has been logged.
        if self.pending.capacity() > 4096 && self.pending.is_empty() {
            self.pending = Vec::new();
        }
    }

    /// Emits the unfinished last line, if any (the stream has ended).
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
        }
        self.pending = Vec::new();
    }
}

/// Appends one json-file entry to `out`: `{"log":…,"stream":…,"time":…}` and a newline, encoded
/// byte for byte as Docker's json-file driver does (its ffjson-derived encoder): `\n \r \t \" \\`
/// as short escapes, other control bytes and `< > &` as `\u00XX`, invalid UTF-8 as U+FFFD, and
/// U+2028/U+2029 escaped, so tools that compare or grep Docker's files see the same bytes.
pub fn encode_entry(out: &mut Vec<u8>, line: &[u8], stream: &str, time: &str) {
    out.extend_from_slice(b"{\"log\":\"");
    escape_into(out, line);
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

fn escape_into(out: &mut Vec<u8>, mut s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    while !s.is_empty() {
        let (valid, rest) = match std::str::from_utf8(s) {
            Ok(v) => (v, &[][..]),
            Err(e) => {
                let good = e.valid_up_to();
                let v = std::str::from_utf8(&s[..good]).unwrap_or_default();
                // Go's decoder (and so Docker) replaces each undecodable byte on its own.
                (v, &s[good + 1..])
            }
        };
        for c in valid.chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{2028}' => out.extend_from_slice(b"\\u2028"),
                '\u{2029}' => out.extend_from_slice(b"\\u2029"),
                c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                    let b = c as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        if valid.len() < s.len() {
            out.extend_from_slice(b"\\ufffd");
        }
        s = rest;
    }
}

/// Go's `time.RFC3339Nano` as Docker prints it (`json.log` times, inspect's `StartedAt`): the
/// fraction loses its trailing zeros, and disappears when it is zero.
pub fn go_time_now() -> String {
    trim_fraction(&crate::timefmt::now_rfc3339())
}

fn trim_fraction(t: &str) -> String {
    let Some(dot) = t.find('.') else { return t.to_string() };
    let frac = t[dot + 1..].trim_end_matches('Z').trim_end_matches('0');
    if frac.is_empty() {
        format!("{}Z", &t[..dot])
    } else {
        format!("{}.{frac}Z", &t[..dot])
    }
}

/// `json.log` and its rotated generations `json.log.1` (newest) … `json.log.<max_files-1>`.
pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    /// 0: never rotate.
    max_size: u64,
    max_files: u32,
    buf: Vec<u8>,
}

impl JsonLog {
    /// Opens `path` for appending (a restarted container continues its log, as Docker's does).
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<JsonLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog { path: path.to_path_buf(), file, size, max_size, max_files: max_files.max(1), buf: Vec::new() })
    }

    /// Writes one entry. Failures (a full disk) are returned but leave the log usable: the next
    /// entry is tried again, and the container is never held up by its log.
    pub fn write(&mut self, line: &[u8], stream: &str, time: &str) -> io::Result<()> {
        self.buf.clear();
        encode_entry(&mut self.buf, line, stream, time);
        let len = self.buf.len() as u64;
        if self.max_size > 0 && self.size > 0 && self.size + len > self.max_size {
            self.rotate()?;
        }
        // One write(2) per entry: a reader following the file never sees half a line for long,
        // and whatever was written survives the death of any other process.
        self.file.write_all(&self.buf)?;
        self.size += len;
        if self.buf.capacity() > 4 * MAX_LINE {
            self.buf = Vec::new();
        }
        Ok(())
    }

    fn generation(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    /// Shifts `json.log.i` to `json.log.i+1` (dropping the oldest), `json.log` to `json.log.1`,
    /// and starts an empty `json.log`. With one file allowed, the log is truncated instead.
    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for n in (1..self.max_files - 1).rev() {
            match std::fs::rename(self.generation(n), self.generation(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, self.generation(1))?;
        self.file = OpenOptions::new().create(true).write(true).truncate(true).open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |l| out.push(l.to_vec()));
        }
        s.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn splits_lines_across_chunks_and_flushes_the_tail() {
        assert_eq!(split(&[b"a\nb", b"c\n", b"d"]), vec![b"a\n".to_vec(), b"bc\n".to_vec(), b"d".to_vec()]);
        assert_eq!(split(&[b"\n\n"]), vec![b"\n".to_vec(), b"\n".to_vec()]);
        assert!(split(&[b""]).is_empty());
    }

    #[test]
    fn long_lines_are_cut_at_max_line() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let mut data = long.clone();
        data.push(b'\n');
        let out = split(&[&data[..100], &data[100..]]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1].len(), MAX_LINE);
        assert_eq!(out[2], b"xxxxxxxxxx\n");
    }

    #[test]
    fn encodes_like_dockers_json_file_driver() {
        let mut out = Vec::new();
        encode_entry(&mut out, b"a\"b\\c\td<&>\x01\r\n", "stdout", "2026-01-02T03:04:05.5Z");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"log\":\"a\\\"b\\\\c\\td\\u003c\\u0026\\u003e\\u0001\\r\\n\",\"stream\":\"stdout\",\
             \"time\":\"2026-01-02T03:04:05.5Z\"}\n"
        );
        let mut out = Vec::new();
        encode_entry(&mut out, b"\xff\xfeok \xe2\x80\xa8 \xc3\xa9", "stderr", "t");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("{\"log\":\"\\ufffd\\ufffdok \\u2028 \u{e9}\""), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["log"], "\u{fffd}\u{fffd}ok \u{2028} \u{e9}");
    }

    #[test]
    fn time_fraction_is_trimmed_like_go() {
        assert_eq!(trim_fraction("2026-01-02T03:04:05.120000000Z"), "2026-01-02T03:04:05.12Z");
        assert_eq!(trim_fraction("2026-01-02T03:04:05.000000000Z"), "2026-01-02T03:04:05Z");
        assert_eq!(trim_fraction("2026-01-02T03:04:05.123456789Z"), "2026-01-02T03:04:05.123456789Z");
    }

    #[test]
    fn rotates_by_size_keeping_at_most_max_files() {
        let d = crate::store::atomic::tests::temp_dir("jsonlog");
        let p = d.join("json.log");
        let mut log = JsonLog::open(&p, 200, 3).unwrap();
        for i in 0..40 {
            log.write(format!("line {i}\n").as_bytes(), "stdout", "2026-01-02T03:04:05Z").unwrap();
        }
        let mut names: Vec<String> =
            std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["json.log", "json.log.1", "json.log.2"]);
        for n in &names {
            assert!(std::fs::metadata(d.join(n)).unwrap().len() <= 200, "{n} too big");
        }
        let last = std::fs::read_to_string(&p).unwrap();
        assert!(last.ends_with("{\"log\":\"line 39\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-02T03:04:05Z\"}\n"));
        // One file allowed: truncate in place.
        let p1 = d.join("one.log");
        let mut log = JsonLog::open(&p1, 100, 1).unwrap();
        for i in 0..10 {
            log.write(format!("line {i}\n").as_bytes(), "stdout", "t").unwrap();
        }
        assert!(std::fs::metadata(&p1).unwrap().len() <= 100);
        assert!(!d.join("one.log.1").exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
