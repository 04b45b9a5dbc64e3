//! Probes and sites of one ELF file: notes resolved to file offsets, grouped by
//! `provider:name`, arguments decoded and symbols resolved.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::arg::{decode_args, Arg, Location};
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
    pub args: Vec<Arg<'data>>,
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

/// The USDT probes of one ELF file.
#[derive(Debug, Clone)]
pub struct UsdtFile<'data> {
    elf: ElfFile<'data>,
    arch: Arch,
    sites: Vec<Site<'data>>,
    errors: Vec<NoteError>,
    /// (provider, name, indexes into `sites`) in order of first appearance.
    probes: Vec<(&'data str, &'data str, Vec<usize>)>,
}

impl<'data> UsdtFile<'data> {
    /// Read the probes of an ELF file held in memory.
    ///
    /// Fails only when the file as a whole is unreadable; a malformed note becomes an entry
    /// of [`UsdtFile::errors`] and the other notes are still read.
    pub fn parse(data: &'data [u8]) -> Result<Self> {
        let elf = ElfFile::parse(data)?;
        let arch = Arch::from_elf(elf.machine, elf.is_64);
        let mut sites = Vec::new();
        let mut errors = Vec::new();
        if let Some(sec) = elf.stapsdt_notes {
            for raw in note::walk(sec, elf.is_64, elf.byte_order) {
                match raw.and_then(|raw| resolve_site(&elf, arch, raw)) {
                    Ok(site) => sites.push(site),
                    Err(e) => errors.push(e),
                }
            }
        }
        resolve_symbols(&elf, &mut sites);
        let mut index: HashMap<(&str, &str), usize> = HashMap::new();
        let mut probes: Vec<(&str, &str, Vec<usize>)> = Vec::new();
        for (i, s) in sites.iter().enumerate() {
            let slot = *index.entry((s.provider, s.name)).or_insert_with(|| {
                probes.push((s.provider, s.name, Vec::new()));
                probes.len() - 1
            });
            probes[slot].2.push(i);
        }
        Ok(UsdtFile {
            elf,
            arch,
            sites,
            errors,
            probes,
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
        self.probes.iter().map(|(provider, name, idx)| Probe {
            provider,
            name,
            sites: idx.iter().map(|&i| &self.sites[i]).collect(),
        })
    }

    /// The probe `provider:name`, if the file has it.
    pub fn probe(&self, provider: &str, name: &str) -> Option<Probe<'_, 'data>> {
        self.probes()
            .find(|p| p.provider == provider && p.name == name)
    }
}

fn resolve_site<'data>(
    elf: &ElfFile<'data>,
    arch: Arch,
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
        args: decode_args(arch, raw.args),
        note_index: raw.index,
        trailing_bytes: raw.trailing.len(),
    })
}

/// Fill in the addresses of symbol operands; an unknown or ambiguous symbol becomes an error
/// of that argument only.
fn resolve_symbols(elf: &ElfFile<'_>, sites: &mut [Site<'_>]) {
    let mut names: Vec<String> = Vec::new();
    for site in sites.iter() {
        for arg in &site.args {
            if let Ok(spec) = &arg.decoded {
                if let Location::Symbol { symbol, .. } = &spec.location {
                    names.push(symbol.clone());
                }
            }
        }
    }
    if names.is_empty() {
        return;
    }
    let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
    let table = elf.find_symbols(&wanted).unwrap_or_default();
    for site in sites.iter_mut() {
        for (i, arg) in site.args.iter_mut().enumerate() {
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
                index: i,
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
