//! The subset of Go's text/template that `--format` strings use, evaluated over JSON values:
//! fields (`.State.Status`), variables, pipelines, parentheses, `if`/`else if`/`else`,
//! `range` (with `$i, $v :=`), `with`, trim markers, comments, Go's builtins (`index`, `len`,
//! `eq`…, `and`, `or`, `not`, `print*`) and docker's additions (`json`, `join`, `split`, `upper`,
//! `lower`, `title`, `pad`, `truncate`). Values print as Go prints them (`[a b]`, `map[k:v]`).
//!
//! Keys beginning with `~` are hidden: `{{json .}}` leaves them out, and a field lookup falls
//! back to them, so a row can carry method-like fields (`.Label "k"`) that docker's JSON omits.

use serde_json::Value;

/// A parsed template.
#[derive(Debug)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` (empty for `.`).
    Field(Vec<String>),
    /// `$x.A.B` (`$` is the root).
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Func(String),
    Paren(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Ident(String),
    Open,
    Close(Vec<String>),
    Pipe,
    Decl,
    Assign,
    Comma,
}

/// Every function a template may call.
const FUNCS: &[&str] = &[
    "json", "join", "split", "upper", "lower", "title", "pad", "truncate", "len", "index", "eq", "ne", "lt", "le",
    "gt", "ge", "not", "and", "or", "print", "println", "printf",
];

fn err<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

/// Splits `.A.B` style chains; `s` starts at a '.'.
fn field_chain(s: &str) -> Vec<String> {
    s.split('.').filter(|p| !p.is_empty()).map(str::to_string).collect()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let take_chain = |i: &mut usize| -> String {
        let st = *i;
        while *i < cs.len() && (is_ident(cs[*i]) || cs[*i] == '.') {
            *i += 1;
        }
        cs[st..*i].iter().collect()
    };
    while i < cs.len() {
        let c = cs[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                i += 1;
                let chain = if i < cs.len() && cs[i] == '.' { field_chain(&take_chain(&mut i)) } else { Vec::new() };
                out.push(Tok::Close(chain));
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if cs.get(i + 1) == Some(&'=') => {
                out.push(Tok::Decl);
                i += 2;
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(&c) = cs.get(i) else { return err("unterminated quoted string") };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let Some(&e) = cs.get(i) else { return err("unterminated quoted string") };
                            i += 1;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '0' => '\0',
                                other => other,
                            });
                        }
                        c => s.push(c),
                    }
                }
                out.push(Tok::Str(s));
            }
            '`' => {
                i += 1;
                let st = i;
                while i < cs.len() && cs[i] != '`' {
                    i += 1;
                }
                if i >= cs.len() {
                    return err("unterminated raw quoted string");
                }
                out.push(Tok::Str(cs[st..i].iter().collect()));
                i += 1;
            }
            '.' => {
                let chain = take_chain(&mut i);
                out.push(Tok::Field(field_chain(&chain)));
            }
            '$' => {
                i += 1;
                let st = i;
                while i < cs.len() && is_ident(cs[i]) {
                    i += 1;
                }
                let name: String = cs[st..i].iter().collect();
                let chain = if i < cs.len() && cs[i] == '.' { field_chain(&take_chain(&mut i)) } else { Vec::new() };
                out.push(Tok::Var(name, chain));
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let st = i;
                i += 1;
                while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '.') {
                    i += 1;
                }
                let s: String = cs[st..i].iter().collect();
                out.push(Tok::Num(s.parse().map_err(|_| format!("bad number syntax: \"{s}\""))?));
            }
            c if is_ident(c) => {
                let st = i;
                while i < cs.len() && is_ident(cs[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(cs[st..i].iter().collect()));
            }
            other => return err(format!("unexpected \"{other}\" in command")),
        }
    }
    Ok(out)
}

struct PipeParser {
    toks: Vec<Tok>,
    pos: usize,
}

