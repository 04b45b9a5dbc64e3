//! What one run of an implementation is asked to read: a subset of a fixture's probes and, for
//! adapters that can leave arguments out, of each probe's arguments. The harness narrows the
//! selection when a peer refuses a run as a whole (see [`super::isolate`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::error::Result;
use crate::gen::{Fixture, Hit};

/// One argument of a probe as the notes describe it (over every site of the probe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgShape {
    /// The largest size any site gives it, in bytes (0 when no site's note decodes).
    pub size: u32,
    /// Signed, per the first site that decodes it.
    pub signed: bool,
    /// Marked `f` (floating point), per the first site that decodes it.
    pub float: bool,
    /// The argument's text in the first site that has it (`-4@%eax`).
    pub text: String,
}

/// One probe of a fixture: where it is, and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeShape {
    /// Provider.
    pub provider: String,
    /// Name.
    pub name: String,
    /// The file holding it (the corpus directory joined with `rel`).
    pub object: PathBuf,
    /// The file holding it as the manifest names it (relative to the corpus).
    pub rel: PathBuf,
    /// Arguments, by index: as many as the site with the most.
    pub args: Vec<ArgShape>,
}

impl ProbeShape {
    /// `provider:name`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.provider, self.name)
    }
}

/// Every probe a fixture expects hits of, in first-hit order, from its notes: one per file
/// holding it (a library and the executable may both have `provider:name`).
pub fn shapes(dir: &Path, fx: &Fixture) -> Result<Vec<Arc<ProbeShape>>> {
    let mut out: Vec<Arc<ProbeShape>> = Vec::new();
    for h in &fx.hits {
        let path = dir.join(&h.object);
        if out
            .iter()
            .any(|p| p.provider == h.provider && p.name == h.name && p.object == path)
        {
            continue;
        }
        let mapped = crate::MappedFile::open(&path)?;
        let usdt = mapped.usdt()?;
        let mut args: Vec<ArgShape> = Vec::new();
        if let Some(p) = usdt.probe(&h.provider, &h.name) {
            let n = p.sites.iter().map(|s| s.args.len()).max().unwrap_or(0);
            for i in 0..n {
                let first = p.sites.iter().find_map(|s| s.args.get(i));
                let decoded = p
                    .sites
                    .iter()
                    .find_map(|s| s.args.get(i).and_then(|a| a.decoded.as_ref().ok()));
                let size = p
                    .sites
                    .iter()
                    .filter_map(|s| s.args.get(i).and_then(|a| a.decoded.as_ref().ok()))
                    .map(|d| d.size)
                    .max()
                    .unwrap_or(0);
                args.push(ArgShape {
                    size,
                    signed: decoded.is_some_and(|d| d.signed),
                    float: decoded.is_some_and(|d| d.float),
                    text: first.map(|a| a.text.to_string()).unwrap_or_default(),
                });
            }
        }
        out.push(Arc::new(ProbeShape {
            provider: h.provider.clone(),
            name: h.name.clone(),
            object: path,
            rel: h.object.clone(),
            args,
        }));
    }
    Ok(out)
}

/// How finely an adapter can narrow what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// It attaches to every probe of the fixture or none (no narrowing).
    Fixture,
    /// It can attach to some probes and not others.
    Probe,
    /// It can also read some arguments of a probe and not others.
    Argument,
}

/// One thing a run can include or leave out: a probe, or one argument of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Unit {
    /// Index of the probe in the fixture's shapes.
    pub probe: usize,
    /// The argument, or `None` for the whole probe (every argument, or a probe without any).
    pub arg: Option<usize>,
}

/// Every unit of `shapes` at `granularity` (a whole fixture is one unit per probe, marked
/// so by [`Granularity::Fixture`] at the caller).
pub fn units(shapes: &[Arc<ProbeShape>], granularity: Granularity) -> Vec<Unit> {
    let mut v = Vec::new();
    for (i, p) in shapes.iter().enumerate() {
        if granularity == Granularity::Argument && !p.args.is_empty() {
            v.extend((0..p.args.len()).map(|a| Unit {
                probe: i,
                arg: Some(a),
            }));
        } else {
            v.push(Unit {
                probe: i,
                arg: None,
            });
        }
    }
    v
}

