//! Thin, safe wrappers over the socket calls bpf-demux needs: an AF_PACKET
//! socket (bind, attach a classic filter, send, receive), the kernel's own
//! verdict on a program (`SO_ATTACH_FILTER` on a throw-away socket), and
//! entering a network namespace from one thread. Every `unsafe` block says
//! why it is sound.
#![allow(unsafe_code)]

use crate::cbpf::Insn;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// `ETH_P_ALL`, host order.
pub const ETH_P_ALL: u16 = 0x0003;

pub mod creds;
pub mod ring;

pub(crate) fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn sock_fprog(insns: &[Insn]) -> (Vec<libc::sock_filter>, libc::sock_fprog) {
    let mut filt: Vec<libc::sock_filter> = insns
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let prog = libc::sock_fprog {
        len: filt.len() as u16,
        filter: filt.as_mut_ptr(),
    };
    (filt, prog)
}

fn attach(fd: RawFd, insns: &[Insn]) -> io::Result<()> {
    if insns.len() > u16::MAX as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // `prog` points at `_keep`, which lives until after the call; the
    // kernel copies the program and does not keep the pointer.
    let (_keep, prog) = sock_fprog(insns);
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
}

/// The filter of a socket another thread reads from: swapped whole by the
/// kernel (under RCU) on every attach, so a frame meets either the old
/// filter or the new one.
#[derive(Clone)]
pub struct FilterHandle(pub(crate) std::sync::Arc<OwnedFd>);

impl FilterHandle {
    /// `SO_ATTACH_FILTER`: replaces the socket's filter with `insns`.
    /// While it swaps, the kernel charges both programs to the socket's
    /// `optmem_max`, so a large swap can fail with ENOMEM where attaching
    /// the same program alone would not.
    pub fn attach(&self, insns: &[Insn]) -> io::Result<()> {
        attach(self.0.as_raw_fd(), insns)
    }
    /// `SO_DETACH_FILTER`: no filter, every frame passes. Not having one
    /// is not an error.
    pub fn detach(&self) -> io::Result<()> {
        let v: libc::c_int = 0;
        match setsockopt(
            self.0.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DETACH_FILTER,
            &v,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            r => r,
        }
    }
}

/// `setsockopt(fd, level, opt, v)` with `v`'s size.
pub(crate) fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    opt: libc::c_int,
    v: &T,
) -> io::Result<()> {
    // SAFETY: `v` is a live value of the size passed; the kernel only reads it.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `getsockopt(fd, level, opt)` into a `T` that starts zeroed.
/// Only for plain-data option types (integers, `#[repr(C)]` counters).
pub(crate) fn getsockopt<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    opt: libc::c_int,
) -> io::Result<T> {
    // SAFETY: every `T` used here is plain data for which all-zero bytes
    // are a valid value.
    let mut v: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live and `len` is `v`'s size.
    check(unsafe {
        libc::getsockopt(
            fd,
            level,
            opt,
            &mut v as *mut T as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(v)
}

/// The running kernel's verdict on `insns`: `Ok` if `SO_ATTACH_FILTER`
/// accepts the program, else the errno it gave (EINVAL for a bad program).
/// Uses an unprivileged UDP socket: the check is the same for every socket.
pub fn kernel_accepts(insns: &[Insn]) -> io::Result<()> {
    // SAFETY: plain socket(2) call; the fd is owned below.
    let fd =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    attach(fd.as_raw_fd(), insns)
}

/// Moves the calling thread into the network namespace at `path`
/// (e.g. `/var/run/netns/NAME`). Other threads are not affected.
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let f = std::fs::File::open(path)?;
    // SAFETY: setns(2) with a valid namespace fd; it changes only this thread.
    check(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
}

/// The index of interface `name` in the calling thread's namespace.
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// A plain (non-ring) AF_PACKET SOCK_RAW socket.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

/// What `recv` reports for one frame.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    /// Bytes copied into the buffer.
    pub copied: usize,
    /// Length of the frame as queued (after the filter's truncation).
    pub len: usize,
}

impl PacketSocket {
    /// Opens a socket that receives nothing until [`bind`](Self::bind).
    pub fn open() -> io::Result<PacketSocket> {
        // SAFETY: plain socket(2) call; protocol 0 queues no frames yet.
        let fd = check(unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(PacketSocket {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            ifindex: 0,
        })
    }

    /// Attaches a classic filter (before binding, so no frame escapes it).
    pub fn attach_filter(&self, insns: &[Insn]) -> io::Result<()> {
        attach(self.fd.as_raw_fd(), insns)
    }

    /// Sets the receive buffer, beyond rmem_max when privileged.
    pub fn set_rcvbuf(&self, bytes: usize) -> io::Result<()> {
        let v = bytes.min(i32::MAX as usize) as libc::c_int;
        // Beyond rmem_max when privileged, else up to it.
        setsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &v,
        )
        .or_else(|_| setsockopt(self.fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, &v))
    }

    /// Binds to interface `ifindex`, all protocols.
    pub fn bind(&mut self, ifindex: u32) -> io::Result<()> {
        bind_all_protocols(self.fd.as_raw_fd(), ifindex)?;
        self.ifindex = ifindex;
        Ok(())
    }

    /// Sends one whole Ethernet frame out of the bound interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<usize> {
        let mut sll: libc::sockaddr_ll = zeroed_sll();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex as i32;
        sll.sll_halen = 6;
        // SAFETY: `frame` is a valid buffer of the given length; `sll` a valid address.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Receives one queued frame without waiting; `None` when the queue is empty.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        // SAFETY: `buf` is a valid writable buffer of the given length.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(e);
        }
        let len = n as usize;
        Ok(Some(Received {
            copied: len.min(buf.len()),
            len,
        }))
    }

    /// Kernel counters since the last call (PACKET_STATISTICS resets on
    /// read): `(packets, drops)`; packets include drops.
    pub fn stats(&self) -> io::Result<(u64, u64)> {
        let st: libc::tpacket_stats = getsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
        )?;
        Ok((st.tp_packets as u64, st.tp_drops as u64))
    }
}

