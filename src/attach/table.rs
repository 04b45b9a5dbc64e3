//! Every site an attach takes, planned: its offset, semaphore and argument encodings, in
//! flat tables (encodings and unreadable arguments back to back: one allocation for all
//! sites, not two per site; each probe's name allocated once, not once per site). A large
//! attach plans the two halves of its sites on two threads.

use std::path::Path;
use std::sync::Arc;

use super::plan::{self, ArgShape, Unencodable};
use super::spec::{self, ArgEncoding, Layout};
use super::{selected, AttachErrorKind, ProbeSelector};
use crate::error::{Context, Error, Result};
use crate::probe::UsdtFile;

/// Attaches of this many sites are planned on two threads (below, a thread costs more than
/// it saves).
const PARALLEL_SITES: usize = 4096;

/// One site planned for attaching, its encodings and unreadable arguments as ranges of the
/// tables shared by every site of the attach.
pub(super) struct Planned {
    pub pc: u64,
    pub offset: u64,
    pub ref_ctr_offset: u64,
    pub args: std::ops::Range<u32>,
    pub unreadable: std::ops::Range<u32>,
    /// Index of the site's probe in [`Table::names`].
    pub probe: u32,
    /// Index of the site in the file's sites.
    pub site: u32,
    pub cookie: u64,
}

/// The argument encodings of an attach and each one's shape (`None`: not decoded), in one
/// run or two (a file read in two halves keeps each half's: joining them would copy the
/// second). A range of them ([`Planned::args`]) lies in one run; the second run's ranges
/// start at `split`.
#[derive(Debug, Default)]
pub(super) struct Args {
    runs: [(Vec<ArgEncoding>, Vec<Option<ArgShape>>); 2],
    split: u32,
}

impl Args {
    /// One run.
    pub fn one(encodings: Vec<ArgEncoding>, shapes: Vec<Option<ArgShape>>) -> Self {
        Args::two((encodings, shapes), Default::default())
    }

    /// Two runs; the second's ranges start after the first's encodings.
    pub fn two(
        first: (Vec<ArgEncoding>, Vec<Option<ArgShape>>),
        second: (Vec<ArgEncoding>, Vec<Option<ArgShape>>),
    ) -> Self {
        let split = first.0.len() as u32;
        Args {
            runs: [first, second],
            split,
        }
    }

    /// Where the encodings of `r` are: their run and their range in it.
    fn find(&self, r: &std::ops::Range<u32>) -> (usize, std::ops::Range<usize>) {
        match r.start >= self.split {
            true => (
                1,
                (r.start - self.split) as usize..(r.end - self.split) as usize,
            ),
            false => (0, r.start as usize..r.end as usize),
        }
    }

    /// The encodings of a range.
    pub fn encodings(&self, r: &std::ops::Range<u32>) -> &[ArgEncoding] {
        let (run, at) = self.find(r);
        &self.runs[run].0[at]
    }

    /// The shapes of a range.
    #[cfg_attr(not(feature = "recorder"), allow(dead_code))]
    pub fn shapes(&self, r: &std::ops::Range<u32>) -> &[Option<ArgShape>] {
        let (run, at) = self.find(r);
        &self.runs[run].1[at]
    }

    /// How many encodings there are.
    #[cfg(all(test, feature = "harness"))]
    pub fn len(&self) -> usize {
        self.runs[0].0.len() + self.runs[1].0.len()
    }
}

/// The plan of an attach.
pub(super) struct Table {
    pub plans: Vec<Planned>,
    pub args: Args,
    pub unreadable: Vec<(usize, Unencodable)>,
    /// Each probe's provider and name.
    pub names: Vec<(Arc<str>, Arc<str>)>,
    /// Each argument that will read as an error, once, saying why.
    pub warnings: Vec<String>,
}

/// What planning needs to know besides the sites.
pub(super) struct Setting<'a> {
    pub path: &'a Path,
    pub file: &'a [u8],
    pub layout: Layout,
    pub nop5: bool,
    /// Cookies numbered from this, one per site in attach order (else the selector's).
    pub site_cookies: Option<u64>,
}

/// One site to plan.
struct Pick {
    probe: u32,
    site: u32,
    cookie: u64,
}

