//! From a decoded site to what the kernel and the BPF side need: the file offset to attach
//! at, the semaphore's `ref_ctr_offset`, and each argument's [`ArgEncoding`].
//!
//! Beyond what libbpf encodes: `sym+N(%rip)` and other symbol operands become a dereference
//! off the instruction pointer (`val_off = symbol - attach address`, so it holds in PIEs and
//! shared libraries), `%ah`-style high bytes a register read at `reg_off + 1`, summed
//! displacements are already folded, and `f`-marked values in general registers or memory
//! are read as raw bits. What no spec can express (`%xmm`, sizes above 8, an 8-byte value in
//! a 4-byte register, SIB without a base at scale 4 or 8, SIB on libbpf <= 1.6, an index
//! register extended from 32 bits) becomes an unreadable argument with its reason: the probe
//! still attaches.

use super::spec::{ArgEncoding, ArgType, Layout};
use crate::arch::Arch;
use crate::arg::{decoder, ArgSpec, Extend, Location, Reg, RegClass, SymbolLocation};
use crate::error::ArgErrorKind;
use crate::probe::Site;

/// Why an argument cannot be expressed in libbpf's spec (it reads as an error; the probe
/// still attaches).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum Unencodable {
    /// The argument did not decode.
    #[error("{0}")]
    Undecoded(ArgErrorKind),
    /// More than 8 bytes.
    #[error("{0}-byte argument: a probe reads at most 8 bytes")]
    TooWide(u32),
    /// Wider than the register that holds it.
    #[error(
        "{size}-byte argument in a {word}-byte register: the rest of the value is not in the note"
    )]
    WiderThanRegister {
        /// The argument's size.
        size: u32,
        /// The register's.
        word: u32,
    },
    /// A register the uprobe's saved registers do not have on this host.
    #[error("register {reg} of {arch} cannot be read on this host")]
    RegisterNotOnHost {
        /// The register.
        reg: String,
        /// The file's architecture.
        arch: Arch,
    },
    /// A symbol operand relative to an instruction pointer the architecture lacks.
    #[error("{0} has no instruction pointer register")]
    NoIpRegister(Arch),
    /// SIB addressing in a program built with libbpf 1.6 or older.
    #[error("SIB addressing needs a BPF object built with libbpf >= 1.7")]
    SibNeedsLibbpf17,
    /// An index register read as its low 32 bits, then extended.
    #[error("index register {index} read as its low 32 bits, {}-extended ({name}): libbpf's SIB spec reads the whole register", if *.signed { "sign" } else { "zero" })]
    ExtendedIndex {
        /// The index register.
        index: String,
        /// Sign- or zero-extended.
        signed: bool,
        /// `sxtw` or `uxtw`.
        name: String,
    },
    /// SIB without a base at a scale other than 1 or 2.
    #[error("SIB without a base register at scale {0} cannot be expressed in libbpf's spec")]
    SibWithoutBase(u8),
    /// A symbol the file does not define.
    #[error("symbol `{0}` is not resolved")]
    UnresolvedSymbol(String),
    /// A vector register.
    #[error("vector register {0}: not saved in the uprobe's pt_regs")]
    VectorRegister(String),
}

/// The bytes of an x86 `nop; nop5` site (libbpf's `usdt.h` with the optimized-uprobe
/// layout): the kernel can attach at +1 without a trap.
pub const NOP_NOP5: [u8; 6] = [0x90, 0x0f, 0x1f, 0x44, 0x00, 0x00];

/// One site ready to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SitePlan {
    /// Link-time address of the site.
    pub pc: u64,
    /// File offset the uprobe goes at (the site, or +1 for an optimized `nop; nop5`).
    pub offset: u64,
    /// The semaphore's file offset (0: none).
    pub ref_ctr_offset: u64,
    /// Argument encodings, in order.
    pub args: Vec<ArgEncoding>,
    /// Why each unreadable argument is unreadable (index, reason).
    pub unreadable: Vec<(usize, Unencodable)>,
}

/// The host's register offsets for a target architecture's registers: the target's own
/// table when host and target agree, and where a 64-bit kernel runs the target's 32-bit
/// processes, the slot the kernel saves that register in.
fn host_offset(target: Arch, reg: Reg) -> Option<i16> {
    offset_on(Arch::host()?, target, reg)
}

