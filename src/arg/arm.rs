//! 32-bit Arm operands (A32 and T32), as gcc and clang print them.
//!
//! Forms: registers `r0`..`r15` and their aliases `fp` (r11), `ip` (r12), `sp` (r13), `lr`
//! (r14), `pc` (r15), plus the APCS names `sb` (r9) and `sl` (r10); immediates `#5`, `#-5`
//! and bare numbers; memory `[base]`, `[base, #off]` (also without `#`), `[base, index]` and
//! `[base, index, lsl #n]`; VFP registers `s0`..`s31` and `d0`..`d31`.
//!
//! The VFP registers overlap (`s0` and `s1` are the halves of `d0`; `d16`..`d31` have no
//! single-precision views), but a location cannot say "the high half of", so each name is its
//! own [`RegClass::Vector`] entry. None of them is in `pt_regs`.

use super::forms::{bracketed, brackets, immediate_or_register, write_bracketed, Grammar};
use super::regs::{exact, numbered, place, run, Name, Regs, EMPTY, R};
use super::{Location, RegClass, RegDef};
use crate::arch::Arch;
use crate::error::ArgErrorKind;

/// The 32-bit Arm decoder.
pub(crate) static ARM: Grammar = Grammar {
    regs: Regs::new(Arch::Arm, &REGS, &NAMES),
    imm: "#",
    parse,
    write: |regs, loc, out| write_bracketed(regs, loc, "#", out),
};

/// Arm registers. Offsets mirror `struct pt_regs` in the kernel's
/// `arch/arm/include/uapi/asm/ptrace.h`: `long uregs[18]`, `r0`..`r15` at `uregs[n]`, 4n
/// (`ARM_pc` is `uregs[15]`, so `r15` is the instruction pointer, at 60). Order: `r0`..`r15`,
/// `s0`..`s31`, `d0`..`d31`.
static REGS: [RegDef; 80] = {
    let t = place(
        [EMPTY; 80],
        0,
        R.split_at(15).0,
        RegClass::General,
        Some((0, 4)),
    );
    let t = place(t, 15, &["r15"], RegClass::Ip, Some((60, 0)));
    let t = place(t, 16, &numbered!("s"), RegClass::Vector, None);
    place(t, 48, &numbered!("d"), RegClass::Vector, None)
};

static NAMES: [Name; 10] = [
    run("r", 0, 16, 0),
    exact("sb", 9),
    exact("sl", 10),
    exact("fp", 11),
    exact("ip", 12),
    exact("sp", 13),
    exact("lr", 14),
    exact("pc", 15),
    run("s", 0, 32, 16),
    run("d", 0, 32, 48),
];

fn parse(regs: &Regs, op: &str) -> Result<Location, ArgErrorKind> {
    match brackets(op)? {
        Some(parts) => bracketed(regs, op, &parts),
        None => immediate_or_register(regs, op, Some('#')),
    }
}

#[cfg(test)]
#[path = "arm_tests.rs"]
mod tests;