/// Plan every site of `usdt` that `selectors` take, in attach order. An empty table when
/// they take none.
pub(super) fn build(
    usdt: &UsdtFile<'_>,
    selectors: &[ProbeSelector],
    how: &Setting<'_>,
) -> Result<Table> {
    let mut names: Vec<(Arc<str>, Arc<str>)> = Vec::new();
    let mut picks: Vec<Pick> = Vec::with_capacity(usdt.sites().len());
    for (sel, provider, name, indexes) in selected(usdt, selectors) {
        names.push((provider.into(), name.into()));
        let probe = names.len() as u32 - 1;
        for &site in indexes {
            let cookie = match how.site_cookies {
                Some(first) => first + picks.len() as u64,
                None => sel.cookie,
            };
            picks.push(Pick {
                probe,
                site,
                cookie,
            });
        }
    }
    let parallel = picks.len() >= PARALLEL_SITES && crate::parallel::two_cores();
    let planned = plan_all(usdt, &picks, &names, how, parallel)?;
    let mut warnings = Vec::new();
    let mut given = foldhash::HashSet::default();
    for p in planned.plans.iter().filter(|p| !p.unreadable.is_empty()) {
        let site = &usdt.sites()[p.site as usize];
        let range = p.unreadable.start as usize..p.unreadable.end as usize;
        for (i, why) in &planned.unreadable[range] {
            let at = Context {
                file: Some(how.path.to_path_buf()),
                ..site.context().arg(*i, site.args[*i].text)
            };
            let w = format!("{at}: will read as an error: {why}");
            if given.insert(w.clone()) {
                warnings.push(w);
            }
        }
    }
    Ok(Table {
        plans: planned.plans,
        args: Args::one(planned.encodings, planned.shapes),
        unreadable: planned.unreadable,
        names,
        warnings,
    })
}

/// Plan `picks`, the two halves on two threads when `parallel`.
fn plan_all(
    usdt: &UsdtFile<'_>,
    picks: &[Pick],
    names: &[(Arc<str>, Arc<str>)],
    how: &Setting<'_>,
    parallel: bool,
) -> Result<Part> {
    if !parallel {
        return Part::plan(usdt, picks, names, how);
    }
    let (front, back) = picks.split_at(picks.len() / 2);
    let (first, second) = crate::parallel::join(
        || Part::plan(usdt, front, names, how),
        || Part::plan(usdt, back, names, how),
    );
    // The first error in attach order.
    let mut first = first?;
    first.append(second?);
    Ok(first)
}

/// The plans of a run of sites, with their own tables.
struct Part {
    plans: Vec<Planned>,
    encodings: Vec<ArgEncoding>,
    shapes: Vec<Option<ArgShape>>,
    unreadable: Vec<(usize, Unencodable)>,
}

impl Part {
    fn plan(
        usdt: &UsdtFile<'_>,
        picks: &[Pick],
        names: &[(Arc<str>, Arc<str>)],
        how: &Setting<'_>,
    ) -> Result<Part> {
        let mut part = Part {
            plans: Vec::with_capacity(picks.len()),
            encodings: Vec::with_capacity(3 * picks.len()),
            shapes: Vec::with_capacity(3 * picks.len()),
            unreadable: Vec::new(),
        };
        for pick in picks {
            let site = &usdt.sites()[pick.site as usize];
            let (args_at, unreadable_at) = (part.encodings.len(), part.unreadable.len());
            let (offset, ref_ctr_offset) = plan::plan_site_into(
                usdt.arch(),
                how.layout,
                site,
                how.file,
                how.nop5,
                &mut part.encodings,
                &mut part.unreadable,
            );
            let shapes = site.args.iter().map(|a| a.decoded.as_ref().ok());
            part.shapes.extend(shapes.map(|s| s.map(ArgShape::from)));
            let nargs = part.encodings.len() - args_at;
            if nargs > spec::MAX_ARGS {
                let (provider, name) = &names[pick.probe as usize];
                let at = Context::file(how.path).probe(format!("{provider}:{name}"));
                return Err(Error::attach(
                    at.site(site.pc, Some(site.note_index)),
                    AttachErrorKind::TooManyArgs {
                        count: nargs,
                        max: spec::MAX_ARGS,
                    },
                ));
            }
            part.plans.push(Planned {
                pc: site.pc,
                offset,
                ref_ctr_offset,
                args: args_at as u32..part.encodings.len() as u32,
                unreadable: unreadable_at as u32..part.unreadable.len() as u32,
                probe: pick.probe,
                site: pick.site,
                cookie: pick.cookie,
            });
        }
        Ok(part)
    }

    /// Add the plans of the sites after these.
    fn append(&mut self, other: Part) {
        let (args, unreadable) = (self.encodings.len() as u32, self.unreadable.len() as u32);
        self.plans.extend(other.plans.into_iter().map(|mut p| {
            p.args = p.args.start + args..p.args.end + args;
            p.unreadable = p.unreadable.start + unreadable..p.unreadable.end + unreadable;
            p
        }));
        self.encodings.extend(other.encodings);
        self.shapes.extend(other.shapes);
        self.unreadable.extend(other.unreadable);
    }
}

