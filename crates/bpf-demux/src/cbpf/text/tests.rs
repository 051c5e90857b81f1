use super::*;
use crate::cbpf::opcode::Insn;

#[test]
fn numbers_in_every_base() {
    assert_eq!(parse_int("0x1f"), Some(31));
    assert_eq!(parse_int("017"), Some(15));
    assert_eq!(parse_int("0b101"), Some(5));
    assert_eq!(parse_int("-4096"), Some(-4096));
    assert_eq!(parse_int("4294967296"), None);
    assert_eq!(parse_k("-1"), Some(u32::MAX));
    assert_eq!(parse_int("12a"), None);
}

#[test]
fn asm_extensions_and_pseudo_jumps() {
    let p =
        parse_asm("ld vlan_tci\nldb #vlan_avail\nld proto\njlt #10, out\nret a\nout: ret #-1\n")
            .unwrap();
    assert_eq!(p[0], Insn::stmt(0x20, 0xfffff000 + 44));
    assert_eq!(p[1], Insn::stmt(0x30, 0xfffff000 + 48));
    assert_eq!(p[2], Insn::stmt(0x20, 0xfffff000));
    // jlt k, L == jge k with the false branch to L.
    assert_eq!(p[3], Insn::new(0x35, 0, 1, 10));
    assert_eq!(p[4], Insn::stmt(0x16, 0));
    assert_eq!(p[5], Insn::stmt(0x06, u32::MAX));
}

#[test]
fn asm_ret_x_is_read_for_the_validator_to_refuse() {
    let p = parse_asm("ret x").unwrap();
    assert_eq!(p[0].code, 0x0e);
}

#[test]
fn line_col_counts_from_one() {
    assert_eq!(line_col(b"ab\ncd", 4), (2, 2));
    assert_eq!(line_col(b"ab", 0), (1, 1));
}
