//! One client connection of `bpf-demux serve`: the handshake, then either
//! a listing or one attached tenant whose frames a writer thread streams
//! while this thread waits for `Detach` (or the client to go).

use super::{Granted, Request};
use bpf_demux::capture::sys::creds::Peer;
use bpf_demux::capture::Endpoint;
use bpf_demux::cbpf::Program;
use bpf_demux::serve::conn::{ConnError, MessageReader};
use bpf_demux::serve::proto::{self, ClientMessage, DaemonMessage, RefuseCode};
use bpf_demux::FilterSet;
use bpf_demux::NamedProgram;
use std::io::{BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A message must arrive whole within this long once it has started; the
/// first message (`Hello`) and the request after it within this long of
/// the connection.
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(5);
/// How long a writer gathers frames after the first of a burst before it
/// writes them (unless a quarter of the queue fills first): the latency a
/// tenant sees at most beyond the ring's, as tcpdump's 1 s read timeout.
pub const COALESCE: Duration = Duration::from_millis(1000);
/// Read timeout: how often a waiting reader looks at its deadlines.
const TICK: Duration = Duration::from_millis(250);

/// What a connection needs from the daemon.
pub struct Context {
    pub requests: Sender<Request>,
    pub interface: String,
    pub max_snaplen: u32,
}

fn send(sock: &mut UnixStream, m: &DaemonMessage) -> std::io::Result<()> {
    let mut out = Vec::new();
    m.encode(&mut out);
    sock.write_all(&out)
}

fn refuse(sock: &mut UnixStream, code: RefuseCode, message: String) {
    let _ = send(sock, &DaemonMessage::Refused { code, message });
    let _ = sock.shutdown(std::net::Shutdown::Both);
}

/// Reads the next message before `deadline` (None: no deadline while
/// nothing has arrived); a started message always has
/// [`MESSAGE_DEADLINE`].
fn next(
    reader: &mut MessageReader<UnixStream>,
    deadline: Option<Instant>,
    stop: &AtomicBool,
) -> Result<ClientMessage, String> {
    let mut partial_since: Option<Instant> = None;
    loop {
        match reader.next_client() {
            Ok(m) => return Ok(m),
            Err(e) if e.is_timeout() => {
                if reader.has_partial() {
                    let t = *partial_since.get_or_insert_with(Instant::now);
                    if t.elapsed() >= MESSAGE_DEADLINE {
                        return Err(format!(
                            "message not complete within {} s",
                            MESSAGE_DEADLINE.as_secs()
                        ));
                    }
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(format!(
                        "no message within {} s",
                        MESSAGE_DEADLINE.as_secs()
                    ));
                }
                if stop.load(Ordering::Relaxed) && deadline.is_some() {
                    return Err("the daemon is stopping".into());
                }
            }
            Err(ConnError::Closed { .. }) => return Err(String::new()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Serves one connection to its end.
pub fn serve(mut sock: UnixStream, peer: Peer, cx: Context, stop: Arc<AtomicBool>) {
    let _ = sock.set_read_timeout(Some(TICK));
    let Ok(read_half) = sock.try_clone() else {
        return;
    };
    let mut reader = MessageReader::new(read_half);
    let start = Instant::now();
    match next(&mut reader, Some(start + MESSAGE_DEADLINE), &stop) {
        Ok(ClientMessage::Hello { version }) if version == proto::VERSION => {}
        Ok(ClientMessage::Hello { version }) => {
            return refuse(
                &mut sock,
                RefuseCode::Version,
                format!(
                    "protocol version {version} is not spoken here (this daemon speaks {})",
                    proto::VERSION
                ),
            )
        }
        Ok(_) => {
            return refuse(
                &mut sock,
                RefuseCode::BadMessage,
                "the first message must be hello".into(),
            )
        }
        Err(why) => return refuse(&mut sock, RefuseCode::BadMessage, why),
    }
    let welcome = DaemonMessage::Welcome {
        version: proto::VERSION,
        linktype: 1,
        max_snaplen: cx.max_snaplen,
        interface: cx.interface.clone(),
    };
    if send(&mut sock, &welcome).is_err() {
        return;
    }
    loop {
        match next(
            &mut reader,
            Some(Instant::now() + 2 * MESSAGE_DEADLINE),
            &stop,
        ) {
            Ok(ClientMessage::List) => {
                let (tx, rx) = mpsc::channel();
                if cx
                    .requests
                    .send(Request::List {
                        peer: peer.clone(),
                        reply: tx,
                    })
                    .is_err()
                {
                    return refuse(
                        &mut sock,
                        RefuseCode::Stopped,
                        "the daemon is stopping".into(),
                    );
                }
                match rx.recv() {
                    Ok(report) => {
                        if send(&mut sock, &DaemonMessage::Tenants(report)).is_err() {
                            return;
                        }
                    }
                    Err(_) => {
                        return refuse(
                            &mut sock,
                            RefuseCode::Stopped,
                            "the daemon is stopping".into(),
                        )
                    }
                }
            }
            Ok(ClientMessage::Attach(req)) => return attach(sock, reader, peer, req, &cx, &stop),
            Ok(m) => {
                return refuse(
                    &mut sock,
                    RefuseCode::BadMessage,
                    format!("{m:?} before attach (expected attach or list)"),
                )
            }
            Err(why) if why.is_empty() => return,
            Err(why) => return refuse(&mut sock, RefuseCode::BadMessage, why),
        }
    }
}

fn attach(
    mut sock: UnixStream,
    mut reader: MessageReader<UnixStream>,
    peer: Peer,
    req: proto::AttachRequest,
    cx: &Context,
    stop: &Arc<AtomicBool>,
) {
    let program = match Program::validate(&req.insns) {
        Ok(p) => p,
        Err(e) => {
            return refuse(
                &mut sock,
                RefuseCode::BadFilter,
                format!("filter `{}`: {e}", req.name),
            )
        }
    };
    let filter = NamedProgram {
        name: req.name.clone(),
        program,
        snaplen: req.snaplen,
    };
    if let Err(e) = FilterSet::check(&filter) {
        return refuse(&mut sock, RefuseCode::BadFilter, e.to_string());
    }
    let (tx, rx) = mpsc::channel();
    let asked = Request::Attach {
        peer,
        filter,
        queue_bytes: req.queue_bytes,
        reply: tx,
    };
    if cx.requests.send(asked).is_err() {
        return refuse(
            &mut sock,
            RefuseCode::Stopped,
            "the daemon is stopping".into(),
        );
    }
    let granted: Granted = match rx.recv() {
        Ok(Ok(g)) => g,
        Ok(Err((code, msg))) => return refuse(&mut sock, code, msg),
        Err(_) => {
            return refuse(
                &mut sock,
                RefuseCode::Stopped,
                "the daemon is stopping".into(),
            )
        }
    };
    let name = req.name;
    let attached = DaemonMessage::Attached {
        name: name.clone(),
        snaplen: granted.snaplen,
        queue_bytes: granted.queue_bytes,
    };
    let detach = || {
        let _ = cx.requests.send(Request::Detach { name: name.clone() });
    };
    let Ok(write_half) = sock.try_clone() else {
        return detach();
    };
    if send(&mut sock, &attached).is_err() {
        return detach();
    }
    let gone = Arc::new(AtomicBool::new(false));
    let writer = {
        let (ep, gone) = (granted.endpoint, gone.clone());
        std::thread::Builder::new()
            .name(format!("serve-{name}"))
            .spawn(move || stream_frames(&ep, write_half, &gone))
    };
    // Whatever ends the stream, the tenant goes: Detach, a bad message,
    // or the client gone. Attached, the connection waits for one message
    // only: look at the clock seldom (a hundred idle tenants stay cheap).
    let _ = sock.set_read_timeout(Some(MESSAGE_DEADLINE / 2));
    let _ = next(&mut reader, None, stop);
    gone.store(true, Ordering::Relaxed);
    detach();
    if let Ok(w) = writer {
        let _ = w.join();
    }
}

/// Writes the tenant's frames until its stream ends (detached, or the
/// daemon stopping), then its counters, then closes the write side. A
/// write error (the client gone) ends it at once.
fn stream_frames(ep: &Endpoint, sock: UnixStream, gone: &AtomicBool) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(256 * 1024, sock);
    let put = |w: &mut BufWriter<UnixStream>, d: &bpf_demux::capture::Delivery| {
        let data = d.bytes();
        let f = &d.frame;
        w.write_all(&proto::frame_header(
            f.ts_sec,
            f.ts_nsec,
            f.orig_len,
            data.len(),
        ))?;
        w.write_all(data)
    };
    let result = (|| {
        // Until the stream ends (detached, or the daemon stopping).
        while let Some(d) = ep.recv() {
            put(&mut w, &d)?;
            // Gather what comes in the next moment (or a quarter of the
            // queue) and write it at once, as libpcap hands tcpdump a
            // block a second: a hundred tenants wake a few times a second,
            // not once per ring block each.
            ep.wait_fill(ep.bound().bytes / 4, Instant::now() + COALESCE);
            while let Ok(d) = ep.try_recv() {
                put(&mut w, &d)?;
            }
            w.flush()?;
        }
        let s = ep.stats();
        let mut out = Vec::new();
        DaemonMessage::Stats {
            frames: s.frames,
            bytes: s.bytes,
            drops: s.drops,
        }
        .encode(&mut out);
        w.write_all(&out)?;
        w.flush()?;
        w.get_ref().shutdown(std::net::Shutdown::Write)
    })();
    if result.is_err() {
        gone.store(true, Ordering::Relaxed);
    }
    result
}
