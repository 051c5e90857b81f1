//! PCAP-over-IP: one static tenant's frames as a classic pcap stream to
//! every TCP client of its `listen` address (`tshark -i TCP@host:port`,
//! Zeek, Arkime, NetworkMiner), each from the moment it connects.
//!
//! A fan-out thread drains the tenant's endpoint into one bounded queue
//! per connected client (same bound as the tenant's); each client has a
//! writer thread. A slow client loses its own frames (counted), never
//! anyone else's. When the tenant's stream ends (removed, or the daemon
//! stopping), every client gets what was queued for it, then the close.

use bpf_demux::capture::queue::{Queue, QueueBound};
use bpf_demux::capture::{Delivery, Endpoint, FRAME_OVERHEAD};
use bpf_demux::pcapfile::PcapWriter;
use std::io::BufWriter;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

type Subscribers = Arc<Mutex<Vec<Arc<Queue<Delivery>>>>>;

/// A running stream.
pub struct Stream {
    pub addr: SocketAddr,
    subscribers: Subscribers,
    /// Frames a client's queue could not take.
    drops: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Stream {
    /// Starts serving `listener` with `ep`'s frames; `snaplen` goes into
    /// each client's pcap header.
    pub fn start(
        listener: TcpListener,
        ep: Arc<Endpoint>,
        snaplen: u32,
    ) -> std::io::Result<Stream> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let subscribers: Subscribers = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let drops = Arc::new(AtomicU64::new(0));
        let bound = ep.bound();
        let fanout = {
            let (subs, stop, drops) = (subscribers.clone(), stop.clone(), drops.clone());
            std::thread::Builder::new()
                .name(format!("pcap-over-ip-{}", ep.name))
                .spawn(move || {
                    for d in ep.iter() {
                        let weight = d.frame.data.len() as u64 + FRAME_OVERHEAD;
                        for q in subs.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                            if q.push(d.clone(), d.caplen as u64, weight, false).is_err() {
                                drops.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    // The tenant's stream ended: so do the clients'.
                    stop.store(true, Ordering::Relaxed);
                    for q in subs.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                        q.close_senders();
                    }
                })?
        };
        let accept = {
            let (subs, stop) = (subscribers.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("pcap-over-ip-accept-{addr}"))
                .spawn(move || accept_loop(listener, subs, &stop, bound, snaplen))?
        };
        Ok(Stream {
            addr,
            subscribers,
            drops,
            threads: vec![fanout, accept],
        })
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Frames some client's queue was too full to take.
    pub fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }

    /// Waits for the stream's threads (call once its tenant is removed or
    /// the capture has ended, so the fan-out sees the end).
    pub fn finish(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    subs: Subscribers,
    stop: &AtomicBool,
    bound: QueueBound,
    snaplen: u32,
) {
    let mut writers: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                let q = Arc::new(Queue::new(bound));
                subs.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(q.clone());
                // The fan-out sets `stop` before it closes the queues it
                // holds: one pushed after that is closed here.
                if stop.load(Ordering::Relaxed) {
                    q.close_senders();
                }
                let subs = subs.clone();
                let w = std::thread::Builder::new()
                    .name("pcap-over-ip-client".into())
                    .spawn(move || {
                        let _ = write_client(conn, &q, snaplen);
                        // Gone or ended: nobody reads this queue any more.
                        q.close_receiver();
                        subs.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .retain(|s| !Arc::ptr_eq(s, &q));
                    });
                writers.extend(w.ok());
                writers.retain(|w| !w.is_finished());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    drop(listener);
    for w in writers {
        let _ = w.join();
    }
}

fn write_client(conn: TcpStream, q: &Queue<Delivery>, snaplen: u32) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut w = PcapWriter::new(BufWriter::with_capacity(256 * 1024, conn), snaplen)?;
    w.flush()?;
    loop {
        match q.pop_until(None) {
            Ok(d) => {
                let put = |w: &mut PcapWriter<_>, d: &Delivery| {
                    w.write(d.frame.ts_sec, d.frame.ts_nsec, d.frame.orig_len, d.bytes())
                };
                put(&mut w, &d)?;
                // As an attached tenant's writer: a burst at a time.
                let deadline = std::time::Instant::now() + super::client::COALESCE;
                q.wait_fill(q.bound().bytes / 4, deadline);
                while let Ok(d) = q.try_pop() {
                    put(&mut w, &d)?;
                }
                w.flush()?;
            }
            Err(_) => {
                w.flush()?;
                let conn = w.into_inner().into_inner().map_err(|e| e.into_error())?;
                return conn.shutdown(std::net::Shutdown::Write);
            }
        }
    }
}