/// Binds packet socket `fd` to interface `ifindex`, all protocols.
pub(crate) fn bind_all_protocols(fd: RawFd, ifindex: u32) -> io::Result<()> {
    let mut sll: libc::sockaddr_ll = zeroed_sll();
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ETH_P_ALL.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll and the length matches it.
    check(unsafe {
        libc::bind(
            fd,
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

fn zeroed_sll() -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

static TERMINATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static HANGUP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static USR1: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    let flag = match sig {
        libc::SIGHUP => &HANGUP,
        libc::SIGUSR1 => &USR1,
        _ => &TERMINATE,
    };
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn catch(signals: &[libc::c_int]) -> io::Result<()> {
    for &sig in signals {
        // SAFETY: installing an async-signal-safe handler (one atomic store).
        let r = unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        if r == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Signals that would end the process and that a capture turns into a
/// clean end instead (files flushed, closed and renamed): SIGINT, SIGTERM,
/// SIGQUIT, SIGALRM, SIGUSR2, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF.
pub const ENDING_SIGNALS: [libc::c_int; 9] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGQUIT,
    libc::SIGALRM,
    libc::SIGUSR2,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
];

/// As [`catch_termination`], and a blocking call of the catching thread
/// returns `EINTR` when one arrives (no `SA_RESTART`), so a reader that
/// waits without a timeout still notices the signal at once.
pub fn catch_termination_interrupting() -> io::Result<()> {
    for &sig in &ENDING_SIGNALS {
        // SAFETY: sigaction is plain old data; all-zero is a valid start
        // (empty mask, no flags).
        let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        // SAFETY: installing an async-signal-safe handler (one atomic
        // store) with a valid `act`; the old action is not wanted.
        check(unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) })?;
    }
    Ok(())
}

/// Makes every signal of [`ENDING_SIGNALS`] set a flag
/// ([`termination_requested`]) instead of killing the process, so captures
/// can flush and close their files.
pub fn catch_termination() -> io::Result<()> {
    catch(&ENDING_SIGNALS)
}

/// Also catches SIGHUP ([`take_hangup`]: reload) and SIGUSR1
/// ([`take_usr1`]: print statistics), as tcpdump and daemons do.
pub fn catch_reload_and_stats() -> io::Result<()> {
    catch(&[libc::SIGHUP, libc::SIGUSR1])
}

/// True once an ending signal arrived (after [`catch_termination`]).
pub fn termination_requested() -> bool {
    TERMINATE.load(std::sync::atomic::Ordering::SeqCst)
}

/// True if SIGHUP arrived since the last call.
pub fn take_hangup() -> bool {
    HANGUP.swap(false, std::sync::atomic::Ordering::SeqCst)
}

/// True if SIGUSR1 arrived since the last call.
pub fn take_usr1() -> bool {
    USR1.swap(false, std::sync::atomic::Ordering::SeqCst)
}

/// Raises the soft limit on open files (`RLIMIT_NOFILE`) to the hard one,
/// as a program that opens one file per tenant must; returns the soft
/// limit now.
pub fn raise_open_files_limit() -> io::Result<u64> {
    // SAFETY: getrlimit fills the struct it is given; zero is a valid start.
    let mut r: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a live rlimit.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) })?;
    if r.rlim_cur < r.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: r.rlim_max,
            rlim_max: r.rlim_max,
        };
        // SAFETY: valid pointer to a live rlimit; raising to the hard
        // limit needs no privilege.
        if check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) }).is_ok() {
            r.rlim_cur = r.rlim_max;
        }
    }
    Ok(r.rlim_cur as u64)
}

/// CPU time used by this process (all threads, live and ended), user plus
/// system: `getrusage(RUSAGE_SELF)`. Softirq work the kernel runs on this
/// process's behalf (such as a veth receive path run from `sendto`) is
/// included unless the kernel accounts IRQ time separately.
pub fn process_cpu_time() -> std::time::Duration {
    // SAFETY: getrusage fills the struct it is given; zero is a valid start.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a live rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| std::time::Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time used by the calling thread, user plus system
/// (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> std::time::Duration {
    // SAFETY: clock_gettime fills the timespec it is given; zero is a valid start.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
