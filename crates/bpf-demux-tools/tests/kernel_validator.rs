//! The validator against the running kernel: for every program here, our
//! `Program::validate` accepts exactly when the kernel's `SO_ATTACH_FILTER`
//! accepts (checked live on an unprivileged UDP socket, which runs the same
//! `bpf_check_classic`). The hand-written list breaks every rule at least
//! once; a seeded generator adds thousands of near-valid programs.

use bpf_demux::capture::sys::kernel_accepts;
use bpf_demux::cbpf::text::parse_asm;
use bpf_demux::cbpf::{Insn, Program};
use std::collections::BTreeSet;

const AD: u32 = 0xfffff000;

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn::new(code, jt, jf, k)
}

/// (name, program). Written from the rules in cbpf-semantics.md.
fn handwritten() -> Vec<(String, Vec<Insn>)> {
    let ret0 = ins(0x06, 0, 0, 0);
    let mut v: Vec<(&str, Vec<Insn>)> = vec![
        ("empty", vec![]),
        ("ret-only", vec![ret0]),
        ("ret-a", vec![ins(0x16, 0, 0, 0)]),
        ("ret-x-bad-opcode", vec![ins(0x0e, 0, 0, 0)]),
        ("ld-h-imm-bad-opcode", vec![ins(0x08, 0, 0, 1), ret0]),
        ("ldx-w-abs-bad-opcode", vec![ins(0x21, 0, 0, 1), ret0]),
        ("high-bits-bad-opcode", vec![ins(0x0106, 0, 0, 0)]),
        ("alu-0xb-bad-opcode", vec![ins(0xb4, 0, 0, 1), ret0]),
        ("jmp-0x50-bad-opcode", vec![ins(0x55, 0, 0, 1), ret0]),
        ("neg-x-bad-opcode", vec![ins(0x8c, 0, 0, 0), ret0]),
        ("misc-other-bad-opcode", vec![ins(0x0f, 0, 0, 0), ret0]),
        ("div-k-0", vec![ins(0x34, 0, 0, 0), ret0]),
        ("mod-k-0", vec![ins(0x94, 0, 0, 0), ret0]),
        ("div-k-1", vec![ins(0x34, 0, 0, 1), ret0]),
        ("div-x", vec![ins(0x3c, 0, 0, 0), ret0]),
        ("lsh-32", vec![ins(0x64, 0, 0, 32), ret0]),
        ("rsh-33", vec![ins(0x74, 0, 0, 33), ret0]),
        ("lsh-31", vec![ins(0x64, 0, 0, 31), ret0]),
        ("lsh-x", vec![ins(0x6c, 0, 0, 0), ret0]),
        ("st-16", vec![ins(0x02, 0, 0, 16), ret0]),
        ("st-15", vec![ins(0x02, 0, 0, 15), ret0]),
        ("stx-99", vec![ins(0x03, 0, 0, 99), ret0]),
        ("ld-mem-16", vec![ins(0x60, 0, 0, 16), ret0]),
        ("ldx-mem-16", vec![ins(0x61, 0, 0, 16), ret0]),
        ("ja-0", vec![ins(0x05, 0, 0, 0), ret0]),
        ("ja-past-end", vec![ins(0x05, 0, 0, 1), ret0]),
        (
            "ja-backward",
            vec![ret0, ins(0x05, 0, 0, 0xffff_fffe), ret0],
        ),
        ("ja-huge", vec![ins(0x05, 0, 0, 0x7fff_ffff), ret0]),
        ("jeq-jt-past-end", vec![ins(0x15, 1, 0, 0), ret0]),
        ("jeq-jf-past-end", vec![ins(0x15, 0, 1, 0), ret0]),
        ("jeq-to-last", vec![ins(0x15, 1, 0, 0), ret0, ret0]),
        ("jset-x-past-end", vec![ins(0x4d, 0, 7, 0), ret0]),
        ("anc-protocol", vec![ins(0x20, 0, 0, AD), ret0]),
        ("anc-vlan-tpid-b", vec![ins(0x30, 0, 0, AD + 60), ret0]),
        ("anc-64-unknown", vec![ins(0x20, 0, 0, AD + 64), ret0]),
        ("anc-1-unknown", vec![ins(0x20, 0, 0, AD + 1), ret0]),
        (
            "anc-ffffffff-unknown",
            vec![ins(0x28, 0, 0, u32::MAX), ret0],
        ),
        ("ind-in-anc-area-ok", vec![ins(0x40, 0, 0, AD + 1), ret0]),
        ("msh-in-anc-area-ok", vec![ins(0xb1, 0, 0, AD + 1), ret0]),
        (
            "net-off-abs",
            vec![ins(0x30, 0, 0, (-0x100000i32) as u32), ret0],
        ),
        (
            "below-ll-off-abs",
            vec![ins(0x30, 0, 0, (-0x300000i32) as u32), ret0],
        ),
        ("no-ret-at-end", vec![ret0, ins(0x00, 0, 0, 0)]),
        ("ja-at-end", vec![ins(0x05, 0, 0, 0)]),
        ("scratch-read-unwritten", vec![ins(0x60, 0, 0, 0), ret0]),
        (
            "scratch-written-read",
            vec![ins(0x02, 0, 0, 3), ins(0x60, 0, 0, 3), ret0],
        ),
        (
            "scratch-other-cell",
            vec![ins(0x02, 0, 0, 3), ins(0x61, 0, 0, 4), ret0],
        ),
        (
            "scratch-one-path-only",
            vec![
                ins(0x15, 0, 1, 1),
                ins(0x02, 0, 0, 0),
                ins(0x60, 0, 0, 0),
                ret0,
            ],
        ),
        (
            "scratch-both-paths",
            vec![
                ins(0x02, 0, 0, 0),
                ins(0x15, 0, 1, 1),
                ins(0x03, 0, 0, 0),
                ins(0x60, 0, 0, 0),
                ret0,
            ],
        ),
        (
            // The kernel carries the written set straight past a `ret`.
            "scratch-after-ret-inherits",
            vec![ins(0x02, 0, 0, 0), ret0, ins(0x60, 0, 0, 0), ret0],
        ),
        (
            "scratch-after-jump-unreachable",
            vec![
                ins(0x02, 0, 0, 0),
                ins(0x05, 0, 0, 1),
                ins(0x60, 0, 0, 0),
                ret0,
            ],
        ),
        ("ldx-len", vec![ins(0x81, 0, 0, 0), ret0]),
        ("ld-len", vec![ins(0x80, 0, 0, 0), ret0]),
        (
            "tax-txa",
            vec![ins(0x07, 0, 0, 0), ins(0x87, 0, 0, 0), ret0],
        ),
        ("neg", vec![ins(0x84, 0, 0, 0), ret0]),
        ("xor-x-anc", vec![ins(0x20, 0, 0, AD + 40), ret0]),
        ("too-large-4097", vec![ret0; 4097]),
        ("max-4096", vec![ret0; 4096]),
    ];
    let mut out: Vec<(String, Vec<Insn>)> = v.drain(..).map(|(n, p)| (n.to_owned(), p)).collect();
    // A few written in bpf_asm, to cover the reader too.
    for (name, src) in [
        ("asm-tcp-syn", "ldh [12]\njneq #0x800, drop\nldb [23]\njneq #6, drop\nldxb 4*([14]&0xf)\nldb [x + 27]\njset #2, keep, drop\nkeep: ret #-1\ndrop: ret #0\n"),
        ("asm-vlan", "ld vlan_avail\njeq #1, t, drop\nt: ld vlan_tci\nand #0xfff\njeq #10, keep, drop\nkeep: ret #65535\ndrop: ret #0\n"),
        ("asm-scratch", "ld #5\nst M[15]\nldx M[15]\ntxa\nret a\n"),
        ("asm-mark", "ld mark\nret a\n"),
        ("asm-ret-x", "ret x\n"),
    ] {
        out.push((name.to_owned(), parse_asm(src).unwrap()));
    }
    out
}

