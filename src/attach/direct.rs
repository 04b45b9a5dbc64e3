//! Planning an attach straight from a file's notes, for callers that have not read the file
//! themselves (attach by path, the recorder).
//!
//! The full parse keeps a `Site` per note and an `Arg` per argument, and planning reads them
//! back: at 50,000 sites, tens of megabytes written once and read once, most of a first
//! attach's page faults. Here each note goes straight to a 32-byte record and its probe, each
//! distinct argument string is decoded and encoded once (sites sharing a string share its
//! encodings), and the plans are made from those records in attach order.
//!
//! It takes only what it reads exactly as the full parse and plan would. At a malformed
//! note, a site that cannot be placed, an argument that does not decode or that no spec
//! expresses, a symbol operand or one relative to the instruction pointer (its encoding
//! depends on the site), or more arguments than a spec holds, it gives `None`, and the
//! attach takes the full parse and plan, which report them as always. Tests compare the two
//! paths.

use std::sync::Arc;

use super::plan::{self, ArgShape};
use super::spec::{self, ArgEncoding};
use super::table::{Args, Planned, Setting, Table};
use super::ProbeSelector;
use crate::arch::Arch;
use crate::arg::{decode_args_into, Arg};
use crate::elf::ElfFile;
use crate::note;
use crate::parallel;
use crate::probe::tables::{Grouping, Lists};
use crate::probe::{place_site, PARALLEL_BYTES};
use crate::sys::{self, Filler};

/// Notes read before deciding whether their argument strings repeat enough to look each up.
const INTERN_TRIAL: u32 = 4096;

/// Attaches of this many sites make their plans on two threads.
const PARALLEL_PLANS: usize = 4096;

/// One site, as the plans need it.
struct Spot {
    pc: u64,
    offset: u64,
    ref_ctr_offset: u64,
    /// Its argument string's encodings in [`Half::encodings`].
    args: u32,
    nargs: u32,
}

/// What reading a run of notes gives.
struct Half<'data> {
    spots: Vec<Spot>,
    encodings: Vec<ArgEncoding>,
    shapes: Vec<Option<ArgShape>>,
    lists: Lists<'data>,
    grouping: Grouping<'data>,
}

/// The plans of every site of `elf` (of architecture `arch`) that `selectors` take, in
/// attach order, the same as [`super::table::build`] gives for the parsed file; `None` when
/// the file has anything this leaves to the full parse (see the module documentation).
pub(super) fn build(
    elf: &ElfFile<'_>,
    arch: Arch,
    selectors: &[ProbeSelector],
    how: &Setting<'_>,
) -> Option<Table> {
    let sec = elf.stapsdt_notes?;
    let near = (sec.len() >= PARALLEL_BYTES && parallel::two_cores()).then_some(sec.len() / 2);
    build_near(elf, arch, selectors, how, near)
}

