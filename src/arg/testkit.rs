//! Helpers shared by the per-architecture unit tests: build expected locations by register
//! name and check decoding, errors and round trips.

use super::{decode_one, decoder, Extend, Location, Reg};
use crate::arch::Arch;
use crate::error::ArgErrorKind;

/// The canonical register `name` of `arch`.
pub(crate) fn reg(arch: Arch, name: &str) -> Reg {
    decoder(arch)
        .and_then(|d| d.register(name))
        .unwrap_or_else(|| panic!("{arch} has no register {name}"))
}

/// The `pt_regs` offset of `arch`'s register `name`.
pub(crate) fn offset(arch: Arch, name: &str) -> Option<u16> {
    reg(arch, name).def().pt_regs_offset
}

/// The location `text` decodes to.
pub(crate) fn loc(arch: Arch, text: &str) -> Location {
    decode_one(arch, text)
        .unwrap_or_else(|e| panic!("{arch} {text}: {e}"))
        .location
}

/// A register's value.
pub(crate) fn value(arch: Arch, name: &str) -> Location {
    Location::Reg {
        reg: reg(arch, name),
        shift: 0,
    }
}

/// A floating-point or vector register.
pub(crate) fn fp(arch: Arch, name: &str) -> Location {
    Location::FpReg {
        reg: reg(arch, name),
    }
}

/// Memory at `base + offset`.
pub(crate) fn deref(arch: Arch, base: &str, offset: i64) -> Location {
    Location::Deref {
        base: reg(arch, base),
        offset,
    }
}

/// Memory at `base + index * scale + offset`.
pub(crate) fn sib(arch: Arch, base: &str, index: &str, scale: u8, offset: i64) -> Location {
    Location::Sib {
        base: Some(reg(arch, base)),
        index: reg(arch, index),
        extend: Extend::None,
        scale,
        offset,
    }
}

/// Each `(text, location)` decodes to that location.
pub(crate) fn assert_decodes(arch: Arch, cases: &[(&str, Location)]) {
    for (text, want) in cases {
        assert_eq!(&loc(arch, text), want, "{arch} {text}");
    }
}

/// Bare integers are immediates (every grammar but x86, arm and powerpc).
pub(crate) fn assert_bare_immediates(arch: Arch) {
    let cases = [
        ("4@5", Location::Const(5)),
        ("-4@-9", Location::Const(-9)),
        ("8@0", Location::Const(0)),
        ("8@0x7f", Location::Const(127)),
        ("8@18446744073709551615", Location::Const(-1)),
    ];
    assert_decodes(arch, &cases);
}

/// Each text fails to decode, with a message, and without a panic.
pub(crate) fn assert_rejects(arch: Arch, texts: &[&str]) {
    for text in texts {
        let r = decode_one(arch, text);
        assert!(r.is_err(), "{arch} {text} decoded to {r:?}");
        assert!(!r.unwrap_err().to_string().is_empty());
    }
}

/// Each text fails as an unknown register that names `arch`.
pub(crate) fn assert_unknown(arch: Arch, texts: &[&str]) {
    for text in texts {
        match decode_one(arch, text) {
            Err(e @ ArgErrorKind::UnknownRegister { .. }) => {
                assert!(e.to_string().contains(&arch.name()), "{e}")
            }
            other => panic!("{arch} {text}: {other:?}"),
        }
    }
}

/// Each `(text, canonical)`: `text` decodes, renders as `canonical`, which decodes to the
/// same spec.
pub(crate) fn assert_round_trips(arch: Arch, cases: &[(&str, &str)]) {
    for (text, canonical) in cases {
        let spec = decode_one(arch, text).unwrap_or_else(|e| panic!("{arch} {text}: {e}"));
        let again = spec
            .to_text(arch)
            .unwrap_or_else(|| panic!("{arch} {text}"));
        assert_eq!(&again, canonical, "{arch} {text}");
        assert_eq!(decode_one(arch, &again), Ok(spec), "{arch} {again}");
    }
}
