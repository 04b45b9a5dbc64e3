//! The note reader on synthetic files built with `object::write`: every class and byte order,
//! the prelink adjustment, address resolution, symbols, and a corpus of malformed notes.

use usdtkit::synth::{encode_note, ElfSpec, NoteSpec, SymSpec};
use usdtkit::{Arch, Location, NoteErrorKind, UsdtFile};

const TEXT: u64 = 0x40_1000;
const DATA: u64 = 0x60_2000;

fn spec(notes: Vec<NoteSpec>) -> ElfSpec {
    ElfSpec {
        notes,
        ..ElfSpec::default()
    }
}

fn with_sem(mut n: NoteSpec, sem: u64) -> NoteSpec {
    n.semaphore = sem;
    n
}

#[test]
fn every_class_and_byte_order() {
    // (is_64, big_endian, e_machine, arch, an argument string of that arch)
    let cases = [
        (true, false, 62, Arch::X86_64, "-4@%eax 8@-8(%rbp)"),
        (false, false, 3, Arch::I386, "-4@%eax 4@8(%ebp)"),
        (true, true, 22, Arch::S390x, "8@%r2 -4@160(%r15)"),
        (false, true, 20, Arch::Powerpc, "4@3 -4@-8(31) 4@i5"),
        (true, true, 21, Arch::Powerpc64, "8@%r3 8@9,10"),
        (true, false, 21, Arch::Powerpc64, "-4@0 8@112(1)"),
        (true, false, 183, Arch::Aarch64, "8@x0 -4@[sp,128] -4@5"),
        (false, false, 40, Arch::Arm, "4@r0 -4@[fp,#-8] 4@#5"),
        (true, false, 243, Arch::Riscv64, "-4@a0 -8@-88(s0)"),
        (false, false, 243, Arch::Riscv32, "-4@a0 4@5"),
        (true, false, 258, Arch::Loongarch64, "-4@$r4 8@$r3,8"),
        (false, true, 8, Arch::Mips, "-4@$2 4@16($fp)"),
        (true, false, 8, Arch::Mips, "8@$4 8@-8($sp)"),
    ];
    for (is_64, big, machine, arch, args) in cases {
        let file = ElfSpec {
            is_64,
            big_endian: big,
            machine,
            notes: vec![
                with_sem(NoteSpec::new(TEXT + 0x10, "prov", "first", args), DATA + 2),
                NoteSpec::new(TEXT + 0x20, "prov", "second", ""),
            ],
            ..ElfSpec::default()
        }
        .build();
        let u = UsdtFile::parse(&file).unwrap();
        assert_eq!(u.arch(), arch, "{arch}");
        assert_eq!(u.elf().is_64, is_64);
        assert!(u.errors().is_empty(), "{:?}", u.errors());
        let s = &u.sites()[0];
        assert_eq!((s.provider, s.name), ("prov", "first"));
        assert_eq!(s.pc, TEXT + 0x10);
        assert_eq!(
            s.file_offset, 0x1010,
            "vaddr != offset: offset = pc - p_vaddr + p_offset"
        );
        assert_eq!(s.semaphore, Some(DATA + 2));
        assert_eq!(s.semaphore_file_offset, Some(0x2002));
        assert_eq!(s.args_text, args);
        assert_eq!(s.args.len(), args.split(' ').count());
        assert!(
            s.args.iter().all(|a| a.decoded.is_ok()),
            "{arch}: {:?}",
            s.args
        );
        assert_eq!(u.sites()[1].semaphore, None);
        assert!(u.sites()[1].args.is_empty());
    }
}

#[test]
fn prelink_adjustment_follows_stapsdt_base() {
    let note = |base| NoteSpec {
        base,
        ..NoteSpec::new(TEXT + 0x100, "p", "n", "")
    };
    // Section at 0x602010, note built against 0x602000: shift the pc by +0x10.
    let f = ElfSpec {
        stapsdt_base: Some(DATA + 0x10),
        ..spec(vec![note(DATA)])
    }
    .build();
    assert_eq!(UsdtFile::parse(&f).unwrap().sites()[0].pc, TEXT + 0x110);
    // Note base 0 (lld, mold): no adjustment even with the section.
    let f = ElfSpec {
        stapsdt_base: Some(DATA + 0x10),
        ..spec(vec![note(0)])
    }
    .build();
    assert_eq!(UsdtFile::parse(&f).unwrap().sites()[0].pc, TEXT + 0x100);
    // No section (folly): no adjustment whatever the note says.
    let f = spec(vec![note(DATA + 0x50)]).build();
    assert_eq!(UsdtFile::parse(&f).unwrap().sites()[0].pc, TEXT + 0x100);
    // Section at address 0: no adjustment.
    let f = ElfSpec {
        stapsdt_base: Some(0),
        ..spec(vec![note(DATA)])
    }
    .build();
    assert_eq!(UsdtFile::parse(&f).unwrap().sites()[0].pc, TEXT + 0x100);
}

