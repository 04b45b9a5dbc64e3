//! Where an argument lives: registers and locations.

use std::fmt;

#[cfg(feature = "serde")]
use serde::ser::SerializeMap;
#[cfg(feature = "serde")]
use serde::{Serialize, Serializer};

/// What kind of register a [`RegDef`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum RegClass {
    /// A general-purpose register (including the stack and frame pointers).
    General,
    /// The instruction pointer.
    Ip,
    /// A floating-point or vector register (`%xmm0`, `v0`...); not in `pt_regs`.
    Vector,
}

/// One canonical register of an architecture's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RegDef {
    /// Canonical name (`rax`, `x0`...), as JSON output gives it.
    pub name: &'static str,
    /// Byte offset of the register in the kernel's `struct pt_regs` for this architecture,
    /// `None` for registers the kernel does not save there (vector and floating-point
    /// registers, and riscv's hard-wired `zero`).
    pub pt_regs_offset: Option<u16>,
    /// What kind of register it is.
    pub class: RegClass,
}

/// A register: a reference into a decoder's static table.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reg(&'static RegDef);

impl Reg {
    /// Wrap a table entry.
    pub const fn from_def(def: &'static RegDef) -> Reg {
        Reg(def)
    }

    /// The table entry.
    pub fn def(self) -> &'static RegDef {
        self.0
    }

    /// Canonical name.
    pub fn name(self) -> &'static str {
        self.0.name
    }
}

impl fmt::Debug for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

#[cfg(feature = "serde")]
impl Serialize for Reg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name)
    }
}

/// How an index register's value is widened before it is scaled: the whole register, or the
/// low 32 bits of it sign- or zero-extended (aarch64 `[x0, w1, sxtw #2]`, which gcc emits for
/// `a[i]` with an `int i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Extend {
    /// The whole register.
    #[default]
    None,
    /// The low 32 bits, sign-extended (`sxtw`).
    Sxtw,
    /// The low 32 bits, zero-extended (`uxtw`).
    Uxtw,
}

impl Extend {
    /// The operator's name (`sxtw`, `uxtw`), `None` for the whole register.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Extend::None => None,
            Extend::Sxtw => Some("sxtw"),
            Extend::Uxtw => Some("uxtw"),
        }
    }
}

/// Where an argument's value is, once decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// An immediate (`$-5`). The value is as written; readers truncate it to the size.
    Const(i64),
    /// A register's value, shifted right by `shift` bits first (`%ah` is `rax` shifted by 8).
    Reg {
        /// The full-width register.
        reg: Reg,
        /// Bits to shift right before truncating to the size.
        shift: u8,
    },
    /// Memory at `base + offset`.
    Deref {
        /// The base register.
        base: Reg,
        /// The folded displacement.
        offset: i64,
    },
    /// Memory at `base + extend(index) * scale + offset` (base optional).
    Sib {
        /// The base register, absent in `(,%rcx,8)`.
        base: Option<Reg>,
        /// The index register (the canonical full-width one, also when `extend` reads part
        /// of it).
        index: Reg,
        /// How the index register's value is widened first.
        extend: Extend,
        /// 1, 2, 4 or 8.
        scale: u8,
        /// The folded displacement.
        offset: i64,
    },
    /// Memory at a symbol's address plus `offset`, plus registers when present:
    /// `sym+8(%rip)`, `table(,%rcx,8)`, a bare `counter` (i386 absolute), or aarch64's
    /// `[x1, #:lo12:sym]`. Boxed: symbol operands are a small minority, and boxing keeps
    /// every location, and so every decoded argument, small (sizes checked by a test).
    Symbol(Box<SymbolLocation>),
    /// A floating-point or vector register (`%xmm0`): not readable from a uprobe's `pt_regs`.
    FpReg {
        /// The register.
        reg: Reg,
    },
}

/// Where a symbol operand's value is: memory at the symbol's address plus `offset`, plus
/// registers when present (see [`Location::Symbol`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SymbolLocation {
    /// The symbol name.
    pub symbol: String,
    /// The folded numeric displacement.
    pub offset: i64,
    /// A base register other than the implied pc-relative one, or the IP register
    /// (`sym+8(%rip)`: pc-relative, so the address is the symbol's own).
    pub base: Option<Reg>,
    /// An index register.
    pub index: Option<Reg>,
    /// Scale of the index (1 when there is none).
    pub scale: u8,
    /// Link-time address `symbol + offset`, when resolved against the file's symbols.
    pub address: Option<u64>,
}

impl Location {
    /// A symbol operand, with no address yet (it is filled in when the file's symbols are).
    pub fn symbol(
        symbol: &str,
        offset: i64,
        base: Option<Reg>,
        index: Option<Reg>,
        scale: u8,
    ) -> Location {
        Location::Symbol(Box::new(SymbolLocation {
            symbol: symbol.to_string(),
            offset,
            base,
            index,
            scale,
            address: None,
        }))
    }

    /// The memory at a symbol's own address plus `offset` (no registers): what `sym(%rip)`
    /// without an index, a bare i386 `counter`, aarch64 `[xN, #:lo12:sym]` and mips
    /// `%got_ofst(sym)($N)` all mean. The address is filled in when the file's symbols are.
    pub fn symbol_itself(symbol: &str, offset: i64) -> Location {
        Location::symbol(symbol, offset, None, None, 1)
    }

    /// Short name of the location kind, as JSON's `kind` field gives it.
    pub fn kind(&self) -> &'static str {
        match self {
            Location::Const(_) => "const",
            Location::Reg { .. } => "reg",
            Location::Deref { .. } => "deref",
            Location::Sib { .. } => "sib",
            Location::Symbol(_) => "symbol",
            Location::FpReg { .. } => "fpreg",
        }
    }
}

#[cfg(feature = "serde")]
impl Serialize for Location {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", self.kind())?;
        match self {
            Location::Const(v) => m.serialize_entry("value", v)?,
            Location::Reg { reg, shift } => {
                m.serialize_entry("reg", reg)?;
                m.serialize_entry("shift", shift)?;
            }
            Location::Deref { base, offset } => {
                m.serialize_entry("base", base)?;
                m.serialize_entry("offset", offset)?;
            }
            Location::Sib {
                base,
                index,
                extend,
                scale,
                offset,
            } => {
                m.serialize_entry("base", base)?;
                m.serialize_entry("index", index)?;
                m.serialize_entry("extend", &extend.name())?;
                m.serialize_entry("scale", scale)?;
                m.serialize_entry("offset", offset)?;
            }
            Location::Symbol(s) => {
                m.serialize_entry("symbol", &s.symbol)?;
                m.serialize_entry("offset", &s.offset)?;
                m.serialize_entry("base", &s.base)?;
                m.serialize_entry("index", &s.index)?;
                m.serialize_entry("scale", &s.scale)?;
                m.serialize_entry("address", &s.address)?;
            }
            Location::FpReg { reg } => m.serialize_entry("reg", reg)?,
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every location but a symbol's is stored inline: a file's decoded arguments are kept
    /// back to back, and their size is what a large file's parse writes.
    #[test]
    fn decoded_arguments_stay_small() {
        assert_eq!(std::mem::size_of::<Location>(), 32);
        assert_eq!(std::mem::size_of::<crate::arg::Arg<'_>>(), 56);
    }
}
