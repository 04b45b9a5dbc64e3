//! The conformance harness: implementations run on the same fixtures, each argument judged
//! against the manifest, gathered into a report.
//!
//! Harness API (feature `harness`): used by the `usdtkit` command and the tests; not
//! covered by semver.

pub mod compare;
pub mod env;
pub mod findings;
pub mod impls;
pub mod isolate;
pub mod report;
pub mod run;
pub mod select;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub use self::compare::{compare, tally, ArgResult, Observed, ObservedHit, Outcome, Run};
use self::impls::Implementation;
use self::report::{ImplInfo, Report, Row};
use crate::gen::Manifest;

/// What to check, beyond the corpus and the implementations.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Each run of an implementation on a fixture ends within this.
    pub limit: Duration,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Only the fixtures with these names (all when `None`).
    pub fixtures: Option<Vec<String>>,
    /// Only the probes `provider:name` listed (all when `None`).
    pub probes: Option<Vec<String>>,
    /// Fixtures checked at once.
    pub jobs: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            limit: Duration::from_secs(60),
            progress: false,
            fixtures: None,
            probes: None,
            jobs: 4,
        }
    }
}

/// Run every implementation on every fixture of the corpus in `dir` that it runs (those of
/// this machine's architecture, or foreign ones under emulation), judging every expected
/// argument (see [`isolate`] for peers that refuse runs as a whole). An implementation that
/// is not available is listed with the reason; a fixture an adapter fails on gives `error`
/// for each of its arguments, with the adapter's error.
///
/// `opts.jobs` fixtures are checked at once (the implementations one after the other on
/// each); implementations that name the same [`Implementation::exclusive`] resource never
/// run at once. The report lists the results in fixture order whatever order they finished
/// in.
pub fn run_all(
    dir: &Path,
    manifest: &Manifest,
    implementations: &[Box<dyn Implementation>],
    opts: &CheckOptions,
) -> Report {
    // Peers in another root see the corpus at its absolute path.
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let dir = dir.as_path();
    let infos: Vec<ImplInfo> = implementations
        .iter()
        .map(|i| {
            let v = i.detect();
            ImplInfo {
                name: i.column(v.as_deref().map_err(String::as_str)),
                id: i.name(),
                version: v.as_ref().ok().cloned(),
                unavailable: v.err(),
            }
        })
        .collect();
    let mut report = Report::new(manifest, infos.clone());
    report.corpus_dir = dir.to_path_buf();
    let fixtures: Vec<&crate::gen::Fixture> = manifest
        .fixtures
        .iter()
        .filter(|f| opts.fixtures.as_ref().is_none_or(|o| o.contains(&f.name)))
        .collect();
    let shapes: Vec<_> = fixtures.iter().map(|fx| select::shapes(dir, fx)).collect();
    let jobs: Vec<(usize, usize)> = (0..fixtures.len())
        .flat_map(|f| (0..implementations.len()).map(move |i| (f, i)))
        .filter(|&(f, i)| infos[i].version.is_some() && implementations[i].runs(fixtures[f]))
        .collect();
    let bar = if opts.progress {
        ProgressBar::new(jobs.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("checking {bar:30} {pos}/{len} {elapsed} {msg}")
            .expect("template"),
    );
    // Workers take whole fixtures: two tools probing one binary at once can make the kernel
    // refuse one of them (a uprobe at one offset takes one ref_ctr_offset), which says
    // nothing about either tool.
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, isolate::Judged, f64)>> = Mutex::new(Vec::new());
    let resources: Mutex<HashMap<&'static str, Arc<Mutex<()>>>> = Mutex::new(HashMap::new());
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1) {
            s.spawn(|| loop {
                let f = next.fetch_add(1, Ordering::Relaxed);
                if f >= fixtures.len() {
                    break;
                }
                for (k, &(_, i)) in jobs.iter().enumerate().filter(|(_, j)| j.0 == f) {
                    let (fx, imp) = (fixtures[f], &implementations[i]);
                    let lock = imp.exclusive().map(|r| {
                        let mut m = resources.lock().unwrap_or_else(|p| p.into_inner());
                        Arc::clone(m.entry(r).or_default())
                    });
                    let _held = lock
                        .as_ref()
                        .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()));
                    bar.set_message(format!("{} {}", infos[i].name, fx.name));
                    let started = std::time::Instant::now();
                    let judged = match &shapes[f] {
                        Ok(sh) => isolate::judge_with(
                            imp.as_ref(),
                            dir,
                            fx,
                            sh,
                            opts.probes.as_deref(),
                            opts.limit,
                        ),
                        Err(e) => isolate::Judged {
                            results: isolate::results_for(fx, None, Outcome::Error, &e.to_string()),
                            ..isolate::Judged::default()
                        },
                    };
                    let secs = started.elapsed().as_secs_f64();
                    done.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((k, judged, secs));
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    done.sort_by_key(|d| d.0);
    let mut classes: HashMap<usize, _> = HashMap::new();
    for (k, judged, secs) in done {
        let (f, i) = jobs[k];
        let (fx, info) = (fixtures[f], &infos[i]);
        let cls = classes.entry(f).or_insert_with(|| report::classes(dir, fx));
        for n in judged.notes {
            report.notes.push((info.name.clone(), fx.name.clone(), n));
        }
        for b in judged.blames {
            report.blames.push((info.name.clone(), fx.name.clone(), b));
        }
        report.runs += judged.runs;
        report.timings.push(report::Timing {
            implementation: info.name.clone(),
            fixture: fx.name.clone(),
            runs: judged.runs,
            seconds: secs,
        });
        for r in judged.results {
            let c = cls
                .get(&(r.probe.clone(), r.arg))
                .cloned()
                .unwrap_or_default();
            report.rows.push(Row {
                implementation: info.name.clone(),
                fixture: fx.name.clone(),
                result: r,
                classes: c,
            });
        }
    }
    report
}