impl PipeParser {
    fn pipe(&mut self, inner: bool) -> Result<Pipe, String> {
        let mut decl = Vec::new();
        // `$x :=` or `$i, $v :=`
        let save = self.pos;
        let mut names = Vec::new();
        while let Some(Tok::Var(n, chain)) = self.toks.get(self.pos) {
            if !chain.is_empty() {
                break;
            }
            names.push(n.clone());
            self.pos += 1;
            if self.toks.get(self.pos) == Some(&Tok::Comma) {
                self.pos += 1;
                continue;
            }
            break;
        }
        if !names.is_empty() && matches!(self.toks.get(self.pos), Some(Tok::Decl) | Some(Tok::Assign)) {
            self.pos += 1;
            decl = names;
        } else {
            self.pos = save;
        }
        let mut cmds = Vec::new();
        let mut cmd = Vec::new();
        while let Some(t) = self.toks.get(self.pos).cloned() {
            self.pos += 1;
            match t {
                Tok::Pipe => {
                    if cmd.is_empty() {
                        return err("missing command");
                    }
                    cmds.push(std::mem::take(&mut cmd));
                }
                Tok::Close(chain) => {
                    if !inner {
                        return err("unexpected right paren");
                    }
                    if !cmd.is_empty() {
                        cmds.push(cmd);
                    }
                    // The chain after ')' belongs to the parenthesized value; hand it back.
                    self.toks.insert(self.pos, Tok::Close(chain));
                    return Ok(Pipe { decl, cmds });
                }
                Tok::Open => {
                    let p = self.pipe(true)?;
                    let Some(Tok::Close(chain)) = self.toks.get(self.pos).cloned() else {
                        return err("unclosed left paren");
                    };
                    self.toks.remove(self.pos);
                    cmd.push(Arg::Paren(Box::new(p), chain));
                }
                Tok::Field(f) => cmd.push(Arg::Field(f)),
                Tok::Var(n, f) => cmd.push(Arg::Var(n, f)),
                Tok::Str(s) => cmd.push(Arg::Str(s)),
                Tok::Num(n) => cmd.push(Arg::Num(n)),
                Tok::Ident(id) => cmd.push(match id.as_str() {
                    "true" => Arg::Bool(true),
                    "false" => Arg::Bool(false),
                    "nil" => Arg::Nil,
                    _ if FUNCS.contains(&id.as_str()) => Arg::Func(id),
                    // Go checks function names when it parses.
                    _ => return err(format!("function \"{id}\" not defined")),
                }),
                Tok::Decl | Tok::Assign | Tok::Comma => return err("unexpected token in command"),
            }
        }
        if inner {
            return err("unclosed left paren");
        }
        if !cmd.is_empty() {
            cmds.push(cmd);
        }
        if cmds.is_empty() {
            return err("missing value for command");
        }
        Ok(Pipe { decl, cmds })
    }
}

fn parse_pipe(src: &str) -> Result<Pipe, String> {
    PipeParser { toks: lex(src)?, pos: 0 }.pipe(false)
}

/// One `{{…}}` or text piece, before block structure.
enum Piece {
    Text(String),
    Act(String),
}

fn split_pieces(src: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(i) = rest.find("{{") {
        let mut text = &rest[..i];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[i + 2..];
        let trim_left = after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_left {
            text = text.trim_end();
        }
        pieces.push(Piece::Text(text.to_string()));
        let body_start = if trim_left { 2 } else { 0 };
        let inner = &after[body_start..];
        // Look for the closing delimiter outside quoted strings.
        let mut end = None;
        let bytes = inner.as_bytes();
        let mut k = 0;
        let mut quote: Option<u8> = None;
        while k < bytes.len() {
            let b = bytes[k];
            if let Some(q) = quote {
                if b == b'\\' && q == b'"' {
                    k += 1;
                } else if b == q {
                    quote = None;
                }
            } else if b == b'"' || b == b'`' {
                quote = Some(b);
            } else if inner[k..].starts_with("}}") {
                end = Some(k);
                break;
            }
            k += 1;
        }
        let Some(end) = end else { return err("unclosed action") };
        let mut action = &inner[..end];
        trim_next = false;
        if action.ends_with(" -") || action.ends_with("\t-") || action.ends_with("\n-") {
            action = &action[..action.len() - 2];
            trim_next = true;
        }
        pieces.push(Piece::Act(action.trim().to_string()));
        rest = &inner[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    pieces.push(Piece::Text(text.to_string()));
    Ok(pieces)
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End,
    Else(Option<String>),
}

fn parse_list(pieces: &mut std::iter::Peekable<std::vec::IntoIter<Piece>>) -> Result<(Vec<Node>, Stop), String> {
    let mut nodes = Vec::new();
    while let Some(p) = pieces.next() {
        match p {
            Piece::Text(t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(t));
                }
            }
            Piece::Act(a) => {
                if a.starts_with("/*") {
                    continue;
                }
                let (kw, rest) = match a.split_once(|c: char| c.is_whitespace()) {
                    Some((k, r)) => (k, r.trim()),
                    None => (a.as_str(), ""),
                };
                match kw {
                    "end" => return Ok((nodes, Stop::End)),
                    "else" => {
                        let cond = rest.strip_prefix("if").map(|r| r.trim().to_string());
                        return Ok((nodes, Stop::Else(cond)));
                    }
                    "if" | "range" | "with" => nodes.push(parse_block(kw, rest, pieces)?),
                    "" => return err("missing value for command"),
                    _ => nodes.push(Node::Action(parse_pipe(&a)?)),
                }
            }
        }
    }
    Ok((nodes, Stop::Eof))
}

