//! `protochain`: libpcap's program loops over the header chain (a
//! backward jump the kernel refuses), once per `protochain`. Here the walk
//! is unrolled (IPv6 through [`PROTOCHAIN_DEPTH_V6`] headers, IPv4 AH
//! through [`PROTOCHAIN_DEPTH_V4`]), in one of two forms:
//!
//! - **inline**, where the `protochain` is, when it is the only one of its
//!   IP version: step for step as libpcap's loop, stopping at the protocol
//!   asked for. Its answers are libpcap's on every frame.
//! - **shared**, when several `protochain`s of one IP version would not
//!   fit twice under the kernel's 4096 instructions (`ip6 protochain 51 or
//!   ip6 protochain 89`): one walk at the start of the program follows the
//!   chain to its end and leaves in a kept scratch cell the next-header
//!   value that ended it (a protocol that is no extension header), or why
//!   it stopped otherwise; an extension-header value asked for
//!   (`protochain 0`, `44`, `51`, ...) is recorded in a cell of its own as
//!   it goes by. Each `protochain N` is then a test of those cells. libpcap's
//!   loads stop the program (reject) when its walk reads past the packet
//!   before finding its protocol; the shared walk checks the packet length
//!   before each load instead and records "truncated", and a `protochain N`
//!   whose N was not seen before that point then rejects the whole program,
//!   as libpcap's walk would have, at the same point of the expression. This
//!   is exact wherever the filter sees the whole packet (a socket filter in
//!   the kernel; a file's frame captured whole); a file's frame cut by a
//!   snaplen inside its header chain makes the shared walk read past the
//!   cut and reject, where libpcap may have answered from what was before
//!   it.

use super::*;

/// Extension headers the IPv6 walk passes (hop-by-hop, destination
/// options, routing, fragment) and AH.
const EXT6: [u32; 4] = [0, 60, 43, 44];
const AH: u32 = 51;
/// Codes in the result cell beside the next-header values (0..=255).
const DEEPER: u32 = 256;
const TRUNCATED: u32 = 257;
const OTHER_VERSION: u32 = 258;
/// Steps between relays of the far jumps (a step is at most ~40
/// instructions, so a group stays within a conditional jump's reach).
const RELAY: usize = 6;

/// A `protochain` site found by the first pass: its IP version and the
/// offsets in force there.
#[derive(Clone, Copy, Debug)]
pub(super) struct Site {
    v6: bool,
    offs: Offs,
    proto: u8,
}

/// One walk and the cells it leaves.
#[derive(Clone, Debug)]
pub(super) struct Walk {
    v6: bool,
    offs: Offs,
    /// The value that ended the walk, or one of the codes above.
    result: u32,
    /// Extension-header values asked for, each with its cell (holding the
    /// value once it was passed).
    seen: Vec<(u8, u32)>,
}

fn depth(v6: bool) -> usize {
    if v6 {
        PROTOCHAIN_DEPTH_V6
    } else {
        PROTOCHAIN_DEPTH_V4
    }
}

fn is_extension(v6: bool, p: u8) -> bool {
    let p = p as u32;
    p == AH || (v6 && EXT6.contains(&p))
}

impl Gen {
    /// At a `protochain` site: in the first pass, notes it; in the second,
    /// tests what the shared walk left.
    pub(super) fn protochain(
        &mut self,
        v6: bool,
        proto: u8,
        t: Label,
        f: Label,
    ) -> Result<(), ExprErrorKind> {
        let o = self.o;
        if o.linkpl.reg.is_some() {
            return Err(ExprErrorKind::ProtochainVariable);
        }
        // The link type must be able to say which version this is.
        o.linktype(if v6 { ETH_IP6 } else { ETH_IP })?;
        if let Some(sites) = &mut self.sites {
            sites.push(Site { v6, offs: o, proto });
            self.items.push(Item::Ja(f));
            return Ok(());
        }
        let Some(w) = self
            .walks
            .iter()
            .find(|w| w.v6 == v6 && w.offs == o)
            .cloned()
        else {
            return self.inline_walk(v6, proto, t, f);
        };
        let reject = self.reject;
        let not_seen = self.label();
        match w.seen.iter().find(|(p, _)| *p == proto) {
            Some(&(_, cell)) => {
                self.stmt(Op::LdMem, cell);
                self.jmp(JmpOp::Eq, Src::K, proto as u32, t, not_seen);
                self.items.push(Item::Place(not_seen));
                self.stmt(Op::LdMem, w.result);
            }
            None => {
                self.stmt(Op::LdMem, w.result);
                self.jmp(JmpOp::Eq, Src::K, proto as u32, t, not_seen);
                self.items.push(Item::Place(not_seen));
            }
        }
        self.jmp(JmpOp::Eq, Src::K, TRUNCATED, reject, f);
        Ok(())
    }

