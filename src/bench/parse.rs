//! Parsing against a bare note walk, measured in pairs.
//!
//! The baseline finds `.note.stapsdt` with `object` and splits every note into its fields:
//! nothing validated, resolved, decoded or grouped. Each round times the walk and then
//! usdtkit's parse of the same bytes back to back and keeps their ratio; the median ratio over
//! the rounds is robust to a machine whose speed drifts between rounds (as shared VMs do),
//! which separate criterion runs are not. The criterion bench (`benches/parse.rs`) uses the
//! same baseline and inputs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use object::read::elf::{FileHeader, SectionHeader};
use object::{elf, Endianness, FileKind};
use serde::Serialize;

use super::Spread;
use crate::error::{Error, Result};
use crate::synth::{ElfSpec, NoteSpec, SymSpec};
use crate::UsdtFile;

/// The baseline: the USDT notes of `data` split into their fields with `object`, counted.
pub fn object_walk(data: &[u8]) -> Result<usize> {
    let walked = match FileKind::parse(data).map_err(Error::elf)? {
        FileKind::Elf32 => walk_as::<elf::FileHeader32<Endianness>, 12>(data),
        FileKind::Elf64 => walk_as::<elf::FileHeader64<Endianness>, 24>(data),
        other => return Err(Error::elf(format!("not an ELF file ({other:?})"))),
    };
    walked.ok_or_else(|| Error::elf("malformed ELF headers or notes"))
}

/// The walk itself, as lean as `object` allows: a malformed file is `None`; the notes are
/// counted up to the first that `object` cannot read, malformed USDT notes are not counted.
fn walk_as<Elf: FileHeader<Endian = Endianness>, const WORDS: usize>(data: &[u8]) -> Option<usize> {
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let sections = header.sections(endian, data).ok()?;
    let Some((_, sh)) = sections.section_by_name(endian, b".note.stapsdt") else {
        return Some(0);
    };
    let Some(mut notes) = sh.notes(endian, data).ok()? else {
        return Some(0);
    };
    let mut n = 0;
    while let Ok(Some(note)) = notes.next() {
        if note.name() != b"stapsdt" {
            continue;
        }
        let desc = note.desc();
        let Some(tail) = desc.get(WORDS..) else {
            continue;
        };
        let mut strings = tail.split(|&b| b == 0);
        let (Some(provider), Some(name), Some(args)) =
            (strings.next(), strings.next(), strings.next())
        else {
            continue;
        };
        black_box((&desc[..WORDS], provider, name, args));
        n += 1;
    }
    Some(n)
}

/// A generated x86-64 executable with `sites` sites spread over `sites / 4` probes, with the
/// argument mix of a real -O2 build (registers, stack slots, SIB, symbols, constants, a
/// vector register). With `distinct`, every site's argument string differs (a stack offset
/// per site), so none is decoded once for several sites: the worst case for the per-file
/// decoding of each distinct string once.
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

/// The real binaries measured when installed: (name, path).
pub const REAL_BINARIES: [(&str, &str); 3] = [
    (
        "libjvm.so",
        "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so",
    ),
    ("postgres", "/usr/lib/postgresql/15/bin/postgres"),
    ("python3.11", "/usr/bin/python3.11"),
];

/// The standard inputs: the real binaries that are installed, then generated files of 1,000,
/// 10,000 and 100,000 sites, then 10,000 and 100,000 with every argument string distinct.
/// Missing binaries are reported through `skipped`.
pub fn standard_inputs(skipped: impl FnMut(&str, &str, std::io::Error)) -> Vec<(String, Vec<u8>)> {
    standard_inputs_named(|_| true, skipped)
}

/// The standard inputs whose names `wanted` accepts (the others are not read or generated).
pub fn standard_inputs_named(
    wanted: impl Fn(&str) -> bool,
    mut skipped: impl FnMut(&str, &str, std::io::Error),
) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for (name, path) in REAL_BINARIES.into_iter().filter(|(name, _)| wanted(name)) {
        match std::fs::read(path) {
            Ok(bytes) => v.push((name.to_string(), bytes)),
            Err(e) => skipped(name, path, e),
        }
    }
    let generated_inputs = [1_000, 10_000, 100_000]
        .map(|n| (format!("generated-{n}"), n, false))
        .into_iter()
        .chain([10_000, 100_000].map(|n| (format!("generated-distinct-{n}"), n, true)));
    for (name, n, distinct) in generated_inputs {
        if wanted(&name) {
            v.push((name, generated(n, distinct)));
        }
    }
    v
}

