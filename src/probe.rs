//! Probes and sites of one ELF file: notes resolved to file offsets, grouped by
//! `provider:name`, arguments decoded and symbols resolved.
//!
//! Parsing is one pass over the notes. Each distinct argument string is decoded once and
//! its [`ArgList`] shared by every site that has it (real files repeat them: libjvm.so has
//! 128 distinct strings for 531 sites); symbols are resolved once per distinct list; sites
//! are grouped into probes through one hash map into flat index arrays, so parsing makes no
//! allocation per site.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt, HashSet};

use crate::arch::Arch;
use crate::arg::{decode_args_into, split_args, Arg, ArgList, Location, MAX_SITE_ARGS};
use crate::elf::{ElfFile, SymbolDef};
use crate::error::{ArgError, ArgErrorKind, Error, NoteError, NoteErrorKind, Result};
use crate::note::{self, RawNote};
use crate::sys;

/// One probe site: one `.note.stapsdt` note, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A probe: every site that shares one `provider:name`.
#[derive(Debug, Clone)]
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
struct ProbeEntry<'data> {
    provider: &'data str,
    name: &'data str,
    start: u32,
    len: u32,
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
        let elf = ElfFile::parse(data)?;
        let arch = Arch::from_elf(elf.machine, elf.is_64);
        // A note takes 60 to 150 bytes: size the tables once rather than growing them (up to
        // a bound: the section's size is the file's word).
        let estimate = elf.stapsdt_notes.map_or(0, |s| s.len() / 64).min(1 << 16);
        let mut sites = Vec::with_capacity(estimate);
        let mut errors = Vec::new();
        // Each distinct argument string, decoded once into `args` (back to back);
        // `list_of[i]` is site i's part of it.
        let mut args: Vec<Arg<'data>> = Vec::with_capacity(estimate);
        let mut seen: HashMap<&'data str, (u32, u32)> = HashMap::with_capacity(estimate);
        let mut list_of: Vec<(u32, u32)> = Vec::with_capacity(estimate);
        let mut parts: Vec<(u32, u32)> = Vec::new();
        if let Some(sec) = elf.stapsdt_notes {
            for raw in note::walk(sec, elf.is_64, elf.byte_order) {
                match raw.and_then(|raw| resolve_site(&elf, raw)) {
                    Ok(site) => {
                        let part = *seen.entry(site.args_text).or_insert_with(|| {
                            let start = args.len() as u32;
                            decode_args_into(arch, site.args_text, &mut args);
                            parts.push((start, args.len() as u32 - start));
                            parts[parts.len() - 1]
                        });
                        list_of.push(part);
                        sites.push(site);
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
        resolve_symbols(&elf, &mut args, &parts);
        let all = Arc::new(args);
        for (site, &(start, len)) in sites.iter_mut().zip(&list_of) {
            site.args = ArgList::shared(&all, start, len);
        }
        let (probes, by_probe) = group(&sites);
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

    fn probe_of(&self, p: &ProbeEntry<'data>) -> Probe<'_, 'data> {
        let idx = &self.by_probe[p.start as usize..][..p.len as usize];
        Probe {
            provider: p.provider,
            name: p.name,
            sites: idx.iter().map(|&i| &self.sites[i as usize]).collect(),
        }
    }
}

/// Group sites by `provider:name`: the probes in order of first appearance, and the site
/// indexes of each probe, contiguous and in note order.
fn group<'data>(sites: &[Site<'data>]) -> (Vec<ProbeEntry<'data>>, Vec<u32>) {
    let mut index: HashMap<(&str, &str), u32> = HashMap::with_capacity(sites.len());
    let mut probes: Vec<ProbeEntry<'data>> = Vec::new();
    let mut probe_of = Vec::with_capacity(sites.len());
    // Sites of one probe are often adjacent (unrolled loops, inlined helpers): check the
    // previous site's probe before hashing.
    let mut last: Option<(&str, &str, u32)> = None;
    for s in sites {
        let id = match last {
            Some((p, n, id)) if p == s.provider && n == s.name => id,
            _ => *index.entry((s.provider, s.name)).or_insert_with(|| {
                probes.push(ProbeEntry {
                    provider: s.provider,
                    name: s.name,
                    start: 0,
                    len: 0,
                });
                probes.len() as u32 - 1
            }),
        };
        probes[id as usize].len += 1;
        probe_of.push(id);
        last = Some((s.provider, s.name, id));
    }
    let mut next = 0;
    for p in &mut probes {
        p.start = next;
        next += p.len;
    }
    let mut fill: Vec<u32> = probes.iter().map(|p| p.start).collect();
    let mut by_probe = vec![0; sites.len()];
    for (i, &id) in probe_of.iter().enumerate() {
        let slot = &mut fill[id as usize];
        by_probe[*slot as usize] = i as u32;
        *slot += 1;
    }
    (probes, by_probe)
}

fn resolve_site<'data>(
    elf: &ElfFile<'data>,
    raw: RawNote<'data>,
) -> Result<Site<'data>, NoteError> {
    // The prelink adjustment: only when the section exists and both addresses are non-zero.
    let pc = match elf.stapsdt_base {
        Some(sec) if sec != 0 && raw.base != 0 => raw.pc.wrapping_add(sec.wrapping_sub(raw.base)),
        _ => raw.pc,
    };
    let err = |kind| NoteError {
        index: raw.index,
        section_offset: raw.section_offset,
        provider: Some(raw.provider.to_string()),
        name: Some(raw.name.to_string()),
        pc: Some(pc),
        kind,
    };
    let seg = elf
        .segment_for(pc)
        .ok_or_else(|| err(NoteErrorKind::SiteNotMapped(pc)))?;
    if !seg.executable || pc - seg.vaddr >= seg.filesz {
        return Err(err(NoteErrorKind::SiteNotExecutable(pc)));
    }
    let file_offset = seg.file_offset(pc);
    // Each argument takes at least two bytes but the last: only a long string can hold too
    // many.
    if raw.args.len() >= 2 * MAX_SITE_ARGS && split_args(raw.args).nth(MAX_SITE_ARGS).is_some() {
        return Err(err(NoteErrorKind::TooManyArgs(MAX_SITE_ARGS)));
    }
    let (semaphore, semaphore_file_offset) = match raw.semaphore {
        0 => (None, None),
        sem => {
            let seg = elf
                .segment_for(sem)
                .ok_or_else(|| err(NoteErrorKind::SemaphoreNotMapped(sem)))?;
            if seg.executable {
                return Err(err(NoteErrorKind::SemaphoreExecutable(sem)));
            }
            (Some(sem), Some(seg.file_offset(sem)))
        }
    };
    Ok(Site {
        provider: raw.provider,
        name: raw.name,
        pc,
        file_offset,
        semaphore,
        semaphore_file_offset,
        args_text: raw.args,
        args: ArgList::default(),
        note_index: raw.index,
        trailing_bytes: raw.trailing.len(),
    })
}

