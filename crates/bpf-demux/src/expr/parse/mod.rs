//! The parser: pcap-filter text to a [`Node`] tree.
//!
//! `and` and `or` have equal precedence and associate left to right; `not`
//! binds tighter (pcap-filter(7)). A bare value after `and`/`or` takes the
//! qualifiers of the primitive before it (`host 1.2.3.4 or 5.6.7.8`).

mod link;

use super::ast::*;
use super::lex::{Tok, Token};
use super::names;
use super::resolve::{Resolver, Transport};
use super::{Expected, ExprError, ExprErrorKind};
use crate::cbpf::AluOp;

pub struct Parser<'a> {
    toks: Vec<Token>,
    /// Where names are looked up.
    names: &'a Resolver,
    pos: usize,
    end_col: usize,
    /// Qualifiers of the last primitive with a value (for implicit ones).
    last: Option<(Option<Proto>, Option<Dir>, Kind)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Host,
    Net,
    Port,
    PortRange,
}

type R<T> = Result<T, ExprError>;

impl<'a> Parser<'a> {
    pub fn new(toks: Vec<Token>, text_len: usize, names: &'a Resolver) -> Parser<'a> {
        Parser {
            toks,
            names,
            pos: 0,
            end_col: text_len + 1,
            last: None,
        }
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.tok)
    }
    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end_col, |t| t.col)
    }
    fn word(&self) -> Option<&str> {
        match self.peek() {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }
    fn is_word(&self, w: &str) -> bool {
        self.word() == Some(w)
    }
    fn syntax(&self) -> ExprError {
        match self.toks.get(self.pos) {
            Some(t) => ExprError::new(t.col, ExprErrorKind::SyntaxNear(show(&t.tok).to_string())),
            None => ExprError::new(self.end_col, ExprErrorKind::UnexpectedEnd),
        }
    }
    fn expect_op(&mut self, op: &str) -> R<()> {
        if self.is_op(op) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    pub fn parse(mut self) -> R<Node> {
        if self.toks.is_empty() {
            return Err(ExprError::new(1, ExprErrorKind::Empty));
        }
        let n = self.expr()?;
        if self.pos < self.toks.len() {
            return Err(self.syntax());
        }
        Ok(n)
    }

    fn expr(&mut self) -> R<Node> {
        let mut left = self.unary()?;
        loop {
            let and = self.is_word("and") || self.is_op("&&");
            let or = self.is_word("or") || self.is_op("||");
            if !and && !or {
                return Ok(left);
            }
            self.pos += 1;
            let right = self.unary()?;
            left = if and {
                Node::And(Box::new(left), Box::new(right))
            } else {
                Node::Or(Box::new(left), Box::new(right))
            };
        }
    }

    fn unary(&mut self) -> R<Node> {
        if self.is_word("not") || self.is_op("!") {
            self.pos += 1;
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        // A relation, if what follows parses as one; otherwise the error
        // that got furthest.
        let save = self.pos;
        // A number followed by an operator starts arithmetic; a bare number
        // after `and`/`or` is an implicit value (`port 80 or 443`).
        let op_follows =
            matches!(self.peek_at(1), Some(Tok::Op(o)) if !matches!(*o, ")" | "&&" | "||"));
        let arith_start = matches!(self.peek_at(1), Some(Tok::Op("[")))
            || self.is_op("-")
            || self.word().is_some_and(|w| w == "len")
            || (op_follows
                && self
                    .word()
                    .is_some_and(|w| names::number(w).is_some() || names::constant(w).is_some()));
        if arith_start {
            return self.relation();
        }
        let rel_err = match self.relation() {
            Ok(n) => return Ok(n),
            Err(e) => e,
        };
        let rel_reached = self.pos;
        self.pos = save;
        let other = if self.is_op("(") {
            self.pos += 1;
            self.expr().and_then(|n| self.expect_op(")").map(|_| n))
        } else {
            self.primitive()
        };
        match other {
            Ok(n) => Ok(n),
            Err(e) if rel_err.col > e.col && rel_reached > save + 1 => Err(rel_err),
            Err(e) => Err(e),
        }
    }

    fn relation(&mut self) -> R<Node> {
        let col0 = self.col();
        let l = self.arith()?;
        let op = match self.peek() {
            Some(Tok::Op(">")) => RelOp::Gt,
            Some(Tok::Op("<")) => RelOp::Lt,
            Some(Tok::Op(">=")) => RelOp::Ge,
            Some(Tok::Op("<=")) => RelOp::Le,
            Some(Tok::Op("=")) | Some(Tok::Op("==")) => RelOp::Eq,
            Some(Tok::Op("!=")) => RelOp::Ne,
            _ => return Err(self.syntax()),
        };
        self.pos += 1;
        let r = self.arith()?;
        Ok(Node::Rel(op, l, r, col0))
    }

    // Precedence, low to high: | ^, &, << >>, + -, * / %, unary -.
    fn arith(&mut self) -> R<Arith> {
        self.binary(0)
    }
    fn binary(&mut self, level: usize) -> R<Arith> {
        const LEVELS: [&[(&str, AluOp)]; 5] = [
            &[("|", AluOp::Or), ("^", AluOp::Xor)],
            &[("&", AluOp::And)],
            &[("<<", AluOp::Lsh), (">>", AluOp::Rsh)],
            &[("+", AluOp::Add), ("-", AluOp::Sub)],
            &[("*", AluOp::Mul), ("/", AluOp::Div), ("%", AluOp::Mod)],
        ];
        if level == LEVELS.len() {
            return self.operand();
        }
        let mut left = self.binary(level + 1)?;
        loop {
            let Some(Tok::Op(o)) = self.peek() else {
                return Ok(left);
            };
            let Some(&(_, op)) = LEVELS[level].iter().find(|(s, _)| s == o) else {
                return Ok(left);
            };
            // `&&` and `||` are boolean, not arithmetic.
            self.pos += 1;
            let right = self.binary(level + 1)?;
            left = Arith::Bin(op, Box::new(left), Box::new(right));
        }
    }
    fn operand(&mut self) -> R<Arith> {
        if self.is_op("-") {
            self.pos += 1;
            return Ok(Arith::Neg(Box::new(self.operand()?)));
        }
        if self.is_op("(") {
            self.pos += 1;
            let a = self.arith()?;
            self.expect_op(")")?;
            return Ok(a);
        }
        let col = self.col();
        let Some(w) = self.word().map(str::to_owned) else {
            return Err(self.syntax());
        };
        if w == "len" {
            self.pos += 1;
            return Ok(Arith::Len);
        }
        if let Some(p) = Proto::from_word(&w) {
            if matches!(self.peek_at(1), Some(Tok::Op("["))) {
                self.pos += 2;
                let index = self.arith()?;
                let mut size = 1u8;
                if self.is_op(":") {
                    self.pos += 1;
                    let scol = self.col();
                    let n = self.number()?;
                    size = match n {
                        1 | 2 | 4 => n as u8,
                        _ => return Err(ExprError::new(scol, ExprErrorKind::DataSize(n))),
                    };
                }
                self.expect_op("]")?;
                return Ok(Arith::Load {
                    proto: p,
                    index: Box::new(index),
                    size,
                });
            }
            return Err(self.syntax());
        }
        if let Some(v) = names::constant(&w).or_else(|| names::number(&w)) {
            self.pos += 1;
            return Ok(Arith::Num(v));
        }
        Err(ExprError::new(
            col,
            ExprErrorKind::SyntaxNear(w.to_string()),
        ))
    }

    fn number(&mut self) -> R<u32> {
        let col = self.col();
        match self.word().and_then(names::number) {
            Some(n) => {
                self.pos += 1;
                Ok(n)
            }
            None => Err(ExprError::new(
                col,
                ExprErrorKind::Expected(Expected::Number),
            )),
        }
    }

    fn primitive(&mut self) -> R<Node> {
        let col = self.col();
        let n = self.primitive_inner()?;
        Ok(match n {
            Node::Prim(p, _) => Node::Prim(p, col),
            other => other,
        })
    }

    fn primitive_inner(&mut self) -> R<Node> {
        let col = self.col();
        let Some(first) = self.word().map(str::to_owned) else {
            return Err(self.syntax());
        };
        if let Some(kw) = names::UNSUPPORTED.iter().find(|k| **k == first) {
            return Err(ExprError::new(
                col,
                ExprErrorKind::Unsupported(kw.to_string()),
            ));
        }
        match first.as_str() {
            "llc" => {
                self.pos += 1;
                return self.llc();
            }
            "gateway" => {
                self.pos += 1;
                return self.gateway(None, col);
            }
            "pppoed" => {
                self.pos += 1;
                return Ok(prim(Prim::Pppoed));
            }
            "inbound" | "outbound" => return self.done(Prim::Direction(first == "outbound")),
            "ifindex" => {
                self.pos += 1;
                let n = self.number()?;
                return Ok(prim(Prim::Ifindex(n)));
            }
            "ifname" | "on" => return Err(ExprError::new(col, ExprErrorKind::IfnamePf)),
            // Bare: the link layer's (libpcap's Q_DEFAULT is Q_LINK here).
            "broadcast" => return self.done(Prim::EtherBroadcast),
            "multicast" => return self.done(Prim::EtherMulticast),
            "vlan" | "mpls" | "pppoes" | "geneve" => {
                self.pos += 1;
                // An optional number (not a bare value of a later primitive).
                let n = match self.word().and_then(names::number) {
                    Some(n) => {
                        self.pos += 1;
                        Some(n)
                    }
                    None => None,
                };
                return Ok(prim(match first.as_str() {
                    "vlan" => Prim::Vlan(n),
                    "mpls" => Prim::Mpls(n),
                    "geneve" => Prim::Geneve(n),
                    _ => Prim::Pppoes(n),
                }));
            }
            "less" | "greater" => {
                self.pos += 1;
                let n = self.number()?;
                return Ok(prim(if first == "less" {
                    Prim::Less(n)
                } else {
                    Prim::Greater(n)
                }));
            }
            "protochain" => {
                self.pos += 1;
                let p = self.proto_number()?;
                return Ok(prim(Prim::Protochain {
                    v4: true,
                    v6: true,
                    proto: p,
                }));
            }
            "proto" => {
                self.pos += 1;
                let p = self.proto_number()?;
                return Ok(prim(Prim::IpProto {
                    v4: true,
                    v6: true,
                    proto: p,
                }));
            }
            _ => {}
        }
        let mut proto = None;
        if let Some(p) = Proto::from_word(&first) {
            proto = Some(p);
            self.pos += 1;
            match (p, self.word()) {
                (Proto::Ether, Some("broadcast")) => return self.done(Prim::EtherBroadcast),
                (Proto::Ether, Some("multicast")) => return self.done(Prim::EtherMulticast),
                (Proto::Ip, Some("multicast")) => return self.done(Prim::IpMulticast),
                (Proto::Ip6, Some("multicast")) => return self.done(Prim::Ip6Multicast),
                (Proto::Ip, Some("broadcast")) => {
                    return Err(ExprError::new(self.col(), ExprErrorKind::IpBroadcast))
                }
                (_, Some("broadcast")) => {
                    return Err(ExprError::new(
                        self.col(),
                        ExprErrorKind::BroadcastQualifier,
                    ))
                }
                (_, Some("multicast")) => {
                    return Err(ExprError::new(
                        self.col(),
                        ExprErrorKind::MulticastQualifier,
                    ))
                }
                (_, Some("gateway")) => {
                    self.pos += 1;
                    return self.gateway(Some(p), col);
                }
                (Proto::Iso | Proto::Isis, Some("proto")) => {
                    self.pos += 1;
                    return self.osi_proto(p);
                }
                (Proto::Ether, Some("proto")) => {
                    self.pos += 1;
                    let col = self.col();
                    if let Some(w) = self.word().filter(|w| Proto::from_word(w).is_some()) {
                        return Err(ExprError::new(col, ExprErrorKind::Unescaped(w.to_string())));
                    }
                    let word = self.word().map(|w| w.trim_start_matches('\\').to_owned());
                    let n = word
                        .as_deref()
                        .and_then(|w| names::number(w).or_else(|| names::ethertype(w)));
                    let n = n.ok_or_else(|| {
                        ExprError::new(col, ExprErrorKind::Expected(Expected::EtherType))
                    })?;
                    if n > 0xffff {
                        return Err(ExprError::new(col, ExprErrorKind::EtherTypeRange(n)));
                    }
                    self.pos += 1;
                    return Ok(prim(Prim::EtherProto(n as u16)));
                }
                (Proto::Ip | Proto::Ip6, Some("protochain")) => {
                    self.pos += 1;
                    let n = self.proto_number()?;
                    let v4 = p == Proto::Ip;
                    return Ok(prim(Prim::Protochain {
                        v4,
                        v6: !v4,
                        proto: n,
                    }));
                }
                (Proto::Ip | Proto::Ip6, Some("proto")) => {
                    self.pos += 1;
                    let n = self.proto_number()?;
                    let v4 = p == Proto::Ip;
                    return Ok(prim(Prim::IpProto {
                        v4,
                        v6: !v4,
                        proto: n,
                    }));
                }
                (_, Some("proto")) => {
                    return Err(ExprError::new(col, ExprErrorKind::ProtoQualifier(p.name())));
                }
                (_, Some("protochain")) => {
                    return Err(ExprError::new(col, ExprErrorKind::ProtochainQualifier));
                }
                (_, Some(w)) if names::UNSUPPORTED.contains(&w) => {
                    return Err(ExprError::new(
                        self.col(),
                        ExprErrorKind::Unsupported(w.to_string()),
                    ));
                }
                _ => {}
            }
        }
        let dir = self.direction()?;
        let kind = match self.word() {
            Some("host") => Some(Kind::Host),
            Some("net") => Some(Kind::Net),
            Some("port") => Some(Kind::Port),
            Some("portrange") => Some(Kind::PortRange),
            _ => None,
        };
        if kind.is_some() {
            self.pos += 1;
        }
        if proto.is_none() && dir.is_none() && kind.is_none() {
            // A bare value: the qualifiers of the previous primitive.
            return match self.last {
                Some((p, d, k)) if self.word().is_some() => self.value(p, d, k),
                _ => Err(ExprError::new(
                    col,
                    ExprErrorKind::SyntaxNear(first.to_string()),
                )),
            };
        }
        if let (Some(p), None, None) = (proto, dir, kind) {
            if p == Proto::Ether {
                return Err(ExprError::new(self.col(), ExprErrorKind::EtherQualifier));
            }
            return Ok(prim(Prim::Proto(p)));
        }
        self.value(proto, dir, kind.unwrap_or(Kind::Host))
    }

    fn done(&mut self, p: Prim) -> R<Node> {
        self.pos += 1;
        Ok(prim(p))
    }

    fn direction(&mut self) -> R<Option<Dir>> {
        let d = match self.word() {
            Some("src") => Dir::Src,
            Some("dst") => Dir::Dst,
            _ => return Ok(None),
        };
        self.pos += 1;
        // `src or dst`, `src and dst`
        if matches!(self.word(), Some("or") | Some("and"))
            && matches!(self.peek_at(1), Some(Tok::Word(w)) if w == "src" || w == "dst")
        {
            let both = self.is_word("and");
            self.pos += 2;
            return Ok(Some(if both { Dir::SrcAndDst } else { Dir::SrcOrDst }));
        }
        Ok(Some(d))
    }

    /// A port: a number, or a service name and the transports it names.
    fn port(&self, w: &str, col: usize) -> R<(u16, Transport)> {
        let (n, t) = match names::number(w) {
            Some(n) => (n, Transport::Any),
            None => self
                .names
                .port(w)
                .ok_or_else(|| ExprError::new(col, ExprErrorKind::UnknownPort(w.to_string())))?,
        };
        if n > 65535 {
            return Err(ExprError::new(col, ExprErrorKind::PortValueRange(n)));
        }
        Ok((n as u16, t))
    }

    /// After `proto`: a protocol number, or a name (`\tcp`) known to the
    /// protocols file.
    fn proto_number(&mut self) -> R<u8> {
        self.proto_number_by(|names, w| {
            names
                .protocol(w)
                .ok_or_else(|| ExprErrorKind::UnknownProtocol(w.to_string()))
        })
    }

    /// A protocol number, or a name `lookup` knows; a protocol keyword must
    /// be escaped there (`ip proto \tcp`), as in libpcap.
    fn proto_number_by(
        &mut self,
        lookup: impl Fn(&Resolver, &str) -> Result<u32, ExprErrorKind>,
    ) -> R<u8> {
        let col = self.col();
        let raw = self
            .word()
            .ok_or_else(|| ExprError::new(col, ExprErrorKind::Expected(Expected::Protocol)))?
            .to_owned();
        if Proto::from_word(&raw).is_some() {
            return Err(ExprError::new(col, ExprErrorKind::Unescaped(raw)));
        }
        let w = raw.trim_start_matches('\\');
        let n = match names::number(w) {
            Some(n) => n,
            None => lookup(self.names, w).map_err(|k| ExprError::new(col, k))?,
        };
        if n > 255 {
            return Err(ExprError::new(col, ExprErrorKind::ProtocolRange(n)));
        }
        self.pos += 1;
        Ok(n as u8)
    }

    fn value(&mut self, proto: Option<Proto>, dir: Option<Dir>, kind: Kind) -> R<Node> {
        self.last = Some((proto, dir, kind));
        let col = self.col();
        let w = self.word().ok_or_else(|| self.syntax())?.to_owned();
        self.pos += 1;
        let d = dir.unwrap_or(Dir::SrcOrDst);
        match kind {
            Kind::Port | Kind::PortRange => {
                if let Some(p) = proto {
                    if matches!(p, Proto::Ip | Proto::Ip6) {
                        return Err(ExprError::new(col, ExprErrorKind::PortQualifier));
                    }
                    if !matches!(p, Proto::Tcp | Proto::Udp | Proto::Sctp) {
                        return Err(ExprError::new(
                            col,
                            ExprErrorKind::Modifier {
                                qualifier: p.name(),
                                target: "port",
                            },
                        ));
                    }
                }
                // A name registered for one transport only restricts the port to it.
                let mut proto = proto;
                let (lo, hi, t) = if kind == Kind::PortRange {
                    let (a, b) = w.split_once('-').ok_or_else(|| {
                        ExprError::new(col, ExprErrorKind::PortRange(w.to_string()))
                    })?;
                    let ((lo, t1), (hi, t2)) = (self.port(a, col)?, self.port(b, col)?);
                    // Names of one transport make a range of it (libpcap's
                    // pcap_nametoportrange).
                    (lo, hi, if t1 == t2 { t1 } else { Transport::Any })
                } else {
                    let (p, t) = self.port(&w, col)?;
                    (p, p, t)
                };
                let only = match t {
                    Transport::Tcp => Some(Proto::Tcp),
                    Transport::Udp => Some(Proto::Udp),
                    Transport::Any => None,
                };
                match (proto, only) {
                    (None, only) => proto = only,
                    (Some(p), Some(only)) if p != only => {
                        return Err(ExprError::new(
                            col,
                            ExprErrorKind::PortOfOtherProto {
                                port: w.to_string(),
                                proto: only.name(),
                            },
                        ))
                    }
                    _ => {}
                }
                Ok(prim(Prim::Port {
                    proto,
                    dir: d,
                    lo: lo.min(hi),
                    hi: lo.max(hi),
                }))
            }
            Kind::Host | Kind::Net => {
                if proto == Some(Proto::Ether) {
                    if kind == Kind::Net {
                        return Err(ExprError::new(
                            col,
                            ExprErrorKind::Modifier {
                                qualifier: "ether",
                                target: "net",
                            },
                        ));
                    }
                    let mac = match names::mac(&w) {
                        Some(m) => m,
                        None if names::is_name(&w) => self.names.ether(&w).ok_or_else(|| {
                            ExprError::new(col, ExprErrorKind::UnknownEtherHost(w.to_string()))
                        })?,
                        None => {
                            return Err(ExprError::new(
                                col,
                                ExprErrorKind::BadEthernet(w.to_string()),
                            ))
                        }
                    };
                    return Ok(prim(Prim::EtherHost { dir: d, mac }));
                }
                if proto == Some(Proto::Decnet) {
                    return self.decnet_host(&w, col, d);
                }
                if let Some(p) = proto {
                    if !matches!(p, Proto::Ip | Proto::Ip6 | Proto::Arp | Proto::Rarp) {
                        return Err(link::host_refused(p, col));
                    }
                }
                if w.contains(':') {
                    let mut prefix = 128;
                    if self.is_op("/") {
                        self.pos += 1;
                        prefix = self.number()?;
                        if prefix > 128 {
                            return Err(ExprError::new(col, ExprErrorKind::MaskLength6(prefix)));
                        }
                    }
                    let a: std::net::Ipv6Addr = w
                        .parse()
                        .map_err(|_| ExprError::new(col, ExprErrorKind::BadIpv6(w.to_string())))?;
                    let bits = u128::from(a);
                    let mask = if prefix == 0 {
                        0
                    } else {
                        u128::MAX << (128 - prefix)
                    };
                    if bits & !mask != 0 {
                        return Err(ExprError::new(
                            col,
                            ExprErrorKind::NonNetworkBits(format!("{w}/{prefix}")),
                        ));
                    }
                    if matches!(proto, Some(Proto::Ip | Proto::Arp | Proto::Rarp)) {
                        return Err(ExprError::new(
                            col,
                            ExprErrorKind::Modifier {
                                qualifier: proto.unwrap().name(),
                                target: "an IPv6 address",
                            },
                        ));
                    }
                    return Ok(prim(Prim::Net6 {
                        dir: d,
                        addr: a.octets(),
                        prefix: prefix as u8,
                    }));
                }
                if names::ipv4(&w).is_none() && names::is_name(&w) {
                    if kind == Kind::Host {
                        return self.host_name(&w, col, proto, d);
                    }
                    let (addr, mask) = self.names.network(&w).ok_or_else(|| {
                        ExprError::new(col, ExprErrorKind::UnknownNetwork(w.clone()))
                    })?;
                    if proto == Some(Proto::Ip6) {
                        return Err(ExprError::new(
                            col,
                            ExprErrorKind::Modifier {
                                qualifier: "ip6",
                                target: "an IPv4 address",
                            },
                        ));
                    }
                    return Ok(prim(Prim::Net4 {
                        proto,
                        dir: d,
                        addr,
                        mask,
                    }));
                }
                let (addr, bits) = names::ipv4(&w)
                    .ok_or_else(|| ExprError::new(col, ExprErrorKind::BadIpv4(w.to_string())))?;
                if proto == Some(Proto::Ip6) {
                    return Err(ExprError::new(
                        col,
                        ExprErrorKind::Modifier {
                            qualifier: "ip6",
                            target: "an IPv4 address",
                        },
                    ));
                }
                let mut mask = if kind == Kind::Host {
                    if bits != 32 {
                        return Err(ExprError::new(
                            col,
                            ExprErrorKind::IncompleteHost(w.to_string()),
                        ));
                    }
                    u32::MAX
                } else {
                    if bits == 0 {
                        0
                    } else {
                        u32::MAX << (32 - bits)
                    }
                };
                if kind == Kind::Net && self.is_op("/") {
                    self.pos += 1;
                    let lcol = self.col();
                    let len = self.number()?;
                    if len > 32 {
                        return Err(ExprError::new(lcol, ExprErrorKind::MaskLength4(len)));
                    }
                    mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                } else if kind == Kind::Net && self.is_word("mask") {
                    self.pos += 1;
                    let mcol = self.col();
                    let m = self
                        .word()
                        .and_then(names::ipv4)
                        .filter(|m| m.1 == 32)
                        .ok_or_else(|| {
                            ExprError::new(mcol, ExprErrorKind::Expected(Expected::Netmask))
                        })?;
                    self.pos += 1;
                    mask = m.0;
                }
                if addr & !mask != 0 {
                    return Err(ExprError::new(
                        col,
                        ExprErrorKind::NonNetworkBits(w.to_string()),
                    ));
                }
                Ok(prim(Prim::Net4 {
                    proto,
                    dir: d,
                    addr,
                    mask,
                }))
            }
        }
    }
}

/// A primitive node; its column is set by `primitive`.
fn prim(p: Prim) -> Node {
    Node::Prim(p, 0)
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Word(w) => w.clone(),
        Tok::Op(o) => (*o).to_owned(),
    }
}
