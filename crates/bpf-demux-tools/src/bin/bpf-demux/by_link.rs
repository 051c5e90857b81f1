//! A filter set compiled once per link type met: a set file's expressions
//! compile differently for Ethernet, Linux cooked or raw IP frames (their
//! network header is elsewhere), so each link type of the input gets its
//! own compilation of the same filters, in the same order.

use bpf_demux::link::LinkType;
use bpf_demux::spec::{self, Target};
use bpf_demux::{FilterSet, NamedProgram};
use std::collections::HashMap;
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
    sets: HashMap<LinkType, Compiled>,
}

/// What a set file compiles to for frames of `link`.
pub fn target(link: LinkType) -> Target {
    match link {
        LinkType::Ethernet => Target::Offline,
        other => Target::OfflineLink(other),
    }
}

impl SetsByLink {
    /// The set file at `path` (`merged`: also build its merged set).
    pub fn new(path: &Path, merged: bool) -> Result<SetsByLink, String> {
        let text = spec::read_text(path).map_err(|e| e.to_string())?;
        let mut s = SetsByLink {
            path: path.to_owned(),
            text,
            merged,
            sets: HashMap::new(),
        };
        // Ethernet first: a set file that does not load says so before any
        // frame is read.
        s.get(LinkType::Ethernet)?;
        Ok(s)
    }

    /// The compilation for `link`.
    pub fn get(&mut self, link: LinkType) -> Result<&Compiled, String> {
        if !self.sets.contains_key(&link) {
            let progs =
                spec::valid_from_text(&self.path, &self.text, target(link)).map_err(|e| {
                    if link == LinkType::Ethernet {
                        e.to_string()
                    } else {
                        format!("{e} (compiling for link type {link})")
                    }
                })?;
            let set = match self.merged {
                true => Some(FilterSet::new(progs.iter().cloned()).map_err(|e| e.to_string())?),
                false => None,
            };
            self.sets.insert(link, Compiled { progs, set });
        }
        Ok(&self.sets[&link])
    }
}
