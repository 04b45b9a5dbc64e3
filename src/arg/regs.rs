//! Register tables and register names, shared by the per-architecture decoders.
//!
//! A decoder describes its registers as data: a static table of canonical [`RegDef`]s (built
//! with [`place`]), the names operands use for them ([`Name`] rules: exact names and numbered
//! runs such as `x0`..`x30`), and the addressing rules of the architecture. [`Regs`] resolves
//! a name as written to its canonical register and checks that it may address memory.

use std::borrow::Cow;

use super::grammar::syntax;
use super::{Location, Reg, RegClass, RegDef};
use crate::arch::Arch;
use crate::error::ArgErrorKind;

/// The 32 names `prefix0`..`prefix31`, for [`place`] (take a prefix of the array for shorter
/// runs).
macro_rules! numbered {
    ($prefix:literal) => {
        [
            concat!($prefix, "0"),
            concat!($prefix, "1"),
            concat!($prefix, "2"),
            concat!($prefix, "3"),
            concat!($prefix, "4"),
            concat!($prefix, "5"),
            concat!($prefix, "6"),
            concat!($prefix, "7"),
            concat!($prefix, "8"),
            concat!($prefix, "9"),
            concat!($prefix, "10"),
            concat!($prefix, "11"),
            concat!($prefix, "12"),
            concat!($prefix, "13"),
            concat!($prefix, "14"),
            concat!($prefix, "15"),
            concat!($prefix, "16"),
            concat!($prefix, "17"),
            concat!($prefix, "18"),
            concat!($prefix, "19"),
            concat!($prefix, "20"),
            concat!($prefix, "21"),
            concat!($prefix, "22"),
            concat!($prefix, "23"),
            concat!($prefix, "24"),
            concat!($prefix, "25"),
            concat!($prefix, "26"),
            concat!($prefix, "27"),
            concat!($prefix, "28"),
            concat!($prefix, "29"),
            concat!($prefix, "30"),
            concat!($prefix, "31"),
        ]
    };
}
pub(crate) use numbered;

/// `r0`..`r31`.
pub(crate) const R: [&str; 32] = numbered!("r");
/// `f0`..`f31`.
pub(crate) const F: [&str; 32] = numbered!("f");

/// A blank entry, for tables that [`place`] then fills.
pub(crate) const EMPTY: RegDef = RegDef {
    name: "",
    pt_regs_offset: None,
    class: RegClass::General,
};

/// Fill `table[at..]` with one register of `class` per name. With `slots = Some((first,
/// stride))` the i-th register is at `first + i * stride` in `pt_regs`; with `None` the kernel
/// does not save it there.
pub(crate) const fn place<const N: usize>(
    mut table: [RegDef; N],
    at: usize,
    names: &[&'static str],
    class: RegClass,
    slots: Option<(u16, u16)>,
) -> [RegDef; N] {
    let mut i = 0;
    while i < names.len() {
        table[at + i] = RegDef {
            name: names[i],
            pt_regs_offset: match slots {
                Some((first, stride)) => Some(first + stride * i as u16),
                None => None,
            },
            class,
        };
        i += 1;
    }
    table
}

/// How operands name registers: an exact name or a numbered run, mapped to a table index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Name {
    /// The exact name, or the prefix of a numbered run (possibly empty: powerpc's `3`).
    text: &'static str,
    /// For a run, the numbers it covers: `text` + `from`.. `text` + `to - 1`.
    run: Option<(u8, u8)>,
    /// Table index of the register the name (or the run's first number) denotes.
    at: usize,
    /// Whether the name is the whole register rather than a narrower view (aarch64 `w0`).
    full: bool,
}

/// The name `text` for the register at table index `at`.
pub(crate) const fn exact(text: &'static str, at: usize) -> Name {
    Name {
        text,
        run: None,
        at,
        full: true,
    }
}

/// The names `prefix` + `from`..`prefix` + `to - 1` (decimal, no leading zeros) for the
/// registers at `at`, `at + 1`...
pub(crate) const fn run(prefix: &'static str, from: u8, to: u8, at: usize) -> Name {
    Name {
        text: prefix,
        run: Some((from, to)),
        at,
        full: true,
    }
}

