//! Operand forms several architectures share, and the table-driven decoder built from them.
//!
//! Outside x86, operand grammars come in a few families: bracketed memory `[base, off]`
//! (aarch64, arm), parenthesized memory `off(base)` (riscv, s390x, powerpc, mips, loongarch)
//! and comma pairs `base,index` (powerpc, loongarch); immediates are bare numbers or carry a
//! marker (`#` on arm). Each architecture's file describes its registers as data and picks
//! its forms from here; [`Grammar`] turns that into an [`ArchDecoder`].

use super::grammar::{
    lsl_scale, numeric_displacement, parse_int, split_brackets, split_parens, syntax, write_parens,
};
use super::regs::{Regs, Role};
use super::{ArchDecoder, Extend, Location, RegClass, RegDef};
use crate::arch::Arch;
use crate::error::ArgErrorKind;

/// A decoder made of a register set, the immediate marker, and two functions for the rest
/// of the grammar.
pub(crate) struct Grammar {
    /// The architecture's registers and addressing rules.
    pub regs: Regs,
    /// What immediates are written with (`#` on arm, `i` on powerpc, nothing elsewhere).
    pub imm: &'static str,
    /// Decode an operand.
    pub parse: fn(&Regs, &str) -> Result<Location, ArgErrorKind>,
    /// Write a memory location; `false` when the architecture has no syntax for it.
    pub write: fn(&Regs, &Location, &mut String) -> bool,
}

impl ArchDecoder for Grammar {
    fn arch(&self) -> Arch {
        self.regs.arch
    }

    fn registers(&self) -> &'static [RegDef] {
        self.regs.table
    }

    fn parse_operand(&self, operand: &str) -> Result<Location, ArgErrorKind> {
        (self.parse)(&self.regs, operand)
    }

    fn write_operand(&self, loc: &Location, out: &mut String) -> bool {
        match *loc {
            Location::Const(v) => {
                out.push_str(self.imm);
                out.push_str(&v.to_string());
                true
            }
            Location::Reg { reg, shift: 0 } if reg.def().class != RegClass::Vector => {
                self.regs.write(reg, out)
            }
            Location::FpReg { reg } if reg.def().class == RegClass::Vector => {
                self.regs.write(reg, out)
            }
            Location::Reg { .. } | Location::FpReg { .. } => false,
            _ => (self.write)(&self.regs, loc, out),
        }
    }
}

/// An immediate, after an optional `marker` (`#5` on arm), or else a register.
pub(crate) fn immediate_or_register(
    regs: &Regs,
    op: &str,
    marker: Option<char>,
) -> Result<Location, ArgErrorKind> {
    let (marked, text) = match marker.and_then(|m| op.strip_prefix(m)) {
        Some(text) => (true, text),
        None => (false, op),
    };
    if let Some(v) = parse_int(text) {
        return Ok(Location::Const(v));
    }
    let numeric = text.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
    if marked || numeric {
        return Err(syntax(op, format!("`{text}` is not an integer")));
    }
    regs.value(op)
}

/// The parts of a bracketed operand, or `None` when it has no brackets.
pub(crate) fn brackets(op: &str) -> Result<Option<Vec<&str>>, ArgErrorKind> {
    split_brackets(op).map_err(|r| syntax(op, r))
}

/// Bracketed memory: `[base]`, `[base, off]`, `[base, #off]`, `[base, index]` or
/// `[base, index, lsl #n]`.
pub(crate) fn bracketed(regs: &Regs, op: &str, parts: &[&str]) -> Result<Location, ArgErrorKind> {
    let base = regs.address(parts[0], op, Role::Base)?;
    let (second, shift) = match *parts {
        [_] => return Ok(Location::Deref { base, offset: 0 }),
        [_, second] => (second, None),
        [_, second, shift] => (second, Some(shift)),
        _ => return Err(syntax(op, "too many parts between the brackets")),
    };
    if shift.is_none() {
        if let Some(offset) = parse_int(second.strip_prefix('#').unwrap_or(second)) {
            return Ok(Location::Deref { base, offset });
        }
    }
    if regs.find(second).is_none() {
        return Err(syntax(
            op,
            format!("`{second}` is neither an offset nor an index register"),
        ));
    }
    let index = regs.address(second, op, Role::Index)?;
    let scale = match shift {
        None => 1,
        Some(s) => lsl_scale(s).map_err(|r| syntax(op, r))?,
    };
    Ok(Location::Sib {
        base: Some(base),
        index,
        extend: Extend::None,
        scale,
        offset: 0,
    })
}