    /// The shared walks for `sites`: one per IPv6 offsets with more than
    /// one site (and per IPv4 offsets too with `share_v4`), with a cell for
    /// each extension header asked for; the others are inline.
    pub(super) fn plan_walks(&mut self, sites: &[Site]) -> Result<(), ExprErrorKind> {
        let share_v4 = self.share_v4;
        let shared = |s: &Site| {
            (s.v6 || share_v4)
                && sites
                    .iter()
                    .filter(|o| o.v6 == s.v6 && o.offs == s.offs)
                    .count()
                    > 1
        };
        for s in sites.iter().filter(|s| shared(s)) {
            let i = match self
                .walks
                .iter()
                .position(|w| w.v6 == s.v6 && w.offs == s.offs)
            {
                Some(i) => i,
                None => {
                    let result = self.keep()?;
                    self.walks.push(Walk {
                        v6: s.v6,
                        offs: s.offs,
                        result,
                        seen: Vec::new(),
                    });
                    self.walks.len() - 1
                }
            };
            if is_extension(s.v6, s.proto) && !self.walks[i].seen.iter().any(|(p, _)| *p == s.proto)
            {
                let cell = self.keep()?;
                self.walks[i].seen.push((s.proto, cell));
            }
        }
        Ok(())
    }

    /// libpcap's walk for one `protochain`, where it is: true as soon as
    /// the next-header value is `v`, false at the end of the chain; its
    /// loads past the packet stop the program, as libpcap's do. Step for
    /// step as libpcap's loop (including its AH step setting X to the AH
    /// length rather than adding it). A holds the next-header value, X the
    /// offset of the header from the network header.
    fn inline_walk(&mut self, v6: bool, v: u8, t: Label, f: Label) -> Result<(), ExprErrorKind> {
        let o = self.o;
        let net = o.net().k;
        let go = self.label();
        let c = o.linktype(if v6 { ETH_IP6 } else { ETH_IP })?;
        self.cond(&c, go, f);
        self.items.push(Item::Place(go));
        let nh = self.alloc()?;
        self.first_header(v6, net);
        for group in 0..depth(v6).div_ceil(RELAY) {
            let (rt, rf) = (self.label(), self.label());
            for _ in (group * RELAY)..((group + 1) * RELAY).min(depth(v6)) {
                let on = self.label();
                self.jmp(JmpOp::Eq, Src::K, v as u32, rt, on);
                self.items.push(Item::Place(on));
                self.step(v6, net, nh, rf, None, &[]);
            }
            self.relay([(rt, t), (rf, f)]);
        }
        self.scratch -= 1;
        self.items.push(Item::Ja(f));
        Ok(())
    }

    /// A: the first next-header value; X: the offset of the first header
    /// after the fixed one.
    fn first_header(&mut self, v6: bool, net: u32) {
        if v6 {
            self.stmt(Op::LdAbs(Size::B), net + 6);
            self.stmt(Op::LdxImm, 40);
        } else {
            self.stmt(Op::LdAbs(Size::B), net + 9);
            self.stmt(Op::LdxMsh, net);
        }
    }