/// [`build`], with the notes read on two threads from the first note at or after `near`.
fn build_near(
    elf: &ElfFile<'_>,
    arch: Arch,
    selectors: &[ProbeSelector],
    how: &Setting<'_>,
    near: Option<usize>,
) -> Option<Table> {
    let sec = elf.stapsdt_notes?;
    // Any split this path takes gives what one walk gives, or an error (it then gives up).
    let split = near.and_then(|at| note::boundary_near(sec, elf.byte_order, at));
    let (first, second) = match split {
        None => (read(elf, arch, how, sec, (0, 0), sec.len()), None),
        Some(at) => {
            let (first, second) = parallel::join(
                || read(elf, arch, how, &sec[..at.0], (0, 0), at.0),
                || read(elf, arch, how, sec, at, sec.len() - at.0),
            );
            (first, Some(second?))
        }
    };
    let mut first = first?;
    let in_first = first.spots.len();
    // The second half's encodings stay where they are: its ranges start after the first's.
    let shift = first.encodings.len() as u32;
    let (rest, second_args) = match second {
        Some(s) => {
            first.grouping.append(s.grouping);
            (s.spots, (s.encodings, s.shapes))
        }
        None => Default::default(),
    };
    let (probes, by_probe) = first.grouping.finish();
    // The probes taken, each with its selector's cookie and its first plan.
    let mut names: Vec<(Arc<str>, Arc<str>)> = Vec::new();
    let mut taken: Vec<(usize, u64, u32)> = Vec::new();
    let mut total = 0;
    for (k, p) in probes.iter().enumerate() {
        if let Some(sel) = selectors.iter().find(|s| s.matches(p.provider, p.name)) {
            names.push((p.provider.into(), p.name.into()));
            taken.push((k, sel.cookie, total));
            total += p.len;
        }
    }
    // Plans `range` in attach order: the sites of the probes taken, probe after probe.
    let make = |range: std::ops::Range<usize>, out: &mut Filler<'_, Planned>| {
        for (name, &(k, cookie, at)) in taken.iter().enumerate() {
            let p = &probes[k];
            let sites = &by_probe[p.start as usize..][..p.len as usize];
            let (from, to) = (at as usize, (at + p.len) as usize);
            let (lo, hi) = (range.start.max(from), range.end.min(to));
            if lo >= hi {
                continue;
            }
            for (n, &site) in sites[lo - from..hi - from].iter().enumerate() {
                let (spot, shift) = match site as usize {
                    i if i < in_first => (&first.spots[i], 0),
                    i => (&rest[i - in_first], shift),
                };
                let args = spot.args + shift;
                out.push(Planned {
                    pc: spot.pc,
                    offset: spot.offset,
                    ref_ctr_offset: spot.ref_ctr_offset,
                    args: args..args + spot.nargs,
                    unreadable: 0..0,
                    probe: name as u32,
                    site,
                    cookie: how
                        .site_cookies
                        .map_or(cookie, |first| first + (lo + n) as u64),
                });
            }
        }
    };
    let total = total as usize;
    let plans = if total >= PARALLEL_PLANS && parallel::two_cores() {
        sys::vec_in_two(total, total / 2, make)
    } else {
        sys::vec_in_two(total, total, make)
    };
    Some(Table {
        plans,
        args: Args::two((first.encodings, first.shapes), second_args),
        unreadable: Vec::new(),
        names,
        warnings: Vec::new(),
    })
}

