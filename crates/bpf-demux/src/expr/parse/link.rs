//! The link-level protocols' grammar: `llc` and its subtypes, `iso proto`
//! and `isis proto`, DECnet addresses, and libpcap's refusals of host
//! qualifiers these protocols have no addresses for.

use super::{names, prim, Parser, R};
use crate::expr::ast::{Dir, LlcKind, Node, Prim, Proto};
use crate::expr::{ExprError, ExprErrorKind};
use std::net::IpAddr;

impl Parser<'_> {
    /// After `llc`: an optional subtype name (`llc i`, `llc xid`, ...). A
    /// word that is not a keyword is a subtype libpcap does not know.
    pub(super) fn llc(&mut self) -> R<Node> {
        let col = self.col();
        let Some(w) = self.word().map(str::to_owned) else {
            return Ok(prim(Prim::Llc(LlcKind::Any)));
        };
        if let Some(k) = LlcKind::from_word(&w) {
            self.pos += 1;
            return Ok(prim(Prim::Llc(k)));
        }
        if names::is_name(&w) {
            return Err(ExprError::new(col, ExprErrorKind::UnknownLlcType(w)));
        }
        Ok(prim(Prim::Llc(LlcKind::Any)))
    }

    /// After `iso proto` or `isis proto`: a number, or (for `iso`) the
    /// escaped name of an OSI protocol (`\isis`, `\esis`, `\clnp`).
    pub(super) fn osi_proto(&mut self, p: Proto) -> R<Node> {
        let n = self.proto_number_by(|_, w| match (p, w) {
            // libpcap's lookup_proto knows these three spellings only.
            (Proto::Iso, "clnp") => Ok(0x81),
            (Proto::Iso, "esis") => Ok(0x82),
            (Proto::Iso, "isis") => Ok(0x83),
            (Proto::Iso, _) => Err(ExprErrorKind::UnknownOsiProto(w.into())),
            _ => Err(ExprErrorKind::UnknownProtocol(w.into())),
        })?;
        Ok(prim(if p == Proto::Iso {
            Prim::IsoProto(n)
        } else {
            Prim::IsisProto(n)
        }))
    }

    /// A DECnet address, `AREA.NODE` or a number, as libpcap's
    /// `__pcap_atodn` reads it (area in the top 6 bits, node in the low 10;
    /// what does not fit is cut, as there).
    pub(super) fn decnet_host(&mut self, w: &str, col: usize, dir: Dir) -> R<Node> {
        let addr = match names::number(w) {
            Some(n) => n as u16,
            None => {
                let mut parts = w.split('.');
                let num = |s: Option<&str>| -> Option<u32> {
                    let s = s?;
                    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| s.parse::<u64>().ok().map(|v| v as u32))
                        .flatten()
                };
                match (num(parts.next()), num(parts.next())) {
                    (Some(area), Some(node)) => (((area << 10) & 0xfc00) | (node & 0x03ff)) as u16,
                    _ if w.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) => {
                        return Err(ExprError::new(col, ExprErrorKind::DecnetName(w.into())))
                    }
                    _ => return Err(ExprError::new(col, ExprErrorKind::BadDecnet(w.into()))),
                }
            }
        };
        Ok(prim(Prim::DecnetHost { dir, addr }))
    }
}

