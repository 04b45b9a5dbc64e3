//! Synthetic ELF files with USDT notes, built in memory with `object::write`.
//!
//! Harness API (feature `harness`): used by the `usdtkit` command and the tests; not
//! covered by semver.
//!
//! Tests, property tests and benchmarks use these to cover what the machine's compilers do not
//! produce: 32-bit and big-endian files, foreign architectures, malformed notes, and files with
//! a hundred thousand sites. The layout is a minimal executable: one `R X` PT_LOAD holding
//! `.text`, one `RW` PT_LOAD holding `.data` (where semaphores go), an optional
//! `.stapsdt.base`, then `.note.stapsdt`, `.symtab`, `.strtab` and `.shstrtab`.

use object::elf;
use object::write::elf::{FileHeader, ProgramHeader, SectionHeader, Sym, Writer};
use object::Endianness;

/// One USDT note to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSpec {
    /// Site address as written in the note.
    pub pc: u64,
    /// `_.stapsdt.base` address the note was built against (0 for none).
    pub base: u64,
    /// Semaphore address (0 for none).
    pub semaphore: u64,
    /// Provider.
    pub provider: String,
    /// Probe name.
    pub name: String,
    /// Argument string.
    pub args: String,
    /// Extra bytes after the argument string's NUL.
    pub trailing: Vec<u8>,
}

impl NoteSpec {
    /// A note without semaphore, base or trailing bytes.
    pub fn new(pc: u64, provider: &str, name: &str, args: &str) -> Self {
        NoteSpec {
            pc,
            base: 0,
            semaphore: 0,
            provider: provider.into(),
            name: name.into(),
            args: args.into(),
            trailing: Vec::new(),
        }
    }
}

/// A symbol to put in `.symtab`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymSpec {
    /// Name.
    pub name: String,
    /// Address.
    pub value: u64,
    /// `STB_LOCAL` (true) or `STB_GLOBAL`.
    pub local: bool,
}

/// The shape of a synthetic file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfSpec {
    /// ELFCLASS64 (true) or ELFCLASS32.
    pub is_64: bool,
    /// Big-endian (true) or little-endian.
    pub big_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    /// `e_type` (2 = ET_EXEC, 3 = ET_DYN).
    pub file_type: u16,
    /// Virtual address of `.text` (its file offset is 0x1000, so the two differ).
    pub text_vaddr: u64,
    /// Size of `.text`.
    pub text_size: u64,
    /// Virtual address of `.data`.
    pub data_vaddr: u64,
    /// Size of `.data`.
    pub data_size: u64,
    /// Address of a `.stapsdt.base` section, or `None` for no such section.
    pub stapsdt_base: Option<u64>,
    /// The notes.
    pub notes: Vec<NoteSpec>,
    /// Bytes appended to the encoded notes (to build malformed sections).
    pub raw_note_bytes: Vec<u8>,
    /// Symbols.
    pub symbols: Vec<SymSpec>,
}

impl Default for ElfSpec {
    fn default() -> Self {
        ElfSpec {
            is_64: true,
            big_endian: false,
            machine: elf::EM_X86_64.0,
            file_type: elf::ET_EXEC.0,
            text_vaddr: 0x40_1000,
            text_size: 0x1000,
            data_vaddr: 0x60_2000,
            data_size: 0x100,
            stapsdt_base: None,
            notes: Vec::new(),
            raw_note_bytes: Vec::new(),
            symbols: Vec::new(),
        }
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32, big: bool) {
    out.extend_from_slice(&if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    });
}

