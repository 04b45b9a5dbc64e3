//! Judging every probe and argument of a fixture even when a peer refuses a run as a whole.
//!
//! Some peers reject a whole script or process because of one probe or one argument
//! (bpftrace fails a script that names an argument its parser cannot take; a crash in
//! one probe's setup takes the others down). A verdict per binary would hide everything the
//! peer reads right, so a refused run is narrowed: the adapter may name the units its words
//! blame (then those are refused in the peer's own words and the rest runs again), otherwise
//! the selection is split in halves until each refused unit stands alone. Every accepted run
//! is a full run whose hits are judged, so no run is wasted on probing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::compare::{compare, ArgResult, Outcome};
use super::impls::Implementation;
use super::select::{self, Granularity, ProbeShape, Selection, Unit};
use crate::gen::Fixture;

/// At most this many runs of one implementation on one fixture.
pub const MAX_RUNS: usize = 200;
/// At most this long narrowing one implementation's refusals on one fixture.
pub const MAX_TIME: Duration = Duration::from_secs(300);

/// A unit (probe or argument) that made a larger run be refused as a whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blame {
    /// `provider:name`.
    pub probe: String,
    /// The argument, or `None` for the probe as a whole.
    pub arg: Option<usize>,
    /// The argument's text in the note (empty for a whole probe).
    pub text: String,
    /// How many units the refused run held.
    pub run_units: usize,
    /// The peer's words refusing that run.
    pub whole: String,
    /// The peer's words about this unit (when run alone, or as its words named it).
    pub own: String,
}

/// Everything one implementation told about one fixture.
#[derive(Debug, Clone, Default)]
pub struct Judged {
    /// One result per expected (hit, argument).
    pub results: Vec<ArgResult>,
    /// Units that got a larger run refused.
    pub blames: Vec<Blame>,
    /// Findings beyond values, from the adapter.
    pub notes: Vec<String>,
    /// Runs made.
    pub runs: usize,
}

struct Task {
    units: Vec<Unit>,
    /// The words of the refused run this task was split from.
    parent: Option<(usize, String)>,
}

/// Run `imp` on `fx` until every expected argument is judged.
pub fn judge(
    imp: &dyn Implementation,
    dir: &std::path::Path,
    fx: &Fixture,
    limit: Duration,
) -> Judged {
    let shapes = match select::shapes(dir, fx) {
        Ok(s) => s,
        Err(e) => {
            return Judged {
                results: results_for(fx, None, Outcome::Error, &e.to_string()),
                ..Judged::default()
            }
        }
    };
    judge_with(imp, dir, fx, &shapes, None, limit)
}