#[test]
fn handwritten_programs_agree_with_the_kernel_and_break_every_rule() {
    let list = handwritten();
    assert!(list.len() >= 60, "only {} programs", list.len());
    let mut rules = BTreeSet::new();
    let mut mismatches = Vec::new();
    for (name, p) in &list {
        let ours = Program::validate(p);
        let kernel = kernel_accepts(p);
        if let Err(e) = &ours {
            rules.insert(e.rule());
        }
        if let Err(e) = &kernel {
            assert_eq!(
                e.raw_os_error(),
                Some(libc_einval()),
                "{name}: kernel said {e}"
            );
        }
        if ours.is_ok() != kernel.is_ok() {
            mismatches.push(format!("{name}: ours {ours:?}, kernel {kernel:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "disagreements:\n{}",
        mismatches.join("\n")
    );
    let all = [
        "empty",
        "too-large",
        "bad-opcode",
        "div-by-zero",
        "shift-too-far",
        "scratch-index",
        "backward-jump",
        "jump-out-of-range",
        "unknown-extension",
        "no-final-return",
        "scratch-uninit",
    ];
    for r in all {
        assert!(
            rules.contains(r),
            "rule {r} never rejected; rejected: {rules:?}"
        );
    }
}

fn libc_einval() -> i32 {
    22
}

/// xorshift64*, seeded: the same programs every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn thousands_of_generated_programs_agree_with_the_kernel() {
    let allowed: Vec<u16> = bpf_demux::cbpf::opcode::allowed_codes().collect();
    let ks = [
        0u32,
        1,
        2,
        7,
        15,
        16,
        17,
        31,
        32,
        33,
        255,
        0xffff_ffff,
        AD,
        AD + 4,
        AD + 40,
        AD + 60,
        AD + 64,
        AD + 2,
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut disagreements = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..5000 {
        let len = 1 + rng.below(10) as usize;
        let mut p = Vec::with_capacity(len);
        for pc in 0..len {
            let code = if rng.below(10) == 0 {
                rng.below(0x100) as u16
            } else {
                allowed[rng.below(allowed.len() as u64) as usize]
            };
            let k = if rng.below(4) == 0 {
                rng.next() as u32
            } else {
                ks[rng.below(ks.len() as u64) as usize]
            };
            let room = (len - pc) as u64;
            let jt = rng.below(room + 1) as u8;
            let jf = rng.below(room + 1) as u8;
            let k = if code == 0x05 && rng.below(2) == 0 {
                rng.below(room + 1) as u32
            } else {
                k
            };
            p.push(Insn::new(code, jt, jf, k));
        }
        if rng.below(5) != 0 {
            let last = p.len() - 1;
            p[last] = Insn::new(
                if rng.below(2) == 0 { 0x06 } else { 0x16 },
                0,
                0,
                rng.next() as u32,
            );
        }
        let ours = Program::validate(&p);
        let kernel = kernel_accepts(&p);
        if ours.is_ok() {
            accepted += 1
        } else {
            refused += 1
        }
        if ours.is_ok() != kernel.is_ok() {
            disagreements.push(format!(
                "case {case}: {p:?}: ours {ours:?}, kernel {kernel:?}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements, first:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(5)].join("\n")
    );
    // The generator must exercise both answers.
    assert!(
        accepted > 300 && refused > 300,
        "accepted {accepted}, refused {refused}"
    );
}

/// Every 16-bit `code` value, with operands that make every opcode the
/// kernel knows valid (`st M[1]` first, so `ld M[1]` is initialized; k = 1,
/// so division, shifts, scratch indices and `ja` to the final `ret` are all
/// in range; jt = jf = 0): only the opcode decides. Linux indexes its table
/// with the whole `u16`, so a valid low byte under high bits is refused.
#[test]
fn every_sixteen_bit_code_is_judged_as_the_kernel_judges_it() {
    let mut disagreements = Vec::new();
    let mut accepted = 0;
    for code in 0..=u16::MAX {
        let p = [
            ins(0x02, 0, 0, 1),
            ins(code, 0, 0, 1),
            ins(0x06, 0, 0, 0),
            ins(0x06, 0, 0, 0),
        ];
        let ours = Program::validate(&p);
        let kernel = kernel_accepts(&p);
        if let Err(e) = &kernel {
            assert_eq!(e.raw_os_error(), Some(libc_einval()), "{code:#06x}: {e}");
        }
        accepted += kernel.is_ok() as usize;
        if ours.is_ok() != kernel.is_ok() {
            disagreements.push(format!("{code:#06x}: ours {ours:?}, kernel {kernel:?}"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of 65536 codes judged unlike the kernel, first:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(8)].join("\n")
    );
    // The kernel's table has 49 entries (net/core/filter.c, codes[]).
    assert_eq!(accepted, 49, "the kernel accepted {accepted} codes");
}
