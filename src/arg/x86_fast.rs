//! The x86 operands compilers emit most (`%reg`, `$N`, `N(%reg)`, `N(%base,%index,S)`, and
//! the same with a symbol: `sym+N(%rip)`, `N+sym(,%index,S)`), read in one pass over the
//! bytes with no allocation but a symbol's name. Anything else, and anything wrong, is left
//! to the full grammar ([`X86::parse_operand`](super::X86)), so errors and unusual forms read
//! exactly as they always did; a property test checks that both agree on every operand.

use super::{Extend, Location, Reg, RegClass, X86};
use crate::arg::grammar::is_symbol;
use crate::arg::ArgSpec;

/// A decimal integer (`-20`, `8`), read as the full grammar reads one term: the digits as
/// a `u64` (up to `u64::MAX`, beyond is the full grammar's to refuse), taken as two's
/// complement and negated after a `-`.
fn decimal(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    let v = v as i64;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// A displacement of a form compilers write: empty, `N`, `sym`, `sym+N`, `sym-N` or `N+sym`
/// (decimal numbers only), as (offset, symbol); `None` for anything else.
fn displacement(s: &str) -> Option<(i64, Option<&str>)> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Some((0, None));
    }
    if let Some(v) = decimal(b) {
        return Some((v, None));
    }
    // The first sign after the first byte (a leading `-` belongs to a number).
    let Some(at) = b[1..].iter().position(|&c| c == b'+' || c == b'-') else {
        return is_symbol(s).then_some((0, Some(s)));
    };
    let (left, right) = s.split_at(at + 1);
    if is_symbol(left) {
        // `sym+N` or `sym-N`: the sign is the number's own.
        let v = match right.as_bytes() {
            [b'+', rest @ ..] if rest.first() != Some(&b'-') => decimal(rest)?,
            _ => decimal(right.as_bytes())?,
        };
        return Some((v, Some(left)));
    }
    // `N+sym` (a subtracted symbol is the full grammar's error to report).
    let sym = right.strip_prefix('+')?;
    is_symbol(sym).then_some((decimal(left.as_bytes())?, Some(sym)))
}

impl X86 {
    /// A register named in lower case (`eax`, `r9w`, `xmm3`), as (register, width, shift).
    fn fast_reg(&self, name: &str) -> Option<(Reg, u8, u8)> {
        // `lookup` knows lower-case names only: an upper-case one is left to the full
        // grammar, which lower-cases it first.
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
                if b.len() < open + 2 || b[b.len() - 1] != b')' {
                    return None;
                }
                // Between the parentheses: `base`, or `base,index` and an optional `,scale`.
                let inner = &op[open + 1..op.len() - 1];
                let (offset, symbol) = displacement(&op[..open])?;
                let Some(comma) = inner.bytes().position(|c| c == b',') else {
                    let base = self.fast_address(inner, false)?;
                    return Some(match symbol {
                        None => Location::Deref { base, offset },
                        Some(sym) => Location::symbol(sym, offset, Some(base), None, 1),
                    });
                };
                let (base, rest) = (&inner[..comma], &inner[comma + 1..]);
                let (index, scale) = match rest.bytes().position(|c| c == b',') {
                    None => (rest, 1),
                    Some(c) => match &rest[c + 1..] {
                        "1" => (&rest[..c], 1),
                        "2" => (&rest[..c], 2),
                        "4" => (&rest[..c], 4),
                        "8" => (&rest[..c], 8),
                        _ => return None,
                    },
                };
                let base = match base {
                    "" => None,
                    b => Some(self.fast_address(b, false)?),
                };
                if base.is_some_and(|r| r.def().class == RegClass::Ip) {
                    return None;
                }
                let index = self.fast_address(index, true)?;
                Some(match symbol {
                    None => Location::Sib {
                        base,
                        index,
                        extend: Extend::None,
                        scale,
                        offset,
                    },
                    Some(sym) => Location::symbol(sym, offset, base, Some(index), scale),
                })
            }
        }
    }

    /// The argument at the start of `s` (`-4@-20(%rbp)`), when its size prefix is one digit
    /// and its operand a form [`parse_fast`](X86::parse_fast) takes: its spec and its length
    /// (it ends at the first whitespace). `None` leaves the argument to the general path
    /// (`split_args`, then the full grammar), whose answer would be the same.
    pub(crate) fn decode_fast(&self, s: &str) -> Option<(ArgSpec, usize)> {
        let b = s.as_bytes();
        let (signed, at) = match *b.first()? {
            b'-' => (true, 1),
            _ => (false, 0),
        };
        let size = match *b.get(at)? {
            d @ (b'1' | b'2' | b'4' | b'8') => u32::from(d - b'0'),
            _ => return None,
        };
        let float = b.get(at + 1) == Some(&b'f');
        let op = at + 2 + usize::from(float);
        if b.get(op - 1) != Some(&b'@') {
            return None;
        }
        // Whitespace and control bytes are all at or below the space; operands hold none.
        let end = match b[op..].iter().position(|&c| c <= b' ') {
            None => b.len(),
            Some(p) if b[op + p].is_ascii_whitespace() => op + p,
            Some(_) => return None,
        };
        // `op` follows `@` and `end` is at whitespace or the end: both are char boundaries.
        let location = self.parse_fast(&s[op..end])?;
        let spec = ArgSpec {
            size,
            signed,
            float,
            location,
        };
        Some((spec, end))
    }
}
