//! One test per LoongArch operand form.

use crate::arch::Arch;
use crate::arg::testkit::*;
use crate::arg::{decode_args, RegClass};

const L: Arch = Arch::Loongarch64;

#[test]
fn numbered_and_abi_registers() {
    assert_decodes(
        L,
        &[
            ("8@$r3", value(L, "r3")),
            ("-4@$r4", value(L, "r4")),
            ("8@$r31", value(L, "r31")),
            ("8@$zero", value(L, "r0")),
            ("8@$ra", value(L, "r1")),
            ("8@$tp", value(L, "r2")),
            ("8@$sp", value(L, "r3")),
            ("8@$a0", value(L, "r4")),
            ("8@$a7", value(L, "r11")),
            ("8@$v1", value(L, "r5")),
            ("8@$t0", value(L, "r12")),
            ("8@$t8", value(L, "r20")),
            ("8@$r21", value(L, "r21")),
            ("8@$fp", value(L, "r22")),
            ("8@$s9", value(L, "r22")),
            ("8@$s0", value(L, "r23")),
            ("8@$s8", value(L, "r31")),
        ],
    );
}

#[test]
fn floating_point_registers() {
    assert_decodes(
        L,
        &[
            ("8f@$f0", fp(L, "f0")),
            ("8f@$fa7", fp(L, "f7")),
            ("8f@$fv1", fp(L, "f1")),
            ("8f@$ft0", fp(L, "f8")),
            ("8f@$ft15", fp(L, "f23")),
            ("8f@$fs0", fp(L, "f24")),
            ("8f@$fs7", fp(L, "f31")),
        ],
    );
}

#[test]
fn immediates_are_bare() {
    assert_bare_immediates(L);
}

#[test]
fn memory_forms() {
    assert_decodes(
        L,
        &[
            ("-4@$r3,8", deref(L, "r3", 8)),
            ("8@$r22,-24", deref(L, "r22", -24)),
            ("8@$r3,0", deref(L, "r3", 0)),
            ("8@$r12,$r13", sib(L, "r12", "r13", 1, 0)),
            ("8@$sp, 8", deref(L, "r3", 8)),
            ("8@8($r3)", deref(L, "r3", 8)),
            ("8@($a0)", deref(L, "r4", 0)),
        ],
    );
    // clang's `$sp, 8` keeps its space inside a note's argument string.
    let args = decode_args(L, "-4@$a0 8@$sp, 8 4@5");
    assert_eq!(args.len(), 3);
    assert_eq!(args[1].text, "8@$sp, 8");
    assert_eq!(
        args[1].decoded.as_ref().unwrap().location,
        deref(L, "r3", 8)
    );
}

#[test]
fn pt_regs_offsets_match_user_pt_regs() {
    assert_eq!(offset(L, "r0"), Some(0));
    assert_eq!(offset(L, "r3"), Some(24));
    assert_eq!(offset(L, "r31"), Some(248));
    assert_eq!(offset(L, "pc"), Some(264));
    assert_eq!(reg(L, "pc").def().class, RegClass::Ip);
    assert_eq!(offset(L, "f0"), None);
}

#[test]
fn garbage_is_a_clear_error() {
    assert_unknown(L, &["8@$r32", "8@$t9", "8@$s10", "8@$f32", "8@$pc", "8@$x"]);
    assert_rejects(
        L,
        &[
            "8@r3",
            "8@$r0,8",
            "8@$r3,",
            "8@,8",
            "8@$r3,$f0",
            "8@$r3,8,9",
            "8@$r12,%pc_lo12(sym)",
            "8@$r3,sym",
            "8@[$r3, 8]",
            "8@8($r3",
        ],
    );
}

#[test]
fn text_round_trips() {
    assert_round_trips(
        L,
        &[
            ("-4@$r3,8", "-4@$r3,8"),
            ("8@$sp, 8", "8@$r3,8"),
            ("8@8($fp)", "8@$r22,8"),
            ("8@$r12,$r13", "8@$r12,$r13"),
            ("8@$a0", "8@$r4"),
            ("4@-5", "4@-5"),
            ("8f@$fa0", "8f@$f0"),
        ],
    );
}
