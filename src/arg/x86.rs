//! x86-64 and i386 operands (AT&T syntax, as gcc and clang print them).
//!
//! Forms: `%reg` of every width (including `%ah`..`%dh`), `$imm`, `disp(%base)`,
//! `disp(%base,%index,scale)` with any part missing, symbol displacements (`sym(%rip)`,
//! `N+sym(%rip)`, `table(,%rcx,8)`, bare `counter` on i386), summed displacements and `%xmm`.

use std::borrow::Cow;

use super::grammar::{parse_displacement, split_parens};
use super::{ArchDecoder, Extend, Location, Reg, RegClass, RegDef};
use crate::arch::Arch;
use crate::error::ArgErrorKind;

/// The x86-64 decoder.
pub(crate) static X86_64: X86 = X86 { is_64: true };
/// The i386 decoder.
pub(crate) static I386: X86 = X86 { is_64: false };

/// The x86 decoder of `arch`, if it is x86.
pub(crate) fn for_arch(arch: Arch) -> Option<&'static X86> {
    match arch {
        Arch::X86_64 => Some(&X86_64),
        Arch::I386 => Some(&I386),
        _ => None,
    }
}

pub(crate) struct X86 {
    is_64: bool,
}

const fn gpr(name: &'static str, off: u16) -> RegDef {
    RegDef {
        name,
        pt_regs_offset: Some(off),
        class: RegClass::General,
    }
}

const fn vec(name: &'static str) -> RegDef {
    RegDef {
        name,
        pt_regs_offset: None,
        class: RegClass::Vector,
    }
}

const XMM_NAMES: [&str; 32] = [
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
    "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
    "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30",
    "xmm31",
];

/// x86-64 registers. Offsets mirror `struct pt_regs` in the kernel's
/// `arch/x86/include/asm/ptrace.h` (the `__x86_64__` variant): r15 at 0 up to ss at 160.
/// Order: the 16 GPRs in encoding order (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15),
/// then rip, then xmm0..xmm31.
static REGS_64: [RegDef; 49] = {
    let gprs = [
        gpr("rax", 80),
        gpr("rcx", 88),
        gpr("rdx", 96),
        gpr("rbx", 40),
        gpr("rsp", 152),
        gpr("rbp", 32),
        gpr("rsi", 104),
        gpr("rdi", 112),
        gpr("r8", 72),
        gpr("r9", 64),
        gpr("r10", 56),
        gpr("r11", 48),
        gpr("r12", 24),
        gpr("r13", 16),
        gpr("r14", 8),
        gpr("r15", 0),
        RegDef {
            name: "rip",
            pt_regs_offset: Some(128),
            class: RegClass::Ip,
        },
    ];
    let mut t = [vec(""); 49];
    let mut i = 0;
    while i < 49 {
        t[i] = if i < 17 {
            gprs[i]
        } else {
            vec(XMM_NAMES[i - 17])
        };
        i += 1;
    }
    t
};

/// i386 registers. Offsets mirror the 32-bit `struct pt_regs` in the kernel's
/// `arch/x86/include/asm/ptrace.h` (bx at 0 ... ax at 24, ip at 48, sp at 60). A 32-bit
/// process traced by a 64-bit kernel is described by the 64-bit `pt_regs`; the attach layer
/// maps these registers onto it.
static REGS_32: [RegDef; 17] = [
    gpr("eax", 24),
    gpr("ecx", 4),
    gpr("edx", 8),
    gpr("ebx", 0),
    gpr("esp", 60),
    gpr("ebp", 20),
    gpr("esi", 12),
    gpr("edi", 16),
    RegDef {
        name: "eip",
        pt_regs_offset: Some(48),
        class: RegClass::Ip,
    },
    vec("xmm0"),
    vec("xmm1"),
    vec("xmm2"),
    vec("xmm3"),
    vec("xmm4"),
    vec("xmm5"),
    vec("xmm6"),
    vec("xmm7"),
];

