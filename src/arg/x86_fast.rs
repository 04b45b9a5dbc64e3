//! The x86 operands compilers emit most (`%reg`, `$N`, `N(%reg)`, `N(%base,%index,S)`), read
//! in one pass over the bytes with no allocation. Anything else, and anything wrong, is left
//! to the full grammar ([`X86::parse_operand`](super::X86)), so errors and unusual forms read
//! exactly as they always did; a property test checks that both agree on every operand.

use super::{Extend, Location, Reg, RegClass, X86};

/// A decimal integer (`-20`, `8`), if `s` is one that fits in an `i64` without wrapping.
fn decimal(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(b - b'0');
    }
    Some(if neg { -v } else { v })
}

impl X86 {
    /// A register named in lower case (`eax`, `r9w`, `xmm3`), as (register, width, shift).
    fn fast_reg(&self, name: &str) -> Option<(Reg, u8, u8)> {
        if name
            .bytes()
            .any(|b| !b.is_ascii_lowercase() && !b.is_ascii_digit())
        {
            return None;
        }
        let f = self.lookup(name)?;
        Some((f.reg, f.width, f.shift))
    }

    /// A full-width general register addressing memory (`%rbp`), also as an index when
    /// `index`; `None` for anything the full grammar must judge.
    fn fast_address(&self, text: &str, index: bool) -> Option<Reg> {
        let (reg, width, shift) = self.fast_reg(text.strip_prefix('%')?)?;
        let full = if self.is_64 { 8 } else { 4 };
        let class = reg.def().class;
        let ok = class == RegClass::General
            && width == full
            && shift == 0
            && !(index && matches!(reg.name(), "rsp" | "esp"));
        (ok || (!index && class == RegClass::Ip)).then_some(reg)
    }

    /// The common operand forms, or `None` to use the full grammar.
    pub(super) fn parse_fast(&self, op: &str) -> Option<Location> {
        let b = op.as_bytes();
        match *b.first()? {
            b'%' => {
                let (reg, _, shift) = self.fast_reg(&op[1..])?;
                Some(match reg.def().class {
                    RegClass::Vector => Location::FpReg { reg },
                    _ => Location::Reg { reg, shift },
                })
            }
            b'$' => decimal(&b[1..]).map(Location::Const),
            _ => {
                let open = b.iter().position(|&c| c == b'(')?;
                let inner = op[open + 1..].strip_suffix(')')?;
                let offset = match &b[..open] {
                    [] => 0,
                    disp => decimal(disp)?,
                };
                let mut parts = inner.split(',');
                let base = parts.next()?;
                let Some(index) = parts.next() else {
                    let base = self.fast_address(base, false)?;
                    return Some(Location::Deref { base, offset });
                };
                let scale = match parts.next() {
                    None => 1,
                    Some("1") => 1,
                    Some("2") => 2,
                    Some("4") => 4,
                    Some("8") => 8,
                    Some(_) => return None,
                };
                if parts.next().is_some() {
                    return None;
                }
                let base = match base {
                    "" => None,
                    b => Some(self.fast_address(b, false)?),
                };
                if base.is_some_and(|r| r.def().class == RegClass::Ip) {
                    return None;
                }
                Some(Location::Sib {
                    base,
                    index: self.fast_address(index, true)?,
                    extend: Extend::None,
                    scale,
                    offset,
                })
            }
        }
    }
}
