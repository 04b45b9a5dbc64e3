//! One test per 32-bit Arm operand form.

use crate::arch::Arch;
use crate::arg::testkit::*;
use crate::arg::{Location, RegClass};

const A: Arch = Arch::Arm;

#[test]
fn registers_and_aliases() {
    assert_decodes(
        A,
        &[
            ("-4@r0", value(A, "r0")),
            ("4@r10", value(A, "r10")),
            ("4@fp", value(A, "r11")),
            ("4@ip", value(A, "r12")),
            ("4@sp", value(A, "r13")),
            ("4@lr", value(A, "r14")),
            ("4@pc", value(A, "r15")),
            ("4@sb", value(A, "r9")),
            ("4@sl", value(A, "r10")),
            ("4@R3", value(A, "r3")),
        ],
    );
}

#[test]
fn immediates() {
    assert_decodes(
        A,
        &[
            ("4@#5", Location::Const(5)),
            ("-4@#-8", Location::Const(-8)),
            ("4@5", Location::Const(5)),
            ("4@#0x20", Location::Const(32)),
        ],
    );
}

#[test]
fn memory_forms() {
    assert_decodes(
        A,
        &[
            ("4@[r0]", deref(A, "r0", 0)),
            ("4@[r0, #8]", deref(A, "r0", 8)),
            ("-4@[r0, #-8]", deref(A, "r0", -8)),
            ("-4@[fp, #96]", deref(A, "r11", 96)),
            ("-4@[sp]", deref(A, "r13", 0)),
            ("4@[r2, 12]", deref(A, "r2", 12)),
            ("4@[r0, r1]", sib(A, "r0", "r1", 1, 0)),
            ("4@[r0, r1, lsl #2]", sib(A, "r0", "r1", 4, 0)),
            ("4@[pc, #8]", deref(A, "r15", 8)),
        ],
    );
}

#[test]
fn vfp_registers() {
    assert_decodes(
        A,
        &[
            ("4f@s0", fp(A, "s0")),
            ("4f@s31", fp(A, "s31")),
            ("8f@d0", fp(A, "d0")),
            ("8f@d31", fp(A, "d31")),
        ],
    );
}

#[test]
fn pt_regs_offsets_match_uregs() {
    for n in 0..16u16 {
        assert_eq!(offset(A, &format!("r{n}")), Some(4 * n));
    }
    assert_eq!(reg(A, "r15").def().class, RegClass::Ip);
    assert_eq!(reg(A, "r14").def().class, RegClass::General);
    assert_eq!(offset(A, "d3"), None);
    assert_eq!(offset(A, "s3"), None);
}

#[test]
fn garbage_is_a_clear_error() {
    assert_unknown(A, &["4@r16", "4@x0", "4@s32", "4@d32", "4@q0", "4@r01"]);
    assert_rejects(
        A,
        &[
            "4@#r0",
            "4@#",
            "4@[r0, #8]!",
            "4@[r0, -r1]",
            "4@[r0, pc]",
            "4@[s0]",
            "4@[r0, r1, asr #2]",
            "4@[r0, #sym]",
            "4@[r0, r1, lsl #2, 4]",
            "4@[r0",
            "4@5x",
        ],
    );
}

#[test]
fn text_round_trips() {
    assert_round_trips(
        A,
        &[
            ("4@5", "4@#5"),
            ("-4@#-9", "-4@#-9"),
            ("4@fp", "4@r11"),
            ("4@pc", "4@r15"),
            ("-4@[fp, #96]", "-4@[r11, #96]"),
            ("4@[r0]", "4@[r0]"),
            ("4@[r0, r1, lsl #2]", "4@[r0, r1, lsl #2]"),
            ("8f@d7", "8f@d7"),
        ],
    );
}

#[test]
fn float_immediates_keep_their_bits() {
    // gcc for arm prints floating-point constants in decimal.
    let s = crate::arg::decode_one(Arch::Arm, "4f@#1.70125e+2").unwrap();
    assert_eq!(s.location, Location::Const(i64::from(170.125f32.to_bits())));
    let s = crate::arg::decode_one(Arch::Arm, "8f@#-1.100671875e+4").unwrap();
    assert_eq!(
        s.location,
        Location::Const((-11006.71875f64).to_bits() as i64)
    );
    // Only for `f`-marked 4- and 8-byte arguments.
    assert!(crate::arg::decode_one(Arch::Arm, "4@#1.5").is_err());
    assert!(crate::arg::decode_one(Arch::Arm, "2f@#1.5").is_err());
}