impl Name {
    /// The same names, as a narrower view of the register (`w0` of `x0`): a value, not an
    /// address register.
    pub(crate) const fn view(self) -> Name {
        Name {
            full: false,
            ..self
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        let Some((from, to)) = self.run else {
            return (name == self.text).then_some(self.at);
        };
        let digits = name.strip_prefix(self.text)?;
        let leading_zero = digits.len() > 1 && digits.starts_with('0');
        if digits.is_empty() || digits.len() > 3 || leading_zero {
            return None;
        }
        let n: u8 = digits.parse().ok()?;
        (from..to)
            .contains(&n)
            .then(|| self.at + usize::from(n - from))
    }
}

/// A register name resolved to its canonical register.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    /// The canonical register.
    pub reg: Reg,
    /// Whether the name was the whole register.
    pub full: bool,
}

/// The part a register plays in a memory operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Base,
    Index,
    /// An index register named by its 32-bit view, to be extended (aarch64 `w1, sxtw`).
    Index32,
}

/// An architecture's registers: the table, the names operands use, the addressing rules.
pub(crate) struct Regs {
    /// The architecture, for error messages.
    pub arch: Arch,
    /// Canonical registers.
    pub table: &'static [RegDef],
    /// Names, tried in order.
    pub names: &'static [Name],
    /// The character every register name starts with (`%` on s390x, `$` on mips), if any.
    pub sigil: Option<char>,
    /// Whether a name without the sigil is a register too (powerpc: `%r3` and `r3`).
    pub sigil_optional: bool,
    /// Canonical registers that cannot be a base, with the reason.
    pub no_base: &'static [(&'static str, &'static str)],
    /// Canonical registers that cannot be an index.
    pub no_index: &'static [&'static str],
    /// A prefix of canonical names that operands leave out before the number (mips names
    /// `r5` as `$5`).
    pub bare_prefix: Option<&'static str>,
}

impl Regs {
    /// Registers `table` named by `names`, without a sigil or addressing restrictions.
    pub(crate) const fn new(arch: Arch, table: &'static [RegDef], names: &'static [Name]) -> Regs {
        Regs {
            arch,
            table,
            names,
            sigil: None,
            sigil_optional: false,
            no_base: &[],
            no_index: &[],
            bare_prefix: None,
        }
    }

    /// The same, with names starting with `sigil` (which may be left out when `optional`).
    pub(crate) const fn sigil(self, sigil: char, optional: bool) -> Regs {
        Regs {
            sigil: Some(sigil),
            sigil_optional: optional,
            ..self
        }
    }

    /// The same, with registers that cannot be a base (canonical name, reason).
    pub(crate) const fn no_base(self, no_base: &'static [(&'static str, &'static str)]) -> Regs {
        Regs { no_base, ..self }
    }

