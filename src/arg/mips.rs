//! MIPS operands (32- and 64-bit), as gcc prints them.
//!
//! Forms: registers `$0`..`$31`, `$sp`, `$fp`, `$s8`, `$ra`, `$gp` and the other ABI names,
//! floating-point registers `$f0`..`$f31`, bare integers as immediates, and memory `off($N)`
//! and `($N)`. Canonical names are `r0`..`r31`, written back as `$0`..`$31`.
//!
//! ABI names follow n32/n64 (`$a0`-`$a7` are $4-$11, `$t8 $t9` $24 $25), plus the o32-only
//! `$t4`-`$t7` ($12-$15, a name n64 does not use). `$t0`-`$t3` are rejected: o32 puts them at
//! $8-$11 and n32/n64 at $12-$15, and nothing in the operand says which ABI wrote it. gcc
//! prints numbers, so this only matters for hand-written assembly.
//!
//! The table is for 64-bit kernels: `struct pt_regs` in the kernel's
//! `arch/mips/include/asm/ptrace.h` is `regs[32]` at 8N, then `cp0_status`, `hi`, `lo`,
//! `cp0_badvaddr`, `cp0_cause` and `cp0_epc` (the pc) at 296. A 32-bit kernel puts
//! `unsigned long pad0[8]` first, so there `$N` is at 32 + 4N and the pc at 180 (184 with
//! `CONFIG_CPU_HAS_SMARTMIPS`, which adds `acx` before `cp0_badvaddr`). 32-bit processes on
//! a 64-bit kernel use the 64-bit layout. The kernel saves `$0` (as 0) in its slot.

use super::forms::{paren_family, write_paren_family, Grammar};
use super::grammar::{parse_displacement, syntax};
use super::regs::{exact, place, run, Name, Regs, Role, EMPTY, F, R};
use super::{Location, RegClass, RegDef};
use crate::arch::Arch;
use crate::error::ArgErrorKind;

/// The MIPS decoder.
pub(crate) static MIPS: Grammar = Grammar {
    regs: Regs::new(Arch::Mips, &REGS, &NAMES)
        .sigil('$', false)
        .bare_prefix("r")
        .no_base(&[("r0", "it always reads 0 (an absolute address)")]),
    imm: "",
    parse,
    write: write_paren_family::<false>,
};

/// MIPS registers (64-bit kernel layout, see the module documentation). Order: `r0`..`r31`,
/// `pc`, `f0`..`f31` (not in `pt_regs`).
static REGS: [RegDef; 65] = {
    let t = place([EMPTY; 65], 0, &R, RegClass::General, Some((0, 8)));
    let t = place(t, 32, &["pc"], RegClass::Ip, Some((296, 0)));
    place(t, 33, &F, RegClass::Vector, None)
};

static NAMES: [Name; 15] = [
    run("", 0, 32, 0),
    exact("zero", 0),
    exact("at", 1),
    run("v", 0, 2, 2),
    run("a", 0, 8, 4),
    run("t", 4, 8, 12),
    run("s", 0, 8, 16),
    run("t", 8, 10, 24),
    run("k", 0, 2, 26),
    exact("gp", 28),
    exact("sp", 29),
    exact("fp", 30),
    exact("s8", 30),
    exact("ra", 31),
    run("f", 0, 32, 33),
];

fn parse(regs: &Regs, op: &str) -> Result<Location, ArgErrorKind> {
    if let Some(name) = ambiguous_name(op) {
        return Err(syntax(
            op,
            format!(
                "`{name}` is ambiguous: $t0-$t3 are $8-$11 under o32 but $12-$15 under \
                 n32/n64; write the register number"
            ),
        ));
    }
    if let Some(loc) = relocated(regs, op)? {
        return Ok(loc);
    }
    paren_family::<false>(regs, op)
}

/// `%got_ofst(sym)($N)` (PIC: `$N` holds the `%got_page` of the symbol) or `%lo(sym)($N)`
/// (`$N` holds `%hi`): either way the operand addresses the symbol itself, so it decodes to
/// a symbol with no base register, like aarch64's `:lo12:`.
fn relocated(regs: &Regs, op: &str) -> Result<Option<Location>, ArgErrorKind> {
    let Some(rest) = op
        .strip_prefix("%got_ofst(")
        .or_else(|| op.strip_prefix("%lo("))
    else {
        return Ok(None);
    };
    let (expr, tail) = rest
        .split_once(')')
        .ok_or_else(|| syntax(op, "unbalanced parentheses"))?;
    let reg = tail
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| syntax(op, "expected `(register)` after the relocation"))?;
    regs.address(reg, op, Role::Base)?;
    let d = parse_displacement(expr).map_err(|r| syntax(op, r))?;
    let symbol = d
        .symbol
        .ok_or_else(|| syntax(op, "relocation without a symbol"))?;
    Ok(Some(Location::symbol_itself(symbol, d.offset)))
}

/// The first `$t0`..`$t3` in `op`, in any case.
fn ambiguous_name(op: &str) -> Option<String> {
    let lower = op.to_ascii_lowercase();
    lower.match_indices("$t").find_map(|(i, _)| {
        let digits = lower[i + 2..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let name = &lower[i..i + 2 + digits];
        matches!(&name[2..], "0" | "1" | "2" | "3").then(|| name.to_string())
    })
}

#[cfg(test)]
#[path = "mips_tests.rs"]
mod tests;
