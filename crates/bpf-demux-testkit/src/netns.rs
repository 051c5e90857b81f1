//! A private network namespace with a veth pair, for tests and
//! `demux-bench --live`: frames sent on `va` arrive on `vb`, and nothing
//! else crosses (no addresses, IPv6 off). Made with iproute2; deleted on drop.

use std::io;
use std::path::PathBuf;
use std::process::Command;

pub struct NetNs {
    pub name: String,
    /// MAC address of `vb` (frames to it are PACKET_HOST there).
    pub vb_mac: [u8; 6],
}

/// Runs `ip ARGS`; its stderr is the error when it fails.
pub fn ip(args: &[&str]) -> io::Result<()> {
    let o = Command::new("ip").args(args).output()?;
    if o.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )))
    }
}

impl NetNs {
    /// Creates namespace `bpfdemux-<tag>-<pid>` with `va` <-> `vb`, both up
    /// with MTU 65000. Needs root (CAP_NET_ADMIN) and `ip`.
    pub fn new(tag: &str) -> io::Result<NetNs> {
        let name = format!("bpfdemux-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name])?;
        let ns = NetNs {
            name: name.clone(),
            vb_mac: [0x02, 0, 0, 0, 0, 0x0b],
        };
        for k in ["all", "default"] {
            let key = format!("net.ipv6.conf.{k}.disable_ipv6=1");
            let o = Command::new("ip")
                .args(["netns", "exec", &name, "sysctl", "-qw", &key])
                .output()?;
            if !o.status.success() {
                return Err(io::Error::other(format!(
                    "sysctl {key}: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                )));
            }
        }
        ip(&[
            "-n", &name, "link", "add", "va", "type", "veth", "peer", "name", "vb",
        ])?;
        for (dev, mac) in [("va", "02:00:00:00:00:0a"), ("vb", "02:00:00:00:00:0b")] {
            ip(&[
                "-n", &name, "link", "set", dev, "address", mac, "mtu", "65000",
            ])?;
        }
        for dev in ["va", "vb"] {
            ip(&["-n", &name, "link", "set", dev, "up"])?;
        }
        Ok(ns)
    }

    /// The namespace's handle, for [`super::sys::enter_netns`].
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.name))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