    /// One step of the walk: past an extension header (IPv6) or AH to the
    /// next one; any other value goes to `end`. `check`: the cell holding
    /// how far a header may start, and where to go when it starts further.
    /// `seen`: extension headers to record in their cells as they pass (on
    /// the way from the class test to the advance).
    fn step(
        &mut self,
        v6: bool,
        net: u32,
        nh: u32,
        end: Label,
        check: Option<(u32, Label)>,
        seen: &[(u8, u32)],
    ) {
        let (next, ah) = (self.label(), self.label());
        let cell = |p: u32| seen.iter().find(|(s, _)| *s as u32 == p).map(|&(_, c)| c);
        let checked = |g: &mut Gen| {
            if let Some((lim, short)) = check {
                let ok = g.label();
                g.stmt(Op::LdMem, lim);
                g.jmp(JmpOp::Ge, Src::X, 0, ok, short);
                g.items.push(Item::Place(ok));
            }
        };
        // Recorded AH: its cell written just before the AH advance.
        let ah_rec = cell(AH).map(|c| (self.label(), c));
        let ah_in = ah_rec.map_or(ah, |(l, _)| l);
        if v6 {
            let ext = self.label();
            let recs: Vec<(u32, Label, u32)> = EXT6
                .iter()
                .filter_map(|&h| cell(h).map(|c| (h, self.label(), c)))
                .collect();
            for hdr in EXT6 {
                let miss = self.label();
                let to = recs.iter().find(|r| r.0 == hdr).map_or(ext, |r| r.1);
                self.jmp(JmpOp::Eq, Src::K, hdr, to, miss);
                self.items.push(Item::Place(miss));
            }
            self.jmp(JmpOp::Eq, Src::K, AH, ah_in, end);
            // Each recorded header: its cell, then the advance (the last
            // one falls into it).
            for (i, &(_, label, c)) in recs.iter().enumerate() {
                self.items.push(Item::Place(label));
                self.stmt(Op::St, c);
                if i + 1 < recs.len() {
                    self.items.push(Item::Ja(ext));
                }
            }
            self.items.push(Item::Place(ext));
            checked(self);
            self.stmt(Op::LdInd(Size::B), net);
            self.stmt(Op::St, nh);
            self.stmt(Op::LdInd(Size::B), net + 1);
            self.stmt(Op::Alu(AluOp::Lsh, Src::K), 3);
            self.stmt(Op::Alu(AluOp::Add, Src::K), 8);
            self.stmt(Op::Alu(AluOp::Add, Src::X), 0);
            self.stmt(Op::Tax, 0);
            self.stmt(Op::LdMem, nh);
            self.items.push(Item::Ja(next));
        } else {
            self.jmp(JmpOp::Eq, Src::K, AH, ah_in, end);
        }
        if let Some((label, c)) = ah_rec {
            self.items.push(Item::Place(label));
            self.stmt(Op::St, c);
        }
        self.items.push(Item::Place(ah));
        checked(self);
        self.stmt(Op::LdInd(Size::B), net);
        self.stmt(Op::St, nh);
        self.stmt(Op::LdInd(Size::B), net + 1);
        self.stmt(Op::Alu(AluOp::Add, Src::K), 2);
        self.stmt(Op::Alu(AluOp::Lsh, Src::K), 2);
        self.stmt(Op::Tax, 0);
        self.stmt(Op::LdMem, nh);
        self.items.push(Item::Place(next));
    }

    /// After a group of steps, unconditional jumps on to the walk's far
    /// destinations: the steps' conditional jumps (8-bit offsets) reach
    /// these instead of needing a trampoline each.
    fn relay(&mut self, hops: [(Label, Label); 2]) {
        let skip = self.label();
        self.items.push(Item::Ja(skip));
        for (here, there) in hops {
            self.items.push(Item::Place(here));
            self.items.push(Item::Ja(there));
        }
        self.items.push(Item::Place(skip));
    }

    /// A scratch cell kept for the rest of the program.
    fn keep(&mut self) -> Result<u32, ExprErrorKind> {
        if self.scratch + self.kept >= 16 {
            return Err(ExprErrorKind::TooComplex);
        }
        self.kept += 1;
        Ok(16 - self.kept)
    }

