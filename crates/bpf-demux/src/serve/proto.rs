//! The control protocol of `bpf-demux serve`, version 1, on a Unix stream
//! socket.
//!
//! Every message is one frame: a 4-byte big-endian length `L` (at least
//! 1), then `L` bytes: a kind byte and the body. Integers are big-endian.
//! A client sends [`ClientMessage`]s (frames of at most
//! [`MAX_CLIENT_FRAME`] bytes), the daemon [`DaemonMessage`]s (at most
//! [`MAX_DAEMON_FRAME`]). The client speaks first with `Hello`; the daemon
//! answers `Welcome` (or `Refused` and closes). Then the client sends one
//! `Attach` (answered `Attached`, then `Frame`s until the stream ends,
//! then `Stats` and the daemon closes) or `List` (answered `Tenants`).
//! `Detach` ends an attached stream: the daemon removes the tenant, sends
//! every frame already queued for it, then `Stats`. Anything malformed is
//! answered `Refused` (code `BadMessage`) and the connection is closed.
//!
//! Decoding is a pure function of the bytes received so far
//! ([`decode_client`], [`decode_daemon`]): `Ok(None)` asks for more, an
//! error is final. It never allocates more than the frame's length, which
//! is checked against the limit before anything is read.

use crate::cbpf::Insn;

/// The protocol version this build speaks.
pub const VERSION: u16 = 1;
/// The first bytes of `Hello` and `Welcome`.
pub const MAGIC: [u8; 4] = *b"BPFD";
/// Largest frame a client may send (an `Attach` of 4096 instructions and
/// a name fits).
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// Largest frame the daemon sends (a frame of 262144 bytes fits; a tenant
/// listing is cut to fit).
pub const MAX_DAEMON_FRAME: usize = 4 * 1024 * 1024;
/// Most instructions an `Attach` carries (the kernel's `BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;
/// Longest tenant name.
pub const MAX_NAME: usize = 64;
/// Bytes of the length prefix.
pub const HEADER: usize = 4;

mod kind {
    pub const HELLO: u8 = 0x01;
    pub const ATTACH: u8 = 0x02;
    pub const DETACH: u8 = 0x03;
    pub const LIST: u8 = 0x04;
    pub const WELCOME: u8 = 0x81;
    pub const ATTACHED: u8 = 0x82;
    pub const REFUSED: u8 = 0x83;
    pub const FRAME: u8 = 0x84;
    pub const STATS: u8 = 0x85;
    pub const TENANTS: u8 = 0x86;
}

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    /// `MAGIC`, u16 version.
    Hello {
        /// Protocol version.
        version: u16,
    },
    /// u8 name length, name, u32 snaplen (0: the policy's largest), u64
    /// queue bytes (0: the policy's largest), u16 count, then per
    /// instruction u16 code, u8 jt, u8 jf, u32 k.
    Attach(AttachRequest),
    /// Empty body.
    Detach,
    /// Empty body.
    List,
}

/// A tenant to attach: its name, its cap on delivered bytes, its queue,
/// its program (validated by the daemon as Linux validates it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachRequest {
    /// Tenant name.
    pub name: String,
    /// Cap on delivered bytes (`None`: the policy's largest).
    pub snaplen: Option<u32>,
    /// Queue bytes (`None`: the policy's largest).
    pub queue_bytes: Option<u64>,
    /// The program.
    pub insns: Vec<Insn>,
}

