//! One test per AArch64 operand form, with the strings real toolchains emit.

use crate::arch::Arch;
use crate::arg::testkit::*;
use crate::arg::{decode_args, decode_one, Extend, Location};

const A: Arch = Arch::Aarch64;

#[test]
fn registers_and_their_views() {
    assert_decodes(
        A,
        &[
            ("8@x25", value(A, "x25")),
            ("-4@w3", value(A, "x3")),
            ("8@x0", value(A, "x0")),
            ("8@x30", value(A, "x30")),
            ("8@sp", value(A, "sp")),
            ("4@wsp", value(A, "sp")),
            ("8@X7", value(A, "x7")),
        ],
    );
}

#[test]
fn vector_views_are_the_v_register() {
    assert_decodes(
        A,
        &[
            ("-8@v0", fp(A, "v0")),
            ("8f@d1", fp(A, "v1")),
            ("4f@s31", fp(A, "v31")),
            ("16@q2", fp(A, "v2")),
            ("2@h3", fp(A, "v3")),
            ("1@b4", fp(A, "v4")),
        ],
    );
}

#[test]
fn immediates_with_and_without_hash() {
    assert_decodes(
        A,
        &[
            ("-4@5", Location::Const(5)),
            ("4@#5", Location::Const(5)),
            ("-4@-9", Location::Const(-9)),
            ("-4@#-9", Location::Const(-9)),
            ("8@0x10", Location::Const(16)),
        ],
    );
}

#[test]
fn memory_forms() {
    assert_decodes(
        A,
        &[
            ("-4@[x22]", deref(A, "x22", 0)),
            ("2@[x22, 20]", deref(A, "x22", 20)),
            ("-4@[sp, 128]", deref(A, "sp", 128)),
            ("8@[sp]", deref(A, "sp", 0)),
            ("8@[x0, #8]", deref(A, "x0", 8)),
            ("8@[x0, -16]", deref(A, "x0", -16)),
            ("8@[x0,#-16]", deref(A, "x0", -16)),
            ("-1@[x0, x1]", sib(A, "x0", "x1", 1, 0)),
            ("8@[x2, x3, lsl #3]", sib(A, "x2", "x3", 8, 0)),
            ("4@[sp, x3, lsl 2]", sib(A, "sp", "x3", 4, 0)),
        ],
    );
}

#[test]
fn extended_32_bit_index_registers() {
    let ext = |base: &str, index: &str, extend, scale| Location::Sib {
        base: Some(reg(A, base)),
        index: reg(A, index),
        extend,
        scale,
        offset: 0,
    };
    assert_decodes(
        A,
        &[
            // gcc -O2 for `a[i]` with an `int i`, as the cross fixture's notes have it.
            ("-4@[x6, w1, sxtw]", ext("x6", "x1", Extend::Sxtw, 1)),
            ("-4@[x0, w1, sxtw 2]", ext("x0", "x1", Extend::Sxtw, 4)),
            ("8@[sp, w3, sxtw #3]", ext("sp", "x3", Extend::Sxtw, 8)),
            ("2@[x0, w30, uxtw #1]", ext("x0", "x30", Extend::Uxtw, 2)),
            ("8@[x0, x1, sxtx #3]", ext("x0", "x1", Extend::None, 8)),
            ("8@[x0, x1, UXTX]", ext("x0", "x1", Extend::None, 1)),
        ],
    );
    assert_rejects(
        A,
        &[
            "8@[x0, x1, sxtw]",
            "8@[x0, w1, sxtx]",
            "8@[x0, w1, sxtw #4]",
            "8@[x0, wsp, sxtw]",
            "8@[w0, w1, sxtw]",
            "8@[x0, w1, sxtb]",
            "8@[x0, w1]",
        ],
    );
}

#[test]
fn lo12_pairs_address_the_symbol() {
    let sym = Location::symbol_itself;
    assert_decodes(
        A,
        &[
            ("4@[x1, #:lo12:counter]", sym("counter", 0)),
            ("4@[x1, :lo12:counter]", sym("counter", 0)),
            ("8@[x19, #:lo12:table+16]", sym("table", 16)),
            ("8@[x2, #:lo12:seq_iter.6]", sym("seq_iter.6", 0)),
        ],
    );
}

#[test]
fn the_real_strings_of_peers() {
    let args = decode_args(A, "8@x25 -4@[x22] 2@[x22, 20] -4@[sp, 128]");
    assert_eq!(args.len(), 4);
    assert!(args.iter().all(|a| a.decoded.is_ok()), "{args:?}");
    let s = decode_one(A, "-8@v0").unwrap();
    assert!(s.signed && s.size == 8);
    let s = decode_one(A, "-1@[x0, x1]").unwrap();
    assert!(s.signed && s.size == 1);
    // tetragon's `-4@[sp, 12]`, as it sits in a note: split on the space, kept whole.
    let args = decode_args(A, "-4@[sp, 12] 8@x1");
    assert_eq!(
        args[0].decoded.as_ref().unwrap().location,
        deref(A, "sp", 12)
    );
}

#[test]
fn pt_regs_offsets_match_user_pt_regs() {
    assert_eq!(offset(A, "x0"), Some(0));
    assert_eq!(offset(A, "x1"), Some(8));
    assert_eq!(offset(A, "x29"), Some(232));
    assert_eq!(offset(A, "x30"), Some(240));
    assert_eq!(offset(A, "sp"), Some(248));
    assert_eq!(offset(A, "pc"), Some(256));
    assert_eq!(offset(A, "v7"), None);
    assert_eq!(reg(A, "pc").def().class, crate::arg::RegClass::Ip);
}

#[test]
fn garbage_is_a_clear_error() {
    assert_unknown(
        A,
        &["8@x31", "8@w31", "8@xzr", "8@foo", "8@v32", "8@x01", "8@pc"],
    );
    assert_rejects(
        A,
        &[
            "8@[x0",
            "8@x0]",
            "8@[]",
            "8@[x0, ]",
            "8@[x0, 8]!",
            "8@[w0, 8]",
            "8@[v0]",
            "8@[x0, sp]",
            "8@[x0, x1, lsl #4]",
            "8@[x0, x1, lsl #1, 8]",
            "8@[x0, foo]",
            "8@[x0, #:got_lo12:sym]",
            "8@[x0, #:lo12:]",
            "8@[x0, #:lo12:8]",
            "8@[x0, #:lo12]",
            "8@#x0",
            "8@#",
            "8@12a",
            "8@[x0, 1+]",
            "8@é",
        ],
    );
}

#[test]
fn text_round_trips() {
    assert_round_trips(
        A,
        &[
            ("-4@w3", "-4@x3"),
            ("4@#5", "4@5"),
            ("-4@[sp, 128]", "-4@[sp, 128]"),
            ("-4@[x22]", "-4@[x22]"),
            ("-1@[x0, x1]", "-1@[x0, x1]"),
            ("8@[x2, x3, lsl 3]", "8@[x2, x3, lsl #3]"),
            ("-4@[x6, w1, sxtw]", "-4@[x6, w1, sxtw]"),
            ("4@[x6, w1, uxtw 2]", "4@[x6, w1, uxtw #2]"),
            ("8@[x0, x1, sxtx #3]", "8@[x0, x1, lsl #3]"),
            ("8f@d1", "8f@v1"),
            ("4@[x1, :lo12:counter+4]", "4@[x0, #:lo12:counter+4]"),
        ],
    );
}
