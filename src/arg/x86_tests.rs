//! One test per x86 operand form, with the strings real toolchains emit.

use super::*;
use crate::arg::{decode_args, decode_one, ArgSpec};

fn r64(name: &str) -> Reg {
    X86_64.register(name).unwrap_or_else(|| panic!("no {name}"))
}

fn r32(name: &str) -> Reg {
    I386.register(name).unwrap_or_else(|| panic!("no {name}"))
}

fn loc64(text: &str) -> Location {
    decode_one(Arch::X86_64, text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .location
}

fn spec64(text: &str) -> ArgSpec {
    decode_one(Arch::X86_64, text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn registers_of_every_width() {
    for (text, reg, shift) in [
        ("8@%rax", "rax", 0),
        ("-4@%eax", "rax", 0),
        ("2@%ax", "rax", 0),
        ("1@%al", "rax", 0),
        ("1@%ah", "rax", 8),
        ("1@%bh", "rbx", 8),
        ("1@%ch", "rcx", 8),
        ("-1@%dh", "rdx", 8),
        ("1@%sil", "rsi", 0),
        ("1@%dil", "rdi", 0),
        ("1@%bpl", "rbp", 0),
        ("1@%spl", "rsp", 0),
        ("8@%r8", "r8", 0),
        ("-4@%r8d", "r8", 0),
        ("2@%r9w", "r9", 0),
        ("1@%r15b", "r15", 0),
        ("1@%r12l", "r12", 0),
        ("8@%rsp", "rsp", 0),
        ("8@%RBX", "rbx", 0),
    ] {
        assert_eq!(
            loc64(text),
            Location::Reg {
                reg: r64(reg),
                shift
            },
            "{text}"
        );
    }
}

#[test]
fn pt_regs_offsets_match_the_kernel_layout() {
    let off = |n| r64(n).def().pt_regs_offset.unwrap();
    assert_eq!(off("r15"), 0);
    assert_eq!(off("rbp"), 32);
    assert_eq!(off("rax"), 80);
    assert_eq!(off("rdi"), 112);
    assert_eq!(off("rip"), 128);
    assert_eq!(off("rsp"), 152);
    assert_eq!(r32("eax").def().pt_regs_offset, Some(24));
    assert_eq!(r32("esp").def().pt_regs_offset, Some(60));
    assert_eq!(r64("xmm3").def().pt_regs_offset, None);
}

#[test]
fn immediates() {
    assert_eq!(loc64("-4@$5"), Location::Const(5));
    assert_eq!(loc64("-4@$-9"), Location::Const(-9));
    assert_eq!(loc64("1@$-127"), Location::Const(-127));
    assert_eq!(loc64("8@$0x1f"), Location::Const(31));
    assert_eq!(loc64("8@$-0x10"), Location::Const(-16));
    assert_eq!(loc64("8@$18446744073709551615"), Location::Const(-1));
    assert_eq!(loc64("8@$0"), Location::Const(0));
}

#[test]
fn dereferences() {
    let rbp = r64("rbp");
    let rsp = r64("rsp");
    assert_eq!(
        loc64("-4@-12(%rbp)"),
        Location::Deref {
            base: rbp,
            offset: -12
        }
    );
    assert_eq!(
        loc64("8@(%rsp)"),
        Location::Deref {
            base: rsp,
            offset: 0
        }
    );
    assert_eq!(
        loc64("8@1600(%rax)"),
        Location::Deref {
            base: r64("rax"),
            offset: 1600
        }
    );
    assert_eq!(
        loc64("-4@-12+3+1(%rbp)"),
        Location::Deref {
            base: rbp,
            offset: -8
        }
    );
    assert_eq!(
        loc64("4@0x10(%r12)"),
        Location::Deref {
            base: r64("r12"),
            offset: 16
        }
    );
}

#[test]
fn sib_shapes() {
    let (rax, rdx, rbx, rcx) = (r64("rax"), r64("rdx"), r64("rbx"), r64("rcx"));
    assert_eq!(
        loc64("8@(%rax,%rdx,8)"),
        Location::Sib {
            base: Some(rax),
            index: rdx,
            extend: Extend::None,
            scale: 8,
            offset: 0
        }
    );
    assert_eq!(
        loc64("4@(%rbx,%rcx)"),
        Location::Sib {
            base: Some(rbx),
            index: rcx,
            extend: Extend::None,
            scale: 1,
            offset: 0
        }
    );
    assert_eq!(
        loc64("-4@-20(%rbp,%rax,4)"),
        Location::Sib {
            base: Some(r64("rbp")),
            index: rax,
            extend: Extend::None,
            scale: 4,
            offset: -20
        }
    );
    assert_eq!(
        loc64("8@16(,%rcx,8)"),
        Location::Sib {
            base: None,
            index: rcx,
            extend: Extend::None,
            scale: 8,
            offset: 16
        }
    );
    assert_eq!(
        loc64("8@(,%rcx)"),
        Location::Sib {
            base: None,
            index: rcx,
            extend: Extend::None,
            scale: 1,
            offset: 0
        }
    );
}

#[test]
fn symbol_forms() {
    let rip = r64("rip");
    let sym = Location::symbol;
    assert_eq!(
        loc64("-4@global_max_action(%rip)"),
        sym("global_max_action", 0, Some(rip), None, 1)
    );
    assert_eq!(loc64("8@24+mp_(%rip)"), sym("mp_", 24, Some(rip), None, 1));
    assert_eq!(
        loc64("-4@CheckpointStats+40(%rip)"),
        sym("CheckpointStats", 40, Some(rip), None, 1)
    );
    assert_eq!(loc64("4@glob-2(%rip)"), sym("glob", -2, Some(rip), None, 1));
    assert_eq!(
        loc64("8@seq_iter.6(%rip)"),
        sym("seq_iter.6", 0, Some(rip), None, 1)
    );
    assert_eq!(
        loc64("8@table(,%rcx,8)"),
        sym("table", 0, None, Some(r64("rcx")), 8)
    );
    assert_eq!(
        decode_one(Arch::I386, "-4@counter+4").unwrap().location,
        sym("counter", 4, None, None, 1)
    );
}

#[test]
fn sizes_signs_and_floats() {
    let s = spec64("8f@%rcx");
    assert!(s.float && !s.signed && s.size == 8);
    let s = spec64("4f@36(%rsp)");
    assert!(s.float && s.size == 4);
    let s = spec64("%rax");
    assert!(!s.float && !s.signed && s.size == 8);
    assert_eq!(
        s.location,
        Location::Reg {
            reg: r64("rax"),
            shift: 0
        }
    );
    let s = spec64("-48@(%rsp)");
    assert!(s.signed && s.size == 48);
    assert_eq!(spec64("16@(%rsp)").size, 16);
    assert_eq!(spec64("24@8(%rsp)").size, 24);
}

#[test]
fn vector_registers() {
    assert_eq!(loc64("-4@%xmm0"), Location::FpReg { reg: r64("xmm0") });
    assert_eq!(loc64("8f@%xmm3"), Location::FpReg { reg: r64("xmm3") });
    assert_eq!(loc64("8@%xmm31"), Location::FpReg { reg: r64("xmm31") });
    assert!(decode_one(Arch::X86_64, "8@%xmm32").is_err());
    assert!(decode_one(Arch::I386, "8@%xmm8").is_err());
}

#[test]
fn i386_registers() {
    let l = |t| decode_one(Arch::I386, t).unwrap().location;
    assert_eq!(
        l("-4@%eax"),
        Location::Reg {
            reg: r32("eax"),
            shift: 0
        }
    );
    assert_eq!(
        l("1@%ah"),
        Location::Reg {
            reg: r32("eax"),
            shift: 8
        }
    );
    assert_eq!(
        l("4@8(%ebp)"),
        Location::Deref {
            base: r32("ebp"),
            offset: 8
        }
    );
    for bad in ["8@%rax", "1@%sil", "4@%r8d", "4@(%rax)"] {
        assert!(
            matches!(
                decode_one(Arch::I386, bad),
                Err(ArgErrorKind::UnknownRegister { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn garbage_is_a_clear_error() {
    for bad in [
        "-7@$16",
        "23-@$16",
        "8@%foo",
        "8@%",
        "8@$",
        "8@$sym",
        "8@(%rax",
        "8@%rax)",
        "8@()",
        "8@(%eax)",
        "8@(%rax,%rsp)",
        "8@(%rax,%rbx,3)",
        "8@(%rax,,8)",
        "8@(%rip,%rax)",
        "8@1234",
        "8@(%xmm0)",
        "8@a+b(%rip)",
        "8@-sym(%rip)",
        "8@(%rax,%rbx,8,1)",
        "8@((%rax))",
        "8@%r16",
        "8@%r08",
        "8@%xmm01",
        "8@%r8q",
        "8@%r8dd",
        "8@%r1",
        "8@%r7",
        "8@%r1d",
        "8@é",
    ] {
        let r = decode_one(Arch::X86_64, bad);
        assert!(r.is_err(), "{bad} decoded to {r:?}");
        // The message names the problem.
        assert!(!r.unwrap_err().to_string().is_empty());
    }
}

#[test]
fn whole_strings_keep_going_past_a_bad_argument() {
    let args = decode_args(Arch::X86_64, "-4@%ebx 8@%foo 8@seq_iter.6(%rip)");
    assert_eq!(args.len(), 3);
    assert!(args[0].decoded.is_ok());
    let e = args[1].decoded.as_ref().unwrap_err();
    assert_eq!(e.index, 1);
    assert_eq!(e.text, "8@%foo");
    assert!(e.to_string().contains("unknown register `%foo`"), "{e}");
    assert!(args[2].decoded.is_ok());
}

#[test]
fn text_round_trips() {
    for text in [
        "-4@$-9",
        "1@%ah",
        "8@%rax",
        "-4@-8(%rbp)",
        "8@(%rsp)",
        "8@16(,%rcx,8)",
        "8@(%rax,%rdx,8)",
        "8@mp_+24(%rip)",
        "4@glob-2(%rip)",
        "8@table(,%rcx,8)",
        "8f@%xmm3",
        "-48@(%rsp)",
    ] {
        let spec = spec64(text);
        let again = spec.to_text(Arch::X86_64).unwrap();
        assert_eq!(again, text);
        assert_eq!(spec64(&again), spec);
    }
}

#[test]
fn i386_gotoff_is_the_symbol_itself() {
    let l = |t| decode_one(Arch::I386, t).unwrap().location;
    let sym = |symbol, offset, index, scale| Location::symbol(symbol, offset, None, index, scale);
    assert_eq!(
        l("-8@usdtkit_g64@GOTOFF(%ebx)"),
        sym("usdtkit_g64", 0, None, 1)
    );
    assert_eq!(
        l("-8@4+usdtkit_pair@GOTOFF(%ebx)"),
        sym("usdtkit_pair", 4, None, 1)
    );
    assert_eq!(
        l("-4@table@GOTOFF(%ebx,%eax,4)"),
        sym("table", 0, Some(r32("eax")), 4)
    );
    for bad in [
        "4@x@GOT(%ebx)",
        "4@x@GOTOFF",
        "4@8@GOTOFF(%ebx)",
        "8@x@GOTPCREL(%rip)",
    ] {
        let arch = if bad.contains("rip") {
            Arch::X86_64
        } else {
            Arch::I386
        };
        assert!(decode_one(arch, bad).is_err(), "{bad}");
    }
}

mod fast_path {
    use super::*;
    use proptest::prelude::*;

    /// Operands shaped like the fast path's forms, with every part perturbed.
    fn operand() -> impl Strategy<Value = String> {
        let reg = "%(r[abcd]x|r[sd]i|r[sb]p|r[89]|r1[0-5]|e[abcd]x|e[sd]i|e[sb]p|rip|eip|\
                   r[a-z0-9]{1,3}|e[a-z]{2}|[a-d][lhx]|[sd]il?|[sb]pl?|xmm[0-9]{1,2}|\
                   r[0-9]{1,2}[dwbl]?|[A-Z]{3})";
        let num = "-?[0-9]{0,21}";
        // Displacements: numbers, symbols, and sums of them, well-formed or not.
        let sym = "[a-z_.$0-9][a-z0-9_.$@]{0,6}";
        let disp = format!("([-+]?{sym}|{num})([-+]{{1,2}}({sym}|[0-9]{{0,20}}|0x[0-9]{{1,3}}))?");
        let re = |p: String| proptest::string::string_regex(&p).expect("regex");
        prop_oneof![
            re(reg.to_string()),
            re(format!("\\${num}")),
            re(format!("{num}\\(({reg})?\\)")),
            re(format!("{num}\\(({reg})?,({reg})?(,[0-9]{{1,2}})?\\)")),
            re(format!("({disp})\\(({reg})?\\)")),
            re(format!("({disp})\\(({reg})?,({reg})?(,[0-9]{{1,2}})?\\)")),
            re(".{0,24}".to_string()),
        ]
    }

    /// Argument strings: operands with size prefixes (well-formed or not), joined by
    /// whitespace and commas.
    fn arg_string() -> impl Strategy<Value = String> {
        let prefix = proptest::string::string_regex("-?([1248]|16|3|)f?@?").expect("regex");
        let sep =
            proptest::string::string_regex("[ \t]{0,2}(, ?)?[ \t\n]{1,2}|\\[|\\]").expect("regex");
        let arg = (prefix, operand()).prop_map(|(p, o)| p + &o);
        proptest::collection::vec((arg, sep), 0..5).prop_map(|v| {
            v.into_iter()
                .fold(String::new(), |s, (arg, sep)| s + &arg + &sep)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn agrees_with_the_full_grammar(op in operand()) {
            for dec in [&X86_64, &I386] {
                if let Some(fast) = dec.parse_fast(&op) {
                    prop_assert_eq!(Ok(fast), dec.parse_full(&op), "{}", op);
                }
            }
        }

        /// The one-pass split and decode gives what splitting and then decoding each
        /// argument gives: the same texts, specs and errors (with their indexes).
        #[test]
        fn one_pass_agrees_with_split_then_decode(s in arg_string()) {
            for arch in [Arch::X86_64, Arch::I386] {
                let mut general = Vec::new();
                crate::arg::decode_general(arch, &s, 0, &mut general);
                prop_assert_eq!(decode_args(arch, &s), general, "{:?}", s);
            }
        }
    }

    #[test]
    fn takes_the_common_forms() {
        for op in [
            "%eax",
            "%r9w",
            "%ah",
            "%xmm3",
            "$-5",
            "-20(%rbp)",
            "(%rsp)",
            "8(%rax,%rdx,8)",
            "(,%rcx,8)",
            "8(%rip)",
            "sym(%rip)",
            "counter+8(%rip)",
            "table-2(%rip)",
            "24+table(%rip)",
            "8+table(,%rax,8)",
            "x.1$(%rbx)",
        ] {
            assert!(X86_64.parse_fast(op).is_some(), "{op}");
        }
        for op in [
            "%EAX",
            "$0x7f",
            "-12+4(%rbp)",
            "sym@GOTOFF(%ebx)",
            "-sym(%rip)",
            "sym+-8(%rip)",
            "sym+0x8(%rip)",
            "8-sym(%rip)",
            "a+b(%rip)",
            "sym",
            "(%eax)",
            "(%rsp,%rsp)",
            "8(%rip,%rax)",
        ] {
            assert!(X86_64.parse_fast(op).is_none(), "{op}");
        }
    }

    #[test]
    fn reads_64_bit_numbers_as_the_full_grammar_does() {
        for op in [
            "$-1407401702874106763",
            "$9223372036854775807",
            "$9223372036854775808",
            "$-9223372036854775808",
            "$-9223372036854775809",
            "$18446744073709551615",
            "$-18446744073709551615",
            "$00000000000000000001",
            "-9223372036854775808(%rbp)",
            "18446744073709551615(%rax,%rdx,8)",
            "sym-18446744073709551615(%rip)",
        ] {
            let fast = X86_64.parse_fast(op);
            assert!(fast.is_some(), "{op}");
            assert_eq!(Ok(fast.unwrap()), X86_64.parse_full(op), "{op}");
        }
        // Beyond 64 bits, or 21 digits: the full grammar's to judge.
        for op in [
            "$18446744073709551616",
            "$000000000000000000001",
            "$-99999999999999999999",
        ] {
            assert!(X86_64.parse_fast(op).is_none(), "{op}");
        }
    }
}
