//! What the link layer says the payload is (libpcap's gen_linktype, per
//! link type), and the tests that read the 802.2 LLC header: `llc` and
//! its subtypes, SNAP, the OSI protocols, IPX and AppleTalk's
//! encapsulations, and DECnet addresses.

use super::cond::*;
use crate::cbpf::opcode::Size;
use crate::cbpf::program::{Anc, SKF_AD_OFF};
use crate::expr::ast::{Dir, LlcKind};
use crate::expr::ExprErrorKind;
use crate::link::LinkType;

/// Linux cooked capture's protocol for 802.2 LLC frames.
const LINUX_SLL_P_802_2: u32 = 0x0004;
/// Linux cooked capture's protocol for raw 802.3 (Novell) frames.
const LINUX_SLL_P_802_3: u32 = 0x0001;
const LLCSAP_IP: u16 = 0x06;
const LLCSAP_ISONS: u16 = 0xfe;
const LLCSAP_NETBEUI: u16 = 0xf0;
const LLCSAP_IPX: u16 = 0xe0;
const LLCSAP_8021D: u16 = 0x42;
const ETH_ATALK: u16 = 0x809b;
const ETH_AARP: u16 = 0x80f3;
const ETH_IPX: u16 = 0x8137;
const ETH_DN: u16 = 0x6003;
const ETH_NS: u16 = 0x0600;

/// libpcap's ethertype_to_ppptype: PPP's protocol number for what
/// gen_linktype is asked for.
fn ppp_protocol(t: u16) -> u32 {
    match t {
        ETH_IP => 0x0021,
        ETH_IP6 => 0x0057,
        ETH_DN => 0x0027,
        ETH_ATALK => 0x0029,
        ETH_NS => 0x0025,
        LLCSAP_ISONS => 0x0023,
        LLCSAP_8021D => 0x0031,
        LLCSAP_IPX => 0x002b,
        other => other as u32,
    }
}

/// `v` in the packet's metadata (the kernel's ancillary load).
fn metadata(size: Size, anc: Anc, v: u32) -> Cond {
    Cond::Test(Load::Abs(size, SKF_AD_OFF + anc.offset()), Test::Eq(v))
}

impl Offs {
    /// libpcap's gen_linktype: the link layer says the payload is of
    /// EtherType (or, at most 1500, LLC SAP) `t`; PPP's protocol after
    /// `pppoes`, the IP version checks inside MPLS. Always false (`or![]`)
    /// where the link type cannot carry it.
    pub(super) fn linktype(&self, t: u16) -> Result<Cond, ExprErrorKind> {
        let never = || or(vec![]);
        let always = || and(vec![]);
        // Inside MPLS, and after `pppoes` (PPP's protocol numbers), every
        // link type is the same: libpcap has switched its link type.
        if self.mpls > 0 {
            let version = match t {
                ETH_IP => 0x40,
                ETH_IP6 => 0x60,
                _ => return Err(ExprErrorKind::ProtocolOverMpls),
            };
            return Ok(and(vec![
                b(self.net() - 2, Test::MaskEq(0x01, 0x01)),
                b(self.net(), Test::MaskEq(0xf0, version)),
            ]));
        }
        if self.ppp {
            return Ok(h(self.linktype, Test::Eq(ppp_protocol(t))));
        }
        Ok(match self.link {
            LinkType::Ethernet => self.ether_linktype(t),
            LinkType::LinuxSll => self.sll_linktype(t),
            LinkType::LinuxSll2 => h(self.linktype, Test::Eq(t as u32)),
            LinkType::Raw => match t {
                ETH_IP => b(self.linkpl, Test::MaskEq(0xf0, 0x40)),
                ETH_IP6 => b(self.linkpl, Test::MaskEq(0xf0, 0x60)),
                _ => never(),
            },
            LinkType::Ipv4 => {
                if t == ETH_IP {
                    always()
                } else {
                    never()
                }
            }
            LinkType::Ipv6 => {
                if t == ETH_IP6 {
                    always()
                } else {
                    never()
                }
            }
            LinkType::Null | LinkType::Loop => {
                // gen_loopback_linktype: the address family, in the
                // writer's byte order (NULL: this little-endian host's) or
                // in network order (LOOP). IPv6 in a file is the BSDs'
                // AF_INET6 (FreeBSD, Darwin, the other BSDs), as written by
                // the systems these link types come from; libpcap's dead
                // handle on Linux takes Linux's.
                let afs: &[u32] = match t {
                    ETH_IP => &[2],
                    ETH_IP6 if self.savefile => &[30, 24, 28],
                    ETH_IP6 => &[10],
                    _ => return Ok(never()),
                };
                let load = self.linkhdr.load(Size::W);
                or(afs
                    .iter()
                    .map(|&af| {
                        let af = if self.link == LinkType::Null {
                            af.swap_bytes()
                        } else {
                            af
                        };
                        Cond::Test(load, Test::Eq(af))
                    })
                    .collect())
            }
        })
    }