/// Whether processes of `target` run under the kernel of `host`: the same architecture, or
/// a 32-bit one a 64-bit kernel runs as compat tasks.
pub(crate) fn runs_on(host: Arch, target: Arch) -> bool {
    host == target
        || matches!(
            (host, target),
            (Arch::X86_64, Arch::I386)
                | (Arch::Aarch64, Arch::Arm)
                | (Arch::Powerpc64, Arch::Powerpc)
                | (Arch::Riscv64, Arch::Riscv32)
        )
}

/// [`host_offset`] for a given host.
fn offset_on(host: Arch, target: Arch, reg: Reg) -> Option<i16> {
    let on_host = |name: &str| decoder(host)?.register(name)?.def().pt_regs_offset;
    let name = reg.name();
    let off = match (host, target) {
        _ if host == target => reg.def().pt_regs_offset,
        // The 64-bit `pt_regs` holds a 32-bit process's registers under their wide names.
        (Arch::X86_64, Arch::I386) => match name {
            "eip" => on_host("rip"),
            n => on_host(&format!("r{}", &n[1..])),
        },
        (Arch::Powerpc64, Arch::Powerpc) | (Arch::Riscv64, Arch::Riscv32) => on_host(name),
        // AArch32 processes on arm64: `r0`..`r14` live in `regs[0..15]` (the kernel's
        // `compat_usr(x)`, `compat_sp regs[13]` and `compat_lr regs[14]` in
        // arch/arm64/include/asm/ptrace.h), the pc in `pc`.
        (Arch::Aarch64, Arch::Arm) => match name {
            "r15" => on_host("pc"),
            n => on_host(&format!("x{}", n.strip_prefix('r')?)),
        },
        _ => None,
    };
    off.map(|o| o as i16)
}

fn word_size(arch: Arch) -> u32 {
    match arch {
        Arch::I386 | Arch::Arm | Arch::Riscv32 | Arch::Powerpc => 4,
        _ => 8,
    }
}

/// Encode one decoded argument for a site attached at `attach_addr`.
pub fn encode_arg(
    arch: Arch,
    layout: Layout,
    spec: &ArgSpec,
    attach_addr: u64,
) -> Result<ArgEncoding, Unencodable> {
    if spec.size > 8 {
        return Err(Unencodable::TooWide(spec.size));
    }
    let mut e = ArgEncoding {
        arg_type: ArgType::Const,
        val_off: 0,
        reg_off: 0,
        idx_reg_off: 0,
        scale_bitshift: 0,
        signed: spec.signed && !spec.float,
        bitshift: (64 - 8 * spec.size) as u8,
    };
    let off = |r: Reg| {
        host_offset(arch, r).ok_or_else(|| Unencodable::RegisterNotOnHost {
            reg: r.to_string(),
            arch,
        })
    };
    let ip = |arch: Arch| {
        decoder(arch)
            .and_then(|d| d.registers().iter().find(|r| r.class == RegClass::Ip))
            .map(Reg::from_def)
            .ok_or(Unencodable::NoIpRegister(arch))
    };
    let sib = |e: &mut ArgEncoding, base: i16, index: Reg, scale: u8, val_off: i64| {
        if !layout.has_sib() {
            return Err(Unencodable::SibNeedsLibbpf17);
        }
        e.arg_type = ArgType::Sib;
        e.reg_off = base;
        e.idx_reg_off = off(index)? as u16;
        e.scale_bitshift = scale.trailing_zeros() as u8;
        e.val_off = val_off as u64;
        Ok(())
    };
    match &spec.location {
        Location::Const(v) => e.val_off = *v as u64,
        Location::Reg { reg, shift } => {
            if spec.size > word_size(arch) {
                return Err(Unencodable::WiderThanRegister {
                    size: spec.size,
                    word: word_size(arch),
                });
            }
            e.arg_type = ArgType::Reg;
            e.reg_off = off(*reg)? + i16::from(*shift / 8);
        }
        Location::Deref { base, offset } => {
            e.arg_type = ArgType::RegDeref;
            e.reg_off = off(*base)?;
            e.val_off = *offset as u64;
            if base.def().class == RegClass::Ip {
                // The uprobe sees the attach address in the IP register.
                e.val_off = offset.wrapping_sub(attach_addr as i64) as u64;
            }
        }
        Location::Sib {
            extend: ext @ (Extend::Sxtw | Extend::Uxtw),
            index,
            ..
        } => {
            return Err(Unencodable::ExtendedIndex {
                index: index.to_string(),
                signed: *ext == Extend::Sxtw,
                name: ext.name().unwrap_or_default().to_string(),
            })
        }
        Location::Sib {
            base,
            index,
            extend: Extend::None,
            scale,
            offset,
        } => match base {
            Some(b) => sib(&mut e, off(*b)?, *index, *scale, *offset)?,
            None if *scale == 1 => {
                e.arg_type = ArgType::RegDeref;
                e.reg_off = off(*index)?;
                e.val_off = *offset as u64;
            }
            // index * 2 = index + (index << 0)
            None if *scale == 2 => sib(&mut e, off(*index)?, *index, 1, *offset)?,
            None => return Err(Unencodable::SibWithoutBase(*scale)),
        },
        Location::Symbol(s) => {
            let SymbolLocation {
                symbol,
                offset,
                base,
                index,
                scale,
                address,
            } = &**s;
            let addr = address.ok_or_else(|| Unencodable::UnresolvedSymbol(symbol.clone()))?;
            match base.filter(|b| b.def().class != RegClass::Ip) {
                // `sym(%rbx)`: the register plus the symbol's link-time value, as written.
                Some(b) => {
                    let v = addr as i64;
                    match index {
                        Some(i) => sib(&mut e, off(b)?, *i, *scale, v)?,
                        None => {
                            e.arg_type = ArgType::RegDeref;
                            e.reg_off = off(b)?;
                            e.val_off = v as u64;
                        }
                    }
                }
                // The symbol's own address, wherever the file is loaded: relative to the IP.
                None => {
                    let ipr = off(ip(arch)?)?;
                    let rel = addr.wrapping_sub(attach_addr) as i64;
                    match index {
                        Some(i) => sib(&mut e, ipr, *i, *scale, rel)?,
                        None => {
                            e.arg_type = ArgType::RegDeref;
                            e.reg_off = ipr;
                            e.val_off = rel as u64;
                        }
                    }
                }
            }
            let _ = offset; // folded into `address`
        }
        Location::FpReg { reg } => return Err(Unencodable::VectorRegister(reg.to_string())),
    }
    Ok(e)
}

