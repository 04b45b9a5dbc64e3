//! The decoders of aarch64, arm, riscv, s390x, powerpc, loongarch and mips: every location
//! their grammar can express survives spec → text → decode, and no string makes any decoder
//! panic.

use proptest::prelude::*;
use proptest::strategy::Union;
use usdtkit::arg::{decode_one, decoder, RegClass, RegDef};
use usdtkit::{decode_args, Arch, ArgSpec, Extend, Location, Reg};

/// What one architecture's grammar expresses beyond immediates and registers.
struct Profile {
    arch: Arch,
    /// Canonical names that cannot be a base register.
    no_base: &'static [&'static str],
    /// Canonical names that cannot be an index register.
    no_index: &'static [&'static str],
    /// Scales of base + index operands (empty: the architecture has none).
    scales: &'static [u8],
    /// Whether base + index operands take an offset too.
    index_offsets: bool,
    /// Whether `:lo12:`-style operands give symbol locations.
    symbols: bool,
    /// How index registers may be extended (besides taking the whole register).
    extends: &'static [Extend],
}

const fn profile(arch: Arch, no_base: &'static [&'static str]) -> Profile {
    Profile {
        arch,
        no_base,
        no_index: &[],
        scales: &[],
        index_offsets: false,
        symbols: false,
        extends: &[Extend::None],
    }
}

const PROFILES: [Profile; 9] = [
    Profile {
        no_index: &["sp"],
        scales: &[1, 2, 4, 8],
        symbols: true,
        extends: &[Extend::None, Extend::Sxtw, Extend::Uxtw],
        ..profile(Arch::Aarch64, &[])
    },
    Profile {
        scales: &[1, 2, 4, 8],
        ..profile(Arch::Arm, &[])
    },
    profile(Arch::Riscv64, &["zero"]),
    profile(Arch::Riscv32, &["zero"]),
    Profile {
        no_index: &["r0"],
        scales: &[1],
        index_offsets: true,
        ..profile(Arch::S390x, &["r0"])
    },
    Profile {
        scales: &[1],
        ..profile(Arch::Powerpc64, &["r0"])
    },
    Profile {
        scales: &[1],
        ..profile(Arch::Powerpc, &["r0"])
    },
    Profile {
        scales: &[1],
        ..profile(Arch::Loongarch64, &["r0"])
    },
    profile(Arch::Mips, &["r0"]),
];

/// Registers of the table that satisfy `keep`. The `pc` entries exist for pc-relative uses
/// and have no operand spelling, so they never appear.
fn table(arch: Arch, keep: impl Fn(&RegDef) -> bool) -> Vec<Reg> {
    let defs = decoder(arch).expect("a decoder").registers();
    let regs: Vec<Reg> = defs
        .iter()
        .filter(|d| d.name != "pc" && keep(d))
        .map(Reg::from_def)
        .collect();
    assert!(!regs.is_empty(), "{arch}: no register fits");
    regs
}

fn location(p: &'static Profile) -> impl Strategy<Value = Location> {
    let general = |d: &RegDef| d.class != RegClass::Vector;
    let values = table(p.arch, general);
    let bases = table(p.arch, |d| general(d) && !p.no_base.contains(&d.name));
    let indexes = table(p.arch, |d| {
        d.class == RegClass::General && !p.no_index.contains(&d.name)
    });
    let vectors = table(p.arch, |d| d.class == RegClass::Vector);
    let mut forms = vec![
        any::<i64>().prop_map(Location::Const).boxed(),
        prop::sample::select(values)
            .prop_map(|reg| Location::Reg { reg, shift: 0 })
            .boxed(),
        (prop::sample::select(bases.clone()), any::<i64>())
            .prop_map(|(base, offset)| Location::Deref { base, offset })
            .boxed(),
        prop::sample::select(vectors)
            .prop_map(|reg| Location::FpReg { reg })
            .boxed(),
    ];
    if !p.scales.is_empty() {
        let offsets = if p.index_offsets {
            any::<i64>().boxed()
        } else {
            Just(0).boxed()
        };
        let sib = (
            prop::sample::select(bases),
            prop::sample::select(indexes),
            prop::sample::select(p.scales),
            offsets,
            prop::sample::select(p.extends),
        )
            .prop_map(|(base, index, scale, offset, extend)| Location::Sib {
                base: Some(base),
                index,
                extend,
                scale,
                offset,
            });
        forms.push(sib.boxed());
    }
    if p.symbols {
        let symbol = ("[A-Za-z_][A-Za-z0-9_]{0,12}(\\.[0-9]{1,3})?", any::<i64>())
            .prop_map(|(symbol, offset)| Location::symbol_itself(&symbol, offset));
        forms.push(symbol.boxed());
    }
    Union::new(forms)
}

/// An architecture and a spec it can express.
fn arch_and_spec() -> impl Strategy<Value = (Arch, ArgSpec)> {
    (0..PROFILES.len()).prop_flat_map(|i| {
        let p = &PROFILES[i];
        (
            prop::sample::select(vec![1u32, 2, 4, 8, 16, 24, 48]),
            any::<bool>(),
            any::<bool>(),
            location(p),
        )
            .prop_map(move |(size, signed, float, location)| {
                let spec = ArgSpec {
                    size,
                    signed,
                    float,
                    location,
                };
                (p.arch, spec)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn specs_round_trip_through_text((arch, s) in arch_and_spec()) {
        let text = s.to_text(arch);
        prop_assert!(text.is_some(), "{} cannot write {:?}", arch, s);
        let text = text.unwrap();
        prop_assert_eq!(decode_one(arch, &text).map_err(|e| e.to_string()), Ok(s), "{} {}", arch, text);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,64}") {
        for arch in Arch::NAMED {
            let _ = decode_args(*arch, &s);
        }
    }

    #[test]
    fn operand_like_strings_never_panic(s in "[-0-9f]{0,3}@?[%$#:()\\[\\], .+\\-a-z0-9_]{0,24}") {
        for arch in Arch::NAMED {
            for a in decode_args(*arch, &s) {
                if let Err(e) = a.decoded {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}

#[test]
fn locations_without_syntax_give_no_text() {
    let reg = |arch, name| decoder(arch).unwrap().register(name).unwrap();
    let spec = |location| ArgSpec {
        size: 8,
        signed: false,
        float: false,
        location,
    };
    let riscv_sib = Location::Sib {
        base: Some(reg(Arch::Riscv64, "a0")),
        index: reg(Arch::Riscv64, "a1"),
        extend: Extend::None,
        scale: 1,
        offset: 0,
    };
    assert_eq!(spec(riscv_sib).to_text(Arch::Riscv64), None);
    let aarch64_pc = Location::Reg {
        reg: reg(Arch::Aarch64, "pc"),
        shift: 0,
    };
    assert_eq!(spec(aarch64_pc).to_text(Arch::Aarch64), None);
    let s390_r0_base = Location::Deref {
        base: reg(Arch::S390x, "r0"),
        offset: 8,
    };
    assert_eq!(spec(s390_r0_base).to_text(Arch::S390x), None);
    let symbol = Location::symbol_itself("x", 0);
    assert_eq!(spec(symbol).to_text(Arch::Mips), None);
}
