//! Filter-set files: the named programs a user installs.
//!
//! Two forms. TOML, for people:
//!
//! ```toml
//! [[filter]]
//! name = "web"                  # unique, [A-Za-z0-9_.-]+
//! cbpf = "4,40 0 0 12,21 0 1 2048,6 0 0 262144,6 0 0 0"   # tcpdump -ddd one-line form
//! snaplen = 128                 # optional cap on delivered bytes
//!
//! [[filter]]
//! name = "arp"
//! asm = """
//!     ldh [12]
//!     jneq #0x806, drop
//!     ret #-1
//! drop: ret #0
//! """
//! ```
//!
//! and a plain form, for generated sets: one filter a line,
//! `name<TAB>program` with the -ddd one-line form (or `name<TAB>expr: EXPR`
//! for a tcpdump expression), `#` comments and blank lines skipped. In
//! TOML, `expr = "tcp port 80"` compiles a tcpdump expression (see
//! [`crate::expr`]), returning `snaplen` (default 262144) when it accepts;
//! `live = true` compiles it for a live socket (`bpf-demux capture`);
//! `listen = "127.0.0.1:57012"` is read by `bpf-demux serve` (the address
//! its PCAP-over-IP stream of this filter listens on; `capture` refuses
//! it, the offline commands ignore it). Every error names the file, the line (and column where
//! known) and the filter.

use crate::cbpf::text::{self, TextError, TextErrorKind};
use crate::cbpf::{Insn, Program, UnknowableLoad, ValidateError};
use crate::expr::ExprErrorKind;
use crate::link::LinkType;
use crate::set::{valid_name, FilterSet, NamedProgram};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// One filter as written in a set file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterSpec {
    /// Its name.
    pub name: String,
    /// Its program, not yet validated.
    pub insns: Vec<Insn>,
    /// Cap on the bytes delivered to this filter's endpoint.
    pub snaplen: Option<u32>,
    /// 1-based line where the filter is defined.
    pub line: usize,
    /// `bpf-demux serve`: stream this filter's frames as pcap to every TCP
    /// client of this address (PCAP-over-IP). TOML only.
    pub listen: Option<std::net::SocketAddr>,
}

/// What went wrong, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// 1-based column, when known.
    pub col: Option<usize>,
    /// The filter concerned, when known.
    pub filter: Option<String>,
    /// The rule broken.
    pub kind: SpecErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
/// What is wrong with a filter-set file.
pub enum SpecErrorKind {
    #[error("cannot read file: {0}")]
    /// The file does not read.
    Io(IoFailure),
    #[error("file is not UTF-8 text")]
    /// The file is not UTF-8.
    NotUtf8,
    #[error("no filters in file")]
    /// No filter in it.
    Empty,
    #[error("{}", .0.message().trim())]
    /// TOML syntax or shape.
    Toml(Box<toml::de::Error>),
    #[error("bad filter name `{0}` (use letters, digits, `_`, `.`, `-`)")]
    /// A name that breaks the naming rule.
    BadName(String),
    #[error("filter name `{name}` already used on line {first_line}")]
    /// A name used twice.
    DuplicateName {
        /// The name.
        name: String,
        /// Where it was first used.
        first_line: usize,
    },
    #[error("give exactly one of `cbpf`, `asm` or `expr`")]
    /// None or several of `cbpf`, `asm`, `expr`.
    ProgramKeys,
    #[error("expression: {0}")]
    /// An expression the compiler refuses.
    Expr(Box<ExprErrorKind>),
    #[error("expected `name<TAB>program`")]
    /// A plain line without a tab.
    NoTab,
    #[error("snaplen must be at least 1")]
    /// `snaplen = 0`.
    ZeroSnaplen,
    #[error("program text: {0}")]
    /// Program text that does not parse.
    Text(Box<TextErrorKind>),
    #[error("invalid program: {0}")]
    /// A program the kernel would refuse.
    Invalid(ValidateError),
    #[error("not installable: {0}")]
    /// A program reading what userland cannot know.
    Unknowable(UnknowableLoad),
    #[error("`live` applies to `expr` filters only (a program runs as written)")]
    /// `live` on a program (only expressions are compiled).
    LiveNotExpr,
    #[error("`listen` must be an IP address and port, such as \"127.0.0.1:57012\" or \"[::1]:57012\": {0}")]
    /// A `listen` that is not an address and port.
    Listen(std::net::AddrParseError),
}

/// Why a file could not be read: the system's error, kept as its kind and
/// OS code (an `io::Error` is neither `Clone` nor `Eq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoFailure {
    /// The error's kind.
    pub kind: std::io::ErrorKind,
    /// The OS error number, when the error came from the system.
    pub os: Option<i32>,
}

