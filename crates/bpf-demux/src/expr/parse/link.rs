//! The link-level protocols' grammar: `llc` and its subtypes, `iso proto`
//! and `isis proto`, DECnet addresses, and libpcap's refusals of host
//! qualifiers these protocols have no addresses for.

use super::{names, prim, Parser, R};
use crate::expr::ast::{Dir, LlcKind, Prim, Proto};
use crate::expr::{Expected, ExprError, ExprErrorKind};

impl Parser {
    /// After `llc`: an optional subtype name (`llc i`, `llc xid`, ...). A
    /// word that is not a keyword is a subtype libpcap does not know.
    pub(super) fn llc(&mut self) -> R<crate::expr::ast::Node> {
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
    pub(super) fn osi_proto(&mut self, p: Proto) -> R<crate::expr::ast::Node> {
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
            // libpcap's lookup_proto knows these three spellings only.
            None if p == Proto::Iso => match w {
                "clnp" => 0x81,
                "esis" => 0x82,
                "isis" => 0x83,
                _ => {
                    return Err(ExprError::new(
                        col,
                        ExprErrorKind::UnknownOsiProto(w.into()),
                    ))
                }
            },
            None => {
                return Err(ExprError::new(
                    col,
                    ExprErrorKind::UnknownProtocol(w.into()),
                ))
            }
        };
        if n > 255 {
            return Err(ExprError::new(col, ExprErrorKind::ProtocolRange(n)));
        }
        self.pos += 1;
        Ok(prim(if p == Proto::Iso {
            Prim::IsoProto(n as u8)
        } else {
            Prim::IsisProto(n as u8)
        }))
    }

    /// A DECnet address, `AREA.NODE` or a number, as libpcap's
    /// `__pcap_atodn` reads it (area in the top 6 bits, node in the low 10;
    /// what does not fit is cut, as there).
    pub(super) fn decnet_host(
        &mut self,
        w: &str,
        col: usize,
        dir: Dir,
    ) -> R<crate::expr::ast::Node> {
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