/// Read the notes of `sec` from `from` (a note's offset and index), with room in the tables
/// for `bytes` of notes, or `None` at the first thing the full parse must report.
fn read<'data>(
    elf: &ElfFile<'data>,
    arch: Arch,
    how: &Setting<'_>,
    sec: &'data [u8],
    from: (usize, usize),
    bytes: usize,
) -> Option<Half<'data>> {
    // A note takes 60 to 150 bytes. Every table has room for a site, a distinct string and
    // three arguments a note (bounded: the section's size is the file's word): growing one
    // would copy it, and reserved pages never written cost nothing.
    let estimate = (bytes / 64).min(1 << 20);
    let mut h = Half {
        spots: Vec::with_capacity(estimate),
        encodings: Vec::with_capacity(3 * estimate),
        shapes: Vec::with_capacity(3 * estimate),
        lists: Lists::with_capacity(estimate),
        grouping: Grouping::with_capacity(estimate.min(1024), estimate),
    };
    let mut decoded: Vec<Arg<'data>> = Vec::new();
    let mut refused = false;
    // Decode and encode one argument string, appending its encodings; their start and count.
    let mut encode = |text: &'data str, encodings: &mut Vec<ArgEncoding>, shapes: &mut Vec<_>| {
        let start = encodings.len() as u32;
        decoded.clear();
        decode_args_into(arch, text, &mut decoded);
        refused |= decoded.len() > spec::MAX_ARGS;
        for arg in &decoded {
            let spec = match &arg.decoded {
                Ok(spec) if plan::site_independent(spec) => spec,
                _ => {
                    refused = true;
                    break;
                }
            };
            // Site-independent: the attach address does not enter the encoding.
            match plan::encode_arg(arch, how.layout, spec, 0) {
                Ok(e) => {
                    encodings.push(e);
                    shapes.push(Some(ArgShape::from(spec)));
                }
                Err(_) => refused = true,
            }
        }
        (start, encodings.len() as u32 - start, refused)
    };
    // Strings are looked up to be decoded once (real files repeat a few); a run of notes
    // whose strings hardly repeat stops looking them up, and decodes each (the result is
    // the same: sharing saves work, nothing else).
    let (mut looked_up, mut found, mut intern) = (0u32, 0u32, true);
    for raw in note::walk_from(sec, elf.is_64, elf.byte_order, from) {
        let raw = raw.ok()?;
        let place = place_site(elf, &raw).ok()?;
        let (encodings, shapes) = (&mut h.encodings, &mut h.shapes);
        let (list, failed) = if intern {
            let known = h.lists.len();
            let mut failed = false;
            let part = h.lists.intern(raw.args, |text| {
                let (start, len, bad) = encode(text, encodings, shapes);
                failed = bad;
                (start, len)
            });
            let list = (part.start, part.len);
            looked_up += 1;
            found += u32::from(h.lists.len() == known);
            if looked_up == INTERN_TRIAL {
                intern = found * 8 >= looked_up;
            }
            (list, failed)
        } else {
            let (start, len, bad) = encode(raw.args, encodings, shapes);
            ((start, len), bad)
        };
        if failed {
            return None;
        }
        let (args, nargs) = list;
        h.grouping.add(raw.probe, raw.provider, raw.name);
        let delta = plan::attach_delta(arch, how.file, place.file_offset, how.nop5);
        h.spots.push(Spot {
            pc: place.pc,
            offset: place.file_offset + delta,
            ref_ctr_offset: place.semaphore_file_offset.unwrap_or(0),
            args,
            nargs,
        });
    }
    Some(h)
}

