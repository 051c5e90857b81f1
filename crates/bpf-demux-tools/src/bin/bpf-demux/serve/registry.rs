//! The daemon's tenants: who owns each, what it runs, its endpoint; the
//! policy applied to attaches; static tenants and their reload; listings.

use super::stream::Stream;
use super::{Granted, Request, QUEUE_FRAMES};
use crate::sink::say;
use bpf_demux::capture::sys::creds::{self, Peer};
use bpf_demux::capture::{Change, Endpoint, LiveCapture, QueueBound};
use bpf_demux::serve::policy::Policy;
use bpf_demux::serve::proto::{RefuseCode, TenantRow, TenantsReport};
use bpf_demux::spec::{self, Target};
use bpf_demux::NamedProgram;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// A static tenant as its file gives it.
#[derive(Clone, Debug)]
pub struct StaticTenant {
    pub program: NamedProgram,
    pub listen: SocketAddr,
}

/// The queue of a static tenant (and of each of its stream clients).
pub fn static_queue() -> QueueBound {
    QueueBound {
        frames: QUEUE_FRAMES,
        bytes: 64 << 20,
    }
}

/// Reads serve's `--filters`: TOML filters compiled for the live socket,
/// each with a `listen` address.
pub fn load_static(path: &Path) -> Result<Vec<StaticTenant>, String> {
    let specs = spec::load_for(path, Target::LIVE).map_err(|e| e.to_string())?;
    specs
        .iter()
        .map(|s| {
            let program = s.validate(path).map_err(|e| e.to_string())?;
            let listen = s.listen.ok_or_else(|| {
                format!(
                    "{}:{}: filter `{}`: serve streams static tenants as PCAP-over-IP: give it `listen = \"127.0.0.1:57012\"`",
                    path.display(),
                    s.line,
                    s.name
                )
            })?;
            Ok(StaticTenant { program, listen })
        })
        .collect()
}

enum Kind {
    Attach,
    Static { def: StaticTenant, stream: Stream },
}

struct Tenant {
    kind: Kind,
    owner_uid: u32,
    insns: usize,
    snaplen: Option<u32>,
    attached_at: SystemTime,
    endpoint: Arc<Endpoint>,
}

pub struct Registry {
    interface: String,
    tenants: BTreeMap<String, Tenant>,
    /// Streams of removed static tenants, ending.
    ending: Vec<Stream>,
}

impl Registry {
    pub fn new(interface: String) -> Registry {
        Registry {
            interface,
            tenants: BTreeMap::new(),
            ending: Vec::new(),
        }
    }

    pub fn add_static(
        &mut self,
        def: StaticTenant,
        ep: Endpoint,
        listener: TcpListener,
    ) -> std::io::Result<()> {
        let endpoint = Arc::new(ep);
        let snaplen = def.program.snaplen;
        let stream = Stream::start(
            listener,
            endpoint.clone(),
            snaplen.unwrap_or(bpf_demux::expr::DEFAULT_SNAPLEN),
        )?;
        self.tenants.insert(
            def.program.name.clone(),
            Tenant {
                insns: def.program.program.len(),
                kind: Kind::Static { def, stream },
                owner_uid: 0,
                snaplen,
                attached_at: SystemTime::now(),
                endpoint,
            },
        );
        Ok(())
    }

