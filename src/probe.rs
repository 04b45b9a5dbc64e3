//! Probes and sites of one ELF file: notes resolved to file offsets, grouped by
//! `provider:name`, arguments decoded and symbols resolved.
//!
//! Parsing is one pass over the notes, and each site is finished (arguments, probe) while its
//! note is in cache. Each distinct argument string is decoded once and its [`ArgList`] shared
//! by every site that has it (real files repeat them: libjvm.so has 128 distinct strings for
//! 531 sites); symbol operands are noted as they are decoded and resolved together in one
//! symbol table pass; sites are grouped into probes by their `provider\0name` text through a
//! table of 4-byte indexes into flat arrays. Both tables are plain scans until they hold more
//! than eight keys (most files have a few probes). Parsing makes no allocation per site. A
//! section of a megabyte or more (some 15,000 notes) is read in two halves on two threads,
//! split at a note boundary, and joined in note order.

use std::path::{Path, PathBuf};

use foldhash::HashSet;

use crate::arch::Arch;
use crate::arg::ArgSpec;
use crate::arg::{decode_args_into, split_args, Arg, ArgList, FileArgs, Location, MAX_SITE_ARGS};
use crate::elf::{ElfFile, SymbolDef};
use crate::error::{ArgError, ArgErrorKind, Context, Error, NoteError, NoteErrorKind, Result};
use crate::note::{self, RawNote};
use crate::parallel;
use crate::sys;

pub(crate) mod tables;
use self::tables::{Grouping, Lists};

#[cfg(all(test, feature = "harness"))]
mod split_tests;

/// One probe site: one `.note.stapsdt` note, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Site<'data> {
    /// Provider.
    pub provider: &'data str,
    /// Probe name.
    pub name: &'data str,
    /// Site address (link-time virtual address, after the `.stapsdt.base` adjustment).
    pub pc: u64,
    /// File offset of the site, as uprobes take it.
    pub file_offset: u64,
    /// Semaphore address, when the site has one.
    pub semaphore: Option<u64>,
    /// File offset of the semaphore (the kernel's `ref_ctr_offset`).
    pub semaphore_file_offset: Option<u64>,
    /// The argument string as written.
    pub args_text: &'data str,
    /// The decoded arguments, in order.
    pub args: ArgList<'data>,
    /// Index of the note in `.note.stapsdt`.
    pub note_index: usize,
    /// Bytes after the argument string in the note (libbpf's `usdt.h` marks `nop; nop5`
    /// sites with one extra NUL).
    pub trailing_bytes: usize,
}

impl Site<'_> {
    /// Where the site is (file unknown: [`Error::with_path`] adds it).
    pub fn context(&self) -> Context {
        Context::default()
            .probe(format!("{}:{}", self.provider, self.name))
            .site(self.pc, Some(self.note_index))
    }

    /// Argument `index` decoded, or an [`Error::Arg`] naming probe, site and argument.
    pub fn arg_spec(&self, index: usize) -> Result<&ArgSpec> {
        let Some(arg) = self.args.get(index) else {
            return Err(Error::Invalid(format!(
                "{}: the site has {} arguments, no #{index}",
                self.context(),
                self.args.len()
            )));
        };
        arg.decoded.as_ref().map_err(|e| Error::Arg {
            context: Box::new(self.context().arg(index, arg.text)),
            source: (**e).clone(),
        })
    }
}

/// A probe: every site that shares one `provider:name`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Probe<'f, 'data> {
    /// Provider.
    pub provider: &'data str,
    /// Probe name.
    pub name: &'data str,
    /// The sites, in note order. Each keeps its own arguments and semaphore.
    pub sites: Vec<&'f Site<'data>>,
}

/// One probe of the file: its name and where its sites are in `UsdtFile::by_probe`.
#[derive(Debug, Clone)]
pub(crate) struct ProbeEntry<'data> {
    pub(crate) provider: &'data str,
    pub(crate) name: &'data str,
    pub(crate) start: u32,
    pub(crate) len: u32,
}

