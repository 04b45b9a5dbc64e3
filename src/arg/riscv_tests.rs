//! One test per RISC-V operand form, for riscv64 and riscv32.

use crate::arch::Arch;
use crate::arg::testkit::*;
use crate::arg::RegClass;

const R: Arch = Arch::Riscv64;

#[test]
fn abi_names_and_numbers() {
    assert_decodes(
        R,
        &[
            ("-4@a0", value(R, "a0")),
            ("8@a7", value(R, "a7")),
            ("8@x10", value(R, "a0")),
            ("8@s0", value(R, "s0")),
            ("8@fp", value(R, "s0")),
            ("8@x8", value(R, "s0")),
            ("8@s11", value(R, "s11")),
            ("8@x27", value(R, "s11")),
            ("8@t6", value(R, "t6")),
            ("8@x31", value(R, "t6")),
            ("8@t2", value(R, "t2")),
            ("8@x7", value(R, "t2")),
            ("8@ra", value(R, "ra")),
            ("8@sp", value(R, "sp")),
            ("8@gp", value(R, "gp")),
            ("8@tp", value(R, "tp")),
            ("8@zero", value(R, "zero")),
            ("8@x0", value(R, "zero")),
        ],
    );
}

#[test]
fn immediates_are_bare() {
    assert_bare_immediates(R);
}

#[test]
fn memory_forms() {
    assert_decodes(
        R,
        &[
            ("-8@-88(s0)", deref(R, "s0", -88)),
            ("8@8(sp)", deref(R, "sp", 8)),
            ("8@(a0)", deref(R, "a0", 0)),
            ("4@-12+4(x8)", deref(R, "s0", -8)),
            ("4@16(ra)", deref(R, "ra", 16)),
        ],
    );
}

#[test]
fn floating_point_registers() {
    assert_decodes(
        R,
        &[
            ("8f@fa0", fp(R, "fa0")),
            ("8f@f10", fp(R, "fa0")),
            ("8f@ft0", fp(R, "ft0")),
            ("8f@f0", fp(R, "ft0")),
            ("8f@ft8", fp(R, "ft8")),
            ("8f@f28", fp(R, "ft8")),
            ("8f@fs0", fp(R, "fs0")),
            ("8f@f8", fp(R, "fs0")),
            ("8f@fs2", fp(R, "fs2")),
            ("8f@f18", fp(R, "fs2")),
            ("8f@f31", fp(R, "ft11")),
        ],
    );
}

#[test]
fn pt_regs_offsets_match_the_kernel_layout() {
    assert_eq!(offset(R, "pc"), Some(0));
    assert_eq!(reg(R, "pc").def().class, RegClass::Ip);
    assert_eq!(offset(R, "ra"), Some(8));
    assert_eq!(offset(R, "sp"), Some(16));
    assert_eq!(offset(R, "s0"), Some(64));
    assert_eq!(offset(R, "a0"), Some(80));
    assert_eq!(offset(R, "a7"), Some(136));
    assert_eq!(offset(R, "s2"), Some(144));
    assert_eq!(offset(R, "t6"), Some(248));
    assert_eq!(offset(R, "zero"), None);
    assert_eq!(offset(R, "fa0"), None);
    let r32 = Arch::Riscv32;
    assert_eq!(offset(r32, "ra"), Some(4));
    assert_eq!(offset(r32, "a0"), Some(40));
    assert_eq!(offset(r32, "t6"), Some(124));
    assert_eq!(loc(r32, "-4@-20(s0)"), deref(r32, "s0", -20));
}

#[test]
fn garbage_is_a_clear_error() {
    assert_unknown(
        R,
        &[
            "8@x32", "8@a8", "8@s12", "8@t7", "8@f32", "8@pc", "8@%a0", "8@x01",
        ],
    );
    assert_rejects(
        R,
        &[
            "8@8(zero)",
            "8@8(fa0)",
            "8@8(a0",
            "8@8)a0(",
            "8@()",
            "8@8(a0,a1)",
            "8@sym(a0)",
            "8@%lo(sym)(a0)",
            "8@$5",
            "8@5a",
            "8@[a0]",
        ],
    );
}

#[test]
fn text_round_trips() {
    assert_round_trips(
        R,
        &[
            ("-8@-88(s0)", "-8@-88(s0)"),
            ("8@x10", "8@a0"),
            ("8@fp", "8@s0"),
            ("8@(sp)", "8@(sp)"),
            ("4@-5", "4@-5"),
            ("8f@f10", "8f@fa0"),
        ],
    );
}