/// What the daemon says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DaemonMessage {
    /// `MAGIC`, u16 version, u32 link type of the captured interface, u32
    /// largest snaplen, u8 length and the interface name.
    Welcome {
        /// Protocol version.
        version: u16,
        /// Link type of the captured interface.
        linktype: u32,
        /// Largest snaplen the client may ask.
        max_snaplen: u32,
        /// The captured interface.
        interface: String,
    },
    /// u8 name length, name, u32 snaplen, u64 queue bytes: the tenant is
    /// live with these.
    Attached {
        /// Tenant name.
        name: String,
        /// Snaplen granted.
        snaplen: u32,
        /// Queue bytes granted.
        queue_bytes: u64,
    },
    /// u8 code, then the message (UTF-8, the rest of the body).
    Refused {
        /// Why, as a code.
        code: RefuseCode,
        /// Why, in words.
        message: String,
    },
    /// u64 seconds, u32 nanoseconds, u32 original length, then the bytes.
    Frame {
        /// Capture time: seconds since the epoch.
        ts_sec: u64,
        /// Capture time: nanoseconds.
        ts_nsec: u32,
        /// Length on the wire.
        orig_len: u32,
        /// The bytes (cut to the snaplen).
        data: Vec<u8>,
    },
    /// u64 frames, u64 bytes, u64 dropped by the tenant's queue: the last
    /// message of a stream.
    Stats {
        /// Frames delivered.
        frames: u64,
        /// Bytes delivered.
        bytes: u64,
        /// Frames the tenant's queue dropped.
        drops: u64,
    },
    /// The tenant listing, JSON ([`super::proto::TenantsReport`]).
    Tenants(TenantsReport),
}

/// Why the daemon refused (the code byte of `Refused`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseCode {
    /// The client's version is not spoken here.
    Version = 1,
    /// The policy does not let this uid attach.
    NotAllowed = 2,
    /// Over the policy's limits (tenants, snaplen, queue bytes).
    OverQuota = 3,
    /// Another tenant has this name.
    NameTaken = 4,
    /// The program breaks a rule of the kernel's validator.
    BadFilter = 5,
    /// A message that does not decode, comes out of order, or too slowly.
    BadMessage = 6,
    /// The daemon is stopping.
    Stopped = 7,
}

impl RefuseCode {
    fn from_u8(b: u8) -> Option<RefuseCode> {
        use RefuseCode::*;
        Some(match b {
            1 => Version,
            2 => NotAllowed,
            3 => OverQuota,
            4 => NameTaken,
            5 => BadFilter,
            6 => BadMessage,
            7 => Stopped,
            _ => return None,
        })
    }
}

/// One tenant in a listing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TenantRow {
    /// Tenant name.
    pub name: String,
    /// `attach` (a client's) or `static` (serve's `--filters`).
    pub kind: String,
    /// Owner's uid.
    pub owner_uid: u32,
    /// Owner's user name.
    pub owner: String,
    /// Instructions of its program.
    pub insns: usize,
    /// Cap on delivered bytes.
    pub snaplen: Option<u32>,
    /// Frames delivered.
    pub frames: u64,
    /// Bytes delivered.
    pub bytes: u64,
    /// Frames dropped by its queue.
    pub drops: u64,
    /// Queued now, and the queue's byte bound.
    pub queue_frames: usize,
    /// (see `queue_frames`)
    pub queue_bytes: u64,
    /// (see `queue_frames`)
    pub queue_limit_bytes: u64,
    /// Seconds since the Unix epoch.
    pub attached_at: u64,
    /// PCAP-over-IP address, and its connected clients.
    pub listen: Option<String>,
    /// (see `listen`)
    pub stream_clients: usize,
}

/// The daemon's answer to `List`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TenantsReport {
    /// The captured interface.
    pub interface: String,
    /// Frames read from the ring(s), and matched by some tenant.
    pub ring_frames: u64,
    /// (see `ring_frames`)
    pub matched: u64,
    /// PACKET_STATISTICS summed: frames the kernel queued, and dropped.
    pub kernel_packets: u64,
    /// (see `kernel_packets`)
    pub kernel_drops: u64,
    /// Instructions of the kernel prefilter (none: every frame copied).
    pub prefilter: Option<usize>,
    /// Tenants whose filter runs in the fallback interpreter.
    pub fallbacks: usize,
    /// The tenants this client may see.
    pub tenants: Vec<TenantRow>,
    /// Tenants of other uids, not shown to this client.
    pub hidden: usize,
}

