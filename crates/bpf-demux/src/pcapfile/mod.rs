//! Reading frames from capture files: classic pcap (both byte orders,
//! micro- and nanosecond stamps) and pcapng, parsed by the `pcap-parser`
//! crate; and writing classic pcap.
//!
//! Records whose original length exceeds the file's snaplen (truncated
//! captures) are accepted as they are. Every record carries its link type
//! (a pcapng file may mix interfaces of several): the types of
//! [`LinkType`] are read, another is an error naming it. A file that
//! ends inside a record is an error naming the frame, after every whole
//! frame before it has been handed out.

mod write;

pub use write::{Format, FrameWriter, IfaceDesc, PcapWriter, PcapngWriter};

use crate::link::LinkType;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The link type of pcap code `code`, or the error naming it.
fn link_of(file: &Path, code: i32) -> Result<LinkType, PcapReadError> {
    u32::try_from(code)
        .ok()
        .and_then(LinkType::from_code)
        .ok_or_else(|| PcapReadError::LinkType {
            file: file.to_owned(),
            linktype: code,
        })
}
/// Largest record the reader will buffer (bytes).
pub const MAX_RECORD: usize = 256 * 1024 * 1024;

/// One frame as recorded.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// 1-based frame number in the file.
    pub number: u64,
    /// Capture time: seconds since the epoch.
    pub ts_sec: u64,
    /// Capture time: nanoseconds within the second.
    pub ts_nsec: u32,
    /// Length on the wire.
    pub orig_len: u32,
    /// The captured bytes (possibly fewer than `orig_len`).
    pub data: &'a [u8],
    /// What the bytes start with: the file's (pcap) or the interface's
    /// (pcapng) link type.
    pub link: LinkType,
}

#[derive(Debug, thiserror::Error)]
/// Why a capture file does not read.
pub enum PcapReadError {
    #[error("{file}: cannot open: {err}")]
    /// The file does not open.
    Open {
        /// The file.
        file: PathBuf,
        /// The system error.
        err: io::Error,
    },
    #[error("{file}: not a pcap or pcapng file ({detail})")]
    /// Neither pcap nor pcapng.
    NotPcap {
        /// The file.
        file: PathBuf,
        /// The parser's reason.
        detail: String,
    },
    #[error(
        "{file}: link type {linktype} is not supported (EN10MB 1, LINUX_SLL 113, LINUX_SLL2 276, RAW 101, IPV4 228, IPV6 229, NULL 0, LOOP 108 are)"
    )]
    /// A link type other than Ethernet.
    LinkType {
        /// The file.
        file: PathBuf,
        /// The link type.
        linktype: i32,
    },
    #[error("{file}: frame {frame}: file ends inside the record (truncated file)")]
    /// The file ends inside a record.
    Truncated {
        /// The file.
        file: PathBuf,
        /// 1-based frame number.
        frame: u64,
    },
    #[error("{file}: frame {frame}: malformed record: {detail}")]
    /// A record the parser refuses.
    Malformed {
        /// The file.
        file: PathBuf,
        /// 1-based frame number.
        frame: u64,
        /// The parser's reason.
        detail: String,
    },
    #[error(
        "{file}: frame {frame}: packet from interface {if_id}, which the file never described"
    )]
    /// A pcapng packet of an interface the file never described.
    NoInterface {
        /// The file.
        file: PathBuf,
        /// 1-based frame number.
        frame: u64,
        /// The interface id.
        if_id: u32,
    },
}

struct Iface {
    link: LinkType,
    /// Units per second of timestamps.
    resolution: u64,
    offset: i64,
}

/// Frames of one file, in order.
pub struct PcapReader {
    file: PathBuf,
    inner: Box<dyn PcapReaderIterator>,
    /// Legacy pcap: its link type and stamp unit, from the header.
    legacy_link: LinkType,
    legacy_nanos: bool,
    ifaces: Vec<Iface>,
    number: u64,
    buf: Vec<u8>,
    capacity: usize,
}

impl PcapReader {
    /// Opens a pcap or pcapng file (the format is detected); `-` reads
    /// standard input, as tcpdump's `-r -` does.
    pub fn open(path: &Path) -> Result<PcapReader, PcapReadError> {
        if path == Path::new("-") {
            return PcapReader::from_reader(path, io::stdin());
        }
        let f = File::open(path).map_err(|err| PcapReadError::Open {
            file: path.to_owned(),
            err,
        })?;
        PcapReader::from_reader(path, f)
    }

    /// Reads a pcap or pcapng stream from `input`; `name` names it in
    /// errors.
    pub fn from_reader(
        name: &Path,
        input: impl io::Read + Send + 'static,
    ) -> Result<PcapReader, PcapReadError> {
        let path = name;
        let capacity = 1 << 20;
        let inner =
            pcap_parser::create_reader(capacity, input).map_err(|e| PcapReadError::NotPcap {
                file: path.to_owned(),
                detail: match e {
                    PcapError::Eof | PcapError::Incomplete(_) => {
                        "file too short for a header".into()
                    }
                    other => other.to_string(),
                },
            })?;
        Ok(PcapReader {
            file: path.to_owned(),
            inner,
            legacy_link: LinkType::Ethernet,
            legacy_nanos: false,
            ifaces: Vec::new(),
            number: 0,
            buf: Vec::new(),
            capacity,
        })
    }