fn parse_block(
    kw: &str,
    cond: &str,
    pieces: &mut std::iter::Peekable<std::vec::IntoIter<Piece>>,
) -> Result<Node, String> {
    let pipe = parse_pipe(cond)?;
    let (body, end) = parse_list(pieces)?;
    let els = match end {
        Stop::Eof => return err(format!("unexpected EOF in {kw}")),
        Stop::End => Vec::new(),
        Stop::Else(None) => match parse_list(pieces)? {
            (els, Stop::End) => els,
            _ => return err(format!("expected end; found else in {kw}")),
        },
        // `else if c` is an `if` nested in the else branch that shares our `end`.
        Stop::Else(Some(c)) => vec![parse_block("if", &c, pieces)?],
    };
    Ok(match kw {
        "if" => Node::If(pipe, body, els),
        "range" => Node::Range(pipe, body, els),
        _ => Node::With(pipe, body, els),
    })
}

impl Template {
    /// Parses `src`; the error reads like Go's (`unclosed action`, `unexpected EOF`…).
    pub fn parse(src: &str) -> Result<Template, String> {
        let pieces = split_pieces(src)?;
        let mut it = pieces.into_iter().peekable();
        let (nodes, end) = parse_list(&mut it)?;
        match end {
            Stop::Eof => Ok(Template { nodes }),
            Stop::End => err("unexpected {{end}}"),
            Stop::Else(_) => err("unexpected {{else}}"),
        }
    }

    /// Executes like `execute`, but a missing field is an error, as it is on docker's typed
    /// row contexts (`can't evaluate field Foo`).
    pub fn execute_strict(&self, dot: &Value) -> Result<String, String> {
        STRICT.with(|s| s.set(true));
        let r = self.execute(dot);
        STRICT.with(|s| s.set(false));
        r
    }

    /// Executes against `dot`; the error names the failing action.
    pub fn execute(&self, dot: &Value) -> Result<String, String> {
        let mut out = String::new();
        let mut vars = vec![(String::new(), dot.clone())];
        exec_list(&self.nodes, dot, &mut vars, &mut out)?;
        Ok(out)
    }
}

type Vars = Vec<(String, Value)>;

fn exec_list(nodes: &[Node], dot: &Value, vars: &mut Vars, out: &mut String) -> Result<(), String> {
    for n in nodes {
        let mark = vars.len();
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipe(p, dot, vars)?;
                if p.decl.is_empty() {
                    out.push_str(&print(&v));
                }
                // A declaration lives until the end of the enclosing block.
                continue;
            }
            Node::If(p, body, els) => {
                let v = eval_pipe(p, dot, vars)?;
                exec_list(if truth(&v) { body } else { els }, dot, vars, out)?;
            }
            Node::With(p, body, els) => {
                let v = eval_pipe(p, dot, vars)?;
                if truth(&v) {
                    exec_list(body, &v, vars, out)?;
                } else {
                    exec_list(els, dot, vars, out)?;
                }
            }
            Node::Range(p, body, els) => {
                let mut plain = p.clone();
                plain.decl.clear();
                let v = eval_pipe(&plain, dot, vars)?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Array(a) => a.iter().enumerate().map(|(i, x)| (Value::from(i), x.clone())).collect(),
                    Value::Object(o) => o.iter().map(|(k, x)| (Value::from(k.clone()), x.clone())).collect(),
                    Value::Null => Vec::new(),
                    Value::Number(n) => {
                        (0..n.as_i64().unwrap_or(0)).map(|i| (Value::from(i), Value::from(i))).collect()
                    }
                    other => return err(format!("range can't iterate over {}", print(other))),
                };
                if items.is_empty() {
                    exec_list(els, dot, vars, out)?;
                }
                for (k, x) in items {
                    let m = vars.len();
                    match p.decl.as_slice() {
                        [v] => vars.push((v.clone(), x.clone())),
                        [kn, vn] => {
                            vars.push((kn.clone(), k));
                            vars.push((vn.clone(), x.clone()));
                        }
                        _ => {}
                    }
                    exec_list(body, &x, vars, out)?;
                    vars.truncate(m);
                }
            }
        }
        vars.truncate(mark);
    }
    Ok(())
}

fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

thread_local! {
    /// Set while `execute_strict` runs.
    static STRICT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marker for a key that does not exist (Go prints `<no value>`).
const NO_VALUE: &str = "\u{0}<no value>";

fn lookup(v: &Value, chain: &[String]) -> Result<Value, String> {
    let mut cur = v.clone();
    for (i, f) in chain.iter().enumerate() {
        cur = match &cur {
            Value::Object(o) => match o.get(f).or_else(|| o.get(&format!("~{f}"))) {
                Some(x) => x.clone(),
                // Strict about the context's own fields only: deeper objects may be Go maps
                // (labels, attributes), where a missing key is just no value.
                None if i == 0 && STRICT.with(|s| s.get()) => return err(format!("can't evaluate field {f}")),
                None => Value::String(NO_VALUE.into()),
            },
            Value::Null => return err(format!("nil pointer evaluating .{f}")),
            other => return err(format!("can't evaluate field {f} in type {}", type_name(other))),
        };
    }
    Ok(cur)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

fn eval_pipe(p: &Pipe, dot: &Value, vars: &mut Vars) -> Result<Value, String> {
    let mut piped: Option<Value> = None;
    for cmd in &p.cmds {
        piped = Some(eval_cmd(cmd, dot, vars, piped)?);
    }
    let v = piped.unwrap_or(Value::Null);
    if let Some(name) = p.decl.last() {
        vars.push((name.clone(), v.clone()));
    }
    Ok(v)
}

fn eval_arg(a: &Arg, dot: &Value, vars: &mut Vars) -> Result<Value, String> {
    match a {
        Arg::Field(f) => lookup(dot, f),
        Arg::Var(n, f) => {
            // The root is stored under the empty name, `$x` under `x`.
            let v = vars
                .iter()
                .rev()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("undefined variable: ${n}"))?;
            lookup(&v, f)
        }
        Arg::Str(s) => Ok(Value::String(s.clone())),
        Arg::Num(n) => Ok(num(*n)),
        Arg::Bool(b) => Ok(Value::Bool(*b)),
        Arg::Nil => Ok(Value::Null),
        Arg::Func(f) => call(f, Vec::new()),
        Arg::Paren(p, f) => {
            let v = eval_pipe(p, dot, vars)?;
            lookup(&v, f)
        }
    }
}

fn num(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn eval_cmd(cmd: &[Arg], dot: &Value, vars: &mut Vars, piped: Option<Value>) -> Result<Value, String> {
    match &cmd[0] {
        Arg::Func(f) => {
            let mut args = Vec::new();
            for a in &cmd[1..] {
                args.push(eval_arg(a, dot, vars)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            call(f, args)
        }
        first => {
            let v = eval_arg(first, dot, vars)?;
            if cmd.len() == 1 && piped.is_none() {
                return Ok(v);
            }
            // A "method" with arguments (`.Label "k"`): index the map by the argument.
            let mut args = Vec::new();
            for a in &cmd[1..] {
                args.push(eval_arg(a, dot, vars)?);
            }
            args.extend(piped);
            match (&v, args.as_slice()) {
                (Value::Object(o), [Value::String(k)]) => Ok(o.get(k).cloned().unwrap_or(Value::String(String::new()))),
                _ => err(format!("can't give argument to non-function {}", print(&v))),
            }
        }
    }
}

fn s(v: &Value) -> String {
    print(v)
}

fn cmp(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            Ok(x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(std::cmp::Ordering::Equal))
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Null, Value::Null) => Ok(std::cmp::Ordering::Equal),
        _ => err("incompatible types for comparison"),
    }
}

fn call(f: &str, a: Vec<Value>) -> Result<Value, String> {
    let need = |n: usize| -> Result<(), String> {
        if a.len() < n {
            err(format!("wrong number of args for {f}: want {n} got {}", a.len()))
        } else {
            Ok(())
        }
    };
    Ok(match f {
        "json" => {
            need(1)?;
            // Go's encoder escapes <, > and & for HTML; docker's output shows `\u003cnone\u003e`.
            let text = serde_json::to_string(&strip_hidden(&a[0])).map_err(|e| e.to_string())?;
            Value::String(text.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026"))
        }
        "join" => {
            need(2)?;
            let items: Vec<String> = match &a[0] {
                Value::Array(x) => x.iter().map(s).collect(),
                other => vec![s(other)],
            };
            Value::String(items.join(&s(&a[1])))
        }
        "split" => {
            need(2)?;
            Value::Array(s(&a[0]).split(&s(&a[1])).map(|x| Value::String(x.to_string())).collect())
        }
        "upper" => Value::String(s(a.first().unwrap_or(&Value::Null)).to_uppercase()),
        "lower" => Value::String(s(a.first().unwrap_or(&Value::Null)).to_lowercase()),
        "title" => {
            need(1)?;
            let mut out = String::new();
            let mut start = true;
            for c in s(&a[0]).chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = !c.is_alphanumeric();
            }
            Value::String(out)
        }
        "pad" => {
            need(3)?;
            let l = a[1].as_u64().unwrap_or(0) as usize;
            let r = a[2].as_u64().unwrap_or(0) as usize;
            // An empty string stays empty, as docker's padWithSpace leaves it.
            let text = s(&a[0]);
            Value::String(if text.is_empty() { text } else { format!("{}{text}{}", " ".repeat(l), " ".repeat(r)) })
        }
        "truncate" => {
            need(2)?;
            let n = a[1].as_u64().unwrap_or(0) as usize;
            Value::String(s(&a[0]).chars().take(n).collect())
        }
        "len" => {
            need(1)?;
            Value::from(match &a[0] {
                Value::Array(x) => x.len(),
                Value::Object(o) => o.len(),
                Value::String(x) => x.len(),
                other => return err(format!("len of type {}", type_name(other))),
            })
        }
        "index" => {
            need(1)?;
            let mut cur = a[0].clone();
            for k in &a[1..] {
                cur = match (&cur, k) {
                    // docker's maps are map[string]string: a missing key is "".
                    (Value::Object(o), Value::String(k)) => o.get(k).cloned().unwrap_or(Value::String(String::new())),
                    (Value::Array(x), Value::Number(n)) => {
                        let i = n.as_u64().unwrap_or(u64::MAX) as usize;
                        x.get(i).cloned().ok_or_else(|| format!("error calling index: index out of range: {i}"))?
                    }
                    (Value::Null, _) => Value::Null,
                    _ => return err("error calling index: cannot index"),
                };
            }
            cur
        }
        "eq" => {
            need(2)?;
            let mut any = false;
            for b in &a[1..] {
                any |= cmp(&a[0], b)? == std::cmp::Ordering::Equal;
            }
            Value::Bool(any)
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            need(2)?;
            let o = cmp(&a[0], &a[1])?;
            use std::cmp::Ordering::*;
            Value::Bool(match f {
                "ne" => o != Equal,
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            })
        }
        "not" => {
            need(1)?;
            Value::Bool(!truth(&a[0]))
        }
        "and" => {
            need(1)?;
            a.iter().find(|v| !truth(v)).unwrap_or(&a[a.len() - 1]).clone()
        }
        "or" => {
            need(1)?;
            a.iter().find(|v| truth(v)).unwrap_or(&a[a.len() - 1]).clone()
        }
        "print" => Value::String(go_print(&a, false)),
        "println" => Value::String(go_print(&a, true)),
        "printf" => {
            need(1)?;
            Value::String(printf(&s(&a[0]), &a[1..]))
        }
        other => return err(format!("function \"{other}\" not defined")),
    })
}

/// `fmt.Sprint` / `fmt.Sprintln`: Sprint puts spaces between operands when neither is a string.
fn go_print(a: &[Value], ln: bool) -> String {
    let mut out = String::new();
    for (i, v) in a.iter().enumerate() {
        if i > 0 && (ln || (!a[i - 1].is_string() && !v.is_string())) {
            out.push(' ');
        }
        out.push_str(&print(v));
    }
    if ln {
        out.push('\n');
    }
    out
}

fn printf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut n = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // Flags and width are accepted and ignored, except a plain width for %s/%d.
        let mut width = String::new();
        while let Some(&d) = it.peek() {
            if d.is_ascii_digit() || d == '-' {
                width.push(d);
                it.next();
            } else {
                break;
            }
        }
        let Some(verb) = it.next() else { break };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let v = args.get(n).cloned().unwrap_or(Value::Null);
        n += 1;
        let text = match verb {
            'q' => crate::cli::format::go_quote(&print(&v)),
            _ => print(&v),
        };
        let w: i64 = width.parse().unwrap_or(0);
        let pad = (w.unsigned_abs() as usize).saturating_sub(text.chars().count());
        if w < 0 {
            out.push_str(&text);
            out.push_str(&" ".repeat(pad));
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&text);
        }
    }
    out
}