#[test]
fn sites_group_into_probes_keeping_their_own_args_and_semaphores() {
    let f = spec(vec![
        with_sem(NoteSpec::new(TEXT + 1, "rust", "hit-me", "8@%rdi"), DATA),
        NoteSpec::new(TEXT + 2, "other", "x", ""),
        with_sem(
            NoteSpec::new(TEXT + 3, "rust", "hit-me", "8@%rsi -4@%edx"),
            DATA + 2,
        ),
        NoteSpec::new(TEXT + 4, "p", "dtrace__style", "1@%al"),
    ])
    .build();
    let u = UsdtFile::parse(&f).unwrap();
    let probes: Vec<_> = u.probes().collect();
    assert_eq!(probes.len(), 3);
    let p = u.probe("rust", "hit-me").unwrap();
    assert_eq!(p.sites.len(), 2);
    assert_eq!(p.sites[0].args.len(), 1);
    assert_eq!(p.sites[1].args.len(), 2);
    assert_eq!(p.sites[0].semaphore, Some(DATA));
    assert_eq!(p.sites[1].semaphore, Some(DATA + 2));
    assert_eq!(probes[2].name, "dtrace__style");
}

#[test]
fn trailing_bytes_after_args_are_tolerated() {
    let mut n = NoteSpec::new(TEXT + 8, "p", "nop5", "-4@%eax");
    n.trailing = vec![0];
    let f = spec(vec![n]).build();
    let u = UsdtFile::parse(&f).unwrap();
    assert!(u.errors().is_empty());
    assert_eq!(u.sites()[0].trailing_bytes, 1);
    assert_eq!(u.sites()[0].args_text, "-4@%eax");
}

#[test]
fn bad_addresses_fail_only_their_note() {
    let f = spec(vec![
        NoteSpec::new(0x10, "p", "unmapped", ""),
        NoteSpec::new(DATA + 8, "p", "in_data", ""),
        with_sem(NoteSpec::new(TEXT, "p", "sem_in_text", ""), TEXT + 0x10),
        with_sem(NoteSpec::new(TEXT, "p", "sem_unmapped", ""), 0x99),
        NoteSpec::new(TEXT + 0x40, "p", "good", "8@%rax"),
    ])
    .build();
    let u = UsdtFile::parse(&f).unwrap();
    assert_eq!(u.sites().len(), 1);
    assert_eq!(u.sites()[0].name, "good");
    let kinds: Vec<_> = u.errors().iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            NoteErrorKind::SiteNotMapped(0x10),
            NoteErrorKind::SiteNotExecutable(DATA + 8),
            NoteErrorKind::SemaphoreExecutable(TEXT + 0x10),
            NoteErrorKind::SemaphoreNotMapped(0x99),
        ]
    );
    let msg = u.errors()[2].to_string();
    assert!(
        msg.contains("note #2") && msg.contains("p:sem_in_text"),
        "{msg}"
    );
    assert!(msg.contains("site 0x401000"), "{msg}");
}

#[test]
fn symbols_resolve_from_symtab() {
    let f = ElfSpec {
        symbols: vec![
            SymSpec {
                name: "counter".into(),
                value: DATA + 0x10,
                local: false,
            },
            SymSpec {
                name: "seq_iter.6".into(),
                value: DATA + 0x20,
                local: true,
            },
            SymSpec {
                name: "dup".into(),
                value: DATA + 0x30,
                local: true,
            },
            SymSpec {
                name: "dup".into(),
                value: DATA + 0x38,
                local: true,
            },
        ],
        ..spec(vec![NoteSpec::new(
            TEXT,
            "p",
            "n",
            "-4@counter+8(%rip) 8@seq_iter.6(%rip) 4@missing(%rip) 4@dup(%rip) 8@%rax",
        )])
    }
    .build();
    let u = UsdtFile::parse(&f).unwrap();
    let args = &u.sites()[0].args;
    let addr = |i: usize| match &args[i].decoded.as_ref().unwrap().location {
        Location::Symbol(s) => s.address,
        other => panic!("{other:?}"),
    };
    assert_eq!(addr(0), Some(DATA + 0x18));
    assert_eq!(addr(1), Some(DATA + 0x20));
    let e = args[2].decoded.as_ref().unwrap_err();
    assert_eq!((e.index, e.text.as_str()), (2, "4@missing(%rip)"));
    assert!(e.to_string().contains("`missing` is not defined"), "{e}");
    let e = args[3].decoded.as_ref().unwrap_err();
    assert!(e.to_string().contains("ambiguous"), "{e}");
    assert!(args[4].decoded.is_ok());
}

