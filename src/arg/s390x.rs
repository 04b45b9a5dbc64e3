//! s390x operands, as gcc and clang print them.
//!
//! Forms: registers `%r0`..`%r15`, floating-point registers `%f0`..`%f15`, bare integers as
//! immediates, and memory `off(%rB)` and `off(%rX,%rB)` (index X, then base B: the machine's
//! D(X,B) order), decoded as [`Location::Deref`](super::Location::Deref) and
//! [`Location::Sib`](super::Location::Sib) with scale 1.
//!
//! In an address, register 0 means "no register", not the value of `%r0`; gcc never names it
//! there, and usdtkit rejects it rather than guess.
//!
//! The table is the 64-bit one. 31-bit s390 binaries (ELFCLASS32 `EM_S390`) run on 64-bit
//! kernels, whose `pt_regs` is the same, so the offsets hold for them too.

use super::forms::{paren_family, write_paren_family, Grammar};
use super::regs::{place, run, Name, Regs, EMPTY, F, R};
use super::{RegClass, RegDef};
use crate::arch::Arch;

/// The s390x decoder.
pub(crate) static S390X: Grammar = Grammar {
    regs: Regs::new(Arch::S390x, &REGS, &NAMES)
        .sigil('%', false)
        .no_base(&[("r0", "register 0 in an address means no register")])
        .no_index(&["r0"]),
    imm: "",
    parse: paren_family::<true>,
    write: write_paren_family::<true>,
};

/// s390x registers. Offsets mirror the kernel's `struct pt_regs`
/// (`arch/s390/include/asm/ptrace.h`), whose start is the uapi `user_pt_regs`
/// (`arch/s390/include/uapi/asm/ptrace.h`) BPF programs see: `unsigned long args[1]` at 0,
/// `psw_t psw` (`mask` at 8, `addr` at 16: the pc), `gprs[16]` at 24, so `%rN` is at 24 + 8N.
/// Order: `r0`..`r15`, `pc`, `f0`..`f15` (not in `pt_regs`).
static REGS: [RegDef; 33] = {
    let t = place(
        [EMPTY; 33],
        0,
        R.split_at(16).0,
        RegClass::General,
        Some((24, 8)),
    );
    let t = place(t, 16, &["pc"], RegClass::Ip, Some((16, 0)));
    place(t, 17, F.split_at(16).0, RegClass::Vector, None)
};

static NAMES: [Name; 2] = [run("r", 0, 16, 0), run("f", 0, 16, 17)];

#[cfg(test)]
#[path = "s390x_tests.rs"]
mod tests;
