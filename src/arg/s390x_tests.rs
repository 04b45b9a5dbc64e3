//! One test per s390x operand form.

use crate::arch::Arch;
use crate::arg::testkit::*;
use crate::arg::RegClass;

const S: Arch = Arch::S390x;

#[test]
fn registers() {
    assert_decodes(
        S,
        &[
            ("8@%r2", value(S, "r2")),
            ("-4@%r0", value(S, "r0")),
            ("8@%r15", value(S, "r15")),
            ("8@%R3", value(S, "r3")),
            ("8f@%f0", fp(S, "f0")),
            ("8f@%f15", fp(S, "f15")),
        ],
    );
}

#[test]
fn bare_numbers_are_immediates() {
    assert_bare_immediates(S);
}

#[test]
fn memory_forms() {
    assert_decodes(
        S,
        &[
            ("8@160(%r15)", deref(S, "r15", 160)),
            ("-4@-4(%r11)", deref(S, "r11", -4)),
            ("8@0(%r2)", deref(S, "r2", 0)),
            ("8@(%r2)", deref(S, "r2", 0)),
            ("8@8(%r1,%r2)", sib(S, "r2", "r1", 1, 8)),
            ("8@0(%r3,%r15)", sib(S, "r15", "r3", 1, 0)),
        ],
    );
}

#[test]
fn pt_regs_offsets_follow_args_and_psw() {
    assert_eq!(offset(S, "pc"), Some(16));
    assert_eq!(reg(S, "pc").def().class, RegClass::Ip);
    assert_eq!(offset(S, "r0"), Some(24));
    assert_eq!(offset(S, "r2"), Some(40));
    assert_eq!(offset(S, "r15"), Some(144));
    assert_eq!(offset(S, "f2"), None);
}

#[test]
fn garbage_is_a_clear_error() {
    assert_unknown(S, &["8@%r16", "8@%f16", "8@%x1", "8@%pc", "8@%a0"]);
    assert_rejects(
        S,
        &[
            "8@r2",
            "8@8(%r0)",
            "8@8(%r0,%r2)",
            "8@8(%f0)",
            "8@8(%r1,%r2,%r3)",
            "8@8(%r1,)",
            "8@sym(%r2)",
            "8@8(r2)",
            "8@$5",
            "8@8(%r2",
        ],
    );
}

#[test]
fn text_round_trips() {
    assert_round_trips(
        S,
        &[
            ("8@160(%r15)", "8@160(%r15)"),
            ("8@0(%r2)", "8@(%r2)"),
            ("8@8(%r1,%r2)", "8@8(%r1,%r2)"),
            ("4@71", "4@71"),
            ("8@%r2", "8@%r2"),
            ("8f@%f4", "8f@%f4"),
        ],
    );
}