    /// The next frame, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, PcapReadError> {
        loop {
            let frame = self.number + 1;
            let file = &self.file;
            let step = match self.inner.next() {
                Ok((used, block)) => {
                    let out = match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            self.legacy_link = link_of(file, h.network.0)?;
                            self.legacy_nanos = h.is_nanosecond_precision();
                            None
                        }
                        PcapBlockOwned::Legacy(b) => {
                            if b.caplen as usize != b.data.len() {
                                return Err(PcapReadError::Malformed {
                                    file: file.clone(),
                                    frame,
                                    detail: "caplen does not match the data".into(),
                                });
                            }
                            let nsec = if self.legacy_nanos {
                                b.ts_usec
                            } else {
                                b.ts_usec.saturating_mul(1000)
                            };
                            self.buf.clear();
                            self.buf.extend_from_slice(b.data);
                            Some((b.ts_sec as u64, nsec, b.origlen, self.legacy_link))
                        }
                        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                            self.ifaces.clear();
                            None
                        }
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            self.ifaces.push(Iface {
                                link: link_of(file, idb.linktype.0)?,
                                resolution: idb.ts_resolution().unwrap_or(1_000_000),
                                offset: idb.ts_offset(),
                            });
                            None
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                            let Some(ifc) = self.ifaces.get(epb.if_id as usize) else {
                                return Err(PcapReadError::NoInterface {
                                    file: file.clone(),
                                    frame,
                                    if_id: epb.if_id,
                                });
                            };
                            let ts = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                            let res = ifc.resolution.max(1);
                            let secs = (ts / res) as i64 + ifc.offset;
                            let nsec = ((ts % res) as u128 * 1_000_000_000 / res as u128) as u32;
                            let data = &epb.data[..(epb.caplen as usize).min(epb.data.len())];
                            self.buf.clear();
                            self.buf.extend_from_slice(data);
                            Some((secs.max(0) as u64, nsec, epb.origlen, ifc.link))
                        }
                        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                            if self.ifaces.is_empty() {
                                return Err(PcapReadError::NoInterface {
                                    file: file.clone(),
                                    frame,
                                    if_id: 0,
                                });
                            }
                            self.buf.clear();
                            self.buf.extend_from_slice(
                                &spb.data[..spb.data.len().min(spb.origlen as usize)],
                            );
                            Some((0, 0, spb.origlen, self.ifaces[0].link))
                        }
                        PcapBlockOwned::NG(_) => None,
                    };
                    self.inner.consume(used);
                    out
                }
                Err(PcapError::Eof) => return Ok(None),
                Err(PcapError::Incomplete(_)) => {
                    if self.inner.reader_exhausted() {
                        if self.inner.data().is_empty() {
                            return Ok(None);
                        }
                        return Err(PcapReadError::Truncated {
                            file: file.clone(),
                            frame,
                        });
                    }
                    self.refill(frame)?;
                    None
                }
                Err(PcapError::UnexpectedEof) => {
                    return Err(PcapReadError::Truncated {
                        file: file.clone(),
                        frame,
                    });
                }
                Err(PcapError::BufferTooSmall) => {
                    self.grow(frame)?;
                    None
                }
                Err(e) => {
                    return Err(PcapReadError::Malformed {
                        file: file.clone(),
                        frame,
                        detail: e.to_string(),
                    })
                }
            };
            if let Some((ts_sec, ts_nsec, orig_len, link)) = step {
                self.number = frame;
                return Ok(Some(Record {
                    number: frame,
                    ts_sec,
                    ts_nsec,
                    orig_len,
                    data: &self.buf,
                    link,
                }));
            }
        }
    }

    fn refill(&mut self, frame: u64) -> Result<(), PcapReadError> {
        // A record longer than the buffer shows as Incomplete with a full buffer.
        if self.inner.position() == 0 && self.inner.data().len() >= self.capacity / 2 {
            return self.grow(frame);
        }
        self.inner.refill().map_err(|e| PcapReadError::Malformed {
            file: self.file.clone(),
            frame,
            detail: e.to_string(),
        })
    }

    fn grow(&mut self, frame: u64) -> Result<(), PcapReadError> {
        let new = self.capacity * 2;
        if new > MAX_RECORD || !self.inner.grow(new) {
            return Err(PcapReadError::Malformed {
                file: self.file.clone(),
                frame,
                detail: format!("record larger than {MAX_RECORD} bytes"),
            });
        }
        self.capacity = new;
        self.inner.refill().map_err(|e| PcapReadError::Malformed {
            file: self.file.clone(),
            frame,
            detail: e.to_string(),
        })
    }
}
