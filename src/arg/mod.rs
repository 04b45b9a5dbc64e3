//! USDT argument strings: the shared grammar and the per-architecture decoders.
//!
//! An argument string is a space-separated list of `[-]SIZE[f]@OPERAND` (the `SIZE@` part may
//! be missing in hand-written assembly: 8 bytes, unsigned). A negative size means signed, `f`
//! marks a floating-point value. The operand grammar belongs to the architecture and is decoded
//! by an [`ArchDecoder`], one file per architecture, all behind the same trait. x86 has its
//! own parser; the others describe their registers as data (`regs.rs`) and build on operand
//! forms they share (`forms.rs`).

mod aarch64;
mod arm;
mod forms;
mod grammar;
pub(crate) use self::grammar::split_args;
mod location;
mod loongarch;
mod mips;
mod powerpc;
mod regs;
mod riscv;
mod s390x;
#[cfg(test)]
mod testkit;
mod x86;

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

#[cfg(feature = "serde")]
use serde::ser::SerializeMap;
#[cfg(feature = "serde")]
use serde::{Serialize, Serializer};

pub use self::location::{Extend, Location, Reg, RegClass, RegDef, SymbolLocation};
use crate::arch::Arch;
use crate::error::{ArgError, ArgErrorKind};

/// Most arguments a site may have in a file: sys/sdt.h writes at most 12; a note with more
/// than this is refused whole rather than decoded into an absurd list.
pub const MAX_SITE_ARGS: usize = 64;

/// Largest size prefix accepted. Structs passed by value give sizes such as 16, 24 and 48;
/// anything above this is treated as garbage rather than as a real operand.
pub const MAX_ARG_SIZE: u32 = 1 << 16;

/// A decoded argument: what it is and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ArgSpec {
    /// Size in bytes (the absolute value of the size prefix; 8 when there is none).
    pub size: u32,
    /// Whether the size prefix was negative.
    pub signed: bool,
    /// Whether the prefix carried the `f` floating-point marker.
    pub float: bool,
    /// Where the value is.
    pub location: Location,
}

impl ArgSpec {
    /// Render the spec as an argument string of `arch`, e.g. `-4@-12(%rbp)`.
    ///
    /// The text decodes back to an equal spec (register aliases come back as their canonical
    /// full-width names, so the text may differ from the one originally decoded). `None` when
    /// usdtkit has no grammar for `arch`, or when `arch` has no syntax for the location (an
    /// index register on riscv, a symbol on s390x...).
    pub fn to_text(&self, arch: Arch) -> Option<String> {
        let dec = decoder(arch)?;
        let mut s = String::new();
        if self.signed {
            s.push('-');
        }
        s.push_str(&self.size.to_string());
        if self.float {
            s.push('f');
        }
        s.push('@');
        dec.write_operand(&self.location, &mut s).then_some(s)
    }
}

/// One argument of a probe site: its text and what it decoded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg<'a> {
    /// The argument as written in the note (`-4@%eax`).
    pub text: &'a str,
    /// The decoded spec, or why it could not be decoded (boxed: errors are rare, and the
    /// box keeps every argument of a file small; sizes checked by a test).
    pub decoded: Result<ArgSpec, Box<ArgError>>,
}

/// The decoded argument lists of one file, back to back: filled once, after the file's
/// symbols are resolved, by the parse that creates the sites holding it.
pub(crate) type FileArgs<'a> = Arc<OnceLock<Vec<Arg<'a>>>>;

/// The decoded arguments of a site. Sites whose argument strings are the same share one
/// list (a file decodes each distinct string once), and the lists of a file share one
/// allocation: cloning is a reference-count increment. Derefs to `[Arg]`.
#[derive(Debug, Clone, Default)]
pub struct ArgList<'a> {
    /// Every list of the file (`None`: no arguments). Sites take their reference while the
    /// file is read, before the lists are final; no site is handed out before they are set.
    all: Option<FileArgs<'a>>,
    /// This list's part of `all`.
    start: u32,
    len: u32,
}

impl<'a> ArgList<'a> {
    /// A list holding `args`.
    pub fn new(args: Vec<Arg<'a>>) -> Self {
        let len = args.len() as u32;
        ArgList::shared(&Arc::new(OnceLock::from(args)), 0, len)
    }

    /// The part `start..start + len` of `all`, the lists of a file back to back.
    pub(crate) fn shared(all: &FileArgs<'a>, start: u32, len: u32) -> Self {
        ArgList {
            all: (len > 0).then(|| Arc::clone(all)),
            start,
            len,
        }
    }
}

impl<'a> Deref for ArgList<'a> {
    type Target = [Arg<'a>];

    fn deref(&self) -> &[Arg<'a>] {
        match self.all.as_deref().and_then(OnceLock::get) {
            Some(all) => &all[self.start as usize..][..self.len as usize],
            None => &[],
        }
    }
}

impl PartialEq for ArgList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl Eq for ArgList<'_> {}

impl<'l, 'a> IntoIterator for &'l ArgList<'a> {
    type Item = &'l Arg<'a>;
    type IntoIter = std::slice::Iter<'l, Arg<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(feature = "serde")]
impl Serialize for ArgList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self[..].serialize(s)
    }
}

