//! Who may attach to `bpf-demux serve`, and with what limits.
//!
//! ```toml
//! # First rule that matches the client wins; a client no rule matches is
//! # refused. Root always may attach (any number of tenants, the other
//! # default limits, unless a rule names uid 0).
//! [[allow]]
//! user = "alice"            # or uid = 1000
//! max_tenants = 4           # tenants this uid may have at once
//! max_snaplen = 65535       # largest snaplen a tenant may ask for
//! max_queue_bytes = 8388608 # largest queue (bytes of frames held)
//!
//! [[allow]]
//! group = "netops"          # or gid = 1001: the client's primary or
//!                           # supplementary group
//! ```
//!
//! Without a policy file, root and members of the socket's group may
//! attach, with the defaults ([`Limits::default`]).

use crate::capture::sys::creds::{self, Peer};
use serde::Deserialize;
use std::path::Path;

/// What one client may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Tenants attached at once.
    pub max_tenants: usize,
    /// Largest snaplen.
    pub max_snaplen: u32,
    /// Largest queue, in bytes.
    pub max_queue_bytes: u64,
}

impl Default for Limits {
    /// 16 tenants, snaplen 262144, queues of 64 MiB.
    fn default() -> Limits {
        Limits {
            max_tenants: 16,
            max_snaplen: crate::expr::DEFAULT_SNAPLEN,
            max_queue_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// Root's, unless a rule names uid 0: any number of tenants (root could
    /// open its own sockets anyway).
    pub fn root() -> Limits {
        Limits {
            max_tenants: usize::MAX,
            ..Limits::default()
        }
    }
}

/// Whom a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// A user id.
    Uid(u32),
    /// Primary or supplementary group.
    Gid(u32),
}

impl Who {
    fn matches(self, p: &Peer) -> bool {
        match self {
            Who::Uid(u) => p.uid == u,
            Who::Gid(g) => p.gid == g || p.groups.contains(&g),
        }
    }
}

/// The rules, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `(who, limits)`, first match wins.
    pub rules: Vec<(Who, Limits)>,
}

/// A policy file that does not load: where and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {kind}", match .at { Some((l, c)) => format!(":{l}:{c}"), None => String::new() })]
pub struct PolicyError {
    /// The policy file.
    pub file: String,
    /// 1-based line and column, when known.
    pub at: Option<(usize, usize)>,
    /// The rule broken.
    pub kind: PolicyErrorKind,
}

/// Why a policy file does not load.
#[derive(Debug, thiserror::Error)]
pub enum PolicyErrorKind {
    /// The file does not read.
    #[error("cannot read: {0}")]
    Io(std::io::Error),
    /// TOML syntax or shape.
    #[error("{}", .0.message().trim())]
    Toml(Box<toml::de::Error>),
    /// A `user` or `group` the system does not know (or cannot look up).
    #[error("{0}")]
    Lookup(std::io::Error),
    /// A rule naming none or several of `uid`, `user`, `gid`, `group`.
    #[error("an [[allow]] rule names exactly one of `uid`, `user`, `gid`, `group`")]
    Who,
    /// A limit of 0 where at least 1 is needed.
    #[error("max_snaplen and max_queue_bytes must be at least 1")]
    ZeroLimit,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    allow: Vec<toml::Spanned<Rule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    uid: Option<u32>,
    user: Option<String>,
    gid: Option<u32>,
    group: Option<String>,
    max_tenants: Option<usize>,
    max_snaplen: Option<u32>,
    max_queue_bytes: Option<u64>,
}

impl Policy {
    /// Root (as many tenants as it likes) and, if given, the members of
    /// `group` (the default limits).
    pub fn default_for(group: Option<u32>) -> Policy {
        let mut rules = vec![(Who::Uid(0), Limits::root())];
        rules.extend(group.map(|g| (Who::Gid(g), Limits::default())));
        Policy { rules }
    }

    /// The limits of the first rule that matches `peer`; `None`: refused.
    pub fn limits(&self, peer: &Peer) -> Option<Limits> {
        self.rules
            .iter()
            .find(|(w, _)| w.matches(peer))
            .map(|(_, l)| *l)
            .or((peer.uid == 0).then(Limits::root))
    }