#[test]
fn unreadable_symbol_tables_are_said_not_taken_for_undefined() {
    let mut f = ElfSpec {
        symbols: vec![SymSpec {
            name: "counter".into(),
            value: DATA + 0x10,
            local: false,
        }],
        ..spec(vec![NoteSpec::new(
            TEXT,
            "p",
            "n",
            "4@counter(%rip) 8@%rax",
        )])
    }
    .build();
    // .symtab's sh_size made to run past the end of the file.
    let shoff = u64::from_le_bytes(f[0x28..0x30].try_into().unwrap()) as usize;
    let shentsize = u16::from_le_bytes(f[0x3a..0x3c].try_into().unwrap()) as usize;
    let shnum = u16::from_le_bytes(f[0x3c..0x3e].try_into().unwrap()) as usize;
    let symtab = (0..shnum)
        .map(|i| shoff + i * shentsize)
        .find(|&h| u32::from_le_bytes(f[h + 4..h + 8].try_into().unwrap()) == 2)
        .expect("a SHT_SYMTAB section");
    f[symtab + 0x20..symtab + 0x28].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let u = UsdtFile::parse(&f).unwrap();
    let site = &u.sites()[0];
    let e = site.args[0].decoded.as_ref().unwrap_err();
    assert!(
        matches!(e.kind, usdtkit::ArgErrorKind::SymbolTable { .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("symbol tables cannot be read"),
        "{e}"
    );
    assert!(site.args[1].decoded.is_ok());
    // With its site: probe, site, note and argument named; the file once given.
    let e = site.arg_spec(0).unwrap_err().with_path("/some/file");
    assert_eq!(
        e.to_string(),
        format!(
            "/some/file: note #0, probe p:n, site {TEXT:#x}, argument #0 `4@counter(%rip)`: {}",
            site.args[0].decoded.as_ref().unwrap_err().kind
        )
    );
    assert!(site.arg_spec(1).is_ok());
    assert!(site.arg_spec(2).is_err());
}

fn u32le(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// A malformed-note corpus: each entry is raw note bytes placed between two good notes.
fn malformed_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let note_with_desc = |desc: &[u8]| {
        let mut v = Vec::new();
        v.extend(u32le(8));
        v.extend(u32le(desc.len() as u32));
        v.extend(u32le(3));
        v.extend(b"stapsdt\0");
        v.extend(desc);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    };
    let words = |pc: u64| {
        let mut d = Vec::new();
        d.extend(pc.to_le_bytes());
        d.extend(0u64.to_le_bytes());
        d.extend(0u64.to_le_bytes());
        d
    };
    let with = |tail: &[u8]| {
        let mut d = words(TEXT + 0x30);
        d.extend(tail);
        note_with_desc(&d)
    };
    vec![
        (
            "descriptor shorter than three words",
            note_with_desc(&[1, 2, 3, 4, 5]),
        ),
        ("no NUL after provider", with(b"prov")),
        ("no NUL after name", with(b"prov\0name")),
        ("no NUL after args", with(b"prov\0name\08@%rax")),
        ("provider not UTF-8", with(b"\xff\xfe\0name\0\0")),
        ("name not UTF-8", with(b"prov\0na\xc3\0\0")),
        ("args not UTF-8", with(b"prov\0name\08@%r\xe2\x82\0")),
        ("empty provider", with(b"\0name\0\0")),
        ("more than 64 arguments", {
            let mut tail = b"prov\0name\0".to_vec();
            tail.extend(b"-4@$1 ".repeat(65));
            tail.push(0);
            with(&tail)
        }),
        ("empty name", with(b"prov\0\0\0")),
        ("descsz past the end", {
            let mut v = with(b"prov\0name\0\0");
            v[4..8].copy_from_slice(&u32le(0x7fff_fff0));
            v
        }),
        ("namesz past the end", {
            let mut v = with(b"prov\0name\0\0");
            v[0..4].copy_from_slice(&u32le(0xffff_fff0));
            v
        }),
    ]
}

#[test]
fn one_malformed_note_does_not_poison_the_others() {
    for (what, bad) in malformed_corpus() {
        for is_last in [false, true] {
            let good =
                |pc, name: &str| encode_note(&NoteSpec::new(pc, "p", name, "8@%rax"), true, false);
            let mut raw = good(TEXT, "before");
            raw.extend(&bad);
            if !is_last {
                raw.extend(good(TEXT + 0x40, "after"));
            }
            let f = ElfSpec {
                raw_note_bytes: raw,
                ..ElfSpec::default()
            }
            .build();
            let u = UsdtFile::parse(&f).unwrap_or_else(|e| panic!("{what}: {e}"));
            let names: Vec<_> = u.sites().iter().map(|s| s.name).collect();
            let want: &[&str] = if is_last {
                &["before"]
            } else {
                &["before", "after"]
            };
            assert_eq!(names, want, "{what}");
            assert_eq!(u.errors().len(), 1, "{what}: {:?}", u.errors());
            assert_eq!(u.errors()[0].index, 1, "{what}");
            let msg = u.errors()[0].to_string();
            assert!(!msg.is_empty());
            if let Some(field) = what.strip_suffix(" not UTF-8") {
                let field = field
                    .replace("name", "probe name")
                    .replace("args", "argument string");
                assert!(msg.contains(&field), "{what}: {msg}");
            }
        }
    }
}

#[test]
fn foreign_notes_and_stray_bytes() {
    let mut raw = Vec::new();
    // A GNU note in the section: skipped silently.
    raw.extend(u32le(4));
    raw.extend(u32le(4));
    raw.extend(u32le(1));
    raw.extend(b"GNU\0");
    raw.extend(u32le(0));
    raw.extend(encode_note(&NoteSpec::new(TEXT, "p", "n", ""), true, false));
    raw.extend([1, 2, 3]);
    let f = ElfSpec {
        raw_note_bytes: raw,
        ..ElfSpec::default()
    }
    .build();
    let u = UsdtFile::parse(&f).unwrap();
    assert_eq!(u.sites().len(), 1);
    assert_eq!(u.errors().len(), 1);
    assert!(
        u.errors()[0].to_string().contains("stray bytes"),
        "{}",
        u.errors()[0]
    );
}

#[test]
fn unreadable_files_are_file_errors() {
    for bytes in [
        &b""[..],
        b"\x7fELF",
        b"not an elf at all",
        &[0x7f, b'E', b'L', b'F', 2, 1, 1, 0],
    ] {
        let e = UsdtFile::parse(bytes).unwrap_err();
        assert!(e.to_string().contains("not a readable ELF file"), "{e}");
    }
    let e = usdtkit::MappedFile::open("/nonexistent/usdtkit-test").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/usdtkit-test"), "{e}");
}

#[test]
fn files_without_notes_have_no_probes() {
    let f = ElfSpec::default().build();
    let u = UsdtFile::parse(&f).unwrap();
    assert_eq!(u.sites().len(), 0);
    assert_eq!(u.probes().count(), 0);
}

#[test]
fn non_ascii_text_is_read_and_grouped_like_ascii() {
    // ASCII notes take the one-pass scan, the others the checked UTF-8 path: both must give
    // the same strings, and sites of one probe must group together whichever path read them.
    let notes = vec![
        NoteSpec::new(TEXT, "prov", "naïve", "-4@%eax"),
        NoteSpec::new(TEXT + 0x10, "prov", "plain", "8@%rbx"),
        NoteSpec::new(TEXT + 0x20, "prov", "plain", "8@%rbx 1@$0 # é"),
        NoteSpec::new(TEXT + 0x30, "prövider", "plain", "8@%rbx"),
        NoteSpec::new(TEXT + 0x40, "prov", "naïve", "-4@%eax"),
    ];
    let f = ElfSpec {
        notes: notes.clone(),
        ..ElfSpec::default()
    }
    .build();
    let u = UsdtFile::parse(&f).unwrap();
    assert!(u.errors().is_empty(), "{:?}", u.errors());
    let got: Vec<_> = u
        .sites()
        .iter()
        .map(|s| (s.provider, s.name, s.args_text))
        .collect();
    let want: Vec<_> = notes
        .iter()
        .map(|n| (n.provider.as_str(), n.name.as_str(), n.args.as_str()))
        .collect();
    assert_eq!(got, want);
    let probes: Vec<_> = u
        .probes()
        .map(|p| {
            (
                p.provider,
                p.name,
                p.sites.iter().map(|s| s.pc).collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        probes,
        [
            ("prov", "naïve", vec![TEXT, TEXT + 0x40]),
            ("prov", "plain", vec![TEXT + 0x10, TEXT + 0x20]),
            ("prövider", "plain", vec![TEXT + 0x30]),
        ]
    );
}