/// The USDT probes of one ELF file.
#[derive(Debug, Clone)]
pub struct UsdtFile<'data> {
    elf: ElfFile<'data>,
    arch: Arch,
    sites: Vec<Site<'data>>,
    errors: Vec<NoteError>,
    /// Probes in order of first appearance.
    probes: Vec<ProbeEntry<'data>>,
    /// Indexes into `sites`, grouped by probe, in note order within a probe.
    by_probe: Vec<u32>,
}

impl<'data> UsdtFile<'data> {
    /// Read the probes of an ELF file held in memory.
    ///
    /// Fails only when the file as a whole is unreadable; a malformed note becomes an entry
    /// of [`UsdtFile::errors`] and the other notes are still read.
    pub fn parse(data: &'data [u8]) -> Result<Self> {
        Self::parse_split(data, Split::Auto)
    }

    fn parse_split(data: &'data [u8], how: Split) -> Result<Self> {
        let elf = ElfFile::parse(data)?;
        let arch = Arch::from_elf(elf.machine, elf.is_64);
        let sec = elf.stapsdt_notes.unwrap_or_default();
        // A large section is read in two halves on two threads (split at a note boundary),
        // each with its own tables; the halves are joined in note order.
        let near = match how {
            Split::Auto => {
                (sec.len() >= PARALLEL_BYTES && parallel::two_cores()).then_some(sec.len() / 2)
            }
            Split::Never => None,
            Split::Near(at) => Some(at),
        };
        let split = near.and_then(|at| note::boundary_after(sec, elf.byte_order, at));
        // The first half is read in place (a reader is a few hundred bytes: no moves).
        let mut first = Reader::new(split.map_or(sec.len(), |at| at.0));
        let mut second = match split {
            None => {
                first.read(&elf, arch, sec, (0, 0));
                None
            }
            Some(at) => {
                let rest = || {
                    let mut r = Reader::new(sec.len() - at.0);
                    r.read(&elf, arch, sec, at);
                    r
                };
                let ((), second) =
                    parallel::join(|| first.read(&elf, arch, &sec[..at.0], (0, 0)), rest);
                Some(second)
            }
        };
        SymbolArgs::resolve(&elf, &mut first, second.as_mut());
        first
            .all
            .set(first.args)
            .expect("a file's argument lists are set once");
        let (mut sites, mut errors, mut grouping) = (first.sites, first.errors, first.grouping);
        if let Some(r) = second {
            r.all
                .set(r.args)
                .expect("a file's argument lists are set once");
            sites.extend(r.sites);
            errors.extend(r.errors);
            grouping.append(r.grouping);
        }
        let (probes, by_probe) = grouping.finish();
        Ok(UsdtFile {
            elf,
            arch,
            sites,
            errors,
            probes,
            by_probe,
        })
    }

