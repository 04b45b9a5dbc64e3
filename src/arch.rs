//! Target architectures, as told by an ELF header.
//!
//! The architecture of a file is always taken from its header (`e_machine`, class and byte
//! order) at run time, never from the host: usdtkit reads any architecture's binaries on any
//! host.

use std::fmt;
use std::str::FromStr;

use object::elf;

/// An architecture whose USDT argument grammar differs from the others'.
///
/// Byte order is not part of the architecture: powerpc64 big- and little-endian share one
/// grammar and one register table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Arch {
    /// x86-64 (`EM_X86_64`, ELFCLASS64).
    X86_64,
    /// i386 (`EM_386`, or `EM_X86_64` with ELFCLASS32, the x32 ABI).
    I386,
    /// AArch64 (`EM_AARCH64`).
    Aarch64,
    /// 32-bit Arm (`EM_ARM`).
    Arm,
    /// 64-bit RISC-V (`EM_RISCV`, ELFCLASS64).
    Riscv64,
    /// 32-bit RISC-V (`EM_RISCV`, ELFCLASS32).
    Riscv32,
    /// s390x (`EM_S390`, ELFCLASS64).
    S390x,
    /// 64-bit PowerPC, either byte order (`EM_PPC64`).
    Powerpc64,
    /// 32-bit PowerPC (`EM_PPC`).
    Powerpc,
    /// 64-bit LoongArch (`EM_LOONGARCH`).
    Loongarch64,
    /// MIPS, 32- or 64-bit (`EM_MIPS`).
    Mips,
    /// An `e_machine` usdtkit has no grammar for.
    Other(u16),
}

impl Arch {
    /// Every architecture with a name, in the order `--help` lists them.
    pub const NAMED: &'static [Arch] = &[
        Arch::X86_64,
        Arch::I386,
        Arch::Aarch64,
        Arch::Arm,
        Arch::Riscv64,
        Arch::Riscv32,
        Arch::S390x,
        Arch::Powerpc64,
        Arch::Powerpc,
        Arch::Loongarch64,
        Arch::Mips,
    ];

    /// The architecture of an ELF file from its `e_machine` and class.
    pub fn from_elf(machine: u16, is_64: bool) -> Arch {
        match elf::Machine(machine) {
            elf::EM_X86_64 if is_64 => Arch::X86_64,
            elf::EM_X86_64 | elf::EM_386 => Arch::I386,
            elf::EM_AARCH64 => Arch::Aarch64,
            elf::EM_ARM => Arch::Arm,
            elf::EM_RISCV if is_64 => Arch::Riscv64,
            elf::EM_RISCV => Arch::Riscv32,
            elf::EM_S390 => Arch::S390x,
            elf::EM_PPC64 => Arch::Powerpc64,
            elf::EM_PPC => Arch::Powerpc,
            elf::EM_LOONGARCH => Arch::Loongarch64,
            elf::EM_MIPS => Arch::Mips,
            _ => Arch::Other(machine),
        }
    }

    /// The architecture usdtkit was compiled for: whose kernel's `pt_regs` a BPF program
    /// attached from here sees. `None` on a host whose `pt_regs` no table describes (32-bit
    /// MIPS kernels put eight words of padding first; usdtkit's MIPS table is the 64-bit one).
    pub fn host() -> Option<Arch> {
        Some(if cfg!(target_arch = "x86_64") {
            Arch::X86_64
        } else if cfg!(target_arch = "x86") {
            Arch::I386
        } else if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else if cfg!(target_arch = "arm") {
            Arch::Arm
        } else if cfg!(target_arch = "riscv64") {
            Arch::Riscv64
        } else if cfg!(target_arch = "riscv32") {
            Arch::Riscv32
        } else if cfg!(target_arch = "s390x") {
            Arch::S390x
        } else if cfg!(target_arch = "powerpc64") {
            Arch::Powerpc64
        } else if cfg!(target_arch = "powerpc") {
            Arch::Powerpc
        } else if cfg!(target_arch = "loongarch64") {
            Arch::Loongarch64
        } else if cfg!(target_arch = "mips64") {
            Arch::Mips
        } else {
            return None;
        })
    }

    /// The canonical name (`x86_64`, `i386`, `aarch64`...), as `--arch` takes it.
    pub fn name(self) -> String {
        match self {
            Arch::X86_64 => "x86_64".into(),
            Arch::I386 => "i386".into(),
            Arch::Aarch64 => "aarch64".into(),
            Arch::Arm => "arm".into(),
            Arch::Riscv64 => "riscv64".into(),
            Arch::Riscv32 => "riscv32".into(),
            Arch::S390x => "s390x".into(),
            Arch::Powerpc64 => "powerpc64".into(),
            Arch::Powerpc => "powerpc".into(),
            Arch::Loongarch64 => "loongarch64".into(),
            Arch::Mips => "mips".into(),
            Arch::Other(m) => format!("e_machine={m}"),
        }
    }
}

/// As its name (`x86_64`, `aarch64`...).
#[cfg(feature = "serde")]
impl serde::Serialize for Arch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Arch {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let a = match s {
            "x86_64" | "x86-64" | "amd64" => Arch::X86_64,
            "i386" | "i686" | "x86" => Arch::I386,
            "aarch64" | "arm64" => Arch::Aarch64,
            "arm" | "arm32" | "armhf" => Arch::Arm,
            "riscv64" => Arch::Riscv64,
            "riscv32" => Arch::Riscv32,
            "s390x" => Arch::S390x,
            "powerpc64" | "ppc64" | "ppc64le" | "powerpc64le" => Arch::Powerpc64,
            "powerpc" | "ppc" => Arch::Powerpc,
            "loongarch64" => Arch::Loongarch64,
            "mips" | "mips64" | "mipsel" | "mips64el" => Arch::Mips,
            _ => {
                let names: Vec<String> = Arch::NAMED.iter().map(|a| a.name()).collect();
                return Err(format!(
                    "unknown architecture `{s}` (known: {})",
                    names.join(", ")
                ));
            }
        };
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Arch::NAMED {
            assert_eq!(a.name().parse::<Arch>().unwrap(), *a);
        }
        assert!("sparc".parse::<Arch>().is_err());
    }

    #[test]
    fn from_header() {
        assert_eq!(Arch::from_elf(62, true), Arch::X86_64);
        assert_eq!(Arch::from_elf(62, false), Arch::I386);
        assert_eq!(Arch::from_elf(3, false), Arch::I386);
        assert_eq!(Arch::from_elf(243, true), Arch::Riscv64);
        assert_eq!(Arch::from_elf(2, false), Arch::Other(2));
    }
}