/// Decodes operands of one architecture. One implementation per architecture; pick one with
/// [`decoder`].
pub trait ArchDecoder: Sync {
    /// The architecture this decoder reads.
    fn arch(&self) -> Arch;
    /// The canonical registers of the architecture, with their `pt_regs` offsets.
    fn registers(&self) -> &'static [RegDef];
    /// Decode one operand (the text after `@`).
    fn parse_operand(&self, operand: &str) -> Result<Location, ArgErrorKind>;
    /// Write `loc` as an operand this decoder parses back to `loc`. Returns `false` (with
    /// unspecified text in `out`) when the architecture has no syntax for `loc`.
    fn write_operand(&self, loc: &Location, out: &mut String) -> bool;
    /// Find a canonical register by its canonical name.
    fn register(&self, name: &str) -> Option<Reg> {
        self.registers()
            .iter()
            .find(|r| r.name == name)
            .map(Reg::from_def)
    }
}

/// The decoder for `arch`, or `None` when usdtkit has no grammar for it yet.
pub fn decoder(arch: Arch) -> Option<&'static dyn ArchDecoder> {
    match arch {
        Arch::X86_64 => Some(&x86::X86_64),
        Arch::I386 => Some(&x86::I386),
        Arch::Aarch64 => Some(&aarch64::AARCH64),
        Arch::Arm => Some(&arm::ARM),
        Arch::Riscv64 => Some(&riscv::RISCV64),
        Arch::Riscv32 => Some(&riscv::RISCV32),
        Arch::S390x => Some(&s390x::S390X),
        Arch::Powerpc64 => Some(&powerpc::POWERPC64),
        Arch::Powerpc => Some(&powerpc::POWERPC),
        Arch::Loongarch64 => Some(&loongarch::LOONGARCH64),
        Arch::Mips => Some(&mips::MIPS),
        Arch::Other(_) => None,
    }
}

/// Decode a whole argument string (`-4@%eax 8@(%rsp)`) for `arch`.
///
/// Every argument is decoded on its own: one bad argument gives an [`ArgError`] for that
/// argument only.
pub fn decode_args(arch: Arch, args: &str) -> Vec<Arg<'_>> {
    let mut out = Vec::new();
    decode_args_into(arch, args, &mut out);
    out
}

/// [`decode_args`], appending to `out`.
///
/// x86 arguments in the forms compilers emit are split and decoded in one pass
/// ([`x86::X86::decode_fast`]); from the first argument that pass does not take, the rest of
/// the string goes through [`grammar::split_args`] and [`decode_one`], which split and decode
/// everything the same way (a property test compares the two).
pub(crate) fn decode_args_into<'a>(arch: Arch, args: &'a str, out: &mut Vec<Arg<'a>>) {
    let mut rest = args;
    let mut first = 0;
    if let Some(x86) = x86::for_arch(arch) {
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
            let Some((spec, len)) = x86.decode_fast(rest) else {
                break;
            };
            out.push(Arg {
                text: &rest[..len],
                decoded: Ok(spec),
            });
            rest = &rest[len..];
            first += 1;
        }
    }
    decode_general(arch, rest, first, out);
}

/// The general path of [`decode_args_into`]: split, then decode each argument; the first is
/// argument `first` of its string.
fn decode_general<'a>(arch: Arch, args: &'a str, first: usize, out: &mut Vec<Arg<'a>>) {
    for (index, text) in grammar::split_args(args).enumerate() {
        let index = first + index;
        out.push(Arg {
            text,
            decoded: decode_one(arch, text).map_err(|kind| {
                Box::new(ArgError {
                    index,
                    text: text.to_string(),
                    kind,
                })
            }),
        });
    }
}

/// Decode a single argument (`-4@%eax`) for `arch`.
pub fn decode_one(arch: Arch, text: &str) -> Result<ArgSpec, ArgErrorKind> {
    let dec = decoder(arch).ok_or(ArgErrorKind::UnsupportedArch(arch))?;
    let (size, signed, float, operand) = grammar::split_prefix(text)?;
    let location = match dec.parse_operand(operand) {
        Ok(l) => l,
        // gcc prints floating-point constants as decimal numbers on some targets
        // (arm: `4f@#1.70125e+2`): the value is known, kept as its IEEE bits.
        Err(e) => float_immediate(operand, size, float).ok_or(e)?,
    };
    Ok(ArgSpec {
        size,
        signed,
        float,
        location,
    })
}

/// A decimal floating-point immediate (`#1.5`, `$-2e3`, `1.5`) of an `f`-marked argument of
/// 4 or 8 bytes, as a constant holding the value's IEEE bits.
fn float_immediate(operand: &str, size: u32, float: bool) -> Option<Location> {
    if !float {
        return None;
    }
    let text = operand.trim_start_matches(['#', '$']);
    if !text.contains(['.', 'e', 'E'])
        || !text.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
    {
        return None;
    }
    let v: f64 = text.parse().ok()?;
    match size {
        4 => Some(Location::Const(i64::from((v as f32).to_bits()))),
        8 => Some(Location::Const(v.to_bits() as i64)),
        _ => None,
    }
}

#[cfg(feature = "serde")]
impl Serialize for Arg<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("text", self.text)?;
        match &self.decoded {
            Ok(spec) => {
                m.serialize_entry("size", &spec.size)?;
                m.serialize_entry("signed", &spec.signed)?;
                m.serialize_entry("float", &spec.float)?;
                m.serialize_entry("location", &spec.location)?;
            }
            Err(e) => m.serialize_entry("error", &e.kind.to_string())?,
        }
        m.end()
    }
}