#[cfg(all(test, feature = "harness"))]
mod tests {
    use super::*;
    use crate::synth::{ElfSpec, NoteSpec};

    /// Everything a plan gives, comparable.
    fn outcome(p: &Part) -> Vec<String> {
        p.plans
            .iter()
            .map(|p| {
                format!(
                    "{:#x} {:#x} {:#x} {:?} {:?} {} {} {}",
                    p.pc,
                    p.offset,
                    p.ref_ctr_offset,
                    &p.args,
                    &p.unreadable,
                    p.probe,
                    p.site,
                    p.cookie
                )
            })
            .chain(std::iter::once(format!("{:?}", p.encodings)))
            .chain(std::iter::once(format!("{:?}", p.unreadable)))
            .collect()
    }

    fn file(notes: Vec<NoteSpec>) -> Vec<u8> {
        ElfSpec {
            notes,
            ..ElfSpec::default()
        }
        .build()
    }

    fn setting(site_cookies: Option<u64>) -> Setting<'static> {
        Setting {
            path: Path::new("synthetic"),
            file: &[],
            layout: Layout::V2,
            nop5: false,
            site_cookies,
        }
    }

    #[test]
    fn two_threads_plan_what_one_plans() {
        // Probes met in both halves, arguments of every kind (some no spec can express,
        // some that do not decode) and a semaphore on some sites.
        let args = [
            "-4@%edi 8@%rsi",
            "8@%xmm0",
            "-8@-16(%rbp,%rcx,8)",
            "4@$7 bad@@",
            "",
        ];
        let notes: Vec<NoteSpec> = (0..5000u64)
            .map(|i| {
                let name = format!("p{}", (i / 7) % 40);
                let mut n = NoteSpec::new(0x40_1000 + i % 0x1000, "t", &name, args[i as usize % 5]);
                if i % 3 == 0 {
                    n.semaphore = 0x60_2000 + 2 * (i % 0x80);
                }
                n
            })
            .collect();
        let data = file(notes);
        let usdt = UsdtFile::parse(&data).unwrap();
        for (selectors, cookies) in [
            (vec![ProbeSelector::new("*", "*", 3)], None),
            (vec![ProbeSelector::new("t", "p1*", 9)], Some(100)),
        ] {
            let how = setting(cookies);
            let mut names = Vec::new();
            let mut picks = Vec::new();
            for (sel, provider, name, indexes) in selected(&usdt, &selectors) {
                names.push((Arc::from(provider), Arc::from(name)));
                for &site in indexes {
                    let cookie = cookies.map_or(sel.cookie, |c| c + picks.len() as u64);
                    let probe = names.len() as u32 - 1;
                    picks.push(Pick {
                        probe,
                        site,
                        cookie,
                    });
                }
            }
            let one = plan_all(&usdt, &picks, &names, &how, false).unwrap();
            let two = plan_all(&usdt, &picks, &names, &how, true).unwrap();
            assert_eq!(outcome(&two), outcome(&one));
            assert!(one.unreadable.len() > 100, "{}", one.unreadable.len());
            // `build` gives the same, with the warnings of the unreadable arguments once.
            let table = build(&usdt, &selectors, &how).unwrap();
            assert_eq!(table.plans.len(), picks.len());
            assert_eq!(
                format!("{:?}", table.args.runs[0].0),
                format!("{:?}", one.encodings)
            );
            assert!(!table.warnings.is_empty() && table.warnings.len() <= one.unreadable.len());
        }
    }

    #[test]
    fn the_first_site_with_too_many_arguments_is_the_one_named() {
        let many = (0..13)
            .map(|i| format!("8@${i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let notes: Vec<NoteSpec> = (0..5000u64)
            .map(|i| {
                let args = if i == 3100 || i == 4000 {
                    &many[..]
                } else {
                    "-4@%edi"
                };
                NoteSpec::new(0x40_1000 + i % 0x1000, "t", &format!("p{}", i % 9), args)
            })
            .collect();
        let data = file(notes);
        let usdt = UsdtFile::parse(&data).unwrap();
        let selectors = [ProbeSelector::new("*", "*", 0)];
        let err = build(&usdt, &selectors, &setting(None)).err().unwrap();
        // Attach order is by probe: p0's sites first; site 3100 is p4's, 4000 is p4's too
        // (4000 % 9 = 4) but later in note order.
        let text = err.to_string();
        assert!(text.contains("t:p4") && text.contains("13"), "{text}");
        assert!(
            text.contains("note 3100") || text.contains("#3100"),
            "{text}"
        );
    }
}
