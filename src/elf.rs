//! A thin layer over the `object` crate: the parts of an ELF file that USDT needs, read in
//! the file's own class and byte order.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym, VersionTable};
use object::{Endianness, FileKind, SectionIndex, SymbolIndex};

use crate::error::{Error, Result};

/// Byte order of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum ByteOrder {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

/// A PT_LOAD segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Segment {
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_offset`.
    pub offset: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// Whether `PF_X` is set.
    pub executable: bool,
    /// Whether `PF_W` is set.
    pub writable: bool,
}

impl Segment {
    /// Whether `addr` lies inside the segment's memory image.
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.vaddr && addr - self.vaddr < self.memsz
    }

    /// File offset of `addr` (which must be inside the segment): `addr - p_vaddr + p_offset`.
    pub fn file_offset(&self, addr: u64) -> u64 {
        addr - self.vaddr + self.offset
    }

    /// Whether the segment's file mapping covers file offset `off` once rounded out to
    /// whole pages of `page` bytes (the loader maps whole pages, so the bytes of a
    /// neighbouring segment that share its first or last page are mapped too).
    pub fn maps_file_page_of(&self, off: u64, page: u64) -> bool {
        let start = self.offset & !(page - 1);
        let end = (self.offset.saturating_add(self.filesz))
            .div_ceil(page)
            .saturating_mul(page);
        self.filesz > 0 && off >= start && off < end
    }
}

/// A semaphore whose file page another writable segment maps too, at a lower address.
///
/// The kernel raises a semaphore (`ref_ctr_offset`) in the first writable mapping of the
/// file that covers the semaphore's file offset. lld can start the writable data segment on
/// the file page where the RELRO segment ends: while the dynamic loader has not yet made
/// RELRO read-only (a process started after the probe was attached, or a library loaded
/// later), that first mapping is RELRO's, and the count lands at `alias` instead of the
/// semaphore the program reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SemaphoreAlias {
    /// The semaphore's link-time address.
    pub semaphore: u64,
    /// Where the other segment maps the same file bytes (link-time address).
    pub alias: u64,
    /// The semaphore's file offset.
    pub file_offset: u64,
}

/// Page size the layout checks assume: the smallest Linux uses (a larger one only adds
/// sharing).
pub const LAYOUT_PAGE: u64 = 4096;

/// The parts of an ELF file that USDT reading needs.
#[derive(Debug, Clone)]
pub struct ElfFile<'data> {
    data: &'data [u8],
    /// ELFCLASS64?
    pub is_64: bool,
    /// The file's byte order.
    pub byte_order: ByteOrder,
    /// `e_machine`.
    pub machine: u16,
    /// `e_type` (`ET_EXEC` 2, `ET_DYN` 3...).
    pub file_type: u16,
    /// PT_LOAD segments in header order.
    pub segments: Vec<Segment>,
    /// Contents of `.note.stapsdt`, when the file has that section.
    pub stapsdt_notes: Option<&'data [u8]>,
    /// `sh_addr` of `.stapsdt.base`, when the file has that section.
    pub stapsdt_base: Option<u64>,
}

impl ElfFile<'_> {
    /// The alias of the semaphore at `addr`, when a writable segment below the one holding
    /// it maps its file page too (see [`SemaphoreAlias`]).
    pub fn semaphore_alias(&self, addr: u64) -> Option<SemaphoreAlias> {
        let own = self
            .segments
            .iter()
            .find(|s| s.contains(addr) && addr - s.vaddr < s.filesz)?;
        let off = own.file_offset(addr);
        self.segments
            .iter()
            .filter(|s| s.writable && s.vaddr < own.vaddr && *s != own)
            .find(|s| s.maps_file_page_of(off, LAYOUT_PAGE))
            .map(|s| SemaphoreAlias {
                semaphore: addr,
                alias: s.vaddr.wrapping_add(off.wrapping_sub(s.offset)),
                file_offset: off,
            })
    }
}

/// One definition of a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SymbolDef {
    /// `st_value`: the link-time address.
    pub value: u64,
    /// Whether the binding is `STB_LOCAL`.
    pub local: bool,
}

impl<'data> ElfFile<'data> {
    /// Parse the headers of an ELF file of either class and byte order.
    pub fn parse(data: &'data [u8]) -> Result<Self> {
        match FileKind::parse(data).map_err(Error::elf)? {
            FileKind::Elf32 => Self::parse_as::<elf::FileHeader32<Endianness>>(data),
            FileKind::Elf64 => Self::parse_as::<elf::FileHeader64<Endianness>>(data),
            other => Err(Error::elf(format!("not an ELF file ({other:?})"))),
        }
    }

    fn parse_as<Elf: FileHeader<Endian = Endianness>>(data: &'data [u8]) -> Result<Self> {
        let header = Elf::parse(data).map_err(Error::elf)?;
        let endian = header.endian().map_err(Error::elf)?;
        let mut segments = Vec::new();
        for ph in header.program_headers(endian, data).map_err(Error::elf)? {
            if ph.p_type(endian) == elf::PT_LOAD {
                segments.push(Segment {
                    vaddr: ph.p_vaddr(endian).into(),
                    memsz: ph.p_memsz(endian).into(),
                    offset: ph.p_offset(endian).into(),
                    filesz: ph.p_filesz(endian).into(),
                    executable: ph.p_flags(endian).0 & elf::PF_X.0 != 0,
                    writable: ph.p_flags(endian).0 & elf::PF_W.0 != 0,
                });
            }
        }
        let sections = header.sections(endian, data).map_err(Error::elf)?;
        // One pass over the section headers for both sections (first of each name wins),
        // comparing each name in place (no search for its end). A name outside the string
        // table matches nothing.
        let names: &[u8] = header
            .shstrndx(endian, data)
            .ok()
            .and_then(|i| sections.section(SectionIndex(i as usize)).ok())
            .and_then(|sh| sh.data(endian, data).ok())
            .unwrap_or(&[]);
        let named = |sh: &Elf::SectionHeader, want: &[u8]| {
            names
                .get(sh.sh_name(endian) as usize..)
                .and_then(|n| n.strip_prefix(want))
                .is_some_and(|rest| rest.first() == Some(&0))
        };
        let (mut notes, mut stapsdt_base) = (None, None);
        for sh in sections.iter() {
            if notes.is_none() && named(sh, b".note.stapsdt") {
                notes = Some(sh);
            } else if stapsdt_base.is_none() && named(sh, b".stapsdt.base") {
                stapsdt_base = Some(sh.sh_addr(endian).into());
            }
        }
        let stapsdt_notes = match notes {
            Some(sh) => Some(
                sh.data(endian, data)
                    .map_err(|e| Error::elf(format!(".note.stapsdt: {e}")))?,
            ),
            None => None,
        };
        Ok(ElfFile {
            data,
            is_64: header.is_type_64(),
            byte_order: if endian == Endianness::Little {
                ByteOrder::Little
            } else {
                ByteOrder::Big
            },
            machine: header.e_machine(endian).0,
            file_type: header.e_type(endian).0,
            segments,
            stapsdt_notes,
            stapsdt_base,
        })
    }

    /// The bytes of the whole file.
    pub fn data(&self) -> &'data [u8] {
        self.data
    }

    /// The PT_LOAD segment containing `addr`.
    pub fn segment_for(&self, addr: u64) -> Option<&Segment> {
        self.segments.iter().find(|s| s.contains(addr))
    }

    /// Definitions of the `wanted` symbols in `.symtab` and `.dynsym` (undefined, section
    /// and file symbols excluded). Definitions at the same address are merged.
    ///
    /// A file with `.symtab` has every symbol there and in `.dynsym`: both are scanned
    /// (matching binutils' view of the file). A stripped file (only `.dynsym`) with a
    /// `.gnu.hash` table is looked up through it, name by name, as the dynamic linker does:
    /// a versioned name resolves to its default version. Names the table does not give are
    /// then looked for by a scan.
    pub fn find_symbols<S: BuildHasher>(
        &self,
        wanted: &HashSet<&str, S>,
    ) -> Result<HashMap<String, Vec<SymbolDef>>> {
        if self.is_64 {
            self.find_symbols_as::<elf::FileHeader64<Endianness>, S>(wanted)
        } else {
            self.find_symbols_as::<elf::FileHeader32<Endianness>, S>(wanted)
        }
    }

    fn find_symbols_as<Elf: FileHeader<Endian = Endianness>, S: BuildHasher>(
        &self,
        wanted: &HashSet<&str, S>,
    ) -> Result<HashMap<String, Vec<SymbolDef>>> {
        let mut out: HashMap<String, Vec<SymbolDef>> = HashMap::new();
        if wanted.is_empty() {
            return Ok(out);
        }
        let header = Elf::parse(self.data).map_err(Error::elf)?;
        let endian = header.endian().map_err(Error::elf)?;
        let sections = header.sections(endian, self.data).map_err(Error::elf)?;
        let table = |kind| {
            sections
                .symbols(endian, self.data, kind)
                .map_err(|e| Error::elf(format!("symbol table: {e}")))
        };
        let (symtab, dynsym) = (table(elf::SHT_SYMTAB)?, table(elf::SHT_DYNSYM)?);
        let mut rest: Vec<&str> = wanted.iter().copied().collect();
        if symtab.is_empty() && !dynsym.is_empty() {
            let hash = sections.gnu_hash(endian, self.data).map_err(Error::elf)?;
            if let Some((hash, _)) = hash.filter(|(_, link)| *link == dynsym.section()) {
                // The version table is read only for a name whose first definition in the
                // hash chain is versioned: for an unversioned one, the version-aware lookup
                // stops at the same symbol.
                let versym: &[elf::Versym<Endianness>] = sections
                    .iter()
                    .find(|sh| sh.sh_type(endian) == elf::SHT_GNU_VERSYM)
                    .and_then(|sh| sh.data_as_array(endian, self.data).ok())
                    .unwrap_or(&[]);
                let unversioned = VersionTable::default();
                let mut versions = None;
                let mut missing = Vec::new();
                for name in rest {
                    let (bytes, h) = (name.as_bytes(), elf::gnu_hash(name.as_bytes()));
                    let mut found = hash.find(endian, bytes, h, None, &dynsym, &unversioned);
                    let versioned = |i: SymbolIndex| {
                        versym
                            .get(i.0)
                            .is_some_and(|v| !v.0.get(endian).index().is_special())
                    };
                    if found.is_some_and(|(i, _)| versioned(i)) {
                        let table = match &versions {
                            Some(t) => t,
                            None => versions.insert(
                                sections
                                    .versions(endian, self.data)
                                    .map_err(Error::elf)?
                                    .unwrap_or_default(),
                            ),
                        };
                        found = hash.find(endian, bytes, h, None, &dynsym, table);
                    }
                    match found.and_then(|(_, sym)| definition(endian, sym)) {
                        Some(def) => {
                            out.insert(name.to_string(), vec![def]);
                        }
                        None => missing.push(name),
                    }
                }
                rest = missing;
            }
        }
        if rest.is_empty() {
            return Ok(out);
        }
        // Bucket the names left by first byte, so most symbols are rejected by one load.
        let mut buckets: Vec<Vec<&[u8]>> = vec![Vec::new(); 256];
        for w in &rest {
            if let Some(&b) = w.as_bytes().first() {
                buckets[b as usize].push(w.as_bytes());
            }
        }
        for table in [&symtab, &dynsym] {
            if table.is_empty() {
                continue;
            }
            let strtab = sections
                .section(table.string_section())
                .and_then(|s| s.data(endian, self.data))
                .map_err(|e| Error::elf(format!("symbol string table: {e}")))?;
            for sym in table.symbols() {
                // The name's first byte picks the bucket; most symbols stop there.
                let off = sym.st_name(endian) as usize;
                let Some(&first) = strtab.get(off) else {
                    continue;
                };
                let tail = &strtab[off..];
                let Some(name) = buckets[first as usize]
                    .iter()
                    .find(|w| tail.starts_with(w) && tail.get(w.len()) == Some(&0))
                else {
                    continue;
                };
                let Some(def) = definition(endian, sym) else {
                    continue;
                };
                let name = std::str::from_utf8(name).expect("wanted names are str");
                let defs = out.entry(name.to_string()).or_default();
                if !defs.iter().any(|d| d.value == def.value) {
                    defs.push(def);
                }
            }
        }
        Ok(out)
    }
}

/// A symbol as a definition: `None` for undefined, section and file symbols.
fn definition<S: Sym<Endian = Endianness>>(endian: Endianness, sym: &S) -> Option<SymbolDef> {
    let st_type = sym.st_type();
    if sym.is_undefined(endian) || st_type == elf::STT_SECTION || st_type == elf::STT_FILE {
        return None;
    }
    Some(SymbolDef {
        value: sym.st_value(endian).into(),
        local: sym.st_bind() == elf::STB_LOCAL,
    })
}