    /// The file's architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The ELF headers usdtkit read.
    pub fn elf(&self) -> &ElfFile<'data> {
        &self.elf
    }

    /// Every well-formed site, in note order.
    pub fn sites(&self) -> &[Site<'data>] {
        &self.sites
    }

    /// The semaphores of this file that another writable segment maps too, at a lower
    /// address: the kernel raises them in the wrong place for processes that map the file
    /// after a probe was attached (see [`crate::elf::SemaphoreAlias`]). Each once, in site
    /// order.
    pub fn semaphore_aliases(&self) -> Vec<crate::elf::SemaphoreAlias> {
        let mut v: Vec<crate::elf::SemaphoreAlias> = Vec::new();
        for s in &self.sites {
            let Some(sem) = s.semaphore else { continue };
            if v.iter().any(|a| a.semaphore == sem) {
                continue;
            }
            if let Some(a) = self.elf.semaphore_alias(sem) {
                v.push(a);
            }
        }
        v
    }

    /// The notes that could not be read, each naming what is wrong.
    pub fn errors(&self) -> &[NoteError] {
        &self.errors
    }

    /// Probes in order of first appearance.
    pub fn probes(&self) -> impl Iterator<Item = Probe<'_, 'data>> + '_ {
        self.probes.iter().map(|p| self.probe_of(p))
    }

    /// The probe `provider:name`, if the file has it.
    pub fn probe(&self, provider: &str, name: &str) -> Option<Probe<'_, 'data>> {
        self.probes
            .iter()
            .find(|p| p.provider == provider && p.name == name)
            .map(|p| self.probe_of(p))
    }

    /// Every probe's provider and name with the indexes of its sites in
    /// [`UsdtFile::sites`], in the order of [`UsdtFile::probes`] (no list of sites built).
    #[cfg(feature = "attach")]
    pub(crate) fn probes_indexed(
        &self,
    ) -> impl Iterator<Item = (&'data str, &'data str, &[u32])> + '_ {
        self.probes.iter().map(|p| {
            let idx = &self.by_probe[p.start as usize..][..p.len as usize];
            (p.provider, p.name, idx)
        })
    }

    fn probe_of(&self, p: &ProbeEntry<'data>) -> Probe<'_, 'data> {
        let idx = &self.by_probe[p.start as usize..][..p.len as usize];
        Probe {
            provider: p.provider,
            name: p.name,
            sites: idx.iter().map(|&i| &self.sites[i as usize]).collect(),
        }
    }
}

/// Where [`UsdtFile::parse`] splits the notes between two threads.
#[derive(Debug, Clone, Copy)]
enum Split {
    /// At the middle of a large section, with two cores.
    Auto,
    /// Nowhere.
    #[cfg_attr(not(all(test, feature = "harness")), allow(dead_code))]
    Never,
    /// At the first note from this offset (tests).
    #[cfg_attr(not(all(test, feature = "harness")), allow(dead_code))]
    Near(usize),
}

/// Notes of at least this many bytes (some 15,000 notes) are read on two threads.
pub(crate) const PARALLEL_BYTES: usize = 1 << 20;

/// What reading a run of notes gives: its sites and malformed notes, its distinct argument
/// strings (`lists`) with their decoded lists (in `args`, which `all` will hold), the symbol
/// operands to resolve and the sites' probes.
struct Reader<'data> {
    sites: Vec<Site<'data>>,
    errors: Vec<NoteError>,
    args: Vec<Arg<'data>>,
    all: FileArgs<'data>,
    symbols: SymbolArgs,
    lists: Lists<'data>,
    grouping: Grouping<'data>,
}

impl<'data> Reader<'data> {
    /// A reader of `bytes` bytes of notes.
    fn new(bytes: usize) -> Self {
        // A note takes 60 to 150 bytes: size the site tables once rather than growing them
        // (growing copies every site read so far: 8 MB at 100,000 sites). Bounded, as the
        // section's size is the file's word; a reservation this large is mapped lazily, so
        // pages never written cost nothing.
        let estimate = (bytes / 64).min(1 << 20);
        // Each distinct argument string is decoded once into `args` (back to back; room for
        // two arguments a string). The tables of argument lists and of probes are sized for a
        // libjvm-sized file and grow beyond (sized for 100,000 sites, most of them would
        // never be touched).
        let distinct = estimate.min(1024);
        Reader {
            sites: Vec::with_capacity(estimate),
            errors: Vec::new(),
            args: Vec::with_capacity(2 * distinct),
            all: FileArgs::default(),
            symbols: SymbolArgs::default(),
            lists: Lists::with_capacity(distinct),
            grouping: Grouping::with_capacity(distinct, estimate),
        }
    }

