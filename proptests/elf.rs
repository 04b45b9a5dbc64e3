//! The note reader on arbitrary and corrupted ELF files: never a panic, and every site it
//! returns is consistent with the file's segments.

use proptest::prelude::*;
use usdtkit::synth::{ElfSpec, NoteSpec};
use usdtkit::UsdtFile;

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
}