    /// `inbound` / `outbound` (libpcap's gen_inbound): the packet type in
    /// a Linux cooked header, else (not from a file) the socket's packet
    /// type metadata.
    pub(super) fn direction(&self, outbound: bool) -> Result<Cond, ExprErrorKind> {
        const OUTGOING: u32 = 4;
        let out = match self.header_link() {
            Some(LinkType::LinuxSll) => h(self.linkhdr, Test::Eq(OUTGOING)),
            Some(LinkType::LinuxSll2) => b(self.linkhdr + 10, Test::Eq(OUTGOING)),
            _ if self.savefile => {
                return Err(ExprErrorKind::DirectionOnSavefile(self.link_description()))
            }
            _ => metadata(Size::H, Anc::PktType, OUTGOING),
        };
        Ok(if outbound { out } else { not(out) })
    }

    /// `ifindex n`: the interface index in a cooked v2 header, else (not
    /// from a file) the socket's metadata.
    pub(super) fn ifindex(&self, n: u32) -> Result<Cond, ExprErrorKind> {
        Ok(match self.header_link() {
            Some(LinkType::LinuxSll2) => Cond::Test((self.linkhdr + 4).load(Size::W), Test::Eq(n)),
            _ if self.savefile => {
                return Err(ExprErrorKind::IfindexOnSavefile(self.link_description()))
            }
            _ => metadata(Size::W, Anc::IfIndex, n),
        })
    }

    /// The link type whose header is at `linkhdr`: none after `pppoes`
    /// (libpcap's link type is then PPP, which has no such fields).
    fn header_link(&self) -> Option<LinkType> {
        (!self.ppp).then_some(self.link)
    }

    /// An 802.3 frame: the type field is a length.
    fn ieee802_3(&self) -> Cond {
        not(h(self.linktype, Test::Gt(ETHERMTU)))
    }

    /// libpcap's gen_ether_linktype.
    fn ether_linktype(&self, t: u16) -> Cond {
        let llc = self.linkpl;
        match t {
            // Always 802.2: DSAP and SSAP both.
            LLCSAP_ISONS | LLCSAP_IP | LLCSAP_NETBEUI => and(vec![
                self.ieee802_3(),
                h(llc, Test::Eq((t as u32) << 8 | t as u32)),
            ]),
            // Ethernet II, or 802.3 with the IPX SAP, raw (`ff ff`) or SNAP.
            LLCSAP_IPX => or(vec![
                h(self.linktype, Test::Eq(ETH_IPX as u32)),
                and(vec![
                    self.ieee802_3(),
                    or(vec![
                        b(llc, Test::Eq(LLCSAP_IPX as u32)),
                        h(llc, Test::Eq(0xffff)),
                        self.snap(0x000000, ETH_IPX),
                    ]),
                ]),
            ]),
            ETH_ATALK | ETH_AARP => or(vec![
                h(self.linktype, Test::Eq(t as u32)),
                and(vec![self.ieee802_3(), self.appletalk_snap(t)]),
            ]),
            _ if t as u32 <= ETHERMTU => and(vec![
                self.ieee802_3(),
                b(self.linktype + 2, Test::Eq(t as u32)),
            ]),
            _ => h(self.linktype, Test::Eq(t as u32)),
        }
    }

    /// libpcap's gen_linux_sll_linktype: 802.2 frames come under protocol
    /// 4, raw 802.3 under 1.
    fn sll_linktype(&self, t: u16) -> Cond {
        let llc = self.linkpl;
        let is_llc = || h(self.linktype, Test::Eq(LINUX_SLL_P_802_2));
        match t {
            LLCSAP_ISONS | LLCSAP_IP | LLCSAP_NETBEUI => {
                and(vec![is_llc(), h(llc, Test::Eq((t as u32) << 8 | t as u32))])
            }
            LLCSAP_IPX => or(vec![
                h(self.linktype, Test::Eq(ETH_IPX as u32)),
                h(self.linktype, Test::Eq(LINUX_SLL_P_802_3)),
                and(vec![
                    is_llc(),
                    or(vec![
                        b(llc, Test::Eq(LLCSAP_IPX as u32)),
                        self.snap(0x000000, ETH_IPX),
                    ]),
                ]),
            ]),
            ETH_ATALK | ETH_AARP => or(vec![
                h(self.linktype, Test::Eq(t as u32)),
                and(vec![is_llc(), self.appletalk_snap(t)]),
            ]),
            _ if t as u32 <= ETHERMTU => and(vec![is_llc(), b(llc, Test::Eq(t as u32))]),
            _ => h(self.linktype, Test::Eq(t as u32)),
        }
    }

