//! The note reader on arbitrary and corrupted ELF files: never a panic, and every site it
//! returns is consistent with the file's segments. Well-formed files with many sites: sites
//! keep their own arguments, and probes group them as a plain scan of the notes does.

use proptest::prelude::*;
use usdtkit::synth::{ElfSpec, NoteSpec};
use usdtkit::{decode_args, Arch, UsdtFile};

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(u) = UsdtFile::parse(bytes) {
        for s in u.sites() {
            let seg = u.elf().segment_for(s.pc);
            prop_assert!(seg.is_some_and(|g| g.executable));
            prop_assert!(!s.provider.is_empty() && !s.name.is_empty());
        }
        for e in u.errors() {
            prop_assert!(!e.to_string().is_empty());
        }
        let _ = u.probes().count();
    }
    Ok(())
}

fn base_file(is_64: bool, big: bool) -> Vec<u8> {
    let mut n = NoteSpec::new(0x40_1010, "p", "n", "-4@%eax 8@sym(%rip)");
    n.semaphore = 0x60_2000;
    ElfSpec {
        is_64,
        big_endian: big,
        machine: if is_64 { 62 } else { 3 },
        notes: vec![n.clone(), NoteSpec::new(0x40_1020, "p", "m", "")],
        ..ElfSpec::default()
    }
    .build()
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes)?;
        // The same bytes behind a valid ELF magic and class get further into the reader.
        let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        elf.extend(&bytes);
        check(&elf)?;
    }

    #[test]
    fn corrupted_files_never_panic(
        is_64 in any::<bool>(),
        big in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut f = base_file(is_64, big);
        for (i, b) in edits {
            let i = i.index(f.len());
            f[i] = b;
        }
        if truncate {
            f.truncate(cut.index(f.len()));
        }
        check(&f)?;
    }

    #[test]
    fn arbitrary_note_sections_never_panic(raw in prop::collection::vec(any::<u8>(), 0..400), is_64 in any::<bool>()) {
        let f = ElfSpec { is_64, machine: if is_64 { 62 } else { 3 }, raw_note_bytes: raw, ..ElfSpec::default() }.build();
        check(&f)?;
    }

    /// Up to 20 probe names and 20 argument strings, each site picking one of each: files
    /// below and above the number of keys the parser scans before it hashes, with keys seen
    /// again before and after it starts hashing.
    #[test]
    fn sites_group_and_share_lists_like_a_plain_scan(
        picks in prop::collection::vec((0usize..20, 0usize..20), 0..80),
        probes in 1usize..20,
        lists in 1usize..20,
        is_64 in any::<bool>(),
        big in any::<bool>(),
    ) {
        let (machine, arch) = match (is_64, big) {
            (true, false) => (62, Arch::X86_64),
            (false, false) => (3, Arch::I386),
            (true, true) => (22, Arch::S390x),
            (false, true) => (8, Arch::Mips),
        };
        let text = |l: usize| match arch {
            Arch::X86_64 => format!("-4@%eax 8@-{l}(%rbp) -4@${l}"),
            Arch::I386 => format!("-4@%eax 4@-{l}(%ebp) -4@${l}"),
            Arch::S390x => format!("8@%r2 -4@{l}(%r15)"),
            _ => format!("-4@$2 4@{l}($sp)"),
        };
        let notes: Vec<(String, String, String)> = picks
            .iter()
            .map(|&(p, l)| {
                let p = p % probes;
                (format!("prov{}", p % 3), format!("probe_{p}"), text(l % lists))
            })
            .collect();
        let f = ElfSpec {
            is_64,
            big_endian: big,
            machine,
            notes: notes
                .iter()
                .enumerate()
                .map(|(i, (prov, name, args))| NoteSpec::new(0x40_1000 + i as u64, prov, name, args))
                .collect(),
            ..ElfSpec::default()
        }
        .build();
        let u = UsdtFile::parse(&f).unwrap();
        prop_assert!(u.errors().is_empty(), "{:?}", u.errors());
        prop_assert_eq!(u.sites().len(), notes.len());
        for (s, (prov, name, args)) in u.sites().iter().zip(&notes) {
            prop_assert_eq!((s.provider, s.name, s.args_text), (prov.as_str(), name.as_str(), args.as_str()));
            prop_assert_eq!(&s.args[..], &decode_args(arch, args)[..]);
        }
        // The probes by first appearance, each with its sites' addresses in note order.
        let mut want: Vec<((&str, &str), Vec<u64>)> = Vec::new();
        for (i, (prov, name, _)) in notes.iter().enumerate() {
            let key = (prov.as_str(), name.as_str());
            let pc = 0x40_1000 + i as u64;
            match want.iter_mut().find(|(k, _)| *k == key) {
                Some((_, pcs)) => pcs.push(pc),
                None => want.push((key, vec![pc])),
            }
        }
        let got: Vec<((&str, &str), Vec<u64>)> = u
            .probes()
            .map(|p| ((p.provider, p.name), p.sites.iter().map(|s| s.pc).collect()))
            .collect();
        prop_assert_eq!(got, want);
    }
}