/// Legacy register names by encoding number: 32-bit, 16-bit, low byte, high byte.
const LEGACY: [(&str, &str, &str, Option<&str>); 8] = [
    ("eax", "ax", "al", Some("ah")),
    ("ecx", "cx", "cl", Some("ch")),
    ("edx", "dx", "dl", Some("dh")),
    ("ebx", "bx", "bl", Some("bh")),
    ("esp", "sp", "spl", None),
    ("ebp", "bp", "bpl", None),
    ("esi", "si", "sil", None),
    ("edi", "di", "dil", None),
];

/// Encoding number of the two-letter stem of a legacy register (`ax` 0, `cx` 1, `dx` 2,
/// `bx` 3, `sp` 4, `bp` 5, `si` 6, `di` 7), the order of [`LEGACY`].
fn stem(s: &[u8]) -> Option<usize> {
    Some(match s {
        b"ax" => 0,
        b"cx" => 1,
        b"dx" => 2,
        b"bx" => 3,
        b"sp" => 4,
        b"bp" => 5,
        b"si" => 6,
        b"di" => 7,
        _ => return None,
    })
}

/// A legacy register name (`rax`, `eax`, `ax`, `al`, `ah`, `sil`...) as (encoding number,
/// width in bytes, bit shift), matched on bytes: parsing hot path, no string comparisons
/// in a loop. `spl`/`bpl`/`sil`/`dil` and the `r` names exist only in 64-bit mode.
fn legacy(name: &[u8], is_64: bool) -> Option<(usize, u8, u8)> {
    match *name {
        [c @ (b'a' | b'c' | b'd' | b'b'), half @ (b'l' | b'h')] => {
            let i = match c {
                b'a' => 0,
                b'c' => 1,
                b'd' => 2,
                _ => 3,
            };
            Some((i, 1, if half == b'h' { 8 } else { 0 }))
        }
        [_, _] => stem(name).map(|i| (i, 2, 0)),
        [b'r', ..] if is_64 && name.len() == 3 => stem(&name[1..]).map(|i| (i, 8, 0)),
        [b'e', ..] if name.len() == 3 => stem(&name[1..]).map(|i| (i, 4, 0)),
        [_, _, b'l'] if is_64 => stem(&name[..2]).filter(|&i| i >= 4).map(|i| (i, 1, 0)),
        _ => None,
    }
}

/// A register name resolved to its canonical register.
struct Found {
    reg: Reg,
    /// Width of the named (sub-)register in bytes.
    width: u8,
    /// Bit shift of the named sub-register within the canonical one.
    shift: u8,
}