    /// EtherTalk phase 2 over SNAP: Apple's OUI for AppleTalk, the
    /// encapsulated-Ethernet OUI for AARP.
    fn appletalk_snap(&self, t: u16) -> Cond {
        if t == ETH_ATALK {
            self.snap(0x080007, ETH_ATALK)
        } else {
            self.snap(0x000000, ETH_AARP)
        }
    }

    /// libpcap's gen_snap: `aa aa 03`, the OUI and the protocol type at
    /// the LLC header. The second word is read first, as libpcap's
    /// gen_bcmp does (on a frame too short for it, that load ends the
    /// program).
    fn snap(&self, oui: u32, ptype: u16) -> Cond {
        let at = self.linkpl;
        and(vec![
            word_test(at + 4, (oui & 0xffff) << 16 | ptype as u32, u32::MAX),
            word_test(at, 0xaaaa_0300 | (oui >> 16), u32::MAX),
        ])
    }

    /// `llc` (an 802.2 header: an 802.3 frame not raw Novell) and its
    /// subtypes, by the control field's low bits.
    pub(super) fn llc(&self, k: LlcKind) -> Cond {
        let is_llc = and(vec![
            self.ieee802_3(),
            not(h(self.linkpl, Test::Eq(0xffff))),
        ]);
        let control = self.linkpl + 2;
        let t = match k {
            LlcKind::Any => return is_llc,
            LlcKind::I => not(b(control, Test::Set(0x01))),
            LlcKind::S => b(control, Test::MaskEq(0x03, 0x01)),
            LlcKind::U => b(control, Test::MaskEq(0x03, 0x03)),
            LlcKind::SSubtype(v) => b(control, Test::MaskEq(0x0f, v as u32)),
            LlcKind::USubtype(v) => b(control, Test::MaskEq(0xef, v as u32)),
        };
        and(vec![is_llc, t])
    }

    /// `iso proto n`: an OSI frame whose first byte after the LLC header
    /// (the NLPID) is `n`.
    pub(super) fn iso_proto(&self, n: u8) -> Result<Cond, ExprErrorKind> {
        Ok(and(vec![
            self.linktype(LLCSAP_ISONS)?,
            b(self.linkpl + self.nosnap, Test::Eq(n as u32)),
        ]))
    }

    /// `isis proto n`: an IS-IS PDU of type `n`.
    pub(super) fn isis_proto(&self, n: u8) -> Result<Cond, ExprErrorKind> {
        Ok(and(vec![
            self.iso_proto(0x83)?,
            b(self.linkpl + self.nosnap + 4, Test::Eq(n as u32)),
        ]))
    }

    /// libpcap's gen_dnhostop: DECnet routing headers, long or short, with
    /// or without a padding byte. The constants are those of a
    /// little-endian libpcap (it writes `ntohs` of them).
    pub(super) fn decnet_host(&self, d: Dir, addr: u16) -> Result<Cond, ExprErrorKind> {
        let pl = self.net();
        let a = addr.swap_bytes() as u32;
        // One header form (flags 6: long, 2: short) with the address `off`
        // after the flags: after a one-byte pad (flags 0x81 first), or not.
        let form = |flags: u32, off: u32| {
            [
                and(vec![
                    h(pl + 2, Test::MaskEq(0xff07, 0x8100 | flags)),
                    h(pl + 3 + off, Test::Eq(a)),
                ]),
                and(vec![
                    b(pl + 2, Test::MaskEq(0x07, flags)),
                    h(pl + 2 + off, Test::Eq(a)),
                ]),
            ]
        };
        let side =
            |short: u32, long: u32| or(form(6, long).into_iter().chain(form(2, short)).collect());
        Ok(and(vec![
            self.linktype(ETH_DN)?,
            dir(d, side(3, 15), side(1, 7)),
        ]))
    }
}
