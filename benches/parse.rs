//! Parse-and-decode throughput: sites per second for real binaries (when installed) and
//! generated files up to 100,000 sites (also with every argument string distinct), against a
//! baseline that only walks the notes with `object`. Both sides are checked to see the same
//! number of notes before timing.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use object::read::elf::{FileHeader, SectionHeader};
use object::{elf, Endianness};
use usdtkit::synth::{ElfSpec, NoteSpec, SymSpec};
use usdtkit::UsdtFile;

/// Baseline: find `.note.stapsdt` with `object` and split every note into its fields, with
/// no address resolution and no argument decoding.
fn object_walk(data: &[u8]) -> usize {
    let header = elf::FileHeader64::<Endianness>::parse(data).unwrap();
    let endian = header.endian().unwrap();
    let sections = header.sections(endian, data).unwrap();
    let Some((_, sh)) = sections.section_by_name(endian, b".note.stapsdt") else {
        return 0;
    };
    let mut notes = sh.notes(endian, data).unwrap().unwrap();
    let mut n = 0;
    while let Some(note) = notes.next().unwrap() {
        if note.name() != b"stapsdt" {
            continue;
        }
        let desc = note.desc();
        let mut strings = desc[24..].split(|&b| b == 0);
        let provider = strings.next().unwrap();
        let name = strings.next().unwrap();
        let args = strings.next().unwrap();
        black_box((&desc[..24], provider, name, args));
        n += 1;
    }
    n
}

fn usdtkit_parse(data: &[u8]) -> usize {
    let u = UsdtFile::parse(data).unwrap();
    assert!(u.errors().is_empty());
    u.sites().len()
}

/// A generated executable with `sites` sites spread over `sites / 4` probes, with the
/// argument mix of a real -O2 build (registers, stack slots, SIB, symbols, constants).
/// With `distinct`, every site's argument string differs (a stack offset per site), so
/// none is decoded once for several sites: the worst case for usdtkit's per-file cache.
pub fn generated(sites: usize, distinct: bool) -> Vec<u8> {
    const TEXT: u64 = 0x40_1000;
    const DATA: u64 = 0x60_0000 + 0x20_0000;
    let arg_mix = [
        "-4@%eax 8@%rbx",
        "8@(%rsp) 8@8(%rsp) -4@24(%rsp)",
        "-4@-20(%rbp,%rax,4) 8@counter(%rip)",
        "-4@$5 8@%r12 -2@%r9w 1@%ah",
        "8@24+table(%rip) 4@table-2(%rip) 8@%xmm0",
    ];
    let notes = (0..sites)
        .map(|i| {
            let mix = arg_mix[i % arg_mix.len()];
            let args = if distinct {
                format!("{mix} -4@{}(%rsp)", 8 * i)
            } else {
                mix.to_string()
            };
            let mut n = NoteSpec::new(TEXT + i as u64, "bench", &format!("probe_{}", i / 4), &args);
            n.semaphore = DATA + 2 * (i as u64 / 4);
            n
        })
        .collect();
    ElfSpec {
        text_vaddr: TEXT,
        text_size: (sites as u64 + 0xfff) & !0xfff,
        data_vaddr: DATA,
        data_size: 0x10_0000,
        notes,
        symbols: vec![
            SymSpec {
                name: "counter".into(),
                value: DATA + 0x8_0000,
                local: false,
            },
            SymSpec {
                name: "table".into(),
                value: DATA + 0x9_0000,
                local: true,
            },
        ],
        ..ElfSpec::default()
    }
    .build()
}

fn inputs() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for (name, path) in [
        (
            "libjvm.so",
            "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so",
        ),
        ("postgres", "/usr/lib/postgresql/15/bin/postgres"),
        ("python3.11", "/usr/bin/python3.11"),
    ] {
        match std::fs::read(path) {
            Ok(bytes) => v.push((name.to_string(), bytes)),
            Err(e) => eprintln!("skipping {name}: {path}: {e}"),
        }
    }
    for n in [1_000, 10_000, 100_000] {
        v.push((format!("generated-{n}"), generated(n, false)));
    }
    for n in [10_000, 100_000] {
        v.push((format!("generated-distinct-{n}"), generated(n, true)));
    }
    v
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, data) in inputs() {
        let sites = object_walk(&data);
        assert_eq!(
            usdtkit_parse(&data),
            sites,
            "{name}: usdtkit and object see different notes"
        );
        g.throughput(Throughput::Elements(sites as u64));
        g.bench_with_input(BenchmarkId::new("object-walk", &name), &data, |b, d| {
            b.iter(|| object_walk(black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("usdtkit", &name), &data, |b, d| {
            b.iter(|| usdtkit_parse(black_box(d)))
        });
    }
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