/// Why bytes do not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("frame of {len} bytes is over the limit of {max}")]
    /// A frame over the size limit.
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    #[error("frame of length 0 (no kind byte)")]
    /// A frame with no kind byte.
    Empty,
    #[error("unknown message kind 0x{0:02x}")]
    /// A kind byte no message has.
    UnknownKind(u8),
    #[error("{what}: body of {len} bytes is cut short")]
    /// A body shorter than its message needs.
    Truncated {
        /// The message kind.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    #[error("{what}: {extra} bytes after the body")]
    /// Bytes after a complete body.
    Trailing {
        /// The message kind.
        what: &'static str,
        /// How many.
        extra: usize,
    },
    #[error("{what}: does not start with \"BPFD\"")]
    /// A hello or welcome without the magic.
    BadMagic {
        /// The message kind.
        what: &'static str,
    },
    #[error("{what}: text is not UTF-8")]
    /// Text that is not UTF-8.
    NotUtf8 {
        /// The message kind.
        what: &'static str,
    },
    #[error("attach: bad tenant name `{0}` (1 to 64 of letters, digits, `_`, `.`, `-`)")]
    /// A tenant name that breaks the naming rule.
    BadName(String),
    #[error("attach: {0} instructions (1 to 4096)")]
    /// An instruction count out of 1 to 4096.
    InsnCount(usize),
    #[error("refused: unknown code {0}")]
    /// A refusal code no refusal has.
    UnknownCode(u8),
    #[error("tenants: {0}")]
    /// A tenant report that is not the JSON it should be.
    Json(String),
}

/// Reads a body field by field.
struct Body<'a> {
    b: &'a [u8],
    what: &'static str,
    len: usize,
}

impl<'a> Body<'a> {
    fn new(b: &'a [u8], what: &'static str) -> Body<'a> {
        Body {
            b,
            what,
            len: b.len(),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if self.b.len() < n {
            return Err(ProtoError::Truncated {
                what: self.what,
                len: self.len,
            });
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ProtoError> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, ProtoError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, ProtoError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn magic(&mut self) -> Result<(), ProtoError> {
        match self.take(4)? == MAGIC {
            true => Ok(()),
            false => Err(ProtoError::BadMagic { what: self.what }),
        }
    }
    fn text(&mut self, n: usize) -> Result<String, ProtoError> {
        let what = self.what;
        std::str::from_utf8(self.take(n)?)
            .map(str::to_owned)
            .map_err(|_| ProtoError::NotUtf8 { what })
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.b)
    }
    fn end(self) -> Result<(), ProtoError> {
        match self.b.len() {
            0 => Ok(()),
            extra => Err(ProtoError::Trailing {
                what: self.what,
                extra,
            }),
        }
    }
}

/// A whole frame: its kind, its body, and the bytes it took.
type Frame<'a> = (u8, &'a [u8], usize);

/// Splits one frame off `buf`: `Ok(None)` until it is whole, then its
/// kind, body and total length. The length is checked against `max`
/// before the body is waited for.
fn frame(buf: &[u8], max: usize) -> Result<Option<Frame<'_>>, ProtoError> {
    let Some(head) = buf.get(..HEADER) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(head.try_into().expect("4 bytes")) as usize;
    if len == 0 {
        return Err(ProtoError::Empty);
    }
    if len > max {
        return Err(ProtoError::TooLong { len, max });
    }
    match buf.get(HEADER..HEADER + len) {
        None => Ok(None),
        Some(f) => Ok(Some((f[0], &f[1..], HEADER + len))),
    }
}