/// [`judge`] restricted to the probes named in `only` (`provider:name`), when given.
pub fn judge_with(
    imp: &dyn Implementation,
    dir: &std::path::Path,
    fx: &Fixture,
    shapes: &[Arc<ProbeShape>],
    only: Option<&[String]>,
    limit: Duration,
) -> Judged {
    let gran = imp.granularity();
    let all: Vec<Unit> = select::units(shapes, gran)
        .into_iter()
        .filter(|u| only.is_none_or(|o| o.contains(&shapes[u.probe].key())))
        .collect();
    let mut out = Judged::default();
    let started = Instant::now();
    // Refused runs that were split, and the units refused alone or by name.
    let mut split: Vec<(Vec<Unit>, String)> = Vec::new();
    let mut culprits: Vec<Unit> = Vec::new();
    let mut stack = if imp.one_probe_per_run() {
        let mut probes: Vec<usize> = all.iter().map(|u| u.probe).collect();
        probes.dedup();
        probes
            .iter()
            .rev()
            .map(|&p| Task {
                units: all.iter().filter(|u| u.probe == p).copied().collect(),
                parent: None,
            })
            .collect()
    } else {
        vec![Task {
            units: all,
            parent: None,
        }]
    };
    while let Some(task) = stack.pop() {
        if task.units.is_empty() {
            continue;
        }
        let sel = Selection::of(shapes, &task.units);
        if out.runs >= MAX_RUNS || started.elapsed() > MAX_TIME {
            let why = format!(
                "not narrowed further: {} runs in {} s spent on this fixture{}",
                out.runs,
                started.elapsed().as_secs(),
                task.parent
                    .as_ref()
                    .map(|p| format!("; the peer refused a run holding these: {}", p.1))
                    .unwrap_or_default()
            );
            out.results
                .extend(results_for(fx, Some(&sel), Outcome::Error, &why));
            continue;
        }
        out.runs += 1;
        let t0 = Instant::now();
        let result = imp.run(dir, fx, &sel, limit);
        if std::env::var_os("USDTKIT_CHECK_DEBUG").is_some() {
            eprintln!(
                "check: {} {} run {} ({} units): {:.2} s, {}",
                imp.name(),
                fx.name,
                out.runs,
                task.units.len(),
                t0.elapsed().as_secs_f64(),
                match &result {
                    Ok(r) => r.refused.get("*").map_or("accepted", |w| w.as_str()),
                    Err(_) => "error",
                }
            );
        }
        let run = match result {
            Ok(r) => r,
            Err(e) => {
                out.results
                    .extend(results_for(fx, Some(&sel), Outcome::Error, &e.to_string()));
                continue;
            }
        };
        out.notes.extend(run.notes.iter().cloned());
        let Some(why) = run.refused.get("*").cloned() else {
            out.results.extend(compare(fx, &run, Some(&sel)));
            continue;
        };
        if gran == Granularity::Fixture || task.units.len() == 1 {
            if let (Some(u), Some((n, whole))) = (task.units.first(), &task.parent) {
                if task.units.len() == 1 {
                    out.blames.push(blame(shapes, *u, *n, whole, &why));
                }
            }
            culprits.extend(task.units.iter().copied());
            out.results
                .extend(results_for(fx, Some(&sel), Outcome::Refused, &why));
            continue;
        }
        let blamed = imp.blame(&why, &sel, shapes);
        // A whole probe blamed where arguments are the units: a suspect to try on its own
        // first, not a verdict on each of its arguments.
        let suspects: Vec<Unit> = blamed
            .iter()
            .filter(|(u, _)| u.arg.is_none() && gran == Granularity::Argument)
            .flat_map(|(u, _)| task.units.iter().filter(|t| t.probe == u.probe).copied())
            .collect();
        let named: Vec<(Unit, String)> = blamed
            .into_iter()
            .filter(|(u, _)| task.units.contains(u))
            .collect();
        let n = task.units.len();
        split.push((task.units.clone(), why.clone()));
        if !suspects.is_empty() && suspects.len() < n {
            let rest: Vec<Unit> = task
                .units
                .iter()
                .filter(|u| !suspects.contains(u))
                .copied()
                .collect();
            for part in [rest, suspects] {
                stack.push(Task {
                    units: part,
                    parent: Some((n, why.clone())),
                });
            }
        } else if !named.is_empty() && named.len() < n {
            // The peer named what it refused: those are refused in its words, the rest runs
            // again.
            for (u, own) in &named {
                culprits.push(*u);
                out.blames.push(blame(shapes, *u, n, &why, own));
                let one = Selection::of(shapes, &[*u]);
                out.results
                    .extend(results_for(fx, Some(&one), Outcome::Refused, own));
            }
            let rest: Vec<Unit> = task
                .units
                .iter()
                .filter(|u| !named.iter().any(|(b, _)| b == *u))
                .copied()
                .collect();
            stack.push(Task {
                units: rest,
                parent: Some((n, why)),
            });
        } else {
            // Halves of the probes first, then of one probe's arguments: each probe ends up
            // run as it would be on its own, whatever else the fixture holds.
            let mut probes: Vec<usize> = task.units.iter().map(|u| u.probe).collect();
            probes.dedup();
            let (a, b): (Vec<Unit>, Vec<Unit>) = if probes.len() > 1 {
                let first = &probes[..probes.len() / 2];
                task.units.iter().partition(|u| first.contains(&u.probe))
            } else {
                let (a, b) = task.units.split_at(n / 2);
                (a.to_vec(), b.to_vec())
            };
            for half in [b, a] {
                stack.push(Task {
                    units: half,
                    parent: Some((n, why.clone())),
                });
            }
        }
    }
    together(shapes, &split, &culprits, &mut out.blames);
    out.results.sort_by_key(|r| (r.hit, r.arg));
    out
}