/// Plan one site: attach offset (optimized `nop; nop5` when `optimize_nop5` and the bytes
/// match), semaphore, and every argument (undecodable ones become unreadable).
pub fn plan_site(
    arch: Arch,
    layout: Layout,
    site: &Site<'_>,
    file: &[u8],
    optimize_nop5: bool,
) -> SitePlan {
    let (mut args, mut unreadable) = (Vec::new(), Vec::new());
    let (offset, ref_ctr_offset) = plan_site_into(
        arch,
        layout,
        site,
        file,
        optimize_nop5,
        &mut args,
        &mut unreadable,
    );
    SitePlan {
        pc: site.pc,
        offset,
        ref_ctr_offset,
        args,
        unreadable,
    }
}

/// How far past the site the uprobe goes: 1 at an x86 `nop; nop5` site when optimizing it
/// (the kernel's optimized uprobe at the `nop5`), else 0.
pub(crate) fn attach_delta(arch: Arch, file: &[u8], file_offset: u64, optimize_nop5: bool) -> u64 {
    let at = file_offset as usize;
    let nop5 = optimize_nop5
        && matches!(arch, Arch::X86_64 | Arch::I386)
        && file.get(at..at.saturating_add(NOP_NOP5.len())) == Some(&NOP_NOP5[..]);
    u64::from(nop5)
}

/// Whether an argument encodes the same at every site: not relative to the instruction
/// pointer (whose value at the hit is the site's own address), not a symbol operand.
pub(crate) fn site_independent(spec: &ArgSpec) -> bool {
    let not_ip = |r: &Reg| r.def().class != RegClass::Ip;
    match &spec.location {
        Location::Const(_) | Location::FpReg { .. } => true,
        Location::Reg { reg, .. } => not_ip(reg),
        Location::Deref { base, .. } => not_ip(base),
        Location::Sib { base, index, .. } => base.as_ref().is_none_or(not_ip) && not_ip(index),
        Location::Symbol(_) => false,
    }
}

/// What reading an argument's value needs besides its encoding (`bpf_usdt_arg()` does the
/// rest): its size, sign and whether it is a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ArgShape {
    pub(crate) size: u32,
    pub(crate) signed: bool,
    pub(crate) float: bool,
}

impl From<&ArgSpec> for ArgShape {
    fn from(s: &ArgSpec) -> Self {
        ArgShape {
            size: s.size,
            signed: s.signed,
            float: s.float,
        }
    }
}