/// Decodes the first client message of `buf`: `Ok(None)` when more bytes
/// are needed, else the message and the bytes it took.
pub fn decode_client(buf: &[u8]) -> Result<Option<(ClientMessage, usize)>, ProtoError> {
    let Some((k, body, used)) = frame(buf, MAX_CLIENT_FRAME)? else {
        return Ok(None);
    };
    let msg = match k {
        kind::HELLO => {
            let mut b = Body::new(body, "hello");
            b.magic()?;
            let version = b.u16()?;
            b.end()?;
            ClientMessage::Hello { version }
        }
        kind::ATTACH => {
            let mut b = Body::new(body, "attach");
            let n = b.u8()? as usize;
            let name = b.text(n)?;
            if name.len() > MAX_NAME || !crate::set::valid_name(&name) {
                return Err(ProtoError::BadName(name));
            }
            let snaplen = Some(b.u32()?).filter(|s| *s != 0);
            let queue_bytes = Some(b.u64()?).filter(|q| *q != 0);
            let count = b.u16()? as usize;
            if count == 0 || count > MAX_INSNS {
                return Err(ProtoError::InsnCount(count));
            }
            let mut insns = Vec::with_capacity(count.min(body.len() / 8));
            for _ in 0..count {
                insns.push(Insn::new(b.u16()?, b.u8()?, b.u8()?, b.u32()?));
            }
            b.end()?;
            ClientMessage::Attach(AttachRequest {
                name,
                snaplen,
                queue_bytes,
                insns,
            })
        }
        kind::DETACH => {
            Body::new(body, "detach").end()?;
            ClientMessage::Detach
        }
        kind::LIST => {
            Body::new(body, "list").end()?;
            ClientMessage::List
        }
        other => return Err(ProtoError::UnknownKind(other)),
    };
    Ok(Some((msg, used)))
}

/// Decodes the first daemon message of `buf` (as [`decode_client`]).
pub fn decode_daemon(buf: &[u8]) -> Result<Option<(DaemonMessage, usize)>, ProtoError> {
    let Some((k, body, used)) = frame(buf, MAX_DAEMON_FRAME)? else {
        return Ok(None);
    };
    let msg = match k {
        kind::WELCOME => {
            let mut b = Body::new(body, "welcome");
            b.magic()?;
            let version = b.u16()?;
            let linktype = b.u32()?;
            let max_snaplen = b.u32()?;
            let n = b.u8()? as usize;
            let interface = b.text(n)?;
            b.end()?;
            DaemonMessage::Welcome {
                version,
                linktype,
                max_snaplen,
                interface,
            }
        }
        kind::ATTACHED => {
            let mut b = Body::new(body, "attached");
            let n = b.u8()? as usize;
            let name = b.text(n)?;
            let snaplen = b.u32()?;
            let queue_bytes = b.u64()?;
            b.end()?;
            DaemonMessage::Attached {
                name,
                snaplen,
                queue_bytes,
            }
        }
        kind::REFUSED => {
            let mut b = Body::new(body, "refused");
            let c = b.u8()?;
            let code = RefuseCode::from_u8(c).ok_or(ProtoError::UnknownCode(c))?;
            let n = b.b.len();
            let message = b.text(n)?;
            DaemonMessage::Refused { code, message }
        }
        kind::FRAME => {
            let mut b = Body::new(body, "frame");
            let ts_sec = b.u64()?;
            let ts_nsec = b.u32()?;
            let orig_len = b.u32()?;
            let data = b.rest().to_vec();
            DaemonMessage::Frame {
                ts_sec,
                ts_nsec,
                orig_len,
                data,
            }
        }
        kind::STATS => {
            let mut b = Body::new(body, "stats");
            let (frames, bytes, drops) = (b.u64()?, b.u64()?, b.u64()?);
            b.end()?;
            DaemonMessage::Stats {
                frames,
                bytes,
                drops,
            }
        }
        kind::TENANTS => DaemonMessage::Tenants(
            serde_json::from_slice(body).map_err(|e| ProtoError::Json(e.to_string()))?,
        ),
        other => return Err(ProtoError::UnknownKind(other)),
    };
    Ok(Some((msg, used)))
}

