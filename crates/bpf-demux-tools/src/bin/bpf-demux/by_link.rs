//! A filter set compiled once per link type met: a set file's expressions
//! compile differently for Ethernet, Linux cooked or raw IP frames (their
//! network header is elsewhere), so each link type of the input gets its
//! own compilation of the same filters, in the same order.

use bpf_demux::link::LinkType;
use bpf_demux::spec::{self, Target};
use bpf_demux::{FilterSet, NamedProgram};
use std::path::{Path, PathBuf};

/// The filters of one set file, compiled for one link type.
pub struct Compiled {
    /// The filters, in file order.
    pub progs: Vec<NamedProgram>,
    /// The merged set of them (when asked for).
    pub set: Option<FilterSet>,
}

/// A set file's compilations, made on first use of each link type.
pub struct SetsByLink {
    path: PathBuf,
    /// The file's text, read once (it may be standard input).
    text: String,
    merged: bool,
    /// One per link type met (at most eight): found by a scan, not a hash,
    /// since `match` asks once per frame.
    sets: Vec<(LinkType, Compiled)>,
}

impl SetsByLink {
    /// The set file at `path` (`merged`: also build its merged set).
    pub fn new(path: &Path, merged: bool) -> Result<SetsByLink, String> {
        let text = spec::read_text(path).map_err(|e| e.to_string())?;
        let mut s = SetsByLink {
            path: path.to_owned(),
            text,
            merged,
            sets: Vec::new(),
        };
        // Ethernet first: a set file that does not load says so before any
        // frame is read.
        s.get(LinkType::Ethernet)?;
        Ok(s)
    }

    /// The compilation for `link`.
    pub fn get(&mut self, link: LinkType) -> Result<&Compiled, String> {
        let at = match self.sets.iter().position(|(l, _)| *l == link) {
            Some(at) => at,
            None => {
                let progs = spec::valid_from_text(&self.path, &self.text, Target::Offline(link))
                    .map_err(|e| match link {
                        LinkType::Ethernet => e.to_string(),
                        _ => format!("{e} (compiling for link type {link})"),
                    })?;
                let set = match self.merged {
                    true => Some(FilterSet::new(progs.iter().cloned()).map_err(|e| e.to_string())?),
                    false => None,
                };
                self.sets.push((link, Compiled { progs, set }));
                self.sets.len() - 1
            }
        };
        Ok(&self.sets[at].1)
    }
}
