//! LoongArch (loongarch64) operands, as gcc and clang print them.
//!
//! Forms: registers `$r0`..`$r31` and their ABI names (`$zero $ra $tp $sp $a0`-`$a7 $t0`-`$t8
//! $fp`/`$s9 $s0`-`$s8`, and the old `$v0 $v1` for `$a0 $a1`; `$r21` has no ABI name),
//! floating-point registers `$f0`..`$f31` and `$fa0`-`$fa7 $ft0`-`$ft15 $fs0`-`$fs7` (and the
//! old `$fv0 $fv1`), bare integers as immediates, and memory. gcc prints a memory operand the
//! way loads take it, `$r3,8` (base, offset) or `$r12,$r13` (base, index: [`Location::Sib`]
//! with scale 1); clang writes `$sp, 8`. `8($r3)` is accepted too. Canonical names are
//! `r0`..`r31`.
//!
//! `$r0` always reads 0: as a base it would make an absolute address, which is rejected.
//! Low-part relocations (`$r12,%pc_lo12(sym)`) are not supported.

use super::forms::{immediate_or_register, pair, parenthesized, write_pair, Grammar};
use super::grammar::{split_parens, syntax};
use super::regs::{exact, place, run, Name, Regs, EMPTY, F, R};
use super::{Location, RegClass, RegDef};
use crate::arch::Arch;
use crate::error::ArgErrorKind;

/// The loongarch64 decoder.
pub(crate) static LOONGARCH64: Grammar = Grammar {
    regs: Regs::new(Arch::Loongarch64, &REGS, &NAMES)
        .sigil('$', false)
        .no_base(&[("r0", "it always reads 0 (an absolute address)")]),
    imm: "",
    parse,
    write: |regs, loc, out| write_pair(regs, loc, true, out),
};

/// Index of `f0` in [`REGS`].
const F0: usize = 33;

/// LoongArch registers. Offsets mirror `struct pt_regs` in the kernel's
/// `arch/loongarch/include/asm/ptrace.h`, whose start matches the uapi `struct user_pt_regs`
/// (`arch/loongarch/include/uapi/asm/ptrace.h`) BPF programs see: `regs[32]` at 8N, then
/// `orig_a0` at 256 and `csr_era` (the pc) at 264. The kernel saves `$r0` (as 0) in its
/// slot. Order: `r0`..`r31`, `pc`, `f0`..`f31` (not in `pt_regs`).
static REGS: [RegDef; 65] = {
    let t = place([EMPTY; 65], 0, &R, RegClass::General, Some((0, 8)));
    let t = place(t, 32, &["pc"], RegClass::Ip, Some((264, 0)));
    place(t, F0, &F, RegClass::Vector, None)
};

static NAMES: [Name; 16] = [
    run("r", 0, 32, 0),
    exact("zero", 0),
    exact("ra", 1),
    exact("tp", 2),
    exact("sp", 3),
    run("a", 0, 8, 4),
    run("v", 0, 2, 4),
    run("t", 0, 9, 12),
    exact("fp", 22),
    exact("s9", 22),
    run("s", 0, 9, 23),
    run("f", 0, 32, F0),
    run("fa", 0, 8, F0),
    run("fv", 0, 2, F0),
    run("ft", 0, 16, F0 + 8),
    run("fs", 0, 8, F0 + 24),
];

fn parse(regs: &Regs, op: &str) -> Result<Location, ArgErrorKind> {
    if let Some((first, second)) = op.split_once(',') {
        return pair(regs, op, first, second, true);
    }
    match split_parens(op).map_err(|r| syntax(op, r))? {
        Some((disp, inner)) => parenthesized(regs, op, disp, inner, false),
        None => immediate_or_register(regs, op, None),
    }
}

#[cfg(test)]
#[path = "loongarch_tests.rs"]
mod tests;
