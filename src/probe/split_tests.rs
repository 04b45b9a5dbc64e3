//! A section read in two halves on two threads gives what one walk gives: the same sites
//! (arguments, symbols resolved), the same malformed notes and the same probes, in order,
//! wherever the split falls.

use super::{Split, UsdtFile};
use crate::arg::Location;
use crate::note;
use crate::synth::{ElfSpec, NoteSpec, SymSpec};

/// A file whose notes mix what each table of the parse keeps: probes met in both halves, in
/// one only, and adjacent or not; argument strings repeated across halves and unique ones;
/// symbol operands resolved and unresolved; malformed notes and trailing garbage.
fn mixed_file() -> Vec<u8> {
    let arg_strings = [
        "-4@%edi 8@%rsi",
        "8@counter(%rip)",
        "4@nosuch(%rip)",
        "",
        "2@%ax -8@-16(%rbp,%rcx,8)",
    ];
    let mut notes = Vec::new();
    for i in 0..3000u64 {
        let args = match i % 7 {
            5 => format!("-4@${i} 8@%rdx"),
            k => arg_strings[k as usize % arg_strings.len()].to_string(),
        };
        let name = match i {
            0..=1499 if i % 11 == 0 => format!("early{}", i % 5),
            1500.. if i % 13 == 0 => format!("late{}", i % 4),
            _ => format!("n{}", (i / 3) % 37),
        };
        let mut n = NoteSpec::new(0x40_1000 + (i * 4) % 0x1000, "prov", &name, &args);
        if i % 5 == 0 {
            n.semaphore = 0x60_2000 + 2 * (i % 0x80);
        }
        match i % 97 {
            3 => n.pc = 0x10, // not in any segment
            7 => n.provider.clear(),
            _ => {}
        }
        notes.push(n);
    }
    ElfSpec {
        notes,
        raw_note_bytes: vec![1, 2, 3, 4, 5, 6],
        symbols: vec![SymSpec {
            name: "counter".into(),
            value: 0x60_2010,
            local: false,
        }],
        ..ElfSpec::default()
    }
    .build()
}

/// Everything a parse gives, in comparable form.
fn outcome(u: &UsdtFile<'_>) -> (Vec<String>, Vec<String>, Vec<String>) {
    // Sites compare their arguments by value (`ArgList`'s `Debug` shows its whole table).
    let sites = u
        .sites()
        .iter()
        .map(|s| {
            let mut bare = s.clone();
            bare.args = Default::default();
            format!("{bare:?} {:?}", &s.args[..])
        })
        .collect();
    let errors = u.errors().iter().map(|e| format!("{e:?}")).collect();
    let probes = u
        .probes()
        .map(|p| {
            let idx: Vec<usize> = p.sites.iter().map(|s| s.note_index).collect();
            format!("{}:{} {idx:?}", p.provider, p.name)
        })
        .collect();
    (sites, errors, probes)
}

#[test]
fn any_split_gives_what_one_walk_gives() {
    let data = mixed_file();
    let one = UsdtFile::parse_split(&data, Split::Never).unwrap();
    let whole = outcome(&one);
    let sec = one.elf().stapsdt_notes.unwrap();
    // The file exercises what the halves must join: resolved symbols and errors on both
    // sides of the middle.
    let mid = note::boundary_after(sec, one.elf().byte_order, sec.len() / 2)
        .expect("a note boundary past the middle")
        .1;
    let resolved = |s: &&crate::probe::Site<'_>| {
        s.args.iter().any(|a| {
            matches!(&a.decoded, Ok(spec) if matches!(&spec.location,
                Location::Symbol(sym) if sym.address.is_some()))
        })
    };
    assert!(one
        .sites()
        .iter()
        .filter(|s| s.note_index < mid)
        .any(|s| resolved(&s)));
    assert!(one
        .sites()
        .iter()
        .filter(|s| s.note_index >= mid)
        .any(|s| resolved(&s)));
    assert!(one.errors().iter().any(|e| e.index < mid));
    assert!(one.errors().iter().filter(|e| e.index >= mid).count() >= 2);
    let mut splits = 0;
    for k in 0..=16 {
        let at = sec.len() * k / 16 + k % 3;
        splits += usize::from(note::boundary_after(sec, one.elf().byte_order, at).is_some());
        let two = UsdtFile::parse_split(&data, Split::Near(at)).unwrap();
        assert_eq!(
            outcome(&two),
            whole,
            "split near byte {at} of {}",
            sec.len()
        );
    }
    assert!(splits >= 14, "{splits} of 17 targets split the section");
    // The automatic choice reads this small section in one walk, and gives the same.
    assert_eq!(outcome(&UsdtFile::parse(&data).unwrap()), whole);
}

#[test]
fn a_malformed_header_before_the_middle_keeps_one_walk() {
    // A note whose descriptor size runs past the section: the walk resynchronises, a
    // header-only skip cannot, so the section is not split.
    let spec = ElfSpec {
        notes: (0..200)
            .map(|i| NoteSpec::new(0x40_1000 + i, "p", "n", "-4@%edi"))
            .collect(),
        ..ElfSpec::default()
    };
    let mut data = spec.build();
    let one = UsdtFile::parse_split(&data, Split::Never).unwrap();
    let sec = one.elf().stapsdt_notes.unwrap();
    let start = sec.as_ptr() as usize - data.as_ptr() as usize;
    let descsz = start + 4 + 40 * (sec.len() / 200);
    drop(one);
    data[descsz..descsz + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let one = UsdtFile::parse_split(&data, Split::Never).unwrap();
    let sec = one.elf().stapsdt_notes.unwrap();
    assert!(note::boundary_after(sec, one.elf().byte_order, sec.len() / 2).is_none());
    let two = UsdtFile::parse_split(&data, Split::Near(sec.len() / 2)).unwrap();
    assert_eq!(outcome(&two), outcome(&one));
    assert_eq!(one.errors().len(), 1, "{:?}", one.errors());
}

#[test]
fn a_large_section_is_split_by_default_and_reads_the_same() {
    // Past the size at which `parse` splits (on a machine with two cores).
    let notes: Vec<NoteSpec> = (0..12_000u64)
        .map(|i| {
            let args = format!("-4@${i} 8@%rsi -8@-{}(%rbp) 1@%al 2@%cx", 8 * (i % 64));
            NoteSpec::new(
                0x40_1000 + i % 0x1000,
                "big",
                &format!("p{}", i % 50),
                &args,
            )
        })
        .collect();
    let data = ElfSpec {
        notes,
        ..ElfSpec::default()
    }
    .build();
    let one = UsdtFile::parse_split(&data, Split::Never).unwrap();
    assert!(one.elf().stapsdt_notes.unwrap().len() >= super::PARALLEL_BYTES);
    assert_eq!(one.sites().len(), 12_000);
    assert_eq!(outcome(&UsdtFile::parse(&data).unwrap()), outcome(&one));
}