/// Appends one frame of kind `k` whose body `body` writes.
fn put(out: &mut Vec<u8>, k: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    out.push(k);
    body(out);
    let len = (out.len() - start - HEADER) as u32;
    out[start..start + HEADER].copy_from_slice(&len.to_be_bytes());
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut n = s.len().min(max);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

/// Appends a short text with its u8 length (cut at 255 bytes).
fn put_short(out: &mut Vec<u8>, s: &str) {
    let s = cut(s, 255);
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

impl ClientMessage {
    /// Appends the message's frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ClientMessage::Hello { version } => put(out, kind::HELLO, |o| {
                o.extend_from_slice(&MAGIC);
                o.extend_from_slice(&version.to_be_bytes());
            }),
            ClientMessage::Attach(a) => put(out, kind::ATTACH, |o| {
                put_short(o, &a.name);
                o.extend_from_slice(&a.snaplen.unwrap_or(0).to_be_bytes());
                o.extend_from_slice(&a.queue_bytes.unwrap_or(0).to_be_bytes());
                o.extend_from_slice(&(a.insns.len() as u16).to_be_bytes());
                for i in &a.insns {
                    o.extend_from_slice(&i.code.to_be_bytes());
                    o.extend_from_slice(&[i.jt, i.jf]);
                    o.extend_from_slice(&i.k.to_be_bytes());
                }
            }),
            ClientMessage::Detach => put(out, kind::DETACH, |_| {}),
            ClientMessage::List => put(out, kind::LIST, |_| {}),
        }
    }
}

/// The first bytes of a `Frame` message carrying `data_len` bytes: write
/// them, then the data (no copy of the frame into a buffer).
pub fn frame_header(ts_sec: u64, ts_nsec: u32, orig_len: u32, data_len: usize) -> [u8; 21] {
    let mut h = [0u8; 21];
    h[..4].copy_from_slice(&((1 + 16 + data_len) as u32).to_be_bytes());
    h[4] = kind::FRAME;
    h[5..13].copy_from_slice(&ts_sec.to_be_bytes());
    h[13..17].copy_from_slice(&ts_nsec.to_be_bytes());
    h[17..21].copy_from_slice(&orig_len.to_be_bytes());
    h
}

impl DaemonMessage {
    /// Appends the message's frame to `out`. A tenant listing over
    /// [`MAX_DAEMON_FRAME`] loses rows from its end (counted as hidden).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            DaemonMessage::Welcome {
                version,
                linktype,
                max_snaplen,
                interface,
            } => put(out, kind::WELCOME, |o| {
                o.extend_from_slice(&MAGIC);
                o.extend_from_slice(&version.to_be_bytes());
                o.extend_from_slice(&linktype.to_be_bytes());
                o.extend_from_slice(&max_snaplen.to_be_bytes());
                put_short(o, interface);
            }),
            DaemonMessage::Attached {
                name,
                snaplen,
                queue_bytes,
            } => put(out, kind::ATTACHED, |o| {
                put_short(o, name);
                o.extend_from_slice(&snaplen.to_be_bytes());
                o.extend_from_slice(&queue_bytes.to_be_bytes());
            }),
            DaemonMessage::Refused { code, message } => put(out, kind::REFUSED, |o| {
                o.push(*code as u8);
                o.extend_from_slice(cut(message, 4096).as_bytes());
            }),
            DaemonMessage::Frame {
                ts_sec,
                ts_nsec,
                orig_len,
                data,
            } => {
                out.extend_from_slice(&frame_header(*ts_sec, *ts_nsec, *orig_len, data.len()));
                out.extend_from_slice(data);
            }
            DaemonMessage::Stats {
                frames,
                bytes,
                drops,
            } => put(out, kind::STATS, |o| {
                for v in [frames, bytes, drops] {
                    o.extend_from_slice(&v.to_be_bytes());
                }
            }),
            DaemonMessage::Tenants(r) => {
                let mut r = r.clone();
                loop {
                    let json = serde_json::to_vec(&r).expect("a report always serializes");
                    if json.len() < MAX_DAEMON_FRAME - 1 || r.tenants.is_empty() {
                        put(out, kind::TENANTS, |o| o.extend_from_slice(&json));
                        break;
                    }
                    let cut = r.tenants.len().div_ceil(2);
                    r.hidden += cut;
                    r.tenants.truncate(r.tenants.len() - cut);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "proto_tests.rs"]
mod tests;