/// Refused runs whose narrowing found no unit refused alone: the peer refuses only the
/// combination (each part read when run on its own). The smallest such runs are findings of
/// their own.
fn together(
    shapes: &[Arc<ProbeShape>],
    split: &[(Vec<Unit>, String)],
    culprits: &[Unit],
    blames: &mut Vec<Blame>,
) {
    let clean: Vec<&(Vec<Unit>, String)> = split
        .iter()
        .filter(|(units, _)| !units.iter().any(|u| culprits.contains(u)))
        .collect();
    for (units, why) in &clean {
        let smaller = clean
            .iter()
            .any(|(o, _)| o.len() < units.len() && o.iter().all(|u| units.contains(u)));
        if smaller {
            continue;
        }
        let mut probes: Vec<String> = units.iter().map(|u| shapes[u.probe].key()).collect();
        probes.dedup();
        let probe = if probes.len() <= 4 {
            probes.join(", ")
        } else {
            format!("{} probes", probes.len())
        };
        blames.push(Blame {
            probe,
            arg: None,
            text: String::new(),
            run_units: units.len(),
            whole: why.clone(),
            own: "each part was accepted on its own: refused only together".into(),
        });
    }
}

fn blame(shapes: &[Arc<ProbeShape>], u: Unit, n: usize, whole: &str, own: &str) -> Blame {
    let p = &shapes[u.probe];
    Blame {
        probe: p.key(),
        arg: u.arg,
        text: u
            .arg
            .and_then(|a| p.args.get(a))
            .map(|a| a.text.clone())
            .unwrap_or_default(),
        run_units: n,
        whole: whole.to_string(),
        own: own.to_string(),
    }
}