impl Parser<'_> {
    /// `[ip|ip6|arp|rarp] [src|dst] host NAME`: every address of the
    /// name, as libpcap's gen_scode (IPv4 addresses skipped under `ip6`,
    /// IPv6 ones under `ip`).
    pub(super) fn host_name(
        &mut self,
        w: &str,
        col: usize,
        proto: Option<Proto>,
        dir: Dir,
    ) -> R<Node> {
        let addrs = self.names.host(w);
        if addrs.is_empty() {
            return Err(ExprError::new(col, ExprErrorKind::UnknownHost(w.into())));
        }
        let mut alts = Vec::new();
        for a in addrs {
            match a {
                IpAddr::V4(v4) if proto != Some(Proto::Ip6) => alts.push(Prim::Net4 {
                    proto,
                    dir,
                    addr: u32::from(v4),
                    mask: u32::MAX,
                }),
                IpAddr::V6(v6) if matches!(proto, None | Some(Proto::Ip6)) => {
                    alts.push(Prim::Net6 {
                        dir,
                        addr: v6.octets(),
                        prefix: 128,
                    })
                }
                IpAddr::V6(_) if proto != Some(Proto::Ip) => {
                    return Err(ExprError::new(
                        col,
                        ExprErrorKind::Modifier {
                            qualifier: proto.map_or("ip", Proto::name),
                            target: "ip6 host",
                        },
                    ))
                }
                _ => {}
            }
        }
        let mut alts = alts.into_iter().map(|p| Node::Prim(p, col));
        let first = alts
            .next()
            .ok_or_else(|| ExprError::new(col, ExprErrorKind::UnknownHostOfFamily(w.into())))?;
        Ok(alts.fold(first, |a, b| Node::Or(Box::new(a), Box::new(b))))
    }

    /// `[ip|arp|rarp] gateway NAME`: frames through host NAME as a
    /// gateway, libpcap's gen_gateway (`ether host E and not host A` for
    /// E its Ethernet address, A each of its IPv4 addresses).
    pub(super) fn gateway(&mut self, proto: Option<Proto>, col: usize) -> R<Node> {
        if let Some(p) = proto.filter(|p| !matches!(p, Proto::Ip | Proto::Arp | Proto::Rarp)) {
            return Err(ExprError::new(
                col,
                ExprErrorKind::Modifier {
                    qualifier: p.name(),
                    target: "gateway",
                },
            ));
        }
        let wcol = self.col();
        let w = match self.word() {
            Some(w) if names::is_name(w) => w.to_owned(),
            _ => return Err(ExprError::new(wcol, ExprErrorKind::GatewayName)),
        };
        self.pos += 1;
        let mac = self
            .names
            .ether(&w)
            .ok_or_else(|| ExprError::new(wcol, ExprErrorKind::UnknownEtherHost(w.clone())))?;
        let hosts: Vec<Node> = self
            .names
            .host(&w)
            .into_iter()
            .filter_map(|a| match a {
                IpAddr::V4(v4) => Some(Node::Prim(
                    Prim::Net4 {
                        proto,
                        dir: Dir::SrcOrDst,
                        addr: u32::from(v4),
                        mask: u32::MAX,
                    },
                    col,
                )),
                IpAddr::V6(_) => None,
            })
            .collect();
        let mut hosts = hosts.into_iter();
        let first = hosts
            .next()
            .ok_or_else(|| ExprError::new(wcol, ExprErrorKind::UnknownHost(w.clone())))?;
        let any = hosts.fold(first, |a, b| Node::Or(Box::new(a), Box::new(b)));
        Ok(Node::And(
            Box::new(Node::Prim(
                Prim::EtherHost {
                    dir: Dir::SrcOrDst,
                    mac,
                },
                col,
            )),
            Box::new(Node::Not(Box::new(any))),
        ))
    }
}

/// libpcap's refusal of `P host ...` for a protocol without such hosts.
pub(super) fn host_refused(p: Proto, col: usize) -> ExprError {
    let family = match p {
        Proto::Atalk => Some("AppleTalk"),
        Proto::Aarp => Some("AARP"),
        Proto::Lat => Some("LAT"),
        Proto::Sca => Some("SCA"),
        Proto::Moprc => Some("MOPRC"),
        Proto::Mopdl => Some("MOPDL"),
        Proto::Iso => Some("ISO"),
        Proto::Ipx => Some("IPX"),
        _ => None,
    };
    ExprError::new(
        col,
        match family {
            Some(f) => ExprErrorKind::HostNotImplemented(f),
            None => ExprErrorKind::Modifier {
                qualifier: p.name(),
                target: "host",
            },
        },
    )
}
