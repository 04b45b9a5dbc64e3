//! Argument decoding: spec → text → decode round-trips for every x86 form, folded
//! displacements, and arbitrary strings never panic.

use proptest::prelude::*;
use usdtkit::arg::{decode_one, decoder};
use usdtkit::{decode_args, Arch, ArgSpec, Extend, Location, Reg};

fn regs(arch: Arch, pred: impl Fn(&usdtkit::arg::RegDef) -> bool) -> Vec<Reg> {
    decoder(arch)
        .unwrap()
        .registers()
        .iter()
        .filter(|d| pred(d))
        .map(Reg::from_def)
        .collect()
}

fn gpr(arch: Arch) -> impl Strategy<Value = Reg> {
    prop::sample::select(regs(arch, |d| d.class == usdtkit::arg::RegClass::General))
}

fn index_reg(arch: Arch) -> impl Strategy<Value = Reg> {
    prop::sample::select(regs(arch, |d| {
        d.class == usdtkit::arg::RegClass::General && !matches!(d.name, "rsp" | "esp")
    }))
}

fn base_reg(arch: Arch) -> impl Strategy<Value = Reg> {
    prop::sample::select(regs(arch, |d| d.class != usdtkit::arg::RegClass::Vector))
}

fn vector(arch: Arch) -> impl Strategy<Value = Reg> {
    prop::sample::select(regs(arch, |d| d.class == usdtkit::arg::RegClass::Vector))
}

fn symbol() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,12}(\\.[0-9]{1,3})?"
}

fn scale() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![1u8, 2, 4, 8])
}

fn location(arch: Arch) -> impl Strategy<Value = Location> {
    let high = regs(arch, |d| {
        matches!(
            d.name,
            "rax" | "rbx" | "rcx" | "rdx" | "eax" | "ebx" | "ecx" | "edx"
        )
    });
    prop_oneof![
        any::<i64>().prop_map(Location::Const),
        gpr(arch).prop_map(|reg| Location::Reg { reg, shift: 0 }),
        prop::sample::select(high).prop_map(|reg| Location::Reg { reg, shift: 8 }),
        (base_reg(arch), any::<i64>()).prop_map(|(base, o)| Location::Deref { base, offset: o }),
        (
            prop::option::of(gpr(arch)),
            index_reg(arch),
            scale(),
            any::<i64>()
        )
            .prop_map(|(base, index, scale, o)| Location::Sib {
                base,
                index,
                extend: Extend::None,
                scale,
                offset: o
            }),
        (symbol(), any::<i64>(), prop::option::of(base_reg(arch)))
            .prop_map(|(symbol, o, base)| { Location::symbol(&symbol, o, base, None, 1) }),
        (symbol(), any::<i64>(), index_reg(arch), scale()).prop_map(|(symbol, o, index, scale)| {
            Location::symbol(&symbol, o, None, Some(index), scale)
        }),
        vector(arch).prop_map(|reg| Location::FpReg { reg }),
    ]
}

fn spec(arch: Arch) -> impl Strategy<Value = ArgSpec> {
    (
        prop::sample::select(vec![1u32, 2, 4, 8, 16, 24, 48]),
        any::<bool>(),
        any::<bool>(),
        location(arch),
    )
        .prop_map(|(size, signed, float, location)| ArgSpec {
            size,
            signed,
            float,
            location,
        })
}

proptest! {
    #[test]
    fn x86_64_spec_text_round_trips(s in spec(Arch::X86_64)) {
        let text = s.to_text(Arch::X86_64).unwrap();
        prop_assert_eq!(decode_one(Arch::X86_64, &text).map_err(|e| e.to_string()), Ok(s), "{}", text);
    }

    #[test]
    fn i386_spec_text_round_trips(s in spec(Arch::I386)) {
        let text = s.to_text(Arch::I386).unwrap();
        prop_assert_eq!(decode_one(Arch::I386, &text).map_err(|e| e.to_string()), Ok(s), "{}", text);
    }

    #[test]
    fn summed_displacements_fold(terms in prop::collection::vec(-100_000i64..100_000, 1..6), reg in base_reg(Arch::X86_64)) {
        let mut text = String::from("-4@");
        for (i, t) in terms.iter().enumerate() {
            if i > 0 && *t >= 0 {
                text.push('+');
            }
            text.push_str(&t.to_string());
        }
        text.push_str(&format!("(%{})", reg.name()));
        let want = Location::Deref { base: reg, offset: terms.iter().sum() };
        prop_assert_eq!(decode_one(Arch::X86_64, &text).unwrap().location, want);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,64}") {
        for arch in [Arch::X86_64, Arch::I386, Arch::Aarch64, Arch::Other(9999)] {
            let _ = decode_args(arch, &s);
        }
    }

    #[test]
    fn operand_like_strings_never_panic(s in "[-0-9f]{0,3}@?[%$(),.+\\-a-z0-9_]{0,24}") {
        for arch in [Arch::X86_64, Arch::I386] {
            for a in decode_args(arch, &s) {
                if let Err(e) = a.decoded {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}
