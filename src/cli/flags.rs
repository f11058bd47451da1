//! docker's flag syntax (spf13/pflag): `--name=v`, `--name v`, `-n v`, `-nv`, `-n=v`, grouped
//! booleans (`-it`), `--` ending flags, repeated flags collected in order, and — for `run`,
//! `create` and `exec` — flags only before the first positional argument, so everything after
//! the image belongs to the command. Errors carry pflag's wording.

use std::collections::HashMap;

/// One flag a verb accepts.
#[derive(Clone, Copy)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    pub takes_value: bool,
}

/// A boolean flag.
pub const fn b(long: &'static str, short: Option<char>) -> Flag {
    Flag { long, short, takes_value: false }
}

/// A flag with a value.
pub const fn v(long: &'static str, short: Option<char>) -> Flag {
    Flag { long, short, takes_value: true }
}

/// The parsed command line of one verb.
#[derive(Default, Debug)]
pub struct Parsed {
    values: HashMap<&'static str, Vec<String>>,
    pub args: Vec<String>,
    pub help: bool,
}

impl Parsed {
    /// The last value given for `long`.
    pub fn get(&self, long: &str) -> Option<&str> {
        self.values.get(long).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every value given for `long`, in order.
    pub fn all(&self, long: &str) -> Vec<String> {
        self.values.get(long).cloned().unwrap_or_default()
    }

    /// A boolean: present without `=false`.
    pub fn on(&self, long: &str) -> bool {
        self.get(long).is_some_and(|v| v != "false" && v != "0")
    }

    pub fn has(&self, long: &str) -> bool {
        self.values.contains_key(long)
    }
}

/// How pflag names a flag in its errors: `-p, --pause`, or `--rm` without a shorthand.
fn display_name(f: &Flag) -> String {
    match f.short {
        Some(c) => format!("-{c}, --{}", f.long),
        None => format!("--{}", f.long),
    }
}

fn bool_value(v: &str, name: &str) -> Result<String, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok("true".into()),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok("false".into()),
        _ => Err(format!(
            "invalid argument \"{v}\" for \"{name}\" flag: strconv.ParseBool: parsing \"{v}\": invalid syntax"
        )),
    }
}

/// Parses `args` (the words after the verb). `interspersed = false` stops at the first positional.
pub fn parse(args: &[String], spec: &[Flag], interspersed: bool) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            p.args.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            if name == "help" {
                p.help = true;
                continue;
            }
            let Some(f) = spec.iter().find(|f| f.long == name) else {
                return Err(format!("unknown flag: --{name}"));
            };
            let value = if f.takes_value {
                match inline {
                    Some(v) => v,
                    None => {
                        let Some(v) = args.get(i) else { return Err(format!("flag needs an argument: --{name}")) };
                        i += 1;
                        v.clone()
                    }
                }
            } else {
                match inline {
                    Some(v) => bool_value(&v, &display_name(f))?,
                    None => "true".into(),
                }
            };
            p.values.entry(f.long).or_default().push(value);
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut k = 0;
            while k < chars.len() {
                let c = chars[k];
                k += 1;
                if c == 'h' && !spec.iter().any(|f| f.short == Some('h')) {
                    p.help = true;
                    continue;
                }
                let Some(f) = spec.iter().find(|f| f.short == Some(c)) else {
                    return Err(format!("unknown shorthand flag: '{c}' in {a}"));
                };
                if f.takes_value {
                    let rest: String = chars[k..].iter().collect();
                    let value = if !rest.is_empty() {
                        rest.strip_prefix('=').map(str::to_string).unwrap_or(rest)
                    } else {
                        let Some(v) = args.get(i) else {
                            return Err(format!("flag needs an argument: '{c}' in {a}"));
                        };
                        i += 1;
                        v.clone()
                    };
                    p.values.entry(f.long).or_default().push(value);
                    break;
                }
                let value = if chars.get(k) == Some(&'=') {
                    let v: String = chars[k + 1..].iter().collect();
                    k = chars.len();
                    bool_value(&v, &display_name(f))?
                } else {
                    "true".into()
                };
                p.values.entry(f.long).or_default().push(value);
            }
            continue;
        }
        p.args.push(a.clone());
        if !interspersed {
            p.args.extend(args[i..].iter().cloned());
            break;
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &[Flag] =
        &[b("interactive", Some('i')), b("tty", Some('t')), v("env", Some('e')), v("name", None), b("rm", None)];

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn docker_syntax() {
        let p = parse(&words("-it -e A=1 --env=B=2 -eC=3 --name web --rm=false img sh -c -x"), SPEC, false).unwrap();
        assert!(p.on("interactive") && p.on("tty"));
        assert_eq!(p.all("env"), ["A=1", "B=2", "C=3"]);
        assert_eq!(p.get("name"), Some("web"));
        assert!(!p.on("rm") && p.has("rm"));
        assert_eq!(p.args, ["img", "sh", "-c", "-x"]);
        let p = parse(&words("a -i b"), SPEC, true).unwrap();
        assert_eq!(p.args, ["a", "b"]);
        assert!(p.on("interactive"));
        let p = parse(&words("-- -i"), SPEC, true).unwrap();
        assert_eq!(p.args, ["-i"]);
    }

    #[test]
    fn pflag_errors() {
        assert_eq!(parse(&words("--bogus"), SPEC, true).unwrap_err(), "unknown flag: --bogus");
        assert_eq!(parse(&words("-iz"), SPEC, true).unwrap_err(), "unknown shorthand flag: 'z' in -iz");
        assert_eq!(parse(&words("--name"), SPEC, true).unwrap_err(), "flag needs an argument: --name");
        assert_eq!(parse(&words("-e"), SPEC, true).unwrap_err(), "flag needs an argument: 'e' in -e");
        assert!(parse(&words("--help"), SPEC, true).unwrap().help);
    }
}