/// One input's paired measurement.
#[derive(Debug, Clone, Serialize)]
pub struct ParseRatio {
    /// The input's name.
    pub input: String,
    /// USDT notes (sites) in it.
    pub sites: usize,
    /// Median time of one object walk, in microseconds.
    pub walk_us: f64,
    /// Median time of one usdtkit parse (including dropping the result), in microseconds.
    pub usdtkit_us: f64,
    /// Median over rounds of usdtkit's time divided by the walk's in the same round.
    pub ratio: f64,
    /// First and third quartiles of the per-round ratios.
    pub ratio_quartiles: (f64, f64),
    /// Rounds measured.
    pub rounds: usize,
}

/// Time `iters` calls of `f`, per call.
fn per_call(iters: u32, f: &mut dyn FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed() / iters
}

/// Measure `data` (named `input`) over `rounds` rounds of about 10 ms of each side. Fails
/// when the file cannot be read as ELF, or when the two sides count different notes (the
/// comparison would then be of different work).
pub fn compare(input: &str, data: &[u8], rounds: usize) -> Result<ParseRatio> {
    let sites = object_walk(data)?;
    let u = UsdtFile::parse(data)?;
    let parsed = u.sites().len() + u.errors().len();
    if parsed != sites {
        return Err(Error::elf(format!(
            "{input}: the walk finds {sites} notes, usdtkit {parsed}"
        )));
    }
    drop(u);
    let mut walk = || {
        black_box(object_walk(black_box(data)).ok());
    };
    let mut parse = || {
        black_box(UsdtFile::parse(black_box(data)).ok());
    };
    // Size each timing to about 10 ms of the slower side.
    let one = per_call(1, &mut parse).max(Duration::from_nanos(100));
    let iters = (Duration::from_millis(10).as_nanos() / one.as_nanos()).clamp(1, 100_000) as u32;
    let (mut w, mut p, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        let tw = per_call(iters, &mut walk).as_secs_f64();
        let tp = per_call(iters, &mut parse).as_secs_f64();
        w.push(tw * 1e6);
        p.push(tp * 1e6);
        r.push(tp / tw);
    }
    let ratio = Spread::of(r);
    Ok(ParseRatio {
        input: input.to_string(),
        sites,
        walk_us: Spread::of(w).median,
        usdtkit_us: Spread::of(p).median,
        ratio: ratio.median,
        ratio_quartiles: (ratio.q1, ratio.q3),
        rounds: rounds.max(1),
    })
}

/// The walk of `data`, `n` times (for profilers, which count what the timing cannot).
pub fn repeat_walk(data: &[u8], n: u32) -> Result<()> {
    for _ in 0..n {
        black_box(object_walk(black_box(data))?);
    }
    Ok(())
}

/// usdtkit's parse of `data` (dropping the result), `n` times.
pub fn repeat_parse(data: &[u8], n: u32) -> Result<()> {
    for _ in 0..n {
        black_box(UsdtFile::parse(black_box(data))?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_count_the_same_notes() {
        for (distinct, n) in [(false, 40), (true, 41)] {
            let data = generated(n, distinct);
            assert_eq!(object_walk(&data).unwrap(), n);
            let r = compare("g", &data, 3).unwrap();
            assert_eq!(r.sites, n);
            assert!(r.walk_us > 0.0 && r.usdtkit_us > 0.0 && r.ratio > 0.0);
            assert!(r.ratio_quartiles.0 <= r.ratio && r.ratio <= r.ratio_quartiles.1);
        }
        assert!(object_walk(b"not an ELF file").is_err());
        assert!(compare("bad", b"\x7fELF", 1).is_err());
    }
}