impl IoFailure {
    /// The failure `e` describes.
    pub fn of(e: &std::io::Error) -> IoFailure {
        IoFailure {
            kind: e.kind(),
            os: e.raw_os_error(),
        }
    }
}

impl fmt::Display for IoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.os {
            Some(n) => write!(f, "{}", std::io::Error::from_raw_os_error(n)),
            None => write!(f, "{}", self.kind),
        }
    }
}

/// What expressions in a set are compiled for: frames of a capture file
/// of some link type (tags in the frame), or a live socket (`bpf-demux
/// capture`: the kernel strips the outer VLAN tag into metadata), as
/// tcpdump compiles for what it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// For a capture file of this link type.
    Offline(LinkType),
    /// For a live socket delivering frames of this link type (Ethernet:
    /// the outer tag in metadata).
    Live(LinkType),
}

impl Target {
    /// For a capture file of Ethernet frames.
    pub const ETHERNET: Target = Target::Offline(LinkType::Ethernet);
    /// For a live Ethernet socket.
    pub const LIVE: Target = Target::Live(LinkType::Ethernet);
}

/// `expr` compiled with `opts` for a set file: an expression that cannot
/// match on the target's link type (`ip6` for raw IPv4 frames) accepts
/// nothing there, where `tcpdump -y` would refuse it: in a set, the other
/// filters still run. Names are looked up with `names` (one resolver
/// for a file's filters, so each names file is read once).
fn compile_expr(
    expr: &str,
    opts: &crate::expr::Options,
    names: &crate::expr::Resolver,
) -> Result<Vec<Insn>, crate::expr::ExprError> {
    match crate::expr::compile_with_names(expr, opts, names) {
        Err(e) if e.kind == ExprErrorKind::RejectsAll => {
            Ok(vec![Insn::stmt(crate::cbpf::Op::RetK.code(), 0)])
        }
        r => r,
    }
}