    /// The static tenants' stream addresses.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.tenants
            .values()
            .filter_map(|t| match &t.kind {
                Kind::Static { stream, .. } => Some(stream.addr),
                Kind::Attach => None,
            })
            .collect()
    }

    /// Applies one batch of requests with one capture update (one per
    /// change if the batch as a whole is refused).
    pub fn apply(&mut self, live: &LiveCapture, policy: &Policy, batch: Vec<Request>) {
        type Reply = std::sync::mpsc::Sender<Result<Granted, (RefuseCode, String)>>;
        let mut changes = Vec::new();
        let mut waiting: Vec<(Reply, u32, u32, u64)> = Vec::new();
        let mut names: HashSet<String> = HashSet::new();
        let mut removing: HashSet<String> = HashSet::new();
        let mut owned: HashMap<u32, usize> = HashMap::new();
        for t in self.tenants.values() {
            if matches!(t.kind, Kind::Attach) {
                *owned.entry(t.owner_uid).or_default() += 1;
            }
        }
        for r in batch {
            match r {
                Request::List { peer, reply } => {
                    let _ = reply.send(self.report(live, &peer));
                }
                Request::Detach { name } => {
                    let attached = self
                        .tenants
                        .get(&name)
                        .is_some_and(|t| matches!(t.kind, Kind::Attach));
                    if attached && removing.insert(name.clone()) {
                        changes.push(Change::Remove(name));
                    }
                }
                Request::Attach {
                    peer,
                    mut filter,
                    queue_bytes,
                    reply,
                } => {
                    let refuse = |code, msg: String| {
                        let _ = reply.send(Err((code, msg)));
                    };
                    let Some(limits) = policy.limits(&peer) else {
                        refuse(
                            RefuseCode::NotAllowed,
                            format!(
                                "uid {} (gid {}) may not attach to this daemon",
                                peer.uid, peer.gid
                            ),
                        );
                        continue;
                    };
                    let mine = owned.get(&peer.uid).copied().unwrap_or(0);
                    if mine >= limits.max_tenants {
                        refuse(
                            RefuseCode::OverQuota,
                            format!(
                                "uid {} has {mine} tenants, the most its policy allows",
                                peer.uid
                            ),
                        );
                        continue;
                    }
                    let snaplen = filter.snaplen.unwrap_or(limits.max_snaplen);
                    if snaplen > limits.max_snaplen {
                        refuse(
                            RefuseCode::OverQuota,
                            format!(
                                "snaplen {snaplen} is over the largest this uid may ask for, {}",
                                limits.max_snaplen
                            ),
                        );
                        continue;
                    }
                    let queue = queue_bytes.unwrap_or(limits.max_queue_bytes.min(16 << 20));
                    if queue > limits.max_queue_bytes {
                        refuse(
                            RefuseCode::OverQuota,
                            format!("a queue of {queue} bytes is over the largest this uid may have, {}", limits.max_queue_bytes),
                        );
                        continue;
                    }
                    let taken =
                        self.tenants.contains_key(&filter.name) && !removing.contains(&filter.name);
                    if taken || !names.insert(filter.name.clone()) {
                        refuse(
                            RefuseCode::NameTaken,
                            format!("a tenant named `{}` exists", filter.name),
                        );
                        continue;
                    }
                    *owned.entry(peer.uid).or_default() += 1;
                    filter.snaplen = Some(snaplen);
                    changes.push(Change::Add {
                        filter,
                        queue: QueueBound {
                            frames: QUEUE_FRAMES,
                            bytes: queue,
                        },
                    });
                    waiting.push((reply, peer.uid, snaplen, queue));
                }
            }
        }
        if changes.is_empty() {
            return;
        }
        let results = match live.update(changes.clone()) {
            Ok(applied) => vec![(changes, Ok(applied))],
            // Each alone: one bad change refuses only itself.
            Err(_) => changes
                .into_iter()
                .map(|c| {
                    let r = live.update(vec![c.clone()]);
                    (vec![c], r)
                })
                .collect(),
        };
        let mut waiting = waiting.into_iter();
        for (changes, r) in results {
            let mut endpoints = r.ok().map(|a| a.endpoints.into_iter());
            for c in changes {
                match c {
                    Change::Remove(name) => {
                        if endpoints.is_some() {
                            self.tenants.remove(&name);
                        }
                    }
                    Change::Add { filter, .. } => {
                        let (reply, uid, snaplen, queue_bytes) =
                            waiting.next().expect("one waiting reply per add");
                        match endpoints.as_mut().and_then(Iterator::next) {
                            Some(ep) => {
                                let endpoint = Arc::new(ep);
                                self.tenants.insert(
                                    filter.name.clone(),
                                    Tenant {
                                        kind: Kind::Attach,
                                        owner_uid: uid,
                                        insns: filter.program.len(),
                                        snaplen: Some(snaplen),
                                        attached_at: SystemTime::now(),
                                        endpoint: endpoint.clone(),
                                    },
                                );
                                let granted = Granted {
                                    endpoint,
                                    snaplen,
                                    queue_bytes,
                                };
                                if reply.send(Ok(granted)).is_err() {
                                    // The client went while waiting.
                                    let _ = live.update(vec![Change::Remove(filter.name.clone())]);
                                    self.tenants.remove(&filter.name);
                                }
                            }
                            None => {
                                let _ = reply.send(Err((
                                    RefuseCode::BadFilter,
                                    format!("filter `{}`: the capture refused it", filter.name),
                                )));
                            }
                        }
                    }
                    Change::Replace(_) => {}
                }
            }
        }
    }

    /// What `peer` may see: root every tenant, others their own.
    pub fn report(&self, live: &LiveCapture, peer: &Peer) -> TenantsReport {
        let (kernel_packets, kernel_drops) = live.kernel_counts();
        let mut r = TenantsReport {
            interface: self.interface.clone(),
            ring_frames: live.frames_seen(),
            matched: live.frames_matched(),
            kernel_packets,
            kernel_drops,
            prefilter: live.prefilter_len(),
            fallbacks: live.set_stats().fallbacks,
            tenants: Vec::new(),
            hidden: 0,
        };
        for (name, t) in &self.tenants {
            if peer.uid != 0 && t.owner_uid != peer.uid {
                r.hidden += 1;
                continue;
            }
            let s = t.endpoint.stats();
            let (queue_frames, queue_bytes) = t.endpoint.fill();
            let (kind, listen, clients, stream_drops) = match &t.kind {
                Kind::Attach => ("attach", None, 0, 0),
                Kind::Static { stream, .. } => (
                    "static",
                    Some(stream.addr.to_string()),
                    stream.clients(),
                    stream.drops(),
                ),
            };
            r.tenants.push(TenantRow {
                name: name.clone(),
                kind: kind.into(),
                owner_uid: t.owner_uid,
                owner: creds::user_name(t.owner_uid).unwrap_or_else(|| t.owner_uid.to_string()),
                insns: t.insns,
                snaplen: t.snaplen,
                frames: s.frames,
                bytes: s.bytes,
                drops: s.drops + stream_drops,
                queue_frames,
                queue_bytes,
                queue_limit_bytes: t.endpoint.bound().bytes,
                attached_at: t
                    .attached_at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                listen,
                stream_clients: clients,
            });
        }
        r
    }

    pub fn stats_line(&self, live: &LiveCapture, start: Instant) -> String {
        let (packets, drops) = live.kernel_counts();
        let attached = self
            .tenants
            .values()
            .filter(|t| matches!(t.kind, Kind::Attach))
            .count();
        format!(
            "bpf-demux: {} tenants ({attached} attached), {} frames read, {} matched, kernel received {packets} dropped {drops}, in {:.0} s",
            self.tenants.len(),
            live.frames_seen(),
            live.frames_matched(),
            start.elapsed().as_secs_f64()
        )
    }

    /// SIGHUP: re-reads the static tenants and applies the difference; a
    /// file that does not load, an address that cannot be listened on, or
    /// a name an attached tenant has, changes nothing.
    pub fn reload(&mut self, path: &Path, live: &LiveCapture) {
        let fail = |why: String| say(&format!("bpf-demux: reload failed: {why}"));
        let new = match load_static(path) {
            Ok(n) => n,
            Err(e) => return fail(e),
        };
        let old: BTreeMap<&String, &StaticTenant> = self
            .tenants
            .iter()
            .filter_map(|(n, t)| match &t.kind {
                Kind::Static { def, .. } => Some((n, def)),
                Kind::Attach => None,
            })
            .collect();
        let mut changes = Vec::new();
        let mut listeners = BTreeMap::new();
        let (mut added, mut removed, mut changed) = (0, 0, 0);
        for name in old
            .keys()
            .filter(|n| !new.iter().any(|s| &s.program.name == **n))
        {
            changes.push(Change::Remove((*name).clone()));
            removed += 1;
        }
        for s in &new {
            let name = &s.program.name;
            let fresh = match old.get(name) {
                None if self.tenants.contains_key(name) => {
                    return fail(format!(
                        "{}: filter `{name}`: an attached tenant has this name",
                        path.display()
                    ))
                }
                None => true,
                Some(o) if o.listen != s.listen => {
                    changes.push(Change::Remove(name.clone()));
                    true
                }
                Some(o) => {
                    let same = o.program.program.insns() == s.program.program.insns()
                        && o.program.snaplen == s.program.snaplen;
                    if !same {
                        changes.push(Change::Replace(s.program.clone()));
                        changed += 1;
                    }
                    false
                }
            };
            if fresh {
                let l = match TcpListener::bind(s.listen) {
                    Ok(l) => l,
                    Err(e) => {
                        return fail(format!(
                            "filter `{name}`: cannot listen on {}: {e}",
                            s.listen
                        ))
                    }
                };
                listeners.insert(name.clone(), l);
                changes.push(Change::Add {
                    filter: s.program.clone(),
                    queue: static_queue(),
                });
                added += 1;
            }
        }
        // The new streams are ours before anyone can connect to them.
        let mut both = self.listen_addrs();
        both.extend(new.iter().map(|s| s.listen));
        live.set_own_streams(both);
        let applied = match live.update(changes.clone()) {
            Ok(a) => a,
            Err(e) => {
                live.set_own_streams(self.listen_addrs());
                return fail(format!("{}: {e}", path.display()));
            }
        };
        let mut endpoints = applied.endpoints.into_iter();
        for c in changes {
            match c {
                Change::Remove(name) => {
                    if let Some(Tenant {
                        kind: Kind::Static { stream, .. },
                        ..
                    }) = self.tenants.remove(&name)
                    {
                        self.ending.push(stream);
                    }
                }
                Change::Add { filter, .. } => {
                    let def = new
                        .iter()
                        .find(|s| s.program.name == filter.name)
                        .expect("added from the new file")
                        .clone();
                    let ep = endpoints.next().expect("one endpoint per add");
                    let l = listeners.remove(&filter.name).expect("bound above");
                    if let Err(e) = self.add_static(def, ep, l) {
                        say(&format!(
                            "bpf-demux: filter `{}`: starting its stream: {e}",
                            filter.name
                        ));
                    }
                }
                Change::Replace(p) => {
                    if let Some(t) = self.tenants.get_mut(&p.name) {
                        t.insns = p.program.len();
                        t.snaplen = p.snaplen;
                        if let Kind::Static { def, .. } = &mut t.kind {
                            def.program = p;
                        }
                    }
                }
            }
        }
        live.set_own_streams(self.listen_addrs());
        say(&format!(
            "bpf-demux: reloaded {}: {} static tenants (+{added} -{removed} ~{changed})",
            path.display(),
            new.len()
        ));
    }

    /// After the capture has ended: waits for every stream to send what
    /// it has.
    pub fn finish(self) {
        for t in self.tenants.into_values() {
            if let Kind::Static { stream, .. } = t.kind {
                stream.finish();
            }
        }
        for s in self.ending {
            s.finish();
        }
    }
}