#[cfg(all(test, feature = "harness"))]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::attach::plan::NOP_NOP5;
    use crate::attach::spec::Layout;
    use crate::probe::UsdtFile;
    use crate::synth::{ElfSpec, NoteSpec, SymSpec};

    /// Every plan with its probe, encodings and shapes: what both paths must agree on (the
    /// ranges themselves differ: here sites share their string's encodings).
    fn outcome(t: &Table) -> Vec<String> {
        t.plans
            .iter()
            .map(|p| {
                let (provider, name) = &t.names[p.probe as usize];
                format!(
                    "{provider}:{name} {:#x} {:#x} {:#x} {} {} {:?} {:?} {:?}",
                    p.pc,
                    p.offset,
                    p.ref_ctr_offset,
                    p.site,
                    p.cookie,
                    t.args.encodings(&p.args),
                    t.args.shapes(&p.args),
                    &t.unreadable[p.unreadable.start as usize..p.unreadable.end as usize],
                )
            })
            .collect()
    }

    fn setting(file: &[u8], nop5: bool, site_cookies: Option<u64>) -> Setting<'_> {
        Setting {
            path: Path::new("synthetic"),
            file,
            layout: Layout::V2,
            nop5,
            site_cookies,
        }
    }

    /// Both paths on `data`: this one (split near `near`, if given) and the full parse.
    fn both(
        data: &[u8],
        selectors: &[ProbeSelector],
        how: &Setting<'_>,
        near: Option<usize>,
    ) -> (Option<Table>, Table) {
        let elf = ElfFile::parse(data).unwrap();
        let arch = Arch::from_elf(elf.machine, elf.is_64);
        let direct = build_near(&elf, arch, selectors, how, near);
        let usdt = UsdtFile::parse(data).unwrap();
        (
            direct,
            super::super::table::build(&usdt, selectors, how).unwrap(),
        )
    }

    fn spec(notes: Vec<NoteSpec>) -> ElfSpec {
        ElfSpec {
            notes,
            text_size: 0x2000,
            ..ElfSpec::default()
        }
    }

    #[test]
    fn plans_what_the_full_parse_plans_on_one_thread_and_two() {
        // Every kind of operand this path takes, strings repeated and not, probes met in
        // both halves, semaphores on some sites, `nop; nop5` at some.
        let args = [
            "-4@%edi 8@%rsi",
            "-8@-16(%rbp,%rcx,8)",
            "1@%ah -2@8(%rbx) 4f@%eax",
            "",
            "8@%rax 8@%rbx 8@%rcx 8@%rdx 8@%rsi 8@%rdi -4@$-7",
        ];
        let base = spec(Vec::new());
        let notes: Vec<NoteSpec> = (0..6000u64)
            .map(|i| {
                let name = format!("p{}", (i / 7) % 40);
                let text = match i % 6 {
                    5 => format!("-8@${i} 4@%esi"),
                    k => args[k as usize].to_string(),
                };
                let mut n = NoteSpec::new(base.text_vaddr + i % 0x1000, "t", &name, &text);
                if i % 3 == 0 {
                    n.semaphore = base.data_vaddr + 2 * (i % 0x80);
                }
                n
            })
            .collect();
        let mut data = spec(notes).build();
        // The text's file offset is 0x1000.
        for at in (0x1000..0x1800).step_by(0x40) {
            data[at..at + NOP_NOP5.len()].copy_from_slice(&NOP_NOP5);
        }
        let selectors = [
            (vec![ProbeSelector::new("*", "*", 3)], None, true),
            (vec![ProbeSelector::new("t", "p1*", 9)], Some(100), false),
            (
                vec![
                    ProbeSelector::new("t", "p2", 1),
                    ProbeSelector::new("*", "p2*", 2),
                ],
                None,
                true,
            ),
        ];
        for (sel, cookies, nop5) in selectors {
            let how = setting(&data, nop5, cookies);
            for near in [None, Some(data.len() / 3)] {
                let (direct, full) = both(&data, &sel, &how, near);
                let direct = direct.expect("every note is one this path takes");
                assert!(!full.plans.is_empty());
                assert_eq!(outcome(&direct), outcome(&full), "{sel:?} split {near:?}");
                assert_eq!(direct.names, full.names);
            }
        }
        // Each distinct string is encoded once.
        let how = setting(&data, true, None);
        let all = [ProbeSelector::new("*", "*", 0)];
        let (direct, full) = both(&data, &all, &how, None);
        let direct = direct.unwrap();
        assert!(direct.args.len() * 4 < full.args.len());
        let text_offset = 0x1000;
        let nop5 = |p: &Planned| p.offset == p.pc - base.text_vaddr + text_offset + 1;
        assert!(direct.plans.iter().any(nop5));
    }

    #[test]
    fn plans_alike_when_strings_hardly_repeat_and_are_no_longer_looked_up() {
        let text = ElfSpec::default().text_vaddr;
        // Past the trial, one string in ten repeats an earlier one.
        let notes: Vec<NoteSpec> = (0..3 * INTERN_TRIAL as u64)
            .map(|i| {
                let v = if i % 10 == 0 { i % 7 } else { i };
                let args = format!("-8@${v} -4@%edi 2@{}(%rbp)", v % 100);
                NoteSpec::new(text + i % 0x1000, "t", &format!("p{}", i % 13), &args)
            })
            .collect();
        let distinct = (notes.iter().map(|n| n.args.as_str()))
            .collect::<std::collections::HashSet<&str>>()
            .len();
        let data = spec(notes).build();
        let all = [ProbeSelector::new("*", "*", 5)];
        let how = setting(&data, false, Some(1));
        for near in [None, Some(data.len() / 2)] {
            let (direct, full) = both(&data, &all, &how, near);
            let direct = direct.expect("every note is one this path takes");
            assert_eq!(outcome(&direct), outcome(&full), "split {near:?}");
            // Past the trial, repeated strings were decoded again, not looked up.
            assert!(
                direct.args.len() > 3 * distinct + 1000,
                "{}",
                direct.args.len()
            );
        }
    }

    #[test]
    fn splits_where_a_walk_passes_or_where_the_first_half_ends_in_error() {
        let text = ElfSpec::default().text_vaddr;
        let notes: Vec<NoteSpec> = (0..2000u64)
            .map(|i| NoteSpec::new(text + i, "t", &format!("p{}", i % 9), "-4@%edi 8@%rsi"))
            .collect();
        let data = spec(notes.clone()).build();
        let elf = ElfFile::parse(&data).unwrap();
        let sec = elf.stapsdt_notes.unwrap();
        for target in (0..sec.len()).step_by(997) {
            let near = note::boundary_near(sec, elf.byte_order, target).map(|b| b.0);
            let walked = note::boundary_after(sec, elf.byte_order, target).map(|b| b.0);
            assert_eq!(near, walked, "target {target}");
        }
        // Note 40's address words read as a stapsdt header (namesz 8, descsz 40, type 3,
        // "stapsdt\0"): a split there ends the first half inside note 40.
        let mut tricked = notes;
        tricked[40].pc = 8 | (40 << 32);
        tricked[40].base = 3 | (u64::from(u32::from_le_bytes(*b"stap")) << 32);
        tricked[40].semaphore = u64::from(u32::from_le_bytes(*b"sdt\0"));
        let data = spec(tricked).build();
        let elf = ElfFile::parse(&data).unwrap();
        let sec = elf.stapsdt_notes.unwrap();
        let start = note::boundary_after(sec, elf.byte_order, 1).unwrap().0;
        let forty = start * 40; // every note has the size of the first
        let fake = forty + 20;
        assert_eq!(
            note::boundary_near(sec, elf.byte_order, forty + 1),
            Some((fake, 0))
        );
        assert!(note::walk(&sec[..fake], true, elf.byte_order).any(|n| n.is_err()));
    }

    #[test]
    fn leaves_to_the_full_parse_what_it_must_report_or_encode_per_site() {
        let cases = [
            ("8@counter(%rip)", "a symbol operand"),
            ("8@16(%rip)", "relative to the instruction pointer"),
            ("8@%xmm0", "no spec expresses"),
            ("4@bad@@", "does not decode"),
            (
                "8@$1 8@$2 8@$3 8@$4 8@$5 8@$6 8@$7 8@$8 8@$9 8@$10 8@$11 8@$12 8@$13",
                "13 args",
            ),
        ];
        for (bad, why) in cases {
            let notes = (0..50u64)
                .map(|i| {
                    let args = if i == 40 { bad } else { "-4@%edi" };
                    NoteSpec::new(0x40_1000 + i, "t", "p", args)
                })
                .collect();
            let mut s = spec(notes);
            s.symbols = vec![SymSpec {
                name: "counter".into(),
                value: s.data_vaddr,
                local: false,
            }];
            let data = s.build();
            let how = setting(&data, false, None);
            let elf = ElfFile::parse(&data).unwrap();
            let all = [ProbeSelector::new("*", "*", 0)];
            assert!(build(&elf, Arch::X86_64, &all, &how).is_none(), "{why}");
        }
        // A malformed note, and a site outside the text.
        let mut s = spec(vec![NoteSpec::new(0x40_1000, "t", "p", "")]);
        s.raw_note_bytes = vec![0xff; 24];
        let data = s.build();
        let elf = ElfFile::parse(&data).unwrap();
        let all = [ProbeSelector::new("*", "*", 0)];
        assert!(build(&elf, Arch::X86_64, &all, &setting(&data, false, None)).is_none());
        let s = spec(vec![NoteSpec::new(0x10, "t", "p", "")]);
        let data = s.build();
        let elf = ElfFile::parse(&data).unwrap();
        assert!(build(&elf, Arch::X86_64, &all, &setting(&data, false, None)).is_none());
    }
}