/// [`plan_site`] appending the encodings and unreadable arguments to vectors shared by many
/// sites (no allocation per site); returns the attach offset and the `ref_ctr_offset`.
pub(crate) fn plan_site_into(
    arch: Arch,
    layout: Layout,
    site: &Site<'_>,
    file: &[u8],
    optimize_nop5: bool,
    args: &mut Vec<ArgEncoding>,
    unreadable: &mut Vec<(usize, Unencodable)>,
) -> (u64, u64) {
    let delta = attach_delta(arch, file, site.file_offset, optimize_nop5);
    let attach_addr = site.pc + delta;
    for (i, a) in site.args.iter().enumerate() {
        let r = match &a.decoded {
            Ok(spec) => encode_arg(arch, layout, spec, attach_addr),
            Err(e) => Err(Unencodable::Undecoded(e.kind.clone())),
        };
        match r {
            Ok(e) => args.push(e),
            Err(why) => {
                unreadable.push((i, why));
                args.push(ArgEncoding {
                    arg_type: ArgType::Unreadable,
                    val_off: 0,
                    reg_off: 0,
                    idx_reg_off: 0,
                    scale_bitshift: 0,
                    signed: false,
                    bitshift: 0,
                });
            }
        }
    }
    (
        site.file_offset + delta,
        site.semaphore_file_offset.unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arg::decode_one;

    fn encode(arch: Arch, text: &str) -> Result<ArgEncoding, String> {
        let spec = decode_one(arch, text).expect("decodes");
        encode_arg(arch, Layout::V2, &spec, 0x1000).map_err(|e| e.to_string())
    }

    #[test]
    fn what_no_spec_expresses_is_refused_with_the_reason() {
        let why = encode(Arch::Aarch64, "-4@[x6, w1, sxtw]").unwrap_err();
        assert!(why.contains("sign-extended (sxtw)"), "{why}");
        let why = encode(Arch::Aarch64, "4@[x6, w1, uxtw #2]").unwrap_err();
        assert!(why.contains("zero-extended (uxtw)"), "{why}");
        let why = encode(Arch::X86_64, "8@%xmm0").unwrap_err();
        assert!(why.contains("vector register"), "{why}");
        let why = encode(Arch::X86_64, "16@(%rsp)").unwrap_err();
        assert!(why.contains("16-byte"), "{why}");
    }

    #[test]
    fn registers_map_onto_the_host_kernels_pt_regs() {
        let r = |arch: Arch, name: &str| decoder(arch).unwrap().register(name).unwrap();
        // Same architecture: the target's own table.
        for arch in [
            Arch::Riscv64,
            Arch::S390x,
            Arch::Powerpc64,
            Arch::Loongarch64,
        ] {
            let reg = &decoder(arch).unwrap().registers()[3];
            let want = reg.pt_regs_offset.map(|o| o as i16);
            assert_eq!(offset_on(arch, arch, Reg::from_def(reg)), want, "{arch}");
        }
        // 32-bit processes under 64-bit kernels, and unrelated architectures (nothing to
        // read): (host, target, register, offset).
        let cases = [
            (Arch::X86_64, Arch::I386, "ecx", Some(88)),
            (Arch::X86_64, Arch::I386, "eip", Some(128)),
            (Arch::Aarch64, Arch::Arm, "r0", Some(0)),
            (Arch::Aarch64, Arch::Arm, "r13", Some(104)),
            (Arch::Aarch64, Arch::Arm, "r14", Some(112)),
            (Arch::Aarch64, Arch::Arm, "r15", Some(256)),
            (Arch::Powerpc64, Arch::Powerpc, "r31", Some(248)),
            (Arch::X86_64, Arch::Aarch64, "x0", None),
            (Arch::S390x, Arch::Arm, "r0", None),
        ];
        for (host, target, name, want) in cases {
            assert_eq!(
                offset_on(host, target, r(target, name)),
                want,
                "{target} {name}"
            );
        }
        assert!(runs_on(Arch::X86_64, Arch::I386) && !runs_on(Arch::X86_64, Arch::Aarch64));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_forms_beyond_libbpf() {
        // `%ah`: rax's pt_regs slot plus one byte.
        let e = encode(Arch::X86_64, "1@%ah").unwrap();
        assert_eq!((e.arg_type, e.reg_off), (ArgType::Reg, 80 + 1));
        // A resolved symbol: relative to the attach address, off the IP register.
        let mut spec = decode_one(Arch::X86_64, "-4@counter+4(%rip)").unwrap();
        if let Location::Symbol(s) = &mut spec.location {
            s.address = Some(0x3004);
        }
        let e = encode_arg(Arch::X86_64, Layout::V2, &spec, 0x1000).unwrap();
        assert_eq!((e.arg_type, e.reg_off), (ArgType::RegDeref, 128));
        assert_eq!(e.val_off, 0x2004);
    }
}
