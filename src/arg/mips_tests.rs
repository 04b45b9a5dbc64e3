//! One test per MIPS operand form.

use crate::arch::Arch;
use crate::arg::testkit::*;
use crate::arg::{Location, RegClass};

const M: Arch = Arch::Mips;

#[test]
fn numbered_and_abi_registers() {
    assert_decodes(
        M,
        &[
            ("-4@$2", value(M, "r2")),
            ("8@$0", value(M, "r0")),
            ("8@$31", value(M, "r31")),
            ("8@$zero", value(M, "r0")),
            ("8@$at", value(M, "r1")),
            ("8@$v0", value(M, "r2")),
            ("8@$v1", value(M, "r3")),
            ("8@$a0", value(M, "r4")),
            ("8@$a7", value(M, "r11")),
            ("8@$t4", value(M, "r12")),
            ("8@$t7", value(M, "r15")),
            ("8@$s0", value(M, "r16")),
            ("8@$s7", value(M, "r23")),
            ("8@$t8", value(M, "r24")),
            ("8@$t9", value(M, "r25")),
            ("8@$k0", value(M, "r26")),
            ("8@$gp", value(M, "r28")),
            ("8@$sp", value(M, "r29")),
            ("8@$fp", value(M, "r30")),
            ("8@$s8", value(M, "r30")),
            ("8@$ra", value(M, "r31")),
            ("8f@$f0", fp(M, "f0")),
            ("8f@$f31", fp(M, "f31")),
        ],
    );
}

#[test]
fn immediates_are_bare() {
    assert_bare_immediates(M);
}

#[test]
fn memory_forms() {
    assert_decodes(
        M,
        &[
            ("-4@16($fp)", deref(M, "r30", 16)),
            ("4@28($sp)", deref(M, "r29", 28)),
            ("8@-8($30)", deref(M, "r30", -8)),
            ("8@($4)", deref(M, "r4", 0)),
        ],
    );
}

#[test]
fn pt_regs_offsets_of_64_bit_kernels() {
    assert_eq!(offset(M, "r0"), Some(0));
    assert_eq!(offset(M, "r2"), Some(16));
    assert_eq!(offset(M, "r29"), Some(232));
    assert_eq!(offset(M, "r31"), Some(248));
    assert_eq!(offset(M, "pc"), Some(296));
    assert_eq!(reg(M, "pc").def().class, RegClass::Ip);
    assert_eq!(offset(M, "f0"), None);
}

#[test]
fn o32_and_n64_disagree_on_t0_to_t3() {
    for text in ["8@$t0", "8@$t3", "8@8($t1)", "8@$T2"] {
        let e = crate::arg::decode_one(M, text).unwrap_err().to_string();
        assert!(e.contains("o32") && e.contains("n64"), "{e}");
    }
}

#[test]
fn garbage_is_a_clear_error() {
    assert_unknown(M, &["8@$32", "8@$a8", "8@$f32", "8@$pc", "8@$r5", "8@$05"]);
    assert_rejects(
        M,
        &["8@%2", "8@8($0)", "8@8($f0)", "8@8($4,$5)", "8@8($4", "8@$"],
    );
}

#[test]
fn text_round_trips() {
    assert_round_trips(
        M,
        &[
            ("-4@$2", "-4@$2"),
            ("8@$sp", "8@$29"),
            ("-4@16($fp)", "-4@16($30)"),
            ("8@($4)", "8@($4)"),
            ("4@5", "4@5"),
            ("8f@$f12", "8f@$f12"),
        ],
    );
}

#[test]
fn got_ofst_and_lo_address_the_symbol() {
    let sym = Location::symbol_itself;
    let l = |t| crate::arg::decode_one(Arch::Mips, t).unwrap().location;
    assert_eq!(l("2@%got_ofst(usdtkit_s16)($6)"), sym("usdtkit_s16", 0));
    assert_eq!(l("-1@%lo(table+8)($5)"), sym("table", 8));
    for bad in [
        "4@%got_ofst(x)",
        "4@%got_ofst(x)($99)",
        "4@%lo(8)($5)",
        "4@%got_ofst(x($5)",
    ] {
        assert!(crate::arg::decode_one(Arch::Mips, bad).is_err(), "{bad}");
    }
}