/// Write bracketed memory; offsets carry `imm` (`#` on arm, nothing on aarch64).
pub(crate) fn write_bracketed(regs: &Regs, loc: &Location, imm: &str, out: &mut String) -> bool {
    out.push('[');
    let ok = match *loc {
        Location::Deref { base, offset } => {
            let ok = regs.write_address(base, Role::Base, out);
            if offset != 0 {
                out.push_str(&format!(", {imm}{offset}"));
            }
            ok
        }
        Location::Sib {
            base: Some(base),
            index,
            extend: Extend::None,
            scale,
            offset: 0,
        } if matches!(scale, 1 | 2 | 4 | 8) => {
            let ok = regs.write_address(base, Role::Base, out);
            out.push_str(", ");
            let ok = regs.write_address(index, Role::Index, out) && ok;
            if scale > 1 {
                out.push_str(&format!(", lsl #{}", scale.trailing_zeros()));
            }
            ok
        }
        _ => false,
    };
    out.push(']');
    ok
}

/// Parenthesized memory, immediates and registers (riscv, s390x, mips): `off(base)`, with
/// `PAIRS` also s390x's `off(index,base)`, a bare integer, or a register.
pub(crate) fn paren_family<const PAIRS: bool>(
    regs: &Regs,
    op: &str,
) -> Result<Location, ArgErrorKind> {
    match split_parens(op).map_err(|r| syntax(op, r))? {
        Some((disp, inner)) => parenthesized(regs, op, disp, inner, PAIRS),
        None => immediate_or_register(regs, op, None),
    }
}

/// `disp(base)`, and with `pairs` `disp(index,base)`: the displacement is numeric.
pub(crate) fn parenthesized(
    regs: &Regs,
    op: &str,
    disp: &str,
    inner: &str,
    pairs: bool,
) -> Result<Location, ArgErrorKind> {
    let offset = numeric_displacement(disp).map_err(|r| syntax(op, r))?;
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(syntax(op, "missing register between the parentheses"));
    }
    match parts[..] {
        [base] => Ok(Location::Deref {
            base: regs.address(base, op, Role::Base)?,
            offset,
        }),
        [index, base] if pairs => Ok(Location::Sib {
            index: regs.address(index, op, Role::Index)?,
            extend: Extend::None,
            base: Some(regs.address(base, op, Role::Base)?),
            scale: 1,
            offset,
        }),
        _ => Err(syntax(op, "too many registers between the parentheses")),
    }
}

/// Write memory as [`paren_family`] reads it: `off(base)` (and `off(index,base)` with
/// `PAIRS`).
pub(crate) fn write_paren_family<const PAIRS: bool>(
    regs: &Regs,
    loc: &Location,
    out: &mut String,
) -> bool {
    let mut inner = String::new();
    let (offset, ok) = match *loc {
        Location::Deref { base, offset } => {
            (offset, regs.write_address(base, Role::Base, &mut inner))
        }
        Location::Sib {
            base: Some(base),
            index,
            extend: Extend::None,
            scale: 1,
            offset,
        } if PAIRS => {
            let ok = regs.write_address(index, Role::Index, &mut inner);
            inner.push(',');
            (
                offset,
                regs.write_address(base, Role::Base, &mut inner) && ok,
            )
        }
        _ => return false,
    };
    write_parens(out, offset, &inner);
    ok
}

/// A comma pair `first,second` (powerpc `ra,rb`, loongarch `$rj,$rk`): base then index
/// register, or with `offsets` base then a numeric offset (loongarch `$rj,off`).
pub(crate) fn pair(
    regs: &Regs,
    op: &str,
    first: &str,
    second: &str,
    offsets: bool,
) -> Result<Location, ArgErrorKind> {
    let (first, second) = (first.trim(), second.trim());
    if first.is_empty() || second.is_empty() || second.contains(',') {
        return Err(syntax(op, "expected two comma-separated parts"));
    }
    let base = regs.address(first, op, Role::Base)?;
    if offsets && regs.find(second).is_none() {
        let offset = numeric_displacement(second).map_err(|r| syntax(op, r))?;
        return Ok(Location::Deref { base, offset });
    }
    Ok(Location::Sib {
        base: Some(base),
        index: regs.address(second, op, Role::Index)?,
        extend: Extend::None,
        scale: 1,
        offset: 0,
    })
}

/// Write a comma pair: `base,index`, and with `offsets` `base,off`.
pub(crate) fn write_pair(regs: &Regs, loc: &Location, offsets: bool, out: &mut String) -> bool {
    match *loc {
        Location::Deref { base, offset } if offsets => {
            let ok = regs.write_address(base, Role::Base, out);
            out.push_str(&format!(",{offset}"));
            ok
        }
        Location::Sib {
            base: Some(base),
            index,
            extend: Extend::None,
            scale: 1,
            offset: 0,
        } => {
            let ok = regs.write_address(base, Role::Base, out);
            out.push(',');
            regs.write_address(index, Role::Index, out) && ok
        }
        _ => false,
    }
}
