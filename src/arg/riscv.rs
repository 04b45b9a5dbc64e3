//! RISC-V operands (riscv64 and riscv32), as gcc and clang print them.
//!
//! Forms: integer registers by ABI name (`zero ra sp gp tp t0`-`t6 s0`-`s11 a0`-`a7`, `fp`
//! for `s0`) or number (`x0`..`x31`), floating-point registers by ABI name (`ft0`-`ft11`,
//! `fs0`-`fs11`, `fa0`-`fa7`) or number (`f0`..`f31`), bare integers as immediates, and
//! memory `off(reg)` and `(reg)`. Canonical names are the ABI names.
//!
//! `zero` (x0) is hard-wired to 0 and has no slot in `pt_regs` (offset 0 holds the pc), so its
//! `pt_regs_offset` is `None`; it cannot be a base register (that would be an absolute
//! address).

use super::forms::{paren_family, write_paren_family, Grammar};
use super::regs::{exact, place, run, Name, Regs, EMPTY};
use super::{RegClass, RegDef};
use crate::arch::Arch;

/// The riscv64 decoder.
pub(crate) static RISCV64: Grammar = Grammar {
    regs: Regs::new(Arch::Riscv64, &REGS_64, &NAMES).no_base(NO_BASE),
    imm: "",
    parse: paren_family::<false>,
    write: write_paren_family::<false>,
};

/// The riscv32 decoder.
pub(crate) static RISCV32: Grammar = Grammar {
    regs: Regs::new(Arch::Riscv32, &REGS_32, &NAMES).no_base(NO_BASE),
    imm: "",
    parse: paren_family::<false>,
    write: write_paren_family::<false>,
};

const NO_BASE: &[(&str, &str)] = &[("zero", "it always reads 0 (an absolute address)")];

/// ABI names of x0..x31.
const X: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];

/// ABI names of f0..f31.
const F: [&str; 32] = [
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2",
    "fa3", "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9",
    "fs10", "fs11", "ft8", "ft9", "ft10", "ft11",
];

/// Index of `pc` and of `f0` in the tables.
const PC: usize = 32;
const F0: usize = 33;

/// The table for a word size. Offsets mirror `struct pt_regs` in the kernel's
/// `arch/riscv/include/asm/ptrace.h` (the same layout as the uapi `struct user_regs_struct`
/// BPF programs see): `epc` first, then `ra` (x1) ... `t6` (x31) in register order, one
/// `unsigned long` each, so xN is at N words and the pc at 0. Order: x0..x31, `pc`,
/// f0..f31 (not in `pt_regs`).
const fn table(word: u16) -> [RegDef; 65] {
    let t = place([EMPTY; 65], 0, &X, RegClass::General, Some((0, word)));
    let t = place(t, 0, &["zero"], RegClass::General, None);
    let t = place(t, PC, &["pc"], RegClass::Ip, Some((0, 0)));
    place(t, F0, &F, RegClass::Vector, None)
}

static REGS_64: [RegDef; 65] = table(8);
static REGS_32: [RegDef; 65] = table(4);

static NAMES: [Name; 18] = [
    run("x", 0, 32, 0),
    exact("zero", 0),
    exact("ra", 1),
    exact("sp", 2),
    exact("gp", 3),
    exact("tp", 4),
    run("t", 0, 3, 5),
    run("s", 0, 2, 8),
    exact("fp", 8),
    run("a", 0, 8, 10),
    run("s", 2, 12, 18),
    run("t", 3, 7, 28),
    run("f", 0, 32, F0),
    run("ft", 0, 8, F0),
    run("fs", 0, 2, F0 + 8),
    run("fa", 0, 8, F0 + 10),
    run("fs", 2, 12, F0 + 18),
    run("ft", 8, 12, F0 + 28),
];

#[cfg(test)]
#[path = "riscv_tests.rs"]
mod tests;
