//! `bpf-demux serve`: one capture, many tenants that attach and detach
//! over a Unix socket without privileges, and static tenants streamed as
//! PCAP-over-IP.
//!
//! Threads: the main thread owns the capture and the tenant registry and
//! applies every change (requests from connections, batched: one update
//! for every request that arrived together); an accept thread starts one
//! thread per connection ([`client`]); each attached tenant has a writer
//! thread, each static tenant a [`stream`].

mod client;
mod registry;
mod stream;

use crate::sink::say;
use bpf_demux::capture::sys::{self, creds, creds::Peer};
use bpf_demux::capture::{Endpoint, LiveCapture, Senders};
use bpf_demux::serve::policy::Policy;
use bpf_demux::serve::proto::{RefuseCode, TenantsReport};
use bpf_demux::FilterSet;
use bpf_demux::NamedProgram;
use registry::Registry;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Serve one interface to many tenants: one merged filter, one ring.
///
/// Opens the capture ring(s) on --interface and the control socket
/// --socket (a Unix socket, mode 0660, group --group), then gives up
/// privileges: becomes --user if given and drops every capability (the
/// open sockets keep working: filter swaps need none). Prints
/// `bpf-demux: serving IF on PATH` once tenants can attach.
///
/// Tenants attach with `bpf-demux attach` (any uid the policy allows:
/// without --policy, root and members of --group) and get their own pcap
/// stream; `bpf-demux tenants` lists them. Static tenants come from
/// --filters (TOML, each with `listen = "ADDR:PORT"`): their frames go as
/// a pcap stream to every TCP client of that address (PCAP-over-IP:
/// `tshark -i TCP@127.0.0.1:57012`). SIGHUP reloads --filters, SIGUSR1
/// prints statistics, SIGINT / SIGTERM end every stream cleanly (each
/// client gets every frame queued for it) and exit 0. If the interface
/// goes away, the streams end the same way and the exit status is 1.
///
/// Example: bpf-demux serve -i eth0 --socket /run/bpf-demux.sock --group netops --user bpf-demux
///          bpf-demux attach --socket /run/bpf-demux.sock tcp port 443 | tcpdump -r -
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    ring: crate::ring_args::RingArgs,
    /// Control socket path (replaced if a stale socket is there).
    #[arg(long)]
    socket: PathBuf,
    /// Group of the control socket (name or gid); its members may attach
    /// under the default policy.
    #[arg(long)]
    group: Option<String>,
    /// User (name or uid) to run as once the sockets are open.
    #[arg(long)]
    user: Option<String>,
    /// Static tenants (TOML, each with `listen`), streamed as PCAP-over-IP.
    #[arg(long, short)]
    filters: Option<PathBuf>,
    /// Who may attach, and their limits (TOML; see the operator's guide).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Most connections at once (more are refused).
    #[arg(long, default_value_t = 1024)]
    max_clients: usize,
    /// Milliseconds before the kernel hands over a partly filled ring
    /// block (tcpdump's libpcap waits 1000): longer means fewer wakeups
    /// per frame, later frames.
    #[arg(long, default_value_t = 100)]
    block_timeout_ms: u32,
}

/// A change a connection asks of the daemon.
pub enum Request {
    Attach {
        peer: Peer,
        filter: NamedProgram,
        queue_bytes: Option<u64>,
        reply: Sender<Result<Granted, (RefuseCode, String)>>,
    },
    Detach {
        name: String,
    },
    List {
        peer: Peer,
        reply: Sender<TenantsReport>,
    },
}

/// An attach the daemon applied.
pub struct Granted {
    pub endpoint: Arc<Endpoint>,
    pub snaplen: u32,
    pub queue_bytes: u64,
}

/// Frames a tenant's queue holds at most (the byte bound usually binds
/// first).
const QUEUE_FRAMES: usize = 1 << 20;