    /// Reads a policy file; user and group names are looked up now.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: file.clone(),
            at: None,
            kind: PolicyErrorKind::Io(e),
        })?;
        Policy::parse(&file, &text)
    }

    /// Parses policy text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let at = |offset: usize| Some(crate::cbpf::text::line_col(text.as_bytes(), offset));
        let err = |at: Option<(usize, usize)>, kind: PolicyErrorKind| PolicyError {
            file: file.to_owned(),
            at,
            kind,
        };
        let f: File = toml::from_str(text).map_err(|e| {
            let place = e.span().and_then(|s| at(s.start));
            err(place, PolicyErrorKind::Toml(Box::new(e)))
        })?;
        let mut rules = Vec::new();
        for r in f.allow {
            let place = at(r.span().start);
            let r = r.into_inner();
            let who = match (r.uid, &r.user, r.gid, &r.group) {
                (Some(u), None, None, None) => Who::Uid(u),
                (None, Some(u), None, None) => Who::Uid(
                    creds::user(u)
                        .map_err(|e| err(place, PolicyErrorKind::Lookup(e)))?
                        .0,
                ),
                (None, None, Some(g), None) => Who::Gid(g),
                (None, None, None, Some(g)) => {
                    Who::Gid(creds::group(g).map_err(|e| err(place, PolicyErrorKind::Lookup(e)))?)
                }
                _ => return Err(err(place, PolicyErrorKind::Who)),
            };
            let d = Limits::default();
            let limits = Limits {
                max_tenants: r.max_tenants.unwrap_or(d.max_tenants),
                max_snaplen: r.max_snaplen.unwrap_or(d.max_snaplen),
                max_queue_bytes: r.max_queue_bytes.unwrap_or(d.max_queue_bytes),
            };
            if limits.max_snaplen == 0 || limits.max_queue_bytes == 0 {
                return Err(err(place, PolicyErrorKind::ZeroLimit));
            }
            rules.push((who, limits));
        }
        Ok(Policy { rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            pid: 1,
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn first_matching_rule_wins_and_root_is_always_allowed() {
        let p = Policy::parse(
            "p.toml",
            "[[allow]]\nuid = 1000\nmax_tenants = 2\n\n[[allow]]\ngid = 50\nmax_snaplen = 128\n",
        )
        .unwrap();
        assert_eq!(p.limits(&peer(1000, 50, &[])).unwrap().max_tenants, 2);
        assert_eq!(p.limits(&peer(1001, 1001, &[50])).unwrap().max_snaplen, 128);
        assert_eq!(p.limits(&peer(1001, 50, &[])).unwrap().max_tenants, 16);
        assert_eq!(p.limits(&peer(1002, 1002, &[7])), None);
        assert_eq!(p.limits(&peer(0, 0, &[])), Some(Limits::root()));
        let d = Policy::default_for(Some(50));
        assert!(d.limits(&peer(5, 50, &[])).is_some());
        assert!(d.limits(&peer(5, 5, &[50])).is_some());
        assert!(d.limits(&peer(5, 5, &[51])).is_none());
        assert!(Policy::default_for(None)
            .limits(&peer(5, 50, &[]))
            .is_none());
    }

    #[test]
    fn bad_files_name_the_place_and_the_rule() {
        let e = Policy::parse("p.toml", "[[allow]]\nuid = 1\ngid = 2\n").unwrap_err();
        assert_eq!(e.at, Some((1, 1)));
        assert!(e.kind.to_string().contains("exactly one of"), "{e}");
        let e = Policy::parse("p.toml", "[[allow]]\nuid = 1\nmax_tenant = 3\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("p.toml:3:1: unknown field `max_tenant`"),
            "{e}"
        );
        let e = Policy::parse("p.toml", "[[allow]]\nuser = \"no-such-user-here\"\n").unwrap_err();
        assert!(
            e.kind.to_string().contains("no user `no-such-user-here`"),
            "{e}"
        );
        let e = Policy::parse("p.toml", "[[allow]]\nuid = 1\nmax_snaplen = 0\n").unwrap_err();
        assert!(e.kind.to_string().contains("at least 1"), "{e}");
    }
}