impl Target {
    /// The expression compiler's options for this target.
    fn options(self, live_filter: bool) -> crate::expr::Options {
        let (live, link) = match self {
            Target::Offline(l) => (false, l),
            Target::Live(l) => (true, l),
        };
        crate::expr::Options {
            snaplen: crate::expr::DEFAULT_SNAPLEN,
            live: live || live_filter,
            savefile: !live && !live_filter,
            link,
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            // 0: the file as a whole (it cannot be read).
            write!(f, ":{}", self.line)?;
        }
        if let Some(c) = self.col {
            write!(f, ":{c}")?;
        }
        if let Some(n) = &self.filter {
            write!(f, ": filter `{n}`")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for SpecError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    filter: Vec<toml::Spanned<TomlFilter>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFilter {
    name: toml::Spanned<String>,
    cbpf: Option<toml::Spanned<String>>,
    asm: Option<toml::Spanned<String>>,
    expr: Option<toml::Spanned<String>>,
    /// Compile `expr` for a live socket (tags stripped into metadata).
    #[serde(default)]
    live: bool,
    snaplen: Option<u32>,
    /// PCAP-over-IP address (`bpf-demux serve`).
    listen: Option<toml::Spanned<String>>,
}

/// Reads a filter-set file (form chosen by content: TOML when the first
/// significant line starts with `[`, plain otherwise), compiling
/// expressions for pcap files.
pub fn load(path: &Path) -> Result<Vec<FilterSpec>, SpecError> {
    load_for(path, Target::ETHERNET)
}

/// Every error of a set file (see [`parse_all_for`]); a file that cannot
/// be read is one error.
pub fn load_all_for(path: &Path, target: Target) -> (Vec<FilterSpec>, Vec<SpecError>) {
    match read_text(path) {
        Ok(text) => parse_all_for(path, &text, target),
        Err(e) => (Vec::new(), vec![e]),
    }
}

/// [`load`], compiling expressions for `target`.
pub fn load_for(path: &Path, target: Target) -> Result<Vec<FilterSpec>, SpecError> {
    parse_for(path, &read_text(path)?, target)
}

/// The text of a set file (`-`: standard input), or the error naming it.
pub fn read_text(path: &Path) -> Result<String, SpecError> {
    let bytes = if path == Path::new("-") {
        // Standard input, as tcpdump's `-F -`.
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map(|_| b)
    } else {
        std::fs::read(path)
    };
    let bytes = bytes.map_err(|e| SpecError {
        file: path.to_owned(),
        line: 0,
        col: None,
        filter: None,
        kind: SpecErrorKind::Io(IoFailure::of(&e)),
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let (line, col) = text::line_col(e.as_bytes(), e.utf8_error().valid_up_to());
        SpecError {
            file: path.to_owned(),
            line,
            col: Some(col),
            filter: None,
            kind: SpecErrorKind::NotUtf8,
        }
    })
}

/// Parses set-file text; `path` names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<Vec<FilterSpec>, SpecError> {
    parse_for(path, text, Target::ETHERNET)
}

/// [`parse`], compiling expressions for `target`; the first error.
pub fn parse_for(path: &Path, text: &str, target: Target) -> Result<Vec<FilterSpec>, SpecError> {
    let (specs, mut errs) = parse_all_for(path, text, target);
    match errs.is_empty() {
        true => Ok(specs),
        false => Err(errs.swap_remove(0)),
    }
}

/// Every error of a set (not only the first): the filters that parsed,
/// and the errors in file order. A TOML syntax error stops the parse.
pub fn parse_all_for(path: &Path, text: &str, target: Target) -> (Vec<FilterSpec>, Vec<SpecError>) {
    let is_toml = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.starts_with('['));
    let mut errs = Vec::new();
    let specs = if is_toml {
        match parse_toml(path, text, target, &mut errs) {
            Ok(s) => s,
            Err(e) => return (Vec::new(), vec![e]),
        }
    } else {
        parse_plain(path, text, target, &mut errs)
    };
    if specs.is_empty() && errs.is_empty() {
        errs.push(SpecError {
            file: path.to_owned(),
            line: 1,
            col: None,
            filter: None,
            kind: SpecErrorKind::Empty,
        });
    }
    let mut seen = std::collections::HashMap::new();
    let mut unique = Vec::with_capacity(specs.len());
    for s in specs {
        if let Some(&first_line) = seen.get(&s.name) {
            errs.push(SpecError {
                file: path.to_owned(),
                line: s.line,
                col: None,
                filter: Some(s.name.clone()),
                kind: SpecErrorKind::DuplicateName {
                    name: s.name.clone(),
                    first_line,
                },
            });
        } else {
            seen.insert(s.name.clone(), s.line);
            unique.push(s);
        }
    }
    errs.sort_by_key(|e| (e.line, e.col));
    (unique, errs)
}

fn parse_plain(
    path: &Path,
    text: &str,
    target: Target,
    errs: &mut Vec<SpecError>,
) -> Vec<FilterSpec> {
    let names = crate::expr::Resolver::system();
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim_end_matches('\r');
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let one = || -> Result<FilterSpec, SpecError> {
            let err = |col, filter: Option<&str>, kind| SpecError {
                file: path.to_owned(),
                line,
                col: Some(col),
                filter: filter.map(str::to_owned),
                kind,
            };
            let Some((name, prog)) = l.split_once('\t') else {
                return Err(err(1, None, SpecErrorKind::NoTab));
            };
            let name = name.trim();
            if !valid_name(name) {
                return Err(err(1, None, SpecErrorKind::BadName(name.to_owned())));
            }
            let col0 = l.find('\t').unwrap() + 2;
            let insns = if let Some(e) = prog.strip_prefix("expr:") {
                let lead = e.len() - e.trim_start().len();
                let opts = target.options(false);
                compile_expr(e.trim(), &opts, &names).map_err(|x| {
                    err(
                        col0 + 5 + lead + x.col - 1,
                        Some(name),
                        SpecErrorKind::Expr(Box::new(x.kind)),
                    )
                })?
            } else {
                text::parse_ddd(prog.trim_end()).map_err(|e: TextError| {
                    err(
                        col0 + e.col - 1,
                        Some(name),
                        SpecErrorKind::Text(Box::new(e.kind)),
                    )
                })?
            };
            Ok(FilterSpec {
                name: name.to_owned(),
                insns,
                snaplen: None,
                line,
                listen: None,
            })
        };
        match one() {
            Ok(spec) => out.push(spec),
            Err(e) => errs.push(e),
        }
    }
    out
}