    /// Read the notes of `sec` from `from` (a note's offset and index) to its end.
    fn read(&mut self, elf: &ElfFile<'data>, arch: Arch, sec: &'data [u8], from: (usize, usize)) {
        let r = self;
        // One pass: each site is complete (arguments, probe) while it is in cache.
        for raw in note::walk_from(sec, elf.is_64, elf.byte_order, from) {
            // Each site is built once, in place, after everything that can fail: the error
            // paths are out of line.
            let raw = match raw {
                Ok(raw) => raw,
                Err(e) => {
                    r.errors.push(e);
                    continue;
                }
            };
            let place = match place_site(elf, &raw) {
                Ok(place) => place,
                Err(kind) => {
                    r.errors.push(site_error(elf, &raw, kind));
                    continue;
                }
            };
            let (args, symbols) = (&mut r.args, &mut r.symbols);
            let list = r.lists.intern(raw.args, |text| {
                let start = args.len() as u32;
                decode_args_into(arch, text, args);
                symbols.note(&args[start as usize..], start);
                (start, args.len() as u32 - start)
            });
            let list = ArgList::shared(&r.all, list.start, list.len);
            r.grouping.add(raw.probe, raw.provider, raw.name);
            r.sites.push(Site {
                provider: raw.provider,
                name: raw.name,
                pc: place.pc,
                file_offset: place.file_offset,
                semaphore: place.semaphore,
                semaphore_file_offset: place.semaphore_file_offset,
                args_text: raw.args,
                args: list,
                note_index: raw.index,
                trailing_bytes: raw.trailing.len(),
            });
        }
    }
}

/// Where a site is: its address after the prelink adjustment, and the file offsets uprobes
/// take for it and its semaphore.
pub(crate) struct Placement {
    pub(crate) pc: u64,
    pub(crate) file_offset: u64,
    pub(crate) semaphore: Option<u64>,
    pub(crate) semaphore_file_offset: Option<u64>,
}

/// The site address of `raw` after the prelink adjustment: only when the section exists and
/// both addresses are non-zero.
fn adjusted_pc(elf: &ElfFile<'_>, raw: &RawNote<'_>) -> u64 {
    match elf.stapsdt_base {
        Some(sec) if sec != 0 && raw.base != 0 => raw.pc.wrapping_add(sec.wrapping_sub(raw.base)),
        _ => raw.pc,
    }
}

// Inlined into both readers' loops (the parse's and the attach's).
#[inline(always)]
pub(crate) fn place_site(
    elf: &ElfFile<'_>,
    raw: &RawNote<'_>,
) -> std::result::Result<Placement, NoteErrorKind> {
    let pc = adjusted_pc(elf, raw);
    let seg = elf
        .segment_for(pc)
        .ok_or(NoteErrorKind::SiteNotMapped(pc))?;
    if !seg.executable || pc - seg.vaddr >= seg.filesz {
        return Err(NoteErrorKind::SiteNotExecutable(pc));
    }
    let file_offset = seg.file_offset(pc);
    // Each argument takes at least two bytes but the last: only a long string can hold too
    // many.
    if raw.args.len() >= 2 * MAX_SITE_ARGS && split_args(raw.args).nth(MAX_SITE_ARGS).is_some() {
        return Err(NoteErrorKind::TooManyArgs(MAX_SITE_ARGS));
    }
    let (semaphore, semaphore_file_offset) = match raw.semaphore {
        0 => (None, None),
        sem => {
            let seg = elf
                .segment_for(sem)
                .ok_or(NoteErrorKind::SemaphoreNotMapped(sem))?;
            if seg.executable {
                return Err(NoteErrorKind::SemaphoreExecutable(sem));
            }
            (Some(sem), Some(seg.file_offset(sem)))
        }
    };
    Ok(Placement {
        pc,
        file_offset,
        semaphore,
        semaphore_file_offset,
    })
}

/// The error of a note whose site or semaphore cannot be placed.
#[cold]
fn site_error(elf: &ElfFile<'_>, raw: &RawNote<'_>, kind: NoteErrorKind) -> NoteError {
    NoteError {
        file: None,
        index: raw.index,
        section_offset: raw.section_offset,
        provider: Some(raw.provider.to_string()),
        name: Some(raw.name.to_string()),
        pc: Some(adjusted_pc(elf, raw)),
        kind,
    }
}

