//! A tun device (raw IP, no link header): packets written to it arrive on
//! its interface as received, as a VPN's would. For the live tests of
//! capturing on raw-IP interfaces; made in the calling thread's network
//! namespace.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;

/// `TUNSETIFF` (`_IOW('T', 202, int)`).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: i16 = 0x0001;
const IFF_NO_PI: i16 = 0x1000;

/// An open tun device.
pub struct Tun {
    file: File,
}

impl Tun {
    /// Creates (or attaches to) tun interface `name` in this thread's
    /// namespace. Needs CAP_NET_ADMIN; bring it up with `ip link set`.
    pub fn open(name: &str) -> io::Result<Tun> {
        if name.len() >= 16 {
            return Err(io::Error::other("interface names are below 16 bytes"));
        }
        let file = File::options()
            .read(true)
            .write(true)
            .open("/dev/net/tun")?;
        // struct ifreq: the name, then (at 16) the flags.
        let mut ifr = [0u8; 40];
        ifr[..name.len()].copy_from_slice(name.as_bytes());
        ifr[16..18].copy_from_slice(&(IFF_TUN | IFF_NO_PI).to_ne_bytes());
        // SAFETY: TUNSETIFF reads and writes one struct ifreq, which `ifr`
        // holds (40 bytes) for the call's duration.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tun { file })
    }

    /// Injects one IP packet (it arrives on the interface).
    pub fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        self.file.write_all(packet)
    }
}
