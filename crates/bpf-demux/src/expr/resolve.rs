//! Names in expressions, resolved when compiling as libpcap resolves them:
//! host names in the hosts file and then (for the system's files) through
//! the system resolver, Ethernet host names in the ethers file, protocol
//! names in the protocols file, port names in the services file. A file
//! that does not exist (a minimal container without `/etc/services`)
//! leaves the built-in table of well-known names in its place; a file that
//! exists is the whole truth, as it is for libpcap. A resolver reads each
//! file once, when it is first needed (a set file's filters share one, so
//! a thousand `port http` read `/etc/services` once; a reload makes a new
//! one and sees edits).

use super::names;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where names are looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolver {
    /// `/etc/hosts`: `ADDRESS NAME [ALIAS...]` lines.
    hosts: NamesFile,
    /// `/etc/ethers`: `MAC NAME` lines.
    ethers: NamesFile,
    /// `/etc/protocols`: `NAME NUMBER [ALIAS...]` lines.
    protocols: NamesFile,
    /// `/etc/services`: `NAME PORT/PROTOCOL [ALIAS...]` lines.
    services: NamesFile,
    /// `/etc/networks`: `NAME NUMBER [ALIAS...]` lines.
    networks: NamesFile,
    /// After the hosts file, ask the system resolver (getaddrinfo: DNS and
    /// whatever else the system is configured with).
    system: bool,
}

/// A names file and its lines split into fields, read at first use
/// (`None`: it cannot be read).
#[derive(Clone, Debug, PartialEq, Eq)]
struct NamesFile {
    path: PathBuf,
    lines: OnceLock<Option<Vec<Vec<String>>>>,
}

impl NamesFile {
    fn new(path: PathBuf) -> NamesFile {
        NamesFile {
            path,
            lines: OnceLock::new(),
        }
    }

    /// Its lines split into fields, comments and blank lines dropped,
    /// lines of one field dropped.
    fn lines(&self) -> Option<&[Vec<String>]> {
        self.lines
            .get_or_init(|| {
                let text = std::fs::read(&self.path).ok()?;
                let text = String::from_utf8_lossy(&text);
                Some(
                    text.lines()
                        .map(|l| l.split('#').next().unwrap_or(""))
                        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                        .filter(|f| f.len() >= 2)
                        .collect(),
                )
            })
            .as_deref()
    }
}

/// Which transports a service name is registered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP only.
    Tcp,
    /// UDP only.
    Udp,
    /// Both, with the same number (libpcap then tests TCP, UDP and SCTP).
    Any,
}

impl Resolver {
    /// The system's files and resolver, as libpcap uses them.
    pub fn system() -> Resolver {
        Resolver::of(Path::new("/etc"), true)
    }

    /// `hosts`, `ethers`, `protocols` and `services` in `dir`, and no
    /// system resolver (for tests and reproducible builds of a set).
    pub fn in_dir(dir: &Path) -> Resolver {
        Resolver::of(dir, false)
    }

    fn of(dir: &Path, system: bool) -> Resolver {
        let file = |name: &str| NamesFile::new(dir.join(name));
        Resolver {
            hosts: file("hosts"),
            ethers: file("ethers"),
            protocols: file("protocols"),
            services: file("services"),
            networks: file("networks"),
            system,
        }
    }

    /// Every address of host `name` (none: unknown), in the order found.
    pub fn host(&self, name: &str) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for fields in self.hosts.lines().unwrap_or_default() {
            if fields[1..].iter().any(|n| n.eq_ignore_ascii_case(name)) {
                if let Ok(a) = fields[0].parse::<IpAddr>() {
                    if !out.contains(&a) {
                        out.push(a);
                    }
                }
            }
        }
        if out.is_empty() && self.system {
            if let Ok(addrs) = (name, 0).to_socket_addrs() {
                for a in addrs {
                    if !out.contains(&a.ip()) {
                        out.push(a.ip());
                    }
                }
            }
        }
        out
    }

    /// The Ethernet address of host `name` in the ethers file.
    pub fn ether(&self, name: &str) -> Option<[u8; 6]> {
        self.ethers
            .lines()?
            .iter()
            .find(|f| f[1..].iter().any(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|f| names::mac(&f[0]))
    }

    /// The network `name` (or an alias) as libpcap's gen_scode takes it
    /// from glibc: the number, shifted up past its zero top bytes, and the
    /// mask shifted with it.
    pub fn network(&self, name: &str) -> Option<(u32, u32)> {
        let f = self.networks.lines()?.iter().find(|f| {
            f[0].eq_ignore_ascii_case(name) || f[2..].iter().any(|n| n.eq_ignore_ascii_case(name))
        })?;
        // glibc pads the number to four parts (`10.1` is 10.1.0.0), so
        // libpcap's shifting finds nothing to do: the network is one
        // address (as `tcpdump 'net NAME'` compiles it).
        let parts: Vec<&str> = f[1].split('.').collect();
        if parts.len() > 4 {
            return None;
        }
        let mut addr = 0u32;
        for i in 0..4 {
            let p = parts.get(i).map_or(Some(0), |p| p.parse::<u8>().ok())?;
            addr = (addr << 8) | p as u32;
        }
        let mut mask = u32::MAX;
        while addr != 0 && addr & 0xff00_0000 == 0 {
            addr <<= 8;
            mask <<= 8;
        }
        (addr != 0).then_some((addr, mask))
    }

    /// The IP protocol number of `name` (or an alias).
    pub fn protocol(&self, name: &str) -> Option<u32> {
        match self.protocols.lines() {
            None => names::ip_proto(name),
            Some(ls) => ls
                .iter()
                .find(|f| f[0] == name || f.get(2..).is_some_and(|a| a.iter().any(|n| n == name)))
                .and_then(|f| f.get(1)?.parse().ok()),
        }
    }

    /// The port of service `name` (or an alias), and its transports, as
    /// libpcap's pcap_nametoport: the TCP port if there is one, else the
    /// UDP port; both transports when both have that number.
    pub fn port(&self, name: &str) -> Option<(u32, Transport)> {
        let Some(ls) = self.services.lines() else {
            let port = names::port(name)?;
            let t = match names::port_proto(name) {
                Some(6) => Transport::Tcp,
                Some(_) => Transport::Udp,
                None => Transport::Any,
            };
            return Some((port, t));
        };
        let find = |proto: &str| -> Option<u32> {
            ls.iter()
                .filter(|f| f[0] == name || f.get(2..).is_some_and(|a| a.iter().any(|n| n == name)))
                .find_map(|f| {
                    let (port, p) = f.get(1)?.split_once('/')?;
                    (p == proto).then(|| port.parse().ok()).flatten()
                })
        };
        match (find("tcp"), find("udp")) {
            (Some(t), Some(u)) if t == u => Some((t, Transport::Any)),
            (Some(t), _) => Some((t, Transport::Tcp)),
            (None, Some(u)) => Some((u, Transport::Udp)),
            (None, None) => None,
        }
    }
}

impl Default for Resolver {
    fn default() -> Resolver {
        Resolver::system()
    }
}