impl X86 {
    fn table(&self) -> &'static [RegDef] {
        if self.is_64 {
            &REGS_64
        } else {
            &REGS_32
        }
    }

    fn found(&self, idx: usize, width: u8, shift: u8) -> Found {
        Found {
            reg: Reg::from_def(&self.table()[idx]),
            width,
            shift,
        }
    }

    /// Resolve a register name (without `%`, lower case).
    fn lookup(&self, name: &str) -> Option<Found> {
        let full = if self.is_64 { 8 } else { 4 };
        // r8..r15 with an optional width suffix (the most common registers in -O2 code
        // first), matched on bytes.
        if self.is_64 {
            let (n, suffix) = match name.as_bytes() {
                [b'r', d @ b'8'..=b'9', s @ ..] => (usize::from(d - b'0'), s),
                [b'r', b'1', d @ b'0'..=b'5', s @ ..] => (10 + usize::from(d - b'0'), s),
                _ => (0, &b"?"[..]),
            };
            let width = match suffix {
                b"" => Some(full),
                b"d" => Some(4),
                b"w" => Some(2),
                b"b" | b"l" => Some(1),
                _ => None,
            };
            if let Some(width) = width {
                return Some(self.found(n, width, 0));
            }
        }
        if let Some((i, width, shift)) = legacy(name.as_bytes(), self.is_64) {
            return Some(self.found(i, width, shift));
        }
        if let Some(n) = name.strip_prefix("xmm") {
            let n: usize = n.parse().ok().filter(|_| !n.starts_with('0') || n == "0")?;
            let base = if self.is_64 { 17 } else { 9 };
            let count = if self.is_64 { 32 } else { 8 };
            return (n < count).then(|| self.found(base + n, 16, 0));
        }
        match name {
            "rip" if self.is_64 => Some(self.found(16, 8, 0)),
            "eip" if !self.is_64 => Some(self.found(8, 4, 0)),
            _ => None,
        }
    }

    fn resolve(&self, name: &str) -> Result<Found, ArgErrorKind> {
        let lower: Cow<str> = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        self.lookup(&lower)
            .ok_or_else(|| ArgErrorKind::UnknownRegister {
                reg: format!("%{name}"),
                arch: self.arch(),
            })
    }

    /// A register used for addressing: must be named with `%`, full width, general purpose.
    fn address_reg(&self, text: &str, operand: &str, index: bool) -> Result<Reg, ArgErrorKind> {
        let syntax = |reason: String| ArgErrorKind::Syntax {
            operand: operand.to_string(),
            reason,
        };
        let name = text
            .strip_prefix('%')
            .ok_or_else(|| syntax(format!("`{text}` is not a register")))?;
        let f = self.resolve(name)?;
        let full = if self.is_64 { 8 } else { 4 };
        if f.reg.def().class == RegClass::Vector {
            return Err(syntax(format!("`{text}` cannot address memory")));
        }
        if f.width != full || f.shift != 0 {
            return Err(syntax(format!(
                "`{text}` is not a full-width address register"
            )));
        }
        if index && (f.reg.def().class == RegClass::Ip || matches!(f.reg.name(), "rsp" | "esp")) {
            return Err(syntax(format!("`{text}` cannot be an index register")));
        }
        Ok(f.reg)
    }

    fn high_byte_name(&self, reg: Reg) -> Option<&'static str> {
        let i = self.table().iter().position(|d| d == reg.def())?;
        LEGACY.get(i).and_then(|l| l.3)
    }
}

impl ArchDecoder for X86 {
    fn arch(&self) -> Arch {
        if self.is_64 {
            Arch::X86_64
        } else {
            Arch::I386
        }
    }

    fn registers(&self) -> &'static [RegDef] {
        self.table()
    }

    fn parse_operand(&self, op: &str) -> Result<Location, ArgErrorKind> {
        if let Some(loc) = self.parse_fast(op) {
            return Ok(loc);
        }
        self.parse_full(op)
    }

    fn write_operand(&self, loc: &Location, out: &mut String) -> bool {
        self.write(loc, out)
    }
}