/// The symbol operands met while decoding (noted while their lists are in cache), resolved
/// together once every name is known: one symbol table pass per file.
#[derive(Default)]
struct SymbolArgs {
    names: HashSet<String>,
    /// (index in the file's arguments, index in its list) of each symbol operand.
    args: Vec<(u32, u32)>,
}

impl SymbolArgs {
    /// Note the symbol operands of a list just decoded at `start`.
    fn note(&mut self, list: &[Arg<'_>], start: u32) {
        for (i, arg) in list.iter().enumerate() {
            let Ok(spec) = &arg.decoded else { continue };
            if let Location::Symbol(s) = &spec.location {
                if !self.names.contains(s.symbol.as_str()) {
                    self.names.insert(s.symbol.clone());
                }
                self.args.push((start + i as u32, i as u32));
            }
        }
    }

    /// Fill in the addresses of the operands the readers noted (one symbol table pass for
    /// both); an unknown or ambiguous symbol becomes an error of that argument only.
    fn resolve<'d>(elf: &ElfFile<'_>, first: &mut Reader<'d>, second: Option<&mut Reader<'d>>) {
        let more = second.as_ref().map_or(&[][..], |r| &r.symbols.args[..]);
        if first.symbols.args.is_empty() && more.is_empty() {
            return;
        }
        let mut wanted: HashSet<&str> = first.symbols.names.iter().map(String::as_str).collect();
        if let Some(r) = &second {
            wanted.extend(r.symbols.names.iter().map(String::as_str));
        }
        // Unreadable tables make every symbol operand an error saying so, not "undefined".
        let (table, broken) = match elf.find_symbols(&wanted) {
            Ok(table) => (table, None),
            Err(Error::Elf { reason, .. }) => (Default::default(), Some(reason)),
            Err(e) => (Default::default(), Some(e.to_string())),
        };
        drop(wanted);
        for r in std::iter::once(first).chain(second) {
            for &(at, index) in &r.symbols.args {
                let arg = &mut r.args[at as usize];
                let Ok(spec) = &mut arg.decoded else { continue };
                let Location::Symbol(s) = &mut spec.location else {
                    continue;
                };
                let defs: &[SymbolDef] = table.get(s.symbol.as_str()).map_or(&[], |v| v);
                let kind = match defs {
                    [] if broken.is_some() => ArgErrorKind::SymbolTable {
                        symbol: s.symbol.clone(),
                        reason: broken.clone().unwrap_or_default(),
                    },
                    [one] => {
                        s.address = Some(one.value.wrapping_add(s.offset as u64));
                        continue;
                    }
                    [] => ArgErrorKind::UnresolvedSymbol(s.symbol.clone()),
                    many => ArgErrorKind::AmbiguousSymbol {
                        symbol: s.symbol.clone(),
                        count: many.len(),
                    },
                };
                arg.decoded = Err(Box::new(ArgError {
                    index: index as usize,
                    text: arg.text.to_string(),
                    kind,
                }));
            }
        }
    }
}

/// The file's architecture, probes (with their sites) and malformed notes.
#[cfg(feature = "serde")]
impl serde::Serialize for UsdtFile<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("UsdtFile", 3)?;
        st.serialize_field("arch", &self.arch)?;
        st.serialize_field("probes", &self.probes().collect::<Vec<_>>())?;
        st.serialize_field("errors", &self.errors)?;
        st.end()
    }
}

/// An ELF file mapped into memory, to read its probes without copying.
#[derive(Debug)]
pub struct MappedFile {
    path: PathBuf,
    map: sys::Mapping,
}

impl MappedFile {
    /// Map `path` read-only.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let map = sys::Mapping::open(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(MappedFile { path, map })
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.bytes()
    }

    /// Read the file's probes (errors, and [`UsdtFile::errors`], name the file).
    pub fn usdt(&self) -> Result<UsdtFile<'_>> {
        let mut usdt = UsdtFile::parse(self.bytes()).map_err(|e| e.with_path(&self.path))?;
        for e in &mut usdt.errors {
            e.file = Some(self.path.clone());
        }
        Ok(usdt)
    }
}