pub fn run(a: Args) -> Result<ExitCode, String> {
    if let Some(listed) = a.ring.listing() {
        return listed;
    }
    let mut cfg = a.ring.config()?;
    if cfg.link != bpf_demux::link::LinkType::Ethernet {
        return Err(format!(
            "interface `{}` delivers {} frames: serve captures Ethernet and loopback interfaces (capture takes the others)",
            cfg.interface,
            cfg.link.description()
        ));
    }
    let (workers, interface) = (cfg.workers, cfg.interface.clone());
    if a.block_timeout_ms == 0 || a.block_timeout_ms > 10_000 {
        return Err("--block-timeout-ms must be 1 to 10000".into());
    }
    if a.max_clients == 0 {
        return Err("--max-clients must be at least 1".into());
    }
    let gid = a
        .group
        .as_deref()
        .map(creds::group)
        .transpose()
        .map_err(|e| format!("--group: {e}"))?;
    let user = a
        .user
        .as_deref()
        .map(creds::user)
        .transpose()
        .map_err(|e| format!("--user: {e}"))?;
    let policy = match &a.policy {
        Some(p) => Policy::load(p).map_err(|e| e.to_string())?,
        None => Policy::default_for(gid),
    };
    let statics = match &a.filters {
        Some(f) => registry::load_static(f)?,
        None => Vec::new(),
    };
    sys::raise_open_files_limit().map_err(|e| format!("raising the open-files limit: {e}"))?;
    sys::catch_termination()
        .and_then(|()| sys::catch_reload_and_stats())
        .map_err(|e| format!("installing signal handlers: {e}"))?;
    let listeners = statics
        .iter()
        .map(|s| {
            std::net::TcpListener::bind(s.listen).map_err(|e| {
                format!(
                    "filter `{}`: cannot listen on {}: {e}",
                    s.program.name, s.listen
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let control = open_control_socket(&a.socket, user.map(|u| u.0), gid)?;
    cfg.ring.retire_ms = a.block_timeout_ms;
    // Attaches wait for the workers to take the new routing: within this
    // long when idle (one wakeup per 100 ms per worker meanwhile).
    cfg.poll = Duration::from_millis(100);
    let set =
        FilterSet::new(statics.iter().map(|s| s.program.clone())).map_err(|e| e.to_string())?;
    let specs = bpf_demux::capture::TenantSpec::all(set.automaton(), registry::static_queue());
    let (senders, endpoints) = Senders::new(specs, false);
    let ifindex = sys::if_index(&interface).ok();
    let live = LiveCapture::start(set, senders, &cfg).map_err(|e| {
        let _ = std::fs::remove_file(&a.socket);
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " (serving needs root or CAP_NET_RAW)"
        } else {
            ""
        };
        format!("cannot capture: {e}{hint}")
    })?;
    // The streams are ours before anyone can connect to them.
    live.set_own_streams(statics.iter().map(|s| s.listen).collect());
    let mut reg = Registry::new(interface.clone());
    for ((s, ep), l) in statics.into_iter().zip(endpoints).zip(listeners) {
        reg.add_static(s, ep, l)
            .map_err(|e| format!("starting a stream: {e}"))?;
    }
    live.set_own_streams(reg.listen_addrs());
    if let Some((uid, pgid)) = user {
        creds::become_user(uid, pgid, &[]).map_err(|e| format!("becoming user {uid}: {e}"))?;
    }
    creds::drop_capabilities().map_err(|e| format!("dropping capabilities: {e}"))?;
    say(&format!(
        "bpf-demux: serving {} on {}",
        interface,
        a.socket.display()
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let active = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<Request>();
    let acceptor = {
        let (stop, active, interface) = (stop.clone(), active.clone(), interface.clone());
        let max = a.max_clients;
        std::thread::Builder::new()
            .name("serve-accept".into())
            .spawn(move || accept_loop(control, tx, interface, max, &stop, &active))
            .map_err(|e| format!("starting the accept thread: {e}"))?
    };
    let start = Instant::now();
    let mut last_check = Instant::now();
    let mut gone = false;
    while !live.is_stopped() {
        if let Ok(first) = rx.recv_timeout(Duration::from_millis(100)) {
            let mut batch = vec![first];
            batch.extend(rx.try_iter().take(4095));
            reg.apply(&live, &policy, batch);
        }
        if sys::termination_requested() {
            live.stop();
        }
        if sys::take_hangup() {
            if let Some(f) = &a.filters {
                reg.reload(f, &live);
            } else {
                say("bpf-demux: SIGHUP: no --filters to reload");
            }
        }
        if sys::take_usr1() {
            say(&reg.stats_line(&live, start));
        }
        if last_check.elapsed() >= Duration::from_millis(250) {
            last_check = Instant::now();
            if sys::if_index(&interface).ok() != ifindex {
                gone = true;
                live.stop();
            }
            if live.workers_running() < workers {
                live.stop();
            }
        }
    }
    // Ends every tenant's stream: each writer sends what was queued, then
    // the counters.
    stop.store(true, Ordering::Relaxed);
    // Wakes the accept thread (it sees `stop` and ends).
    let _ = UnixStream::connect(&a.socket);
    let line = reg.stats_line(&live, start);
    let totals = live.join();
    reg.finish();
    let _ = acceptor.join();
    let deadline = Instant::now() + Duration::from_secs(10);
    while active.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(&a.socket);
    say(&line);
    match totals {
        Ok(t) if !gone => {
            say(&format!(
                "bpf-demux: kernel: received {}, dropped {}",
                t.kernel_packets, t.kernel_drops
            ));
            Ok(ExitCode::SUCCESS)
        }
        Ok(_) => {
            say(&format!("bpf-demux: interface {} went away", interface));
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            say(&format!("bpf-demux: capture failed: {e}"));
            Ok(ExitCode::from(1))
        }
    }
}

/// Binds the control socket at `path` (a stale socket of a daemon that is
/// gone is replaced; a live one is not), mode 0660, owned by `uid` (the
/// daemon's user, so it can remove it) and group `gid`.
fn open_control_socket(
    path: &Path,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<UnixListener, String> {
    let shown = path.display();
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(format!("--socket {shown}: exists and is not a socket"));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(format!("--socket {shown}: another daemon is serving there"));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("--socket {shown}: removing the stale socket: {e}"))?;
    }
    let l = UnixListener::bind(path).map_err(|e| format!("--socket {shown}: {e}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .and_then(|()| std::os::unix::fs::chown(path, uid, gid))
        .map_err(|e| format!("--socket {shown}: {e}"))?;
    Ok(l)
}

/// Counts a connection thread for the life of the guard.
struct Active(Arc<AtomicUsize>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn accept_loop(
    l: UnixListener,
    requests: Sender<Request>,
    interface: String,
    max: usize,
    stop: &Arc<AtomicBool>,
    active: &Arc<AtomicUsize>,
) {
    use std::os::fd::AsRawFd;
    // Blocking accept: the main thread connects once to wake it at the end.
    let _ = l.set_nonblocking(false);
    loop {
        let accepted = l.accept();
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok((sock, _)) = accepted else {
            // EMFILE and the like: let a client go before trying again.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let Ok(peer) = creds::peer(sock.as_raw_fd()) else {
            continue;
        };
        if active.load(Ordering::Acquire) >= max {
            // Dropped unanswered: the client sees the connection close.
            continue;
        }
        active.fetch_add(1, Ordering::AcqRel);
        let guard = Active(active.clone());
        let cx = client::Context {
            requests: requests.clone(),
            interface: interface.clone(),
            max_snaplen: bpf_demux::expr::DEFAULT_SNAPLEN,
        };
        let stop = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("serve-client".into())
            .spawn(move || {
                let _guard = guard;
                client::serve(sock, peer, cx, stop);
            });
        drop(spawned);
    }
}
