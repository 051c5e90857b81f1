//! Writing captures: classic pcap (one link type, microsecond stamps) and
//! pcapng (a section header with an optional comment, one interface block
//! per source interface, nanosecond stamps), behind one [`FrameWriter`].
//! Hand-written: the blocks are a few fixed layouts, and pcap-parser (the
//! reader) has no writer.

use crate::link::LinkType;
use std::io::{self, Write};

/// Which file format to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap (tcpdump's default).
    #[default]
    Pcap,
    /// pcapng.
    Pcapng,
}

impl Format {
    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::Pcapng => "pcapng",
        }
    }
}

/// One interface of a pcapng file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceDesc {
    /// Its name (`if_name`), e.g. the interface or the input file.
    pub name: String,
    /// Its link type.
    pub link: LinkType,
    /// Its snaplen.
    pub snaplen: u32,
}

/// Writes a classic little-endian pcap, microsecond stamps, one link type.
pub struct PcapWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> PcapWriter<W> {
    /// A writer that writes the file header (Ethernet, `snaplen`) to `out`.
    pub fn new(out: W, snaplen: u32) -> io::Result<PcapWriter<W>> {
        PcapWriter::with_link(out, snaplen, LinkType::Ethernet)
    }

    /// A writer of frames of `link`.
    pub fn with_link(mut out: W, snaplen: u32, link: LinkType) -> io::Result<PcapWriter<W>> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&link.code().to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            written: h.len() as u64,
        })
    }
    /// Writes one record.
    pub fn write(
        &mut self,
        ts_sec: u64,
        ts_nsec: u32,
        orig_len: u32,
        data: &[u8],
    ) -> io::Result<()> {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(ts_sec as u32).to_le_bytes());
        h[4..8].copy_from_slice(&(ts_nsec / 1000).to_le_bytes());
        h[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)?;
        self.written += (h.len() + data.len()) as u64;
        Ok(())
    }
    /// Bytes written so far, header included (the file's size).
    pub fn written(&self) -> u64 {
        self.written
    }
    /// The inner writer.
    pub fn into_inner(self) -> W {
        self.out
    }
    /// Flushes the inner writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes pcapng: the section header (with `comment`, if any), then the
/// interfaces, then enhanced packet blocks with nanosecond stamps.
pub struct PcapngWriter<W: Write> {
    out: W,
    ifaces: u32,
    written: u64,
}

/// A pcapng option: code, value, padded to 4 bytes.
fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// A block: type, total length, body, total length again; its length.
fn block(out: &mut impl Write, kind: u32, body: &[u8]) -> io::Result<u64> {
    let len = (12 + body.len()) as u32;
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&len.to_le_bytes());
    out.write_all(&b)?;
    Ok(len as u64)
}

const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header and one interface block per `ifaces`.
    pub fn new(
        mut out: W,
        comment: Option<&str>,
        ifaces: &[IfaceDesc],
    ) -> io::Result<PcapngWriter<W>> {
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        if let Some(c) = comment {
            option(&mut shb, OPT_COMMENT, c.as_bytes());
            option(&mut shb, OPT_END, &[]);
        }
        let mut written = block(&mut out, 0x0a0d0d0a, &shb)?;
        for i in ifaces {
            let mut idb = Vec::new();
            idb.extend_from_slice(&(i.link.code() as u16).to_le_bytes());
            idb.extend_from_slice(&0u16.to_le_bytes());
            idb.extend_from_slice(&i.snaplen.to_le_bytes());
            option(&mut idb, IF_NAME, i.name.as_bytes());
            option(&mut idb, IF_TSRESOL, &[9]);
            option(&mut idb, OPT_END, &[]);
            written += block(&mut out, 1, &idb)?;
        }
        Ok(PcapngWriter {
            out,
            ifaces: ifaces.len() as u32,
            written,
        })
    }

    /// Writes one frame of interface `iface` (an index into the
    /// interfaces given to [`PcapngWriter::new`]).
    pub fn write(
        &mut self,
        iface: u32,
        ts_sec: u64,
        ts_nsec: u32,
        orig_len: u32,
        data: &[u8],
    ) -> io::Result<()> {
        if iface >= self.ifaces {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface {iface} of {} in this file", self.ifaces),
            ));
        }
        let ts = ts_sec
            .saturating_mul(1_000_000_000)
            .saturating_add(ts_nsec as u64);
        // The enhanced packet block written in place: its fixed head, the
        // bytes, padding, the length again (no copy of the frame).
        let pad = data.len().next_multiple_of(4) - data.len();
        let len = (32 + data.len() + pad) as u32;
        let mut head = [0u8; 28];
        for (i, v) in [
            6,
            len,
            iface,
            (ts >> 32) as u32,
            ts as u32,
            data.len() as u32,
            orig_len,
        ]
        .into_iter()
        .enumerate()
        {
            head[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        self.out.write_all(&head)?;
        self.out.write_all(data)?;
        self.out.write_all(&[0u8; 3][..pad])?;
        self.out.write_all(&len.to_le_bytes())?;
        self.written += len as u64;
        Ok(())
    }

    /// Bytes written so far (the file's size).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes the inner writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A pcap or pcapng writer.
pub enum FrameWriter<W: Write> {
    /// Classic pcap (the interface index is not written).
    Pcap(PcapWriter<W>),
    /// pcapng.
    Pcapng(PcapngWriter<W>),
}

impl<W: Write> FrameWriter<W> {
    /// A writer of `format` to `out`, for frames of `ifaces` (pcap: the
    /// first interface's link type, the largest snaplen; pcapng:
    /// `comment` in the section header).
    pub fn new(
        format: Format,
        out: W,
        comment: Option<&str>,
        ifaces: &[IfaceDesc],
    ) -> io::Result<FrameWriter<W>> {
        Ok(match format {
            Format::Pcap => {
                let link = ifaces.first().map_or(LinkType::Ethernet, |i| i.link);
                let snaplen = ifaces.iter().map(|i| i.snaplen).max().unwrap_or(262_144);
                FrameWriter::Pcap(PcapWriter::with_link(out, snaplen, link)?)
            }
            Format::Pcapng => FrameWriter::Pcapng(PcapngWriter::new(out, comment, ifaces)?),
        })
    }

    /// Writes one frame of interface `iface`.
    pub fn write(
        &mut self,
        iface: u32,
        ts_sec: u64,
        ts_nsec: u32,
        orig_len: u32,
        data: &[u8],
    ) -> io::Result<()> {
        match self {
            FrameWriter::Pcap(w) => w.write(ts_sec, ts_nsec, orig_len, data),
            FrameWriter::Pcapng(w) => w.write(iface, ts_sec, ts_nsec, orig_len, data),
        }
    }

    /// Bytes written so far (the file's size).
    pub fn written(&self) -> u64 {
        match self {
            FrameWriter::Pcap(w) => w.written(),
            FrameWriter::Pcapng(w) => w.written(),
        }
    }

    /// Flushes the inner writer.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            FrameWriter::Pcap(w) => w.flush(),
            FrameWriter::Pcapng(w) => w.flush(),
        }
    }
}
