//! AArch64 operands, as gcc and clang print them.
//!
//! Forms: registers `x0`..`x30` and `sp`, their 32-bit views `w0`..`w30` and `wsp` (the value
//! is the same canonical register; the size prefix says how much of it counts), vector and
//! floating-point registers `v0`..`v31` and their `q`, `d`, `s`, `h`, `b` views, immediates
//! without a marker or with `#` (`5`, `#-5`), and memory `[base]`, `[base, off]`,
//! `[base, #off]`, `[base, index]`, `[base, index, lsl #n]` and extended 32-bit indexes
//! `[base, wN, sxtw #n]` / `uxtw` (gcc's `a[i]` with an `int i`).
//!
//! `[x1, #:lo12:sym]` (also without `#`, and `sym+N`) is the second half of an `adrp x1, sym`
//! pair: `x1` holds the symbol's 4 KiB page and `:lo12:` adds the low 12 bits, so the operand
//! addresses the symbol itself. It decodes to [`Location::Symbol`] with no base register;
//! [`ArgSpec::to_text`](super::ArgSpec::to_text) writes `x0` in place of the page register,
//! which the location does not keep. Other relocation operators (`:got_lo12:`, which reads a
//! GOT slot) are rejected.

use super::forms::{bracketed, brackets, immediate_or_register, write_bracketed, Grammar};
use super::grammar::{is_symbol, parse_displacement, syntax};
use super::regs::{exact, numbered, place, run, Name, Regs, Role, EMPTY};
use super::{Extend, Location, RegClass, RegDef};
use crate::arch::Arch;
use crate::error::ArgErrorKind;

/// The AArch64 decoder.
pub(crate) static AARCH64: Grammar = Grammar {
    regs: Regs::new(Arch::Aarch64, &REGS, &NAMES).no_index(&["sp"]),
    imm: "",
    parse,
    write,
};

const X: [&str; 32] = numbered!("x");
const V: [&str; 32] = numbered!("v");

/// Index of `v0` in [`REGS`].
const V0: usize = 33;

/// AArch64 registers. Offsets mirror `struct user_pt_regs` in the kernel's
/// `arch/arm64/include/uapi/asm/ptrace.h` (`regs[31]` at 0, `sp` at 248, `pc` at 256), which is
/// also the start of the kernel's own `struct pt_regs` and what BPF programs see. Order:
/// `x0`..`x30`, `sp`, `pc`, `v0`..`v31` (not in `pt_regs`).
static REGS: [RegDef; 65] = {
    let t = place(
        [EMPTY; 65],
        0,
        X.split_at(31).0,
        RegClass::General,
        Some((0, 8)),
    );
    let t = place(t, 31, &["sp"], RegClass::General, Some((248, 0)));
    let t = place(t, 32, &["pc"], RegClass::Ip, Some((256, 0)));
    place(t, V0, &V, RegClass::Vector, None)
};

/// Names operands use. `pc` is not one of them: it is in the table for pc-relative uses.
static NAMES: [Name; 10] = [
    run("x", 0, 31, 0),
    run("w", 0, 31, 0).view(),
    exact("sp", 31),
    exact("wsp", 31).view(),
    run("v", 0, 32, V0),
    run("q", 0, 32, V0),
    run("d", 0, 32, V0),
    run("s", 0, 32, V0),
    run("h", 0, 32, V0),
    run("b", 0, 32, V0),
];

fn parse(regs: &Regs, op: &str) -> Result<Location, ArgErrorKind> {
    let Some(parts) = brackets(op)? else {
        return immediate_or_register(regs, op, Some('#'));
    };
    match parts[..] {
        [base, second] => {
            if let Some(reloc) = second.strip_prefix('#').unwrap_or(second).strip_prefix(':') {
                return low12(regs, op, base, reloc);
            }
        }
        [base, index, ext] => {
            if let Some(loc) = extended_index(regs, op, base, index, ext)? {
                return Ok(loc);
            }
        }
        _ => {}
    }
    bracketed(regs, op, &parts)
}

/// `[base, wN, sxtw #n]` and `[base, wN, uxtw #n]` (the index's low 32 bits, extended, then
/// shifted by 0 to 3), and `[base, xN, sxtx #n]` / `uxtx` (the whole register: the same as
/// `lsl`). `None` when `ext` is not an extend operator.
fn extended_index(
    regs: &Regs,
    op: &str,
    base: &str,
    index: &str,
    ext: &str,
) -> Result<Option<Location>, ArgErrorKind> {
    let (name, amount) = ext.split_once([' ', '#']).unwrap_or((ext, ""));
    let (extend, role) = match name.to_ascii_lowercase().as_str() {
        "sxtw" => (Extend::Sxtw, Role::Index32),
        "uxtw" => (Extend::Uxtw, Role::Index32),
        "sxtx" | "uxtx" => (Extend::None, Role::Index),
        _ => return Ok(None),
    };
    let amount = amount.trim_start().trim_start_matches('#');
    let scale = match amount {
        "" | "0" => 1,
        "1" => 2,
        "2" => 4,
        "3" => 8,
        _ => return Err(syntax(op, format!("index shift `{ext}` is not 0 to 3"))),
    };
    Ok(Some(Location::Sib {
        base: Some(regs.address(base, op, Role::Base)?),
        index: regs.address(index, op, role)?,
        extend,
        scale,
        offset: 0,
    }))
}

/// `[base, #:lo12:sym+N]`: `reloc` is the text after the first colon.
fn low12(regs: &Regs, op: &str, base: &str, reloc: &str) -> Result<Location, ArgErrorKind> {
    regs.address(base, op, Role::Base)?;
    let (operator, expr) = reloc
        .split_once(':')
        .ok_or_else(|| syntax(op, "unterminated `:operator:`"))?;
    if operator != "lo12" {
        return Err(syntax(
            op,
            format!("relocation operator `:{operator}:` is not supported (only `:lo12:`)"),
        ));
    }
    let d = parse_displacement(expr).map_err(|r| syntax(op, r))?;
    let symbol = d
        .symbol
        .ok_or_else(|| syntax(op, "`:lo12:` without a symbol"))?;
    Ok(Location::symbol_itself(symbol, d.offset))
}

fn write(regs: &Regs, loc: &Location, out: &mut String) -> bool {
    match loc {
        Location::Symbol(s)
            if s.base.is_none() && s.index.is_none() && s.scale == 1 && is_symbol(&s.symbol) =>
        {
            out.push_str("[x0, #:lo12:");
            out.push_str(&s.symbol);
            if s.offset != 0 {
                out.push_str(&format!("{:+}", s.offset));
            }
            out.push(']');
            true
        }
        Location::Sib {
            base: Some(base),
            index,
            extend: extend @ (Extend::Sxtw | Extend::Uxtw),
            scale,
            offset: 0,
        } if matches!(scale, 1 | 2 | 4 | 8) => {
            out.push('[');
            let ok = regs.write_address(*base, Role::Base, out);
            let Some(n) = index.name().strip_prefix('x') else {
                return false;
            };
            out.push_str(", w");
            out.push_str(n);
            out.push_str(", ");
            out.push_str(extend.name().unwrap_or_default());
            if *scale > 1 {
                out.push_str(&format!(" #{}", scale.trailing_zeros()));
            }
            out.push(']');
            ok
        }
        _ => write_bracketed(regs, loc, "", out),
    }
}

#[cfg(test)]
#[path = "aarch64_tests.rs"]
mod tests;
