//! Two private network namespaces joined by a veth pair, for a real TCP
//! transfer that crosses it: `va` (10.77.0.1, the sender's namespace) and
//! `vb` (10.77.0.2, where the sniffers listen). IPv6 is off and the
//! neighbours are static, so nothing but the experiment's frames crosses.
//! Deleted on drop.

use crate::live::send_steady;
use bpf_demux::capture::sys::{enter_netns, if_index, PacketSocket};
use bpf_demux_testkit::netns::{ip, NetNs};
use std::io;
use std::path::PathBuf;
use std::process::Command;

pub const TX_ADDR: &str = "10.77.0.1";
pub const RX_ADDR: &str = "10.77.0.2";

pub struct NetPair {
    /// The sender's namespace (deleted first: that removes the veth pair).
    tx: String,
    rx: NetNs,
}

impl NetPair {
    pub fn new() -> io::Result<NetPair> {
        let rx = NetNs::new("lsf")?;
        let tx = format!("bpfdemux-lsftx-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &tx]).output();
        ip(&["netns", "add", &tx])?;
        let pair = NetPair { tx, rx };
        let (tx, rx) = (pair.tx.as_str(), pair.rx.name.as_str());
        for k in ["all", "default"] {
            let key = format!("net.ipv6.conf.{k}.disable_ipv6=1");
            let o = Command::new("ip")
                .args(["netns", "exec", tx, "sysctl", "-qw", &key])
                .output()?;
            if !o.status.success() {
                return Err(io::Error::other(format!("sysctl {key} in {tx}")));
            }
        }
        ip(&["-n", rx, "link", "set", "va", "netns", tx])?;
        ip(&[
            "-n",
            tx,
            "addr",
            "add",
            &format!("{TX_ADDR}/24"),
            "dev",
            "va",
        ])?;
        ip(&[
            "-n",
            rx,
            "addr",
            "add",
            &format!("{RX_ADDR}/24"),
            "dev",
            "vb",
        ])?;
        ip(&["-n", tx, "link", "set", "va", "up"])?;
        ip(&["-n", tx, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            tx,
            "neigh",
            "replace",
            RX_ADDR,
            "lladdr",
            "02:00:00:00:00:0b",
            "dev",
            "va",
            "nud",
            "permanent",
        ])?;
        ip(&[
            "-n",
            rx,
            "neigh",
            "replace",
            TX_ADDR,
            "lladdr",
            "02:00:00:00:00:0a",
            "dev",
            "vb",
            "nud",
            "permanent",
        ])?;
        Ok(pair)
    }

    pub fn rx_name(&self) -> &str {
        &self.rx.name
    }
    pub fn rx_path(&self) -> PathBuf {
        self.rx.path()
    }
    pub fn tx_path(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.tx))
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        // The sender's namespace goes first (with it `va`, so the pair);
        // `rx` deletes its own namespace after this.
        let _ = Command::new("ip").args(["netns", "del", &self.tx]).output();
    }
}

/// Sets both ends' MTU and the largest segment the sender's stack builds
/// (`gso_max_size`: 1500 gives wire-size frames; 65536 lets TCP hand the
/// veth 64 KB segments, as GRO hands them to a sniffer on a real NIC).
pub fn set_link(
    rx_ns: &str,
    tx_ns_path: &std::path::Path,
    mtu: u32,
    gso_max_size: u32,
) -> io::Result<()> {
    let tx = tx_ns_path
        .file_name()
        .and_then(|s| s.to_str())
        .ok_or_else(|| io::Error::other("bad namespace path"))?;
    let (mtu, gso) = (mtu.to_string(), gso_max_size.to_string());
    ip(&[
        "-n",
        tx,
        "link",
        "set",
        "va",
        "mtu",
        &mtu,
        "gso_max_size",
        &gso,
    ])?;
    ip(&[
        "-n",
        rx_ns,
        "link",
        "set",
        "vb",
        "mtu",
        &mtu,
        "gso_max_size",
        &gso,
    ])
}

/// `(packets, bytes)` of `dev`, received and sent, in the calling
/// thread's namespace.
pub fn dev_packets(dev: &str) -> io::Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/thread-self/net/dev")?;
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() != dev {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if f.len() >= 10 {
            return Ok((f[1] + f[9], f[0] + f[8]));
        }
    }
    Err(io::Error::other(format!(
        "no device {dev} in /proc/thread-self/net/dev"
    )))
}

/// Sends `frames` out of `va` from a thread in the sender's namespace: at
/// `rate` frames per second, or as fast as they go.
pub fn send_from(
    tx_ns: &std::path::Path,
    frames: &[Vec<u8>],
    rate: Option<u64>,
) -> Result<(), String> {
    let tx_ns = tx_ns.to_path_buf();
    std::thread::scope(|s| {
        s.spawn(move || -> Result<(), String> {
            enter_netns(&tx_ns).map_err(|e| e.to_string())?;
            let mut tx = PacketSocket::open().map_err(|e| e.to_string())?;
            tx.bind(if_index("va").map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            match rate {
                Some(r) => {
                    send_steady(&tx, frames, r);
                }
                None => {
                    for f in frames {
                        tx.send(f).map_err(|e| format!("send: {e}"))?;
                    }
                }
            }
            Ok(())
        })
        .join()
        .map_err(|_| "the sender panicked".to_string())?
    })
}