/// The same outcome for every expected argument of `fx` that `sel` reads (all of them when
/// `sel` is `None`).
pub fn results_for(
    fx: &Fixture,
    sel: Option<&Selection>,
    outcome: Outcome,
    why: &str,
) -> Vec<ArgResult> {
    let mut v = Vec::new();
    for (i, h) in fx.hits.iter().enumerate() {
        for a in 0..h.args.len().max(1) {
            if sel.is_some_and(|s| !s.reads(h, a)) {
                continue;
            }
            v.push(ArgResult {
                hit: i,
                probe: format!("{}:{}", h.provider, h.name),
                arg: a,
                expected: h.args.get(a).cloned(),
                observed: None,
                outcome,
                detail: why.to_string(),
            });
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::compare::{Observed, ObservedHit, Run};
    use crate::check::select::{ArgShape, Granularity};
    use crate::gen::{Expected, Hit, IntValue};
    use std::path::Path;
    use std::sync::Mutex;

    /// A peer that reads every argument right, except that any run reading argument 2 of
    /// probe `bad` is refused as a whole, in words that do not say why (or, `pair`, any run
    /// holding both probes `a` and `b`).
    struct Picky {
        runs: Mutex<usize>,
        gran: Granularity,
        pair: bool,
    }

    impl Implementation for Picky {
        fn name(&self) -> String {
            "picky".into()
        }
        fn detect(&self) -> std::result::Result<String, String> {
            Ok("1".into())
        }
        fn granularity(&self) -> Granularity {
            self.gran
        }
        fn run(&self, _: &Path, fx: &Fixture, sel: &Selection, _: Duration) -> crate::Result<Run> {
            *self.runs.lock().unwrap() += 1;
            let mut run = Run::default();
            let has = |n: &str| sel.probes.iter().any(|w| w.probe.name == n);
            let refused = if self.pair {
                has("a") && has("b")
            } else {
                sel.probes
                    .iter()
                    .any(|w| w.probe.name == "bad" && w.reads(2))
            };
            if refused {
                run.refused.insert("*".into(), "picky: no".into());
                return Ok(run);
            }
            for h in &fx.hits {
                if let Some(w) = sel.get(&h.provider, &h.name) {
                    let args = (0..h.args.len())
                        .map(|a| match (&h.args[a], w.reads(a)) {
                            (Expected::Int { value, .. }, true) => Observed::Int(value.as_i128()),
                            _ => Observed::Error("not read".into()),
                        })
                        .collect();
                    run.hits.push(ObservedHit {
                        provider: h.provider.clone(),
                        name: h.name.clone(),
                        pc: None,
                        args,
                    });
                }
            }
            Ok(run)
        }
    }

    fn world() -> (Fixture, Vec<Arc<ProbeShape>>) {
        let names = ["a", "b", "bad", "c", "d", "e", "f", "g"];
        let shapes: Vec<Arc<ProbeShape>> = names
            .iter()
            .map(|n| {
                Arc::new(ProbeShape {
                    provider: "p".into(),
                    name: (*n).into(),
                    object: "/x/prog".into(),
                    rel: "prog".into(),
                    args: (0..4)
                        .map(|i| ArgShape {
                            size: 4,
                            signed: true,
                            float: false,
                            text: format!("-4@%r{i}"),
                        })
                        .collect(),
                })
            })
            .collect();
        let hits = names
            .iter()
            .map(|n| Hit {
                provider: "p".into(),
                name: (*n).into(),
                object: "prog".into(),
                semaphore: false,
                args: (0..4)
                    .map(|i| Expected::Int {
                        value: IntValue::from_i128(i),
                        ctype: "int".into(),
                    })
                    .collect(),
            })
            .collect();
        let fx = Fixture::for_tests("prog", hits);
        (fx, shapes)
    }

    /// Judge the world's fixture with a picky peer; the number of runs it was asked for.
    fn judge_picky(gran: Granularity, pair: bool, only: Option<&[String]>) -> (Judged, usize) {
        let (fx, shapes) = world();
        let picky = Picky {
            runs: Mutex::new(0),
            gran,
            pair,
        };
        let j = judge_with(
            &picky,
            Path::new("/"),
            &fx,
            &shapes,
            only,
            Duration::from_secs(1),
        );
        let runs = *picky.runs.lock().unwrap();
        (j, runs)
    }

    #[test]
    fn one_refused_argument_is_found_by_halves_and_everything_else_is_judged() {
        let (j, runs) = judge_picky(Granularity::Argument, false, None);
        let refused: Vec<(String, usize)> = j
            .results
            .iter()
            .filter(|r| r.outcome == Outcome::Refused)
            .map(|r| (r.probe.clone(), r.arg))
            .collect();
        assert_eq!(refused, [("p:bad".to_string(), 2)]);
        assert_eq!(
            j.results
                .iter()
                .filter(|r| r.outcome == Outcome::Pass)
                .count(),
            8 * 4 - 1
        );
        assert_eq!(j.blames.len(), 1);
        assert_eq!(
            (j.blames[0].probe.as_str(), j.blames[0].arg),
            ("p:bad", Some(2))
        );
        assert_eq!(j.blames[0].own, "picky: no");
        // 32 units: one refused among them costs about two runs per halving.
        assert!(j.runs <= 2 * 6 + 1, "{} runs", j.runs);
        assert_eq!(j.runs, runs);
    }

    #[test]
    fn a_probe_granular_peer_refuses_the_whole_probe_only() {
        let (j, _) = judge_picky(Granularity::Probe, false, None);
        let refused: Vec<usize> = j
            .results
            .iter()
            .filter(|r| r.outcome == Outcome::Refused)
            .map(|r| r.arg)
            .collect();
        assert_eq!(refused, [0, 1, 2, 3]);
        assert!(j
            .results
            .iter()
            .filter(|r| r.probe != "p:bad")
            .all(|r| r.outcome == Outcome::Pass));
        // Only the probes asked for.
        let only = ["p:c".to_string()];
        let (j, _) = judge_picky(Granularity::Probe, false, Some(&only));
        assert!(j
            .results
            .iter()
            .all(|r| r.probe == "p:c" && r.outcome == Outcome::Pass));
        assert_eq!(j.results.len(), 4);
    }

    #[test]
    fn a_refusal_of_a_combination_is_a_finding_and_every_part_is_judged() {
        let (j, _) = judge_picky(Granularity::Probe, true, None);
        let not: Vec<_> = j
            .results
            .iter()
            .filter(|r| r.outcome != Outcome::Pass)
            .collect();
        assert!(not.is_empty(), "{not:?}");
        assert_eq!(j.results.len(), 8 * 4);
        assert_eq!(j.blames.len(), 1, "{:?}", j.blames);
        assert_eq!(j.blames[0].probe, "p:a, p:b");
        assert!(j.blames[0].own.contains("refused only together"));
    }
}