impl X86 {
    /// The whole AT&T operand grammar.
    pub(crate) fn parse_full(&self, op: &str) -> Result<Location, ArgErrorKind> {
        let syntax = |reason: String| ArgErrorKind::Syntax {
            operand: op.to_string(),
            reason,
        };
        if let Some(name) = op.strip_prefix('%') {
            let f = self.resolve(name)?;
            return Ok(match f.reg.def().class {
                RegClass::Vector => Location::FpReg { reg: f.reg },
                _ => Location::Reg {
                    reg: f.reg,
                    shift: f.shift,
                },
            });
        }
        if let Some(imm) = op.strip_prefix('$') {
            let d = parse_displacement(imm).map_err(syntax)?;
            if imm.is_empty() {
                return Err(syntax("empty immediate".into()));
            }
            if let Some(sym) = d.symbol {
                return Err(syntax(format!(
                    "symbolic immediate `${sym}` (a link-time address) is not supported"
                )));
            }
            return Ok(Location::Const(d.offset));
        }
        let (disp, inner) = match split_parens(op).map_err(syntax)? {
            Some((disp, inner)) => (disp, Some(inner)),
            None => (op, None),
        };
        // i386 PIC code addresses globals as `sym@GOTOFF(%ebx)`: the register holds the
        // GOT's run-time address and `sym@GOTOFF` is the symbol's distance from it, so the
        // operand is the symbol itself, wherever the file is loaded.
        let gotoff = disp.as_bytes().contains(&b'@') && disp.contains("@GOTOFF");
        let disp_text: Cow<str> = if gotoff {
            Cow::Owned(disp.replacen("@GOTOFF", "", 1))
        } else {
            Cow::Borrowed(disp)
        };
        if let Some(at) = disp_text.bytes().position(|b| b == b'@') {
            return Err(syntax(format!(
                "relocation operator `{}` is not supported",
                &disp_text[at..]
            )));
        }
        let d = parse_displacement(&disp_text).map_err(syntax)?;
        if gotoff && (d.symbol.is_none() || inner.is_none()) {
            return Err(syntax("@GOTOFF needs a symbol and a GOT register".into()));
        }
        let Some(inner) = inner else {
            return match d.symbol {
                Some(sym) => Ok(Location::symbol_itself(sym, d.offset)),
                None if disp.is_empty() => Err(syntax("empty operand".into())),
                None => Err(syntax(
                    "absolute memory address without a symbol is not supported".into(),
                )),
            };
        };
        let mut parts = inner.split(',');
        let (first, second, third) = (parts.next(), parts.next(), parts.next());
        if parts.next().is_some() {
            return Err(syntax("too many parts in the memory operand".into()));
        }
        let base = match first {
            None | Some("") => None,
            Some(b) => Some(self.address_reg(b, op, false)?),
        };
        let index = match second {
            None | Some("") => None,
            Some(i) => Some(self.address_reg(i, op, true)?),
        };
        let scale = match third {
            None => 1,
            Some(s) => match (s, index) {
                ("1", Some(_)) => 1,
                ("2", Some(_)) => 2,
                ("4", Some(_)) => 4,
                ("8", Some(_)) => 8,
                (_, None) => return Err(syntax("scale without an index register".into())),
                _ => return Err(syntax(format!("scale `{s}` is not 1, 2, 4 or 8"))),
            },
        };
        if base.is_some_and(|b| b.def().class == RegClass::Ip) && index.is_some() {
            return Err(syntax(
                "the instruction pointer cannot be used with an index".into(),
            ));
        }
        Ok(match (d.symbol, base, index) {
            (Some(sym), ..) => {
                let base = if gotoff { None } else { base };
                Location::symbol(sym, d.offset, base, index, scale)
            }
            (None, _, Some(index)) => Location::Sib {
                base,
                index,
                extend: Extend::None,
                scale,
                offset: d.offset,
            },
            (None, Some(base), None) => Location::Deref {
                base,
                offset: d.offset,
            },
            (None, None, None) => return Err(syntax("no base or index register".into())),
        })
    }

    fn write(&self, loc: &Location, out: &mut String) -> bool {
        fn regs(out: &mut String, base: Option<Reg>, index: Option<Reg>, scale: u8) {
            if base.is_none() && index.is_none() {
                return;
            }
            out.push('(');
            if let Some(b) = base {
                out.push('%');
                out.push_str(b.name());
            }
            if let Some(i) = index {
                out.push_str(",%");
                out.push_str(i.name());
                out.push(',');
                out.push_str(&scale.to_string());
            }
            out.push(')');
        }
        match loc {
            Location::Const(v) => out.push_str(&format!("${v}")),
            Location::Reg { reg, shift } => {
                let name = match shift {
                    8 => self.high_byte_name(*reg).unwrap_or(reg.name()),
                    _ => reg.name(),
                };
                out.push('%');
                out.push_str(name);
            }
            Location::FpReg { reg } => {
                out.push('%');
                out.push_str(reg.name());
            }
            Location::Deref { base, offset } => {
                if *offset != 0 {
                    out.push_str(&offset.to_string());
                }
                regs(out, Some(*base), None, 1);
            }
            Location::Sib {
                base,
                index,
                extend: Extend::None,
                scale,
                offset,
            } => {
                if *offset != 0 {
                    out.push_str(&offset.to_string());
                }
                regs(out, *base, Some(*index), *scale);
            }
            Location::Symbol(s) => {
                out.push_str(&s.symbol);
                if s.offset != 0 {
                    out.push_str(&format!("{:+}", s.offset));
                }
                regs(out, s.base, s.index, s.scale);
            }
            // x86 has no extended index registers.
            Location::Sib { .. } => return false,
        }
        true
    }
}

#[path = "x86_fast.rs"]
mod fast;

#[cfg(test)]
#[path = "x86_tests.rs"]
mod tests;
