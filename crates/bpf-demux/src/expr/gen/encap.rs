//! Code for the encapsulations that need statements, not just tests: the
//! first `vlan` on a live socket and `geneve`.

use super::*;

impl Gen {
    /// The first `vlan` on a live socket (libpcap's gen_vlan_bpf_extensions):
    /// the tag is either stripped into metadata (`vlan_avail`, `vlan_tci`)
    /// or, when not stripped, still in the frame; a kept scratch cell holds
    /// 0 or 4 and becomes the variable part of every later offset.
    pub(super) fn live_vlan(
        &mut self,
        id: Option<u32>,
        t: Label,
        f: Label,
    ) -> Result<(), ExprErrorKind> {
        use crate::cbpf::program::{Anc, SKF_AD_OFF};
        if id.is_some_and(|v| v > 0x0fff) {
            return Err(ExprErrorKind::VlanRange(id.unwrap()));
        }
        if self.scratch + self.kept >= 16 {
            return Err(ExprErrorKind::TooComplex);
        }
        self.kept += 1;
        let reg = 16 - self.kept;
        let o = self.o;
        let present = SKF_AD_OFF + Anc::VlanTagPresent.offset();
        self.stmt(Op::LdImm, 0);
        self.stmt(Op::St, reg);
        let (tagged, in_frame) = (self.label(), self.label());
        self.stmt(Op::LdAbs(Size::B), present);
        self.jmp(JmpOp::Eq, Src::K, 1, tagged, in_frame);
        self.items.push(Item::Place(in_frame));
        self.stmt(Op::LdImm, 4);
        self.stmt(Op::St, reg);
        let tpid = or(vec![
            o.linktype(0x8100)?,
            o.linktype(0x88a8)?,
            o.linktype(0x9100)?,
        ]);
        self.cond(&tpid, tagged, f);
        self.items.push(Item::Place(tagged));
        match id {
            None => self.items.push(Item::Ja(t)),
            Some(v) => {
                let (meta, bytes, test) = (self.label(), self.label(), self.label());
                self.stmt(Op::LdAbs(Size::B), present);
                self.jmp(JmpOp::Eq, Src::K, 1, meta, bytes);
                self.items.push(Item::Place(meta));
                self.stmt(Op::LdAbs(Size::B), SKF_AD_OFF + Anc::VlanTag.offset());
                self.items.push(Item::Ja(test));
                self.items.push(Item::Place(bytes));
                self.stmt(Op::LdAbs(Size::H), o.net().k);
                self.items.push(Item::Place(test));
                self.stmt(Op::Alu(AluOp::And, Src::K), 0x0fff);
                self.jmp(JmpOp::Eq, Src::K, v, t, f);
            }
        }
        self.o.linktype.reg = Some(reg);
        self.o.linkpl.reg = Some(reg);
        self.o.vlans += 1;
        Ok(())
    }

    /// libpcap's gen_geneve: UDP to port 6081 over IPv4 or IPv6 with a
    /// Geneve header (version 0, the VNI if given), then kept scratch cells
    /// with the offsets of the encapsulated frame: its protocol type (or, for
    /// an encapsulated Ethernet frame, its EtherType), link header and payload.
    pub(super) fn geneve(
        &mut self,
        vni: Option<u32>,
        t: Label,
        f: Label,
    ) -> Result<(), ExprErrorKind> {
        const PORT: u32 = 6081;
        const TEB: u32 = 0x6558;
        if vni.is_some_and(|v| v > 0xffffff) {
            return Err(ExprErrorKind::GeneveRange(vni.unwrap()));
        }
        if self.scratch + self.kept + 3 > 16 {
            return Err(ExprErrorKind::TooComplex);
        }
        let o = self.o;
        let net = o.net();
        let tr = |size, off: u32| Load::Transport {
            size,
            iphdr: net,
            off: net.k + off,
        };
        let mut c4 = vec![
            o.linktype(ETH_IP)?,
            b(net + 9, Test::Eq(17)),
            o.not_fragment(),
            Cond::Test(tr(Size::H, 2), Test::Eq(PORT)),
            Cond::Test(tr(Size::B, 8), Test::MaskEq(0xc0, 0)),
        ];
        let mut c6 = vec![
            o.linktype(ETH_IP6)?,
            b(net + 6, Test::Eq(17)),
            h(net + 42, Test::Eq(PORT)),
            b(net + 48, Test::MaskEq(0xc0, 0)),
        ];
        if let Some(v) = vni {
            c4.push(Cond::Test(
                tr(Size::W, 12),
                Test::MaskEq(0xffffff00, v << 8),
            ));
            c6.push(Cond::Test(
                (net + 52).load(Size::W),
                Test::MaskEq(0xffffff00, v << 8),
            ));
        }
        let (ok4, try6, ok6, offs) = (self.label(), self.label(), self.label(), self.label());
        self.cond(&and(c4), ok4, try6);
        // A = the IPv4 header length (X), plus the variable part.
        self.items.push(Item::Place(ok4));
        self.load_x(tr(Size::B, 0));
        self.stmt(Op::Txa, 0);
        self.items.push(Item::Ja(offs));
        self.items.push(Item::Place(try6));
        self.cond(&and(c6), ok6, f);
        // A = 40, plus the variable part.
        self.items.push(Item::Place(ok6));
        self.stmt(Op::LdImm, 40);
        if let Some(r) = net.reg {
            self.stmt(Op::LdxMem, r);
            self.stmt(Op::Alu(AluOp::Add, Src::X), 0);
        }
        self.items.push(Item::Place(offs));
        self.kept += 3;
        let (lt, lh, pl) = (16 - self.kept + 2, 16 - self.kept + 1, 16 - self.kept);
        let add = |g: &mut Gen, k: u32| g.stmt(Op::Alu(AluOp::Add, Src::K), k);
        add(self, net.k + 8); // A = the Geneve header
        self.stmt(Op::Tax, 0);
        add(self, 2);
        self.stmt(Op::St, lt); // protocol type
        self.stmt(Op::LdInd(Size::B), 0);
        self.stmt(Op::Alu(AluOp::And, Src::K), 0x3f);
        self.stmt(Op::Alu(AluOp::Mul, Src::K), 4);
        add(self, 8);
        self.stmt(Op::Alu(AluOp::Add, Src::X), 0);
        self.stmt(Op::St, lh); // the encapsulated frame
        self.stmt(Op::LdInd(Size::H), 2);
        self.stmt(Op::LdxMem, lh);
        let (teb, store) = (self.label(), self.label());
        self.jmp(JmpOp::Eq, Src::K, TEB, teb, store);
        self.items.push(Item::Place(teb));
        self.stmt(Op::Txa, 0);
        add(self, 12);
        self.stmt(Op::St, lt); // its EtherType
        add(self, 2);
        self.stmt(Op::Tax, 0);
        self.items.push(Item::Place(store));
        self.stmt(Op::Stx, pl); // its payload
        self.items.push(Item::Ja(t));
        let var = |r| Pos { reg: Some(r), k: 0 };
        self.o = Offs {
            linkhdr: var(lh),
            linktype: var(lt),
            linkpl: var(pl),
            nl: 0,
            nosnap: 3,
            geneve: true,
            // The encapsulated frame is Ethernet.
            link: LinkType::Ethernet,
            ..o
        };
        Ok(())
    }
}