/// Fill in the addresses of symbol operands of the argument `lists` (start, length) of
/// `args`; an unknown or ambiguous symbol becomes an error of that argument only.
fn resolve_symbols(elf: &ElfFile<'_>, args: &mut [Arg<'_>], lists: &[(u32, u32)]) {
    let wanted: HashSet<&str> = args
        .iter()
        .filter_map(|arg| match &arg.decoded.as_ref().ok()?.location {
            Location::Symbol { symbol, .. } => Some(symbol.as_str()),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return;
    }
    let table = elf.find_symbols(&wanted).unwrap_or_default();
    for &(start, len) in lists {
        let list = &mut args[start as usize..][..len as usize];
        for (index, arg) in list.iter_mut().enumerate() {
            let Ok(spec) = &mut arg.decoded else { continue };
            let Location::Symbol {
                symbol,
                offset,
                address,
                ..
            } = &mut spec.location
            else {
                continue;
            };
            let defs: &[SymbolDef] = table.get(symbol.as_str()).map_or(&[], |v| v);
            let kind = match defs {
                [one] => {
                    *address = Some(one.value.wrapping_add(*offset as u64));
                    continue;
                }
                [] => ArgErrorKind::UnresolvedSymbol(symbol.clone()),
                many => ArgErrorKind::AmbiguousSymbol {
                    symbol: symbol.clone(),
                    count: many.len(),
                },
            };
            arg.decoded = Err(ArgError {
                index,
                text: arg.text.to_string(),
                kind,
            });
        }
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

    /// Read the file's probes (errors name the file).
    pub fn usdt(&self) -> Result<UsdtFile<'_>> {
        UsdtFile::parse(self.bytes()).map_err(|e| e.with_path(&self.path))
    }
}
