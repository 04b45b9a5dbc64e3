//! PowerPC operands (powerpc64 of either byte order, and 32-bit powerpc), as gcc prints them.
//!
//! sys/sdt.h prints powerpc operands with `%I[id]%[id]`: an immediate gets an `i` prefix, and
//! registers are plain numbers unless gcc runs with `-mregnames`. So a bare number is a
//! register (`-4@0` is r0, `8@31` is r31) and `i5`, `i-5` are immediates. Other forms:
//! `%r3` and `r3`, memory `off(reg)` with any of those register spellings (`8@-8(31)`,
//! `-8(%r31)`), the indexed form `ra,rb` (address `ra + rb`: [`Location::Sib`] with scale 1),
//! and floating-point registers `%f1`, `f1` (not in `pt_regs`).
//!
//! In a base position register 0 means the number 0, not the value of r0 (gcc puts r0
//! second in `ra,rb`, where it is a register); usdtkit rejects r0 as a base rather than guess.
//! TOC-relative operands such as `sym@toc@l(9)` are not supported.

use super::forms::{pair, parenthesized, write_pair, write_paren_family, Grammar};
use super::grammar::{parse_int, split_parens, syntax};
use super::regs::{place, run, Name, Regs, EMPTY, F, R};
use super::{Location, RegClass, RegDef};
use crate::arch::Arch;
use crate::error::ArgErrorKind;

/// The powerpc64 decoder (big- and little-endian).
pub(crate) static POWERPC64: Grammar = Grammar {
    regs: regs(Arch::Powerpc64, &REGS_64),
    imm: "i",
    parse,
    write,
};

/// The 32-bit powerpc decoder.
pub(crate) static POWERPC: Grammar = Grammar {
    regs: regs(Arch::Powerpc, &REGS_32),
    imm: "i",
    parse,
    write,
};

const fn regs(arch: Arch, table: &'static [RegDef]) -> Regs {
    Regs::new(arch, table, &NAMES)
        .sigil('%', true)
        .no_base(&[("r0", "register 0 as a base means the number 0")])
}

/// The table for a word size. Offsets mirror `struct pt_regs` in the kernel's
/// `arch/powerpc/include/uapi/asm/ptrace.h` (also `user_pt_regs`, what BPF programs see):
/// `unsigned long gpr[32]` at 0, then `nip` (the pc) at 32 words: rN at 8N and the pc at
/// 256 on powerpc64, 4N and 128 on 32-bit powerpc. A 32-bit process traced by a 64-bit
/// kernel is described by the 64-bit layout; the attach layer maps these registers onto it.
/// Order: r0..r31, `pc`, f0..f31 (not in `pt_regs`).
const fn table(word: u16) -> [RegDef; 65] {
    let t = place([EMPTY; 65], 0, &R, RegClass::General, Some((0, word)));
    let t = place(t, 32, &["pc"], RegClass::Ip, Some((32 * word, 0)));
    place(t, 33, &F, RegClass::Vector, None)
}

static REGS_64: [RegDef; 65] = table(8);
static REGS_32: [RegDef; 65] = table(4);

/// A bare number, `r3` (or `%r3`), `f1` (or `%f1`).
static NAMES: [Name; 3] = [run("", 0, 32, 0), run("r", 0, 32, 0), run("f", 0, 32, 33)];

fn parse(regs: &Regs, op: &str) -> Result<Location, ArgErrorKind> {
    if let Some(imm) = op.strip_prefix('i') {
        return parse_int(imm)
            .map(Location::Const)
            .ok_or_else(|| syntax(op, format!("`{imm}` is not an integer")));
    }
    if let Some((disp, inner)) = split_parens(op).map_err(|r| syntax(op, r))? {
        return parenthesized(regs, op, disp, inner, false);
    }
    if let Some((first, second)) = op.split_once(',') {
        return pair(regs, op, first, second, false);
    }
    if op.starts_with(['-', '+']) {
        return Err(syntax(
            op,
            "a bare number is a register number on powerpc; immediates are written `iN`",
        ));
    }
    regs.value(op)
}

fn write(regs: &Regs, loc: &Location, out: &mut String) -> bool {
    match loc {
        Location::Deref { .. } => write_paren_family::<false>(regs, loc, out),
        _ => write_pair(regs, loc, false, out),
    }
}

#[cfg(test)]
#[path = "powerpc_tests.rs"]
mod tests;