/// Removes `~` keys (row-only helpers) before JSON output.
fn strip_hidden(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter().filter(|(k, _)| !k.starts_with('~')).map(|(k, x)| (k.clone(), strip_hidden(x))).collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_hidden).collect()),
        other => other.clone(),
    }
}

/// Prints a value as Go's `fmt.Print` prints the typed value.
pub fn print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{f:.0}")
                } else {
                    f.to_string()
                }
            }
        }
        Value::String(s) if s == NO_VALUE => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(print).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .filter(|(k, _)| !k.starts_with('~'))
                .map(|(k, v)| format!("{k}:{}", print(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().execute(v).unwrap()
    }

    #[test]
    fn fields_and_nesting() {
        let v = json!({"ID": "abc", "State": {"Status": "running", "Pid": 42}, "Config": {"Labels": {"a.b": "x"}}});
        assert_eq!(run("{{.ID}} {{.State.Status}} {{.State.Pid}}", &v), "abc running 42");
        assert_eq!(run(r#"{{index .Config.Labels "a.b"}}"#, &v), "x");
        assert_eq!(run("{{.Missing}}", &v), "<no value>");
        assert_eq!(run("{{json .State}}", &v), r#"{"Pid":42,"Status":"running"}"#);
        assert_eq!(run("{{.Config.Labels}}", &v), "map[a.b:x]");
        assert_eq!(run("{{ .ID | upper }}", &v), "ABC");
        assert_eq!(run("{{(index .Config.Labels \"a.b\") | printf \"%q\"}}", &v), "\"x\"");
        assert_eq!(run("{{ (.State).Status }}", &v), "running");
    }

    #[test]
    fn control_flow() {
        let v = json!({"A": [1, 2, 3], "M": {"k1": "v1", "k2": "v2"}, "T": true, "E": "", "N": null});
        assert_eq!(run("{{range .A}}[{{.}}]{{end}}", &v), "[1][2][3]");
        assert_eq!(run("{{range $i, $x := .A}}{{$i}}={{$x}} {{end}}", &v), "0=1 1=2 2=3 ");
        assert_eq!(run("{{range $k, $v := .M}}{{$k}}:{{$v}};{{end}}", &v), "k1:v1;k2:v2;");
        assert_eq!(run("{{range .N}}x{{else}}empty{{end}}", &v), "empty");
        assert_eq!(run("{{if .T}}yes{{else}}no{{end}}", &v), "yes");
        assert_eq!(run("{{if .E}}a{{else if .T}}b{{else}}c{{end}}", &v), "b");
        assert_eq!(run("{{with .M}}{{.k1}}{{end}}", &v), "v1");
        assert_eq!(run("{{if eq .E \"\"}}empty{{end}}", &v), "empty");
        assert_eq!(run("{{if and .T (not .E)}}ok{{end}}", &v), "ok");
        assert_eq!(run("{{len .A}} {{join (split \"a,b\" \",\") \"-\"}}", &v), "3 a-b");
        assert_eq!(run("a  {{- \" b \" -}}  c", &v), "a b c");
        assert_eq!(run("{{/* comment */}}x", &v), "x");
        assert_eq!(run("{{$x := .T}}{{if $x}}set{{end}} {{$.E}}.", &v), "set .");
        assert_eq!(run("{{.A}}", &v), "[1 2 3]");
    }

    #[test]
    fn label_method_and_errors() {
        let row = json!({"Names": "web", "~Label": {"k": "v"}});
        assert_eq!(run(r#"{{.Label "k"}}|{{.Label "zz"}}|{{json .}}"#, &row), r#"v||{"Names":"web"}"#);
        assert!(Template::parse("{{.ID").is_err());
        assert!(Template::parse("{{if .X}}a").is_err());
        assert!(Template::parse("{{end}}").is_err());
        assert!(Template::parse("{{.A}}").unwrap().execute(&json!("str")).is_err());
        assert_eq!(Template::parse("{{nosuchfunc .}}").unwrap_err(), "function \"nosuchfunc\" not defined");
        assert_eq!(run("{{json .}}", &json!("<none>&")), "\"\\u003cnone\\u003e\\u0026\"");
    }
}