    /// The same, with registers that cannot be an index.
    pub(crate) const fn no_index(self, no_index: &'static [&'static str]) -> Regs {
        Regs { no_index, ..self }
    }

    /// The same, with canonical names whose `prefix` operands leave out (`r5` spelled `5`).
    pub(crate) const fn bare_prefix(self, prefix: &'static str) -> Regs {
        Regs {
            bare_prefix: Some(prefix),
            ..self
        }
    }

    /// Resolve a register name as written (with its sigil), or `None`.
    pub(crate) fn find(&self, text: &str) -> Option<Found> {
        let name = match self.sigil.map(|c| text.strip_prefix(c)) {
            None => text,
            Some(Some(name)) => name,
            Some(None) if self.sigil_optional => text,
            Some(None) => return None,
        };
        let lower: Cow<str> = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        let table: &'static [RegDef] = self.table;
        self.names.iter().find_map(|n| {
            let def = table.get(n.index(&lower)?)?;
            Some(Found {
                reg: Reg::from_def(def),
                full: n.full,
            })
        })
    }

    /// Resolve a register name, or say it is unknown.
    pub(crate) fn resolve(&self, text: &str) -> Result<Found, ArgErrorKind> {
        self.find(text)
            .ok_or_else(|| ArgErrorKind::UnknownRegister {
                reg: text.to_string(),
                arch: self.arch,
            })
    }

    /// A register operand: the register's value, or [`Location::FpReg`] for a vector
    /// register.
    pub(crate) fn value(&self, text: &str) -> Result<Location, ArgErrorKind> {
        let reg = self.resolve(text)?.reg;
        Ok(match reg.def().class {
            RegClass::Vector => Location::FpReg { reg },
            _ => Location::Reg { reg, shift: 0 },
        })
    }

    /// A register that addresses memory in `operand`: whole, general purpose, and allowed in
    /// `role`.
    pub(crate) fn address(
        &self,
        text: &str,
        operand: &str,
        role: Role,
    ) -> Result<Reg, ArgErrorKind> {
        let found = self.resolve(text)?;
        match self.address_problem(found, role) {
            None => Ok(found.reg),
            Some(why) => Err(syntax(operand, format!("`{text}` {why}"))),
        }
    }

    /// Why `found` cannot play `role` in a memory operand, if it cannot.
    fn address_problem(&self, found: Found, role: Role) -> Option<String> {
        let def = found.reg.def();
        if def.class == RegClass::Vector {
            return Some("cannot address memory".into());
        }
        match (found.full, role) {
            (false, Role::Base | Role::Index) => {
                return Some("is not a full-width address register".into())
            }
            (true, Role::Index32) => {
                return Some(
                    "is not the 32-bit view of a register (what `sxtw`/`uxtw` extend)".into(),
                )
            }
            _ => {}
        }
        match role {
            Role::Base => self
                .no_base
                .iter()
                .find(|(n, _)| *n == def.name)
                .map(|(_, why)| format!("cannot be a base register: {why}")),
            Role::Index | Role::Index32 => (def.class == RegClass::Ip
                || self.no_index.contains(&def.name))
            .then(|| "cannot be an index register".into()),
        }
    }

    /// Append `reg` as operands spell it (the sigil, then the canonical name without
    /// `bare_prefix`); `false` when that spelling does not read back as `reg`.
    pub(crate) fn write(&self, reg: Reg, out: &mut String) -> bool {
        let start = out.len();
        if let Some(c) = self.sigil {
            out.push(c);
        }
        let name = reg.name();
        let number = self
            .bare_prefix
            .and_then(|p| name.strip_prefix(p))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        out.push_str(number.unwrap_or(name));
        self.find(&out[start..])
            .is_some_and(|f| f.reg == reg && f.full)
    }

    /// Append `reg` as an address register in `role`; `false` when it cannot play that role.
    pub(crate) fn write_address(&self, reg: Reg, role: Role, out: &mut String) -> bool {
        let found = Found { reg, full: true };
        self.write(reg, out) && self.address_problem(found, role).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TABLE: [RegDef; 4] = {
        let t = place(
            [EMPTY; 4],
            0,
            &["r0", "r1"],
            RegClass::General,
            Some((8, 8)),
        );
        let t = place(t, 2, &["pc"], RegClass::Ip, Some((0, 0)));
        place(t, 3, &["f0"], RegClass::Vector, None)
    };
    static NAMES: [Name; 4] = [
        run("r", 0, 2, 0),
        exact("fp", 1),
        run("w", 0, 2, 0).view(),
        run("f", 0, 1, 3),
    ];
    static REGS: Regs = Regs::new(Arch::Mips, &TABLE, &NAMES)
        .sigil('$', false)
        .no_base(&[("r0", "it always reads 0")]);

    #[test]
    fn tables_place_offsets() {
        assert_eq!(TABLE[1].pt_regs_offset, Some(16));
        assert_eq!(TABLE[2].class, RegClass::Ip);
        assert_eq!(TABLE[3].pt_regs_offset, None);
    }

    #[test]
    fn names_resolve() {
        let name = |t| REGS.find(t).map(|f| (f.reg.name(), f.full));
        assert_eq!(name("$r1"), Some(("r1", true)));
        assert_eq!(name("$R1"), Some(("r1", true)));
        assert_eq!(name("$fp"), Some(("r1", true)));
        assert_eq!(name("$w0"), Some(("r0", false)));
        assert_eq!(name("$f0"), Some(("f0", true)));
        for bad in ["r1", "$r2", "$r01", "$r", "$f1", "$pc", "$", "$r1000"] {
            assert!(REGS.find(bad).is_none(), "{bad}");
        }
        assert!(matches!(
            REGS.resolve("$x"),
            Err(ArgErrorKind::UnknownRegister { .. })
        ));
    }

    #[test]
    fn addressing_rules() {
        assert!(REGS.address("$r1", "op", Role::Base).is_ok());
        for (bad, role) in [
            ("$r0", Role::Base),
            ("$w1", Role::Base),
            ("$f0", Role::Index),
        ] {
            let e = REGS.address(bad, "op", role).unwrap_err();
            assert!(matches!(e, ArgErrorKind::Syntax { .. }), "{bad}: {e}");
        }
        let mut s = String::new();
        assert!(REGS.write(Reg::from_def(&TABLE[1]), &mut s));
        assert_eq!(s, "$r1");
        // The pc has no name operands use: it cannot be written.
        assert!(!REGS.write(Reg::from_def(&TABLE[2]), &mut s));
        assert!(!REGS.write_address(Reg::from_def(&TABLE[0]), Role::Base, &mut s));
    }
}