fn put_word(out: &mut Vec<u8>, v: u64, is_64: bool, big: bool) {
    if is_64 {
        out.extend_from_slice(&if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    } else {
        put_u32(out, v as u32, big);
    }
}

/// Encode one stapsdt note (header, owner name, descriptor, padding).
pub fn encode_note(n: &NoteSpec, is_64: bool, big_endian: bool) -> Vec<u8> {
    let mut desc = Vec::new();
    for w in [n.pc, n.base, n.semaphore] {
        put_word(&mut desc, w, is_64, big_endian);
    }
    for s in [&n.provider, &n.name, &n.args] {
        desc.extend_from_slice(s.as_bytes());
        desc.push(0);
    }
    desc.extend_from_slice(&n.trailing);
    let mut out = Vec::with_capacity(desc.len() + 24);
    put_u32(&mut out, 8, big_endian);
    put_u32(&mut out, desc.len() as u32, big_endian);
    put_u32(&mut out, 3, big_endian);
    out.extend_from_slice(b"stapsdt\0");
    out.extend_from_slice(&desc);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

impl ElfSpec {
    /// Write the file.
    pub fn build(&self) -> Vec<u8> {
        let mut notes: Vec<u8> = Vec::new();
        for n in &self.notes {
            notes.extend(encode_note(n, self.is_64, self.big_endian));
        }
        notes.extend_from_slice(&self.raw_note_bytes);
        let mut syms = self.symbols.clone();
        syms.sort_by_key(|s| !s.local);
        let num_local = 1 + syms.iter().filter(|s| s.local).count() as u32;

        let endian = if self.big_endian {
            Endianness::Big
        } else {
            Endianness::Little
        };
        let mut buf = Vec::new();
        let mut w = Writer::new(endian, self.is_64, &mut buf);
        w.reserve_file_header();
        w.reserve_program_headers(2);
        let text_off = w.reserve(self.text_size, 0x1000);
        let data_off = w.reserve(self.data_size, 0x1000);
        let notes_off = w.reserve(notes.len() as u64, 4);

        w.reserve_null_section_index();
        let text_name = w.add_section_name(b".text");
        let text_idx = w.reserve_section_index();
        let data_name = w.add_section_name(b".data");
        let data_idx = w.reserve_section_index();
        let base_name = self.stapsdt_base.map(|_| {
            (
                w.add_section_name(b".stapsdt.base"),
                w.reserve_section_index(),
            )
        });
        let note_name = w.add_section_name(b".note.stapsdt");
        w.reserve_section_index();
        w.reserve_symtab_section_index();
        w.reserve_strtab_section_index();
        w.reserve_shstrtab_section_index();
        w.reserve_null_symbol_index();
        let sym_names: Vec<_> = syms
            .iter()
            .map(|s| {
                let id = w.add_string(s.name.as_bytes());
                let in_text =
                    s.value >= self.text_vaddr && s.value < self.text_vaddr + self.text_size;
                w.reserve_symbol_index(Some(if in_text { text_idx } else { data_idx }));
                (id, in_text)
            })
            .collect();
        w.reserve_symtab();
        w.reserve_strtab().expect("string table fits");
        w.reserve_shstrtab().expect("section names fit");
        w.reserve_section_headers();

        w.write_file_header(&FileHeader {
            os_abi: elf::ELFOSABI_NONE,
            abi_version: 0,
            e_type: elf::FileType(self.file_type),
            e_machine: elf::Machine(self.machine),
            e_entry: self.text_vaddr,
            e_flags: elf::FileFlags(0),
        })
        .expect("header fits");
        w.write_align_program_headers();
        for (flags, off, vaddr, size) in [
            (
                elf::PF_R.0 | elf::PF_X.0,
                text_off,
                self.text_vaddr,
                self.text_size,
            ),
            (
                elf::PF_R.0 | elf::PF_W.0,
                data_off,
                self.data_vaddr,
                self.data_size,
            ),
        ] {
            w.write_program_header(&ProgramHeader {
                p_type: elf::PT_LOAD,
                p_flags: elf::ProgramFlags(flags),
                p_offset: off,
                p_vaddr: vaddr,
                p_paddr: vaddr,
                p_filesz: size,
                p_memsz: size,
                p_align: 0x1000,
            });
        }
        w.pad_until(text_off);
        // `nop` bytes, so sites look like real USDT sites.
        w.write(&vec![0x90; self.text_size as usize]);
        w.pad_until(data_off);
        w.write(&vec![0; self.data_size as usize]);
        w.pad_until(notes_off);
        w.write(&notes);

        w.write_null_symbol();
        for (s, (id, in_text)) in syms.iter().zip(&sym_names) {
            let bind = if s.local {
                elf::STB_LOCAL
            } else {
                elf::STB_GLOBAL
            };
            let ty = if *in_text {
                elf::STT_FUNC
            } else {
                elf::STT_OBJECT
            };
            w.write_symbol(&Sym {
                section: Some(if *in_text { text_idx.0 } else { data_idx.0 }),
                st_name: w.string_offset(Some(*id)),
                st_info: elf::SymbolInfo::new(bind, ty),
                st_other: elf::SymbolOther(0),
                st_shndx: elf::SymbolSection(0),
                st_value: s.value,
                st_size: 8,
            });
        }
        w.write_strtab();
        w.write_shstrtab();

        w.write_null_section_header();
        let alloc_exec = elf::SHF_ALLOC.0 | elf::SHF_EXECINSTR.0;
        let alloc_write = elf::SHF_ALLOC.0 | elf::SHF_WRITE.0;
        let mut headers = vec![
            (
                text_name,
                elf::SHT_PROGBITS,
                alloc_exec,
                self.text_vaddr,
                text_off,
                self.text_size,
                16,
            ),
            (
                data_name,
                elf::SHT_PROGBITS,
                alloc_write,
                self.data_vaddr,
                data_off,
                self.data_size,
                8,
            ),
        ];
        if let (Some(addr), Some((name, _))) = (self.stapsdt_base, base_name) {
            headers.push((
                name,
                elf::SHT_PROGBITS,
                elf::SHF_ALLOC.0,
                addr,
                data_off,
                1,
                1,
            ));
        }
        headers.push((
            note_name,
            elf::SHT_NOTE,
            0,
            0,
            notes_off,
            notes.len() as u64,
            4,
        ));
        for (name, ty, flags, addr, off, size, align) in headers {
            w.write_section_header(&SectionHeader {
                sh_name: w.section_name_offset(Some(name)),
                sh_type: ty,
                sh_flags: elf::SectionFlags(flags),
                sh_addr: addr,
                sh_offset: off,
                sh_size: size,
                sh_link: 0,
                sh_info: 0,
                sh_addralign: align,
                sh_entsize: 0,
            });
        }
        w.write_symtab_section_header(num_local);
        w.write_strtab_section_header();
        w.write_shstrtab_section_header();
        buf
    }
}
