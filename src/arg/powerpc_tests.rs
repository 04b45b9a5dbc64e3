//! One test per PowerPC operand form, for powerpc64 and 32-bit powerpc.

use crate::arch::Arch;
use crate::arg::testkit::*;
use crate::arg::{Location, RegClass};

const P: Arch = Arch::Powerpc64;

#[test]
fn bare_numbers_are_registers() {
    assert_decodes(
        P,
        &[
            ("-4@0", value(P, "r0")),
            ("8@31", value(P, "r31")),
            ("4@3", value(P, "r3")),
            ("8@%r3", value(P, "r3")),
            ("8@r3", value(P, "r3")),
            ("8@%R9", value(P, "r9")),
        ],
    );
}

#[test]
fn i_marks_an_immediate() {
    assert_decodes(
        P,
        &[
            ("4@i5", Location::Const(5)),
            ("-4@i-5", Location::Const(-5)),
            ("8@i0", Location::Const(0)),
        ],
    );
}

#[test]
fn memory_forms() {
    assert_decodes(
        P,
        &[
            ("8@-8(31)", deref(P, "r31", -8)),
            ("4@112(1)", deref(P, "r1", 112)),
            ("8@-8(%r31)", deref(P, "r31", -8)),
            ("8@0(r9)", deref(P, "r9", 0)),
            ("8@(9)", deref(P, "r9", 0)),
            ("8@9,10", sib(P, "r9", "r10", 1, 0)),
            ("8@%r9,%r0", sib(P, "r9", "r0", 1, 0)),
        ],
    );
}

#[test]
fn floating_point_registers() {
    assert_decodes(P, &[("8f@%f1", fp(P, "f1")), ("8f@f31", fp(P, "f31"))]);
}

#[test]
fn pt_regs_offsets_per_word_size() {
    assert_eq!(offset(P, "r0"), Some(0));
    assert_eq!(offset(P, "r3"), Some(24));
    assert_eq!(offset(P, "r31"), Some(248));
    assert_eq!(offset(P, "pc"), Some(256));
    assert_eq!(reg(P, "pc").def().class, RegClass::Ip);
    assert_eq!(offset(P, "f1"), None);
    let p32 = Arch::Powerpc;
    assert_eq!(offset(p32, "r3"), Some(12));
    assert_eq!(offset(p32, "r31"), Some(124));
    assert_eq!(offset(p32, "pc"), Some(128));
    assert_eq!(loc(p32, "4@-8(31)"), deref(p32, "r31", -8));
}

#[test]
fn garbage_is_a_clear_error() {
    assert_unknown(P, &["8@32", "8@r32", "8@%f32", "8@%x3", "8@00", "8@0x1f"]);
    assert_rejects(
        P,
        &[
            "8@-4",
            "8@+4",
            "8@i",
            "8@ix",
            "8@8(0)",
            "8@0,9",
            "8@9,",
            "8@9,10,11",
            "8@8(%f1)",
            "8@.LC0@toc@l(9)",
            "8@$5",
            "8@(31",
        ],
    );
}

#[test]
fn text_round_trips() {
    assert_round_trips(
        P,
        &[
            ("8@-8(31)", "8@-8(%r31)"),
            ("-4@0", "-4@%r0"),
            ("4@i5", "4@i5"),
            ("8@9,10", "8@%r9,%r10"),
            ("8f@f1", "8f@%f1"),
        ],
    );
}