    /// A condition whose every load is first checked against the frame's
    /// length (too short: `short`), so that it never stops the program.
    fn cond_in_frame(&mut self, c: &Cond, t: Label, f: Label, short: Label) {
        match c {
            Cond::Not(c) => self.cond_in_frame(c, f, t, short),
            Cond::And(v) | Cond::Or(v) => {
                let all = matches!(c, Cond::And(_));
                let Some((last, init)) = v.split_last() else {
                    self.items.push(Item::Ja(if all { t } else { f }));
                    return;
                };
                for x in init {
                    let next = self.label();
                    if all {
                        self.cond_in_frame(x, next, f, short);
                    } else {
                        self.cond_in_frame(x, t, next, short);
                    }
                    self.items.push(Item::Place(next));
                }
                self.cond_in_frame(last, t, f, short);
            }
            Cond::Test(l, _) => {
                let end = match *l {
                    Load::Abs(s, off) => Some(off + s.bytes()),
                    Load::Len => None,
                    _ => unreachable!("protochain sites have constant offsets"),
                };
                if let Some(end) = end {
                    let ok = self.label();
                    self.stmt(Op::LdLen, 0);
                    self.jmp(JmpOp::Ge, Src::K, end, ok, short);
                    self.items.push(Item::Place(ok));
                }
                self.cond(c, t, f);
            }
        }
    }

    /// Emits every walk (at the start of the program).
    pub(super) fn emit_walks(&mut self) -> Result<(), ExprErrorKind> {
        for w in self.walks.clone() {
            self.walk(&w)?;
        }
        Ok(())
    }

    /// One shared walk, to the end of the chain, every load checked.
    fn walk(&mut self, w: &Walk) -> Result<(), ExprErrorKind> {
        let net = w.offs.net().k;
        let (lim, nh) = (self.alloc()?, self.alloc()?);
        for &(p, cell) in &w.seen {
            self.stmt(Op::LdImm, p as u32 + 1);
            self.stmt(Op::St, cell);
        }
        let (go, other, short, end, done) = (
            self.label(),
            self.label(),
            self.label(),
            self.label(),
            self.label(),
        );
        let c = w.offs.linktype(if w.v6 { ETH_IP6 } else { ETH_IP })?;
        self.cond_in_frame(&c, go, other, short);
        self.items.push(Item::Place(go));
        // The first next-header field (and, for IPv4, the header length).
        let first_ok = self.label();
        self.stmt(Op::LdLen, 0);
        self.jmp(
            JmpOp::Ge,
            Src::K,
            net + if w.v6 { 7 } else { 10 },
            first_ok,
            short,
        );
        self.items.push(Item::Place(first_ok));
        // lim = len - (net + 2): a header at X can be read when X <= lim.
        self.stmt(Op::Alu(AluOp::Sub, Src::K), net + 2);
        self.stmt(Op::St, lim);
        self.first_header(w.v6, net);
        let d = depth(w.v6);
        for group in 0..d.div_ceil(RELAY) {
            let (rend, rshort) = (self.label(), self.label());
            for _ in (group * RELAY)..((group + 1) * RELAY).min(d) {
                self.step(w.v6, net, nh, rend, Some((lim, rshort)), &w.seen);
            }
            self.relay([(rend, end), (rshort, short)]);
        }
        // Still going past the depth: no match (libpcap would go on).
        self.stmt(Op::LdImm, DEEPER);
        self.items.push(Item::Place(end));
        self.stmt(Op::St, w.result);
        self.items.push(Item::Ja(done));
        for (label, code) in [(other, OTHER_VERSION), (short, TRUNCATED)] {
            self.items.push(Item::Place(label));
            self.stmt(Op::LdImm, code);
            self.stmt(Op::St, w.result);
            self.items.push(Item::Ja(done));
        }
        self.items.push(Item::Place(done));
        self.scratch -= 2;
        Ok(())
    }
}
