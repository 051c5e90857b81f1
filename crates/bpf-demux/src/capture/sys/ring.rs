//! A TPACKET_V3 receive ring on one AF_PACKET socket.
//!
//! The kernel fills blocks of frames in a memory-mapped ring; userland
//! walks a block's frames in place and hands the block back. Frames are
//! seen as the kernel's socket filter would see them: outer VLAN tag
//! stripped (reported in the header), `tp_len` the wire length without it.

use super::{attach, bind_all_protocols, check, getsockopt, setsockopt, FilterHandle};
use crate::cbpf::Insn;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Ring geometry and socket options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per block; a multiple of the page size. The default (4 MiB)
    /// holds 64 KiB GRO/BIG TCP frames whole.
    pub block_size: u32,
    /// Blocks in the ring (each of `block_size` bytes).
    pub block_count: u32,
    /// Nominal frame size (V3 packs frames; this sets `tp_frame_nr`).
    pub frame_size: u32,
    /// Milliseconds before the kernel hands over a partly filled block.
    pub retire_ms: u32,
    /// Join fanout group `id` (hash mode, flow affinity kept).
    pub fanout_group: Option<u16>,
    /// Promiscuous mode via PACKET_ADD_MEMBERSHIP (reference-counted).
    pub promisc: bool,
    /// A cooked socket (SOCK_DGRAM): frames without their link header,
    /// what it was told in `sockaddr_ll` ([`RingFrame::addr`]); libpcap's
    /// `any` device.
    pub cooked: bool,
}

impl Default for RingConfig {
    fn default() -> RingConfig {
        RingConfig {
            block_size: 4 << 20,
            block_count: 16,
            frame_size: 2048,
            retire_ms: 10,
            fanout_group: None,
            promisc: false,
            cooked: false,
        }
    }
}

/// One frame in the ring, with its metadata.
#[derive(Clone, Copy, Debug)]
pub struct RingFrame<'a> {
    /// The captured bytes (from the MAC header), as the filter saw them.
    pub data: &'a [u8],
    /// Wire length (without a stripped tag).
    pub wire_len: u32,
    /// Capture time: seconds (the kernel's `tp_sec`).
    pub ts_sec: u32,
    /// Capture time: nanoseconds (`tp_nsec`).
    pub ts_nsec: u32,
    /// Offset of the network header from the MAC header.
    pub net_off: u16,
    /// `(tci, tpid)` of a stripped outer tag.
    pub vlan: Option<(u16, u16)>,
    /// EtherType from `sockaddr_ll` (network byte order converted).
    pub protocol: u16,
    /// Packet type (`PACKET_HOST`, ...).
    pub pkttype: u8,
    /// Index of the interface it arrived on.
    pub ifindex: u32,
    /// ARPHRD type of that interface.
    pub hatype: u16,
    /// The link-layer source address (`sll_addr`), `halen` bytes of it.
    pub addr: [u8; 8],
    /// Bytes of `addr` that are the address.
    pub halen: u8,
}

/// A TPACKET_V3 ring socket bound to one interface.
pub struct Ring {
    fd: Arc<OwnedFd>,
    map: *mut u8,
    map_len: usize,
    block_size: usize,
    block_count: usize,
    current: usize,
}

// SAFETY: the mapping is owned by this value alone and only touched through
// `&mut self`; moving it to another thread is sound.
unsafe impl Send for Ring {}

impl Ring {
    /// Opens a ring on interface `ifindex`, with `filter` (a kernel-valid
    /// program) as its socket filter. Frames queued before the ring exists
    /// are never seen (the socket binds only after the ring and the filter
    /// are set).
    pub fn open(ifindex: u32, cfg: &RingConfig, filter: Option<&[Insn]>) -> io::Result<Ring> {
        // SAFETY: plain socket(2); protocol 0 receives nothing until bind.
        let raw = check(unsafe {
            libc::socket(
                libc::AF_PACKET,
                if cfg.cooked {
                    libc::SOCK_DGRAM
                } else {
                    libc::SOCK_RAW
                } | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let version: libc::c_int = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &version,
        )?;
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_count,
            tp_frame_size: cfg.frame_size,
            tp_frame_nr: (cfg.block_size / cfg.frame_size.max(1)) * cfg.block_count,
            tp_retire_blk_tov: cfg.retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
        let map_len = cfg.block_size as usize * cfg.block_count as usize;
        // SAFETY: mapping the ring the kernel just allocated for this fd,
        // shared and read-write as the packet socket requires.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED,
                fd.as_raw_fd(),
                0,
            )
        };
        let map = if map == libc::MAP_FAILED {
            // MAP_LOCKED may exceed RLIMIT_MEMLOCK; retry without it.
            // SAFETY: as above.
            let m = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if m == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            m
        } else {
            map
        };
        let ring = Ring {
            fd: Arc::new(fd),
            map: map as *mut u8,
            map_len,
            block_size: cfg.block_size as usize,
            block_count: cfg.block_count as usize,
            current: 0,
        };
        if let Some(insns) = filter {
            attach(ring.fd.as_raw_fd(), insns)?;
        }
        bind_all_protocols(ring.fd.as_raw_fd(), ifindex)?;
        if let Some(group) = cfg.fanout_group {
            let arg: libc::c_int =
                (group as libc::c_int) | ((libc::PACKET_FANOUT_HASH as libc::c_int) << 16);
            setsockopt(
                ring.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                &arg,
            )?;
        }
        if cfg.promisc {
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex as i32,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setsockopt(
                ring.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                &mreq,
            )?;
        }
        Ok(ring)
    }