/// A probe to attach, with the arguments to read.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// The probe.
    pub probe: Arc<ProbeShape>,
    /// Argument indexes to read, ascending.
    pub args: Vec<usize>,
}

impl Wanted {
    /// Whether argument `i` is read.
    pub fn reads(&self, i: usize) -> bool {
        self.args.binary_search(&i).is_ok()
    }
}

/// What one run attaches to and reads.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The probes, in the fixture's order.
    pub probes: Vec<Wanted>,
}

impl Selection {
    /// The selection of `units` of `shapes`.
    pub fn of(shapes: &[Arc<ProbeShape>], units: &[Unit]) -> Self {
        let mut per: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); shapes.len()];
        let mut present = vec![false; shapes.len()];
        for u in units {
            present[u.probe] = true;
            match u.arg {
                Some(a) => {
                    per[u.probe].insert(a);
                }
                None => per[u.probe].extend(0..shapes[u.probe].args.len()),
            }
        }
        Selection {
            probes: shapes
                .iter()
                .zip(per)
                .zip(present)
                .filter(|(_, p)| *p)
                .map(|((s, a), _)| Wanted {
                    probe: Arc::clone(s),
                    args: a.into_iter().collect(),
                })
                .collect(),
        }
    }

    /// Every probe of `shapes`, every argument.
    pub fn all(shapes: &[Arc<ProbeShape>]) -> Self {
        Selection::of(shapes, &units(shapes, Granularity::Probe))
    }

    /// The first selected probe `provider:name`, if any.
    pub fn get(&self, provider: &str, name: &str) -> Option<&Wanted> {
        self.probes
            .iter()
            .find(|w| w.probe.provider == provider && w.probe.name == name)
    }

    /// Whether argument `arg` of the expected hit `h` is read (`arg` 0 of a probe without
    /// arguments stands for the hit itself).
    pub fn reads(&self, h: &Hit, arg: usize) -> bool {
        self.probes.iter().any(|w| {
            w.probe.provider == h.provider
                && w.probe.name == h.name
                && w.probe.rel == h.object
                && (w.reads(arg) || (w.probe.args.is_empty() && arg == 0))
        })
    }

    /// Distinct objects of the selected probes, in order.
    pub fn objects(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = Vec::new();
        for w in &self.probes {
            if !v.contains(&w.probe.object.as_path()) {
                v.push(&w.probe.object);
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(name: &str, n: usize) -> Arc<ProbeShape> {
        Arc::new(ProbeShape {
            provider: "p".into(),
            name: name.into(),
            object: "/x".into(),
            rel: "x".into(),
            args: (0..n)
                .map(|i| ArgShape {
                    size: 8,
                    signed: false,
                    float: false,
                    text: format!("8@%r{i}"),
                })
                .collect(),
        })
    }

    #[test]
    fn units_and_selections() {
        let s = vec![shape("a", 2), shape("b", 0), shape("c", 3)];
        let u = units(&s, Granularity::Argument);
        assert_eq!(u.len(), 2 + 1 + 3);
        assert_eq!(units(&s, Granularity::Probe).len(), 3);
        let sel = Selection::of(&s, &[u[1], u[2], u[5]]);
        let names: Vec<&str> = sel.probes.iter().map(|w| w.probe.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(sel.probes[0].args, [1]);
        assert_eq!(sel.probes[2].args, [2]);
        let hit = |name: &str, object: &str| Hit {
            provider: "p".into(),
            name: name.into(),
            object: object.into(),
            semaphore: false,
            args: vec![],
        };
        let reads = |name: &str, a: usize| sel.reads(&hit(name, "x"), a);
        assert!(reads("b", 0) && reads("a", 1) && !reads("a", 0));
        assert!(!reads("c", 0) && !reads("d", 0));
        // The same probe in another file is another probe.
        assert!(!sel.reads(&hit("a", "lib.so"), 1));
        assert_eq!(Selection::all(&s).probes[2].args, [0, 1, 2]);
    }
}