/// A syntax error is fatal (returned); each filter's own error is pushed
/// to `errs` and the filter skipped.
fn parse_toml(
    path: &Path,
    text: &str,
    target: Target,
    errs: &mut Vec<SpecError>,
) -> Result<Vec<FilterSpec>, SpecError> {
    let pos = |offset: usize| text::line_col(text.as_bytes(), offset);
    let names = crate::expr::Resolver::system();
    let file: TomlFile = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| pos(s.start)).unwrap_or((1, 1));
        SpecError {
            file: path.to_owned(),
            line,
            col: Some(col),
            filter: None,
            kind: SpecErrorKind::Toml(Box::new(e)),
        }
    })?;
    let mut out = Vec::new();
    for f in file.filter {
        let one = || -> Result<FilterSpec, SpecError> {
            let span = f.span();
            let f = f.get_ref();
            let name = f.name.get_ref().clone();
            let (nline, ncol) = pos(f.name.span().start);
            let err = |line, col, kind| SpecError {
                file: path.to_owned(),
                line,
                col: Some(col),
                filter: Some(name.clone()),
                kind,
            };
            if !valid_name(&name) {
                return Err(SpecError {
                    filter: None,
                    ..err(nline, ncol, SpecErrorKind::BadName(name.clone()))
                });
            }
            if f.snaplen == Some(0) {
                return Err(err(nline, ncol, SpecErrorKind::ZeroSnaplen));
            }
            let (src, form) = match (&f.cbpf, &f.asm, &f.expr) {
                (Some(c), None, None) => (c, 0),
                (None, Some(a), None) => (a, 1),
                (None, None, Some(e)) => (e, 2),
                _ => {
                    let (l, c) = pos(span.start);
                    return Err(err(l, c, SpecErrorKind::ProgramKeys));
                }
            };
            if f.live && form != 2 {
                return Err(err(nline, ncol, SpecErrorKind::LiveNotExpr));
            }
            let listen = match &f.listen {
                None => None,
                Some(l) => {
                    let (line, col) = pos(l.span().start);
                    Some(
                        l.get_ref()
                            .parse::<std::net::SocketAddr>()
                            .map_err(|e| err(line, col + 1, SpecErrorKind::Listen(e)))?,
                    )
                }
            };
            let (vline, vcol) = pos(src.span().start);
            // The value's text starts after its opening quote(s); for a
            // multi-line string that starts with a newline, on the next line.
            let raw = &text[src.span()];
            let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
                3
            } else {
                1
            };
            let (l0, c0) = if quote == 3 && raw[3..].starts_with('\n') {
                (vline + 1, 1)
            } else {
                (vline, vcol + quote)
            };
            if form == 2 {
                let opts = crate::expr::Options {
                    snaplen: f.snaplen.unwrap_or(crate::expr::DEFAULT_SNAPLEN),
                    ..target.options(f.live)
                };
                let insns = compile_expr(src.get_ref(), &opts, &names)
                    .map_err(|e| err(l0, c0 + e.col - 1, SpecErrorKind::Expr(Box::new(e.kind))))?;
                return Ok(FilterSpec {
                    name,
                    insns,
                    snaplen: f.snaplen,
                    line: nline,
                    listen,
                });
            }
            let parsed = if form == 1 {
                text::parse_asm(src.get_ref())
            } else {
                text::parse_ddd(src.get_ref())
            };
            let insns = parsed.map_err(|e| {
                let e = e.shifted(l0, c0);
                err(e.line, e.col, SpecErrorKind::Text(Box::new(e.kind)))
            })?;
            Ok(FilterSpec {
                name,
                insns,
                snaplen: f.snaplen,
                line: nline,
                listen,
            })
        };
        match one() {
            Ok(spec) => out.push(spec),
            Err(e) => errs.push(e),
        }
    }
    Ok(out)
}

impl FilterSpec {
    /// Validates with the kernel's rules, then refuses what userland cannot run.
    pub fn validate(&self, file: &Path) -> Result<NamedProgram, SpecError> {
        let err = |kind| SpecError {
            file: file.to_owned(),
            line: self.line,
            col: None,
            filter: Some(self.name.clone()),
            kind,
        };
        let program = Program::validate(&self.insns).map_err(|e| err(SpecErrorKind::Invalid(e)))?;
        program
            .check_userland()
            .map_err(|e| err(SpecErrorKind::Unknowable(e)))?;
        Ok(NamedProgram {
            name: self.name.clone(),
            program,
            snaplen: self.snaplen,
        })
    }
}

/// Loads and validates a whole set; the first error stops it.
pub fn load_valid(path: &Path) -> Result<Vec<NamedProgram>, SpecError> {
    load_valid_for(path, Target::ETHERNET)
}

/// [`load_valid`], compiling expressions for `target`.
pub fn load_valid_for(path: &Path, target: Target) -> Result<Vec<NamedProgram>, SpecError> {
    valid_from_text(path, &read_text(path)?, target)
}

/// [`load_valid_for`] on text already read (`path` names it in errors).
pub fn valid_from_text(
    path: &Path,
    text: &str,
    target: Target,
) -> Result<Vec<NamedProgram>, SpecError> {
    parse_for(path, text, target)?
        .iter()
        .map(|s| s.validate(path))
        .collect()
}

/// Loads, validates and compiles a filter-set file (offline expressions).
pub fn load_set(path: &Path) -> Result<FilterSet, SpecError> {
    let progs = load_valid(path)?;
    // Names were checked unique and legal, and programs installable, by
    // the loader: what `FilterSet::add` checks.
    let mut set = FilterSet::default();
    for p in progs {
        set.add(p).expect("the loader checks what add checks");
    }
    Ok(set)
}