    /// A handle that swaps this ring socket's filter from another thread
    /// (it keeps the descriptor open while it lives).
    pub fn filter_handle(&self) -> FilterHandle {
        FilterHandle(self.fd.clone())
    }

    /// `SO_ERROR`: the socket's pending error, cleared.
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        let err: libc::c_int = getsockopt(self.fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR)?;
        Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
    }

    fn block_status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: block `i` lies inside the mapping; its descriptor starts
        // with `version`, `offset_to_priv`, then `block_status` (offset 8),
        // a 4-aligned u32 the kernel and we hand back and forth.
        unsafe { &*(self.map.add(i * self.block_size + 8) as *const AtomicU32) }
    }

    /// Waits up to `timeout` for the next filled block and calls `f` with
    /// each of its frames, then returns the block to the kernel. Returns
    /// the number of frames seen (0 on timeout).
    pub fn next_block(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&RingFrame<'_>),
    ) -> io::Result<usize> {
        let i = self.current;
        if self.block_status(i).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLERR,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe {
                libc::poll(
                    &mut pfd,
                    1,
                    timeout.as_millis().min(i32::MAX as u128) as i32,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    return Ok(0);
                }
                return Err(e);
            }
            if self.block_status(i).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                if pfd.revents & libc::POLLERR != 0 {
                    // A pending socket error (ENETDOWN once the interface
                    // is gone): report it, or poll would return at once
                    // forever.
                    if let Some(e) = self.take_error()? {
                        return Err(e);
                    }
                }
                return Ok(0);
            }
        }
        let base = i * self.block_size;
        // SAFETY: the block is ours (TP_STATUS_USER) until we store
        // TP_STATUS_KERNEL; its descriptor is at the block start.
        let desc = unsafe { &*(self.map.add(base) as *const libc::tpacket_block_desc) };
        // SAFETY: V3 blocks carry the bh1 variant.
        let (num, first) = unsafe {
            (
                desc.hdr.bh1.num_pkts as usize,
                desc.hdr.bh1.offset_to_first_pkt as usize,
            )
        };
        let mut off = first;
        let hdr_len = (std::mem::size_of::<libc::tpacket3_hdr>() + 15) & !15;
        for _ in 0..num {
            if off + hdr_len + std::mem::size_of::<libc::sockaddr_ll>() > self.block_size {
                break;
            }
            // SAFETY: the kernel wrote a tpacket3_hdr at `off` inside the
            // block, followed (aligned) by a sockaddr_ll; both are read-only here.
            let h = unsafe { &*(self.map.add(base + off) as *const libc::tpacket3_hdr) };
            // SAFETY: as above.
            let sll = unsafe { &*(self.map.add(base + off + hdr_len) as *const libc::sockaddr_ll) };
            let mac = off + h.tp_mac as usize;
            let len = (h.tp_snaplen as usize).min(self.block_size.saturating_sub(mac));
            // SAFETY: `mac..mac+len` is inside the block (clamped above),
            // which stays ours while `f` runs.
            let data = unsafe { std::slice::from_raw_parts(self.map.add(base + mac), len) };
            let vlan = (h.tp_status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
                let tpid = if h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                    h.hv1.tp_vlan_tpid
                } else {
                    0x8100
                };
                (h.hv1.tp_vlan_tci as u16, tpid)
            });
            f(&RingFrame {
                data,
                wire_len: h.tp_len,
                ts_sec: h.tp_sec,
                ts_nsec: h.tp_nsec,
                net_off: h.tp_net.saturating_sub(h.tp_mac),
                vlan,
                protocol: u16::from_be(sll.sll_protocol),
                pkttype: sll.sll_pkttype,
                ifindex: sll.sll_ifindex as u32,
                hatype: sll.sll_hatype,
                addr: sll.sll_addr,
                halen: sll.sll_halen,
            });
            if h.tp_next_offset == 0 {
                break;
            }
            off += h.tp_next_offset as usize;
        }
        self.block_status(i)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.current = (i + 1) % self.block_count;
        Ok(num)
    }

    /// Kernel counters since the last call (PACKET_STATISTICS resets on
    /// read): `(packets, drops)`; packets include drops.
    pub fn stats(&self) -> io::Result<(u64, u64)> {
        let st: libc::tpacket_stats_v3 = getsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
        )?;
        Ok((st.tp_packets as u64, st.tp_drops as u64))
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `open`; no slice
        // into it outlives `next_block`.
        unsafe {
            libc::munmap(self.map as *mut libc::c_void, self.map_len);
        }
    }
}
